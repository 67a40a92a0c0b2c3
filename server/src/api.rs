//! Handlers for orders, enrolments, challenges (with their lock-out and rate-limit checks), health and metrics
//! (device registration is in [`crate::registration`], the payment in [`crate::pay`]).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use facepay_core::checkout::protocol::{
    OrderRef, PROTOCOL_VERSION, challenges_for_nonce_in, check_currency, check_id,
};
use facepay_core::checkout::wire::{
    ChallengeRequest, ChallengeResponse, CreateEnrollmentRequest, CreateEnrollmentResponse,
    CreateOrderRequest, CreateOrderResponse, ErrorCode, Health,
};

use crate::app::{App, millis, now_ms};
use crate::currency::check_money;
use crate::error::{ApiError, json_response};
use crate::http::{JsonBody, bearer};
use crate::idempotency::{Begin, Idempotency};
use crate::refunds::to_body;
use crate::store::api_keys::KeyOwner;
use crate::store::transaction::Step;
use crate::store::{Conflict, Locks, NonceRow, OrderRow, Store};
use crate::tokens::{self, CLIENT_TOKEN_PREFIX, ENROLLMENT_TOKEN_PREFIX};

fn invalid(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, e.to_string())
}

/// The merchant and key id of the request's `Authorization: Bearer <API key>` (unexpired, unrevoked).
pub async fn merchant_key(app: &App, headers: &HeaderMap) -> Result<KeyOwner, ApiError> {
    let unauthorized = || {
        ApiError::new(
            ErrorCode::Unauthorized,
            "missing, wrong, expired or revoked merchant API key",
        )
    };
    let key = bearer(headers).ok_or_else(unauthorized)?;
    app.store
        .api_key_owner(&tokens::token_hash(key), now_ms())
        .await?
        .ok_or_else(unauthorized)
}

/// The merchant id for the request's `Authorization: Bearer <API key>`.
pub async fn merchant(app: &App, headers: &HeaderMap) -> Result<String, ApiError> {
    Ok(merchant_key(app, headers).await?.merchant_id)
}

/// Unwraps a [`Begin`]: the replayed response returns early from the handler.
macro_rules! fresh {
    ($begin:expr) => {
        match $begin {
            Begin::Replay(response) => return Ok(response),
            Begin::Fresh(idem) => idem,
        }
    };
}

/// The error for a missing, wrong or expired client token.
pub fn unauthorized_client() -> ApiError {
    ApiError::new(
        ErrorCode::Unauthorized,
        "missing, wrong or expired client token",
    )
}

/// The order for the request's `Authorization: Bearer <client token>` (unexpired).
pub async fn client_order(app: &App, headers: &HeaderMap) -> Result<OrderRow, ApiError> {
    let unauthorized = unauthorized_client;
    let token = bearer(headers).ok_or_else(unauthorized)?;
    let order = app
        .store
        .order_by_token_hash(&tokens::token_hash(token))
        .await?
        .ok_or_else(unauthorized)?;
    if order.token_expires_at_ms <= now_ms() {
        return Err(unauthorized());
    }
    Ok(order)
}

/// The protocol's view of a stored order.
pub fn order_ref(order: &OrderRow) -> Result<OrderRef, ApiError> {
    let items_digest = <[u8; 32]>::try_from(order.items_digest.as_slice())
        .map_err(|_| ApiError::new(ErrorCode::Internal, "stored items digest is not 32 bytes"))?;
    Ok(OrderRef {
        merchant_id: order.merchant_id.clone(),
        order_id: order.order_id.clone(),
        amount_minor: u64::try_from(order.amount_minor).unwrap_or(0),
        currency: order.currency.clone(),
        items_digest,
    })
}

/// `POST /v1/orders`.
pub async fn create_order(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<JsonBody<CreateOrderRequest>, ApiError>,
) -> Result<Response, ApiError> {
    let merchant_id = merchant(&app, &headers).await?;
    let body = body?;
    let scope = format!("merchant:{merchant_id}");
    let idem =
        fresh!(Idempotency::begin(&app, &headers, scope, "POST /v1/orders", &body.raw).await?);
    let req = body.value;
    check_id("order_id", &req.order_id).map_err(invalid)?;
    check_currency(&req.currency).map_err(invalid)?;
    check_money(&req.currency, req.amount_minor).map_err(invalid)?;
    let amount_minor =
        i64::try_from(req.amount_minor).map_err(|_| invalid("amount_minor exceeds 2^63-1"))?;
    let now = now_ms();
    let client_token = tokens::new_token(CLIENT_TOKEN_PREFIX);
    let row = OrderRow {
        merchant_id,
        order_id: req.order_id,
        amount_minor,
        currency: req.currency,
        items_digest: req.items_digest.to_vec(),
        token_expires_at_ms: now.saturating_add(millis(app.config.client_token_ttl)),
        paid: false,
    };
    let response = to_body(&CreateOrderResponse {
        order: order_ref(&row)?,
        client_token: client_token.clone(),
        expires_at_ms: u64::try_from(row.token_expires_at_ms).unwrap_or(0),
    })?;
    let token_hash = tokens::token_hash(&client_token);
    let answer = if idem.has_key() {
        let insert = Step::must_affect(
            Store::order_insert(&row, &token_hash, now),
            Conflict::OrderExists,
        );
        idem.commit(&app, vec![insert], StatusCode::CREATED, response)
            .await?
    } else {
        // Without a key the insert takes the group-commit path.
        app.store.insert_order(&row, &token_hash, now).await?;
        json_response(StatusCode::CREATED, response)
    };
    tracing::info!(
        merchant_id = row.merchant_id,
        order_id = row.order_id,
        "order created"
    );
    Ok(answer)
}

/// `POST /v1/enrollments`.
pub async fn create_enrollment(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<JsonBody<CreateEnrollmentRequest>, ApiError>,
) -> Result<Response, ApiError> {
    let merchant_id = merchant(&app, &headers).await?;
    let body = body?;
    let scope = format!("merchant:{merchant_id}");
    let route = "POST /v1/enrollments";
    let idem = fresh!(Idempotency::begin(&app, &headers, scope, route, &body.raw).await?);
    let req = body.value;
    check_id("account_id", &req.account_id).map_err(invalid)?;
    let token = tokens::new_token(ENROLLMENT_TOKEN_PREFIX);
    let expires_at_ms = now_ms().saturating_add(millis(app.config.enrollment_ttl));
    app.store
        .insert_enrollment(
            &tokens::token_hash(&token),
            &merchant_id,
            &req.account_id,
            expires_at_ms,
        )
        .await?;
    let response = to_body(&CreateEnrollmentResponse {
        enrollment_token: token,
        account_id: req.account_id,
        expires_at_ms: u64::try_from(expires_at_ms).unwrap_or(0),
    })?;
    Ok(idem.record_after(&app, StatusCode::CREATED, response).await)
}

/// `POST /v1/checkout/challenge`.
pub async fn challenge(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<JsonBody<ChallengeRequest>, ApiError>,
) -> Result<Response, ApiError> {
    let order = client_order(&app, &headers).await?;
    let body = body?;
    let scope = format!("order:{}/{}", order.merchant_id, order.order_id);
    let route = "POST /v1/checkout/challenge";
    let idem = fresh!(Idempotency::begin(&app, &headers, scope, route, &body.raw).await?);
    let req = body.value;
    check_id("device_id", &req.device_id).map_err(invalid)?;
    let now = now_ms();
    let ctx = app
        .store
        .challenge_context(&req.device_id, &order.merchant_id, &order.order_id, now)
        .await?
        .filter(|d| d.merchant_id == order.merchant_id)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::UnknownDevice,
                "device is not registered with this merchant",
            )
        })?;
    check_locks(&ctx.locks, now)?;
    if ctx.revoked {
        return Err(revoked());
    }
    if order.paid {
        return Err(ApiError::new(
            ErrorCode::OrderAlreadyPaid,
            "this order has already been paid",
        ));
    }
    let limits = app.config.limits;
    if ctx.device_challenges >= i64::from(limits.challenges_per_device)
        || ctx.order_challenges >= i64::from(limits.challenges_per_order)
    {
        return Err(ApiError::new(
            ErrorCode::RateLimited,
            "too many unexpired challenges for this device or order; pay or wait for them to expire",
        )
        .retry_after(app.config.nonce_ttl.as_secs()));
    }
    let nonce = tokens::random_bytes::<32>();
    let expires_at_ms = now.saturating_add(millis(app.config.nonce_ttl));
    let row = NonceRow {
        merchant_id: order.merchant_id.clone(),
        order_id: order.order_id.clone(),
        amount_minor: order.amount_minor,
        currency: order.currency.clone(),
        device_id: req.device_id,
        expires_at_ms,
        used: false,
    };
    app.store.insert_nonce(&nonce, &row).await?;
    let response = to_body(&ChallengeResponse {
        nonce,
        expires_at_ms: u64::try_from(expires_at_ms).unwrap_or(0),
        challenges: challenges_for_nonce_in(&nonce, &app.config.challenge_set),
        order: order_ref(&order)?,
    })?;
    Ok(idem.record_after(&app, StatusCode::OK, response).await)
}

/// The lock-out error (`429` with `Retry-After`) if the device, its account or the order is locked at `now`.
pub fn check_locks(locks: &Locks, now: i64) -> Result<(), ApiError> {
    let locked = [
        (locks.device, ErrorCode::DeviceLocked, "this device"),
        (locks.account, ErrorCode::AccountLocked, "this account"),
        (
            locks.order,
            ErrorCode::OrderLocked,
            "this order's client token",
        ),
    ];
    for (until, code, whom) in locked {
        if let Some(until) = until.filter(|u| *u > now) {
            let secs = u64::try_from((until - now + 999) / 1000).unwrap_or(1);
            return Err(ApiError::new(
                code,
                format!("too many failed attempts for {whom}; locked for {secs} more seconds"),
            )
            .retry_after(secs));
        }
    }
    Ok(())
}

/// The `device_revoked` error.
pub fn revoked() -> ApiError {
    ApiError::new(ErrorCode::DeviceRevoked, "this device has been revoked")
}

/// `GET /healthz`.
pub async fn health(State(app): State<Arc<App>>) -> Response {
    let ok = app.store.ping().await;
    let body = Health {
        status: if ok { "ok" } else { "unavailable" }.to_owned(),
        backend: app.store.backend().to_owned(),
        protocol: PROTOCOL_VERSION.to_owned(),
    };
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// `GET /metrics`: only with `Authorization: Bearer <metrics token>` (the server's `--metrics-token`, separate
/// from every merchant credential); without a configured token the route answers 404.
pub async fn metrics(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(expected) = &app.config.metrics_token else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "metrics are disabled: start the server with --metrics-token",
        ));
    };
    // Compared as SHA-256 digests, so the time taken says nothing about the token.
    let given = bearer(&headers).map(tokens::token_hash);
    if given != Some(tokens::token_hash(expected)) {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "missing or wrong metrics token",
        ));
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response())
}
