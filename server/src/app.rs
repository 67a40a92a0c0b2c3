//! The shared application state and the router.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::routing::{get, post};
use tokio::sync::Notify;

use crate::attestation::Roots;
use crate::config::ServerConfig;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::{
    api, api_keys, cancel, http, openapi, pay, reads, refunds, registration, webhook_endpoint,
};

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
    /// Wakes the webhook task after a commit that added an event.
    pub webhook_wake: Notify,
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

/// The routes, recorded as they are added, so the OpenAPI document can be checked against them.
struct Routes {
    router: Router<Arc<App>>,
    table: Vec<(&'static str, &'static str)>,
}

impl Routes {
    fn get<H: Handler<T, Arc<App>>, T: 'static>(mut self, path: &'static str, handler: H) -> Self {
        self.router = self.router.route(path, get(handler));
        self.table.push(("get", path));
        self
    }

    fn post<H: Handler<T, Arc<App>>, T: 'static>(mut self, path: &'static str, handler: H) -> Self {
        self.router = self.router.route(path, post(handler));
        self.table.push(("post", path));
        self
    }
}

/// Every route: the protocol's, the merchant API's, the document, health and metrics.
fn routes() -> Routes {
    Routes {
        router: Router::new(),
        table: Vec::new(),
    }
    .post("/v1/orders", api::create_order)
    .get("/v1/orders/{order_id}", reads::get_order)
    .post("/v1/orders/{order_id}/cancel", cancel::cancel_order)
    .post(
        "/v1/orders/{order_id}/client_token",
        cancel::new_client_token,
    )
    .get("/v1/payments", reads::list_payments)
    .get("/v1/payments/{payment_id}", reads::get_payment)
    .post("/v1/payments/{payment_id}/refunds", refunds::create_refund)
    .post("/v1/enrollments", api::create_enrollment)
    .post("/v1/devices", registration::register)
    .post("/v1/devices/challenge", registration::challenge)
    .post("/v1/devices/{device_id}/revoke", registration::revoke)
    .get("/v1/accounts/{account_id}/devices", registration::list)
    .post("/v1/checkout/challenge", api::challenge)
    .post("/v1/checkout/pay", pay::pay)
    .post("/v1/webhook_endpoint", webhook_endpoint::set_endpoint)
    .get("/v1/webhook_endpoint", webhook_endpoint::get_endpoint)
    .post(
        "/v1/webhook_endpoint/rotate_secret",
        webhook_endpoint::rotate_secret,
    )
    .post("/v1/api_keys/roll", api_keys::roll)
    .get("/v1/api_keys", api_keys::list)
    .post("/v1/api_keys/{key_id}/revoke", api_keys::revoke)
    .get("/v1/openapi.yaml", openapi::document)
    .get("/healthz", api::health)
    .get("/metrics", api::metrics)
}

/// `(method, path)` of every route the router serves, lower-case methods, paths as in the OpenAPI document.
pub fn route_table() -> Vec<(&'static str, &'static str)> {
    routes().table
}

/// The full router: every route, fallbacks, body limit and request metrics.
pub fn router(app: Arc<App>) -> Router {
    let limit = app.config.body_limit;
    routes()
        .router
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
