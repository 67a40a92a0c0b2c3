//! TLS: a self-signed certificate pinned by the client, certificate files, and plain HTTP refused off loopback.

mod common;

use std::time::Duration;

use facepay_core::checkout::wire::{Health, b64_encode};
use facepay_server::{Server, ServerConfig, ServerError, TlsMode};

fn pinned_client(cert_pem: &[u8]) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = reqwest::Certificate::from_pem(cert_pem).expect("PEM certificate");
    reqwest::Client::builder()
        .tls_certs_only([cert])
        .https_only(true)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

#[tokio::test]
async fn self_signed_certificate_pinned_by_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let cert_out = dir.path().join("server-cert.pem");
    let db = common::sqlite();
    let mut config = ServerConfig::new(db.target());
    config.tls = TlsMode::SelfSigned {
        cert_out: cert_out.clone(),
    };
    let server = Server::start(config).await.unwrap();
    let base = server.base_url();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let pem = std::fs::read(&cert_out).expect("certificate PEM written");

    let client = pinned_client(&pem);
    let health: Health = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health.status, "ok");

    // A real API call over TLS.
    let merchant = server.create_merchant("TLS shop").await.unwrap();
    let body = serde_json::json!({
        "order_id": "o-tls", "amount_minor": 100, "currency": "EUR", "items_digest": b64_encode(&[1; 32]),
    });
    let resp = client
        .post(format!("{base}/v1/orders"))
        .bearer_auth(&merchant.api_key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);

    // A client that pins another certificate refuses the server.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let stranger = pinned_client(other.cert.pem().as_bytes());
    let err = stranger
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect_err("untrusted certificate");
    assert!(err.is_connect() || err.is_request(), "{err:?}");

    // Plain HTTP to the TLS port gets no API answer.
    let plain = common::http_client();
    let plain_url = base.replacen("https://", "http://", 1);
    let answered = plain
        .get(format!("{plain_url}/healthz"))
        .send()
        .await
        .map(|r| r.status().is_success());
    assert!(!answered.unwrap_or(false));
    server.shutdown().await;
}

#[tokio::test]
async fn certificate_files() {
    let dir = tempfile::tempdir().unwrap();
    let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
    let db = common::sqlite();
    let mut config = ServerConfig::new(db.target());
    config.tls = TlsMode::Files {
        cert: cert.clone(),
        key: key.clone(),
    };
    let server = Server::start(config).await.unwrap();
    let client = pinned_client(generated.cert.pem().as_bytes());
    let resp = client
        .get(format!("{}/healthz", server.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    server.shutdown().await;

    // Unreadable or mismatched material is a typed start-up error.
    let db = common::sqlite();
    let mut config = ServerConfig::new(db.target());
    config.tls = TlsMode::Files {
        cert: key.clone(),
        key: cert.clone(),
    };
    assert!(matches!(
        Server::start(config).await,
        Err(ServerError::Tls(_))
    ));
}

#[tokio::test]
async fn plain_http_is_refused_off_loopback() {
    let db = common::sqlite();
    let mut config = ServerConfig::new(db.target());
    config.listen = "0.0.0.0:0".parse().unwrap();
    assert!(matches!(
        Server::start(config).await,
        Err(ServerError::PlainNotLoopback(_))
    ));
}
