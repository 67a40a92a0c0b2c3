//! Storage: SQLite (WAL; writes through one group-commit writer thread, the pay check's read inline, other reads
//! through an sqlx reader pool) or PostgreSQL (one sqlx pool), the same SQL for both ([`statement::Statement`]),
//! migrations from `server/migrations/<backend>/`, and the one-statement payment write.

pub mod api_keys;
pub mod durability;
pub mod idempotency;
pub mod reads;
pub mod refunds;
mod sqlite_reader;
mod sqlite_writer;
pub mod statement;
pub mod transaction;
pub mod webhooks;

use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Row};

use self::sqlite_reader::SqliteReader;
use self::sqlite_writer::{SqliteWriter, WriteGate};
use self::statement::{Columns, Statement};

use sqlx::migrate::Migrator;

use crate::attestation::SecurityLevel;
use crate::config::{DatabaseTarget, SqliteSync};
use crate::lockout::{LockoutRule, Subject};

/// SQLite schema migrations (`server/migrations/sqlite/NNNN_name.sql`), recorded in `_sqlx_migrations`.
static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");
/// PostgreSQL schema migrations (`server/migrations/postgres/NNNN_name.sql`); concurrent migrators serialise on
/// sqlx's advisory lock.
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Connecting failed.
    #[error("cannot open the {backend} database: {source}")]
    Connect {
        /// `"sqlite"` or `"postgres"`.
        backend: &'static str,
        /// The driver error.
        source: sqlx::Error,
    },
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The write conflicts with what is stored; nothing of it was written.
    #[error("conflict: {0}")]
    Conflict(Conflict),
    /// A value does not fit the database column (a signed 64-bit integer).
    #[error("{0} exceeds 2^63-1")]
    OutOfRange(&'static str),
    /// Too many outstanding registration challenges for the enrolment token.
    #[error("too many outstanding registration challenges")]
    RateLimited,
    /// The SQLite group-commit writer has stopped (the store is shutting down).
    #[error("the database writer has stopped")]
    WriterStopped,
    /// A column the query always fills was NULL.
    #[error("column {0} is unexpectedly NULL")]
    UnexpectedNull(usize),
    /// The SQLite writer or checkpoint thread could not be started.
    #[error("cannot start the database writer thread: {0}")]
    WriterThread(#[source] std::io::Error),
    /// Another query failed.
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    /// A statement of the SQLite writer failed.
    #[error("database error: {0}")]
    Sqlite(#[source] rusqlite::Error),
    /// The SQLite group-commit transaction (shared by several writes) could not begin or commit.
    #[error("database error: {0}")]
    Batch(std::sync::Arc<rusqlite::Error>),
}

impl StoreError {
    /// Whether the failure is the database being unreachable or overloaded (retrying may succeed), as opposed to
    /// a conflict or a bug.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::WriterStopped | StoreError::WriterThread(_) => true,
            StoreError::Query(e) => unavailable(e),
            StoreError::Sqlite(e) => sqlite_unavailable(e),
            StoreError::Batch(e) => sqlite_unavailable(e),
            _ => false,
        }
    }
}

/// Whether a driver error means the database is unreachable or overloaded.
fn unavailable(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)
    )
}

/// Whether an SQLite writer error means the file is locked, full or failing (retrying may succeed).
fn sqlite_unavailable(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode as C;
    matches!(
        e.sqlite_error_code(),
        Some(
            C::DatabaseBusy | C::DatabaseLocked | C::SystemIoFailure | C::DiskFull | C::CannotOpen
        )
    )
}

/// What a rejected write conflicts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// The merchant already has an order with this order id.
    #[error("the merchant already has this order id")]
    OrderExists,
    /// The device id is already registered.
    #[error("the device id is already registered")]
    DeviceExists,
    /// The enrolment token is unknown, used or expired.
    #[error("the enrolment token is unknown, used or expired")]
    EnrollmentInvalid,
    /// The payment's nonce is already used (or was never issued).
    #[error("the nonce is already used")]
    NonceReused,
    /// The payment's counter is not above the device's last accepted one.
    #[error("the counter is not increasing")]
    CounterNotIncreasing,
    /// The order is already paid.
    #[error("the order is already paid")]
    OrderAlreadyPaid,
    /// The idempotency key is already held by another payment.
    #[error("the idempotency key is in use")]
    IdempotencyKeyInUse,
    /// The order is cancelled.
    #[error("the order is cancelled")]
    OrderCancelled,
    /// The order is not open (paid or cancelled); the caller reads which.
    #[error("the order is not open")]
    OrderNotOpen,
    /// The refund would take the payment's refunded total above its amount.
    #[error("the refund exceeds what is left of the payment")]
    RefundExceedsRemaining,
    /// A response is already recorded for this idempotency key (a concurrent request won).
    #[error("a response is already recorded for this idempotency key")]
    ResponseRecorded,
    /// The registration challenge is unknown, used, expired or for another enrolment token.
    #[error("the registration challenge is not valid for this enrolment token")]
    RegistrationChallengeInvalid,
    /// The account already has the maximum of active devices.
    #[error("the account has reached its device limit")]
    DeviceLimitReached,
    /// The device is revoked.
    #[error("the device is revoked")]
    DeviceRevoked,
}

impl Conflict {
    /// The conflict a payment trigger raised: the migrations' triggers abort with exactly these messages.
    fn from_trigger(message: &str) -> Option<Self> {
        Some(match message {
            "nonce_reused" => Conflict::NonceReused,
            "counter_not_increasing" => Conflict::CounterNotIncreasing,
            "order_already_paid" => Conflict::OrderAlreadyPaid,
            "order_cancelled" => Conflict::OrderCancelled,
            "idempotency_conflict" => Conflict::IdempotencyKeyInUse,
            "device_revoked" => Conflict::DeviceRevoked,
            _ => return None,
        })
    }
}

/// An order as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    /// Merchant id.
    pub merchant_id: String,
    /// Merchant's order id.
    pub order_id: String,
    /// Amount in minor units.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Items digest.
    pub items_digest: Vec<u8>,
    /// Client token expiry (Unix ms).
    pub token_expires_at_ms: i64,
    /// Whether a payment is recorded.
    pub paid: bool,
}

/// A registered device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRow {
    /// Merchant it is bound to.
    pub merchant_id: String,
    /// Shopper account it is bound to.
    pub account_id: String,
    /// SEC1 uncompressed public key.
    pub public_key: Vec<u8>,
    /// Last accepted counter (-1 before the first payment).
    pub last_counter: i64,
    /// Whether the merchant revoked it.
    pub revoked: bool,
}

/// What a device's registration proved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceTrust {
    /// `none`, `android_key` or `apple_app_attest`.
    pub attestation: &'static str,
    /// The attested key's security level.
    pub security_level: Option<SecurityLevel>,
    /// The attested app (Android package or Apple App ID).
    pub app_id: Option<String>,
    /// The App Attest key (for per-payment assertions).
    pub app_attest_key: Option<Vec<u8>>,
}

/// A device to register.
#[derive(Debug, Clone, Copy)]
pub struct NewDevice<'a> {
    /// Its id.
    pub device_id: &'a str,
    /// SEC1 public key.
    pub public_key: &'a [u8],
    /// What its registration proved.
    pub trust: &'a DeviceTrust,
}

/// The outcome of a registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// The account the device is bound to.
    pub account_id: String,
    /// Whether an existing device id got a new key (reinstall).
    pub rekeyed: bool,
}

/// A device as the merchant's device list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceListing {
    /// Its id.
    pub device_id: String,
    /// When its current key was registered (Unix ms).
    pub registered_at_ms: i64,
    /// When it was revoked (Unix ms).
    pub revoked_at_ms: Option<i64>,
    /// `none`, `android_key` or `apple_app_attest`.
    pub attestation: String,
    /// Attested security level.
    pub security_level: Option<String>,
    /// Attested app.
    pub app_id: Option<String>,
}

/// Lock-out ends (Unix ms) read with a request, each absent when the subject has no row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Locks {
    /// The device's.
    pub device: Option<i64>,
    /// The device's account's.
    pub account: Option<i64>,
    /// The order's (its client token's holder).
    pub order: Option<i64>,
}

/// What the challenge endpoint needs about a device, read in one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeContext {
    /// The device's merchant.
    pub merchant_id: String,
    /// Whether it is revoked.
    pub revoked: bool,
    /// Lock-outs of the device, its account and the order.
    pub locks: Locks,
    /// Unexpired challenges issued to the device.
    pub device_challenges: i64,
    /// Unexpired challenges issued for the order.
    pub order_challenges: i64,
}

/// An issued nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonceRow {
    /// Merchant it is bound to.
    pub merchant_id: String,
    /// Order it is bound to.
    pub order_id: String,
    /// Amount it is bound to.
    pub amount_minor: i64,
    /// Currency it is bound to.
    pub currency: String,
    /// Device it was issued to.
    pub device_id: String,
    /// Expiry (Unix ms).
    pub expires_at_ms: i64,
    /// Whether a payment consumed it.
    pub used: bool,
}

/// A remembered idempotent response (only accepted payments are remembered; their status is 201).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRow {
    /// SHA-256 of the original request body.
    pub request_hash: Vec<u8>,
    /// The receipt bytes sent back the first time.
    pub receipt: Vec<u8>,
}

/// Everything the pay check needs, read in one query: the client token's order, and the payload's device,
/// nonce and idempotency record (each absent when not found).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayContext {
    /// The order of the client token.
    pub order: OrderRow,
    /// The payload's device.
    pub device: Option<DeviceRow>,
    /// The payload's nonce.
    pub nonce: Option<NonceRow>,
    /// The unexpired idempotency record for the order's merchant and the request's key.
    pub idempotency: Option<IdempotencyRow>,
    /// Lock-outs of the device, its account and the order.
    pub locks: Locks,
}

/// Everything written for one accepted payment.
#[derive(Debug, Clone)]
pub struct NewPayment<'a> {
    /// Server payment id.
    pub payment_id: &'a str,
    /// The decoded, verified payload.
    pub payload: &'a facepay_core::checkout::protocol::PaymentPayload,
    /// The canonical bytes as received.
    pub payload_bytes: &'a [u8],
    /// The DER signature as received.
    pub signature: &'a [u8],
    /// Record time (Unix ms).
    pub recorded_at_ms: i64,
    /// Idempotency key.
    pub idempotency_key: &'a str,
    /// SHA-256 of the request body.
    pub request_hash: &'a [u8],
    /// The receipt (response body) to remember.
    pub receipt: &'a [u8],
    /// When the idempotency record expires (Unix ms).
    pub idempotency_expires_at_ms: i64,
}

/// Row counts, for tests and operators checking that nothing half-written stayed behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableCounts {
    /// Rows in `payments` (each carries its evidence).
    pub payments: i64,
    /// Used nonces.
    pub used_nonces: i64,
    /// Rows in `idempotency_keys`.
    pub idempotency_keys: i64,
    /// Orders marked paid.
    pub paid_orders: i64,
    /// Sum of the devices' last accepted counters (+1 each, so untouched devices add 0).
    pub counter_sum: i64,
}

/// The database.
#[derive(Debug, Clone)]
pub struct Store {
    backend: &'static str,
    /// Pool for writes (SQLite: exactly one connection; PostgreSQL: the shared pool).
    writer: AnyPool,
    /// Pool for reads (SQLite: several WAL readers; PostgreSQL: the same pool as `writer`).
    reader: AnyPool,
    /// SQLite only: the connections this module drives itself, beside the sqlx pools.
    sqlite: Option<SqliteOwn>,
}

/// SQLite's own connections: the group-commit writer thread (single statements and step lists), the gate sqlx
/// write transactions take so they never contend with it, the writer's durability settings, and the pooled
/// read-only connections of the pay check.
#[derive(Debug, Clone)]
struct SqliteOwn {
    writer: SqliteWriter,
    gate: WriteGate,
    durability: String,
    reader: std::sync::Arc<SqliteReader>,
}

impl Store {
    /// Opens (creating an SQLite file if needed) and migrates the database.
    pub async fn open(
        target: &DatabaseTarget,
        sync: SqliteSync,
        pool_size: u32,
    ) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = target.backend_name();
        let connect = |e| StoreError::Connect { backend, source: e };
        let store = match target {
            DatabaseTarget::Sqlite(path) => {
                let url = format!("sqlite://{}?mode=rwc", path.display());
                let options = AnyConnectOptions::from_str(&url).map_err(connect)?;
                let sync_pragma = match sync {
                    SqliteSync::Full => "PRAGMA synchronous = FULL",
                    SqliteSync::Normal => "PRAGMA synchronous = NORMAL",
                };
                let writer = AnyPoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .after_connect(move |conn, _| {
                        Box::pin(async move {
                            sqlx::raw_sql("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;")
                                .execute(&mut *conn)
                                .await?;
                            sqlx::raw_sql(sync_pragma).execute(&mut *conn).await?;
                            Ok(())
                        })
                    })
                    .connect_with(options.clone())
                    .await
                    .map_err(connect)?;
                let store = Store {
                    backend,
                    writer: writer.clone(),
                    reader: writer,
                    sqlite: None,
                };
                store.migrate().await?;
                let reader = AnyPoolOptions::new()
                    .max_connections(pool_size.max(1))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            sqlx::raw_sql("PRAGMA busy_timeout = 5000; PRAGMA query_only = 1;")
                                .execute(&mut *conn)
                                .await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await
                    .map_err(connect)?;
                let gate = WriteGate::default();
                let (writer, durability) = SqliteWriter::start(path, sync, gate.clone())?;
                Store {
                    reader,
                    sqlite: Some(SqliteOwn {
                        writer,
                        gate,
                        durability,
                        reader: std::sync::Arc::new(SqliteReader::new(path)),
                    }),
                    ..store
                }
            }
            DatabaseTarget::Postgres(url) => {
                let options = AnyConnectOptions::from_str(url).map_err(connect)?;
                let pool = AnyPoolOptions::new()
                    .max_connections(pool_size.max(1))
                    .connect_with(options)
                    .await
                    .map_err(connect)?;
                let store = Store {
                    backend,
                    writer: pool.clone(),
                    reader: pool,
                    sqlite: None,
                };
                store.migrate().await?;
                store
            }
        };
        Ok(store)
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Closes both pools (waits for connections to be returned).
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = if self.backend == "sqlite" {
            &SQLITE_MIGRATOR
        } else {
            &POSTGRES_MIGRATOR
        };
        migrator.run(&self.writer).await?;
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query_scalar::<_, i64>("SELECT 1")
            .fetch_one(&self.reader)
            .await
            .is_ok()
    }

    /// Stores a merchant and its first API key (id `key_id`) in one transaction.
    pub async fn insert_merchant(
        &self,
        merchant_id: &str,
        name: &str,
        key_id: &str,
        api_key_hash: &[u8],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let _gate = self.write_gate().await;
        let mut tx = self.writer.begin().await?;
        sqlx::query("INSERT INTO merchants (merchant_id, name, api_key_hash, created_at_ms) VALUES ($1, $2, $3, $4)")
        .bind(merchant_id)
        .bind(name)
        .bind(api_key_hash.to_vec())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        Store::api_key_insert(merchant_id, key_id, api_key_hash, now_ms)
            .into_sqlx()
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores an order; `order_exists` if the merchant already has this order id.
    pub async fn insert_order(
        &self,
        order: &OrderRow,
        client_token_hash: &[u8],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        if self
            .write(Store::order_insert(order, client_token_hash, now_ms))
            .await?
            == 1
        {
            Ok(())
        } else {
            Err(StoreError::Conflict(Conflict::OrderExists))
        }
    }

    /// The insert of an order (affects no row when the merchant already has this order id).
    pub fn order_insert(order: &OrderRow, client_token_hash: &[u8], now_ms: i64) -> Statement {
        Statement::new("INSERT INTO orders (merchant_id, order_id, amount_minor, currency, items_digest, client_token_hash, \
             token_expires_at_ms, paid, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8) \
             ON CONFLICT (merchant_id, order_id) DO NOTHING")
        .bind(order.merchant_id.clone())
        .bind(order.order_id.clone())
        .bind(order.amount_minor)
        .bind(order.currency.clone())
        .bind(order.items_digest.clone())
        .bind(client_token_hash.to_vec())
        .bind(order.token_expires_at_ms)
        .bind(now_ms)
    }

    /// The order whose client token hashes to `client_token_hash`.
    pub async fn order_by_token_hash(
        &self,
        client_token_hash: &[u8],
    ) -> Result<Option<OrderRow>, StoreError> {
        let row = sqlx::query("SELECT merchant_id, order_id, amount_minor, currency, items_digest, token_expires_at_ms, paid \
             FROM orders WHERE client_token_hash = $1")
        .bind(client_token_hash.to_vec())
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| {
            Ok(OrderRow {
                merchant_id: r.try_get(0)?,
                order_id: r.try_get(1)?,
                amount_minor: r.try_get(2)?,
                currency: r.try_get(3)?,
                items_digest: r.try_get(4)?,
                token_expires_at_ms: r.try_get(5)?,
                paid: r.try_get::<i64, _>(6)? != 0,
            })
        })
        .transpose()
    }

    /// Stores an enrolment token hash.
    pub async fn insert_enrollment(
        &self,
        token_hash: &[u8],
        merchant_id: &str,
        account_id: &str,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        let insert = Statement::new(
            "INSERT INTO enrollments (token_hash, merchant_id, account_id, expires_at_ms, used) \
             VALUES ($1, $2, $3, $4, 0)",
        )
        .bind(token_hash.to_vec())
        .bind(merchant_id.to_owned())
        .bind(account_id.to_owned())
        .bind(expires_at_ms);
        self.write(insert).await.map(|_| ())
    }

    /// Consumes the registration challenge and the enrolment token and stores the device, in one transaction: a
    /// new device, or a new key for a device id already registered to the same account (reinstall: the old key
    /// stops working, the device is active again), within the account's device limit.
    pub async fn register_device(
        &self,
        token_hash: &[u8],
        challenge: &[u8; 32],
        device: &NewDevice<'_>,
        now_ms: i64,
        max_per_account: u32,
    ) -> Result<Registered, StoreError> {
        let _gate = self.write_gate().await;
        let mut tx = self.writer.begin().await?;
        let consumed = sqlx::query(
            "UPDATE registration_challenges SET used = 1 \
             WHERE challenge = $1 AND token_hash = $2 AND used = 0 AND expires_at_ms > $3",
        )
        .bind(challenge.to_vec())
        .bind(token_hash.to_vec())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        if consumed.rows_affected() != 1 {
            return Err(StoreError::Conflict(Conflict::RegistrationChallengeInvalid));
        }
        let row = sqlx::query("SELECT merchant_id, account_id, expires_at_ms, used FROM enrollments WHERE token_hash = $1")
        .bind(token_hash.to_vec())
        .fetch_optional(&mut *tx)
        .await?;
        let invalid = || StoreError::Conflict(Conflict::EnrollmentInvalid);
        let Some(row) = row else {
            return Err(invalid());
        };
        let merchant_id: String = row.try_get(0)?;
        let account_id: String = row.try_get(1)?;
        let expires_at_ms: i64 = row.try_get(2)?;
        let used: i64 = row.try_get(3)?;
        if used != 0 || expires_at_ms <= now_ms {
            return Err(invalid());
        }
        let existing =
            sqlx::query("SELECT merchant_id, account_id FROM devices WHERE device_id = $1")
                .bind(device.device_id)
                .fetch_optional(&mut *tx)
                .await?;
        let rekeyed = match existing {
            None => false,
            Some(r)
                if r.try_get::<String, _>(0)? == merchant_id
                    && r.try_get::<String, _>(1)? == account_id =>
            {
                true
            }
            Some(_) => return Err(StoreError::Conflict(Conflict::DeviceExists)),
        };
        let active: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM devices WHERE merchant_id = $1 AND account_id = $2 AND revoked_at_ms IS NULL \
             AND device_id <> $3",
        )
        .bind(&merchant_id)
        .bind(&account_id)
        .bind(device.device_id)
        .fetch_one(&mut *tx)
        .await?;
        if active >= i64::from(max_per_account) {
            return Err(StoreError::Conflict(Conflict::DeviceLimitReached));
        }
        let trust = device.trust;
        let level = trust.security_level.map(|l| l.as_str().to_owned());
        let attestation = if trust.attestation.is_empty() {
            "none"
        } else {
            trust.attestation
        };
        let written = if rekeyed {
            sqlx::query(
                "UPDATE devices SET public_key = $2, last_counter = -1, registered_at_ms = $3, revoked_at_ms = NULL, \
                 attestation = $4, security_level = $5, app_id = $6, app_attest_key = $7, app_attest_counter = 0 \
                 WHERE device_id = $1",
            )
            .bind(device.device_id)
            .bind(device.public_key.to_vec())
            .bind(now_ms)
            .bind(attestation)
            .bind(level)
            .bind(trust.app_id.clone())
            .bind(trust.app_attest_key.clone())
            .execute(&mut *tx)
            .await?
        } else {
            sqlx::query(
                "INSERT INTO devices (device_id, merchant_id, account_id, public_key, last_counter, registered_at_ms, \
                 attestation, security_level, app_id, app_attest_key, app_attest_counter) \
                 VALUES ($1, $2, $3, $4, -1, $5, $6, $7, $8, $9, 0) ON CONFLICT (device_id) DO NOTHING",
            )
            .bind(device.device_id)
            .bind(&merchant_id)
            .bind(&account_id)
            .bind(device.public_key.to_vec())
            .bind(now_ms)
            .bind(attestation)
            .bind(level)
            .bind(trust.app_id.clone())
            .bind(trust.app_attest_key.clone())
            .execute(&mut *tx)
            .await?
        };
        if written.rows_affected() != 1 {
            return Err(StoreError::Conflict(Conflict::DeviceExists));
        }
        let consumed =
            sqlx::query("UPDATE enrollments SET used = 1 WHERE token_hash = $1 AND used = 0")
                .bind(token_hash.to_vec())
                .execute(&mut *tx)
                .await?;
        if consumed.rows_affected() != 1 {
            return Err(invalid());
        }
        tx.commit().await?;
        Ok(Registered {
            account_id,
            rekeyed,
        })
    }

    /// The device, its lock-outs and the challenges outstanding for it and for the order, in one query.
    pub async fn challenge_context(
        &self,
        device_id: &str,
        merchant_id: &str,
        order_id: &str,
        now_ms: i64,
    ) -> Result<Option<ChallengeContext>, StoreError> {
        let row = sqlx::query(
            "SELECT d.merchant_id, d.revoked_at_ms, ld.locked_until_ms, la.locked_until_ms, lo.locked_until_ms, \
             (SELECT COUNT(*) FROM nonces n WHERE n.device_id = $1 AND n.expires_at_ms > $4), \
             (SELECT COUNT(*) FROM nonces n WHERE n.merchant_id = $2 AND n.order_id = $3 AND n.expires_at_ms > $4) \
             FROM devices d \
             LEFT JOIN lockouts ld ON ld.subject = $5 \
             LEFT JOIN lockouts la ON la.subject = 'account:' || d.merchant_id || '/' || d.account_id \
             LEFT JOIN lockouts lo ON lo.subject = $6 \
             WHERE d.device_id = $1",
        )
        .bind(device_id)
        .bind(merchant_id)
        .bind(order_id)
        .bind(now_ms)
        .bind(Subject::Device(device_id.to_owned()).key())
        .bind(
            Subject::Order {
                merchant_id: merchant_id.to_owned(),
                order_id: order_id.to_owned(),
            }
            .key(),
        )
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| {
            Ok(ChallengeContext {
                merchant_id: r.try_get(0)?,
                revoked: r.try_get::<Option<i64>, _>(1)?.is_some(),
                locks: Locks {
                    device: r.try_get(2)?,
                    account: r.try_get(3)?,
                    order: r.try_get(4)?,
                },
                device_challenges: r.try_get(5)?,
                order_challenges: r.try_get(6)?,
            })
        })
        .transpose()
    }

    /// Counts a failure against `subject` (one upsert, atomic on both backends); returns the lock-out end when
    /// this failure locked it.
    pub async fn record_failure(
        &self,
        subject: &Subject,
        now_ms: i64,
        rule: LockoutRule,
    ) -> Result<Option<i64>, StoreError> {
        // f = the failure count including this one, restarted when the window has passed.
        const F: &str =
            "(CASE WHEN lockouts.window_start_ms <= $2 - $3 THEN 1 ELSE lockouts.failures + 1 END)";
        let sql = format!(
            "INSERT INTO lockouts (subject, failures, window_start_ms, locked_until_ms) \
             VALUES ($1, CASE WHEN 1 >= $4 THEN 0 ELSE 1 END, $2, CASE WHEN 1 >= $4 THEN $2 + $5 ELSE 0 END) \
             ON CONFLICT (subject) DO UPDATE SET \
               failures = CASE WHEN {F} >= $4 THEN 0 ELSE {F} END, \
               window_start_ms = CASE WHEN {F} >= $4 OR lockouts.window_start_ms <= $2 - $3 THEN $2 \
                 ELSE lockouts.window_start_ms END, \
               locked_until_ms = CASE WHEN {F} >= $4 THEN $2 + $5 ELSE lockouts.locked_until_ms END \
             RETURNING locked_until_ms"
        );
        let _gate = self.write_gate().await;
        let until: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(subject.key())
            .bind(now_ms)
            .bind(rule.window_ms)
            .bind(rule.max_failures)
            .bind(rule.lockout_ms)
            .fetch_one(&self.writer)
            .await?;
        Ok((until == now_ms.saturating_add(rule.lockout_ms)).then_some(until))
    }

    /// Revokes a device of this merchant; returns its revocation time (the first one if it already was), `None`
    /// when the merchant has no such device.
    pub async fn revoke_device(
        &self,
        merchant_id: &str,
        device_id: &str,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let update = Statement::new(
            "UPDATE devices SET revoked_at_ms = $3 WHERE device_id = $1 AND merchant_id = $2 AND revoked_at_ms IS NULL",
        )
        .bind(device_id.to_owned())
        .bind(merchant_id.to_owned())
        .bind(now_ms);
        self.write(update).await?;
        Ok(sqlx::query_scalar::<_, Option<i64>>(
            "SELECT revoked_at_ms FROM devices WHERE device_id = $1 AND merchant_id = $2",
        )
        .bind(device_id)
        .bind(merchant_id)
        .fetch_optional(&self.writer)
        .await?
        .flatten())
    }

    /// The merchant's devices for an account, oldest registration first.
    pub async fn account_devices(
        &self,
        merchant_id: &str,
        account_id: &str,
    ) -> Result<Vec<DeviceListing>, StoreError> {
        let rows = sqlx::query(
            "SELECT device_id, registered_at_ms, revoked_at_ms, attestation, security_level, app_id FROM devices \
             WHERE merchant_id = $1 AND account_id = $2 ORDER BY registered_at_ms, device_id",
        )
        .bind(merchant_id)
        .bind(account_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeviceListing {
                    device_id: r.try_get(0)?,
                    registered_at_ms: r.try_get(1)?,
                    revoked_at_ms: r.try_get(2)?,
                    attestation: r.try_get(3)?,
                    security_level: r.try_get(4)?,
                    app_id: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// Issues a registration challenge for a valid, unused enrolment token, unless the token already has `limit`
    /// unexpired challenges outstanding.
    pub async fn insert_registration_challenge(
        &self,
        challenge: &[u8; 32],
        token_hash: &[u8],
        expires_at_ms: i64,
        now_ms: i64,
        limit: u32,
    ) -> Result<(), StoreError> {
        let row = sqlx::query(
            "SELECT e.expires_at_ms, e.used, \
             (SELECT COUNT(*) FROM registration_challenges c WHERE c.token_hash = e.token_hash AND c.expires_at_ms > $2) \
             FROM enrollments e WHERE e.token_hash = $1",
        )
        .bind(token_hash.to_vec())
        .bind(now_ms)
        .fetch_optional(&self.reader)
        .await?;
        let Some(row) = row else {
            return Err(StoreError::Conflict(Conflict::EnrollmentInvalid));
        };
        let (expires, used, outstanding): (i64, i64, i64) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        if used != 0 || expires <= now_ms {
            return Err(StoreError::Conflict(Conflict::EnrollmentInvalid));
        }
        if outstanding >= i64::from(limit) {
            return Err(StoreError::RateLimited);
        }
        let insert = Statement::new(
            "INSERT INTO registration_challenges (challenge, token_hash, expires_at_ms, used) VALUES ($1, $2, $3, 0)",
        )
        .bind(challenge.to_vec())
        .bind(token_hash.to_vec())
        .bind(expires_at_ms);
        self.write(insert).await.map(|_| ())
    }

    /// Stores a fresh nonce.
    pub async fn insert_nonce(&self, nonce: &[u8; 32], row: &NonceRow) -> Result<(), StoreError> {
        let insert = Statement::new("INSERT INTO nonces (nonce, merchant_id, order_id, amount_minor, currency, device_id, expires_at_ms, used) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0)")
        .bind(nonce.to_vec())
        .bind(row.merchant_id.clone())
        .bind(row.order_id.clone())
        .bind(row.amount_minor)
        .bind(row.currency.clone())
        .bind(row.device_id.clone())
        .bind(row.expires_at_ms);
        self.write(insert).await.map(|_| ())
    }

    /// The unexpired idempotency record for this merchant and key.
    pub async fn idempotency(
        &self,
        merchant_id: &str,
        key: &str,
        now_ms: i64,
    ) -> Result<Option<IdempotencyRow>, StoreError> {
        let row = sqlx::query(
            "SELECT i.request_hash, p.receipt FROM idempotency_keys i \
             JOIN payments p ON p.payment_id = i.payment_id \
             WHERE i.merchant_id = $1 AND i.idem_key = $2 AND i.expires_at_ms > $3",
        )
        .bind(merchant_id)
        .bind(key)
        .bind(now_ms)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| {
            Ok(IdempotencyRow {
                request_hash: r.try_get(0)?,
                receipt: r.try_get(1)?,
            })
        })
        .transpose()
    }

    /// Reads, in one query, the order of a client token and the device, nonce and idempotency record a pay
    /// request refers to. `None` when no order has this client token.
    pub async fn pay_context(
        &self,
        client_token_hash: &[u8],
        device_id: &str,
        nonce: &[u8; 32],
        idempotency_key: &str,
        now_ms: i64,
    ) -> Result<Option<PayContext>, StoreError> {
        let query = Statement::new(
            "SELECT o.merchant_id, o.order_id, o.amount_minor, o.currency, o.items_digest, o.token_expires_at_ms, \
             o.paid, d.merchant_id, d.account_id, d.public_key, d.last_counter, n.merchant_id, n.order_id, \
             n.amount_minor, n.currency, n.device_id, n.expires_at_ms, n.used, i.request_hash, p.receipt, \
             d.revoked_at_ms, ld.locked_until_ms, la.locked_until_ms, lo.locked_until_ms \
             FROM orders o \
             LEFT JOIN devices d ON d.device_id = $2 \
             LEFT JOIN lockouts ld ON ld.subject = $6 \
             LEFT JOIN lockouts la ON la.subject = 'account:' || d.merchant_id || '/' || d.account_id \
             LEFT JOIN lockouts lo ON lo.subject = 'order:' || o.merchant_id || '/' || o.order_id \
             LEFT JOIN nonces n ON n.nonce = $3 \
             LEFT JOIN idempotency_keys i \
               ON i.merchant_id = o.merchant_id AND i.idem_key = $4 AND i.expires_at_ms > $5 \
             LEFT JOIN payments p ON p.payment_id = i.payment_id \
             WHERE o.client_token_hash = $1",
        )
        .bind(client_token_hash)
        .bind(device_id)
        .bind(nonce.as_slice())
        .bind(idempotency_key)
        .bind(now_ms)
        .bind(Subject::Device(device_id.to_owned()).key());
        match &self.sqlite {
            Some(sqlite) => sqlite
                .reader
                .read(|conn| query.query_first(conn, |row| pay_context_from(row)))?
                .transpose(),
            None => query
                .into_sqlx()
                .fetch_optional(&self.reader)
                .await?
                .map(|row| pay_context_from(&row))
                .transpose(),
        }
    }

    /// Records an accepted payment with ONE statement, so atomically: the `payments` row (payload, signature,
    /// evidence, receipt) whose insert triggers (see the migrations) check and apply the nonce consumption, the
    /// device counter, the order's paid flag and the idempotency record. A concurrent request that got there first
    /// makes this one fail with the matching code, and nothing of it is written.
    ///
    /// SQLite: the insert goes to the group-commit task, which runs the inserts waiting at that moment in one
    /// transaction (a failed insert is undone alone; the others stay) and answers each after the COMMIT, so one
    /// fsync covers the batch. PostgreSQL: the insert commits on its own (PostgreSQL groups WAL flushes itself).
    pub async fn record_payment(&self, p: &NewPayment<'_>) -> Result<(), StoreError> {
        self.write(payment_insert(p)?).await.map(|_| ())
    }

    /// Runs one write statement and returns the rows it affected. SQLite: through the group-commit thread (one
    /// fsync per batch); PostgreSQL: committed on its own.
    async fn write(&self, statement: Statement) -> Result<u64, StoreError> {
        match &self.sqlite {
            None => statement
                .into_sqlx()
                .execute(&self.writer)
                .await
                .map(|r| r.rows_affected())
                .map_err(insert_error),
            Some(sqlite) => sqlite.writer.one(statement).await,
        }
    }

    /// SQLite: waits until no group-commit batch is writing and keeps it out while the guard lives (for the
    /// sqlx transactions that read before they write). PostgreSQL: `None`, nothing to wait for.
    async fn write_gate(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.sqlite {
            Some(sqlite) => Some(sqlite.gate.lock().await),
            None => None,
        }
    }

    /// Deletes expired idempotency records (of payments and of other POSTs), unused nonces and registration
    /// challenges; returns how many rows went.
    pub async fn purge_expired(&self, now_ms: i64) -> Result<u64, StoreError> {
        let _gate = self.write_gate().await;
        let keys = sqlx::query("DELETE FROM idempotency_keys WHERE expires_at_ms <= $1")
            .bind(now_ms)
            .execute(&self.writer)
            .await?;
        let nonces = sqlx::query("DELETE FROM nonces WHERE expires_at_ms <= $1 AND used = 0")
            .bind(now_ms)
            .execute(&self.writer)
            .await?;
        let responses = sqlx::query("DELETE FROM idempotent_requests WHERE expires_at_ms <= $1")
            .bind(now_ms)
            .execute(&self.writer)
            .await?;
        let challenges =
            sqlx::query("DELETE FROM registration_challenges WHERE expires_at_ms <= $1")
                .bind(now_ms)
                .execute(&self.writer)
                .await?;
        Ok(keys.rows_affected()
            + nonces.rows_affected()
            + responses.rows_affected()
            + challenges.rows_affected())
    }

    /// Row counts of the payment-related tables.
    pub async fn table_counts(&self) -> Result<TableCounts, StoreError> {
        let count = |sql: &'static str| async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&self.reader)
                .await
        };
        Ok(TableCounts {
            payments: count("SELECT COUNT(*) FROM payments").await?,
            used_nonces: count("SELECT COUNT(*) FROM nonces WHERE used = 1").await?,
            idempotency_keys: count("SELECT COUNT(*) FROM idempotency_keys").await?,
            paid_orders: count("SELECT COUNT(*) FROM orders WHERE paid = 1").await?,
            counter_sum: count(
                "SELECT CAST(COALESCE(SUM(last_counter + 1), 0) AS BIGINT) FROM devices",
            )
            .await?,
        })
    }
}

/// The pay check's context from the row of [`Store::pay_context`]'s query.
fn pay_context_from(r: &impl Columns) -> Result<PayContext, StoreError> {
    let order = OrderRow {
        merchant_id: r.text(0)?,
        order_id: r.text(1)?,
        amount_minor: r.int(2)?,
        currency: r.text(3)?,
        items_digest: r.blob(4)?,
        token_expires_at_ms: r.int(5)?,
        paid: r.int(6)? != 0,
    };
    let device = match r.opt_text(7)? {
        None => None,
        Some(merchant_id) => Some(DeviceRow {
            merchant_id,
            account_id: r.text(8)?,
            public_key: r.blob(9)?,
            last_counter: r.int(10)?,
            revoked: r.opt_int(20)?.is_some(),
        }),
    };
    let nonce = match r.opt_text(11)? {
        None => None,
        Some(merchant_id) => Some(NonceRow {
            merchant_id,
            order_id: r.text(12)?,
            amount_minor: r.int(13)?,
            currency: r.text(14)?,
            device_id: r.text(15)?,
            expires_at_ms: r.int(16)?,
            used: r.int(17)? != 0,
        }),
    };
    let idempotency = match (r.opt_blob(18)?, r.opt_blob(19)?) {
        (Some(request_hash), Some(receipt)) => Some(IdempotencyRow {
            request_hash,
            receipt,
        }),
        _ => None,
    };
    Ok(PayContext {
        order,
        device,
        nonce,
        idempotency,
        locks: Locks {
            device: r.opt_int(21)?,
            account: r.opt_int(22)?,
            order: r.opt_int(23)?,
        },
    })
}

/// Binds every column of a payment insert.
fn payment_insert(p: &NewPayment<'_>) -> Result<Statement, StoreError> {
    let payload = p.payload;
    let order = &payload.order;
    let ev = &payload.evidence;
    let too_big = StoreError::OutOfRange;
    let counter = i64::try_from(payload.counter).map_err(|_| too_big("counter"))?;
    let amount = i64::try_from(order.amount_minor).map_err(|_| too_big("amount_minor"))?;
    let started = i64::try_from(ev.started_at_ms).map_err(|_| too_big("started_at_ms"))?;
    let finished = i64::try_from(ev.finished_at_ms).map_err(|_| too_big("finished_at_ms"))?;
    Ok(Statement::new(
        "INSERT INTO payments (payment_id, merchant_id, order_id, device_id, amount_minor, currency, \
         items_digest, nonce, counter, payload, signature, liveness, challenges, antispoof_score, match_score, \
         model_versions, started_at_ms, finished_at_ms, idem_key, request_hash, idem_expires_at_ms, receipt, \
         recorded_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18, $19, $20, $21, $22, $23)",
    )
    .bind(p.payment_id.to_owned())
    .bind(order.merchant_id.clone())
    .bind(order.order_id.clone())
    .bind(payload.device_id.clone())
    .bind(amount)
    .bind(order.currency.clone())
    .bind(order.items_digest.to_vec())
    .bind(payload.nonce.to_vec())
    .bind(counter)
    .bind(p.payload_bytes.to_vec())
    .bind(p.signature.to_vec())
    .bind(to_json(&ev.liveness).trim_matches('"').to_owned())
    .bind(to_json(&ev.challenges))
    .bind(ev.antispoof_score.map(f64::from))
    .bind(f64::from(ev.match_score))
    .bind(to_json(&ev.model_versions))
    .bind(started)
    .bind(finished)
    .bind(p.idempotency_key.to_owned())
    .bind(p.request_hash.to_vec())
    .bind(p.idempotency_expires_at_ms)
    .bind(p.receipt.to_vec())
    .bind(p.recorded_at_ms))
}

/// Maps an SQLite writer failure: the conflict a payment trigger raised, or a database failure.
fn sqlite_error(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(_, Some(message)) => {
            Conflict::from_trigger(message).map_or(StoreError::Sqlite(e), StoreError::Conflict)
        }
        _ => StoreError::Sqlite(e),
    }
}

/// Maps a write failure: the conflict a payment trigger raised, or a database failure.
fn insert_error(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) => {
            Conflict::from_trigger(db.message()).map_or(StoreError::Query(e), StoreError::Conflict)
        }
        _ => StoreError::Query(e),
    }
}

/// JSON text of an evidence column (these types always serialise).
fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
