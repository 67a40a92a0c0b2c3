//! Channels-first plan inputs.
//!
//! BlazeFace, the face mesh, the iris model and dlib's ResNet take a channels-last `[1, h, w, 3]` image (their
//! files' layout, which the manifest records) and transpose it to channels-first as their first op: 0.08–0.2 ms per
//! run (`facepay bench vision --profile`, `MoveAxis`). The runner writes the input tensor itself, so it can write it
//! channels-first instead: [`channels_first`] drops that transpose and gives the plan a `[1, 3, h, w]` input. The
//! values the network sees are the same, so its outputs are bit-identical (a test runs the models both ways).

use tract_nnef::prelude::{TractResult, TypedModel};
use tract_nnef::tract_core::internal::{AxisOp, TypedFact};
use tract_nnef::tract_core::ops::identity::Identity;
use tract_nnef::tract_core::ops::source::TypedSource;

/// Drops a decluttered model's leading channels-last → channels-first transpose, if its only input goes through
/// one and nothing else, and makes that input channels-first; whether it did.
pub(crate) fn channels_first(mut model: TypedModel) -> TractResult<(TypedModel, bool)> {
    let &[input] = model.input_outlets()? else {
        return Ok((model, false));
    };
    let &[transpose] = model.outlet_successors(input) else {
        return Ok((model, false));
    };
    let fact = model.outlet_fact(input)?;
    let shape = fact.shape.as_concrete().map(|s| s.to_vec());
    let is_transpose = model.node(transpose.node).op_as::<AxisOp>() == Some(&AxisOp::Move(3, 1));
    let (Some(&[n, h, w, c]), true) = (shape.as_deref(), is_transpose) else {
        return Ok((model, false));
    };
    let nchw = TypedFact::dt_shape(fact.datum_type, [n, c, h, w]);
    let source = &mut model.nodes_mut()[input.node];
    source.op = Box::new(TypedSource::new(nchw.clone()));
    source.outputs[input.slot].fact = nchw;
    // The transpose's output fact is already `[n, c, h, w]`; the optimiser removes the identity.
    model.nodes_mut()[transpose.node].op = Box::new(Identity);
    Ok((model, true))
}
