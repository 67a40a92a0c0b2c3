//! The one error type of the checkout client: every server answer and every local failure, typed.

use thiserror::Error;

use crate::checkout::error::ProtocolError;
use crate::checkout::signer::SignerError;
use crate::checkout::wire::ErrorCode;

/// Why a checkout call failed.
#[derive(Debug, Error)]
pub enum CheckoutError {
    /// The server rejected the request (4xx) with one of its stable error codes. Not retried (except
    /// `idempotency_in_progress`, which is retried until the retry budget runs out).
    #[error("server rejected the request ({status} {code}): {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The server's stable machine code.
        code: ErrorCode,
        /// The server's human-readable message.
        message: String,
    },
    /// The server failed (5xx) on every attempt the retry policy allowed.
    #[error("server error {status}{}: {message}", code.map(|c| format!(" ({c})")).unwrap_or_default())]
    Server {
        /// HTTP status of the last attempt.
        status: u16,
        /// The error code, when the body had the protocol's error shape.
        code: Option<ErrorCode>,
        /// The server's message, or the start of the body.
        message: String,
    },
    /// The connection could not be made or broke (refused, reset, closed early) on every attempt.
    #[error("network error: {0}")]
    Network(String),
    /// The request did not complete within the configured timeout on every attempt.
    #[error("request timed out")]
    Timeout,
    /// The TLS handshake failed: the server's certificate is not trusted (wrong pin, unknown CA, bad name).
    /// Never retried.
    #[error("TLS error: {0}")]
    Tls(String),
    /// The server answered something the protocol does not allow (undecodable body, unexpected status, a
    /// challenge list or receipt that does not match the request).
    #[error("protocol violation by the server: {0}")]
    Protocol(String),
    /// The client configuration is unusable (bad base URL, unreadable pinned certificate).
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// The payment (or a registration field) fails the protocol's own checks, so it was not sent.
    #[error("invalid payment payload: {0}")]
    InvalidPayload(#[from] ProtocolError),
    /// The device key could not sign.
    #[error("device signer failed: {0}")]
    Signer(#[from] SignerError),
}

impl CheckoutError {
    /// The server's error code, for [`Rejected`](Self::Rejected) and coded [`Server`](Self::Server) errors.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            CheckoutError::Rejected { code, .. } => Some(*code),
            CheckoutError::Server { code, .. } => *code,
            _ => None,
        }
    }

    /// Whether the fault is transient: retrying the same request (same idempotency key) may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            CheckoutError::Network(_) | CheckoutError::Timeout | CheckoutError::Server { .. } => {
                true
            }
            CheckoutError::Rejected { code, .. } => code.is_transient(),
            _ => false,
        }
    }
}
