//! Upright RGB images, affine maps, and the bilinear warp every stage uses to build its input tensor.
//!
//! Coordinates: an integer pixel coordinate `(x, y)` is the **centre** of pixel column `x`, row `y` (the OpenCV
//! `warpAffine` convention), x to the right, y down. [`Affine::crop`] bridges to edge coordinates (a pixel spans
//! `[i, i + 1)`), the convention of [`Rect`]s produced by detectors.

use super::{FrameProblem, VisionError};

/// Packed RGB8, rows contiguous (stride = 3 * width), upright as the user sees it.
#[derive(Clone, Default, PartialEq)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `3 * width * height` bytes, R G B per pixel, row after row.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for RgbImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RgbImage({}x{}, {} bytes)",
            self.width,
            self.height,
            self.data.len()
        )
    }
}

impl RgbImage {
    /// Wraps packed RGB bytes, checking that their length is exactly `3 * width * height`.
    pub fn new(width: u32, height: u32, data: Vec<u8>) -> Result<Self, VisionError> {
        let expected = packed_len(width, height).ok_or_else(|| {
            VisionError::invalid_frame(
                FrameProblem::Size,
                format!("{width}x{height} RGB overflows usize"),
            )
        })?;
        if data.len() != expected {
            return Err(VisionError::invalid_frame(
                FrameProblem::BufferTooShort,
                format!(
                    "{width}x{height} RGB needs {expected} bytes, got {}",
                    data.len()
                ),
            ));
        }
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// The pixel at `(x, y)`, or `None` outside the image (or past the end of a short buffer).
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 3]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = (y as usize * self.width as usize + x as usize) * 3;
        self.data.get(i..i + 3).map(|p| [p[0], p[1], p[2]])
    }

    /// Number of complete rows actually present in `data` (at most `height`): guards code that trusts the fields.
    pub(crate) fn valid_rows(&self) -> usize {
        let rows = self
            .data
            .len()
            .checked_div(self.width as usize * 3)
            .unwrap_or(0);
        rows.min(self.height as usize)
    }
}

/// `3 * width * height`, or `None` on overflow.
pub(crate) fn packed_len(width: u32, height: u32) -> Option<usize> {
    (width as usize)
        .checked_mul(height as usize)?
        .checked_mul(3)
}

/// Axis-aligned rectangle in pixel coordinates (floats).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub w: f32,
    /// Height.
    pub h: f32,
}

impl Rect {
    /// Centre `(x, y)`.
    pub fn center(&self) -> (f32, f32) {
        (self.x + self.w * 0.5, self.y + self.h * 0.5)
    }
}

/// 2×3 affine map from DESTINATION pixel (x, y) to SOURCE pixel: xs = m[0]x + m[1]y + m[2]; ys = m[3]x + m[4]y + m[5].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Affine {
    /// Row-major `[a, b, c, d, e, f]`.
    pub m: [f32; 6],
}

impl Affine {
    /// The identity map.
    pub fn identity() -> Self {
        Self {
            m: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
        }
    }

    /// Maps a destination point to the source point.
    #[inline]
    pub fn apply(&self, x: f32, y: f32) -> (f32, f32) {
        let m = &self.m;
        (m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5])
    }

    /// The inverse map (source → destination), or `None` when singular or not finite.
    pub fn inverse(&self) -> Option<Affine> {
        let [a, b, c, d, e, f] = self.m;
        let det = a * e - b * d;
        if !det.is_finite() || det.abs() < 1e-12 {
            return None;
        }
        let inv = [
            e / det,
            -b / det,
            (b * f - e * c) / det,
            -d / det,
            a / det,
            (d * c - a * f) / det,
        ];
        inv.iter()
            .all(|v| v.is_finite())
            .then_some(Affine { m: inv })
    }

    /// dst→src map for: rotate by `angle` (radians) and scale by `scale` about src centre (cx, cy), landing at dst centre (dcx, dcy).
    ///
    /// The forward (src→dst) map is `dst = (dcx, dcy) + scale · R(angle) · (src − (cx, cy))` with
    /// `R(a) = [[cos a, −sin a], [sin a, cos a]]` in image coordinates (y down): a positive angle turns the content
    /// clockwise on screen. To level a line of direction `θ = atan2(dy, dx)`, pass `angle = −θ`. `scale` must be
    /// non-zero (otherwise the map is not finite and a warp through it yields black).
    pub fn similarity(cx: f32, cy: f32, scale: f32, angle: f32, dcx: f32, dcy: f32) -> Self {
        let (sin, cos) = angle.sin_cos();
        let (a, b) = (cos / scale, sin / scale);
        let (d, e) = (-sin / scale, cos / scale);
        Self {
            m: [a, b, cx - a * dcx - b * dcy, d, e, cy - d * dcx - e * dcy],
        }
    }

    /// dst→src map that stretches a `w`×`h` destination exactly over `rect` (edge coordinates) of the source:
    /// destination pixel edges land on the rectangle's edges. Use it for plain crops, resizes and letterboxes.
    pub fn crop(rect: Rect, w: u32, h: u32) -> Self {
        let sx = rect.w / w as f32;
        let sy = rect.h / h as f32;
        Self {
            m: [
                sx,
                0.0,
                rect.x + 0.5 * sx - 0.5,
                0.0,
                sy,
                rect.y + 0.5 * sy - 0.5,
            ],
        }
    }
}

/// Memory layout of a 3-channel float tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
pub enum Layout {
    /// Channels last: `[1, h, w, 3]`.
    #[serde(rename = "NHWC")]
    Nhwc,
    /// Channels first: `[1, 3, h, w]`.
    #[serde(rename = "NCHW")]
    Nchw,
}

/// Channel order a model expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
pub enum ChannelOrder {
    /// Red, green, blue.
    #[serde(rename = "RGB")]
    Rgb,
    /// Blue, green, red (OpenCV-trained models).
    #[serde(rename = "BGR")]
    Bgr,
}

/// value = pixel * scale + offset (e.g. x/127.5 - 1 → scale 1/127.5, offset -1; raw 0..255 → 1, 0)
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalize {
    /// Multiplier applied to the 0..255 pixel value.
    pub scale: f32,
    /// Added after scaling.
    pub offset: f32,
}

/// Bilinear sampling of `src` through `dst_to_src` into a w×h float tensor (len 3*w*h), out-of-image = black (0 pixel).
///
/// No allocation; the affine is evaluated incrementally per row and interior pixels take a single bounds check.
///
/// # Panics
/// If `out.len() != 3 * w * h` (a caller bug: the buffer is sized once from the model's input shape).
#[allow(clippy::too_many_arguments)] // the agreed stage API: one call, no builder, on the hot path
pub fn warp_to_tensor(
    src: &RgbImage,
    dst_to_src: &Affine,
    w: usize,
    h: usize,
    layout: Layout,
    order: ChannelOrder,
    norm: Normalize,
    out: &mut [f32],
) {
    let expected = w.checked_mul(h).and_then(|n| n.checked_mul(3));
    assert_eq!(
        Some(out.len()),
        expected,
        "warp_to_tensor: output buffer must hold 3*{w}*{h} floats"
    );
    match (layout, order) {
        (Layout::Nhwc, ChannelOrder::Rgb) => {
            warp_floats::<false, false>(src, dst_to_src, w, h, norm, out)
        }
        (Layout::Nhwc, ChannelOrder::Bgr) => {
            warp_floats::<false, true>(src, dst_to_src, w, h, norm, out)
        }
        (Layout::Nchw, ChannelOrder::Rgb) => {
            warp_floats::<true, false>(src, dst_to_src, w, h, norm, out)
        }
        (Layout::Nchw, ChannelOrder::Bgr) => {
            warp_floats::<true, true>(src, dst_to_src, w, h, norm, out)
        }
    }
}

/// Same sampling into a new RGB image (for aligned crops).
pub fn warp_to_rgb(src: &RgbImage, dst_to_src: &Affine, w: u32, h: u32) -> RgbImage {
    let len = packed_len(w, h).expect("a u32×u32×3 RGB size fits a 64-bit usize");
    let mut data = vec![0u8; len];
    sample_bilinear(src, dst_to_src, w as usize, h as usize, |i, p| {
        let o = &mut data[3 * i..3 * i + 3];
        // Values are convex combinations of bytes, so they are in 0..=255; `as` saturates anyway.
        o[0] = (p[0] + 0.5) as u8;
        o[1] = (p[1] + 0.5) as u8;
        o[2] = (p[2] + 0.5) as u8;
    });
    RgbImage {
        width: w,
        height: h,
        data,
    }
}

/// Monomorphised tensor writer: one copy per layout × channel order, so the inner loop has no branches on them.
fn warp_floats<const NCHW: bool, const BGR: bool>(
    src: &RgbImage,
    a: &Affine,
    w: usize,
    h: usize,
    norm: Normalize,
    out: &mut [f32],
) {
    let plane = w * h;
    let (s, o) = (norm.scale, norm.offset);
    sample_bilinear(src, a, w, h, |i, p| {
        let p = if BGR { [p[2], p[1], p[0]] } else { p };
        if NCHW {
            out[i] = p[0] * s + o;
            out[plane + i] = p[1] * s + o;
            out[2 * plane + i] = p[2] * s + o;
        } else {
            let d = &mut out[3 * i..3 * i + 3];
            d[0] = p[0] * s + o;
            d[1] = p[1] * s + o;
            d[2] = p[2] * s + o;
        }
    });
}

/// Calls `put(dst_index, [r, g, b])` (0..255 floats) for every destination pixel in row-major order.
#[inline(always)]
fn sample_bilinear<F: FnMut(usize, [f32; 3])>(
    src: &RgbImage,
    a: &Affine,
    w: usize,
    h: usize,
    mut put: F,
) {
    let sw = src.width as usize;
    let sh = src.valid_rows();
    if sw == 0 || sh == 0 {
        (0..w * h).for_each(|i| put(i, [0.0; 3]));
        return;
    }
    let data = src.data.as_slice();
    let row = 3 * sw;
    let (max_x, max_y) = ((sw - 1) as f32, (sh - 1) as f32);
    let [m0, m1, m2, m3, m4, m5] = a.m;
    let fetch = |x: isize, y: isize| -> [f32; 3] {
        if x < 0 || y < 0 || x as usize >= sw || y as usize >= sh {
            return [0.0; 3];
        }
        let i = y as usize * row + x as usize * 3;
        [data[i] as f32, data[i + 1] as f32, data[i + 2] as f32]
    };
    for y in 0..h {
        let yf = y as f32;
        let (bx, by) = (m1 * yf + m2, m4 * yf + m5);
        for x in 0..w {
            let xf = x as f32;
            let (xs, ys) = (m0 * xf + bx, m3 * xf + by);
            let (fx, fy) = (xs.floor(), ys.floor());
            let i = y * w + x;
            // Also rejects NaN: all four neighbours are outside the image.
            if !(fx >= -1.0 && fx <= max_x && fy >= -1.0 && fy <= max_y) {
                put(i, [0.0; 3]);
                continue;
            }
            let (ax, ay) = (xs - fx, ys - fy);
            let (x0, y0) = (fx as isize, fy as isize);
            if x0 >= 0 && y0 >= 0 && (x0 as usize) + 1 < sw && (y0 as usize) + 1 < sh {
                let p = y0 as usize * row + x0 as usize * 3;
                let q = &data[p..p + row + 6];
                let mut v = [0.0f32; 3];
                for c in 0..3 {
                    let (tl, tr) = (q[c] as f32, q[c + 3] as f32);
                    let (bl, br) = (q[row + c] as f32, q[row + c + 3] as f32);
                    let top = tl + ax * (tr - tl);
                    let bottom = bl + ax * (br - bl);
                    v[c] = top + ay * (bottom - top);
                }
                put(i, v);
            } else {
                let (tl, tr) = (fetch(x0, y0), fetch(x0 + 1, y0));
                let (bl, br) = (fetch(x0, y0 + 1), fetch(x0 + 1, y0 + 1));
                let mut v = [0.0f32; 3];
                for c in 0..3 {
                    let top = tl[c] + ax * (tr[c] - tl[c]);
                    let bottom = bl[c] + ax * (br[c] - bl[c]);
                    v[c] = top + ay * (bottom - top);
                }
                put(i, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A w×h image whose pixel (x, y) is (x·7+y, y·5+x, x+y·3) mod 256: every pixel is distinct enough to locate.
    fn pattern(w: u32, h: u32) -> RgbImage {
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                data.extend([(x * 7 + y) as u8, (y * 5 + x) as u8, (x + y * 3) as u8]);
            }
        }
        RgbImage::new(w, h, data).unwrap()
    }

    fn close(a: (f32, f32), b: (f32, f32)) -> bool {
        (a.0 - b.0).abs() < 1e-4 && (a.1 - b.1).abs() < 1e-4
    }

    #[test]
    fn new_rejects_wrong_length() {
        let err = RgbImage::new(4, 4, vec![0; 47]).unwrap_err();
        assert!(
            matches!(err, VisionError::InvalidFrame { detail: ref m, .. } if m.contains("48") && m.contains("47")),
            "{err}"
        );
    }

    #[test]
    fn affine_inverse_round_trips_and_rejects_singular() {
        let a = Affine {
            m: [1.5, 0.3, 10.0, -0.2, 0.8, -4.0],
        };
        let inv = a.inverse().unwrap();
        let (x, y) = a.apply(3.0, 7.0);
        assert!(close(inv.apply(x, y), (3.0, 7.0)));
        assert!(
            Affine {
                m: [1.0, 2.0, 0.0, 2.0, 4.0, 0.0]
            }
            .inverse()
            .is_none()
        );
        assert!(
            Affine {
                m: [f32::NAN, 0.0, 0.0, 0.0, 1.0, 0.0]
            }
            .inverse()
            .is_none()
        );
        assert_eq!(Affine::identity().apply(2.5, -1.0), (2.5, -1.0));
    }

    #[test]
    fn similarity_maps_centres_scales_and_turns_clockwise() {
        // Source centre (50, 40) lands at destination centre (10, 10); scale 2 and +90°.
        let a = Affine::similarity(50.0, 40.0, 2.0, std::f32::consts::FRAC_PI_2, 10.0, 10.0);
        assert!(close(a.apply(10.0, 10.0), (50.0, 40.0)));
        // Forward: a source point 1 px to the right of the centre goes 2 px *down* (clockwise on screen).
        let fwd = a.inverse().unwrap();
        assert!(close(fwd.apply(51.0, 40.0), (10.0, 12.0)));
        assert!(close(fwd.apply(50.0, 39.0), (12.0, 10.0)));
    }

    #[test]
    fn crop_maps_pixel_edges_onto_rect_edges() {
        let a = Affine::crop(
            Rect {
                x: 10.0,
                y: 20.0,
                w: 40.0,
                h: 20.0,
            },
            4,
            2,
        );
        // Destination pixel centre 0 covers source [10, 20): its centre 15 is source pixel coordinate 14.5.
        assert!(close(a.apply(0.0, 0.0), (14.5, 24.5)));
        assert!(close(a.apply(3.0, 1.0), (44.5, 34.5)));
    }

    #[test]
    fn identity_warp_reproduces_the_image_in_every_layout() {
        let img = pattern(9, 6);
        let n = Normalize {
            scale: 1.0 / 127.5,
            offset: -1.0,
        };
        let mut nhwc = vec![0.0; 3 * 9 * 6];
        warp_to_tensor(
            &img,
            &Affine::identity(),
            9,
            6,
            Layout::Nhwc,
            ChannelOrder::Rgb,
            n,
            &mut nhwc,
        );
        let mut nchw_bgr = vec![0.0; 3 * 9 * 6];
        let raw = Normalize {
            scale: 1.0,
            offset: 0.0,
        };
        warp_to_tensor(
            &img,
            &Affine::identity(),
            9,
            6,
            Layout::Nchw,
            ChannelOrder::Bgr,
            raw,
            &mut nchw_bgr,
        );
        for y in 0..6 {
            for x in 0..9 {
                let p = img.pixel(x, y).unwrap();
                let i = (y * 9 + x) as usize;
                for c in 0..3 {
                    let want = p[c] as f32 / 127.5 - 1.0;
                    assert!((nhwc[3 * i + c] - want).abs() < 1e-5, "nhwc ({x},{y}) c{c}");
                    assert_eq!(
                        nchw_bgr[(2 - c) * 54 + i],
                        p[c] as f32,
                        "nchw bgr ({x},{y}) c{c}"
                    );
                }
            }
        }
        assert_eq!(warp_to_rgb(&img, &Affine::identity(), 9, 6), img);
    }

    #[test]
    fn similarity_warp_rotates_a_quarter_turn_exactly() {
        let img = pattern(7, 7);
        // +90° about the centre: destination (x, y) samples source (y, 6 − x).
        let a = Affine::similarity(3.0, 3.0, 1.0, std::f32::consts::FRAC_PI_2, 3.0, 3.0);
        let out = warp_to_rgb(&img, &a, 7, 7);
        for y in 0..7 {
            for x in 0..7 {
                assert_eq!(out.pixel(x, y), img.pixel(y, 6 - x), "({x},{y})");
            }
        }
    }

    #[test]
    fn bilinear_interpolates_and_outside_is_black() {
        let img = RgbImage::new(2, 1, vec![0, 100, 200, 100, 200, 0]).unwrap();
        let half = Affine {
            m: [1.0, 0.0, 0.5, 0.0, 1.0, 0.0],
        };
        let out = warp_to_rgb(&img, &half, 2, 1);
        // Between the two pixels: their mean; past the right edge: half of the last pixel blended with black.
        assert_eq!(out.data, vec![50, 150, 100, 50, 100, 0]);
        let far = Affine {
            m: [1.0, 0.0, 1e9, 0.0, 1.0, 0.0],
        };
        assert_eq!(warp_to_rgb(&img, &far, 2, 1).data, vec![0; 6]);
        let nan = Affine { m: [f32::NAN; 6] };
        assert_eq!(warp_to_rgb(&img, &nan, 2, 1).data, vec![0; 6]);
    }

    #[test]
    fn crop_warp_halves_by_averaging_two_by_two_blocks() {
        let img = pattern(8, 4);
        let a = Affine::crop(
            Rect {
                x: 0.0,
                y: 0.0,
                w: 8.0,
                h: 4.0,
            },
            4,
            2,
        );
        let mut t = vec![0.0; 3 * 4 * 2];
        let raw = Normalize {
            scale: 1.0,
            offset: 0.0,
        };
        warp_to_tensor(&img, &a, 4, 2, Layout::Nhwc, ChannelOrder::Rgb, raw, &mut t);
        for y in 0..2u32 {
            for x in 0..4u32 {
                for c in 0..3 {
                    let block: f32 = [(0, 0), (1, 0), (0, 1), (1, 1)]
                        .iter()
                        .map(|&(dx, dy)| img.pixel(2 * x + dx, 2 * y + dy).unwrap()[c] as f32)
                        .sum();
                    assert!((t[3 * (y * 4 + x) as usize + c] - block / 4.0).abs() < 1e-3);
                }
            }
        }
    }

    #[test]
    fn short_buffer_and_empty_images_warp_without_panicking() {
        let mut img = pattern(4, 4);
        img.data.truncate(20); // fewer bytes than the fields claim: missing rows read as black
        let out = warp_to_rgb(&img, &Affine::identity(), 4, 4);
        assert_eq!(&out.data[..12], &img.data[..12]);
        assert!(out.data[12..].iter().all(|&v| v == 0));
        let empty = RgbImage::default();
        assert_eq!(
            warp_to_rgb(&empty, &Affine::identity(), 3, 2).data,
            vec![0; 18]
        );
    }
}
