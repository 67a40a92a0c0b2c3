//! The server's error type: every rejection becomes the protocol's one JSON error shape.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use facepay_core::checkout::wire::{ErrorBody, ErrorCode};

use crate::store::{Conflict, StoreError};

/// A request rejection (or an internal failure) with its stable machine code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// Stable machine code (decides the HTTP status).
    pub code: ErrorCode,
    /// Human-readable explanation.
    pub message: String,
    /// Seconds for the `Retry-After` header (lock-outs and rate limits).
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    /// Builds an error.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// The same error with a `Retry-After` of `secs` (at least 1).
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs.max(1));
        self
    }

    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The JSON body bytes.
    pub fn body_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&ErrorBody::new(self.code, self.message.clone())).unwrap_or_default()
    }
}

impl From<Conflict> for ApiError {
    fn from(conflict: Conflict) -> Self {
        let (code, message) = match conflict {
            Conflict::OrderExists => (
                ErrorCode::OrderExists,
                "this merchant already has an order with this order_id",
            ),
            Conflict::DeviceExists => (
                ErrorCode::DeviceExists,
                "this device id is already registered",
            ),
            Conflict::EnrollmentInvalid => (
                ErrorCode::InvalidEnrollmentToken,
                "enrolment token unknown, used or expired",
            ),
            Conflict::NonceReused => (ErrorCode::NonceReused, "this nonce has already been used"),
            Conflict::CounterNotIncreasing => (
                ErrorCode::CounterNotIncreasing,
                "counter is not greater than the device's last accepted counter",
            ),
            Conflict::OrderAlreadyPaid => (
                ErrorCode::OrderAlreadyPaid,
                "this order has already been paid",
            ),
            Conflict::IdempotencyKeyInUse => (
                ErrorCode::IdempotencyConflict,
                "this idempotency key is already in use",
            ),
            Conflict::RegistrationChallengeInvalid => (
                ErrorCode::RegistrationChallengeInvalid,
                "registration challenge unknown, used, expired or issued for another enrolment token",
            ),
            Conflict::DeviceLimitReached => (
                ErrorCode::DeviceLimitReached,
                "this account already has the maximum number of active devices; revoke one first",
            ),
            Conflict::DeviceRevoked => (ErrorCode::DeviceRevoked, "this device has been revoked"),
        };
        ApiError::new(code, message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(conflict) => conflict.into(),
            StoreError::RateLimited => ApiError::new(
                ErrorCode::RateLimited,
                "too many outstanding registration challenges for this enrolment token",
            )
            .retry_after(60),
            StoreError::OutOfRange(field) => {
                ApiError::new(ErrorCode::InvalidRequest, format!("{field} exceeds 2^63-1"))
            }
            e if e.is_unavailable() => {
                tracing::warn!(error = %e, "database unavailable");
                ApiError::new(
                    ErrorCode::Unavailable,
                    "database unavailable; retry with the same idempotency key",
                )
            }
            other => {
                tracing::error!(error = %other, "database error");
                ApiError::new(
                    ErrorCode::Internal,
                    "internal database error; nothing was recorded",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = json_response(status, self.body_bytes());
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
        }
        response.extensions_mut().insert(self.code);
        response
    }
}

/// A response with a JSON body given as bytes.
pub fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    response
}
