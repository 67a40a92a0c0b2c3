//! Merchant API keys: several valid during a rotation, each revocable.

use sqlx::Row;

use super::statement::Statement;
use super::transaction::Step;
use super::{Store, StoreError};

/// The merchant and key id an API key authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwner {
    /// Merchant id.
    pub merchant_id: String,
    /// Key id.
    pub key_id: String,
}

/// A key as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRow {
    /// Key id.
    pub key_id: String,
    /// Creation time (Unix ms).
    pub created_at_ms: i64,
    /// Expiry (Unix ms).
    pub expires_at_ms: Option<i64>,
    /// Revocation time (Unix ms).
    pub revoked_at_ms: Option<i64>,
}

impl Store {
    /// The owner of the unexpired, unrevoked key whose SHA-256 is `key_hash`.
    pub async fn api_key_owner(
        &self,
        key_hash: &[u8],
        now_ms: i64,
    ) -> Result<Option<KeyOwner>, StoreError> {
        let row = sqlx::query(
            "SELECT merchant_id, key_id FROM api_keys WHERE key_hash = $1 AND revoked_at_ms IS NULL \
             AND (expires_at_ms IS NULL OR expires_at_ms > $2)",
        )
        .bind(key_hash.to_vec())
        .bind(now_ms)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| {
            Ok(KeyOwner {
                merchant_id: r.try_get(0)?,
                key_id: r.try_get(1)?,
            })
        })
        .transpose()
    }

    /// The insert of a new key.
    pub fn api_key_insert(
        merchant_id: &str,
        key_id: &str,
        key_hash: &[u8],
        now_ms: i64,
    ) -> Statement {
        Statement::new(
            "INSERT INTO api_keys (key_hash, key_id, merchant_id, created_at_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(key_hash.to_vec())
        .bind(key_id.to_owned())
        .bind(merchant_id.to_owned())
        .bind(now_ms)
    }

    /// The step that makes key `key_id` expire at `expires_at_ms` at the latest.
    pub fn expire_api_key_step(merchant_id: &str, key_id: &str, expires_at_ms: i64) -> Step {
        Step::any(
            Statement::new(
                "UPDATE api_keys SET expires_at_ms = $1 WHERE merchant_id = $2 AND key_id = $3 \
                 AND (expires_at_ms IS NULL OR expires_at_ms > $1)",
            )
            .bind(expires_at_ms)
            .bind(merchant_id.to_owned())
            .bind(key_id.to_owned()),
        )
    }

    /// Revokes key `key_id` unless it is revoked already or the merchant's only valid key; returns whether it did.
    pub async fn revoke_api_key(
        &self,
        merchant_id: &str,
        key_id: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let revoke = Statement::new(
            "UPDATE api_keys SET revoked_at_ms = $1 WHERE merchant_id = $2 AND key_id = $3 \
             AND revoked_at_ms IS NULL AND EXISTS (SELECT 1 FROM api_keys k WHERE k.merchant_id = $2 \
             AND k.key_id <> $3 AND k.revoked_at_ms IS NULL AND (k.expires_at_ms IS NULL OR k.expires_at_ms > $1))",
        )
        .bind(now_ms)
        .bind(merchant_id.to_owned())
        .bind(key_id.to_owned());
        Ok(self.write(revoke).await? == 1)
    }

    /// Every key of the merchant, newest first.
    pub async fn api_keys(&self, merchant_id: &str) -> Result<Vec<ApiKeyRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT key_id, created_at_ms, expires_at_ms, revoked_at_ms FROM api_keys WHERE merchant_id = $1 \
             ORDER BY created_at_ms DESC, key_id DESC",
        )
        .bind(merchant_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ApiKeyRow {
                    key_id: r.try_get(0)?,
                    created_at_ms: r.try_get(1)?,
                    expires_at_ms: r.try_get(2)?,
                    revoked_at_ms: r.try_get(3)?,
                })
            })
            .collect()
    }
}
