//! Active challenges: the one [`Challenge`] type shared with the checkout payload, parsing of challenge lists, and
//! the [`Response`] detector that times one challenge from its prompt.
//!
//! A challenge is answered the way a human answers a prompt: from a neutral pose (held still just before the
//! prompt, measured as the [`Neutral`] reference), the asked action starts no sooner than a human reacts
//! (`response.min_reaction_s`) and no later than `response.max_onset_s`, and is completed within its window. While
//! it is pending, any other head action — the other way, another axis as the movement's main one, the same action
//! a second time, a deliberate head action while a blink is asked — fails the session. Blinks are involuntary:
//! they never count against the shopper.

use super::LivenessError;
use super::guidance::{FailReason, HeadAction, Oval};
use super::observation::FaceObservation;
use super::policy::{BlinkPolicy, LivenessPolicy};
pub use crate::checkout::protocol::{Challenge, CloserOutline, challenges_for_nonce};

/// Parses a comma-separated challenge list such as `blink,turn_left,look_up` (the JSON names). `move_closer`
/// takes the smallest centred outline, or one written `move_closer:SCALE:DX:DY` (percent, see [`CloserOutline`]).
pub fn parse_challenges(list: &str) -> Result<Vec<Challenge>, LivenessError> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            Challenge::from_name(s)
                .or_else(|| parse_closer(s).map(Challenge::MoveCloser))
                .ok_or_else(|| LivenessError::UnknownChallenge(s.to_string()))
        })
        .collect()
}

/// `move_closer:SCALE:DX:DY` within the protocol's bounds.
fn parse_closer(text: &str) -> Option<CloserOutline> {
    let mut parts = text.strip_prefix("move_closer:")?.split(':');
    let outline = CloserOutline {
        scale_pct: parts.next()?.parse().ok()?,
        dx_pct: parts.next()?.parse().ok()?,
        dy_pct: parts.next()?.parse().ok()?,
    };
    (parts.next().is_none() && outline.is_valid()).then_some(outline)
}

/// The JSON name of a challenge's kind (`"blink"`, `"turn_left"`, `"turn_right"`, `"look_up"`, `"look_down"`,
/// `"move_closer"`).
pub fn challenge_name(c: Challenge) -> &'static str {
    c.name()
}

/// The pose the face held just before a prompt: actions are measured from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Neutral {
    /// Yaw, degrees.
    pub yaw: f32,
    /// Pitch, degrees.
    pub pitch: f32,
    /// Face height, fraction of the frame height.
    pub height: f32,
}

/// What one frame did to a pending challenge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Step {
    /// Still pending.
    Pending,
    /// Done on this frame.
    Done,
    /// The session fails.
    Fail(FailReason),
}

/// Where the asked head action is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Motion {
    /// Not started.
    Waiting,
    /// Started, the threshold not reached yet.
    Started,
    /// Started and abandoned before the threshold: a second start fails.
    Abandoned,
    /// Threshold reached: waiting for the return to neutral.
    Reached,
}

/// Where a blink is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum BlinkPhase {
    /// Waiting to see the eyes open.
    WaitOpen,
    /// Eyes open: waiting for them to close.
    Open,
    /// Eyes closed since the given time; the baseline is frozen at its value when they closed (a long closure
    /// must not drag the running baseline down and fake the reopening). `counts` is false for a blink that began
    /// before a human could react to the prompt (involuntary: ignored, never held against the shopper).
    Closed {
        since: f64,
        frozen: f32,
        counts: bool,
    },
}

/// One pending challenge, timed from its prompt.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Response {
    challenge: Challenge,
    prompt_t: f64,
    neutral: Neutral,
    motion: Motion,
    blink: BlinkPhase,
}

/// Head-action signals of one frame against the neutral pose.
#[derive(Debug, Clone, Copy)]
struct Signals {
    yaw: f32,
    pitch: f32,
    growth: f32,
}

impl Response {
    /// `challenge` prompted at `prompt_t`, measured from `neutral`.
    pub(crate) fn new(challenge: Challenge, prompt_t: f64, neutral: Neutral) -> Self {
        Self {
            challenge,
            prompt_t,
            neutral,
            motion: Motion::Waiting,
            blink: BlinkPhase::WaitOpen,
        }
    }

    /// The challenge.
    pub(crate) fn challenge(&self) -> Challenge {
        self.challenge
    }

    /// Partial progress in 0..1 (for the progress bar).
    pub(crate) fn partial(&self) -> f32 {
        match (self.motion, self.blink) {
            (Motion::Reached, _) | (_, BlinkPhase::Closed { counts: true, .. }) => 0.5,
            _ => 0.0,
        }
    }

    /// Whether the window of the asked action has run out at `t` (no face frames needed to notice).
    pub(crate) fn expired(&self, t: f64, policy: &LivenessPolicy) -> Option<FailReason> {
        let r = &policy.response;
        let elapsed = t - self.prompt_t;
        let started = match self.challenge {
            Challenge::Blink => matches!(self.blink, BlinkPhase::Closed { counts: true, .. }),
            _ => matches!(self.motion, Motion::Started | Motion::Reached),
        };
        if !started && elapsed > r.max_onset_s {
            return Some(FailReason::NoResponse {
                challenge: self.challenge,
                within_s: r.max_onset_s as f32,
            });
        }
        let window = self.window(policy);
        (elapsed > window).then_some(FailReason::Incomplete {
            challenge: self.challenge,
            within_s: window as f32,
        })
    }

    /// The completion window of this challenge, seconds from the prompt.
    fn window(&self, policy: &LivenessPolicy) -> f64 {
        let r = &policy.response;
        match self.challenge {
            Challenge::Blink => r.blink_max_complete_s,
            Challenge::MoveCloser(_) => r.closer_max_complete_s,
            _ => r.max_complete_s,
        }
    }

    /// Feeds one frame's face at time `t`: `oval` is the normal outline of the frame, `baseline` the shopper's
    /// open-eye openness measured while holding still.
    pub(crate) fn update(
        &mut self,
        face: &FaceObservation,
        t: f64,
        oval: &Oval,
        baseline: f32,
        policy: &LivenessPolicy,
    ) -> Step {
        if let Some(reason) = self.expired(t, policy) {
            return Step::Fail(reason);
        }
        let after = t - self.prompt_t;
        let Some(s) = self.signals(face) else {
            return Step::Pending;
        };
        let early = after < policy.response.min_reaction_s;
        // Every head action other than the asked one, at the level that gives it away.
        let asked = asked_action(self.challenge);
        for (action, level) in head_actions(&s, policy) {
            if Some(action) == asked {
                continue;
            }
            let contrary = match (asked, level) {
                // Asked to blink: no deliberate head action (one that reaches its threshold); the onset levels
                // are within the sway and pose noise of a head held still while blinking.
                (None, Level::Full) => true,
                (None, _) | (_, Level::None) => false,
                // The other way on the asked axis, from its first degrees.
                (Some(a), Level::Onset) => same_axis(a, action),
                // Another axis at its threshold, when it is the movement's main axis — and only before the asked
                // action has started: a real turn carries some pitch, and pose estimates couple the axes at
                // large yaw (a turn to profile reads as a nod on the dev clips), which is not a nod.
                (Some(a), Level::Full) => {
                    same_axis(a, action)
                        || (matches!(self.motion, Motion::Waiting | Motion::Abandoned)
                            && extent(action, &s, policy) > extent(a, &s, policy))
                }
            };
            if contrary {
                let after_s = after as f32;
                return Step::Fail(if early {
                    FailReason::Anticipated {
                        challenge: self.challenge,
                        seen: action,
                        after_s,
                    }
                } else {
                    FailReason::ContraryAction {
                        challenge: self.challenge,
                        seen: action,
                        after_s,
                    }
                });
            }
        }
        match self.challenge {
            Challenge::Blink => self.update_blink(face, t, baseline, early, &policy.blink),
            _ => self.update_motion(face, &s, oval, after, early, policy),
        }
    }

    /// The face's signals against the neutral pose (`None` for a frame with unusable numbers).
    fn signals(&self, face: &FaceObservation) -> Option<Signals> {
        let (_, y0, _, y1) = face.extent();
        let s = Signals {
            yaw: face.yaw_deg - self.neutral.yaw,
            pitch: face.pitch_deg - self.neutral.pitch,
            growth: (y1 - y0) / self.neutral.height.max(f32::EPSILON),
        };
        (s.yaw.is_finite() && s.pitch.is_finite() && s.growth.is_finite()).then_some(s)
    }

    fn update_motion(
        &mut self,
        face: &FaceObservation,
        s: &Signals,
        oval: &Oval,
        after: f64,
        early: bool,
        policy: &LivenessPolicy,
    ) -> Step {
        // (value towards the asked side, onset, reached, back to neutral)
        let (v, onset, reached, back) = match self.challenge {
            Challenge::TurnLeft
            | Challenge::TurnRight
            | Challenge::LookUp
            | Challenge::LookDown => {
                let (v, a) = match self.challenge {
                    Challenge::TurnLeft => (s.yaw, policy.turn.axis()),
                    Challenge::TurnRight => (-s.yaw, policy.turn.axis()),
                    Challenge::LookUp => (s.pitch, policy.look.axis()),
                    _ => (-s.pitch, policy.look.axis()),
                };
                (v, a.onset, v >= a.full, v <= a.back)
            }
            Challenge::MoveCloser(outline) => {
                let c = &policy.closer;
                let target = c.min_fill * f32::from(outline.scale_pct) / 100.0;
                let big = oval.closer(&outline);
                let (x0, y0, x1, y1) = face.extent();
                let in_place =
                    big.level((x0 + x1) * 0.5, (y0 + y1) * 0.5).sqrt() <= c.max_center_offset;
                // Distances measured above 1 (no growth), so the halfway test below works alike.
                (
                    s.growth - 1.0,
                    c.onset_scale - 1.0,
                    s.growth >= target && in_place,
                    s.growth <= c.return_scale,
                )
            }
            Challenge::Blink => return Step::Pending,
        };
        let started = v >= onset;
        let abandoned = v < 0.5 * onset;
        let after_s = after as f32;
        match self.motion {
            Motion::Waiting | Motion::Abandoned if started || reached => {
                if early {
                    return Step::Fail(FailReason::Anticipated {
                        challenge: self.challenge,
                        seen: asked_action(self.challenge).unwrap_or(HeadAction::MoveCloser),
                        after_s,
                    });
                }
                if self.motion == Motion::Abandoned {
                    return Step::Fail(FailReason::RepeatedAction {
                        challenge: self.challenge,
                        after_s,
                    });
                }
                self.motion = if reached {
                    Motion::Reached
                } else {
                    Motion::Started
                };
            }
            Motion::Started if reached => self.motion = Motion::Reached,
            Motion::Started if abandoned => self.motion = Motion::Abandoned,
            Motion::Reached if back => return Step::Done,
            _ => {}
        }
        Step::Pending
    }

    fn update_blink(
        &mut self,
        face: &FaceObservation,
        t: f64,
        baseline: f32,
        early: bool,
        blink: &BlinkPolicy,
    ) -> Step {
        let eye = face.mean_eye_openness();
        if !eye.is_finite() || face.yaw_deg.abs() > blink.max_yaw_deg {
            return Step::Pending;
        }
        let open = eye >= blink.open_ratio * baseline;
        let closed = eye < blink.closed_ratio * baseline;
        match self.blink {
            BlinkPhase::WaitOpen => {
                if open {
                    self.blink = BlinkPhase::Open;
                }
            }
            BlinkPhase::Open => {
                if closed {
                    self.blink = BlinkPhase::Closed {
                        since: t,
                        frozen: baseline,
                        counts: !early,
                    };
                }
            }
            BlinkPhase::Closed {
                since,
                frozen,
                counts,
            } => {
                if t - since > blink.max_closed_s {
                    self.blink = BlinkPhase::WaitOpen;
                } else if eye >= blink.open_ratio * frozen {
                    if counts {
                        return Step::Done;
                    }
                    self.blink = BlinkPhase::Open;
                }
            }
        }
        Step::Pending
    }

    /// Forgets a half-done blink (the face was lost); a head action's progress stays (its timing goes on).
    pub(crate) fn face_lost(&mut self) {
        self.blink = BlinkPhase::WaitOpen;
    }
}

/// How far a head action has gone on one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Level {
    None,
    Onset,
    Full,
}

/// The head actions of one frame and their levels.
fn head_actions(s: &Signals, p: &LivenessPolicy) -> [(HeadAction, Level); 5] {
    let level = |v: f32, onset: f32, full: f32| {
        if v >= full {
            Level::Full
        } else if v >= onset {
            Level::Onset
        } else {
            Level::None
        }
    };
    let (t, l) = (&p.turn, &p.look);
    [
        (
            HeadAction::TurnLeft,
            level(s.yaw, t.onset_deg, t.threshold_deg),
        ),
        (
            HeadAction::TurnRight,
            level(-s.yaw, t.onset_deg, t.threshold_deg),
        ),
        (
            HeadAction::LookUp,
            level(s.pitch, l.onset_deg, l.threshold_deg),
        ),
        (
            HeadAction::LookDown,
            level(-s.pitch, l.onset_deg, l.threshold_deg),
        ),
        (
            HeadAction::MoveCloser,
            level(
                s.growth,
                p.closer.onset_scale,
                p.closer.min_fill * f32::from(CloserOutline::SCALE_PCT.0) / 100.0,
            ),
        ),
    ]
}

/// The head action a challenge asks for (`None` for a blink).
fn asked_action(c: Challenge) -> Option<HeadAction> {
    match c {
        Challenge::Blink => None,
        Challenge::TurnLeft => Some(HeadAction::TurnLeft),
        Challenge::TurnRight => Some(HeadAction::TurnRight),
        Challenge::LookUp => Some(HeadAction::LookUp),
        Challenge::LookDown => Some(HeadAction::LookDown),
        Challenge::MoveCloser(_) => Some(HeadAction::MoveCloser),
    }
}

/// How far the face has moved along `action`'s axis (either way), in units of that axis's full threshold.
fn extent(action: HeadAction, s: &Signals, p: &LivenessPolicy) -> f32 {
    match action {
        HeadAction::TurnLeft | HeadAction::TurnRight => s.yaw.abs() / p.turn.threshold_deg,
        HeadAction::LookUp | HeadAction::LookDown => s.pitch.abs() / p.look.threshold_deg,
        HeadAction::MoveCloser => {
            let full = p.closer.min_fill * f32::from(CloserOutline::SCALE_PCT.0) / 100.0;
            (s.growth - 1.0).abs() / (full - 1.0).max(f32::EPSILON)
        }
    }
}

/// Whether two head actions move along the same axis (yaw, pitch or distance).
fn same_axis(a: HeadAction, b: HeadAction) -> bool {
    let axis = |h| match h {
        HeadAction::TurnLeft | HeadAction::TurnRight => 0,
        HeadAction::LookUp | HeadAction::LookDown => 1,
        HeadAction::MoveCloser => 2,
    };
    axis(a) == axis(b)
}
