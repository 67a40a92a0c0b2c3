//! The one error type of the template boundary: enrolment, sealing, key store and template file.

use std::io;

/// Everything that can go wrong while enrolling, sealing, storing or opening a template.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// No template is stored: the shopper has not enrolled (or the template was deleted).
    #[error("no template is enrolled on this device")]
    NotEnrolled,
    /// The sealed file failed authentication: a flipped bit, a truncated or foreign file, or the wrong key.
    #[error(
        "the template file failed its integrity check (tampered, truncated or sealed under another key)"
    )]
    Integrity,
    /// The file (or its payload) uses a format version this build cannot read.
    #[error(
        "template format version {found} is not supported (this build reads version {supported})"
    )]
    UnsupportedVersion {
        /// The version found in the file.
        found: u16,
        /// The version this build reads and writes.
        supported: u16,
    },
    /// The template file exists but its key is gone from the key store: the template can never be opened again.
    #[error(
        "the key `{key_id}` that sealed the template is no longer in the key store; enrol again"
    )]
    KeyUnavailable {
        /// The key id named by the store.
        key_id: String,
    },
    /// A key id is empty, too long or uses characters other than `A-Z a-z 0-9 . _ -`.
    #[error(
        "invalid key id `{0}`: use 1-64 characters from A-Z a-z 0-9 . _ - (not starting with `.`)"
    )]
    InvalidKeyId(String),
    /// The key store failed (a platform key store reports its reason here).
    #[error("key store: {0}")]
    KeyStore(String),
    /// The enrolment got fewer or more embeddings than a template holds.
    #[error("a template needs {min}-{max} embeddings, got {found}")]
    EmbeddingCount {
        /// Embeddings given.
        found: usize,
        /// Fewest accepted.
        min: usize,
        /// Most accepted.
        max: usize,
    },
    /// An embedding has a different length from the first one.
    #[error("embedding {index} has dimension {found}, expected {expected}")]
    Dimension {
        /// Which embedding (0-based).
        index: usize,
        /// Its length.
        found: usize,
        /// The length required.
        expected: usize,
    },
    /// The embeddings are empty or longer than any embedder makes.
    #[error("embedding dimension {found} is out of range (1-{max})")]
    DimensionOutOfRange {
        /// The dimension given.
        found: usize,
        /// The largest accepted.
        max: usize,
    },
    /// An embedding holds NaN or infinity.
    #[error("embedding {index} holds a non-finite value")]
    NonFinite {
        /// Which embedding (0-based).
        index: usize,
    },
    /// An embedding is not unit-norm (the embedder output was not normalised, or it is all zeros).
    #[error("embedding {index} has norm {norm}, expected 1 (±{tolerance})")]
    NotUnitNorm {
        /// Which embedding (0-based).
        index: usize,
        /// Its Euclidean norm.
        norm: f32,
        /// The accepted deviation from 1.
        tolerance: f32,
    },
    /// The enrolment embeddings disagree too much to be one person in one good session (quality gate).
    #[error(
        "enrolment frames disagree: embeddings {first} and {second} have cosine similarity {similarity:.3}, \
         below the required {required:.3}; retake the enrolment"
    )]
    Inconsistent {
        /// One embedding of the worst pair.
        first: usize,
        /// The other embedding of the worst pair.
        second: usize,
        /// Their cosine similarity.
        similarity: f32,
        /// The smallest similarity accepted.
        required: f32,
    },
    /// The model id is empty, longer than 255 bytes, or not built from a name and a hex sha256 prefix.
    #[error("invalid model id: {0}")]
    InvalidModel(String),
    /// The cryptographic backend failed (random source or AES-GCM); not caused by the template's content.
    #[error("cryptography: {0}")]
    Crypto(String),
    /// A file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl TemplateError {
    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        TemplateError::Io {
            context: context.into(),
            source,
        }
    }
}
