//! The template on disk: one sealed file, replaced atomically on re-enrolment and wiped on deletion.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::attempts::{self, MatchAttempts};
use super::keystore::{KeyStore, check_key_id};
use super::{Template, TemplateError, files, seal};

/// File name of the sealed template inside the store's directory.
pub const TEMPLATE_FILE: &str = "template.fpt";
/// The key id a [`TemplateStore`] uses unless told otherwise.
pub const DEFAULT_KEY_ID: &str = "facepay.template.v1";

/// Saves, loads and deletes the shopper's sealed template in one directory, with keys from a [`KeyStore`].
///
/// `save` writes a temporary file in the same directory, fsyncs it, renames it over the template and
/// fsyncs the directory: a crash at any point leaves either the old or the new template, never a mix.
/// Temporary files left by such a crash are ignored by `load` and wiped by the next `save` or `delete`.
pub struct TemplateStore {
    dir: PathBuf,
    key_id: String,
    keystore: Arc<dyn KeyStore>,
    /// Serialises `save` and `delete` within the process (each cleans the other's temporary files).
    write_lock: Mutex<()>,
}

impl TemplateStore {
    /// A store in `dir` (created on first save, owner-only) sealing under [`DEFAULT_KEY_ID`].
    pub fn new(dir: impl Into<PathBuf>, keystore: Arc<dyn KeyStore>) -> Self {
        TemplateStore {
            dir: dir.into(),
            key_id: DEFAULT_KEY_ID.to_owned(),
            keystore,
            write_lock: Mutex::new(()),
        }
    }

    /// A store sealing under the given key id (1-64 characters of `A-Z a-z 0-9 . _ -`).
    pub fn with_key_id(
        dir: impl Into<PathBuf>,
        keystore: Arc<dyn KeyStore>,
        key_id: &str,
    ) -> Result<Self, TemplateError> {
        check_key_id(key_id)?;
        Ok(TemplateStore {
            key_id: key_id.to_owned(),
            ..Self::new(dir, keystore)
        })
    }

    /// The path of the sealed template file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(TEMPLATE_FILE)
    }

    /// The directory holding the template.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Seals `template` and atomically replaces any stored one with it.
    pub fn save(&self, template: &Template) -> Result<(), TemplateError> {
        let _guard = self
            .write_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let temp = self.stage(template)?;
        let path = self.path();
        if let Err(e) = fs::rename(&temp, &path) {
            files::wipe_file(&temp)?;
            return Err(TemplateError::io(
                format!("replacing {}", path.display()),
                e,
            ));
        }
        files::sync_dir(&self.dir)
    }

    /// The first half of [`save`](Self::save): wipes stale temporary files, then writes the sealed
    /// template to a fresh, fsynced temporary file and returns its path (not yet the template).
    pub(crate) fn stage(&self, template: &Template) -> Result<PathBuf, TemplateError> {
        files::create_private_dir(&self.dir)?;
        files::remove_stale_temps(&self.dir, TEMPLATE_FILE)?;
        let key = self.keystore.get_or_create(&self.key_id)?;
        let sealed = seal::seal(template, &self.key_id, &key)?;
        files::write_temp(&self.dir, TEMPLATE_FILE, &sealed)
    }

    /// Opens the stored template.
    ///
    /// Errors: [`TemplateError::NotEnrolled`] without a template; [`TemplateError::Integrity`] if the file
    /// was altered, truncated, sealed under another key or by another store;
    /// [`TemplateError::UnsupportedVersion`] for a format this build cannot read;
    /// [`TemplateError::KeyUnavailable`] if the key store lost the key.
    pub fn load(&self) -> Result<Template, TemplateError> {
        let path = self.path();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(TemplateError::NotEnrolled);
            }
            Err(e) => return Err(TemplateError::io(format!("reading {}", path.display()), e)),
        };
        let header = seal::parse_header(&bytes)?;
        if header.key_id != self.key_id {
            return Err(TemplateError::Integrity);
        }
        let key =
            self.keystore
                .get(&self.key_id)?
                .ok_or_else(|| TemplateError::KeyUnavailable {
                    key_id: self.key_id.clone(),
                })?;
        seal::open(&bytes, &header, &key)
    }

    /// The attempt-limit state of `template` (the stored one) at `now_ms` (see [`super::attempts`]).
    pub fn match_attempts(
        &self,
        template: &Template,
        now_ms: u64,
    ) -> Result<MatchAttempts, TemplateError> {
        let _guard = self
            .write_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        attempts::load(
            &self.dir,
            &self.key_id,
            self.keystore.as_ref(),
            template.created_at_ms(),
            now_ms,
        )
    }

    /// Records the outcome of one match of `template` at `now_ms` (a success resets the count, a failure adds
    /// one and may start a lock-out) and persists it durably before returning the new state.
    pub fn record_match(
        &self,
        template: &Template,
        matched: bool,
        now_ms: u64,
    ) -> Result<MatchAttempts, TemplateError> {
        let _guard = self
            .write_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let created = template.created_at_ms();
        let before = attempts::load(
            &self.dir,
            &self.key_id,
            self.keystore.as_ref(),
            created,
            now_ms,
        )?;
        let after = if matched {
            MatchAttempts::NONE
        } else {
            before.after_failure(now_ms)
        };
        if after != before {
            attempts::save(
                &self.dir,
                &self.key_id,
                self.keystore.as_ref(),
                created,
                &after,
            )?;
        }
        Ok(after)
    }

    /// Wipes the template (overwrite, fsync, remove, also any temporary files) and deletes its key,
    /// which makes any copy of the sealed file that survived on the storage medium unreadable.
    /// Succeeds when nothing is enrolled.
    pub fn delete(&self) -> Result<(), TemplateError> {
        let _guard = self
            .write_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        files::wipe_file(&self.path())?;
        files::remove_stale_temps(&self.dir, TEMPLATE_FILE)?;
        attempts::delete(&self.dir)?;
        if self.dir.exists() {
            files::sync_dir(&self.dir)?;
        }
        self.keystore.delete(&self.key_id)
    }
}

impl std::fmt::Debug for TemplateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemplateStore")
            .field("dir", &self.dir)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}
