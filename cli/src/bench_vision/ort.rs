//! The same models under onnxruntime, through `cli/scripts/ort_bench.py` run with the venv that
//! `models/reproduce.sh` creates (onnxruntime is never a dependency of the Rust code).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;
use serde::Deserialize;

/// Medians in ms as printed by `ort_bench.py --json`.
#[derive(Debug, Deserialize)]
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
    /// Both MiniFASNet models, `null` when absent.
    pub antispoof_ms: Option<f64>,
    /// All sessions created.
    pub load_ms: f64,
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
