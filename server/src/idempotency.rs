//! Idempotency for every POST, with Stripe's semantics. A request that carries an `Idempotency-Key` header has its
//! first successful response stored (24 hours by default, the server's `idempotency_ttl`) in the same transaction
//! as its effect; a retry with the same key and the same body gets that response again, byte for byte, with the
//! header `Idempotent-Replayed: true`; the same key with a different body (or on another route) is
//! `409 idempotency_conflict`. Rejections are not stored: a retry of a rejected request runs again.
//! `POST /v1/checkout/pay` requires the key and keeps its own record with the payment (see [`crate::pay`]).
//!
//! Keys are scoped: per merchant for merchant-authenticated routes, per order for the client-token routes, and one
//! shared space for device registration (whose body holds the enrolment secret, so only its holder can replay).

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use facepay_core::checkout::protocol::sha256;
use facepay_core::checkout::wire::{ErrorCode, IDEMPOTENCY_KEY_HEADER, valid_idempotency_key};

use crate::app::{App, millis, now_ms};
use crate::error::{ApiError, json_response};
use crate::store::idempotency::StoredResponse;
use crate::store::transaction::Step;
use crate::store::{Conflict, Store, StoreError};

/// Header set on a replayed response.
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";

/// A request's idempotency context: its scope, key (if any), route and body hash.
#[derive(Debug, Clone)]
pub struct Idempotency {
    scope: String,
    key: Option<String>,
    route: &'static str,
    request_hash: [u8; 32],
}

/// What [`Idempotency::begin`] found.
#[derive(Debug)]
pub enum Begin {
    /// Nothing stored: run the request (and add [`Idempotency::step`] to its write).
    Fresh(Idempotency),
    /// The stored first response.
    Replay(Response),
}

impl Idempotency {
    /// Reads the `Idempotency-Key` header (optional; malformed is `400 invalid_idempotency_key`) and looks the key
    /// up in `scope`.
    pub async fn begin(
        app: &App,
        headers: &HeaderMap,
        scope: String,
        route: &'static str,
        body: &[u8],
    ) -> Result<Begin, ApiError> {
        let key = match headers.get(IDEMPOTENCY_KEY_HEADER) {
            None => None,
            Some(value) => {
                let key = value.to_str().unwrap_or("");
                if !valid_idempotency_key(key) {
                    return Err(ApiError::new(
                        ErrorCode::InvalidIdempotencyKey,
                        "Idempotency-Key is not 1..=255 visible ASCII characters",
                    ));
                }
                Some(key.to_owned())
            }
        };
        let this = Idempotency {
            scope,
            key,
            route,
            request_hash: sha256(body),
        };
        match this.stored(app).await? {
            Some(response) => Ok(Begin::Replay(response)),
            None => Ok(Begin::Fresh(this)),
        }
    }

    /// The stored response for this key, checked against this request (`idempotency_conflict` when it differs).
    async fn stored(&self, app: &App) -> Result<Option<Response>, ApiError> {
        let Some(key) = &self.key else {
            return Ok(None);
        };
        let Some(stored) = app
            .store
            .stored_response(&self.scope, key, now_ms())
            .await?
        else {
            return Ok(None);
        };
        if stored.route != self.route || stored.request_hash != self.request_hash {
            return Err(ApiError::new(
                ErrorCode::IdempotencyConflict,
                "this idempotency key was used with a different request",
            ));
        }
        app.metrics.idempotent_replay();
        let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
        let mut response = json_response(status, stored.body);
        response
            .headers_mut()
            .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
        Ok(Some(response))
    }

    /// Whether the request carries a key.
    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }

    /// The step storing `status` + `body` as this key's response (none without a key).
    pub fn step(&self, app: &App, status: StatusCode, body: &[u8]) -> Option<Step> {
        let key = self.key.as_deref()?;
        let now = now_ms();
        let response = StoredResponse {
            route: self.route.to_owned(),
            request_hash: self.request_hash.to_vec(),
            status: status.as_u16(),
            body: body.to_vec(),
        };
        Some(Store::store_response_step(
            &self.scope,
            key,
            &response,
            now,
            now.saturating_add(millis(app.config.idempotency_ttl)),
        ))
    }

    /// Runs `steps` plus this key's record in one transaction and answers `status` + `body`; when a concurrent
    /// request with the same key committed first, answers as it did (or `idempotency_conflict`).
    pub async fn commit(
        &self,
        app: &App,
        mut steps: Vec<Step>,
        status: StatusCode,
        body: Vec<u8>,
    ) -> Result<Response, ApiError> {
        steps.extend(self.step(app, status, &body));
        match app.store.write_all(steps).await {
            Ok(()) => Ok(json_response(status, body)),
            Err(StoreError::Conflict(Conflict::ResponseRecorded)) => self
                .stored(app)
                .await?
                .ok_or_else(|| Conflict::ResponseRecorded.into()),
            Err(e) => Err(e.into()),
        }
    }

    /// For handlers whose write is not a [`Step`] list: stores the response after the effect committed (a crash
    /// in between loses only the record, so a retry gets the route's own answer, e.g. `device_exists`).
    pub async fn record_after(&self, app: &App, status: StatusCode, body: Vec<u8>) -> Response {
        if let Some(step) = self.step(app, status, &body)
            && let Err(e) = app.store.write_all(vec![step]).await
        {
            tracing::warn!(error = %e, route = self.route, "storing the idempotent response failed");
        }
        json_response(status, body)
    }
}
