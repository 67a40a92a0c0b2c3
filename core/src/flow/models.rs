//! What the flow needs to know about the models: the version strings that go into the signed evidence, the
//! embedder id stored with templates, and the calibrated match threshold (`[calibration]` of the manifest, the
//! one place it lives) with the flip-averaging setting it holds for.

use std::path::Path;

use super::FlowError;
use crate::template::model_id;
use crate::vision::model::ModelManifest;
use crate::vision::pipeline::EMBEDDER_MODEL;

/// Model facts read once from `models/manifest.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// `name@sha256-prefix` of every model that takes part: the stages the pipeline actually loaded (detector,
    /// mesh, eyes, embedder, and the anti-spoof models when loaded; see [`Vision::model_names`]).
    ///
    /// [`Vision::model_names`]: crate::vision::pipeline::Vision::model_names
    pub versions: Vec<String>,
    /// The embedder's id, as stored in templates.
    pub embedder: String,
    /// The match threshold calibrated for that embedder.
    pub match_threshold: f32,
    /// Whether the threshold was calibrated on flip-averaged embeddings (the embedder must run the same way).
    pub flip_average: bool,
}

impl ModelInfo {
    /// Reads the manifest in `models_dir` for the loaded models named `loaded` (in pipeline order). A manifest
    /// without a `[calibration]` for the pipeline's embedder is a [`FlowError::Config`].
    pub fn load(models_dir: &Path, loaded: &[String]) -> Result<Self, FlowError> {
        Self::from_manifest(&ModelManifest::load(models_dir)?, loaded)
    }

    /// [`ModelInfo::load`] from a parsed manifest.
    pub fn from_manifest(manifest: &ModelManifest, loaded: &[String]) -> Result<Self, FlowError> {
        let version = |name: &str| -> Result<String, FlowError> {
            let entry = manifest.entry(name)?;
            model_id(name, &entry.onnx_sha256).map_err(|e| FlowError::Config(e.to_string()))
        };
        let versions = loaded
            .iter()
            .map(|n| version(n))
            .collect::<Result<Vec<_>, _>>()?;
        let calibration = manifest.calibration()?;
        if calibration.embedder != EMBEDDER_MODEL {
            return Err(FlowError::Config(format!(
                "[calibration] is for the embedder {:?}, the pipeline runs {EMBEDDER_MODEL:?}",
                calibration.embedder
            )));
        }
        Ok(Self {
            versions,
            embedder: version(EMBEDDER_MODEL)?,
            match_threshold: calibration.threshold,
            flip_average: calibration.flip_average,
        })
    }
}
