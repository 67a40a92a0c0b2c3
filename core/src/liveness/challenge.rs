//! Active challenges: the one [`Challenge`] type shared with the checkout payload, parsing of challenge lists, and
//! the detectors that decide when a challenge is satisfied.

use super::LivenessError;
use super::observation::FaceObservation;
use super::policy::{BlinkPolicy, TurnPolicy};
pub use crate::checkout::protocol::{Challenge, challenges_for_nonce};

/// Parses a comma-separated challenge list such as `blink,turn_left,turn_right` (the JSON names).
pub fn parse_challenges(list: &str) -> Result<Vec<Challenge>, LivenessError> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s {
            "blink" => Ok(Challenge::Blink),
            "turn_left" => Ok(Challenge::TurnLeft),
            "turn_right" => Ok(Challenge::TurnRight),
            other => Err(LivenessError::UnknownChallenge(other.to_string())),
        })
        .collect()
}

/// The JSON name of a challenge (`"blink"`, `"turn_left"`, `"turn_right"`).
pub fn challenge_name(c: Challenge) -> &'static str {
    match c {
        Challenge::Blink => "blink",
        Challenge::TurnLeft => "turn_left",
        Challenge::TurnRight => "turn_right",
    }
}

/// Progress of one challenge, fed one face per frame.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Detector {
    /// Blink: eyes must be seen open, then closed, then open again within `max_closed_s`.
    Blink(BlinkPhase),
    /// Turn: yaw must reach `sign · yaw ≥ threshold`, then come back under `return_deg`.
    Turn {
        /// +1 for the shopper's left (positive yaw), −1 for their right.
        sign: f32,
        /// The threshold has been crossed.
        reached: bool,
    },
}

/// Where a blink is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum BlinkPhase {
    /// Waiting to see the eyes open.
    WaitOpen,
    /// Eyes open: waiting for them to close.
    Open,
    /// Eyes closed since the given time; the baseline is frozen at its value when they closed (a long closure
    /// must not drag the running baseline down and fake the reopening).
    Closed(f64, f32),
}

impl Detector {
    /// A fresh detector for `challenge`.
    pub(crate) fn new(challenge: Challenge) -> Self {
        match challenge {
            Challenge::Blink => Detector::Blink(BlinkPhase::WaitOpen),
            Challenge::TurnLeft => Detector::Turn {
                sign: 1.0,
                reached: false,
            },
            Challenge::TurnRight => Detector::Turn {
                sign: -1.0,
                reached: false,
            },
        }
    }

    /// Partial progress in 0..1 (for the progress bar).
    pub(crate) fn partial(&self) -> f32 {
        match self {
            Detector::Blink(BlinkPhase::Closed(..)) | Detector::Turn { reached: true, .. } => 0.5,
            _ => 0.0,
        }
    }

    /// Feeds one frame's face at time `t`; true when the challenge is satisfied on this frame.
    /// `baseline` is the shopper's open-eye openness measured while holding still.
    pub(crate) fn update(
        &mut self,
        face: &FaceObservation,
        t: f64,
        baseline: f32,
        blink: &BlinkPolicy,
        turn: &TurnPolicy,
    ) -> bool {
        match self {
            Detector::Blink(phase) => {
                let eye = face.mean_eye_openness();
                if !eye.is_finite() || face.yaw_deg.abs() > blink.max_yaw_deg {
                    return false;
                }
                let open = eye >= blink.open_ratio * baseline;
                let closed = eye < blink.closed_ratio * baseline;
                match *phase {
                    BlinkPhase::WaitOpen => {
                        if open {
                            *phase = BlinkPhase::Open;
                        }
                        false
                    }
                    BlinkPhase::Open => {
                        if closed {
                            *phase = BlinkPhase::Closed(t, baseline);
                        }
                        false
                    }
                    BlinkPhase::Closed(since, frozen) => {
                        if t - since > blink.max_closed_s {
                            *phase = BlinkPhase::WaitOpen;
                            false
                        } else {
                            eye >= blink.open_ratio * frozen
                        }
                    }
                }
            }
            Detector::Turn { sign, reached } => {
                let yaw = face.yaw_deg;
                if !yaw.is_finite() {
                    return false;
                }
                if *sign * yaw >= turn.threshold_deg {
                    *reached = true;
                }
                *reached && yaw.abs() <= turn.return_deg
            }
        }
    }

    /// Forgets a half-done blink or turn (the face was lost).
    pub(crate) fn reset(&mut self) {
        match self {
            Detector::Blink(phase) => *phase = BlinkPhase::WaitOpen,
            Detector::Turn { reached, .. } => *reached = false,
        }
    }
}
