//! Placement and quality gates with hysteresis: a gate trips when its value crosses the limit and clears only when
//! the value is back inside by a margin, so a value hovering at the limit does not make the prompt flicker.

use super::guidance::{GuidanceState, Oval};
use super::observation::FaceObservation;
use super::policy::LivenessPolicy;

/// The tripped/clear flag of every gate, in the order they are reported.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Gates {
    too_dark: bool,
    too_bright: bool,
    too_small: bool,
    too_big: bool,
    off_center: bool,
    pose: bool,
    blurry: bool,
}

/// Updates a lower-bound gate (`value` must stay ≥ `min`).
fn lower(flag: &mut bool, value: f32, min: f32, margin: f32) {
    if !value.is_finite() {
        *flag = true;
    } else if *flag {
        if value >= min * (1.0 + margin) {
            *flag = false;
        }
    } else if value < min {
        *flag = true;
    }
}

/// Updates an upper-bound gate (`value` must stay ≤ `max`).
fn upper(flag: &mut bool, value: f32, max: f32, margin: f32) {
    if !value.is_finite() {
        *flag = true;
    } else if *flag {
        if value <= max * (1.0 - margin) {
            *flag = false;
        }
    } else if value > max {
        *flag = true;
    }
}

/// Geometry of a face against the outline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Placement {
    /// Face height / outline height.
    pub fill: f32,
    /// Distance of the face centre from the outline centre, in semi-axis units.
    pub center_offset: f32,
    /// Face centre (normalised).
    pub center: (f32, f32),
    /// Face height (normalised to the frame height).
    pub height: f32,
}

impl Placement {
    /// Measures `face` against `oval`.
    pub(crate) fn measure(face: &FaceObservation, oval: &Oval) -> Self {
        let (x0, y0, x1, y1) = face.extent();
        let center = ((x0 + x1) * 0.5, (y0 + y1) * 0.5);
        let height = y1 - y0;
        let fill = height / (2.0 * oval.ry.max(f32::EPSILON));
        let center_offset = oval.level(center.0, center.1).sqrt();
        Self {
            fill,
            center_offset,
            center,
            height,
        }
    }
}

impl Gates {
    /// Forgets every tripped gate (the face was lost).
    pub(crate) fn clear(&mut self) {
        *self = Gates::default();
    }

    /// Updates every gate with this frame's face and returns the prompt of the first tripped gate, or `HoldStill`.
    pub(crate) fn evaluate(
        &mut self,
        face: &FaceObservation,
        placement: &Placement,
        p: &LivenessPolicy,
    ) -> GuidanceState {
        let h = p.placement.hysteresis;
        let q = &face.quality;
        lower(
            &mut self.too_dark,
            q.brightness,
            p.quality.min_brightness,
            h,
        );
        upper(
            &mut self.too_bright,
            q.brightness,
            p.quality.max_brightness,
            h,
        );
        // Too small: either too few pixels or too small in the outline; clears only when both are fine.
        let small_now =
            !(q.face_size_px >= p.quality.min_face_px && placement.fill >= p.placement.min_fill);
        let small_clear = q.face_size_px >= p.quality.min_face_px * (1.0 + h)
            && placement.fill >= p.placement.min_fill * (1.0 + h);
        if self.too_small {
            self.too_small = !small_clear;
        } else {
            self.too_small = small_now;
        }
        upper(&mut self.too_big, placement.fill, p.placement.max_fill, h);
        upper(
            &mut self.off_center,
            placement.center_offset,
            p.placement.max_center_offset,
            h,
        );
        let pose = [
            face.yaw_deg.abs() / p.placement.max_yaw_deg.max(f32::EPSILON),
            face.pitch_deg.abs() / p.placement.max_pitch_deg.max(f32::EPSILON),
            face.roll_deg.abs() / p.placement.max_roll_deg.max(f32::EPSILON),
        ]
        .into_iter()
        .fold(
            0.0f32,
            |a, b| if b.is_nan() { f32::INFINITY } else { a.max(b) },
        );
        upper(&mut self.pose, pose, 1.0, h);
        lower(&mut self.blurry, q.sharpness, p.quality.min_sharpness, h);

        if self.too_dark {
            GuidanceState::TooDark
        } else if self.too_bright {
            GuidanceState::TooBright
        } else if self.too_small {
            GuidanceState::MoveCloser
        } else if self.too_big {
            GuidanceState::MoveBack
        } else if self.off_center {
            GuidanceState::CenterFace
        } else if self.pose {
            GuidanceState::LookStraight
        } else if self.blurry {
            GuidanceState::Blurry
        } else {
            GuidanceState::HoldStill
        }
    }
}

/// True when `face` is good enough for a passive anti-spoof sample or the best frame: lit, sharp, large, frontal.
/// (No hysteresis: this only selects frames.)
pub(crate) fn frame_is_good(face: &FaceObservation, p: &LivenessPolicy) -> bool {
    let q = &face.quality;
    q.brightness >= p.quality.min_brightness
        && q.brightness <= p.quality.max_brightness
        && q.sharpness >= p.quality.min_sharpness
        && q.face_size_px >= p.quality.min_face_px
        && face.yaw_deg.abs() <= p.placement.max_yaw_deg
        && face.pitch_deg.abs() <= p.placement.max_pitch_deg
        && face.roll_deg.abs() <= p.placement.max_roll_deg
}
