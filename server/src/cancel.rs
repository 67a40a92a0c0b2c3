//! `POST /v1/orders/{order_id}/cancel` (an open order only) and `POST /v1/orders/{order_id}/client_token` (a fresh
//! client token for an open order, e.g. after the first answer was lost). The cancel, its `order.cancelled` outbox
//! event and the idempotency record commit in one transaction; a payment racing the cancel either commits first
//! (the cancel then fails `order_already_paid`) or fails `order_cancelled`.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use facepay_core::checkout::merchant::ClientToken;
use facepay_core::checkout::webhook::EventType;
use facepay_core::checkout::wire::ErrorCode;

use crate::api::merchant;
use crate::app::{App, millis, now_ms};
use crate::error::ApiError;
use crate::idempotency::{Begin, Idempotency};
use crate::reads::{no_such, order_view, path_param};
use crate::refunds::to_body;
use crate::store::Store;
use crate::tokens::{self, CLIENT_TOKEN_PREFIX};
use crate::webhook_delivery;

/// Why an order that exists is not open.
async fn not_open(app: &App, merchant_id: &str, order_id: &str) -> ApiError {
    match app.store.order_for_merchant(merchant_id, order_id).await {
        Ok(None) => no_such("order"),
        Ok(Some(o)) if o.cancelled => {
            ApiError::new(ErrorCode::OrderCancelled, "this order is cancelled")
        }
        Ok(Some(_)) => ApiError::new(
            ErrorCode::OrderAlreadyPaid,
            "this order has already been paid",
        ),
        Err(e) => e.into(),
    }
}

/// `POST /v1/orders/{order_id}/cancel`.
pub async fn cancel_order(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let merchant_id = merchant(&app, &headers).await?;
    let order_id = path_param(path)?;
    let scope = format!("merchant:{merchant_id}");
    let route = "POST /v1/orders/{order_id}/cancel";
    let idem = match Idempotency::begin(&app, &headers, scope, route, order_id.as_bytes()).await? {
        Begin::Replay(response) => return Ok(response),
        Begin::Fresh(idem) => idem,
    };
    let mut order = app
        .store
        .order_for_merchant(&merchant_id, &order_id)
        .await?
        .ok_or_else(|| no_such("order"))?;
    if order.cancelled || order.payment.is_some() {
        return Err(not_open(&app, &merchant_id, &order_id).await);
    }
    order.cancelled = true;
    let response = to_body(&order_view(&order))?;
    let now = now_ms();
    let steps = vec![
        Store::cancel_step(&merchant_id, &order_id),
        webhook_delivery::event_step(&merchant_id, EventType::OrderCancelled, &response, now),
    ];
    match idem.commit(&app, steps, StatusCode::OK, response).await {
        Ok(answer) => {
            app.webhook_wake.notify_one();
            tracing::info!(merchant_id, order_id, "order cancelled");
            Ok(answer)
        }
        // The order stopped being open since it was read (a payment or a cancel won): say which.
        Err(e) if e.code == ErrorCode::OrderCancelled => {
            Err(not_open(&app, &merchant_id, &order_id).await)
        }
        Err(e) => Err(e),
    }
}

/// `POST /v1/orders/{order_id}/client_token`.
pub async fn new_client_token(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let merchant_id = merchant(&app, &headers).await?;
    let order_id = path_param(path)?;
    let scope = format!("merchant:{merchant_id}");
    let route = "POST /v1/orders/{order_id}/client_token";
    let idem = match Idempotency::begin(&app, &headers, scope, route, order_id.as_bytes()).await? {
        Begin::Replay(response) => return Ok(response),
        Begin::Fresh(idem) => idem,
    };
    let client_token = tokens::new_token(CLIENT_TOKEN_PREFIX);
    let expires_at_ms = now_ms().saturating_add(millis(app.config.client_token_ttl));
    let response = to_body(&ClientToken {
        order_id: order_id.clone(),
        client_token: client_token.clone(),
        expires_at_ms: u64::try_from(expires_at_ms).unwrap_or(0),
    })?;
    let step = Store::client_token_step(
        &merchant_id,
        &order_id,
        &tokens::token_hash(&client_token),
        expires_at_ms,
    );
    match idem
        .commit(&app, vec![step], StatusCode::CREATED, response)
        .await
    {
        Err(e) if e.code == ErrorCode::OrderCancelled => {
            Err(not_open(&app, &merchant_id, &order_id).await)
        }
        other => other,
    }
}
