//! The pure liveness state machine: one [`Observation`] and a timestamp in, one [`Guidance`] out. No models, no
//! pixels, no I/O, no per-frame history: its memory does not grow with the number of frames.
//!
//! Phases: **aligning** (face in the outline, quality gates passed, held still with eyes open for
//! `placement.hold_s`) ▸ **challenges** (in the order given; each prompt is answered within windows measured from
//! the moment it is first shown, see [`super::challenge`]) with a **neutral** hold (`response.neutral_hold_s`:
//! still, frontal, in the outline) before every prompt after the first ▸ **verifying** (enough passive samples,
//! when the models are present) ▸ verdict. Losing the face for longer than `timing.max_face_gap_s` during the
//! challenges sends the session back to aligning with the challenges reset, so the face that did the challenges
//! is the one that was aligned.
//!
//! Timestamps are seconds in any origin; a timestamp that is not finite or goes backwards counts as the previous
//! one. At most 0.5 s of a gap between two frames counts towards a hold.

use super::challenge::{Challenge, Neutral, Response, Step};
use super::gates::{Gates, Placement, frame_is_good};
use super::guidance::{FailReason, Guidance, GuidanceState, Oval, TimeoutReason};
use super::observation::{FaceObservation, Observation};
use super::passive::PassiveSamples;
use super::policy::LivenessPolicy;
use super::verdict::{ChallengeRecord, Outcome, PassiveMode, Verdict, to_hex};

/// Longest frame gap that counts towards a hold, in seconds.
const MAX_HOLD_STEP_S: f64 = 0.5;
/// Eye-openness samples kept for the running baseline (a fixed ring: bounded memory).
const BASELINE_SAMPLES: usize = 16;
/// Floor of the open-eye baseline (guards against a degenerate measure).
const MIN_BASELINE: f32 = 0.15;

/// Where the session is.
#[derive(Debug, Clone, PartialEq)]
enum Phase {
    /// Bringing the face into the outline; `held_s` of still, in-place time so far.
    Aligning { since: f64, held_s: f64 },
    /// Holding the neutral pose before prompt `index`, since `since`.
    Neutral {
        index: usize,
        since: f64,
        held_s: f64,
    },
    /// Challenge `index` is prompted and being answered.
    Challenge { index: usize, response: Response },
    /// Gathering the last passive samples.
    Verifying { since: f64 },
    /// The verdict is out.
    Done,
}

/// Shows a prompt only once it has been asked for `min_prompt_s` in a row.
#[derive(Debug, Clone, Copy)]
struct Debounce {
    shown: GuidanceState,
    candidate: GuidanceState,
    candidate_since: f64,
}

impl Debounce {
    fn update(&mut self, wanted: GuidanceState, t: f64, min_s: f64) -> GuidanceState {
        if wanted == self.shown {
            self.candidate = wanted;
        } else if wanted != self.candidate {
            self.candidate = wanted;
            self.candidate_since = t;
        }
        if self.candidate != self.shown && t - self.candidate_since >= min_s {
            self.shown = self.candidate;
        }
        self.shown
    }
}

/// Mean pose over a hold: the neutral reference of the next prompt.
#[derive(Debug, Clone, Copy, Default)]
struct PoseAcc {
    yaw: f64,
    pitch: f64,
    height: f64,
    count: u32,
}

impl PoseAcc {
    fn add(&mut self, face: &FaceObservation) {
        let (_, y0, _, y1) = face.extent();
        if face.yaw_deg.is_finite() && face.pitch_deg.is_finite() && (y1 - y0).is_finite() {
            self.yaw += f64::from(face.yaw_deg);
            self.pitch += f64::from(face.pitch_deg);
            self.height += f64::from(y1 - y0);
            self.count += 1;
        }
    }

    fn mean(&self) -> Option<Neutral> {
        let n = f64::from(self.count);
        (self.count > 0).then(|| Neutral {
            yaw: (self.yaw / n) as f32,
            pitch: (self.pitch / n) as f32,
            height: (self.height / n) as f32,
        })
    }
}

/// The liveness state machine.
#[derive(Debug, Clone)]
pub struct LivenessMachine {
    policy: LivenessPolicy,
    nonce: [u8; 32],
    challenges: Vec<Challenge>,
    records: Vec<ChallengeRecord>,
    passive_available: bool,
    phase: Phase,
    gates: Gates,
    display: Option<Debounce>,
    frames: u64,
    start_t: Option<f64>,
    last_t: f64,
    last_face_t: f64,
    prev_center: Option<(f32, f32)>,
    hold_pose: PoseAcc,
    first_neutral: Option<Neutral>,
    baseline: [f32; BASELINE_SAMPLES],
    baseline_len: usize,
    baseline_next: usize,
    passive: PassiveSamples,
    progress: f32,
    verdict: Option<Verdict>,
    last_guidance: Option<Guidance>,
}

/// How a session ends, with its typed reason.
#[derive(Clone, Copy)]
enum Ending {
    Passed,
    Failed(FailReason),
    TimedOut(TimeoutReason),
}

impl LivenessMachine {
    /// A session for `nonce` asking `challenges` in that order (normally [`super::challenges_for_nonce`]);
    /// `passive_available` says whether passive anti-spoof scores will be supplied.
    pub fn new(
        policy: LivenessPolicy,
        nonce: [u8; 32],
        challenges: Vec<Challenge>,
        passive_available: bool,
    ) -> Self {
        let records = challenges
            .iter()
            .map(|&challenge| ChallengeRecord {
                challenge,
                prompted_at_s: None,
                satisfied_frame: None,
                satisfied_at_s: None,
            })
            .collect();
        Self {
            policy,
            nonce,
            challenges,
            records,
            passive_available,
            phase: Phase::Aligning {
                since: 0.0,
                held_s: 0.0,
            },
            gates: Gates::default(),
            display: None,
            frames: 0,
            start_t: None,
            last_t: 0.0,
            last_face_t: 0.0,
            prev_center: None,
            hold_pose: PoseAcc::default(),
            first_neutral: None,
            baseline: [0.0; BASELINE_SAMPLES],
            baseline_len: 0,
            baseline_next: 0,
            passive: PassiveSamples::default(),
            progress: 0.0,
            verdict: None,
            last_guidance: None,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &LivenessPolicy {
        &self.policy
    }

    /// The challenges asked, in order.
    pub fn challenges(&self) -> &[Challenge] {
        &self.challenges
    }

    /// The verdict, once the session has ended.
    pub fn verdict(&self) -> Option<&Verdict> {
        self.verdict.as_ref()
    }

    /// Number of frames pushed so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The challenges with the frames where each was satisfied so far.
    pub fn records(&self) -> &[ChallengeRecord] {
        &self.records
    }

    /// Whether passive anti-spoof scores are expected (the models are loaded).
    pub fn passive_available(&self) -> bool {
        self.passive_available
    }

    /// The session aggregate (`passive.aggregate`) of the passive scores received so far.
    pub fn passive_score(&self) -> Option<f32> {
        self.passive.aggregate(self.policy.passive.aggregate)
    }

    /// Number of passive scores received so far.
    pub fn passive_samples(&self) -> u32 {
        self.passive.count()
    }

    /// The guidance of the last frame pushed.
    pub fn last_guidance(&self) -> Option<&Guidance> {
        self.last_guidance.as_ref()
    }

    /// Whether the next frame, seen as `obs`, should get a passive anti-spoof score: the models are present, the
    /// session is running, there is exactly one good face (lit, sharp, large, frontal), fewer than
    /// `passive.max_samples` were taken and the last one is at least `passive.every_n_frames` frames back.
    pub fn wants_passive_sample(&self, obs: &Observation) -> bool {
        self.passive_available
            && self.verdict.is_none()
            && self.passive.wants(&self.policy, self.frames, obs)
    }

    /// Whether `face` is good enough to be the best frame for matching (lit, sharp, large, frontal, eyes open).
    pub fn is_good_face(&self, face: &FaceObservation) -> bool {
        frame_is_good(face, &self.policy)
            && face.mean_eye_openness() >= self.policy.quality.min_eye_openness
    }

    /// Feeds one frame observed at `timestamp_s` and returns what to show. After the verdict every frame gets the
    /// verdict's guidance again.
    pub fn push(&mut self, obs: &Observation, timestamp_s: f64) -> Guidance {
        let index = self.frames;
        self.frames += 1;
        let t = match self.start_t {
            None => {
                let t = if timestamp_s.is_finite() {
                    timestamp_s
                } else {
                    0.0
                };
                self.start_t = Some(t);
                self.phase = Phase::Aligning {
                    since: t,
                    held_s: 0.0,
                };
                self.last_face_t = t;
                t
            }
            Some(_) if timestamp_s.is_finite() && timestamp_s > self.last_t => timestamp_s,
            Some(_) => self.last_t,
        };
        let dt = (t - self.last_t).clamp(0.0, MAX_HOLD_STEP_S);
        self.last_t = t;
        let oval = Oval::for_frame(&self.policy.oval, obs.frame_width, obs.frame_height);

        if self.verdict.is_none() {
            self.step(obs, index, t, dt, &oval);
        }
        let state = self.display.map_or(GuidanceState::NoFace, |d| d.shown);
        let shown_oval = match &self.phase {
            Phase::Challenge { response, .. } => match response.challenge() {
                Challenge::MoveCloser(outline) => oval.closer(&outline),
                _ => oval,
            },
            _ => oval,
        };
        let g = Guidance {
            frame_index: index,
            state,
            oval: shown_oval,
            progress: self.progress.clamp(0.0, 1.0),
            message_key: state.message_key(),
            message: state.default_text(),
        };
        self.last_guidance = Some(g);
        g
    }

    /// One step of the state machine (the session is still running).
    fn step(&mut self, obs: &Observation, index: u64, t: f64, dt: f64, oval: &Oval) {
        let single = if obs.face_count == 1 {
            obs.face.as_ref()
        } else {
            None
        };
        if let Some(face) = single {
            self.last_face_t = t;
            let eye = face.mean_eye_openness();
            if eye.is_finite() {
                self.add_baseline(eye);
            }
            if let Some(score) = face.passive_score
                && self.passive.count() < self.policy.passive.max_samples
            {
                self.passive.add(index, score);
            }
        }
        let absent = match (obs.face_count, single) {
            (1, Some(_)) => None,
            (n, _) if n > 1 => Some(GuidanceState::MultipleFaces),
            _ => Some(GuidanceState::NoFace),
        };
        if absent.is_some() {
            self.gates.clear();
            self.prev_center = None;
        }

        // A clear spoof needs no more frames.
        let pp = &self.policy.passive;
        if self.passive.count() >= pp.early_fail_samples
            && let Some(score) = self.passive_score()
            && score < pp.threshold
        {
            return self.finish_failed(
                FailReason::PassiveSpoof {
                    score,
                    threshold: pp.threshold,
                },
                index,
                t,
            );
        }
        let start = self.start_t.unwrap_or(t);
        if t - start > self.policy.timing.session_timeout_s {
            let reason = TimeoutReason::Session {
                limit_s: self.policy.timing.session_timeout_s,
            };
            return self.finish_timed_out(reason, index, t);
        }

        match self.phase.clone() {
            Phase::Aligning { since, held_s } => {
                if t - since > self.policy.timing.align_timeout_s {
                    let reason = TimeoutReason::Alignment {
                        limit_s: self.policy.timing.align_timeout_s,
                    };
                    return self.finish_timed_out(reason, index, t);
                }
                let (wanted, held_s) = match (absent, single) {
                    (None, Some(face)) => self.align_frame(face, oval, held_s, dt),
                    _ => (state_or_no_face(absent), 0.0),
                };
                self.progress =
                    0.25 * (held_s / self.policy.placement.hold_s.max(1e-9)).min(1.0) as f32;
                if held_s >= self.policy.placement.hold_s {
                    self.prev_center = None;
                    self.first_neutral = self.hold_pose.mean();
                    self.start_challenge(0, index, t);
                } else {
                    self.phase = Phase::Aligning { since, held_s };
                    self.show(wanted, t);
                }
            }
            Phase::Neutral {
                index: ci,
                since,
                held_s,
            } => {
                let wait = self.policy.response.neutral_timeout_s;
                if t - since > wait {
                    return self.finish_failed(
                        FailReason::NoNeutralPose {
                            within_s: wait as f32,
                        },
                        index,
                        t,
                    );
                }
                let (wanted, held_s) = match (absent, single) {
                    (None, Some(face)) if self.is_neutral(face) => {
                        self.align_frame(face, oval, held_s, dt)
                    }
                    (None, Some(face)) => {
                        self.prev_center = Some(Placement::measure(face, oval).center);
                        self.hold_pose = PoseAcc::default();
                        (GuidanceState::LookStraight, 0.0)
                    }
                    _ => (state_or_no_face(absent), 0.0),
                };
                if held_s >= self.policy.response.neutral_hold_s {
                    self.prev_center = None;
                    self.start_challenge(ci, index, t);
                } else {
                    self.phase = Phase::Neutral {
                        index: ci,
                        since,
                        held_s,
                    };
                    self.show(wanted, t);
                }
            }
            Phase::Challenge {
                index: ci,
                mut response,
            } => {
                if let Some(reason) = response.expired(t, &self.policy) {
                    return self.finish_failed(reason, index, t);
                }
                match single {
                    Some(face) => {
                        let baseline = self.baseline();
                        match response.update(face, t, oval, baseline, &self.policy) {
                            Step::Done => {
                                self.records[ci].satisfied_frame = Some(index);
                                self.records[ci].satisfied_at_s = Some(t - start);
                                return self.start_neutral(ci + 1, index, t);
                            }
                            Step::Fail(reason) => return self.finish_failed(reason, index, t),
                            Step::Pending => {}
                        }
                        self.set_challenge_progress(ci, response.partial());
                        self.phase = Phase::Challenge {
                            index: ci,
                            response,
                        };
                        self.show(prompt(self.challenges[ci]), t);
                    }
                    None => {
                        if t - self.last_face_t > self.policy.timing.max_face_gap_s {
                            // Someone else may be in front of the camera now: start again from the outline.
                            for r in &mut self.records {
                                r.prompted_at_s = None;
                                r.satisfied_frame = None;
                                r.satisfied_at_s = None;
                            }
                            self.hold_pose = PoseAcc::default();
                            self.phase = Phase::Aligning {
                                since: t,
                                held_s: 0.0,
                            };
                            self.progress = 0.0;
                        } else {
                            response.face_lost();
                            self.phase = Phase::Challenge {
                                index: ci,
                                response,
                            };
                        }
                        self.show(state_or_no_face(absent), t);
                    }
                }
            }
            Phase::Verifying { since } => self.verify(since, index, t),
            Phase::Done => {}
        }
    }

    /// Gates, stillness and eye checks of one aligning frame: the prompt wanted and the new hold time.
    fn align_frame(
        &mut self,
        face: &FaceObservation,
        oval: &Oval,
        held_s: f64,
        dt: f64,
    ) -> (GuidanceState, f64) {
        let placement = Placement::measure(face, oval);
        let wanted = self.gates.evaluate(face, &placement, &self.policy);
        let moved = self.prev_center.is_some_and(|(x, y)| {
            let d = ((placement.center.0 - x).powi(2) + (placement.center.1 - y).powi(2)).sqrt();
            d.is_nan() || d > self.policy.placement.max_motion * placement.height.max(f32::EPSILON)
        });
        self.prev_center = Some(placement.center);
        if wanted != GuidanceState::HoldStill || moved {
            self.hold_pose = PoseAcc::default();
            return (wanted, 0.0);
        }
        let eye = face.mean_eye_openness();
        if eye.is_nan() || eye < self.policy.quality.min_eye_openness {
            // Eyes closed (a blink): the hold pauses rather than restarting.
            return (wanted, held_s);
        }
        self.hold_pose.add(face);
        (wanted, held_s + dt)
    }

    /// Whether `face` is back near the pose it held when aligned: yaw and pitch within
    /// `response.neutral_max_drift_deg`, size within `response.neutral_max_scale`.
    fn is_neutral(&self, face: &FaceObservation) -> bool {
        let Some(n) = self.first_neutral else {
            return true;
        };
        let (_, y0, _, y1) = face.extent();
        let growth = (y1 - y0) / n.height.max(f32::EPSILON);
        let drift = self.policy.response.neutral_max_drift_deg;
        (face.yaw_deg - n.yaw).abs() <= drift
            && (face.pitch_deg - n.pitch).abs() <= drift
            && growth <= self.policy.response.neutral_max_scale
            && growth >= 1.0 / self.policy.response.neutral_max_scale
    }

    /// After challenge `ci − 1`: the neutral hold before prompt `ci`, or verifying when all are done.
    fn start_neutral(&mut self, ci: usize, index: u64, t: f64) {
        if ci < self.challenges.len() {
            self.hold_pose = PoseAcc::default();
            self.prev_center = None;
            self.phase = Phase::Neutral {
                index: ci,
                since: t,
                held_s: 0.0,
            };
            self.set_challenge_progress(ci, 0.0);
            self.force(GuidanceState::HoldStill, t);
        } else {
            self.start_challenge(ci, index, t);
        }
    }

    /// Prompts challenge `ci` (or starts verifying when all are done) at frame `index`, time `t`: the pose held
    /// until now is its neutral reference.
    fn start_challenge(&mut self, ci: usize, index: u64, t: f64) {
        if ci < self.challenges.len() {
            let neutral = self
                .hold_pose
                .mean()
                .or(self.first_neutral)
                .unwrap_or(Neutral {
                    yaw: 0.0,
                    pitch: 0.0,
                    height: 1.0,
                });
            self.records[ci].prompted_at_s = Some(t - self.start_t.unwrap_or(t));
            self.phase = Phase::Challenge {
                index: ci,
                response: Response::new(self.challenges[ci], t, neutral),
            };
            self.set_challenge_progress(ci, 0.0);
            self.force(prompt(self.challenges[ci]), t);
        } else {
            self.phase = Phase::Verifying { since: t };
            self.progress = 0.9;
            self.verify(t, index, t);
        }
    }

    /// Verifying: decide once enough passive samples are in (or at once, active-only).
    fn verify(&mut self, since: f64, index: u64, t: f64) {
        let pp = self.policy.passive.clone();
        if !self.passive_available {
            if pp.required {
                return self.finish_failed(FailReason::PassiveUnavailable, index, t);
            }
            return self.finish(Ending::Passed, index, t);
        }
        if self.passive.count() >= pp.min_samples
            && let Some(score) = self.passive_score()
        {
            if score >= pp.threshold {
                return self.finish(Ending::Passed, index, t);
            }
            return self.finish_failed(
                FailReason::PassiveSpoof {
                    score,
                    threshold: pp.threshold,
                },
                index,
                t,
            );
        }
        if t - since > self.policy.timing.verify_timeout_s {
            let reason = TimeoutReason::PassiveSamples {
                samples: self.passive.count(),
                needed: pp.min_samples,
                limit_s: self.policy.timing.verify_timeout_s,
            };
            return self.finish_timed_out(reason, index, t);
        }
        self.progress = 0.9 + 0.1 * self.passive.count() as f32 / pp.min_samples as f32;
        self.phase = Phase::Verifying { since };
        self.force(GuidanceState::Verifying, t);
    }

    fn set_challenge_progress(&mut self, ci: usize, partial: f32) {
        let n = self.challenges.len().max(1) as f32;
        self.progress = 0.25 + 0.65 * (ci as f32 + partial) / n;
    }

    /// Ends in `TimedOut` — unless the passive evidence already says spoof, which takes precedence.
    fn finish_timed_out(&mut self, reason: TimeoutReason, index: u64, t: f64) {
        let pp = &self.policy.passive;
        if self.passive.count() >= pp.min_samples
            && let Some(score) = self.passive_score()
            && score < pp.threshold
        {
            return self.finish_failed(
                FailReason::PassiveSpoof {
                    score,
                    threshold: pp.threshold,
                },
                index,
                t,
            );
        }
        self.finish(Ending::TimedOut(reason), index, t)
    }

    fn finish_failed(&mut self, reason: FailReason, index: u64, t: f64) {
        self.finish(Ending::Failed(reason), index, t)
    }

    fn finish(&mut self, ending: Ending, index: u64, t: f64) {
        let (outcome, state, fail_reason, timeout_reason) = match ending {
            Ending::Passed => (Outcome::Passed, GuidanceState::Passed, None, None),
            Ending::Failed(reason) => (
                Outcome::Failed,
                GuidanceState::Failed { reason },
                Some(reason),
                None,
            ),
            Ending::TimedOut(reason) => (
                Outcome::TimedOut,
                GuidanceState::TimedOut,
                None,
                Some(reason),
            ),
        };
        if outcome == Outcome::Passed {
            self.progress = 1.0;
        }
        let reason = fail_reason
            .map(|r| r.to_string())
            .or_else(|| timeout_reason.map(|r| r.to_string()));
        self.verdict = Some(Verdict {
            outcome,
            reason,
            fail_reason,
            timeout_reason,
            nonce: to_hex(&self.nonce),
            challenges: self.records.clone(),
            passive_mode: if self.passive_available {
                PassiveMode::FusedMinifasnet
            } else {
                PassiveMode::ActiveOnly
            },
            passive_score: self.passive_score(),
            passive_samples: self.passive.count(),
            frames: index + 1,
            time_to_verdict_s: t - self.start_t.unwrap_or(t),
        });
        self.phase = Phase::Done;
        self.force(state, t);
    }

    fn show(&mut self, wanted: GuidanceState, t: f64) {
        let min_s = self.policy.timing.min_prompt_s;
        match &mut self.display {
            Some(d) => {
                d.update(wanted, t, min_s);
            }
            None => self.force(wanted, t),
        }
    }

    fn force(&mut self, state: GuidanceState, t: f64) {
        self.display = Some(Debounce {
            shown: state,
            candidate: state,
            candidate_since: t,
        });
    }

    fn add_baseline(&mut self, eye: f32) {
        self.baseline[self.baseline_next] = eye;
        self.baseline_next = (self.baseline_next + 1) % BASELINE_SAMPLES;
        self.baseline_len = (self.baseline_len + 1).min(BASELINE_SAMPLES);
    }

    /// Running open-eye baseline: median of the last frames' openness (a blink is too short to move it).
    fn baseline(&self) -> f32 {
        let mut v = self.baseline;
        let s = &mut v[..self.baseline_len];
        if s.is_empty() {
            return 1.0;
        }
        s.sort_by(f32::total_cmp);
        s[s.len() / 2].max(MIN_BASELINE)
    }
}

/// The prompt of a challenge.
fn prompt(c: Challenge) -> GuidanceState {
    match c {
        Challenge::Blink => GuidanceState::Blink,
        Challenge::TurnLeft => GuidanceState::TurnLeft,
        Challenge::TurnRight => GuidanceState::TurnRight,
        Challenge::LookUp => GuidanceState::LookUp,
        Challenge::LookDown => GuidanceState::LookDown,
        Challenge::MoveCloser(_) => GuidanceState::FillOutline,
    }
}

fn state_or_no_face(absent: Option<GuidanceState>) -> GuidanceState {
    absent.unwrap_or(GuidanceState::NoFace)
}
