//! Webhook endpoints, their signing secrets and the outbox of events.

use sqlx::Row;

use super::statement::Statement;
use super::transaction::Step;
use super::{Store, StoreError};

/// A merchant's endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRow {
    /// URL.
    pub url: String,
    /// Creation time (Unix ms).
    pub created_at_ms: i64,
    /// Secrets valid now.
    pub active_secrets: i64,
}

/// An event due for delivery, with where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueEvent {
    /// Event id.
    pub event_id: String,
    /// Merchant.
    pub merchant_id: String,
    /// `payment.succeeded`, …
    pub event_type: String,
    /// The object's JSON.
    pub data: Vec<u8>,
    /// Event time (Unix ms).
    pub created_at_ms: i64,
    /// Attempts so far.
    pub attempts: i64,
    /// The due time it was selected with (the claim compares it).
    pub next_attempt_at_ms: i64,
    /// The merchant's endpoint URL.
    pub url: String,
}

impl Store {
    /// The merchant's endpoint, if set.
    pub async fn webhook_endpoint(
        &self,
        merchant_id: &str,
        now_ms: i64,
    ) -> Result<Option<EndpointRow>, StoreError> {
        let row = sqlx::query(
            "SELECT w.url, w.created_at_ms, (SELECT COUNT(*) FROM webhook_secrets s WHERE s.merchant_id = w.merchant_id \
             AND (s.expires_at_ms IS NULL OR s.expires_at_ms > $2)) FROM webhook_endpoints w WHERE w.merchant_id = $1",
        )
        .bind(merchant_id)
        .bind(now_ms)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| {
            Ok(EndpointRow {
                url: r.try_get(0)?,
                created_at_ms: r.try_get(1)?,
                active_secrets: r.try_get(2)?,
            })
        })
        .transpose()
    }

    /// The step that creates the endpoint or changes its URL.
    pub fn set_endpoint_step(merchant_id: &str, url: &str, now_ms: i64) -> Step {
        Step::any(
            Statement::new(
                "INSERT INTO webhook_endpoints (merchant_id, url, created_at_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (merchant_id) DO UPDATE SET url = excluded.url",
            )
            .bind(merchant_id.to_owned())
            .bind(url.to_owned())
            .bind(now_ms),
        )
    }

    /// The steps of a secret rotation: every current secret expires at `current_expires_at_ms` at the latest, and
    /// `secret` is added.
    pub fn add_secret_steps(
        merchant_id: &str,
        secret: &str,
        now_ms: i64,
        current_expires_at_ms: i64,
    ) -> Vec<Step> {
        vec![
            Step::any(
                Statement::new(
                    "UPDATE webhook_secrets SET expires_at_ms = $1 \
                     WHERE merchant_id = $2 AND (expires_at_ms IS NULL OR expires_at_ms > $1)",
                )
                .bind(current_expires_at_ms)
                .bind(merchant_id.to_owned()),
            ),
            Step::any(
                Statement::new(
                    "INSERT INTO webhook_secrets (secret, merchant_id, created_at_ms) VALUES ($1, $2, $3)",
                )
                .bind(secret.to_owned())
                .bind(merchant_id.to_owned())
                .bind(now_ms),
            ),
        ]
    }

    /// The step that puts an event in the outbox, if the merchant has an endpoint (in the same transaction as the
    /// state change it reports).
    pub fn event_step(
        event_id: &str,
        merchant_id: &str,
        event_type: &str,
        data: &[u8],
        now_ms: i64,
    ) -> Step {
        Step::any(
            Statement::new(
                "INSERT INTO webhook_events (event_id, merchant_id, event_type, data, created_at_ms, next_attempt_at_ms) \
                 SELECT $1, $2, $3, $4, $5, $5 WHERE EXISTS \
                 (SELECT 1 FROM webhook_endpoints WHERE merchant_id = $2)",
            )
            .bind(event_id.to_owned())
            .bind(merchant_id.to_owned())
            .bind(event_type.to_owned())
            .bind(data.to_vec())
            .bind(now_ms),
        )
    }

    /// The secrets valid now for the merchant, newest first.
    pub async fn webhook_secrets(
        &self,
        merchant_id: &str,
        now_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT secret FROM webhook_secrets WHERE merchant_id = $1 \
             AND (expires_at_ms IS NULL OR expires_at_ms > $2) ORDER BY created_at_ms DESC",
        )
        .bind(merchant_id)
        .bind(now_ms)
        .fetch_all(&self.reader)
        .await
        .map_err(StoreError::from)
    }

    /// Up to `limit` undelivered events due at `now_ms`, oldest due first.
    pub async fn due_events(&self, now_ms: i64, limit: i64) -> Result<Vec<DueEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.event_id, e.merchant_id, e.event_type, e.data, e.created_at_ms, e.attempts, \
             e.next_attempt_at_ms, w.url FROM webhook_events e \
             JOIN webhook_endpoints w ON w.merchant_id = e.merchant_id \
             WHERE e.delivered_at_ms IS NULL AND e.next_attempt_at_ms <= $1 \
             ORDER BY e.next_attempt_at_ms LIMIT $2",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DueEvent {
                    event_id: r.try_get(0)?,
                    merchant_id: r.try_get(1)?,
                    event_type: r.try_get(2)?,
                    data: r.try_get(3)?,
                    created_at_ms: r.try_get(4)?,
                    attempts: r.try_get(5)?,
                    next_attempt_at_ms: r.try_get(6)?,
                    url: r.try_get(7)?,
                })
            })
            .collect()
    }

    /// Claims a due event until `lease_until_ms` (so a second server instance does not send it at the same time);
    /// false when another claim or a delivery got there first.
    pub async fn claim_event(
        &self,
        event: &DueEvent,
        lease_until_ms: i64,
    ) -> Result<bool, StoreError> {
        let claim = Statement::new(
            "UPDATE webhook_events SET next_attempt_at_ms = $1 \
             WHERE event_id = $2 AND next_attempt_at_ms = $3 AND delivered_at_ms IS NULL",
        )
        .bind(lease_until_ms)
        .bind(event.event_id.clone())
        .bind(event.next_attempt_at_ms);
        Ok(self.write(claim).await? == 1)
    }

    /// Records one delivery attempt: delivered (`next_attempt_at_ms` unused), or failed with the next attempt time
    /// (`None`: given up).
    pub async fn record_attempt(
        &self,
        event_id: &str,
        delivered_at_ms: Option<i64>,
        next_attempt_at_ms: Option<i64>,
        error: Option<String>,
    ) -> Result<(), StoreError> {
        let update = Statement::new(
            "UPDATE webhook_events SET attempts = attempts + 1, delivered_at_ms = $1, next_attempt_at_ms = $2, \
             last_error = $3 WHERE event_id = $4",
        )
        .bind(delivered_at_ms)
        .bind(next_attempt_at_ms)
        .bind(error)
        .bind(event_id.to_owned());
        self.write(update).await.map(|_| ())
    }
}
