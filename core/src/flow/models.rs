//! What the flow needs to know about the models: the version strings that go into the signed evidence, the
//! embedder id stored with templates, and the calibrated match threshold (`[calibration]` of the manifest, the
//! one place it lives) with the flip-averaging setting it holds for.

use super::{ConfigSetting, FacePayError};
use crate::template::model_id;
use crate::vision::antispoof::MODEL_NAMES as ANTISPOOF_MODELS;
use crate::vision::model::ModelManifest;
use crate::vision::pipeline::{DETECTOR_MODEL, EMBEDDER_MODEL, MESH_MODEL};

/// Model facts read once from `models/manifest.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// `name@sha256-prefix` of every model that takes part (detector, mesh, embedder, anti-spoof when loaded).
    pub versions: Vec<String>,
    /// The embedder's id, as stored in templates.
    pub embedder: String,
    /// The match threshold calibrated for that embedder.
    pub match_threshold: f32,
    /// Whether the threshold was calibrated on flip-averaged embeddings (the embedder must run the same way).
    pub flip_average: bool,
}

impl ModelInfo {
    /// Reads a parsed manifest; `with_antispoof` adds the anti-spoof models' versions. A manifest without a
    /// `[calibration]` for the pipeline's embedder is a [`FacePayError::Config`].
    pub fn from_manifest(
        manifest: &ModelManifest,
        with_antispoof: bool,
    ) -> Result<Self, FacePayError> {
        let version = |name: &str| -> Result<String, FacePayError> {
            let entry = manifest.entry(name)?;
            model_id(name, &entry.onnx_sha256)
                .map_err(|e| FacePayError::config(ConfigSetting::ModelManifest, e))
        };
        let mut names = vec![DETECTOR_MODEL, MESH_MODEL, EMBEDDER_MODEL];
        if with_antispoof {
            names.extend(ANTISPOOF_MODELS);
        }
        let versions = names
            .iter()
            .map(|n| version(n))
            .collect::<Result<Vec<_>, _>>()?;
        let calibration = manifest.calibration()?;
        if calibration.embedder != EMBEDDER_MODEL {
            return Err(FacePayError::config(
                ConfigSetting::ModelManifest,
                format!(
                    "[calibration] is for the embedder {:?}, the pipeline runs {EMBEDDER_MODEL:?}",
                    calibration.embedder
                ),
            ));
        }
        Ok(Self {
            versions,
            embedder: version(EMBEDDER_MODEL)?,
            match_threshold: calibration.threshold,
            flip_average: calibration.flip_average,
        })
    }
}
