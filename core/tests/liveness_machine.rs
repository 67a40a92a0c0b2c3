//! The liveness state machine on synthetic observation sequences (no models): guidance, hysteresis, challenge
//! order, blink and turn detection, timeouts, passive decision.

use facepay_core::liveness::{
    Challenge, FaceObservation, FaceQuality, FailReason, GuidanceState, LivenessMachine,
    LivenessPolicy, NormPoint, NormRect, Observation, Outcome, PassiveMode, challenges_for_nonce,
};

const W: u32 = 640;
const H: u32 = 480;
const FPS: f64 = 15.0;

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
    fn blink(&mut self) -> GuidanceState {
        self.frames(
            F {
                eyes: 0.1,
                ..F::default()
            },
            2,
        );
        self.frames(F::default(), 1)
    }
    fn turn(&mut self, sign: f32) -> GuidanceState {
        for yaw in [5.0, 12.0, 20.0, 28.0, 20.0, 12.0, 5.0, 0.0] {
            self.push(
                &F {
                    yaw: sign * yaw,
                    ..F::default()
                }
                .obs(),
            );
        }
        *self.states.last().unwrap()
    }
}

#[test]
fn blink_only_session_passes_active_only() {
    let mut r = Run::new(vec![Challenge::Blink, Challenge::Blink], false);
    assert_eq!(r.frames(F::default(), 5), GuidanceState::HoldStill);
    assert_eq!(
        r.frames(F::default(), 10),
        GuidanceState::Blink,
        "0.6 s hold then the first challenge"
    );
    assert_eq!(
        r.blink(),
        GuidanceState::Blink,
        "first blink done, second asked"
    );
    assert_eq!(r.frames(F::default(), 3), GuidanceState::Blink);
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
    assert_eq!(v.frames, r.i);
    assert!((v.time_to_verdict_s - (r.i - 1) as f64 / FPS).abs() < 1e-9);
    // After the verdict every frame gets the verdict again.
    assert_eq!(r.frames(F::default(), 3), GuidanceState::Passed);
    assert_eq!(r.m.verdict().unwrap().frames, v.frames);
}

#[test]
fn blink_needs_closed_then_open() {
    let mut r = Run::new(vec![Challenge::Blink], false);
    r.frames(F::default(), 15);
    // A small dip (above the closed threshold, 95.5 % of the baseline) never counts.
    assert_eq!(
        r.frames(
            F {
                eyes: 0.88,
                ..F::default()
            },
            5
        ),
        GuidanceState::Blink
    );
    assert_eq!(r.frames(F::default(), 5), GuidanceState::Blink);
    // Closed for longer than max_closed_s (1 s) then open is not a blink.
    r.frames(
        F {
            eyes: 0.05,
            ..F::default()
        },
        20,
    );
    assert_eq!(r.frames(F::default(), 3), GuidanceState::Blink);
    // Closed and kept closed: not a blink either.
    assert_eq!(
        r.frames(
            F {
                eyes: 0.05,
                ..F::default()
            },
            10
        ),
        GuidanceState::Blink
    );
    // A real blink passes (once the running baseline has seen open eyes again).
    r.frames(F::default(), 16);
    assert_eq!(r.blink(), GuidanceState::Passed);
}

#[test]
fn turns_need_the_right_side_and_a_return() {
    let mut r = Run::new(vec![Challenge::TurnLeft, Challenge::TurnRight], false);
    r.frames(F::default(), 15);
    assert_eq!(r.states.last(), Some(&GuidanceState::TurnLeft));
    // Turning right when asked left does nothing.
    assert_eq!(r.turn(-1.0), GuidanceState::TurnLeft);
    // Turning left but staying turned does not complete it.
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
    // Coming back completes it.
    r.push(
        &F {
            yaw: 5.0,
            ..F::default()
        }
        .obs(),
    );
    assert_eq!(r.states.last(), Some(&GuidanceState::TurnRight));
    assert_eq!(r.turn(-1.0), GuidanceState::Passed);
    let v = r.m.verdict().unwrap();
    assert!(v.challenges.iter().all(|c| c.satisfied_frame.is_some()));
}

#[test]
fn challenge_order_follows_the_nonce() {
    for seed in 0..20u8 {
        let nonce = [seed; 32];
        let list = challenges_for_nonce(&nonce);
        assert!((2..=3).contains(&list.len()));
        let mut m = LivenessMachine::new(LivenessPolicy::default(), nonce, list.clone(), false);
        assert_eq!(m.challenges(), list.as_slice());
        let mut i = 0u64;
        let mut push = |m: &mut LivenessMachine, f: F| {
            let g = m.push(&f.obs(), i as f64 / FPS);
            i += 1;
            g.state
        };
        for _ in 0..15 {
            push(&mut m, F::default());
        }
        let mut prompts = vec![];
        for c in &list {
            let s = push(&mut m, F::default());
            prompts.push(s);
            match c {
                Challenge::Blink => {
                    for f in [
                        F {
                            eyes: 0.1,
                            ..F::default()
                        },
                        F::default(),
                    ] {
                        push(&mut m, f);
                    }
                }
                Challenge::TurnLeft | Challenge::TurnRight => {
                    let sign = if *c == Challenge::TurnLeft { 1.0 } else { -1.0 };
                    for yaw in [25.0, 0.0] {
                        push(
                            &mut m,
                            F {
                                yaw: sign * yaw,
                                ..F::default()
                            },
                        );
                    }
                }
            }
        }
        let expected: Vec<GuidanceState> = list
            .iter()
            .map(|c| match c {
                Challenge::Blink => GuidanceState::Blink,
                Challenge::TurnLeft => GuidanceState::TurnLeft,
                Challenge::TurnRight => GuidanceState::TurnRight,
            })
            .collect();
        assert_eq!(prompts, expected, "seed {seed}");
        assert_eq!(
            m.verdict().map(|v| v.outcome),
            Some(Outcome::Passed),
            "seed {seed}"
        );
    }
}

#[test]
fn noisy_input_does_not_flicker() {
    // Face size hovering around the MoveCloser limit (fill 0.45) with ±3 % noise: once tripped, the gate holds.
    let mut r = Run::new(vec![Challenge::Blink], false);
    let mut x: u32 = 12345;
    for _ in 0..90 {
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
    for k in 0..90 {
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
    // Still: the hold completes in 0.6 s.
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
fn challenge_timeout_and_session_timeout() {
    let mut r = Run::new(vec![Challenge::TurnLeft], false);
    r.frames(F::default(), 15);
    r.frames(F::default(), 160);
    let v = r.m.verdict().expect("verdict");
    assert_eq!(v.outcome, Outcome::TimedOut);
    assert!(
        v.reason.as_deref().unwrap().contains("turn_left"),
        "{:?}",
        v.reason
    );

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
    let mut r = Run::new(vec![Challenge::Blink, Challenge::TurnLeft], false);
    r.frames(F::default(), 15);
    assert_eq!(r.blink(), GuidanceState::TurnLeft);
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
