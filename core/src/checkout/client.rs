//! The HTTPS clients of the checkout protocol (`docs/protocol.md`): [`CheckoutClient`] for the device (register,
//! challenge, pay) and [`MerchantClient`] for the merchant's backend (orders, enrolment tokens). Both speak
//! reqwest + rustls on ring, retry transient faults with backoff and map every answer to a [`CheckoutError`].
//!
//! **The per-device counter** is the caller's: every [`PaymentPayload`] carries one, and it must be strictly
//! greater than the counter of the device's previous accepted payment. Persist the value as used *before* calling
//! [`CheckoutClient::pay`] (so a crash can never make the device sign the same counter twice) and take the next one
//! for the next payment; a retry of the same payment ([`CheckoutClient::submit`] of the same [`SignedPayment`])
//! reuses it by design.

mod error;
mod retry;
mod tls;
mod transport;

use std::time::Duration;

use reqwest::Method;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;

pub use error::CheckoutError;
pub use retry::RetryPolicy;
pub use tls::TrustRoots;

use super::protocol::{
    Evidence, PaymentPayload, check_id, is_nonce_challenge_list, registration_message,
};
use super::signer::{DeviceSigner, SignerError};
use super::wire::{
    ChallengeRequest, ChallengeResponse, CreateEnrollmentRequest, CreateEnrollmentResponse,
    CreateOrderRequest, CreateOrderResponse, Health, PayRequest, Receipt, RegisterDeviceRequest,
    RegisterDeviceResponse, RegistrationChallengeRequest, RegistrationChallengeResponse, b64_decode,
    b64_encode,
};
use transport::{Call, Transport};

/// Per-request time limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    /// Limit for establishing the TCP + TLS connection.
    pub connect: Duration,
    /// Limit for one whole attempt (connect, send, receive the full answer).
    pub request: Duration,
}

impl Default for Timeouts {
    /// 5 s to connect, 15 s per attempt.
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(15),
        }
    }
}

/// Where the server is and how to talk to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// The server's base URL, e.g. `https://pay.example.com/` (paths `v1/…` are appended). Plain `http://` is
    /// accepted only for loopback hosts (tests, benchmarks).
    pub base_url: String,
    /// Which server certificates to trust.
    pub trust: TrustRoots,
    /// Time limits.
    pub timeouts: Timeouts,
    /// Retries of transient faults.
    pub retry: RetryPolicy,
}

impl ClientConfig {
    /// A configuration with default timeouts and retry policy.
    pub fn new(base_url: impl Into<String>, trust: TrustRoots) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            trust,
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
        }
    }
}

/// A signed payment ready to send: the request body and the idempotency key generated for this payment attempt.
/// Resubmitting it (same key, same bytes) after a lost answer returns the original receipt, never a second payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPayment {
    /// The `Idempotency-Key` header value: 32 random bytes, base64url.
    pub idempotency_key: String,
    /// The `POST /v1/checkout/pay` body.
    pub request: PayRequest,
    /// The order id, amount and currency the receipt must repeat.
    expected: (String, u64, String),
}

/// The device side of the protocol. Holds no merchant secret: it authenticates with the per-order client token
/// the merchant's backend handed to the app, and signs with the device key.
#[derive(Debug, Clone)]
pub struct CheckoutClient {
    transport: Transport,
}

impl CheckoutClient {
    /// Builds a client (no connection is made yet).
    pub fn new(config: ClientConfig) -> Result<Self, CheckoutError> {
        Ok(CheckoutClient {
            transport: Transport::new(&config)?,
        })
    }

    /// `GET /healthz`: the server's status, backend and protocol version.
    pub async fn health(&self) -> Result<Health, CheckoutError> {
        self.transport.send(get("healthz")).await
    }

    /// Registers this device's key under `device_id` with the enrolment token the merchant's backend obtained for
    /// the shopper's account: `POST /v1/devices/challenge`, then `POST /v1/devices` with the proof of possession
    /// (the key's signature over the registration message) and the signer's attestation, if any. After a reinstall
    /// the same device id re-registers with its new key (a new enrolment token for the same account).
    pub async fn register_device(
        &self,
        enrollment_token: &str,
        device_id: &str,
        signer: &dyn DeviceSigner,
    ) -> Result<RegisterDeviceResponse, CheckoutError> {
        check_id("device_id", device_id)?;
        let request = RegistrationChallengeRequest {
            enrollment_token: enrollment_token.to_owned(),
        };
        let issued: RegistrationChallengeResponse = self
            .transport
            .send(post("v1/devices/challenge", None, None, &request)?)
            .await?;
        let challenge = b64_decode("challenge", &issued.challenge)
            .ok()
            .and_then(|c| <[u8; 32]>::try_from(c).ok())
            .ok_or_else(|| {
                CheckoutError::Protocol("the registration challenge is not 32 base64url bytes".to_owned())
            })?;
        let public_key = signer.public_key();
        let message = registration_message(&challenge, device_id, &public_key);
        let body = RegisterDeviceRequest {
            enrollment_token: enrollment_token.to_owned(),
            device_id: device_id.to_owned(),
            public_key: b64_encode(&public_key),
            challenge: Some(issued.challenge),
            proof: Some(b64_encode(&signer.sign(&message)?)),
            attestation: signer.attestation(&challenge, &message)?,
        };
        self.transport
            .send(post("v1/devices", None, None, &body)?)
            .await
    }

    /// `POST /v1/checkout/challenge`: a fresh single-use nonce for the client token's order and this device, and
    /// the liveness challenges to perform. Fails with [`CheckoutError::Protocol`] if the server's challenge list is
    /// not one derived from its nonce (for some challenge set, see `challenges_for_nonce_in`).
    pub async fn challenge(
        &self,
        client_token: &str,
        device_id: &str,
    ) -> Result<ChallengeResponse, CheckoutError> {
        check_id("device_id", device_id)?;
        let body = ChallengeRequest {
            device_id: device_id.to_owned(),
        };
        let answer: ChallengeResponse = self
            .transport
            .send(post(
                "v1/checkout/challenge",
                Some(client_token),
                None,
                &body,
            )?)
            .await?;
        if !is_nonce_challenge_list(&answer.nonce, &answer.challenges) {
            return Err(CheckoutError::Protocol(
                "challenge list does not match the nonce's derivation".into(),
            ));
        }
        Ok(answer)
    }

    /// Signs and sends a payment (`POST /v1/checkout/pay`): [`sign_payment`] then [`submit`](Self::submit).
    pub async fn pay(
        &self,
        client_token: &str,
        payload: &PaymentPayload,
        signer: &dyn DeviceSigner,
    ) -> Result<Receipt, CheckoutError> {
        self.submit(client_token, &sign_payment(payload, signer)?)
            .await
    }

    /// Sends a signed payment, retrying transient faults with its idempotency key and body unchanged. Checks that
    /// the receipt is for the signed order id, amount and currency.
    pub async fn submit(
        &self,
        client_token: &str,
        payment: &SignedPayment,
    ) -> Result<Receipt, CheckoutError> {
        let call = post(
            "v1/checkout/pay",
            Some(client_token),
            Some(&payment.idempotency_key),
            &payment.request,
        )?;
        let receipt: Receipt = self.transport.send(call).await?;
        let (order_id, amount_minor, currency) = &payment.expected;
        if &receipt.order_id != order_id
            || receipt.amount_minor != *amount_minor
            || &receipt.currency != currency
        {
            return Err(CheckoutError::Protocol(format!(
                "receipt is for order {} ({} {}), the device signed {order_id} ({amount_minor} {currency})",
                receipt.order_id, receipt.amount_minor, receipt.currency
            )));
        }
        Ok(receipt)
    }
}

/// Builds the payload for paying the order of `challenge` with its nonce, this device, `counter` and `evidence`.
pub fn payment_payload(
    challenge: &ChallengeResponse,
    device_id: &str,
    counter: u64,
    evidence: Evidence,
) -> PaymentPayload {
    PaymentPayload {
        order: challenge.order.clone(),
        nonce: challenge.nonce,
        device_id: device_id.to_owned(),
        counter,
        evidence,
    }
}

/// Validates `payload`, signs its canonical bytes with the device key and generates a fresh idempotency key.
pub fn sign_payment(
    payload: &PaymentPayload,
    signer: &dyn DeviceSigner,
) -> Result<SignedPayment, CheckoutError> {
    payload.validate()?;
    let bytes = payload.to_canonical_bytes();
    let signature = signer.sign(&bytes)?;
    let mut key = [0u8; 32];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| SignerError::Rng)?;
    Ok(SignedPayment {
        idempotency_key: b64_encode(&key),
        request: PayRequest {
            payload: b64_encode(&bytes),
            signature: b64_encode(&signature),
        },
        expected: (
            payload.order.order_id.clone(),
            payload.order.amount_minor,
            payload.order.currency.clone(),
        ),
    })
}

/// The merchant backend's side of the protocol: creates orders and enrolment tokens with the merchant API key.
/// Runs on the merchant's server (and in the demo, tests and benchmark), never in the app.
#[derive(Clone)]
pub struct MerchantClient {
    transport: Transport,
    api_key: String,
}

impl std::fmt::Debug for MerchantClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MerchantClient")
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl MerchantClient {
    /// Builds a client that authenticates with `api_key` (no connection is made yet).
    pub fn new(config: ClientConfig, api_key: impl Into<String>) -> Result<Self, CheckoutError> {
        Ok(MerchantClient {
            transport: Transport::new(&config)?,
            api_key: api_key.into(),
        })
    }

    /// `POST /v1/orders`: creates an order; the answer's `client_token` is what the app pays with.
    pub async fn create_order(
        &self,
        order: &CreateOrderRequest,
    ) -> Result<CreateOrderResponse, CheckoutError> {
        self.transport
            .send(post("v1/orders", Some(&self.api_key), None, order)?)
            .await
    }

    /// `POST /v1/enrollments`: a single-use token that lets the app register a device for `account_id`.
    pub async fn create_enrollment(
        &self,
        account_id: &str,
    ) -> Result<CreateEnrollmentResponse, CheckoutError> {
        let body = CreateEnrollmentRequest {
            account_id: account_id.to_owned(),
        };
        self.transport
            .send(post("v1/enrollments", Some(&self.api_key), None, &body)?)
            .await
    }
}

fn get(path: &str) -> Call<'_> {
    Call {
        method: Method::GET,
        path,
        bearer: None,
        idempotency_key: None,
        body: None,
    }
}

fn post<'a>(
    path: &'a str,
    bearer: Option<&'a str>,
    idempotency_key: Option<&'a str>,
    body: &impl Serialize,
) -> Result<Call<'a>, CheckoutError> {
    let body = serde_json::to_vec(body)
        .map_err(|e| CheckoutError::Protocol(format!("encoding request: {e}")))?;
    Ok(Call {
        method: Method::POST,
        path,
        bearer,
        idempotency_key,
        body: Some(body),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkout::protocol::{
        LivenessVerdict, OrderRef, challenges_for_nonce, verify_signature,
    };
    use crate::checkout::signer::SoftwareSigner;
    use crate::checkout::wire::b64_decode;

    fn challenge() -> ChallengeResponse {
        let nonce = [7u8; 32];
        ChallengeResponse {
            nonce,
            expires_at_ms: 1,
            challenges: challenges_for_nonce(&nonce),
            order: OrderRef {
                merchant_id: "m".into(),
                order_id: "o-1".into(),
                amount_minor: 1250,
                currency: "EUR".into(),
                items_digest: [1; 32],
            },
        }
    }

    fn evidence(c: &ChallengeResponse) -> Evidence {
        Evidence {
            liveness: LivenessVerdict::Live,
            challenges: c.challenges.clone(),
            antispoof_score: Some(0.9),
            match_score: 0.8,
            model_versions: vec!["embedder@1".into()],
            started_at_ms: 10,
            finished_at_ms: 20,
        }
    }

    #[test]
    fn signed_payment_carries_the_canonical_bytes_and_a_valid_signature() {
        let signer = SoftwareSigner::generate().unwrap();
        let c = challenge();
        let payload = payment_payload(&c, "dev-1", 3, evidence(&c));
        let signed = sign_payment(&payload, &signer).unwrap();
        let bytes = b64_decode("payload", &signed.request.payload).unwrap();
        assert_eq!(
            PaymentPayload::from_canonical_bytes(&bytes).unwrap(),
            payload
        );
        let sig = b64_decode("signature", &signed.request.signature).unwrap();
        verify_signature(&signer.public_key(), &bytes, &sig).unwrap();
        assert_eq!(
            b64_decode("key", &signed.idempotency_key).unwrap().len(),
            32
        );
        assert!(crate::checkout::wire::valid_idempotency_key(
            &signed.idempotency_key
        ));
        let again = sign_payment(&payload, &signer).unwrap();
        assert_ne!(
            again.idempotency_key, signed.idempotency_key,
            "each attempt gets a fresh key"
        );
    }

    #[test]
    fn invalid_payload_is_not_signed() {
        let signer = SoftwareSigner::generate().unwrap();
        let c = challenge();
        let mut payload = payment_payload(&c, "dev-1", 3, evidence(&c));
        payload.order.currency = "eur".into();
        assert!(matches!(
            sign_payment(&payload, &signer),
            Err(CheckoutError::InvalidPayload(_))
        ));
        payload.order.currency = "EUR".into();
        payload.evidence.match_score = f32::NAN;
        assert!(matches!(
            sign_payment(&payload, &signer),
            Err(CheckoutError::InvalidPayload(_))
        ));
    }

    /// A keystore that refuses to sign (e.g. the user cancelled authentication).
    struct RefusingSigner;

    impl DeviceSigner for RefusingSigner {
        fn public_key(&self) -> Vec<u8> {
            vec![4; 65]
        }

        fn sign(&self, _message: &[u8]) -> Result<Vec<u8>, SignerError> {
            Err(SignerError::Keystore("user cancelled".into()))
        }
    }

    #[test]
    fn signer_failure_is_typed() {
        let c = challenge();
        let payload = payment_payload(&c, "dev-1", 3, evidence(&c));
        assert!(matches!(
            sign_payment(&payload, &RefusingSigner),
            Err(CheckoutError::Signer(SignerError::Keystore(_)))
        ));
    }
}
