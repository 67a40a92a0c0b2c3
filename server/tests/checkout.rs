//! Every acceptance and rejection path of the checkout protocol, against a real server and database
//! (SQLite always; PostgreSQL too when `FACEPAY_TEST_DATABASE_URL` is set). After every rejection the
//! payment-related tables are checked to be unchanged.

mod common;

use std::time::Duration;

use common::{Backend, Env, checkout, join_all, on_each_backend, payload_for, signed};
use facepay_core::checkout::protocol::{
    Challenge, LivenessVerdict, PaymentPayload, registration_message,
};
use facepay_core::checkout::signer::{DeviceSigner, SoftwareSigner};
use facepay_core::checkout::wire::{ErrorCode, ErrorCode as E, Receipt, b64_encode};
use serde_json::json;

#[tokio::test]
async fn happy_path_records_exactly_one_payment() {
    on_each_backend(|db| async move {
        let (env, order, dev, ch, bytes, sig) = checkout(db, |_| {}, 1999).await;
        let tok = order.client_token.as_str();
        assert!((3..=4).contains(&ch.challenges.len()));
        assert_eq!(ch.order, order.order);
        let a = env.pay(tok, "k-1", &bytes, &sig).await;
        assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.bytes));
        let receipt: Receipt = serde_json::from_slice(&a.bytes).unwrap();
        assert_eq!(
            (
                receipt.order_id.as_str(),
                receipt.amount_minor,
                receipt.currency.as_str()
            ),
            ("o-1", 1999, "EUR")
        );
        assert!(receipt.payment_id.starts_with("pay_"));
        let counts = env.counts().await;
        assert_eq!(
            (
                counts.payments,
                counts.used_nonces,
                counts.paid_orders,
                counts.counter_sum
            ),
            (1, 1, 1, 2)
        );
        assert_eq!(counts.idempotency_keys, 1);
        // The order is paid: no new challenge for it.
        let again = env
            .post(
                "/v1/checkout/challenge",
                Some(tok),
                &[],
                &json!({"device_id": dev.id}),
            )
            .await;
        again.assert_error(409, ErrorCode::OrderAlreadyPaid);
        env.server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn bad_signature_is_rejected() {
    on_each_backend(|db| async move {
        let (env, order, _, _, bytes, sig) = checkout(db, |_| {}, 500).await;
        let tok = order.client_token.as_str();
        let mut sig = sig;
        let last = sig.len() - 1;
        sig[last] ^= 0x01;
        env.pay_rejected(tok, "k", &bytes, &sig, 403, E::BadSignature)
            .await;
        env.pay_rejected(tok, "k2", &bytes, b"\x30\x00", 403, E::BadSignature)
            .await;
        env.server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn signature_by_another_registered_device_is_rejected() {
    on_each_backend(|db| async move {
        let env = Env::start(db, |_| {}).await;
        let order = env.order("o-1", 500, "EUR").await;
        let tok = order.client_token.as_str();
        let victim = env.device("victim").await;
        let attacker = env.device("attacker").await;
        let ch = env.challenge(tok, &victim.id).await;
        // The payload names the victim's device but the attacker's key signs it.
        let (bytes, sig) = signed(&payload_for(&ch, &victim.id, 1), &attacker);
        env.pay_rejected(tok, "k", &bytes, &sig, 403, E::BadSignature)
            .await;
        env.server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn reused_nonce_is_rejected() {
    on_each_backend(|db| async move {
        let (env, order, dev, ch, bytes, sig) = checkout(db, |_| {}, 500).await;
        let tok = order.client_token.as_str();
        env.pay_ok(tok, "k-1", &bytes, &sig).await;
        // Same nonce, new counter, new key: the nonce is spent.
        let (bytes, sig) = signed(&payload_for(&ch, &dev.id, 2), &dev);
        env.pay_rejected(tok, "k-2", &bytes, &sig, 409, E::NonceReused)
            .await;
        env.server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn non_increasing_counter_is_rejected() {
    on_each_backend(|db| async move {
        let env = Env::start(db, |_| {}).await;
        let dev = env.device("dev-1").await;
        let first = env.order("o-1", 500, "EUR").await;
        let ch = env.challenge(&first.client_token, &dev.id).await;
        let (bytes, sig) = signed(&payload_for(&ch, &dev.id, 10), &dev);
        env.pay_ok(&first.client_token, "k-1", &bytes, &sig).await;
        let second = env.order("o-2", 700, "EUR").await;
        for counter in [10, 9, 0] {
            let ch = env.challenge(&second.client_token, &dev.id).await;
            let (bytes, sig) = signed(&payload_for(&ch, &dev.id, counter), &dev);
            let key = format!("k-c{counter}");
            env.pay_rejected(
                &second.client_token,
                &key,
                &bytes,
                &sig,
                409,
                E::CounterNotIncreasing,
            )
            .await;
        }
        let ch = env.challenge(&second.client_token, &dev.id).await;
        let (bytes, sig) = signed(&payload_for(&ch, &dev.id, 11), &dev);
        env.pay_ok(&second.client_token, "k-ok", &bytes, &sig).await;
        env.server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn bad_signatures_lock_the_order_not_the_device() {
    on_each_backend(|db| async move {
        let env = Env::start(db, |_| {}).await; // default: 5 failures in 3 minutes
        let order = env.order("o-1", 500, "EUR").await;
        let tok = order.client_token.as_str();
        let dev = env.device("dev-1").await;
        let other = env.device("dev-2").await;
        let ch = env.challenge(tok, &dev.id).await;
        let (bytes, good_sig) = signed(&payload_for(&ch, &dev.id, 1), &dev);
        let bad_sig = other.signer_sign(&bytes);
        for i in 0..5 {
            let key = format!("bad-{i}");
            env.pay_rejected(tok, &key, &bytes, &bad_sig, 403, E::BadSignature)
                .await;
        }
        // The order's client token is locked now (anyone holding it can name any device, so the device is not):
        // even the genuine signature is refused with it, and so is a new challenge.
        env.pay_rejected(tok, "good", &bytes, &good_sig, 429, E::OrderLocked)
            .await;
        let a = env
            .post(
                "/v1/checkout/challenge",
                Some(tok),
                &[],
                &json!({"device_id": dev.id}),
            )
            .await;
        a.assert_error(429, ErrorCode::OrderLocked);
        // The device itself pays another order.
        let order2 = env.order("o-2", 500, "EUR").await;
        let ch2 = env.challenge(&order2.client_token, &dev.id).await;
        let (bytes2, sig2) = signed(&payload_for(&ch2, &dev.id, 1), &dev);
        env.pay_ok(&order2.client_token, "other", &bytes2, &sig2)
            .await;
        env.server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn lockout_ends_after_its_window() {
    let env = Env::start(common::sqlite(), |c| {
        c.lockout.max_failures = 2;
        c.lockout.lockout = Duration::from_millis(300);
    })
    .await;
    let order = env.order("o-1", 500, "EUR").await;
    let tok = order.client_token.as_str();
    let dev = env.device("dev-1").await;
    let ch = env.challenge(tok, &dev.id).await;
    let (bytes, sig) = signed(&payload_for(&ch, &dev.id, 1), &dev);
    for key in ["b1", "b2"] {
        env.pay_rejected(tok, key, &bytes, b"\x30\x00", 403, E::BadSignature)
            .await;
    }
    env.pay_rejected(tok, "g", &bytes, &sig, 429, E::OrderLocked)
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    env.pay_ok(tok, "g", &bytes, &sig).await;
    env.server.shutdown().await;
}

#[tokio::test]
async fn missing_or_wrong_merchant_key_is_rejected() {
    on_each_backend(|db| async move {
        let env = Env::start(db, |_| {}).await;
        let body = json!({"order_id": "o", "amount_minor": 1, "currency": "EUR", "items_digest": b64_encode(&[0; 32])});
        env.post("/v1/orders", None, &[], &body).await.assert_error(401, ErrorCode::Unauthorized);
        env.post("/v1/orders", Some("fpk_wrong"), &[], &body).await.assert_error(401, ErrorCode::Unauthorized);
        let a = env.post("/v1/orders", None, &[("authorization", "Basic Zm9vOmJhcg==")], &body).await;
        a.assert_error(401, ErrorCode::Unauthorized);
        env.post("/v1/enrollments", Some("nope"), &[], &json!({"account_id": "a"})).await
            .assert_error(401, ErrorCode::Unauthorized);
        // A client token is not a merchant key, and a merchant key is not a client token.
        let order = env.order("o-1", 500, "EUR").await;
        let tok = order.client_token.as_str();
        env.post("/v1/orders", Some(tok), &[], &body).await.assert_error(401, ErrorCode::Unauthorized);
        let dev = env.device("dev-1").await;
        let ch = env.challenge(tok, &dev.id).await;
        let (bytes, sig) = signed(&payload_for(&ch, &dev.id, 1), &dev);
        env.pay_rejected(&env.merchant.api_key, "k", &bytes, &sig, 401, ErrorCode::Unauthorized).await;
        let before = env.counts().await;
        let a = env.post("/v1/checkout/pay", None, &[("Idempotency-Key", "k")], &json!({"payload": "", "signature": ""})).await;
        a.assert_error(401, ErrorCode::Unauthorized);
        assert_eq!(env.counts().await, before);
        env.server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn expired_nonce_is_rejected() {
    on_each_backend(|db| async move {
        let (env, order, _, _, bytes, sig) =
            checkout(db, |c| c.nonce_ttl = Duration::from_millis(300), 500).await;
        let tok = order.client_token.as_str();
        tokio::time::sleep(Duration::from_millis(450)).await;
        env.pay_rejected(tok, "k", &bytes, &sig, 403, E::NonceExpired)
            .await;
        env.server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn nonce_for_another_order_is_rejected() {
    on_each_backend(|db| async move {
        let env = Env::start(db, |_| {}).await;
        let a = env.order("o-a", 500, "EUR").await;
        let b = env.order("o-b", 500, "EUR").await;
        let dev = env.device("dev-1").await;
        let other = env.device("dev-2").await;
        let ch_a = env.challenge(&a.client_token, &dev.id).await;
        let ch_b = env.challenge(&b.client_token, &dev.id).await;
        // Order B, but with the nonce issued for order A.
        let mut p = payload_for(&ch_b, &dev.id, 1);
        p.nonce = ch_a.nonce;
        p.evidence.challenges = facepay_core::checkout::protocol::challenges_for_nonce(&ch_a.nonce);
        let (bytes, sig) = signed(&p, &dev);
        env.pay_rejected(&b.client_token, "k1", &bytes, &sig, 403, E::NonceMismatch)
            .await;
        // A nonce issued to another device.
        let ch_other = env.challenge(&b.client_token, &other.id).await;
        let mut p = payload_for(&ch_other, &dev.id, 1);
        p.device_id = dev.id.clone();
        let (bytes, sig) = signed(&p, &dev);
        env.pay_rejected(&b.client_token, "k2", &bytes, &sig, 403, E::NonceMismatch)
            .await;
        // A nonce never issued.
        let mut p = payload_for(&ch_b, &dev.id, 1);
        p.nonce = [7; 32];
        p.evidence.challenges = facepay_core::checkout::protocol::challenges_for_nonce(&p.nonce);
        let (bytes, sig) = signed(&p, &dev);
        env.pay_rejected(&b.client_token, "k3", &bytes, &sig, 403, E::NonceUnknown)
            .await;
        env.server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn amount_or_currency_changed_is_rejected() {
    on_each_backend(|db| async move {
        let (env, order, dev, ch, bytes, sig) =
            checkout(db, |c| c.lockout.max_failures = 100, 1999).await;
        let tok = order.client_token.as_str();
        let good = payload_for(&ch, &dev.id, 1);

        // Changed after signing: the signature no longer matches.
        let mut cheaper = good.clone();
        cheaper.order.amount_minor = 1;
        env.pay_rejected(
            tok,
            "k1",
            &cheaper.to_canonical_bytes(),
            &sig,
            403,
            E::BadSignature,
        )
        .await;
        let mut usd = good.clone();
        usd.order.currency = "USD".into();
        env.pay_rejected(
            tok,
            "k2",
            &usd.to_canonical_bytes(),
            &sig,
            403,
            E::BadSignature,
        )
        .await;

        // Signed with a different amount / currency than the order: the device agreed to something else.
        let (b, s) = signed(&cheaper, &dev);
        env.pay_rejected(tok, "k3", &b, &s, 403, E::OrderMismatch)
            .await;
        let (b, s) = signed(&usd, &dev);
        env.pay_rejected(tok, "k4", &b, &s, 403, E::OrderMismatch)
            .await;

        // The untouched payment still goes through.
        env.pay_ok(tok, "k5", &bytes, &sig).await;
        env.server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn unknown_device_is_rejected() {
    on_each_backend(|db| async move {
        let env = Env::start(db, |_| {}).await;
        let order = env.order("o-1", 500, "EUR").await;
        let tok = order.client_token.as_str();
        let dev = env.device("dev-1").await;
        let a = env
            .post(
                "/v1/checkout/challenge",
                Some(tok),
                &[],
                &json!({"device_id": "ghost"}),
            )
            .await;
        a.assert_error(403, ErrorCode::UnknownDevice);
        let ch = env.challenge(tok, &dev.id).await;
        let mut p = payload_for(&ch, "ghost", 1);
        p.device_id = "ghost".into();
        let (bytes, sig) = signed(&p, &dev);
        env.pay_rejected(tok, "k", &bytes, &sig, 403, E::UnknownDevice)
            .await;
        env.server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn malformed_oversized_and_truncated_bodies_are_rejected() {
    on_each_backend(|db| async move {
        let (env, order, _, _, bytes, sig) = checkout(db, |_| {}, 500).await;
        let tok = order.client_token.as_str();
        let some_tok = Some(tok);
        let idem = [("Idempotency-Key", "k")];
        let before = env.counts().await;
        let full = serde_json::to_vec(&json!({"payload": b64_encode(&bytes), "signature": b64_encode(&sig)})).unwrap();

        let cases: Vec<(Vec<u8>, u16, ErrorCode)> = vec![
            (b"{not json".to_vec(), 400, ErrorCode::MalformedJson),
            (full[..full.len() / 2].to_vec(), 400, ErrorCode::MalformedJson),
            (Vec::new(), 400, ErrorCode::MalformedJson),
            (b"[]".to_vec(), 400, ErrorCode::MalformedJson),
            (br#"{"payload": "AAAA"}"#.to_vec(), 400, ErrorCode::MalformedJson),
            (br#"{"payload": 1, "signature": 2}"#.to_vec(), 400, ErrorCode::MalformedJson),
            (br#"{"payload": "", "signature": "", "extra": 1}"#.to_vec(), 400, ErrorCode::MalformedJson),
            (br#"{"payload": "!!", "signature": "AA"}"#.to_vec(), 400, ErrorCode::MalformedPayload),
            (vec![b' '; 70 * 1024], 413, ErrorCode::PayloadTooLarge),
            (
                serde_json::to_vec(&json!({"payload": b64_encode(&bytes[..bytes.len() - 3]), "signature": b64_encode(&sig)})).unwrap(),
                400,
                ErrorCode::MalformedPayload,
            ),
            (
                serde_json::to_vec(&json!({"payload": b64_encode(&[bytes.as_slice(), b"x"].concat()), "signature": b64_encode(&sig)})).unwrap(),
                400,
                ErrorCode::MalformedPayload,
            ),
            (
                serde_json::to_vec(&json!({"payload": b64_encode(b"FPAY\x02"), "signature": b64_encode(&sig)})).unwrap(),
                400,
                ErrorCode::MalformedPayload,
            ),
        ];
        for (body, status, code) in cases {
            let a = env.post_raw("/v1/checkout/pay", some_tok, &idem, "application/json", body).await;
            a.assert_error(status, code);
        }
        // Other routes map their framework rejections the same way.
        env.post_raw("/v1/orders", Some(&env.merchant.api_key), &[], "application/json", b"{".to_vec()).await
            .assert_error(400, ErrorCode::MalformedJson);
        env.post_raw("/v1/devices", None, &[], "application/json", vec![b'x'; 100_000]).await
            .assert_error(413, ErrorCode::PayloadTooLarge);
        let bad_currency = json!({"order_id": "o-2", "amount_minor": 1, "currency": "eur", "items_digest": b64_encode(&[0; 32])});
        env.post("/v1/orders", Some(&env.merchant.api_key), &[], &bad_currency).await
            .assert_error(400, ErrorCode::InvalidRequest);
        // Idempotency key missing or invalid.
        let body: serde_json::Value = serde_json::from_slice(&full).unwrap();
        env.post("/v1/checkout/pay", some_tok, &[], &body).await.assert_error(400, ErrorCode::InvalidIdempotencyKey);
        env.post("/v1/checkout/pay", some_tok, &[("Idempotency-Key", "has space")], &body).await
            .assert_error(400, ErrorCode::InvalidIdempotencyKey);
        assert_eq!(env.counts().await, before);
        // And the server still works.
        env.pay_ok(tok, "k", &bytes, &sig).await;
        env.server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn wrong_content_type_is_rejected() {
    on_each_backend(|db| async move {
        let env = Env::start(db, |_| {}).await;
        let order = env.order("o-1", 500, "EUR").await;
        let tok = order.client_token.as_str();
        let before = env.counts().await;
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/jsonx",
        ] {
            let a = env
                .post_raw(
                    "/v1/checkout/pay",
                    Some(tok),
                    &[("Idempotency-Key", "k")],
                    ct,
                    b"{}".to_vec(),
                )
                .await;
            a.assert_error(415, ErrorCode::UnsupportedMediaType);
        }
        let a = env
            .post_raw(
                "/v1/orders",
                Some(&env.merchant.api_key),
                &[],
                "text/plain",
                b"{}".to_vec(),
            )
            .await;
        a.assert_error(415, ErrorCode::UnsupportedMediaType);
        assert_eq!(env.counts().await, before);
        env.server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn idempotency_conflict_and_replay() {
    on_each_backend(|db| async move {
        let (env, order, dev, _, bytes, sig) =
            checkout(db, |c| c.metrics_token = Some("mt".into()), 500).await;
        let tok = order.client_token.as_str();
        let first = env.pay(tok, "same-key", &bytes, &sig).await;
        assert_eq!(first.status, 201);
        let after_first = env.counts().await;

        // Same key, same body: the original response, byte for byte, and nothing new stored.
        let replay = env.pay(tok, "same-key", &bytes, &sig).await;
        assert_eq!((replay.status, &replay.bytes), (first.status, &first.bytes));
        assert_eq!(env.counts().await, after_first);

        // Same key, different body (a new signature of the same payload is a different body).
        let sig2 = dev.signer_sign(&bytes);
        assert_ne!(sig2, sig);
        env.pay_rejected(tok, "same-key", &bytes, &sig2, 409, E::IdempotencyConflict)
            .await;

        // A fresh key with the spent nonce is not a replay: the nonce is used.
        env.pay_rejected(tok, "other-key", &bytes, &sig, 409, E::NonceReused)
            .await;
        let metrics = String::from_utf8(env.get_with("/metrics", Some("mt")).await.bytes).unwrap();
        assert!(
            metrics.contains("facepay_idempotent_replays_total 1"),
            "{metrics}"
        );
        env.server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn concurrent_identical_requests_record_once() {
    on_each_backend(|db| async move {
        let (env, order, _, _, bytes, sig) = checkout(db, |_| {}, 500).await;
        let tok = order.client_token.as_str();
        let answers = join_all(
            (0..8)
                .map(|_| env.pay(tok, "dup-key", &bytes, &sig))
                .collect(),
        )
        .await;
        let bodies: std::collections::HashSet<_> =
            answers.iter().map(|a| a.bytes.clone()).collect();
        assert!(
            answers.iter().all(|a| a.status == 201),
            "{:?}",
            answers.iter().map(|a| a.status).collect::<Vec<_>>()
        );
        assert_eq!(bodies.len(), 1, "every retry must see the same receipt");
        assert_eq!(env.counts().await.payments, 1);
        env.server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn evidence_must_match_the_nonce_and_be_live() {
    on_each_backend(|db| async move {
        let (env, order, dev, ch, _, _) = checkout(db, |c| c.lockout.max_failures = 100, 500).await;
        let tok = order.client_token.as_str();
        let mut p = payload_for(&ch, &dev.id, 1);
        p.evidence.challenges = vec![Challenge::Blink; 3];
        if p.evidence.challenges == ch.challenges {
            p.evidence.challenges = vec![Challenge::TurnLeft; 2];
        }
        let (b, s) = signed(&p, &dev);
        env.pay_rejected(tok, "k1", &b, &s, 403, E::ChallengeMismatch)
            .await;
        let mut p: PaymentPayload = payload_for(&ch, &dev.id, 1);
        p.evidence.liveness = LivenessVerdict::Spoof;
        let (b, s) = signed(&p, &dev);
        env.pay_rejected(tok, "k2", &b, &s, 403, E::LivenessFailed)
            .await;
        env.server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn device_registration_rules() {
    on_each_backend(|db| async move {
        let env = Env::start(db, |_| {}).await;
        let _dev = env.device("dev-1").await;
        let signer = SoftwareSigner::generate().unwrap();
        // Same device id for another account.
        env.register_account("a", "dev-1", &signer)
            .await
            .assert_error(409, ErrorCode::DeviceExists);
        // A key of the wrong shape.
        let token = env.enrollment("a").await;
        let ch = env.registration_challenge(&token).await;
        let a = env
            .register_with(&token, "dev-2", &[4u8; 33], &ch, b"x", None)
            .await;
        a.assert_error(400, ErrorCode::InvalidPublicKey);
        // Unknown token: no registration challenge.
        let a = env
            .post(
                "/v1/devices/challenge",
                None,
                &[],
                &json!({"enrollment_token": "fpe_x"}),
            )
            .await;
        a.assert_error(401, ErrorCode::InvalidEnrollmentToken);
        // The token works once.
        let proof = signer
            .sign(&registration_message(&ch, "dev-4", &signer.public_key()))
            .unwrap();
        let a = env
            .register_with(&token, "dev-4", &signer.public_key(), &ch, &proof, None)
            .await;
        assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.bytes));
        let a = env
            .post(
                "/v1/devices/challenge",
                None,
                &[],
                &json!({"enrollment_token": token}),
            )
            .await;
        a.assert_error(401, ErrorCode::InvalidEnrollmentToken);
        env.server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn health_metrics_and_fallbacks_use_the_error_shape() {
    on_each_backend(|db: Backend| async move {
        let name = db.name();
        let env = Env::start(db, |c| c.metrics_token = Some("metrics-secret".into())).await;
        let h = env.get("/healthz").await;
        assert_eq!(h.status, 200);
        assert_eq!(
            h.json(),
            json!({"status": "ok", "backend": name, "protocol": facepay_core::checkout::protocol::PROTOCOL_VERSION})
        );
        env.get("/nope")
            .await
            .assert_error(404, ErrorCode::NotFound);
        env.get("/v1/checkout/pay")
            .await
            .assert_error(405, ErrorCode::MethodNotAllowed);
        // /metrics needs its own token: none, or a merchant's key, is 401.
        env.get("/metrics")
            .await
            .assert_error(401, ErrorCode::Unauthorized);
        env.get_with("/metrics", Some(&env.merchant.api_key))
            .await
            .assert_error(401, ErrorCode::Unauthorized);
        let m = env.get_with("/metrics", Some("metrics-secret")).await;
        assert_eq!(m.status, 200);
        let text = String::from_utf8(m.bytes).unwrap();
        assert!(
            text.contains("facepay_http_requests_total{route=\"/healthz\",status=\"200\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("facepay_rejections_total{code=\"not_found\"} 1"),
            "{text}"
        );
        env.server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn postgres_is_tested_in_ci() {
    let configured = std::env::var(common::PG_ENV).is_ok_and(|v| !v.is_empty());
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if ci {
        assert!(
            configured,
            "CI=true but {} is unset: scripts/test.d/20-postgres.sh must start PostgreSQL",
            common::PG_ENV
        );
    } else if !configured {
        eprintln!(
            "note: {} is not set: PostgreSQL was NOT tested (run ./scripts/test.sh to test it)",
            common::PG_ENV
        );
    }
    if configured {
        let pg = common::postgres().await.expect("postgres database");
        let env = Env::start(pg, |_| {}).await;
        assert_eq!(env.get("/healthz").await.json()["backend"], "postgres");
        env.server.shutdown().await;
    }
}

#[tokio::test]
async fn concurrent_payments_commit_independently() {
    on_each_backend(|db| async move {
        let env = Env::start(db, |c| c.policy.devices.max_per_account = 12).await;
        let mut requests = Vec::new();
        for i in 0..12 {
            let dev = env.device(&format!("dev-{i}")).await;
            let order = env.order(&format!("o-{i}"), 100 + i, "EUR").await;
            let tok = order.client_token.as_str();
            let ch = env.challenge(tok, &dev.id).await;
            let (bytes, sig) = signed(&payload_for(&ch, &dev.id, 1), &dev);
            // Every third payment is also sent under a second key: one of the two must lose on the nonce.
            if i % 3 == 0 {
                requests.push((
                    order.client_token.clone(),
                    format!("dup-{i}"),
                    bytes.clone(),
                    sig.clone(),
                ));
            }
            requests.push((order.client_token, format!("k-{i}"), bytes, sig));
        }
        let answers = join_all(
            requests
                .iter()
                .map(|(token, key, bytes, sig)| env.pay(token, key, bytes, sig))
                .collect(),
        )
        .await;
        let created = answers.iter().filter(|a| a.status == 201).count();
        let lost: Vec<_> = answers.iter().filter(|a| a.status != 201).collect();
        assert_eq!(created, 12, "{lost:?}");
        assert_eq!(lost.len(), 4);
        for a in lost {
            a.assert_error(409, ErrorCode::NonceReused);
        }
        let counts = env.counts().await;
        assert_eq!(
            (
                counts.payments,
                counts.used_nonces,
                counts.paid_orders,
                counts.idempotency_keys
            ),
            (12, 12, 12, 12)
        );
        env.server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn garbage_requests_get_the_error_shape_and_write_nothing() {
    let (env, order, _, _, bytes, sig) =
        checkout(common::sqlite(), |c| c.lockout.max_failures = 1000, 500).await;
    let tok = order.client_token.as_str();
    let before = env.counts().await;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..200 {
        // Flip a few bytes of the signed payload (or of the signature), or send random bytes as the body.
        let (mut p, mut s) = (bytes.clone(), sig.clone());
        for _ in 0..1 + next() % 3 {
            let r = next() as usize;
            if r.is_multiple_of(2) {
                let i = r / 2 % p.len();
                p[i] ^= 1 + (next() % 255) as u8;
            } else {
                let i = r / 2 % s.len();
                s[i] ^= 1 + (next() % 255) as u8;
            }
        }
        let body = if round % 4 == 3 {
            (0..next() % 300).map(|_| next() as u8).collect()
        } else {
            serde_json::to_vec(&json!({"payload": b64_encode(&p), "signature": b64_encode(&s)}))
                .unwrap()
        };
        let key = format!("g-{round}");
        let a = env
            .post_raw(
                "/v1/checkout/pay",
                Some(tok),
                &[("Idempotency-Key", &key)],
                "application/json",
                body,
            )
            .await;
        assert!(
            (400..500).contains(&a.status),
            "round {round}: {}",
            a.status
        );
        let shape: facepay_core::checkout::wire::ErrorBody = serde_json::from_slice(&a.bytes)
            .unwrap_or_else(|e| panic!("round {round}: not the error shape ({e})"));
        assert!(!shape.error.message.is_empty());
    }
    assert_eq!(env.counts().await, before);
    env.pay_ok(tok, "real", &bytes, &sig).await;
    env.server.shutdown().await;
}

#[tokio::test]
async fn idempotency_keys_expire() {
    on_each_backend(|db| async move {
        let env = Env::start(db, |c| c.idempotency_ttl = Duration::from_millis(300)).await;
        let dev = env.device("dev-1").await;
        let a = env.order("o-a", 100, "EUR").await;
        let ch = env.challenge(&a.client_token, &dev.id).await;
        let (bytes, sig) = signed(&payload_for(&ch, &dev.id, 1), &dev);
        env.pay_ok(&a.client_token, "reused-key", &bytes, &sig)
            .await;
        let b = env.order("o-b", 200, "EUR").await;
        let ch = env.challenge(&b.client_token, &dev.id).await;
        let (bytes_b, sig_b) = signed(&payload_for(&ch, &dev.id, 2), &dev);
        let c = &b.client_token;
        env.pay_rejected(
            c,
            "reused-key",
            &bytes_b,
            &sig_b,
            409,
            E::IdempotencyConflict,
        )
        .await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        // Expired: the key is free again.
        env.pay_ok(c, "reused-key", &bytes_b, &sig_b).await;
        assert_eq!(env.counts().await.payments, 2);
        env.server.shutdown().await;
    })
    .await;
}
