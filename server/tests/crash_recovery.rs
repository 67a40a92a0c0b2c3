//! Crash safety of the real `facepay-server` binary on an SQLite file: several clients pay concurrently while the
//! server is SIGKILLed and restarted on the same database, three times. Afterwards every payment a client saw
//! acknowledged must be stored exactly once (no loss, no duplicate, nothing half-written), and resubmitting it with
//! its idempotency key must return the original receipt.

mod client_support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use client_support::live_evidence;
use facepay_core::checkout::client::{
    CheckoutClient, CheckoutError, ClientConfig, MerchantClient, RetryPolicy, SignedPayment,
    Timeouts, TrustRoots, payment_payload, sign_payment,
};
use facepay_core::checkout::protocol::sha256;
use facepay_core::checkout::signer::SoftwareSigner;
use facepay_core::checkout::wire::{CreateOrderRequest, Receipt};
use facepay_server::{DatabaseTarget, SqliteSync, Store, TableCounts};
use sqlx::{Connection, Row};
use tokio::process::{Child, Command};

/// Concurrent paying clients (one device each).
const CLIENTS: usize = 4;
/// Kill / restart cycles.
const CYCLES: usize = 3;
/// Traffic before each kill, and after the last restart.
const TRAFFIC: Duration = Duration::from_millis(600);
/// Pause between attempts while the server is down.
const RETRY_PAUSE: Duration = Duration::from_millis(15);

/// An acknowledged payment, as the client saw it.
struct Acked {
    token: String,
    signed: SignedPayment,
    receipt: Receipt,
}

/// The server binary on a fixed loopback port and database file.
struct ServerProcess {
    db: PathBuf,
    port: u16,
    log: PathBuf,
    child: Option<Child>,
}

impl ServerProcess {
    async fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_facepay-server"))
            .args([
                "serve",
                "--plain-http",
                "--listen",
                &format!("127.0.0.1:{}", self.port),
                // Clients here keep challenges outstanding across kills; the rate limit is not what is tested.
                "--challenges-per-device",
                "100000",
                "--challenges-per-order",
                "100000",
                "--db",
            ])
            .arg(&self.db)
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn facepay-server");
        self.child = Some(child);
        let probe = CheckoutClient::new(config(self.port)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while probe.health().await.is_err() {
            assert!(
                Instant::now() < deadline,
                "server did not come up; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// SIGKILL: no graceful shutdown, no flush beyond what the server already committed.
    async fn kill(&mut self) {
        let mut child = self.child.take().expect("server running");
        child.start_kill().expect("SIGKILL");
        let status = child.wait().await.unwrap();
        assert!(
            !status.success(),
            "the server should have died of SIGKILL, got {status}"
        );
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn config(port: u16) -> ClientConfig {
    let mut config = ClientConfig::new(format!("http://127.0.0.1:{port}"), TrustRoots::System);
    config.retry = RetryPolicy::none();
    config.timeouts = Timeouts {
        connect: Duration::from_secs(1),
        request: Duration::from_secs(3),
    };
    config
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `step` until it succeeds, pausing after transient failures (the server is down); counts them.
async fn until_ok<T, F, Fut>(transient: &AtomicU64, mut step: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CheckoutError>>,
{
    loop {
        match step().await {
            Ok(value) => return value,
            Err(e) if e.is_transient() => {
                transient.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            Err(e) => panic!("non-transient failure during the crash test: {e}"),
        }
    }
}

/// One client: registers its device, then pays order after order until `stop`, never abandoning a payment.
async fn client_loop(
    index: usize,
    port: u16,
    merchant: Arc<MerchantClient>,
    stop: Arc<AtomicBool>,
    transient: Arc<AtomicU64>,
    acked_total: Arc<AtomicU64>,
) -> Vec<Acked> {
    let client = CheckoutClient::new(config(port)).unwrap();
    let signer = SoftwareSigner::generate().unwrap();
    let device_id = format!("crash-device-{index}");
    let enrollment = until_ok(&transient, || merchant.create_enrollment("crash-shopper")).await;
    until_ok(&transient, || {
        client.register_device(&enrollment.enrollment_token, &device_id, &signer)
    })
    .await;
    let mut acked = Vec::new();
    let mut attempt = 0u64;
    let mut counter = 0u64;
    while !stop.load(Ordering::Relaxed) {
        // A fresh order id per attempt: an order created just before a kill may have lost its answer.
        let created = until_ok(&transient, || {
            attempt += 1;
            let order_id = format!("crash-{index}-{attempt}");
            let request = CreateOrderRequest {
                items_digest: sha256(order_id.as_bytes()),
                order_id,
                amount_minor: 100 + attempt,
                currency: "EUR".into(),
            };
            let merchant = merchant.clone();
            async move { merchant.create_order(&request).await }
        })
        .await;
        let token = created.client_token;
        let challenge = until_ok(&transient, || client.challenge(&token, &device_id)).await;
        counter += 1;
        let payload = payment_payload(&challenge, &device_id, counter, live_evidence(&challenge));
        let signed = sign_payment(&payload, &signer).unwrap();
        let receipt = until_ok(&transient, || client.submit(&token, &signed)).await;
        acked.push(Acked {
            token,
            signed,
            receipt,
        });
        acked_total.fetch_add(1, Ordering::Relaxed);
    }
    acked
}

/// `(payment_id, order_id)` of every stored payment, read straight from the SQLite file, and the server's row
/// counts.
async fn stored(db: &Path) -> (Vec<(String, String)>, TableCounts) {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(db);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .expect("open the database");
    let rows = sqlx::query("SELECT payment_id, order_id FROM payments")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let payments = rows
        .iter()
        .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
        .collect();
    conn.close().await.ok();
    let store = Store::open(&DatabaseTarget::Sqlite(db.to_owned()), SqliteSync::Full, 1)
        .await
        .unwrap();
    let counts = store.table_counts().await.unwrap();
    store.close().await;
    (payments, counts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_payments_survive_sigkill_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.sqlite");
    let merchant = std::process::Command::new(env!("CARGO_BIN_EXE_facepay-server"))
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
        .expect("run facepay-server merchant create");
    assert!(
        merchant.status.success(),
        "{}",
        String::from_utf8_lossy(&merchant.stderr)
    );
    let merchant: serde_json::Value =
        serde_json::from_slice(&merchant.stdout).expect("merchant JSON");
    let api_key = merchant["api_key"].as_str().expect("api_key").to_owned();

    let mut server = ServerProcess {
        db: db.clone(),
        port: free_port(),
        log: dir.path().join("server.log"),
        child: None,
    };
    server.start().await;
    let merchant = Arc::new(MerchantClient::new(config(server.port), api_key).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let transient = Arc::new(AtomicU64::new(0));
    let acked_total = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (merchant, stop, transient, total) = (
                merchant.clone(),
                stop.clone(),
                transient.clone(),
                acked_total.clone(),
            );
            tokio::spawn(client_loop(
                i,
                server.port,
                merchant,
                stop,
                transient,
                total,
            ))
        })
        .collect();

    // Acknowledged payments when each kill came: traffic must have flowed in every cycle.
    let mut acked_at_kill = vec![0];
    for _ in 0..CYCLES {
        tokio::time::sleep(TRAFFIC).await;
        server.kill().await;
        acked_at_kill.push(acked_total.load(Ordering::Relaxed));
        server.start().await;
    }
    assert!(
        acked_at_kill.windows(2).all(|w| w[0] < w[1]),
        "some cycle acknowledged no payment before its kill: {acked_at_kill:?}"
    );
    tokio::time::sleep(TRAFFIC).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for client in clients {
        acked.extend(client.await.expect("client task"));
    }
    let transient = transient.load(Ordering::Relaxed);
    eprintln!(
        "{} payments acknowledged across {CYCLES} SIGKILLs; {transient} transient failures retried",
        acked.len()
    );
    assert!(
        acked.len() >= CLIENTS * 2,
        "too little traffic to test anything: {} payments",
        acked.len()
    );
    assert!(
        transient > 0,
        "no client ever saw the server down: the kills did not hit traffic"
    );

    // Every acknowledged payment, resubmitted with its idempotency key and body, returns the original receipt.
    let client = CheckoutClient::new(config(server.port)).unwrap();
    for a in &acked {
        let again = client
            .submit(&a.token, &a.signed)
            .await
            .expect("replay of an acknowledged payment");
        assert_eq!(
            again, a.receipt,
            "a retried acknowledged payment must return the original receipt"
        );
    }
    server.kill().await;

    // Stored exactly once: clients never abandon a payment, so the stored set equals the acknowledged set.
    let (rows, counts) = stored(&db).await;
    let mut stored_ids: Vec<&str> = rows.iter().map(|(id, _)| id.as_str()).collect();
    stored_ids.sort_unstable();
    let mut acked_ids: Vec<&str> = acked
        .iter()
        .map(|a| a.receipt.payment_id.as_str())
        .collect();
    acked_ids.sort_unstable();
    let before = acked_ids.len();
    acked_ids.dedup();
    assert_eq!(
        acked_ids.len(),
        before,
        "two acknowledged payments share a payment id"
    );
    assert_eq!(
        stored_ids, acked_ids,
        "stored payments differ from acknowledged ones (lost or extra)"
    );
    for a in &acked {
        let orders: Vec<_> = rows
            .iter()
            .filter(|(_, order)| *order == a.receipt.order_id)
            .collect();
        assert_eq!(
            orders.len(),
            1,
            "order {} is stored {} times",
            a.receipt.order_id,
            orders.len()
        );
        assert_eq!(orders[0].0, a.receipt.payment_id);
    }
    // Nothing half-written: each payment consumed its nonce, paid its order, kept its idempotency key and raised
    // its device's counter (each device's last counter is its number of payments: counters start at 1).
    let n = rows.len() as i64;
    assert_eq!(
        (
            counts.used_nonces,
            counts.paid_orders,
            counts.idempotency_keys,
            counts.counter_sum
        ),
        (n, n, n, n + CLIENTS as i64),
        "{counts:?} for {n} payments"
    );
}
