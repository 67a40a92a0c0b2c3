//! Webhook delivery by the in-process server, on SQLite and PostgreSQL: payment.succeeded, refund.succeeded and
//! order.cancelled reach a real receiver signed with the endpoint's secret, failed deliveries are retried with
//! backoff under the same event id, and during a secret rotation every delivery carries one signature per valid
//! secret.

mod common;
mod webhook_support;

use std::time::Duration;

use common::{Backend, Env, on_each_backend};
use facepay_core::checkout::webhook::EventType;
use facepay_server::WebhookPolicy;
use serde_json::json;
use webhook_support::{Mode, Receiver, accepted_by_id, verified};

const WAIT: Duration = Duration::from_secs(20);

fn fast(config: &mut facepay_server::ServerConfig) {
    config.webhooks = WebhookPolicy {
        poll: Duration::from_millis(50),
        timeout: Duration::from_secs(2),
        retry_base: Duration::from_millis(50),
        max_attempts: 5,
    };
}

#[tokio::test]
async fn events_are_signed_retried_and_carry_one_id() {
    on_each_backend(|db: Backend| async move {
        let receiver = Receiver::start(Mode::Fail).await;
        let env = Env::start(db, fast).await;
        let set = env
            .merchant_post("/v1/webhook_endpoint", None, &json!({"url": receiver.url}))
            .await;
        assert_eq!(set.status, 200);
        let secret = set.json()["secret"].as_str().unwrap().to_owned();
        let dev = env.device("dev-1").await;
        let receipt = env.paid_order("o-1", 1000, &dev, 1).await;

        // The receiver fails the first two attempts; the third is accepted. Same id every time.
        receiver.wait_until(WAIT, |d| d.len() >= 2).await;
        receiver.set_mode(Mode::Accept);
        let seen = receiver
            .wait_until(WAIT, |d| d.iter().any(|d| d.accepted))
            .await;
        assert!(seen.len() >= 3, "{seen:?}");
        let ids: std::collections::BTreeSet<_> =
            seen.iter().map(|d| d.event_id_header.clone()).collect();
        assert_eq!(ids.len(), 1, "every attempt carries the same event id");
        let event = verified(seen.last().unwrap(), &secret);
        assert_eq!(event.kind, EventType::PaymentSucceeded);
        assert_eq!(event.data["payment_id"], receipt.payment_id.as_str());
        assert_eq!(event.merchant_id, env.merchant.merchant_id);
        for d in &seen {
            assert_eq!(
                d.body, seen[0].body,
                "the body is the same on every attempt"
            );
        }

        // Refund and cancel events; after a rotation both secrets verify the deliveries.
        let rotated = env
            .merchant_post("/v1/webhook_endpoint/rotate_secret", None, &json!({}))
            .await;
        let new_secret = rotated.json()["secret"].as_str().unwrap().to_owned();
        let refund = env
            .merchant_post(
                &format!("/v1/payments/{}/refunds", receipt.payment_id),
                None,
                &json!({"amount_minor": 250}),
            )
            .await;
        assert_eq!(refund.status, 201);
        env.order("o-2", 300, "EUR").await;
        assert_eq!(
            env.merchant_post("/v1/orders/o-2/cancel", None, &json!(null))
                .await
                .status,
            200
        );
        let seen = receiver
            .wait_until(WAIT, |d| accepted_by_id(d).len() == 3)
            .await;
        let accepted: Vec<_> = seen.iter().filter(|d| d.accepted).collect();

        let kinds: Vec<EventType> = accepted.iter().map(|d| verified(d, &secret).kind).collect();
        assert!(
            kinds.contains(&EventType::RefundSucceeded)
                && kinds.contains(&EventType::OrderCancelled)
        );
        for d in accepted.iter().skip(1) {
            assert_eq!(d.signature.matches("v1=").count(), 2, "{}", d.signature);
            verified(d, &new_secret);
        }
        let refund_event = accepted
            .iter()
            .skip(1)
            .map(|d| verified(d, &new_secret))
            .find(|e| e.kind == EventType::RefundSucceeded)
            .unwrap();
        assert_eq!(refund_event.data["amount_minor"], 250);
        assert_eq!(refund_event.data["refund_id"], refund.json()["refund_id"]);
        // Each event was accepted exactly once.
        assert!(
            accepted_by_id(&seen).values().all(|&n| n == 1),
            "{:?}",
            accepted_by_id(&seen)
        );
        env.server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn no_endpoint_no_events_and_delivery_gives_up() {
    on_each_backend(|db: Backend| async move {
        let env = Env::start(db, fast).await;
        let dev = env.device("dev-1").await;
        env.paid_order("o-1", 100, &dev, 1).await;
        // An endpoint set afterwards does not receive the earlier payment.
        let receiver = Receiver::start(Mode::Fail).await;
        env.merchant_post("/v1/webhook_endpoint", None, &json!({"url": receiver.url}))
            .await;
        env.paid_order("o-2", 100, &dev, 2).await;
        // Five failed attempts (the policy's maximum), then no more.
        receiver.wait_until(WAIT, |d| d.len() >= 5).await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        let seen = receiver.deliveries();
        assert_eq!(seen.len(), 5, "given up after max_attempts");
        assert!(
            seen.iter()
                .all(|d| d.event_id_header == seen[0].event_id_header)
        );
        env.server.shutdown().await;
    })
    .await;
}
