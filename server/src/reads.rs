//! `GET /v1/orders/{order_id}`, `GET /v1/payments/{payment_id}` and `GET /v1/payments`: merchant-scoped reads.
//! Another merchant's id answers `404 not_found`, exactly as an id that does not exist.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use facepay_core::checkout::merchant::{Order, OrderStatus, Payment, PaymentList, PaymentState};
use facepay_core::checkout::wire::{ErrorCode, b64_encode};
use serde::Deserialize;

use crate::api::merchant;
use crate::app::App;
use crate::currency;
use crate::error::ApiError;
use crate::store::reads::{OrderRecord, PaymentRow};

/// Largest page of `GET /v1/payments`.
pub const MAX_PAGE: u32 = 100;
/// Page size when `limit` is not given.
pub const DEFAULT_PAGE: u32 = 10;

/// The error for an id the merchant has no object for.
pub fn no_such(what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no such {what} for this merchant"),
    )
}

/// Rejects identifiers with control characters (PostgreSQL cannot even compare a text with NUL in it).
pub fn check_no_control(field: &str, value: &str) -> Result<(), ApiError> {
    if value.chars().any(char::is_control) {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("{field} contains a control character"),
        ));
    }
    Ok(())
}

/// A path parameter, or `400 invalid_request` (not axum's plain-text rejection).
pub fn path_param(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let value = path.map(|Path(value)| value).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("bad path parameter: {e}"),
        )
    })?;
    check_no_control("the path parameter", &value)?;
    Ok(value)
}

fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// The API view of a payment.
pub fn payment_view(p: &PaymentRow) -> Payment {
    let status = if p.refunded_minor == 0 {
        PaymentState::Succeeded
    } else if p.refunded_minor < p.amount_minor {
        PaymentState::PartiallyRefunded
    } else {
        PaymentState::Refunded
    };
    Payment {
        payment_id: p.payment_id.clone(),
        order_id: p.order_id.clone(),
        amount_minor: unsigned(p.amount_minor),
        amount_refunded_minor: unsigned(p.refunded_minor),
        currency: p.currency.clone(),
        status,
        device_id: p.device_id.clone(),
        recorded_at_ms: unsigned(p.recorded_at_ms),
    }
}

/// The API view of an order.
pub fn order_view(o: &OrderRecord) -> Order {
    let payment = o.payment.as_ref().map(payment_view);
    let status = match (&payment, o.cancelled) {
        (_, true) => OrderStatus::Cancelled,
        (None, false) => OrderStatus::Open,
        (Some(p), false) => match p.status {
            PaymentState::Succeeded => OrderStatus::Paid,
            PaymentState::PartiallyRefunded => OrderStatus::PartiallyRefunded,
            PaymentState::Refunded => OrderStatus::Refunded,
        },
    };
    Order {
        order_id: o.order_id.clone(),
        amount_minor: unsigned(o.amount_minor),
        currency: o.currency.clone(),
        currency_exponent: currency::minor_units(&o.currency),
        items_digest: b64_encode(&o.items_digest),
        status,
        created_at_ms: unsigned(o.created_at_ms),
        payment,
    }
}

/// `GET /v1/orders/{order_id}`.
pub async fn get_order(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let merchant_id = merchant(&app, &headers).await?;
    let order_id = path_param(path)?;
    let order = app
        .store
        .order_for_merchant(&merchant_id, &order_id)
        .await?
        .ok_or_else(|| no_such("order"))?;
    Ok(Json(order_view(&order)).into_response())
}

/// `GET /v1/payments/{payment_id}`.
pub async fn get_payment(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let merchant_id = merchant(&app, &headers).await?;
    let payment_id = path_param(path)?;
    let payment = app
        .store
        .payment_for_merchant(&merchant_id, &payment_id)
        .await?
        .ok_or_else(|| no_such("payment"))?;
    Ok(Json(payment_view(&payment)).into_response())
}

/// The query of `GET /v1/payments`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Page size, 1..=100 (default 10).
    limit: Option<u32>,
    /// The last payment id of the previous page.
    starting_after: Option<String>,
}

/// `GET /v1/payments?limit=&starting_after=`: newest first.
pub async fn list_payments(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let merchant_id = merchant(&app, &headers).await?;
    let Query(query) = query.map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("bad query: {}", e.body_text()),
        )
    })?;
    if let Some(cursor) = &query.starting_after {
        check_no_control("starting_after", cursor)?;
    }
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("limit must be 1..={MAX_PAGE}"),
        ));
    }
    let rows = app
        .store
        .list_payments(
            &merchant_id,
            i64::from(limit) + 1,
            query.starting_after.as_deref(),
        )
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                "starting_after is not a payment of this merchant",
            )
        })?;
    let has_more = rows.len() > limit as usize;
    let data = rows.iter().take(limit as usize).map(payment_view).collect();
    Ok(Json(PaymentList { data, has_more }).into_response())
}
