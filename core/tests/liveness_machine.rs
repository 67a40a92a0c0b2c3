//! The liveness state machine on synthetic observation sequences (no models): guidance, hysteresis, challenge
//! order, blink, turn, nod and move-closer detection, the response windows timed from each prompt (anticipation,
//! contrary and repeated actions, no response, the neutral hold between prompts), timeouts, passive decision.

use facepay_core::liveness::{
    Challenge, CloserOutline, FaceObservation, FaceQuality, FailReason, GuidanceState, HeadAction,
    LivenessMachine, LivenessPolicy, NormPoint, NormRect, Observation, Outcome, PassiveMode,
    challenges_for_nonce,
};

const W: u32 = 640;
const H: u32 = 480;
const FPS: f64 = 15.0;
/// Frames of a human reaction time after a prompt (0.33 s: above `min_reaction_s`, inside `max_onset_s`).
const REACT: usize = 5;
/// Frames of the neutral hold before the next prompt (`neutral_hold_s` = 0.3 s).
const HOLD: usize = 5;

/// A synthetic face: an ellipse contour of height `h` (fraction of the frame height) centred at (cx, cy).
#[derive(Clone, Copy)]
struct F {
    cx: f32,
    cy: f32,
    h: f32,
    yaw: f32,
    pitch: f32,
    eyes: f32,
    brightness: f32,
    sharpness: f32,
    passive: Option<f32>,
}

impl Default for F {
    fn default() -> Self {
        // Centred in the default outline (0.5, 0.45, ry 0.36), filling 80 % of its height.
        F {
            cx: 0.5,
            cy: 0.45,
            h: 0.576,
            yaw: 0.0,
            pitch: 0.0,
            eyes: 0.9,
            brightness: 120.0,
            sharpness: 60.0,
            passive: None,
        }
    }
}

impl F {
    fn obs(self) -> Observation {
        let ry = self.h / 2.0;
        let rx = ry * 0.75 * H as f32 / W as f32;
        let contour = (0..36)
            .map(|i| {
                let a = i as f32 * std::f32::consts::TAU / 36.0;
                NormPoint {
                    x: self.cx + rx * a.cos(),
                    y: self.cy + ry * a.sin(),
                }
            })
            .collect();
        Observation {
            frame_width: W,
            frame_height: H,
            face_count: 1,
            face: Some(FaceObservation {
                bbox: NormRect {
                    x: self.cx - rx,
                    y: self.cy - ry,
                    w: 2.0 * rx,
                    h: 2.0 * ry,
                },
                contour,
                yaw_deg: self.yaw,
                pitch_deg: self.pitch,
                roll_deg: 0.0,
                eye_openness: [self.eyes, self.eyes],
                quality: FaceQuality {
                    brightness: self.brightness,
                    contrast: 40.0,
                    sharpness: self.sharpness,
                    face_size_px: self.h * H as f32,
                },
                passive_score: self.passive,
            }),
        }
    }
}

/// Drives a machine frame by frame at 15 fps, recording the shown states.
struct Run {
    m: LivenessMachine,
    i: u64,
    states: Vec<GuidanceState>,
}

impl Run {
    fn new(challenges: Vec<Challenge>, passive: bool) -> Self {
        Self::with_policy(LivenessPolicy::default(), challenges, passive)
    }
    fn with_policy(p: LivenessPolicy, challenges: Vec<Challenge>, passive: bool) -> Self {
        Run {
            m: LivenessMachine::new(p, [7; 32], challenges, passive),
            i: 0,
            states: vec![],
        }
    }
    fn push(&mut self, obs: &Observation) -> GuidanceState {
        let g = self.m.push(obs, self.i as f64 / FPS);
        assert_eq!(g.frame_index, self.i);
        assert!((0.0..=1.0).contains(&g.progress));
        assert_eq!(g.message_key, g.state.message_key());
        self.i += 1;
        self.states.push(g.state);
        g.state
    }
    fn frames(&mut self, f: F, n: usize) -> GuidanceState {
        let o = f.obs();
        let mut s = GuidanceState::NoFace;
        for _ in 0..n {
            s = self.push(&o);
        }
        s
    }
    /// Number of changes of the shown prompt.
    fn switches(&self) -> usize {
        self.states.windows(2).filter(|w| w[0] != w[1]).count()
    }
    /// A reaction time, then a blink.
    fn blink(&mut self) -> GuidanceState {
        self.frames(F::default(), REACT);
        self.frames(
            F {
                eyes: 0.1,
                ..F::default()
            },
            2,
        );
        self.frames(F::default(), 1)
    }
    /// A reaction time, then a turn (`sign` +1: the shopper's left) there and back.
    fn turn(&mut self, sign: f32) -> GuidanceState {
        self.frames(F::default(), REACT);
        self.sweep(|f, v| F { yaw: v, ..f }, sign, 28.0)
    }
    /// A reaction time, then a nod (`sign` +1: up) there and back.
    fn nod(&mut self, sign: f32) -> GuidanceState {
        self.frames(F::default(), REACT);
        self.sweep(|f, v| F { pitch: v, ..f }, sign, 18.0)
    }
    /// One value swept 0 → `peak` → 0 in eight frames.
    fn sweep(&mut self, set: impl Fn(F, f32) -> F, sign: f32, peak: f32) -> GuidanceState {
        for k in [0.2, 0.45, 0.75, 1.0, 0.75, 0.45, 0.2, 0.0] {
            self.push(&set(F::default(), sign * peak * k).obs());
        }
        *self.states.last().unwrap()
    }
    /// The neutral hold before the next prompt.
    fn hold(&mut self) -> GuidanceState {
        self.frames(F::default(), HOLD)
    }
    /// Aligned: the 0.6 s hold, the first prompt shown.
    fn aligned(&mut self) -> GuidanceState {
        self.frames(F::default(), 10)
    }
    /// The typed failure of the verdict.
    fn failure(&self) -> Option<FailReason> {
        self.m.verdict().and_then(|v| v.fail_reason)
    }
}

#[test]
fn blink_only_session_passes_active_only() {
    let mut r = Run::new(vec![Challenge::Blink, Challenge::Blink], false);
    assert_eq!(r.frames(F::default(), 5), GuidanceState::HoldStill);
    assert_eq!(
        r.frames(F::default(), 5),
        GuidanceState::Blink,
        "0.6 s hold then the first challenge"
    );
    assert_eq!(
        r.blink(),
        GuidanceState::HoldStill,
        "first blink done: the neutral hold before the next prompt"
    );
    assert_eq!(r.hold(), GuidanceState::Blink, "then the second prompt");
    assert_eq!(r.blink(), GuidanceState::Passed);
    let v = r.m.verdict().expect("verdict").clone();
    assert_eq!(v.outcome, Outcome::Passed);
    assert_eq!(v.passive_mode, PassiveMode::ActiveOnly);
    assert_eq!(v.passive_score, None);
    assert_eq!(v.nonce, "07".repeat(32));
    let frames: Vec<u64> = v
        .challenges
        .iter()
        .map(|c| c.satisfied_frame.unwrap())
        .collect();
    assert!(frames[0] < frames[1], "{frames:?}");
    assert_eq!(
        frames[1],
        r.i - 1,
        "the second blink completes on the last frame"
    );
    let prompts: Vec<f64> = v
        .challenges
        .iter()
        .map(|c| c.prompted_at_s.unwrap())
        .collect();
    assert!((prompts[0] - 9.0 / FPS).abs() < 1e-9, "{prompts:?}");
    assert!(
        prompts[1] > v.challenges[0].satisfied_at_s.unwrap(),
        "{prompts:?}"
    );
    assert_eq!(v.frames, r.i);
    assert!((v.time_to_verdict_s - (r.i - 1) as f64 / FPS).abs() < 1e-9);
    // After the verdict every frame gets the verdict again.
    assert_eq!(r.frames(F::default(), 3), GuidanceState::Passed);
    assert_eq!(r.m.verdict().unwrap().frames, v.frames);
}

#[test]
fn blink_needs_closed_then_open_inside_its_window() {
    let closed = F {
        eyes: 0.05,
        ..F::default()
    };
    // A small dip (above the closed threshold) never counts, and the window then runs out.
    let mut r = Run::new(vec![Challenge::Blink], false);
    r.aligned();
    let dip = F {
        eyes: 0.88,
        ..F::default()
    };
    assert_eq!(r.frames(dip, 5), GuidanceState::Blink);
    r.frames(F::default(), 40);
    assert!(
        matches!(
            r.failure(),
            Some(FailReason::NoResponse {
                challenge: Challenge::Blink,
                ..
            })
        ),
        "{:?}",
        r.m.verdict()
    );
    // Closed and kept closed past max_closed_s: not a blink.
    let mut r = Run::new(vec![Challenge::Blink], false);
    r.aligned();
    r.frames(F::default(), REACT);
    r.frames(closed, 20);
    r.frames(F::default(), 20);
    assert!(r.m.verdict().is_some_and(|v| v.outcome == Outcome::Failed));
    // A blink that starts before a human could react to the prompt is involuntary: ignored, not held against
    // the shopper; the next one counts.
    let mut r = Run::new(vec![Challenge::Blink], false);
    r.aligned();
    r.frames(closed, 2);
    assert_eq!(r.frames(F::default(), 1), GuidanceState::Blink);
    assert!(r.m.verdict().is_none());
    assert_eq!(r.blink(), GuidanceState::Passed);
}

#[test]
fn turns_need_the_right_side_and_a_return() {
    let mut r = Run::new(vec![Challenge::TurnLeft, Challenge::TurnRight], false);
    assert_eq!(r.aligned(), GuidanceState::TurnLeft);
    // Turning left but staying turned does not complete it.
    r.frames(F::default(), REACT);
    for yaw in [10.0, 20.0, 30.0, 30.0, 30.0] {
        r.push(
            &F {
                yaw,
                ..F::default()
            }
            .obs(),
        );
    }
    assert_eq!(r.states.last(), Some(&GuidanceState::TurnLeft));
    // Coming back completes it; the next prompt waits for the neutral hold.
    r.push(
        &F {
            yaw: 5.0,
            ..F::default()
        }
        .obs(),
    );
    assert_eq!(r.states.last(), Some(&GuidanceState::HoldStill));
    assert_eq!(r.hold(), GuidanceState::TurnRight);
    assert_eq!(r.turn(-1.0), GuidanceState::Passed);
    let v = r.m.verdict().unwrap();
    assert!(v.challenges.iter().all(|c| c.satisfied_frame.is_some()));
}

#[test]
fn a_contrary_turn_fails_with_a_typed_reason() {
    let mut r = Run::new(vec![Challenge::TurnLeft], false);
    r.aligned();
    assert!(matches!(r.turn(-1.0), GuidanceState::Failed { .. }));
    assert!(
        matches!(
            r.failure(),
            Some(FailReason::ContraryAction {
                challenge: Challenge::TurnLeft,
                seen: HeadAction::TurnRight,
                ..
            })
        ),
        "{:?}",
        r.m.verdict()
    );
    // Nodding when a turn is asked fails too.
    let mut r = Run::new(vec![Challenge::TurnRight], false);
    r.aligned();
    r.nod(1.0);
    assert!(matches!(
        r.failure(),
        Some(FailReason::ContraryAction {
            seen: HeadAction::LookUp,
            ..
        })
    ));
}

#[test]
fn an_action_sooner_than_a_human_reacts_fails() {
    let mut r = Run::new(vec![Challenge::TurnLeft], false);
    r.aligned();
    // The very next frame (67 ms after the prompt) already turned: footage that was turning anyway.
    r.push(
        &F {
            yaw: 12.0,
            ..F::default()
        }
        .obs(),
    );
    assert!(
        matches!(
            r.failure(),
            Some(FailReason::Anticipated {
                seen: HeadAction::TurnLeft,
                ..
            })
        ),
        "{:?}",
        r.m.verdict()
    );
}

#[test]
fn no_response_within_the_window_fails() {
    let mut r = Run::new(vec![Challenge::LookDown], false);
    r.aligned();
    r.frames(F::default(), 30);
    let v = r.m.verdict().expect("verdict");
    assert_eq!(v.outcome, Outcome::Failed);
    assert!(matches!(
        v.fail_reason,
        Some(FailReason::NoResponse {
            challenge: Challenge::LookDown,
            ..
        })
    ));
    assert!(
        v.frames < 10 + 30,
        "decided as soon as the window closed: {v:?}"
    );
}

#[test]
fn a_second_start_of_the_asked_action_fails() {
    let mut r = Run::new(vec![Challenge::TurnLeft], false);
    r.aligned();
    r.frames(F::default(), REACT);
    for yaw in [9.0, 3.0, 0.0, 9.0] {
        r.push(
            &F {
                yaw,
                ..F::default()
            }
            .obs(),
        );
    }
    assert!(matches!(
        r.failure(),
        Some(FailReason::RepeatedAction {
            challenge: Challenge::TurnLeft,
            ..
        })
    ));
}

#[test]
fn blinks_never_count_against_a_head_challenge() {
    let mut r = Run::new(vec![Challenge::TurnRight], false);
    r.aligned();
    r.frames(F::default(), REACT);
    r.frames(
        F {
            eyes: 0.05,
            ..F::default()
        },
        2,
    );
    r.frames(F::default(), 1);
    assert!(r.m.verdict().is_none());
    assert_eq!(
        r.sweep(|f, v| F { yaw: v, ..f }, -1.0, 28.0),
        GuidanceState::Passed
    );
}

#[test]
fn moving_the_head_while_a_blink_is_asked_fails() {
    let mut r = Run::new(vec![Challenge::Blink], false);
    r.aligned();
    r.frames(F::default(), REACT);
    // A turn's onset (9°) is within the sway of a head held still while blinking: no failure yet.
    r.push(
        &F {
            yaw: -9.0,
            ..F::default()
        }
        .obs(),
    );
    assert_eq!(r.failure(), None);
    // A deliberate turn (past the 18° threshold) is not a blink.
    r.push(
        &F {
            yaw: -20.0,
            ..F::default()
        }
        .obs(),
    );
    assert!(matches!(
        r.failure(),
        Some(FailReason::ContraryAction {
            challenge: Challenge::Blink,
            seen: HeadAction::TurnRight,
            ..
        })
    ));
}

#[test]
fn look_up_and_down_pass() {
    let mut r = Run::new(vec![Challenge::LookUp, Challenge::LookDown], false);
    assert_eq!(r.aligned(), GuidanceState::LookUp);
    assert_eq!(r.nod(1.0), GuidanceState::HoldStill);
    assert_eq!(r.hold(), GuidanceState::LookDown);
    assert_eq!(r.nod(-1.0), GuidanceState::Passed);
}

#[test]
fn move_closer_must_fill_the_nonce_outline_then_leave_it() {
    let outline = CloserOutline {
        scale_pct: 140,
        dx_pct: 6,
        dy_pct: -2,
    };
    let approach = |r: &mut Run, cx: f32, cy: f32| {
        r.frames(F::default(), REACT);
        let base = F::default();
        for k in [0.25f32, 0.5, 0.75, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0] {
            let g = 1.0 + 0.4 * k;
            r.push(
                &F {
                    h: base.h * g,
                    cx: base.cx + (cx - base.cx) * k,
                    cy: base.cy + (cy - base.cy) * k,
                    ..base
                }
                .obs(),
            );
        }
    };
    let mut r = Run::new(vec![Challenge::MoveCloser(outline)], false);
    assert_eq!(r.aligned(), GuidanceState::FillOutline);
    // The larger outline is drawn: 1.4× the normal one, its centre moved by the nonce's offset.
    let g = r.m.last_guidance().copied().unwrap();
    assert!(
        (g.oval.ry - 0.36 * 1.4).abs() < 1e-5 && (g.oval.cx - 0.56).abs() < 1e-5,
        "{g:?}"
    );
    approach(&mut r, 0.56, 0.43);
    assert_eq!(
        r.states.last(),
        Some(&GuidanceState::Passed),
        "{:?}",
        r.m.verdict()
    );
    // The same approach aimed at the mirror-image placement (left and up instead of right and down) does not fill
    // the offset outline. (Aimed at the normal centre it would: the largest offsets are 0.27 of the larger
    // outline's semi-axis, inside `closer.max_center_offset`.)
    let far = CloserOutline {
        scale_pct: 150,
        dx_pct: 8,
        dy_pct: 4,
    };
    let mut r = Run::new(vec![Challenge::MoveCloser(far)], false);
    r.aligned();
    approach(&mut r, 0.42, 0.41);
    r.frames(F::default(), 80);
    assert!(
        matches!(
            r.failure(),
            Some(
                FailReason::Incomplete { .. }
                    | FailReason::RepeatedAction { .. }
                    | FailReason::NoResponse { .. }
            )
        ),
        "{:?}",
        r.m.verdict()
    );
}

#[test]
fn the_next_prompt_waits_for_a_neutral_pose() {
    let mut r = Run::new(vec![Challenge::Blink, Challenge::TurnLeft], false);
    r.aligned();
    assert_eq!(r.blink(), GuidanceState::HoldStill);
    // Turned 12°: still, in the outline, but not back at the pose it was aligned in: no prompt.
    let aside = F {
        yaw: 12.0,
        ..F::default()
    };
    r.frames(aside, 20);
    assert!(
        !r.states
            .iter()
            .rev()
            .take(20)
            .any(|s| *s == GuidanceState::TurnLeft)
    );
    r.frames(aside, 60);
    assert!(
        matches!(r.failure(), Some(FailReason::NoNeutralPose { .. })),
        "{:?}",
        r.m.verdict()
    );
}

#[test]
fn challenge_order_follows_the_nonce() {
    for seed in 0..20u8 {
        let nonce = [seed; 32];
        let list = challenges_for_nonce(&nonce);
        assert!((3..=4).contains(&list.len()));
        let mut r = Run::new(list.clone(), false);
        r.m = LivenessMachine::new(LivenessPolicy::default(), nonce, list.clone(), false);
        assert_eq!(r.m.challenges(), list.as_slice());
        let mut prompts = vec![r.aligned()];
        for (k, c) in list.iter().enumerate() {
            match c {
                Challenge::Blink => r.blink(),
                Challenge::TurnLeft => r.turn(1.0),
                Challenge::TurnRight => r.turn(-1.0),
                Challenge::LookUp => r.nod(1.0),
                Challenge::LookDown => r.nod(-1.0),
                Challenge::MoveCloser(o) => {
                    let g = r.m.last_guidance().copied().unwrap();
                    r.frames(F::default(), REACT);
                    let base = F::default();
                    let top = f32::from(o.scale_pct) / 100.0;
                    for k in [0.5f32, 1.0, 1.0, 0.5, 0.0] {
                        r.push(
                            &F {
                                h: base.h * (1.0 + (top - 1.0) * k),
                                cx: base.cx + (g.oval.cx - base.cx) * k,
                                cy: base.cy + (g.oval.cy - base.cy) * k,
                                ..base
                            }
                            .obs(),
                        );
                    }
                    *r.states.last().unwrap()
                }
            };
            if k + 1 < list.len() {
                prompts.push(r.hold());
            }
        }
        let expected: Vec<GuidanceState> = list
            .iter()
            .map(|c| match c {
                Challenge::Blink => GuidanceState::Blink,
                Challenge::TurnLeft => GuidanceState::TurnLeft,
                Challenge::TurnRight => GuidanceState::TurnRight,
                Challenge::LookUp => GuidanceState::LookUp,
                Challenge::LookDown => GuidanceState::LookDown,
                Challenge::MoveCloser(_) => GuidanceState::FillOutline,
            })
            .collect();
        assert_eq!(prompts, expected, "seed {seed}");
        assert_eq!(
            r.m.verdict().map(|v| v.outcome),
            Some(Outcome::Passed),
            "seed {seed}: {:?}",
            r.m.verdict()
        );
    }
}

#[test]
fn noisy_input_does_not_flicker() {
    // Face size hovering around the MoveCloser limit (fill 0.45) with ±3 % noise: once tripped, the gate holds.
    let mut r = Run::new(vec![Challenge::Blink], false);
    let mut x: u32 = 12345;
    // 2 s: the hold may complete and prompt the blink (one switch), which then waits its 1.6 s window.
    for _ in 0..30 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let noise = ((x >> 16) % 1000) as f32 / 1000.0 - 0.5;
        r.push(
            &F {
                h: 0.72 * (0.45 + 0.03 * noise),
                ..F::default()
            }
            .obs(),
        );
    }
    assert!(
        r.switches() <= 1,
        "prompt switched {} times: {:?}",
        r.switches(),
        r.states
    );
    // Centre hovering at the CenterFace limit, jittering every frame.
    let mut r = Run::new(vec![Challenge::Blink], false);
    for k in 0..30 {
        let jitter = if k % 2 == 0 { 0.01 } else { -0.01 };
        r.push(
            &F {
                cx: 0.5 + 0.45 * 0.27 + jitter,
                ..F::default()
            }
            .obs(),
        );
    }
    assert!(
        r.switches() <= 1,
        "prompt switched {} times: {:?}",
        r.switches(),
        r.states
    );
    // One-frame glitches (a dropped detection, a dark frame) never reach the screen.
    let mut r = Run::new(vec![Challenge::Blink], false);
    r.frames(F::default(), 3);
    for k in 0..60 {
        let o = match k % 4 {
            0 => Observation::empty(W, H),
            2 => F {
                brightness: 10.0,
                ..F::default()
            }
            .obs(),
            _ => F {
                cx: 0.9,
                ..F::default()
            }
            .obs(),
        };
        r.push(&o);
    }
    assert!(
        r.states
            .iter()
            .all(|s| *s != GuidanceState::NoFace && *s != GuidanceState::TooDark),
        "{:?}",
        r.states
    );
}

#[test]
fn gates_report_each_problem() {
    let cases = [
        (
            F {
                brightness: 20.0,
                ..F::default()
            },
            GuidanceState::TooDark,
        ),
        (
            F {
                brightness: 250.0,
                ..F::default()
            },
            GuidanceState::TooBright,
        ),
        (
            F {
                h: 0.2,
                ..F::default()
            },
            GuidanceState::MoveCloser,
        ),
        (
            F {
                h: 0.95,
                ..F::default()
            },
            GuidanceState::MoveBack,
        ),
        (
            F {
                cx: 0.8,
                ..F::default()
            },
            GuidanceState::CenterFace,
        ),
        (
            F {
                yaw: 35.0,
                ..F::default()
            },
            GuidanceState::LookStraight,
        ),
        (
            F {
                pitch: -35.0,
                ..F::default()
            },
            GuidanceState::LookStraight,
        ),
        (
            F {
                sharpness: 1.0,
                ..F::default()
            },
            GuidanceState::Blurry,
        ),
        (F::default(), GuidanceState::HoldStill),
    ];
    for (f, want) in cases {
        let mut r = Run::new(vec![Challenge::Blink], false);
        assert_eq!(r.frames(f, 8), want);
        assert!(r.m.verdict().is_none());
    }
    let mut r = Run::new(vec![Challenge::Blink], false);
    let mut two = F::default().obs();
    two.face_count = 2;
    r.frames(F::default(), 2);
    for _ in 0..8 {
        r.push(&two);
    }
    assert_eq!(r.states.last(), Some(&GuidanceState::MultipleFaces));
    assert_eq!(
        r.states[2],
        GuidanceState::HoldStill,
        "a prompt is shown only after min_prompt_s"
    );
}

#[test]
fn hold_needs_stillness_and_resets_on_motion() {
    let mut r = Run::new(vec![Challenge::Blink], false);
    // The face wanders inside the tolerance, but moves too much between frames to count as still.
    for k in 0..60 {
        let dx = if k % 2 == 0 { 0.05 } else { -0.05 };
        r.push(
            &F {
                cx: 0.5 + dx,
                ..F::default()
            }
            .obs(),
        );
    }
    assert_eq!(r.states.last(), Some(&GuidanceState::HoldStill));
    // Still: the first still frame has moved from the last wandering one, then the hold completes in 0.6 s.
    assert_eq!(r.frames(F::default(), 11), GuidanceState::Blink);
}

#[test]
fn no_face_forever_times_out_and_stays_bounded() {
    let mut r = Run::new(challenges_for_nonce(&[1; 32]), true);
    for _ in 0..10_000 {
        r.push(&Observation::empty(W, H));
    }
    let v = r.m.verdict().expect("verdict");
    assert_eq!(v.outcome, Outcome::TimedOut);
    assert!(
        v.reason.as_deref().unwrap().contains("outline"),
        "{:?}",
        v.reason
    );
    assert_eq!(
        v.frames, 122,
        "align timeout 8 s at 15 fps: decided on frame 121, the first past 8 s"
    );
    assert_eq!(r.m.frames(), 10_000);
    assert_eq!(r.states.last(), Some(&GuidanceState::TimedOut));
    assert!(v.challenges.iter().all(|c| c.satisfied_frame.is_none()));
}

#[test]
fn session_timeout() {
    let mut p = LivenessPolicy::default();
    p.timing.session_timeout_s = 3.0;
    p.timing.align_timeout_s = 100.0;
    let mut r = Run::with_policy(p, vec![Challenge::Blink], false);
    r.frames(
        F {
            h: 0.1,
            ..F::default()
        },
        60,
    );
    let v = r.m.verdict().expect("verdict");
    assert_eq!(v.outcome, Outcome::TimedOut);
    assert!(
        v.reason.as_deref().unwrap().contains("session"),
        "{:?}",
        v.reason
    );
}

#[test]
fn losing_the_face_mid_challenge_restarts_alignment() {
    let mut p = LivenessPolicy::default();
    // A window long enough to outlast the dropouts below.
    p.response.max_onset_s = 3.0;
    p.response.max_complete_s = 5.0;
    p.response.blink_max_complete_s = 5.0;
    p.response.closer_max_complete_s = 5.0;
    let mut r = Run::with_policy(p, vec![Challenge::Blink, Challenge::TurnLeft], false);
    r.aligned();
    r.blink();
    assert_eq!(r.hold(), GuidanceState::TurnLeft);
    // A short dropout keeps the challenge.
    for _ in 0..3 {
        r.push(&Observation::empty(W, H));
    }
    assert_eq!(r.frames(F::default(), 1), GuidanceState::TurnLeft);
    // A long one (> 1 s) starts over: the blink has to be done again.
    for _ in 0..30 {
        r.push(&Observation::empty(W, H));
    }
    assert_eq!(r.states.last(), Some(&GuidanceState::NoFace));
    assert_eq!(r.frames(F::default(), 15), GuidanceState::Blink);
}

#[test]
fn passive_score_decides() {
    // Live scores pass.
    let mut r = Run::new(vec![Challenge::Blink], true);
    r.frames(
        F {
            passive: Some(0.99),
            ..F::default()
        },
        15,
    );
    assert_eq!(r.blink(), GuidanceState::Passed);
    let v = r.m.verdict().unwrap();
    assert_eq!(v.passive_mode, PassiveMode::FusedMinifasnet);
    assert!((v.passive_score.unwrap() - 0.99).abs() < 1e-6);

    // Spoof scores fail, even though the blink was done.
    let mut r = Run::new(vec![Challenge::Blink], true);
    r.frames(
        F {
            passive: Some(0.1),
            ..F::default()
        },
        5,
    );
    r.frames(F::default(), 10);
    r.blink();
    let v = r.m.verdict().unwrap();
    assert_eq!(v.outcome, Outcome::Failed);
    assert!(matches!(
        v.fail_reason,
        Some(FailReason::PassiveSpoof { .. })
    ));
    assert!(matches!(
        r.states.last(),
        Some(GuidanceState::Failed { .. })
    ));

    // Too few samples: verifying, then timed out.
    let mut r = Run::new(vec![Challenge::Blink], true);
    r.frames(F::default(), 15);
    assert_eq!(r.blink(), GuidanceState::Verifying);
    r.frames(F::default(), 60);
    assert_eq!(r.m.verdict().unwrap().outcome, Outcome::TimedOut);

    // A spoof that never does the challenge fails on the passive evidence rather than timing out.
    let mut r = Run::new(vec![Challenge::TurnRight], true);
    r.frames(
        F {
            passive: Some(0.2),
            ..F::default()
        },
        200,
    );
    let v = r.m.verdict().unwrap();
    assert_eq!(v.outcome, Outcome::Failed, "{v:?}");

    // Required but missing models fail.
    let mut p = LivenessPolicy::default();
    p.passive.required = true;
    let mut r = Run::with_policy(p, vec![Challenge::Blink], false);
    r.frames(F::default(), 15);
    r.blink();
    assert_eq!(
        r.m.verdict().unwrap().fail_reason,
        Some(FailReason::PassiveUnavailable)
    );
}

#[test]
fn passive_sampling_is_spread_and_bounded() {
    let mut r = Run::new(vec![Challenge::TurnLeft], true);
    let mut sampled = vec![];
    for k in 0..90 {
        let mut o = F::default().obs();
        if r.m.wants_passive_sample(&o) {
            sampled.push(k);
            o.face.as_mut().unwrap().passive_score = Some(0.99);
        }
        r.push(&o);
    }
    assert_eq!(sampled.len(), 8, "max_samples: {sampled:?}");
    assert!(sampled.windows(2).all(|w| w[1] - w[0] >= 3), "{sampled:?}");
    // Not on bad frames.
    let r = Run::new(vec![Challenge::TurnLeft], true);
    assert!(
        !r.m.wants_passive_sample(
            &F {
                yaw: 40.0,
                ..F::default()
            }
            .obs()
        )
    );
    assert!(
        !r.m.wants_passive_sample(
            &F {
                brightness: 5.0,
                ..F::default()
            }
            .obs()
        )
    );
    assert!(!r.m.wants_passive_sample(&Observation::empty(W, H)));
    let r = Run::new(vec![Challenge::TurnLeft], false);
    assert!(
        !r.m.wants_passive_sample(&F::default().obs()),
        "no models, no samples"
    );
}

#[test]
fn garbage_values_and_timestamps_never_panic() {
    let mut m = LivenessMachine::new(
        LivenessPolicy::default(),
        [0; 32],
        vec![Challenge::Blink],
        true,
    );
    let mut o = F::default().obs();
    let f = o.face.as_mut().unwrap();
    f.yaw_deg = f32::NAN;
    f.eye_openness = [f32::INFINITY, f32::NAN];
    f.quality.brightness = f32::NAN;
    f.passive_score = Some(f32::NAN);
    f.contour.push(NormPoint {
        x: f32::NAN,
        y: 1e30,
    });
    let times = [0.0, f64::NAN, -5.0, 1e300, f64::INFINITY, 3.0, 2.0];
    for (k, t) in times.iter().cycle().take(500).enumerate() {
        let obs = if k % 3 == 0 {
            Observation::empty(0, 0)
        } else {
            o.clone()
        };
        let g = m.push(&obs, *t);
        assert!(g.progress.is_finite() && g.oval.rx.is_finite());
    }
    assert!(m.verdict().is_some(), "1e300 is past every timeout");
}

#[test]
fn oval_shape_and_mirroring() {
    let p = LivenessPolicy::default();
    let o = facepay_core::liveness::Oval::for_frame(&p.oval, 640, 480);
    assert!((o.ry - 0.36).abs() < 1e-6);
    // Pixel aspect 0.75: rx·W = 0.75 · ry·H.
    assert!((o.rx * 640.0 - 0.75 * o.ry * 480.0).abs() < 1e-3);
    let mut q = p.oval.clone();
    q.center_x = 0.4;
    let o = facepay_core::liveness::Oval::for_frame(&q, 640, 480);
    assert!((o.mirrored().cx - 0.6).abs() < 1e-6);
    assert_eq!(o.mirrored().rx, o.rx);
    assert!(o.level(o.cx, o.cy) < 1e-9 && (o.level(o.cx + o.rx, o.cy) - 1.0).abs() < 1e-5);
}
