//! The enrolment template: 3-5 unit-norm embeddings of one shopper, the model that made them, and when.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use super::TemplateError;

/// The payload layout version written by this build (see `docs/template-format.md`).
pub const TEMPLATE_VERSION: u16 = 1;
/// Fewest embeddings an enrolment accepts.
pub const MIN_EMBEDDINGS: usize = 3;
/// Most embeddings an enrolment accepts.
pub const MAX_EMBEDDINGS: usize = 5;
/// Largest embedding dimension accepted (a sanity bound; the committed embedder makes 192).
pub const MAX_DIMENSION: usize = 4096;
/// How far from 1 an embedding's norm may be before it counts as "not normalised" rather than rounding drift.
pub const UNIT_NORM_TOLERANCE: f32 = 1e-3;
/// Quality gate: every pair of enrolment embeddings must have at least this cosine similarity.
///
/// The committed score is the fused MobileFaceNet + dlib ResNet cosine (`[calibration]` of the models' manifest),
/// on which two different people exceed 0.68 for one LFW pair in 1,000 (View 1 all pairs: 0.680 at FAR 1e-3) and
/// the payment threshold is 0.764. Frames of one enrolment session sit above both. A pair below 0.68 therefore
/// means a bad frame (blur, occlusion, extreme pose) or a second face, and the enrolment is refused rather than
/// stored with a weak reference.
pub const MIN_ENROL_AGREEMENT: f32 = 0.68;
/// Longest model id, in bytes.
pub const MAX_MODEL_ID_LEN: usize = 255;
/// Hex digits of the model file's sha256 kept in a model id.
const MODEL_SHA_PREFIX_LEN: usize = 12;

/// One shopper's enrolment: 3-5 unit-norm embeddings from the same embedder.
///
/// Built only by [`enrol`] (or by opening a sealed file), so every value satisfies the invariants:
/// count in range, equal finite dimensions, unit norm. Its `Debug` output never shows the embeddings,
/// and they are zeroed when the template is dropped.
#[derive(Clone, PartialEq)]
pub struct Template {
    version: u16,
    model: String,
    embeddings: Vec<Vec<f32>>,
    created_at_ms: u64,
}

impl Template {
    /// The payload layout version ([`TEMPLATE_VERSION`] for templates made by this build).
    pub fn version(&self) -> u16 {
        self.version
    }

    /// The embedder that made the embeddings: `name@<sha256 prefix of the ONNX file>`.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The unit-norm embeddings (3-5, all of [`Template::dimension`] values).
    pub fn embeddings(&self) -> &[Vec<f32>] {
        &self.embeddings
    }

    /// The embedding dimension.
    pub fn dimension(&self) -> usize {
        self.embeddings[0].len()
    }

    /// When the template was enrolled, in milliseconds since the Unix epoch.
    pub fn created_at_ms(&self) -> u64 {
        self.created_at_ms
    }

    /// Checks the invariants of a template read back from storage and renormalises its embeddings.
    /// The agreement gate is not re-applied, so a later build with a stricter gate still opens old templates.
    pub(crate) fn restore(
        version: u16,
        model: String,
        embeddings: Vec<Vec<f32>>,
        created_at_ms: u64,
    ) -> Result<Self, TemplateError> {
        if version != TEMPLATE_VERSION {
            return Err(TemplateError::UnsupportedVersion {
                found: version,
                supported: TEMPLATE_VERSION,
            });
        }
        check_model(&model)?;
        let embeddings = normalised(embeddings)?;
        Ok(Template {
            version,
            model,
            embeddings,
            created_at_ms,
        })
    }
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Template")
            .field("version", &self.version)
            .field("model", &self.model)
            .field(
                "embeddings",
                &format_args!(
                    "[{} x {} redacted]",
                    self.embeddings.len(),
                    self.dimension()
                ),
            )
            .field("created_at_ms", &self.created_at_ms)
            .finish()
    }
}

impl Drop for Template {
    fn drop(&mut self) {
        for embedding in &mut self.embeddings {
            wipe_f32(embedding);
        }
    }
}

/// Overwrites a buffer with zeros in a way the optimiser may not remove.
pub(crate) fn wipe_f32(values: &mut [f32]) {
    for v in values.iter_mut() {
        // SAFETY: `v` is a valid, aligned, exclusive reference to an f32.
        unsafe { std::ptr::write_volatile(v, 0.0) };
    }
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

/// Overwrites a byte buffer with zeros in a way the optimiser may not remove.
pub(crate) fn wipe_bytes(bytes: &mut [u8]) {
    for b in bytes.iter_mut() {
        // SAFETY: `b` is a valid, exclusive reference to a byte.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

/// Builds the model id stored in a template: the embedder name and the first 12 hex digits of the ONNX
/// file's sha256 (`mobilefacenet@1f2e3d4c5b6a`), so a template is tied to the exact weights that made it.
pub fn model_id(embedder: &str, onnx_sha256_hex: &str) -> Result<String, TemplateError> {
    let name_ok = !embedder.is_empty()
        && embedder
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !name_ok {
        return Err(TemplateError::InvalidModel(format!(
            "embedder name `{embedder}` must be non-empty and use only A-Z a-z 0-9 . _ -"
        )));
    }
    if onnx_sha256_hex.len() < MODEL_SHA_PREFIX_LEN
        || !onnx_sha256_hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(TemplateError::InvalidModel(format!(
            "`{onnx_sha256_hex}` is not a hex sha256 (need at least {MODEL_SHA_PREFIX_LEN} hex digits)"
        )));
    }
    let id = format!(
        "{embedder}@{}",
        onnx_sha256_hex[..MODEL_SHA_PREFIX_LEN].to_ascii_lowercase()
    );
    check_model(&id)?;
    Ok(id)
}

/// Enrols a shopper from 3-5 embeddings of the same embedder, stamped with the current time.
///
/// Checks the count, that all dimensions are equal and non-zero, that every value is finite and every
/// embedding unit-norm (within [`UNIT_NORM_TOLERANCE`]; then renormalised exactly), and that every pair
/// agrees to at least [`MIN_ENROL_AGREEMENT`] cosine similarity.
pub fn enrol(
    embeddings: Vec<Vec<f32>>,
    model: impl Into<String>,
) -> Result<Template, TemplateError> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    enrol_at(embeddings, model, now_ms)
}

/// [`enrol`] with an explicit creation time (milliseconds since the Unix epoch).
pub fn enrol_at(
    embeddings: Vec<Vec<f32>>,
    model: impl Into<String>,
    created_at_ms: u64,
) -> Result<Template, TemplateError> {
    let model = model.into();
    check_model(&model)?;
    let embeddings = normalised(embeddings)?;
    check_agreement(&embeddings)?;
    Ok(Template {
        version: TEMPLATE_VERSION,
        model,
        embeddings,
        created_at_ms,
    })
}

fn check_model(model: &str) -> Result<(), TemplateError> {
    if model.is_empty() || model.len() > MAX_MODEL_ID_LEN || model.chars().any(char::is_control) {
        return Err(TemplateError::InvalidModel(format!(
            "model id must be 1-{MAX_MODEL_ID_LEN} bytes without control characters, got {model:?}"
        )));
    }
    Ok(())
}

/// Count, dimension, finiteness and unit-norm checks; returns the embeddings renormalised exactly.
fn normalised(mut embeddings: Vec<Vec<f32>>) -> Result<Vec<Vec<f32>>, TemplateError> {
    let found = embeddings.len();
    if !(MIN_EMBEDDINGS..=MAX_EMBEDDINGS).contains(&found) {
        return Err(TemplateError::EmbeddingCount {
            found,
            min: MIN_EMBEDDINGS,
            max: MAX_EMBEDDINGS,
        });
    }
    let expected = embeddings[0].len();
    if !(1..=MAX_DIMENSION).contains(&expected) {
        return Err(TemplateError::DimensionOutOfRange {
            found: expected,
            max: MAX_DIMENSION,
        });
    }
    for (index, embedding) in embeddings.iter_mut().enumerate() {
        if embedding.len() != expected {
            return Err(TemplateError::Dimension {
                index,
                found: embedding.len(),
                expected,
            });
        }
        if embedding.iter().any(|v| !v.is_finite()) {
            return Err(TemplateError::NonFinite { index });
        }
        let norm = l2_norm(embedding);
        if (norm - 1.0).abs() > f64::from(UNIT_NORM_TOLERANCE) {
            return Err(TemplateError::NotUnitNorm {
                index,
                norm: norm as f32,
                tolerance: UNIT_NORM_TOLERANCE,
            });
        }
        embedding
            .iter_mut()
            .for_each(|v| *v = (f64::from(*v) / norm) as f32);
    }
    Ok(embeddings)
}

fn check_agreement(embeddings: &[Vec<f32>]) -> Result<(), TemplateError> {
    let mut worst: Option<(usize, usize, f32)> = None;
    for i in 0..embeddings.len() {
        for j in i + 1..embeddings.len() {
            let similarity = dot(&embeddings[i], &embeddings[j]) as f32;
            if worst.is_none_or(|(_, _, s)| similarity < s) {
                worst = Some((i, j, similarity));
            }
        }
    }
    match worst {
        Some((first, second, similarity)) if similarity < MIN_ENROL_AGREEMENT => {
            Err(TemplateError::Inconsistent {
                first,
                second,
                similarity,
                required: MIN_ENROL_AGREEMENT,
            })
        }
        _ => Ok(()),
    }
}

/// Euclidean norm in f64 (finite for any finite f32 input, however large).
pub(crate) fn l2_norm(v: &[f32]) -> f64 {
    v.iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt()
}

/// Dot product in f64.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum::<f64>()
}
