//! `facepay replay CLIP`: replays a clip folder or a recording through the liveness session, exactly as the app
//! runs it, and prints the guidance timeline and the verdict (`--json`: one JSON object, byte-identical on every
//! run of the same input), optionally JUnit XML for device-farm CI.
//!
//! Challenges: `--challenges` if given, else the recording's, else those derived from the nonce (`--nonce`, else
//! the recording's, else 32 zero bytes). `--from N` starts the session at the clip's frame `N` (a shopper who
//! starts later in the same footage). A clip that ends before the session decides is reported `timed_out`, with
//! a reason saying so.

use std::path::{Path, PathBuf};

use anyhow::Context;
use facepay_core::liveness::{
    Challenge, ChallengeRecord, LivenessPolicy, LivenessSession, challenges_for_nonce,
    parse_challenges, to_hex,
};
use facepay_core::vision::pipeline::Vision;
use facepay_qa::clip::{Clip, Timeline, TimelineEntry, parse_nonce};
use facepay_qa::paths::{default_antispoof_dir, default_models_dir};
use facepay_qa::sheet::ContactSheet;
use serde::Serialize;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// A clip folder (`NNNNN.jpg` + `clip.json`) or a recording.
    pub clip: PathBuf,
    /// Liveness policy TOML (default: the built-in defaults, as in docs/liveness-policy.toml).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Comma-separated challenges, e.g. `blink,turn_left` (overrides the nonce's).
    #[arg(long)]
    pub challenges: Option<String>,
    /// Server nonce, 64 hex digits.
    #[arg(long)]
    pub nonce: Option<String>,
    /// First frame to push (0-based clip index; the frames before it are skipped).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub from: usize,
    /// Run without the passive anti-spoof models (active challenges only).
    #[arg(long)]
    pub active_only: bool,
    /// Write a JUnit XML report here (one test case: the verdict must match the clip's label).
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write a contact sheet PNG here (about 12 sampled frames with the outline, landmarks and prompt drawn).
    #[arg(long)]
    pub sheet: Option<PathBuf>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Print every frame's observation and guidance to stderr (for tuning a policy).
    #[arg(long)]
    pub trace: bool,
}

/// The replay report (the JSON printed by `--json`).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The clip folder as given.
    pub clip: String,
    /// The clip's label (`live`, `replay`, …) when it has one.
    pub label: Option<String>,
    /// `passed`, `failed` or `timed_out`.
    pub verdict: &'static str,
    /// Why it failed or timed out.
    pub reason: Option<String>,
    /// The clip ran out before the session decided (`verdict` is then `timed_out`): no verdict on the person.
    pub clip_ended: bool,
    /// Clip index of the first frame pushed (`--from`); the `frame` numbers below count from it.
    pub start_frame: usize,
    /// Frames pushed up to the decision (all of them when the clip ended first).
    pub frames: u64,
    /// Frames in the clip.
    pub clip_frames: usize,
    /// Seconds of clip time to the decision.
    pub time_to_verdict_s: f64,
    /// Fused passive score, `null` when no frame was scored.
    pub passive_score: Option<f32>,
    /// `fused_minifasnet` or `active_only`.
    pub passive_mode: String,
    /// Frames the passive score was fused over.
    pub passive_samples: u32,
    /// The nonce (hex).
    pub nonce: String,
    /// The challenges asked, with the frames where each was satisfied.
    pub challenges: Vec<ChallengeRecord>,
    /// Frames that could not be decoded or analysed.
    pub frame_errors: u64,
    /// Index of the best frame for matching, and whether it was embedded.
    pub best_frame: Option<BestFrameInfo>,
    /// One entry per change of prompt.
    pub timeline: Vec<TimelineEntry>,
}

/// Summary of the best frame.
#[derive(Debug, Clone, Serialize)]
pub struct BestFrameInfo {
    /// Frame index.
    pub frame: u64,
    /// Selection score.
    pub score: f32,
    /// Length of its embedding (0 when it could not be embedded).
    pub embedding_dim: usize,
}

/// Loads the pipeline (with the anti-spoof models unless `active_only`).
pub fn load_vision(active_only: bool) -> anyhow::Result<Vision> {
    let antispoof = default_antispoof_dir();
    let vision = Vision::load(
        &default_models_dir(),
        (!active_only).then_some(antispoof.as_path()),
    )
    .context("loading the vision models")?;
    if !active_only && !vision.has_antispoof() {
        eprintln!(
            "note: no MiniFASNet models in {}: active-only liveness",
            antispoof.display()
        );
    }
    Ok(vision)
}

/// Loads a policy file, or the defaults.
pub fn load_policy(path: Option<&Path>) -> anyhow::Result<LivenessPolicy> {
    match path {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Ok(LivenessPolicy::from_toml(&text)?)
        }
        None => Ok(LivenessPolicy::default()),
    }
}

/// What a replayed session is started with.
#[derive(Debug, Clone)]
pub struct SessionInputs {
    /// The server nonce.
    pub nonce: [u8; 32],
    /// The challenges asked, in order.
    pub challenges: Vec<Challenge>,
    /// Clip index of the first frame pushed.
    pub from: usize,
}

/// Replays `clip` from frame `inputs.from` through a session on `vision` with the given nonce and challenges.
pub fn replay_clip(
    vision: &mut Vision,
    policy: &LivenessPolicy,
    clip: &Clip,
    inputs: &SessionInputs,
    trace: bool,
    mut sheet: Option<&mut ContactSheet>,
) -> anyhow::Result<Report> {
    let from = inputs.from;
    anyhow::ensure!(
        from < clip.len(),
        "--from {from}: the clip has {} frames (0 to {})",
        clip.len(),
        clip.len().saturating_sub(1)
    );
    let step = ((clip.len() - from) / 12).max(1);
    let mut session = LivenessSession::with_challenges(
        &mut *vision,
        policy.clone(),
        inputs.nonce,
        inputs.challenges.clone(),
    );
    let mut timeline = Timeline::default();
    let mut pushed = 0u64;
    for i in from..clip.len() {
        let t = clip.timestamp(i);
        let g = match clip.read_frame(i) {
            Ok(image) => {
                let g = session.push_image(&image, t);
                if let Some(sheet) = sheet.as_deref_mut()
                    && ((i - from).is_multiple_of(step) || g.state.is_terminal())
                {
                    let points: Vec<(f32, f32)> = session
                        .last_analysis()
                        .and_then(|a| a.primary.as_ref())
                        .map(|p| p.landmarks.points.iter().map(|q| (q[0], q[1])).collect())
                        .unwrap_or_default();
                    sheet.add(&image, &g, &points);
                }
                g
            }
            Err(e) => {
                eprintln!("frame {i}: {e}");
                session.push_unreadable(t)
            }
        };
        pushed += 1;
        timeline.push(&g, t);
        if trace {
            eprintln!(
                "{i:5} t={t:6.3} {:<14} p={:.2} obs={}",
                g.state.name(),
                g.progress,
                trace_obs(&session)
            );
        }
        if g.state.is_terminal() {
            break;
        }
    }
    let (verdict, reason, frames, ttv) = match session.verdict() {
        Some(v) => (
            v.outcome.as_str(),
            v.reason.clone(),
            v.frames,
            v.time_to_verdict_s,
        ),
        None => (
            "timed_out",
            Some(format!(
                "the clip ended after {pushed} frames before the session decided"
            )),
            pushed,
            clip.timestamp(clip.len() - 1) - clip.timestamp(from),
        ),
    };
    let m = session.machine();
    let v = session.verdict();
    let best_frame = session.best_frame().map(|b| BestFrameInfo {
        frame: b.frame_index,
        score: b.score,
        embedding_dim: b.embedding.as_ref().map_or(0, |e| e.values.len()),
    });
    Ok(Report {
        clip: clip.dir().display().to_string(),
        label: clip.info().label.clone(),
        verdict,
        reason,
        clip_ended: session.verdict().is_none(),
        start_frame: from,
        frames,
        clip_frames: clip.len(),
        time_to_verdict_s: ttv,
        passive_score: v.and_then(|v| v.passive_score).or(m.passive_score()),
        passive_mode: if m.passive_available() {
            "fused_minifasnet"
        } else {
            "active_only"
        }
        .to_string(),
        passive_samples: m.passive_samples(),
        nonce: to_hex(&inputs.nonce),
        challenges: v.map_or_else(|| m.records().to_vec(), |v| v.challenges.clone()),
        frame_errors: session.frame_errors(),
        best_frame,
        timeline: timeline.entries().to_vec(),
    })
}

fn trace_obs<V: std::borrow::BorrowMut<Vision>>(s: &LivenessSession<V>) -> String {
    match s
        .last_observation()
        .and_then(|o| o.face.as_ref().map(|f| (o.face_count, f)))
    {
        None => "no face".into(),
        Some((n, f)) => {
            let (x0, y0, x1, y1) = f.extent();
            format!(
                "n={n} ext=({x0:.2},{y0:.2},{x1:.2},{y1:.2}) yaw={:.1} pitch={:.1} roll={:.1} eyes={:.2},{:.2} \
                 bright={:.0} sharp={:.1} px={:.0} passive={:?}",
                f.yaw_deg,
                f.pitch_deg,
                f.roll_deg,
                f.eye_openness[0],
                f.eye_openness[1],
                f.quality.brightness,
                f.quality.sharpness,
                f.quality.face_size_px,
                f.passive_score
            )
        }
    }
}

/// The nonce and challenges for a replay from frame 0: flags first, then the recording's, then the defaults.
pub fn session_inputs(
    clip: &Clip,
    nonce: Option<&str>,
    challenges: Option<&str>,
) -> anyhow::Result<SessionInputs> {
    let nonce = match nonce.or(clip.info().nonce.as_deref()) {
        Some(hex) => parse_nonce(hex)?,
        None => [0u8; 32],
    };
    let challenges = match challenges {
        Some(list) => parse_challenges(list)?,
        None => clip
            .info()
            .challenges
            .clone()
            .unwrap_or_else(|| challenges_for_nonce(&nonce)),
    };
    Ok(SessionInputs {
        nonce,
        challenges,
        from: 0,
    })
}

/// Whether a report counts as correct for its label: `live` must pass, anything else must not.
pub fn meets_label(report: &Report) -> bool {
    match report.label.as_deref() {
        Some("live") | None => report.verdict == "passed",
        Some(_) => report.verdict != "passed",
    }
}

/// JUnit XML with one test case for the replay.
pub fn junit_xml(report: &Report) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&apos;")
    };
    let name = esc(&report.clip);
    let expected = match report.label.as_deref() {
        Some("live") | None => "passed",
        Some(_) => "not passed",
    };
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let failures = usize::from(!meets_label(report));
    xml += &format!(
        "<testsuites tests=\"1\" failures=\"{failures}\">\n  <testsuite name=\"facepay-replay\" tests=\"1\" failures=\"{failures}\" errors=\"0\">\n"
    );
    xml += &format!(
        "    <testcase classname=\"liveness\" name=\"{name}\" time=\"{:.3}\">\n",
        report.time_to_verdict_s
    );
    if failures > 0 {
        xml += &format!(
            "      <failure message=\"expected {expected}, got {}\">{}</failure>\n",
            report.verdict,
            esc(report.reason.as_deref().unwrap_or(""))
        );
    }
    let out = format!(
        "verdict={} frames={} passive_score={:?} challenges={}",
        report.verdict,
        report.frames,
        report.passive_score,
        report
            .challenges
            .iter()
            .map(|c| format!(
                "{}@{:?}",
                facepay_core::liveness::challenge_name(c.challenge),
                c.satisfied_frame
            ))
            .collect::<Vec<_>>()
            .join(",")
    );
    xml += &format!(
        "      <system-out>{}</system-out>\n    </testcase>\n  </testsuite>\n</testsuites>\n",
        esc(&out)
    );
    xml
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let policy = load_policy(args.policy.as_deref())?;
    let clip = Clip::open(&args.clip)?;
    let inputs = SessionInputs {
        from: args.from,
        ..session_inputs(&clip, args.nonce.as_deref(), args.challenges.as_deref())?
    };
    let mut vision = load_vision(args.active_only)?;
    let mut sheet = args.sheet.as_ref().map(|_| ContactSheet::new(240, 4));
    let report = replay_clip(
        &mut vision,
        &policy,
        &clip,
        &inputs,
        args.trace,
        sheet.as_mut(),
    )?;
    if let (Some(path), Some(sheet)) = (&args.sheet, &sheet) {
        std::fs::write(path, sheet.to_png()?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, junit_xml(&report))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        for e in &report.timeline {
            println!(
                "frame {:5}  t={:6.2}s  {:<14} progress {:.2}",
                e.frame, e.t, e.state, e.progress
            );
        }
        println!(
            "verdict: {} after {} frames ({:.2} s); passive score {:?} ({}, {} samples)",
            report.verdict,
            report.frames,
            report.time_to_verdict_s,
            report.passive_score,
            report.passive_mode,
            report.passive_samples
        );
        if let Some(r) = &report.reason {
            println!("reason: {r}");
        }
    }
    Ok(())
}
