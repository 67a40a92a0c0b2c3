//! The shared application state and the router.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::attestation::Roots;
use crate::config::ServerConfig;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::{api, http, pay, registration};

/// State shared by every request.
#[derive(Debug)]
pub struct App {
    /// The database.
    pub store: Store,
    /// The configuration the server started with.
    pub config: ServerConfig,
    /// The attestation roots: the published ones and the policy's extra ones.
    pub roots: Roots,
    /// Metrics.
    pub metrics: Metrics,
}

/// Now, Unix time in milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Milliseconds of a duration, saturating.
pub fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The full router: the protocol's routes, health, metrics, fallbacks, body limit and request metrics.
pub fn router(app: Arc<App>) -> Router {
    let limit = app.config.body_limit;
    Router::new()
        .route("/v1/orders", post(api::create_order))
        .route("/v1/enrollments", post(api::create_enrollment))
        .route("/v1/devices", post(registration::register))
        .route("/v1/devices/challenge", post(registration::challenge))
        .route("/v1/devices/{device_id}/revoke", post(registration::revoke))
        .route("/v1/accounts/{account_id}/devices", get(registration::list))
        .route("/v1/checkout/challenge", post(api::challenge))
        .route("/v1/checkout/pay", post(pay::pay))
        .route("/healthz", get(api::health))
        .route("/metrics", get(api::metrics))
        .fallback(http::not_found)
        .method_not_allowed_fallback(http::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            http::request_timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            http::track,
        ))
        .with_state(app)
}
