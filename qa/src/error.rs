//! The error of the QA helpers (clips, recordings, contact sheets).

use std::path::PathBuf;

/// What can go wrong reading or writing a clip, a recording or a contact sheet.
#[derive(Debug, thiserror::Error)]
pub enum QaError {
    /// A clip folder or recording is missing, unreadable or malformed.
    #[error("clip {path}: {reason}")]
    Clip {
        /// The folder or file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A nonce is not 64 hex digits.
    #[error("invalid nonce: {0}")]
    Nonce(String),
    /// A contact sheet could not be encoded.
    #[error("contact sheet: {0}")]
    Sheet(String),
    /// The vision models could not be loaded.
    #[error(transparent)]
    Vision(#[from] facepay_core::vision::VisionError),
}
