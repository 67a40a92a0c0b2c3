//! The device's attempt limit on face matches: after [`MAX_FAILED_MATCHES`] failed matches in a row, no match
//! is tried for a lock-out time that doubles with every further failure.
//!
//! A failed match never reaches the checkout server (the device signs only what matched), so the server's own
//! lock-out never sees an impostor trying faces on a stolen phone; this limit is the device's. The record is
//! persisted beside the template (`attempts.fpa`, sealed like the template under the template's key, in the
//! same layout with the magic `FPAT`) and bound to the template it counts for by the template's enrolment
//! time: a new enrolment starts from zero, deleting the enrolment deletes the record.
//!
//! Policy (the one place it lives):
//! - failures 1-4: no wait;
//! - failure 5: locked for [`LOCKOUT_BASE_MS`] (5 minutes);
//! - every further failure (one try after each lock-out) doubles the time, up to [`LOCKOUT_MAX_MS`] (24 hours);
//! - a successful match resets the count.
//!
//! A record that fails its integrity check (edited, truncated, sealed under another key) counts as a lock-out
//! at the limit starting when it was found, and is rewritten so; a missing record counts as no failure (the
//! files live in app-private storage, where removing the record needs the same access as removing the
//! template itself).

use super::keystore::{KeyStore, TemplateKey};
use super::{TemplateError, files, seal};

/// Failed matches in a row after which the device locks matching.
pub const MAX_FAILED_MATCHES: u32 = 5;
/// Lock-out after the [`MAX_FAILED_MATCHES`]-th failure in a row, in milliseconds (5 minutes).
pub const LOCKOUT_BASE_MS: u64 = 5 * 60 * 1000;
/// Longest lock-out, in milliseconds (24 hours).
pub const LOCKOUT_MAX_MS: u64 = 24 * 60 * 60 * 1000;
/// File name of the sealed attempt record inside the template store's directory.
pub const ATTEMPTS_FILE: &str = "attempts.fpa";
/// The first bytes of a sealed attempt record.
pub(crate) const ATTEMPTS_MAGIC: [u8; 4] = *b"FPAT";
/// Payload layout version of the attempt record.
const ATTEMPTS_VERSION: u16 = 1;

/// The attempt state of the enrolled template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchAttempts {
    /// Failed matches in a row since the last successful one.
    pub consecutive_failures: u32,
    /// Until when matching is refused, in milliseconds since the Unix epoch (0 = not locked).
    pub locked_until_ms: u64,
}

impl MatchAttempts {
    /// No failure recorded.
    pub const NONE: MatchAttempts = MatchAttempts {
        consecutive_failures: 0,
        locked_until_ms: 0,
    };

    /// Milliseconds still to wait at `now_ms` before a match may be tried (0 = may try now).
    pub fn retry_after_ms(&self, now_ms: u64) -> u64 {
        self.locked_until_ms.saturating_sub(now_ms)
    }

    /// The state after one more failed match at `now_ms`.
    pub fn after_failure(&self, now_ms: u64) -> MatchAttempts {
        let failures = self.consecutive_failures.saturating_add(1);
        MatchAttempts {
            consecutive_failures: failures,
            locked_until_ms: match lockout_ms(failures) {
                0 => 0,
                wait => now_ms.saturating_add(wait),
            },
        }
    }
}

/// The lock-out after the `failures`-th failed match in a row (0 below the limit).
pub fn lockout_ms(failures: u32) -> u64 {
    if failures < MAX_FAILED_MATCHES {
        return 0;
    }
    let doublings = (failures - MAX_FAILED_MATCHES).min(20);
    LOCKOUT_BASE_MS
        .saturating_mul(1u64 << doublings)
        .min(LOCKOUT_MAX_MS)
}

/// `u16 version | u64 template created_at_ms | u32 consecutive failures | u64 locked_until_ms`, little-endian.
fn encode(template_created_at_ms: u64, a: &MatchAttempts) -> Vec<u8> {
    let mut out = Vec::with_capacity(22);
    out.extend_from_slice(&ATTEMPTS_VERSION.to_le_bytes());
    out.extend_from_slice(&template_created_at_ms.to_le_bytes());
    out.extend_from_slice(&a.consecutive_failures.to_le_bytes());
    out.extend_from_slice(&a.locked_until_ms.to_le_bytes());
    out
}

fn decode(bytes: &[u8]) -> Result<(u64, MatchAttempts), TemplateError> {
    if bytes.len() != 22 {
        return Err(TemplateError::Integrity);
    }
    let version = u16::from_le_bytes([bytes[0], bytes[1]]);
    if version != ATTEMPTS_VERSION {
        return Err(TemplateError::UnsupportedVersion {
            found: version,
            supported: ATTEMPTS_VERSION,
        });
    }
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[i..i + 8]);
        u64::from_le_bytes(b)
    };
    let failures = u32::from_le_bytes([bytes[10], bytes[11], bytes[12], bytes[13]]);
    Ok((
        u64_at(2),
        MatchAttempts {
            consecutive_failures: failures,
            locked_until_ms: u64_at(14),
        },
    ))
}

/// Reads the record of the template enrolled at `template_created_at_ms` from `dir`, at `now_ms`.
pub(crate) fn load(
    dir: &std::path::Path,
    key_id: &str,
    keystore: &dyn KeyStore,
    template_created_at_ms: u64,
    now_ms: u64,
) -> Result<MatchAttempts, TemplateError> {
    let path = dir.join(ATTEMPTS_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(MatchAttempts::NONE),
        Err(e) => return Err(TemplateError::io(format!("reading {}", path.display()), e)),
    };
    let key = key(keystore, key_id)?;
    let opened = seal::parse_header_of(ATTEMPTS_MAGIC, &bytes).and_then(|header| {
        if header.key_id != key_id {
            return Err(TemplateError::Integrity);
        }
        seal::open_with(&bytes, &header, &key, decode)
    });
    match opened {
        Ok((created, attempts)) if created == template_created_at_ms => Ok(attempts),
        // The record of an earlier enrolment: the current template starts from zero.
        Ok(_) => Ok(MatchAttempts::NONE),
        Err(TemplateError::Integrity | TemplateError::UnsupportedVersion { .. }) => {
            let locked = MatchAttempts {
                consecutive_failures: MAX_FAILED_MATCHES,
                locked_until_ms: now_ms.saturating_add(LOCKOUT_BASE_MS),
            };
            save(dir, key_id, keystore, template_created_at_ms, &locked)?;
            Ok(locked)
        }
        Err(e) => Err(e),
    }
}

/// Seals and atomically replaces the record.
pub(crate) fn save(
    dir: &std::path::Path,
    key_id: &str,
    keystore: &dyn KeyStore,
    template_created_at_ms: u64,
    attempts: &MatchAttempts,
) -> Result<(), TemplateError> {
    let key = key(keystore, key_id)?;
    let sealed = seal::seal_bytes(
        ATTEMPTS_MAGIC,
        &encode(template_created_at_ms, attempts),
        key_id,
        &key,
    )?;
    files::create_private_dir(dir)?;
    files::remove_stale_temps(dir, ATTEMPTS_FILE)?;
    let temp = files::write_temp(dir, ATTEMPTS_FILE, &sealed)?;
    let path = dir.join(ATTEMPTS_FILE);
    if let Err(e) = std::fs::rename(&temp, &path) {
        files::wipe_file(&temp)?;
        return Err(TemplateError::io(
            format!("replacing {}", path.display()),
            e,
        ));
    }
    files::sync_dir(dir)
}

/// Removes the record (and any temporary copy).
pub(crate) fn delete(dir: &std::path::Path) -> Result<(), TemplateError> {
    files::wipe_file(&dir.join(ATTEMPTS_FILE))?;
    files::remove_stale_temps(dir, ATTEMPTS_FILE)
}

fn key(keystore: &dyn KeyStore, key_id: &str) -> Result<TemplateKey, TemplateError> {
    keystore
        .get(key_id)?
        .ok_or_else(|| TemplateError::KeyUnavailable {
            key_id: key_id.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_starts_at_the_fifth_failure_and_doubles_to_a_cap() {
        for f in 0..MAX_FAILED_MATCHES {
            assert_eq!(lockout_ms(f), 0);
        }
        assert_eq!(lockout_ms(5), 5 * 60 * 1000);
        assert_eq!(lockout_ms(6), 10 * 60 * 1000);
        assert_eq!(lockout_ms(7), 20 * 60 * 1000);
        assert_eq!(lockout_ms(100), LOCKOUT_MAX_MS);
        let mut a = MatchAttempts::NONE;
        for _ in 0..4 {
            a = a.after_failure(1_000);
            assert_eq!(a.retry_after_ms(1_000), 0);
        }
        a = a.after_failure(1_000);
        assert_eq!(a.consecutive_failures, 5);
        assert_eq!(a.retry_after_ms(1_000), LOCKOUT_BASE_MS);
        assert_eq!(a.retry_after_ms(1_000 + LOCKOUT_BASE_MS), 0);
    }

    #[test]
    fn payload_round_trips_and_refuses_other_lengths() {
        let a = MatchAttempts {
            consecutive_failures: 7,
            locked_until_ms: 123_456_789,
        };
        assert_eq!(decode(&encode(42, &a)).unwrap(), (42, a));
        assert!(matches!(decode(&[0; 21]), Err(TemplateError::Integrity)));
        let mut other = encode(42, &a);
        other[0] = 9;
        assert!(matches!(
            decode(&other),
            Err(TemplateError::UnsupportedVersion { found: 9, .. })
        ));
    }
}
