//! Crash-safe file helpers shared by the template store and the file key store: private files written
//! through a temporary sibling, directory fsync, wiping and stale-temp cleanup.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::TemplateError;

/// Suffix marker of temporary files: `.<final name>.tmp-<pid>-<n>`.
const TEMP_MARKER: &str = ".tmp-";

/// Creates `dir` (and parents) if missing, owner-only on Unix.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), TemplateError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| TemplateError::io(format!("creating {}", dir.display()), e))
}

/// The prefix every temporary sibling of `final_name` starts with.
fn temp_prefix(final_name: &str) -> String {
    format!(".{final_name}{TEMP_MARKER}")
}

/// Writes `bytes` to a new owner-only temporary file beside `dir/final_name` and fsyncs it.
/// Returns the temporary path; the caller renames or links it into place.
pub(crate) fn write_temp(
    dir: &Path,
    final_name: &str,
    bytes: &[u8],
) -> Result<PathBuf, TemplateError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!(
        "{}{}-{n}",
        temp_prefix(final_name),
        std::process::id()
    ));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&path).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    match written {
        Ok(()) => Ok(path),
        Err(e) => {
            let _ = fs::remove_file(&path);
            Err(TemplateError::io(format!("writing {}", path.display()), e))
        }
    }
}

/// Makes the directory entry changes in `dir` (renames, links, removals) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), TemplateError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| TemplateError::io(format!("syncing directory {}", dir.display()), e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Overwrites a file's bytes with zeros, fsyncs, then removes it. A missing file is not an error.
/// A file with more than one hard link is only unlinked: its bytes still belong to the other name.
///
/// On flash storage and copy-on-write file systems the overwrite may land elsewhere; the sealed
/// template is made unreadable for good by deleting its key, which callers do afterwards.
pub(crate) fn wipe_file(path: &Path) -> Result<(), TemplateError> {
    let overwrite = || -> io::Result<()> {
        let mut file = OpenOptions::new().write(true).open(path)?;
        let metadata = file.metadata()?;
        #[cfg(unix)]
        if std::os::unix::fs::MetadataExt::nlink(&metadata) > 1 {
            return Ok(());
        }
        let len = metadata.len();
        let zeros = [0u8; 4096];
        let mut left = len;
        while left > 0 {
            let chunk = left.min(zeros.len() as u64) as usize;
            file.write_all(&zeros[..chunk])?;
            left -= chunk as u64;
        }
        file.sync_all()
    };
    match overwrite().and_then(|()| fs::remove_file(path)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(TemplateError::io(format!("wiping {}", path.display()), e)),
    }
}

/// Wipes every temporary sibling of `dir/final_name` left by an interrupted write.
pub(crate) fn remove_stale_temps(dir: &Path, final_name: &str) -> Result<(), TemplateError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(TemplateError::io(format!("listing {}", dir.display()), e)),
    };
    let prefix = temp_prefix(final_name);
    for entry in entries {
        let entry =
            entry.map_err(|e| TemplateError::io(format!("listing {}", dir.display()), e))?;
        if entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(&prefix))
        {
            wipe_file(&entry.path())?;
        }
    }
    Ok(())
}
