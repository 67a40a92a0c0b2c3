//! Tests of enrolment, the sealed format, the key stores and the template store.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::*;

const DIM: usize = 192;
const MODEL: &str = "mobilefacenet@0123456789ab";

/// A fresh directory under the system temp dir, removed on drop.
struct TestDir(PathBuf);

impl TestDir {
    fn new() -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "facepay-template-test-{}-{nanos}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&path).unwrap();
        TestDir(path)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Deterministic pseudo-random values in [-1, 1) (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
        (x as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn unit(&mut self, dim: usize) -> Vec<f32> {
        normalise((0..dim).map(|_| self.next()).collect())
    }
}

fn normalise(mut v: Vec<f32>) -> Vec<f32> {
    let n = l2_norm(&v) as f32;
    v.iter_mut().for_each(|x| *x /= n);
    v
}

/// `count` embeddings of one synthetic person: a shared direction plus noise of norm 0.5 (pairwise cosine ≈ 0.8).
fn person(seed: u64, count: usize) -> Vec<Vec<f32>> {
    let mut rng = Rng(seed);
    let base = rng.unit(DIM);
    (0..count)
        .map(|_| {
            let noise = rng.unit(DIM);
            normalise(base.iter().zip(&noise).map(|(b, n)| b + 0.5 * n).collect())
        })
        .collect()
}

fn template(seed: u64) -> Template {
    enrol_at(person(seed, 4), MODEL, 1_700_000_000_000 + seed).unwrap()
}

fn file_store(dir: &TestDir) -> (TemplateStore, Arc<FileKeyStore>) {
    let keys = Arc::new(FileKeyStore::new(dir.join("keys")));
    (
        TemplateStore::new(dir.join("templates"), keys.clone()),
        keys,
    )
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Names in a directory, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

// ---- enrolment ----

#[test]
fn enrol_accepts_3_to_5_consistent_embeddings() {
    for count in MIN_EMBEDDINGS..=MAX_EMBEDDINGS {
        let t = enrol(person(7, count), MODEL).unwrap();
        assert_eq!(t.embeddings().len(), count);
        assert_eq!(
            (t.version(), t.model(), t.dimension()),
            (TEMPLATE_VERSION, MODEL, DIM)
        );
        assert!(
            t.created_at_ms() > 1_600_000_000_000,
            "stamped with the current time"
        );
    }
}

#[test]
fn enrol_rejects_wrong_counts() {
    for count in [0, 1, 2, 6, 9] {
        assert!(matches!(
            enrol(person(3, count), MODEL),
            Err(TemplateError::EmbeddingCount { found, min: 3, max: 5 }) if found == count
        ));
    }
}

#[test]
fn enrol_rejects_bad_dimensions_and_values() {
    let mut e = person(5, 3);
    e[2].truncate(128);
    assert!(matches!(
        enrol(e, MODEL),
        Err(TemplateError::Dimension {
            index: 2,
            found: 128,
            expected: DIM
        })
    ));
    assert!(matches!(
        enrol(vec![vec![]; 3], MODEL),
        Err(TemplateError::DimensionOutOfRange {
            found: 0,
            max: MAX_DIMENSION
        })
    ));
    let mut e = person(5, 3);
    e[1][10] = f32::NAN;
    assert!(matches!(
        enrol(e, MODEL),
        Err(TemplateError::NonFinite { index: 1 })
    ));
    let mut e = person(5, 3);
    e[0][3] = f32::INFINITY;
    assert!(matches!(
        enrol(e, MODEL),
        Err(TemplateError::NonFinite { index: 0 })
    ));
}

#[test]
fn enrol_requires_unit_norm_and_renormalises_drift() {
    let mut e = person(9, 3);
    e[1].iter_mut().for_each(|v| *v *= 2.0);
    assert!(
        matches!(enrol(e, MODEL), Err(TemplateError::NotUnitNorm { index: 1, norm, .. }) if (norm - 2.0).abs() < 1e-4)
    );
    let mut e = person(9, 3);
    e[0] = vec![f32::MAX; DIM]; // squares overflow f32: still a typed error, not a NaN slipping through
    assert!(matches!(
        enrol(e, MODEL),
        Err(TemplateError::NotUnitNorm { index: 0, .. })
    ));
    let mut e = person(9, 3);
    e[2] = vec![0.0; DIM];
    assert!(matches!(
        enrol(e, MODEL),
        Err(TemplateError::NotUnitNorm { index: 2, .. })
    ));
    let mut e = person(9, 3);
    e[0].iter_mut().for_each(|v| *v *= 1.0005);
    let t = enrol(e, MODEL).unwrap();
    for embedding in t.embeddings() {
        assert!((l2_norm(embedding) - 1.0).abs() < 1e-6);
    }
}

#[test]
fn enrol_quality_gate_rejects_a_disagreeing_frame() {
    let mut e = person(11, 4);
    e[2] = person(12, 1).remove(0); // another "person": near-orthogonal in 192-d
    match enrol(e, MODEL) {
        Err(TemplateError::Inconsistent {
            first,
            second,
            similarity,
            required,
        }) => {
            assert!(
                first == 2 || second == 2,
                "the odd one out is named: {first}, {second}"
            );
            assert!(similarity < required && required == MIN_ENROL_AGREEMENT);
        }
        other => panic!("expected Inconsistent, got {other:?}"),
    }
}

#[test]
fn model_ids_are_validated() {
    let sha = "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef";
    assert_eq!(
        model_id("mobilefacenet", sha).unwrap(),
        "mobilefacenet@0123456789ab"
    );
    assert!(matches!(
        model_id("", sha),
        Err(TemplateError::InvalidModel(_))
    ));
    assert!(matches!(
        model_id("mobile face", sha),
        Err(TemplateError::InvalidModel(_))
    ));
    assert!(matches!(
        model_id("mobilefacenet", "0123"),
        Err(TemplateError::InvalidModel(_))
    ));
    assert!(matches!(
        model_id("mobilefacenet", "zz23456789abcdef"),
        Err(TemplateError::InvalidModel(_))
    ));
    assert!(matches!(
        enrol(person(1, 3), ""),
        Err(TemplateError::InvalidModel(_))
    ));
    assert!(matches!(
        enrol(person(1, 3), "x".repeat(256)),
        Err(TemplateError::InvalidModel(_))
    ));
}

#[test]
fn debug_output_hides_embeddings() {
    let t = template(1);
    let shown = format!("{t:?}");
    assert!(shown.contains(MODEL) && shown.contains("redacted"));
    assert!(
        !shown.contains(&format!("{}", t.embeddings()[0][0])),
        "{shown}"
    );
    assert_eq!(
        format!("{:?}", TemplateKey::from_bytes([7; KEY_LEN])),
        "TemplateKey(redacted)"
    );
}

// ---- serialisation ----

#[test]
fn codec_round_trips_and_is_strict() {
    let t = template(2);
    let bytes = codec::encode(&t);
    assert_eq!(bytes.len(), 2 + 8 + 1 + MODEL.len() + 1 + 2 + 4 * DIM * 4);
    assert_eq!(codec::decode(&bytes).unwrap(), t);
    assert!(matches!(
        codec::decode(&bytes[..bytes.len() - 1]),
        Err(TemplateError::Integrity)
    ));
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        codec::decode(&longer),
        Err(TemplateError::Integrity)
    ));
    let mut newer = bytes.clone();
    newer[0] = 2;
    assert!(matches!(
        codec::decode(&newer),
        Err(TemplateError::UnsupportedVersion {
            found: 2,
            supported: TEMPLATE_VERSION
        })
    ));
}

// ---- the store ----

#[test]
fn save_load_round_trip_with_file_and_memory_key_stores() {
    let dir = TestDir::new();
    let (store, _) = file_store(&dir);
    let t = template(3);
    store.save(&t).unwrap();
    assert_eq!(store.load().unwrap(), t);

    let memory = TemplateStore::new(dir.join("memory"), Arc::new(MemoryKeyStore::new()));
    memory.save(&t).unwrap();
    assert_eq!(memory.load().unwrap(), t);
}

#[test]
fn sealed_file_holds_no_plaintext_embedding() {
    let dir = TestDir::new();
    let (store, _) = file_store(&dir);
    let t = template(4);
    store.save(&t).unwrap();
    let sealed = fs::read(store.path()).unwrap();
    let plain = codec::encode(&t);
    let mut checked = 0;
    for embedding in t.embeddings() {
        for v in embedding.iter().step_by(17) {
            // The probe is meaningful: the plaintext serialisation does contain these bytes.
            assert!(contains(&plain, &v.to_le_bytes()));
            assert!(
                !contains(&sealed, &v.to_le_bytes()),
                "little-endian bytes of {v} found in the sealed file"
            );
            assert!(
                !contains(&sealed, &v.to_be_bytes()),
                "big-endian bytes of {v} found in the sealed file"
            );
            checked += 1;
        }
    }
    assert!(checked >= 40, "checked {checked} values");
    assert!(
        !contains(&sealed, MODEL.as_bytes()),
        "the model id is inside the ciphertext too"
    );
    // Two seals of the same template differ (fresh nonce).
    store.save(&t).unwrap();
    assert_ne!(fs::read(store.path()).unwrap(), sealed);
}

#[test]
fn header_layout_is_as_documented() {
    let dir = TestDir::new();
    let (store, _) = file_store(&dir);
    let t = template(5);
    store.save(&t).unwrap();
    let sealed = fs::read(store.path()).unwrap();
    assert_eq!(&sealed[..4], &MAGIC);
    assert_eq!(sealed[4], FORMAT_VERSION);
    assert_eq!(usize::from(sealed[5]), DEFAULT_KEY_ID.len());
    assert_eq!(
        &sealed[6..6 + DEFAULT_KEY_ID.len()],
        DEFAULT_KEY_ID.as_bytes()
    );
    let header = 6 + DEFAULT_KEY_ID.len() + 12;
    assert_eq!(sealed.len(), header + codec::encode(&t).len() + 16);
}

#[test]
fn every_flipped_bit_is_a_typed_error() {
    let dir = TestDir::new();
    let (store, _) = file_store(&dir);
    store.save(&template(6)).unwrap();
    let original = fs::read(store.path()).unwrap();
    let header_len = 6 + DEFAULT_KEY_ID.len() + 12;
    // Every bit of the header, then a spread of ciphertext and tag positions, and the very last bit.
    let mut positions: Vec<(usize, u8)> = (0..header_len)
        .flat_map(|i| (0..8).map(move |b| (i, b)))
        .collect();
    positions.extend(
        (header_len..original.len())
            .step_by(29)
            .map(|i| (i, (i % 8) as u8)),
    );
    positions.push((original.len() - 1, 7));
    for &(byte, bit) in &positions {
        let mut flipped = original.clone();
        flipped[byte] ^= 1 << bit;
        fs::write(store.path(), &flipped).unwrap();
        match (byte, store.load()) {
            (4, Err(TemplateError::UnsupportedVersion { found, supported })) => {
                assert_eq!(
                    (found, supported),
                    (
                        u16::from(FORMAT_VERSION ^ (1 << bit)),
                        u16::from(FORMAT_VERSION)
                    )
                );
            }
            (4, other) => panic!("version bit {bit}: expected UnsupportedVersion, got {other:?}"),
            (_, Err(TemplateError::Integrity)) => {}
            (_, other) => panic!("byte {byte} bit {bit}: expected Integrity, got {other:?}"),
        }
    }
    assert!(positions.len() > 350, "{} positions", positions.len());
    fs::write(store.path(), &original).unwrap();
    assert!(store.load().is_ok(), "the unflipped file still opens");
}

#[test]
fn truncated_empty_or_foreign_files_fail_integrity() {
    let dir = TestDir::new();
    let (store, _) = file_store(&dir);
    store.save(&template(7)).unwrap();
    let original = fs::read(store.path()).unwrap();
    for len in [0, 3, 5, 20, 37, original.len() / 2, original.len() - 1] {
        fs::write(store.path(), &original[..len]).unwrap();
        assert!(
            matches!(store.load(), Err(TemplateError::Integrity)),
            "truncated to {len}"
        );
    }
    let mut longer = original.clone();
    longer.extend_from_slice(b"junk");
    fs::write(store.path(), &longer).unwrap();
    assert!(matches!(store.load(), Err(TemplateError::Integrity)));
}

#[test]
fn wrong_or_missing_key_is_typed() {
    let dir = TestDir::new();
    let (store, keys) = file_store(&dir);
    let t = template(8);
    store.save(&t).unwrap();
    // Another key under the same id: authentication fails.
    let other = MemoryKeyStore::new();
    other.get_or_create(DEFAULT_KEY_ID).unwrap();
    let foreign = TemplateStore::new(store.dir(), Arc::new(other));
    assert!(matches!(foreign.load(), Err(TemplateError::Integrity)));
    // A store sealing under another key id does not accept this file.
    let renamed = TemplateStore::with_key_id(store.dir(), keys.clone(), "other.key").unwrap();
    assert!(matches!(renamed.load(), Err(TemplateError::Integrity)));
    // The key is gone.
    keys.delete(DEFAULT_KEY_ID).unwrap();
    assert!(
        matches!(store.load(), Err(TemplateError::KeyUnavailable { key_id }) if key_id == DEFAULT_KEY_ID)
    );
    assert!(matches!(
        TemplateStore::with_key_id(store.dir(), keys, "../escape"),
        Err(TemplateError::InvalidKeyId(_))
    ));
}

#[test]
fn re_enrolment_replaces_the_template() {
    let dir = TestDir::new();
    let (store, _) = file_store(&dir);
    store.save(&template(9)).unwrap();
    let second = template(10);
    store.save(&second).unwrap();
    assert_eq!(store.load().unwrap(), second);
    assert_eq!(listing(store.dir()), [TEMPLATE_FILE]);
}

#[test]
fn crash_during_re_enrolment_keeps_the_old_template() {
    let dir = TestDir::new();
    let (store, _) = file_store(&dir);
    let old = template(11);
    store.save(&old).unwrap();
    // Crash after the new template's temporary file is fully written, before the rename…
    let staged = store.stage(&template(12)).unwrap();
    assert!(staged.exists());
    // …and an earlier crash that left a half-written temporary file.
    let partial = store.dir().join(format!(".{TEMPLATE_FILE}.tmp-999999-0"));
    fs::write(&partial, &fs::read(&staged).unwrap()[..40]).unwrap();
    assert_eq!(listing(store.dir()).len(), 3);

    assert_eq!(
        store.load().unwrap(),
        old,
        "the old template is still the one in force"
    );

    let newest = template(13);
    store.save(&newest).unwrap();
    assert_eq!(store.load().unwrap(), newest);
    assert_eq!(
        listing(store.dir()),
        [TEMPLATE_FILE],
        "stray temporary files were cleaned up"
    );
}

#[test]
fn delete_wipes_the_file_and_the_key() {
    let dir = TestDir::new();
    let (store, keys) = file_store(&dir);
    let t = template(14);
    store.save(&t).unwrap();
    let size = fs::metadata(store.path()).unwrap().len() as usize;
    // A handle opened before deletion still sees the inode: it must read back zeros, not the ciphertext.
    let mut handle = fs::File::open(store.path()).unwrap();
    store.delete().unwrap();
    let mut after = Vec::new();
    std::io::Read::read_to_end(&mut handle, &mut after).unwrap();
    assert_eq!(after.len(), size);
    assert!(
        after.iter().all(|&b| b == 0),
        "the file was overwritten before removal"
    );
    assert!(!store.path().exists());
    assert!(
        keys.get(DEFAULT_KEY_ID).unwrap().is_none(),
        "the key was deleted"
    );
    assert!(matches!(store.load(), Err(TemplateError::NotEnrolled)));
    store.delete().unwrap();
    // Enrolling again works and uses a fresh key.
    store.save(&t).unwrap();
    assert_eq!(store.load().unwrap(), t);
}

#[test]
fn never_enrolled_is_not_enrolled() {
    let dir = TestDir::new();
    let (store, _) = file_store(&dir);
    assert!(matches!(store.load(), Err(TemplateError::NotEnrolled)));
    store.delete().unwrap();
}

#[cfg(unix)]
#[test]
fn files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TestDir::new();
    let (store, keys) = file_store(&dir);
    store.save(&template(15)).unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&store.path()), 0o600);
    assert_eq!(
        mode(&keys.dir().join(format!("{DEFAULT_KEY_ID}.key"))),
        0o600
    );
    assert_eq!(mode(keys.dir()), 0o700);
    assert_eq!(mode(store.dir()), 0o700);
}

// ---- key stores ----

#[test]
fn file_key_store_creates_once_and_deletes() {
    let dir = TestDir::new();
    let keys = FileKeyStore::new(dir.join("keys"));
    assert!(keys.get("a").unwrap().is_none());
    let first = keys.get_or_create("a").unwrap();
    assert_eq!(
        keys.get_or_create("a").unwrap().as_bytes(),
        first.as_bytes()
    );
    assert_eq!(
        FileKeyStore::new(dir.join("keys"))
            .get("a")
            .unwrap()
            .unwrap()
            .as_bytes(),
        first.as_bytes()
    );
    let b = keys.get_or_create("b").unwrap();
    assert_ne!(b.as_bytes(), first.as_bytes());
    assert_eq!(listing(keys.dir()), ["a.key", "b.key"]);
    keys.delete("a").unwrap();
    assert!(keys.get("a").unwrap().is_none());
    assert_ne!(
        keys.get_or_create("a").unwrap().as_bytes(),
        first.as_bytes()
    );
    keys.delete("never-existed").unwrap();
}

#[test]
fn file_key_store_rejects_bad_ids_and_corrupt_files() {
    let dir = TestDir::new();
    let keys = FileKeyStore::new(dir.join("keys"));
    for bad in [
        "",
        ".hidden",
        "../up",
        "a/b",
        "spa ce",
        &"k".repeat(MAX_KEY_ID_LEN + 1),
    ] {
        assert!(
            matches!(keys.get_or_create(bad), Err(TemplateError::InvalidKeyId(_))),
            "{bad:?}"
        );
    }
    keys.get_or_create("k").unwrap();
    fs::write(keys.dir().join("k.key"), [1u8; 10]).unwrap();
    assert!(matches!(keys.get("k"), Err(TemplateError::KeyStore(msg)) if msg.contains("corrupt")));
}

#[test]
fn stale_key_temp_linked_to_the_key_is_unlinked_not_wiped() {
    // A crash between linking the new key into place and removing its temporary name leaves two names
    // for one inode; cleaning up the temporary name must not zero the key.
    let dir = TestDir::new();
    let keys = FileKeyStore::new(dir.join("keys"));
    let key = keys.get_or_create("k").unwrap();
    fs::hard_link(keys.dir().join("k.key"), keys.dir().join(".k.key.tmp-1-1")).unwrap();
    files::remove_stale_temps(keys.dir(), "k.key").unwrap();
    assert_eq!(listing(keys.dir()), ["k.key"]);
    assert_eq!(keys.get("k").unwrap().unwrap().as_bytes(), key.as_bytes());
}

#[test]
fn memory_key_store_behaves_like_a_key_store() {
    let keys: Arc<dyn KeyStore> = Arc::new(MemoryKeyStore::new());
    assert!(keys.get("x").unwrap().is_none());
    let k = keys.get_or_create("x").unwrap();
    assert_eq!(keys.get("x").unwrap().unwrap().as_bytes(), k.as_bytes());
    keys.delete("x").unwrap();
    assert!(keys.get("x").unwrap().is_none());
    assert!(matches!(
        keys.get("../x"),
        Err(TemplateError::InvalidKeyId(_))
    ));
}

#[test]
fn key_bytes_conversion_checks_length() {
    assert!(TemplateKey::try_from([1u8; KEY_LEN].as_slice()).is_ok());
    assert!(matches!(
        TemplateKey::try_from([1u8; 16].as_slice()),
        Err(TemplateError::KeyStore(_))
    ));
}

#[test]
fn store_and_key_stores_are_thread_safe() {
    fn assert_send_sync<T: Send + Sync + ?Sized>() {}
    assert_send_sync::<TemplateStore>();
    assert_send_sync::<dyn KeyStore>();
    assert_send_sync::<FileKeyStore>();
    assert_send_sync::<MemoryKeyStore>();
    let dir = TestDir::new();
    let (store, _) = file_store(&dir);
    let store = Arc::new(store);
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let store = store.clone();
            std::thread::spawn(move || store.save(&template(20 + i)))
        })
        .collect();
    for h in handles {
        h.join().unwrap().unwrap();
    }
    let loaded = store.load().unwrap();
    assert!(
        (20..24).any(|i| template(i) == loaded),
        "one of the saved templates, whole"
    );
    assert_eq!(listing(store.dir()), [TEMPLATE_FILE]);
}

#[test]
fn attempt_limit_is_persisted_bound_to_the_template_and_fails_closed() {
    let dir = TestDir::new();
    let (store, _) = file_store(&dir);
    let enrolled = enrol_at(person(3, 4), MODEL, 1_000).unwrap();
    store.save(&enrolled).unwrap();
    let now = 10_000_000;
    assert_eq!(
        store.match_attempts(&enrolled, now).unwrap(),
        MatchAttempts::NONE
    );
    for k in 1..MAX_FAILED_MATCHES {
        let a = store.record_match(&enrolled, false, now).unwrap();
        assert_eq!(a.consecutive_failures, k);
        assert_eq!(a.retry_after_ms(now), 0);
    }
    let locked = store.record_match(&enrolled, false, now).unwrap();
    assert_eq!(locked.retry_after_ms(now), attempts::LOCKOUT_BASE_MS);
    // Persisted: a fresh store on the same directory sees the lock-out.
    let (again, _) = file_store(&dir);
    assert_eq!(again.match_attempts(&enrolled, now + 1).unwrap(), locked);
    // The next failure after the lock-out doubles it; a success resets.
    let later = now + attempts::LOCKOUT_BASE_MS;
    let doubled = store.record_match(&enrolled, false, later).unwrap();
    assert_eq!(doubled.retry_after_ms(later), 2 * attempts::LOCKOUT_BASE_MS);
    assert_eq!(
        store.record_match(&enrolled, true, later).unwrap(),
        MatchAttempts::NONE
    );
    // A record made for another template (a re-enrolment) does not lock the new one.
    for _ in 0..MAX_FAILED_MATCHES {
        store.record_match(&enrolled, false, now).unwrap();
    }
    let new_template = enrol_at(person(4, 4), MODEL, 2_000).unwrap();
    assert_eq!(
        store.match_attempts(&new_template, now).unwrap(),
        MatchAttempts::NONE
    );
    // A tampered record fails closed: locked out from when it was found, and rewritten so.
    let path = store.dir().join(attempts::ATTEMPTS_FILE);
    assert!(fs::read(&path).unwrap().starts_with(b"FPAT"));
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&path, &bytes).unwrap();
    let tampered = store.match_attempts(&enrolled, now).unwrap();
    assert_eq!(tampered.consecutive_failures, MAX_FAILED_MATCHES);
    assert_eq!(tampered.retry_after_ms(now), attempts::LOCKOUT_BASE_MS);
    assert_eq!(store.match_attempts(&enrolled, now).unwrap(), tampered);
    // A sealed template file is not an attempt record, even under the right key.
    fs::copy(store.path(), &path).unwrap();
    assert_eq!(
        store
            .match_attempts(&enrolled, now)
            .unwrap()
            .consecutive_failures,
        MAX_FAILED_MATCHES
    );
    // Deleting the enrolment deletes the record.
    store.delete().unwrap();
    assert!(!path.exists());
}
