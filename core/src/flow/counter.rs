//! The per-device signature counter, persisted next to the template.
//!
//! Every payment takes the next value and writes it to disk (temporary file, fsync, rename, fsync of the directory)
//! **before** signing, so a crash can never make the device sign two payments with the same counter. A value
//! taken for a payment that then failed is simply skipped: the server only needs the counter to increase.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{FacePayError, StorageFailure};

/// File name of the counter inside the state directory.
pub const COUNTER_FILE: &str = "counter";

/// The persisted counter of one device.
#[derive(Debug, Clone)]
pub struct CounterFile {
    path: PathBuf,
}

impl CounterFile {
    /// The counter kept in `dir/counter` (the directory is created on first use).
    pub fn new(dir: &Path) -> Self {
        Self {
            path: dir.join(COUNTER_FILE),
        }
    }

    /// The last value taken (0 before the first payment).
    pub fn current(&self) -> Result<u64, FacePayError> {
        match fs::read_to_string(&self.path) {
            Ok(text) => text.trim().parse().map_err(|_| {
                FacePayError::storage(
                    StorageFailure::Read,
                    format!(
                        "{} does not hold a counter value: {text:?}",
                        self.path.display()
                    ),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(storage(StorageFailure::Read, &self.path, "reading", e)),
        }
    }

    /// Takes the next value and persists it durably before returning it.
    pub fn take_next(&self) -> Result<u64, FacePayError> {
        let next = self.current()?.checked_add(1).ok_or_else(|| {
            FacePayError::storage(
                StorageFailure::CounterExhausted,
                "the device counter is exhausted",
            )
        })?;
        self.write(next)?;
        Ok(next)
    }

    fn write(&self, value: u64) -> Result<(), FacePayError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| storage(StorageFailure::Write, dir, "creating", e))?;
        let temp = dir.join(format!(".{COUNTER_FILE}.tmp"));
        let mut file = fs::File::create(&temp)
            .map_err(|e| storage(StorageFailure::Write, &temp, "creating", e))?;
        file.write_all(format!("{value}\n").as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| storage(StorageFailure::Write, &temp, "writing", e))?;
        fs::rename(&temp, &self.path)
            .map_err(|e| storage(StorageFailure::Write, &self.path, "replacing", e))?;
        if let Ok(d) = fs::File::open(dir) {
            d.sync_all()
                .map_err(|e| storage(StorageFailure::Write, dir, "syncing", e))?;
        }
        Ok(())
    }
}

fn storage(kind: StorageFailure, path: &Path, what: &str, e: std::io::Error) -> FacePayError {
    FacePayError::storage(kind, format!("{what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_starts_at_zero_and_increases_across_instances() {
        let dir = std::env::temp_dir().join(format!("facepay-counter-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let c = CounterFile::new(&dir);
        assert_eq!(c.current().unwrap(), 0);
        assert_eq!(c.take_next().unwrap(), 1);
        assert_eq!(c.take_next().unwrap(), 2);
        assert_eq!(CounterFile::new(&dir).take_next().unwrap(), 3);
        fs::write(dir.join(COUNTER_FILE), "garbage").unwrap();
        assert!(matches!(
            c.take_next(),
            Err(FacePayError::Storage {
                kind: StorageFailure::Read,
                ..
            })
        ));
        fs::remove_dir_all(&dir).unwrap();
    }
}
