//! Two `facepay-server` processes on one PostgreSQL database: a lock-out set through one is enforced by the
//! other, and the same payment sent to both at once is recorded exactly once. PostgreSQL only (the deployment
//! with several instances); without `FACEPAY_TEST_DATABASE_URL` the test says so and checks nothing.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Backend, http_client, payload_for};
use facepay_core::checkout::protocol::{LivenessVerdict, registration_message};
use facepay_core::checkout::signer::{DeviceSigner, SoftwareSigner};
use facepay_core::checkout::wire::{ChallengeResponse, ErrorBody, ErrorCode, b64_encode};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_facepay-server");

/// A server process; killed when dropped.
struct Instance {
    child: Child,
    base: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(url: &str) -> Instance {
    let mut child = Command::new(BIN)
        .args(["serve", "--plain-http", "--listen", "127.0.0.1:0", "--max-failures", "2", "--database-url", url])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start facepay-server");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let base = loop {
        let line = lines.next().expect("server exited before listening").unwrap();
        if let Some(url) = line.strip_prefix("facepay-server: listening on ") {
            break url.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Instance { child, base }
}

async fn post(base: &str, path: &str, bearer: Option<&str>, idem: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = http_client().post(format!("{base}{path}")).json(body);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    if let Some(k) = idem {
        req = req.header("Idempotency-Key", k);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn code(v: &Value) -> Option<ErrorCode> {
    serde_json::from_value::<ErrorBody>(v.clone()).ok().map(|b| b.error.code)
}

#[tokio::test]
async fn two_processes_share_lockouts_and_record_a_payment_once() {
    let Some(Backend::Postgres(url)) = common::postgres().await else {
        eprintln!("note: {} is not set: the two-instance test did NOT run", common::PG_ENV);
        return;
    };
    let a = start(&url);
    let b = start(&url);
    let out = Command::new(BIN)
        .args(["merchant", "create", "--name", "Two shops", "--json", "--database-url", &url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let merchant: Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = merchant["api_key"].as_str().unwrap();
    // Register through A.
    let (s, enrol) = post(&a.base, "/v1/enrollments", Some(key), None, &json!({"account_id": "shopper-1"})).await;
    assert_eq!(s, 201);
    let token = enrol["enrollment_token"].as_str().unwrap();
    let (s, ch) = post(&a.base, "/v1/devices/challenge", None, None, &json!({"enrollment_token": token})).await;
    assert_eq!(s, 201, "{ch}");
    let challenge: [u8; 32] = facepay_core::checkout::wire::b64_decode("c", ch["challenge"].as_str().unwrap()).unwrap().try_into().unwrap();
    let signer = SoftwareSigner::generate().unwrap();
    let pk = signer.public_key();
    let proof = signer.sign(&registration_message(&challenge, "dev-1", &pk)).unwrap();
    let (s, reg) = post(&a.base, "/v1/devices", None, None, &json!({
        "enrollment_token": token, "device_id": "dev-1", "public_key": b64_encode(&pk),
        "challenge": b64_encode(&challenge), "proof": b64_encode(&proof)})).await;
    assert_eq!(s, 201, "{reg}");
    let order = |id: &'static str| {
        let key = key.to_owned();
        let base = a.base.clone();
        async move {
            let (s, o) = post(&base, "/v1/orders", Some(&key), None, &json!({"order_id": id, "amount_minor": 250, "currency": "EUR", "items_digest": b64_encode(&[1; 32])})).await;
            assert_eq!(s, 201, "{o}");
            o["client_token"].as_str().unwrap().to_owned()
        }
    };
    // The same payment sent to A and B at once: both answer 201 with the same receipt, one row is recorded.
    let token1 = order("o-1").await;
    let (s, ch) = post(&b.base, "/v1/checkout/challenge", Some(&token1), None, &json!({"device_id": "dev-1"})).await;
    assert_eq!(s, 200, "{ch}");
    let ch: ChallengeResponse = serde_json::from_value(ch).unwrap();
    let payload = payload_for(&ch, "dev-1", 1).to_canonical_bytes();
    let body = json!({"payload": b64_encode(&payload), "signature": b64_encode(&signer.sign(&payload).unwrap())});
    let (ra, rb) = tokio::join!(
        post(&a.base, "/v1/checkout/pay", Some(&token1), Some("same-key"), &body),
        post(&b.base, "/v1/checkout/pay", Some(&token1), Some("same-key"), &body),
    );
    assert_eq!((ra.0, rb.0), (201, 201), "{} {}", ra.1, rb.1);
    assert_eq!(ra.1["payment_id"], rb.1["payment_id"], "both instances answer with the one recorded payment");
    let store = facepay_server::Store::open(&facepay_server::DatabaseTarget::Postgres(url.clone()), facepay_server::SqliteSync::Full, 1).await.unwrap();
    assert_eq!(store.table_counts().await.unwrap().payments, 1);
    // Lock the device through A (two signed failures), then B refuses it with 429.
    let token2 = order("o-2").await;
    for i in 0..2u64 {
        let (s, ch) = post(&a.base, "/v1/checkout/challenge", Some(&token2), None, &json!({"device_id": "dev-1"})).await;
        assert_eq!(s, 200, "{ch}");
        let ch: ChallengeResponse = serde_json::from_value(ch).unwrap();
        let mut p = payload_for(&ch, "dev-1", 5 + i);
        p.evidence.liveness = LivenessVerdict::NotLive;
        let bytes = p.to_canonical_bytes();
        let body = json!({"payload": b64_encode(&bytes), "signature": b64_encode(&signer.sign(&bytes).unwrap())});
        let (s, e) = post(&a.base, "/v1/checkout/pay", Some(&token2), Some(&format!("f-{i}")), &body).await;
        assert_eq!((s, code(&e)), (403, Some(ErrorCode::LivenessFailed)));
    }
    let (s, e) = post(&b.base, "/v1/checkout/challenge", Some(&token2), None, &json!({"device_id": "dev-1"})).await;
    assert_eq!((s, code(&e)), (429, Some(ErrorCode::DeviceLocked)), "B does not see A's lock-out: {e}");
    store.close().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
}
