//! Atomic multi-statement writes: every statement of a [`Step`] list commits together or not at all.

use facepay_core::checkout::wire::ErrorCode;

use super::{Store, WriteStatement, insert_error};
use crate::error::ApiError;

/// One statement of an atomic write, and the error that aborts the whole write when it affects no row.
pub struct Step {
    statement: WriteStatement,
    unless_affected: Option<ApiError>,
}

impl Step {
    /// A statement that may affect any number of rows.
    pub fn any(statement: WriteStatement) -> Self {
        Step {
            statement,
            unless_affected: None,
        }
    }

    /// A statement that must affect at least one row; otherwise the write is undone with `error`.
    pub fn must_affect(statement: WriteStatement, error: ApiError) -> Self {
        Step {
            statement,
            unless_affected: Some(error),
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

/// The error an idempotency record's insert raises when the key is taken (the caller then replays or conflicts).
pub fn key_taken() -> ApiError {
    ApiError::new(
        ErrorCode::IdempotencyInProgress,
        "a request with this idempotency key was recorded concurrently",
    )
}

impl Store {
    /// Runs `steps` in one transaction on the writer: all commit, or none (the first failing step's error).
    pub async fn write_all(&self, steps: Vec<Step>) -> Result<(), ApiError> {
        let mut tx = self.writer.begin().await?;
        for step in steps {
            let done = step
                .statement
                .execute(&mut *tx)
                .await
                .map_err(insert_error)?;
            if done.rows_affected() == 0
                && let Some(error) = step.unless_affected
            {
                return Err(error);
            }
        }
        tx.commit().await?;
        Ok(())
    }
}
