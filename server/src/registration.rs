//! Device registration and lifecycle: the single-use registration challenge, proof of possession of the device key
//! (a valid P-256 point whose signature over the challenge verifies), the optional key / app attestation checked
//! against the policy, re-registration with a new key after a reinstall, the per-account device limit, and the
//! merchant's device list and revocation.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use facepay_core::checkout::protocol::{
    check_id, check_public_key, registration_message, verify_signature,
};
use facepay_core::checkout::wire::{
    AccountDevices, DeviceAttestation, DeviceInfo, ErrorCode, RegisterDeviceRequest,
    RegisterDeviceResponse, RegistrationChallengeRequest, RegistrationChallengeResponse,
    RevokeDeviceResponse, b64_decode, b64_encode,
};

use crate::api::merchant;
use crate::app::{App, millis, now_ms};
use crate::attestation::{AttestationError, SecurityLevel, android, apple};
use crate::error::ApiError;
use crate::http::JsonBody;
use crate::store::{DeviceTrust, NewDevice};
use crate::tokens;

fn invalid(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, e.to_string())
}

/// `POST /v1/devices/challenge`: a single-use challenge for one registration with this enrolment token.
pub async fn challenge(
    State(app): State<Arc<App>>,
    body: Result<JsonBody<RegistrationChallengeRequest>, ApiError>,
) -> Result<Response, ApiError> {
    let req = body?.value;
    let now = now_ms();
    let challenge = tokens::random_bytes::<32>();
    let expires_at_ms = now.saturating_add(millis(app.config.nonce_ttl));
    app.store
        .insert_registration_challenge(
            &challenge,
            &tokens::token_hash(&req.enrollment_token),
            expires_at_ms,
            now,
            app.config.limits.registration_challenges_per_token,
        )
        .await?;
    let response = RegistrationChallengeResponse {
        challenge: b64_encode(&challenge),
        expires_at_ms: u64::try_from(expires_at_ms).unwrap_or(0),
    };
    Ok((StatusCode::CREATED, Json(response)).into_response())
}

/// `POST /v1/devices`: registers (or, after a reinstall, re-keys) a device.
pub async fn register(
    State(app): State<Arc<App>>,
    body: Result<JsonBody<RegisterDeviceRequest>, ApiError>,
) -> Result<Response, ApiError> {
    let req = body?.value;
    check_id("device_id", &req.device_id).map_err(invalid)?;
    let public_key = b64_decode("public_key", &req.public_key).map_err(invalid)?;
    check_public_key(&public_key).map_err(|e| ApiError::new(ErrorCode::InvalidPublicKey, e.to_string()))?;
    let challenge = req
        .challenge
        .as_deref()
        .and_then(|c| b64_decode("challenge", c).ok())
        .and_then(|c| <[u8; 32]>::try_from(c).ok())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::RegistrationChallengeInvalid,
                "challenge missing or not 32 base64url bytes; get one from POST /v1/devices/challenge",
            )
        })?;
    let message = registration_message(&challenge, &req.device_id, &public_key);
    let proof_ok = req
        .proof
        .as_deref()
        .and_then(|p| b64_decode("proof", p).ok())
        .is_some_and(|proof| verify_signature(&public_key, &message, &proof).is_ok());
    if !proof_ok {
        return Err(ApiError::new(
            ErrorCode::ProofInvalid,
            "proof missing, or not a signature by this public key over the registration challenge",
        ));
    }
    let trust = match &req.attestation {
        Some(attestation) => verify_attestation(&app, attestation, &challenge, &message, &public_key)?,
        None if app.config.policy.attestation.required => {
            return Err(ApiError::new(
                ErrorCode::AttestationRequired,
                "this server requires key or app attestation at registration",
            ));
        }
        None => DeviceTrust::default(),
    };
    let now = now_ms();
    let device = NewDevice {
        device_id: &req.device_id,
        public_key: &public_key,
        trust: &trust,
    };
    let registered = app
        .store
        .register_device(
            &tokens::token_hash(&req.enrollment_token),
            &challenge,
            &device,
            now,
            app.config.policy.devices.max_per_account,
        )
        .await?;
    tracing::info!(
        device_id = req.device_id,
        account_id = registered.account_id,
        attestation = trust.attestation,
        rekeyed = registered.rekeyed,
        "device registered"
    );
    let response = RegisterDeviceResponse {
        device_id: req.device_id,
        account_id: registered.account_id,
        registered_at_ms: u64::try_from(now).unwrap_or(0),
    };
    Ok((StatusCode::CREATED, Json(response)).into_response())
}

/// Maps a refused attestation to its stable code: broken evidence vs evidence the policy does not accept.
fn attestation_error(e: &AttestationError) -> ApiError {
    let code = if e.is_invalid_evidence() {
        ErrorCode::AttestationInvalid
    } else {
        ErrorCode::AttestationRejected
    };
    ApiError::new(code, format!("{}: {e}", e.reason()))
}

/// Verifies the attestation at the current time against the policy; returns what it proved.
fn verify_attestation(
    app: &App,
    attestation: &DeviceAttestation,
    challenge: &[u8; 32],
    message: &[u8],
    public_key: &[u8],
) -> Result<DeviceTrust, ApiError> {
    let policy = &app.config.policy.attestation;
    let now_secs = now_ms() / 1000;
    match attestation {
        DeviceAttestation::AndroidKey { certificate_chain } => {
            let chain = certificate_chain
                .iter()
                .map(|c| b64_decode("certificate_chain", c))
                .collect::<Result<Vec<_>, _>>()
                .map_err(invalid)?;
            let requirements = android::AndroidRequirements {
                min_level: policy.min_security_level,
                apps: &policy.android_apps,
                require_verified_boot: policy.require_verified_boot,
            };
            let attested = android::verify(
                &chain,
                &app.roots.android,
                challenge,
                Some(public_key),
                &requirements,
                now_secs,
            )
            .map_err(|e| attestation_error(&e))?;
            Ok(DeviceTrust {
                attestation: "android_key",
                security_level: Some(attested.security_level.min(attested.keymaster_level)),
                app_id: attested.packages.first().cloned(),
                app_attest_key: None,
            })
        }
        DeviceAttestation::AppleAppAttest {
            key_id,
            attestation_object,
            app_id,
        } => {
            let key_id = b64_decode("key_id", key_id).map_err(invalid)?;
            let object = b64_decode("attestation_object", attestation_object).map_err(invalid)?;
            let requirements = apple::AppleRequirements {
                app_ids: &policy.apple_app_ids,
                allow_development: policy.allow_apple_development,
            };
            let attested = apple::verify_attestation(
                &object,
                &key_id,
                message,
                app_id,
                &app.roots.apple,
                &requirements,
                now_secs,
            )
            .map_err(|e| attestation_error(&e))?;
            if SecurityLevel::StrongBox < policy.min_security_level {
                return Err(attestation_error(&AttestationError::SecurityLevel {
                    found: SecurityLevel::StrongBox.as_str(),
                    required: policy.min_security_level.as_str(),
                }));
            }
            Ok(DeviceTrust {
                attestation: "apple_app_attest",
                security_level: Some(SecurityLevel::StrongBox),
                app_id: Some(attested.app_id),
                app_attest_key: Some(attested.public_key),
            })
        }
    }
}

/// `GET /v1/accounts/{account_id}/devices` (merchant): the account's devices, revoked ones included.
pub async fn list(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(account_id): Path<String>,
) -> Result<Response, ApiError> {
    let merchant_id = merchant(&app, &headers).await?;
    check_id("account_id", &account_id).map_err(invalid)?;
    let rows = app.store.account_devices(&merchant_id, &account_id).await?;
    let devices = rows
        .into_iter()
        .map(|d| DeviceInfo {
            device_id: d.device_id,
            registered_at_ms: u64::try_from(d.registered_at_ms).unwrap_or(0),
            revoked_at_ms: d.revoked_at_ms.and_then(|t| u64::try_from(t).ok()),
            attestation: d.attestation,
            security_level: d.security_level,
            app_id: d.app_id,
        })
        .collect();
    Ok(Json(AccountDevices {
        account_id,
        devices,
    })
    .into_response())
}

/// `POST /v1/devices/{device_id}/revoke` (merchant): the device's next challenge and payment are refused.
pub async fn revoke(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(device_id): Path<String>,
) -> Result<Response, ApiError> {
    let merchant_id = merchant(&app, &headers).await?;
    check_id("device_id", &device_id).map_err(invalid)?;
    let now = now_ms();
    let revoked_at_ms = app
        .store
        .revoke_device(&merchant_id, &device_id, now)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                "this merchant has no device with this id",
            )
        })?;
    tracing::info!(device_id, merchant_id, "device revoked");
    Ok(Json(RevokeDeviceResponse {
        device_id,
        revoked_at_ms: u64::try_from(revoked_at_ms).unwrap_or(0),
    })
    .into_response())
}
