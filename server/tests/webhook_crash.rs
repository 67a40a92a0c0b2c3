//! At-least-once webhook delivery across a SIGKILL of the real `facepay-server` binary (SQLite file): payments
//! commit with their outbox events; the server is killed after those commits and before any delivery was
//! acknowledged (the receiver holds the deliveries unanswered; one more payment commits just before the kill);
//! after a restart on the same database every event reaches the receiver, each accepted exactly once, every
//! duplicate carrying the same event id, every delivery signed.

mod common;
mod webhook_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Device, http_client, payload_for, signed};
use facepay_core::checkout::protocol::registration_message;
use facepay_core::checkout::signer::{DeviceSigner, SoftwareSigner};
use facepay_core::checkout::webhook::EventType;
use facepay_core::checkout::wire::{
    ChallengeResponse, CreateOrderResponse, b64_decode, b64_encode,
};
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use webhook_support::{Mode, Receiver, accepted_by_id, verified};

/// Payments whose deliveries are in flight at the kill.
const IN_FLIGHT: usize = 4;
const WAIT: Duration = Duration::from_secs(30);

/// The server binary on a loopback port over one SQLite file.
struct ServerProcess {
    db: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl ServerProcess {
    async fn start(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_facepay-server"))
            .args([
                "serve",
                "--plain-http",
                "--listen",
                &format!("127.0.0.1:{}", self.port),
            ])
            .args(["--webhook-poll-ms", "50", "--webhook-timeout-ms", "3000"])
            .args(["--webhook-retry-base-ms", "100", "--db"])
            .arg(&self.db)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn facepay-server");
        self.child = Some(child);
        let http = http_client();
        let deadline = Instant::now() + Duration::from_secs(20);
        while http
            .get(format!("{}/healthz", self.base()))
            .send()
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "the server did not come up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.start_kill().expect("SIGKILL");
        assert!(!child.wait().await.unwrap().success());
    }
}

async fn post(
    base: &str,
    path: &str,
    bearer: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> (u16, Value) {
    let mut req = http_client()
        .post(format!("{base}{path}"))
        .bearer_auth(bearer)
        .json(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Creates an order, gets its challenge and pays it; returns the payment id.
async fn pay(base: &str, api_key: &str, device: &Device, n: u64) -> String {
    let order_id = format!("o-{n}");
    let (status, order) = post(base, "/v1/orders", api_key, &[], &json!({
        "order_id": order_id, "amount_minor": 100 + n, "currency": "EUR",
        "items_digest": b64_encode(&facepay_core::checkout::protocol::sha256(order_id.as_bytes())),
    }))
    .await;
    assert_eq!(status, 201, "{order}");
    let order: CreateOrderResponse = serde_json::from_value(order).unwrap();
    let (status, ch) = post(
        base,
        "/v1/checkout/challenge",
        &order.client_token,
        &[],
        &json!({"device_id": device.id}),
    )
    .await;
    assert_eq!(status, 200, "{ch}");
    let ch: ChallengeResponse = serde_json::from_value(ch).unwrap();
    let (bytes, sig) = signed(&payload_for(&ch, &device.id, n), device);
    let key = format!("pay-{n}");
    let body = json!({"payload": b64_encode(&bytes), "signature": b64_encode(&sig)});
    let (status, receipt) = post(
        base,
        "/v1/checkout/pay",
        &order.client_token,
        &[("Idempotency-Key", &key)],
        &body,
    )
    .await;
    assert_eq!(status, 201, "{receipt}");
    receipt["payment_id"].as_str().unwrap().to_owned()
}

/// `event_id → delivered_at_ms` of every outbox row, read from the SQLite file.
async fn outbox(db: &Path) -> BTreeMap<String, Option<i64>> {
    use sqlx::{Connection, Row};
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(db);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    let rows = sqlx::query("SELECT event_id, delivered_at_ms FROM webhook_events")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

#[tokio::test]
async fn sigkill_between_commit_and_delivery_loses_no_event_and_keeps_ids() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("facepay.sqlite");
    let created = std::process::Command::new(env!("CARGO_BIN_EXE_facepay-server"))
        .args([
            "merchant",
            "create",
            "--name",
            "Crash shop",
            "--json",
            "--db",
        ])
        .arg(&db)
        .output()
        .expect("merchant create");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let merchant: Value = serde_json::from_slice(&created.stdout).unwrap();
    let api_key = merchant["api_key"].as_str().unwrap().to_owned();

    let receiver = Receiver::start(Mode::Hold).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = ServerProcess {
        db: db.clone(),
        port,
        child: None,
    };
    server.start().await;
    let base = server.base();
    let (status, endpoint) = post(
        &base,
        "/v1/webhook_endpoint",
        &api_key,
        &[],
        &json!({"url": receiver.url}),
    )
    .await;
    assert_eq!(status, 200, "{endpoint}");
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    let (_, enrol) = post(
        &base,
        "/v1/enrollments",
        &api_key,
        &[],
        &json!({"account_id": "shopper"}),
    )
    .await;
    let signer = SoftwareSigner::generate().unwrap();
    let (status, issued) = post(
        &base,
        "/v1/devices/challenge",
        "unused",
        &[],
        &json!({"enrollment_token": enrol["enrollment_token"]}),
    )
    .await;
    assert_eq!(status, 201, "{issued}");
    let challenge: [u8; 32] = b64_decode("challenge", issued["challenge"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let proof = signer
        .sign(&registration_message(
            &challenge,
            "dev-1",
            &signer.public_key(),
        ))
        .unwrap();
    let (status, body) = post(
        &base,
        "/v1/devices",
        "unused",
        &[],
        &json!({
            "enrollment_token": enrol["enrollment_token"], "device_id": "dev-1",
            "public_key": b64_encode(&signer.public_key()),
            "challenge": b64_encode(&challenge), "proof": b64_encode(&proof),
        }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let device = Device {
        id: "dev-1".into(),
        signer,
    };

    // Payments whose deliveries the receiver holds unanswered: committed, sent, not acknowledged.
    let mut payments = Vec::new();
    for n in 1..=IN_FLIGHT as u64 {
        payments.push(pay(&base, &api_key, &device, n).await);
    }
    receiver
        .wait_until(WAIT, |d| {
            d.iter()
                .map(|d| &d.event_id_header)
                .collect::<BTreeSet<_>>()
                .len()
                == IN_FLIGHT
        })
        .await;
    // One more payment, killed right after its commit.
    payments.push(pay(&base, &api_key, &device, IN_FLIGHT as u64 + 1).await);
    server.kill().await;
    let before = outbox(&db).await;
    assert_eq!(
        before.len(),
        payments.len(),
        "one outbox row per payment, committed with it"
    );
    assert!(
        before.values().all(Option::is_none),
        "nothing was acknowledged before the kill: {before:?}"
    );

    receiver.set_mode(Mode::Accept);
    server.start().await;
    let seen = receiver
        .wait_until(WAIT, |d| accepted_by_id(d).len() == payments.len())
        .await;
    // Give a wrongly repeated delivery the chance to show up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = if receiver.deliveries().len() > seen.len() {
        receiver.deliveries()
    } else {
        seen
    };

    let accepted = accepted_by_id(&seen);
    assert!(
        accepted.values().all(|&n| n == 1),
        "each event accepted exactly once: {accepted:?}"
    );
    let ids: BTreeSet<String> = seen.iter().map(|d| d.event_id_header.clone()).collect();
    assert_eq!(
        ids.len(),
        payments.len(),
        "duplicates carry the same event id"
    );
    assert_eq!(
        ids,
        before.keys().cloned().collect(),
        "the ids are the outbox's"
    );
    assert!(
        seen.len() > payments.len(),
        "the held deliveries were sent again after the restart"
    );
    let mut paid: Vec<String> = seen
        .iter()
        .filter(|d| d.accepted)
        .map(|d| {
            let event = verified(d, &secret);
            assert_eq!(event.kind, EventType::PaymentSucceeded);
            event.data["payment_id"].as_str().unwrap().to_owned()
        })
        .collect();
    paid.sort();
    payments.sort();
    assert_eq!(paid, payments, "every payment's event was delivered");
    let deadline = Instant::now() + WAIT;
    while outbox(&db).await.values().any(Option::is_none) {
        assert!(
            Instant::now() < deadline,
            "the outbox was not marked delivered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill().await;
    eprintln!(
        "webhook crash test: {} events, {} deliveries ({} duplicates after the SIGKILL), each accepted once",
        ids.len(),
        seen.len(),
        seen.len() - ids.len()
    );
}
