//! The canonical payment payload decoder (what the server verifies the signature over): never a panic, and the
//! encoding is canonical — bytes that decode re-encode to exactly themselves, and the decoded payload validates.
#![no_main]

use facepay_core::checkout::protocol::PaymentPayload;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(payload) = PaymentPayload::from_canonical_bytes(data) {
        assert_eq!(payload.to_canonical_bytes(), data, "decoded bytes are not canonical");
        assert!(payload.validate().is_ok(), "a decoded payload does not validate");
    }
});
