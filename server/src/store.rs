//! Storage through sqlx: SQLite (one writer connection, a pool of readers, WAL) or PostgreSQL (one pool),
//! the same SQL for both, migrations from `server/migrations/<backend>/`, and the one-transaction payment write.

pub mod api_keys;
pub mod durability;
pub mod idempotency;
pub mod reads;
pub mod refunds;
pub mod transaction;
pub mod webhooks;

use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Row};
use tokio::sync::{mpsc, oneshot};

use sqlx::migrate::Migrator;

use crate::config::{DatabaseTarget, SqliteSync};

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
    /// The SQLite group-commit writer has stopped (the store is shutting down).
    #[error("the database writer has stopped")]
    WriterStopped,
    /// Another query failed.
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    /// The SQLite group-commit transaction (shared by several writes) could not begin or commit.
    #[error("database error: {0}")]
    Batch(std::sync::Arc<sqlx::Error>),
}

impl StoreError {
    /// Whether the failure is the database being unreachable or overloaded (retrying may succeed), as opposed to
    /// a conflict or a bug.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::WriterStopped => true,
            StoreError::Query(e) => unavailable(e),
            StoreError::Batch(e) => unavailable(e),
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
    /// SQLite only: the group-commit task that owns the writer connection for payments.
    batcher: Option<mpsc::Sender<WriteJob>>,
}

/// A write statement with all values bound (owned, so it can move to the group-commit task).
pub type WriteStatement = sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>;

/// One write for the group-commit task, and where to send its outcome (rows affected).
struct WriteJob {
    statement: WriteStatement,
    reply: oneshot::Sender<Result<u64, StoreError>>,
}

/// Most writes committed in one SQLite transaction.
const MAX_BATCH: usize = 256;

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
                    batcher: None,
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
                let (batcher, jobs) = mpsc::channel(4 * MAX_BATCH);
                tokio::spawn(group_commit(store.writer.clone(), jobs));
                Store {
                    reader,
                    batcher: Some(batcher),
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
                    batcher: None,
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
        let mut tx = self.writer.begin().await?;
        sqlx::query("INSERT INTO merchants (merchant_id, name, api_key_hash, created_at_ms) VALUES ($1, $2, $3, $4)")
        .bind(merchant_id)
        .bind(name)
        .bind(api_key_hash.to_vec())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        Store::api_key_insert(merchant_id, key_id, api_key_hash, now_ms)
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
    pub fn order_insert(order: &OrderRow, client_token_hash: &[u8], now_ms: i64) -> WriteStatement {
        sqlx::query("INSERT INTO orders (merchant_id, order_id, amount_minor, currency, items_digest, client_token_hash, \
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
        let insert = sqlx::query(
            "INSERT INTO enrollments (token_hash, merchant_id, account_id, expires_at_ms, used) \
             VALUES ($1, $2, $3, $4, 0)",
        )
        .bind(token_hash.to_vec())
        .bind(merchant_id.to_owned())
        .bind(account_id.to_owned())
        .bind(expires_at_ms);
        self.write(insert).await.map(|_| ())
    }

    /// Consumes an enrolment token and registers the device in one transaction. Returns the account id.
    pub async fn register_device(
        &self,
        token_hash: &[u8],
        device_id: &str,
        public_key: &[u8],
        now_ms: i64,
    ) -> Result<String, StoreError> {
        let mut tx = self.writer.begin().await?;
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
        let inserted = sqlx::query("INSERT INTO devices (device_id, merchant_id, account_id, public_key, last_counter, registered_at_ms) \
             VALUES ($1, $2, $3, $4, -1, $5) ON CONFLICT (device_id) DO NOTHING")
        .bind(device_id)
        .bind(&merchant_id)
        .bind(&account_id)
        .bind(public_key.to_vec())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() != 1 {
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
        Ok(account_id)
    }

    /// A registered device.
    pub async fn device(&self, device_id: &str) -> Result<Option<DeviceRow>, StoreError> {
        let row = sqlx::query("SELECT merchant_id, account_id, public_key, last_counter FROM devices WHERE device_id = $1")
        .bind(device_id)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| {
            Ok(DeviceRow {
                merchant_id: r.try_get(0)?,
                account_id: r.try_get(1)?,
                public_key: r.try_get(2)?,
                last_counter: r.try_get(3)?,
            })
        })
        .transpose()
    }

    /// Stores a fresh nonce.
    pub async fn insert_nonce(&self, nonce: &[u8; 32], row: &NonceRow) -> Result<(), StoreError> {
        let insert = sqlx::query("INSERT INTO nonces (nonce, merchant_id, order_id, amount_minor, currency, device_id, expires_at_ms, used) \
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
        let row = sqlx::query(
            "SELECT o.merchant_id, o.order_id, o.amount_minor, o.currency, o.items_digest, o.token_expires_at_ms, \
             o.paid, d.merchant_id, d.account_id, d.public_key, d.last_counter, n.merchant_id, n.order_id, \
             n.amount_minor, n.currency, n.device_id, n.expires_at_ms, n.used, i.request_hash, p.receipt \
             FROM orders o \
             LEFT JOIN devices d ON d.device_id = $2 \
             LEFT JOIN nonces n ON n.nonce = $3 \
             LEFT JOIN idempotency_keys i \
               ON i.merchant_id = o.merchant_id AND i.idem_key = $4 AND i.expires_at_ms > $5 \
             LEFT JOIN payments p ON p.payment_id = i.payment_id \
             WHERE o.client_token_hash = $1",
        )
        .bind(client_token_hash.to_vec())
        .bind(device_id)
        .bind(nonce.to_vec())
        .bind(idempotency_key)
        .bind(now_ms)
        .fetch_optional(&self.reader)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let order = OrderRow {
            merchant_id: r.try_get(0)?,
            order_id: r.try_get(1)?,
            amount_minor: r.try_get(2)?,
            currency: r.try_get(3)?,
            items_digest: r.try_get(4)?,
            token_expires_at_ms: r.try_get(5)?,
            paid: r.try_get::<i64, _>(6)? != 0,
        };
        let device = match r.try_get::<Option<String>, _>(7)? {
            None => None,
            Some(merchant_id) => Some(DeviceRow {
                merchant_id,
                account_id: r.try_get(8)?,
                public_key: r.try_get(9)?,
                last_counter: r.try_get(10)?,
            }),
        };
        let nonce = match r.try_get::<Option<String>, _>(11)? {
            None => None,
            Some(merchant_id) => Some(NonceRow {
                merchant_id,
                order_id: r.try_get(12)?,
                amount_minor: r.try_get(13)?,
                currency: r.try_get(14)?,
                device_id: r.try_get(15)?,
                expires_at_ms: r.try_get(16)?,
                used: r.try_get::<i64, _>(17)? != 0,
            }),
        };
        let idempotency = match (
            r.try_get::<Option<Vec<u8>>, _>(18)?,
            r.try_get::<Option<Vec<u8>>, _>(19)?,
        ) {
            (Some(request_hash), Some(receipt)) => Some(IdempotencyRow {
                request_hash,
                receipt,
            }),
            _ => None,
        };
        Ok(Some(PayContext {
            order,
            device,
            nonce,
            idempotency,
        }))
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

    /// Runs one write statement and returns the rows it affected. SQLite: through the group-commit task (one
    /// fsync per batch); PostgreSQL: committed on its own.
    async fn write(&self, statement: WriteStatement) -> Result<u64, StoreError> {
        match &self.batcher {
            None => statement
                .execute(&self.writer)
                .await
                .map(|r| r.rows_affected())
                .map_err(insert_error),
            Some(batcher) => {
                let (reply, outcome) = oneshot::channel();
                batcher
                    .send(WriteJob { statement, reply })
                    .await
                    .map_err(|_| StoreError::WriterStopped)?;
                outcome.await.map_err(|_| StoreError::WriterStopped)?
            }
        }
    }

    /// Deletes expired idempotency records (of payments and of other POSTs) and nonces; returns how many rows went.
    pub async fn purge_expired(&self, now_ms: i64) -> Result<u64, StoreError> {
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
        Ok(keys.rows_affected() + nonces.rows_affected() + responses.rows_affected())
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

/// Binds every column of a payment insert.
fn payment_insert(p: &NewPayment<'_>) -> Result<WriteStatement, StoreError> {
    let payload = p.payload;
    let order = &payload.order;
    let ev = &payload.evidence;
    let too_big = StoreError::OutOfRange;
    let counter = i64::try_from(payload.counter).map_err(|_| too_big("counter"))?;
    let amount = i64::try_from(order.amount_minor).map_err(|_| too_big("amount_minor"))?;
    let started = i64::try_from(ev.started_at_ms).map_err(|_| too_big("started_at_ms"))?;
    let finished = i64::try_from(ev.finished_at_ms).map_err(|_| too_big("finished_at_ms"))?;
    Ok(sqlx::query(
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

/// The group-commit loop (SQLite): takes every write waiting (payments, orders, nonces, enrolments), runs them in
/// one transaction (a failed statement is undone alone), commits once, then answers each. Ends when the store is
/// dropped.
async fn group_commit(writer: AnyPool, mut jobs: mpsc::Receiver<WriteJob>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let outcomes = commit_batch(&writer, &mut batch).await;
        for (job, outcome) in batch.drain(..).zip(outcomes) {
            let _ = job.reply.send(outcome);
        }
    }
}

/// Runs one batch; every job gets an outcome, and none is `Ok` unless the COMMIT succeeded.
async fn commit_batch(writer: &AnyPool, batch: &mut [WriteJob]) -> Vec<Result<u64, StoreError>> {
    let mut tx = match writer.begin().await {
        Ok(tx) => tx,
        Err(e) => return failed_batch(e, batch.len()),
    };
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in batch.iter_mut() {
        // Take the bound query out of the job (a placeholder stays behind; the job only keeps its reply).
        let statement = std::mem::replace(&mut job.statement, sqlx::query("SELECT 1"));
        let outcome = statement.execute(&mut *tx).await;
        outcomes.push(outcome.map(|r| r.rows_affected()).map_err(insert_error));
    }
    if let Err(e) = tx.commit().await {
        return failed_batch(e, batch.len());
    }
    outcomes
}

/// The outcome of every job of a batch whose transaction could not begin or commit.
fn failed_batch(e: sqlx::Error, jobs: usize) -> Vec<Result<u64, StoreError>> {
    let shared = std::sync::Arc::new(e);
    (0..jobs)
        .map(|_| Err(StoreError::Batch(shared.clone())))
        .collect()
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
