//! The passive check at the session level: for every clip and start frame, the frames a session would score
//! (the machine's own sampling: one good face, spaced, at most `passive.max_samples`) and their aggregate, against
//! the policy's threshold. Frame labels come from the clip (or from `docs/clip-actions.toml` where one clip holds
//! both, e.g. `replay-phone`: a live face first, the replayed one after).

use std::collections::BTreeMap;

use facepay_core::liveness::{LivenessPolicy, PassiveAggregate, PassiveSamples};
use facepay_qa::eval::bounds::auc;
use facepay_qa::eval::metrics::Scored;
use serde::Serialize;

use super::observe::ClipObservations;
use crate::scripted::Actions;

/// The label of frames that count neither way (e.g. no face in view).
pub const UNLABELLED: &str = "none";

/// One session's passive score.
#[derive(Debug, Clone, Serialize)]
pub struct Session {
    /// Clip folder name.
    pub clip: String,
    /// First frame.
    pub start: usize,
    /// `live` or the attack type.
    pub label: String,
    /// The aggregate score.
    pub score: f32,
    /// Frames scored.
    pub samples: u32,
}

/// One aggregate method's separation of live and attack sessions.
#[derive(Debug, Clone, Serialize)]
pub struct MethodSummary {
    /// Area under the ROC of session scores (live = positive).
    pub auc: Option<f64>,
    /// Lowest live session score.
    pub min_live: Option<f32>,
    /// Highest attack session score.
    pub max_attack: Option<f32>,
    /// Live sessions below the policy threshold / live sessions.
    pub bpcer: Option<f64>,
    /// Attack sessions at or above it / attack sessions.
    pub apcer: Option<f64>,
}

/// The `"passive"` section of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Passive {
    /// The policy's session threshold.
    pub threshold: f32,
    /// The policy's aggregate.
    pub aggregate: PassiveAggregate,
    /// Live sessions counted.
    pub live_sessions: usize,
    /// Attack sessions counted.
    pub attack_sessions: usize,
    /// Attack sessions passed / attack sessions (at the policy's threshold and aggregate).
    pub apcer: Option<f64>,
    /// Live sessions refused / live sessions.
    pub bpcer: Option<f64>,
    /// Area under the ROC of the session scores.
    pub auc: Option<f64>,
    /// Area under the ROC of single good frames (what one frame alone tells).
    pub frame_auc: Option<f64>,
    /// Every aggregate, at the same threshold, for comparison.
    pub by_aggregate: BTreeMap<&'static str, MethodSummary>,
    /// Sessions started every this many frames.
    pub starts_every: usize,
    /// The sessions (policy aggregate).
    pub sessions: Vec<Session>,
}

/// The sessions of every clip under `method`.
fn sessions(
    clips: &[ClipObservations],
    actions: &Actions,
    policy: &LivenessPolicy,
    starts_every: usize,
    method: PassiveAggregate,
) -> Vec<Session> {
    let mut out = vec![];
    for clip in clips {
        let annotated = actions.get(&clip.name);
        let label_of =
            |i: usize| annotated.map_or(clip.label.as_str(), |a| a.label_of(i, &clip.label));
        for start in (0..clip.len()).step_by(starts_every.max(1)) {
            let label = label_of(start);
            if label == UNLABELLED {
                continue;
            }
            let mut samples = PassiveSamples::default();
            for i in start..clip.len() {
                if label_of(i) != label {
                    break;
                }
                let index = (i - start) as u64;
                if samples.wants(policy, index, &clip.frames[i])
                    && let Some(score) = clip.passive[i]
                {
                    samples.add(index, score);
                }
                if samples.count() >= policy.passive.max_samples {
                    break;
                }
            }
            if samples.count() < policy.passive.min_samples {
                continue;
            }
            if let Some(score) = samples.aggregate(method) {
                out.push(Session {
                    clip: clip.name.clone(),
                    start,
                    label: label.to_owned(),
                    score,
                    samples: samples.count(),
                });
            }
        }
    }
    out
}

fn summary(sessions: &[Session], threshold: f32) -> MethodSummary {
    let live: Vec<f32> = sessions
        .iter()
        .filter(|s| s.label == "live")
        .map(|s| s.score)
        .collect();
    let attack: Vec<f32> = sessions
        .iter()
        .filter(|s| s.label != "live")
        .map(|s| s.score)
        .collect();
    let rate = |n: usize, d: usize| (d > 0).then(|| n as f64 / d as f64);
    let scored: Vec<Scored> = sessions
        .iter()
        .map(|s| Scored {
            score: s.score,
            same: s.label == "live",
        })
        .collect();
    MethodSummary {
        auc: auc(&scored).ok(),
        min_live: live.iter().copied().reduce(f32::min),
        max_attack: attack.iter().copied().reduce(f32::max),
        bpcer: rate(live.iter().filter(|&&s| s < threshold).count(), live.len()),
        apcer: rate(
            attack.iter().filter(|&&s| s >= threshold).count(),
            attack.len(),
        ),
    }
}

/// Measures the passive check over every clip, from every `starts_every`-th frame.
pub fn measure(
    clips: &[ClipObservations],
    actions: &Actions,
    policy: &LivenessPolicy,
    starts_every: usize,
) -> Passive {
    let p = &policy.passive;
    let mut by_aggregate = BTreeMap::new();
    for (name, method) in [
        ("mean", PassiveAggregate::Mean),
        ("median", PassiveAggregate::Median),
        ("trimmed_mean", PassiveAggregate::TrimmedMean),
    ] {
        let s = sessions(clips, actions, policy, starts_every, method);
        by_aggregate.insert(name, summary(&s, p.threshold));
    }
    let chosen = sessions(clips, actions, policy, starts_every, p.aggregate);
    let s = summary(&chosen, p.threshold);
    let mut frames = vec![];
    for clip in clips {
        let annotated = actions.get(&clip.name);
        for (i, score) in clip.passive.iter().enumerate() {
            let label = annotated.map_or(clip.label.as_str(), |a| a.label_of(i, &clip.label));
            let good = PassiveSamples::default().wants(policy, 0, &clip.frames[i]);
            if let (Some(score), true, false) = (score, good, label == UNLABELLED) {
                frames.push(Scored {
                    score: *score,
                    same: label == "live",
                });
            }
        }
    }
    Passive {
        threshold: p.threshold,
        aggregate: p.aggregate,
        live_sessions: chosen.iter().filter(|s| s.label == "live").count(),
        attack_sessions: chosen.iter().filter(|s| s.label != "live").count(),
        apcer: s.apcer,
        bpcer: s.bpcer,
        auc: s.auc,
        frame_auc: auc(&frames).ok(),
        by_aggregate,
        starts_every,
        sessions: chosen,
    }
}
