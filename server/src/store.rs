//! Storage through sqlx: SQLite (one writer connection, a pool of readers, WAL) or PostgreSQL (one pool),
//! the same SQL for both, migrations from `server/migrations/<backend>/`, and the one-transaction payment write.

use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Row};

use crate::config::{DatabaseTarget, SqliteSync};
use crate::error::ApiError;
use facepay_core::checkout::wire::ErrorCode;

/// Schema migrations per backend, applied in order and recorded in `schema_migrations`.
const SQLITE_MIGRATIONS: &[(i64, &str)] =
    &[(1, include_str!("../migrations/sqlite/0001_init.sql"))];
const POSTGRES_MIGRATIONS: &[(i64, &str)] =
    &[(1, include_str!("../migrations/postgres/0001_init.sql"))];

/// Why the database could not be opened or migrated.
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
    #[error("migration {version} failed: {source}")]
    Migrate {
        /// The migration version.
        version: i64,
        /// The driver error.
        source: sqlx::Error,
    },
    /// Another query failed.
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
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

/// A remembered idempotent response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRow {
    /// SHA-256 of the original request body.
    pub request_hash: Vec<u8>,
    /// HTTP status of the original response.
    pub status: u16,
    /// Body bytes of the original response.
    pub response: Vec<u8>,
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
    /// Status of the response to remember.
    pub response_status: u16,
    /// Body of the response to remember.
    pub response: &'a [u8],
    /// When the idempotency record expires (Unix ms).
    pub idempotency_expires_at_ms: i64,
}

/// Row counts, for tests and operators checking that nothing half-written stayed behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableCounts {
    /// Rows in `payments`.
    pub payments: i64,
    /// Rows in `payment_evidence`.
    pub evidence: i64,
    /// Used nonces.
    pub used_nonces: i64,
    /// Rows in `idempotency_keys`.
    pub idempotency_keys: i64,
    /// Orders marked paid.
    pub paid_orders: i64,
}

/// The database.
#[derive(Debug, Clone)]
pub struct Store {
    backend: &'static str,
    /// Pool for writes (SQLite: exactly one connection; PostgreSQL: the shared pool).
    writer: AnyPool,
    /// Pool for reads (SQLite: several WAL readers; PostgreSQL: the same pool as `writer`).
    reader: AnyPool,
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
                Store { reader, ..store }
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
        let migrations = if self.backend == "sqlite" {
            SQLITE_MIGRATIONS
        } else {
            POSTGRES_MIGRATIONS
        };
        let mut tx = self.writer.begin().await?;
        sqlx::raw_sql("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)")
            .execute(&mut *tx)
            .await?;
        if self.backend == "postgres" {
            // Serialise concurrent migrators (e.g. parallel tests starting servers on one database).
            sqlx::raw_sql("LOCK TABLE schema_migrations IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
        }
        let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
            .fetch_all(&mut *tx)
            .await?;
        for &(version, sql) in migrations {
            if applied.contains(&version) {
                continue;
            }
            sqlx::raw_sql(sql)
                .execute(&mut *tx)
                .await
                .map_err(|source| StoreError::Migrate { version, source })?;
            sqlx::query("INSERT INTO schema_migrations (version) VALUES ($1)")
                .bind(version)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query_scalar::<_, i64>("SELECT 1")
            .fetch_one(&self.reader)
            .await
            .is_ok()
    }

    /// Stores a merchant.
    pub async fn insert_merchant(
        &self,
        merchant_id: &str,
        name: &str,
        api_key_hash: &[u8],
        now_ms: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO merchants (merchant_id, name, api_key_hash, created_at_ms) VALUES ($1, $2, $3, $4)")
        .bind(merchant_id)
        .bind(name)
        .bind(api_key_hash.to_vec())
        .bind(now_ms)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The merchant id whose API key hashes to `api_key_hash`.
    pub async fn merchant_by_key_hash(
        &self,
        api_key_hash: &[u8],
    ) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT merchant_id FROM merchants WHERE api_key_hash = $1")
            .bind(api_key_hash.to_vec())
            .fetch_optional(&self.reader)
            .await
    }

    /// Stores an order; `order_exists` if the merchant already has this order id.
    pub async fn insert_order(
        &self,
        order: &OrderRow,
        client_token_hash: &[u8],
        now_ms: i64,
    ) -> Result<(), ApiError> {
        let result = sqlx::query("INSERT INTO orders (merchant_id, order_id, amount_minor, currency, items_digest, client_token_hash, \
             token_expires_at_ms, paid, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8) \
             ON CONFLICT (merchant_id, order_id) DO NOTHING")
        .bind(&order.merchant_id)
        .bind(&order.order_id)
        .bind(order.amount_minor)
        .bind(&order.currency)
        .bind(order.items_digest.clone())
        .bind(client_token_hash.to_vec())
        .bind(order.token_expires_at_ms)
        .bind(now_ms)
        .execute(&self.writer)
        .await?;
        if result.rows_affected() == 1 {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::OrderExists,
                "this merchant already has an order with this order_id",
            ))
        }
    }

    /// The order whose client token hashes to `client_token_hash`.
    pub async fn order_by_token_hash(
        &self,
        client_token_hash: &[u8],
    ) -> Result<Option<OrderRow>, sqlx::Error> {
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
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO enrollments (token_hash, merchant_id, account_id, expires_at_ms, used) \
             VALUES ($1, $2, $3, $4, 0)",
        )
        .bind(token_hash.to_vec())
        .bind(merchant_id)
        .bind(account_id)
        .bind(expires_at_ms)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Consumes an enrolment token and registers the device in one transaction. Returns the account id.
    pub async fn register_device(
        &self,
        token_hash: &[u8],
        device_id: &str,
        public_key: &[u8],
        now_ms: i64,
    ) -> Result<String, ApiError> {
        let mut tx = self.writer.begin().await?;
        let row = sqlx::query("SELECT merchant_id, account_id, expires_at_ms, used FROM enrollments WHERE token_hash = $1")
        .bind(token_hash.to_vec())
        .fetch_optional(&mut *tx)
        .await?;
        let invalid = || {
            ApiError::new(
                ErrorCode::InvalidEnrollmentToken,
                "enrolment token unknown, used or expired",
            )
        };
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
            return Err(ApiError::new(
                ErrorCode::DeviceExists,
                "this device id is already registered",
            ));
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
    pub async fn device(&self, device_id: &str) -> Result<Option<DeviceRow>, sqlx::Error> {
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
    pub async fn insert_nonce(&self, nonce: &[u8; 32], row: &NonceRow) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO nonces (nonce, merchant_id, order_id, amount_minor, currency, device_id, expires_at_ms, used) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0)")
        .bind(nonce.to_vec())
        .bind(&row.merchant_id)
        .bind(&row.order_id)
        .bind(row.amount_minor)
        .bind(&row.currency)
        .bind(&row.device_id)
        .bind(row.expires_at_ms)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// An issued nonce.
    pub async fn nonce(&self, nonce: &[u8; 32]) -> Result<Option<NonceRow>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT merchant_id, order_id, amount_minor, currency, device_id, expires_at_ms, used \
             FROM nonces WHERE nonce = $1",
        )
        .bind(nonce.to_vec())
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| {
            Ok(NonceRow {
                merchant_id: r.try_get(0)?,
                order_id: r.try_get(1)?,
                amount_minor: r.try_get(2)?,
                currency: r.try_get(3)?,
                device_id: r.try_get(4)?,
                expires_at_ms: r.try_get(5)?,
                used: r.try_get::<i64, _>(6)? != 0,
            })
        })
        .transpose()
    }

    /// The unexpired idempotency record for this merchant and key.
    pub async fn idempotency(
        &self,
        merchant_id: &str,
        key: &str,
        now_ms: i64,
    ) -> Result<Option<IdempotencyRow>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT request_hash, status, response FROM idempotency_keys \
             WHERE merchant_id = $1 AND idem_key = $2 AND expires_at_ms > $3",
        )
        .bind(merchant_id)
        .bind(key)
        .bind(now_ms)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| {
            Ok(IdempotencyRow {
                request_hash: r.try_get(0)?,
                status: u16::try_from(r.try_get::<i64, _>(1)?).unwrap_or(500),
                response: r.try_get(2)?,
            })
        })
        .transpose()
    }

    /// Records an accepted payment in ONE transaction: nonce consumed, device counter raised, order marked paid,
    /// payment and evidence rows, idempotency record. Each update is conditional, so a concurrent request that
    /// got there first makes this one fail with the matching code and roll back entirely.
    pub async fn record_payment(&self, p: &NewPayment<'_>) -> Result<(), ApiError> {
        let payload = p.payload;
        let order = &payload.order;
        let counter = i64::try_from(payload.counter)
            .map_err(|_| ApiError::new(ErrorCode::InvalidRequest, "counter exceeds 2^63-1"))?;
        let amount = i64::try_from(order.amount_minor)
            .map_err(|_| ApiError::new(ErrorCode::InvalidRequest, "amount_minor exceeds 2^63-1"))?;
        let mut tx = self.writer.begin().await?;
        let nonce = sqlx::query("UPDATE nonces SET used = 1 WHERE nonce = $1 AND used = 0")
            .bind(payload.nonce.to_vec())
            .execute(&mut *tx)
            .await?;
        if nonce.rows_affected() != 1 {
            return Err(ApiError::new(
                ErrorCode::NonceReused,
                "this nonce has already been used",
            ));
        }
        let device = sqlx::query(
            "UPDATE devices SET last_counter = $1 WHERE device_id = $2 AND last_counter < $1",
        )
        .bind(counter)
        .bind(&payload.device_id)
        .execute(&mut *tx)
        .await?;
        if device.rows_affected() != 1 {
            return Err(counter_error());
        }
        let paid = sqlx::query(
            "UPDATE orders SET paid = 1 WHERE merchant_id = $1 AND order_id = $2 AND paid = 0",
        )
        .bind(&order.merchant_id)
        .bind(&order.order_id)
        .execute(&mut *tx)
        .await?;
        if paid.rows_affected() != 1 {
            return Err(ApiError::new(
                ErrorCode::OrderAlreadyPaid,
                "this order has already been paid",
            ));
        }
        sqlx::query("INSERT INTO payments (payment_id, merchant_id, order_id, device_id, amount_minor, currency, items_digest, \
             nonce, counter, payload, signature, recorded_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
        .bind(p.payment_id)
        .bind(&order.merchant_id)
        .bind(&order.order_id)
        .bind(&payload.device_id)
        .bind(amount)
        .bind(&order.currency)
        .bind(order.items_digest.to_vec())
        .bind(payload.nonce.to_vec())
        .bind(counter)
        .bind(p.payload_bytes.to_vec())
        .bind(p.signature.to_vec())
        .bind(p.recorded_at_ms)
        .execute(&mut *tx)
        .await?;
        let ev = &payload.evidence;
        sqlx::query("INSERT INTO payment_evidence (payment_id, liveness, challenges, antispoof_score, match_score, \
             model_versions, started_at_ms, finished_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(p.payment_id)
        .bind(to_json(&ev.liveness).trim_matches('"').to_owned())
        .bind(to_json(&ev.challenges))
        .bind(ev.antispoof_score.map(f64::from))
        .bind(f64::from(ev.match_score))
        .bind(to_json(&ev.model_versions))
        .bind(i64::try_from(ev.started_at_ms).unwrap_or(i64::MAX))
        .bind(i64::try_from(ev.finished_at_ms).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        let idem = sqlx::query("INSERT INTO idempotency_keys (merchant_id, idem_key, request_hash, status, response, expires_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (merchant_id, idem_key) DO UPDATE SET \
             request_hash = excluded.request_hash, status = excluded.status, response = excluded.response, \
             expires_at_ms = excluded.expires_at_ms WHERE idempotency_keys.expires_at_ms <= $7")
        .bind(&order.merchant_id)
        .bind(p.idempotency_key)
        .bind(p.request_hash.to_vec())
        .bind(i64::from(p.response_status))
        .bind(p.response.to_vec())
        .bind(p.idempotency_expires_at_ms)
        .bind(p.recorded_at_ms)
        .execute(&mut *tx)
        .await?;
        if idem.rows_affected() != 1 {
            return Err(ApiError::new(
                ErrorCode::IdempotencyConflict,
                "this idempotency key is already in use",
            ));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes expired idempotency records and nonces; returns how many rows went.
    pub async fn purge_expired(&self, now_ms: i64) -> Result<u64, sqlx::Error> {
        let keys = sqlx::query("DELETE FROM idempotency_keys WHERE expires_at_ms <= $1")
            .bind(now_ms)
            .execute(&self.writer)
            .await?;
        let nonces = sqlx::query("DELETE FROM nonces WHERE expires_at_ms <= $1 AND used = 0")
            .bind(now_ms)
            .execute(&self.writer)
            .await?;
        Ok(keys.rows_affected() + nonces.rows_affected())
    }

    /// Row counts of the payment-related tables.
    pub async fn table_counts(&self) -> Result<TableCounts, sqlx::Error> {
        let count = |sql: &'static str| async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&self.reader)
                .await
        };
        Ok(TableCounts {
            payments: count("SELECT COUNT(*) FROM payments").await?,
            evidence: count("SELECT COUNT(*) FROM payment_evidence").await?,
            used_nonces: count("SELECT COUNT(*) FROM nonces WHERE used = 1").await?,
            idempotency_keys: count("SELECT COUNT(*) FROM idempotency_keys").await?,
            paid_orders: count("SELECT COUNT(*) FROM orders WHERE paid = 1").await?,
        })
    }
}

fn counter_error() -> ApiError {
    ApiError::new(
        ErrorCode::CounterNotIncreasing,
        "counter is not greater than the device's last accepted counter",
    )
}

/// JSON text of an evidence column (these types always serialise).
fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
