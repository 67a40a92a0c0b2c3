//! The one error type of the vision boundary.

/// Everything that can go wrong between a frame (or a model file) and a vision result.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    /// The frame is empty, too small, or its buffer does not match its declared format.
    #[error("invalid frame: {0}")]
    InvalidFrame(String),
}
