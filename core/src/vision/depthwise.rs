//! 3×3 depthwise convolution, strides 1 and 2, for the tract plans.
//!
//! BlazeFace, the face mesh, the iris model, MobileFaceNet and both MiniFASNets run channels-first 3×3 depthwise
//! convolutions; they were the costliest op kind of the detector and the mesh (`facepay bench vision --profile`).
//! tract 0.23 vectorises only the interior of a stride-1 convolution, one output row at a time, walks the border
//! zones point by point through its zone scanner, and computes stride 2 one point and one tap at a time. [`fuse`]
//! replaces each by one [`Depthwise3x3`], which computes blocks of eight output points, four blocks at once so
//! their sums do not wait on each other (AVX where the CPU has it; a portable loop elsewhere and at the edges). The
//! arithmetic is tract's, in tract's order: the bias, then one multiply and one add per tap in the kernel's
//! row-major order, taps outside the padded input skipped, no fused multiply-add. The outputs are bit-identical to
//! tract's (a test runs the models both ways), so no figure changes.

use super::conv_fusion::ConvNode;
use tract_nnef::prelude::{TValue, TVec, Tensor, TractResult, TypedModel};
use tract_nnef::tract_core::internal::{
    DatumType, EvalContext, EvalOp, Op, StaticName, TypedFact, TypedOp, args_3, bail, ensure, tvec,
};
use tract_nnef::tract_core::ops::nn::DataFormat;
use tract_nnef::tract_core::{as_op, op_as_typed_op, op_out_of_plan};

/// Depthwise convolution of an `f32` `[N, C, H, W]` (or `[C, H, W]`) tensor by a `[C, 1, 3, 3]` kernel with the
/// same stride (1 or 2) on both axes, zero padding `top`/`left` before (and whatever the output size implies
/// after), plus a bias of `C` values (or one for all): `[N, C, out_h, out_w]` (or `[C, out_h, out_w]`).
/// Planned once, when the plan loads: the planes' shape and where the vector blocks go.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Depthwise3x3 {
    geometry: Geometry,
    blocks: Blocks,
}

impl Depthwise3x3 {
    /// The output shape for an input of shape `input`: its leading axes, then `out_h`, `out_w`.
    fn output_shape(&self, input: &[usize]) -> TVec<usize> {
        let mut shape: TVec<usize> = input.iter().copied().collect();
        let rank = shape.len();
        shape[rank - 2] = self.geometry.out_h;
        shape[rank - 1] = self.geometry.out_w;
        shape
    }
}

impl Op for Depthwise3x3 {
    fn name(&self) -> StaticName {
        "Depthwise3x3".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("stride {}", self.geometry.stride)])
    }

    op_as_typed_op!();
}

impl EvalOp for Depthwise3x3 {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (x, kernel, bias) = args_3!(inputs);
        let (c, h, w) = match *x.shape() {
            [_, c, h, w] | [c, h, w] => (c, h, w),
            _ => bail!(
                "Depthwise3x3 takes a rank-3 or rank-4 input, got {:?}",
                x.shape()
            ),
        };
        let g = &self.geometry;
        ensure!(
            (h, w) == (g.h, g.w),
            "Depthwise3x3 was planned for {}×{} planes, got {h}×{w}",
            g.h,
            g.w
        );
        let out_shape = self.output_shape(x.shape());
        ensure!(
            kernel.len() == c * 9 && (bias.len() == c || bias.len() == 1),
            "Depthwise3x3: {c} channels, a kernel of {} values and a bias of {}",
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
        let mut out = Tensor::zero::<f32>(&out_shape)?;
        {
            let mut out_ram = out.try_as_plain_ram_mut()?;
            let dst = out_ram.as_slice_mut::<f32>()?;
            let plane_out = g.out_h * g.out_w;
            if plane_out > 0 && h * w > 0 {
                let planes = src.chunks_exact(h * w).zip(dst.chunks_exact_mut(plane_out));
                for (plane, (input, output)) in planes.enumerate() {
                    let ch = plane % c;
                    let taps: &[f32; 9] = kernel[ch * 9..][..9].try_into()?;
                    let b = if bias.len() == 1 { bias[0] } else { bias[ch] };
                    g.plane(input, output, taps, b, &self.blocks);
                }
            }
        }
        Ok(tvec![out.into()])
    }
}

impl TypedOp for Depthwise3x3 {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs.len() == 3 && inputs.iter().all(|f| f.datum_type == DatumType::F32),
            "Depthwise3x3 takes three f32 inputs"
        );
        let shape = inputs[0].shape.as_concrete();
        let Some(shape @ ([_, _, _, _] | [_, _, _])) = shape else {
            bail!("Depthwise3x3 takes a concrete rank-3 or rank-4 shape, got {shape:?}");
        };
        Ok(tvec![TypedFact::dt_shape(
            DatumType::F32,
            self.output_shape(shape)
        )])
    }

    as_op!();
}

/// One channel plane's shape, stride and padding.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Geometry {
    /// 1 or 2, on both axes.
    stride: usize,
    /// Input rows.
    h: usize,
    /// Input columns.
    w: usize,
    /// Rows of padding above the input.
    top: usize,
    /// Columns of padding left of the input.
    left: usize,
    /// Output rows.
    out_h: usize,
    /// Output columns.
    out_w: usize,
}

impl Geometry {
    /// The output columns `lo..hi` whose three taps all fall inside the input: `left ≤ s·x` and
    /// `s·x + 2 − left < w`.
    fn interior(&self) -> (usize, usize) {
        let s = self.stride;
        let lo = self.left.div_ceil(s).min(self.out_w);
        let hi = if self.w + self.left >= 3 {
            ((self.w + self.left - 3) / s + 1).clamp(lo, self.out_w)
        } else {
            lo
        };
        (lo, hi)
    }

    /// The input column under output column `x`'s first kernel column (`x` interior).
    fn start(&self, x: usize) -> usize {
        self.stride * x - self.left
    }

    /// The input rows under output row `oy`'s three kernel rows, `None` where they fall in the padding.
    fn rows<'a>(&self, input: &'a [f32], oy: usize) -> [Option<&'a [f32]>; 3] {
        std::array::from_fn(|ky| {
            (self.stride * oy + ky)
                .checked_sub(self.top)
                .filter(|r| *r < self.h)
                .map(|r| &input[r * self.w..][..self.w])
        })
    }

    /// Convolves one `h × w` plane into its `out_h × out_w` output: the interior columns in `blocks` of eight
    /// (see [`Blocks`]), every other point one at a time.
    fn plane(
        &self,
        input: &[f32],
        output: &mut [f32],
        taps: &[f32; 9],
        bias: f32,
        blocks: &Blocks,
    ) {
        let (lo, hi) = self.interior();
        for oy in 0..self.out_h {
            let out_row = &mut output[oy * self.out_w..][..self.out_w];
            let rows = self.rows(input, oy);
            for x in (0..lo).chain(hi..self.out_w) {
                out_row[x] = self.point(&rows, taps, bias, x);
            }
            let scalar = out_row.iter_mut().enumerate().take(hi).skip(blocks.covered);
            for (x, o) in scalar {
                *o = self.interior_point(&rows, taps, bias, x);
            }
        }
        if !blocks.columns.is_empty() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `blocks` exist only where the CPU has AVX ([`Blocks::new`]), and lie inside the plane.
            unsafe {
                avx::plane(self, input, output, taps, bias, &blocks.columns)
            };
        }
    }

    /// One output point near the left or right edge: the taps whose columns fall inside the input, in order.
    fn point(&self, rows: &[Option<&[f32]>; 3], taps: &[f32; 9], bias: f32, x: usize) -> f32 {
        // Kernel columns `first..end` fall inside the input, at input columns from `s·x + first − left`.
        let at = self.stride * x;
        let first = self.left.saturating_sub(at);
        let end = (self.w + self.left).saturating_sub(at).min(3);
        let mut sum = bias;
        for (ky, row) in rows.iter().enumerate() {
            let Some(row) = row else { continue };
            for kx in first..end {
                sum += taps[ky * 3 + kx] * row[at + kx - self.left];
            }
        }
        sum
    }

    /// [`Self::point`] for an interior point, whose three columns are inside the input: the same sums, unrolled
    /// (the scalar path of the planes too small for a block of eight).
    fn interior_point(
        &self,
        rows: &[Option<&[f32]>; 3],
        taps: &[f32; 9],
        bias: f32,
        x: usize,
    ) -> f32 {
        let start = self.start(x);
        let mut sum = bias;
        for (ky, row) in rows.iter().enumerate() {
            let Some(row) = row else { continue };
            let p = &row[start..start + 3];
            sum += taps[ky * 3] * p[0];
            sum += taps[ky * 3 + 1] * p[1];
            sum += taps[ky * 3 + 2] * p[2];
        }
        sum
    }
}

/// Where the vector kernel computes each row's interior: blocks of eight output points starting at `columns`, the
/// same in every row and plane. Blocks follow each other from the first interior column while their reads stay in
/// the row; a last partial block is recomputed from eight points back when it fits (the same values written twice).
/// Columns `covered..` are left to the scalar loop. No blocks without AVX.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Blocks {
    /// The first output column of each block.
    columns: Vec<usize>,
    /// The first column after the blocks.
    covered: usize,
}

impl Blocks {
    fn new(geometry: &Geometry) -> Blocks {
        let (lo, hi) = geometry.interior();
        let mut blocks = Blocks {
            columns: Vec::new(),
            covered: lo,
        };
        if vectorised() {
            // Eight points from column `x` read `row[start(x)..start(x) + reach]`.
            let reach = if geometry.stride == 1 { 10 } else { 18 };
            let fits = |x: usize| geometry.start(x) + reach <= geometry.w;
            let mut x = lo;
            while x + 8 <= hi && fits(x) {
                blocks.columns.push(x);
                x += 8;
            }
            if x < hi && hi - lo >= 8 && fits(hi - 8) {
                blocks.columns.push(hi - 8);
                x = hi;
            }
            blocks.covered = x;
        }
        blocks
    }
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use super::Geometry;
    use std::arch::x86_64::*;

    /// Eight output points of one row: the input rows under the kernel (null in the padding), the input column
    /// under the first point's first tap, and where the eight go.
    #[derive(Clone, Copy)]
    struct Block {
        rows: [*const f32; 3],
        start: usize,
        out: *mut f32,
    }

    /// Every block of the plane (each row at each of `columns`), four at a time: independent sums, so the
    /// additions of one do not wait on another's.
    ///
    /// # Safety
    /// The CPU must have AVX; `columns` are [`super::Blocks`]' for this geometry; `input` and `output` are one
    /// plane of it.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn plane(
        geometry: &Geometry,
        input: &[f32],
        output: &mut [f32],
        taps: &[f32; 9],
        bias: f32,
        columns: &[usize],
    ) {
        let out = output.as_mut_ptr();
        let empty = Block {
            rows: [std::ptr::null(); 3],
            start: 0,
            out: std::ptr::null_mut(),
        };
        let mut pending = [empty; 4];
        let mut n = 0;
        for oy in 0..geometry.out_h {
            let rows = geometry
                .rows(input, oy)
                .map(|r| r.map_or(std::ptr::null(), |r| r.as_ptr()));
            for &x in columns {
                pending[n] = Block {
                    rows,
                    start: geometry.start(x),
                    // SAFETY: `oy < out_h` and `x + 8 ≤ out_w`.
                    out: unsafe { out.add(oy * geometry.out_w + x) },
                };
                n += 1;
                if n == 4 {
                    // SAFETY: AVX is enabled here; each block's reads stay in its rows and its eight outputs in
                    // the plane (`Blocks::new`).
                    unsafe { four(geometry.stride, &pending, taps, bias) };
                    n = 0;
                }
            }
        }
        for block in &pending[..n] {
            // SAFETY: as above.
            unsafe { one(geometry.stride, block, taps, bias) };
        }
    }

    /// The three vectors one kernel row multiplies: input columns `p + kx + s·i` for `kx` in 0..3, `i` in 0..8.
    ///
    /// # Safety
    /// AVX; `p[0..10]` (stride 1) or `p[0..18]` (stride 2) readable.
    #[inline]
    #[target_feature(enable = "avx")]
    unsafe fn row(stride: usize, p: *const f32) -> [__m256; 3] {
        // SAFETY: the caller's bounds.
        unsafe {
            if stride == 1 {
                [
                    _mm256_loadu_ps(p),
                    _mm256_loadu_ps(p.add(1)),
                    _mm256_loadu_ps(p.add(2)),
                ]
            } else {
                let (even, odd) = split(p);
                let (next_even, _) = split(p.add(2));
                [even, odd, next_even]
            }
        }
    }

    /// Adds kernel row `ky` of `block` to `sum`, tap by tap as tract does (one multiply, one add), unless the row
    /// is in the padding.
    ///
    /// # Safety
    /// AVX; the block's bounds ([`plane`]).
    #[inline]
    #[target_feature(enable = "avx")]
    unsafe fn add_row(
        stride: usize,
        block: &Block,
        ky: usize,
        taps: &[__m256; 3],
        sum: __m256,
    ) -> __m256 {
        let row = block.rows[ky];
        if row.is_null() {
            return sum;
        }
        // SAFETY: the caller's bounds.
        let [a, b, c] = unsafe { self::row(stride, row.add(block.start)) };
        let sum = _mm256_add_ps(sum, _mm256_mul_ps(taps[0], a));
        let sum = _mm256_add_ps(sum, _mm256_mul_ps(taps[1], b));
        _mm256_add_ps(sum, _mm256_mul_ps(taps[2], c))
    }

    /// Kernel row `ky`'s taps, each broadcast.
    #[inline]
    #[target_feature(enable = "avx")]
    fn taps_of(taps: &[f32; 9], ky: usize) -> [__m256; 3] {
        [
            _mm256_set1_ps(taps[ky * 3]),
            _mm256_set1_ps(taps[ky * 3 + 1]),
            _mm256_set1_ps(taps[ky * 3 + 2]),
        ]
    }

    /// Four blocks: the bias, then the kernel's rows in order.
    ///
    /// # Safety
    /// AVX; the blocks' bounds ([`plane`]).
    #[inline]
    #[target_feature(enable = "avx")]
    unsafe fn four(stride: usize, blocks: &[Block; 4], taps: &[f32; 9], bias: f32) {
        let [b0, b1, b2, b3] = blocks;
        let (mut s0, mut s1, mut s2, mut s3) = (
            _mm256_set1_ps(bias),
            _mm256_set1_ps(bias),
            _mm256_set1_ps(bias),
            _mm256_set1_ps(bias),
        );
        for ky in 0..3 {
            let t = taps_of(taps, ky);
            // SAFETY: the caller's bounds.
            unsafe {
                s0 = add_row(stride, b0, ky, &t, s0);
                s1 = add_row(stride, b1, ky, &t, s1);
                s2 = add_row(stride, b2, ky, &t, s2);
                s3 = add_row(stride, b3, ky, &t, s3);
            }
        }
        // SAFETY: the caller's bounds.
        unsafe {
            _mm256_storeu_ps(b0.out, s0);
            _mm256_storeu_ps(b1.out, s1);
            _mm256_storeu_ps(b2.out, s2);
            _mm256_storeu_ps(b3.out, s3);
        }
    }

    /// One block, as [`four`] does each.
    ///
    /// # Safety
    /// AVX; the block's bounds ([`plane`]).
    #[inline]
    #[target_feature(enable = "avx")]
    unsafe fn one(stride: usize, block: &Block, taps: &[f32; 9], bias: f32) {
        let mut sum = _mm256_set1_ps(bias);
        for ky in 0..3 {
            // SAFETY: the caller's bounds.
            sum = unsafe { add_row(stride, block, ky, &taps_of(taps, ky), sum) };
        }
        // SAFETY: the caller's bounds.
        unsafe { _mm256_storeu_ps(block.out, sum) };
    }

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
}

/// Whether this CPU runs [`Depthwise3x3`]'s vector kernel (x86-64 with AVX). Elsewhere only stride 2 is replaced,
/// which tract computes point by point everywhere; tract's own vectorised interior (NEON on ARM) keeps stride 1.
pub(crate) fn vectorised() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Replaces every channels-first, `f32`, 3×3 depthwise `Conv` of stride 2 (and of stride 1 where [`vectorised`])
/// of a decluttered model (constant `OIHW` kernel and bias) by one [`Depthwise3x3`]; a model without them is
/// returned unchanged.
pub(crate) fn fuse(model: TypedModel) -> TractResult<TypedModel> {
    super::conv_fusion::replace(model, 3, replacement)
}

/// The [`Depthwise3x3`] that computes `node` exactly, if it is such a convolution.
fn replacement(node: &ConvNode) -> Option<Depthwise3x3> {
    let ConvNode {
        conv,
        x,
        kernel,
        bias,
    } = *node;
    let spec = &conv.pool_spec;
    let (c, h, w) = match (spec.data_format, x.shape.as_concrete()?) {
        (DataFormat::NCHW, &[_, c, h, w]) | (DataFormat::CHW, &[c, h, w]) => (c, h, w),
        _ => return None,
    };
    let stride = match spec.strides.as_deref() {
        None | Some(&[1, 1]) if vectorised() => 1,
        Some(&[2, 2]) => 2,
        _ => return None,
    };
    let eligible = conv.group == c
        && spec.input_channels == c
        && spec.output_channels == c
        && spec.kernel_shape.as_slice() == [3, 3]
        && kernel.shape() == [c, 1, 3, 3]
        && (bias.len() == c || bias.len() == 1);
    if !eligible {
        return None;
    }
    let padding = spec.computed_padding(&[h, w]);
    let [rows, cols] = padding.as_slice() else {
        return None;
    };
    let geometry = Geometry {
        stride,
        h,
        w,
        top: rows.pad_before,
        left: cols.pad_before,
        out_h: rows.convoluted,
        out_w: cols.convoluted,
    };
    let blocks = Blocks::new(&geometry);
    Some(Depthwise3x3 { geometry, blocks })
}

#[cfg(test)]
mod tests {
    use tract_nnef::prelude::*;
    use tract_nnef::tract_core::ops::cnn::KernelFormat;
    use tract_nnef::tract_core::ops::cnn::conv::Conv;
    use tract_nnef::tract_core::ops::cnn::{PaddingSpec, PoolSpec};

    use super::*;

    /// A one-node model: tract's depthwise `Conv` of an `[n, c, h, w]` input (`NCHW`), or a `[c, h, w]` one
    /// (`CHW`), with the given stride and padding.
    fn model(shape: &[usize], stride: usize, padding: PaddingSpec, seed: u32) -> TypedModel {
        let (c, data_format) = match shape {
            [_, c, _, _] => (*c, DataFormat::NCHW),
            [c, _, _] => (*c, DataFormat::CHW),
            _ => panic!("{shape:?}"),
        };
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact(shape)).unwrap();
        let kernel = crate::vision::model::pseudo_random_input(&[c, 1, 3, 3], seed).unwrap();
        let bias = crate::vision::model::pseudo_random_input(&[c], seed ^ 0x55).unwrap();
        let k = model.add_const("k", kernel).unwrap();
        let b = model.add_const("b", bias).unwrap();
        let conv = Conv {
            pool_spec: PoolSpec {
                data_format,
                kernel_shape: tvec![3, 3],
                padding,
                dilations: None,
                strides: Some(tvec![stride, stride]),
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
    fn both(shape: &[usize], stride: usize, padding: PaddingSpec) -> (Vec<f32>, Vec<f32>) {
        let plain = model(shape, stride, padding.clone(), 7)
            .into_optimized()
            .unwrap();
        assert_eq!(count(&plain, "DepthWiseConv"), 1, "{shape:?} {padding:?}");
        let fused = fuse(
            model(shape, stride, padding.clone(), 7)
                .into_decluttered()
                .unwrap(),
        )
        .unwrap()
        .into_optimized()
        .unwrap();
        assert_eq!(
            (
                count(&fused, "Depthwise3x3"),
                count(&fused, "DepthWiseConv")
            ),
            (1, 0),
            "{shape:?} {padding:?}"
        );
        let input = crate::vision::model::pseudo_random_input(shape, 0x2545_f491).unwrap();
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
        let mut cases = Vec::new();
        for (shape, padding) in [
            ([1, 24, 64, 64], same_even.clone()),
            ([1, 3, 96, 96], same_even.clone()),
            ([1, 8, 40, 40], one_each.clone()),
            ([2, 3, 17, 13], one_each.clone()),
            ([1, 5, 16, 16], same_even.clone()),
            ([1, 2, 9, 35], PaddingSpec::Valid),
            ([1, 4, 3, 3], one_each.clone()),
            ([1, 4, 21, 50], PaddingSpec::SameUpper),
            ([1, 6, 7, 9], one_each.clone()),
            ([1, 3, 12, 10], PaddingSpec::Valid),
        ] {
            cases.push((shape.to_vec(), padding));
        }
        // `CHW`: MobileFaceNet's, where tract dropped the batch axis.
        cases.push((vec![16, 14, 14], one_each.clone()));
        cases.push((vec![5, 11, 20], same_even.clone()));
        for (shape, padding) in cases {
            // Stride 1 is ours only where the vector kernel runs.
            let strides: &[usize] = if vectorised() { &[1, 2] } else { &[2] };
            for &stride in strides {
                let (ours, theirs) = both(&shape, stride, padding.clone());
                assert!(ours.iter().any(|v| *v != 0.0), "{shape:?}");
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&ours),
                    bits(&theirs),
                    "{shape:?} stride {stride} {padding:?}"
                );
            }
        }
    }

    #[test]
    fn leaves_other_convolutions_to_tract() {
        for strides in [tvec![3, 3], tvec![1, 2]] {
            let mut m = model(&[1, 4, 12, 12], 1, PaddingSpec::Valid, 3);
            let conv = m.nodes_mut().iter_mut().find(|n| n.name == "conv").unwrap();
            let mut op = conv.op_as::<Conv>().unwrap().clone();
            op.pool_spec.strides = Some(strides.clone());
            conv.op = Box::new(op);
            let fused = fuse(m.into_decluttered().unwrap()).unwrap();
            assert_eq!(count(&fused, "Depthwise3x3"), 0, "{strides:?}");
        }
    }
}
