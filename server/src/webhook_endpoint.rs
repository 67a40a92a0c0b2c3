//! `POST /v1/webhook_endpoint` (set the URL; the first call creates the signing secret and shows it once),
//! `GET /v1/webhook_endpoint`, and `POST /v1/webhook_endpoint/rotate_secret` (a new secret; the current ones stay
//! valid for the grace period, so deliveries carry a signature for each and receivers switch without a gap).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use facepay_core::checkout::merchant::{
    RotateRequest, RotatedSecret, SetWebhookEndpointRequest, WebhookEndpoint,
};
use facepay_core::checkout::webhook::SECRET_PREFIX;
use facepay_core::checkout::wire::ErrorCode;

use crate::api::merchant;
use crate::app::{App, now_ms};
use crate::error::ApiError;
use crate::http::JsonBody;
use crate::idempotency::{Begin, Idempotency};
use crate::reads::no_such;
use crate::refunds::to_body;
use crate::store::Store;
use crate::tokens;

/// Longest endpoint URL, bytes.
pub const MAX_URL_LEN: usize = 2048;
/// Longest grace period of a rotation: 7 days.
pub const MAX_GRACE_S: u64 = 7 * 86_400;
/// Grace period when none is given: 24 hours.
pub const DEFAULT_GRACE_S: u64 = 86_400;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
}

/// Checks an endpoint URL: `https://host…`, or `http://` to a loopback host (tests, local development); returns
/// it normalised.
pub fn check_url(url: &str) -> Result<String, ApiError> {
    if url.len() > MAX_URL_LEN {
        return Err(invalid(format!("url is longer than {MAX_URL_LEN} bytes")));
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| invalid(format!("url: {e}")))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| invalid("url has no host"))?;
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => Ok(parsed.into()),
        "http" if loopback => Ok(parsed.into()),
        _ => Err(invalid(
            "url must be https:// (http:// only for a loopback host)",
        )),
    }
}

/// The grace period of a rotation request, in milliseconds.
pub fn grace_ms(req: &RotateRequest) -> Result<i64, ApiError> {
    let grace = req.expire_current_after_s.unwrap_or(DEFAULT_GRACE_S);
    if grace > MAX_GRACE_S {
        return Err(invalid(format!(
            "expire_current_after_s must be at most {MAX_GRACE_S}"
        )));
    }
    Ok(i64::try_from(grace).unwrap_or(0) * 1000)
}

/// `POST /v1/webhook_endpoint`.
pub async fn set_endpoint(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<JsonBody<SetWebhookEndpointRequest>, ApiError>,
) -> Result<Response, ApiError> {
    let merchant_id = merchant(&app, &headers).await?;
    let body = body?;
    let scope = format!("merchant:{merchant_id}");
    let idem = match Idempotency::begin(
        &app,
        &headers,
        scope,
        "POST /v1/webhook_endpoint",
        &body.raw,
    )
    .await?
    {
        Begin::Replay(response) => return Ok(response),
        Begin::Fresh(idem) => idem,
    };
    let url = check_url(&body.value.url)?;
    let now = now_ms();
    let existing = app.store.webhook_endpoint(&merchant_id, now).await?;
    let mut steps = vec![Store::set_endpoint_step(&merchant_id, &url, now)];
    let (created_at_ms, active_secrets, secret) = match existing {
        Some(e) if e.active_secrets > 0 => (e.created_at_ms, e.active_secrets, None),
        other => {
            let secret = tokens::new_token(SECRET_PREFIX);
            steps.extend(Store::add_secret_steps(&merchant_id, &secret, now, now));
            (other.map_or(now, |e| e.created_at_ms), 1, Some(secret))
        }
    };
    let response = to_body(&WebhookEndpoint {
        url,
        created_at_ms: u64::try_from(created_at_ms).unwrap_or(0),
        active_secrets: u32::try_from(active_secrets).unwrap_or(0),
        secret,
    })?;
    idem.commit(&app, steps, StatusCode::OK, response).await
}

/// `GET /v1/webhook_endpoint`.
pub async fn get_endpoint(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let merchant_id = merchant(&app, &headers).await?;
    let e = app
        .store
        .webhook_endpoint(&merchant_id, now_ms())
        .await?
        .ok_or_else(|| no_such("webhook endpoint"))?;
    Ok(Json(WebhookEndpoint {
        url: e.url,
        created_at_ms: u64::try_from(e.created_at_ms).unwrap_or(0),
        active_secrets: u32::try_from(e.active_secrets).unwrap_or(0),
        secret: None,
    })
    .into_response())
}

/// `POST /v1/webhook_endpoint/rotate_secret`.
pub async fn rotate_secret(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<JsonBody<RotateRequest>, ApiError>,
) -> Result<Response, ApiError> {
    let merchant_id = merchant(&app, &headers).await?;
    let body = body?;
    let scope = format!("merchant:{merchant_id}");
    let route = "POST /v1/webhook_endpoint/rotate_secret";
    let idem = match Idempotency::begin(&app, &headers, scope, route, &body.raw).await? {
        Begin::Replay(response) => return Ok(response),
        Begin::Fresh(idem) => idem,
    };
    let now = now_ms();
    let previous_expire_at = now.saturating_add(grace_ms(&body.value)?);
    if app
        .store
        .webhook_endpoint(&merchant_id, now)
        .await?
        .is_none()
    {
        return Err(no_such("webhook endpoint"));
    }
    let secret = tokens::new_token(SECRET_PREFIX);
    let steps = Store::add_secret_steps(&merchant_id, &secret, now, previous_expire_at);
    let response = to_body(&RotatedSecret {
        secret,
        previous_expire_at_ms: u64::try_from(previous_expire_at).unwrap_or(0),
    })?;
    idem.commit(&app, steps, StatusCode::CREATED, response)
        .await
}
