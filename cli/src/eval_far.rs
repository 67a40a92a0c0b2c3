//! `facepay eval far`: the false-accept rate measured on every pair of an image set, not on a sample of pairs.
//!
//! Every image under `--images` (LFW layout, `<Person>/<Person>_NNNN.jpg`; the folder is the identity) is embedded
//! once with the committed models, exactly as `eval lfw` does; then every genuine pair (same folder) and every
//! impostor pair (different folders) is scored blockwise over the embedding matrix into a fine histogram plus
//! the exact highest impostor scores ([`facepay_qa::eval::all_pairs`]): nothing per pair is kept for the
//! impostors, so tens of millions of pairs fit in a few megabytes.
//!
//! The product's threshold (`[calibration]` of the models' manifest) is evaluated, and for each target FAR the
//! threshold that reaches it and the TAR there. How many impostor pairs stand behind each FAR is printed (on
//! stderr with `--json`): FAR 1e-6 on 12 million pairs is 12 false accepts, and LFW holds a few mislabelled or
//! duplicated identities whose "impostor" pairs are really the same person, which bounds what such a FAR means.

mod det_plot;
mod embedding_cache;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;
use facepay_core::vision::model::ModelManifest;
use facepay_qa::eval::all_pairs::{self, AllPairs};
use facepay_qa::eval::pairs::ImageRef;
use facepay_qa::paths::default_models_dir;
use serde::Serialize;

/// The FAR targets reported (keys of `tar_at_far` and `threshold_at_far`).
pub const FAR_TARGETS: [(&str, f64); 4] = [
    ("1e-3", 1e-3),
    ("1e-4", 1e-4),
    ("1e-5", 1e-5),
    ("1e-6", 1e-6),
];
/// Highest-scoring impostor pairs listed in the table (to look for mislabelled identities).
const LISTED_IMPOSTORS: usize = 10;

/// Arguments of `facepay eval far`.
#[derive(clap::Args)]
pub struct Args {
    /// Images folder in LFW layout: `<Person>/<Person>_<NNNN>.jpg` (the folder name is the identity).
    #[arg(long)]
    pub images: PathBuf,
    /// Print one JSON object on stdout instead of the table (the notes go to stderr).
    #[arg(long)]
    pub json: bool,
    /// Write the DET curve (false non-match rate against false match rate, both log) to this PNG file.
    #[arg(long)]
    pub det: Option<PathBuf>,
    /// Worker threads for embedding and scoring (default: the number of CPU cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Keep the embeddings in this file and reuse the ones whose image file and models are unchanged (it is
    /// rewritten after each run; put it outside the repository).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Folder of the committed models and `manifest.toml` (default: env FACEPAY_MODELS, else the repo's `models/`).
    #[arg(long)]
    pub models: Option<PathBuf>,
}

/// The figures `--json` prints. Rates are fractions in `0..=1`.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Images found under `--images`.
    pub images: usize,
    /// Images in which no face was detected (their pairs score −1: rejected).
    pub failed_detections: usize,
    /// Pairs of two images of the same identity.
    pub genuine_pairs: u64,
    /// Pairs of images of two different identities.
    pub impostor_pairs: u64,
    /// The product's match threshold (`[calibration]`).
    pub threshold: f64,
    /// Impostor pairs accepted at the product's threshold / impostor pairs.
    pub far_at_threshold: f64,
    /// Genuine pairs accepted at the product's threshold / genuine pairs.
    pub tar_at_threshold: f64,
    /// TAR at the threshold of each FAR target.
    pub tar_at_far: BTreeMap<&'static str, f64>,
    /// The lowest threshold whose FAR is at most each target.
    pub threshold_at_far: BTreeMap<&'static str, f64>,
}

/// Runs the evaluation and prints the report.
pub fn run(args: Args) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let images = list_images(&args.images)?;
    let models_dir = args.models.clone().unwrap_or_else(default_models_dir);
    let manifest = ModelManifest::load(&models_dir)?;
    let calibration = manifest.calibration()?.clone();
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let embeddings = embedding_cache::embed_cached(
        &images,
        &args.images,
        &models_dir,
        &manifest,
        calibration.flip_average,
        threads,
        args.cache.as_deref(),
    )?;
    let failed_detections = embeddings.iter().filter(|e| e.is_none()).count();
    let labels = identity_labels(&images);

    let n = images.len() as u64;
    eprintln!(
        "scoring {} pairs of {} images on {threads} threads",
        n * n.saturating_sub(1) / 2,
        images.len()
    );
    let progress = scoring_progress(images.len());
    let scored = all_pairs::score_all_pairs(&embeddings, &labels, threads, &|rows| {
        progress.set_position(rows as u64)
    })?;
    progress.finish_and_clear();

    let threshold = f64::from(calibration.threshold);
    let mut tar_at_far = BTreeMap::new();
    let mut threshold_at_far = BTreeMap::new();
    for (key, far) in FAR_TARGETS {
        let t = scored.threshold_at_far(far)?;
        threshold_at_far.insert(key, t);
        tar_at_far.insert(key, scored.tar(t));
    }
    let report = Report {
        images: images.len(),
        failed_detections,
        genuine_pairs: scored.genuine_pairs(),
        impostor_pairs: scored.impostor_pairs(),
        threshold,
        far_at_threshold: scored.far(threshold),
        tar_at_threshold: scored.tar(threshold),
        tar_at_far,
        threshold_at_far,
    };
    if let Some(path) = &args.det {
        det_plot::write_png(path, &scored, &report)?;
    }
    let notes = notes(&report, &scored, &images);
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        eprint!("{notes}");
    } else {
        print_table(&report, &scored);
        print!("{notes}");
    }
    eprintln!("eval far: {:.1} s wall", started.elapsed().as_secs_f64());
    Ok(())
}

/// Every `<Person>/<Person>_NNNN.jpg` under `dir`, sorted by person then number. Other files are refused (a
/// typo in a name would silently make a new identity).
fn list_images(dir: &Path) -> anyhow::Result<Vec<ImageRef>> {
    let read = |d: &Path| -> anyhow::Result<Vec<std::fs::DirEntry>> {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .with_context(|| format!("reading images folder {}", d.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("reading images folder {}", d.display()))?;
        v.sort_by_key(std::fs::DirEntry::file_name);
        Ok(v)
    };
    let mut images = Vec::new();
    for person in read(dir)? {
        if !person.file_type()?.is_dir() {
            continue;
        }
        let name = person.file_name().to_string_lossy().into_owned();
        for file in read(&person.path())? {
            let file_name = file.file_name().to_string_lossy().into_owned();
            let number = file_name
                .strip_prefix(&format!("{name}_"))
                .and_then(|rest| rest.strip_suffix(".jpg"))
                .and_then(|digits| digits.parse::<u32>().ok())
                .filter(|&k| k > 0);
            let Some(number) = number else {
                anyhow::bail!(
                    "{}: not an LFW image name (expected {name}_NNNN.jpg)",
                    file.path().display()
                );
            };
            images.push(ImageRef {
                name: name.clone(),
                number,
            });
        }
    }
    images.sort();
    if images.len() < 2 {
        anyhow::bail!(
            "{} holds {} image(s) in <Person>/<Person>_NNNN.jpg layout: at least two are needed",
            dir.display(),
            images.len()
        );
    }
    Ok(images)
}

/// One label per image: the index of its person among the distinct names.
fn identity_labels(images: &[ImageRef]) -> Vec<u32> {
    let mut ids: BTreeMap<&str, u32> = BTreeMap::new();
    images
        .iter()
        .map(|i| {
            let next = ids.len() as u32;
            *ids.entry(i.name.as_str()).or_insert(next)
        })
        .collect()
}

fn scoring_progress(rows: usize) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(rows as u64);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("scoring [{bar:40}] {pos}/{len} rows, eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// What the figures rest on: false accepts behind each FAR, the mislabelled identities of LFW, the top pairs.
fn notes(r: &Report, scored: &AllPairs, images: &[ImageRef]) -> String {
    let mut s = String::new();
    s += &format!(
        "impostor pairs behind each FAR ({} impostor pairs in all):\n",
        r.impostor_pairs
    );
    for (key, far) in FAR_TARGETS {
        s += &format!(
            "  FAR {key}: at most {} false accepts allowed, threshold {:.4}\n",
            scored.allowed_false_accepts(far),
            r.threshold_at_far[key]
        );
    }
    s += &format!(
        "  at the product threshold {:.4}: {} impostor pairs accepted ({:.2e}), {} of {} genuine pairs accepted\n",
        r.threshold,
        scored.impostors_accepted(r.threshold),
        r.far_at_threshold,
        scored.genuine_accepted(r.threshold),
        r.genuine_pairs
    );
    s += "note: LFW holds a few mislabelled images and identities filed under two names; their \"impostor\" \
          pairs are the same person and score like genuine ones, so a FAR of a few pairs in millions (1e-6) \
          partly measures the labels, not the matcher. The highest-scoring impostor pairs (check them by eye):\n";
    let name = |k: u32| {
        let i = &images[k as usize];
        format!("{}_{:04}", i.name, i.number)
    };
    for p in scored.top_impostors().iter().take(LISTED_IMPOSTORS) {
        s += &format!("  {:.4}  {} vs {}\n", p.score, name(p.a), name(p.b));
    }
    s
}

fn print_table(r: &Report, scored: &AllPairs) {
    println!("False accepts on every pair (all-pairs protocol)");
    println!("  images                {}", r.images);
    println!("  failed detections     {}", r.failed_detections);
    println!("  genuine pairs         {}", r.genuine_pairs);
    println!("  impostor pairs        {}", r.impostor_pairs);
    println!(
        "  product threshold     {:.4}: FAR {:.3e} ({} pairs), TAR {:.2} %",
        r.threshold,
        r.far_at_threshold,
        scored.impostors_accepted(r.threshold),
        r.tar_at_threshold * 100.0
    );
    for (key, _) in FAR_TARGETS {
        println!(
            "  FAR {key}: threshold {:.4}, TAR {:.2} %",
            r.threshold_at_far[key],
            r.tar_at_far[key] * 100.0
        );
    }
}
