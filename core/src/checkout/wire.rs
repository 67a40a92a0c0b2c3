//! The JSON bodies of every checkout HTTP request and response (protocol `v1`), the one error shape with its
//! stable machine codes, and the base64url helpers they use. Shared by the client and `facepay-server`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::error::ProtocolError;
use super::protocol::{Challenge, OrderRef};

/// Header carrying the idempotency key of `POST /v1/checkout/pay` (1..=255 visible ASCII characters).
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";
/// Largest idempotency key length, in bytes.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// Encodes bytes as base64url without padding.
pub fn b64_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding; `field` names the value in the error.
pub fn b64_decode(field: &'static str, text: &str) -> Result<Vec<u8>, ProtocolError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|e| ProtocolError::InvalidBase64 {
            field,
            detail: format!(": {e}"),
        })
}

/// Decodes base64url without padding into exactly 32 bytes.
pub fn b64_decode_32(field: &'static str, text: &str) -> Result<[u8; 32], ProtocolError> {
    let bytes = b64_decode(field, text)?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| ProtocolError::InvalidBase64 {
        field,
        detail: format!(": decodes to {} bytes, expected 32", bytes.len()),
    })
}

/// Serde adapter: a `[u8; 32]` as a base64url string (use with `#[serde(with = "b64_32")]`).
pub mod b64_32 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    /// Serializes 32 bytes as base64url.
    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::b64_encode(bytes))
    }

    /// Deserializes base64url that must decode to exactly 32 bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        super::b64_decode_32("32-byte field", &text).map_err(D::Error::custom)
    }
}

/// `POST /v1/orders` (merchant backend, `Authorization: Bearer <merchant API key>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateOrderRequest {
    /// The merchant's own order id (unique per merchant).
    pub order_id: String,
    /// Amount in minor units.
    pub amount_minor: u64,
    /// ISO 4217 alphabetic code.
    pub currency: String,
    /// SHA-256 of the merchant's item list (base64url).
    #[serde(with = "b64_32")]
    pub items_digest: [u8; 32],
}

/// Answer to `POST /v1/orders`: the order and the per-order token the merchant hands to the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateOrderResponse {
    /// The order as the server stored it (merchant id filled in).
    pub order: OrderRef,
    /// Bearer token for this order's `/v1/checkout/*` calls; holds no merchant secret.
    pub client_token: String,
    /// When the client token stops working, Unix time in milliseconds.
    pub expires_at_ms: u64,
}

/// `POST /v1/enrollments` (merchant backend): lets one shopper account register a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEnrollmentRequest {
    /// The merchant's id for the shopper's account.
    pub account_id: String,
}

/// Answer to `POST /v1/enrollments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateEnrollmentResponse {
    /// Single-use token the app sends with `POST /v1/devices`.
    pub enrollment_token: String,
    /// The account the device will be bound to.
    pub account_id: String,
    /// When the token stops working, Unix time in milliseconds.
    pub expires_at_ms: u64,
}

/// `POST /v1/devices/challenge` (the app): a single-use registration challenge for this enrolment token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationChallengeRequest {
    /// Token from `POST /v1/enrollments`.
    pub enrollment_token: String,
}

/// Answer to `POST /v1/devices/challenge`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationChallengeResponse {
    /// 32 random bytes, base64url: signed by the device key (proof of possession) and attested.
    pub challenge: String,
    /// When the challenge stops working, Unix time in milliseconds.
    pub expires_at_ms: u64,
}

/// A platform's key or app attestation, sent with the registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case")]
pub enum DeviceAttestation {
    /// Android Key Attestation of the device key, generated with the registration challenge as its attestation
    /// challenge.
    AndroidKey {
        /// The key's certificate chain, leaf first, each DER certificate base64url.
        certificate_chain: Vec<String>,
    },
    /// Apple App Attest: an attestation of an App Attest key whose clientDataHash is SHA-256 of the registration
    /// message (see `protocol::registration_message`).
    AppleAppAttest {
        /// The App Attest key id (SHA-256 of its public key), base64url.
        key_id: String,
        /// The CBOR attestation object, base64url.
        attestation_object: String,
        /// The app's App ID (`TEAMID.bundle.id`).
        app_id: String,
    },
}

/// `POST /v1/devices` (the app): registers the device's public key, or re-keys the device id after a reinstall
/// (with a new enrolment token for the same account).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterDeviceRequest {
    /// Token from `POST /v1/enrollments`.
    pub enrollment_token: String,
    /// The device's id (chosen by the device, unique on the server).
    pub device_id: String,
    /// SEC1 uncompressed P-256 public key, 65 bytes, base64url.
    pub public_key: String,
    /// The registration challenge from `POST /v1/devices/challenge`, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge: Option<String>,
    /// Proof of possession: the device key's DER ECDSA signature of `protocol::registration_message`, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
    /// The platform's attestation, when it has one (the server's policy may require it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<DeviceAttestation>,
}

/// Answer to `POST /v1/devices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterDeviceResponse {
    /// The registered device's id.
    pub device_id: String,
    /// The shopper account it is bound to.
    pub account_id: String,
    /// Registration time, Unix time in milliseconds.
    pub registered_at_ms: u64,
}

/// One device in `GET /v1/accounts/{account_id}/devices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// The device id.
    pub device_id: String,
    /// When its current key was registered, Unix time in milliseconds.
    pub registered_at_ms: u64,
    /// When the merchant revoked it (absent while active).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at_ms: Option<u64>,
    /// What its registration proved: `none`, `android_key` or `apple_app_attest`.
    pub attestation: String,
    /// The attested key's security level (`software`, `tee`, `strong_box`), when attested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_level: Option<String>,
    /// The attested app (Android package or Apple App ID), when attested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
}

/// Answer to `GET /v1/accounts/{account_id}/devices` (the merchant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountDevices {
    /// The account.
    pub account_id: String,
    /// Its devices, oldest registration first.
    pub devices: Vec<DeviceInfo>,
}

/// Answer to `POST /v1/devices/{device_id}/revoke` (the merchant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeDeviceResponse {
    /// The device.
    pub device_id: String,
    /// When it was revoked (the first revocation's time if it already was), Unix time in milliseconds.
    pub revoked_at_ms: u64,
}

/// `POST /v1/checkout/challenge` (the app, `Authorization: Bearer <client_token>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    /// The device that will pay.
    pub device_id: String,
}

/// Answer to `POST /v1/checkout/challenge`: the nonce to sign and the challenges to perform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeResponse {
    /// 32 random bytes, single use, base64url.
    #[serde(with = "b64_32")]
    pub nonce: [u8; 32],
    /// When the nonce expires, Unix time in milliseconds.
    pub expires_at_ms: u64,
    /// The liveness challenges, equal to `challenges_for_nonce(nonce)`.
    pub challenges: Vec<Challenge>,
    /// The order the nonce is bound to: the device signs exactly this.
    pub order: OrderRef,
}

/// `POST /v1/checkout/pay` (the app, `Authorization: Bearer <client_token>`, `Idempotency-Key` header).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayRequest {
    /// The canonical payload bytes, base64url.
    pub payload: String,
    /// ASN.1 DER ECDSA P-256 SHA-256 signature of those bytes, base64url.
    pub signature: String,
}

/// Status of a recorded payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Verified and recorded: the merchant may ship.
    Succeeded,
}

/// Answer to `POST /v1/checkout/pay`: the receipt (replayed unchanged for a retried idempotency key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The server's payment id.
    pub payment_id: String,
    /// The merchant's order id.
    pub order_id: String,
    /// Amount in minor units.
    pub amount_minor: u64,
    /// ISO 4217 code.
    pub currency: String,
    /// Payment status.
    pub status: PaymentStatus,
    /// When the payment was recorded, Unix time in milliseconds.
    pub recorded_at_ms: u64,
}

/// Answer to `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `"ok"` when the database answers.
    pub status: String,
    /// `"sqlite"` or `"postgres"`.
    pub backend: String,
    /// The protocol version served.
    pub protocol: String,
}

/// The stable machine code of every rejection; the JSON value is the snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum ErrorCode {
    /// 400: the body is not valid JSON, or lacks / mistypes a field.
    MalformedJson,
    /// 400: a field is well-formed JSON but invalid (length, currency, base64url, key shape…).
    InvalidRequest,
    /// 400: the `payload` bytes are not a valid canonical payload.
    MalformedPayload,
    /// 400: the payload is of another protocol version (e.g. a `v1` payload sent to a `v2` server).
    UnsupportedProtocolVersion,
    /// 400: `Idempotency-Key` header missing or not 1..=255 visible ASCII characters.
    InvalidIdempotencyKey,
    /// 401: missing or wrong bearer credential (merchant API key, client token).
    Unauthorized,
    /// 404: no such route, or no such object for this merchant.
    NotFound,
    /// 405: the route exists but not for this method.
    MethodNotAllowed,
    /// 413: the body exceeds the server's size limit.
    PayloadTooLarge,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 409: the merchant already has an order with this id.
    OrderExists,
    /// 409: the order has already been paid.
    OrderAlreadyPaid,
    /// 401: the enrolment token is unknown, used or expired.
    InvalidEnrollmentToken,
    /// 409: the device id is registered with a different key or account.
    DeviceExists,
    /// 403: the device id is not registered (or not bound to the order's merchant).
    UnknownDevice,
    /// 403: the signature does not verify with the registered key of the payload's device.
    BadSignature,
    /// 429: too many failed payment attempts from this device; retry after the lock-out window.
    DeviceLocked,
    /// 403: the nonce was never issued.
    NonceUnknown,
    /// 403: the nonce's time to live has passed.
    NonceExpired,
    /// 409: the nonce has already been used by a payment.
    NonceReused,
    /// 403: the nonce was issued for another merchant, order, amount, currency or device.
    NonceMismatch,
    /// 403: the signed order differs from the order of the client token (e.g. amount or currency changed).
    OrderMismatch,
    /// 409: the counter is not greater than the device's last accepted counter.
    CounterNotIncreasing,
    /// 403: the evidence's challenges differ from those derived from the nonce.
    ChallengeMismatch,
    /// 403: the evidence's liveness verdict is not `live`.
    LivenessFailed,
    /// 409: the idempotency key was used with a different request body.
    IdempotencyConflict,
    /// 409: a request with this idempotency key is still being processed.
    IdempotencyInProgress,
    /// 409: the order was cancelled; it cannot be paid (or cancelled again).
    OrderCancelled,
    /// 409: the refund would take the payment's refunded total above its amount.
    RefundExceedsRemaining,
    /// 400: the public key is not a valid (on-curve) P-256 point.
    InvalidPublicKey,
    /// 403: the registration challenge is missing, unknown, used, expired or for another enrolment token.
    RegistrationChallengeInvalid,
    /// 403: the proof of possession is missing or is not the key's signature over the registration message.
    ProofInvalid,
    /// 403: the server's policy requires key or app attestation and none was sent.
    AttestationRequired,
    /// 403: the attestation is broken (malformed, chain, signature, validity, challenge or key mismatch).
    AttestationInvalid,
    /// 403: the attestation is valid but the policy refuses it (security level, app, boot state, environment).
    AttestationRejected,
    /// 409: the account already has the policy's maximum of active devices.
    DeviceLimitReached,
    /// 403: the merchant revoked this device.
    DeviceRevoked,
    /// 403: the evidence lacks the passive anti-spoof score the policy requires.
    PassiveCheckMissing,
    /// 403: the evidence lists fewer liveness challenges than the policy requires.
    TooFewChallenges,
    /// 403: the evidence names a model version not on the policy's allow-list.
    ModelNotAllowed,
    /// 403: the match score is below the policy's minimum.
    MatchScoreTooLow,
    /// 429: too many failed payment attempts for this account; retry after the lock-out (`Retry-After`).
    AccountLocked,
    /// 429: too many bad signatures with this order's client token; retry after the lock-out (`Retry-After`).
    OrderLocked,
    /// 429: too many outstanding challenges for this device, order or enrolment token (`Retry-After`).
    RateLimited,
    /// 408: the request did not arrive completely within the server's request timeout.
    RequestTimeout,
    /// 500: the server failed; nothing was recorded.
    Internal,
    /// 503: the server is shutting down or its database is unavailable.
    Unavailable,
}

impl ErrorCode {
    /// The HTTP status the server answers with for this code.
    pub fn http_status(self) -> u16 {
        use ErrorCode::*;
        match self {
            MalformedJson
            | InvalidRequest
            | MalformedPayload
            | UnsupportedProtocolVersion
            | InvalidIdempotencyKey
            | InvalidPublicKey => 400,
            Unauthorized | InvalidEnrollmentToken => 401,
            UnknownDevice
            | BadSignature
            | NonceUnknown
            | NonceExpired
            | NonceMismatch
            | OrderMismatch
            | ChallengeMismatch
            | LivenessFailed
            | RegistrationChallengeInvalid
            | ProofInvalid
            | AttestationRequired
            | AttestationInvalid
            | AttestationRejected
            | DeviceRevoked
            | PassiveCheckMissing
            | TooFewChallenges
            | ModelNotAllowed
            | MatchScoreTooLow => 403,
            RequestTimeout => 408,
            NotFound => 404,
            MethodNotAllowed => 405,
            OrderExists
            | OrderAlreadyPaid
            | DeviceExists
            | NonceReused
            | CounterNotIncreasing
            | IdempotencyConflict
            | IdempotencyInProgress
            | OrderCancelled
            | RefundExceedsRemaining
            | DeviceLimitReached => 409,
            PayloadTooLarge => 413,
            UnsupportedMediaType => 415,
            DeviceLocked | AccountLocked | OrderLocked | RateLimited => 429,
            Internal => 500,
            Unavailable => 503,
        }
    }

    /// Whether a client may retry the same request (same idempotency key) and expect a different outcome.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorCode::Internal | ErrorCode::Unavailable | ErrorCode::IdempotencyInProgress
        )
    }

    /// The snake_case name, as it appears in JSON.
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            MalformedJson => "malformed_json",
            InvalidRequest => "invalid_request",
            MalformedPayload => "malformed_payload",
            UnsupportedProtocolVersion => "unsupported_protocol_version",
            InvalidIdempotencyKey => "invalid_idempotency_key",
            Unauthorized => "unauthorized",
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            PayloadTooLarge => "payload_too_large",
            UnsupportedMediaType => "unsupported_media_type",
            OrderExists => "order_exists",
            OrderAlreadyPaid => "order_already_paid",
            InvalidEnrollmentToken => "invalid_enrollment_token",
            DeviceExists => "device_exists",
            UnknownDevice => "unknown_device",
            BadSignature => "bad_signature",
            DeviceLocked => "device_locked",
            NonceUnknown => "nonce_unknown",
            NonceExpired => "nonce_expired",
            NonceReused => "nonce_reused",
            NonceMismatch => "nonce_mismatch",
            OrderMismatch => "order_mismatch",
            CounterNotIncreasing => "counter_not_increasing",
            ChallengeMismatch => "challenge_mismatch",
            LivenessFailed => "liveness_failed",
            IdempotencyConflict => "idempotency_conflict",
            IdempotencyInProgress => "idempotency_in_progress",
            OrderCancelled => "order_cancelled",
            RefundExceedsRemaining => "refund_exceeds_remaining",
            InvalidPublicKey => "invalid_public_key",
            RegistrationChallengeInvalid => "registration_challenge_invalid",
            ProofInvalid => "proof_invalid",
            AttestationRequired => "attestation_required",
            AttestationInvalid => "attestation_invalid",
            AttestationRejected => "attestation_rejected",
            DeviceLimitReached => "device_limit_reached",
            DeviceRevoked => "device_revoked",
            PassiveCheckMissing => "passive_check_missing",
            TooFewChallenges => "too_few_challenges",
            ModelNotAllowed => "model_not_allowed",
            MatchScoreTooLow => "match_score_too_low",
            AccountLocked => "account_locked",
            OrderLocked => "order_locked",
            RateLimited => "rate_limited",
            RequestTimeout => "request_timeout",
            Internal => "internal",
            Unavailable => "unavailable",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one error shape: `{"error": {"code": "nonce_reused", "message": "…"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable machine code.
    pub code: ErrorCode,
    /// Human-readable explanation (not stable; do not parse).
    pub message: String,
}

impl ErrorBody {
    /// Builds an error body.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code,
                message: message.into(),
            },
        }
    }
}

/// Checks an `Idempotency-Key` value: 1..=255 visible ASCII characters.
pub fn valid_idempotency_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_IDEMPOTENCY_KEY_LEN
        && key.bytes().all(|b| b.is_ascii_graphic())
}
