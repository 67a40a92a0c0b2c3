//! Model manifest (`models/manifest.toml`), sha256 verification and tract plan building.
//!
//! A model's bytes are checked against the manifest's `onnx_sha256` **before** tract parses them: a file with the
//! wrong hash is refused with [`VisionError::ModelHash`] and never reaches the ONNX parser.

use std::path::{Path, PathBuf};

use tract_onnx::prelude::*;

use super::VisionError;
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
    /// sha256 (lower-case hex) of the ONNX file: verified at load.
    pub onnx_sha256: String,
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
        if self.name.is_empty() || self.file.is_empty() {
            return bad("name and file must not be empty".into());
        }
        if !is_sha256_hex(&self.onnx_sha256) {
            return bad(format!(
                "onnx_sha256 {:?} is not 64 lower-case hex digits",
                self.onnx_sha256
            ));
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

/// `[calibration]`: the face-match threshold of the embedder — the one place it lives — and how it was chosen.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// Manifest name of the embedder the threshold belongs to.
    pub embedder: String,
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
            let embedder = m
                .models
                .iter()
                .find(|e| e.name == c.embedder && e.role == Role::Embedder);
            if embedder.is_none() {
                return Err(VisionError::Manifest(format!(
                    "[calibration] embedder {:?} is not a committed embedder model",
                    c.embedder
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
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| VisionError::Manifest(format!("cannot read {}: {e}", path.display())))?;
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

/// Reads `<dir>/<entry.file>`; a missing or unreadable file is [`VisionError::ModelMissing`].
pub fn read_model_file(dir: &Path, entry: &ModelEntry) -> Result<Vec<u8>, VisionError> {
    let path = dir.join(&entry.file);
    std::fs::read(&path).map_err(|_| VisionError::ModelMissing { path })
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

/// Verifies `bytes` against the entry's `onnx_sha256`.
pub fn verify_sha256(entry: &ModelEntry, bytes: &[u8]) -> Result<(), VisionError> {
    let actual = sha256_hex(bytes);
    if actual != entry.onnx_sha256 {
        return Err(VisionError::ModelHash {
            name: entry.name.clone(),
            expected: entry.onnx_sha256.clone(),
            actual,
        });
    }
    Ok(())
}

/// Verifies bytes against the entry's onnx sha256, loads with tract, fixes the input fact to `input_shape`, fuses
/// tf2onnx's decomposed PReLUs ([`super::prelu`]), optimises, makes runnable.
pub fn load_plan(entry: &ModelEntry, bytes: &[u8]) -> Result<Plan, VisionError> {
    verify_sha256(entry, bytes)?;
    let fail = |e: TractError| VisionError::ModelLoad {
        name: entry.name.clone(),
        reason: format!("{e:#}"),
    };
    let model = tract_onnx::onnx()
        .model_for_read(&mut std::io::Cursor::new(bytes))
        .map_err(fail)?;
    let index = match &entry.input_name {
        None => 0,
        Some(wanted) => model
            .input_outlets()
            .map_err(fail)?
            .iter()
            .position(|o| model.node(o.node).name == *wanted)
            .ok_or_else(|| VisionError::ModelLoad {
                name: entry.name.clone(),
                reason: format!("the model has no input named {wanted:?}"),
            })?,
    };
    model
        .with_input_fact(index, f32::fact(&entry.input_shape).into())
        .and_then(|m| m.into_typed())
        .and_then(|m| m.into_decluttered())
        .and_then(super::prelu::fuse)
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .map_err(fail)
}

/// Directory of the committed models: env FACEPAY_MODELS, else `<core crate>/../models` (compile-time CARGO_MANIFEST_DIR).
pub fn default_models_dir() -> PathBuf {
    std::env::var_os("FACEPAY_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_dir().join("models"))
}

/// Directory of the external MiniFASNet models: env FACEPAY_ANTISPOOF_MODELS, else FACEPAY_SHARED/models, else <workspace>/../shared/models.
pub fn default_antispoof_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FACEPAY_ANTISPOOF_MODELS") {
        return PathBuf::from(dir);
    }
    default_shared_dir().join("models")
}

/// The development and evaluation data folder (clips, LFW, stills and the MiniFASNet models; never shipped): env
/// FACEPAY_SHARED, else <workspace>/../shared.
pub fn default_shared_dir() -> PathBuf {
    std::env::var_os("FACEPAY_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_dir().join("..").join("shared"))
}

/// The workspace root as seen at compile time.
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
        assert_eq!(m.entry(&c.embedder).unwrap().role, Role::Embedder);
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
        let embedder = line("embedder =");
        let wrong = text.replace(&embedder, "embedder = \"face_landmark\"");
        assert!(manifest_error(&wrong).contains("embedder"));
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
                    ("mobilefacenet", entry.onnx_sha256.as_str())
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
        entry.onnx_sha256 = sha256_hex(garbage);
        assert!(
            matches!(load_plan(&entry, garbage), Err(VisionError::ModelLoad { name, .. }) if name == "x")
        );
    }

    #[test]
    fn missing_file_is_model_missing() {
        let entry = ModelManifest::parse(ONE).unwrap().external.remove(0);
        match load_from_dir(Path::new("/nonexistent/facepay"), &entry) {
            Err(VisionError::ModelMissing { path }) => assert!(path.ends_with("x.onnx")),
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
}
