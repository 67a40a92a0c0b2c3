//! Desktop webcams (feature `camera`): list devices, open one, and deliver its frames as
//! [`vision::frame::Frame`](crate::vision::frame::Frame)s with monotonic timestamps.
//!
//! Capture goes through [nokhwa](https://docs.rs/nokhwa/0.10) and its native backend: V4L2 on Linux,
//! AVFoundation on macOS, Media Foundation on Windows. Android and iOS have no backend here: the apps feed their
//! own camera frames through the push API (`PaymentSession::push_frame`), and the bindings never enable this
//! feature.
//!
//! The buffers the device delivers (YUYV, NV12, MJPEG, RGB, BGR, grey) are **not** decoded by nokhwa: they are
//! mapped as they are to a [`Pixels`] variant by [`frame_from_buffer`] and converted once, by
//! [`Frame::to_rgb_into`](crate::vision::frame::Frame::to_rgb_into), like every other frame source.
//!
//! Every failure is a [`CameraError`]; nothing here panics on device data.

use std::borrow::BorrowMut;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use nokhwa::Buffer;
use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType,
};
use serde::Serialize;

use crate::liveness::{Guidance, LivenessSession, Verdict};
use crate::vision::frame::{Frame, Pixels, Rotation};
use crate::vision::pipeline::Vision;

/// What can go wrong with a webcam.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CameraError {
    /// The platform's camera backend could not list devices.
    #[error("cannot list cameras: {0}")]
    Backend(String),
    /// No video device at all.
    #[error("no camera found: this machine has no video device (on Linux: no /dev/video*)")]
    NoDevice,
    /// No device with the requested index.
    #[error("no camera with index {index}; available: {available:?}")]
    UnknownIndex {
        /// The index asked for.
        index: u32,
        /// The indices that exist.
        available: Vec<u32>,
    },
    /// The device exists but could not be opened or started (busy, permission denied, unplugged).
    #[error("cannot open camera {index}: {reason}")]
    Open {
        /// The device index.
        index: u32,
        /// The backend's explanation.
        reason: String,
    },
    /// No usable pixel format, or a buffer that does not fit its declared format.
    #[error("camera format: {0}")]
    Format(String),
    /// Reading a frame failed.
    #[error("camera capture failed: {0}")]
    Capture(String),
}

/// One video device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CameraDevice {
    /// The index to open it with.
    pub index: u32,
    /// Its human-readable name.
    pub name: String,
    /// The backend's description (e.g. the device node).
    pub description: String,
}

/// Lists the video devices of the native backend (empty when there are none).
pub fn list_cameras() -> Result<Vec<CameraDevice>, CameraError> {
    let backend = nokhwa::native_api_backend().ok_or_else(|| {
        CameraError::Backend(format!(
            "no webcam backend for {} (Android and iOS push their own frames)",
            std::env::consts::OS
        ))
    })?;
    let devices = nokhwa::query(backend).map_err(|e| CameraError::Backend(e.to_string()))?;
    Ok(devices
        .into_iter()
        .enumerate()
        .map(|(position, info)| CameraDevice {
            index: match info.index() {
                CameraIndex::Index(i) => *i,
                // Backends naming devices by string are listed by position, which is how they open them.
                CameraIndex::String(_) => position as u32,
            },
            name: info.human_name(),
            description: info.description().to_owned(),
        })
        .collect())
}

/// The stream to ask for; the nearest format the device offers is used (see [`choose_format`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CameraRequest {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
}

impl Default for CameraRequest {
    /// 1280×720 at 30 frames per second.
    fn default() -> Self {
        Self {
            width: 1280,
            height: 720,
            fps: 30,
        }
    }
}

/// The stream actually opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StreamFormat {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// `YUYV`, `NV12`, `MJPEG`, `RAWRGB`, `RAWBGR` or `GRAY`.
    pub pixel_format: &'static str,
}

impl From<CameraFormat> for StreamFormat {
    fn from(f: CameraFormat) -> Self {
        Self {
            width: f.width(),
            height: f.height(),
            fps: f.frame_rate(),
            pixel_format: format_name(f.format()),
        }
    }
}

/// nokhwa's name of a pixel format.
fn format_name(f: FrameFormat) -> &'static str {
    match f {
        FrameFormat::MJPEG => "MJPEG",
        FrameFormat::YUYV => "YUYV",
        FrameFormat::NV12 => "NV12",
        FrameFormat::GRAY => "GRAY",
        FrameFormat::RAWRGB => "RAWRGB",
        FrameFormat::RAWBGR => "RAWBGR",
    }
}

/// Pixel formats in order of preference: uncompressed YUV first (no decode), then MJPEG, then the rest.
const PREFERENCE: [FrameFormat; 6] = [
    FrameFormat::YUYV,
    FrameFormat::NV12,
    FrameFormat::MJPEG,
    FrameFormat::RAWRGB,
    FrameFormat::RAWBGR,
    FrameFormat::GRAY,
];

/// The offered format nearest to `request`: closest resolution (sum of the width and height differences), then
/// closest frame rate, then the preferred pixel format (YUYV, NV12, MJPEG, RGB, BGR, grey). `None` when nothing
/// is offered.
pub fn choose_format(offered: &[CameraFormat], request: &CameraRequest) -> Option<CameraFormat> {
    offered.iter().copied().min_by_key(|f| {
        let size =
            f.width().abs_diff(request.width) as u64 + f.height().abs_diff(request.height) as u64;
        let rank = PREFERENCE
            .iter()
            .position(|p| *p == f.format())
            .unwrap_or(PREFERENCE.len());
        (size, f.frame_rate().abs_diff(request.fps), rank)
    })
}

/// Bytes per row of a packed or planar buffer of `len` bytes with `rows` rows: `len / rows` when that divides
/// exactly and holds a row (a padded stride), else the unpadded `min_row`. A buffer too short for either is left
/// for the conversion to reject with its exact sizes.
fn infer_stride(len: usize, rows: u32, min_row: usize) -> usize {
    let rows = rows as usize;
    if rows > 0 && len.is_multiple_of(rows) && len / rows >= min_row {
        len / rows
    } else {
        min_row
    }
}

/// Maps a nokhwa buffer (pixel format, resolution, bytes) to an upright, unmirrored [`Frame`] that borrows its
/// bytes — no decoding here: the frame is converted once, later, by the vision code. MJPEG becomes
/// [`Pixels::Encoded`] with the declared size (a JPEG of another size is then an error).
pub fn frame_from_buffer(buffer: &Buffer) -> Result<Frame<'_>, CameraError> {
    let res = buffer.resolution();
    let (w, h) = (res.width(), res.height());
    if w == 0 || h == 0 {
        return Err(CameraError::Format(format!(
            "the device reported a {w}x{h} frame"
        )));
    }
    let data = buffer.buffer();
    let row = |bytes_per_pixel: usize| {
        (w as usize)
            .checked_mul(bytes_per_pixel)
            .ok_or_else(|| CameraError::Format(format!("{w}-pixel rows overflow")))
    };
    let pixels = match buffer.source_frame_format() {
        FrameFormat::MJPEG => Pixels::Encoded(data),
        FrameFormat::YUYV => {
            let min_row = (w.div_ceil(2) as usize) * 4;
            Pixels::Yuyv {
                data,
                stride: infer_stride(data.len(), h, min_row),
            }
        }
        FrameFormat::NV12 => {
            let stride = infer_stride(data.len(), h + h.div_ceil(2), row(1)?);
            Pixels::nv12_contiguous(data, h, stride)
                .map_err(|e| CameraError::Format(e.to_string()))?
        }
        FrameFormat::RAWRGB => Pixels::Rgb8 {
            data,
            stride: infer_stride(data.len(), h, row(3)?),
        },
        FrameFormat::RAWBGR => Pixels::Bgr8 {
            data,
            stride: infer_stride(data.len(), h, row(3)?),
        },
        FrameFormat::GRAY => Pixels::Gray8 {
            data,
            stride: infer_stride(data.len(), h, row(1)?),
        },
    };
    Ok(Frame {
        pixels,
        width: w,
        height: h,
        rotation: Rotation::R0,
        mirror: false,
    })
}

/// A captured frame: the device's buffer and its timestamp.
#[derive(Debug, Clone)]
pub struct CapturedFrame {
    /// The raw buffer as the device delivered it.
    pub buffer: Buffer,
    /// Seconds since the stream opened (monotonic, strictly increasing).
    pub timestamp_s: f64,
}

impl CapturedFrame {
    /// The frame, borrowing the buffer (see [`frame_from_buffer`]).
    pub fn frame(&self) -> Result<Frame<'_>, CameraError> {
        frame_from_buffer(&self.buffer)
    }
}

/// An open webcam stream.
pub struct Camera {
    device: nokhwa::Camera,
    index: u32,
    format: CameraFormat,
    opened: Instant,
    last_t: f64,
}

impl std::fmt::Debug for Camera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Camera")
            .field("index", &self.index)
            .field("format", &StreamFormat::from(self.format))
            .finish_non_exhaustive()
    }
}

impl Camera {
    /// Opens device `index` in the offered format nearest to `request` ([`choose_format`]) and starts the
    /// stream. [`CameraError::NoDevice`] when there is no camera at all, [`CameraError::UnknownIndex`] when
    /// `index` is not one of them.
    pub fn open(index: u32, request: CameraRequest) -> Result<Self, CameraError> {
        let devices = list_cameras()?;
        if devices.is_empty() {
            return Err(CameraError::NoDevice);
        }
        if !devices.iter().any(|d| d.index == index) {
            return Err(CameraError::UnknownIndex {
                index,
                available: devices.iter().map(|d| d.index).collect(),
            });
        }
        let open_err = |e: nokhwa::NokhwaError| CameraError::Open {
            index,
            reason: e.to_string(),
        };
        let any = RequestedFormat::with_formats(RequestedFormatType::None, &PREFERENCE);
        let mut device =
            nokhwa::Camera::with_backend(CameraIndex::Index(index), any, ApiBackend::Auto)
                .map_err(open_err)?;
        let offered = device.compatible_camera_formats().map_err(open_err)?;
        let format = choose_format(&offered, &request).ok_or_else(|| {
            CameraError::Format(format!(
                "camera {index} offers no format FacePay reads (YUYV, NV12, MJPEG, RGB, BGR, grey)"
            ))
        })?;
        let exact = [format.format()];
        device
            .set_camera_requset(RequestedFormat::with_formats(
                RequestedFormatType::Exact(format),
                &exact,
            ))
            .map_err(open_err)?;
        device.open_stream().map_err(open_err)?;
        let format = device.camera_format();
        Ok(Self {
            device,
            index,
            format,
            opened: Instant::now(),
            last_t: f64::NEG_INFINITY,
        })
    }

    /// The device index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The stream's format.
    pub fn format(&self) -> StreamFormat {
        self.format.into()
    }

    /// Waits for the next frame.
    pub fn next_frame(&mut self) -> Result<CapturedFrame, CameraError> {
        let buffer = self
            .device
            .frame()
            .map_err(|e| CameraError::Capture(e.to_string()))?;
        // Strictly increasing, as the liveness session requires, even if two reads land on the same instant.
        let t = self.opened.elapsed().as_secs_f64().max(self.last_t + 1e-6);
        self.last_t = t;
        Ok(CapturedFrame {
            buffer,
            timestamp_s: t,
        })
    }

    /// Captures frames and hands each to `consume` until it answers [`ControlFlow::Break`] (its value is
    /// returned) or `timeout` has passed (`Ok(None)`). A capture or mapping error ends the loop with that error.
    pub fn feed<R>(
        &mut self,
        timeout: Duration,
        mut consume: impl FnMut(&Frame<'_>, f64) -> ControlFlow<R>,
    ) -> Result<Option<R>, CameraError> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let captured = self.next_frame()?;
            if let ControlFlow::Break(r) = consume(&captured.frame()?, captured.timestamp_s) {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// Runs a liveness session on this camera until it reaches its verdict (returned) or `timeout` passes
    /// (`Ok(None)`); `on_guidance` sees every frame's guidance (to show the prompt live).
    pub fn run_session<V: BorrowMut<Vision>>(
        &mut self,
        session: &mut LivenessSession<V>,
        timeout: Duration,
        mut on_guidance: impl FnMut(&Guidance),
    ) -> Result<Option<Verdict>, CameraError> {
        self.feed(timeout, |frame, t| {
            let g = session.push_frame(frame, t);
            on_guidance(&g);
            match session.verdict() {
                Some(v) => ControlFlow::Break(v.clone()),
                None => ControlFlow::Continue(()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use nokhwa::utils::Resolution;

    use super::*;
    use crate::vision::VisionError;
    use crate::vision::frame::webcam_buffers;
    use crate::vision::image::RgbImage;

    /// A w×h test image of 2×2 blocks of distinct colours (4:2:2 and 4:2:0 chroma lose nothing on it).
    fn blocks(w: u32, h: u32) -> Vec<u8> {
        (0..h)
            .flat_map(|y| (0..w).map(move |x| (x / 2, y / 2)))
            .flat_map(|(bx, by)| {
                [
                    (bx * 41 + by * 7) as u8,
                    (bx * 11 + by * 31 + 50) as u8,
                    (bx * 3 + by * 59 + 100) as u8,
                ]
            })
            .collect()
    }

    fn convert(buffer: &Buffer) -> Result<RgbImage, VisionError> {
        frame_from_buffer(buffer).unwrap().to_rgb()
    }

    fn max_diff(a: &[u8], b: &[u8]) -> u8 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max().unwrap()
    }

    #[test]
    fn yuyv_buffer_maps_and_converts_to_the_source_image() {
        let (w, h) = (64u32, 48u32);
        let rgb = blocks(w, h);
        let bytes = webcam_buffers::yuyv(&rgb, w, h, 4 * 32);
        let buffer = Buffer::new(Resolution::new(w, h), &bytes, FrameFormat::YUYV);
        let frame = frame_from_buffer(&buffer).unwrap();
        assert!(matches!(frame.pixels, Pixels::Yuyv { stride: 128, .. }));
        assert_eq!((frame.width, frame.height, frame.mirror), (w, h, false));
        let out = convert(&buffer).unwrap();
        assert_eq!((out.width, out.height), (w, h));
        let d = max_diff(&out.data, &rgb);
        assert!(d <= 3, "YUYV max channel error {d}");
    }

    #[test]
    fn padded_yuyv_rows_are_found_from_the_buffer_length() {
        let (w, h) = (40u32, 32u32);
        let rgb = blocks(w, h);
        let stride = 4 * 20 + 48;
        let mut bytes = webcam_buffers::yuyv(&rgb, w, h, stride);
        bytes.resize(stride * h as usize, 0);
        let buffer = Buffer::new(Resolution::new(w, h), &bytes, FrameFormat::YUYV);
        assert!(matches!(
            frame_from_buffer(&buffer).unwrap().pixels,
            Pixels::Yuyv { stride: 128, .. }
        ));
        let d = max_diff(&convert(&buffer).unwrap().data, &rgb);
        assert!(d <= 3, "padded YUYV max channel error {d}");
    }

    #[test]
    fn nv12_buffer_with_odd_height_maps_and_converts() {
        let (w, h) = (48u32, 35u32);
        let rgb = blocks(w, h);
        for stride in [48usize, 64] {
            let bytes = webcam_buffers::nv12(&rgb, w, h, stride);
            let buffer = Buffer::new(Resolution::new(w, h), &bytes, FrameFormat::NV12);
            match frame_from_buffer(&buffer).unwrap().pixels {
                Pixels::Nv12 {
                    y_stride,
                    uv_stride,
                    ..
                } => assert_eq!((y_stride, uv_stride), (stride, stride)),
                other => panic!("{other:?}"),
            }
            let d = max_diff(&convert(&buffer).unwrap().data, &rgb);
            assert!(d <= 3, "NV12 stride {stride}: max channel error {d}");
        }
    }

    #[test]
    fn mjpeg_buffer_is_decoded_once_by_our_code() {
        use image::ImageEncoder;
        let (w, h) = (64u32, 48u32);
        let rgb = blocks(w, h);
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
            .write_image(&rgb, w, h, image::ExtendedColorType::Rgb8)
            .unwrap();
        let buffer = Buffer::new(Resolution::new(w, h), &jpeg, FrameFormat::MJPEG);
        assert!(matches!(
            frame_from_buffer(&buffer).unwrap().pixels,
            Pixels::Encoded(b) if b.len() == jpeg.len()
        ));
        let out = convert(&buffer).unwrap();
        let mean = out
            .data
            .iter()
            .zip(&rgb)
            .map(|(a, b)| a.abs_diff(*b) as f64)
            .sum::<f64>()
            / rgb.len() as f64;
        assert!(mean < 6.0, "MJPEG mean error {mean}");
        // A JPEG of another size than the stream's is refused.
        let wrong = Buffer::new(Resolution::new(h, w), &jpeg, FrameFormat::MJPEG);
        assert!(
            matches!(convert(&wrong), Err(VisionError::InvalidFrame { detail: m, .. }) if m.contains("declared 48x64"))
        );
        let cut = Buffer::new(
            Resolution::new(w, h),
            &jpeg[..jpeg.len() / 2],
            FrameFormat::MJPEG,
        );
        assert!(matches!(convert(&cut), Err(VisionError::Decode(_))));
    }

    #[test]
    fn rgb_bgr_and_grey_buffers_map_exactly() {
        let (w, h) = (32u32, 32u32);
        let rgb = blocks(w, h);
        let bgr: Vec<u8> = rgb
            .chunks_exact(3)
            .flat_map(|p| [p[2], p[1], p[0]])
            .collect();
        let grey: Vec<u8> = rgb.chunks_exact(3).map(|p| p[1]).collect();
        let buf = |bytes: &[u8], f| Buffer::new(Resolution::new(w, h), bytes, f);
        assert_eq!(convert(&buf(&rgb, FrameFormat::RAWRGB)).unwrap().data, rgb);
        assert_eq!(convert(&buf(&bgr, FrameFormat::RAWBGR)).unwrap().data, rgb);
        let out = convert(&buf(&grey, FrameFormat::GRAY)).unwrap();
        assert!(
            out.data
                .chunks_exact(3)
                .zip(&grey)
                .all(|(p, g)| p == [*g, *g, *g])
        );
    }

    #[test]
    fn short_empty_and_zero_size_buffers_are_typed_errors() {
        let (w, h) = (64u32, 48u32);
        let bytes = vec![0u8; 64 * 48 * 2];
        let short = Buffer::new(
            Resolution::new(w, h),
            &bytes[..bytes.len() - 1],
            FrameFormat::YUYV,
        );
        assert!(
            matches!(convert(&short), Err(VisionError::InvalidFrame { detail: m, .. }) if m.contains("YUYV"))
        );
        let nv12 = Buffer::new(Resolution::new(w, h), &bytes[..64 * 40], FrameFormat::NV12);
        assert!(matches!(
            frame_from_buffer(&nv12),
            Err(CameraError::Format(m)) if m.contains("NV12 buffer")
        ));
        let nv12 = Buffer::new(Resolution::new(w, h), &bytes[..64 * 60], FrameFormat::NV12);
        assert!(
            matches!(convert(&nv12), Err(VisionError::InvalidFrame { detail: m, .. }) if m.contains("NV12 UV"))
        );
        let empty = Buffer::new(Resolution::new(w, h), &[], FrameFormat::MJPEG);
        assert!(matches!(convert(&empty), Err(VisionError::Decode(_))));
        let zero = Buffer::new(Resolution::new(0, h), &bytes, FrameFormat::RAWRGB);
        assert!(
            matches!(frame_from_buffer(&zero), Err(CameraError::Format(m)) if m.contains("0x48"))
        );
        let huge = Buffer::new(Resolution::new(u32::MAX, 2), &bytes, FrameFormat::GRAY);
        assert!(matches!(
            convert(&huge),
            Err(VisionError::InvalidFrame { .. })
        ));
    }

    #[test]
    fn the_nearest_format_wins_then_the_frame_rate_then_yuv() {
        let f = |w, h, ff, fps| CameraFormat::new_from(w, h, ff, fps);
        let offered = [
            f(640, 480, FrameFormat::MJPEG, 30),
            f(1280, 720, FrameFormat::YUYV, 10),
            f(1280, 720, FrameFormat::MJPEG, 30),
            f(1280, 720, FrameFormat::NV12, 30),
            f(1920, 1080, FrameFormat::YUYV, 30),
        ];
        let ask = |width, height, fps| CameraRequest { width, height, fps };
        assert_eq!(
            choose_format(&offered, &ask(1280, 720, 30)),
            Some(offered[3]),
            "NV12 before MJPEG at the same size and rate"
        );
        assert_eq!(
            choose_format(&offered, &ask(1280, 720, 10)),
            Some(offered[1])
        );
        assert_eq!(
            choose_format(&offered, &ask(600, 400, 15)),
            Some(offered[0])
        );
        assert_eq!(
            choose_format(&offered, &ask(4000, 3000, 60)),
            Some(offered[4])
        );
        assert_eq!(choose_format(&[], &CameraRequest::default()), None);
        let s = StreamFormat::from(offered[2]);
        assert_eq!(
            (s.width, s.height, s.fps, s.pixel_format),
            (1280, 720, 30, "MJPEG")
        );
    }

    /// This machine has no video device: opening one must say so, not panic. Where a camera exists (a
    /// developer's laptop) the listing must name it and opening an absent index must be refused.
    #[test]
    fn opening_without_a_device_is_a_typed_error() {
        let devices = list_cameras().expect("the native backend lists devices");
        match Camera::open(0, CameraRequest::default()) {
            Err(CameraError::NoDevice) => assert!(devices.is_empty()),
            Ok(camera) => assert!(devices.iter().any(|d| d.index == camera.index())),
            Err(e) => assert!(!devices.is_empty(), "{e}"),
        }
        let absent = devices.iter().map(|d| d.index).max().map_or(0, |i| i + 1);
        let err = Camera::open(absent, CameraRequest::default()).unwrap_err();
        assert!(
            matches!(
                &err,
                CameraError::NoDevice | CameraError::UnknownIndex { .. }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("camera"));
    }
}
