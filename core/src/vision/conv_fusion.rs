//! Replacing tract's `Conv` nodes by ops of our own, at plan load (the shared part of [`super::depthwise`] and
//! [`super::stem`]).

use tract_nnef::prelude::{OutletId, Tensor, TractResult, TypedModel};
use tract_nnef::tract_core::internal::{DatumType, TypedFact, TypedModelPatch, TypedOp};
use tract_nnef::tract_core::ops::cnn::KernelFormat;
use tract_nnef::tract_core::ops::cnn::conv::Conv;
use tract_nnef::tract_core::ops::nn::DataFormat;

/// A convolution of a decluttered model as a replacement sees it: unquantised, channels-first (`NCHW`, or `CHW`
/// where tract dropped a batch axis of 1), undilated, `f32` throughout, with a constant `OIHW` kernel and a
/// constant bias (what every op of ours requires).
pub(crate) struct ConvNode<'a> {
    /// tract's op.
    pub conv: &'a Conv,
    /// Its data input.
    pub x: &'a TypedFact,
    /// Its kernel.
    pub kernel: &'a Tensor,
    /// Its bias.
    pub bias: &'a Tensor,
}

/// Replaces every `Conv` node of `model` for which `replacement` gives an op by that op, wired to the node's first
/// `inputs` inputs (data, kernel, bias); a model without such nodes is returned unchanged.
pub(crate) fn replace<O: TypedOp>(
    mut model: TypedModel,
    inputs: usize,
    replacement: impl Fn(&ConvNode) -> Option<O>,
) -> TractResult<TypedModel> {
    let candidate = |model: &TypedModel, id: usize| -> Option<O> {
        let node = model.node(id);
        let conv = node.op_as::<Conv>()?;
        let facts: Vec<&TypedFact> = node
            .inputs
            .iter()
            .map(|o| model.outlet_fact(*o).ok())
            .collect::<Option<_>>()?;
        let [x, kernel, bias] = facts.as_slice() else {
            return None;
        };
        let spec = &conv.pool_spec;
        let plain = conv.q_params.is_none()
            && conv.kernel_fmt == KernelFormat::OIHW
            && matches!(spec.data_format, DataFormat::NCHW | DataFormat::CHW)
            && spec
                .dilations
                .as_ref()
                .is_none_or(|d| d.iter().all(|d| *d == 1))
            && [x, kernel, bias]
                .iter()
                .all(|f| f.datum_type == DatumType::F32);
        let (Some(kernel), Some(bias), true) =
            (kernel.konst.as_deref(), bias.konst.as_deref(), plain)
        else {
            return None;
        };
        replacement(&ConvNode {
            conv,
            x,
            kernel,
            bias,
        })
    };
    while let Some((id, op)) =
        (0..model.nodes().len()).find_map(|id| candidate(&model, id).map(|op| (id, op)))
    {
        let node = model.node(id);
        let mut patch = TypedModelPatch::new(node.op().name());
        let wires = patch.taps(&model, &node.inputs[..inputs])?;
        let wire = patch.wire_node(node.name.clone(), op, &wires)?[0];
        patch.shunt_outside(&model, OutletId::new(id, 0), wire)?;
        patch.obliterate(id)?;
        patch.apply(&mut model)?;
    }
    model.compact()?;
    Ok(model)
}
