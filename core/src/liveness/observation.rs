//! What the state machine sees of one frame: a few numbers measured by the vision pipeline, no pixels.
//!
//! Coordinates are normalised to the upright image the session analysed (after the frame's rotation and mirror
//! flags): x from 0 (left edge) to 1 (right edge), y from 0 (top) to 1 (bottom).

use serde::{Deserialize, Serialize};

/// A point in normalised frame coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NormPoint {
    /// 0 = left edge, 1 = right edge.
    pub x: f32,
    /// 0 = top edge, 1 = bottom edge.
    pub y: f32,
}

/// An axis-aligned rectangle in normalised frame coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NormRect {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width (fraction of the frame width).
    pub w: f32,
    /// Height (fraction of the frame height).
    pub h: f32,
}

/// Quality of the face region (the vision quality report, restated so the machine stays model-free).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FaceQuality {
    /// Mean luma, 0..255.
    pub brightness: f32,
    /// Standard deviation of luma.
    pub contrast: f32,
    /// Variance of the Laplacian of luma (higher = sharper).
    pub sharpness: f32,
    /// max(width, height) of the face box in pixels.
    pub face_size_px: f32,
}

/// The primary face of a frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaceObservation {
    /// The detector's box.
    pub bbox: NormRect,
    /// The face outline from the landmarks (jaw line and forehead), any number of points; empty = use `bbox`.
    pub contour: Vec<NormPoint>,
    /// Head yaw in degrees, positive when the shopper turns to THEIR left (in the unmirrored scene).
    pub yaw_deg: f32,
    /// Head pitch in degrees, positive when looking up.
    pub pitch_deg: f32,
    /// Head roll in degrees.
    pub roll_deg: f32,
    /// Eye openness (0 closed, ~1 open): `[shopper's right eye, shopper's left eye]`.
    pub eye_openness: [f32; 2],
    /// Quality of the face region.
    pub quality: FaceQuality,
    /// Fused passive anti-spoof score (1 = real) when it was computed for this frame.
    pub passive_score: Option<f32>,
}

/// One frame as the state machine sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// Width of the analysed image in pixels (the outline's shape depends on the aspect ratio).
    pub frame_width: u32,
    /// Height of the analysed image in pixels.
    pub frame_height: u32,
    /// Number of faces found.
    pub face_count: usize,
    /// The primary (largest) face when at least one was found.
    pub face: Option<FaceObservation>,
}

impl Observation {
    /// A frame in which nothing usable was seen (no face, or a frame that could not be decoded).
    pub fn empty(frame_width: u32, frame_height: u32) -> Self {
        Self {
            frame_width,
            frame_height,
            face_count: 0,
            face: None,
        }
    }
}

impl FaceObservation {
    /// Mean of the two eyes' openness.
    pub fn mean_eye_openness(&self) -> f32 {
        (self.eye_openness[0] + self.eye_openness[1]) * 0.5
    }

    /// Bounding box of the contour (or the detector box when there is no contour): `(min_x, min_y, max_x, max_y)`.
    pub fn extent(&self) -> (f32, f32, f32, f32) {
        let finite: Vec<&NormPoint> = self
            .contour
            .iter()
            .filter(|p| p.x.is_finite() && p.y.is_finite())
            .collect();
        if finite.is_empty() {
            return (
                self.bbox.x,
                self.bbox.y,
                self.bbox.x + self.bbox.w,
                self.bbox.y + self.bbox.h,
            );
        }
        finite.iter().fold(
            (f32::MAX, f32::MAX, f32::MIN, f32::MIN),
            |(a, b, c, d), p| (a.min(p.x), b.min(p.y), c.max(p.x), d.max(p.y)),
        )
    }
}
