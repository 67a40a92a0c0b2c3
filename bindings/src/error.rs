//! [`FacePayError`]: every failure a binding call reports, one variant per kind the app tells apart (Kotlin:
//! a sealed `FacePayException` hierarchy; Swift: an `Error` enum). Mirrors `facepay_core::flow::FlowError`, plus
//! the binding's own `InvalidFrame` and `Internal`.

use facepay_core::flow::FlowError;

/// Why a FacePay call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error, uniffi::Error)]
pub enum FacePayError {
    /// No usable face was seen during the capture.
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
    #[error("enrolment needs {needed} good frames, only {found} were usable")]
    TooFewFrames {
        /// Good frames found.
        found: u64,
        /// Frames a template needs.
        needed: u64,
    },
    /// The face does not match the enrolled shopper.
    #[error("face not matched: score {score:.3} is below the threshold {threshold:.3}")]
    NotMatched {
        /// Mean cosine similarity to the template.
        score: f32,
        /// The calibrated threshold.
        threshold: f32,
    },
    /// Too many failed face matches in a row: wait `retry_after_s` seconds before the next try.
    #[error(
        "face matching is locked after {failed_matches} failed matches in a row: try again in {retry_after_s} s"
    )]
    LockedOut {
        /// Seconds to wait before the next try.
        retry_after_s: u64,
        /// Failed matches in a row so far.
        failed_matches: u32,
    },
    /// No shopper is enrolled on this device.
    #[error("no shopper is enrolled on this device: enrol first")]
    NotEnrolled,
    /// The stored template cannot be used (altered, key lost, other model): enrol again.
    #[error("enrolment template unusable: {detail}")]
    Template {
        /// What is wrong.
        detail: String,
    },
    /// The checkout server refused the request with one of its stable codes.
    #[error("payment declined by the server ({code}): {detail}")]
    Declined {
        /// The server's stable machine code, e.g. `order_already_paid`.
        code: String,
        /// The server's explanation.
        detail: String,
    },
    /// The server could not be reached (connection, timeout, TLS).
    #[error("network error: {detail}")]
    Network {
        /// What failed.
        detail: String,
    },
    /// The server failed (5xx) on every attempt.
    #[error("server error {status}: {detail}")]
    Server {
        /// HTTP status of the last attempt.
        status: u16,
        /// The server's message.
        detail: String,
    },
    /// The server answered something the protocol does not allow.
    #[error("protocol violation: {detail}")]
    Protocol {
        /// What was wrong.
        detail: String,
    },
    /// The device key could not sign (the platform `DeviceSigner` failed).
    #[error("device key failed to sign: {detail}")]
    Signer {
        /// The signer's reason.
        detail: String,
    },
    /// The vision models could not be loaded or run.
    #[error("vision: {detail}")]
    Vision {
        /// What failed.
        detail: String,
    },
    /// A camera frame's description does not fit its bytes (size, stride, rotation, format).
    #[error("invalid frame: {detail}")]
    InvalidFrame {
        /// What does not fit.
        detail: String,
    },
    /// Local state (counter file, state directory) could not be read or written.
    #[error("device storage: {detail}")]
    Storage {
        /// What failed.
        detail: String,
    },
    /// The configuration is unusable (server URL, pinned certificate, model manifest, device id).
    #[error("configuration: {detail}")]
    Config {
        /// What is wrong.
        detail: String,
    },
    /// Another enrolment or payment is already using the camera pipeline.
    #[error("another enrolment or payment is in progress")]
    Busy,
    /// The call does not fit the session's state (e.g. paying before the face was verified).
    #[error("invalid state: {detail}")]
    InvalidState {
        /// Why.
        detail: String,
    },
    /// The session was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// A bug in FacePay (a caught panic): report it.
    #[error("internal error: {detail}")]
    Internal {
        /// The panic message.
        detail: String,
    },
}

impl From<FlowError> for FacePayError {
    fn from(e: FlowError) -> Self {
        use FacePayError as B;
        match e {
            FlowError::NoFace => B::NoFace,
            FlowError::LivenessFailed { reason } => B::LivenessFailed { reason },
            FlowError::TooFewFrames { found, needed } => B::TooFewFrames {
                found: found as u64,
                needed: needed as u64,
            },
            FlowError::NotMatched { score, threshold } => B::NotMatched { score, threshold },
            FlowError::LockedOut {
                retry_after_s,
                failed_matches,
            } => B::LockedOut {
                retry_after_s,
                failed_matches,
            },
            FlowError::NotEnrolled => B::NotEnrolled,
            FlowError::Template(detail) => B::Template { detail },
            FlowError::Declined { code, message } => B::Declined {
                code: code.as_str().into(),
                detail: message,
            },
            FlowError::Network(detail) => B::Network { detail },
            FlowError::Server { status, message } => B::Server {
                status,
                detail: message,
            },
            FlowError::Protocol(detail) => B::Protocol { detail },
            FlowError::Signer(detail) => B::Signer { detail },
            FlowError::Vision(detail) => B::Vision { detail },
            FlowError::Storage(detail) => B::Storage { detail },
            FlowError::Config(detail) => B::Config { detail },
            FlowError::Busy => B::Busy,
            FlowError::InvalidState(detail) => B::InvalidState { detail },
            FlowError::Cancelled => B::Cancelled,
        }
    }
}
