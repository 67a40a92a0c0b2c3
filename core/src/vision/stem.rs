//! The models' first convolution, on the image itself.
//!
//! BlazeFace (5×5, 3 → 24 channels), the face mesh (3×3, 3 → 16) and the iris model (3×3, 3 → 64) open with a
//! stride-2 convolution of the three colour planes. tract runs it as a matrix product over a lazily gathered
//! im2col, whose gather dominates: 0.83 ms of the detector's ~3 ms, 0.47 ms of the mesh's ~4 and 0.36 ms of each
//! iris run (`facepay bench vision --profile`). [`fuse`] replaces each by one [`StemConv`], which splits each
//! padded input row once into its stride phases, then sums 16 output points × 4 output channels at a time in
//! registers.
//!
//! The arithmetic is tract's matrix product's, in its order: per output point, a fused multiply-add per kernel tap
//! from zero, taps in `(input channel, row, column)` order, padding taps included as zeros, then the bias added.
//! The outputs are bit-identical to tract's (a test runs the models both ways), so no figure changes. That holds
//! where tract's product uses fused multiply-adds: the pass runs on x86-64 CPUs with AVX2 and FMA, and leaves the
//! convolution to tract anywhere else (including ARM, where it has not been compared).

// The op is built on every target (`fuse` asks the CPU at run time), but only x86-64 has its kernel.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

use super::conv_fusion::ConvNode;
use tract_nnef::prelude::{Arc, TValue, TVec, Tensor, TractResult, TypedModel};
use tract_nnef::tract_core::internal::{
    DatumType, EvalContext, EvalOp, Op, StaticName, TypedFact, TypedOp, args_1, bail, ensure, tvec,
};
use tract_nnef::tract_core::ops::nn::DataFormat;
use tract_nnef::tract_core::{as_op, op_as_typed_op, op_out_of_plan};

/// Output channels summed together (one register each per eight output points).
const CHANNELS: usize = 4;
/// The most input channels a stem takes (the image's colour planes).
const MAX_INPUT_CHANNELS: usize = 4;

/// Shape and padding of one stem convolution.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Geometry {
    /// Input channels.
    c: usize,
    /// Input rows.
    h: usize,
    /// Input columns.
    w: usize,
    /// Output channels, a multiple of [`CHANNELS`].
    out_c: usize,
    /// Output rows.
    out_h: usize,
    /// Output columns.
    out_w: usize,
    /// Kernel rows.
    kh: usize,
    /// Kernel columns.
    kw: usize,
    /// The stride on both axes.
    stride: usize,
    /// Zero rows above the input.
    top: usize,
    /// Zero columns left of the input.
    left: usize,
}

impl Geometry {
    /// Taps per output point.
    fn taps(&self) -> usize {
        self.c * self.kh * self.kw
    }
}

/// The stride phases of the input, which only the AVX2 kernel reads.
#[cfg(target_arch = "x86_64")]
impl Geometry {
    /// Padded input rows the kernel reaches.
    fn rows(&self) -> usize {
        self.stride * (self.out_h.max(1) - 1) + self.kh
    }

    /// Length of one phase row: every column a tap reads, `out_w + (kw − 1) / stride`.
    fn phase_len(&self) -> usize {
        self.out_w + (self.kw - 1) / self.stride
    }

    /// Splits each padded row of one `[c, h, w]` image into its stride phases, zeros in the padding: phase `p` of
    /// padded row `r` of channel `ci` holds padded columns `p, p + stride, p + 2·stride, …`.
    fn phases(&self, image: &[f32], out: &mut Vec<f32>) {
        let (rows, len, s) = (self.rows(), self.phase_len(), self.stride);
        out.clear();
        out.resize(self.c * rows * s * len, 0.0);
        for ci in 0..self.c {
            for r in 0..rows {
                let Some(y) = r.checked_sub(self.top).filter(|y| *y < self.h) else {
                    continue;
                };
                let src = &image[(ci * self.h + y) * self.w..][..self.w];
                let row = &mut out[((ci * rows) + r) * s * len..][..s * len];
                for (p, phase) in row.chunks_exact_mut(len).enumerate() {
                    // Phase column `j` is input column `s·j + p − left`: inside the input from `first` on.
                    let first = self.left.saturating_sub(p).div_ceil(s);
                    let Some(start) = (s * first + p).checked_sub(self.left) else {
                        continue;
                    };
                    if let (Some(dst), Some(src)) = (phase.get_mut(first..), src.get(start..)) {
                        for (v, x) in dst.iter_mut().zip(src.iter().step_by(s)) {
                            *v = *x;
                        }
                    }
                }
            }
        }
    }

    /// The phase row tap `(ci, ky, kx)` reads for output row `oy`, from its first output point on.
    fn tap_row<'a>(
        &self,
        phases: &'a [f32],
        ci: usize,
        ky: usize,
        kx: usize,
        oy: usize,
    ) -> &'a [f32] {
        let (rows, len) = (self.rows(), self.phase_len());
        let r = self.stride * oy + ky;
        let start = ((ci * rows + r) * self.stride + kx % self.stride) * len + kx / self.stride;
        &phases[start..][..self.out_w]
    }
}

/// A group-1, channels-first `f32` convolution of a `[1, c, h, w]` image with few channels, by a kernel repacked
/// as `[out_c / 4, taps, 4]` (the four channels of a block side by side, taps in `(ci, ky, kx)` order), plus a
/// bias per output channel: `[1, out_c, out_h, out_w]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StemConv {
    geometry: Geometry,
    weights: Arc<Tensor>,
    bias: Arc<Tensor>,
}

impl Op for StemConv {
    fn name(&self) -> StaticName {
        "StemConv".into()
    }

    op_as_typed_op!();
}

impl EvalOp for StemConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = args_1!(inputs);
        let g = &self.geometry;
        ensure!(
            x.shape() == [1, g.c, g.h, g.w],
            "StemConv expects [1, {}, {}, {}], got {:?}",
            g.c,
            g.h,
            g.w,
            x.shape()
        );
        #[cfg(target_arch = "x86_64")]
        if available() {
            return Ok(tvec![self.convolve(&x)?.into()]);
        }
        bail!("StemConv needs AVX2 and FMA, which `fuse` checks before using it")
    }
}

#[cfg(target_arch = "x86_64")]
impl StemConv {
    /// The convolution of `x` (of the geometry's shape), on a CPU with AVX2 and FMA.
    fn convolve(&self, x: &Tensor) -> TractResult<Tensor> {
        let g = &self.geometry;
        let ram = x.try_as_plain_ram()?;
        let image = ram.as_slice::<f32>()?;
        let weights = self.weights.try_as_plain_ram()?;
        let weights = weights.as_slice::<f32>()?;
        let bias = self.bias.try_as_plain_ram()?;
        let bias = bias.as_slice::<f32>()?;
        let mut phases = Vec::new();
        g.phases(image, &mut phases);
        // SAFETY: `convolve` writes every output point (all channel blocks, rows and columns) before it is read.
        let mut out = unsafe { Tensor::uninitialized::<f32>(&[1, g.out_c, g.out_h, g.out_w])? };
        {
            let mut out_ram = out.try_as_plain_ram_mut()?;
            let dst = out_ram.as_slice_mut::<f32>()?;
            // SAFETY: the caller checked AVX2 and FMA (`available`).
            unsafe { fma::convolve(g, &phases, weights, bias, dst) };
        }
        Ok(out)
    }
}

impl TypedOp for StemConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs.len() == 1 && inputs[0].datum_type == DatumType::F32,
            "StemConv takes one f32 input"
        );
        let g = &self.geometry;
        Ok(tvec![TypedFact::dt_shape(
            DatumType::F32,
            [1, g.out_c, g.out_h, g.out_w]
        )])
    }

    as_op!();
}

/// Whether this CPU runs [`StemConv`] (and tract's matrix product fuses its multiply-adds).
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod fma {
    use std::arch::x86_64::*;

    use super::{CHANNELS, Geometry};

    /// The whole convolution: blocks of four output channels × one output row, sixteen points at a time, then
    /// eight, then one.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn convolve(
        g: &Geometry,
        phases: &[f32],
        weights: &[f32],
        bias: &[f32],
        out: &mut [f32],
    ) {
        let taps = g.taps();
        let plane = g.out_h * g.out_w;
        let mut rows: Vec<&[f32]> = Vec::with_capacity(taps);
        for oy in 0..g.out_h {
            rows.clear();
            for ci in 0..g.c {
                for ky in 0..g.kh {
                    for kx in 0..g.kw {
                        rows.push(g.tap_row(phases, ci, ky, kx, oy));
                    }
                }
            }
            for block in 0..g.out_c / CHANNELS {
                let w = &weights[block * taps * CHANNELS..][..taps * CHANNELS];
                let b = &bias[block * CHANNELS..][..CHANNELS];
                let at = block * CHANNELS * plane + oy * g.out_w;
                let mut x = 0;
                while x + 16 <= g.out_w {
                    // SAFETY: AVX2 and FMA are enabled here; every row has `out_w` points from its start and
                    // `x + 16 ≤ out_w`; the four output rows are inside `out`.
                    unsafe { points::<2>(&rows, w, b, x, out.as_mut_ptr().add(at), plane) };
                    x += 16;
                }
                while x + 8 <= g.out_w {
                    // SAFETY: as above with eight points.
                    unsafe { points::<1>(&rows, w, b, x, out.as_mut_ptr().add(at), plane) };
                    x += 8;
                }
                for x in x..g.out_w {
                    for c in 0..CHANNELS {
                        let mut sum = 0.0f32;
                        for (t, row) in rows.iter().enumerate() {
                            sum = w[t * CHANNELS + c].mul_add(row[x], sum);
                        }
                        out[at + c * plane + x] = sum + b[c];
                    }
                }
            }
        }
    }

    /// `8·V` output points from `x` of four output channels, whose rows start at `out`, `plane` apart.
    ///
    /// # Safety
    /// AVX2 and FMA; `x + 8·V ≤` every row's length; `out + c·plane + x + 8·V` writable for `c < 4`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn points<const V: usize>(
        rows: &[&[f32]],
        w: &[f32],
        b: &[f32],
        x: usize,
        out: *mut f32,
        plane: usize,
    ) {
        // SAFETY: the caller's bounds.
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); V]; CHANNELS];
            for (t, row) in rows.iter().enumerate() {
                let p = row.as_ptr().add(x);
                let mut input = [_mm256_setzero_ps(); V];
                for (v, input) in input.iter_mut().enumerate() {
                    *input = _mm256_loadu_ps(p.add(8 * v));
                }
                let wt = w.as_ptr().add(t * CHANNELS);
                for (c, acc) in acc.iter_mut().enumerate() {
                    let wc = _mm256_broadcast_ss(&*wt.add(c));
                    for v in 0..V {
                        acc[v] = _mm256_fmadd_ps(wc, input[v], acc[v]);
                    }
                }
            }
            for (c, acc) in acc.iter().enumerate() {
                let bc = _mm256_set1_ps(b[c]);
                for (v, acc) in acc.iter().enumerate() {
                    _mm256_storeu_ps(out.add(c * plane + x + 8 * v), _mm256_add_ps(*acc, bc));
                }
            }
        }
    }
}

/// Replaces every convolution [`StemConv`] computes exactly (see [`replacement`]) by one, on a CPU that runs it;
/// a model without them is returned unchanged.
pub(crate) fn fuse(model: TypedModel) -> TractResult<TypedModel> {
    if !available() {
        return Ok(model);
    }
    super::conv_fusion::replace(model, 1, replacement)
}

/// The [`StemConv`] for `node`: a group-1, channels-first `f32` convolution of a single `[1, c, h, w]` image with at
/// most [`MAX_INPUT_CHANNELS`] channels, a multiple of [`CHANNELS`] output channels, equal strides of 1 or 2, no
/// dilation, a constant `OIHW` kernel and a constant bias.
fn replacement(node: &ConvNode) -> Option<StemConv> {
    let ConvNode {
        conv,
        x,
        kernel,
        bias,
    } = *node;
    let spec = &conv.pool_spec;
    let &[1, c, h, w] = x.shape.as_concrete()? else {
        return None;
    };
    let out_c = spec.output_channels;
    let stride = spec.strides.as_ref().map_or(1, |s| s[0]);
    let [kh, kw] = spec.kernel_shape.as_slice() else {
        return None;
    };
    let eligible = conv.group == 1
        && spec.data_format == DataFormat::NCHW
        && spec.input_channels == c
        && c <= MAX_INPUT_CHANNELS
        && out_c > 0
        && out_c % CHANNELS == 0
        && (1..=2).contains(&stride)
        && spec
            .strides
            .as_ref()
            .is_none_or(|s| s.iter().all(|s| *s == stride))
        && kernel.shape() == [out_c, c, *kh, *kw]
        && (bias.len() == out_c || bias.len() == 1);
    if !eligible {
        return None;
    }
    let padding = spec.computed_padding(&[h, w]);
    let [rows, cols] = padding.as_slice() else {
        return None;
    };
    let geometry = Geometry {
        c,
        h,
        w,
        out_c,
        out_h: rows.convoluted,
        out_w: cols.convoluted,
        kh: *kh,
        kw: *kw,
        stride,
        top: rows.pad_before,
        left: cols.pad_before,
    };
    if geometry.out_h == 0 || geometry.out_w == 0 {
        return None;
    }
    let kernel = kernel.try_as_plain_ram().ok()?;
    let kernel = kernel.as_slice::<f32>().ok()?;
    let taps = geometry.taps();
    let mut packed = vec![0.0f32; out_c * taps];
    for (o, filter) in kernel.chunks_exact(taps).enumerate() {
        for (t, v) in filter.iter().enumerate() {
            packed[((o / CHANNELS) * taps + t) * CHANNELS + o % CHANNELS] = *v;
        }
    }
    let bias_values = bias.try_as_plain_ram().ok()?;
    let bias_values = bias_values.as_slice::<f32>().ok()?;
    let bias: Vec<f32> = (0..out_c)
        .map(|o| bias_values[if bias_values.len() == 1 { 0 } else { o }])
        .collect();
    Some(StemConv {
        geometry,
        weights: Arc::new(Tensor::from_shape(&[out_c * taps], &packed).ok()?),
        bias: Arc::new(Tensor::from_shape(&[out_c], &bias).ok()?),
    })
}

#[cfg(test)]
mod tests {
    use tract_nnef::prelude::*;
    use tract_nnef::tract_core::ops::cnn::KernelFormat;
    use tract_nnef::tract_core::ops::cnn::conv::Conv;
    use tract_nnef::tract_core::ops::cnn::{PaddingSpec, PoolSpec};

    use super::*;

    /// A one-node model: tract's `Conv` of a `[1, c, h, w]` image into `out_c` channels.
    fn model(
        [c, h, w]: [usize; 3],
        out_c: usize,
        [kh, kw]: [usize; 2],
        stride: usize,
        padding: PaddingSpec,
    ) -> TypedModel {
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact([1, c, h, w])).unwrap();
        let kernel = crate::vision::model::pseudo_random_input(&[out_c, c, kh, kw], 11).unwrap();
        let bias = crate::vision::model::pseudo_random_input(&[out_c], 13).unwrap();
        let k = model.add_const("k", kernel).unwrap();
        let b = model.add_const("b", bias).unwrap();
        let conv = Conv {
            pool_spec: PoolSpec {
                data_format: DataFormat::NCHW,
                kernel_shape: tvec![kh, kw],
                padding,
                dilations: None,
                strides: Some(tvec![stride, stride]),
                input_channels: c,
                output_channels: out_c,
            },
            kernel_fmt: KernelFormat::OIHW,
            group: 1,
            q_params: None,
        };
        let y = model.wire_node("conv", conv, &[x, k, b]).unwrap();
        model.select_output_outlets(&y).unwrap();
        model
    }

    fn count(plan: &TypedModel, op: &str) -> usize {
        plan.nodes().iter().filter(|n| n.op().name() == op).count()
    }

    #[test]
    fn equals_tracts_convolution_bit_for_bit() {
        if !available() {
            eprintln!("no AVX2 and FMA on this CPU: StemConv is not used, nothing to compare");
            assert_eq!(
                count(
                    &fuse(model([3, 8, 8], 4, [3, 3], 2, PaddingSpec::Valid)).unwrap(),
                    "StemConv"
                ),
                0
            );
            return;
        }
        for (image, out_c, kernel, stride, padding) in [
            // BlazeFace's, the face mesh's and the iris model's own.
            (
                [3, 128, 128],
                24,
                [5, 5],
                2,
                PaddingSpec::Explicit(tvec![1, 1], tvec![2, 2]),
            ),
            (
                [3, 192, 192],
                16,
                [3, 3],
                2,
                PaddingSpec::Explicit(tvec![0, 0], tvec![1, 1]),
            ),
            (
                [3, 64, 64],
                64,
                [3, 3],
                2,
                PaddingSpec::Explicit(tvec![0, 0], tvec![1, 1]),
            ),
            // dlib's ResNet (committed as NNEF only, so the model test cannot compare it) and MiniFASNet's.
            ([3, 150, 150], 32, [7, 7], 2, PaddingSpec::Valid),
            (
                [3, 80, 80],
                32,
                [3, 3],
                2,
                PaddingSpec::Explicit(tvec![1, 1], tvec![1, 1]),
            ),
            // Odd sizes, stride 1, an output row with a tail of fewer than eight points.
            (
                [3, 23, 37],
                8,
                [3, 3],
                1,
                PaddingSpec::Explicit(tvec![1, 1], tvec![1, 1]),
            ),
            ([1, 19, 45], 4, [7, 7], 2, PaddingSpec::SameUpper),
            ([4, 9, 9], 12, [2, 3], 2, PaddingSpec::Valid),
        ] {
            let label = format!("{image:?} → {out_c}, {kernel:?} /{stride} {padding:?}");
            let build = || model(image, out_c, kernel, stride, padding.clone());
            let plain = build().into_optimized().unwrap();
            assert_eq!(count(&plain, "StemConv"), 0);
            let fused = fuse(build().into_decluttered().unwrap())
                .unwrap()
                .into_optimized()
                .unwrap();
            assert_eq!(count(&fused, "StemConv"), 1, "{label}");
            let input = crate::vision::model::pseudo_random_input(
                &[1, image[0], image[1], image[2]],
                0x2545_f491,
            )
            .unwrap();
            let run = |m: TypedModel| {
                let out = m
                    .into_runnable()
                    .unwrap()
                    .run(tvec![input.clone().into()])
                    .unwrap();
                let ram = out[0].try_as_plain_ram().unwrap();
                ram.as_slice::<f32>()
                    .unwrap()
                    .iter()
                    .map(|v| v.to_bits())
                    .collect::<Vec<_>>()
            };
            let (ours, theirs) = (run(fused), run(plain));
            assert!(ours.iter().any(|v| *v != 0), "{label}");
            assert_eq!(ours, theirs, "{label}");
        }
    }

    #[test]
    fn leaves_wide_and_grouped_convolutions_to_tract() {
        let wide = model([8, 16, 16], 8, [3, 3], 1, PaddingSpec::Valid);
        let odd_channels = model([3, 16, 16], 6, [3, 3], 1, PaddingSpec::Valid);
        for m in [wide, odd_channels] {
            assert_eq!(
                count(&fuse(m.into_decluttered().unwrap()).unwrap(), "StemConv"),
                0
            );
        }
    }
}
