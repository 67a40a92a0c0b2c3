//! `facepay bench vision`: per-stage latency, model load time and peak memory of the vision pipeline.
//!
//! tract runs on the calling thread (its default executor is single-threaded). The one exception is the product's
//! own: `frame_ms` and `session_ms` run the two eyes' iris models at once on a second thread, as sessions do
//! (`vision.parallel_eyes`; `--serial-eyes` times them one after the other). The stage frame is a clip frame
//! brought to 640×480: scaled to cover 640×480 and centre-cropped (the clips are 640×427 or 640×360), which is a 4:3 camera frame.
//!
//! - `detect_ms`, `landmarks_ms`, `eyes_ms`, `embed_ms` (MobileFaceNet), `embed_dlib_ms` (dlib's ResNet),
//!   `antispoof_ms`: each stage alone on that frame, repeated
//!   `--runs` times after a warm-up (the stage's full `run`: input warp + inference + decoding; `eyes_ms` is both
//!   eyes, two inferences of the iris model, one after the other on one thread);
//! - `frame_ms`: [`Vision::analyze`] (detect or track ▸ face mesh ▸ pose ▸ eye openness ▸ quality) over the clip's
//!   frames in order, with the pipeline's default tracking — the liveness policy's too (the detector on every
//!   frame); `--runs` frames are timed, wrapping around the clip (tracking is reset at the wrap);
//! - `session_ms`: `LivenessSession::push_image` over the clip, back-to-back blink sessions, with the MiniFASNet
//!   models loaded (passive samples on some frames) and without them (see [`session`]); `--runs` frames each;
//! - `load_ms`: reading, hash-checking and optimising every model into a [`Vision`] (median of 3 loads);
//! - with `--ort`: `ort`, the same stages under onnxruntime in the same run (`cli/scripts/ort_bench.py`, same
//!   models and frame), and `ratio`, tract's median over onnxruntime's per stage;
//! - `peak_rss_mb`: the process's peak resident set (`VmHWM`, MiB) at the end. The stage models are dropped before
//!   the pipelines of `frame_ms` and `session_ms` load, so it is about one full pipeline plus the timing buffers.

mod ort;
mod profile;
mod session;
mod stats;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use facepay_core::vision::antispoof::AntiSpoof;
use facepay_core::vision::detect::Detector;
use facepay_core::vision::embed::Embedder;
use facepay_core::vision::eyes::EyeModel;
use facepay_core::vision::frame::decode_file;
use facepay_core::vision::image::{Affine, RgbImage, warp_to_rgb};
use facepay_core::vision::landmarks::{FaceMesh, Roi};
use facepay_core::vision::model::{ModelManifest, read_model_file};
use facepay_core::vision::pipeline::{
    DETECTOR_MODEL, DLIB_RESNET_MODEL, EYES_MODEL, MESH_MODEL, MOBILEFACENET_MODEL, Vision,
};
use facepay_qa::paths::{default_antispoof_dir, default_models_dir, default_shared_dir};
use serde::Serialize;
use session::{SessionReport, SessionRun};
use stats::Timings;

/// Width and height of the benchmark frame.
const FRAME_SIZE: (u32, u32) = (640, 480);
/// Untimed runs before each measurement.
const WARMUP: usize = 10;

/// Arguments of `facepay bench vision`.
#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON object (medians) on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Timed runs per stage, and timed frames for `frame_ms` (at least 100).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(100..))]
    pub runs: u32,
    /// Still frame for the per-stage timings (default: the first frame of the clip).
    #[arg(long)]
    pub frame: Option<PathBuf>,
    /// Clip folder (`NNNNN.jpg` frames) for `frame_ms` (default: `$FACEPAY_SHARED/data/clips/live-blink-7`).
    #[arg(long)]
    pub clip: Option<PathBuf>,
    /// Folder of the committed models (default: env FACEPAY_MODELS, else the repo's `models/`).
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Folder of the MiniFASNet models (default: env FACEPAY_ANTISPOOF_MODELS, else `$FACEPAY_SHARED/models`).
    #[arg(long)]
    pub antispoof_dir: Option<PathBuf>,
    /// Also run `cli/scripts/ort_bench.py` (onnxruntime, same models) and show its figures beside tract's (with
    /// `--json`: the `ort` and `ratio` objects).
    #[arg(long)]
    pub ort: bool,
    /// Time `frame_ms` and `session_ms` with the two eyes' iris runs one after the other on one thread (by default
    /// they run at once on two threads, as in the product: `vision.parallel_eyes`).
    #[arg(long)]
    pub serial_eyes: bool,
    /// Only print where each model's tract plan spends its time, per op kind (`--runs` runs each), and exit.
    #[arg(long, conflicts_with_all = ["json", "ort"])]
    pub profile: bool,
}

/// The figures `--json` prints: medians in milliseconds, memory in MiB.
#[derive(Debug, Serialize)]
pub struct Report {
    /// BlazeFace on the frame.
    pub detect_ms: f64,
    /// Face mesh on the detected face.
    pub landmarks_ms: f64,
    /// Eye openness of both eyes (the iris model, once per eye) from that mesh.
    pub eyes_ms: f64,
    /// Alignment + MobileFaceNet, one inference (flip-averaging, when calibrated on, costs two: see the table).
    pub embed_ms: f64,
    /// Alignment + dlib's ResNet (the second embedder of the fused match score), one inference.
    pub embed_dlib_ms: f64,
    /// Both MiniFASNet models, `null` when they are absent.
    pub antispoof_ms: Option<f64>,
    /// Everything the liveness session needs per frame, over a clip (the default tracking, as in a session).
    pub frame_ms: f64,
    /// `LivenessSession::push_image` per frame (median and p95), with and without the MiniFASNet models.
    pub session_ms: SessionReport,
    /// Whether `frame_ms` and `session_ms` ran the two eyes at once, on two threads (`--serial-eyes`: false).
    pub parallel_eyes: bool,
    /// Building the whole pipeline from the model files.
    pub load_ms: f64,
    /// Peak resident set size.
    pub peak_rss_mb: f64,
    /// With `--ort`: the same stages under onnxruntime, medians in ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ort: Option<ort::OrtFigures>,
    /// With `--ort`: tract's median over onnxruntime's, per stage (`null` where either is missing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<ort::Ratios>,
}

/// Timings beyond the JSON figures, for the table.
struct Details {
    stages: Stages,
    frame: Timings,
    frame_detected: Timings,
    frame_tracked: Timings,
    session: Option<SessionRun>,
    session_active: SessionRun,
    threads: Option<u64>,
    clip: PathBuf,
    frame_source: PathBuf,
}

/// Runs the benchmark and prints the report.
pub fn run(args: Args) -> anyhow::Result<()> {
    let models_dir = args.models.clone().unwrap_or_else(default_models_dir);
    let antispoof_dir = args
        .antispoof_dir
        .clone()
        .unwrap_or_else(default_antispoof_dir);
    let clip = match &args.clip {
        Some(c) => c.clone(),
        None => default_shared_dir()
            .join("data")
            .join("clips")
            .join("live-blink-7"),
    };
    if args.profile {
        let manifest = ModelManifest::load(&models_dir)?;
        return profile::print(&manifest, &models_dir, &antispoof_dir, args.runs as usize);
    }
    let clip_frames = clip_frames(&clip)?;
    let frame_source = args.frame.clone().unwrap_or_else(|| clip_frames[0].clone());
    let frame = to_bench_frame(&decode_file(&frame_source)?);
    let runs = args.runs as usize;

    let load = time_loads(&models_dir, &antispoof_dir)?;
    let manifest = ModelManifest::load(&models_dir)?;
    let stages = time_stages(
        &manifest,
        &models_dir,
        &antispoof_dir,
        &frame,
        &frame_source,
        runs,
    )?;

    let fps = session::clip_fps(&clip);
    let parallel_eyes = !args.serial_eyes;
    let mut vision = Vision::load(&models_dir, None)?;
    vision.set_parallel_eyes(parallel_eyes);
    let (frame_all, frame_detected, frame_tracked) = time_clip(&mut vision, &clip_frames, runs)?;
    let session_active =
        session::time_sessions(&mut vision, &clip_frames, fps, runs, parallel_eyes)?;
    drop(vision);
    let mut vision = Vision::load(&models_dir, Some(&antispoof_dir))?;
    let session = if vision.has_antispoof() {
        Some(session::time_sessions(
            &mut vision,
            &clip_frames,
            fps,
            runs,
            parallel_eyes,
        )?)
    } else {
        None
    };
    drop(vision);

    let details = Details {
        stages,
        frame: frame_all,
        frame_detected,
        frame_tracked,
        session,
        session_active,
        threads: proc_status_field("Threads:"),
        clip,
        frame_source,
    };
    let ort_figures = if args.ort {
        Some(ort::run(
            &models_dir,
            &antispoof_dir,
            &details.frame_source,
            runs,
        ))
    } else {
        None
    };
    let ort_ok = match ort_figures {
        // One JSON object is what scripts read: a missing reference is an error, not an absent key.
        Some(Err(e)) if args.json => return Err(e.context("--ort")),
        Some(Err(e)) => {
            eprintln!("bench vision: onnxruntime figures unavailable: {e:#}");
            None
        }
        Some(Ok(f)) => Some(f),
        None => None,
    };
    let mut report = Report {
        detect_ms: details.stages.detect.median,
        landmarks_ms: details.stages.landmarks.median,
        eyes_ms: details.stages.eyes.median,
        embed_ms: details.stages.embed.median,
        embed_dlib_ms: details.stages.embed_dlib.median,
        antispoof_ms: details.stages.antispoof.as_ref().map(|t| t.median),
        frame_ms: details.frame.median,
        session_ms: SessionReport::new(details.session.as_ref(), &details.session_active),
        parallel_eyes,
        load_ms: load,
        peak_rss_mb: proc_status_field("VmHWM:").context("reading VmHWM from /proc/self/status")?
            as f64
            / 1024.0,
        ort: None,
        ratio: None,
    };
    if let Some(o) = ort_ok {
        report.ratio = Some(ort::Ratios::new(&report, &o));
        report.ort = Some(o);
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    print_table(&report, &details, runs, args.ort);
    Ok(())
}

/// Each stage alone on the stage frame.
struct Stages {
    detect: Timings,
    landmarks: Timings,
    eyes: Timings,
    /// One inference.
    embed: Timings,
    /// Flip-averaged: two inferences.
    embed_flip: Timings,
    /// dlib's ResNet, one inference.
    embed_dlib: Timings,
    /// `None` when the MiniFASNet models are absent.
    antispoof: Option<Timings>,
}

/// Times each stage on `frame`. The stage models live only for this.
fn time_stages(
    manifest: &ModelManifest,
    models_dir: &Path,
    antispoof_dir: &Path,
    frame: &RgbImage,
    frame_source: &Path,
    runs: usize,
) -> anyhow::Result<Stages> {
    let model = |name: &str| -> anyhow::Result<_> {
        let entry = manifest.entry(name)?;
        Ok((entry, read_model_file(models_dir, entry)?))
    };
    let (entry, bytes) = model(DETECTOR_MODEL)?;
    let mut detector = Detector::new(entry, &bytes)?;
    let (entry, bytes) = model(MESH_MODEL)?;
    let mut mesh = FaceMesh::new(entry, &bytes)?;
    let (entry, bytes) = model(EYES_MODEL)?;
    let mut eyes = EyeModel::new(entry, &bytes)?;
    // One eye after the other, on one thread: the per-stage figure compares with onnxruntime's one thread.
    eyes.set_parallel(false);
    let (entry, bytes) = model(MOBILEFACENET_MODEL)?;
    let mut embedder = Embedder::new(entry, &bytes)?;
    let (entry, bytes) = model(DLIB_RESNET_MODEL)?;
    let mut dlib = Embedder::new(entry, &bytes)?;
    let mut antispoof = AntiSpoof::load(manifest, antispoof_dir)?;

    let faces = detector.run(frame)?;
    let face = *faces
        .first()
        .with_context(|| format!("no face detected in {}", frame_source.display()))?;
    let roi = Roi::from_face(&face);
    let landmarks = mesh.run(frame, &roi)?;

    let detect = measure(runs, || detector.run(frame).map(drop))?;
    let landmarks_t = measure(runs, || mesh.run(frame, &roi).map(drop))?;
    let eyes_t = measure(runs, || eyes.run(frame, &landmarks).map(drop))?;
    let embed = measure(runs, || embedder.run(frame, &landmarks).map(drop))?;
    embedder.set_flip_average(true);
    let embed_flip = measure(runs, || embedder.run(frame, &landmarks).map(drop))?;
    let embed_dlib = measure(runs, || dlib.run(frame, &landmarks).map(drop))?;
    let antispoof_t = match antispoof.as_mut() {
        Some(a) => Some(measure(runs, || a.run(frame, &face.rect).map(drop))?),
        None => None,
    };
    Ok(Stages {
        detect,
        landmarks: landmarks_t,
        eyes: eyes_t,
        embed,
        embed_flip,
        embed_dlib,
        antispoof: antispoof_t,
    })
}

/// The clip's `*.jpg` frames in name order.
fn clip_frames(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).with_context(|| {
        format!(
            "clip folder {} not found (set --clip, or FACEPAY_SHARED to the shared data folder)",
            dir.display()
        )
    })?;
    let mut frames: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg")))
        .collect();
    frames.sort();
    if frames.is_empty() {
        anyhow::bail!("clip folder {} has no .jpg frames", dir.display());
    }
    Ok(frames)
}

/// Scales `image` to cover 640×480 (keeping its aspect) and crops the centre: a 4:3 camera frame.
fn to_bench_frame(image: &RgbImage) -> RgbImage {
    let (w, h) = (FRAME_SIZE.0 as f32, FRAME_SIZE.1 as f32);
    if (image.width, image.height) == FRAME_SIZE {
        return image.clone();
    }
    let scale = (w / image.width as f32).max(h / image.height as f32);
    // dst pixel centre x ↦ src centre: (x + 0.5) / scale − 0.5 + offset, offset centring the crop.
    let ox = (image.width as f32 - w / scale) * 0.5;
    let oy = (image.height as f32 - h / scale) * 0.5;
    let inv = 1.0 / scale;
    let map = Affine {
        m: [
            inv,
            0.0,
            0.5 * inv - 0.5 + ox,
            0.0,
            inv,
            0.5 * inv - 0.5 + oy,
        ],
    };
    warp_to_rgb(image, &map, FRAME_SIZE.0, FRAME_SIZE.1)
}

/// Median over 3 loads of the whole pipeline (models read from disk, hash-checked, optimised).
fn time_loads(models_dir: &Path, antispoof_dir: &Path) -> anyhow::Result<f64> {
    let mut ms = Vec::with_capacity(3);
    for _ in 0..3 {
        let start = Instant::now();
        let vision = Vision::load(models_dir, Some(antispoof_dir))?;
        ms.push(start.elapsed().as_secs_f64() * 1000.0);
        drop(vision);
    }
    Ok(Timings::from_ms(ms).median)
}

/// Runs `f` [`WARMUP`] times untimed, then `runs` times timed.
fn measure<E>(runs: usize, mut f: impl FnMut() -> Result<(), E>) -> anyhow::Result<Timings>
where
    E: std::error::Error + Send + Sync + 'static,
{
    for _ in 0..WARMUP {
        f()?;
    }
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        f()?;
        ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(Timings::from_ms(ms))
}

/// Times [`Vision::analyze`] on `runs` consecutive clip frames (decoding and resizing untimed), after one
/// untimed pass over the first frames. Returns all frames, detector frames and tracked frames.
fn time_clip(
    vision: &mut Vision,
    frames: &[PathBuf],
    runs: usize,
) -> anyhow::Result<(Timings, Timings, Timings)> {
    let (mut all, mut detected, mut tracked) = (Vec::new(), Vec::new(), Vec::new());
    for (i, path) in frames.iter().cycle().enumerate().take(runs + WARMUP) {
        if i % frames.len() == 0 {
            vision.reset();
        }
        let image = to_bench_frame(
            &decode_file(path).with_context(|| format!("decoding {}", path.display()))?,
        );
        let start = Instant::now();
        let analysis = vision.analyze(&image)?;
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        if i < WARMUP {
            continue;
        }
        all.push(ms);
        if analysis.detected {
            detected.push(ms)
        } else {
            tracked.push(ms)
        }
    }
    Ok((
        Timings::from_ms(all),
        Timings::from_ms(detected),
        Timings::from_ms(tracked),
    ))
}

/// A numeric field of `/proc/self/status` (e.g. `VmHWM:` in kB), `None` where there is no procfs.
fn proc_status_field(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

fn print_table(r: &Report, d: &Details, runs: usize, asked_ort: bool) {
    println!(
        "facepay bench vision: {runs} timed runs per stage, one thread (process threads: {}); frame and session \
         rows: the two eyes {}",
        d.threads.map_or("unknown".to_string(), |t| t.to_string()),
        if r.parallel_eyes {
            "at once on two threads"
        } else {
            "one after the other"
        }
    );
    println!(
        "  stage frame: {} → 640×480; clip for frame_ms: {}",
        d.frame_source.display(),
        d.clip.display()
    );
    let ort_ok = r.ort.as_ref();
    let ort_col = |v: Option<f64>| match (ort_ok, v) {
        (Some(_), Some(v)) => format!("{v:>10.2}"),
        (Some(_), None) => format!("{:>10}", "-"),
        (None, _) => String::new(),
    };
    let header_ort = if ort_ok.is_some() {
        format!("{:>10}", "ORT ms")
    } else {
        String::new()
    };
    println!(
        "  {:<34}{:>10}{:>10}{header_ort}",
        "stage", "median ms", "p95 ms"
    );
    let row = |name: &str, t: &Timings, o: Option<f64>| {
        println!(
            "  {name:<34}{:>10.2}{:>10.2}{}",
            t.median,
            t.p95,
            ort_col(o)
        );
    };
    let st = &d.stages;
    row(
        "detect (BlazeFace)",
        &st.detect,
        ort_ok.and_then(|o| o.detect_ms),
    );
    row(
        "landmarks (face mesh 468)",
        &st.landmarks,
        ort_ok.and_then(|o| o.landmarks_ms),
    );
    row(
        "eyes (iris model, both eyes)",
        &st.eyes,
        ort_ok.and_then(|o| o.eyes_ms),
    );
    row(
        "embed (MobileFaceNet)",
        &st.embed,
        ort_ok.and_then(|o| o.embed_ms),
    );
    row("embed, flip-averaged (2 inferences)", &st.embed_flip, None);
    row(
        "embed (dlib ResNet)",
        &st.embed_dlib,
        ort_ok.and_then(|o| o.embed_dlib_ms),
    );
    match &st.antispoof {
        Some(t) => row(
            "antispoof (MiniFASNet V2 + V1SE)",
            t,
            ort_ok.and_then(|o| o.antispoof_ms),
        ),
        None => println!("  {:<34}{:>10}", "antispoof", "absent"),
    }
    row("frame (detect-or-track + mesh + …)", &d.frame, None);
    println!(
        "    of which detector frames: {}, tracked frames: {}",
        d.frame_detected, d.frame_tracked
    );
    match &d.session {
        Some(s) => {
            row("session, MiniFASNet loaded", &s.all, None);
            println!(
                "    {} sessions; passive-sample frames: {}; verdict frames: {}",
                s.sessions, s.passive, s.verdict
            );
        }
        None => println!("  {:<34}{:>10}", "session, MiniFASNet loaded", "absent"),
    }
    row("session, active only", &d.session_active.all, None);
    println!(
        "    {} sessions; verdict frames: {}",
        d.session_active.sessions, d.session_active.verdict
    );
    println!(
        "  load (all models)                 {:>10.1} ms{}",
        r.load_ms,
        ort_ok.map_or(String::new(), |o| format!("   (ORT {:.1} ms)", o.load_ms))
    );
    println!(
        "  peak RSS                          {:>10.1} MiB",
        r.peak_rss_mb
    );
    match (&r.ratio, asked_ort) {
        (Some(ratio), _) => println!("  tract / onnxruntime: {ratio}"),
        (None, true) => println!("  onnxruntime figures unavailable (the error is on stderr)"),
        (None, false) => println!("  (add --ort for the same models under onnxruntime)"),
    }
}
