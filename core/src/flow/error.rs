//! [`FlowError`]: the one error type of enrolment and payment, a variant per failure kind the UI tells apart.

use crate::checkout::client::CheckoutError;
use crate::checkout::wire::ErrorCode;
use crate::matcher::MatchError;
use crate::template::TemplateError;
use crate::vision::VisionError;

/// Why an enrolment or a payment did not complete. Plain data (strings and numbers) so it crosses an FFI boundary
/// as it is; `Clone` so a finished session can report its outcome again.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FlowError {
    /// No usable face was seen during the capture (nothing to enrol or to match).
    #[error(
        "no usable face was seen: keep your face in the outline, well lit, looking at the camera"
    )]
    NoFace,
    /// The liveness session did not pass (failed or timed out).
    #[error("liveness check failed: {reason}")]
    LivenessFailed {
        /// Why, in English.
        reason: String,
    },
    /// Enrolment saw fewer good frames than a template needs.
    #[error(
        "enrolment needs {needed} good frames spread over the session, only {found} were usable"
    )]
    TooFewFrames {
        /// Good frames found.
        found: usize,
        /// Frames a template needs.
        needed: usize,
    },
    /// The face does not match the enrolled shopper.
    #[error("face not matched: score {score:.3} is below the threshold {threshold:.3}")]
    NotMatched {
        /// Mean cosine similarity to the template.
        score: f32,
        /// The calibrated decision threshold.
        threshold: f32,
    },
    /// Too many failed face matches in a row: the device refuses to try again until the lock-out ends
    /// (`facepay_core::template::attempts`: 5 failures lock for 5 minutes, each further one doubles it).
    #[error(
        "face matching is locked after {failed_matches} failed matches in a row: try again in {retry_after_s} s"
    )]
    LockedOut {
        /// Seconds to wait before the next try (rounded up).
        retry_after_s: u64,
        /// Failed matches in a row so far.
        failed_matches: u32,
    },
    /// No template is enrolled on this device.
    #[error("no shopper is enrolled on this device: enrol first")]
    NotEnrolled,
    /// The stored template cannot be used (altered, sealed under a lost key, made by another model, …).
    #[error("enrolment template unusable: {0}")]
    Template(String),
    /// The checkout server refused the request with one of its stable codes (e.g. `order_already_paid`).
    #[error("payment declined by the server ({code}): {message}")]
    Declined {
        /// The server's stable machine code.
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// The server could not be reached (connection, timeout, TLS).
    #[error("network error: {0}")]
    Network(String),
    /// The server failed (5xx) on every attempt.
    #[error("server error {status}: {message}")]
    Server {
        /// HTTP status of the last attempt.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The server answered something the protocol does not allow.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The device key could not sign.
    #[error("device key failed to sign: {0}")]
    Signer(String),
    /// The vision models could not be loaded or run.
    #[error("vision: {0}")]
    Vision(String),
    /// Local state (counter file, state directory) could not be read or written.
    #[error("device storage: {0}")]
    Storage(String),
    /// The configuration is unusable (server URL, pinned certificate, model manifest, device id).
    #[error("configuration: {0}")]
    Config(String),
    /// Another enrolment or payment is already using the camera pipeline.
    #[error("another enrolment or payment is in progress")]
    Busy,
    /// The call does not fit the session's state (e.g. paying before the face was verified).
    #[error("invalid state: {0}")]
    InvalidState(String),
    /// The session was cancelled.
    #[error("cancelled")]
    Cancelled,
}

impl From<CheckoutError> for FlowError {
    fn from(e: CheckoutError) -> Self {
        match e {
            CheckoutError::Rejected { code, message, .. } => FlowError::Declined { code, message },
            CheckoutError::Server {
                status, message, ..
            } => FlowError::Server { status, message },
            CheckoutError::Network(m) => FlowError::Network(m),
            CheckoutError::Timeout => FlowError::Network("request timed out".into()),
            CheckoutError::Tls(m) => FlowError::Network(format!("TLS: {m}")),
            CheckoutError::Protocol(m) => FlowError::Protocol(m),
            CheckoutError::Config(m) => FlowError::Config(m),
            CheckoutError::InvalidPayload(e) => {
                FlowError::Protocol(format!("payment payload: {e}"))
            }
            CheckoutError::Signer(e) => FlowError::Signer(e.to_string()),
        }
    }
}

impl From<TemplateError> for FlowError {
    fn from(e: TemplateError) -> Self {
        match e {
            TemplateError::NotEnrolled => FlowError::NotEnrolled,
            other => FlowError::Template(other.to_string()),
        }
    }
}

impl From<MatchError> for FlowError {
    fn from(e: MatchError) -> Self {
        FlowError::Template(e.to_string())
    }
}

impl From<VisionError> for FlowError {
    fn from(e: VisionError) -> Self {
        FlowError::Vision(e.to_string())
    }
}

impl FlowError {
    /// A stable snake_case name of the variant (for JSON output and logs).
    pub fn kind(&self) -> &'static str {
        match self {
            FlowError::NoFace => "no_face",
            FlowError::LivenessFailed { .. } => "liveness_failed",
            FlowError::TooFewFrames { .. } => "too_few_frames",
            FlowError::NotMatched { .. } => "not_matched",
            FlowError::LockedOut { .. } => "locked_out",
            FlowError::NotEnrolled => "not_enrolled",
            FlowError::Template(_) => "template",
            FlowError::Declined { .. } => "declined",
            FlowError::Network(_) => "network",
            FlowError::Server { .. } => "server",
            FlowError::Protocol(_) => "protocol",
            FlowError::Signer(_) => "signer",
            FlowError::Vision(_) => "vision",
            FlowError::Storage(_) => "storage",
            FlowError::Config(_) => "config",
            FlowError::Busy => "busy",
            FlowError::InvalidState(_) => "invalid_state",
            FlowError::Cancelled => "cancelled",
        }
    }
}
