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
