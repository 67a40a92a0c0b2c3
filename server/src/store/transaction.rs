//! Atomic multi-statement writes: every statement of a [`Step`] list commits together or not at all.

use super::statement::Statement;
use super::{Conflict, Store, StoreError, insert_error};

/// One statement of an atomic write, and the error that aborts the whole write when it affects no row.
pub struct Step {
    pub(super) statement: Statement,
    pub(super) unless_affected: Option<Conflict>,
}

impl Step {
    /// A statement that may affect any number of rows.
    pub fn any(statement: Statement) -> Self {
        Step {
            statement,
            unless_affected: None,
        }
    }

    /// A statement that must affect at least one row; otherwise the write is undone with `conflict`.
    pub fn must_affect(statement: Statement, conflict: Conflict) -> Self {
        Step {
            statement,
            unless_affected: Some(conflict),
        }
    }
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step")
            .field("unless_affected", &self.unless_affected)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Runs `steps` in one transaction: all commit, or none (the first failing step's error). SQLite: as one job
    /// of the group-commit thread.
    pub async fn write_all(&self, steps: Vec<Step>) -> Result<(), StoreError> {
        if let Some(sqlite) = &self.sqlite {
            return sqlite.writer.all(steps).await;
        }
        let mut tx = self.writer.begin().await?;
        for step in steps {
            let done = step
                .statement
                .into_sqlx()
                .execute(&mut *tx)
                .await
                .map_err(insert_error)?;
            if done.rows_affected() == 0
                && let Some(conflict) = step.unless_affected
            {
                return Err(StoreError::Conflict(conflict));
            }
        }
        tx.commit().await?;
        Ok(())
    }
}
