//! What the flow needs to know about the models: the version strings that go into the signed evidence, the
//! embedder id stored with templates, and the calibrated match threshold (`[calibration]` of the manifest, the
//! one place it lives) with the flip-averaging setting it holds for.

use super::{ConfigSetting, FacePayError};
use crate::template::model_id;
use crate::vision::model::ModelManifest;
use crate::vision::model::sha256_hex;

/// Model facts read once from `models/manifest.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// `name@sha256-prefix` of every model that takes part: the stages the pipeline actually loaded (detector,
    /// mesh, eyes, embedder, and the anti-spoof models when loaded; see [`Vision::model_names`]).
    ///
    /// [`Vision::model_names`]: crate::vision::pipeline::Vision::model_names
    pub versions: Vec<String>,
    /// The (fused) embedder's id, as stored in templates: `name@sha256-prefix` for one model; for several, their
    /// names joined by `.` and a prefix of the sha256 of every model's ONNX hash and weight.
    pub embedder: String,
    /// The match threshold calibrated for those embedders.
    pub match_threshold: f32,
    /// Whether the threshold was calibrated on flip-averaged embeddings (the embedder must run the same way).
    pub flip_average: bool,
}

impl ModelInfo {
    /// Reads a parsed manifest for the loaded models named `loaded` (in pipeline order, see
    /// [`Vision::model_names`]). A manifest without a `[calibration]` for the pipeline's embedders is a
    /// [`FacePayError::Config`].
    ///
    /// [`Vision::model_names`]: crate::vision::pipeline::Vision::model_names
    pub fn from_manifest(
        manifest: &ModelManifest,
        loaded: &[String],
    ) -> Result<Self, FacePayError> {
        let version = |name: &str| -> Result<String, FacePayError> {
            let entry = manifest.entry(name)?;
            model_id(name, &entry.onnx_sha256)
                .map_err(|e| FacePayError::config(ConfigSetting::ModelManifest, e))
        };
        let calibration = manifest.calibration()?;
        let versions = loaded
            .iter()
            .map(|n| version(n))
            .collect::<Result<Vec<_>, _>>()?;
        let embedder = match calibration.embedders.as_slice() {
            [one] => version(&one.name)?,
            parts => {
                let mut identity = String::new();
                for p in parts {
                    identity += &format!(
                        "{}={}:{};",
                        p.name,
                        manifest.entry(&p.name)?.onnx_sha256,
                        p.weight
                    );
                }
                let names: Vec<&str> = parts.iter().map(|p| p.name.as_str()).collect();
                model_id(&names.join("."), &sha256_hex(identity.as_bytes()))
                    .map_err(|e| FacePayError::config(ConfigSetting::ModelManifest, e))?
            }
        };
        Ok(Self {
            versions,
            embedder,
            match_threshold: calibration.threshold,
            flip_average: calibration.flip_average,
        })
    }
}
