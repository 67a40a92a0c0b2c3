//! The stored first responses of POSTs carrying an `Idempotency-Key` (see [`crate::idempotency`]).

use sqlx::Row;

use super::statement::Statement;
use super::transaction::Step;
use super::{Conflict, Store, StoreError};

/// A remembered response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// The route it answered (`POST /v1/orders`, …).
    pub route: String,
    /// SHA-256 of the request body.
    pub request_hash: Vec<u8>,
    /// HTTP status.
    pub status: u16,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Store {
    /// The unexpired response stored for `key` in `scope`.
    pub async fn stored_response(
        &self,
        scope: &str,
        key: &str,
        now_ms: i64,
    ) -> Result<Option<StoredResponse>, StoreError> {
        let row = sqlx::query(
            "SELECT route, request_hash, status, body FROM idempotent_requests \
             WHERE scope = $1 AND idem_key = $2 AND expires_at_ms > $3",
        )
        .bind(scope)
        .bind(key)
        .bind(now_ms)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| {
            Ok(StoredResponse {
                route: r.try_get(0)?,
                request_hash: r.try_get(1)?,
                status: u16::try_from(r.try_get::<i64, _>(2)?).unwrap_or(500),
                body: r.try_get(3)?,
            })
        })
        .transpose()
    }

    /// The step that stores a response; it fails with [`Conflict::ResponseRecorded`] when an unexpired record for
    /// the key exists (a concurrent request won), so the whole write it belongs to is undone.
    pub fn store_response_step(
        scope: &str,
        key: &str,
        response: &StoredResponse,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> Step {
        Step::must_affect(
            Statement::new(
                "INSERT INTO idempotent_requests (scope, idem_key, route, request_hash, status, body, expires_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (scope, idem_key) DO UPDATE \
                 SET route = excluded.route, request_hash = excluded.request_hash, status = excluded.status, \
                 body = excluded.body, expires_at_ms = excluded.expires_at_ms \
                 WHERE idempotent_requests.expires_at_ms <= $8",
            )
            .bind(scope.to_owned())
            .bind(key.to_owned())
            .bind(response.route.clone())
            .bind(response.request_hash.clone())
            .bind(i64::from(response.status))
            .bind(response.body.clone())
            .bind(expires_at_ms)
            .bind(now_ms),
            Conflict::ResponseRecorded,
        )
    }
}
