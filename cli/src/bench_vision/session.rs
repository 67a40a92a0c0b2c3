//! `session_ms`: what the liveness session costs per frame, everything but decoding.
//!
//! Clip frames are decoded untimed and pushed at their own size (640×427 for `live-blink-7`, as `facepay replay`
//! does: brought to 640×480 the face overfills the outline and the session never gets past placement); only
//! [`LivenessSession::push_image`] is timed:
//! `Vision::analyze` (detect or track ▸ mesh ▸ pose ▸ eyes ▸ quality), the state machine, the best-frame copy, and
//! on some frames the extra work the session schedules itself:
//! - **passive frames** — with the MiniFASNet models loaded, the machine asks for a passive sample on at most
//!   `passive.max_samples` (8) good frames, every `passive.every_n_frames` (3) frames: both models run there;
//! - **verdict frames** — the frame that ends a session embeds the best frame (MobileFaceNet, flip-averaged when
//!   `[calibration]` says so).
//!
//! The session asks the blink challenge (the clip is `live-blink-7`), takes timestamps at the clip's frame rate,
//! loops over the clip, and a fresh session starts whenever one ends.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use facepay_core::liveness::{Challenge, LivenessPolicy, LivenessSession};
use facepay_core::vision::frame::decode_file;
use facepay_core::vision::pipeline::Vision;
use serde::Serialize;

use super::WARMUP;
use super::stats::Timings;

/// Frame rate of the timestamps when the clip has no `clip.json` (the shared clips are 15 fps).
const DEFAULT_FPS: f64 = 15.0;

/// Per-frame timings of one configuration (models loaded or not).
pub struct SessionRun {
    /// Every timed frame.
    pub all: Timings,
    /// Frames where the passive anti-spoof models ran.
    pub passive: Timings,
    /// Frames that ended a session (best-frame embedding).
    pub verdict: Timings,
    /// Sessions started (the last one may be unfinished).
    pub sessions: usize,
}

/// `session_ms` of the JSON report.
#[derive(Debug, Serialize)]
pub struct SessionReport {
    /// Median per frame with the MiniFASNet models loaded; `null` when they are absent.
    pub median: Option<f64>,
    /// 95th percentile per frame with the models loaded; `null` when they are absent.
    pub p95: Option<f64>,
    /// Median per frame without the models (active challenges only).
    pub active_only_median: f64,
    /// 95th percentile per frame without the models.
    pub active_only_p95: f64,
    /// Timed frames per configuration.
    pub frames: usize,
    /// Frames where the passive models ran (with the models loaded).
    pub passive_frames: usize,
    /// Sessions started with the models loaded.
    pub sessions: usize,
}

impl SessionReport {
    /// The report of the two runs (`with_models` is `None` when the MiniFASNet models are absent).
    pub fn new(with_models: Option<&SessionRun>, active_only: &SessionRun) -> Self {
        Self {
            median: with_models.map(|r| r.all.median),
            p95: with_models.map(|r| r.all.p95),
            active_only_median: active_only.all.median,
            active_only_p95: active_only.all.p95,
            frames: active_only.all.count,
            passive_frames: with_models.map_or(0, |r| r.passive.count),
            sessions: with_models.unwrap_or(active_only).sessions,
        }
    }
}

/// The clip's frame rate from its `clip.json`, else [`DEFAULT_FPS`].
pub fn clip_fps(clip: &std::path::Path) -> f64 {
    std::fs::read_to_string(clip.join("clip.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|v| v.get("fps").and_then(|f| f.as_f64()))
        .filter(|f| f.is_finite() && *f > 0.0)
        .unwrap_or(DEFAULT_FPS)
}

/// Times `runs` frames of back-to-back sessions on `vision` (after [`WARMUP`] untimed frames), the two eyes run at
/// once when `parallel_eyes`.
pub fn time_sessions(
    vision: &mut Vision,
    frames: &[PathBuf],
    fps: f64,
    runs: usize,
    parallel_eyes: bool,
) -> anyhow::Result<SessionRun> {
    let mut policy = LivenessPolicy::default();
    policy.vision.parallel_eyes = parallel_eyes;
    let (mut all, mut passive, mut verdict) = (Vec::new(), Vec::new(), Vec::new());
    let mut sessions = 0;
    let mut session: Option<LivenessSession<&mut Vision>> = None;
    let mut index_in_session = 0u64;
    let mut vision = Some(vision);
    for (i, path) in frames.iter().cycle().enumerate().take(runs + WARMUP) {
        let image = decode_file(path).with_context(|| format!("decoding {}", path.display()))?;
        let current = match session.as_mut() {
            Some(s) => s,
            None => {
                let v = vision
                    .take()
                    .context("the pipeline is held by no session")?;
                sessions += 1;
                index_in_session = 0;
                session.insert(LivenessSession::with_challenges(
                    v,
                    policy.clone(),
                    [i as u8; 32],
                    vec![Challenge::Blink],
                ))
            }
        };
        let t = index_in_session as f64 / fps;
        let start = Instant::now();
        let guidance = current.push_image(&image, t);
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        index_in_session += 1;
        let sampled = current
            .last_observation()
            .and_then(|o| o.face.as_ref())
            .is_some_and(|f| f.passive_score.is_some());
        let ended = guidance.state.is_terminal();
        if ended && let Some(s) = session.take() {
            vision = Some(s.into_vision());
        }
        if i < WARMUP {
            continue;
        }
        all.push(ms);
        if sampled {
            passive.push(ms);
        }
        if ended {
            verdict.push(ms);
        }
    }
    Ok(SessionRun {
        all: Timings::from_ms(all),
        passive: Timings::from_ms(passive),
        verdict: Timings::from_ms(verdict),
        sessions,
    })
}

#[cfg(test)]
mod tests {
    use facepay_qa::paths::{default_antispoof_dir, default_models_dir, default_shared_dir};

    use super::*;
    use crate::bench_vision::clip_frames;

    fn blink_clip() -> PathBuf {
        let clip = default_shared_dir()
            .join("data")
            .join("clips")
            .join("live-blink-7");
        assert!(
            clip.join("clip.json").is_file(),
            "development data missing: {} (set FACEPAY_SHARED to the shared data folder)",
            clip.display()
        );
        clip
    }

    #[test]
    fn fps_comes_from_clip_json() {
        assert_eq!(clip_fps(&blink_clip()), 15.0);
        assert_eq!(clip_fps(std::path::Path::new("/nonexistent")), DEFAULT_FPS);
    }

    #[test]
    fn blink_sessions_end_sample_passively_and_restart() {
        let clip = blink_clip();
        let mut vision =
            Vision::load(&default_models_dir(), Some(&default_antispoof_dir())).unwrap();
        assert!(
            vision.has_antispoof(),
            "MiniFASNet models missing in {}",
            default_antispoof_dir().display()
        );
        let run = time_sessions(&mut vision, &clip_frames(&clip).unwrap(), 15.0, 40, true).unwrap();
        // The blink session passes in under 30 frames (see `facepay replay`), so 50 frames hold two sessions.
        assert_eq!(run.all.count, 40);
        assert!(run.sessions >= 2, "{} sessions", run.sessions);
        assert!(run.verdict.count >= 1 && run.passive.count >= 1);
        assert!(run.all.median > 0.0 && run.all.p95 >= run.all.median);
        let report = SessionReport::new(Some(&run), &run);
        assert_eq!(
            (report.median, report.frames, report.passive_frames),
            (Some(run.all.median), 40, run.passive.count)
        );
        assert_eq!(SessionReport::new(None, &run).median, None);
    }
}
