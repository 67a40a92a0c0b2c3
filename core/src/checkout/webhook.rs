//! Signed webhooks: the `FacePay-Signature` header the server sends with every event, and the verifier a
//! merchant's backend runs on each delivery before trusting it.
//!
//! The header is `t=<unix seconds>,v1=<hex HMAC-SHA256>[,v1=<hex>…]`. Each `v1` is the HMAC-SHA256, keyed with one
//! of the endpoint's secrets (the whole `whsec_…` string as bytes), of `"<t>.<raw body>"`. During a secret rotation
//! the server signs with every secret still valid, so the header carries one `v1` per secret and a receiver holding
//! either the old or the new secret verifies. A receiver rejects a timestamp further than its tolerance from its
//! own clock (default [`DEFAULT_TOLERANCE`], 5 minutes) to limit replays, and de-duplicates by the event's `id`
//! (delivery is at least once).
//!
//! ```
//! use facepay_core::checkout::webhook::{DEFAULT_TOLERANCE, construct_event, signature_header};
//!
//! let secret = "whsec_test";
//! let body = br#"{"id":"evt_1","type":"payment.succeeded","created_at_ms":1767225600000,"merchant_id":"m_1","data":{}}"#;
//! let header = signature_header(&[secret], 1_767_225_600, body);
//! // On the receiving side: the raw body bytes, the header value, the secret and the current time.
//! let event = construct_event(body, &header, secret, 1_767_225_630, DEFAULT_TOLERANCE).unwrap();
//! assert_eq!(event.id, "evt_1");
//! assert!(construct_event(body, &header, "whsec_other", 1_767_225_630, DEFAULT_TOLERANCE).is_err());
//! ```

use std::time::Duration;

use ring::hmac;
use serde::{Deserialize, Serialize};

/// The HTTP header carrying the signatures.
pub const SIGNATURE_HEADER: &str = "FacePay-Signature";
/// How far a delivery's timestamp may be from the receiver's clock, by default: 5 minutes.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);
/// Prefix of webhook signing secrets.
pub const SECRET_PREFIX: &str = "whsec_";

/// Why a delivery was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The header is not `t=<unix>,v1=<hex>…`.
    #[error("malformed {SIGNATURE_HEADER} header: {0}")]
    MalformedHeader(&'static str),
    /// The timestamp is further from now than the tolerance (a replay, or a badly wrong clock).
    #[error(
        "timestamp {timestamp} is {skew_s} s from now, more than the {tolerance_s} s tolerance"
    )]
    OutsideTolerance {
        /// The header's timestamp (Unix seconds).
        timestamp: u64,
        /// Distance from the receiver's clock, seconds.
        skew_s: u64,
        /// The tolerance, seconds.
        tolerance_s: u64,
    },
    /// No `v1` signature matches this secret.
    #[error("no v1 signature matches the secret")]
    NoMatchingSignature,
    /// The signed body is not an event.
    #[error("the body is not a FacePay event: {0}")]
    InvalidEvent(String),
}

/// The kinds of event the server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// A payment was verified and recorded (`data`: the receipt).
    #[serde(rename = "payment.succeeded")]
    PaymentSucceeded,
    /// A refund was recorded (`data`: the refund).
    #[serde(rename = "refund.succeeded")]
    RefundSucceeded,
    /// An order was cancelled before payment (`data`: the order).
    #[serde(rename = "order.cancelled")]
    OrderCancelled,
}

impl EventType {
    /// The name used in JSON (`payment.succeeded`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::PaymentSucceeded => "payment.succeeded",
            EventType::RefundSucceeded => "refund.succeeded",
            EventType::OrderCancelled => "order.cancelled",
        }
    }
}

/// A webhook event, as delivered (the request body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique event id (`evt_…`): the same on every delivery attempt of this event, so receivers de-duplicate.
    pub id: String,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// When it happened (the state change's commit time), Unix milliseconds.
    pub created_at_ms: u64,
    /// The merchant the event belongs to.
    pub merchant_id: String,
    /// The object: a receipt, a refund or an order.
    pub data: serde_json::Value,
}

/// Lower-case hex of the HMAC-SHA256 of `"<timestamp>.<body>"` keyed with `secret`.
pub fn sign(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, &signed_bytes(timestamp, body));
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The header value for `body` signed at `timestamp` with each of `secrets` (one `v1` each).
pub fn signature_header(secrets: &[&str], timestamp: u64, body: &[u8]) -> String {
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        header.push_str(",v1=");
        header.push_str(&sign(secret, timestamp, body));
    }
    header
}

/// Checks a delivery: the header parses, its timestamp is within `tolerance` of `now_unix`, and one of its `v1`
/// signatures is the HMAC of `"t.body"` with `secret` (compared in constant time). Returns the timestamp.
pub fn verify(
    body: &[u8],
    header: &str,
    secret: &str,
    now_unix: u64,
    tolerance: Duration,
) -> Result<u64, WebhookError> {
    let (timestamp, signatures) = parse_header(header)?;
    let skew_s = now_unix.abs_diff(timestamp);
    if skew_s > tolerance.as_secs() {
        return Err(WebhookError::OutsideTolerance {
            timestamp,
            skew_s,
            tolerance_s: tolerance.as_secs(),
        });
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let message = signed_bytes(timestamp, body);
    let matches = signatures
        .iter()
        .any(|tag| hmac::verify(&key, &message, tag).is_ok());
    if matches {
        Ok(timestamp)
    } else {
        Err(WebhookError::NoMatchingSignature)
    }
}

/// [`verify`], then parses the body as an [`Event`].
pub fn construct_event(
    body: &[u8],
    header: &str,
    secret: &str,
    now_unix: u64,
    tolerance: Duration,
) -> Result<Event, WebhookError> {
    verify(body, header, secret, now_unix, tolerance)?;
    serde_json::from_slice(body).map_err(|e| WebhookError::InvalidEvent(e.to_string()))
}

fn signed_bytes(timestamp: u64, body: &[u8]) -> Vec<u8> {
    let mut message = format!("{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    message
}

/// The timestamp and the decoded `v1` signatures (other schemes are ignored, as a newer server may add them).
fn parse_header(header: &str) -> Result<(u64, Vec<Vec<u8>>), WebhookError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (name, value) = part
            .trim()
            .split_once('=')
            .ok_or(WebhookError::MalformedHeader(
                "an element is not name=value",
            ))?;
        match name {
            "t" => {
                if timestamp.is_some() {
                    return Err(WebhookError::MalformedHeader("more than one t"));
                }
                let t = value
                    .parse::<u64>()
                    .map_err(|_| WebhookError::MalformedHeader("t is not a Unix time"))?;
                timestamp = Some(t);
            }
            "v1" => signatures.push(
                decode_hex(value)
                    .ok_or(WebhookError::MalformedHeader("v1 is not 64 hex digits"))?,
            ),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(WebhookError::MalformedHeader("no t"))?;
    if signatures.is_empty() {
        return Err(WebhookError::MalformedHeader("no v1 signature"));
    }
    Ok((timestamp, signatures))
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":"evt_1"}"#;

    #[test]
    fn matches_an_independent_hmac_sha256() {
        // Computed with Python's hmac module: hmac.new(b"whsec_a", b'1000.{"id":"evt_1"}', hashlib.sha256).
        assert_eq!(
            sign("whsec_a", 1000, BODY),
            "c3777be251225f11e003d9665bbebec06c706e71968823d744acb17c37b1e79d"
        );
        assert_eq!(
            signature_header(&["whsec_a"], 1000, BODY),
            "t=1000,v1=c3777be251225f11e003d9665bbebec06c706e71968823d744acb17c37b1e79d"
        );
    }

    #[test]
    fn accepts_either_secret_during_rotation() {
        let header = signature_header(&["whsec_old", "whsec_new"], 1000, BODY);
        assert_eq!(header.matches("v1=").count(), 2);
        assert_eq!(
            verify(BODY, &header, "whsec_old", 1000, DEFAULT_TOLERANCE),
            Ok(1000)
        );
        assert_eq!(
            verify(BODY, &header, "whsec_new", 1010, DEFAULT_TOLERANCE),
            Ok(1000)
        );
        assert_eq!(
            verify(BODY, &header, "whsec_gone", 1000, DEFAULT_TOLERANCE),
            Err(WebhookError::NoMatchingSignature)
        );
    }

    #[test]
    fn rejects_tampering_replays_and_malformed_headers() {
        let header = signature_header(&["whsec_a"], 1000, BODY);
        assert_eq!(
            verify(
                br#"{"id":"evt_2"}"#,
                &header,
                "whsec_a",
                1000,
                DEFAULT_TOLERANCE
            ),
            Err(WebhookError::NoMatchingSignature)
        );
        let moved = header.replace("t=1000", "t=1001");
        assert_eq!(
            verify(BODY, &moved, "whsec_a", 1000, DEFAULT_TOLERANCE),
            Err(WebhookError::NoMatchingSignature)
        );
        assert!(matches!(
            verify(BODY, &header, "whsec_a", 1301, DEFAULT_TOLERANCE),
            Err(WebhookError::OutsideTolerance { skew_s: 301, .. })
        ));
        assert!(matches!(
            verify(BODY, &header, "whsec_a", 699, DEFAULT_TOLERANCE),
            Err(WebhookError::OutsideTolerance { skew_s: 301, .. })
        ));
        for bad in [
            "",
            "t=1000",
            "v1=00",
            "t=x,v1=00",
            "t=1,t=2,v1=00",
            "garbage",
        ] {
            assert!(
                matches!(
                    verify(BODY, bad, "whsec_a", 1000, DEFAULT_TOLERANCE),
                    Err(WebhookError::MalformedHeader(_))
                ),
                "{bad:?}"
            );
        }
        // Unknown schemes are ignored; the v1 still verifies.
        let with_v0 = format!("{header},v0=abc");
        assert_eq!(
            verify(BODY, &with_v0, "whsec_a", 1000, DEFAULT_TOLERANCE),
            Ok(1000)
        );
    }

    #[test]
    fn constructs_the_event() {
        let body = br#"{"id":"evt_9","type":"refund.succeeded","created_at_ms":5,"merchant_id":"m_1","data":{"refund_id":"re_1"}}"#;
        let header = signature_header(&["whsec_a"], 10, body);
        let event = construct_event(body, &header, "whsec_a", 10, DEFAULT_TOLERANCE).unwrap();
        assert_eq!(event.kind, EventType::RefundSucceeded);
        assert_eq!(event.data["refund_id"], "re_1");
        let header = signature_header(&["whsec_a"], 10, BODY);
        assert!(matches!(
            construct_event(BODY, &header, "whsec_a", 10, DEFAULT_TOLERANCE),
            Err(WebhookError::InvalidEvent(_))
        ));
    }
}
