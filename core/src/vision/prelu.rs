//! PReLU fusion for the tract plans.
//!
//! Two spellings of PReLU reach tract as several element-wise passes over the activation, with temporaries:
//! - tf2onnx writes each TFLite PReLU as `Relu(x) + (x − |x|)·w`, `w` half the per-channel slope: three passes
//!   (`|x|`, `(x − |x|)·w`, `max(x, 0) + …`). MobileFaceNet has 33, a fifth of its time;
//! - tract expands ONNX's own `PRelu(x, a)` into `if 0 > x { x·a } else { x }`: two passes and a boolean
//!   temporary (the face mesh has 23, the iris model 53, each MiniFASNet model 33).
//!
//! [`fuse`] replaces each by one [`PRelu`] that rewrites the activation in place: `x·a` where `x < 0`, `x`
//! elsewhere. The results are bit-identical (for tf2onnx's form, `(x − |x|)·w = (2x)·w` and `x·(2w)` are the same
//! product, rounded once), so the models' outputs — and every figure measured with them — do not change.

use tract_nnef::prelude::{
    Arc, OutletId, TValue, TVec, Tensor, TractResult, TypedModel, TypedNode,
};
use tract_nnef::tract_core::internal::{
    DatumType, EvalContext, EvalOp, IntoTensor, Op, StaticName, TypedFact, TypedModelPatch,
    TypedOp, args_1, ensure, tvec,
};
use tract_nnef::tract_core::ops::binary::{BinMiniOp, TypedBinOp};
use tract_nnef::tract_core::ops::element_wise::ElementWiseOp;
use tract_nnef::tract_core::ops::logic::{CompGT, Iff};
use tract_nnef::tract_core::ops::math::{Abs, Add, Max, Mul, Sub};
use tract_nnef::tract_core::{as_op, op_as_typed_op, op_out_of_plan};

/// In-place PReLU: `x · slope` where `x < 0`, `x` elsewhere, with one slope per index of `axis` (or one for all).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PRelu {
    /// The slopes, `f32`, one-dimensional: one per channel, or a single slope for every element.
    slopes: Arc<Tensor>,
    /// The channel axis the slopes run along (unused with a single slope).
    axis: usize,
}

impl Op for PRelu {
    fn name(&self) -> StaticName {
        "PRelu".into()
    }

    op_as_typed_op!();
}

impl EvalOp for PRelu {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = args_1!(inputs);
        // The plan has dropped its own reference by now, so this takes the buffer without copying.
        let mut x = x.into_tensor();
        let shape = x.shape().to_vec();
        let slopes = self.slopes.try_as_plain_ram()?.as_slice::<f32>()?;
        {
            let mut ram = x.try_as_plain_ram_mut()?;
            let data = ram.as_slice_mut::<f32>()?;
            // Plain loops over contiguous runs, which the compiler vectorises: they measured 5–8× faster than
            // tract's leaky-ReLU kernel called once per channel plane (`bench vision --profile`, release: the iris
            // model's 53 PReLUs 1.25 → 0.17 ms per run, the face mesh's 23 0.75 → 0.15 ms).
            if let [slope] = slopes {
                data.iter_mut().for_each(|v| *v = leaky(*v, *slope));
            } else {
                ensure!(
                    !slopes.is_empty() && shape.get(self.axis) == Some(&slopes.len()),
                    "PRelu: {} slopes for axis {} of shape {shape:?}",
                    slopes.len(),
                    self.axis
                );
                let inner: usize = shape[self.axis + 1..].iter().product();
                if inner == 1 {
                    // Channels last: each row of `slopes.len()` values zips with the slopes.
                    for row in data.chunks_exact_mut(slopes.len()) {
                        row.iter_mut()
                            .zip(slopes)
                            .for_each(|(v, s)| *v = leaky(*v, *s));
                    }
                } else {
                    // Planes of `inner` values cycle through the channels in order.
                    for (plane, slope) in data.chunks_exact_mut(inner).zip(slopes.iter().cycle()) {
                        plane.iter_mut().for_each(|v| *v = leaky(*v, *slope));
                    }
                }
            }
        }
        Ok(tvec![x.into()])
    }
}

impl TypedOp for PRelu {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs.len() == 1 && inputs[0].datum_type == DatumType::F32,
            "PRelu takes one f32 input"
        );
        Ok(tvec![inputs[0].without_value()])
    }

    as_op!();
}

/// `v · slope` when negative, `v` otherwise (zero and NaN pass through, as in both unfused forms).
#[inline]
fn leaky(v: f32, slope: f32) -> f32 {
    if v < 0.0 { v * slope } else { v }
}

/// Replaces every `Relu(x) + (x − |x|)·w` (slopes `2w`) and every `if 0 > x { x·a } else { x }` (slopes `a`) of a
/// decluttered model by one [`PRelu`]; a model without them is returned unchanged.
pub(crate) fn fuse(mut model: TypedModel) -> TractResult<TypedModel> {
    while let Some((node, x, op)) = model
        .nodes()
        .iter()
        .find_map(|n| tf2onnx_prelu_at(&model, n).or_else(|| onnx_prelu_at(&model, n)))
    {
        let patch = TypedModelPatch::replace_single_op(&model, model.node(node), &[x], op)?;
        patch.apply(&mut model)?;
    }
    model.compact()?;
    Ok(model)
}

/// When `add` is the final `Add` of tf2onnx's PReLU (its inner nodes feeding nothing else): the node, `x`, the op.
fn tf2onnx_prelu_at(model: &TypedModel, add: &TypedNode) -> Option<(usize, OutletId, PRelu)> {
    if !is_bin::<Add>(add) || add.inputs.len() != 2 {
        return None;
    }
    let only_use = |o: OutletId| model.outlet_successors(o).len() == 1;
    let (relu, scaled) = [
        (add.inputs[0], add.inputs[1]),
        (add.inputs[1], add.inputs[0]),
    ]
    .into_iter()
    .find(|(r, _)| is_bin::<Max>(model.node(r.node)))?;
    if !(only_use(relu) && only_use(scaled)) {
        return None;
    }
    // Relu(x) = max(x, 0).
    let relu = model.node(relu.node);
    let (x, _, zero) = const_operand(model, relu)?;
    if !zero.iter().all(|z| *z == 0.0) {
        return None;
    }
    // (x − |x|) · w.
    let mul = model.node(scaled.node);
    if !is_bin::<Mul>(mul) {
        return None;
    }
    let (diff, w_outlet, w) = const_operand(model, mul)?;
    let sub = model.node(diff.node);
    if !(only_use(diff) && is_bin::<Sub>(sub) && sub.inputs.len() == 2 && sub.inputs[0] == x) {
        return None;
    }
    let abs = model.node(sub.inputs[1].node);
    let is_abs = abs
        .op_as::<ElementWiseOp>()
        .is_some_and(|op| op.0.is::<Abs>());
    if !(is_abs && abs.inputs == [x] && only_use(sub.inputs[1])) {
        return None;
    }
    let (half, axis) = in_place_slopes(model, x, add, w_outlet, &w)?;
    let slopes: Vec<f32> = half.iter().map(|w| 2.0 * w).collect();
    Some((add.id, x, prelu(&slopes, axis)))
}

/// When `iff` is the `Iff` of tract's expansion of ONNX `PRelu` (`0 > x`, `x·a`, `x`; the test and the product
/// feeding nothing else): the node, `x`, the op.
fn onnx_prelu_at(model: &TypedModel, iff: &TypedNode) -> Option<(usize, OutletId, PRelu)> {
    if !iff.op_is::<Iff>() {
        return None;
    }
    let [test, product, x] = iff.inputs.as_slice() else {
        return None;
    };
    let only_use = |o: &OutletId| model.outlet_successors(*o).len() == 1;
    let test_node = model.node(test.node);
    let mul = model.node(product.node);
    if !(only_use(test) && only_use(product) && is_bin::<CompGT>(test_node) && is_bin::<Mul>(mul)) {
        return None;
    }
    // 0 > x.
    let [zero, tested] = test_node.inputs.as_slice() else {
        return None;
    };
    let zero = model.outlet_fact(*zero).ok()?.konst.clone()?;
    let zero = zero.try_as_plain_ram().ok()?;
    if tested != x || !zero.as_slice::<f32>().ok()?.iter().all(|z| *z == 0.0) {
        return None;
    }
    // x · a.
    let (multiplied, a_outlet, a) = const_operand(model, mul)?;
    if multiplied != *x {
        return None;
    }
    let (slopes, axis) = in_place_slopes(model, *x, iff, a_outlet, &a)?;
    Some((iff.id, *x, prelu(&slopes, axis)))
}

/// The constant `w` (at `w_outlet`) as slopes along one axis of `x`, when `x` is `f32` with the concrete shape of
/// `out`'s output (so the fused op can rewrite it in place) and `w` varies along at most one axis.
fn in_place_slopes(
    model: &TypedModel,
    x: OutletId,
    out: &TypedNode,
    w_outlet: OutletId,
    w: &[f32],
) -> Option<(Vec<f32>, usize)> {
    let fact = model.outlet_fact(x).ok()?;
    let shape = fact.shape.as_concrete()?;
    if fact.datum_type != DatumType::F32 || out.outputs[0].fact.shape.as_concrete()? != shape {
        return None;
    }
    let w_shape = model
        .outlet_fact(w_outlet)
        .ok()?
        .shape
        .as_concrete()?
        .to_vec();
    slopes_along(shape, &w_shape, w)
}

/// The op with these slopes along `axis`.
fn prelu(slopes: &[f32], axis: usize) -> PRelu {
    PRelu {
        slopes: Arc::new(Tensor::from(tract_nnef::tract_core::ndarray::arr1(slopes))),
        axis,
    }
}

/// Whether `node` is a binary op of kind `B`.
fn is_bin<B: BinMiniOp>(node: &TypedNode) -> bool {
    node.op_as::<TypedBinOp>().is_some_and(|op| op.0.is::<B>())
}

/// For a two-input node with exactly one constant input: the other input, the constant's outlet and its `f32`
/// values.
fn const_operand(model: &TypedModel, node: &TypedNode) -> Option<(OutletId, OutletId, Vec<f32>)> {
    let [a, b] = node.inputs.as_slice() else {
        return None;
    };
    let konst = |o: &OutletId| model.outlet_fact(*o).ok().and_then(|f| f.konst.clone());
    let (x, c, value) = match (konst(a), konst(b)) {
        (None, Some(v)) => (*a, *b, v),
        (Some(v), None) => (*b, *a, v),
        _ => return None,
    };
    if value.datum_type() != DatumType::F32 {
        return None;
    }
    let values = value
        .try_as_plain_ram()
        .ok()?
        .as_slice::<f32>()
        .ok()?
        .to_vec();
    Some((x, c, values))
}

/// The values of `w` and their axis in `shape`, when `w` (of shape `w_shape`, broadcast from the right) varies
/// along at most one axis, over its whole length.
fn slopes_along(shape: &[usize], w_shape: &[usize], w: &[f32]) -> Option<(Vec<f32>, usize)> {
    if w.is_empty() || w_shape.len() > shape.len() || w.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let offset = shape.len() - w_shape.len();
    let varying: Vec<usize> = w_shape
        .iter()
        .enumerate()
        .filter(|(_, d)| **d != 1)
        .map(|(i, _)| i + offset)
        .collect();
    let slopes = w.to_vec();
    match varying.as_slice() {
        [] if slopes.len() == 1 => Some((slopes, 0)),
        [axis] if shape[*axis] == slopes.len() => Some((slopes, *axis)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use tract_nnef::prelude::*;

    use super::*;

    fn run(op: &PRelu, x: Tensor) -> Vec<f32> {
        let out = op
            .eval(&EvalContext::out_of_plan(), tvec![x.into()])
            .unwrap();
        out[0]
            .try_as_plain_ram()
            .unwrap()
            .as_slice::<f32>()
            .unwrap()
            .to_vec()
    }

    fn op(slopes: &[f32], axis: usize) -> PRelu {
        PRelu {
            slopes: Arc::new(Tensor::from(tract_nnef::tract_core::ndarray::arr1(slopes))),
            axis,
        }
    }

    fn tensor(shape: &[usize], values: &[f32]) -> Tensor {
        Tensor::from_shape(shape, values).unwrap()
    }

    #[test]
    fn slopes_apply_along_their_axis() {
        let x = [1.0, -1.0, -2.0, 3.0, -4.0, -0.5];
        // Channels last: [1, 3, 2], slopes per last index.
        assert_eq!(
            run(&op(&[0.5, 2.0], 2), tensor(&[1, 3, 2], &x)),
            [1.0, -2.0, -1.0, 3.0, -2.0, -1.0]
        );
        // Channels first: [1, 2, 3], slopes per middle index.
        assert_eq!(
            run(&op(&[0.5, 2.0], 1), tensor(&[1, 2, 3], &x)),
            [1.0, -0.5, -1.0, 3.0, -8.0, -1.0]
        );
        assert_eq!(
            run(&op(&[0.25], 0), tensor(&[6], &x)),
            [1.0, -0.25, -0.5, 3.0, -1.0, -0.125]
        );
        assert!(
            op(&[], 1)
                .eval(
                    &EvalContext::out_of_plan(),
                    tvec![tensor(&[1, 2, 3], &x).into()]
                )
                .is_err()
        );
        assert!(
            op(&[1.0, 2.0, 3.0], 1)
                .eval(
                    &EvalContext::out_of_plan(),
                    tvec![tensor(&[1, 2, 3], &x).into()]
                )
                .is_err()
        );
    }

    #[test]
    fn slopes_must_vary_along_one_whole_axis() {
        let shape = [1, 4, 4, 2];
        assert_eq!(
            slopes_along(&shape, &[1, 1, 1, 2], &[1.0, -0.5]),
            Some((vec![1.0, -0.5], 3))
        );
        assert_eq!(slopes_along(&shape, &[2, 1, 1], &[1.0, 3.0]), None);
        assert_eq!(
            slopes_along(&shape, &[4, 1], &[1.0; 4]),
            Some((vec![1.0; 4], 2))
        );
        assert_eq!(slopes_along(&shape, &[1, 4, 1, 2], &[1.0; 8]), None);
        assert_eq!(slopes_along(&shape, &[1], &[f32::NAN]), None);
        assert_eq!(slopes_along(&shape, &[1], &[0.5]), Some((vec![0.5], 0)));
        assert_eq!(slopes_along(&[1, 0], &[1, 0], &[]), None);
    }
}
