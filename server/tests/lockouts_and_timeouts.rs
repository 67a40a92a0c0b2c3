//! Lock-outs that hold (in the database: a restarted server still enforces them; a wrong client token counts
//! against nobody; bad signatures lock the sender's order, not the device they name), `429` with `Retry-After`,
//! the challenge rate limits, and the header-read / whole-request timeouts against a slow client.

mod common;

use std::time::{Duration, Instant};

use common::{Env, http_client, on_each_backend, payload_for, signed};
use facepay_core::checkout::protocol::LivenessVerdict;
use facepay_core::checkout::wire::{ErrorBody, ErrorCode};
use facepay_server::{LockoutPolicy, Server, ServerConfig};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn three_strikes(c: &mut ServerConfig) {
    c.lockout = LockoutPolicy {
        max_failures: 3,
        window: Duration::from_secs(60),
        lockout: Duration::from_secs(120),
    };
}

/// POSTs and returns (status, Retry-After header, error code).
async fn post(env: &Env, path: &str, bearer: Option<&str>, idem: Option<&str>, body: &serde_json::Value) -> (u16, Option<u64>, Option<ErrorCode>) {
    let mut req = http_client().post(format!("{}{path}", env.base)).json(body);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    if let Some(k) = idem {
        req = req.header("Idempotency-Key", k);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let bytes = resp.bytes().await.unwrap();
    let code = serde_json::from_slice::<ErrorBody>(&bytes).ok().map(|b| b.error.code);
    (status, retry, code)
}

fn pay_body(bytes: &[u8], sig: &[u8]) -> serde_json::Value {
    json!({"payload": facepay_core::checkout::wire::b64_encode(bytes), "signature": facepay_core::checkout::wire::b64_encode(sig)})
}

#[tokio::test]
async fn lockouts_live_in_the_database_and_count_against_the_right_subject() {
    on_each_backend(|backend| async move {
        let target = backend.target();
        let env = Env::start(backend, three_strikes).await;
        let victim = env.device("dev-victim").await;
        let order = env.order("o-1", 100, "EUR").await;
        // A wrong client token: 401 every time, and nothing is counted against the device.
        let ch = env.challenge(&order.client_token, &victim.id).await;
        let (bytes, sig) = signed(&payload_for(&ch, &victim.id, 1), &victim);
        for i in 0..5 {
            let (status, _, code) = post(&env, "/v1/checkout/pay", Some("fpc_wrong"), Some(&format!("w-{i}")), &pay_body(&bytes, &sig)).await;
            assert_eq!((status, code), (401, Some(ErrorCode::Unauthorized)));
        }
        // An attacker with a valid client token of their own order sends garbage signatures naming the victim's
        // device: their order gets locked, the device does not.
        let attacker_order = env.order("o-attacker", 100, "EUR").await;
        let ach = env.challenge(&attacker_order.client_token, &victim.id).await;
        let (abytes, _) = signed(&payload_for(&ach, &victim.id, 1), &victim);
        for i in 0..3 {
            let (status, _, code) = post(&env, "/v1/checkout/pay", Some(&attacker_order.client_token), Some(&format!("a-{i}")), &pay_body(&abytes, b"not a signature")).await;
            assert_eq!((status, code), (403, Some(ErrorCode::BadSignature)), "attempt {i}");
        }
        let (status, retry, code) = post(&env, "/v1/checkout/pay", Some(&attacker_order.client_token), Some("a-x"), &pay_body(&abytes, b"x")).await;
        assert_eq!((status, code), (429, Some(ErrorCode::OrderLocked)));
        assert!(retry.is_some_and(|r| r > 0 && r <= 120), "Retry-After {retry:?}");
        // The victim still pays.
        env.pay_ok(&order.client_token, "v-1", &bytes, &sig).await;
        // The device's own signed failures (liveness failed) lock the device, with Retry-After.
        let order2 = env.order("o-2", 100, "EUR").await;
        for i in 0..3 {
            let ch = env.challenge(&order2.client_token, &victim.id).await;
            let mut p = payload_for(&ch, &victim.id, 10 + i);
            p.evidence.liveness = LivenessVerdict::NotLive;
            let (b, s) = signed(&p, &victim);
            let (status, _, code) = post(&env, "/v1/checkout/pay", Some(&order2.client_token), Some(&format!("l-{i}")), &pay_body(&b, &s)).await;
            assert_eq!((status, code), (403, Some(ErrorCode::LivenessFailed)), "attempt {i}");
        }
        let (status, retry, code) = post(&env, "/v1/checkout/challenge", Some(&order2.client_token), None, &json!({"device_id": victim.id})).await;
        assert_eq!((status, code), (429, Some(ErrorCode::DeviceLocked)));
        assert!(retry.is_some_and(|r| r > 0 && r <= 120), "Retry-After {retry:?}");
        // A restarted server on the same database still enforces it.
        let base_env_backend = env.backend;
        env.server.shutdown().await;
        let mut config = ServerConfig::new(target);
        three_strikes(&mut config);
        let restarted = Server::start(config).await.unwrap();
        let resp = http_client()
            .post(format!("{}/v1/checkout/challenge", restarted.base_url()))
            .bearer_auth(&order2.client_token)
            .json(&json!({"device_id": victim.id}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 429, "{base_env_backend}: lock-out lost on restart");
        assert!(resp.headers().contains_key("retry-after"));
        restarted.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn challenges_are_rate_limited_per_device_and_per_order() {
    on_each_backend(|backend| async move {
        let env = Env::start(backend, |c| {
            c.limits.challenges_per_device = 4;
            c.limits.challenges_per_order = 3;
        })
        .await;
        let dev = env.device("dev-1").await;
        let order = env.order("o-1", 100, "EUR").await;
        for _ in 0..3 {
            env.challenge(&order.client_token, &dev.id).await;
        }
        let (status, retry, code) = post(&env, "/v1/checkout/challenge", Some(&order.client_token), None, &json!({"device_id": dev.id})).await;
        assert_eq!((status, code), (429, Some(ErrorCode::RateLimited)), "per order");
        assert!(retry.is_some_and(|r| r > 0), "Retry-After {retry:?}");
        let order2 = env.order("o-2", 100, "EUR").await;
        env.challenge(&order2.client_token, &dev.id).await;
        let (status, _, code) = post(&env, "/v1/checkout/challenge", Some(&order2.client_token), None, &json!({"device_id": dev.id})).await;
        assert_eq!((status, code), (429, Some(ErrorCode::RateLimited)), "per device");
    })
    .await;
}

/// Opens a raw connection to the server.
async fn raw(env: &Env) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(env.server.addr()).await.unwrap()
}

/// Reads until EOF (or `limit` passes); returns what came and when the connection ended.
async fn read_until_closed(stream: &mut tokio::net::TcpStream, limit: Duration) -> (Vec<u8>, Option<Duration>) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (got, Some(started.elapsed())),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (got, None),
        }
    }
}

#[tokio::test]
async fn a_client_stalling_in_its_headers_or_body_is_cut_off_within_the_timeouts() {
    let env = Env::start(common::sqlite(), |c| {
        c.header_read_timeout = Duration::from_millis(800);
        c.request_timeout = Duration::from_millis(1500);
    })
    .await;
    // Half a header, then silence: the connection is closed after the header-read timeout.
    let mut stream = raw(&env).await;
    stream.write_all(b"POST /v1/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty").await.unwrap();
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let closed = closed.expect("the server kept a stalled half-header connection open for 5 s");
    assert!(closed >= Duration::from_millis(600) && closed < Duration::from_millis(2500), "closed after {closed:?}");
    // Complete headers, then a body that never finishes: 408 request_timeout within the request timeout.
    let mut stream = raw(&env).await;
    stream
        .write_all(b"POST /v1/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"order")
        .await
        .unwrap();
    let (answer, closed) = read_until_closed(&mut stream, Duration::from_secs(6)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "answer: {text}");
    assert!(text.contains("request_timeout"), "answer: {text}");
    let closed = closed.expect("connection left open");
    assert!(closed < Duration::from_secs(4), "closed after {closed:?}");
    // Ordinary requests are unaffected.
    assert_eq!(env.get("/healthz").await.status, 200);
}
