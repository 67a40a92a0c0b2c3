//! `POST /v1/payments/{payment_id}/refunds`: full or partial refunds, never above what is left of the payment. The
//! refund row, the payment's refunded total, the `refund.succeeded` outbox event and the idempotency record commit
//! in one transaction.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use facepay_core::checkout::merchant::{CreateRefundRequest, Refund, RefundStatus};
use facepay_core::checkout::webhook::EventType;
use facepay_core::checkout::wire::ErrorCode;

use crate::api::merchant;
use crate::app::{App, now_ms};
use crate::error::ApiError;
use crate::http::JsonBody;
use crate::idempotency::{Begin, Idempotency};
use crate::reads::{check_no_control, no_such, path_param};
use crate::store::Store;
use crate::store::refunds::NewRefund;
use crate::{tokens, webhook_delivery};

/// Longest refund reason, bytes.
pub const MAX_REASON_LEN: usize = 500;

/// Encodes a response body (these types always serialise).
pub fn to_body<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value).map_err(|e| {
        ApiError::new(
            ErrorCode::Internal,
            format!("cannot encode the answer: {e}"),
        )
    })
}

/// `POST /v1/payments/{payment_id}/refunds`.
pub async fn create_refund(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Result<JsonBody<CreateRefundRequest>, ApiError>,
) -> Result<Response, ApiError> {
    let merchant_id = merchant(&app, &headers).await?;
    let payment_id = path_param(path)?;
    let body = body?;
    let scope = format!("merchant:{merchant_id}");
    let idem = match Idempotency::begin(
        &app,
        &headers,
        scope,
        "POST /v1/payments/{payment_id}/refunds",
        &body.raw,
    )
    .await?
    {
        Begin::Replay(response) => return Ok(response),
        Begin::Fresh(idem) => idem,
    };
    let req = body.value;
    if let Some(reason) = &req.reason {
        if reason.len() > MAX_REASON_LEN {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("reason is longer than {MAX_REASON_LEN} bytes"),
            ));
        }
        check_no_control("reason", reason)?;
    }
    let payment = app
        .store
        .payment_for_merchant(&merchant_id, &payment_id)
        .await?
        .ok_or_else(|| no_such("payment"))?;
    let remaining = u64::try_from(payment.amount_minor - payment.refunded_minor).unwrap_or(0);
    let exceeds = |detail: String| ApiError::new(ErrorCode::RefundExceedsRemaining, detail);
    let amount = match req.amount_minor {
        Some(0) => {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "amount_minor must be greater than 0",
            ));
        }
        Some(amount) if amount > remaining => {
            return Err(exceeds(format!(
                "amount_minor {amount} exceeds the {remaining} left to refund on this payment"
            )));
        }
        Some(amount) => amount,
        None if remaining == 0 => return Err(exceeds("the payment is fully refunded".into())),
        None => remaining,
    };
    let now = now_ms();
    let refund = Refund {
        refund_id: tokens::new_id("re_"),
        payment_id: payment.payment_id.clone(),
        amount_minor: amount,
        currency: payment.currency.clone(),
        status: RefundStatus::Succeeded,
        reason: req.reason,
        created_at_ms: u64::try_from(now).unwrap_or(0),
    };
    let response = to_body(&refund)?;
    let mut steps = Store::refund_steps(&NewRefund {
        refund_id: &refund.refund_id,
        merchant_id: &merchant_id,
        payment_id: &refund.payment_id,
        amount_minor: i64::try_from(amount).unwrap_or(i64::MAX),
        currency: &refund.currency,
        reason: refund.reason.as_deref(),
        created_at_ms: now,
    });
    steps.push(webhook_delivery::event_step(
        &merchant_id,
        EventType::RefundSucceeded,
        &response,
        now,
    ));
    let answer = idem
        .commit(&app, steps, StatusCode::CREATED, response)
        .await?;
    app.webhook_wake.notify_one();
    tracing::info!(merchant_id, payment_id, amount, "refund recorded");
    Ok(answer)
}
