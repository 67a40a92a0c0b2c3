//! `facepay eval matching DIR… --json`: per-attempt false-reject and false-accept rates of the product's face
//! match on recorded clips, at the product's threshold.
//!
//! Every clip folder under the DIRs (a DIR may be a clip folder or hold clip folders) is one person. For each live
//! clip, a template is enrolled **as the product does** from its first `--enrol-seconds`: the frames run through a
//! liveness session (which computes the quality gates), the enrolment [`FramePicker`] keeps the best
//! [`ENROL_FRAMES`] good frames at least
//! [`MIN_PICK_GAP_S`](facepay_core::capture::MIN_PICK_GAP_S) apart, they are embedded and enrolled (the template's
//! agreement gate applies). The rest of every clip is cut into consecutive `--attempt-seconds` windows; each
//! window is one payment attempt, its probes picked and embedded as a payment session does ([`PROBE_FRAMES`]
//! frames) and matched with [`match_template`] at the threshold of `[calibration]`.
//!
//! Genuine attempts: a template against the later windows of its own clip. Impostor attempts: a template against
//! every window of every clip of another person (live or replayed). Person = the clip name without its `live-` /
//! `replay-` prefix (so `live-lestari` and `replay-lestari` are one person, and neither is the other's impostor),
//! or what `--same-person CLIP=PERSON` says. A window without any good frame gets no probe: a payment session
//! would answer "no face"; it counts as a false reject (and is reported as `no_probe`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use facepay_core::capture::FramePicker;
use facepay_core::enrolment::ENROL_FRAMES;
use facepay_core::flow::PROBE_FRAMES;
use facepay_core::liveness::{LivenessPolicy, LivenessSession};
use facepay_core::matcher::match_template;
use facepay_core::template::{Template, enrol};
use facepay_core::vision::model::ModelManifest;
use facepay_core::vision::pipeline::Vision;
use facepay_qa::paths::default_models_dir;
use serde::Serialize;

use crate::clip_frames::Clip;
use crate::replay::load_vision;

/// Model id stamped on the evaluation's templates (the probes use the same one).
const EVAL_MODEL: &str = "fused-embedder@eval";

/// Arguments of `facepay eval matching`.
#[derive(clap::Args)]
pub struct Args {
    /// Clip folders, or folders holding clip folders (`NNNNN.jpg` frames + `clip.json`).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Seconds at the start of each live clip used to enrol its person.
    #[arg(long, default_value_t = 2.0)]
    pub enrol_seconds: f64,
    /// Length of one payment attempt, in seconds (the clip after the enrolment part is cut into such windows).
    #[arg(long, default_value_t = 1.0)]
    pub attempt_seconds: f64,
    /// The person shown in a clip, when its name does not say it: `CLIP=PERSON` (repeatable).
    #[arg(long, value_name = "CLIP=PERSON")]
    pub same_person: Vec<String>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Worker threads, each with its own copy of the models (default: the number of CPU cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// One clip's figures.
#[derive(Debug, Clone, Serialize)]
pub struct ClipReport {
    /// Clip folder name.
    pub clip: String,
    /// `clip.json` label.
    pub label: String,
    /// The person it shows.
    pub person: String,
    /// Attempt windows after the enrolment part.
    pub windows: usize,
    /// Whether a template was enrolled (live clips only).
    pub enrolled: bool,
    /// Why not, for a live clip that could not be enrolled.
    pub enrol_error: Option<String>,
    /// Genuine attempts against its own template.
    pub genuine_attempts: usize,
    /// Of those, rejected (including `no_probe`).
    pub false_rejects: usize,
    /// Windows without a good frame (no probe).
    pub no_probe: usize,
    /// Lowest genuine match score.
    pub min_genuine_score: Option<f32>,
    /// Highest score of another person's attempt against this clip's template.
    pub max_impostor_score: Option<f32>,
}

/// The figures `--json` prints. Rates are fractions in `0..=1`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The product's match threshold (`[calibration]`).
    pub threshold: f32,
    /// Enrolment part of each live clip, seconds.
    pub enrol_seconds: f64,
    /// Length of one attempt, seconds.
    pub attempt_seconds: f64,
    /// Probe frames per attempt (as a payment session).
    pub probe_frames: usize,
    /// Templates enrolled.
    pub templates: usize,
    /// Genuine attempts.
    pub genuine_attempts: usize,
    /// Genuine attempts rejected (below the threshold, or no probe).
    pub false_rejects: usize,
    /// Genuine attempts without a probe (no good frame in the window).
    pub no_probe: usize,
    /// `false_rejects / genuine_attempts`.
    pub frr: f64,
    /// Impostor attempts.
    pub impostor_attempts: usize,
    /// Impostor attempts accepted.
    pub false_accepts: usize,
    /// `false_accepts / impostor_attempts`.
    pub far: f64,
    /// Lowest genuine score over all attempts with a probe.
    pub min_genuine_score: Option<f32>,
    /// Highest impostor score.
    pub max_impostor_score: Option<f32>,
    /// Per clip.
    pub clips: Vec<ClipReport>,
}

/// What one clip gives: its template (live clips) and the probes of each attempt window.
struct ClipProbes {
    name: String,
    label: String,
    person: String,
    template: Result<Option<Template>, String>,
    /// One entry per window: the probe embeddings (empty = no good frame).
    windows: Vec<Vec<Vec<f32>>>,
}

/// Runs the evaluation and prints the report.
pub fn run(args: Args) -> anyhow::Result<()> {
    if !(args.enrol_seconds > 0.0 && args.attempt_seconds > 0.0) {
        anyhow::bail!("--enrol-seconds and --attempt-seconds must be positive");
    }
    let overrides: BTreeMap<String, String> = args
        .same_person
        .iter()
        .map(|s| {
            s.split_once('=')
                .map(|(c, p)| (c.trim().to_owned(), p.trim().to_owned()))
                .with_context(|| format!("--same-person {s:?}: expected CLIP=PERSON"))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut clips = Vec::new();
    for dir in &args.dirs {
        clips.extend(clip_folders(dir)?);
    }
    if clips.is_empty() {
        anyhow::bail!("no clip folders (NNNNN.jpg + clip.json) under the given folders");
    }
    let manifest = ModelManifest::load(&default_models_dir())?;
    let threshold = manifest.calibration()?.threshold;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, clips.len());

    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<Option<ClipProbes>>> =
        std::sync::Mutex::new((0..clips.len()).map(|_| None).collect());
    let work = || -> anyhow::Result<()> {
        let mut vision = load_vision(false)?;
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(dir) = clips.get(i) else {
                return Ok(());
            };
            let (probes, back) = clip_probes(vision, dir, &args, &overrides)
                .with_context(|| format!("clip {}", dir.display()))?;
            vision = back;
            eprintln!(
                "{}: {} windows, {}",
                probes.name,
                probes.windows.len(),
                match &probes.template {
                    Ok(Some(_)) => "enrolled".to_owned(),
                    Ok(None) => "not live: impostor attempts only".to_owned(),
                    Err(e) => format!("enrolment failed: {e}"),
                }
            );
            results
                .lock()
                .map_err(|_| anyhow::anyhow!("a worker panicked"))?[i] = Some(probes);
        }
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow::anyhow!("a worker panicked"))?)
            .collect::<anyhow::Result<Vec<()>>>()
    })?;
    let all: Vec<ClipProbes> = results
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a worker panicked"))?
        .into_iter()
        .collect::<Option<_>>()
        .context("a clip was left unprocessed")?;

    let report = score(&all, threshold, &args)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

/// Clip folders: `dir` itself when it holds frames, else its sub-folders that do, sorted.
fn clip_folders(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        anyhow::bail!("{} is not a folder", dir.display());
    }
    if dir.join("clip.json").is_file() {
        return Ok(vec![dir.to_owned()]);
    }
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("clip.json").is_file())
        .collect();
    out.sort();
    Ok(out)
}

/// The person a clip shows: `--same-person`, else its name without the label prefix.
fn person_of(name: &str, overrides: &BTreeMap<String, String>) -> String {
    if let Some(p) = overrides.get(name) {
        return p.clone();
    }
    name.strip_prefix("live-")
        .or_else(|| name.strip_prefix("replay-"))
        .unwrap_or(name)
        .to_owned()
}

/// Runs the clip once: the enrolment part into the enrolment picker, then each attempt window into its own
/// session and probe picker.
fn clip_probes(
    vision: Vision,
    dir: &Path,
    args: &Args,
    overrides: &BTreeMap<String, String>,
) -> anyhow::Result<(ClipProbes, Vision)> {
    let clip = Clip::open(dir)?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let label = std::fs::read_to_string(dir.join("clip.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("label").and_then(|l| l.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "unknown".into());
    let duration = clip.files.len() as f64 / clip.fps;
    let windows = ((duration - args.enrol_seconds) / args.attempt_seconds + 1e-9)
        .floor()
        .max(0.0) as usize;
    let live = label == "live";
    let policy = LivenessPolicy::default();

    // Segment 0 = enrolment part, k ≥ 1 = attempt window k − 1.
    let segment_of = |t: f64| -> Option<usize> {
        if t < args.enrol_seconds {
            return Some(0);
        }
        let k = ((t - args.enrol_seconds) / args.attempt_seconds).floor() as usize;
        (k < windows).then_some(k + 1)
    };
    let mut template: Result<Option<Template>, String> = Ok(None);
    let mut probes: Vec<Vec<Vec<f32>>> = Vec::with_capacity(windows);
    // The pipeline is in the running session, or idle between two.
    let mut idle = Some(vision);
    let mut current: Option<(usize, LivenessSession<Vision>, FramePicker)> = None;
    let mut finish = |segment: usize,
                      session: LivenessSession<Vision>,
                      picker: FramePicker,
                      probes: &mut Vec<Vec<Vec<f32>>>|
     -> Vision {
        let mut vision = session.into_vision();
        let embeddings = picker.embed(&mut vision);
        vision.reset();
        if segment == 0 {
            if live {
                template = enrol(embeddings, EVAL_MODEL)
                    .map(Some)
                    .map_err(|e| e.to_string());
            }
        } else {
            // A window that held no frame (a gap in the clip) has no probe.
            probes.resize(segment - 1, Vec::new());
            probes.push(embeddings);
        }
        vision
    };
    for frame in clip.frames(0) {
        let frame = frame?;
        let Some(segment) = segment_of(frame.t) else {
            break;
        };
        if current.as_ref().is_some_and(|(s, _, _)| *s != segment)
            && let Some((s, session, picker)) = current.take()
        {
            idle = Some(finish(s, session, picker, &mut probes));
        }
        if current.is_none() {
            let vision = idle
                .take()
                .context("the pipeline was lost between sessions")?;
            let keep = if segment == 0 {
                ENROL_FRAMES
            } else {
                PROBE_FRAMES
            };
            let session =
                LivenessSession::with_challenges(vision, policy.clone(), [0; 32], Vec::new());
            current = Some((segment, session, FramePicker::new(keep)));
        }
        if let Some((_, session, picker)) = current.as_mut() {
            session.push_image(&frame.image, frame.t);
            picker.offer_last(session, &frame.image, frame.t);
        }
    }
    if let Some((s, session, picker)) = current.take() {
        idle = Some(finish(s, session, picker, &mut probes));
    }
    probes.resize(windows, Vec::new());
    let vision = idle.context("the pipeline was lost between sessions")?;
    Ok((
        ClipProbes {
            person: person_of(&name, overrides),
            name,
            label,
            template,
            windows: probes,
        },
        vision,
    ))
}

/// Every genuine and impostor attempt, matched at `threshold`.
fn score(all: &[ClipProbes], threshold: f32, args: &Args) -> anyhow::Result<Report> {
    let mut clips: Vec<ClipReport> = all
        .iter()
        .map(|c| ClipReport {
            clip: c.name.clone(),
            label: c.label.clone(),
            person: c.person.clone(),
            windows: c.windows.len(),
            enrolled: matches!(c.template, Ok(Some(_))),
            enrol_error: c.template.as_ref().err().cloned(),
            genuine_attempts: 0,
            false_rejects: 0,
            no_probe: 0,
            min_genuine_score: None,
            max_impostor_score: None,
        })
        .collect();
    let (mut impostor_attempts, mut false_accepts) = (0usize, 0usize);
    let lower = |a: Option<f32>, b: f32| Some(a.map_or(b, |a| a.min(b)));
    let higher = |a: Option<f32>, b: f32| Some(a.map_or(b, |a| a.max(b)));
    for (ti, owner) in all.iter().enumerate() {
        let Ok(Some(template)) = &owner.template else {
            continue;
        };
        for (ci, clip) in all.iter().enumerate() {
            let genuine = ci == ti;
            if !genuine && clip.person == owner.person {
                // The same person in another clip (a replay of them): neither genuine attempt nor impostor.
                continue;
            }
            for probes in &clip.windows {
                let result = if probes.is_empty() {
                    None
                } else {
                    Some(match_template(
                        template,
                        EVAL_MODEL,
                        probes.as_slice(),
                        threshold,
                    )?)
                };
                let r = &mut clips[ti];
                if genuine {
                    r.genuine_attempts += 1;
                    match result {
                        None => {
                            r.no_probe += 1;
                            r.false_rejects += 1;
                        }
                        Some(m) => {
                            r.false_rejects += usize::from(!m.matched);
                            r.min_genuine_score = lower(r.min_genuine_score, m.score);
                        }
                    }
                } else if let Some(m) = result {
                    impostor_attempts += 1;
                    false_accepts += usize::from(m.matched);
                    r.max_impostor_score = higher(r.max_impostor_score, m.score);
                }
            }
        }
    }
    clips.sort_by(|a, b| a.clip.cmp(&b.clip));
    let sum = |f: fn(&ClipReport) -> usize| clips.iter().map(f).sum::<usize>();
    let genuine_attempts = sum(|c| c.genuine_attempts);
    let false_rejects = sum(|c| c.false_rejects);
    let rate = |k: usize, n: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    let min_genuine_score = clips
        .iter()
        .filter_map(|c| c.min_genuine_score)
        .reduce(f32::min);
    let max_impostor_score = clips
        .iter()
        .filter_map(|c| c.max_impostor_score)
        .reduce(f32::max);
    Ok(Report {
        threshold,
        enrol_seconds: args.enrol_seconds,
        attempt_seconds: args.attempt_seconds,
        probe_frames: PROBE_FRAMES,
        templates: clips.iter().filter(|c| c.enrolled).count(),
        genuine_attempts,
        false_rejects,
        no_probe: sum(|c| c.no_probe),
        frr: rate(false_rejects, genuine_attempts),
        impostor_attempts,
        false_accepts,
        far: rate(false_accepts, impostor_attempts),
        min_genuine_score,
        max_impostor_score,
        clips,
    })
}

fn print_table(r: &Report) {
    println!(
        "Face match per attempt (threshold {:.4}; enrol {:.1} s, attempts of {:.1} s, {} probe frames)",
        r.threshold, r.enrol_seconds, r.attempt_seconds, r.probe_frames
    );
    println!(
        "  genuine attempts   {} : {} rejected ({} without a probe), FRR {:.2} %",
        r.genuine_attempts,
        r.false_rejects,
        r.no_probe,
        r.frr * 100.0
    );
    println!(
        "  impostor attempts  {} : {} accepted, FAR {:.3} %",
        r.impostor_attempts,
        r.false_accepts,
        r.far * 100.0
    );
    let f = |s: Option<f32>| s.map_or("-".to_owned(), |s| format!("{s:.3}"));
    println!(
        "  lowest genuine score {}, highest impostor score {}",
        f(r.min_genuine_score),
        f(r.max_impostor_score)
    );
    for c in &r.clips {
        println!(
            "  {:<22} {:<7} person {:<12} windows {:>3}  {}  genuine {:>3} rejected {:>2} (no probe {:>2})  min {}  max impostor {}",
            c.clip,
            c.label,
            c.person,
            c.windows,
            if c.enrolled { "enrolled" } else { "-       " },
            c.genuine_attempts,
            c.false_rejects,
            c.no_probe,
            f(c.min_genuine_score),
            f(c.max_impostor_score)
        );
        if let Some(e) = &c.enrol_error {
            println!("      enrolment failed: {e}");
        }
    }
}
