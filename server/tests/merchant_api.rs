//! The merchant API after checkout, on SQLite and PostgreSQL: reads with cursor pagination and merchant scoping,
//! refunds, cancel, fresh client tokens, idempotency of every POST, currency and amount validation, the metrics
//! token, API key rotation and revocation, and the webhook endpoint. Each rejection is asserted with its status and
//! code, and where it matters, that it changed nothing.

mod common;

use common::{Backend, Env, join_all, on_each_backend, payload_for, signed};
use facepay_core::checkout::wire::ErrorCode as E;
use serde_json::{Value, json};

fn order_body(order_id: &str, amount: Value, currency: &str) -> Value {
    json!({
        "order_id": order_id, "amount_minor": amount, "currency": currency,
        "items_digest": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    })
}

#[tokio::test]
async fn reads_are_merchant_scoped_and_paginate() {
    on_each_backend(|db: Backend| async move {
        let env = Env::start(db, |_| {}).await;
        let dev = env.device("dev-1").await;
        env.order("open-1", 1234, "JPY").await;
        let o = env.read("/v1/orders/open-1").await;
        assert_eq!(o["status"], "open");
        assert_eq!(o["currency_exponent"], 0);
        assert_eq!(o["payment"], Value::Null);
        assert_eq!(o["amount_minor"], 1234);

        let mut receipts = Vec::new();
        for i in 0..5u64 {
            receipts.push(
                env.paid_order(&format!("o-{i}"), 100 + i, &dev, i + 1)
                    .await,
            );
        }
        let o = env.read("/v1/orders/o-2").await;
        assert_eq!(o["status"], "paid");
        assert_eq!(o["payment"]["payment_id"], receipts[2].payment_id.as_str());
        let p = env
            .read(&format!("/v1/payments/{}", receipts[2].payment_id))
            .await;
        assert_eq!(p["status"], "succeeded");
        assert_eq!(p["amount_minor"], 102);
        assert_eq!(p["amount_refunded_minor"], 0);
        assert_eq!(p["device_id"], "dev-1");

        // Pages of 2, newest first, the cursor being the last id of the page; every payment exactly once.
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let path = match &cursor {
                None => "/v1/payments?limit=2".to_owned(),
                Some(c) => format!("/v1/payments?limit=2&starting_after={c}"),
            };
            let page = env.read(&path).await;
            pages += 1;
            let data = page["data"].as_array().unwrap().clone();
            assert!(data.len() <= 2);
            seen.extend(
                data.iter()
                    .map(|p| p["payment_id"].as_str().unwrap().to_owned()),
            );
            if !page["has_more"].as_bool().unwrap() {
                break;
            }
            cursor = Some(seen.last().unwrap().clone());
        }
        assert_eq!(pages, 3);
        let mut expected: Vec<String> = receipts.iter().map(|r| r.payment_id.clone()).collect();
        let mut sorted_seen = seen.clone();
        sorted_seen.sort();
        expected.sort();
        assert_eq!(sorted_seen, expected);
        let times: Vec<u64> = {
            let all = env.read("/v1/payments?limit=100").await;
            all["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["recorded_at_ms"].as_u64().unwrap())
                .collect()
        };
        assert!(
            times.windows(2).all(|w| w[0] >= w[1]),
            "newest first: {times:?}"
        );

        // Another merchant sees none of it: 404, the same as an id that does not exist.
        let other = env.server.create_merchant("Other shop").await.unwrap();
        for path in [
            "/v1/orders/o-2".to_owned(),
            format!("/v1/payments/{}", receipts[2].payment_id),
            "/v1/orders/nope".to_owned(),
        ] {
            env.get_with(&path, Some(&other.api_key))
                .await
                .assert_error(404, E::NotFound);
        }
        env.get_with("/v1/payments/pay_nope", Some(&env.merchant.api_key))
            .await
            .assert_error(404, E::NotFound);
        let list = env.get_with("/v1/payments", Some(&other.api_key)).await;
        assert_eq!(list.json(), json!({"data": [], "has_more": false}));
        env.get_with(
            &format!("/v1/payments?starting_after={}", receipts[0].payment_id),
            Some(&other.api_key),
        )
        .await
        .assert_error(400, E::InvalidRequest);

        // Rejections of the reads.
        env.get("/v1/orders/o-2")
            .await
            .assert_error(401, E::Unauthorized);
        env.get_with("/v1/payments", Some("fpk_wrong"))
            .await
            .assert_error(401, E::Unauthorized);
        for bad in [
            "limit=0",
            "limit=101",
            "limit=abc",
            "limit=-1",
            "colour=red",
        ] {
            env.get_with(&format!("/v1/payments?{bad}"), Some(&env.merchant.api_key))
                .await
                .assert_error(400, E::InvalidRequest);
        }
        env.server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn refunds_never_exceed_the_payment_and_are_idempotent() {
    on_each_backend(|db: Backend| async move {
        let env = Env::start(db, |_| {}).await;
        let dev = env.device("dev-1").await;
        let receipt = env.paid_order("o-1", 1000, &dev, 1).await;
        let path = format!("/v1/payments/{}/refunds", receipt.payment_id);

        let first = env
            .merchant_post(
                &path,
                Some("r-1"),
                &json!({"amount_minor": 300, "reason": "damaged"}),
            )
            .await;
        assert_eq!(
            first.status,
            201,
            "{}",
            String::from_utf8_lossy(&first.bytes)
        );
        let refund = first.json();
        assert_eq!(refund["amount_minor"], 300);
        assert_eq!(refund["currency"], "EUR");
        assert_eq!(refund["status"], "succeeded");
        // Same key, same body: the same refund, byte for byte, nothing refunded twice.
        let again = env
            .merchant_post(
                &path,
                Some("r-1"),
                &json!({"amount_minor": 300, "reason": "damaged"}),
            )
            .await;
        assert_eq!((again.status, &again.bytes), (201, &first.bytes));
        // Same key, another body: a conflict.
        env.merchant_post(&path, Some("r-1"), &json!({"amount_minor": 301}))
            .await
            .assert_error(409, E::IdempotencyConflict);
        let p = env
            .read(&format!("/v1/payments/{}", receipt.payment_id))
            .await;
        assert_eq!(
            (p["status"].clone(), p["amount_refunded_minor"].clone()),
            (json!("partially_refunded"), json!(300))
        );
        assert_eq!(
            env.read("/v1/orders/o-1").await["status"],
            "partially_refunded"
        );

        // Above what is left: rejected, nothing changes.
        env.merchant_post(&path, None, &json!({"amount_minor": 701}))
            .await
            .assert_error(409, E::RefundExceedsRemaining);
        for bad in [
            json!({"amount_minor": 0}),
            json!({"reason": "x".repeat(501)}),
        ] {
            env.merchant_post(&path, None, &bad)
                .await
                .assert_error(400, E::InvalidRequest);
        }
        env.merchant_post(&path, None, &json!({"amount_minor": -5}))
            .await
            .assert_error(400, E::MalformedJson);
        env.merchant_post(&path, None, &json!({"amount": 5}))
            .await
            .assert_error(400, E::MalformedJson);
        // No amount: the rest.
        let rest = env.merchant_post(&path, None, &json!({})).await;
        assert_eq!(rest.status, 201);
        assert_eq!(rest.json()["amount_minor"], 700);
        let p = env
            .read(&format!("/v1/payments/{}", receipt.payment_id))
            .await;
        assert_eq!(
            (p["status"].clone(), p["amount_refunded_minor"].clone()),
            (json!("refunded"), json!(1000))
        );
        assert_eq!(env.read("/v1/orders/o-1").await["status"], "refunded");
        env.merchant_post(&path, None, &json!({}))
            .await
            .assert_error(409, E::RefundExceedsRemaining);
        env.merchant_post(&path, None, &json!({"amount_minor": 1}))
            .await
            .assert_error(409, E::RefundExceedsRemaining);

        // Another merchant's payment, an unknown one, no key.
        let other = env.server.create_merchant("Other shop").await.unwrap();
        env.post(&path, Some(&other.api_key), &[], &json!({}))
            .await
            .assert_error(404, E::NotFound);
        env.merchant_post("/v1/payments/pay_nope/refunds", None, &json!({}))
            .await
            .assert_error(404, E::NotFound);
        env.post(&path, None, &[], &json!({}))
            .await
            .assert_error(401, E::Unauthorized);

        // Concurrent refunds of 200 on a 1000 payment: exactly five succeed, never more than the amount.
        let receipt = env.paid_order("o-2", 1000, &dev, 2).await;
        let path = format!("/v1/payments/{}/refunds", receipt.payment_id);
        let two_hundred = json!({"amount_minor": 200});
        let attempts = (0..8).map(|_| env.merchant_post(&path, None, &two_hundred));
        let answers = join_all(attempts.collect()).await;
        let ok = answers.iter().filter(|a| a.status == 201).count();
        for a in answers.iter().filter(|a| a.status != 201) {
            a.assert_error(409, E::RefundExceedsRemaining);
        }
        assert_eq!(ok, 5, "{}", env.backend);
        let p = env
            .read(&format!("/v1/payments/{}", receipt.payment_id))
            .await;
        assert_eq!(p["amount_refunded_minor"], 1000);
        env.server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn cancel_and_fresh_client_tokens_only_for_open_orders() {
    on_each_backend(|db: Backend| async move {
        let env = Env::start(db, |_| {}).await;
        let dev = env.device("dev-1").await;

        // A fresh token replaces the old one.
        let order = env.order("o-1", 500, "EUR").await;
        let a = env
            .merchant_post("/v1/orders/o-1/client_token", Some("t-1"), &json!(null))
            .await;
        assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.bytes));
        let fresh = a.json()["client_token"].as_str().unwrap().to_owned();
        assert_ne!(fresh, order.client_token);
        let replay = env
            .merchant_post("/v1/orders/o-1/client_token", Some("t-1"), &json!(null))
            .await;
        assert_eq!(
            replay.bytes, a.bytes,
            "a retry gets the same token, not a third one"
        );
        env.post(
            "/v1/checkout/challenge",
            Some(&order.client_token),
            &[],
            &json!({"device_id": "dev-1"}),
        )
        .await
        .assert_error(401, E::Unauthorized);
        let ch = env.challenge(&fresh, &dev.id).await;

        // Cancelled: the issued challenge cannot be paid, a second cancel and a new token are refused.
        let c = env
            .merchant_post("/v1/orders/o-1/cancel", None, &json!(null))
            .await;
        assert_eq!(c.status, 200, "{}", String::from_utf8_lossy(&c.bytes));
        assert_eq!(c.json()["status"], "cancelled");
        assert_eq!(env.read("/v1/orders/o-1").await["status"], "cancelled");
        let (bytes, sig) = signed(&payload_for(&ch, &dev.id, 1), &dev);
        env.pay_rejected(&fresh, "k-1", &bytes, &sig, 409, E::OrderCancelled)
            .await;
        env.merchant_post("/v1/orders/o-1/cancel", None, &json!(null))
            .await
            .assert_error(409, E::OrderCancelled);
        env.merchant_post("/v1/orders/o-1/client_token", None, &json!(null))
            .await
            .assert_error(409, E::OrderCancelled);

        // Paid: no cancel, no new token.
        env.paid_order("o-2", 700, &dev, 2).await;
        env.merchant_post("/v1/orders/o-2/cancel", None, &json!(null))
            .await
            .assert_error(409, E::OrderAlreadyPaid);
        env.merchant_post("/v1/orders/o-2/client_token", None, &json!(null))
            .await
            .assert_error(409, E::OrderAlreadyPaid);
        assert_eq!(env.read("/v1/orders/o-2").await["status"], "paid");

        // Unknown, another merchant's, no key.
        env.merchant_post("/v1/orders/nope/cancel", None, &json!(null))
            .await
            .assert_error(404, E::NotFound);
        let other = env.server.create_merchant("Other shop").await.unwrap();
        env.order("o-3", 100, "EUR").await;
        env.post(
            "/v1/orders/o-3/cancel",
            Some(&other.api_key),
            &[],
            &json!(null),
        )
        .await
        .assert_error(404, E::NotFound);
        env.post(
            "/v1/orders/o-3/client_token",
            Some(&other.api_key),
            &[],
            &json!(null),
        )
        .await
        .assert_error(404, E::NotFound);
        env.post("/v1/orders/o-3/cancel", None, &[], &json!(null))
            .await
            .assert_error(401, E::Unauthorized);
        assert_eq!(env.read("/v1/orders/o-3").await["status"], "open");
        env.server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn every_post_is_idempotent() {
    on_each_backend(|db: Backend| async move {
        let env = Env::start(db, |_| {}).await;
        // Orders: the lost answer (and its client token) comes back for the same key.
        let body = order_body("o-1", json!(100), "EUR");
        let first = env.merchant_post("/v1/orders", Some("ord-1"), &body).await;
        assert_eq!(first.status, 201);
        let again = env.merchant_post("/v1/orders", Some("ord-1"), &body).await;
        assert_eq!((again.status, &again.bytes), (201, &first.bytes));
        env.merchant_post(
            "/v1/orders",
            Some("ord-1"),
            &order_body("o-2", json!(100), "EUR"),
        )
        .await
        .assert_error(409, E::IdempotencyConflict);
        // The key is the merchant's: the same key on another route conflicts, another merchant's key space is its
        // own.
        env.merchant_post(
            "/v1/enrollments",
            Some("ord-1"),
            &json!({"account_id": "a"}),
        )
        .await
        .assert_error(409, E::IdempotencyConflict);
        let other = env.server.create_merchant("Other shop").await.unwrap();
        let theirs = env
            .post(
                "/v1/orders",
                Some(&other.api_key),
                &[("Idempotency-Key", "ord-1")],
                &body,
            )
            .await;
        assert_eq!(theirs.status, 201);
        assert_ne!(theirs.bytes, first.bytes);
        // Without a key a retry is a new request.
        env.merchant_post("/v1/orders", None, &body)
            .await
            .assert_error(409, E::OrderExists);
        // Malformed keys.
        let long = "k".repeat(256);
        for bad in ["", long.as_str(), "has space"] {
            env.post(
                "/v1/orders",
                Some(&env.merchant.api_key),
                &[("Idempotency-Key", bad)],
                &body,
            )
            .await
            .assert_error(400, E::InvalidIdempotencyKey);
        }
        // Enrolments.
        let e1 = env
            .merchant_post(
                "/v1/enrollments",
                Some("enr-1"),
                &json!({"account_id": "a"}),
            )
            .await;
        let e2 = env
            .merchant_post(
                "/v1/enrollments",
                Some("enr-1"),
                &json!({"account_id": "a"}),
            )
            .await;
        assert_eq!((e1.status, &e1.bytes), (201, &e2.bytes));
        env.server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn currencies_and_amounts_are_validated() {
    on_each_backend(|db: Backend| async move {
        let env = Env::start(db, |_| {}).await;
        for (i, (amount, currency)) in [
            (json!(100), "XYZ"),
            (json!(100), "XAU"),
            (json!(0), "EUR"),
            (json!(1_000_000_000_000u64), "EUR"),
        ]
        .into_iter()
        .enumerate()
        {
            env.merchant_post(
                "/v1/orders",
                None,
                &order_body(&format!("bad-{i}"), amount, currency),
            )
            .await
            .assert_error(400, E::InvalidRequest);
        }
        env.merchant_post("/v1/orders", None, &order_body("neg", json!(-1), "EUR"))
            .await
            .assert_error(400, E::MalformedJson);
        for (order_id, currency, exponent) in
            [("jpy", "JPY", 0), ("eur", "EUR", 2), ("bhd", "BHD", 3)]
        {
            let a = env
                .merchant_post(
                    "/v1/orders",
                    None,
                    &order_body(order_id, json!(999_999_999_999u64), currency),
                )
                .await;
            assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.bytes));
            assert_eq!(
                env.read(&format!("/v1/orders/{order_id}")).await["currency_exponent"],
                exponent
            );
        }
        env.server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn metrics_need_their_own_token() {
    on_each_backend(|db: Backend| async move {
        let env = Env::start(db, |_| {}).await;
        env.get("/metrics").await.assert_error(404, E::NotFound);
        env.get_with("/metrics", Some(&env.merchant.api_key))
            .await
            .assert_error(404, E::NotFound);
        env.server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn api_keys_rotate_and_revoke() {
    on_each_backend(|db: Backend| async move {
        let env = Env::start(db, |_| {}).await;
        let old = env.merchant.api_key.clone();
        let rolled = env
            .merchant_post("/v1/api_keys/roll", Some("roll-1"), &json!({}))
            .await;
        assert_eq!(
            rolled.status,
            201,
            "{}",
            String::from_utf8_lossy(&rolled.bytes)
        );
        let new = rolled.json()["api_key"].as_str().unwrap().to_owned();
        let new_id = rolled.json()["key_id"].as_str().unwrap().to_owned();
        // During the grace period both keys work.
        for key in [&old, &new] {
            assert_eq!(env.get_with("/v1/payments", Some(key)).await.status, 200);
        }
        let keys = env.read("/v1/api_keys").await;
        let data = keys["data"].as_array().unwrap();
        assert_eq!(data.len(), 2);
        assert!(
            data.iter().all(|k| k.get("api_key").is_none()),
            "keys are never listed"
        );
        let old_id = data
            .iter()
            .find(|k| k["key_id"] != new_id.as_str())
            .unwrap()["key_id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            data.iter()
                .find(|k| k["key_id"] == old_id.as_str())
                .unwrap()["expires_at_ms"]
                .is_u64()
        );

        // Revoke the old key: it stops at once; the new one cannot be revoked (it is the last valid one).
        let r = env
            .post(
                &format!("/v1/api_keys/{old_id}/revoke"),
                Some(&new),
                &[],
                &json!(null),
            )
            .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
        assert!(r.json()["revoked_at_ms"].is_u64());
        env.get_with("/v1/payments", Some(&old))
            .await
            .assert_error(401, E::Unauthorized);
        env.post(
            &format!("/v1/api_keys/{new_id}/revoke"),
            Some(&new),
            &[],
            &json!(null),
        )
        .await
        .assert_error(400, E::InvalidRequest);
        env.post(
            &format!("/v1/api_keys/{old_id}/revoke"),
            Some(&new),
            &[],
            &json!(null),
        )
        .await
        .assert_error(400, E::InvalidRequest);
        env.post(
            "/v1/api_keys/key_nope/revoke",
            Some(&new),
            &[],
            &json!(null),
        )
        .await
        .assert_error(404, E::NotFound);

        // A roll with no grace period ends the current key now.
        let rolled = env
            .post(
                "/v1/api_keys/roll",
                Some(&new),
                &[],
                &json!({"expire_current_after_s": 0}),
            )
            .await;
        assert_eq!(rolled.status, 201);
        let newest = rolled.json()["api_key"].as_str().unwrap().to_owned();
        env.get_with("/v1/payments", Some(&new))
            .await
            .assert_error(401, E::Unauthorized);
        assert_eq!(
            env.get_with("/v1/payments", Some(&newest)).await.status,
            200
        );
        env.post(
            "/v1/api_keys/roll",
            Some(&newest),
            &[],
            &json!({"expire_current_after_s": 604_801}),
        )
        .await
        .assert_error(400, E::InvalidRequest);
        // Another merchant cannot touch these keys.
        let other = env.server.create_merchant("Other shop").await.unwrap();
        env.post(
            &format!("/v1/api_keys/{new_id}/revoke"),
            Some(&other.api_key),
            &[],
            &json!(null),
        )
        .await
        .assert_error(404, E::NotFound);
        env.server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn webhook_endpoint_and_secret_rotation() {
    on_each_backend(|db: Backend| async move {
        let env = Env::start(db, |_| {}).await;
        env.get_with("/v1/webhook_endpoint", Some(&env.merchant.api_key))
            .await
            .assert_error(404, E::NotFound);
        env.merchant_post("/v1/webhook_endpoint/rotate_secret", None, &json!({}))
            .await
            .assert_error(404, E::NotFound);
        for bad in [
            "http://example.com/hook",
            "ftp://127.0.0.1/hook",
            "not a url",
            "https://",
        ] {
            env.merchant_post("/v1/webhook_endpoint", None, &json!({"url": bad}))
                .await
                .assert_error(400, E::InvalidRequest);
        }
        let set = env
            .merchant_post(
                "/v1/webhook_endpoint",
                None,
                &json!({"url": "http://127.0.0.1:9/hook"}),
            )
            .await;
        assert_eq!(set.status, 200, "{}", String::from_utf8_lossy(&set.bytes));
        let secret = set.json()["secret"].as_str().unwrap().to_owned();
        assert!(secret.starts_with("whsec_"));
        // Changing the URL keeps the secret (and does not show it again).
        let moved = env
            .merchant_post(
                "/v1/webhook_endpoint",
                None,
                &json!({"url": "https://hooks.example.com/x"}),
            )
            .await;
        assert_eq!(moved.json()["secret"], Value::Null);
        let got = env.read("/v1/webhook_endpoint").await;
        assert_eq!(
            (got["url"].clone(), got["active_secrets"].clone()),
            (json!("https://hooks.example.com/x"), json!(1))
        );
        let rotated = env
            .merchant_post(
                "/v1/webhook_endpoint/rotate_secret",
                None,
                &json!({"expire_current_after_s": 3600}),
            )
            .await;
        assert_eq!(rotated.status, 201);
        assert_ne!(rotated.json()["secret"], secret.as_str());
        assert_eq!(env.read("/v1/webhook_endpoint").await["active_secrets"], 2);
        env.merchant_post(
            "/v1/webhook_endpoint/rotate_secret",
            None,
            &json!({"expire_current_after_s": 0}),
        )
        .await;
        assert_eq!(env.read("/v1/webhook_endpoint").await["active_secrets"], 1);
        env.post(
            "/v1/webhook_endpoint",
            None,
            &[],
            &json!({"url": "https://a.example"}),
        )
        .await
        .assert_error(401, E::Unauthorized);
        env.merchant_post("/v1/webhook_endpoint", None, &json!({"url": 5}))
            .await
            .assert_error(400, E::MalformedJson);
        env.server.shutdown().await;
    })
    .await;
}
