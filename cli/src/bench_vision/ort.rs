//! The same models under onnxruntime, through `cli/scripts/ort_bench.py` run with the venv that
//! `models/reproduce.sh` creates (onnxruntime is never a dependency of the Rust code).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::Report;

/// Medians in ms as printed by `ort_bench.py --json`.
#[derive(Debug, Deserialize, Serialize)]
pub struct OrtFigures {
    /// BlazeFace.
    pub detect_ms: Option<f64>,
    /// Face mesh.
    pub landmarks_ms: Option<f64>,
    /// Iris model, both eyes (two inferences); absent from older script output.
    #[serde(default)]
    pub eyes_ms: Option<f64>,
    /// MobileFaceNet.
    pub embed_ms: Option<f64>,
    /// dlib's ResNet; absent from older script output.
    #[serde(default)]
    pub embed_dlib_ms: Option<f64>,
    /// Both MiniFASNet models, `null` when absent.
    pub antispoof_ms: Option<f64>,
    /// All sessions created.
    pub load_ms: f64,
}

/// tract's median over onnxruntime's per stage, from the same run.
#[derive(Debug, Serialize)]
pub struct Ratios {
    /// BlazeFace.
    pub detect: Option<f64>,
    /// Face mesh.
    pub landmarks: Option<f64>,
    /// Iris model, both eyes.
    pub eyes: Option<f64>,
    /// MobileFaceNet.
    pub embed: Option<f64>,
    /// dlib's ResNet.
    pub embed_dlib: Option<f64>,
    /// Both MiniFASNet models.
    pub antispoof: Option<f64>,
}

impl Ratios {
    /// The ratios of `tract`'s stage medians over `ort`'s (rounded to 0.01).
    pub fn new(tract: &Report, ort: &OrtFigures) -> Self {
        let ratio = |t: Option<f64>, o: Option<f64>| match (t, o) {
            (Some(t), Some(o)) if o > 0.0 => Some((t / o * 100.0).round() / 100.0),
            _ => None,
        };
        Self {
            detect: ratio(Some(tract.detect_ms), ort.detect_ms),
            landmarks: ratio(Some(tract.landmarks_ms), ort.landmarks_ms),
            eyes: ratio(Some(tract.eyes_ms), ort.eyes_ms),
            embed: ratio(Some(tract.embed_ms), ort.embed_ms),
            embed_dlib: ratio(Some(tract.embed_dlib_ms), ort.embed_dlib_ms),
            antispoof: ratio(tract.antispoof_ms, ort.antispoof_ms),
        }
    }
}

impl std::fmt::Display for Ratios {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{r:.2}×"));
        write!(
            f,
            "detect {}, landmarks {}, eyes {}, embed {}, embed_dlib {}, antispoof {}",
            show(self.detect),
            show(self.landmarks),
            show(self.eyes),
            show(self.embed),
            show(self.embed_dlib),
            show(self.antispoof)
        )
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs the script (its progress goes to our stderr) and parses its one JSON object.
pub fn run(
    models_dir: &Path,
    antispoof_dir: &Path,
    frame: &Path,
    runs: usize,
) -> anyhow::Result<OrtFigures> {
    let python = workspace()
        .join("models")
        .join(".work")
        .join("venv")
        .join("bin")
        .join("python");
    let script = workspace().join("cli").join("scripts").join("ort_bench.py");
    if !python.is_file() {
        anyhow::bail!(
            "no onnxruntime venv at {}: run `models/reproduce.sh` once to create it (it installs onnxruntime), \
             then `{} {} --json` is what --ort runs",
            python.display(),
            python.display(),
            script.display()
        );
    }
    let output = Command::new(&python)
        .arg(&script)
        .arg("--json")
        .arg("--runs")
        .arg(runs.to_string())
        .arg("--models-dir")
        .arg(models_dir)
        .arg("--antispoof-dir")
        .arg(antispoof_dir)
        .arg("--frame")
        .arg(frame)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        anyhow::bail!("{} failed ({})", script.display(), output.status);
    }
    serde_json::from_slice(&output.stdout)
        .with_context(|| format!("parsing the JSON of {}", script.display()))
}
