//! `facepay eval liveness DIR --json`: BPCER and APCER (ISO/IEC 30107-3 style) over every clip folder and still
//! under DIR.
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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use facepay_core::liveness::{LivenessPolicy, StillScore, still_passive_score};
use facepay_core::vision::frame::decode_file;
use facepay_core::vision::pipeline::Vision;
use facepay_qa::clip::Clip;
use serde::Serialize;

use crate::replay::{SessionInputs, load_policy, load_vision, replay_clip, session_inputs};

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
    let mut items = vec![];
    for c in &clips {
        eprintln!("clip {}", c.display());
        let clip = Clip::open(c)?;
        let label = clip
            .info()
            .label
            .clone()
            .unwrap_or_else(|| "unlabelled".into());
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
            let r = replay_clip(
                vision,
                policy,
                &clip,
                &SessionInputs {
                    from,
                    ..inputs.clone()
                },
                false,
                None,
            )?;
            if from > 0 {
                eprintln!("  from frame {from}: {}", r.verdict);
            }
            items.push(Item {
                path: c.display().to_string(),
                kind: "clip",
                start_frame: Some(from),
                label: label.clone(),
                verdict: if from > 0 && r.clip_ended {
                    "undecided"
                } else {
                    r.verdict
                },
                passive_score: r.passive_score,
                reason: r.reason,
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
        items,
    })
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let policy = load_policy(args.policy.as_deref())?;
    let mut vision = load_vision(false)?;
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
