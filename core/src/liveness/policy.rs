//! The liveness policy: every threshold, tolerance and timeout of the session in one typed, documented config.
//!
//! The same TOML file drives the app, the CLI (`facepay replay --policy FILE`) and the tests;
//! `docs/liveness-policy.toml` holds the defaults and a test checks it equals [`LivenessPolicy::default()`].
//! Every field has a default, so a file may set only what it changes.

use serde::{Deserialize, Serialize};

use super::LivenessError;
use super::passive::{MAX_PASSIVE_SAMPLES, PassiveAggregate};

/// Thresholds, tolerances and timeouts of a liveness session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LivenessPolicy {
    /// The head outline the face must fill.
    pub oval: OvalPolicy,
    /// When the face counts as sitting in the outline.
    pub placement: PlacementPolicy,
    /// Frame-quality gates on the face region.
    pub quality: QualityPolicy,
    /// Blink detection from eye openness.
    pub blink: BlinkPolicy,
    /// Head-turn detection from yaw.
    pub turn: TurnPolicy,
    /// Look up / down detection from pitch.
    pub look: LookPolicy,
    /// Move-closer detection from the face's size and place.
    pub closer: CloserPolicy,
    /// Challenge–response timing: the windows measured from each prompt, and the neutral hold between prompts.
    pub response: ResponsePolicy,
    /// Passive anti-spoof sampling and decision.
    pub passive: PassivePolicy,
    /// Timeouts and anti-flicker timing.
    pub timing: TimingPolicy,
    /// How the session drives the vision pipeline.
    pub vision: VisionPolicy,
}

/// How the session drives the vision pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VisionPolicy {
    /// Run the face detector at least every this many frames (1 = every frame). Tracked frames take the mesh
    /// region from the previous mesh; with tracking (every 5th frame detected) the development clips still gave
    /// 7 of 7 blinks, but the head-turning clip gained one false blink from a tracked mesh that jumped (roll
    /// reading 53°), so the default detects on every frame (BlazeFace costs ~3 ms).
    pub redetect_every: u32,
    /// Run the two eyes' iris models at once on two threads (the frame takes about one iris run less where two
    /// cores are free; the CPU time and the results are the same).
    pub parallel_eyes: bool,
}

impl Default for VisionPolicy {
    /// The pipeline's own defaults ([`Tracking::default`](crate::vision::pipeline::Tracking),
    /// [`PARALLEL_BY_DEFAULT`](crate::vision::eyes::PARALLEL_BY_DEFAULT)): one source.
    fn default() -> Self {
        Self {
            redetect_every: crate::vision::pipeline::Tracking::default().redetect_every,
            parallel_eyes: crate::vision::eyes::PARALLEL_BY_DEFAULT,
        }
    }
}

/// The head outline, in normalised frame coordinates (x: 0 = left edge, 1 = right edge; y: 0 = top, 1 = bottom).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OvalPolicy {
    /// Centre, x (fraction of the frame width).
    pub center_x: f32,
    /// Centre, y (fraction of the frame height).
    pub center_y: f32,
    /// Vertical semi-axis as a fraction of the frame height.
    pub semi_axis_y: f32,
    /// Width / height of the outline in pixels (a face is about 0.75 as wide as it is tall).
    pub aspect: f32,
}

/// Tolerances for the face sitting inside the outline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlacementPolicy {
    /// Smallest face height (landmark contour) as a fraction of the outline height; below: `MoveCloser`.
    pub min_fill: f32,
    /// Largest face height as a fraction of the outline height; above: `MoveBack`.
    pub max_fill: f32,
    /// Largest distance of the face centre from the outline centre, in units of the outline's semi-axes.
    pub max_center_offset: f32,
    /// Largest |yaw| in degrees while aligning; above: `LookStraight`.
    pub max_yaw_deg: f32,
    /// Largest |pitch| in degrees while aligning.
    pub max_pitch_deg: f32,
    /// Largest |roll| in degrees while aligning.
    pub max_roll_deg: f32,
    /// Largest frame-to-frame move of the face centre, as a fraction of the face height, for a frame to count as still.
    pub max_motion: f32,
    /// How long the face must be held in the outline (still, eyes open) before the challenges start, in seconds.
    pub hold_s: f64,
    /// Hysteresis: a gate that has tripped only clears once the value is back inside by this fraction of its limit.
    pub hysteresis: f32,
}

/// Frame-quality gates, measured on the face region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QualityPolicy {
    /// Smallest mean luma (0..255) of the face region; below: `TooDark`.
    pub min_brightness: f32,
    /// Largest mean luma (0..255) of the face region; above: `TooBright`.
    pub max_brightness: f32,
    /// Smallest variance of the Laplacian of the face region's luma; below: `Blurry`.
    pub min_sharpness: f32,
    /// Smallest face size in pixels (max of box width and height); below: `MoveCloser`.
    pub min_face_px: f32,
    /// Smallest mean eye openness (0 closed .. ~1 open) for a frame to count towards the hold and the best frame.
    pub min_eye_openness: f32,
}

/// Blink = both eyes closed, then open again, within a short time. Openness (the iris model's eyelid gap, see
/// `vision::eyes`) is compared with the shopper's running open-eye baseline (median of the last frames). Measured
/// on the development blink clip at 15 fps: open eyes stay within 0.9–1.05 × baseline, the deepest frame of each
/// of the 7 blinks reaches 0.29–0.46 × baseline; the defaults sit in the middle of that gap. Turned heads read
/// unreliable eyes (the far eye is foreshortened, the mesh's corners jump), so those frames are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlinkPolicy {
    /// Eyes count as closed when the mean openness falls below this fraction of the shopper's open-eye baseline.
    pub closed_ratio: f32,
    /// Eyes count as open again when the mean openness rises above this fraction of the baseline.
    pub open_ratio: f32,
    /// Longest closed phase in seconds (longer is not a blink: eyes shut or face lost).
    pub max_closed_s: f64,
    /// Frames with |yaw| above this (degrees) neither close nor reopen a blink.
    pub max_yaw_deg: f32,
}

/// Turn = yaw (relative to the neutral pose held before the prompt) crosses a threshold towards the asked side,
/// then comes back near the neutral pose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TurnPolicy {
    /// Yaw change in degrees the head must reach towards the asked side.
    pub threshold_deg: f32,
    /// Yaw change in degrees under which the head counts as back to neutral.
    pub return_deg: f32,
    /// Yaw change in degrees that counts as the start of a turn (of the asked one, or a contrary one).
    pub onset_deg: f32,
}

/// Look up / down = pitch (relative to the neutral pose) crosses a threshold in the asked direction, then comes
/// back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LookPolicy {
    /// Pitch change in degrees the head must reach in the asked direction.
    pub threshold_deg: f32,
    /// Pitch change in degrees under which the head counts as back to neutral.
    pub return_deg: f32,
    /// Pitch change in degrees that counts as the start of a nod.
    pub onset_deg: f32,
}

/// Move closer = the face grows (face height over its neutral height) until it fills the nonce's larger outline
/// — grown by at least `min_fill ×` the outline's scale, its centre inside that outline — then shrinks back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CloserPolicy {
    /// Growth needed, as a fraction of the larger outline's scale (0.9: a 1.3× outline needs 1.17× growth).
    pub min_fill: f32,
    /// Largest distance of the face centre from the larger outline's centre, in its semi-axis units.
    pub max_center_offset: f32,
    /// Growth that counts as the start of an approach.
    pub onset_scale: f32,
    /// Growth under which the face counts as back.
    pub return_scale: f32,
}

/// Challenge–response timing (seconds, from the moment a prompt is first shown). Human choice reaction times to a
/// visual cue are 0.3–0.6 s (simple reaction ~0.2–0.25 s is the physiological floor), a head turn or nod takes
/// ~0.5–1 s there and back, a voluntary blink ~0.3 s; the windows leave room for slow shoppers while a recording,
/// which never saw the prompt, must happen to start the asked action, and no other, inside them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResponsePolicy {
    /// An action starting sooner than this after its prompt was not a response to it (anticipation): fail.
    pub min_reaction_s: f64,
    /// The asked action must start within this.
    pub max_onset_s: f64,
    /// A turn or a nod must be done (reached and back) within this.
    pub max_complete_s: f64,
    /// A blink must be done (closed and open again) within this.
    pub blink_max_complete_s: f64,
    /// A move-closer must be done (outline filled and left) within this.
    pub closer_max_complete_s: f64,
    /// Between challenges the face holds still, frontal and in the outline this long before the next prompt.
    pub neutral_hold_s: f64,
    /// Longest wait for that neutral hold.
    pub neutral_timeout_s: f64,
    /// How far (yaw and pitch, degrees) the neutral pose may drift from the pose the face was aligned in: a
    /// person's resting pose wanders over a session.
    pub neutral_max_drift_deg: f32,
    /// How far the face height of the neutral pose may drift (as a factor, either way) from the aligned height:
    /// the distance to the camera wanders too.
    pub neutral_max_scale: f32,
}

/// Passive anti-spoof (fused MiniFASNet) sampling and decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PassivePolicy {
    /// Smallest session score (`aggregate` of the session's sampled fused scores, 1 = real) that passes.
    pub threshold: f32,
    /// How the sampled scores become the session score.
    pub aggregate: PassiveAggregate,
    /// Smallest fused score of a single still image (`facepay eval liveness` stills) that passes. Lower than the
    /// session threshold: one frame, no averaging, and on the MiniFASNet sample stills the live `image_T2` scores
    /// only ~0.47 while the attacks score ≤ 0.29.
    pub still_threshold: f32,
    /// Samples needed before a verdict.
    pub min_samples: u32,
    /// Once this many samples are in and their mean is below the threshold, fail at once (a clear spoof needs
    /// no more frames).
    pub early_fail_samples: u32,
    /// Most samples taken in a session (bounds the cost).
    pub max_samples: u32,
    /// Frames between two samples (spreads them over the session).
    pub every_n_frames: u64,
    /// Fail when the models are missing instead of running active-only.
    pub required: bool,
}

/// Timeouts and anti-flicker timing, in seconds of frame timestamps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimingPolicy {
    /// Time allowed to bring the face into the outline and hold it there.
    pub align_timeout_s: f64,
    /// Time allowed to gather the passive samples after the last challenge.
    pub verify_timeout_s: f64,
    /// Time allowed for the whole session.
    pub session_timeout_s: f64,
    /// A prompt is shown only once its condition has held this long (no flicker on noisy input).
    pub min_prompt_s: f64,
    /// Face missing longer than this during the challenges sends the session back to aligning.
    pub max_face_gap_s: f64,
}

impl Default for OvalPolicy {
    fn default() -> Self {
        Self {
            center_x: 0.5,
            center_y: 0.45,
            semi_axis_y: 0.36,
            aspect: 0.75,
        }
    }
}

impl Default for PlacementPolicy {
    fn default() -> Self {
        Self {
            min_fill: 0.4,
            max_fill: 1.15,
            max_center_offset: 0.65,
            max_yaw_deg: 15.0,
            max_pitch_deg: 20.0,
            max_roll_deg: 15.0,
            max_motion: 0.08,
            hold_s: 0.6,
            hysteresis: 0.1,
        }
    }
}

impl Default for QualityPolicy {
    fn default() -> Self {
        Self {
            min_brightness: 50.0,
            max_brightness: 225.0,
            min_sharpness: 5.0,
            min_face_px: 80.0,
            min_eye_openness: 0.3,
        }
    }
}

impl Default for BlinkPolicy {
    fn default() -> Self {
        Self {
            closed_ratio: 0.65,
            open_ratio: 0.85,
            max_closed_s: 1.0,
            max_yaw_deg: 20.0,
        }
    }
}

/// One head axis's levels, measured towards the asked side: start, reached, back to neutral.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AxisLevels {
    /// The action has started.
    pub onset: f32,
    /// The action has gone far enough.
    pub full: f32,
    /// Back to neutral after it.
    pub back: f32,
}

impl TurnPolicy {
    /// The yaw levels.
    pub(crate) fn axis(&self) -> AxisLevels {
        AxisLevels {
            onset: self.onset_deg,
            full: self.threshold_deg,
            back: self.return_deg,
        }
    }
}

impl LookPolicy {
    /// The pitch levels.
    pub(crate) fn axis(&self) -> AxisLevels {
        AxisLevels {
            onset: self.onset_deg,
            full: self.threshold_deg,
            back: self.return_deg,
        }
    }
}

impl Default for TurnPolicy {
    fn default() -> Self {
        Self {
            threshold_deg: 18.0,
            return_deg: 10.0,
            onset_deg: 8.0,
        }
    }
}

impl Default for LookPolicy {
    fn default() -> Self {
        Self {
            threshold_deg: 12.0,
            return_deg: 6.0,
            onset_deg: 6.0,
        }
    }
}

impl Default for CloserPolicy {
    fn default() -> Self {
        Self {
            min_fill: 0.9,
            max_center_offset: 0.4,
            onset_scale: 1.08,
            return_scale: 1.08,
        }
    }
}

impl Default for ResponsePolicy {
    fn default() -> Self {
        Self {
            min_reaction_s: 0.2,
            max_onset_s: 1.6,
            max_complete_s: 5.2,
            blink_max_complete_s: 2.4,
            closer_max_complete_s: 5.0,
            neutral_hold_s: 0.3,
            neutral_timeout_s: 4.0,
            neutral_max_drift_deg: 10.0,
            neutral_max_scale: 1.15,
        }
    }
}

impl Default for PassivePolicy {
    fn default() -> Self {
        Self {
            threshold: 0.21,
            aggregate: PassiveAggregate::TrimmedMean,
            still_threshold: 0.4,
            min_samples: 3,
            early_fail_samples: 5,
            max_samples: 8,
            every_n_frames: 3,
            required: false,
        }
    }
}

impl Default for TimingPolicy {
    fn default() -> Self {
        Self {
            align_timeout_s: 8.0,
            verify_timeout_s: 3.0,
            session_timeout_s: 20.0,
            min_prompt_s: 0.25,
            max_face_gap_s: 1.0,
        }
    }
}

impl LivenessPolicy {
    /// Parses a policy from TOML (missing fields take their defaults) and checks it.
    pub fn from_toml(text: &str) -> Result<Self, LivenessError> {
        let policy: Self =
            toml::from_str(text).map_err(|e| LivenessError::Policy(e.to_string()))?;
        policy.validate()?;
        Ok(policy)
    }

    /// The policy as TOML (the format of `docs/liveness-policy.toml`).
    pub fn to_toml(&self) -> Result<String, LivenessError> {
        toml::to_string(self).map_err(|e| LivenessError::Policy(e.to_string()))
    }

    /// Rejects values that would make the session meaningless (non-finite, negative, inverted ranges).
    pub fn validate(&self) -> Result<(), LivenessError> {
        let bad = |what: &str| Err(LivenessError::Policy(format!("invalid value: {what}")));
        let floats = [
            self.oval.center_x,
            self.oval.center_y,
            self.oval.semi_axis_y,
            self.oval.aspect,
            self.placement.min_fill,
            self.placement.max_fill,
            self.placement.max_center_offset,
            self.placement.max_yaw_deg,
            self.placement.max_pitch_deg,
            self.placement.max_roll_deg,
            self.placement.max_motion,
            self.placement.hysteresis,
            self.quality.min_brightness,
            self.quality.max_brightness,
            self.quality.min_sharpness,
            self.quality.min_face_px,
            self.quality.min_eye_openness,
            self.blink.closed_ratio,
            self.blink.open_ratio,
            self.blink.max_yaw_deg,
            self.turn.threshold_deg,
            self.turn.return_deg,
            self.turn.onset_deg,
            self.look.threshold_deg,
            self.look.return_deg,
            self.look.onset_deg,
            self.closer.min_fill,
            self.closer.max_center_offset,
            self.closer.onset_scale,
            self.closer.return_scale,
            self.passive.threshold,
            self.passive.still_threshold,
        ];
        if floats.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return bad("every number must be finite and non-negative");
        }
        let times = [
            self.placement.hold_s,
            self.blink.max_closed_s,
            self.timing.align_timeout_s,
            self.timing.verify_timeout_s,
            self.timing.session_timeout_s,
            self.timing.min_prompt_s,
            self.timing.max_face_gap_s,
            self.response.min_reaction_s,
            self.response.max_onset_s,
            self.response.max_complete_s,
            self.response.blink_max_complete_s,
            self.response.closer_max_complete_s,
            self.response.neutral_hold_s,
            self.response.neutral_timeout_s,
        ];
        if times.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return bad("every time must be finite and non-negative");
        }
        if !self.response.neutral_max_drift_deg.is_finite()
            || self.response.neutral_max_drift_deg < 0.0
        {
            return bad("response.neutral_max_drift_deg must be finite and non-negative");
        }
        if !self.response.neutral_max_scale.is_finite() || self.response.neutral_max_scale < 1.0 {
            return bad("response.neutral_max_scale must be finite and at least 1");
        }
        if self.oval.semi_axis_y <= 0.0 || self.oval.aspect <= 0.0 {
            return bad("oval semi_axis_y and aspect must be positive");
        }
        if self.placement.min_fill >= self.placement.max_fill {
            return bad("placement.min_fill must be below max_fill");
        }
        if self.quality.min_brightness >= self.quality.max_brightness {
            return bad("quality.min_brightness must be below max_brightness");
        }
        if self.blink.closed_ratio >= self.blink.open_ratio {
            return bad("blink.closed_ratio must be below open_ratio");
        }
        if self.turn.return_deg >= self.turn.threshold_deg
            || self.turn.onset_deg >= self.turn.threshold_deg
        {
            return bad("turn.return_deg and onset_deg must be below threshold_deg");
        }
        if self.look.return_deg >= self.look.threshold_deg
            || self.look.onset_deg >= self.look.threshold_deg
        {
            return bad("look.return_deg and onset_deg must be below threshold_deg");
        }
        if self.closer.onset_scale <= 1.0 || self.closer.return_scale <= 1.0 {
            return bad("closer.onset_scale and return_scale must be above 1");
        }
        let r = &self.response;
        if r.min_reaction_s >= r.max_onset_s
            || r.max_onset_s > r.max_complete_s.min(r.blink_max_complete_s)
            || r.max_onset_s > r.closer_max_complete_s
        {
            return bad("response: need min_reaction_s < max_onset_s <= every max_complete");
        }
        if self.passive.min_samples == 0
            || self.passive.min_samples > self.passive.max_samples
            || self.passive.max_samples as usize > MAX_PASSIVE_SAMPLES
        {
            return bad("passive: need 1 <= min_samples <= max_samples <= 32");
        }
        if self.vision.redetect_every == 0 {
            return bad("vision.redetect_every must be at least 1");
        }
        if self.passive.early_fail_samples < self.passive.min_samples
            || self.passive.early_fail_samples > self.passive.max_samples
        {
            return bad("passive: need min_samples <= early_fail_samples <= max_samples");
        }
        if self.passive.every_n_frames == 0 {
            return bad("passive.every_n_frames must be at least 1");
        }
        if self.passive.threshold > 1.0 || self.passive.still_threshold > 1.0 {
            return bad("passive.threshold is a probability (0..1)");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_through_toml() {
        let p = LivenessPolicy::default();
        let text = p.to_toml().unwrap();
        assert_eq!(LivenessPolicy::from_toml(&text).unwrap(), p);
    }

    #[test]
    fn partial_file_keeps_other_defaults() {
        let p = LivenessPolicy::from_toml("[turn]\nthreshold_deg = 25.0\n").unwrap();
        assert_eq!(p.turn.threshold_deg, 25.0);
        assert_eq!(p.blink, BlinkPolicy::default());
    }

    #[test]
    fn rejects_unknown_fields_and_bad_values() {
        assert!(matches!(
            LivenessPolicy::from_toml("[turn]\nthreshhold = 1.0\n"),
            Err(LivenessError::Policy(_))
        ));
        assert!(matches!(
            LivenessPolicy::from_toml("[turn]\nthreshold_deg = 5.0\nreturn_deg = 10.0\n"),
            Err(LivenessError::Policy(_))
        ));
        assert!(matches!(
            LivenessPolicy::from_toml("[passive]\nmin_samples = 0\n"),
            Err(LivenessError::Policy(_))
        ));
        assert!(matches!(
            LivenessPolicy::from_toml("[quality]\nmin_brightness = -1.0\n"),
            Err(LivenessError::Policy(_))
        ));
    }
}
