//! The JSON bodies the checkout server accepts (`POST /v1/orders`, `/v1/enrollments`, `/v1/devices/challenge`,
//! `/v1/devices`,
//! `/v1/checkout/challenge`, `/v1/checkout/pay`), parsed as the server parses them (serde_json into the shared wire
//! types, unknown fields refused), then the pay body's base64url payload through the canonical decoder. Never a
//! panic; whatever parses serialises back to JSON that parses to the same value.
#![no_main]

use facepay_core::checkout::protocol::PaymentPayload;
use facepay_core::checkout::wire::{
    ChallengeRequest, CreateEnrollmentRequest, CreateOrderRequest, PayRequest, RegisterDeviceRequest,
    RegistrationChallengeRequest, b64_decode,
};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(data: &[u8]) -> Option<T> {
    let value: T = serde_json::from_slice(data).ok()?;
    let json = serde_json::to_vec(&value).expect("a parsed body serialises");
    let again: T = serde_json::from_slice(&json).expect("a serialised body parses");
    assert_eq!(again, value, "JSON round trip changed the body");
    Some(value)
}

fuzz_target!(|data: &[u8]| {
    round_trip::<CreateOrderRequest>(data);
    round_trip::<CreateEnrollmentRequest>(data);
    round_trip::<RegistrationChallengeRequest>(data);
    round_trip::<RegisterDeviceRequest>(data);
    round_trip::<ChallengeRequest>(data);
    if let Some(pay) = round_trip::<PayRequest>(data)
        && let Ok(bytes) = b64_decode("payload", &pay.payload)
    {
        let _ = b64_decode("signature", &pay.signature);
        if let Ok(payload) = PaymentPayload::from_canonical_bytes(&bytes) {
            assert_eq!(payload.to_canonical_bytes(), bytes);
        }
    }
});
