//! The liveness error type.

/// Everything that can go wrong around a liveness session (the session itself never fails on a bad frame: it
/// reports it as a frame without a face).
#[derive(Debug, thiserror::Error)]
pub enum LivenessError {
    /// The policy TOML is malformed or has an invalid value.
    #[error("invalid liveness policy: {0}")]
    Policy(String),
    /// A challenge name is not one of `blink`, `turn_left`, `turn_right`.
    #[error("unknown challenge {0:?} (expected blink, turn_left or turn_right)")]
    UnknownChallenge(String),
    /// The vision models could not be loaded.
    #[error(transparent)]
    Vision(#[from] crate::vision::VisionError),
}
