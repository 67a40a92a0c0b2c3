//! `POST /v1/checkout/pay`: verification in the order `docs/protocol.md` specifies, idempotency, the failed-attempt
//! limit, and the one-transaction write.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use facepay_core::checkout::protocol::{
    LivenessVerdict, PaymentPayload, challenges_for_nonce_in, sha256, verify_signature,
};
use facepay_core::checkout::wire::{
    ErrorCode, IDEMPOTENCY_KEY_HEADER, PayRequest, PaymentStatus, Receipt, b64_decode,
    valid_idempotency_key,
};

use crate::api::{check_locks, client_order, order_ref, revoked, unauthorized_client};
use crate::app::{App, millis, now_ms};
use crate::error::{ApiError, json_response};
use crate::http::{JsonBody, bearer};
use crate::lockout::{LockoutRule, Subject};
use crate::store::{DeviceRow, IdempotencyRow, NewPayment, PayContext};
use crate::tokens;

/// `POST /v1/checkout/pay`.
pub async fn pay(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<JsonBody<PayRequest>, ApiError>,
) -> Response {
    let started = Instant::now();
    let response = match verify_and_record(&app, &headers, body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    };
    app.metrics.observe_pay(started.elapsed());
    response
}

/// Rejections of payloads the device signed (the signature verified) that count as a failed attempt of the device
/// and its account.
fn counts_as_failure(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::OrderMismatch
            | ErrorCode::NonceUnknown
            | ErrorCode::NonceMismatch
            | ErrorCode::NonceExpired
            | ErrorCode::NonceReused
            | ErrorCode::ChallengeMismatch
            | ErrorCode::LivenessFailed
            | ErrorCode::CounterNotIncreasing
            | ErrorCode::PassiveCheckMissing
            | ErrorCode::TooFewChallenges
            | ErrorCode::ModelNotAllowed
            | ErrorCode::MatchScoreTooLow
    )
}

fn replay(app: &App, row: IdempotencyRow) -> Response {
    app.metrics.idempotent_replay();
    json_response(StatusCode::CREATED, row.receipt)
}

fn idempotency_conflict() -> ApiError {
    ApiError::new(
        ErrorCode::IdempotencyConflict,
        "this idempotency key was used with a different request body",
    )
}

/// The parts of a well-formed pay request.
struct Parsed {
    key: String,
    request_hash: [u8; 32],
    payload_bytes: Vec<u8>,
    signature: Vec<u8>,
    payload: PaymentPayload,
}

/// Step 1 without the database: idempotency key, JSON, base64url, canonical decoding.
fn parse(
    headers: &HeaderMap,
    body: Result<JsonBody<PayRequest>, ApiError>,
) -> Result<Parsed, ApiError> {
    let key = headers
        .get(IDEMPOTENCY_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !valid_idempotency_key(key) {
        return Err(ApiError::new(
            ErrorCode::InvalidIdempotencyKey,
            "Idempotency-Key header missing or not 1..=255 visible ASCII characters",
        ));
    }
    let body = body?;
    let malformed = |e: facepay_core::checkout::error::ProtocolError| {
        let code = match e {
            facepay_core::checkout::error::ProtocolError::UnsupportedVersion(_) => {
                ErrorCode::UnsupportedProtocolVersion
            }
            _ => ErrorCode::MalformedPayload,
        };
        ApiError::new(code, e.to_string())
    };
    let payload_bytes = b64_decode("payload", &body.value.payload).map_err(malformed)?;
    let signature = b64_decode("signature", &body.value.signature).map_err(malformed)?;
    let payload = PaymentPayload::from_canonical_bytes(&payload_bytes).map_err(malformed)?;
    Ok(Parsed {
        key: key.to_owned(),
        request_hash: sha256(&body.raw),
        payload_bytes,
        signature,
        payload,
    })
}

async fn verify_and_record(
    app: &App,
    headers: &HeaderMap,
    body: Result<JsonBody<PayRequest>, ApiError>,
) -> Result<Response, ApiError> {
    // 1. Credentials first, then the request's shape.
    let parsed = match parse(headers, body) {
        Ok(parsed) => parsed,
        Err(e) => {
            client_order(app, headers).await?;
            return Err(e);
        }
    };
    let Parsed {
        key,
        request_hash,
        payload_bytes,
        signature,
        payload,
    } = &parsed;
    let token = bearer(headers).ok_or_else(unauthorized_client)?;
    let now = now_ms();
    let ctx = app
        .store
        .pay_context(
            &tokens::token_hash(token),
            &payload.device_id,
            &payload.nonce,
            key,
            now,
        )
        .await?
        .ok_or_else(unauthorized_client)?;
    if ctx.order.token_expires_at_ms <= now {
        return Err(unauthorized_client());
    }
    // 2. Lock-outs of the device, its account and the order.
    check_locks(&ctx.locks, now)?;
    // 3. Device registration.
    let Some(device) = ctx
        .device
        .as_ref()
        .filter(|d| d.merchant_id == ctx.order.merchant_id)
    else {
        return Err(ApiError::new(
            ErrorCode::UnknownDevice,
            "device is not registered with this merchant",
        ));
    };
    if device.revoked {
        return Err(revoked());
    }
    let checked = verify(
        app,
        &ctx,
        payload,
        payload_bytes,
        signature,
        device,
        request_hash,
        now,
    );
    let result = match checked {
        Ok(Verified::Replay(row)) => return Ok(replay(app, row)),
        Ok(Verified::Fresh) => {
            record(app, payload, payload_bytes, signature, key, request_hash).await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = &result {
        count_failure(app, e.code, &ctx, &payload.device_id, device, now).await;
    }
    result
}

/// Counts a rejection: a bad signature against the order (its client token's holder may name any device), the
/// device's own signed failures against the device and its account. The counters live in the database.
async fn count_failure(
    app: &App,
    code: ErrorCode,
    ctx: &PayContext,
    device_id: &str,
    device: &DeviceRow,
    now: i64,
) {
    let subjects = if code == ErrorCode::BadSignature {
        vec![Subject::Order {
            merchant_id: ctx.order.merchant_id.clone(),
            order_id: ctx.order.order_id.clone(),
        }]
    } else if counts_as_failure(code) {
        vec![
            Subject::Device(device_id.to_owned()),
            Subject::Account {
                merchant_id: device.merchant_id.clone(),
                account_id: device.account_id.clone(),
            },
        ]
    } else {
        return;
    };
    let device_rule: LockoutRule = app.config.lockout.into();
    for subject in subjects {
        // An account locks at twice a device's limit: one misbehaving device should not lock its siblings first.
        let rule = match subject {
            Subject::Account { .. } => LockoutRule {
                max_failures: device_rule.max_failures.saturating_mul(2),
                ..device_rule
            },
            _ => device_rule,
        };
        match app.store.record_failure(&subject, now, rule).await {
            Ok(Some(_)) => tracing::warn!(
                subject = subject.key(),
                "locked after repeated failed payment attempts"
            ),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "recording a failed attempt failed"),
        }
    }
}

/// What verification concluded.
enum Verified {
    /// Nothing stored yet for this key: record the payment.
    Fresh,
    /// The key was already used with this exact body: answer with the stored response.
    Replay(IdempotencyRow),
}

/// Steps 4–9 of the protocol's verification order.
#[allow(clippy::too_many_arguments)] // the verified parts of one request, each used once
fn verify(
    app: &App,
    ctx: &PayContext,
    payload: &PaymentPayload,
    payload_bytes: &[u8],
    signature: &[u8],
    device: &DeviceRow,
    request_hash: &[u8; 32],
    now: i64,
) -> Result<Verified, ApiError> {
    let order = &ctx.order;
    // 4. Signature, with the key registered for the payload's device.
    verify_signature(&device.public_key, payload_bytes, signature).map_err(|_| {
        ApiError::new(
            ErrorCode::BadSignature,
            "signature does not verify with the device's key",
        )
    })?;
    // 5. Idempotency.
    if let Some(row) = &ctx.idempotency {
        return if row.request_hash == request_hash {
            Ok(Verified::Replay(row.clone()))
        } else {
            Err(idempotency_conflict())
        };
    }
    // 6. The signed order is the client token's order.
    if payload.order != order_ref(order)? {
        return Err(ApiError::new(
            ErrorCode::OrderMismatch,
            "the signed order (id, amount, currency or items) differs from this order",
        ));
    }
    // 7. Nonce.
    let Some(nonce) = &ctx.nonce else {
        return Err(ApiError::new(
            ErrorCode::NonceUnknown,
            "this nonce was never issued",
        ));
    };
    let amount = i64::try_from(payload.order.amount_minor).unwrap_or(-1);
    if nonce.merchant_id != payload.order.merchant_id
        || nonce.order_id != payload.order.order_id
        || nonce.amount_minor != amount
        || nonce.currency != payload.order.currency
        || nonce.device_id != payload.device_id
    {
        return Err(ApiError::new(
            ErrorCode::NonceMismatch,
            "this nonce was issued for another merchant, order, amount, currency or device",
        ));
    }
    if nonce.used {
        return Err(ApiError::new(
            ErrorCode::NonceReused,
            "this nonce has already been used",
        ));
    }
    if nonce.expires_at_ms <= now {
        return Err(ApiError::new(
            ErrorCode::NonceExpired,
            "this nonce has expired; request a new challenge",
        ));
    }
    // 8. Evidence: the protocol's rules, then the server's policy.
    if payload.evidence.challenges
        != challenges_for_nonce_in(&payload.nonce, &app.config.challenge_set)
    {
        return Err(ApiError::new(
            ErrorCode::ChallengeMismatch,
            "the challenges performed are not this nonce's",
        ));
    }
    if payload.evidence.liveness != LivenessVerdict::Live {
        return Err(ApiError::new(
            ErrorCode::LivenessFailed,
            "the liveness verdict is not live",
        ));
    }
    app.config
        .policy
        .evidence
        .check(&payload.evidence)
        .map_err(|r| ApiError::new(r.code, r.message))?;
    // 9. Counter.
    let counter = i64::try_from(payload.counter)
        .map_err(|_| ApiError::new(ErrorCode::InvalidRequest, "counter exceeds 2^63-1"))?;
    if counter <= device.last_counter {
        return Err(ApiError::new(
            ErrorCode::CounterNotIncreasing,
            "counter is not greater than the device's last accepted counter",
        ));
    }
    if order.paid {
        return Err(ApiError::new(
            ErrorCode::OrderAlreadyPaid,
            "this order has already been paid",
        ));
    }
    Ok(Verified::Fresh)
}

/// Step 10: the one-transaction write, and the receipt.
async fn record(
    app: &App,
    payload: &PaymentPayload,
    payload_bytes: &[u8],
    signature: &[u8],
    key: &str,
    request_hash: &[u8; 32],
) -> Result<Response, ApiError> {
    let recorded_at_ms = now_ms();
    let payment_id = tokens::new_id("pay_");
    let receipt = Receipt {
        payment_id: payment_id.clone(),
        order_id: payload.order.order_id.clone(),
        amount_minor: payload.order.amount_minor,
        currency: payload.order.currency.clone(),
        status: PaymentStatus::Succeeded,
        recorded_at_ms: u64::try_from(recorded_at_ms).unwrap_or(0),
    };
    let response = serde_json::to_vec(&receipt).map_err(|e| {
        ApiError::new(
            ErrorCode::Internal,
            format!("cannot encode the receipt: {e}"),
        )
    })?;
    let new = NewPayment {
        payment_id: &payment_id,
        payload,
        payload_bytes,
        signature,
        recorded_at_ms,
        idempotency_key: key,
        request_hash,
        receipt: &response,
        idempotency_expires_at_ms: recorded_at_ms
            .saturating_add(millis(app.config.idempotency_ttl)),
    };
    match app.store.record_payment(&new).await {
        Ok(()) => {
            app.metrics.payment_recorded();
            tracing::info!(
                payment_id,
                merchant_id = payload.order.merchant_id,
                order_id = payload.order.order_id,
                device_id = payload.device_id,
                "payment recorded"
            );
            Ok(json_response(StatusCode::CREATED, response))
        }
        Err(e) => {
            // A concurrent request with the same key and body may have committed first: answer as it did.
            if !e.is_unavailable()
                && let Some(row) = app
                    .store
                    .idempotency(&payload.order.merchant_id, key, now_ms())
                    .await?
            {
                if row.request_hash == request_hash {
                    return Ok(replay(app, row));
                }
                return Err(idempotency_conflict());
            }
            Err(e.into())
        }
    }
}
