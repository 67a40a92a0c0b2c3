//! 3×3, stride-2 depthwise convolution for the tract plans.
//!
//! BlazeFace, the face mesh and both MiniFASNets halve their feature maps with channels-first 3×3 depthwise
//! convolutions of stride 2. tract 0.23 vectorises its depthwise kernel at stride 1 only; at stride 2 it walks
//! every output point and tap one at a time. [`fuse`] replaces each such convolution by one [`Depthwise3x3S2`],
//! which computes eight output points at once (AVX where the CPU has it, a portable loop elsewhere). The
//! arithmetic is tract's, in tract's order: the bias, then one multiply and one add per tap in the kernel's
//! row-major order, taps outside the padded input skipped, no fused multiply-add. The outputs are bit-identical to
//! tract's (a test runs the models both ways), so no figure changes.

use super::conv_fusion::ConvNode;
use tract_nnef::prelude::{TValue, TVec, Tensor, TractResult, TypedModel};
use tract_nnef::tract_core::internal::{
    DatumType, EvalContext, EvalOp, Op, StaticName, TypedFact, TypedOp, args_3, bail, ensure, tvec,
};
use tract_nnef::tract_core::{as_op, op_as_typed_op, op_out_of_plan};

/// Depthwise convolution of an `f32` `[N, C, H, W]` tensor by a `[C, 1, 3, 3]` kernel with stride 2 on both axes,
/// zero padding `top`/`left` before (and whatever the output size implies after), plus a bias of `C` values (or
/// one for all): `[N, C, out_h, out_w]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Depthwise3x3S2 {
    /// Rows of padding above the input.
    top: usize,
    /// Columns of padding left of the input.
    left: usize,
    /// Output rows.
    out_h: usize,
    /// Output columns.
    out_w: usize,
}

impl Op for Depthwise3x3S2 {
    fn name(&self) -> StaticName {
        "Depthwise3x3S2".into()
    }

    op_as_typed_op!();
}

impl EvalOp for Depthwise3x3S2 {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (x, kernel, bias) = args_3!(inputs);
        let &[n, c, h, w] = x.shape() else {
            bail!("Depthwise3x3S2 takes a rank-4 input, got {:?}", x.shape());
        };
        ensure!(
            kernel.len() == c * 9 && (bias.len() == c || bias.len() == 1),
            "Depthwise3x3S2: {c} channels, a kernel of {} values and a bias of {}",
            kernel.len(),
            bias.len()
        );
        let (x, kernel, bias) = (
            x.try_as_plain_ram()?,
            kernel.try_as_plain_ram()?,
            bias.try_as_plain_ram()?,
        );
        let (src, kernel, bias) = (
            x.as_slice::<f32>()?,
            kernel.as_slice::<f32>()?,
            bias.as_slice::<f32>()?,
        );
        let mut out = Tensor::zero::<f32>(&[n, c, self.out_h, self.out_w])?;
        {
            let mut out_ram = out.try_as_plain_ram_mut()?;
            let dst = out_ram.as_slice_mut::<f32>()?;
            let geometry = Geometry {
                h,
                w,
                top: self.top,
                left: self.left,
                out_w: self.out_w,
            };
            let plane_out = self.out_h * self.out_w;
            if plane_out > 0 && h * w > 0 {
                let planes = src.chunks_exact(h * w).zip(dst.chunks_exact_mut(plane_out));
                for (plane, (input, output)) in planes.enumerate() {
                    let ch = plane % c;
                    let taps: &[f32; 9] = kernel[ch * 9..][..9].try_into()?;
                    let b = if bias.len() == 1 { bias[0] } else { bias[ch] };
                    geometry.plane(input, output, taps, b);
                }
            }
        }
        Ok(tvec![out.into()])
    }
}

impl TypedOp for Depthwise3x3S2 {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs.len() == 3 && inputs.iter().all(|f| f.datum_type == DatumType::F32),
            "Depthwise3x3S2 takes three f32 inputs"
        );
        let shape = inputs[0].shape.as_concrete();
        let Some(&[n, c, _, _]) = shape else {
            bail!("Depthwise3x3S2 takes a concrete rank-4 shape, got {shape:?}");
        };
        Ok(tvec![TypedFact::dt_shape(
            DatumType::F32,
            [n, c, self.out_h, self.out_w]
        )])
    }

    as_op!();
}

/// One channel plane's shape and padding.
struct Geometry {
    h: usize,
    w: usize,
    top: usize,
    left: usize,
    out_w: usize,
}

impl Geometry {
    /// Convolves one `h × w` plane into its `out_h × out_w` output.
    fn plane(&self, input: &[f32], output: &mut [f32], taps: &[f32; 9], bias: f32) {
        // Output columns whose three taps all fall inside the input: `left ≤ 2·x` and `2·x + 2 − left < w`.
        let lo = self.left.div_ceil(2).min(self.out_w);
        let hi = if self.w + self.left >= 3 {
            ((self.w + self.left - 3) / 2 + 1).clamp(lo, self.out_w)
        } else {
            lo
        };
        for (oy, out_row) in output.chunks_exact_mut(self.out_w).enumerate() {
            // The input rows under the kernel's three rows, `None` where they fall in the padding.
            let rows: [Option<&[f32]>; 3] = std::array::from_fn(|ky| {
                (2 * oy + ky)
                    .checked_sub(self.top)
                    .filter(|r| *r < self.h)
                    .map(|r| &input[r * self.w..][..self.w])
            });
            for x in (0..lo).chain(hi..self.out_w) {
                out_row[x] = self.point(&rows, taps, bias, x);
            }
            interior(&rows, taps, bias, self.left, &mut out_row[lo..hi], lo);
        }
    }

    /// One output point the slow way: every tap inside the input, in order.
    fn point(&self, rows: &[Option<&[f32]>; 3], taps: &[f32; 9], bias: f32, x: usize) -> f32 {
        let mut sum = bias;
        for (ky, row) in rows.iter().enumerate() {
            let Some(row) = row else { continue };
            for kx in 0..3 {
                if let Some(col) = (2 * x + kx).checked_sub(self.left).filter(|c| *c < self.w) {
                    sum += taps[ky * 3 + kx] * row[col];
                }
            }
        }
        sum
    }
}

/// The interior output points `first..first + out.len()` of one row, whose taps are all inside the input.
fn interior(
    rows: &[Option<&[f32]>; 3],
    taps: &[f32; 9],
    bias: f32,
    left: usize,
    out: &mut [f32],
    first: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX, checked just above.
        unsafe { avx::interior(rows, taps, bias, left, out, first) };
        return;
    }
    interior_portable(rows, taps, bias, left, out, first, 0);
}

/// [`interior`] from output point `from` of `out` on, one point at a time.
fn interior_portable(
    rows: &[Option<&[f32]>; 3],
    taps: &[f32; 9],
    bias: f32,
    left: usize,
    out: &mut [f32],
    first: usize,
    from: usize,
) {
    for (i, o) in out.iter_mut().enumerate().skip(from) {
        let start = 2 * (first + i) - left;
        let mut sum = bias;
        for (ky, row) in rows.iter().enumerate() {
            let Some(row) = row else { continue };
            let p = &row[start..start + 3];
            sum += taps[ky * 3] * p[0];
            sum += taps[ky * 3 + 1] * p[1];
            sum += taps[ky * 3 + 2] * p[2];
        }
        *o = sum;
    }
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::*;

    /// The even-indexed elements `p[0], p[2], …, p[14]` of the sixteen at `p`, and the odd ones.
    #[inline]
    #[target_feature(enable = "avx")]
    unsafe fn split(p: *const f32) -> (__m256, __m256) {
        // SAFETY: the caller makes `p[0..16]` readable.
        unsafe {
            let a = _mm256_loadu_ps(p);
            let b = _mm256_loadu_ps(p.add(8));
            let lo = _mm256_permute2f128_ps(a, b, 0x20);
            let hi = _mm256_permute2f128_ps(a, b, 0x31);
            (
                _mm256_shuffle_ps(lo, hi, 0x88),
                _mm256_shuffle_ps(lo, hi, 0xdd),
            )
        }
    }

    /// [`super::interior`] eight points at a time; a last block of fewer than eight is recomputed from eight
    /// points back when it fits (the same values written twice), else left to the portable loop.
    ///
    /// # Safety
    /// The CPU must have AVX.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn interior(
        rows: &[Option<&[f32]>; 3],
        taps: &[f32; 9],
        bias: f32,
        left: usize,
        out: &mut [f32],
        first: usize,
    ) {
        let n = out.len();
        let w = rows.iter().flatten().map(|r| r.len()).next().unwrap_or(0);
        // A block of eight points from `i` reads `row[start..start + 18]`, `start = 2·(first + i) − left`.
        let fits = |i: usize| 2 * (first + i) - left + 18 <= w;
        let mut i = 0;
        let mut done = 0;
        while i + 8 <= n && fits(i) {
            // SAFETY: AVX is enabled on this function; `fits` keeps every load inside the row.
            unsafe {
                block(
                    rows,
                    taps,
                    bias,
                    2 * (first + i) - left,
                    out.as_mut_ptr().add(i),
                )
            };
            done = i + 8;
            i += 8;
        }
        if done < n && n >= 8 && fits(n - 8) {
            // SAFETY: as above, for the last eight points.
            unsafe {
                block(
                    rows,
                    taps,
                    bias,
                    2 * (first + n - 8) - left,
                    out.as_mut_ptr().add(n - 8),
                )
            };
            done = n;
        }
        super::interior_portable(rows, taps, bias, left, out, first, done);
    }

    /// Eight output points at `out` whose first kernel column is at `start` of each row.
    ///
    /// # Safety
    /// AVX; `start + 18 ≤` the rows' length; `out[0..8]` writable.
    #[inline]
    #[target_feature(enable = "avx")]
    unsafe fn block(
        rows: &[Option<&[f32]>; 3],
        taps: &[f32; 9],
        bias: f32,
        start: usize,
        out: *mut f32,
    ) {
        // SAFETY: the caller's bounds.
        unsafe {
            let mut sum = _mm256_set1_ps(bias);
            for (ky, row) in rows.iter().enumerate() {
                let Some(row) = row else { continue };
                let p = row.as_ptr().add(start);
                let (even, odd) = split(p);
                let (next_even, _) = split(p.add(2));
                sum = _mm256_add_ps(sum, _mm256_mul_ps(_mm256_set1_ps(taps[ky * 3]), even));
                sum = _mm256_add_ps(sum, _mm256_mul_ps(_mm256_set1_ps(taps[ky * 3 + 1]), odd));
                sum = _mm256_add_ps(
                    sum,
                    _mm256_mul_ps(_mm256_set1_ps(taps[ky * 3 + 2]), next_even),
                );
            }
            _mm256_storeu_ps(out, sum);
        }
    }
}

/// Replaces every channels-first, `f32`, 3×3, stride-2 depthwise `Conv` of a decluttered model (constant `OIHW`
/// kernel and bias) by one [`Depthwise3x3S2`]; a model without them is returned unchanged.
pub(crate) fn fuse(model: TypedModel) -> TractResult<TypedModel> {
    super::conv_fusion::replace(model, 3, replacement)
}

/// The [`Depthwise3x3S2`] that computes `node` exactly, if it is such a convolution.
fn replacement(node: &ConvNode) -> Option<Depthwise3x3S2> {
    let ConvNode {
        conv,
        x,
        kernel,
        bias,
    } = *node;
    let spec = &conv.pool_spec;
    let &[_, c, h, w] = x.shape.as_concrete()? else {
        return None;
    };
    let eligible = conv.group == c
        && spec.input_channels == c
        && spec.output_channels == c
        && spec.kernel_shape.as_slice() == [3, 3]
        && spec.strides.as_deref() == Some(&[2, 2][..])
        && kernel.shape() == [c, 1, 3, 3]
        && (bias.len() == c || bias.len() == 1);
    if !eligible {
        return None;
    }
    let padding = spec.computed_padding(&[h, w]);
    let [rows, cols] = padding.as_slice() else {
        return None;
    };
    Some(Depthwise3x3S2 {
        top: rows.pad_before,
        left: cols.pad_before,
        out_h: rows.convoluted,
        out_w: cols.convoluted,
    })
}

#[cfg(test)]
mod tests {
    use tract_nnef::prelude::*;
    use tract_nnef::tract_core::ops::cnn::KernelFormat;
    use tract_nnef::tract_core::ops::cnn::conv::Conv;
    use tract_nnef::tract_core::ops::cnn::{PaddingSpec, PoolSpec};
    use tract_nnef::tract_core::ops::nn::DataFormat;

    use super::*;

    /// A one-node model: tract's depthwise `Conv` of an `[n, c, h, w]` input with the given padding.
    fn model(shape: [usize; 4], padding: PaddingSpec, seed: u32) -> TypedModel {
        let c = shape[1];
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact(shape)).unwrap();
        let kernel = crate::vision::model::pseudo_random_input(&[c, 1, 3, 3], seed).unwrap();
        let bias = crate::vision::model::pseudo_random_input(&[c], seed ^ 0x55).unwrap();
        let k = model.add_const("k", kernel).unwrap();
        let b = model.add_const("b", bias).unwrap();
        let conv = Conv {
            pool_spec: PoolSpec {
                data_format: DataFormat::NCHW,
                kernel_shape: tvec![3, 3],
                padding,
                dilations: None,
                strides: Some(tvec![2, 2]),
                input_channels: c,
                output_channels: c,
            },
            kernel_fmt: KernelFormat::OIHW,
            group: c,
            q_params: None,
        };
        let y = model.wire_node("conv", conv, &[x, k, b]).unwrap();
        model.select_output_outlets(&y).unwrap();
        model
    }

    fn count(plan: &TypedModel, op: &str) -> usize {
        plan.nodes().iter().filter(|n| n.op().name() == op).count()
    }

    /// Runs the model as tract plans it and with [`fuse`] first: (ours, tract's).
    fn both(shape: [usize; 4], padding: PaddingSpec) -> (Vec<f32>, Vec<f32>) {
        let plain = model(shape, padding.clone(), 7).into_optimized().unwrap();
        assert_eq!(count(&plain, "DepthWiseConv"), 1, "{shape:?} {padding:?}");
        let fused = fuse(model(shape, padding.clone(), 7).into_decluttered().unwrap())
            .unwrap()
            .into_optimized()
            .unwrap();
        assert_eq!(
            (
                count(&fused, "Depthwise3x3S2"),
                count(&fused, "DepthWiseConv")
            ),
            (1, 0),
            "{shape:?} {padding:?}"
        );
        let input = crate::vision::model::pseudo_random_input(&shape, 0x2545_f491).unwrap();
        let run = |m: TypedModel| {
            let out = m
                .into_runnable()
                .unwrap()
                .run(tvec![input.clone().into()])
                .unwrap();
            let ram = out[0].try_as_plain_ram().unwrap();
            ram.as_slice::<f32>().unwrap().to_vec()
        };
        (run(fused), run(plain))
    }

    #[test]
    fn equals_tracts_depthwise_bit_for_bit() {
        let same_even = PaddingSpec::Explicit(tvec![0, 0], tvec![1, 1]);
        let one_each = PaddingSpec::Explicit(tvec![1, 1], tvec![1, 1]);
        for (shape, padding) in [
            ([1, 24, 64, 64], same_even.clone()),
            ([1, 3, 96, 96], same_even.clone()),
            ([1, 8, 40, 40], one_each.clone()),
            ([2, 3, 17, 13], one_each.clone()),
            ([1, 5, 16, 16], same_even),
            ([1, 2, 9, 35], PaddingSpec::Valid),
            ([1, 4, 3, 3], one_each),
            ([1, 4, 21, 50], PaddingSpec::SameUpper),
        ] {
            let (ours, theirs) = both(shape, padding.clone());
            assert!(ours.iter().any(|v| *v != 0.0), "{shape:?}");
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&ours), bits(&theirs), "{shape:?} {padding:?}");
        }
    }

    #[test]
    fn leaves_other_convolutions_to_tract() {
        // Stride 1: tract's own kernel is vectorised there.
        let mut m = model([1, 4, 8, 8], PaddingSpec::Valid, 3);
        let conv = m.nodes_mut().iter_mut().find(|n| n.name == "conv").unwrap();
        let mut op = conv.op_as::<Conv>().unwrap().clone();
        op.pool_spec.strides = Some(tvec![1, 1]);
        conv.op = Box::new(op);
        let fused = fuse(m.into_decluttered().unwrap()).unwrap();
        assert_eq!(count(&fused, "Depthwise3x3S2"), 0);
    }
}
