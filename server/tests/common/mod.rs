//! Test harness: a real `facepay-server` on 127.0.0.1:0 over a real database (an SQLite file in a temp dir,
//! and a fresh PostgreSQL database when `FACEPAY_TEST_DATABASE_URL` is set), a real HTTP client, real keys.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::future::Future;
use std::time::Duration;

use facepay_core::checkout::protocol::{
    Evidence, LivenessVerdict, PaymentPayload, challenges_for_nonce, registration_message, sha256,
};
use facepay_core::checkout::signer::{DeviceSigner, SoftwareSigner};
use facepay_core::checkout::wire::{
    ChallengeResponse, CreateEnrollmentResponse, CreateOrderResponse, ErrorBody, ErrorCode,
    PayRequest, Receipt, RegisterDeviceResponse, RegistrationChallengeResponse, b64_decode,
    b64_encode,
};
use facepay_server::{
    DatabaseTarget, NewMerchant, RunningServer, Server, ServerConfig, TableCounts,
};
use serde_json::{Value, json};
use sqlx::Connection;

/// The environment variable naming a PostgreSQL server for the tests (set by scripts/test.d/20-postgres.sh).
pub const PG_ENV: &str = "FACEPAY_TEST_DATABASE_URL";

/// A database for one test.
pub enum Backend {
    /// SQLite file inside this temp dir.
    Sqlite(tempfile::TempDir),
    /// A fresh PostgreSQL database.
    Postgres(String),
}

impl Backend {
    /// `"sqlite"` or `"postgres"`.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// The server's database target.
    pub fn target(&self) -> DatabaseTarget {
        match self {
            Backend::Sqlite(dir) => DatabaseTarget::Sqlite(dir.path().join("facepay.sqlite")),
            Backend::Postgres(url) => DatabaseTarget::Postgres(url.clone()),
        }
    }
}

/// A fresh SQLite database in a temp dir.
pub fn sqlite() -> Backend {
    Backend::Sqlite(tempfile::tempdir().expect("temp dir"))
}

/// A fresh PostgreSQL database on the server named by `FACEPAY_TEST_DATABASE_URL`, if set.
pub async fn postgres() -> Option<Backend> {
    let url = std::env::var(PG_ENV).ok().filter(|u| !u.is_empty())?;
    let name = format!(
        "facepay_test_{}",
        hex(&facepay_server::tokens::random_bytes::<8>())
    );
    let mut admin = sqlx::PgConnection::connect(&url)
        .await
        .expect("connect to FACEPAY_TEST_DATABASE_URL");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create test database");
    admin.close().await.ok();
    let (base, _) = url
        .rsplit_once('/')
        .expect("FACEPAY_TEST_DATABASE_URL has a /database part");
    Some(Backend::Postgres(format!("{base}/{name}")))
}

/// Runs `scenario` on SQLite, then on PostgreSQL when configured (saying so when it is not).
pub async fn on_each_backend<F, Fut>(scenario: F)
where
    F: Fn(Backend) -> Fut,
    Fut: Future<Output = ()>,
{
    scenario(sqlite()).await;
    match postgres().await {
        Some(pg) => scenario(pg).await,
        None => eprintln!(
            "note: {PG_ENV} is not set: this scenario ran on SQLite only, PostgreSQL was NOT tested"
        ),
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An HTTP client on rustls with ring (plain HTTP for loopback tests).
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client")
}

/// A running server with one merchant and a client.
pub struct Env {
    /// The server.
    pub server: RunningServer,
    /// Its base URL.
    pub base: String,
    /// HTTP client.
    pub http: reqwest::Client,
    /// The merchant.
    pub merchant: NewMerchant,
    /// Backend name.
    pub backend: &'static str,
    _db: Backend,
}

/// A registered device.
pub struct Device {
    /// Its id.
    pub id: String,
    /// Its key.
    pub signer: SoftwareSigner,
}

impl Device {
    /// A fresh signature of `message` by this device's key.
    pub fn signer_sign(&self, message: &[u8]) -> Vec<u8> {
        self.signer.sign(message).unwrap()
    }
}

/// A response: status and JSON body.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Body bytes.
    pub bytes: Vec<u8>,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.bytes)
            )
        })
    }

    /// Asserts the protocol's error shape with this status and code.
    pub fn assert_error(&self, status: u16, code: ErrorCode) {
        let body: ErrorBody = serde_json::from_slice(&self.bytes).unwrap_or_else(|e| {
            panic!(
                "not the error shape ({e}): {} {}",
                self.status,
                String::from_utf8_lossy(&self.bytes)
            )
        });
        assert_eq!(
            (self.status, body.error.code),
            (status, code),
            "message: {}",
            body.error.message
        );
        assert!(!body.error.message.is_empty());
    }
}

impl Env {
    /// Starts a server on `backend` with default config changed by `tweak`.
    pub async fn start(backend: Backend, tweak: impl FnOnce(&mut ServerConfig)) -> Env {
        let mut config = ServerConfig::new(backend.target());
        tweak(&mut config);
        let server = Server::start(config).await.expect("server starts");
        let merchant = server.create_merchant("Test shop").await.expect("merchant");
        Env {
            base: server.base_url(),
            server,
            http: http_client(),
            merchant,
            backend: backend.name(),
            _db: backend,
        }
    }

    /// POSTs a JSON value with an optional bearer token and extra headers.
    pub async fn post(
        &self,
        path: &str,
        bearer: Option<&str>,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> Answer {
        self.post_raw(
            path,
            bearer,
            headers,
            "application/json",
            serde_json::to_vec(body).unwrap(),
        )
        .await
    }

    /// POSTs raw bytes with a content type.
    pub async fn post_raw(
        &self,
        path: &str,
        bearer: Option<&str>,
        headers: &[(&str, &str)],
        content_type: &str,
        body: Vec<u8>,
    ) -> Answer {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("request sent");
        Answer {
            status: resp.status().as_u16(),
            bytes: resp.bytes().await.expect("body").to_vec(),
        }
    }

    /// GETs a path.
    pub async fn get(&self, path: &str) -> Answer {
        self.get_with(path, None).await
    }

    /// GETs a path with an optional bearer token.
    pub async fn get_with(&self, path: &str, bearer: Option<&str>) -> Answer {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.expect("request sent");
        Answer {
            status: resp.status().as_u16(),
            bytes: resp.bytes().await.expect("body").to_vec(),
        }
    }

    /// Creates an order for the merchant.
    pub async fn order(
        &self,
        order_id: &str,
        amount_minor: u64,
        currency: &str,
    ) -> CreateOrderResponse {
        let body = json!({
            "order_id": order_id, "amount_minor": amount_minor, "currency": currency,
            "items_digest": b64_encode(&sha256(order_id.as_bytes())),
        });
        let a = self
            .post("/v1/orders", Some(&self.merchant.api_key), &[], &body)
            .await;
        assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.bytes));
        serde_json::from_slice(&a.bytes).unwrap()
    }

    /// A fresh enrolment token for `account_id`.
    pub async fn enrollment(&self, account_id: &str) -> String {
        let a = self
            .post(
                "/v1/enrollments",
                Some(&self.merchant.api_key),
                &[],
                &json!({"account_id": account_id}),
            )
            .await;
        assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.bytes));
        let enrol: CreateEnrollmentResponse = serde_json::from_slice(&a.bytes).unwrap();
        enrol.enrollment_token
    }

    /// A registration challenge for an enrolment token.
    pub async fn registration_challenge(&self, token: &str) -> [u8; 32] {
        let a = self
            .post("/v1/devices/challenge", None, &[], &json!({"enrollment_token": token}))
            .await;
        assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.bytes));
        let issued: RegistrationChallengeResponse = serde_json::from_slice(&a.bytes).unwrap();
        b64_decode("challenge", &issued.challenge).unwrap().try_into().unwrap()
    }

    /// `POST /v1/devices` with these parts.
    pub async fn register_with(
        &self,
        token: &str,
        device_id: &str,
        public_key: &[u8],
        challenge: &[u8; 32],
        proof: &[u8],
        attestation: Option<Value>,
    ) -> Answer {
        let body = json!({
            "enrollment_token": token, "device_id": device_id, "public_key": b64_encode(public_key),
            "challenge": b64_encode(challenge), "proof": b64_encode(proof), "attestation": attestation,
        });
        self.post("/v1/devices", None, &[], &body).await
    }

    /// Enrols `account_id` and registers `device_id` with `signer` (challenge and proof of possession).
    pub async fn register_account(&self, account_id: &str, device_id: &str, signer: &SoftwareSigner) -> Answer {
        let token = self.enrollment(account_id).await;
        let challenge = self.registration_challenge(&token).await;
        let proof = signer
            .sign(&registration_message(&challenge, device_id, &signer.public_key()))
            .unwrap();
        self.register_with(&token, device_id, &signer.public_key(), &challenge, &proof, None)
            .await
    }

    /// Enrols `shopper-1` and registers a device with a fresh key.
    pub async fn device(&self, device_id: &str) -> Device {
        let signer = SoftwareSigner::generate().unwrap();
        let a = self.register_account("shopper-1", device_id, &signer).await;
        assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.bytes));
        let reg: RegisterDeviceResponse = serde_json::from_slice(&a.bytes).unwrap();
        assert_eq!(reg.account_id, "shopper-1");
        Device {
            id: device_id.to_owned(),
            signer,
        }
    }

    /// Asks for a challenge.
    pub async fn challenge(&self, client_token: &str, device_id: &str) -> ChallengeResponse {
        let a = self
            .post(
                "/v1/checkout/challenge",
                Some(client_token),
                &[],
                &json!({"device_id": device_id}),
            )
            .await;
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.bytes));
        serde_json::from_slice(&a.bytes).unwrap()
    }

    /// Sends a pay request.
    pub async fn pay(
        &self,
        client_token: &str,
        idem_key: &str,
        payload: &[u8],
        signature: &[u8],
    ) -> Answer {
        let body = serde_json::to_value(PayRequest {
            payload: b64_encode(payload),
            signature: b64_encode(signature),
        })
        .unwrap();
        self.post(
            "/v1/checkout/pay",
            Some(client_token),
            &[("Idempotency-Key", idem_key)],
            &body,
        )
        .await
    }

    /// Row counts.
    pub async fn counts(&self) -> TableCounts {
        self.server.store().table_counts().await.expect("counts")
    }

    /// Sends a pay request that must be accepted (201); returns the receipt.
    pub async fn pay_ok(
        &self,
        client_token: &str,
        idem_key: &str,
        payload: &[u8],
        signature: &[u8],
    ) -> Receipt {
        let a = self.pay(client_token, idem_key, payload, signature).await;
        assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.bytes));
        serde_json::from_slice(&a.bytes).expect("a receipt")
    }

    /// Sends a pay request that must be rejected with `status`/`code` and must leave no row behind.
    pub async fn pay_rejected(
        &self,
        client_token: &str,
        idem_key: &str,
        payload: &[u8],
        signature: &[u8],
        status: u16,
        code: ErrorCode,
    ) {
        let before = self.counts().await;
        self.pay(client_token, idem_key, payload, signature)
            .await
            .assert_error(status, code);
        assert_eq!(
            self.counts().await,
            before,
            "a rejected payment changed the database ({})",
            self.backend
        );
    }
}

/// The payload a well-behaved device builds for a challenge.
pub fn payload_for(ch: &ChallengeResponse, device_id: &str, counter: u64) -> PaymentPayload {
    PaymentPayload {
        order: ch.order.clone(),
        nonce: ch.nonce,
        device_id: device_id.to_owned(),
        counter,
        evidence: Evidence {
            liveness: LivenessVerdict::Live,
            challenges: challenges_for_nonce(&ch.nonce),
            antispoof_score: Some(0.97),
            match_score: 0.81,
            model_versions: vec!["detector@test".into()],
            started_at_ms: 1_767_225_600_000,
            finished_at_ms: 1_767_225_603_000,
        },
    }
}

/// Canonical bytes and their signature by `device`.
pub fn signed(payload: &PaymentPayload, device: &Device) -> (Vec<u8>, Vec<u8>) {
    let bytes = payload.to_canonical_bytes();
    let sig = device.signer.sign(&bytes).unwrap();
    (bytes, sig)
}

/// The usual starting point of a checkout test: a server (configured by `tweak`) with order `o-1`
/// (`amount_minor` EUR), device `dev-1` registered, a challenge issued to it, and the payment the device signs for
/// that challenge (counter 1). Returns `(env, order, device, challenge, payload bytes, signature)`.
pub async fn checkout(
    backend: Backend,
    tweak: impl FnOnce(&mut ServerConfig),
    amount_minor: u64,
) -> (
    Env,
    CreateOrderResponse,
    Device,
    ChallengeResponse,
    Vec<u8>,
    Vec<u8>,
) {
    let env = Env::start(backend, tweak).await;
    let order = env.order("o-1", amount_minor, "EUR").await;
    let dev = env.device("dev-1").await;
    let ch = env.challenge(&order.client_token, &dev.id).await;
    let (bytes, sig) = signed(&payload_for(&ch, &dev.id, 1), &dev);
    (env, order, dev, ch, bytes, sig)
}
