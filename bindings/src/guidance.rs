//! What the UI draws and says for each frame: the head outline, one prompt (a stable message key for
//! localisation, with English default text) and progress. Converted one-to-one from `facepay_core::liveness`.

use facepay_core::checkout::protocol::{Challenge as CoreChallenge, CloserOutline};
use facepay_core::liveness::{
    FailReason as CoreFailReason, Guidance as CoreGuidance, GuidanceState as CoreState, HeadAction,
};
use facepay_core::liveness::{Outcome, Oval as CoreOval};

/// The head outline in normalised coordinates of the upright image: centre `(cx, cy)`, semi-axes `rx` (fraction
/// of the width) and `ry` (fraction of the height). Draw it as an ellipse centred at `(cx·W, cy·H)` with radii
/// `(rx·W, ry·H)`; if the preview is mirrored and the pushed frames are not (or the other way round), use `1 − cx`.
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Record)]
pub struct Oval {
    /// Centre x (0 = left, 1 = right).
    pub cx: f32,
    /// Centre y (0 = top, 1 = bottom).
    pub cy: f32,
    /// Horizontal semi-axis, fraction of the width.
    pub rx: f32,
    /// Vertical semi-axis, fraction of the height.
    pub ry: f32,
}

/// Why a liveness session failed.
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Enum)]
pub enum FailReason {
    /// The passive anti-spoof score is below the policy threshold.
    PassiveSpoof {
        /// The fused score.
        score: f32,
        /// The threshold.
        threshold: f32,
    },
    /// The policy requires the passive models and they are not installed.
    PassiveUnavailable,
    /// The head moved sooner after the prompt than a human reacts.
    Anticipated {
        /// The challenge prompted.
        challenge: Challenge,
        /// The action seen (snake_case name).
        seen: String,
        /// Seconds from the prompt.
        after_s: f32,
    },
    /// Another head action while a challenge was pending.
    ContraryAction {
        /// The challenge prompted.
        challenge: Challenge,
        /// The action seen instead (snake_case name).
        seen: String,
        /// Seconds from the prompt.
        after_s: f32,
    },
    /// The asked action was started a second time.
    RepeatedAction {
        /// The challenge prompted.
        challenge: Challenge,
        /// Seconds from the prompt.
        after_s: f32,
    },
    /// The asked action did not start in its window.
    NoResponse {
        /// The challenge prompted.
        challenge: Challenge,
        /// The window, seconds.
        within_s: f32,
    },
    /// The asked action was not completed in its window.
    Incomplete {
        /// The challenge prompted.
        challenge: Challenge,
        /// The window, seconds.
        within_s: f32,
    },
    /// No still, frontal pose between two challenges in time.
    NoNeutralPose {
        /// The wait allowed, seconds.
        within_s: f32,
    },
}

/// The prompt for a frame.
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Enum)]
pub enum GuidanceState {
    /// No face in the frame.
    NoFace,
    /// More than one face.
    MultipleFaces,
    /// Come closer.
    MoveCloser,
    /// Move back.
    MoveBack,
    /// Centre the face in the outline.
    CenterFace,
    /// Look straight at the camera.
    LookStraight,
    /// In place: hold still.
    HoldStill,
    /// Too dark.
    TooDark,
    /// Over-exposed.
    TooBright,
    /// Blurred.
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
    /// Challenge: move closer to fill the larger outline (drawn as the guidance's oval), then back.
    FillOutline,
    /// Computing the verdict.
    Verifying,
    /// Verdict: live.
    Passed,
    /// Verdict: not live.
    Failed {
        /// Why.
        reason: FailReason,
    },
    /// Verdict: out of time.
    TimedOut,
}

/// The session's answer to one frame.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Guidance {
    /// Index of the frame this answers (0-based).
    pub frame_index: u64,
    /// The prompt.
    pub state: GuidanceState,
    /// The outline to draw.
    pub oval: Oval,
    /// Progress of the whole session, 0..1.
    pub progress: f32,
    /// Stable message key (`liveness.blink`, …): translate by key.
    pub message_key: String,
    /// English default text for the key.
    pub message: String,
    /// Whether the session is over (passed, failed or timed out).
    pub is_terminal: bool,
}

/// An active liveness challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Challenge {
    /// Close and reopen both eyes.
    Blink,
    /// Turn the head to the shopper's left.
    TurnLeft,
    /// Turn the head to the shopper's right.
    TurnRight,
    /// Tilt the head back.
    LookUp,
    /// Tilt the head forward.
    LookDown,
    /// Fill the larger outline, then move back: its height in percent of the normal outline's, its centre's
    /// offset in percent of the frame width and height.
    MoveCloser {
        /// Height, percent of the normal outline's.
        scale_pct: u8,
        /// Centre offset, percent of the frame width (positive: right).
        dx_pct: i8,
        /// Centre offset, percent of the frame height (positive: down).
        dy_pct: i8,
    },
}

/// The liveness decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum LivenessOutcome {
    /// Live.
    Passed,
    /// Not live.
    Failed,
    /// Out of time.
    TimedOut,
}

impl From<CoreOval> for Oval {
    fn from(o: CoreOval) -> Self {
        Oval {
            cx: o.cx,
            cy: o.cy,
            rx: o.rx,
            ry: o.ry,
        }
    }
}

impl From<CoreFailReason> for FailReason {
    fn from(r: CoreFailReason) -> Self {
        match r {
            CoreFailReason::PassiveSpoof { score, threshold } => {
                FailReason::PassiveSpoof { score, threshold }
            }
            CoreFailReason::PassiveUnavailable => FailReason::PassiveUnavailable,
            CoreFailReason::Anticipated {
                challenge,
                seen,
                after_s,
            } => FailReason::Anticipated {
                challenge: challenge.into(),
                seen: action_name(seen),
                after_s,
            },
            CoreFailReason::ContraryAction {
                challenge,
                seen,
                after_s,
            } => FailReason::ContraryAction {
                challenge: challenge.into(),
                seen: action_name(seen),
                after_s,
            },
            CoreFailReason::RepeatedAction { challenge, after_s } => FailReason::RepeatedAction {
                challenge: challenge.into(),
                after_s,
            },
            CoreFailReason::NoResponse {
                challenge,
                within_s,
            } => FailReason::NoResponse {
                challenge: challenge.into(),
                within_s,
            },
            CoreFailReason::Incomplete {
                challenge,
                within_s,
            } => FailReason::Incomplete {
                challenge: challenge.into(),
                within_s,
            },
            CoreFailReason::NoNeutralPose { within_s } => FailReason::NoNeutralPose { within_s },
        }
    }
}

/// The snake_case name of a head action.
fn action_name(a: HeadAction) -> String {
    a.name().to_owned()
}

impl From<CoreState> for GuidanceState {
    fn from(s: CoreState) -> Self {
        match s {
            CoreState::NoFace => GuidanceState::NoFace,
            CoreState::MultipleFaces => GuidanceState::MultipleFaces,
            CoreState::MoveCloser => GuidanceState::MoveCloser,
            CoreState::MoveBack => GuidanceState::MoveBack,
            CoreState::CenterFace => GuidanceState::CenterFace,
            CoreState::LookStraight => GuidanceState::LookStraight,
            CoreState::HoldStill => GuidanceState::HoldStill,
            CoreState::TooDark => GuidanceState::TooDark,
            CoreState::TooBright => GuidanceState::TooBright,
            CoreState::Blurry => GuidanceState::Blurry,
            CoreState::Blink => GuidanceState::Blink,
            CoreState::TurnLeft => GuidanceState::TurnLeft,
            CoreState::TurnRight => GuidanceState::TurnRight,
            CoreState::LookUp => GuidanceState::LookUp,
            CoreState::LookDown => GuidanceState::LookDown,
            CoreState::FillOutline => GuidanceState::FillOutline,
            CoreState::Verifying => GuidanceState::Verifying,
            CoreState::Passed => GuidanceState::Passed,
            CoreState::Failed { reason } => GuidanceState::Failed {
                reason: reason.into(),
            },
            CoreState::TimedOut => GuidanceState::TimedOut,
        }
    }
}

impl From<CoreGuidance> for Guidance {
    fn from(g: CoreGuidance) -> Self {
        Guidance {
            frame_index: g.frame_index,
            state: g.state.into(),
            oval: g.oval.into(),
            progress: g.progress,
            message_key: g.message_key.into(),
            message: g.message.into(),
            is_terminal: g.state.is_terminal(),
        }
    }
}

impl From<CoreChallenge> for Challenge {
    fn from(c: CoreChallenge) -> Self {
        match c {
            CoreChallenge::Blink => Challenge::Blink,
            CoreChallenge::TurnLeft => Challenge::TurnLeft,
            CoreChallenge::TurnRight => Challenge::TurnRight,
            CoreChallenge::LookUp => Challenge::LookUp,
            CoreChallenge::LookDown => Challenge::LookDown,
            CoreChallenge::MoveCloser(o) => Challenge::MoveCloser {
                scale_pct: o.scale_pct,
                dx_pct: o.dx_pct,
                dy_pct: o.dy_pct,
            },
        }
    }
}

impl From<Challenge> for CoreChallenge {
    fn from(c: Challenge) -> Self {
        match c {
            Challenge::Blink => CoreChallenge::Blink,
            Challenge::TurnLeft => CoreChallenge::TurnLeft,
            Challenge::TurnRight => CoreChallenge::TurnRight,
            Challenge::LookUp => CoreChallenge::LookUp,
            Challenge::LookDown => CoreChallenge::LookDown,
            Challenge::MoveCloser {
                scale_pct,
                dx_pct,
                dy_pct,
            } => CoreChallenge::MoveCloser(CloserOutline {
                scale_pct,
                dx_pct,
                dy_pct,
            }),
        }
    }
}

impl From<Outcome> for LivenessOutcome {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Passed => LivenessOutcome::Passed,
            Outcome::Failed => LivenessOutcome::Failed,
            Outcome::TimedOut => LivenessOutcome::TimedOut,
        }
    }
}
