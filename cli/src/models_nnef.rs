//! `facepay models nnef`: converts the manifest's ONNX models to tract's NNEF form, the files the library loads.
//!
//! For every manifest entry (committed and external) whose ONNX file is in `--onnx DIR`, it checks the ONNX
//! sha256, writes `<out>/<nnef_file>` (deterministic bytes: the decluttered model with its input fixed, written by
//! tract-nnef) and compares the result with `nnef_sha256`. `models/reproduce.sh` runs it after rebuilding the ONNX
//! files; a phone app bundles its output with `manifest.toml` (the MiniFASNet models included, converted from the
//! external directory).

use std::path::PathBuf;

use anyhow::{Context, bail};
use facepay_core::vision::model::{ModelManifest, onnx_to_nnef, sha256_hex};
use facepay_qa::paths::default_models_dir;
use serde::Serialize;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Folder with `manifest.toml` (default: the committed models).
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Folder with the ONNX files to convert (default: the `--models` folder).
    #[arg(long)]
    pub onnx: Option<PathBuf>,
    /// Folder the NNEF files are written to (default: the `--onnx` folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Fail (exit 1) when a written file's sha256 differs from the manifest's `nnef_sha256`.
    #[arg(long)]
    pub check: bool,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// One converted model.
#[derive(Debug, Serialize)]
struct Converted {
    name: String,
    nnef_file: String,
    bytes: usize,
    nnef_sha256: String,
    matches_manifest: bool,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let models = args.models.unwrap_or_else(default_models_dir);
    let onnx_dir = args.onnx.unwrap_or_else(|| models.clone());
    let out = args.out.unwrap_or_else(|| onnx_dir.clone());
    let manifest = ModelManifest::load(&models)?;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut converted = Vec::new();
    for entry in manifest.models.iter().chain(&manifest.external) {
        let path = onnx_dir.join(&entry.file);
        if !path.is_file() {
            eprintln!(
                "models nnef: {} not in {}, skipped",
                entry.file,
                onnx_dir.display()
            );
            continue;
        }
        let onnx = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let nnef = onnx_to_nnef(entry, &onnx)?;
        let target = out.join(&entry.nnef_file);
        std::fs::write(&target, &nnef).with_context(|| format!("writing {}", target.display()))?;
        let sha = sha256_hex(&nnef);
        let matches_manifest = sha == entry.nnef_sha256;
        eprintln!(
            "models nnef: {} -> {} ({} bytes, sha256 {sha}{})",
            entry.file,
            target.display(),
            nnef.len(),
            if matches_manifest {
                ", as in the manifest"
            } else {
                ", DIFFERS from the manifest"
            }
        );
        converted.push(Converted {
            name: entry.name.clone(),
            nnef_file: entry.nnef_file.clone(),
            bytes: nnef.len(),
            nnef_sha256: sha,
            matches_manifest,
        });
    }
    if args.json {
        println!("{}", serde_json::json!({ "converted": converted }));
    }
    if converted.is_empty() {
        bail!("no ONNX file of the manifest in {}", onnx_dir.display());
    }
    let differ: Vec<&str> = converted
        .iter()
        .filter(|c| !c.matches_manifest)
        .map(|c| c.name.as_str())
        .collect();
    if args.check && !differ.is_empty() {
        bail!(
            "nnef_sha256 differs from the manifest for {}",
            differ.join(", ")
        );
    }
    Ok(())
}
