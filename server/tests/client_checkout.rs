//! The device and merchant clients (`facepay_core::checkout::client`) against a real `facepay-server` on loopback:
//! the happy path over TLS with a pinned self-signed certificate, TLS failures, retries of transient faults with the
//! same idempotency key (through a fault-injecting proxy), and the typed error of every server rejection.

mod client_support;

use std::time::Duration;

use client_support::{Fault, FaultyProxy, live_evidence};
use facepay_core::checkout::client::{
    CheckoutClient, CheckoutError, ClientConfig, MerchantClient, RetryPolicy, TrustRoots,
    payment_payload, sign_payment,
};
use facepay_core::checkout::protocol::{LivenessVerdict, PaymentPayload, sha256};
use facepay_core::checkout::signer::SoftwareSigner;
use facepay_core::checkout::wire::{
    ChallengeResponse, CreateOrderRequest, ErrorCode, PaymentStatus, Receipt,
};
use facepay_server::{DatabaseTarget, NewMerchant, RunningServer, Server, ServerConfig, TlsMode};

/// A running server with one merchant, its merchant client and a device client.
struct Shop {
    server: RunningServer,
    merchant: NewMerchant,
    merchant_client: MerchantClient,
    device_client: CheckoutClient,
    _dir: tempfile::TempDir,
}

/// Retries fast, so the retry tests take milliseconds.
fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
    }
}

impl Shop {
    /// Starts a server on a fresh SQLite file with `tls`, and clients that trust `trust`.
    async fn start(
        tls: impl FnOnce(&std::path::Path) -> TlsMode,
        tweak: impl FnOnce(&mut ServerConfig),
    ) -> Shop {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig::new(DatabaseTarget::Sqlite(dir.path().join("shop.sqlite")));
        config.tls = tls(dir.path());
        tweak(&mut config);
        let server = Server::start(config).await.expect("server starts");
        let merchant = server.create_merchant("Client test shop").await.unwrap();
        let trust = match std::fs::read(dir.path().join("cert.pem")) {
            Ok(pem) => TrustRoots::PinnedCertPem(pem),
            Err(_) => TrustRoots::System,
        };
        let mut config = ClientConfig::new(server.base_url(), trust);
        config.retry = quick_retries();
        Shop {
            merchant_client: MerchantClient::new(config.clone(), merchant.api_key.clone()).unwrap(),
            device_client: CheckoutClient::new(config).unwrap(),
            server,
            merchant,
            _dir: dir,
        }
    }

    /// Plain HTTP on loopback.
    async fn plain() -> Shop {
        Shop::start(|_| TlsMode::PlainLoopback, |_| {}).await
    }

    /// A client config for this server with `retry`.
    fn config(&self, base_url: &str, retry: RetryPolicy) -> ClientConfig {
        let mut config = ClientConfig::new(base_url, TrustRoots::System);
        config.retry = retry;
        config
    }

    /// Creates an order and returns its client token.
    async fn order(&self, order_id: &str, amount_minor: u64) -> String {
        let request = CreateOrderRequest {
            order_id: order_id.into(),
            amount_minor,
            currency: "EUR".into(),
            items_digest: sha256(order_id.as_bytes()),
        };
        let created = self
            .merchant_client
            .create_order(&request)
            .await
            .expect("order created");
        assert_eq!(created.order.merchant_id, self.merchant.merchant_id);
        assert_eq!(created.order.amount_minor, amount_minor);
        created.client_token
    }

    /// Enrols and registers a fresh device key under `device_id`.
    async fn device(&self, device_id: &str) -> SoftwareSigner {
        let enrollment = self
            .merchant_client
            .create_enrollment("shopper-7")
            .await
            .expect("enrolment");
        let signer = SoftwareSigner::generate().unwrap();
        let registered = self
            .device_client
            .register_device(&enrollment.enrollment_token, device_id, &signer)
            .await
            .expect("device registered");
        assert_eq!(
            (
                registered.device_id.as_str(),
                registered.account_id.as_str()
            ),
            (device_id, "shopper-7")
        );
        signer
    }

    /// A challenge for the order of `token` and its well-formed payload with `counter`.
    async fn payload(
        &self,
        token: &str,
        device_id: &str,
        counter: u64,
    ) -> (ChallengeResponse, PaymentPayload) {
        let challenge = self
            .device_client
            .challenge(token, device_id)
            .await
            .expect("challenge");
        let payload = payment_payload(&challenge, device_id, counter, live_evidence(&challenge));
        (challenge, payload)
    }

    async fn payments(&self) -> i64 {
        self.server.store().table_counts().await.unwrap().payments
    }
}

/// Asserts a typed rejection with this status and code.
#[track_caller]
fn assert_rejected<T: std::fmt::Debug>(
    result: Result<T, CheckoutError>,
    status: u16,
    code: ErrorCode,
) {
    match result {
        Err(CheckoutError::Rejected {
            status: s,
            code: c,
            message,
        }) => {
            assert_eq!((s, c), (status, code), "message: {message}");
            assert!(!message.is_empty());
        }
        other => panic!("expected Rejected {{ {status}, {code} }}, got {other:?}"),
    }
}

#[tokio::test]
async fn happy_path_over_tls_with_a_pinned_self_signed_certificate() {
    let shop = Shop::start(
        |dir| TlsMode::SelfSigned {
            cert_out: dir.join("cert.pem"),
        },
        |_| {},
    )
    .await;
    assert!(shop.server.base_url().starts_with("https://"));
    let health = shop.device_client.health().await.expect("health over TLS");
    assert_eq!(
        (
            health.status.as_str(),
            health.backend.as_str(),
            health.protocol.as_str()
        ),
        (
            "ok",
            "sqlite",
            facepay_core::checkout::protocol::PROTOCOL_VERSION
        )
    );

    let signer = shop.device("phone-1").await;
    let mut receipts: Vec<Receipt> = Vec::new();
    for (i, amount) in [(1u64, 1999u64), (2, 250)] {
        let token = shop.order(&format!("tls-order-{i}"), amount).await;
        let (challenge, payload) = shop.payload(&token, "phone-1", i).await;
        assert!((3..=4).contains(&challenge.challenges.len()));
        let receipt = shop
            .device_client
            .pay(&token, &payload, &signer)
            .await
            .expect("payment accepted");
        assert_eq!(receipt.order_id, format!("tls-order-{i}"));
        assert_eq!(
            (receipt.amount_minor, receipt.currency.as_str()),
            (amount, "EUR")
        );
        assert_eq!(receipt.status, PaymentStatus::Succeeded);
        receipts.push(receipt);
    }
    assert_ne!(receipts[0].payment_id, receipts[1].payment_id);
    assert_eq!(shop.payments().await, 2);
    shop.server.shutdown().await;
}

#[tokio::test]
async fn an_untrusted_server_certificate_is_a_typed_tls_error() {
    let shop = Shop::start(
        |dir| TlsMode::SelfSigned {
            cert_out: dir.join("cert.pem"),
        },
        |_| {},
    )
    .await;
    let other =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    for trust in [
        TrustRoots::PinnedCertPem(other.cert.pem().into_bytes()),
        TrustRoots::System,
    ] {
        let mut config = ClientConfig::new(shop.server.base_url(), trust.clone());
        config.retry = quick_retries();
        let client = CheckoutClient::new(config).unwrap();
        let started = std::time::Instant::now();
        match client.health().await {
            Err(CheckoutError::Tls(message)) => assert!(!message.is_empty()),
            other => panic!("{trust:?}: expected a TLS error, got {other:?}"),
        }
        // TLS failures are final: no backoff was slept (the quick policy would sleep >= 10 ms per retry).
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    shop.server.shutdown().await;
}

#[tokio::test]
async fn plain_http_to_a_closed_port_is_a_network_error_after_retries() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut config = ClientConfig::new(url, TrustRoots::System);
    config.retry = quick_retries();
    let client = CheckoutClient::new(config).unwrap();
    assert!(matches!(
        client.health().await,
        Err(CheckoutError::Network(_))
    ));
}

/// Pays one order through a proxy that applies `faults`; returns the receipt, the proxy log and the shop.
async fn pay_through(faults: Vec<Fault>) -> (Receipt, Vec<client_support::Exchange>, Shop) {
    let shop = Shop::plain().await;
    let signer = shop.device("phone-r").await;
    let token = shop.order("retry-order", 4200).await;
    let (_, payload) = shop.payload(&token, "phone-r", 1).await;
    let proxy = FaultyProxy::start(shop.server.addr(), faults).await;
    let client = CheckoutClient::new(shop.config(&proxy.url, quick_retries())).unwrap();
    let receipt = client
        .pay(&token, &payload, &signer)
        .await
        .expect("payment accepted after retries");
    (receipt, proxy.exchanges(), shop)
}

/// Asserts that every attempt carried the same idempotency key and the same body.
fn assert_same_attempts(log: &[client_support::Exchange], attempts: usize) {
    assert_eq!(
        log.len(),
        attempts,
        "attempts seen by the proxy: {:?}",
        log.iter().map(|e| e.fault).collect::<Vec<_>>()
    );
    let key = log[0]
        .header("idempotency-key")
        .expect("Idempotency-Key header");
    for exchange in log {
        assert_eq!(exchange.request_line(), "POST /v1/checkout/pay HTTP/1.1");
        assert_eq!(
            exchange.header("idempotency-key").as_deref(),
            Some(key.as_str())
        );
        assert_eq!(exchange.body(), log[0].body(), "a retry changed the body");
    }
}

#[tokio::test]
async fn a_503_is_retried_with_the_same_idempotency_key_and_body() {
    let (receipt, log, shop) = pay_through(vec![Fault::Unavailable, Fault::Unavailable]).await;
    assert_same_attempts(&log, 3);
    assert_eq!(receipt.order_id, "retry-order");
    assert_eq!(shop.payments().await, 1);
}

#[tokio::test]
async fn a_reset_connection_is_retried() {
    let (receipt, log, shop) = pay_through(vec![Fault::Reset]).await;
    assert_same_attempts(&log, 2);
    assert_eq!(receipt.amount_minor, 4200);
    assert_eq!(shop.payments().await, 1);
}

#[tokio::test]
async fn a_lost_answer_is_retried_and_returns_the_original_payment() {
    let (receipt, log, shop) = pay_through(vec![Fault::DropAnswer]).await;
    assert_same_attempts(&log, 2);
    let lost: Receipt =
        serde_json::from_slice(log[0].answer_body().expect("the server answered")).unwrap();
    assert_eq!(
        receipt, lost,
        "the retry must replay the original receipt, not record a second payment"
    );
    assert_eq!(shop.payments().await, 1);
}

#[tokio::test]
async fn retries_give_up_with_the_last_transient_error() {
    let shop = Shop::plain().await;
    let signer = shop.device("phone-g").await;
    let token = shop.order("give-up", 100).await;
    let (_, payload) = shop.payload(&token, "phone-g", 1).await;
    let proxy = FaultyProxy::start(shop.server.addr(), vec![Fault::Unavailable; 3]).await;
    let mut retry = quick_retries();
    retry.max_attempts = 3;
    let client = CheckoutClient::new(shop.config(&proxy.url, retry)).unwrap();
    match client.pay(&token, &payload, &signer).await {
        Err(CheckoutError::Server {
            status: 503,
            code: Some(ErrorCode::Unavailable),
            ..
        }) => {}
        other => panic!("expected the 503 after 3 attempts, got {other:?}"),
    }
    assert_eq!(proxy.exchanges().len(), 3);
    assert_eq!(shop.payments().await, 0);
}

#[tokio::test]
async fn rejections_are_not_retried() {
    let shop = Shop::plain().await;
    let signer = shop.device("phone-n").await;
    let token = shop.order("no-retry", 100).await;
    let (_, mut payload) = shop.payload(&token, "phone-n", 1).await;
    payload.evidence.liveness = LivenessVerdict::Spoof;
    let proxy = FaultyProxy::start(shop.server.addr(), vec![]).await;
    let client = CheckoutClient::new(shop.config(&proxy.url, quick_retries())).unwrap();
    assert_rejected(
        client.pay(&token, &payload, &signer).await,
        403,
        ErrorCode::LivenessFailed,
    );
    assert_eq!(proxy.exchanges().len(), 1, "a 4xx must not be retried");
}

#[tokio::test]
async fn resubmitting_a_signed_payment_replays_and_a_changed_body_conflicts() {
    let shop = Shop::plain().await;
    let signer = shop.device("phone-i").await;
    let token = shop.order("idem", 990).await;
    let (_, payload) = shop.payload(&token, "phone-i", 5).await;
    let signed = sign_payment(&payload, &signer).unwrap();
    let first = shop.device_client.submit(&token, &signed).await.unwrap();
    let again = shop.device_client.submit(&token, &signed).await.unwrap();
    assert_eq!(first, again);
    // Same key, a different (re-signed: ECDSA is randomised) body.
    let resigned = sign_payment(&payload, &signer).unwrap();
    assert_ne!(resigned.request, signed.request);
    let mut conflicting = resigned;
    conflicting.idempotency_key = signed.idempotency_key.clone();
    assert_rejected(
        shop.device_client.submit(&token, &conflicting).await,
        409,
        ErrorCode::IdempotencyConflict,
    );
    assert_eq!(shop.payments().await, 1);
}

#[tokio::test]
async fn every_server_rejection_maps_to_its_typed_error() {
    let shop = Shop::plain().await;
    let client = &shop.device_client;

    // Merchant side.
    let wrong_key = MerchantClient::new(
        shop.config(&shop.server.base_url(), quick_retries()),
        "fpk_wrong",
    )
    .unwrap();
    assert_rejected(
        wrong_key.create_enrollment("a").await,
        401,
        ErrorCode::Unauthorized,
    );
    shop.order("dup", 100).await;
    let dup = CreateOrderRequest {
        order_id: "dup".into(),
        amount_minor: 100,
        currency: "EUR".into(),
        items_digest: [0; 32],
    };
    assert_rejected(
        shop.merchant_client.create_order(&dup).await,
        409,
        ErrorCode::OrderExists,
    );
    let bad_currency = CreateOrderRequest {
        order_id: "cur".into(),
        currency: "euro".into(),
        ..dup
    };
    assert_rejected(
        shop.merchant_client.create_order(&bad_currency).await,
        400,
        ErrorCode::InvalidRequest,
    );

    // Registration.
    let stranger = SoftwareSigner::generate().unwrap();
    assert_rejected(
        client
            .register_device("fpe_unknown", "phone-x", &stranger)
            .await,
        401,
        ErrorCode::InvalidEnrollmentToken,
    );
    let signer = shop.device("phone-a").await;
    let enrollment = shop
        .merchant_client
        .create_enrollment("someone-else")
        .await
        .unwrap();
    assert_rejected(
        client
            .register_device(&enrollment.enrollment_token, "phone-a", &stranger)
            .await,
        409,
        ErrorCode::DeviceExists,
    );

    // Challenge.
    assert_rejected(
        client.challenge("fpc_wrong", "phone-a").await,
        401,
        ErrorCode::Unauthorized,
    );
    let token = shop.order("o-1", 1500).await;
    assert_rejected(
        client.challenge(&token, "phone-nobody").await,
        403,
        ErrorCode::UnknownDevice,
    );

    // Pay: each failure on its own device, so the lock-out (5 failures) does not interfere.
    let other = shop.device("phone-b").await;
    let (_, payload) = shop.payload(&token, "phone-a", 1).await;
    assert_rejected(
        client.pay(&token, &payload, &other).await,
        403,
        ErrorCode::BadSignature,
    );
    assert_rejected(
        client.pay("fpc_wrong", &payload, &signer).await,
        401,
        ErrorCode::Unauthorized,
    );

    let signer_c = shop.device("phone-c").await;
    let (_, mut payload) = shop.payload(&token, "phone-c", 1).await;
    payload.evidence.challenges.reverse();
    payload
        .evidence
        .challenges
        .push(payload.evidence.challenges[0]);
    assert_rejected(
        client.pay(&token, &payload, &signer_c).await,
        403,
        ErrorCode::ChallengeMismatch,
    );

    let signer_d = shop.device("phone-d").await;
    let token_2 = shop.order("o-2", 1500).await;
    let (_, payload) = shop.payload(&token, "phone-d", 1).await;
    assert_rejected(
        client.pay(&token_2, &payload, &signer_d).await,
        403,
        ErrorCode::OrderMismatch,
    );
    let (_, mut payload) = shop.payload(&token, "phone-d", 1).await;
    payload.order.amount_minor = 1;
    assert_rejected(
        client.pay(&token, &payload, &signer_d).await,
        403,
        ErrorCode::OrderMismatch,
    );

    let signer_e = shop.device("phone-e").await;
    let (from_o1, _) = shop.payload(&token, "phone-e", 1).await;
    let (_, mut payload) = shop.payload(&token_2, "phone-e", 1).await;
    payload.nonce = from_o1.nonce;
    payload.evidence = live_evidence(&from_o1);
    assert_rejected(
        client.pay(&token_2, &payload, &signer_e).await,
        403,
        ErrorCode::NonceMismatch,
    );
    let (_, mut payload) = shop.payload(&token, "phone-e", 1).await;
    payload.nonce = [9; 32];
    payload.evidence.challenges =
        facepay_core::checkout::protocol::challenges_for_nonce(&payload.nonce);
    assert_rejected(
        client.pay(&token, &payload, &signer_e).await,
        403,
        ErrorCode::NonceUnknown,
    );

    // A good payment, then a reused nonce, a counter that does not increase and a paid order.
    let (_, paid) = shop.payload(&token, "phone-a", 10).await;
    client
        .pay(&token, &paid, &signer)
        .await
        .expect("valid payment");
    let mut reused = paid.clone();
    reused.counter = 11;
    assert_rejected(
        client.pay(&token, &reused, &signer).await,
        409,
        ErrorCode::NonceReused,
    );
    let (_, stale) = shop.payload(&token_2, "phone-a", 10).await;
    assert_rejected(
        client.pay(&token_2, &stale, &signer).await,
        409,
        ErrorCode::CounterNotIncreasing,
    );
    assert_rejected(
        client.challenge(&token, "phone-a").await,
        409,
        ErrorCode::OrderAlreadyPaid,
    );

    // Lock-out after 5 failures of one device (phone-a has 2 so far: nonce reused, counter; the bad signature counted
    // against the order, not the device).
    let (_, spoof) = shop.payload(&token_2, "phone-a", 20).await;
    let spoof = PaymentPayload {
        evidence: facepay_core::checkout::protocol::Evidence {
            liveness: LivenessVerdict::Spoof,
            ..spoof.evidence.clone()
        },
        ..spoof
    };
    assert_rejected(
        client.pay(&token_2, &spoof, &signer).await,
        403,
        ErrorCode::LivenessFailed,
    );
    assert_rejected(
        client.pay(&token_2, &spoof, &signer).await,
        403,
        ErrorCode::LivenessFailed,
    );
    assert_rejected(
        client.pay(&token_2, &spoof, &signer).await,
        403,
        ErrorCode::LivenessFailed,
    );
    assert_rejected(
        client.pay(&token_2, &spoof, &signer).await,
        429,
        ErrorCode::DeviceLocked,
    );
    assert_rejected(
        client.challenge(&token_2, "phone-a").await,
        429,
        ErrorCode::DeviceLocked,
    );

    assert_eq!(shop.payments().await, 1);
    shop.server.shutdown().await;
}

#[tokio::test]
async fn an_expired_nonce_is_rejected() {
    let shop = Shop::start(
        |_| TlsMode::PlainLoopback,
        |c| c.nonce_ttl = Duration::from_millis(300),
    )
    .await;
    let signer = shop.device("phone-t").await;
    let token = shop.order("late", 700).await;
    let (_, payload) = shop.payload(&token, "phone-t", 1).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_rejected(
        shop.device_client.pay(&token, &payload, &signer).await,
        403,
        ErrorCode::NonceExpired,
    );
    assert_eq!(shop.payments().await, 0);
}
