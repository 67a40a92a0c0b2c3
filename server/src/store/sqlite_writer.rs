//! SQLite's one writer: a thread that owns the write connection (rusqlite, no async hop per statement) and commits
//! the writes waiting at each moment in one transaction, so one WAL fsync covers the batch. Each write is undone
//! alone when it fails; none is answered before the COMMIT. SQLite transactions that read before they write
//! (registration, lock-outs) still go through sqlx, and take [`WriteGate`] first so the two never wait on each
//! other's file lock.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::statement::Statement;
use super::transaction::Step;
use super::{StoreError, sqlite_error};
use crate::config::SqliteSync;

/// Most writes committed in one transaction.
const MAX_BATCH: usize = 256;
/// How often the checkpoint thread copies the WAL back into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);
/// WAL pages after which the writer checkpoints itself (only reached when the checkpoint thread falls behind;
/// SQLite's default is 1000).
const CHECKPOINT_FALLBACK_PAGES: i64 = 16_000;

/// Held while a transaction writes the SQLite file: by the writer thread per batch, by sqlx write transactions.
pub type WriteGate = Arc<tokio::sync::Mutex<()>>;

/// What one job writes.
enum Work {
    /// One statement; the answer is the rows it changed.
    One(Statement),
    /// Statements that all commit or none (the answer is 0 when they did).
    All(Vec<Step>),
}

/// One write, and where its outcome goes.
struct Job {
    work: Work,
    reply: oneshot::Sender<Result<u64, StoreError>>,
}

/// The handle to the writer thread (cheap to clone; the thread ends when the last handle is dropped).
#[derive(Debug, Clone)]
pub struct SqliteWriter {
    jobs: mpsc::Sender<Job>,
}

impl SqliteWriter {
    /// Opens the write connection to an already migrated file and starts the thread; also returns the
    /// connection's durability settings as `synchronous=…, journal_mode=…`.
    pub fn start(
        path: &Path,
        sync: SqliteSync,
        gate: WriteGate,
    ) -> Result<(Self, String), StoreError> {
        let conn = rusqlite::Connection::open(path).map_err(sqlite_error)?;
        let sync_pragma = match sync {
            SqliteSync::Full => "FULL",
            SqliteSync::Normal => "NORMAL",
        };
        // `temp_store = MEMORY` keeps the statement journals in memory. Each insert of a batch saves there the pages
        // it changes that earlier inserts of the batch changed too, so that it can be undone alone; past 64 KiB
        // SQLite would otherwise spill that journal to a temp file (open, write, unlink on every batch). It only
        // serves statement rollback: durability is the WAL's.
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; \
             PRAGMA synchronous = {sync_pragma}; PRAGMA temp_store = MEMORY;"
        ))
        .map_err(sqlite_error)?;
        conn.set_prepared_statement_cache_capacity(64);
        let durability = durability(&conn).map_err(sqlite_error)?;
        // Checkpoints run beside the writer (see `checkpoint`); the writer's own automatic checkpoint, which would
        // stall every waiting payment for the copy and the database fsync, only starts if that thread falls far
        // behind.
        conn.pragma_update(None, "wal_autocheckpoint", CHECKPOINT_FALLBACK_PAGES)
            .map_err(sqlite_error)?;
        let checkpointer = rusqlite::Connection::open(path).map_err(sqlite_error)?;
        checkpointer
            .execute_batch("PRAGMA busy_timeout = 5000;")
            .map_err(sqlite_error)?;
        let (jobs, receiver) = mpsc::channel(4 * MAX_BATCH);
        let (alive, writer_alive) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("facepay-sqlite-checkpoint".into())
            .spawn(move || checkpoint(checkpointer, writer_alive))
            .map_err(StoreError::WriterThread)?;
        std::thread::Builder::new()
            .name("facepay-sqlite-writer".into())
            .spawn(move || serve(conn, receiver, gate, alive))
            .map_err(StoreError::WriterThread)?;
        Ok((SqliteWriter { jobs }, durability))
    }

    /// Writes one statement; returns the rows it changed.
    pub async fn one(&self, statement: Statement) -> Result<u64, StoreError> {
        self.submit(Work::One(statement)).await
    }

    /// Writes every step or none.
    pub async fn all(&self, steps: Vec<Step>) -> Result<(), StoreError> {
        self.submit(Work::All(steps)).await.map(|_| ())
    }

    async fn submit(&self, work: Work) -> Result<u64, StoreError> {
        let (reply, outcome) = oneshot::channel();
        self.jobs
            .send(Job { work, reply })
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        outcome.await.map_err(|_| StoreError::WriterStopped)?
    }
}

/// `synchronous=…, journal_mode=…` of the connection.
fn durability(conn: &rusqlite::Connection) -> rusqlite::Result<String> {
    let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
    let journal: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    let sync = match sync {
        0 => "OFF",
        1 => "NORMAL",
        2 => "FULL",
        _ => "EXTRA",
    };
    Ok(format!("synchronous={sync}, journal_mode={journal}"))
}

/// The thread: takes every job waiting, runs them in one transaction, commits, answers each.
fn serve(
    conn: rusqlite::Connection,
    mut jobs: mpsc::Receiver<Job>,
    gate: WriteGate,
    _alive: std::sync::mpsc::Sender<()>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = jobs.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let outcomes = {
            let _gate = gate.blocking_lock();
            commit_batch(&conn, &batch)
        };
        for (job, outcome) in batch.drain(..).zip(outcomes) {
            let _ = job.reply.send(outcome);
        }
    }
}

/// The checkpoint thread: every [`CHECKPOINT_EVERY`], copies the WAL back into the database. PASSIVE: it never
/// waits for or blocks the writer or a reader, so payments go on committing meanwhile, and the WAL starts over
/// once a checkpoint has copied all of it. Ends when the writer does (its end of `writer_alive` is dropped).
fn checkpoint(conn: rusqlite::Connection, writer_alive: std::sync::mpsc::Receiver<()>) {
    use std::sync::mpsc::RecvTimeoutError;
    while let Err(RecvTimeoutError::Timeout) = writer_alive.recv_timeout(CHECKPOINT_EVERY) {
        // An error (say, busy) leaves the WAL to the next round, or to the writer's fallback.
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    }
}

/// Runs one batch; every job gets an outcome, and none is `Ok` unless the COMMIT succeeded.
fn commit_batch(conn: &rusqlite::Connection, batch: &[Job]) -> Vec<Result<u64, StoreError>> {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        return failed_batch(e, batch.len());
    }
    let outcomes = batch.iter().map(|job| run(conn, &job.work)).collect();
    if let Err(e) = conn.execute_batch("COMMIT") {
        let _ = conn.execute_batch("ROLLBACK");
        return failed_batch(e, batch.len());
    }
    outcomes
}

/// Runs one job inside the batch's transaction. A failed statement is undone by SQLite itself; a failed step
/// list is undone to its savepoint.
fn run(conn: &rusqlite::Connection, work: &Work) -> Result<u64, StoreError> {
    match work {
        Work::One(statement) => statement.execute(conn).map_err(sqlite_error),
        Work::All(steps) => {
            conn.execute_batch("SAVEPOINT job").map_err(sqlite_error)?;
            let outcome = steps.iter().try_for_each(|step| {
                let changed = step.statement.execute(conn).map_err(sqlite_error)?;
                match step.unless_affected {
                    Some(conflict) if changed == 0 => Err(StoreError::Conflict(conflict)),
                    _ => Ok(()),
                }
            });
            if outcome.is_err() {
                conn.execute_batch("ROLLBACK TO job")
                    .map_err(sqlite_error)?;
            }
            conn.execute_batch("RELEASE job").map_err(sqlite_error)?;
            outcome.map(|()| 0)
        }
    }
}

/// The outcome of every job of a batch whose transaction could not begin or commit.
fn failed_batch(e: rusqlite::Error, jobs: usize) -> Vec<Result<u64, StoreError>> {
    let shared = Arc::new(e);
    (0..jobs)
        .map(|_| Err(StoreError::Batch(shared.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::config::{DatabaseTarget, SqliteSync};
    use crate::store::{OrderRow, Store};

    /// The writer's own automatic checkpoint is pushed far out, so only the checkpoint thread can have copied
    /// these few hundred pages into the database file.
    #[tokio::test]
    async fn the_checkpoint_thread_copies_the_wal_into_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let store = Store::open(&DatabaseTarget::Sqlite(path.clone()), SqliteSync::Full, 2)
            .await
            .unwrap();
        store
            .insert_merchant("m", "Shop", "k", &[7; 32], 0)
            .await
            .unwrap();
        let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let before = size(&path);
        let orders = (0..2000).map(|i| {
            let order = OrderRow {
                merchant_id: "m".into(),
                order_id: format!("order-{i}"),
                amount_minor: 100,
                currency: "EUR".into(),
                items_digest: vec![0; 32],
                token_expires_at_ms: 1,
                paid: false,
            };
            let store = store.clone();
            async move {
                let token_hash = crate::tokens::random_bytes::<32>();
                store.insert_order(&order, &token_hash, 0).await
            }
        });
        for outcome in futures_join_all(orders).await {
            outcome.unwrap();
        }
        let wal = path.with_extension("sqlite-wal");
        assert!(size(&wal) > 100 * 4096, "the orders are in the WAL");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while size(&path) <= before + 50 * 4096 {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint copied the WAL into {} within 10 s (size {} → {})",
                path.display(),
                before,
                size(&path)
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Awaits every future (concurrently, so the writer batches them).
    async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handles: Vec<_> = futures.map(tokio::spawn).collect();
        let mut out = Vec::new();
        for handle in handles {
            out.push(handle.await.unwrap());
        }
        out
    }
}
