//! [`FacePayError`]: the one public error of enrolment and payment, a variant per failure the app tells apart, each
//! carrying a typed kind (strings only as details for logs). The core's internal errors map into it here, once;
//! with the `uniffi` feature it crosses the FFI as it is (Kotlin: a sealed `FacePayException`; Swift: an `Error`).

use crate::checkout::client::CheckoutError;
use crate::checkout::signer::SignerError;
use crate::checkout::wire::ErrorCode;
use crate::liveness::{FailReason, TimeoutReason};
use crate::matcher::MatchError;
use crate::template::TemplateError;
use crate::vision::{FrameProblem, VisionError};

/// Why an enrolment or a payment did not complete. Plain data so it crosses an FFI boundary as it is; `Clone` so
/// a finished session can report its outcome again.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Error))]
pub enum FacePayError {
    /// No usable face was seen during the capture (nothing to enrol or to match).
    #[error(
        "no usable face was seen: keep your face in the outline, well lit, looking at the camera"
    )]
    NoFace,
    /// The liveness session decided "not live" (e.g. the passive check says spoof).
    #[error("liveness check failed: {detail}")]
    LivenessFailed {
        /// Why.
        reason: FailReason,
        /// The same, in English, for logs.
        detail: String,
    },
    /// The liveness session ran out of time (or out of frames) before it could decide.
    #[error("liveness check timed out: {detail}")]
    LivenessTimedOut {
        /// Which limit was reached.
        reason: TimeoutReason,
        /// The same, in English, for logs.
        detail: String,
    },
    /// Enrolment saw fewer good frames than a template needs.
    #[error(
        "enrolment needs {needed} good frames spread over the session, only {found} were usable"
    )]
    TooFewFrames {
        /// Good frames found.
        found: u32,
        /// Frames a template needs.
        needed: u32,
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
    /// The stored template cannot be used: enrol again.
    #[error("enrolment template unusable: {detail}")]
    Template {
        /// What is wrong with it.
        kind: TemplateProblem,
        /// Details for logs.
        detail: String,
    },
    /// The checkout server refused the request with one of its stable codes (e.g. `OrderAlreadyPaid`).
    #[error("payment declined by the server ({code}): {detail}")]
    Declined {
        /// The server's stable machine code.
        code: ErrorCode,
        /// The server's explanation.
        detail: String,
    },
    /// The server could not be reached.
    #[error("network error: {detail}")]
    Network {
        /// How the request failed.
        kind: NetworkFailure,
        /// Details for logs.
        detail: String,
    },
    /// The server failed (5xx) on every attempt.
    #[error("server error {status}: {detail}")]
    Server {
        /// HTTP status of the last attempt.
        status: u16,
        /// The server's error code, when its answer had one (e.g. `Unavailable`).
        code: Option<ErrorCode>,
        /// The server's message.
        detail: String,
    },
    /// An answer or a payload the protocol does not allow.
    #[error("protocol violation: {detail}")]
    Protocol {
        /// Which side broke the protocol.
        kind: ProtocolViolation,
        /// Details for logs.
        detail: String,
    },
    /// The device key could not sign.
    #[error("device key failed to sign: {detail}")]
    Signer {
        /// Why.
        kind: SignerFailure,
        /// Details for logs.
        detail: String,
    },
    /// The vision models could not be loaded or run.
    #[error("vision: {detail}")]
    Vision {
        /// What failed.
        kind: VisionFailure,
        /// Details for logs.
        detail: String,
    },
    /// A camera frame's description does not fit its bytes, or an encoded image cannot be decoded. The session
    /// still counts the frame (as one without a face); the app should fix its camera set-up.
    #[error("invalid frame: {detail}")]
    InvalidFrame {
        /// What does not fit.
        problem: FrameProblem,
        /// Details for logs.
        detail: String,
    },
    /// Local state (counter file, state directory) could not be read or written.
    #[error("device storage: {detail}")]
    Storage {
        /// What failed.
        kind: StorageFailure,
        /// Details for logs.
        detail: String,
    },
    /// The configuration is unusable.
    #[error("configuration: {detail}")]
    Config {
        /// Which setting.
        setting: ConfigSetting,
        /// What is wrong with it.
        detail: String,
    },
    /// Another enrolment or payment is already using the camera pipeline.
    #[error("another enrolment or payment is in progress")]
    Busy,
    /// The call does not fit the session's state.
    #[error("invalid state: {state}")]
    InvalidState {
        /// Where the session is.
        state: SessionState,
    },
    /// The session was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// A bug in FacePay (a panic caught at the FFI boundary): report it.
    #[error("internal error: {detail}")]
    Internal {
        /// The panic message.
        detail: String,
    },
}

/// Why a stored template cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum TemplateProblem {
    /// It failed its integrity check (tampered, truncated, or sealed under another key).
    Integrity,
    /// The key that sealed it is gone from the key store (e.g. invalidated by a new device lock).
    KeyUnavailable,
    /// The key store failed.
    KeyStore,
    /// Made by another embedder or format version than this build runs.
    ModelMismatch,
    /// Its contents are invalid (embedding count, dimension, norm).
    Invalid,
    /// Reading or writing its file failed.
    Storage,
}

/// How a request to the server failed before any answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum NetworkFailure {
    /// The connection could not be made or broke (offline, refused, reset).
    Connection,
    /// No answer within the configured timeout.
    Timeout,
    /// The TLS handshake failed: the server's certificate is not trusted (wrong pin, unknown CA, bad name).
    Tls,
}

/// Which side broke the checkout protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum ProtocolViolation {
    /// The server answered something the protocol does not allow (body, status, challenge list, receipt).
    ServerResponse,
    /// The payment payload fails the protocol's own checks, so it was not sent.
    Payload,
}

/// Why the device key could not sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum SignerFailure {
    /// The key is not an ECDSA P-256 key (a software key's bytes), or its public key is not a P-256 point.
    InvalidKey,
    /// The random number generator failed.
    Random,
    /// The platform keystore needs the user to authenticate first: ask, then retry.
    AuthenticationRequired,
    /// The key was permanently invalidated: the device must be registered again.
    KeyInvalidated,
    /// The platform keystore refused or failed for another reason.
    Keystore,
}

/// What failed in the vision stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum VisionFailure {
    /// A model file (or bundle entry) is missing or unreadable.
    ModelMissing,
    /// A model's bytes do not have the manifest's sha256.
    ModelIntegrity,
    /// The manifest is invalid, or a model cannot be loaded.
    ModelInvalid,
    /// A model failed while running.
    Inference,
    /// An image given outside a session (a still, a clip frame) cannot be read.
    Image,
}

/// Which local state failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum StorageFailure {
    /// Reading it failed, or it holds something unreadable.
    Read,
    /// Writing it (durably) failed.
    Write,
    /// The device's signature counter reached its maximum.
    CounterExhausted,
    /// The random number generator failed.
    Random,
}

/// Which setting of the configuration is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum ConfigSetting {
    /// The device id (1–64 characters from `A-Z a-z 0-9 . _ -`).
    DeviceId,
    /// The liveness policy.
    LivenessPolicy,
    /// The server URL or its pinned certificate.
    Server,
    /// The model manifest (model ids, `[calibration]`).
    ModelManifest,
    /// A setting of the tool around the library (e.g. the CLI's merchant credentials).
    Tool,
}

/// Where a session is, when a call does not fit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum SessionState {
    /// Still capturing: the face is not verified yet, push more frames.
    Capturing,
    /// The liveness session has not decided.
    Undecided,
    /// The payment is being sent.
    Paying,
    /// The payment is complete.
    Paid,
}

impl std::fmt::Display for SessionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SessionState::Capturing => "the face is not verified yet: push more frames",
            SessionState::Undecided => "the liveness session has not decided",
            SessionState::Paying => "the payment is already being sent",
            SessionState::Paid => "the payment is complete",
        })
    }
}

impl FacePayError {
    /// A liveness failure with its English detail.
    pub fn liveness_failed(reason: FailReason) -> Self {
        FacePayError::LivenessFailed {
            detail: reason.to_string(),
            reason,
        }
    }

    /// A liveness time-out with its English detail.
    pub fn liveness_timed_out(reason: TimeoutReason) -> Self {
        FacePayError::LivenessTimedOut {
            detail: reason.to_string(),
            reason,
        }
    }

    /// A configuration error about `setting`.
    pub fn config(setting: ConfigSetting, detail: impl std::fmt::Display) -> Self {
        FacePayError::Config {
            setting,
            detail: detail.to_string(),
        }
    }

    /// A local storage error.
    pub fn storage(kind: StorageFailure, detail: impl std::fmt::Display) -> Self {
        FacePayError::Storage {
            kind,
            detail: detail.to_string(),
        }
    }

    /// An unusable template.
    pub fn template(kind: TemplateProblem, detail: impl std::fmt::Display) -> Self {
        FacePayError::Template {
            kind,
            detail: detail.to_string(),
        }
    }

    /// A frame that cannot be converted (or an encoded image that cannot be decoded) in a session.
    pub fn invalid_frame(e: VisionError) -> Self {
        let problem = match &e {
            VisionError::InvalidFrame { problem, .. } => *problem,
            _ => FrameProblem::Undecodable,
        };
        FacePayError::InvalidFrame {
            problem,
            detail: e.to_string(),
        }
    }

    /// A stable snake_case name of the variant (for JSON output and logs).
    pub fn kind(&self) -> &'static str {
        match self {
            FacePayError::NoFace => "no_face",
            FacePayError::LivenessFailed { .. } => "liveness_failed",
            FacePayError::LivenessTimedOut { .. } => "liveness_timed_out",
            FacePayError::TooFewFrames { .. } => "too_few_frames",
            FacePayError::NotMatched { .. } => "not_matched",
            FacePayError::LockedOut { .. } => "locked_out",
            FacePayError::NotEnrolled => "not_enrolled",
            FacePayError::Template { .. } => "template",
            FacePayError::Declined { .. } => "declined",
            FacePayError::Network { .. } => "network",
            FacePayError::Server { .. } => "server",
            FacePayError::Protocol { .. } => "protocol",
            FacePayError::Signer { .. } => "signer",
            FacePayError::Vision { .. } => "vision",
            FacePayError::InvalidFrame { .. } => "invalid_frame",
            FacePayError::Storage { .. } => "storage",
            FacePayError::Config { .. } => "config",
            FacePayError::Busy => "busy",
            FacePayError::InvalidState { .. } => "invalid_state",
            FacePayError::Cancelled => "cancelled",
            FacePayError::Internal { .. } => "internal",
        }
    }
}

impl From<CheckoutError> for FacePayError {
    fn from(e: CheckoutError) -> Self {
        let detail = e.to_string();
        match e {
            CheckoutError::Rejected { code, message, .. } => FacePayError::Declined {
                code,
                detail: message,
            },
            CheckoutError::Server {
                status,
                code,
                message,
            } => FacePayError::Server {
                status,
                code,
                detail: message,
            },
            CheckoutError::Network(_) => FacePayError::Network {
                kind: NetworkFailure::Connection,
                detail,
            },
            CheckoutError::Timeout => FacePayError::Network {
                kind: NetworkFailure::Timeout,
                detail,
            },
            CheckoutError::Tls(_) => FacePayError::Network {
                kind: NetworkFailure::Tls,
                detail,
            },
            CheckoutError::Protocol(_) => FacePayError::Protocol {
                kind: ProtocolViolation::ServerResponse,
                detail,
            },
            CheckoutError::InvalidPayload(_) => FacePayError::Protocol {
                kind: ProtocolViolation::Payload,
                detail,
            },
            CheckoutError::Config(_) => FacePayError::config(ConfigSetting::Server, detail),
            CheckoutError::Signer(e) => e.into(),
        }
    }
}

impl From<SignerError> for FacePayError {
    fn from(e: SignerError) -> Self {
        let kind = match &e {
            SignerError::InvalidKey(_) => SignerFailure::InvalidKey,
            SignerError::Rng => SignerFailure::Random,
            SignerError::AuthenticationRequired(_) => SignerFailure::AuthenticationRequired,
            SignerError::KeyInvalidated(_) => SignerFailure::KeyInvalidated,
            SignerError::Keystore(_) => SignerFailure::Keystore,
        };
        FacePayError::Signer {
            kind,
            detail: e.to_string(),
        }
    }
}

impl From<TemplateError> for FacePayError {
    fn from(e: TemplateError) -> Self {
        let kind = match &e {
            TemplateError::NotEnrolled => return FacePayError::NotEnrolled,
            TemplateError::Integrity | TemplateError::Crypto(_) => TemplateProblem::Integrity,
            TemplateError::KeyUnavailable { .. } => TemplateProblem::KeyUnavailable,
            TemplateError::InvalidKeyId(_) | TemplateError::KeyStore(_) => {
                TemplateProblem::KeyStore
            }
            TemplateError::UnsupportedVersion { .. } | TemplateError::InvalidModel(_) => {
                TemplateProblem::ModelMismatch
            }
            TemplateError::Io { .. } => TemplateProblem::Storage,
            _ => TemplateProblem::Invalid,
        };
        FacePayError::template(kind, e)
    }
}

impl From<MatchError> for FacePayError {
    fn from(e: MatchError) -> Self {
        let kind = match &e {
            MatchError::ModelMismatch { .. } | MatchError::DimensionMismatch { .. } => {
                TemplateProblem::ModelMismatch
            }
            _ => TemplateProblem::Invalid,
        };
        FacePayError::template(kind, e)
    }
}

impl From<VisionError> for FacePayError {
    fn from(e: VisionError) -> Self {
        let kind = match &e {
            VisionError::InvalidFrame { .. } | VisionError::Decode(_) => {
                return FacePayError::invalid_frame(e);
            }
            VisionError::ImageRead { .. } => VisionFailure::Image,
            VisionError::ModelMissing { .. } | VisionError::ModelRead { .. } => {
                VisionFailure::ModelMissing
            }
            VisionError::ModelHash { .. } => VisionFailure::ModelIntegrity,
            VisionError::Inference { .. } => VisionFailure::Inference,
            _ => VisionFailure::ModelInvalid,
        };
        FacePayError::Vision {
            kind,
            detail: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_internal_error_maps_to_a_typed_kind() {
        let tls: FacePayError = CheckoutError::Tls("unknown CA".into()).into();
        assert!(matches!(
            tls,
            FacePayError::Network {
                kind: NetworkFailure::Tls,
                ..
            }
        ));
        let timeout: FacePayError = CheckoutError::Timeout.into();
        assert!(matches!(
            timeout,
            FacePayError::Network {
                kind: NetworkFailure::Timeout,
                ..
            }
        ));
        let declined: FacePayError = CheckoutError::Rejected {
            status: 409,
            code: ErrorCode::OrderAlreadyPaid,
            message: "paid".into(),
        }
        .into();
        assert_eq!(
            declined,
            FacePayError::Declined {
                code: ErrorCode::OrderAlreadyPaid,
                detail: "paid".into()
            }
        );
        let keystore: FacePayError =
            CheckoutError::Signer(SignerError::Keystore("locked".into())).into();
        assert!(matches!(
            keystore,
            FacePayError::Signer {
                kind: SignerFailure::Keystore,
                ..
            }
        ));
        let key_gone: FacePayError = TemplateError::KeyUnavailable { key_id: "k".into() }.into();
        assert!(matches!(
            key_gone,
            FacePayError::Template {
                kind: TemplateProblem::KeyUnavailable,
                ..
            }
        ));
        assert_eq!(
            FacePayError::from(TemplateError::NotEnrolled),
            FacePayError::NotEnrolled
        );
        let stride: FacePayError = VisionError::InvalidFrame {
            problem: FrameProblem::Stride,
            detail: "stride 10 < row 30".into(),
        }
        .into();
        assert!(matches!(
            stride,
            FacePayError::InvalidFrame {
                problem: FrameProblem::Stride,
                ..
            }
        ));
        let decode: FacePayError = VisionError::Decode("not a JPEG".into()).into();
        assert!(matches!(
            decode,
            FacePayError::InvalidFrame {
                problem: FrameProblem::Undecodable,
                ..
            }
        ));
        let hash: FacePayError = VisionError::ModelHash {
            name: "m".into(),
            expected: "a".into(),
            actual: "b".into(),
        }
        .into();
        assert_eq!(hash.kind(), "vision");
        assert!(matches!(
            hash,
            FacePayError::Vision {
                kind: VisionFailure::ModelIntegrity,
                ..
            }
        ));
    }
}
