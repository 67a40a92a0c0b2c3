//! The one error type of the vision boundary.

use std::path::PathBuf;

/// Everything that can go wrong between a frame (or a model file) and a vision result.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    /// The frame is empty, too small, or its buffer does not match its declared format.
    #[error("invalid frame: {0}")]
    InvalidFrame(String),
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
