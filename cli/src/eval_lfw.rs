//! `facepay eval lfw`: face verification on LFW pairs with the committed models.
//!
//! Every image named by the pairs is embedded once (see [`embed`]); a pair's score is the cosine similarity of
//! its two embeddings. A pair with an image in which no face was detected scores −1 (the lowest cosine), so it
//! counts as a non-match at any threshold, and the image is counted in `failed_detections`.
//!
//! Protocols: with `--train`, the threshold of best accuracy on the train pairs is applied to `--pairs`. Without
//! it, a `FOLDS N` pairs file (LFW View 2: `10 300`) runs the k-fold protocol (threshold from the other folds,
//! accuracy on each fold, mean ± population std). TAR at FAR and EER are read off the ROC of all `--pairs`.

pub mod embed;
pub mod roc_plot;
mod scores_csv;

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use facepay_core::vision::embed::Embedding;
use facepay_core::vision::model::ModelManifest;
use facepay_qa::eval::metrics::{self, RocPoint, Scored};
use facepay_qa::eval::pairs::{self, ImageRef, PairList};
use facepay_qa::paths::default_models_dir;
use serde::Serialize;

/// Score given to a pair when a face was not detected in one of its images: the lowest cosine similarity.
pub const NO_FACE_SCORE: f32 = -1.0;

/// Arguments of `facepay eval lfw`.
#[derive(clap::Args)]
pub struct Args {
    /// Pairs to evaluate: first line `N` (N matched then N mismatched) or `FOLDS N` (View 2), then
    /// `name<TAB>i<TAB>j` or `name1<TAB>i<TAB>name2<TAB>j` per line.
    #[arg(long)]
    pub pairs: PathBuf,
    /// LFW images folder, holding `<name>/<name>_<NNNN>.jpg`.
    #[arg(long)]
    pub images: PathBuf,
    /// Pairs to choose the threshold on (best accuracy); it is then applied to `--pairs`. Without it, `--pairs`
    /// must be a `FOLDS N` file and the k-fold protocol runs.
    #[arg(long)]
    pub train: Option<PathBuf>,
    /// Print one JSON object on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Write the ROC curve of `--pairs` (TAR against log FAR) to this PNG file.
    #[arg(long)]
    pub roc: Option<PathBuf>,
    /// Write every scored pair (train and test) to this CSV file.
    #[arg(long)]
    pub scores: Option<PathBuf>,
    /// Average each embedding with that of the mirrored crop: `--flip` / `--flip=false` (default: the
    /// `flip_average` of `[calibration]` in the models' manifest, which was chosen on DevTrain).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub flip: Option<bool>,
    /// Worker threads, each with its own copy of the models (default: the number of CPU cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Folder of the committed models and `manifest.toml` (default: env FACEPAY_MODELS, else the repo's `models/`).
    #[arg(long)]
    pub models: Option<PathBuf>,
}

/// The figures `--json` prints. Rates are fractions in `0..=1`.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Number of evaluated pairs (`--pairs`).
    pub pairs: usize,
    /// Accuracy at the chosen threshold (k-fold: mean over folds).
    pub accuracy: f64,
    /// Standard deviation over folds (k-fold only).
    pub accuracy_std: Option<f64>,
    /// Threshold on cosine similarity (k-fold: mean of the fold thresholds).
    pub threshold: f64,
    /// TAR at FAR ≤ 1e-2 on `--pairs`.
    #[serde(rename = "tar_at_far_1e-2")]
    pub tar_at_far_1e_2: f64,
    /// TAR at FAR ≤ 1e-3 on `--pairs`.
    #[serde(rename = "tar_at_far_1e-3")]
    pub tar_at_far_1e_3: f64,
    /// Equal error rate on `--pairs`.
    pub eer: f64,
    /// Images of `--pairs` in which no face was detected.
    pub failed_detections: usize,
    /// TAR and FAR of `--pairs` at the product's match threshold (`[calibration]` of the models' manifest).
    pub at_product_threshold: ProductPoint,
}

/// One operating point: the threshold and the rates it gives.
#[derive(Debug, Serialize)]
pub struct ProductPoint {
    /// The product's match threshold.
    pub threshold: f64,
    /// Matched pairs accepted / matched pairs.
    pub tar: f64,
    /// Mismatched pairs accepted / mismatched pairs.
    pub far: f64,
}

/// Runs the evaluation and prints the report.
pub fn run(args: Args) -> anyhow::Result<()> {
    let test = pairs::read(&args.pairs)?;
    let train = args.train.as_deref().map(pairs::read).transpose()?;
    if train.is_none() && test.folds < 2 {
        anyhow::bail!(
            "{} has a single block of pairs: give --train FILE to choose the threshold, or use a `FOLDS N` pairs \
             file for the k-fold protocol",
            args.pairs.display()
        );
    }
    if !args.images.is_dir() {
        anyhow::bail!("images folder {} not found", args.images.display());
    }

    let mut images: Vec<ImageRef> = test.images();
    if let Some(t) = &train {
        images.extend(t.images());
        images.sort();
        images.dedup();
    }
    let models_dir = args.models.clone().unwrap_or_else(default_models_dir);
    let calibration = ModelManifest::load(&models_dir)?.calibration()?.clone();
    let flip = args.flip.unwrap_or(calibration.flip_average);
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let embeddings = embed::embed_all(&images, &args.images, &models_dir, flip, threads)?;
    let by_image: HashMap<&ImageRef, Option<&Embedding>> = images
        .iter()
        .zip(embeddings.iter().map(Option::as_ref))
        .collect();

    let test_scores = score(&test, &by_image);
    let failed_detections = test
        .images()
        .iter()
        .filter(|i| by_image.get(i).is_some_and(|e| e.is_none()))
        .count();

    let (accuracy, accuracy_std, threshold) = match &train {
        Some(t) => {
            let chosen = metrics::best_threshold(&score(t, &by_image))?;
            (
                metrics::accuracy(&test_scores, chosen.threshold)?,
                None,
                chosen.threshold,
            )
        }
        None => {
            let folds: Vec<usize> = test.pairs.iter().map(|p| p.fold).collect();
            let k = metrics::k_fold(&test_scores, &folds)?;
            (k.mean_accuracy, Some(k.std_accuracy), k.mean_threshold)
        }
    };
    let report = Report {
        pairs: test.pairs.len(),
        accuracy,
        accuracy_std,
        threshold,
        tar_at_far_1e_2: metrics::tar_at_far(&test_scores, 1e-2)?.tar,
        tar_at_far_1e_3: metrics::tar_at_far(&test_scores, 1e-3)?.tar,
        eer: metrics::eer(&test_scores)?,
        failed_detections,
        at_product_threshold: {
            let p = operating_point(&test_scores, f64::from(calibration.threshold));
            ProductPoint {
                threshold: p.threshold,
                tar: p.tar,
                far: p.far,
            }
        },
    };

    if let Some(path) = &args.scores {
        let mut sets = vec![("test", &test, &test_scores)];
        let train_scores = train.as_ref().map(|t| score(t, &by_image));
        if let (Some(t), Some(s)) = (&train, &train_scores) {
            sets.push(("train", t, s));
        }
        scores_csv::write(path, &sets).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.roc {
        let operating = operating_point(&test_scores, threshold);
        let title = format!(
            "LFW ROC: {} pairs, accuracy {:.2} %, EER {:.2} %",
            report.pairs,
            report.accuracy * 100.0,
            report.eer * 100.0
        );
        roc_plot::write_png(path, &metrics::roc(&test_scores)?, operating, &title)?;
    }

    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report, flip, train.is_some());
    }
    Ok(())
}

/// Cosine similarity per pair, [`NO_FACE_SCORE`] when either image has no face.
fn score(list: &PairList, by_image: &HashMap<&ImageRef, Option<&Embedding>>) -> Vec<Scored> {
    list.pairs
        .iter()
        .map(|p| {
            let score = match (
                by_image.get(&p.a).copied().flatten(),
                by_image.get(&p.b).copied().flatten(),
            ) {
                (Some(a), Some(b)) => a.similarity(b),
                _ => NO_FACE_SCORE,
            };
            Scored {
                score,
                same: p.same,
            }
        })
        .collect()
}

/// TAR and FAR of `pairs` at `threshold`.
fn operating_point(pairs: &[Scored], threshold: f64) -> RocPoint {
    let rate = |same: bool| {
        let class: Vec<&Scored> = pairs.iter().filter(|p| p.same == same).collect();
        class
            .iter()
            .filter(|p| f64::from(p.score) >= threshold)
            .count() as f64
            / class.len().max(1) as f64
    };
    RocPoint {
        threshold,
        tar: rate(true),
        far: rate(false),
    }
}

fn print_table(r: &Report, flip: bool, with_train: bool) {
    let protocol = if with_train {
        "threshold from --train"
    } else {
        "k-fold"
    };
    println!(
        "LFW verification ({protocol}, flip-averaging {})",
        if flip { "on" } else { "off" }
    );
    println!("  pairs              {}", r.pairs);
    match r.accuracy_std {
        Some(std) => println!(
            "  accuracy           {:.2} % ± {:.2} %",
            r.accuracy * 100.0,
            std * 100.0
        ),
        None => println!("  accuracy           {:.2} %", r.accuracy * 100.0),
    }
    println!("  threshold (cosine) {:.4}", r.threshold);
    println!("  TAR @ FAR 1e-2     {:.2} %", r.tar_at_far_1e_2 * 100.0);
    println!("  TAR @ FAR 1e-3     {:.2} %", r.tar_at_far_1e_3 * 100.0);
    println!("  EER                {:.2} %", r.eer * 100.0);
    println!("  failed detections  {}", r.failed_detections);
    let p = &r.at_product_threshold;
    println!(
        "  product threshold  {:.4}: TAR {:.2} %, FAR {:.2} %",
        p.threshold,
        p.tar * 100.0,
        p.far * 100.0
    );
}
