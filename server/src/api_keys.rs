//! Merchant API keys: `POST /v1/api_keys/roll` (a new key; the key making the request stays valid for the grace
//! period, default 24 hours, so deployments switch without downtime), `GET /v1/api_keys` (ids and dates, never the
//! keys) and `POST /v1/api_keys/{key_id}/revoke` (stops a key at once; the merchant's last valid key cannot be
//! revoked, so a merchant never locks itself out).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use facepay_core::checkout::merchant::{ApiKey, ApiKeyList, NewApiKey, RotateRequest};
use facepay_core::checkout::wire::ErrorCode;

use crate::api::merchant_key;
use crate::app::{App, now_ms};
use crate::error::ApiError;
use crate::http::JsonBody;
use crate::idempotency::{Begin, Idempotency};
use crate::reads::path_param;
use crate::refunds::to_body;
use crate::store::Store;
use crate::store::api_keys::ApiKeyRow;
use crate::store::transaction::Step;
use crate::tokens::{self, API_KEY_PREFIX};
use crate::webhook_endpoint::grace_ms;

fn key_view(k: ApiKeyRow) -> ApiKey {
    let ms = |v: i64| u64::try_from(v).unwrap_or(0);
    ApiKey {
        key_id: k.key_id,
        created_at_ms: ms(k.created_at_ms),
        expires_at_ms: k.expires_at_ms.map(ms),
        revoked_at_ms: k.revoked_at_ms.map(ms),
    }
}

/// The merchant's key `key_id`.
async fn find_key(
    app: &App,
    merchant_id: &str,
    key_id: &str,
) -> Result<Option<ApiKeyRow>, ApiError> {
    Ok(app
        .store
        .api_keys(merchant_id)
        .await?
        .into_iter()
        .find(|k| k.key_id == key_id))
}

/// `POST /v1/api_keys/roll`.
pub async fn roll(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<JsonBody<RotateRequest>, ApiError>,
) -> Result<Response, ApiError> {
    let owner = merchant_key(&app, &headers).await?;
    let body = body?;
    let scope = format!("merchant:{}", owner.merchant_id);
    let idem = match Idempotency::begin(&app, &headers, scope, "POST /v1/api_keys/roll", &body.raw)
        .await?
    {
        Begin::Replay(response) => return Ok(response),
        Begin::Fresh(idem) => idem,
    };
    let now = now_ms();
    let previous_expires_at = now.saturating_add(grace_ms(&body.value)?);
    let key_id = tokens::new_id("key_");
    let api_key = tokens::new_token(API_KEY_PREFIX);
    let steps = vec![
        Store::expire_api_key_step(&owner.merchant_id, &owner.key_id, previous_expires_at),
        Step::any(Store::api_key_insert(
            &owner.merchant_id,
            &key_id,
            &tokens::token_hash(&api_key),
            now,
        )),
    ];
    let response = to_body(&NewApiKey {
        key_id,
        api_key,
        previous_expires_at_ms: u64::try_from(previous_expires_at).unwrap_or(0),
    })?;
    tracing::info!(merchant_id = owner.merchant_id, "API key rolled");
    idem.commit(&app, steps, StatusCode::CREATED, response)
        .await
}

/// `GET /v1/api_keys`.
pub async fn list(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let owner = merchant_key(&app, &headers).await?;
    let data = app
        .store
        .api_keys(&owner.merchant_id)
        .await?
        .into_iter()
        .map(key_view)
        .collect();
    Ok(Json(ApiKeyList { data }).into_response())
}

/// `POST /v1/api_keys/{key_id}/revoke`.
pub async fn revoke(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let owner = merchant_key(&app, &headers).await?;
    let key_id = path_param(path)?;
    let scope = format!("merchant:{}", owner.merchant_id);
    let route = "POST /v1/api_keys/{key_id}/revoke";
    let idem = match Idempotency::begin(&app, &headers, scope, route, key_id.as_bytes()).await? {
        Begin::Replay(response) => return Ok(response),
        Begin::Fresh(idem) => idem,
    };
    let now = now_ms();
    if !app
        .store
        .revoke_api_key(&owner.merchant_id, &key_id, now)
        .await?
    {
        let known = find_key(&app, &owner.merchant_id, &key_id).await?;
        return Err(match known {
            None => ApiError::new(ErrorCode::NotFound, "no such API key for this merchant"),
            Some(k) if k.revoked_at_ms.is_some() => {
                ApiError::new(ErrorCode::InvalidRequest, "this API key is already revoked")
            }
            Some(_) => ApiError::new(
                ErrorCode::InvalidRequest,
                "this is the merchant's only valid API key; roll a new one first",
            ),
        });
    }
    tracing::info!(merchant_id = owner.merchant_id, key_id, "API key revoked");
    let key = find_key(&app, &owner.merchant_id, &key_id)
        .await?
        .map(key_view)
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "the revoked key vanished"))?;
    Ok(idem
        .record_after(&app, StatusCode::OK, to_body(&key)?)
        .await)
}
