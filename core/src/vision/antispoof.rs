//! Passive anti-spoofing: MiniFASNet V2 (crop 2.7× the face box) and V1SE (4.0×), 80×80 BGR raw 0..255 NCHW,
//! softmax output with index 1 = real face; the fused score is the mean of the models present.
//!
//! The models are external (not committed: tools find them with `facepay_qa::paths::default_antispoof_dir`): the core works without
//! them, so [`AntiSpoof::load`] returns `None` when neither file is there.

use super::image::{Affine, Rect, RgbImage};
use super::model::{ModelEntry, ModelManifest, ModelSource, try_read_model_file};
use super::runner::{Runner, ensure_image};
use super::{FrameProblem, VisionError};

/// Manifest names of the anti-spoof models, fused in this order.
pub const MODEL_NAMES: [&str; 2] = ["minifasnet_v2", "minifasnet_v1se"];
/// Output index of the "real face" class.
const REAL: usize = 1;

/// One MiniFASNet model and the crop scale it was trained with.
#[derive(Debug)]
struct Scorer {
    runner: Runner,
    crop_scale: f32,
}

/// The loaded anti-spoof models (one or both).
#[derive(Debug)]
pub struct AntiSpoof {
    scorers: Vec<Scorer>,
}

impl AntiSpoof {
    /// Loads every model of [`MODEL_NAMES`] whose file `source` has; `Ok(None)` when it has none. A file that is
    /// present but has the wrong sha256, or that tract cannot load, is an error.
    pub fn load(
        manifest: &ModelManifest,
        source: &(impl ModelSource + ?Sized),
    ) -> Result<Option<Self>, VisionError> {
        let mut models = Vec::new();
        for name in MODEL_NAMES {
            let entry = manifest.entry(name)?;
            if let Some(bytes) = try_read_model_file(source, entry)? {
                models.push((entry, bytes));
            }
        }
        if models.is_empty() {
            return Ok(None);
        }
        let refs: Vec<(&ModelEntry, &[u8])> =
            models.iter().map(|(e, b)| (*e, b.as_slice())).collect();
        Self::from_models(&refs).map(Some)
    }

    /// Builds from `(entry, bytes)` pairs (each sha256-checked before parsing); the entries need a `crop_scale`.
    pub fn from_models(models: &[(&ModelEntry, &[u8])]) -> Result<Self, VisionError> {
        if models.is_empty() {
            return Err(VisionError::Manifest(
                "anti-spoofing needs at least one model".into(),
            ));
        }
        let mut scorers = Vec::with_capacity(models.len());
        for (entry, bytes) in models {
            let crop_scale = entry.crop_scale.ok_or_else(|| {
                VisionError::Manifest(format!(
                    "model {:?} has no crop_scale: not an anti-spoof model",
                    entry.name
                ))
            })?;
            scorers.push(Scorer {
                runner: Runner::load(entry, bytes)?,
                crop_scale,
            });
        }
        Ok(Self { scorers })
    }

    /// The manifest names of the loaded models, in load order.
    pub fn model_names(&self) -> Vec<&str> {
        self.scorers.iter().map(|s| s.runner.name()).collect()
    }

    /// Number of models fused.
    pub fn model_count(&self) -> usize {
        self.scorers.len()
    }

    /// Probability in `0..=1` that `face` (a detector box in `image`) is a real, present face: the mean over the
    /// loaded models of their "real" softmax output.
    pub fn run(&mut self, image: &RgbImage, face: &Rect) -> Result<f32, VisionError> {
        ensure_image(image)?;
        if !(face.w > 0.0 && face.h > 0.0 && face.x.is_finite() && face.y.is_finite()) {
            return Err(VisionError::invalid_frame(
                FrameProblem::Size,
                format!("face box {face:?} is empty"),
            ));
        }
        let mut total = 0.0;
        for scorer in &mut self.scorers {
            let region = crop_region(
                face,
                scorer.crop_scale,
                image.width as f32,
                image.height as f32,
            );
            let outputs = scorer.runner.run(image, &region_map(&region, 80.0))?;
            let probs = match outputs.first() {
                Some(value) => scorer.runner.output(value)?,
                None => return Err(scorer.runner.error("the model produced no output")),
            };
            let real = probs.get(REAL).copied().filter(|p| p.is_finite());
            total += real.ok_or_else(|| scorer.runner.error("expected 3 class probabilities"))?;
        }
        Ok((total / self.scorers.len() as f32).clamp(0.0, 1.0))
    }
}

/// The MiniFASNet crop: the box scaled by `scale` about its centre (the scale reduced if the crop would be larger
/// than the image), then shifted to lie inside the image, as the models' authors crop for training.
pub fn crop_region(face: &Rect, scale: f32, width: f32, height: f32) -> Rect {
    let scale = scale.min(width / face.w).min(height / face.h);
    let (w, h) = (face.w * scale, face.h * scale);
    let (cx, cy) = face.center();
    let x = (cx - w * 0.5).clamp(0.0, (width - w).max(0.0));
    let y = (cy - h * 0.5).clamp(0.0, (height - h).max(0.0));
    Rect { x, y, w, h }
}

/// Continuous dst→src map stretching an `n`×`n` input over `region`.
fn region_map(region: &Rect, n: f32) -> Affine {
    Affine {
        m: [region.w / n, 0.0, region.x, 0.0, region.h / n, region.y],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_is_scaled_about_the_centre_and_kept_inside_the_image() {
        let face = Rect {
            x: 300.0,
            y: 200.0,
            w: 100.0,
            h: 120.0,
        };
        let r = crop_region(&face, 2.7, 1000.0, 1000.0);
        assert_eq!((r.w, r.h), (270.0, 324.0));
        assert_eq!(r.center(), face.center());
        // Near the left edge: shifted right, not shrunk.
        let edge = Rect {
            x: 10.0,
            y: 200.0,
            w: 100.0,
            h: 120.0,
        };
        let r = crop_region(&edge, 2.7, 1000.0, 1000.0);
        assert_eq!((r.x, r.w), (0.0, 270.0));
        // Larger than the image: the scale is reduced so the crop fits.
        let r = crop_region(&face, 4.0, 640.0, 480.0);
        assert!(
            (r.h - 480.0).abs() < 1e-3 && r.y == 0.0 && r.x >= 0.0 && r.x + r.w <= 640.0,
            "{r:?}"
        );
    }
}
