//! SQLite reads on the hot path (the pay check's one query) run inline on the calling task with a pooled rusqlite
//! connection: a WAL reader never waits for the writer, and an indexed lookup takes tens of microseconds, less
//! than the two thread hops of a pooled sqlx connection.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{StoreError, sqlite_error};

/// Idle connections kept for reuse.
const MAX_IDLE: usize = 8;

/// A pool of read-only connections to one file.
#[derive(Debug)]
pub struct SqliteReader {
    path: PathBuf,
    idle: Mutex<Vec<rusqlite::Connection>>,
}

impl SqliteReader {
    /// A pool for `path` (connections open on first use).
    pub fn new(path: &Path) -> Self {
        SqliteReader {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `read` on an idle connection (or a new one), then keeps the connection for the next read.
    pub fn read<T>(
        &self,
        read: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.open().map_err(sqlite_error)?,
        };
        let outcome = read(&conn).map_err(sqlite_error);
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
        outcome
    }

    fn open(&self) -> rusqlite::Result<rusqlite::Connection> {
        let conn = rusqlite::Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // No memory map: SQLite unmaps the whole file whenever a read begins after another connection's commit,
        // which under payment load is nearly every read, so each read paid an munmap (a TLB shoot-down on every
        // core) and a page fault per page. Without it a page costs one pread from the OS cache.
        conn.execute_batch("PRAGMA busy_timeout = 5000;")?;
        conn.set_prepared_statement_cache_capacity(16);
        Ok(conn)
    }
}
