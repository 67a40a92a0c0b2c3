//! `facepay eval liveness DIR --json`: BPCER and APCER (ISO/IEC 30107-3 style) over every clip folder and still
//! under DIR; with `--nonces N` the chance that footage which never saw the prompts passes the challenges
//! (`"chance"`), with `--scripted` the compliant shopper's BPCER on simulated sessions composed from real frames
//! (`"scripted"`), and, when the passive models are loaded, the passive check at the session level (`"passive"`).
//!
//! Every clip frame is analysed once ([`observe`]); every session then runs the state machine over the cached
//! observations (the analysis of a frame does not depend on the nonce), so thousands of sessions take seconds.
//!
//! Labels: a clip folder's label is `clip.json`'s `label` (`live`, or the attack type such as `replay`). A still
//! (`.jpg`/`.jpeg`/`.png` outside clip folders) takes its label from a `labels.csv` in its folder
//! (`file,label` lines, e.g. `image_F1.jpg,print`), else from the file-name convention of the MiniFASNet samples:
//! a name starting `image_T` is `live`, `image_F` is an attack (`attack`). Stills with neither are skipped (listed
//! on stderr). Clips run the full session (challenges: the clip's own if it is a recording, else
//! `--clip-challenges NAME=LIST` for that folder, else `--challenges`, else the nonce-derived ones of the zero nonce); stills run the passive check only (fused MiniFASNet ≥ the
//! policy's `passive.still_threshold`), trying the four rotations and keeping the one where a face is found (stills may be stored
//! rotated). BPCER = live items not passed / live items; APCER = attack items passed / attack items, overall and
//! per attack type.
//!
//! `--starts-every N` also starts a session at every N-th frame of each clip (a shopper who starts later in the same
//! footage: other light, pose and blur at the moments the passive check samples). Such a later session that the
//! clip runs out on before a verdict is `undecided` and not counted (the footage left was too short to judge); a
//! session from frame 0 always counts, as without the flag.

mod chance;
mod observe;
mod passive;
mod scripted;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use facepay_core::liveness::{
    LivenessMachine, LivenessPolicy, Outcome, StillScore, still_passive_score,
};
use facepay_core::vision::frame::decode_file;
use facepay_core::vision::pipeline::Vision;
use facepay_qa::clip::Clip;
use serde::Serialize;

use observe::ClipObservations;
use scripted::SIMULATED_NOTE;

use crate::replay::{load_policy, load_vision, session_inputs};
use crate::scripted::Actions;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Folder searched (recursively) for clip folders and stills.
    pub dir: PathBuf,
    /// Liveness policy TOML (default: built-in defaults).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Challenges for clips that are not recordings, e.g. `blink` (default: those of the zero nonce).
    #[arg(long)]
    pub challenges: Option<String>,
    /// Challenges for one clip folder, by its name: `NAME=LIST`, e.g. `live-turning=turn_right,turn_left`
    /// (repeatable; a recorded clip cannot follow prompts, so each is asked what it holds). Wins over `--challenges`.
    #[arg(long, value_name = "NAME=LIST")]
    pub clip_challenges: Vec<String>,
    /// Also start a session at every N-th frame of each clip (N, 2N, …), besides frame 0.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub starts_every: Option<u32>,
    /// Measure the chance of passing: play every clip from every start frame under N random nonces each.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub nonces: Option<u32>,
    /// Without the passive models: the active challenges alone.
    #[arg(long)]
    pub active_only: bool,
    /// Measure the compliant shopper on simulated sessions composed from the annotated live clips.
    #[arg(long)]
    pub scripted: bool,
    /// Nonces (one session each) for `--scripted`.
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub scripted_nonces: u32,
    /// Seed of the evaluation nonces and the scripted reaction times (runs are reproducible).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Action annotations (default: the committed docs/clip-actions.toml).
    #[arg(long)]
    pub actions: Option<PathBuf>,
    /// Write every analysed frame's observation (pose, eyes, size, passive score) as CSV here.
    #[arg(long, value_name = "FILE")]
    pub frames_csv: Option<PathBuf>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// One evaluated item.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// Clip folder or still.
    pub path: String,
    /// `clip` or `still`.
    pub kind: &'static str,
    /// Clip frame the session started at (`null` for a still).
    pub start_frame: Option<usize>,
    /// `live` or the attack type.
    pub label: String,
    /// `passed`, `failed`, `timed_out`, or `undecided` (a later start the clip ran out on: not counted).
    pub verdict: &'static str,
    /// The fused passive score, when computed.
    pub passive_score: Option<f32>,
    /// Why it did not pass.
    pub reason: Option<String>,
}

/// The evaluation report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Live items not passed / live items (`null` without live items).
    pub bpcer: Option<f64>,
    /// Attack items passed / attack items (`null` without attacks).
    pub apcer: Option<f64>,
    /// APCER per attack type.
    pub apcer_by_type: BTreeMap<String, f64>,
    /// Number of live items counted.
    pub live: usize,
    /// Number of attack items counted.
    pub attacks: usize,
    /// Later-start sessions the clip ran out on (not counted).
    pub undecided: usize,
    /// Every item.
    pub items: Vec<Item>,
    /// The chance of a recording passing (with `--nonces`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chance: Option<chance::Chance>,
    /// The compliant shopper, simulated (with `--scripted`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scripted: Option<scripted::Scripted>,
    /// The passive check per session (when the passive models are loaded and clips were found).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passive: Option<passive::Passive>,
}

/// Label of a still from `labels.csv` beside it, else from its name (`image_T…` live, `image_F…` attack).
fn still_label(path: &Path) -> anyhow::Result<Option<String>> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if let Some(dir) = path.parent() {
        let csv = dir.join("labels.csv");
        if csv.exists() {
            let text = std::fs::read_to_string(&csv)
                .with_context(|| format!("reading {}", csv.display()))?;
            for line in text.lines() {
                if let Some((file, label)) = line.split_once(',')
                    && file.trim() == name
                {
                    return Ok(Some(label.trim().to_string()));
                }
            }
        }
    }
    Ok(if name.starts_with("image_T") {
        Some("live".into())
    } else if name.starts_with("image_F") {
        Some("attack".into())
    } else {
        None
    })
}

/// Passive check of a still: the fused score in the rotation that shows an upright face.
fn eval_still(
    vision: &mut Vision,
    policy: &LivenessPolicy,
    path: &Path,
) -> anyhow::Result<(Option<f32>, String)> {
    let img = decode_file(path)?;
    Ok(match still_passive_score(vision, &img)? {
        None => (None, "no upright face in any rotation".to_string()),
        Some(StillScore { score: None, .. }) => (None, "passive models not installed".to_string()),
        Some(StillScore {
            score: Some(s),
            rotation,
        }) => (
            Some(s),
            format!(
                "passive score {s:.3} (still threshold {:.3}, rotation {rotation:?})",
                policy.passive.still_threshold
            ),
        ),
    })
}

fn collect(dir: &Path, clips: &mut Vec<PathBuf>, stills: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if dir.join("clip.json").exists() {
        clips.push(dir.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, clips, stills)?;
        } else if let Some(ext) = p.extension().and_then(|e| e.to_str())
            && matches!(ext.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png")
        {
            stills.push(p);
        }
    }
    Ok(())
}

/// Which sessions to run and what to ask them.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Challenges for clips that are not recordings.
    pub challenges: Option<String>,
    /// Challenges per clip folder name (wins over `challenges`).
    pub clip_challenges: BTreeMap<String, String>,
    /// Also start at every this-many frames.
    pub starts_every: Option<usize>,
    /// Nonces per start frame for the chance measurement.
    pub nonces: Option<u32>,
    /// Run the scripted shopper on this many nonces.
    pub scripted: Option<u32>,
    /// Seed of the nonces and reaction times.
    pub seed: u64,
    /// Passive scores are supplied.
    pub passive: bool,
    /// Where to write the per-frame CSV.
    pub frames_csv: Option<PathBuf>,
    /// The action annotations.
    pub actions: Actions,
}

/// Evaluates every clip and still under `dir`.
pub fn evaluate(
    vision: &mut Vision,
    policy: &LivenessPolicy,
    dir: &Path,
    plan: &Plan,
) -> anyhow::Result<Report> {
    let (mut clips, mut stills) = (vec![], vec![]);
    collect(dir, &mut clips, &mut stills)?;
    anyhow::ensure!(
        !clips.is_empty() || !stills.is_empty(),
        "no clip folders or stills under {}",
        dir.display()
    );
    let mut analysed = vec![];
    for (n, c) in clips.iter().enumerate() {
        eprintln!("[{}/{}] analysing {}", n + 1, clips.len(), c.display());
        analysed.push(ClipObservations::analyse(vision, policy, c, plan.passive)?);
    }
    if let Some(path) = &plan.frames_csv {
        write_frames_csv(path, &analysed)?;
    }
    let mut items = vec![];
    for (c, obs) in clips.iter().zip(&analysed) {
        let clip = Clip::open(c)?;
        let name = c.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let asked = plan
            .clip_challenges
            .get(name)
            .map(String::as_str)
            .or(plan.challenges.as_deref());
        let inputs = session_inputs(&clip, None, asked)?;
        let starts = match plan.starts_every {
            Some(n) => (0..clip.len()).step_by(n.max(1)).collect(),
            None => vec![0],
        };
        for from in starts {
            let machine = LivenessMachine::new(
                policy.clone(),
                inputs.nonce,
                inputs.challenges.clone(),
                plan.passive,
            );
            let run = obs.run(machine, from);
            let (verdict, passive_score, reason) = match &run.verdict {
                Some(v) => (v.outcome.as_str(), v.passive_score, v.reason.clone()),
                None if from > 0 => ("undecided", None, None),
                None => (
                    Outcome::TimedOut.as_str(),
                    None,
                    Some(format!(
                        "the clip ended after {} frames before the session decided",
                        run.frames
                    )),
                ),
            };
            if from > 0 {
                eprintln!("  from frame {from}: {verdict}");
            }
            items.push(Item {
                path: c.display().to_string(),
                kind: "clip",
                start_frame: Some(from),
                label: obs.label.clone(),
                verdict,
                passive_score,
                reason,
            });
        }
    }
    for s in &stills {
        let Some(label) = still_label(s)? else {
            eprintln!("skipping {} (no label: add it to labels.csv)", s.display());
            continue;
        };
        eprintln!("still {}", s.display());
        let (score, reason) = eval_still(vision, policy, s)?;
        let passed = score.is_some_and(|v| v >= policy.passive.still_threshold);
        items.push(Item {
            path: s.display().to_string(),
            kind: "still",
            start_frame: None,
            label,
            verdict: if passed { "passed" } else { "failed" },
            passive_score: score,
            reason: (!passed).then_some(reason),
        });
    }
    let counted = || items.iter().filter(|i| i.verdict != "undecided");
    let live: Vec<&Item> = counted().filter(|i| i.label == "live").collect();
    let attacks: Vec<&Item> = counted()
        .filter(|i| i.label != "live" && i.label != "unlabelled")
        .collect();
    let undecided = items.len() - counted().count();
    let rate = |n: usize, d: usize| (d > 0).then(|| n as f64 / d as f64);
    let mut by_type: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for a in &attacks {
        let e = by_type.entry(a.label.clone()).or_default();
        e.1 += 1;
        e.0 += usize::from(a.verdict == "passed");
    }
    Ok(Report {
        bpcer: rate(
            live.iter().filter(|i| i.verdict != "passed").count(),
            live.len(),
        ),
        apcer: rate(
            attacks.iter().filter(|i| i.verdict == "passed").count(),
            attacks.len(),
        ),
        apcer_by_type: by_type
            .into_iter()
            .map(|(k, (n, d))| (k, n as f64 / d as f64))
            .collect(),
        live: live.len(),
        attacks: attacks.len(),
        undecided,
        chance: plan.nonces.map(|n| {
            eprintln!(
                "chance: {n} nonces from every start frame of {} clips",
                analysed.len()
            );
            chance::measure(
                &analysed,
                policy,
                n,
                plan.starts_every.unwrap_or(usize::MAX),
                plan.passive,
                plan.seed,
            )
        }),
        scripted: plan.scripted.map(|n| {
            eprintln!("scripted ({SIMULATED_NOTE}): {n} nonces");
            scripted::measure(&analysed, &plan.actions, policy, n, plan.passive, plan.seed)
        }),
        passive: (plan.passive && !analysed.is_empty()).then(|| {
            passive::measure(
                &analysed,
                &plan.actions,
                policy,
                plan.starts_every.unwrap_or(15),
            )
        }),
        items,
    })
}

/// Writes one CSV line per analysed frame (for annotating actions and calibrating).
fn write_frames_csv(path: &Path, clips: &[ClipObservations]) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    writeln!(
        out,
        "clip,frame,t,faces,yaw,pitch,roll,eye_r,eye_l,height,cx,cy,sharpness,brightness,face_px,passive"
    )?;
    for c in clips {
        for (i, o) in c.frames.iter().enumerate() {
            let t = c.timestamps[i];
            let passive = c.passive[i].map_or(String::new(), |p| format!("{p:.4}"));
            match &o.face {
                Some(f) => {
                    let (x0, y0, x1, y1) = f.extent();
                    writeln!(
                        out,
                        "{},{i},{t:.3},{},{:.2},{:.2},{:.2},{:.3},{:.3},{:.4},{:.4},{:.4},{:.1},{:.1},{:.0},{passive}",
                        c.name,
                        o.face_count,
                        f.yaw_deg,
                        f.pitch_deg,
                        f.roll_deg,
                        f.eye_openness[0],
                        f.eye_openness[1],
                        y1 - y0,
                        (x0 + x1) * 0.5,
                        (y0 + y1) * 0.5,
                        f.quality.sharpness,
                        f.quality.brightness,
                        f.quality.face_size_px,
                    )?;
                }
                None => writeln!(out, "{},{i},{t:.3},0,,,,,,,,,,,,", c.name)?,
            }
        }
    }
    Ok(())
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let policy = load_policy(args.policy.as_deref())?;
    let mut vision = load_vision(args.active_only)?;
    let mut per_clip = BTreeMap::new();
    for entry in &args.clip_challenges {
        let (name, list) = entry.split_once('=').with_context(|| {
            format!("--clip-challenges {entry:?}: expected NAME=LIST, e.g. live-turning=turn_right,turn_left")
        })?;
        per_clip.insert(name.to_owned(), list.to_owned());
    }
    let plan = Plan {
        challenges: args.challenges,
        clip_challenges: per_clip,
        starts_every: args.starts_every.map(|n| n as usize),
        nonces: args.nonces,
        scripted: args.scripted.then_some(args.scripted_nonces),
        seed: args.seed,
        passive: vision.has_antispoof(),
        frames_csv: args.frames_csv,
        actions: match &args.actions {
            Some(p) => Actions::parse(
                &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
            )
            .with_context(|| p.display().to_string())?,
            None => Actions::committed()?,
        },
    };
    let report = evaluate(&mut vision, &policy, &args.dir, &plan)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        for i in &report.items {
            let from = i
                .start_frame
                .map_or(String::new(), |f| format!(" from {f}"));
            println!(
                "{:<6} {:<8} {:<10} {:?}  {}{from}",
                i.kind, i.label, i.verdict, i.passive_score, i.path
            );
        }
        println!(
            "BPCER {:?} over {} live, APCER {:?} over {} attacks ({:?}); {} undecided",
            report.bpcer,
            report.live,
            report.apcer,
            report.attacks,
            report.apcer_by_type,
            report.undecided
        );
    }
    Ok(())
}
