//! `GET /v1/openapi.yaml`: the API's contract, `docs/openapi.yaml`, compiled into the server.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The OpenAPI 3.1 document.
pub const DOCUMENT: &str = include_str!("../../docs/openapi.yaml");

/// `GET /v1/openapi.yaml`.
pub async fn document() -> Response {
    ([(header::CONTENT_TYPE, "application/yaml")], DOCUMENT).into_response()
}
