//! Camera frames as they come from CameraX (NV21, `YUV_420_888` planes) or AVFoundation (BGRA): the bytes, their
//! geometry, the rotation that makes them upright and whether to mirror them. The bytes are borrowed by the core
//! frame; the only copy is the one the FFI makes.

use facepay_core::flow::FacePayError;
use facepay_core::vision::frame::{Frame, Pixels, Rotation};

/// The pixel buffer of a frame, in the camera's own layout. Strides are in bytes.
#[derive(Debug, Clone, uniffi::Enum)]
pub enum FramePixels {
    /// Packed R, G, B bytes, `stride` ≥ 3·width bytes per row.
    Rgb8 {
        /// The buffer.
        data: Vec<u8>,
        /// Bytes from one row to the next.
        stride: u32,
    },
    /// Packed B, G, R, A bytes (iOS `kCVPixelFormatType_32BGRA`), `stride` ≥ 4·width.
    Bgra8 {
        /// The buffer.
        data: Vec<u8>,
        /// `CVPixelBufferGetBytesPerRow`.
        stride: u32,
    },
    /// One NV21 buffer: Y rows, then interleaved V/U rows starting at `stride·height`, both `stride` apart.
    Nv21 {
        /// The buffer.
        data: Vec<u8>,
        /// Bytes from one row to the next (≥ width).
        stride: u32,
    },
    /// Android `YUV_420_888` (CameraX `ImageProxy.planes`): three planes, chroma subsampled 2×2.
    Yuv420 {
        /// Luma plane.
        y: Vec<u8>,
        /// Cb plane.
        u: Vec<u8>,
        /// Cr plane.
        v: Vec<u8>,
        /// `planes[0].rowStride`.
        y_stride: u32,
        /// `planes[1].rowStride` (shared by U and V).
        uv_stride: u32,
        /// `planes[1].pixelStride`: 1 (planar) or 2 (interleaved).
        uv_pixel_stride: u32,
    },
    /// An encoded JPEG or PNG (recorded clips, stills).
    Encoded {
        /// The file's bytes.
        data: Vec<u8>,
    },
}

/// One camera frame.
#[derive(Debug, Clone, uniffi::Record)]
pub struct CameraFrame {
    /// The pixels.
    pub pixels: FramePixels,
    /// Buffer width before rotation (0 for an encoded image: taken from its header).
    pub width: u32,
    /// Buffer height before rotation (0 for an encoded image).
    pub height: u32,
    /// Clockwise rotation that makes the buffer upright (`ImageInfo.rotationDegrees`): 0, 90, 180 or 270.
    pub rotation_degrees: i32,
    /// Flip the upright image left–right (front camera, to match a mirrored preview).
    pub mirror: bool,
}

impl CameraFrame {
    /// The core's view of this frame (borrowing the bytes); a bad rotation or NV21 size is
    /// [`FacePayError::InvalidFrame`].
    pub fn as_core(&self) -> Result<Frame<'_>, FacePayError> {
        let invalid = FacePayError::invalid_frame;
        let pixels = match &self.pixels {
            FramePixels::Rgb8 { data, stride } => Pixels::Rgb8 {
                data,
                stride: *stride as usize,
            },
            FramePixels::Bgra8 { data, stride } => Pixels::Bgra8 {
                data,
                stride: *stride as usize,
            },
            FramePixels::Nv21 { data, stride } => {
                Pixels::nv21_contiguous(data, self.height, *stride as usize).map_err(invalid)?
            }
            FramePixels::Yuv420 {
                y,
                u,
                v,
                y_stride,
                uv_stride,
                uv_pixel_stride,
            } => Pixels::Yuv420 {
                y,
                u,
                v,
                y_stride: *y_stride as usize,
                uv_stride: *uv_stride as usize,
                uv_pixel_stride: *uv_pixel_stride as usize,
            },
            FramePixels::Encoded { data } => Pixels::Encoded(data),
        };
        Ok(Frame {
            pixels,
            width: self.width,
            height: self.height,
            rotation: Rotation::from_degrees(self.rotation_degrees).map_err(invalid)?,
            mirror: self.mirror,
        })
    }
}

/// The size of a frame once upright.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct UprightSize {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Converts `frame` to an upright image without a session (the app's camera set-up check) and answers its size.
#[uniffi::export]
pub fn check_frame(frame: CameraFrame) -> Result<UprightSize, FacePayError> {
    crate::guard::guard(|| {
        let image = frame
            .as_core()?
            .to_rgb()
            .map_err(FacePayError::invalid_frame)?;
        Ok(UprightSize {
            width: image.width,
            height: image.height,
        })
    })
}
