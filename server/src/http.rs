//! HTTP plumbing: the JSON body extractor (content type, size limit and parse errors in the protocol's error
//! shape), bearer credentials, the 404/405 fallbacks, the request timeout and the request-metrics middleware.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use facepay_core::checkout::wire::ErrorCode;
use serde::de::DeserializeOwned;

use crate::app::App;
use crate::error::ApiError;

/// A JSON request body, parsed, with its raw bytes (hashed for idempotency).
#[derive(Debug)]
pub struct JsonBody<T> {
    /// The parsed value.
    pub value: T,
    /// The bytes as received.
    pub raw: Bytes,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = content_type.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "the body must be application/json",
            ));
        }
        let raw = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    "the body exceeds the size limit",
                )
            } else {
                ApiError::new(
                    ErrorCode::MalformedJson,
                    format!("could not read the body: {rejection}"),
                )
            }
        })?;
        let value = serde_json::from_slice(&raw).map_err(|e| {
            ApiError::new(ErrorCode::MalformedJson, format!("invalid JSON body: {e}"))
        })?;
        Ok(JsonBody { value, raw })
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// 404 for unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

/// 405 for a known route with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "method not allowed for this route",
    )
}

/// Answers `408 request_timeout` when a request (reading its body included) takes longer than the configured
/// request timeout; the handler's future is dropped, so nothing half-done continues.
pub async fn request_timeout(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(app.config.request_timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            let mut response = ApiError::new(
                ErrorCode::RequestTimeout,
                "the request did not arrive completely within the server's request timeout",
            )
            .into_response();
            response.headers_mut().insert(
                header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            response
        }
    }
}

/// Counts each request by matched route and status, and each rejection by its code.
pub async fn track(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let response = next.run(req).await;
    app.metrics.request(&route, response.status().as_u16());
    if let Some(code) = response.extensions().get::<ErrorCode>() {
        app.metrics.rejection(code.as_str());
        tracing::info!(
            route,
            status = response.status().as_u16(),
            code = code.as_str(),
            "request rejected"
        );
    }
    response
}
