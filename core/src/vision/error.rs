//! The one error type of the vision boundary.

use std::path::PathBuf;

/// What is wrong with a camera frame's description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum FrameProblem {
    /// The rotation is not a multiple of 90°.
    Rotation,
    /// The size is outside the accepted range or differs from the encoded image's, or a face region found in the
    /// image is too small or degenerate to crop.
    Size,
    /// A row or pixel stride is smaller than the pixels it must hold, or not a supported value.
    Stride,
    /// The buffer is shorter than its geometry needs.
    BufferTooShort,
    /// Encoded bytes (JPEG/PNG) cannot be decoded.
    Undecodable,
}

impl VisionError {
    /// An [`InvalidFrame`](Self::InvalidFrame) error.
    pub fn invalid_frame(problem: FrameProblem, detail: impl Into<String>) -> Self {
        VisionError::InvalidFrame {
            problem,
            detail: detail.into(),
        }
    }
}

/// Everything that can go wrong between a frame (or a model file) and a vision result.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    /// The frame is empty, too small, or its buffer does not match its declared format.
    #[error("invalid frame: {detail}")]
    InvalidFrame {
        /// What does not fit.
        problem: FrameProblem,
        /// The sizes involved, in English.
        detail: String,
    },
    /// Encoded image bytes (JPEG/PNG) could not be decoded: truncated, corrupt, unsupported or over the size limits.
    #[error("cannot decode image: {0}")]
    Decode(String),
    /// An image file could not be read.
    #[error("cannot read image {path}: {reason}")]
    ImageRead {
        /// The file that was asked for.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// `models/manifest.toml` (or another manifest text) is unreadable or does not follow the schema.
    #[error("invalid model manifest: {0}")]
    Manifest(String),
    /// The manifest has no model of that name.
    #[error("no model named {name:?} in the manifest")]
    UnknownModel {
        /// The name that was asked for.
        name: String,
    },
    /// A model file is missing or unreadable.
    #[error("model file missing or unreadable: {path}")]
    ModelMissing {
        /// The file that was expected.
        path: PathBuf,
    },
    /// A model source (an app's assets) failed to read a file it has.
    #[error("cannot read model file {path}: {reason}")]
    ModelRead {
        /// The file that was asked for.
        path: PathBuf,
        /// The source's error.
        reason: String,
    },
    /// A model file's sha256 differs from the manifest: it is refused before being parsed.
    #[error("model {name}: sha256 mismatch (manifest {expected}, file {actual})")]
    ModelHash {
        /// Model name from the manifest.
        name: String,
        /// sha256 (hex) recorded in the manifest.
        expected: String,
        /// sha256 (hex) of the bytes given.
        actual: String,
    },
    /// tract could not parse, type or optimise a model whose hash was correct.
    #[error("model {name}: cannot load: {reason}")]
    ModelLoad {
        /// Model name from the manifest.
        name: String,
        /// tract's error, with its context chain.
        reason: String,
    },
    /// Running a loaded model failed, or its output did not have the expected shape.
    #[error("model {name}: inference failed: {reason}")]
    Inference {
        /// Model name from the manifest.
        name: String,
        /// What went wrong.
        reason: String,
    },
}
