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
use crate::error::ApiError;
use crate::http::{JsonBody, bearer};
use crate::store::{Locks, NonceRow, OrderRow};
use crate::tokens::{self, CLIENT_TOKEN_PREFIX, ENROLLMENT_TOKEN_PREFIX};

fn invalid(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, e.to_string())
}

/// The merchant id for the request's `Authorization: Bearer <API key>`.
pub async fn merchant(app: &App, headers: &HeaderMap) -> Result<String, ApiError> {
    let unauthorized =
        || ApiError::new(ErrorCode::Unauthorized, "missing or wrong merchant API key");
    let key = bearer(headers).ok_or_else(unauthorized)?;
    app.store
        .merchant_by_key_hash(&tokens::token_hash(key))
        .await?
        .ok_or_else(unauthorized)
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
    let req = body?.value;
    check_id("order_id", &req.order_id).map_err(invalid)?;
    check_currency(&req.currency).map_err(invalid)?;
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
    app.store
        .insert_order(&row, &tokens::token_hash(&client_token), now)
        .await?;
    tracing::info!(
        merchant_id = row.merchant_id,
        order_id = row.order_id,
        "order created"
    );
    let response = CreateOrderResponse {
        order: order_ref(&row)?,
        client_token,
        expires_at_ms: u64::try_from(row.token_expires_at_ms).unwrap_or(0),
    };
    Ok((StatusCode::CREATED, Json(response)).into_response())
}

/// `POST /v1/enrollments`.
pub async fn create_enrollment(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<JsonBody<CreateEnrollmentRequest>, ApiError>,
) -> Result<Response, ApiError> {
    let merchant_id = merchant(&app, &headers).await?;
    let req = body?.value;
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
    let response = CreateEnrollmentResponse {
        enrollment_token: token,
        account_id: req.account_id,
        expires_at_ms: u64::try_from(expires_at_ms).unwrap_or(0),
    };
    Ok((StatusCode::CREATED, Json(response)).into_response())
}

/// `POST /v1/checkout/challenge`.
pub async fn challenge(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<JsonBody<ChallengeRequest>, ApiError>,
) -> Result<Response, ApiError> {
    let order = client_order(&app, &headers).await?;
    let req = body?.value;
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
    let response = ChallengeResponse {
        nonce,
        expires_at_ms: u64::try_from(expires_at_ms).unwrap_or(0),
        challenges: challenges_for_nonce_in(&nonce, &app.config.challenge_set),
        order: order_ref(&order)?,
    };
    Ok(Json(response).into_response())
}

/// The lock-out error (`429` with `Retry-After`) if the device, its account or the order is locked at `now`.
pub fn check_locks(locks: &Locks, now: i64) -> Result<(), ApiError> {
    let locked = [
        (locks.device, ErrorCode::DeviceLocked, "this device"),
        (locks.account, ErrorCode::AccountLocked, "this account"),
        (locks.order, ErrorCode::OrderLocked, "this order's client token"),
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

/// `GET /metrics`.
pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}
