//! Merchant-scoped reads of orders and payments (`GET /v1/orders/…`, `GET /v1/payments…`).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};

/// A payment as the merchant API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRow {
    /// Payment id.
    pub payment_id: String,
    /// Order id.
    pub order_id: String,
    /// Amount, minor units.
    pub amount_minor: i64,
    /// Refunded so far, minor units.
    pub refunded_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Signing device.
    pub device_id: String,
    /// Record time (Unix ms).
    pub recorded_at_ms: i64,
}

/// An order as the merchant API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    /// Order id.
    pub order_id: String,
    /// Amount, minor units.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Items digest.
    pub items_digest: Vec<u8>,
    /// Whether it is cancelled.
    pub cancelled: bool,
    /// Creation time (Unix ms).
    pub created_at_ms: i64,
    /// Its payment, if paid.
    pub payment: Option<PaymentRow>,
}

const PAYMENT_COLUMNS: &str = "p.payment_id, p.order_id, p.amount_minor, p.refunded_minor, p.currency, p.device_id, p.recorded_at_ms";

/// The payment in columns `at..at + 7` of `row` (`None` when the first is NULL, as after a LEFT JOIN).
fn payment_at(row: &AnyRow, at: usize) -> Result<Option<PaymentRow>, StoreError> {
    let Some(payment_id) = row.try_get::<Option<String>, _>(at)? else {
        return Ok(None);
    };
    Ok(Some(PaymentRow {
        payment_id,
        order_id: row.try_get(at + 1)?,
        amount_minor: row.try_get(at + 2)?,
        refunded_minor: row.try_get(at + 3)?,
        currency: row.try_get(at + 4)?,
        device_id: row.try_get(at + 5)?,
        recorded_at_ms: row.try_get(at + 6)?,
    }))
}

impl Store {
    /// The merchant's order `order_id`, with its payment.
    pub async fn order_for_merchant(
        &self,
        merchant_id: &str,
        order_id: &str,
    ) -> Result<Option<OrderRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT o.order_id, o.amount_minor, o.currency, o.items_digest, o.cancelled, o.created_at_ms, \
             {PAYMENT_COLUMNS} FROM orders o \
             LEFT JOIN payments p ON p.merchant_id = o.merchant_id AND p.order_id = o.order_id \
             WHERE o.merchant_id = $1 AND o.order_id = $2"
        )))
        .bind(merchant_id)
        .bind(order_id)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| {
            Ok(OrderRecord {
                order_id: r.try_get(0)?,
                amount_minor: r.try_get(1)?,
                currency: r.try_get(2)?,
                items_digest: r.try_get(3)?,
                cancelled: r.try_get::<i64, _>(4)? != 0,
                created_at_ms: r.try_get(5)?,
                payment: payment_at(&r, 6)?,
            })
        })
        .transpose()
    }

    /// The merchant's payment `payment_id`.
    pub async fn payment_for_merchant(
        &self,
        merchant_id: &str,
        payment_id: &str,
    ) -> Result<Option<PaymentRow>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments p WHERE p.merchant_id = $1 AND p.payment_id = $2"
        )))
        .bind(merchant_id)
        .bind(payment_id)
        .fetch_optional(&self.reader)
        .await?;
        match row {
            None => Ok(None),
            Some(r) => payment_at(&r, 0),
        }
    }

    /// Up to `limit` of the merchant's payments, newest first, older than the payment `starting_after` when given.
    /// `None` when `starting_after` is not one of the merchant's payments.
    pub async fn list_payments(
        &self,
        merchant_id: &str,
        limit: i64,
        starting_after: Option<&str>,
    ) -> Result<Option<Vec<PaymentRow>>, StoreError> {
        let cursor = match starting_after {
            None => (i64::MAX, String::new()),
            Some(id) => match self.payment_for_merchant(merchant_id, id).await? {
                Some(p) => (p.recorded_at_ms, p.payment_id),
                None => return Ok(None),
            },
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments p WHERE p.merchant_id = $1 \
             AND (p.recorded_at_ms < $2 OR (p.recorded_at_ms = $2 AND p.payment_id < $3)) \
             ORDER BY p.recorded_at_ms DESC, p.payment_id DESC LIMIT $4"
        )))
        .bind(merchant_id)
        .bind(cursor.0)
        .bind(cursor.1)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.extend(payment_at(r, 0)?);
        }
        Ok(Some(out))
    }
}
