//! `facepay bench server`: verified, recorded payments per second against a real `facepay-server`.
//!
//! By default the server runs in this process on 127.0.0.1 (plain HTTP/1.1 on loopback) over a fresh SQLite file in
//! a temp dir; with `--database-url postgres://…` the same bench then runs again on PostgreSQL, and both figures are
//! reported side by side with each database's durability settings (SQLite `synchronous`, PostgreSQL `fsync` and
//! `synchronous_commit`, read from the server). `--url` targets a running server instead.
//!
//! **What is measured.** Setup (merchant, one registered device per client) is not timed. The bench then runs in
//! rounds: each round first prepares, untimed, a batch of orders (`POST /v1/orders`) and their challenges
//! (`POST /v1/checkout/challenge`) for every client, then times the clients paying them concurrently: for each
//! payment, build the payload, sign it with the device's ECDSA P-256 key and `POST /v1/checkout/pay` (no retries,
//! so every failure is counted). `payments_per_s` is accepted payments ÷ summed wall time of the timed phases;
//! `p50_ms`/`p99_ms` are the latencies of single pay calls (signing included). The clients share the machine with
//! the server, as they must on one 2-core box.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use facepay_core::checkout::client::{
    CheckoutClient, ClientConfig, MerchantClient, RetryPolicy, TrustRoots, payment_payload,
};
use facepay_core::checkout::protocol::{Evidence, LivenessVerdict, sha256};
use facepay_core::checkout::signer::SoftwareSigner;
use facepay_core::checkout::wire::{ChallengeResponse, CreateOrderRequest};
use facepay_server::{DatabaseTarget, RunningServer, Server, ServerConfig, SqliteSync};
use tokio::task::JoinSet;

/// The model version the bench's evidence names (and its in-process server allows).
const BENCH_MODEL_VERSION: &str = "bench@1";
/// Target wall time of one timed phase; batches are sized from the previous round's rate to reach it.
const ROUND_TARGET: Duration = Duration::from_secs(2);
/// Payments per client in the first round.
const FIRST_BATCH: usize = 50;
/// Error messages echoed on stderr (the rest are only counted).
const ERRORS_SHOWN: usize = 5;

/// Arguments of `facepay bench server`.
#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON object on stdout: `{"sqlite": RUN, "postgres": RUN|null, "postgres_to_sqlite"}` (or
    /// `{"server": RUN}` with `--url`), each RUN `{"backend","durability","payments_per_s","p50_ms","p99_ms","errors"}`.
    #[arg(long)]
    pub json: bool,
    /// After the SQLite run, run the in-process server again on this PostgreSQL database.
    #[arg(long, conflicts_with = "url")]
    pub database_url: Option<String>,
    /// Benchmark a running server at this base URL instead of starting one (needs `--api-key`).
    #[arg(long, requires = "api_key")]
    pub url: Option<String>,
    /// The merchant API key for `--url` (from `facepay-server merchant create`).
    #[arg(long, env = "FACEPAY_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// PEM certificate to pin when `--url` is https (default: the system's trust store).
    #[arg(long, requires = "url")]
    pub pin_cert: Option<PathBuf>,
    /// Timed seconds (summed over rounds).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub seconds: u64,
    /// Concurrent clients, each its own device and connection.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub clients: u64,
    /// SQLite durability of the in-process server (`full`: every commit fsynced, the server's default).
    #[arg(long, value_enum, default_value = "full")]
    pub sqlite_sync: SqliteSync,
    /// Write `enable` and `disable` to this perf control FIFO around each timed phase, so that
    /// `perf record -D -1 --control fifo:PATH -- facepay bench server --perf-control PATH` profiles the paying only.
    #[arg(long, value_name = "PATH")]
    pub perf_control: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(async {
        if args.url.is_some() {
            return anyhow::Ok(Report::External {
                server: bench(&args, None).await?,
            });
        }
        let sqlite = bench(&args, None).await?;
        let postgres = match &args.database_url {
            Some(url) => Some(bench(&args, Some(url)).await?),
            None => None,
        };
        let postgres_to_sqlite = postgres
            .as_ref()
            .map(|pg| pg.payments_per_s / sqlite.payments_per_s);
        Ok(Report::SideBySide {
            sqlite,
            postgres,
            postgres_to_sqlite,
        })
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        let runs: Vec<&RunReport> = match &report {
            Report::External { server } => vec![server],
            Report::SideBySide {
                sqlite, postgres, ..
            } => std::iter::once(sqlite).chain(postgres).collect(),
        };
        for r in runs {
            println!(
                "{}: {:.0} payments/s, p50 {:.2} ms, p99 {:.2} ms, {} errors ({})",
                r.backend, r.payments_per_s, r.p50_ms, r.p99_ms, r.errors, r.durability
            );
        }
    }
    Ok(())
}

/// The figures of one run.
#[derive(Debug, serde::Serialize)]
struct RunReport {
    backend: String,
    /// The database's durability settings during the run, as the server read them.
    durability: String,
    payments_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

/// What is printed.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
enum Report {
    /// The in-process server on SQLite, then on PostgreSQL when asked.
    SideBySide {
        sqlite: RunReport,
        postgres: Option<RunReport>,
        /// PostgreSQL payments/s ÷ SQLite payments/s.
        postgres_to_sqlite: Option<f64>,
    },
    /// A running server (`--url`).
    External { server: RunReport },
}

/// The server under test: started here (kept alive until the end) or external.
struct Target {
    base_url: String,
    trust: TrustRoots,
    api_key: String,
    durability: String,
    server: Option<(RunningServer, Option<tempfile::TempDir>)>,
}

async fn start_target(args: &Args, postgres: Option<&str>) -> anyhow::Result<Target> {
    if let Some(url) = &args.url {
        let trust = match &args.pin_cert {
            Some(path) => TrustRoots::PinnedCertPem(
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
            ),
            None => TrustRoots::System,
        };
        let api_key = args.api_key.clone().context("--url needs --api-key")?;
        return Ok(Target {
            base_url: url.clone(),
            trust,
            api_key,
            durability: "unknown (external server)".into(),
            server: None,
        });
    }
    let (database, dir) = match postgres {
        Some(url) => (DatabaseTarget::from_url_or_path(url), None),
        None => {
            let dir = tempfile::tempdir().context("creating a temp dir for the SQLite file")?;
            (
                DatabaseTarget::Sqlite(dir.path().join("bench.sqlite")),
                Some(dir),
            )
        }
    };
    if matches!(database, DatabaseTarget::Sqlite(_)) && postgres.is_some() {
        bail!("--database-url must be a postgres:// URL (SQLite is the default without it)");
    }
    let mut config = ServerConfig::new(database);
    config.sqlite_sync = args.sqlite_sync;
    // The evidence policy is on (passive score required, minimum match score, and an allow-list naming the
    // bench's model version); the per-device challenge limit is raised because each client prefetches a whole
    // round's challenges before the timed phase.
    config.policy.evidence.model_versions = vec![BENCH_MODEL_VERSION.to_owned()];
    config.limits.challenges_per_device = u32::MAX;
    let server = Server::start(config)
        .await
        .context("starting the in-process server")?;
    let durability = server
        .store()
        .durability()
        .await
        .context("reading the database's durability settings")?;
    let merchant = server
        .create_merchant("Bench shop")
        .await
        .context("creating the bench merchant")?;
    Ok(Target {
        base_url: server.base_url(),
        trust: TrustRoots::System,
        api_key: merchant.api_key,
        durability,
        server: Some((server, dir)),
    })
}

/// One benchmark client: a device and its connection.
struct Device {
    id: String,
    signer: SoftwareSigner,
    client: CheckoutClient,
    counter: u64,
}

/// What one client did in a timed phase.
#[derive(Default)]
struct PhaseResult {
    latencies_us: Vec<u64>,
    errors: Vec<String>,
}

async fn bench(args: &Args, postgres: Option<&str>) -> anyhow::Result<RunReport> {
    let target = start_target(args, postgres).await?;
    let mut config = ClientConfig::new(target.base_url.clone(), target.trust.clone());
    config.retry = RetryPolicy::none();
    let merchant = Arc::new(MerchantClient::new(config.clone(), target.api_key.clone())?);
    let probe = CheckoutClient::new(config.clone())?;
    let health = probe.health().await.context("the server's /healthz")?;
    let run_id = hex(&facepay_server::tokens::random_bytes::<4>());
    eprintln!(
        "bench server: {} backend ({}) at {}, {} clients, {} s timed (run {run_id})",
        health.backend, target.durability, target.base_url, args.clients, args.seconds
    );

    let mut devices = Vec::new();
    for i in 0..args.clients {
        let id = format!("bench-{run_id}-{i}");
        let signer = SoftwareSigner::generate()?;
        let enrollment = merchant
            .create_enrollment(&format!("bench-shopper-{i}"))
            .await?;
        let client = CheckoutClient::new(config.clone())?;
        client
            .register_device(&enrollment.enrollment_token, &id, &signer)
            .await?;
        devices.push(Device {
            id,
            signer,
            client,
            counter: 0,
        });
    }
    eprintln!("bench server: {} devices registered", devices.len());

    let budget = Duration::from_secs(args.seconds);
    let mut timed = Duration::ZERO;
    let mut latencies_us = Vec::new();
    let mut errors = 0u64;
    let mut batch = FIRST_BATCH;
    let mut round = 0;
    while timed < budget {
        let prepared = prepare(&merchant, &devices, &run_id, round, batch).await?;
        perf_control(args, "enable")?;
        let started = Instant::now();
        let (back, results) = pay_all(devices, prepared).await?;
        let elapsed = started.elapsed();
        perf_control(args, "disable")?;
        devices = back;
        let paid: usize = results.iter().map(|r| r.latencies_us.len()).sum();
        for result in results {
            for message in result.errors {
                if errors < ERRORS_SHOWN as u64 {
                    eprintln!("bench server: payment failed: {message}");
                }
                errors += 1;
            }
            latencies_us.extend(result.latencies_us);
        }
        timed += elapsed;
        let rate = paid as f64 / elapsed.as_secs_f64();
        eprintln!(
            "bench server: round {round}: {paid} payments in {:.2} s ({rate:.0}/s)",
            elapsed.as_secs_f64()
        );
        let remaining = budget.saturating_sub(timed).min(ROUND_TARGET);
        batch = ((rate * remaining.as_secs_f64() / devices.len() as f64).ceil() as usize).max(10);
        round += 1;
    }
    if let Some((server, _dir)) = target.server {
        server.shutdown().await;
    }

    latencies_us.sort_unstable();
    Ok(RunReport {
        payments_per_s: latencies_us.len() as f64 / timed.as_secs_f64(),
        p50_ms: percentile_ms(&latencies_us, 0.50),
        p99_ms: percentile_ms(&latencies_us, 0.99),
        errors,
        backend: health.backend,
        durability: target.durability,
    })
}

/// Sends `command` to the perf control FIFO of `--perf-control`, if given.
fn perf_control(args: &Args, command: &str) -> anyhow::Result<()> {
    if let Some(path) = &args.perf_control {
        std::fs::write(path, format!("{command}\n"))
            .with_context(|| format!("writing {command:?} to {}", path.display()))?;
    }
    Ok(())
}

/// Untimed: `batch` orders per device and a challenge for each, concurrently across devices.
async fn prepare(
    merchant: &Arc<MerchantClient>,
    devices: &[Device],
    run_id: &str,
    round: usize,
    batch: usize,
) -> anyhow::Result<Vec<Vec<(String, ChallengeResponse)>>> {
    let mut tasks = JoinSet::new();
    for (index, device) in devices.iter().enumerate() {
        let (merchant, client, device_id) =
            (merchant.clone(), device.client.clone(), device.id.clone());
        let prefix = format!("bench-{run_id}-r{round}-c{index}");
        tasks.spawn(async move {
            let mut prepared = Vec::with_capacity(batch);
            for i in 0..batch {
                let order_id = format!("{prefix}-{i}");
                let order = CreateOrderRequest {
                    items_digest: sha256(order_id.as_bytes()),
                    order_id,
                    amount_minor: 1000 + i as u64,
                    currency: "EUR".into(),
                };
                let created = merchant.create_order(&order).await?;
                let challenge = client.challenge(&created.client_token, &device_id).await?;
                prepared.push((created.client_token, challenge));
            }
            anyhow::Ok((index, prepared))
        });
    }
    let mut out = vec![Vec::new(); devices.len()];
    while let Some(joined) = tasks.join_next().await {
        let (index, prepared) = joined?.context("preparing orders and challenges")?;
        out[index] = prepared;
    }
    Ok(out)
}

/// Timed: every device pays its prepared orders one after the other, all devices at once.
async fn pay_all(
    devices: Vec<Device>,
    prepared: Vec<Vec<(String, ChallengeResponse)>>,
) -> anyhow::Result<(Vec<Device>, Vec<PhaseResult>)> {
    let mut tasks = JoinSet::new();
    for (index, (mut device, orders)) in devices.into_iter().zip(prepared).enumerate() {
        tasks.spawn(async move {
            let mut result = PhaseResult::default();
            for (token, challenge) in orders {
                device.counter += 1;
                let evidence = evidence(&challenge);
                let payload = payment_payload(&challenge, &device.id, device.counter, evidence);
                let started = Instant::now();
                match device.client.pay(&token, &payload, &device.signer).await {
                    Ok(_) => result
                        .latencies_us
                        .push(started.elapsed().as_micros() as u64),
                    Err(e) => result.errors.push(e.to_string()),
                }
            }
            (index, device, result)
        });
    }
    let mut slots: Vec<Option<(Device, PhaseResult)>> = Vec::new();
    slots.resize_with(tasks.len(), || None);
    while let Some(joined) = tasks.join_next().await {
        let (index, device, result) = joined.context("a bench client task failed")?;
        slots[index] = Some((device, result));
    }
    Ok(slots.into_iter().flatten().unzip())
}

/// The evidence of a passed selfie session for `challenge`.
fn evidence(challenge: &ChallengeResponse) -> Evidence {
    Evidence {
        liveness: LivenessVerdict::Live,
        challenges: challenge.challenges.clone(),
        antispoof_score: Some(0.95),
        match_score: 0.8,
        model_versions: vec![BENCH_MODEL_VERSION.into()],
        started_at_ms: 1_767_225_600_000,
        finished_at_ms: 1_767_225_603_000,
    }
}

/// The `q` quantile of sorted microseconds, in milliseconds (nearest rank); 0 when empty.
fn percentile_ms(sorted_us: &[u64], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
    sorted_us[rank - 1] as f64 / 1000.0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::percentile_ms;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let us: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile_ms(&us, 0.50), 50.0);
        assert_eq!(percentile_ms(&us, 0.99), 99.0);
        assert_eq!(percentile_ms(&us[..1], 0.99), 1.0);
        assert_eq!(percentile_ms(&[], 0.5), 0.0);
    }
}
