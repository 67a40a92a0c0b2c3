//! Camera frames in, upright RGB out — converted once.
//!
//! A [`Frame`] borrows the camera's buffer as it is delivered (RGB8, BGRA8 from iOS, NV21 or YUV_420_888 planes
//! from Android, YUYV, NV12, BGR8 or grey from desktop webcams, or encoded JPEG/PNG — a webcam's MJPEG) with its
//! row strides, the rotation that makes it upright and a mirror flag.
//! [`Frame::to_rgb_into`] converts it in **one pass** — pixel format, rotation and mirror together — into a reused
//! [`RgbImage`], so a steady stream of frames of one size allocates nothing.
//!
//! Every size, stride and buffer length is checked with overflow-checked arithmetic before any pixel is read; a
//! mismatch is a [`VisionError::InvalidFrame`] that says what was expected and what was given.
//!
//! Colour: YUV is converted with **BT.601 full range** (Y, U, V all 0..255, chroma centred on 128), which is what
//! Android cameras deliver (JFIF-style YUV, the same matrix JPEG uses):
//! `R = Y + 1.402 (V−128)`, `G = Y − 0.344136 (U−128) − 0.714136 (V−128)`, `B = Y + 1.772 (U−128)`,
//! in 16.16 fixed point, clamped to 0..255.

use std::io::Cursor;
use std::path::Path;

use super::image::{RgbImage, packed_len};
use super::{FrameProblem, VisionError};

/// Smallest accepted side, in pixels, of a frame (before rotation) or decoded image: anything smaller cannot hold a
/// face the detector (128×128 input) could find, and 1×1 / 0×0 buffers are always a caller bug.
pub const MIN_SIDE: u32 = 32;
/// Largest accepted side, in pixels (8K): bounds memory use for both raw frames and decoded images.
pub const MAX_SIDE: u32 = 8192;
/// Upper bound on the decoder's allocations for an encoded image.
pub const MAX_DECODE_BYTES: u64 = 512 * 1024 * 1024;

/// Clockwise rotation that turns the buffer upright (Android's `ImageInfo.rotationDegrees`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Rotation {
    /// Already upright.
    #[default]
    R0,
    /// Rotate 90° clockwise.
    R90,
    /// Rotate 180°.
    R180,
    /// Rotate 270° clockwise (90° counter-clockwise).
    R270,
}

impl Rotation {
    /// From degrees (any multiple of 90, negative allowed); anything else is an [`VisionError::InvalidFrame`].
    pub fn from_degrees(degrees: i32) -> Result<Self, VisionError> {
        match degrees.rem_euclid(360) {
            0 => Ok(Self::R0),
            90 => Ok(Self::R90),
            180 => Ok(Self::R180),
            270 => Ok(Self::R270),
            _ => Err(VisionError::invalid_frame(
                FrameProblem::Rotation,
                format!("rotation {degrees}° is not a multiple of 90"),
            )),
        }
    }

    /// Whether width and height swap.
    fn is_quarter(self) -> bool {
        matches!(self, Self::R90 | Self::R270)
    }
}

/// The pixel buffer of a frame, borrowed as the camera delivers it. Strides are in bytes.
#[derive(Clone, Copy, Debug)]
pub enum Pixels<'a> {
    /// Packed R, G, B bytes; `stride` ≥ 3·width bytes per row.
    Rgb8 {
        /// The buffer (the last row may omit its padding).
        data: &'a [u8],
        /// Bytes from one row to the next.
        stride: usize,
    },
    /// Packed B, G, R, A bytes (iOS `kCVPixelFormatType_32BGRA`); alpha is ignored. `stride` ≥ 4·width.
    Bgra8 {
        /// The buffer (the last row may omit its padding).
        data: &'a [u8],
        /// Bytes from one row to the next (`CVPixelBufferGetBytesPerRow`).
        stride: usize,
    },
    /// NV21 (Android camera default): a full-size Y plane and a half-size plane of interleaved V, U pairs.
    /// See [`Pixels::nv21_contiguous`] for the usual single buffer.
    Nv21 {
        /// Luma plane.
        y: &'a [u8],
        /// Interleaved V, U plane (⌈w/2⌉ pairs per row, ⌈h/2⌉ rows).
        vu: &'a [u8],
        /// Bytes from one luma row to the next (≥ width).
        y_stride: usize,
        /// Bytes from one chroma row to the next (≥ 2·⌈w/2⌉).
        vu_stride: usize,
    },
    /// Android `YUV_420_888` (Camera2 / CameraX `ImageProxy`): three planes, chroma subsampled 2×2, each chroma
    /// sample `uv_pixel_stride` bytes from the next (1 = planar, 2 = interleaved, where the U and V buffers overlap).
    Yuv420 {
        /// Luma plane (pixel stride 1).
        y: &'a [u8],
        /// Cb plane.
        u: &'a [u8],
        /// Cr plane.
        v: &'a [u8],
        /// Bytes from one luma row to the next (≥ width).
        y_stride: usize,
        /// Bytes from one chroma row to the next (shared by U and V, as Android guarantees).
        uv_stride: usize,
        /// Bytes from one chroma sample to the next in a row: 1 or 2.
        uv_pixel_stride: usize,
    },
    /// Packed 4:2:2 YUYV (YUY2, the usual uncompressed webcam format): `Y0 U Y1 V` for each pair of pixels, the
    /// chroma shared by both. An odd width ends each row with a whole pair whose second luma is ignored.
    Yuyv {
        /// The buffer (the last row may omit its padding).
        data: &'a [u8],
        /// Bytes from one row to the next (≥ 4·⌈w/2⌉).
        stride: usize,
    },
    /// NV12 (webcams, hardware decoders): a full-size Y plane and a half-size plane of interleaved U, V pairs — NV21
    /// with U and V swapped. See [`Pixels::nv12_contiguous`] for the usual single buffer.
    Nv12 {
        /// Luma plane.
        y: &'a [u8],
        /// Interleaved U, V plane (⌈w/2⌉ pairs per row, ⌈h/2⌉ rows).
        uv: &'a [u8],
        /// Bytes from one luma row to the next (≥ width).
        y_stride: usize,
        /// Bytes from one chroma row to the next (≥ 2·⌈w/2⌉).
        uv_stride: usize,
    },
    /// Packed B, G, R bytes; `stride` ≥ 3·width.
    Bgr8 {
        /// The buffer (the last row may omit its padding).
        data: &'a [u8],
        /// Bytes from one row to the next.
        stride: usize,
    },
    /// 8-bit grey (a monochrome or infrared webcam); converted to R = G = B. `stride` ≥ width.
    Gray8 {
        /// The buffer (the last row may omit its padding).
        data: &'a [u8],
        /// Bytes from one row to the next.
        stride: usize,
    },
    /// An encoded JPEG or PNG (EXIF orientation is not read: pass the rotation explicitly).
    Encoded(&'a [u8]),
}

impl<'a> Pixels<'a> {
    /// Splits a single NV21 buffer (Y rows then VU rows, both `stride` bytes apart, VU starting at `stride·height`).
    pub fn nv21_contiguous(
        data: &'a [u8],
        height: u32,
        stride: usize,
    ) -> Result<Self, VisionError> {
        let (y, vu) = split_semi_planar("NV21", data, height, stride)?;
        Ok(Self::Nv21 {
            y,
            vu,
            y_stride: stride,
            vu_stride: stride,
        })
    }

    /// Splits a single NV12 buffer (Y rows then UV rows, both `stride` bytes apart, UV starting at `stride·height`).
    pub fn nv12_contiguous(
        data: &'a [u8],
        height: u32,
        stride: usize,
    ) -> Result<Self, VisionError> {
        let (y, uv) = split_semi_planar("NV12", data, height, stride)?;
        Ok(Self::Nv12 {
            y,
            uv,
            y_stride: stride,
            uv_stride: stride,
        })
    }
}

/// Splits a contiguous semi-planar buffer into its Y plane (`stride·height` bytes) and the chroma plane after it.
fn split_semi_planar<'a>(
    what: &str,
    data: &'a [u8],
    height: u32,
    stride: usize,
) -> Result<(&'a [u8], &'a [u8]), VisionError> {
    let split = stride.checked_mul(height as usize).ok_or_else(|| {
        VisionError::invalid_frame(
            FrameProblem::Size,
            format!("{what} stride {stride} × height {height} overflows"),
        )
    })?;
    if split > data.len() {
        return Err(VisionError::invalid_frame(
            FrameProblem::BufferTooShort,
            format!(
                "{what} buffer of {} bytes is shorter than its Y plane ({split} bytes = stride {stride} × height {height})",
                data.len()
            ),
        ));
    }
    Ok(data.split_at(split))
}

/// One camera frame: its buffer, the buffer's size (before rotation), and how to make it upright.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// The pixels.
    pub pixels: Pixels<'a>,
    /// Buffer width in pixels, before rotation. For [`Pixels::Encoded`]: 0 (take it from the header) or the
    /// expected width (a different decoded width is an error).
    pub width: u32,
    /// Buffer height in pixels, before rotation; same rule as `width` for encoded images.
    pub height: u32,
    /// Clockwise rotation to make the buffer upright.
    pub rotation: Rotation,
    /// Flip the upright image left–right (after rotation), e.g. to match a front camera's mirrored preview.
    pub mirror: bool,
}

impl Frame<'_> {
    /// Converts to a new upright RGB image.
    pub fn to_rgb(&self) -> Result<RgbImage, VisionError> {
        let mut out = RgbImage::default();
        self.to_rgb_into(&mut out)?;
        Ok(out)
    }

    /// Converts into `out`, reusing its buffer (no allocation once it has grown to the frame size; encoded images
    /// still allocate while decoding). On error `out` is left unchanged.
    pub fn to_rgb_into(&self, out: &mut RgbImage) -> Result<(), VisionError> {
        let (w, h) = (self.width, self.height);
        match self.pixels {
            Pixels::Encoded(bytes) => {
                let img = decode_bytes(bytes)?;
                if (w, h) != (0, 0) && (w, h) != (img.width, img.height) {
                    return Err(VisionError::invalid_frame(
                        FrameProblem::Size,
                        format!(
                            "declared {w}x{h} but the encoded image is {}x{}",
                            img.width, img.height
                        ),
                    ));
                }
                if self.rotation == Rotation::R0 && !self.mirror {
                    *out = img;
                    return Ok(());
                }
                let src = Packed::<3, false> {
                    data: &img.data,
                    stride: 3 * img.width as usize,
                };
                convert(&src, img.width, img.height, self.rotation, self.mirror, out);
            }
            Pixels::Rgb8 { data, stride } => {
                check_size(w, h)?;
                check_plane("RGB8", data, (w, h), stride, (3, 3))?;
                convert(
                    &Packed::<3, false> { data, stride },
                    w,
                    h,
                    self.rotation,
                    self.mirror,
                    out,
                );
            }
            Pixels::Bgra8 { data, stride } => {
                check_size(w, h)?;
                check_plane("BGRA8", data, (w, h), stride, (4, 4))?;
                convert(
                    &Packed::<4, true> { data, stride },
                    w,
                    h,
                    self.rotation,
                    self.mirror,
                    out,
                );
            }
            Pixels::Nv21 {
                y,
                vu,
                y_stride,
                vu_stride,
            } => {
                check_size(w, h)?;
                check_plane("NV21 Y", y, (w, h), y_stride, (1, 1))?;
                check_plane(
                    "NV21 VU",
                    vu,
                    (w.div_ceil(2), h.div_ceil(2)),
                    vu_stride,
                    (2, 2),
                )?;
                // V first, then U: a U byte sits one after its V byte.
                let src = Yuv {
                    y,
                    u: &vu[1..],
                    v: vu,
                    y_stride,
                    uv_stride: vu_stride,
                    uv_pixel_stride: 2,
                };
                convert(&src, w, h, self.rotation, self.mirror, out);
            }
            Pixels::Nv12 {
                y,
                uv,
                y_stride,
                uv_stride,
            } => {
                check_size(w, h)?;
                check_plane("NV12 Y", y, (w, h), y_stride, (1, 1))?;
                check_plane(
                    "NV12 UV",
                    uv,
                    (w.div_ceil(2), h.div_ceil(2)),
                    uv_stride,
                    (2, 2),
                )?;
                // U first, then V: a V byte sits one after its U byte.
                let src = Yuv {
                    y,
                    u: uv,
                    v: &uv[1..],
                    y_stride,
                    uv_stride,
                    uv_pixel_stride: 2,
                };
                convert(&src, w, h, self.rotation, self.mirror, out);
            }
            Pixels::Yuyv { data, stride } => {
                check_size(w, h)?;
                check_plane("YUYV", data, (w.div_ceil(2), h), stride, (4, 4))?;
                convert(
                    &Yuyv { data, stride },
                    w,
                    h,
                    self.rotation,
                    self.mirror,
                    out,
                );
            }
            Pixels::Bgr8 { data, stride } => {
                check_size(w, h)?;
                check_plane("BGR8", data, (w, h), stride, (3, 3))?;
                convert(
                    &Packed::<3, true> { data, stride },
                    w,
                    h,
                    self.rotation,
                    self.mirror,
                    out,
                );
            }
            Pixels::Gray8 { data, stride } => {
                check_size(w, h)?;
                check_plane("GRAY8", data, (w, h), stride, (1, 1))?;
                convert(
                    &Gray { data, stride },
                    w,
                    h,
                    self.rotation,
                    self.mirror,
                    out,
                );
            }
            Pixels::Yuv420 {
                y,
                u,
                v,
                y_stride,
                uv_stride,
                uv_pixel_stride,
            } => {
                check_size(w, h)?;
                if !(1..=2).contains(&uv_pixel_stride) {
                    return Err(VisionError::invalid_frame(
                        FrameProblem::Stride,
                        format!("YUV_420_888 chroma pixel stride {uv_pixel_stride} is not 1 or 2"),
                    ));
                }
                check_plane("YUV_420_888 Y", y, (w, h), y_stride, (1, 1))?;
                let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
                check_plane(
                    "YUV_420_888 U",
                    u,
                    (cw, ch),
                    uv_stride,
                    (uv_pixel_stride, 1),
                )?;
                check_plane(
                    "YUV_420_888 V",
                    v,
                    (cw, ch),
                    uv_stride,
                    (uv_pixel_stride, 1),
                )?;
                convert(
                    &Yuv {
                        y,
                        u,
                        v,
                        y_stride,
                        uv_stride,
                        uv_pixel_stride,
                    },
                    w,
                    h,
                    self.rotation,
                    self.mirror,
                    out,
                );
            }
        }
        Ok(())
    }
}

/// Decodes a JPEG or PNG file into RGB.
pub fn decode_file(path: impl AsRef<Path>) -> Result<RgbImage, VisionError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| VisionError::ImageRead {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    decode_bytes(&bytes)
}

/// Decodes JPEG or PNG bytes into RGB, within [`MAX_SIDE`] and [`MAX_DECODE_BYTES`] (checked from the header,
/// before the pixel buffer is allocated). A truncated or corrupt file is a [`VisionError::Decode`].
pub fn decode_bytes(bytes: &[u8]) -> Result<RgbImage, VisionError> {
    let mut reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| VisionError::Decode(e.to_string()))?;
    match reader.format() {
        Some(image::ImageFormat::Jpeg) => check_jpeg_complete(bytes)?,
        Some(image::ImageFormat::Png) => {}
        other => {
            return Err(VisionError::Decode(format!(
                "not a JPEG or PNG (detected format: {other:?})"
            )));
        }
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let rgb = reader
        .decode()
        .map_err(|e| VisionError::Decode(e.to_string()))?
        .into_rgb8();
    let (w, h) = rgb.dimensions();
    check_size(w, h)?;
    RgbImage::new(w, h, rgb.into_raw())
}

/// The JPEG decoder fills a truncated scan with grey instead of failing, so check the structure ourselves: walk the
/// marker segments and entropy-coded scans and require an end-of-image marker.
fn check_jpeg_complete(b: &[u8]) -> Result<(), VisionError> {
    let truncated = || VisionError::Decode("truncated JPEG: no end-of-image marker".into());
    if b.len() < 4 || b[0] != 0xFF || b[1] != 0xD8 {
        return Err(VisionError::Decode(
            "not a JPEG: missing start-of-image marker".into(),
        ));
    }
    let mut i = 2;
    loop {
        // Markers may be preceded by fill bytes 0xFF.
        while b.get(i) == Some(&0xFF) && b.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        if b.get(i) != Some(&0xFF) {
            return Err(if i >= b.len() {
                truncated()
            } else {
                VisionError::Decode(format!("corrupt JPEG: expected a marker at byte {i}"))
            });
        }
        let marker = *b.get(i + 1).ok_or_else(truncated)?;
        i += 2;
        match marker {
            0xD9 => return Ok(()),
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let len = match (b.get(i), b.get(i + 1)) {
            (Some(&hi), Some(&lo)) => usize::from(u16::from_be_bytes([hi, lo])),
            _ => return Err(truncated()),
        };
        if len < 2 {
            return Err(VisionError::Decode(format!(
                "corrupt JPEG: segment length {len} at byte {i}"
            )));
        }
        i += len;
        if i > b.len() {
            return Err(truncated());
        }
        if marker == 0xDA {
            // Entropy-coded data runs to the next marker that is neither a stuffed 0xFF00 nor a restart.
            loop {
                let next = b
                    .get(i..)
                    .and_then(|rest| rest.iter().position(|&x| x == 0xFF))
                    .ok_or_else(truncated)?;
                i += next;
                match b.get(i + 1) {
                    None => return Err(truncated()),
                    Some(0x00 | 0xD0..=0xD7 | 0xFF) => i += 1,
                    Some(_) => break,
                }
            }
        }
    }
}

/// Rejects sizes outside `MIN_SIDE..=MAX_SIDE`.
fn check_size(w: u32, h: u32) -> Result<(), VisionError> {
    if w < MIN_SIDE || h < MIN_SIDE {
        return Err(VisionError::invalid_frame(
            FrameProblem::Size,
            format!("{w}x{h} is smaller than the minimum {MIN_SIDE}x{MIN_SIDE}"),
        ));
    }
    if w > MAX_SIDE || h > MAX_SIDE {
        return Err(VisionError::invalid_frame(
            FrameProblem::Size,
            format!("{w}x{h} is larger than the maximum {MAX_SIDE}x{MAX_SIDE}"),
        ));
    }
    Ok(())
}

/// Checks that a plane of `w`×`h` samples fits in `data`: samples `pixel_stride` bytes apart within a row, each
/// `sample_bytes` long, rows `stride` bytes apart. The last row only needs to reach the end of its last sample
/// (Android trims the padding after the last row).
fn check_plane(
    what: &str,
    data: &[u8],
    (w, h): (u32, u32),
    stride: usize,
    (pixel_stride, sample_bytes): (usize, usize),
) -> Result<(), VisionError> {
    let overflow = || {
        VisionError::invalid_frame(
            FrameProblem::Size,
            format!("{what}: {w}x{h} with stride {stride} overflows"),
        )
    };
    let row_bytes = (w as usize - 1)
        .checked_mul(pixel_stride)
        .and_then(|n| n.checked_add(sample_bytes))
        .ok_or_else(overflow)?;
    if stride < row_bytes {
        return Err(VisionError::invalid_frame(
            FrameProblem::Stride,
            format!(
                "{what}: row stride {stride} is smaller than a row of {w} pixels ({row_bytes} bytes)"
            ),
        ));
    }
    let need = (h as usize - 1)
        .checked_mul(stride)
        .and_then(|n| n.checked_add(row_bytes))
        .ok_or_else(overflow)?;
    if data.len() < need {
        return Err(VisionError::invalid_frame(
            FrameProblem::BufferTooShort,
            format!(
                "{what}: {w}x{h} with stride {stride} needs at least {need} bytes, got {}",
                data.len()
            ),
        ));
    }
    Ok(())
}

/// A source of RGB pixels addressed in buffer coordinates; indices are valid once the buffer was checked.
trait Source {
    /// The RGB value of buffer pixel `(x, y)`.
    fn rgb(&self, x: usize, y: usize) -> [u8; 3];
}

/// Packed pixels of `N` bytes, in RGB order or, with `BGR`, in B, G, R(, A) order.
struct Packed<'a, const N: usize, const BGR: bool> {
    data: &'a [u8],
    stride: usize,
}

impl<const N: usize, const BGR: bool> Source for Packed<'_, N, BGR> {
    #[inline(always)]
    fn rgb(&self, x: usize, y: usize) -> [u8; 3] {
        let i = y * self.stride + x * N;
        let p = &self.data[i..i + 3];
        if BGR {
            [p[2], p[1], p[0]]
        } else {
            [p[0], p[1], p[2]]
        }
    }
}

/// 4:2:0 YUV planes.
struct Yuv<'a> {
    y: &'a [u8],
    u: &'a [u8],
    v: &'a [u8],
    y_stride: usize,
    uv_stride: usize,
    uv_pixel_stride: usize,
}

impl Source for Yuv<'_> {
    #[inline(always)]
    fn rgb(&self, x: usize, y: usize) -> [u8; 3] {
        let luma = self.y[y * self.y_stride + x];
        let c = (y / 2) * self.uv_stride + (x / 2) * self.uv_pixel_stride;
        yuv_to_rgb(luma, self.u[c], self.v[c])
    }
}

/// Packed 4:2:2 `Y0 U Y1 V` macropixels.
struct Yuyv<'a> {
    data: &'a [u8],
    stride: usize,
}

impl Source for Yuyv<'_> {
    #[inline(always)]
    fn rgb(&self, x: usize, y: usize) -> [u8; 3] {
        let i = y * self.stride + (x / 2) * 4;
        let pair = &self.data[i..i + 4];
        yuv_to_rgb(pair[(x & 1) * 2], pair[1], pair[3])
    }
}

/// 8-bit grey, one byte per pixel.
struct Gray<'a> {
    data: &'a [u8],
    stride: usize,
}

impl Source for Gray<'_> {
    #[inline(always)]
    fn rgb(&self, x: usize, y: usize) -> [u8; 3] {
        let g = self.data[y * self.stride + x];
        [g, g, g]
    }
}

/// BT.601 full-range YUV → RGB in 16.16 fixed point.
#[inline(always)]
fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let y = (y as i32) << 16;
    let (u, v) = (u as i32 - 128, v as i32 - 128);
    let r = y + 91_881 * v;
    let g = y - 22_554 * u - 46_802 * v;
    let b = y + 116_130 * u;
    let clamp = |x: i32| ((x + 32_768) >> 16).clamp(0, 255) as u8;
    [clamp(r), clamp(g), clamp(b)]
}

/// The one pass: for every upright output pixel, reads the buffer pixel it comes from. `w`, `h` are the buffer's
/// (already validated) size.
fn convert<S: Source>(
    src: &S,
    w: u32,
    h: u32,
    rotation: Rotation,
    mirror: bool,
    out: &mut RgbImage,
) {
    let (sw, sh) = (w as isize, h as isize);
    let (ow, oh) = if rotation.is_quarter() {
        (h, w)
    } else {
        (w, h)
    };
    // Buffer coordinates as affine functions of the upright ones: sx = a·ux + b·uy + c, sy = d·ux + e·uy + f.
    let (a, b, c, d, e, f) = match rotation {
        Rotation::R0 => (1, 0, 0, 0, 1, 0),
        Rotation::R90 => (0, 1, 0, -1, 0, sh - 1),
        Rotation::R180 => (-1, 0, sw - 1, 0, -1, sh - 1),
        Rotation::R270 => (0, -1, sw - 1, 1, 0, 0),
    };
    // Mirror: ux = ow − 1 − ox.
    let (ux0, dux) = if mirror {
        (ow as isize - 1, -1)
    } else {
        (0, 1)
    };
    let len = packed_len(ow, oh).expect("validated sizes are at most 8192x8192");
    out.width = ow;
    out.height = oh;
    out.data.resize(len, 0);
    for (oy, row) in out.data.chunks_exact_mut(3 * ow as usize).enumerate() {
        let uy = oy as isize;
        let (mut sx, mut sy) = (a * ux0 + b * uy + c, d * ux0 + e * uy + f);
        let (dx, dy) = (a * dux, d * dux);
        for px in row.chunks_exact_mut(3) {
            px.copy_from_slice(&src.rgb(sx as usize, sy as usize));
            sx += dx;
            sy += dy;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::image::{ExtendedColorType, ImageEncoder};

    /// A w×h RGB image made of 2×2 blocks of distinct colours (so 4:2:0 chroma loses nothing).
    fn blocks(w: u32, h: u32) -> Vec<u8> {
        let mut data = Vec::with_capacity(packed_len(w, h).unwrap());
        for y in 0..h {
            for x in 0..w {
                let (bx, by) = (x / 2, y / 2);
                data.extend([
                    (bx * 37 + by * 11) as u8,
                    (bx * 13 + by * 29 + 60) as u8,
                    (bx * 5 + by * 53 + 120) as u8,
                ]);
            }
        }
        data
    }

    fn frame(pixels: Pixels<'_>, width: u32, height: u32) -> Frame<'_> {
        Frame {
            pixels,
            width,
            height,
            rotation: Rotation::R0,
            mirror: false,
        }
    }

    /// BT.601 full-range RGB → YUV, the inverse of the conversion under test.
    fn yuv(p: &[u8]) -> (u8, u8, u8) {
        let (r, g, b) = (p[0] as f32, p[1] as f32, p[2] as f32);
        let y = 0.299 * r + 0.587 * g + 0.114 * b;
        let u = 128.0 + (b - y) / 1.772;
        let v = 128.0 + (r - y) / 1.402;
        let q = |x: f32| x.round().clamp(0.0, 255.0) as u8;
        (q(y), q(u), q(v))
    }

    fn max_diff(a: &[u8], b: &[u8]) -> u8 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max().unwrap()
    }

    fn invalid(r: Result<RgbImage, VisionError>) -> String {
        match r {
            Err(VisionError::InvalidFrame { detail: m, .. }) => m,
            other => panic!("expected InvalidFrame, got {other:?}"),
        }
    }

    /// Reference: rotate packed RGB clockwise by `quarters` quarter turns, then mirror.
    fn reference(
        data: &[u8],
        w: usize,
        h: usize,
        quarters: usize,
        mirror: bool,
    ) -> (usize, usize, Vec<u8>) {
        let (mut w, mut h, mut d) = (w, h, data.to_vec());
        for _ in 0..quarters {
            let mut r = vec![0; d.len()];
            for y in 0..h {
                for x in 0..w {
                    // Clockwise: (x, y) → (h − 1 − y, x) in an h-wide image.
                    let o = 3 * (x * h + (h - 1 - y));
                    r[o..o + 3].copy_from_slice(&d[3 * (y * w + x)..3 * (y * w + x) + 3]);
                }
            }
            (w, h, d) = (h, w, r);
        }
        if mirror {
            for row in d.chunks_exact_mut(3 * w) {
                let px: Vec<[u8; 3]> = row
                    .chunks_exact(3)
                    .rev()
                    .map(|p| [p[0], p[1], p[2]])
                    .collect();
                row.copy_from_slice(&px.concat());
            }
        }
        (w, h, d)
    }

    #[test]
    fn rotation_and_mirror_on_a_two_by_three_image() {
        // 2 wide, 3 high: a b / c d / e f.
        let src: Vec<u8> = (1..=6u8).flat_map(|v| [v, v * 10, v * 20]).collect();
        let cases = [
            (Rotation::R0, false, 2, vec![1, 2, 3, 4, 5, 6]),
            (Rotation::R0, true, 2, vec![2, 1, 4, 3, 6, 5]),
            (Rotation::R90, false, 3, vec![5, 3, 1, 6, 4, 2]),
            (Rotation::R90, true, 3, vec![1, 3, 5, 2, 4, 6]),
            (Rotation::R180, false, 2, vec![6, 5, 4, 3, 2, 1]),
            (Rotation::R180, true, 2, vec![5, 6, 3, 4, 1, 2]),
            (Rotation::R270, false, 3, vec![2, 4, 6, 1, 3, 5]),
            (Rotation::R270, true, 3, vec![6, 4, 2, 5, 3, 1]),
        ];
        for (rotation, mirror, ow, want) in cases {
            let mut out = RgbImage::default();
            convert(
                &Packed::<3, false> {
                    data: &src,
                    stride: 6,
                },
                2,
                3,
                rotation,
                mirror,
                &mut out,
            );
            let got: Vec<u8> = out.data.chunks_exact(3).map(|p| p[0]).collect();
            assert_eq!((out.width, got), (ow, want), "{rotation:?} mirror={mirror}");
        }
    }

    #[test]
    fn rgb8_with_padded_stride_and_every_orientation_matches_the_reference() {
        let (w, h) = (34u32, 48u32);
        let rgb = blocks(w, h);
        let stride = 3 * w as usize + 7;
        let mut padded = vec![0xEE; stride * (h as usize - 1) + 3 * w as usize]; // last row unpadded
        for y in 0..h as usize {
            padded[y * stride..y * stride + 3 * w as usize]
                .copy_from_slice(&rgb[3 * y * w as usize..3 * (y + 1) * w as usize]);
        }
        for (q, rotation) in [Rotation::R0, Rotation::R90, Rotation::R180, Rotation::R270]
            .into_iter()
            .enumerate()
        {
            for mirror in [false, true] {
                let f = Frame {
                    rotation,
                    mirror,
                    ..frame(
                        Pixels::Rgb8 {
                            data: &padded,
                            stride,
                        },
                        w,
                        h,
                    )
                };
                let out = f.to_rgb().unwrap();
                let (rw, rh, want) = reference(&rgb, w as usize, h as usize, q, mirror);
                assert_eq!((out.width as usize, out.height as usize), (rw, rh));
                assert!(out.data == want, "{rotation:?} mirror={mirror}");
            }
        }
    }

    #[test]
    fn bgra8_round_trip_ignores_alpha_and_padding() {
        let (w, h) = (40u32, 32u32);
        let rgb = blocks(w, h);
        let stride = 4 * w as usize + 16;
        let mut bgra = vec![0u8; stride * h as usize];
        for (i, p) in rgb.chunks_exact(3).enumerate() {
            let (x, y) = (i % w as usize, i / w as usize);
            bgra[y * stride + 4 * x..y * stride + 4 * x + 4].copy_from_slice(&[
                p[2],
                p[1],
                p[0],
                (i * 7) as u8,
            ]);
        }
        let out = frame(
            Pixels::Bgra8 {
                data: &bgra,
                stride,
            },
            w,
            h,
        )
        .to_rgb()
        .unwrap();
        assert_eq!(out.data, rgb);
    }

    #[test]
    fn nv21_round_trip_within_rounding() {
        let (w, h) = (36u32, 34u32);
        let rgb = blocks(w, h);
        let stride = w as usize + 4;
        let mut buf = vec![0u8; stride * h as usize * 3 / 2];
        for y in 0..h as usize {
            for x in 0..w as usize {
                let (yy, u, v) = yuv(&rgb[3 * (y * w as usize + x)..]);
                buf[y * stride + x] = yy;
                let c = stride * h as usize + (y / 2) * stride + (x / 2) * 2;
                buf[c] = v;
                buf[c + 1] = u;
            }
        }
        let pixels = Pixels::nv21_contiguous(&buf, h, stride).unwrap();
        let out = frame(pixels, w, h).to_rgb().unwrap();
        let d = max_diff(&out.data, &rgb);
        assert!(d <= 3, "NV21 max channel error {d}");
    }

    /// Builds YUV_420_888 planes the way Android lays them out (pixel stride 2: U and V views of one interleaved
    /// buffer, each trimmed after its last sample) and checks the round trip.
    #[test]
    fn yuv_420_888_planar_and_interleaved_round_trip() {
        let (w, h) = (38u32, 32u32);
        let (wu, hu) = (w as usize, h as usize);
        let rgb = blocks(w, h);
        let y_stride = wu + 10;
        let mut yp = vec![0u8; y_stride * (hu - 1) + wu];
        for y in 0..hu {
            for x in 0..wu {
                yp[y * y_stride + x] = yuv(&rgb[3 * (y * wu + x)..]).0;
            }
        }
        let chroma = |x: usize, y: usize| {
            let (_, u, v) = yuv(&rgb[3 * (2 * y * wu + 2 * x)..]);
            (u, v)
        };
        let (cw, ch) = (wu / 2, hu / 2);
        // Planar (I420-like, pixel stride 1).
        let uv_stride = cw + 3;
        let (mut up, mut vp) = (vec![0u8; uv_stride * ch], vec![0u8; uv_stride * ch]);
        for y in 0..ch {
            for x in 0..cw {
                (up[y * uv_stride + x], vp[y * uv_stride + x]) = chroma(x, y);
            }
        }
        let planar = Pixels::Yuv420 {
            y: &yp,
            u: &up,
            v: &vp,
            y_stride,
            uv_stride,
            uv_pixel_stride: 1,
        };
        let d = max_diff(&frame(planar, w, h).to_rgb().unwrap().data, &rgb);
        assert!(d <= 3, "planar max channel error {d}");
        // Interleaved (NV12 memory, pixel stride 2): u = buf[0..], v = buf[1..], both trimmed.
        let uv_stride = 2 * cw + 8;
        let mut inter = vec![0u8; uv_stride * (ch - 1) + 2 * cw];
        for y in 0..ch {
            for x in 0..cw {
                (
                    inter[y * uv_stride + 2 * x],
                    inter[y * uv_stride + 2 * x + 1],
                ) = chroma(x, y);
            }
        }
        let (u, v) = (&inter[..inter.len() - 1], &inter[1..]);
        let semi = Pixels::Yuv420 {
            y: &yp,
            u,
            v,
            y_stride,
            uv_stride,
            uv_pixel_stride: 2,
        };
        let f = Frame {
            rotation: Rotation::R90,
            mirror: true,
            ..frame(semi, w, h)
        };
        let (_, _, want) = reference(&rgb, wu, hu, 1, true);
        let d = max_diff(&f.to_rgb().unwrap().data, &want);
        assert!(d <= 3, "interleaved max channel error {d}");
    }

    #[test]
    fn yuv_conversion_is_bt601_full_range() {
        assert_eq!(yuv_to_rgb(0, 128, 128), [0, 0, 0]);
        assert_eq!(yuv_to_rgb(255, 128, 128), [255, 255, 255]);
        // Pure red in full-range BT.601: Y 76, U 85, V 255.
        let red = yuv_to_rgb(76, 85, 255);
        assert!(red[0] >= 253 && red[1] <= 2 && red[2] <= 2, "{red:?}");
    }

    #[test]
    fn to_rgb_into_reuses_the_buffer() {
        let (w, h) = (32u32, 32u32);
        let rgb = blocks(w, h);
        let mut out = RgbImage::default();
        let f = frame(
            Pixels::Rgb8 {
                data: &rgb,
                stride: 96,
            },
            w,
            h,
        );
        f.to_rgb_into(&mut out).unwrap();
        let ptr = out.data.as_ptr();
        Frame {
            rotation: Rotation::R270,
            ..f
        }
        .to_rgb_into(&mut out)
        .unwrap();
        assert_eq!(out.data.as_ptr(), ptr, "the second conversion reallocated");
        // A failed conversion leaves the previous image alone.
        assert!(
            frame(
                Pixels::Rgb8 {
                    data: &rgb[..10],
                    stride: 96
                },
                w,
                h
            )
            .to_rgb_into(&mut out)
            .is_err()
        );
        assert_eq!((out.width, out.height, out.data.len()), (32, 32, 3072));
    }

    #[test]
    fn bad_sizes_strides_and_lengths_are_typed_errors() {
        let buf = vec![0u8; 4096];
        let rgb = |w, h, stride| frame(Pixels::Rgb8 { data: &buf, stride }, w, h).to_rgb();
        assert!(invalid(rgb(0, 0, 0)).contains("0x0"));
        assert!(invalid(rgb(1, 1, 3)).contains("minimum"));
        assert!(invalid(rgb(31, 40, 93)).contains("minimum"));
        assert!(invalid(rgb(9000, 40, 27000)).contains("maximum"));
        let m = invalid(rgb(40, 40, 120));
        assert!(
            m.contains("4800") && m.contains("4096"),
            "expected vs actual in: {m}"
        );
        assert!(invalid(rgb(40, 32, 100)).contains("stride 100 is smaller"));
        assert!(invalid(rgb(8192, 8192, usize::MAX)).contains("overflow"));
        let bgra = frame(
            Pixels::Bgra8 {
                data: &buf,
                stride: 4 * 40,
            },
            40,
            40,
        )
        .to_rgb();
        assert!(invalid(bgra).contains("6400"));
        let yuv = |ps, u: &'static [u8]| {
            let y = vec![0u8; 32 * 32];
            frame(
                Pixels::Yuv420 {
                    y: &y,
                    u,
                    v: &[0; 256],
                    y_stride: 32,
                    uv_stride: 16,
                    uv_pixel_stride: ps,
                },
                32,
                32,
            )
            .to_rgb()
        };
        assert!(invalid(yuv(3, &[0; 256])).contains("pixel stride 3"));
        assert!(invalid(yuv(1, &[0; 255])).contains("YUV_420_888 U"));
        assert!(invalid(yuv(2, &[0; 256])).contains("smaller than a row"));
        let nv21 = vec![0u8; 32 * 32 + 100];
        assert!(
            invalid(frame(Pixels::nv21_contiguous(&nv21, 32, 32).unwrap(), 32, 32).to_rgb())
                .contains("NV21 VU")
        );
        assert!(matches!(
            Pixels::nv21_contiguous(&nv21, 64, 32),
            Err(VisionError::InvalidFrame { .. })
        ));
        assert!(matches!(
            Pixels::nv21_contiguous(&nv21, u32::MAX, usize::MAX),
            Err(VisionError::InvalidFrame { .. })
        ));
        assert!(Rotation::from_degrees(45).is_err());
        assert_eq!(Rotation::from_degrees(-90).unwrap(), Rotation::R270);
    }

    #[test]
    fn yuyv_with_odd_width_and_padded_stride_round_trips_in_every_orientation() {
        let (w, h) = (35u32, 32u32);
        let rgb = blocks(w, h);
        let stride = 4 * w.div_ceil(2) as usize + 6;
        let buf = webcam_buffers::yuyv(&rgb, w, h, stride);
        assert_eq!(
            buf.len(),
            stride * (h as usize - 1) + 4 * 18,
            "last row unpadded"
        );
        for (q, rotation) in [Rotation::R0, Rotation::R90, Rotation::R180, Rotation::R270]
            .into_iter()
            .enumerate()
        {
            let f = Frame {
                rotation,
                mirror: q % 2 == 1,
                ..frame(Pixels::Yuyv { data: &buf, stride }, w, h)
            };
            let out = f.to_rgb().unwrap();
            let (rw, rh, want) = reference(&rgb, w as usize, h as usize, q, q % 2 == 1);
            assert_eq!((out.width as usize, out.height as usize), (rw, rh));
            let d = max_diff(&out.data, &want);
            assert!(d <= 3, "YUYV {rotation:?}: max channel error {d}");
        }
    }

    #[test]
    fn nv12_with_odd_height_and_padded_stride_round_trips() {
        let (w, h) = (36u32, 33u32);
        let rgb = blocks(w, h);
        let stride = w as usize + 12;
        let buf = webcam_buffers::nv12(&rgb, w, h, stride);
        let pixels = Pixels::nv12_contiguous(&buf, h, stride).unwrap();
        let d = max_diff(&frame(pixels, w, h).to_rgb().unwrap().data, &rgb);
        assert!(d <= 3, "NV12 max channel error {d}");
        let f = Frame {
            rotation: Rotation::R270,
            ..frame(pixels, w, h)
        };
        let (_, _, want) = reference(&rgb, w as usize, h as usize, 3, false);
        let d = max_diff(&f.to_rgb().unwrap().data, &want);
        assert!(d <= 3, "NV12 R270 max channel error {d}");
    }

    #[test]
    fn webcam_formats_give_known_colours() {
        let (w, h) = (32u32, 32u32);
        // Pure red in full-range BT.601 is Y 76, U 85, V 255; white is Y 255 with neutral chroma.
        let red_yuyv: Vec<u8> = [76, 85, 76, 255].repeat(16 * 32);
        let white_yuyv: Vec<u8> = [255, 128, 255, 128].repeat(16 * 32);
        let is_red = |p: &[u8]| p[0] >= 253 && p[1] <= 2 && p[2] <= 2;
        let yuyv = |data| {
            frame(Pixels::Yuyv { data, stride: 64 }, w, h)
                .to_rgb()
                .unwrap()
        };
        assert!(yuyv(&red_yuyv).data.chunks_exact(3).all(is_red));
        assert!(yuyv(&white_yuyv).data.iter().all(|&c| c == 255));
        // The same semi-planar bytes are red as NV12 (U first) and blue-ish as NV21 (V first).
        let mut semi = vec![76u8; 32 * 32];
        semi.extend([85u8, 255].repeat(16 * 16));
        let nv12 = frame(Pixels::nv12_contiguous(&semi, h, 32).unwrap(), w, h);
        assert!(nv12.to_rgb().unwrap().data.chunks_exact(3).all(is_red));
        let nv21 = frame(Pixels::nv21_contiguous(&semi, h, 32).unwrap(), w, h);
        let p = nv21.to_rgb().unwrap().data[..3].to_vec();
        assert!(
            p[2] > 200 && p[0] < 60,
            "NV21 reading of the NV12 red: {p:?}"
        );
        // BGR8 swaps to RGB; grey repeats its byte.
        let bgr: Vec<u8> = [10, 20, 30].repeat(32 * 32);
        let out = frame(
            Pixels::Bgr8 {
                data: &bgr,
                stride: 96,
            },
            w,
            h,
        )
        .to_rgb()
        .unwrap();
        assert!(out.data.chunks_exact(3).all(|p| p == [30, 20, 10]));
        let grey: Vec<u8> = (0..32 * 40).map(|i| (i % 40) as u8).collect();
        let out = frame(
            Pixels::Gray8 {
                data: &grey,
                stride: 40,
            },
            w,
            h,
        )
        .to_rgb()
        .unwrap();
        assert_eq!(&out.data[..9], &[0, 0, 0, 1, 1, 1, 2, 2, 2]);
        assert_eq!(
            &out.data[3 * 32..3 * 32 + 3],
            &[0, 0, 0],
            "second row starts at the stride"
        );
    }

    #[test]
    fn bad_webcam_buffers_are_typed_errors() {
        let buf = vec![0u8; 4096];
        let yuyv = |w, h, stride, len: usize| {
            frame(
                Pixels::Yuyv {
                    data: &buf[..len],
                    stride,
                },
                w,
                h,
            )
            .to_rgb()
        };
        // 33 pixels need 17 pairs = 68 bytes per row.
        assert!(invalid(yuyv(33, 32, 66, 4096)).contains("YUYV: row stride 66 is smaller"));
        let m = invalid(yuyv(32, 32, 64, 2047));
        assert!(m.contains("2048") && m.contains("2047"), "{m}");
        assert!(invalid(yuyv(8, 8, 16, 4096)).contains("minimum"));
        assert!(invalid(yuyv(8192, 8192, usize::MAX, 4096)).contains("overflow"));
        let nv12 = vec![0u8; 32 * 32 + 100];
        assert!(
            invalid(frame(Pixels::nv12_contiguous(&nv12, 32, 32).unwrap(), 32, 32).to_rgb())
                .contains("NV12 UV")
        );
        let short = Pixels::Nv12 {
            y: &nv12[..100],
            uv: &nv12,
            y_stride: 32,
            uv_stride: 32,
        };
        assert!(invalid(frame(short, 32, 32).to_rgb()).contains("NV12 Y"));
        let empty = Pixels::Nv12 {
            y: &nv12,
            uv: &[],
            y_stride: 32,
            uv_stride: 32,
        };
        assert!(invalid(frame(empty, 32, 32).to_rgb()).contains("NV12 UV"));
        match Pixels::nv12_contiguous(&nv12, 64, 32) {
            Err(VisionError::InvalidFrame { detail: m, .. }) => {
                assert!(m.contains("NV12 buffer"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Pixels::nv12_contiguous(&nv12, u32::MAX, usize::MAX),
            Err(VisionError::InvalidFrame { .. })
        ));
        let bgr = frame(
            Pixels::Bgr8 {
                data: &buf,
                stride: 96,
            },
            32,
            64,
        );
        assert!(invalid(bgr.to_rgb()).contains("BGR8"));
        let grey = frame(
            Pixels::Gray8 {
                data: &buf,
                stride: 31,
            },
            32,
            32,
        );
        assert!(invalid(grey.to_rgb()).contains("GRAY8: row stride 31"));
    }

    fn encode_jpeg(data: &[u8], w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::new();
        ::image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95)
            .write_image(data, w, h, ExtendedColorType::Rgb8)
            .unwrap();
        out
    }

    fn encode_png(data: &[u8], w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::new();
        ::image::codecs::png::PngEncoder::new(&mut out)
            .write_image(data, w, h, ExtendedColorType::Rgb8)
            .unwrap();
        out
    }

    #[test]
    fn encoded_jpeg_and_png_decode_and_orient() {
        let (w, h) = (48u32, 40u32);
        let rgb = blocks(w, h);
        let png = encode_png(&rgb, w, h);
        assert_eq!(decode_bytes(&png).unwrap().data, rgb);
        let f = Frame {
            rotation: Rotation::R180,
            mirror: true,
            ..frame(Pixels::Encoded(&png), 0, 0)
        };
        let (_, _, want) = reference(&rgb, w as usize, h as usize, 2, true);
        assert_eq!(f.to_rgb().unwrap().data, want);
        let jpeg = encode_jpeg(&rgb, w, h);
        let img = frame(Pixels::Encoded(&jpeg), w, h).to_rgb().unwrap();
        let mean_err = img
            .data
            .iter()
            .zip(&rgb)
            .map(|(a, b)| a.abs_diff(*b) as f64)
            .sum::<f64>()
            / rgb.len() as f64;
        assert!(mean_err < 6.0, "JPEG mean error {mean_err}");
        let m = invalid(frame(Pixels::Encoded(&jpeg), 40, 48).to_rgb());
        assert!(m.contains("declared 40x48"), "{m}");
    }

    #[test]
    fn truncated_corrupt_tiny_and_huge_encoded_images_are_typed_errors() {
        let (w, h) = (64u32, 64u32);
        let rgb = blocks(w, h);
        let jpeg = encode_jpeg(&rgb, w, h);
        for cut in [jpeg.len() / 2, jpeg.len() - 2, 3] {
            match decode_bytes(&jpeg[..cut]) {
                Err(VisionError::Decode(_)) => {}
                other => panic!("JPEG cut at {cut}/{}: {other:?}", jpeg.len()),
            }
        }
        let png = encode_png(&rgb, w, h);
        assert!(matches!(
            decode_bytes(&png[..png.len() / 2]),
            Err(VisionError::Decode(_))
        ));
        assert!(matches!(
            decode_bytes(b"definitely not an image"),
            Err(VisionError::Decode(_))
        ));
        assert!(matches!(decode_bytes(&[]), Err(VisionError::Decode(_))));
        // A valid but 1×1 image is refused as a frame.
        assert!(invalid(decode_bytes(&encode_png(&[1, 2, 3], 1, 1))).contains("minimum"));
        // A PNG whose header claims 100000×100000: refused from the header, nothing allocated for it.
        let mut huge = png.clone();
        huge[16..24].copy_from_slice(&[0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0]);
        let crc = crc32(&huge[12..29]);
        huge[29..33].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(decode_bytes(&huge), Err(VisionError::Decode(_))));
        match decode_file("/nonexistent/facepay/frame.jpg") {
            Err(VisionError::ImageRead { path, .. }) => assert!(path.ends_with("frame.jpg")),
            other => panic!("{other:?}"),
        }
    }

    /// PNG's CRC-32 (to forge a header in a test).
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}

/// Webcam buffers built from packed RGB with the inverse BT.601 full-range matrix, for the tests of this module
/// and of the camera mapping. Chroma is sampled at the top-left pixel of each pair or 2×2 block.
#[cfg(test)]
pub(crate) mod webcam_buffers {
    /// BT.601 full-range RGB → YUV.
    pub(crate) fn yuv(p: &[u8]) -> (u8, u8, u8) {
        let (r, g, b) = (p[0] as f32, p[1] as f32, p[2] as f32);
        let y = 0.299 * r + 0.587 * g + 0.114 * b;
        let q = |x: f32| x.round().clamp(0.0, 255.0) as u8;
        (q(y), q(128.0 + (b - y) / 1.772), q(128.0 + (r - y) / 1.402))
    }

    /// Packed YUYV rows `stride` bytes apart, the last row unpadded; an odd width repeats its last pixel.
    pub(crate) fn yuyv(rgb: &[u8], w: u32, h: u32, stride: usize) -> Vec<u8> {
        let (w, h) = (w as usize, h as usize);
        let pairs = w.div_ceil(2);
        let mut out = vec![0u8; stride * (h - 1) + 4 * pairs];
        for y in 0..h {
            for p in 0..pairs {
                let (x0, x1) = (2 * p, (2 * p + 1).min(w - 1));
                let (y0, u, v) = yuv(&rgb[3 * (y * w + x0)..]);
                let y1 = yuv(&rgb[3 * (y * w + x1)..]).0;
                out[y * stride + 4 * p..y * stride + 4 * p + 4].copy_from_slice(&[y0, u, y1, v]);
            }
        }
        out
    }

    /// Contiguous NV12: Y rows then ⌈h/2⌉ interleaved U, V rows, all `stride` bytes apart.
    pub(crate) fn nv12(rgb: &[u8], w: u32, h: u32, stride: usize) -> Vec<u8> {
        let (w, h) = (w as usize, h as usize);
        let mut out = vec![0u8; stride * (h + h.div_ceil(2))];
        for y in 0..h {
            for x in 0..w {
                let (yy, u, v) = yuv(&rgb[3 * (y * w + x)..]);
                out[y * stride + x] = yy;
                if x % 2 == 0 && y % 2 == 0 {
                    let c = stride * h + (y / 2) * stride + x;
                    out[c] = u;
                    out[c + 1] = v;
                }
            }
        }
        out
    }
}

/// Decoding the development data: every still and clip frame must pass the JPEG structure check and decode.
#[cfg(test)]
mod shared_data_tests {
    use super::*;
    use crate::vision::model::test_shared_dir;

    fn jpegs_under(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut files = Vec::new();
        let mut stack = vec![dir.to_owned()];
        while let Some(d) = stack.pop() {
            for e in
                std::fs::read_dir(&d).unwrap_or_else(|e| panic!("cannot list {}: {e}", d.display()))
            {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "jpg") {
                    files.push(p);
                }
            }
        }
        files
    }

    #[test]
    fn every_still_and_clip_frame_decodes() {
        let data = test_shared_dir().join("data");
        for sub in ["stills", "clips"] {
            let files = jpegs_under(&data.join(sub));
            assert!(
                files.len() >= 4,
                "expected JPEGs under {}",
                data.join(sub).display()
            );
            for f in &files {
                let img = decode_file(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
                assert!(
                    img.width >= MIN_SIDE
                        && img.height >= MIN_SIDE
                        && img.data.len() == packed_len(img.width, img.height).unwrap()
                );
            }
        }
    }
}
