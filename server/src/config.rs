//! Server configuration: where to listen, which database, TLS, time limits, the failed-attempt policy, challenge
//! rate limits and the trust policy.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use facepay_core::checkout::protocol::{ALL_CHALLENGES, Challenge};

use crate::policy::Policy;
pub use crate::webhook_delivery::WebhookPolicy;

/// Which database to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    /// An SQLite file (created with its directory-less parent present, migrated on start).
    Sqlite(PathBuf),
    /// A PostgreSQL URL (`postgres://…`), migrated on start.
    Postgres(String),
}

impl DatabaseTarget {
    /// Chooses the backend from a URL: `postgres://` / `postgresql://` → PostgreSQL, `sqlite://path` or a bare
    /// path → SQLite.
    pub fn from_url_or_path(value: &str) -> Self {
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            DatabaseTarget::Postgres(value.to_owned())
        } else {
            let path = value
                .strip_prefix("sqlite://")
                .or_else(|| value.strip_prefix("sqlite:"))
                .unwrap_or(value);
            DatabaseTarget::Sqlite(PathBuf::from(path))
        }
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        match self {
            DatabaseTarget::Sqlite(_) => "sqlite",
            DatabaseTarget::Postgres(_) => "postgres",
        }
    }
}

/// SQLite's `synchronous` setting in WAL mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SqliteSync {
    /// fsync the WAL at every commit: an acknowledged payment survives power loss (default).
    Full,
    /// fsync only at checkpoints: survives a process crash, may lose the last commits on power loss.
    Normal,
}

/// How the server speaks on its socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain HTTP (only allowed on a loopback address: tests and benchmarks).
    PlainLoopback,
    /// TLS with a PEM certificate chain and PEM private key from files.
    Files {
        /// Certificate chain (PEM).
        cert: PathBuf,
        /// Private key (PEM, PKCS#8 / SEC1 / PKCS#1).
        key: PathBuf,
    },
    /// TLS with a freshly generated self-signed certificate for `localhost`, `127.0.0.1` and `::1`, whose PEM
    /// is written to `cert_out` so clients can pin it.
    SelfSigned {
        /// Where to write the certificate PEM.
        cert_out: PathBuf,
    },
}

/// Failed-attempt limit per device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures that trigger a lock-out.
    pub max_failures: u32,
    /// Window in which they are counted.
    pub window: Duration,
    /// How long the device stays locked.
    pub lockout: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            max_failures: 5,
            window: Duration::from_secs(180),
            lockout: Duration::from_secs(300),
        }
    }
}

/// Rate limits on challenges: unexpired (issued within their time to live) challenges allowed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChallengeLimits {
    /// Per device.
    pub challenges_per_device: u32,
    /// Per order.
    pub challenges_per_order: u32,
    /// Registration challenges per enrolment token.
    pub registration_challenges_per_token: u32,
}

impl Default for ChallengeLimits {
    fn default() -> Self {
        ChallengeLimits {
            challenges_per_device: 20,
            challenges_per_order: 10,
            registration_challenges_per_token: 5,
        }
    }
}

/// Everything [`crate::Server::start`] needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Socket address to bind (port 0 picks a free one).
    pub listen: SocketAddr,
    /// The database.
    pub database: DatabaseTarget,
    /// TLS mode.
    pub tls: TlsMode,
    /// SQLite durability setting.
    pub sqlite_sync: SqliteSync,
    /// Time to live of a challenge nonce.
    pub nonce_ttl: Duration,
    /// The challenge set (server policy): the challenges each nonce's list is drawn from
    /// (`challenges_for_nonce_in`, by kind); empty means all six.
    pub challenge_set: Vec<Challenge>,
    /// Time to live of an order's client token.
    pub client_token_ttl: Duration,
    /// Time to live of an enrolment token.
    pub enrollment_ttl: Duration,
    /// How long an idempotency key is remembered.
    pub idempotency_ttl: Duration,
    /// Failed-attempt limit per device.
    pub lockout: LockoutPolicy,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Connections in the PostgreSQL pool, or SQLite read connections.
    pub pool_size: u32,
    /// The bearer token `GET /metrics` requires (`None`: metrics are not served).
    pub metrics_token: Option<String>,
    /// Webhook delivery: polling, timeout, retries.
    pub webhooks: WebhookPolicy,
    /// The trust policy: attestation at registration, evidence rules at payment, devices per account.
    pub policy: Policy,
    /// Challenge rate limits.
    pub limits: ChallengeLimits,
    /// How long a client may take to send a request's headers (the connection is closed after).
    pub header_read_timeout: Duration,
    /// How long a whole request (headers, body, handling) may take before `408 request_timeout`.
    pub request_timeout: Duration,
}

impl ServerConfig {
    /// Defaults for a database: plain HTTP on 127.0.0.1 with a free port, 2-minute nonces, 1-hour client tokens,
    /// 1-day enrolment tokens, 24-hour idempotency keys, 5 failures in 3 minutes → 5-minute lock-out, 64 KiB bodies,
    /// the default [`Policy`], 20 challenges per device / 10 per order outstanding, 10 s to send the headers and
    /// 30 s for a whole request.
    pub fn new(database: DatabaseTarget) -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database,
            tls: TlsMode::PlainLoopback,
            sqlite_sync: SqliteSync::Full,
            nonce_ttl: Duration::from_secs(120),
            challenge_set: ALL_CHALLENGES.to_vec(),
            client_token_ttl: Duration::from_secs(3600),
            enrollment_ttl: Duration::from_secs(86_400),
            idempotency_ttl: Duration::from_secs(86_400),
            lockout: LockoutPolicy::default(),
            body_limit: 64 * 1024,
            pool_size: 8,
            metrics_token: None,
            webhooks: WebhookPolicy::default(),
            policy: Policy::default(),
            limits: ChallengeLimits::default(),
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}
