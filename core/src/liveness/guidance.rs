//! What the UI shows: the head outline, one prompt (a stable message key with English text) and a progress bar.

use serde::{Deserialize, Serialize};

use super::policy::OvalPolicy;
use crate::checkout::protocol::{Challenge, CloserOutline};

/// The head outline, in normalised coordinates of the upright image the session analysed (after the frame's
/// rotation and mirror flags are applied): centre `(cx, cy)`, semi-axes `rx` (fraction of the width) and `ry`
/// (fraction of the height). A UI draws it at any resolution as an ellipse centred at `(cx·W, cy·H)` with radii
/// `(rx·W, ry·H)`.
///
/// Mirroring for the front camera: when the preview shown to the shopper is mirrored but the frames pushed to the
/// session are not (or the other way round), draw [`Oval::mirrored`] — `cx` becomes `1 − cx`, the semi-axes are
/// unchanged. When frames are pushed with the same mirror flag as the preview, draw the oval as it is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Oval {
    /// Centre x (0 = left edge, 1 = right edge).
    pub cx: f32,
    /// Centre y (0 = top, 1 = bottom).
    pub cy: f32,
    /// Horizontal semi-axis as a fraction of the frame width.
    pub rx: f32,
    /// Vertical semi-axis as a fraction of the frame height.
    pub ry: f32,
}

impl Oval {
    /// The outline of `policy` on a `width`×`height` frame (its pixel aspect follows `policy.aspect`).
    pub fn for_frame(policy: &OvalPolicy, width: u32, height: u32) -> Self {
        let (w, h) = (width.max(1) as f32, height.max(1) as f32);
        let ry = policy.semi_axis_y;
        Self {
            cx: policy.center_x,
            cy: policy.center_y,
            rx: ry * policy.aspect * h / w,
            ry,
        }
    }

    /// The larger outline of a move-closer challenge: `outline`'s scale applied to both semi-axes, its centre
    /// moved by the outline's offset.
    pub fn closer(&self, outline: &CloserOutline) -> Self {
        let k = f32::from(outline.scale_pct) / 100.0;
        Self {
            cx: self.cx + f32::from(outline.dx_pct) / 100.0,
            cy: self.cy + f32::from(outline.dy_pct) / 100.0,
            rx: self.rx * k,
            ry: self.ry * k,
        }
    }

    /// The same outline seen in a horizontally mirrored preview.
    pub fn mirrored(&self) -> Self {
        Self {
            cx: 1.0 - self.cx,
            ..*self
        }
    }

    /// `((x − cx)/rx)² + ((y − cy)/ry)²`: below 1 inside the outline, 1 on it.
    pub fn level(&self, x: f32, y: f32) -> f32 {
        let dx = (x - self.cx) / self.rx.max(f32::EPSILON);
        let dy = (y - self.cy) / self.ry.max(f32::EPSILON);
        dx * dx + dy * dy
    }
}

/// A head action the session tells apart while a challenge is pending (blinks are not among them: they are
/// involuntary and never count against the shopper).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum HeadAction {
    /// Yaw towards the shopper's left.
    TurnLeft,
    /// Yaw towards the shopper's right.
    TurnRight,
    /// Pitch up.
    LookUp,
    /// Pitch down.
    LookDown,
    /// The face grew (came closer).
    MoveCloser,
}

impl HeadAction {
    /// The snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            HeadAction::TurnLeft => "turn_left",
            HeadAction::TurnRight => "turn_right",
            HeadAction::LookUp => "look_up",
            HeadAction::LookDown => "look_down",
            HeadAction::MoveCloser => "move_closer",
        }
    }
}

/// Why a session failed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum FailReason {
    /// The head started moving sooner after the prompt than a human can react: not a response to it.
    Anticipated {
        /// The challenge prompted.
        challenge: Challenge,
        /// The action seen.
        seen: HeadAction,
        /// Seconds from the prompt to the action's start.
        after_s: f32,
    },
    /// While a challenge was pending, another head action was made (the other way, another axis, or moving
    /// while a blink was asked).
    ContraryAction {
        /// The challenge prompted.
        challenge: Challenge,
        /// The action seen instead.
        seen: HeadAction,
        /// Seconds from the prompt.
        after_s: f32,
    },
    /// The asked action was started, abandoned and started again: a second action, not one response.
    RepeatedAction {
        /// The challenge prompted.
        challenge: Challenge,
        /// Seconds from the prompt.
        after_s: f32,
    },
    /// The asked action did not start within the response window.
    NoResponse {
        /// The challenge prompted.
        challenge: Challenge,
        /// The window, seconds from the prompt.
        within_s: f32,
    },
    /// The asked action started but was not completed within its window.
    Incomplete {
        /// The challenge prompted.
        challenge: Challenge,
        /// The window, seconds from the prompt.
        within_s: f32,
    },
    /// Between two challenges the face did not come back to a still, frontal pose in the outline in time.
    NoNeutralPose {
        /// The wait allowed, seconds.
        within_s: f32,
    },
    /// The fused passive anti-spoof score is below the policy threshold.
    PassiveSpoof {
        /// The fused score.
        score: f32,
        /// The policy threshold.
        threshold: f32,
    },
    /// The policy requires the passive models and they are not installed.
    PassiveUnavailable,
}

impl std::fmt::Display for FailReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailReason::PassiveSpoof { score, threshold } => {
                write!(
                    f,
                    "passive anti-spoof score {score:.3} is below the threshold {threshold:.3}"
                )
            }
            FailReason::PassiveUnavailable => {
                write!(
                    f,
                    "the policy requires passive anti-spoof and its models are not installed"
                )
            }
            FailReason::Anticipated {
                challenge,
                seen,
                after_s,
            } => write!(
                f,
                "{} started {after_s:.2} s after the {} prompt: sooner than a human reacts",
                seen.name(),
                challenge.name()
            ),
            FailReason::ContraryAction {
                challenge,
                seen,
                after_s,
            } => write!(
                f,
                "{} while {} was asked ({after_s:.2} s after the prompt)",
                seen.name(),
                challenge.name()
            ),
            FailReason::RepeatedAction { challenge, after_s } => write!(
                f,
                "{} was started a second time ({after_s:.2} s after the prompt)",
                challenge.name()
            ),
            FailReason::NoResponse {
                challenge,
                within_s,
            } => write!(
                f,
                "{} did not start within {within_s} s of its prompt",
                challenge.name()
            ),
            FailReason::Incomplete {
                challenge,
                within_s,
            } => write!(
                f,
                "{} was not completed within {within_s} s of its prompt",
                challenge.name()
            ),
            FailReason::NoNeutralPose { within_s } => write!(
                f,
                "the face did not hold a still, frontal pose in the outline within {within_s} s between challenges"
            ),
        }
    }
}

/// Which time limit a session reached before it could decide.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum TimeoutReason {
    /// The whole session took longer than its limit.
    Session {
        /// The limit, in seconds.
        limit_s: f64,
    },
    /// The face was not held in the outline in time.
    Alignment {
        /// The limit, in seconds.
        limit_s: f64,
    },
    /// Too few frames were good enough for the passive check in time.
    PassiveSamples {
        /// Frames sampled.
        samples: u32,
        /// Frames needed.
        needed: u32,
        /// The limit, in seconds.
        limit_s: f64,
    },
    /// The frames stopped (camera closed, clip ended) before the session decided.
    InputEnded,
}

impl std::fmt::Display for TimeoutReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TimeoutReason::Session { limit_s } => {
                write!(f, "the session took longer than {limit_s} s")
            }
            TimeoutReason::Alignment { limit_s } => {
                write!(f, "the face was not held in the outline within {limit_s} s")
            }
            TimeoutReason::PassiveSamples {
                samples,
                needed,
                limit_s,
            } => write!(
                f,
                "only {samples} of {needed} passive samples within {limit_s} s"
            ),
            TimeoutReason::InputEnded => {
                write!(f, "the frames stopped before the session decided")
            }
        }
    }
}

/// The prompt shown for a frame.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum GuidanceState {
    /// No face in the frame.
    NoFace,
    /// More than one face in the frame.
    MultipleFaces,
    /// The face is too small: come closer.
    MoveCloser,
    /// The face overflows the outline: move back.
    MoveBack,
    /// The face is off the outline's centre.
    CenterFace,
    /// The head is turned or tilted.
    LookStraight,
    /// The face is in place: hold still (the hold is being counted).
    HoldStill,
    /// The face region is too dark.
    TooDark,
    /// The face region is over-exposed.
    TooBright,
    /// The face region is blurred.
    Blurry,
    /// Challenge: blink.
    Blink,
    /// Challenge: turn the head to your left.
    TurnLeft,
    /// Challenge: turn the head to your right.
    TurnRight,
    /// Challenge: look up.
    LookUp,
    /// Challenge: look down.
    LookDown,
    /// Challenge: move closer until the face fills the larger outline shown, then back.
    FillOutline,
    /// All challenges done; the verdict is being computed.
    Verifying,
    /// Verdict: live.
    Passed,
    /// Verdict: not live.
    Failed {
        /// Why.
        reason: FailReason,
    },
    /// Verdict: ran out of time.
    TimedOut,
}

impl GuidanceState {
    /// Stable message key for localisation (UIs translate by key).
    pub fn message_key(&self) -> &'static str {
        match self {
            GuidanceState::NoFace => "liveness.no_face",
            GuidanceState::MultipleFaces => "liveness.multiple_faces",
            GuidanceState::MoveCloser => "liveness.move_closer",
            GuidanceState::MoveBack => "liveness.move_back",
            GuidanceState::CenterFace => "liveness.center_face",
            GuidanceState::LookStraight => "liveness.look_straight",
            GuidanceState::HoldStill => "liveness.hold_still",
            GuidanceState::TooDark => "liveness.too_dark",
            GuidanceState::TooBright => "liveness.too_bright",
            GuidanceState::Blurry => "liveness.blurry",
            GuidanceState::Blink => "liveness.blink",
            GuidanceState::TurnLeft => "liveness.turn_left",
            GuidanceState::TurnRight => "liveness.turn_right",
            GuidanceState::LookUp => "liveness.look_up",
            GuidanceState::LookDown => "liveness.look_down",
            GuidanceState::FillOutline => "liveness.fill_outline",
            GuidanceState::Verifying => "liveness.verifying",
            GuidanceState::Passed => "liveness.passed",
            GuidanceState::Failed { .. } => "liveness.failed",
            GuidanceState::TimedOut => "liveness.timed_out",
        }
    }

    /// English default text for the message key.
    pub fn default_text(&self) -> &'static str {
        match self {
            GuidanceState::NoFace => "Place your face in the outline",
            GuidanceState::MultipleFaces => "Only one face, please",
            GuidanceState::MoveCloser => "Move closer",
            GuidanceState::MoveBack => "Move back a little",
            GuidanceState::CenterFace => "Center your face in the outline",
            GuidanceState::LookStraight => "Look straight at the camera",
            GuidanceState::HoldStill => "Hold still",
            GuidanceState::TooDark => "Find more light",
            GuidanceState::TooBright => "Too bright: avoid direct light",
            GuidanceState::Blurry => "Hold the phone steady",
            GuidanceState::Blink => "Blink",
            GuidanceState::TurnLeft => "Turn your head to your left, then back",
            GuidanceState::TurnRight => "Turn your head to your right, then back",
            GuidanceState::LookUp => "Look up, then back",
            GuidanceState::LookDown => "Look down, then back",
            GuidanceState::FillOutline => "Move closer to fill the larger outline, then back",
            GuidanceState::Verifying => "Verifying…",
            GuidanceState::Passed => "Done",
            GuidanceState::Failed { .. } => "We could not verify you",
            GuidanceState::TimedOut => "Time is up: please try again",
        }
    }

    /// Whether this is a challenge prompt (a response to it is being timed).
    pub fn is_challenge(&self) -> bool {
        matches!(
            self,
            GuidanceState::Blink
                | GuidanceState::TurnLeft
                | GuidanceState::TurnRight
                | GuidanceState::LookUp
                | GuidanceState::LookDown
                | GuidanceState::FillOutline
        )
    }

    /// True for `Passed`, `Failed` and `TimedOut`: the session is over.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            GuidanceState::Passed | GuidanceState::Failed { .. } | GuidanceState::TimedOut
        )
    }

    /// The snake_case name used in JSON (`"no_face"`, `"turn_left"`, …).
    pub fn name(&self) -> &'static str {
        self.message_key().trim_start_matches("liveness.")
    }
}

/// What the session answers for each frame.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Guidance {
    /// Index of the frame this answers (0-based, in push order).
    pub frame_index: u64,
    /// The prompt.
    pub state: GuidanceState,
    /// The outline to draw.
    pub oval: Oval,
    /// Progress of the whole session, 0..1.
    pub progress: f32,
    /// Stable message key (see [`GuidanceState::message_key`]).
    pub message_key: &'static str,
    /// English default text for the key.
    pub message: &'static str,
}
