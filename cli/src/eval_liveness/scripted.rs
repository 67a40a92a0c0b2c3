//! The compliant shopper's BPCER, **simulated**: for each nonce, a session composed from real frames of a live
//! clip that holds the asked actions (see [`crate::scripted`]), run over cached observations.

use std::collections::BTreeMap;

use facepay_core::liveness::{
    Guidance, LivenessMachine, LivenessPolicy, Outcome, Oval, challenge_name, challenges_for_nonce,
};
use facepay_qa::eval::bounds::clopper_pearson_upper;
use serde::Serialize;

use super::chance::eval_nonce;
use super::observe::ClipObservations;
use crate::scripted::{Actions, FaceBox, ScriptedShopper, shot_observation};

/// What every scripted report says about itself.
pub const SIMULATED_NOTE: &str = "simulated: sessions composed from real frames of live clips following the \
prompts (reaction times drawn from a human distribution; a turn to a side the clip lacks is its other turn \
mirrored; the dwell at full profile is skipped; moving closer is a digital zoom of real frames; pose, eyes, light \
and passive scores of a zoomed frame are its source frame's)";

/// One failed scripted session.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// The clip it was composed from.
    pub clip: String,
    /// Nonce index.
    pub nonce_index: u64,
    /// The challenges asked.
    pub challenges: Vec<&'static str>,
    /// Why it did not pass.
    pub reason: String,
}

/// The `"scripted"` section of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Scripted {
    /// Always true: these sessions are composed, not recorded.
    pub simulated: bool,
    /// How they are composed.
    pub note: &'static str,
    /// Sessions run (one per nonce that a clip can show).
    pub attempts: u64,
    /// Sessions that passed.
    pub passed: u64,
    /// Sessions not passed / attempts.
    pub bpcer: f64,
    /// One-sided 95 % Clopper–Pearson upper bound of the BPCER.
    pub upper_95: f64,
    /// Nonces whose list no annotated clip can show (not run).
    pub not_covered: u64,
    /// Median seconds from the first prompt to `passed`, over the passed sessions.
    pub median_prompt_to_pass_s: Option<f64>,
    /// 90th percentile of the same.
    pub p90_prompt_to_pass_s: Option<f64>,
    /// Sessions per clip.
    pub by_clip: BTreeMap<String, u64>,
    /// Every failed session.
    pub failures: Vec<Failure>,
}

/// Runs `nonces` scripted sessions over the live `clips` annotated in `actions`.
pub fn measure(
    clips: &[ClipObservations],
    actions: &Actions,
    policy: &LivenessPolicy,
    nonces: u32,
    passive: bool,
    seed: u64,
) -> Scripted {
    let live: Vec<&ClipObservations> = clips.iter().filter(|c| c.label == "live").collect();
    let mut times = vec![];
    let (mut attempts, mut passed, mut not_covered) = (0u64, 0u64, 0u64);
    let (mut by_clip, mut failures) = (BTreeMap::new(), vec![]);
    for j in 0..u64::from(nonces) {
        let nonce = eval_nonce(seed ^ 0x5c71_97ed, j);
        let list = challenges_for_nonce(&nonce);
        let eligible: Vec<(&ClipObservations, _)> = live
            .iter()
            .filter_map(|c| {
                actions
                    .get(&c.name)
                    .filter(|a| a.can_show(&list))
                    .map(|a| (*c, a))
            })
            .collect();
        if eligible.is_empty() {
            not_covered += 1;
            continue;
        }
        let (clip, annotated) = eligible[(j as usize) % eligible.len()];
        attempts += 1;
        *by_clip.entry(clip.name.clone()).or_insert(0) += 1;
        let verdict = run_one(
            clip,
            annotated,
            policy,
            nonce,
            list.clone(),
            passive,
            seed ^ j,
        );
        match verdict {
            Some(v) if v.outcome == Outcome::Passed => {
                passed += 1;
                if let Some(first) = v.challenges.first().and_then(|r| r.prompted_at_s) {
                    times.push(v.time_to_verdict_s - first);
                }
            }
            other => failures.push(Failure {
                clip: clip.name.clone(),
                nonce_index: j,
                challenges: list.iter().map(|c| challenge_name(*c)).collect(),
                reason: other
                    .and_then(|v| v.reason)
                    .unwrap_or_else(|| "no verdict within the session's time".into()),
            }),
        }
    }
    times.sort_by(f64::total_cmp);
    let pct = |q: f64| {
        (!times.is_empty()).then(|| times[((times.len() - 1) as f64 * q).round() as usize])
    };
    let failed = attempts - passed;
    Scripted {
        simulated: true,
        note: SIMULATED_NOTE,
        attempts,
        passed,
        bpcer: if attempts > 0 {
            failed as f64 / attempts as f64
        } else {
            0.0
        },
        upper_95: clopper_pearson_upper(failed, attempts, 0.95),
        not_covered,
        median_prompt_to_pass_s: pct(0.5),
        p90_prompt_to_pass_s: pct(0.9),
        by_clip,
        failures,
    }
}

/// One scripted session: the shopper reacts to each guidance; the machine sees the shots' observations.
fn run_one(
    clip: &ClipObservations,
    annotated: &crate::scripted::ClipActions,
    policy: &LivenessPolicy,
    nonce: [u8; 32],
    list: Vec<facepay_core::liveness::Challenge>,
    passive: bool,
    seed: u64,
) -> Option<facepay_core::liveness::Verdict> {
    let fps = clip_fps(clip);
    let first = clip.frames.iter().find(|o| o.frame_width > 0)?;
    let oval = Oval::for_frame(&policy.oval, first.frame_width, first.frame_height);
    let mut shopper =
        ScriptedShopper::new(annotated, fps, seed, ((oval.cx, oval.cy), oval.ry), &list);
    let mut machine = LivenessMachine::new(policy.clone(), nonce, list, passive);
    let mut face = |i: usize| face_box(clip, i);
    let mut last: Option<Guidance> = None;
    let max_frames = ((policy.timing.session_timeout_s + 1.0) * fps).ceil() as usize;
    for k in 0..max_frames {
        let t = k as f64 / fps;
        let shot = shopper.next(last.as_ref(), t, &mut face);
        let mut obs = shot_observation(&clip.frames[shot.frame], &shot);
        if machine.wants_passive_sample(&obs)
            && let Some(f) = obs.face.as_mut()
        {
            f.passive_score = clip.passive[shot.frame];
        }
        last = Some(machine.push(&obs, t));
        if machine.verdict().is_some() {
            break;
        }
    }
    machine.verdict().cloned()
}

/// The clip's frame rate from its timestamps.
pub fn clip_fps(clip: &ClipObservations) -> f64 {
    match clip.timestamps.as_slice() {
        [a, .., b] if b > a => (clip.timestamps.len() - 1) as f64 / (b - a),
        _ => 15.0,
    }
}

/// Face centre and height of a cached frame.
pub fn face_box(clip: &ClipObservations, i: usize) -> FaceBox {
    let f = clip.frames.get(i)?.face.as_ref()?;
    let (x0, y0, x1, y1) = f.extent();
    Some((((x0 + x1) * 0.5, (y0 + y1) * 0.5), y1 - y0))
}
