//! Frame-quality report over a face region: brightness, contrast, sharpness and face size.
//!
//! Luma is BT.601 (`Y = (77 R + 150 G + 29 B) / 256`). To stay cheap on large faces the region is sampled on a
//! grid of at most [`GRID`]×[`GRID`] points; brightness and contrast are the mean and standard deviation of luma
//! at those points, and sharpness is the variance of the 4-neighbour Laplacian taken at each point with its
//! **immediate** neighbours, so it measures the image's finest detail whatever the sampling step. No allocation.

use super::image::{Rect, RgbImage};

/// Largest number of sample points along each side of the region.
pub const GRID: usize = 128;

/// Quality of a face region.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QualityReport {
    /// Mean luma, 0..255.
    pub brightness: f32,
    /// Standard deviation of luma.
    pub contrast: f32,
    /// Variance of the Laplacian of luma (higher = sharper; ~0 for a flat or very blurred region).
    pub sharpness: f32,
    /// `max(w, h)` of the region as given (the face's size, even where it leaves the frame).
    pub face_size_px: f32,
}

/// Assesses `region` of `img`. The statistics use the part of the region inside the image; an empty intersection
/// (or a non-finite region) gives zero brightness, contrast and sharpness.
pub fn assess(img: &RgbImage, region: Rect) -> QualityReport {
    let face_size_px = region.w.max(region.h);
    let face_size_px = if face_size_px.is_finite() {
        face_size_px.max(0.0)
    } else {
        0.0
    };
    let (iw, ih) = (img.width as usize, img.valid_rows());
    let clamp = |v: f32, hi: usize| {
        if v.is_finite() {
            v.clamp(0.0, hi as f32) as usize
        } else {
            0
        }
    };
    let (x0, x1) = (
        clamp(region.x.floor(), iw),
        clamp((region.x + region.w).ceil(), iw),
    );
    let (y0, y1) = (
        clamp(region.y.floor(), ih),
        clamp((region.y + region.h).ceil(), ih),
    );
    let empty = QualityReport {
        brightness: 0.0,
        contrast: 0.0,
        sharpness: 0.0,
        face_size_px,
    };
    if x1 <= x0 || y1 <= y0 {
        return empty;
    }
    let step = (x1 - x0).max(y1 - y0).div_ceil(GRID).max(1);
    let luma = |x: usize, y: usize| {
        let i = 3 * (y * iw + x);
        let p = &img.data[i..i + 3];
        (77 * p[0] as u32 + 150 * p[1] as u32 + 29 * p[2] as u32) >> 8
    };
    let (mut n, mut sum, mut sum_sq) = (0u64, 0u64, 0u64);
    let (mut ln, mut lsum, mut lsum_sq) = (0u64, 0i64, 0u64);
    for y in (y0..y1).step_by(step) {
        for x in (x0..x1).step_by(step) {
            let c = luma(x, y);
            n += 1;
            sum += c as u64;
            sum_sq += (c * c) as u64;
            // Laplacian only where all four neighbours lie inside the region.
            if x > x0 && x + 1 < x1 && y > y0 && y + 1 < y1 {
                let lap = 4 * c as i64
                    - luma(x - 1, y) as i64
                    - luma(x + 1, y) as i64
                    - luma(x, y - 1) as i64
                    - luma(x, y + 1) as i64;
                ln += 1;
                lsum += lap;
                lsum_sq += (lap * lap) as u64;
            }
        }
    }
    let variance = |n: u64, s: f64, sq: f64| {
        if n == 0 {
            return 0.0;
        }
        let mean = s / n as f64;
        (sq / n as f64 - mean * mean).max(0.0)
    };
    let mean = sum as f64 / n as f64;
    QualityReport {
        brightness: mean as f32,
        contrast: variance(n, sum as f64, sum_sq as f64).sqrt() as f32,
        sharpness: variance(ln, lsum as f64, lsum_sq as f64) as f32,
        face_size_px,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic noisy texture (an LCG), `gain` scaling its amplitude around mid-grey `base`.
    fn texture(w: u32, h: u32, base: f32, gain: f32) -> RgbImage {
        let mut s = 12345u32;
        let mut data = Vec::new();
        for _ in 0..w * h {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let v = (base + gain * ((s >> 24) as f32 - 128.0)).clamp(0.0, 255.0) as u8;
            data.extend([v, v, v]);
        }
        RgbImage::new(w, h, data).unwrap()
    }

    /// 5×5 box blur (edges clamped).
    fn blur(img: &RgbImage) -> RgbImage {
        let (w, h) = (img.width as i32, img.height as i32);
        let mut out = img.clone();
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    let mut s = 0u32;
                    for dy in -2..=2 {
                        for dx in -2..=2 {
                            let (sx, sy) = ((x + dx).clamp(0, w - 1), (y + dy).clamp(0, h - 1));
                            s += img.data[3 * (sy * w + sx) as usize + c] as u32;
                        }
                    }
                    out.data[3 * (y * w + x) as usize + c] = (s / 25) as u8;
                }
            }
        }
        out
    }

    fn full(img: &RgbImage) -> Rect {
        Rect {
            x: 0.0,
            y: 0.0,
            w: img.width as f32,
            h: img.height as f32,
        }
    }

    #[test]
    fn metrics_move_the_right_way() {
        for side in [64u32, 600] {
            // 600 px exercises the subsampled grid (step 5).
            let sharp = texture(side, side, 128.0, 0.8);
            let q = assess(&sharp, full(&sharp));
            let blurred = assess(&blur(&sharp), full(&sharp));
            assert!(
                blurred.sharpness < q.sharpness / 4.0,
                "{side}: blur {blurred:?} vs {q:?}"
            );
            let dark = assess(&texture(side, side, 60.0, 0.8), full(&sharp));
            assert!(
                dark.brightness < q.brightness - 50.0,
                "{side}: {dark:?} vs {q:?}"
            );
            let flat = assess(&texture(side, side, 128.0, 0.2), full(&sharp));
            assert!(
                flat.contrast < q.contrast / 2.0,
                "{side}: {flat:?} vs {q:?}"
            );
            assert!((q.brightness - 128.0).abs() < 5.0 && q.contrast > 20.0);
        }
    }

    #[test]
    fn uniform_image_has_exact_figures() {
        let img = RgbImage::new(40, 40, [200u8, 100, 50].repeat(1600)).unwrap();
        let q = assess(
            &img,
            Rect {
                x: 5.0,
                y: 5.0,
                w: 20.0,
                h: 30.0,
            },
        );
        let luma = ((77 * 200 + 150 * 100 + 29 * 50) >> 8) as f32;
        assert_eq!(
            q,
            QualityReport {
                brightness: luma,
                contrast: 0.0,
                sharpness: 0.0,
                face_size_px: 30.0
            }
        );
    }

    #[test]
    fn region_is_clamped_and_degenerate_regions_do_not_panic() {
        let img = texture(50, 40, 128.0, 0.8);
        let inside = assess(
            &img,
            Rect {
                x: 30.0,
                y: 20.0,
                w: 20.0,
                h: 20.0,
            },
        );
        let overhang = assess(
            &img,
            Rect {
                x: 30.0,
                y: 20.0,
                w: 80.0,
                h: 80.0,
            },
        );
        assert_eq!(
            (inside.brightness, inside.contrast, inside.sharpness),
            (overhang.brightness, overhang.contrast, overhang.sharpness)
        );
        assert_eq!(overhang.face_size_px, 80.0);
        let off = assess(
            &img,
            Rect {
                x: 100.0,
                y: 100.0,
                w: 10.0,
                h: 10.0,
            },
        );
        assert_eq!(
            (off.brightness, off.sharpness, off.face_size_px),
            (0.0, 0.0, 10.0)
        );
        let nan = assess(
            &img,
            Rect {
                x: f32::NAN,
                y: 0.0,
                w: f32::NAN,
                h: 5.0,
            },
        );
        assert_eq!(nan.brightness, 0.0);
        assert_eq!(assess(&RgbImage::default(), full(&img)).brightness, 0.0);
    }
}
