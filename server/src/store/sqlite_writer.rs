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
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; \
             PRAGMA synchronous = {sync_pragma};"
        ))
        .map_err(sqlite_error)?;
        conn.set_prepared_statement_cache_capacity(64);
        let durability = durability(&conn).map_err(sqlite_error)?;
        let (jobs, receiver) = mpsc::channel(4 * MAX_BATCH);
        std::thread::Builder::new()
            .name("facepay-sqlite-writer".into())
            .spawn(move || serve(conn, receiver, gate))
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
fn serve(conn: rusqlite::Connection, mut jobs: mpsc::Receiver<Job>, gate: WriteGate) {
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
                conn.execute_batch("ROLLBACK TO job").map_err(sqlite_error)?;
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
