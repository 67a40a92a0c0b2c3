//! Crash safety: the real `facepay-server` binary is SIGKILLed while clients are paying, restarted on the same
//! SQLite file, three times. Every payment a client saw acknowledged must be stored exactly once, retrying with
//! the same idempotency key must return the original receipt, and payments cut off by the kill must complete
//! exactly once when retried.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{payload_for, signed};
use facepay_core::checkout::signer::{DeviceSigner, SoftwareSigner};
use facepay_core::checkout::wire::{
    ChallengeResponse, CreateOrderResponse, PayRequest, Receipt, b64_encode,
};
use serde_json::json;
use sqlx::Connection;

const CLIENTS: usize = 6;
const CYCLES: usize = 3;

/// A payment request and, once acknowledged, its receipt bytes.
#[derive(Clone)]
struct Attempt {
    client_token: String,
    key: String,
    body: Vec<u8>,
}

struct ServerProcess {
    child: Child,
    base: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(db: &Path, http: &reqwest::Client) -> ServerProcess {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_facepay-server"))
        .args([
            "serve",
            "--plain-http",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--db",
        ])
        .arg(db)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start facepay-server");
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await
            && r.status().is_success()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "facepay-server did not come up on {base}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ServerProcess { child, base }
}

async fn post(
    http: &reqwest::Client,
    url: String,
    bearer: &str,
    body: serde_json::Value,
) -> Result<reqwest::Response, reqwest::Error> {
    http.post(url).bearer_auth(bearer).json(&body).send().await
}

async fn pay(
    http: &reqwest::Client,
    base: &str,
    a: &Attempt,
) -> Result<(u16, Vec<u8>), reqwest::Error> {
    let r = http
        .post(format!("{base}/v1/checkout/pay"))
        .bearer_auth(&a.client_token)
        .header("Idempotency-Key", &a.key)
        .header("content-type", "application/json")
        .body(a.body.clone())
        .send()
        .await?;
    let status = r.status().as_u16();
    Ok((status, r.bytes().await?.to_vec()))
}

/// One client paying orders one after another until the server goes away. Returns the acknowledged payments
/// (with receipts) and the one cut off, if any.
async fn client(
    http: reqwest::Client,
    base: String,
    api_key: String,
    device_id: String,
    signer: Arc<SoftwareSigner>,
    mut counter: u64,
    cycle: usize,
) -> (Vec<(Attempt, Vec<u8>)>, Option<Attempt>, u64) {
    let device = common::Device {
        id: device_id.clone(),
        signer: SoftwareSigner::from_pkcs8(&signer.to_pkcs8()).unwrap(),
    };
    let mut acknowledged = Vec::new();
    for i in 0.. {
        let order_id = format!("{device_id}-c{cycle}-{i}");
        let body = json!({"order_id": order_id, "amount_minor": 250, "currency": "EUR",
                          "items_digest": b64_encode(&[3; 32])});
        let Ok(r) = post(&http, format!("{base}/v1/orders"), &api_key, body).await else {
            break;
        };
        let Ok(order) = r.json::<CreateOrderResponse>().await else {
            break;
        };
        let body = json!({"device_id": device_id});
        let url = format!("{base}/v1/checkout/challenge");
        let Ok(r) = post(&http, url, &order.client_token, body).await else {
            break;
        };
        let Ok(ch) = r.json::<ChallengeResponse>().await else {
            break;
        };
        counter += 1;
        let (bytes, sig) = signed(&payload_for(&ch, &device_id, counter), &device);
        let req = PayRequest {
            payload: b64_encode(&bytes),
            signature: b64_encode(&sig),
        };
        let attempt = Attempt {
            client_token: order.client_token,
            key: format!("key-{order_id}"),
            body: serde_json::to_vec(&req).unwrap(),
        };
        match pay(&http, &base, &attempt).await {
            Ok((201, receipt)) => acknowledged.push((attempt, receipt)),
            Ok((status, body)) => {
                panic!(
                    "unexpected answer {status}: {}",
                    String::from_utf8_lossy(&body)
                )
            }
            Err(_) => return (acknowledged, Some(attempt), counter),
        }
    }
    (acknowledged, None, counter)
}

async fn stored_payment_ids(db: &Path) -> Vec<String> {
    let url = format!("sqlite://{}?mode=ro", db.display());
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("open the database read-only");
    let ids: Vec<String> = sqlx::query_scalar("SELECT payment_id FROM payments")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    conn.close().await.ok();
    ids
}

#[tokio::test]
async fn sigkill_while_paying_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.sqlite");
    let http = common::http_client();

    let out = Command::new(env!("CARGO_BIN_EXE_facepay-server"))
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
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merchant: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let api_key = merchant["api_key"].as_str().unwrap().to_owned();

    // Register the devices once.
    let mut server = start(&db, &http).await;
    let mut devices = Vec::new();
    for c in 0..CLIENTS {
        let r = post(
            &http,
            format!("{}/v1/enrollments", server.base),
            &api_key,
            json!({"account_id": "s"}),
        )
        .await
        .unwrap();
        let token = r.json::<serde_json::Value>().await.unwrap()["enrollment_token"].clone();
        let signer = Arc::new(SoftwareSigner::generate().unwrap());
        let body = json!({"enrollment_token": token, "device_id": format!("dev{c}"),
                          "public_key": b64_encode(&signer.public_key())});
        let r = http
            .post(format!("{}/v1/devices", server.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        devices.push((format!("dev{c}"), signer, 0u64));
    }

    let mut acknowledged: Vec<(Attempt, Vec<u8>)> = Vec::new();
    let mut total_cut_off = 0;
    for cycle in 0..CYCLES {
        let tasks: Vec<_> = devices
            .iter()
            .map(|(id, signer, counter)| {
                tokio::spawn(client(
                    http.clone(),
                    server.base.clone(),
                    api_key.clone(),
                    id.clone(),
                    signer.clone(),
                    *counter,
                    cycle,
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(400)).await;
        server.child.kill().expect("SIGKILL the server");
        server.child.wait().unwrap();

        let mut cut_off = Vec::new();
        for (task, device) in tasks.into_iter().zip(devices.iter_mut()) {
            let (acked, pending, counter) = task.await.unwrap();
            acknowledged.extend(acked);
            cut_off.extend(pending);
            device.2 = counter;
        }
        total_cut_off += cut_off.len();

        // Restart on the same file: every acknowledged payment is there, exactly once.
        server = start(&db, &http).await;
        let ids = stored_payment_ids(&db).await;
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "duplicated payment rows");
        for (_, receipt) in &acknowledged {
            let r: Receipt = serde_json::from_slice(receipt).unwrap();
            assert!(
                unique.contains(&r.payment_id),
                "acknowledged payment {} lost",
                r.payment_id
            );
        }
        // A payment cut off by the kill completes exactly once when retried with its key.
        for attempt in cut_off {
            let (status, receipt) = pay(&http, &server.base, &attempt).await.unwrap();
            assert_eq!(status, 201, "{}", String::from_utf8_lossy(&receipt));
            acknowledged.push((attempt, receipt));
        }
    }

    // Retrying every acknowledged payment returns its original receipt, byte for byte, and adds nothing.
    let before = stored_payment_ids(&db).await.len();
    for (attempt, receipt) in &acknowledged {
        let (status, again) = pay(&http, &server.base, attempt).await.unwrap();
        assert_eq!((status, &again), (201, receipt));
    }
    let ids = stored_payment_ids(&db).await;
    assert_eq!(ids.len(), before);
    let acked_ids: HashMap<String, usize> = acknowledged
        .iter()
        .map(|(_, r)| serde_json::from_slice::<Receipt>(r).unwrap().payment_id)
        .fold(HashMap::new(), |mut m, id| {
            *m.entry(id).or_default() += 1;
            m
        });
    assert!(
        acked_ids.values().all(|&n| n == 1),
        "a payment was acknowledged twice"
    );
    assert_eq!(
        ids.len(),
        acked_ids.len(),
        "stored payments that no client saw acknowledged"
    );
    assert!(
        acknowledged.len() > CLIENTS * CYCLES,
        "too few payments to mean anything: {}",
        acknowledged.len()
    );
    eprintln!(
        "crash test: {CYCLES} SIGKILL/restart cycles, {} payments acknowledged, {total_cut_off} cut off and retried, 0 lost, 0 duplicated",
        acknowledged.len()
    );
    server.child.kill().ok();
    server.child.wait().ok();
}
