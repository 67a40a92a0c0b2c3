//! A webhook receiver for the tests: a real HTTP server on 127.0.0.1 that records every delivery (signature
//! header, event id header, raw body) and answers 200, 500, or not at all, as the test switches it.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use facepay_core::checkout::webhook::{
    DEFAULT_TOLERANCE, Event, SIGNATURE_HEADER, construct_event,
};

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// 200.
    Accept = 0,
    /// 500.
    Fail = 1,
    /// Never answers (the delivery is recorded, the sender times out or dies).
    Hold = 2,
}

/// One delivery as received.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// `FacePay-Signature`.
    pub signature: String,
    /// `FacePay-Event-Id`.
    pub event_id_header: String,
    /// Raw body.
    pub body: Vec<u8>,
    /// Whether it was answered 200.
    pub accepted: bool,
}

#[derive(Default)]
struct Shared {
    mode: AtomicU8,
    deliveries: Mutex<Vec<Delivery>>,
}

/// The running receiver.
pub struct Receiver {
    /// `http://127.0.0.1:PORT/hook`.
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

async fn hook(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let mode = shared.mode.load(Ordering::SeqCst);
    shared.deliveries.lock().unwrap().push(Delivery {
        signature: header(SIGNATURE_HEADER),
        event_id_header: header("FacePay-Event-Id"),
        body: body.to_vec(),
        accepted: mode == Mode::Accept as u8,
    });
    match mode {
        0 => StatusCode::OK,
        1 => StatusCode::INTERNAL_SERVER_ERROR,
        _ => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK
        }
    }
}

impl Receiver {
    /// Starts a receiver in `mode`.
    pub async fn start(mode: Mode) -> Receiver {
        let shared = Arc::new(Shared::default());
        shared.mode.store(mode as u8, Ordering::SeqCst);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/hook", post(hook))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { url, shared, task }
    }

    /// Switches how later deliveries are answered.
    pub fn set_mode(&self, mode: Mode) {
        self.shared.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// Every delivery so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.deliveries.lock().unwrap().clone()
    }

    /// Waits (up to `limit`) until `done` holds for the deliveries so far.
    pub async fn wait_until(
        &self,
        limit: Duration,
        done: impl Fn(&[Delivery]) -> bool,
    ) -> Vec<Delivery> {
        let deadline = Instant::now() + limit;
        loop {
            let seen = self.deliveries();
            if done(&seen) {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "webhook receiver: condition not met in {limit:?}; {} deliveries: {:?}",
                seen.len(),
                seen.iter()
                    .map(|d| (&d.event_id_header, d.accepted))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Verifies one delivery with `secret` (the core's merchant-side verifier) and checks the id header matches.
pub fn verified(delivery: &Delivery, secret: &str) -> Event {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let event = construct_event(
        &delivery.body,
        &delivery.signature,
        secret,
        now,
        DEFAULT_TOLERANCE,
    )
    .unwrap_or_else(|e| {
        panic!(
            "delivery does not verify: {e}; header {}",
            delivery.signature
        )
    });
    assert_eq!(event.id, delivery.event_id_header);
    event
}

/// Accepted deliveries per event id.
pub fn accepted_by_id(deliveries: &[Delivery]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for d in deliveries.iter().filter(|d| d.accepted) {
        *out.entry(d.event_id_header.clone()).or_default() += 1;
    }
    out
}
