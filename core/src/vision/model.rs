//! Model manifest (`models/manifest.toml`), where model files come from ([`ModelSource`]: a directory, bytes in
//! memory, an app's assets), sha256 verification and tract plan building.
//!
//! The library runs each model from its NNEF form (tract's own serialisation, made offline from the ONNX file by
//! [`onnx_to_nnef`] / `facepay models nnef`), so it needs only `tract-nnef` and `tract-core`. A model's bytes are
//! checked against the manifest's `nnef_sha256` **before** tract parses them: a file with the wrong hash is
//! refused with [`VisionError::ModelHash`] and never reaches a parser. With the `onnx` feature (tools and tests),
//! bytes matching `onnx_sha256` are loaded through the ONNX importer instead.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tract_nnef::prelude::*;

use super::VisionError;
use super::align::Alignment;
use super::image::{ChannelOrder, Layout, Normalize};

/// A runnable, optimised tract plan, built once per model and shared.
pub type Plan = Arc<TypedRunnableModel>;

/// File name of the manifest inside the models directory.
pub const MANIFEST_FILE: &str = "manifest.toml";

/// What a model is used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Face boxes and keypoints.
    Detector,
    /// Dense face landmarks.
    Landmarks,
    /// Face embeddings for matching.
    Embedder,
    /// Passive presentation-attack detection.
    Antispoof,
    /// Eye contour (eyelids) and iris landmarks on an eye crop.
    Eyes,
}

/// One model of the manifest: where its file comes from, its hash and how to feed it.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// Unique name, used by the stages to find it.
    pub name: String,
    /// What it does.
    pub role: Role,
    /// File name inside the models directory.
    pub file: String,
    /// Registry package it was taken from (committed models only).
    pub package: Option<String>,
    /// `pypi` or `npm` (committed models only).
    pub registry: Option<String>,
    /// Exact package version (committed models only).
    pub package_version: Option<String>,
    /// Path of the source file inside the package (committed models only).
    pub path_in_package: Option<String>,
    /// Licence of the model and of the package.
    pub licence: String,
    /// Free-text provenance: conversion steps, patches.
    pub provenance: Option<String>,
    /// sha256 of the source file in the package (committed models only).
    pub source_sha256: Option<String>,
    /// sha256 (lower-case hex) of the ONNX file: the model's identity (its version in evidence and templates);
    /// verified when the ONNX file itself is loaded (`onnx` feature).
    pub onnx_sha256: String,
    /// File name of the model's NNEF form (tract's, made from the ONNX file by `facepay models nnef`): what the
    /// library loads.
    pub nnef_file: String,
    /// sha256 (lower-case hex) of the NNEF file: verified at load.
    pub nnef_sha256: String,
    /// Name of the model input the shape applies to (the first input when absent).
    pub input_name: Option<String>,
    /// Input shape, batch first, 4-D (`[1, h, w, 3]` or `[1, 3, h, w]` according to `layout`).
    pub input_shape: Vec<usize>,
    /// Input memory layout.
    pub layout: Layout,
    /// Input channel order.
    pub channel_order: ChannelOrder,
    /// Pixel normalisation.
    pub normalisation: Normalize,
    /// Crop scale around the face box (anti-spoof models).
    pub crop_scale: Option<f32>,
    /// The crop geometry the model was trained with (embedders; required for them).
    pub alignment: Option<Alignment>,
    /// Human-readable description of each output.
    #[serde(default)]
    pub outputs: Vec<String>,
}

impl ModelEntry {
    /// Input `(height, width)` in pixels, from `input_shape` and `layout`.
    pub fn input_hw(&self) -> (usize, usize) {
        match self.layout {
            Layout::Nhwc => (self.input_shape[1], self.input_shape[2]),
            Layout::Nchw => (self.input_shape[2], self.input_shape[3]),
        }
    }

    /// Checks everything the schema cannot: hash format, shape agreeing with layout, finite normalisation.
    fn validate(&self) -> Result<(), String> {
        let bad = |what: String| Err(format!("model {:?}: {what}", self.name));
        if self.name.is_empty() || self.file.is_empty() || self.nnef_file.is_empty() {
            return bad("name, file and nnef_file must not be empty".into());
        }
        for (field, hash) in [
            ("onnx_sha256", &self.onnx_sha256),
            ("nnef_sha256", &self.nnef_sha256),
        ] {
            if !is_sha256_hex(hash) {
                return bad(format!("{field} {hash:?} is not 64 lower-case hex digits"));
            }
        }
        if let Some(s) = &self.source_sha256
            && !is_sha256_hex(s)
        {
            return bad(format!(
                "source_sha256 {s:?} is not 64 lower-case hex digits"
            ));
        }
        let channels = match self.layout {
            Layout::Nhwc => self.input_shape.get(3),
            Layout::Nchw => self.input_shape.get(1),
        };
        if self.input_shape.len() != 4 || channels != Some(&3) || self.input_shape.contains(&0) {
            return bad(format!(
                "input_shape {:?} is not a non-empty 4-D 3-channel {:?} shape",
                self.input_shape, self.layout
            ));
        }
        let n = &self.normalisation;
        if !n.scale.is_finite() || !n.offset.is_finite() {
            return bad("normalisation must be finite".into());
        }
        if let Some(c) = self.crop_scale
            && !(c.is_finite() && c > 0.0)
        {
            return bad(format!("crop_scale {c} must be positive"));
        }
        if self.role == Role::Embedder && self.alignment.is_none() {
            return bad(
                "an embedder needs `alignment` (the crop geometry it was trained with)".into(),
            );
        }
        Ok(())
    }
}

/// The parsed `models/manifest.toml`.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelManifest {
    /// Schema version; only 1 is understood.
    pub manifest_version: u32,
    /// Models committed under `models/`.
    #[serde(rename = "model", default)]
    pub models: Vec<ModelEntry>,
    /// Models not committed, loaded from a configurable directory (see [`default_antispoof_dir`]).
    #[serde(rename = "external", default)]
    pub external: Vec<ModelEntry>,
    /// The match threshold (`[calibration]`), when the manifest has one.
    #[serde(default)]
    pub calibration: Option<Calibration>,
}

/// One embedder of the fused match score and its weight (`embedders` of `[calibration]`).
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FusionPart {
    /// Manifest name of a committed embedder.
    pub name: String,
    /// Its weight in the score (weights are positive and sum to 1).
    pub weight: f32,
}

/// `[calibration]`: the face-match threshold — the one place it lives — the embedders it holds for, and how it was
/// chosen.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// The embedders whose cosine similarities are fused (weighted mean) into the score the threshold applies to.
    pub embedders: Vec<FusionPart>,
    /// Two faces match when the cosine similarity of their embeddings is at least this.
    pub threshold: f32,
    /// Whether the embeddings were flip-averaged (the threshold holds for that setting only).
    pub flip_average: bool,
    /// How the threshold was chosen (data, criterion, why).
    pub chosen_on: String,
    /// The false-accept rate the threshold was set for (fraction), when chosen for one.
    #[serde(default)]
    pub target_far: Option<f64>,
    /// Impostor pairs of the calibration set (all pairs of different people).
    #[serde(default)]
    pub impostor_pairs: Option<u64>,
    /// Genuine pairs of the calibration set.
    #[serde(default)]
    pub genuine_pairs: Option<u64>,
    /// Impostor pairs accepted at the threshold on the calibration set.
    #[serde(default)]
    pub false_accepts: Option<u64>,
    /// What it gives on held-out data, with the command that measured it.
    pub measured: String,
}

impl ModelManifest {
    /// Parses and validates manifest text (schema version, unique names, hashes, shapes).
    pub fn parse(toml: &str) -> Result<Self, VisionError> {
        let m: ModelManifest =
            toml::from_str(toml).map_err(|e| VisionError::Manifest(e.to_string()))?;
        if m.manifest_version != 1 {
            return Err(VisionError::Manifest(format!(
                "manifest_version {} is not supported (expected 1)",
                m.manifest_version
            )));
        }
        let mut names = std::collections::HashSet::new();
        for e in m.models.iter().chain(&m.external) {
            e.validate().map_err(VisionError::Manifest)?;
            if !names.insert(e.name.as_str()) {
                return Err(VisionError::Manifest(format!(
                    "model name {:?} appears twice",
                    e.name
                )));
            }
        }
        if let Some(c) = &m.calibration {
            if c.embedders.is_empty() {
                return Err(VisionError::Manifest(
                    "[calibration] names no embedder".into(),
                ));
            }
            for part in &c.embedders {
                let embedder = m
                    .models
                    .iter()
                    .find(|e| e.name == part.name && e.role == Role::Embedder);
                if embedder.is_none() {
                    return Err(VisionError::Manifest(format!(
                        "[calibration] embedder {:?} is not a committed embedder model",
                        part.name
                    )));
                }
                if !(part.weight.is_finite() && part.weight > 0.0) {
                    return Err(VisionError::Manifest(format!(
                        "[calibration] weight {} of {:?} must be positive",
                        part.weight, part.name
                    )));
                }
            }
            let total: f32 = c.embedders.iter().map(|p| p.weight).sum();
            if (total - 1.0).abs() > 1e-4 {
                return Err(VisionError::Manifest(format!(
                    "[calibration] embedder weights sum to {total}, not 1"
                )));
            }
            if !(c.threshold.is_finite() && (-1.0..=1.0).contains(&c.threshold)) {
                return Err(VisionError::Manifest(format!(
                    "[calibration] threshold {} is not a cosine similarity in -1..=1",
                    c.threshold
                )));
            }
        }
        Ok(m)
    }

    /// The `[calibration]` table (match threshold), or a manifest error when it is missing.
    pub fn calibration(&self) -> Result<&Calibration, VisionError> {
        self.calibration
            .as_ref()
            .ok_or_else(|| VisionError::Manifest("no [calibration] table (match threshold)".into()))
    }

    /// Reads and parses `<dir>/manifest.toml`.
    pub fn load(dir: &Path) -> Result<Self, VisionError> {
        Self::read(dir)
    }

    /// Reads and parses the source's `manifest.toml`.
    pub fn read(source: &(impl ModelSource + ?Sized)) -> Result<Self, VisionError> {
        let missing = || {
            VisionError::Manifest(format!(
                "cannot read {}",
                source.describe(MANIFEST_FILE).display()
            ))
        };
        let bytes = source
            .read(MANIFEST_FILE)
            .map_err(|_| missing())?
            .ok_or_else(missing)?;
        let text = String::from_utf8(bytes)
            .map_err(|e| VisionError::Manifest(format!("{MANIFEST_FILE} is not UTF-8: {e}")))?;
        Self::parse(&text)
    }

    /// The committed or external model called `name`.
    pub fn entry(&self, name: &str) -> Result<&ModelEntry, VisionError> {
        self.models
            .iter()
            .chain(&self.external)
            .find(|e| e.name == name)
            .ok_or_else(|| VisionError::UnknownModel {
                name: name.to_owned(),
            })
    }
}

/// Where the files of a model bundle (`manifest.toml` and the model files it names) come from.
pub trait ModelSource {
    /// The bytes of `file`, or `None` when the source has no such file; a file that is there but cannot be read
    /// is [`VisionError::ModelMissing`].
    fn read(&self, file: &str) -> Result<Option<Vec<u8>>, VisionError>;

    /// How `file` of this source is named in errors (its path for a directory).
    fn describe(&self, file: &str) -> PathBuf;
}

/// A directory of model files (desktop, tools, tests).
impl ModelSource for Path {
    fn read(&self, file: &str) -> Result<Option<Vec<u8>>, VisionError> {
        let path = self.join(file);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(_) => Err(VisionError::ModelMissing { path }),
        }
    }

    fn describe(&self, file: &str) -> PathBuf {
        self.join(file)
    }
}

/// A directory of model files.
impl ModelSource for PathBuf {
    fn read(&self, file: &str) -> Result<Option<Vec<u8>>, VisionError> {
        self.as_path().read(file)
    }

    fn describe(&self, file: &str) -> PathBuf {
        self.join(file)
    }
}

/// Model files in memory, by file name (e.g. a bundle an app read from its assets).
impl ModelSource for HashMap<String, Vec<u8>> {
    fn read(&self, file: &str) -> Result<Option<Vec<u8>>, VisionError> {
        Ok(self.get(file).cloned())
    }

    fn describe(&self, file: &str) -> PathBuf {
        PathBuf::from(file)
    }
}

/// Reads the entry's NNEF file from `source` (with the `onnx` feature, its ONNX file when the source has no NNEF
/// file); a missing or unreadable file is [`VisionError::ModelMissing`].
pub fn read_model_file(
    source: &(impl ModelSource + ?Sized),
    entry: &ModelEntry,
) -> Result<Vec<u8>, VisionError> {
    try_read_model_file(source, entry)?.ok_or_else(|| VisionError::ModelMissing {
        path: source.describe(&entry.nnef_file),
    })
}

/// [`read_model_file`], with `None` when the source has neither file.
pub fn try_read_model_file(
    source: &(impl ModelSource + ?Sized),
    entry: &ModelEntry,
) -> Result<Option<Vec<u8>>, VisionError> {
    let nnef = source.read(&entry.nnef_file)?;
    #[cfg(feature = "onnx")]
    if nnef.is_none() {
        return source.read(&entry.file);
    }
    Ok(nnef)
}

/// Reads the entry's file from `dir` and [`load_plan`]s it.
pub fn load_from_dir(dir: &Path, entry: &ModelEntry) -> Result<Plan, VisionError> {
    load_plan(entry, &read_model_file(dir, entry)?)
}

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The two forms a model's bytes may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelFormat {
    /// tract's NNEF tar (what the library runs).
    Nnef,
    /// The ONNX file (tools and tests, `onnx` feature).
    #[cfg(feature = "onnx")]
    Onnx,
}

/// The form of `bytes` by their sha256: [`ModelFormat::Nnef`] when it is the entry's `nnef_sha256`, with the `onnx`
/// feature [`ModelFormat::Onnx`] when it is its `onnx_sha256`; anything else is [`VisionError::ModelHash`].
pub fn verify_sha256(entry: &ModelEntry, bytes: &[u8]) -> Result<ModelFormat, VisionError> {
    let actual = sha256_hex(bytes);
    if actual == entry.nnef_sha256 {
        return Ok(ModelFormat::Nnef);
    }
    #[cfg(feature = "onnx")]
    if actual == entry.onnx_sha256 {
        return Ok(ModelFormat::Onnx);
    }
    Err(VisionError::ModelHash {
        name: entry.name.clone(),
        expected: entry.nnef_sha256.clone(),
        actual,
    })
}

/// Verifies the bytes' sha256 ([`verify_sha256`]), loads them with tract (NNEF, or ONNX with the `onnx` feature),
/// replaces ops with our own ([`super::prelu`], [`super::pool`], [`super::depthwise`], [`super::stem`]), optimises,
/// makes runnable. The plan's input is the file's, in the manifest's layout.
pub fn load_plan(entry: &ModelEntry, bytes: &[u8]) -> Result<Plan, VisionError> {
    build_plan(entry, bytes, false).map(|(plan, _)| plan)
}

/// [`load_plan`], with a channels-last image input made channels-first where the model's first op transposes it
/// ([`super::layout`]): the plan and the layout its input takes. What the pipeline's stages run.
pub fn load_stage_plan(entry: &ModelEntry, bytes: &[u8]) -> Result<(Plan, Layout), VisionError> {
    build_plan(entry, bytes, true)
}

fn build_plan(
    entry: &ModelEntry,
    bytes: &[u8],
    channels_first: bool,
) -> Result<(Plan, Layout), VisionError> {
    let fail = load_error(entry);
    let model = match verify_sha256(entry, bytes)? {
        ModelFormat::Nnef => {
            let model = tract_nnef::nnef()
                .model_for_read(&mut std::io::Cursor::new(bytes))
                .map_err(&fail)?;
            input_position(entry, &model)?;
            model.into_decluttered().map_err(&fail)?
        }
        #[cfg(feature = "onnx")]
        ModelFormat::Onnx => decluttered_onnx(entry, bytes)?,
    };
    let (model, layout) = if channels_first && entry.layout == Layout::Nhwc {
        match super::layout::channels_first(model).map_err(&fail)? {
            (model, true) => (model, Layout::Nchw),
            (model, false) => (model, entry.layout),
        }
    } else {
        (model, entry.layout)
    };
    let plan = super::prelu::fuse(model)
        .and_then(super::pool::fuse)
        .and_then(super::depthwise::fuse)
        .and_then(super::stem::fuse)
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .map_err(fail)?;
    Ok((plan, layout))
}

/// Where a plan spends its time: one row per op kind, mean milliseconds per run over all its nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct OpTime {
    /// tract's op name (e.g. `Conv`, `OptMatMul`, `PRelu`).
    pub op: String,
    /// Nodes of this kind in the plan.
    pub nodes: usize,
    /// Mean time per run, all those nodes together.
    pub ms: f64,
    /// tract's description of the slowest such node (kernel choice, shapes).
    pub slowest: String,
}

/// Loads the model as the pipeline's stages do ([`load_stage_plan`]) and runs it `runs` times (after one warm-up) on a fixed
/// pseudo-random input in `-1..1`, timing every node; op kinds slowest first. A profiling aid
/// (`facepay bench vision --profile`), not on the frame path.
pub fn profile_ops(
    entry: &ModelEntry,
    bytes: &[u8],
    runs: usize,
) -> Result<Vec<OpTime>, VisionError> {
    use std::collections::BTreeMap;
    use std::time::Instant;
    let (plan, _) = load_stage_plan(entry, bytes)?;
    let fail = |e: TractError| VisionError::Inference {
        name: entry.name.clone(),
        reason: format!("{e:#}"),
    };
    let shape = plan.model().input_fact(0).map_err(fail)?.shape.clone();
    let shape = shape.as_concrete().unwrap_or(&entry.input_shape);
    let input = pseudo_random_input(shape, 0x2545_f491).map_err(fail)?;
    let mut state = plan.spawn().map_err(fail)?;
    let mut per_node: Vec<f64> = vec![0.0; plan.model().nodes().len()];
    for run in 0..=runs {
        state
            .run_plan_with_eval(
                tvec![input.clone().into()],
                |ctx, op_state, node, inputs| {
                    let start = Instant::now();
                    let out = tract_nnef::tract_core::plan::eval(ctx, op_state, node, inputs);
                    if run > 0 {
                        per_node[node.id] += start.elapsed().as_secs_f64() * 1e3;
                    }
                    out
                },
            )
            .map_err(fail)?;
    }
    let mut kinds: BTreeMap<String, (usize, f64, f64, String)> = BTreeMap::new();
    for node in plan.model().nodes() {
        let ms = per_node[node.id] / runs.max(1) as f64;
        let row = kinds.entry(node.op().name().to_string()).or_default();
        row.0 += 1;
        row.1 += ms;
        if ms >= row.2 {
            row.2 = ms;
            let info = node.op().info().unwrap_or_default().join("; ");
            row.3 = format!("{} {:.3} ms {}", node.name, ms, info);
        }
    }
    let mut rows: Vec<OpTime> = kinds
        .into_iter()
        .map(|(op, (nodes, ms, _, slowest))| OpTime {
            op,
            nodes,
            ms,
            slowest,
        })
        .collect();
    rows.sort_by(|a, b| b.ms.total_cmp(&a.ms));
    Ok(rows)
}

/// A deterministic `f32` tensor of `shape` with values spread over `[-1, 1)` (a linear congruential sequence from
/// `seed`): a model input for profiling and for comparing two plans of one model.
pub(crate) fn pseudo_random_input(shape: &[usize], seed: u32) -> TractResult<Tensor> {
    let mut state = seed;
    let values: Vec<f32> = (0..shape.iter().product::<usize>())
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect();
    Tensor::from_shape(shape, &values)
}

/// Converts a verified ONNX file to its NNEF form: the decluttered model with the input fixed to `input_shape`,
/// written by tract-nnef deterministically (same bytes for the same ONNX file and tract version), then every weight
/// that is exact in float16 stored as float16 ([`store_exact_f16`]).
#[cfg(feature = "onnx")]
pub fn onnx_to_nnef(entry: &ModelEntry, onnx: &[u8]) -> Result<Vec<u8>, VisionError> {
    if sha256_hex(onnx) != entry.onnx_sha256 {
        return Err(VisionError::ModelHash {
            name: entry.name.clone(),
            expected: entry.onnx_sha256.clone(),
            actual: sha256_hex(onnx),
        });
    }
    let model = decluttered_onnx(entry, onnx)?;
    let tar = tract_nnef::nnef()
        .write_to_tar_with_config(&model, Vec::new(), false, true)
        .map_err(load_error(entry))?;
    store_exact_f16(&tar).map_err(load_error(entry))
}

/// Rewrites an NNEF tar so that every `f32` variable of at least 16 values, all exactly representable in float16
/// (the iris model's weights; dlib's ResNet's, rounded by its converter), is stored as a float16 tensor and cast back
/// to `f32` in the graph (`tract_core_cast`): lossless, half the bytes, folded back into an `f32` constant when the
/// plan is built. (tract's serialiser folds a cast of a constant before writing, so this works on its output.)
/// Entries keep tract's deterministic tar headers and order: the same input gives the same bytes.
#[cfg(feature = "onnx")]
fn store_exact_f16(tar_bytes: &[u8]) -> TractResult<Vec<u8>> {
    use std::io::Read;
    use tract_nnef::internal::{TractErrorContext as _, bail};
    use tract_nnef::tensors::{read_tensor, write_tensor};
    use tract_nnef::tract_core::internal::f16;
    /// Smaller constants (scalars, shapes) are not worth a node.
    const MIN_VALUES: usize = 16;
    /// tract's fixed timestamp for deterministic archives (1 Jan 1980).
    const MTIME: u64 = 315_532_800;
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for entry in tar::Archive::new(tar_bytes).entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data)?;
        files.push((path, data));
    }
    let graph_at = files
        .iter()
        .position(|(p, _)| p == "graph.nnef")
        .context("no graph.nnef in the NNEF archive")?;
    let mut graph = String::from_utf8(files[graph_at].1.clone())?;
    for (path, data) in &mut files {
        let Some(label) = path.strip_suffix(".dat").map(str::to_owned) else {
            continue;
        };
        let tensor = read_tensor(&data[..])?;
        let Ok(view) = tensor.to_plain_array_view::<f32>() else {
            continue;
        };
        let Some(values) = view.as_slice() else {
            continue;
        };
        let exact = values.len() >= MIN_VALUES
            && values
                .iter()
                .all(|v| f16::from_f32(*v).to_f32().to_bits() == v.to_bits());
        if !exact {
            continue;
        }
        let needle = format!("variable<scalar>(label = \"{label}\",");
        let Some(at) = graph.find(&needle) else {
            bail!("variable {label:?} is not declared in graph.nnef");
        };
        let line_start = graph[..at].rfind('\n').map_or(0, |i| i + 1);
        let line_end = at
            + graph[at..]
                .find('\n')
                .context("unterminated graph.nnef line")?;
        let line = graph[line_start..line_end].to_string();
        let (lhs, rhs) = line
            .split_once(" = ")
            .context("a variable line without `=`")?;
        let id = lhs.trim();
        let indent = &lhs[..lhs.len() - lhs.trim_start().len()];
        let stored = rhs.replacen(
            &format!("label = \"{label}\""),
            &format!("label = \"{label}.f16\""),
            1,
        );
        let replacement = format!(
            "{indent}{id}_f16 = {stored}\n{indent}{id} = tract_core_cast({id}_f16, to = \"f32\");"
        );
        graph.replace_range(line_start..line_end, &replacement);
        let mut half = Vec::new();
        write_tensor(&mut half, &*tensor.cast_to::<f16>()?)?;
        *path = format!("{label}.f16.dat");
        *data = half;
    }
    files[graph_at].1 = graph.into_bytes();
    // graph.nnef first, then the tensors sorted by file name, as tract writes them.
    let graph_entry = files.remove(graph_at);
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files.insert(0, graph_entry);
    let mut out = tar::Builder::new(Vec::new());
    for (path, data) in &files {
        let mut header = tar::Header::new_gnu();
        header.set_path(path)?;
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(MTIME);
        header.set_cksum();
        out.append(&header, &data[..])?;
    }
    Ok(out.into_inner()?)
}

fn load_error(entry: &ModelEntry) -> impl Fn(TractError) -> VisionError + '_ {
    move |e| VisionError::ModelLoad {
        name: entry.name.clone(),
        reason: format!("{e:#}"),
    }
}

/// Index of the manifest's `input_name` among `model`'s inputs (NNEF or ONNX graph); the first input when the
/// manifest names none. A name the model lacks is [`VisionError::ModelLoad`].
fn input_position<F, O>(entry: &ModelEntry, model: &Graph<F, O>) -> Result<usize, VisionError>
where
    F: tract_nnef::internal::Fact + Clone + 'static,
    O: std::fmt::Debug
        + std::fmt::Display
        + AsRef<dyn tract_nnef::internal::Op>
        + AsMut<dyn tract_nnef::internal::Op>
        + Clone
        + 'static,
{
    let Some(wanted) = &entry.input_name else {
        return Ok(0);
    };
    let inputs = model.input_outlets().map_err(load_error(entry))?;
    inputs
        .iter()
        .position(|o| model.node(o.node).name == *wanted)
        .ok_or_else(|| VisionError::ModelLoad {
            name: entry.name.clone(),
            reason: format!("the model has no input named {wanted:?}"),
        })
}

/// Parses ONNX bytes, fixes the input fact to `input_shape`, types and declutters.
#[cfg(feature = "onnx")]
fn decluttered_onnx(entry: &ModelEntry, bytes: &[u8]) -> Result<TypedModel, VisionError> {
    use tract_onnx::prelude::{Framework as _, InferenceFact, InferenceModelExt as _};
    let fail = load_error(entry);
    let model = tract_onnx::onnx()
        .model_for_read(&mut std::io::Cursor::new(bytes))
        .map_err(&fail)?;
    let index = input_position(entry, &model)?;
    model
        .with_input_fact(index, InferenceFact::from(f32::fact(&entry.input_shape)))
        .and_then(|m| m.into_typed())
        .and_then(|m| m.into_decluttered())
        .map_err(fail)
}

/// Tests only: the committed models, env FACEPAY_MODELS, else `<core crate>/../models` (tools use `facepay-qa`'s
/// paths; the library holds no build-machine path).
#[cfg(test)]
pub(crate) fn default_models_dir() -> PathBuf {
    std::env::var_os("FACEPAY_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_dir().join("models"))
}

/// Tests only: the development data folder, env FACEPAY_SHARED, else <workspace>/../shared.
#[cfg(test)]
fn default_shared_dir() -> PathBuf {
    std::env::var_os("FACEPAY_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_dir().join("..").join("shared"))
}

/// Tests only: the workspace root as seen at compile time.
#[cfg(test)]
fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// 64 lower-case hex digits.
fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `FACEPAY_SHARED` or `<workspace>/../shared`, asserting the development data is there.
#[cfg(test)]
pub(crate) fn test_shared_dir() -> PathBuf {
    let dir = default_shared_dir();
    assert!(
        dir.join("models").is_dir() && dir.join("data").is_dir(),
        "development data missing: expected models/ and data/ in {} (set FACEPAY_SHARED to the shared directory)",
        dir.display()
    );
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed_manifest() -> ModelManifest {
        ModelManifest::load(&workspace_dir().join("models")).expect("models/manifest.toml parses")
    }

    fn manifest_error(text: &str) -> String {
        match ModelManifest::parse(text) {
            Err(VisionError::Manifest(m)) => m,
            other => panic!("expected a manifest error, got {other:?}"),
        }
    }

    const ONE: &str = r#"
manifest_version = 1
[[external]]
name = "x"
role = "antispoof"
file = "x.onnx"
onnx_sha256 = "f62b7b86556cd0b4caaaf6b83f6ab89a136ac2b745206ea37a427a3e36e58970"
nnef_file = "x.nnef.tar"
nnef_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
licence = "test"
input_shape = [1, 3, 80, 80]
layout = "NCHW"
channel_order = "BGR"
normalisation = { scale = 1.0, offset = 0.0 }
crop_scale = 2.7
"#;

    #[test]
    fn sha256_matches_the_fips_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn committed_manifest_parses_with_every_role() {
        let m = committed_manifest();
        let roles: Vec<Role> = m.models.iter().chain(&m.external).map(|e| e.role).collect();
        for role in [
            Role::Detector,
            Role::Landmarks,
            Role::Embedder,
            Role::Antispoof,
            Role::Eyes,
        ] {
            assert!(roles.contains(&role), "no {role:?} model in the manifest");
        }
        let det = m.entry("face_detection_short_range").unwrap();
        assert_eq!(
            (det.input_hw(), det.layout, det.channel_order),
            ((128, 128), Layout::Nhwc, ChannelOrder::Rgb)
        );
        let v2 = m.entry("minifasnet_v2").unwrap();
        assert_eq!(
            (v2.input_hw(), v2.channel_order, v2.crop_scale),
            ((80, 80), ChannelOrder::Bgr, Some(2.7))
        );
        assert!(
            matches!(m.entry("nope"), Err(VisionError::UnknownModel { name }) if name == "nope")
        );
    }

    #[test]
    fn manifest_schema_violations_are_typed_errors() {
        assert_eq!(ModelManifest::parse(ONE).unwrap().external.len(), 1);
        // Not TOML at all: still a typed manifest error (manifest_error panics otherwise).
        manifest_error("manifest_version = ");
        assert!(
            manifest_error(&ONE.replace("manifest_version = 1", "manifest_version = 2"))
                .contains("manifest_version 2")
        );
        assert!(manifest_error(&ONE.replace("f62b7b", "F62B7B")).contains("hex"));
        assert!(
            manifest_error(&ONE.replace("[1, 3, 80, 80]", "[1, 80, 80, 3]"))
                .contains("input_shape")
        );
        assert!(manifest_error(&ONE.replace("\"antispoof\"", "\"oracle\"")).contains("oracle"));
        assert!(manifest_error(&ONE.replace("\"NCHW\"", "\"CHW\"")).contains("CHW"));
        assert!(manifest_error(&ONE.replace("licence = \"test\"", "")).contains("licence"));
        assert!(manifest_error(&ONE.replace("licence", "license")).contains("license"));
        assert!(
            manifest_error(&ONE.replace("crop_scale = 2.7", "crop_scale = -1.0"))
                .contains("crop_scale")
        );
        let twice = format!("{ONE}{}", &ONE[ONE.find("[[external]]").unwrap()..]);
        assert!(manifest_error(&twice).contains("twice"));
        assert!(matches!(
            ModelManifest::load(Path::new("/nonexistent/facepay")),
            Err(VisionError::Manifest(_))
        ));
    }

    #[test]
    fn calibration_is_read_and_checked() {
        let m = committed_manifest();
        let c = m
            .calibration()
            .expect("models/manifest.toml has a [calibration] table");
        for part in &c.embedders {
            assert_eq!(m.entry(&part.name).unwrap().role, Role::Embedder);
        }
        assert!(c.threshold > 0.0 && c.threshold < 1.0, "{c:?}");
        let text =
            std::fs::read_to_string(workspace_dir().join("models").join(MANIFEST_FILE)).unwrap();
        let line = |key: &str| {
            text.lines()
                .find(|l| l.starts_with(key))
                .unwrap()
                .to_string()
        };
        let threshold = line("threshold =");
        assert!(manifest_error(&text.replace(&threshold, "threshold = 1.5")).contains("threshold"));
        let embedders = line("embedders =");
        let wrong = text.replace(
            &embedders,
            "embedders = [{ name = \"face_landmark\", weight = 1.0 }]",
        );
        assert!(manifest_error(&wrong).contains("embedder"));
        let unbalanced = text.replace(
            &embedders,
            "embedders = [{ name = \"mobilefacenet\", weight = 0.7 }]",
        );
        assert!(manifest_error(&unbalanced).contains("sum to 0.7"));
        let negative = text.replace(
            &embedders,
            "embedders = [{ name = \"mobilefacenet\", weight = -1.0 }]",
        );
        assert!(manifest_error(&negative).contains("positive"));
        let none = text.replace(&embedders, "embedders = []");
        assert!(manifest_error(&none).contains("no embedder"));
        let unaligned = text.replace("alignment = \"arcface\"\n", "");
        assert!(manifest_error(&unaligned).contains("alignment"));
        assert!(matches!(
            ModelManifest::parse(ONE).unwrap().calibration(),
            Err(VisionError::Manifest(_))
        ));
    }

    #[test]
    fn wrong_hash_is_refused_before_parsing() {
        let m = committed_manifest();
        let entry = m.entry("mobilefacenet").unwrap();
        match load_plan(entry, b"not the model") {
            Err(VisionError::ModelHash {
                name,
                expected,
                actual,
            }) => {
                assert_eq!(
                    (name.as_str(), expected.as_str()),
                    ("mobilefacenet", entry.nnef_sha256.as_str())
                );
                assert_eq!(actual, sha256_hex(b"not the model"));
            }
            other => panic!("expected ModelHash, got {:?}", other.map(|_| ())),
        }
        // A real ONNX file under another model's name: still refused by hash.
        let v1se = test_shared_dir()
            .join("models")
            .join("minifasnet_v1se_4.0_80x80.onnx");
        let bytes = std::fs::read(&v1se).unwrap();
        let v2 = m.entry("minifasnet_v2").unwrap();
        assert!(matches!(
            load_plan(v2, &bytes),
            Err(VisionError::ModelHash { .. })
        ));
    }

    #[test]
    fn unparsable_model_with_matching_hash_is_a_load_error() {
        let garbage = b"\x08\x07garbage that is not protobuf\xff\xff\xff";
        let mut entry = ModelManifest::parse(ONE).unwrap().external.remove(0);
        entry.nnef_sha256 = sha256_hex(garbage);
        assert!(
            matches!(load_plan(&entry, garbage), Err(VisionError::ModelLoad { name, .. }) if name == "x")
        );
    }

    #[test]
    fn missing_file_is_model_missing() {
        let entry = ModelManifest::parse(ONE).unwrap().external.remove(0);
        match load_from_dir(Path::new("/nonexistent/facepay"), &entry) {
            Err(VisionError::ModelMissing { path }) => assert!(path.ends_with("x.nnef.tar")),
            other => panic!("expected ModelMissing, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn minifasnet_loads_and_runs_from_the_shared_dir() {
        let m = committed_manifest();
        let dir = test_shared_dir().join("models");
        for name in ["minifasnet_v2", "minifasnet_v1se"] {
            let entry = m.entry(name).unwrap();
            let plan = load_from_dir(&dir, entry).unwrap();
            let input = Tensor::from_shape(&entry.input_shape, &vec![100f32; 3 * 80 * 80]).unwrap();
            let out = plan.run(tvec!(input.into())).unwrap();
            let probs = out[0].to_plain_array_view::<f32>().unwrap();
            assert_eq!(probs.shape(), &[1, 3], "{name}");
            let sum: f32 = probs.iter().sum();
            assert!(
                (sum - 1.0).abs() < 1e-3 && probs.iter().all(|p| (0.0..=1.0).contains(p)),
                "{name}: {probs:?}"
            );
        }
    }

    /// The float16 storage took effect (it once did silently nothing): converting the committed iris ONNX file
    /// gives the committed NNEF bytes, whose weights are float16 tensors cast back in the graph, at about half the
    /// float32 size. That the outputs stay bit-identical is `prelu`'s committed-models test.
    #[test]
    #[cfg(feature = "onnx")]
    fn exact_float16_weights_are_stored_as_float16() {
        use std::io::Read;
        let dir = default_models_dir();
        let manifest = ModelManifest::load(&dir).unwrap();
        let entry = manifest.entry("iris_landmark").unwrap();
        let nnef = onnx_to_nnef(entry, &std::fs::read(dir.join(&entry.file)).unwrap()).unwrap();
        assert_eq!(sha256_hex(&nnef), entry.nnef_sha256);
        let (mut halves, mut graph) = (0, String::new());
        for file in tar::Archive::new(&nnef[..]).entries().unwrap() {
            let mut file = file.unwrap();
            let path = file.path().unwrap().to_string_lossy().into_owned();
            if path == "graph.nnef" {
                file.read_to_string(&mut graph).unwrap();
            } else if path.ends_with(".f16.dat") {
                let t = tract_nnef::tensors::read_tensor(file).unwrap();
                assert_eq!(t.datum_type(), DatumType::F16, "{path}");
                halves += 1;
            }
        }
        assert!(halves > 50, "{halves} float16 tensors");
        assert!(graph.matches("tract_core_cast(").count() >= halves);
        assert!(nnef.len() < 1_700_000, "{} bytes", nnef.len());
    }

    #[test]
    fn committed_detector_loads_by_input_name_and_wrong_name_fails() {
        let m = committed_manifest();
        let mut entry = m.entry("face_detection_short_range").unwrap().clone();
        let plan = load_from_dir(&default_models_dir(), &entry).unwrap();
        let input = Tensor::zero::<f32>(&entry.input_shape).unwrap();
        let out = plan.run(tvec!(input.into())).unwrap();
        assert_eq!(out.len(), 2);
        entry.input_name = Some("no_such_input".into());
        match load_from_dir(&default_models_dir(), &entry) {
            Err(VisionError::ModelLoad { reason, .. }) => assert!(reason.contains("no_such_input")),
            other => panic!("expected ModelLoad, got {:?}", other.map(|_| ())),
        }
    }

    /// The stages' plans take the image channels-first where the file's first op transposes it, and give the same
    /// outputs, bit for bit, as the file's own layout.
    #[test]
    fn stage_plans_take_channels_first_images_with_bit_identical_outputs() {
        let manifest = committed_manifest();
        for (name, transposed) in [
            ("face_detection_short_range", true),
            ("face_landmark", true),
            ("iris_landmark", true),
            ("dlib_resnet", true),
            // MobileFaceNet runs channels-last throughout: no transpose to drop.
            ("mobilefacenet", false),
        ] {
            let entry = manifest.entry(name).unwrap();
            let bytes = read_model_file(&default_models_dir(), entry).unwrap();
            let file = load_plan(entry, &bytes).unwrap();
            let (stage, layout) = load_stage_plan(entry, &bytes).unwrap();
            let moves = |plan: &Plan| {
                plan.model()
                    .nodes()
                    .iter()
                    .filter(|n| n.op.name() == "MoveAxis")
                    .count()
            };
            assert_eq!(
                (layout, moves(&stage) + usize::from(transposed)),
                (
                    if transposed {
                        Layout::Nchw
                    } else {
                        Layout::Nhwc
                    },
                    moves(&file)
                ),
                "{name}"
            );
            let nhwc = pseudo_random_input(&entry.input_shape, 0x2545_f491).unwrap();
            let stage_input = if transposed {
                nhwc.clone().permute_axes(&[0, 3, 1, 2]).unwrap()
            } else {
                nhwc.clone()
            };
            let a = file.run(tvec![nhwc.into()]).unwrap();
            let b = stage.run(tvec![stage_input.into()]).unwrap();
            assert_eq!(a.len(), b.len(), "{name}");
            for (a, b) in a.iter().zip(&b) {
                let bits = |t: &TValue| {
                    let ram = t.try_as_plain_ram().unwrap();
                    let v = ram.as_slice::<f32>().unwrap();
                    v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
                };
                assert_eq!(bits(a), bits(b), "{name}");
            }
        }
    }

    /// The committed model `name`: its fused plan (as the pipeline loads it: NNEF for the committed models, ONNX
    /// for the external ones) and tract's plan of the ONNX file without any of our ops.
    #[cfg(feature = "onnx")]
    fn plans(name: &str) -> (Plan, Plan, Vec<usize>) {
        let manifest = committed_manifest();
        let dir = if name.starts_with("minifasnet") {
            test_shared_dir().join("models")
        } else {
            default_models_dir()
        };
        let entry = manifest.entry(name).unwrap();
        let bytes = read_model_file(&dir, entry).unwrap();
        let fused = load_plan(entry, &bytes).unwrap();
        let onnx = std::fs::read(dir.join(&entry.file)).unwrap();
        use tract_onnx::prelude::{Framework as _, InferenceModelExt as _};
        let plain = tract_onnx::onnx()
            .model_for_read(&mut std::io::Cursor::new(&onnx))
            .unwrap()
            .with_input_fact(0, f32::fact(&entry.input_shape).into())
            .unwrap()
            .into_optimized()
            .unwrap()
            .into_runnable()
            .unwrap();
        (fused, plain, entry.input_shape.clone())
    }

    /// Nodes of `plan` whose op is named `op`.
    #[cfg(feature = "onnx")]
    fn count(plan: &Plan, op: &str) -> usize {
        plan.model()
            .nodes()
            .iter()
            .filter(|n| n.op.name() == op)
            .count()
    }

    /// The NNEF form with our ops (what the library runs) against the ONNX file as tract plans it alone (what tract
    /// ran before any of them): bit-identical, so the LFW and liveness figures measured on the ONNX files stand. Each
    /// op is counted, so none silently stops applying: the PReLUs (`prelu`), the 2×2 max pools (`pool`), the 3×3
    /// depthwise convolutions (`depthwise`; stride 1 on CPUs with AVX) and the first convolution (`stem`, on CPUs
    /// with AVX2 and FMA).
    #[test]
    #[cfg(feature = "onnx")]
    fn committed_models_fused_plans_are_bit_identical_to_tracts() {
        let stem = usize::from(crate::vision::stem::available());
        // The depthwise convolutions of stride 1 are ours only where the vector kernel runs.
        let s1 = usize::from(crate::vision::depthwise::vectorised());
        for (name, prelus, unfused_op, pools, depthwise, stems) in [
            ("mobilefacenet", 33, "Abs", 0, 3 + 12 * s1, 0),
            ("face_landmark", 23, "Iff", 5, 6 + 14 * s1, stem),
            ("face_detection_short_range", 0, "Abs", 3, 3 + 13 * s1, stem),
            ("iris_landmark", 53, "Iff", 6, 26 * s1, stem),
            ("minifasnet_v2", 33, "Iff", 0, 3 + 13 * s1, stem),
            ("minifasnet_v1se", 33, "Iff", 0, 3 + 13 * s1, stem),
        ] {
            let (fused, plain, shape) = plans(name);
            assert_eq!(
                (
                    count(&fused, "MaxPool2x2"),
                    count(&fused, "OptMaxPool"),
                    count(&plain, "OptMaxPool")
                ),
                (pools, 0, pools),
                "{name}"
            );
            assert_eq!(
                (count(&fused, "PRelu"), count(&plain, "PRelu")),
                (prelus, 0),
                "{name}"
            );
            assert_eq!(
                count(&fused, unfused_op) + prelus,
                count(&plain, unfused_op),
                "{name}"
            );
            assert_eq!(
                (
                    count(&fused, "Depthwise3x3"),
                    count(&fused, "DepthWiseConv") + depthwise,
                    count(&fused, "StemConv")
                ),
                (depthwise, count(&plain, "DepthWiseConv"), stems),
                "{name}"
            );
            // A deterministic input over the normalised pixel range, so activations of both signs occur.
            let input = pseudo_random_input(&shape, 0x2545_f491).unwrap();
            let a = fused.run(tvec![input.clone().into()]).unwrap();
            let b = plain.run(tvec![input.into()]).unwrap();
            assert_eq!(a.len(), b.len());
            for (a, b) in a.iter().zip(&b) {
                let (a, b) = (a.try_as_plain_ram().unwrap(), b.try_as_plain_ram().unwrap());
                let (a, b) = (a.as_slice::<f32>().unwrap(), b.as_slice::<f32>().unwrap());
                assert!(a.iter().any(|v| *v != 0.0), "{name}: all-zero output");
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(a), bits(b), "{name}: fused and plain outputs differ");
            }
        }
    }
}
