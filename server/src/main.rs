//! `facepay-server`: serve the checkout API, or create a merchant.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use facepay_core::checkout::protocol::Challenge;
use facepay_server::{
    DatabaseTarget, LockoutPolicy, Policy, Server, ServerConfig, SqliteSync, Store, TlsMode,
    WebhookPolicy,
};

/// The FacePay checkout server.
#[derive(Debug, Parser)]
#[command(name = "facepay-server", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the checkout API until SIGTERM / ctrl-c.
    Serve(Box<ServeArgs>),
    /// Manage merchants.
    Merchant {
        #[command(subcommand)]
        command: MerchantCommand,
    },
}

#[derive(Debug, Subcommand)]
enum MerchantCommand {
    /// Create a merchant and print its API key (shown only this once).
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        db: DbArgs,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
struct DbArgs {
    /// SQLite database file (created if missing).
    #[arg(long, default_value = "facepay.sqlite")]
    db: PathBuf,
    /// Database URL; a `postgres://` URL selects PostgreSQL (overrides --db).
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// SQLite durability: `full` fsyncs every commit (acknowledged payments survive power loss).
    #[arg(long, value_enum, default_value = "full")]
    sqlite_sync: SqliteSync,
}

impl DbArgs {
    fn target(&self) -> DatabaseTarget {
        match &self.database_url {
            Some(url) => DatabaseTarget::from_url_or_path(url),
            None => DatabaseTarget::Sqlite(self.db.clone()),
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    #[command(flatten)]
    db: DbArgs,
    /// TLS certificate chain (PEM).
    #[arg(long, requires = "tls_key", conflicts_with_all = ["self_signed", "plain_http"])]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Generate a self-signed certificate for localhost and write its PEM here (for clients to pin).
    #[arg(long, value_name = "CERT_OUT", conflicts_with = "plain_http")]
    self_signed: Option<PathBuf>,
    /// Plain HTTP, only on a loopback address (tests and benchmarks).
    #[arg(long)]
    plain_http: bool,
    /// Nonce time to live, seconds.
    #[arg(long, default_value_t = 120)]
    nonce_ttl_secs: u64,
    /// The challenge set each nonce's challenges are drawn from (server policy), e.g. `blink` where head turns are
    /// impractical or for replaying recorded clips.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "blink,turn_left,turn_right,look_up,look_down,move_closer"
    )]
    challenge_set: Vec<String>,
    /// Client token time to live, seconds.
    #[arg(long, default_value_t = 3600)]
    client_token_ttl_secs: u64,
    /// Idempotency key retention, seconds.
    #[arg(long, default_value_t = 86_400)]
    idempotency_ttl_secs: u64,
    /// Failed attempts per device before lock-out.
    #[arg(long, default_value_t = 5)]
    max_failures: u32,
    /// Window in which failures are counted, seconds.
    #[arg(long, default_value_t = 180)]
    failure_window_secs: u64,
    /// Lock-out duration, seconds.
    #[arg(long, default_value_t = 300)]
    lockout_secs: u64,
    /// Largest request body, bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    body_limit: usize,
    /// Database pool size (PostgreSQL connections, or SQLite readers).
    #[arg(long, default_value_t = 8)]
    pool_size: u32,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Serve `GET /metrics` to `Authorization: Bearer <this token>` (unset: metrics are not served).
    #[arg(long, env = "FACEPAY_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// How often the webhook outbox is polled, milliseconds.
    #[arg(long, default_value_t = 1000)]
    webhook_poll_ms: u64,
    /// Time limit of one webhook delivery, milliseconds.
    #[arg(long, default_value_t = 10_000)]
    webhook_timeout_ms: u64,
    /// Wait before the second delivery attempt, milliseconds (doubles per attempt, at most 1 hour).
    #[arg(long, default_value_t = 10_000)]
    webhook_retry_base_ms: u64,
    /// Delivery attempts before an event is given up.
    #[arg(long, default_value_t = 24)]
    webhook_max_attempts: u32,
    /// Trust policy file (TOML, see docs/server-policy.md); the flags below override its values.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Refuse device registrations without key / app attestation.
    #[arg(long)]
    require_attestation: bool,
    /// Lowest accepted security level of an attested key: software, tee or strong_box.
    #[arg(long)]
    min_security_level: Option<String>,
    /// Lowest accepted face-match score of a payment's evidence (default: the calibrated model threshold).
    #[arg(long)]
    min_match_score: Option<f32>,
    /// Active devices allowed per shopper account.
    #[arg(long)]
    max_devices_per_account: Option<u32>,
    /// Extra trusted Android attestation root (PEM file; repeatable).
    #[arg(long)]
    attestation_root_android: Vec<PathBuf>,
    /// Extra trusted Apple App Attest root (PEM file; repeatable).
    #[arg(long)]
    attestation_root_apple: Vec<PathBuf>,
    /// Unexpired challenges allowed per device.
    #[arg(long, default_value_t = 20)]
    challenges_per_device: u32,
    /// Unexpired challenges allowed per order.
    #[arg(long, default_value_t = 10)]
    challenges_per_order: u32,
    /// Time a client may take to send a request's headers, milliseconds.
    #[arg(long, default_value_t = 10_000)]
    header_read_timeout_ms: u64,
    /// Time a whole request may take, milliseconds (408 after).
    #[arg(long, default_value_t = 30_000)]
    request_timeout_ms: u64,
}

/// The policy file (or the defaults) with the flags applied.
fn policy(args: &ServeArgs) -> Result<Policy, String> {
    let mut policy = match &args.policy {
        Some(path) => Policy::from_file(path).map_err(|e| e.to_string())?,
        None => Policy::default(),
    };
    let a = &mut policy.attestation;
    a.required |= args.require_attestation;
    if let Some(level) = &args.min_security_level {
        a.min_security_level = serde_json::from_value(serde_json::Value::String(level.clone()))
            .map_err(|_| {
                format!("unknown --min-security-level {level:?} (software, tee, strong_box)")
            })?;
    }
    a.extra_android_roots
        .extend(args.attestation_root_android.iter().cloned());
    a.extra_apple_roots
        .extend(args.attestation_root_apple.iter().cloned());
    if let Some(score) = args.min_match_score {
        policy.evidence.min_match_score = score;
    }
    if let Some(max) = args.max_devices_per_account {
        policy.devices.max_per_account = max;
    }
    Ok(policy)
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    init_logs(args.log_format);
    let tls = match (
        &args.tls_cert,
        &args.tls_key,
        &args.self_signed,
        args.plain_http,
    ) {
        (Some(cert), Some(key), _, _) => TlsMode::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        (_, _, Some(out), _) => TlsMode::SelfSigned {
            cert_out: out.clone(),
        },
        (_, _, _, true) => TlsMode::PlainLoopback,
        _ => {
            return Err(
                "choose --tls-cert/--tls-key, --self-signed CERT_OUT or --plain-http".to_owned(),
            );
        }
    };
    let mut config = ServerConfig::new(args.db.target());
    config.listen = args.listen;
    config.tls = tls;
    config.sqlite_sync = args.db.sqlite_sync;
    config.nonce_ttl = Duration::from_secs(args.nonce_ttl_secs);
    config.challenge_set = args
        .challenge_set
        .iter()
        .map(|name| {
            Challenge::from_name(name.trim()).ok_or_else(|| {
                format!(
                    "unknown challenge {name:?} in --challenge-set \
                     (blink, turn_left, turn_right, look_up, look_down, move_closer)"
                )
            })
        })
        .collect::<Result<_, String>>()?;
    config.client_token_ttl = Duration::from_secs(args.client_token_ttl_secs);
    config.idempotency_ttl = Duration::from_secs(args.idempotency_ttl_secs);
    config.lockout = LockoutPolicy {
        max_failures: args.max_failures.max(1),
        window: Duration::from_secs(args.failure_window_secs),
        lockout: Duration::from_secs(args.lockout_secs),
    };
    config.body_limit = args.body_limit;
    config.pool_size = args.pool_size;
    config.metrics_token = args.metrics_token.clone().filter(|t| !t.is_empty());
    config.webhooks = WebhookPolicy {
        poll: Duration::from_millis(args.webhook_poll_ms.max(1)),
        timeout: Duration::from_millis(args.webhook_timeout_ms.max(1)),
        retry_base: Duration::from_millis(args.webhook_retry_base_ms),
        max_attempts: args.webhook_max_attempts.max(1),
    };
    config.policy = policy(&args)?;
    config.limits.challenges_per_device = args.challenges_per_device;
    config.limits.challenges_per_order = args.challenges_per_order;
    config.header_read_timeout = Duration::from_millis(args.header_read_timeout_ms);
    config.request_timeout = Duration::from_millis(args.request_timeout_ms);
    let server = Server::start(config).await.map_err(|e| e.to_string())?;
    eprintln!("facepay-server: listening on {}", server.base_url());
    server.run_until_signal().await;
    Ok(())
}

async fn create_merchant(name: &str, db: &DbArgs, json: bool) -> Result<(), String> {
    let store = Store::open(&db.target(), db.sqlite_sync, 1)
        .await
        .map_err(|e| e.to_string())?;
    let merchant = facepay_server::merchants::create_merchant(&store, name)
        .await
        .map_err(|e| e.to_string())?;
    store.close().await;
    if json {
        println!(
            "{}",
            serde_json::to_string(&merchant).map_err(|e| e.to_string())?
        );
    } else {
        println!("merchant_id: {}", merchant.merchant_id);
        println!("api_key:     {}", merchant.api_key);
        eprintln!("The API key is shown only now; the server keeps just its SHA-256.");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(*args).await,
        Command::Merchant {
            command: MerchantCommand::Create { name, db, json },
        } => create_merchant(&name, &db, json).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("facepay-server: {e}");
            ExitCode::FAILURE
        }
    }
}
