//! `facepay-server`: the FacePay checkout server. It verifies device-signed payments (protocol `v1`, see
//! `docs/protocol.md`) and records each exactly once, in SQLite or PostgreSQL.
//!
//! Usable in-process: [`Server::start`] binds (port 0 for a free one), migrates and serves until
//! [`RunningServer::shutdown`].

pub mod api;
pub mod api_keys;
pub mod app;
pub mod attestation;
pub mod cancel;
pub mod config;
pub mod currency;
pub mod error;
pub mod http;
pub mod idempotency;
pub mod lockout;
pub mod merchants;
pub mod metrics;
pub mod openapi;
pub mod pay;
pub mod policy;
pub mod reads;
pub mod refunds;
pub mod registration;
pub mod store;
pub mod tls;
pub mod tokens;
pub mod webhook_delivery;
pub mod webhook_endpoint;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{
    ChallengeLimits, DatabaseTarget, LockoutPolicy, ServerConfig, SqliteSync, TlsMode,
    WebhookPolicy,
};
pub use merchants::NewMerchant;
pub use policy::Policy;
pub use store::{Store, StoreError, TableCounts};

use app::App;
use attestation::Roots;
use metrics::Metrics;

/// How long in-flight requests get to finish after shutdown is requested.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often expired nonces and idempotency keys are purged.
const PURGE_INTERVAL: Duration = Duration::from_secs(60);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The TLS configuration is unusable.
    #[error("TLS: {0}")]
    Tls(String),
    /// The socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// An attestation root file of the policy is unusable.
    #[error("attestation roots: {0}")]
    Roots(#[from] attestation::AttestationError),
    /// Plain HTTP was asked for on a non-loopback address.
    #[error("plain HTTP is only allowed on a loopback address, not {0}; configure TLS")]
    PlainNotLoopback(SocketAddr),
}

/// The server.
#[derive(Debug)]
pub struct Server;

/// A started server.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    tls: bool,
    app: Arc<App>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Server {
    /// Opens and migrates the database, binds the socket and starts serving in the background.
    pub async fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
        if config.tls == TlsMode::PlainLoopback && !config.listen.ip().is_loopback() {
            return Err(ServerError::PlainNotLoopback(config.listen));
        }
        let tls = tls::server_config(&config.tls)?.map(tokio_rustls::TlsAcceptor::from);
        let mut roots = Roots::published();
        for path in &config.policy.attestation.extra_android_roots {
            roots.add_pem_file(false, path)?;
        }
        for path in &config.policy.attestation.extra_apple_roots {
            roots.add_pem_file(true, path)?;
        }
        let store = Store::open(&config.database, config.sqlite_sync, config.pool_size).await?;
        let webhook_http = webhook_delivery::http_client(&config.webhooks)?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
        let app = Arc::new(App {
            store,
            roots,
            metrics: Metrics::default(),
            webhook_wake: tokio::sync::Notify::new(),
            config,
        });
        let (stop, stopped) = oneshot::channel();
        let is_tls = tls.is_some();
        let task = tokio::spawn(serve(listener, tls, app.clone(), webhook_http, stopped));
        tracing::info!(%addr, tls = is_tls, backend = app.store.backend(), "facepay-server listening");
        Ok(RunningServer {
            addr,
            tls: is_tls,
            app,
            stop: Some(stop),
            task,
        })
    }
}

impl RunningServer {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:PORT` (or `http://` without TLS).
    pub fn base_url(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.addr
        )
    }

    /// The database the server uses.
    pub fn store(&self) -> &Store {
        &self.app.store
    }

    /// Creates a merchant in the server's database (see [`merchants::create_merchant`]).
    pub async fn create_merchant(&self, name: &str) -> Result<NewMerchant, StoreError> {
        merchants::create_merchant(&self.app.store, name).await
    }

    /// Stops accepting connections, lets in-flight requests finish (up to 10 s) and closes the database.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// Serves until the process receives SIGTERM or ctrl-c, then shuts down gracefully.
    pub async fn run_until_signal(self) {
        shutdown_signal().await;
        tracing::info!("shutdown requested; draining in-flight requests");
        self.shutdown().await;
    }
}

/// Resolves on ctrl-c or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// The accept loop: one task per connection (TLS handshake inside it), the purge and webhook tasks, graceful drain
/// on stop.
async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: Arc<App>,
    webhook_http: reqwest::Client,
    mut stopped: oneshot::Receiver<()>,
) {
    let router = app::router(app.clone());
    let webhooks = tokio::spawn(webhook_delivery::run(app.clone(), webhook_http));
    let graceful = GracefulShutdown::new();
    let purge_app = app.clone();
    let purge = tokio::spawn(async move {
        let mut tick = tokio::time::interval(PURGE_INTERVAL);
        loop {
            tick.tick().await;
            if let Err(e) = purge_app.store.purge_expired(app::now_ms()).await {
                tracing::warn!(error = %e, "purging expired rows failed");
            }
        }
    });
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut stopped => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let header_timeout = app.config.header_read_timeout;
        tokio::spawn(async move {
            let mut builder = auto::Builder::new(TokioExecutor::new());
            // Without a timer hyper cannot enforce the header-read timeout: a client that never finishes its
            // headers would hold the connection forever.
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            builder.http2().timer(TokioTimer::new());
            match tls {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(conn).await;
                }
                Some(acceptor) => {
                    let stream = match tokio::time::timeout(
                        HANDSHAKE_TIMEOUT,
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(conn).await;
                }
            }
        });
    }
    drop(listener);
    purge.abort();
    webhooks.abort();
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish in time; closing anyway");
    }
    app.store.close().await;
    tracing::info!("facepay-server stopped");
}
