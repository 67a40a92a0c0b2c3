//! One loaded model ready to run repeatedly: its tract state, its input tensor and its preprocessing (from the
//! manifest) are kept between calls, so a frame costs the warp and the inference and nothing else.

use std::sync::Arc;

use tract_nnef::prelude::{TValue, Tensor, TypedSimpleState, tvec};

use super::align::sampling_map;
use super::image::{Affine, ChannelOrder, Layout, Normalize, RgbImage, packed_len, warp_to_tensor};
use super::model::{ModelEntry, load_stage_plan};
use super::{FrameProblem, VisionError};

/// A model's reusable run state, its single `f32` input buffer and how to fill it.
#[derive(Debug)]
pub(crate) struct Runner {
    name: String,
    state: TypedSimpleState,
    input: Arc<Tensor>,
    width: usize,
    height: usize,
    layout: Layout,
    order: ChannelOrder,
    norm: Normalize,
}

impl Runner {
    /// Verifies and loads the model as a stage runs it (see [`load_stage_plan`]: its input may be channels-first
    /// where the file's is not) and allocates its input once.
    pub(crate) fn load(entry: &ModelEntry, bytes: &[u8]) -> Result<Self, VisionError> {
        let (plan, layout) = load_stage_plan(entry, bytes)?;
        let fail = |e: tract_nnef::prelude::TractError| VisionError::ModelLoad {
            name: entry.name.clone(),
            reason: format!("{e:#}"),
        };
        let state = plan.spawn().map_err(fail)?;
        // The plan's own input shape: the file's, or its channels-first form.
        let shape = plan
            .model()
            .input_fact(0)
            .ok()
            .and_then(|f| f.shape.as_concrete().map(<[usize]>::to_vec))
            .unwrap_or_else(|| entry.input_shape.clone());
        let input = Tensor::zero::<f32>(&shape).map_err(fail)?;
        let (height, width) = entry.input_hw();
        Ok(Self {
            name: entry.name.clone(),
            state,
            input: Arc::new(input),
            width,
            height,
            layout,
            order: entry.channel_order,
            norm: entry.normalisation,
        })
    }

    /// A second runner of the same plan, with its own run state and input buffer (to run it on another thread).
    pub(crate) fn fork(&self) -> Self {
        Self {
            name: self.name.clone(),
            state: self.state.clone(),
            input: Arc::new(self.input.as_ref().clone()),
            ..*self
        }
    }

    /// The manifest name of the model.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Refuses a model whose input is not `width`×`height` (the stage's decoding depends on it).
    pub(crate) fn expect_input(self, width: usize, height: usize) -> Result<Self, VisionError> {
        if (self.width, self.height) != (width, height) {
            return Err(VisionError::ModelLoad {
                name: self.name,
                reason: format!(
                    "input is {}x{}, this stage needs {width}x{height}",
                    self.width, self.height
                ),
            });
        }
        Ok(self)
    }

    /// Samples `image` through `to_src` (continuous dst→src map from the model input, edge convention) into
    /// the input tensor with the model's layout, channel order and normalisation, then runs the model.
    pub(crate) fn run(
        &mut self,
        image: &RgbImage,
        to_src: &Affine,
    ) -> Result<Vec<TValue>, VisionError> {
        let (w, h, layout, order, norm) =
            (self.width, self.height, self.layout, self.order, self.norm);
        let name = &self.name;
        let buffer = Arc::make_mut(&mut self.input)
            .to_plain_array_view_mut::<f32>()
            .map_err(|e| inference_error(name, e))?
            .into_slice()
            .ok_or_else(|| inference_error(name, "input tensor is not contiguous"))?;
        warp_to_tensor(
            image,
            &sampling_map(to_src),
            w,
            h,
            layout,
            order,
            norm,
            buffer,
        );
        // The plan holds this clone only during the run, so the next `make_mut` does not copy.
        let input = TValue::from_const(Arc::clone(&self.input));
        let outputs = self
            .state
            .run(tvec![input])
            .map_err(|e| inference_error(&self.name, e))?;
        Ok(outputs.into_vec())
    }

    /// Reads an output tensor as a flat `f32` slice.
    pub(crate) fn output<'a>(&self, value: &'a TValue) -> Result<&'a [f32], VisionError> {
        value
            .try_as_plain_ram()
            .and_then(|view| view.as_slice::<f32>())
            .map_err(|e| inference_error(&self.name, e))
    }

    /// Builds an inference error for this model.
    pub(crate) fn error(&self, reason: impl Into<String>) -> VisionError {
        VisionError::Inference {
            name: self.name.clone(),
            reason: reason.into(),
        }
    }
}

/// Refuses an image no stage can work on: empty, or with a byte count that does not match its size.
pub(crate) fn ensure_image(image: &RgbImage) -> Result<(), VisionError> {
    match packed_len(image.width, image.height) {
        Some(len) if len > 0 && image.data.len() == len => Ok(()),
        _ => Err(VisionError::invalid_frame(
            FrameProblem::Size,
            format!(
                "{}x{} RGB image with {} bytes cannot be analysed",
                image.width,
                image.height,
                image.data.len()
            ),
        )),
    }
}

fn inference_error(name: &str, e: impl std::fmt::Display) -> VisionError {
    VisionError::Inference {
        name: name.to_owned(),
        reason: format!("{e:#}"),
    }
}
