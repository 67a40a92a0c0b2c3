//! 2×2, stride-2 max pooling for the tract plans.
//!
//! BlazeFace (3), the face mesh (5) and the iris model (6) halve their feature maps with a channels-first 2×2
//! max pool. tract runs each through its generic patch-based pooling: about 0.5 ms of the detector's 3.8, 0.8 ms
//! of the mesh's 4.7 and 0.35 ms of each iris run (`facepay bench vision --profile`), some 2 ms of every frame.
//! [`fuse`] replaces each by one [`MaxPool2x2`], a single pass over row pairs. The maximum of four values is
//! exact, so the outputs are bit-identical to tract's (a test runs the models both ways) and no figure changes.

use tract_nnef::prelude::{TValue, TVec, Tensor, TractResult, TypedModel, TypedNode};
use tract_nnef::tract_core::internal::{
    DatumType, EvalContext, EvalOp, IntoTensor, Op, StaticName, TypedFact, TypedModelPatch,
    TypedOp, args_1, bail, ensure, tvec,
};
use tract_nnef::tract_core::ops::cnn::{MaxPool, PaddingSpec};
use tract_nnef::tract_core::ops::nn::DataFormat;
use tract_nnef::tract_core::{as_op, op_as_typed_op, op_out_of_plan};

/// Max pooling of an `f32` `[N, C, H, W]` tensor over 2×2 windows with stride 2, no padding: `[N, C, H/2, W/2]`
/// (a last odd row or column is dropped, as with tract's `Valid` padding).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MaxPool2x2;

impl Op for MaxPool2x2 {
    fn name(&self) -> StaticName {
        "MaxPool2x2".into()
    }

    op_as_typed_op!();
}

impl EvalOp for MaxPool2x2 {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = args_1!(inputs).into_tensor();
        let &[n, c, h, w] = x.shape() else {
            bail!(
                "MaxPool2x2 takes a rank-4 tensor, got shape {:?}",
                x.shape()
            );
        };
        let (oh, ow) = (h / 2, w / 2);
        let ram = x.try_as_plain_ram()?;
        let src = ram.as_slice::<f32>()?;
        let mut out = Tensor::zero::<f32>(&[n, c, oh, ow])?;
        {
            let mut out_ram = out.try_as_plain_ram_mut()?;
            let dst = out_ram.as_slice_mut::<f32>()?;
            if oh > 0 && ow > 0 {
                for (plane, out_plane) in src.chunks_exact(h * w).zip(dst.chunks_exact_mut(oh * ow))
                {
                    for (rows, out_row) in plane
                        .chunks_exact(2 * w)
                        .zip(out_plane.chunks_exact_mut(ow))
                    {
                        let (top, bottom) = rows.split_at(w);
                        for ((o, t), b) in out_row
                            .iter_mut()
                            .zip(top.chunks_exact(2))
                            .zip(bottom.chunks_exact(2))
                        {
                            *o = max(max(t[0], t[1]), max(b[0], b[1]));
                        }
                    }
                }
            }
        }
        Ok(tvec![out.into()])
    }
}

/// The larger of two values; NaN only when both are (as a max pool over finite activations never sees).
#[inline]
fn max(a: f32, b: f32) -> f32 {
    if a >= b { a } else { b }
}

impl TypedOp for MaxPool2x2 {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs.len() == 1 && inputs[0].datum_type == DatumType::F32,
            "MaxPool2x2 takes one f32 input"
        );
        let shape = inputs[0].shape.as_concrete();
        let Some(&[n, c, h, w]) = shape else {
            bail!("MaxPool2x2 takes a concrete rank-4 shape, got {shape:?}");
        };
        Ok(tvec![TypedFact::dt_shape(
            DatumType::F32,
            [n, c, h / 2, w / 2]
        )])
    }

    as_op!();
}

/// Replaces every channels-first 2×2, stride-2, unpadded `MaxPool` on a concrete `f32` input of a decluttered
/// model by one [`MaxPool2x2`]; a model without them is returned unchanged.
pub(crate) fn fuse(mut model: TypedModel) -> TractResult<TypedModel> {
    while let Some(node) = model
        .nodes()
        .iter()
        .find(|n| is_2x2_pool(&model, n))
        .map(|n| n.id)
    {
        let input = model.node(node).inputs[0];
        let patch =
            TypedModelPatch::replace_single_op(&model, model.node(node), &[input], MaxPool2x2)?;
        patch.apply(&mut model)?;
    }
    model.compact()?;
    Ok(model)
}

/// Whether `node` is a `MaxPool` that [`MaxPool2x2`] computes exactly.
fn is_2x2_pool(model: &TypedModel, node: &TypedNode) -> bool {
    let Some(pool) = node.op_as::<MaxPool>() else {
        return false;
    };
    let spec = &pool.pool_spec;
    let unpadded = match &spec.padding {
        PaddingSpec::Valid => true,
        PaddingSpec::Explicit(before, after) => before.iter().chain(after).all(|p| *p == 0),
        PaddingSpec::ExplicitOnnxPool(before, after, ceil) => {
            !ceil && before.iter().chain(after).all(|p| *p == 0)
        }
        _ => false,
    };
    let input = node.inputs.first().and_then(|o| model.outlet_fact(*o).ok());
    pool.with_index_outputs.is_none()
        && node.inputs.len() == 1
        && spec.data_format == DataFormat::NCHW
        && spec.kernel_shape.as_slice() == [2, 2]
        && spec.strides.as_deref() == Some(&[2, 2][..])
        && spec
            .dilations
            .as_ref()
            .is_none_or(|d| d.iter().all(|d| *d == 1))
        && unpadded
        && input.is_some_and(|f| {
            f.datum_type == DatumType::F32 && f.shape.as_concrete().is_some_and(|s| s.len() == 4)
        })
}

#[cfg(test)]
mod tests {
    use tract_nnef::prelude::*;
    use tract_nnef::tract_core::ops::cnn::PoolSpec;

    use super::*;

    /// tract's own `MaxPool` and ours on the same input.
    fn both(shape: [usize; 4]) -> (Vec<f32>, Vec<f32>) {
        let input = crate::vision::model::pseudo_random_input(&shape, 0x9e37_79b9).unwrap();
        let theirs = MaxPool {
            pool_spec: PoolSpec {
                data_format: DataFormat::NCHW,
                kernel_shape: tvec![2, 2],
                padding: PaddingSpec::Valid,
                dilations: None,
                strides: Some(tvec![2, 2]),
                input_channels: shape[1],
                output_channels: shape[1],
            },
            with_index_outputs: None,
        };
        let run = |op: &dyn EvalOp| {
            let out = op
                .eval(&EvalContext::out_of_plan(), tvec![input.clone().into()])
                .unwrap();
            let ram = out[0].try_as_plain_ram().unwrap();
            (
                out[0].shape().to_vec(),
                ram.as_slice::<f32>().unwrap().to_vec(),
            )
        };
        let (their_shape, theirs) = run(&theirs);
        let (our_shape, ours) = run(&MaxPool2x2);
        assert_eq!(our_shape, their_shape, "{shape:?}");
        (ours, theirs)
    }

    #[test]
    fn equals_tracts_max_pool_on_even_and_odd_sizes() {
        for shape in [[1, 3, 8, 8], [1, 2, 7, 9], [2, 4, 5, 2], [1, 24, 64, 64]] {
            let (ours, theirs) = both(shape);
            assert!(!ours.is_empty());
            assert_eq!(ours, theirs, "{shape:?}");
        }
    }

    #[test]
    fn keeps_the_largest_of_each_window() {
        let x = Tensor::from_shape(
            &[1, 1, 2, 4],
            &[1.0f32, -5.0, 0.5, 2.0, 3.0, -1.0, -7.0, 0.25],
        )
        .unwrap();
        let out = MaxPool2x2
            .eval(&EvalContext::out_of_plan(), tvec![x.into()])
            .unwrap();
        let ram = out[0].try_as_plain_ram().unwrap();
        assert_eq!(ram.as_slice::<f32>().unwrap(), [3.0, 2.0]);
        // One row: no whole window, an empty output (tract's own MaxPool panics on this shape).
        let one_row = Tensor::from_shape(&[1, 1, 1, 6], &[0.0f32; 6]).unwrap();
        let out = MaxPool2x2
            .eval(&EvalContext::out_of_plan(), tvec![one_row.into()])
            .unwrap();
        assert_eq!(out[0].shape(), [1, 1, 0, 3]);
        let rank3 = Tensor::from_shape(&[1, 2, 2], &[0.0f32; 4]).unwrap();
        assert!(
            MaxPool2x2
                .eval(&EvalContext::out_of_plan(), tvec![rank3.into()])
                .is_err()
        );
    }
}
