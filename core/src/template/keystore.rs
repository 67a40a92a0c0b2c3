//! Where the template key lives: the [`KeyStore`] trait (platform key stores implement it through the
//! bindings), a file-backed software store for desktop and tests, and an in-memory store.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ring::rand::{SecureRandom, SystemRandom};

use super::enrol::wipe_bytes;
use super::{TemplateError, files};

/// Length of a template key in bytes (AES-256).
pub const KEY_LEN: usize = 32;
/// Longest key id, in bytes.
pub const MAX_KEY_ID_LEN: usize = 64;

/// A 256-bit AES-GCM key that seals templates. Zeroed on drop; `Debug` never shows it.
#[derive(Clone)]
pub struct TemplateKey([u8; KEY_LEN]);

impl TemplateKey {
    /// Wraps raw key bytes (for platform key stores that hand the key over as bytes).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        TemplateKey(bytes)
    }

    /// A fresh key from the operating system's secure random source.
    pub fn generate() -> Result<Self, TemplateError> {
        let mut bytes = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| TemplateError::Crypto("the system random source failed".into()))?;
        Ok(TemplateKey(bytes))
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl TryFrom<&[u8]> for TemplateKey {
    type Error = TemplateError;

    fn try_from(bytes: &[u8]) -> Result<Self, TemplateError> {
        let bytes: [u8; KEY_LEN] = bytes.try_into().map_err(|_| {
            TemplateError::KeyStore(format!(
                "a template key is {KEY_LEN} bytes, got {}",
                bytes.len()
            ))
        })?;
        Ok(TemplateKey(bytes))
    }
}

impl fmt::Debug for TemplateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TemplateKey(redacted)")
    }
}

impl Drop for TemplateKey {
    fn drop(&mut self) {
        wipe_bytes(&mut self.0);
    }
}

/// Holds template keys by id. Android Keystore and iOS Keychain implement it through the bindings;
/// [`FileKeyStore`] is the desktop/test default. Implementations must be safe to call from any thread.
pub trait KeyStore: Send + Sync {
    /// The key with this id, created (and persisted) first if it does not exist yet.
    fn get_or_create(&self, key_id: &str) -> Result<TemplateKey, TemplateError>;
    /// The key with this id, or `None` if there is none (never creates one).
    fn get(&self, key_id: &str) -> Result<Option<TemplateKey>, TemplateError>;
    /// Destroys the key with this id; succeeds if there is none.
    fn delete(&self, key_id: &str) -> Result<(), TemplateError>;
}

/// Checks a key id: 1-64 bytes of `A-Z a-z 0-9 . _ -`, not starting with `.` (so it is a safe file name).
pub fn check_key_id(key_id: &str) -> Result<(), TemplateError> {
    let ok = !key_id.is_empty()
        && key_id.len() <= MAX_KEY_ID_LEN
        && !key_id.starts_with('.')
        && key_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(TemplateError::InvalidKeyId(key_id.to_owned()))
    }
}

/// A software key store: one owner-only (0600) file of 32 raw bytes per key, `<dir>/<key id>.key`.
///
/// Keys are created through a temporary file that is fsynced and then hard-linked into place, so a key
/// file is never half-written and two processes racing to create the same key end up sharing one.
/// It protects the template against copying of the template file alone, not against someone who can
/// read the whole directory: on phones the platform key store takes its place.
#[derive(Debug, Clone)]
pub struct FileKeyStore {
    dir: PathBuf,
}

impl FileKeyStore {
    /// A key store in `dir` (created on first use, owner-only).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileKeyStore { dir: dir.into() }
    }

    /// The directory holding the key files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file_name(key_id: &str) -> Result<String, TemplateError> {
        check_key_id(key_id)?;
        Ok(format!("{key_id}.key"))
    }
}

impl KeyStore for FileKeyStore {
    fn get_or_create(&self, key_id: &str) -> Result<TemplateKey, TemplateError> {
        if let Some(key) = self.get(key_id)? {
            return Ok(key);
        }
        let name = Self::file_name(key_id)?;
        files::create_private_dir(&self.dir)?;
        files::remove_stale_temps(&self.dir, &name)?;
        let key = TemplateKey::generate()?;
        let temp = files::write_temp(&self.dir, &name, key.as_bytes())?;
        let path = self.dir.join(&name);
        // The temporary name is only unlinked below (`wipe_file` never overwrites a file that has
        // another link), so the key file keeps its bytes.
        let linked = fs::hard_link(&temp, &path);
        files::wipe_file(&temp)?;
        match linked {
            Ok(()) => {
                files::sync_dir(&self.dir)?;
                Ok(key)
            }
            // Another process created the key between our look-up and the link: use theirs.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                self.get(key_id)?.ok_or_else(|| {
                    TemplateError::KeyStore(format!("key file {} vanished", path.display()))
                })
            }
            Err(e) => Err(TemplateError::io(
                format!("creating key file {}", path.display()),
                e,
            )),
        }
    }

    fn get(&self, key_id: &str) -> Result<Option<TemplateKey>, TemplateError> {
        let path = self.dir.join(Self::file_name(key_id)?);
        let mut bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(TemplateError::io(
                    format!("reading key file {}", path.display()),
                    e,
                ));
            }
        };
        let key = TemplateKey::try_from(bytes.as_slice()).map_err(|_| {
            TemplateError::KeyStore(format!(
                "key file {} is corrupt ({} bytes, expected {KEY_LEN})",
                path.display(),
                bytes.len()
            ))
        });
        wipe_bytes(&mut bytes);
        key.map(Some)
    }

    fn delete(&self, key_id: &str) -> Result<(), TemplateError> {
        let name = Self::file_name(key_id)?;
        files::wipe_file(&self.dir.join(&name))?;
        files::remove_stale_temps(&self.dir, &name)?;
        if self.dir.exists() {
            files::sync_dir(&self.dir)?;
        }
        Ok(())
    }
}

/// A key store that keeps keys in memory only (tests, and hosts that persist nothing).
#[derive(Debug, Default)]
pub struct MemoryKeyStore {
    keys: Mutex<HashMap<String, TemplateKey>>,
}

impl MemoryKeyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn keys(&self) -> std::sync::MutexGuard<'_, HashMap<String, TemplateKey>> {
        // A panic elsewhere while holding the lock cannot leave the map half-updated: every
        // operation is a single insert, lookup or removal, so a poisoned lock is still usable.
        self.keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl KeyStore for MemoryKeyStore {
    fn get_or_create(&self, key_id: &str) -> Result<TemplateKey, TemplateError> {
        check_key_id(key_id)?;
        let mut keys = self.keys();
        if let Some(key) = keys.get(key_id) {
            return Ok(key.clone());
        }
        let key = TemplateKey::generate()?;
        keys.insert(key_id.to_owned(), key.clone());
        Ok(key)
    }

    fn get(&self, key_id: &str) -> Result<Option<TemplateKey>, TemplateError> {
        check_key_id(key_id)?;
        Ok(self.keys().get(key_id).cloned())
    }

    fn delete(&self, key_id: &str) -> Result<(), TemplateError> {
        check_key_id(key_id)?;
        self.keys().remove(key_id);
        Ok(())
    }
}
