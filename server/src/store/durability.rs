//! The database's durability settings, as the server sees them (for benchmarks and operators).

use super::{Store, StoreError};

impl Store {
    /// SQLite: `synchronous=FULL|NORMAL, journal_mode=wal`; PostgreSQL: `fsync=on|off, synchronous_commit=…`.
    pub async fn durability(&self) -> Result<String, StoreError> {
        if self.backend == "sqlite" {
            let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(&self.writer)
                .await?;
            let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&self.writer)
                .await?;
            let sync = match sync {
                0 => "OFF",
                1 => "NORMAL",
                2 => "FULL",
                _ => "EXTRA",
            };
            Ok(format!("synchronous={sync}, journal_mode={journal}"))
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
