//! Face embedding: an embedder model (MobileFaceNet, dlib's ResNet) on the face crop aligned as its manifest entry
//! says (`alignment`, preprocessing from the entry), output scaled to unit length. Optionally averages with the
//! embedding of the mirrored crop (flip-averaging).

use super::align::{Alignment, mirrored};
use super::image::{Affine, RgbImage};
use super::landmarks::Landmarks;
use super::model::{ModelEntry, ModelManifest, ModelSource, read_model_file};
use super::runner::{Runner, ensure_image};
use super::{FrameProblem, VisionError};

/// A unit-length face embedding; compare two with [`Embedding::similarity`].
#[derive(Clone, Debug, PartialEq)]
pub struct Embedding {
    /// The components (unit Euclidean norm).
    pub values: Vec<f32>,
}

impl Embedding {
    /// Scales `values` to unit length; `None` when they are all zero or not finite.
    pub fn from_raw(mut values: Vec<f32>) -> Option<Self> {
        let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
        if !(norm.is_finite() && norm > f32::EPSILON) {
            return None;
        }
        values.iter_mut().for_each(|v| *v /= norm);
        Some(Self { values })
    }

    /// Cosine similarity in `-1..=1` (the dot product of two unit vectors); 0 when the lengths differ.
    pub fn similarity(&self, other: &Embedding) -> f32 {
        if self.values.len() != other.values.len() {
            return 0.0;
        }
        self.values
            .iter()
            .zip(&other.values)
            .map(|(a, b)| a * b)
            .sum()
    }
}

/// One embedder model: its tract plan and input buffer, built once, and the crop geometry it takes.
#[derive(Debug)]
pub struct Embedder {
    runner: Runner,
    alignment: Alignment,
    size: u32,
    flip_average: bool,
    sum: Vec<f32>,
}

impl Embedder {
    /// The manifest name of the loaded model.
    pub fn model_name(&self) -> &str {
        self.runner.name()
    }

    /// Builds the embedder from its manifest entry and the model bytes (sha256-checked before parsing).
    pub fn new(entry: &ModelEntry, bytes: &[u8]) -> Result<Self, VisionError> {
        let (h, w) = entry.input_hw();
        let alignment = entry.alignment.ok_or_else(|| {
            VisionError::Manifest(format!("model {:?} has no alignment", entry.name))
        })?;
        if h != w {
            return Err(VisionError::Manifest(format!(
                "embedder {:?} takes a {w}×{h} input: the aligned crop is square",
                entry.name
            )));
        }
        Ok(Self {
            runner: Runner::load(entry, bytes)?.expect_input(w, h)?,
            alignment,
            size: w as u32,
            flip_average: false,
            sum: Vec::new(),
        })
    }

    /// When on, each embedding is the normalised sum of the crop's and the mirrored crop's (two inferences).
    pub fn set_flip_average(&mut self, on: bool) {
        self.flip_average = on;
    }

    /// Whether flip-averaging is on.
    pub fn flip_average(&self) -> bool {
        self.flip_average
    }

    /// Embeds the face whose mesh is `landmarks`: 5-point alignment to the model's template, then the model.
    pub fn run(
        &mut self,
        image: &RgbImage,
        landmarks: &Landmarks,
    ) -> Result<Embedding, VisionError> {
        ensure_image(image)?;
        let map = self.alignment.map(landmarks, self.size).ok_or_else(|| {
            VisionError::invalid_frame(
                FrameProblem::Size,
                "face landmarks are degenerate: cannot align",
            )
        })?;
        self.run_aligned(image, &map)
    }

    /// Embeds the face that `to_src` (continuous dst→src map from the model's input crop) brings onto the template.
    pub fn run_aligned(
        &mut self,
        image: &RgbImage,
        to_src: &Affine,
    ) -> Result<Embedding, VisionError> {
        ensure_image(image)?;
        self.sum.clear();
        self.accumulate(image, to_src)?;
        if self.flip_average {
            self.accumulate(image, &mirrored(to_src, self.size as f32))?;
        }
        Embedding::from_raw(self.sum.clone())
            .ok_or_else(|| self.runner.error("embedding is zero or not finite"))
    }

    /// Runs the model on one crop and adds its unit-normalised output to `self.sum`.
    fn accumulate(&mut self, image: &RgbImage, to_src: &Affine) -> Result<(), VisionError> {
        let outputs = self.runner.run(image, to_src)?;
        let Some(value) = outputs.first() else {
            return Err(self.runner.error("the model produced no output"));
        };
        let raw = self.runner.output(value)?;
        let norm = raw.iter().map(|v| v * v).sum::<f32>().sqrt();
        if !(norm.is_finite() && norm > f32::EPSILON) {
            return Err(self.runner.error("embedding is zero or not finite"));
        }
        if self.sum.is_empty() {
            self.sum.resize(raw.len(), 0.0);
        }
        if self.sum.len() != raw.len() {
            return Err(self.runner.error("embedding length changed between runs"));
        }
        self.sum
            .iter_mut()
            .zip(raw)
            .for_each(|(s, v)| *s += v / norm);
        Ok(())
    }
}

/// The embedding a face-match decision uses: one or more embedders fused. Each model's unit embedding is scaled
/// by the square root of its weight (weights sum to 1) and the parts are concatenated, so the result is a unit
/// vector whose cosine with another is the weighted mean of the models' cosines (score-level fusion that stays a
/// single dot product for the matcher and for `eval far`'s matrix products).
#[derive(Debug)]
pub struct FaceEmbedder {
    parts: Vec<(Embedder, f32)>,
}

impl FaceEmbedder {
    /// Loads the embedders `[calibration]` fuses (the manifest checked that they exist and that their weights are
    /// positive and sum to 1), with its flip-averaging setting, from `source`.
    pub fn load(manifest: &ModelManifest, source: &dyn ModelSource) -> Result<Self, VisionError> {
        let calibration = manifest.calibration()?;
        let parts = calibration
            .embedders
            .iter()
            .map(|part| {
                let entry = manifest.entry(&part.name)?;
                let mut embedder = Embedder::new(entry, &read_model_file(source, entry)?)?;
                embedder.set_flip_average(calibration.flip_average);
                Ok((embedder, part.weight.sqrt()))
            })
            .collect::<Result<Vec<_>, VisionError>>()?;
        Ok(Self { parts })
    }

    /// The manifest names of the fused models, in fusion order.
    pub fn model_names(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().map(|(e, _)| e.model_name())
    }

    /// Switches flip-averaging on or off for every model.
    pub fn set_flip_average(&mut self, on: bool) {
        self.parts
            .iter_mut()
            .for_each(|(e, _)| e.set_flip_average(on));
    }

    /// Whether flip-averaging is on.
    pub fn flip_average(&self) -> bool {
        self.parts.first().is_some_and(|(e, _)| e.flip_average())
    }

    /// Embeds the face whose mesh is `landmarks` with every model and fuses the results.
    pub fn run(
        &mut self,
        image: &RgbImage,
        landmarks: &Landmarks,
    ) -> Result<Embedding, VisionError> {
        let mut values = Vec::new();
        for (embedder, scale) in &mut self.parts {
            let part = embedder.run(image, landmarks)?;
            values.extend(part.values.iter().map(|v| v * *scale));
        }
        Ok(Embedding { values })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_are_unit_length_and_compare_by_cosine() {
        let a = Embedding::from_raw(vec![3.0, 4.0]).unwrap();
        assert!((a.values[0] - 0.6).abs() < 1e-6 && (a.values[1] - 0.8).abs() < 1e-6);
        let b = Embedding::from_raw(vec![-4.0, 3.0]).unwrap();
        assert!(a.similarity(&b).abs() < 1e-6);
        assert!((a.similarity(&a) - 1.0).abs() < 1e-6);
        assert_eq!(a.similarity(&Embedding::from_raw(vec![1.0]).unwrap()), 0.0);
        assert!(Embedding::from_raw(vec![0.0, 0.0]).is_none());
        assert!(Embedding::from_raw(vec![f32::NAN, 1.0]).is_none());
    }
}
