//! The JSON bodies of the merchant API after checkout (`Authorization: Bearer <merchant API key>`): reading orders
//! and payments, refunds, cancelling, fresh client tokens, the webhook endpoint and API key rotation. The contract
//! is `docs/openapi.yaml`.

use serde::{Deserialize, Serialize};

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Created, not paid, not cancelled.
    Open,
    /// Paid, nothing refunded.
    Paid,
    /// Paid, part of the amount refunded.
    PartiallyRefunded,
    /// Paid, the whole amount refunded.
    Refunded,
    /// Cancelled before payment.
    Cancelled,
}

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentState {
    /// Recorded, nothing refunded.
    Succeeded,
    /// Part of the amount refunded.
    PartiallyRefunded,
    /// The whole amount refunded.
    Refunded,
}

/// A recorded payment (`GET /v1/payments/{payment_id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// The server's payment id (`pay_…`).
    pub payment_id: String,
    /// The merchant's order id.
    pub order_id: String,
    /// Amount paid, minor units.
    pub amount_minor: u64,
    /// Amount refunded so far, minor units.
    pub amount_refunded_minor: u64,
    /// ISO 4217 code.
    pub currency: String,
    /// Status.
    pub status: PaymentState,
    /// The device that signed it.
    pub device_id: String,
    /// When it was recorded, Unix milliseconds.
    pub recorded_at_ms: u64,
}

/// An order (`GET /v1/orders/{order_id}`), with its payment once paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The merchant's order id.
    pub order_id: String,
    /// Amount, minor units.
    pub amount_minor: u64,
    /// ISO 4217 code.
    pub currency: String,
    /// Digits after the decimal point for this currency (ISO 4217 minor units: JPY 0, EUR 2, BHD 3); `null` for
    /// a code outside the server's table (only orders stored before the server checked currencies).
    pub currency_exponent: Option<u8>,
    /// SHA-256 of the merchant's item list, base64url.
    pub items_digest: String,
    /// Status.
    pub status: OrderStatus,
    /// When it was created, Unix milliseconds.
    pub created_at_ms: u64,
    /// The payment, once paid.
    pub payment: Option<Payment>,
}

/// A page of payments, newest first (`GET /v1/payments?limit=&starting_after=`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentList {
    /// The payments on this page.
    pub data: Vec<Payment>,
    /// Whether older payments follow; pass the last `payment_id` as `starting_after` for them.
    pub has_more: bool,
}

/// `POST /v1/payments/{payment_id}/refunds`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRefundRequest {
    /// Amount to refund, minor units; omitted: everything not yet refunded.
    #[serde(default)]
    pub amount_minor: Option<u64>,
    /// Free text for the merchant's records (at most 500 bytes).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Status of a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    /// Recorded.
    Succeeded,
}

/// A recorded refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// The refund id (`re_…`).
    pub refund_id: String,
    /// The refunded payment.
    pub payment_id: String,
    /// Amount refunded by this refund, minor units.
    pub amount_minor: u64,
    /// ISO 4217 code.
    pub currency: String,
    /// Status.
    pub status: RefundStatus,
    /// The merchant's reason, if given.
    pub reason: Option<String>,
    /// When it was recorded, Unix milliseconds.
    pub created_at_ms: u64,
}

/// Answer to `POST /v1/orders/{order_id}/client_token`: a new client token for an open order (the old one stops
/// working).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientToken {
    /// The order.
    pub order_id: String,
    /// Bearer token for this order's `/v1/checkout/*` calls.
    pub client_token: String,
    /// When it stops working, Unix milliseconds.
    pub expires_at_ms: u64,
}

/// `POST /v1/webhook_endpoint`: where the merchant's events go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetWebhookEndpointRequest {
    /// `https://…` (plain `http://` only for a loopback host).
    pub url: String,
}

/// The merchant's webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    /// Where events are POSTed.
    pub url: String,
    /// When the endpoint was first set, Unix milliseconds.
    pub created_at_ms: u64,
    /// How many signing secrets are valid now (2 during a rotation).
    pub active_secrets: u32,
    /// The signing secret (`whsec_…`), only in the answer that created it.
    pub secret: Option<String>,
}

/// `POST /v1/webhook_endpoint/rotate_secret` (and `POST /v1/api_keys/roll`): how long the current secret or key
/// stays valid beside the new one.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// Seconds the current one stays valid (0..=604800, default 86400).
    #[serde(default)]
    pub expire_current_after_s: Option<u64>,
}

/// Answer to `POST /v1/webhook_endpoint/rotate_secret`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotatedSecret {
    /// The new signing secret (shown only now).
    pub secret: String,
    /// When the previous secrets stop being used, Unix milliseconds.
    pub previous_expire_at_ms: u64,
}

/// A merchant API key as listed (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// The key's id (`key_…`).
    pub key_id: String,
    /// Creation time, Unix milliseconds.
    pub created_at_ms: u64,
    /// When it stops working (set by a rotation), Unix milliseconds.
    pub expires_at_ms: Option<u64>,
    /// When it was revoked, Unix milliseconds.
    pub revoked_at_ms: Option<u64>,
}

/// Answer to `GET /v1/api_keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyList {
    /// Every key of the merchant, newest first.
    pub data: Vec<ApiKey>,
}

/// Answer to `POST /v1/api_keys/roll`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewApiKey {
    /// The new key's id.
    pub key_id: String,
    /// The new secret key (`fpk_…`), shown only now.
    pub api_key: String,
    /// When the key used for this request stops working, Unix milliseconds.
    pub previous_expires_at_ms: u64,
}
