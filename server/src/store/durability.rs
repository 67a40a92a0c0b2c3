//! The database's durability settings, as the server sees them (for benchmarks and operators).

use super::{Store, StoreError};

impl Store {
    /// SQLite: `synchronous=FULL|NORMAL, journal_mode=wal`; PostgreSQL: `fsync=on|off, synchronous_commit=…`.
    pub async fn durability(&self) -> Result<String, StoreError> {
        if let Some(sqlite) = &self.sqlite {
            // The settings of the connection that commits the writes.
            Ok(sqlite.durability.clone())
        } else {
            let fsync: String = sqlx::query_scalar("SELECT current_setting('fsync')")
                .fetch_one(&self.reader)
                .await?;
            let commit: String = sqlx::query_scalar("SELECT current_setting('synchronous_commit')")
                .fetch_one(&self.reader)
                .await?;
            Ok(format!("fsync={fsync}, synchronous_commit={commit}"))
        }
    }
}
