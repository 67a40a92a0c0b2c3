//! The sealed template: the plaintext codec (a decoded template re-encodes to bytes that decode to the same template:
//! same version, model, time and shape, embeddings equal to 1e-6 — decoding renormalises embeddings within
//! `UNIT_NORM_TOLERANCE`, which may move the last bits of the floats) and
//! the sealed file's header parser and AES-GCM open under a fixed key (never a panic; without the key's tag
//! nothing opens).
#![no_main]

use facepay_core::template::TemplateKey;
use facepay_core::template::fuzzing::{decode, encode, open};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(template) = decode(data) {
        let bytes = encode(&template);
        let again = decode(&bytes).expect("an encoded template decodes");
        assert_eq!(
            (again.version(), again.model(), again.created_at_ms(), again.dimension()),
            (template.version(), template.model(), template.created_at_ms(), template.dimension())
        );
        assert_eq!(again.embeddings().len(), template.embeddings().len());
        for (a, b) in again.embeddings().iter().zip(template.embeddings()) {
            assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-6), "embedding moved");
        }
    }
    let key = TemplateKey::from_bytes([7; 32]);
    // A forged tag has probability 2^-128: any success here is a bug in the open path.
    assert!(open(data, &key).is_err(), "arbitrary bytes opened as a sealed template");
});
