//! Real attestation samples (see `tests/data/attestation/SOURCES.md`) verify with the server's verifiers at a time
//! inside their validity, against the pinned published roots; every negative (wrong challenge, wrong app,
//! software-only level, broken chain, expired certificate, tampered extension, untrusted root, replayed assertion)
//! is refused with its own error kind.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use facepay_server::attestation::android::{self, AndroidApp, AndroidRequirements};
use facepay_server::attestation::apple::{self, AppleRequirements, Environment};
use facepay_server::attestation::{AttestationError, Roots, SecurityLevel, pem_certificates};

/// Inside the validity of every certificate of the two Android chains (2023-02-19 – 2023-03-24).
const ANDROID_TIME: i64 = 1_677_628_800; // 2023-03-01T00:00:00Z
/// After the Droid CA3 certificate expired.
const ANDROID_EXPIRED: i64 = 1_680_307_200; // 2023-04-01T00:00:00Z
/// The signing-certificate digest the Android samples' app carries.
const SAMPLE_DIGEST: &str = "68856d1d06f637d6255face5b224db43a9514ace538bb1548b844480fcd85c87";

fn data(path: &str) -> String {
    let full = format!("{}/tests/data/attestation/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn android_chain(file: &str) -> Vec<Vec<u8>> {
    pem_certificates(&data(&format!("android/{file}"))).unwrap()
}

fn any_app(level: SecurityLevel) -> AndroidRequirements<'static> {
    AndroidRequirements {
        min_level: level,
        apps: &[],
        require_verified_boot: true,
    }
}

const ANDROID_SAMPLES: [&str; 2] = ["normal_cert_chain.pem", "cert_chain_with_attest_keys.pem"];

#[test]
fn real_android_chains_verify_and_report_their_key_description() {
    let roots = Roots::published();
    let apps = [AndroidApp {
        package: "com.google.attestationexample".to_owned(),
        signing_digests: vec![SAMPLE_DIGEST.to_owned()],
    }];
    let requirements = AndroidRequirements {
        min_level: SecurityLevel::Tee,
        apps: &apps,
        require_verified_boot: true,
    };
    for sample in ANDROID_SAMPLES {
        let chain = android_chain(sample);
        let got = android::verify(&chain, &roots.android, b"challenge", None, &requirements, ANDROID_TIME)
            .unwrap_or_else(|e| panic!("{sample}: {e}"));
        assert_eq!(got.security_level, SecurityLevel::Tee, "{sample}");
        assert_eq!(got.keymaster_level, SecurityLevel::Tee, "{sample}");
        assert_eq!(got.attestation_version, 200, "{sample}");
        assert_eq!(got.packages, ["com.google.attestationexample"], "{sample}");
        assert_eq!(got.signing_digests, [SAMPLE_DIGEST], "{sample}");
        assert_eq!(got.boot_state, Some(android::BootState::Verified), "{sample}");
        assert_eq!(got.device_locked, Some(true), "{sample}");
        assert_eq!(got.public_key.len(), 65, "{sample}");
        // The attested key is the leaf's: naming it is accepted, naming another is not.
        let key = got.public_key.clone();
        android::verify(&chain, &roots.android, b"challenge", Some(&key), &requirements, ANDROID_TIME).unwrap();
        let mut other = key.clone();
        other[10] ^= 1;
        assert_eq!(
            android::verify(&chain, &roots.android, b"challenge", Some(&other), &requirements, ANDROID_TIME),
            Err(AttestationError::KeyMismatch)
        );
    }
}

#[test]
fn android_negatives_are_refused() {
    let roots = Roots::published();
    for sample in ANDROID_SAMPLES {
        let chain = android_chain(sample);
        let check = |chain: &[Vec<u8>], challenge: &[u8], req: &AndroidRequirements<'_>, at: i64| {
            android::verify(chain, &roots.android, challenge, None, req, at)
        };
        let tee = any_app(SecurityLevel::Tee);
        // Wrong challenge.
        assert_eq!(check(&chain, b"challengf", &tee, ANDROID_TIME), Err(AttestationError::ChallengeMismatch), "{sample}");
        // Wrong package, and the right package with a wrong signing digest.
        for (package, digest) in [("com.example.shop", SAMPLE_DIGEST), ("com.google.attestationexample", &"00".repeat(32)[..])] {
            let apps = [AndroidApp { package: package.to_owned(), signing_digests: vec![digest.to_owned()] }];
            let req = AndroidRequirements { apps: &apps, ..tee.clone() };
            assert!(matches!(check(&chain, b"challenge", &req, ANDROID_TIME), Err(AttestationError::AppNotAllowed(_))), "{sample} {package}");
        }
        // A TEE key where StrongBox is required.
        assert_eq!(
            check(&chain, b"challenge", &any_app(SecurityLevel::StrongBox), ANDROID_TIME),
            Err(AttestationError::SecurityLevel { found: "tee", required: "strong_box" }),
            "{sample}"
        );
        // Expired (Droid CA3 ended 2023-03-24), and before the intermediates existed.
        assert!(matches!(check(&chain, b"challenge", &tee, ANDROID_EXPIRED), Err(AttestationError::Expired { .. })), "{sample}");
        assert!(matches!(check(&chain, b"challenge", &tee, 1_600_000_000), Err(AttestationError::Expired { .. })), "{sample}");
        // Broken chain: an intermediate left out.
        let mut broken = chain.clone();
        broken.remove(1);
        assert!(matches!(check(&broken, b"challenge", &tee, ANDROID_TIME), Err(AttestationError::ChainBroken { index: 0 })), "{sample}");
        // Tampered extension: one byte of the leaf's challenge changed (the leaf's signature no longer verifies).
        let mut tampered = chain.clone();
        let at = find(&tampered[0], b"challenge");
        tampered[0][at + 3] ^= 0x01;
        assert_eq!(check(&tampered, b"chbllenge", &tee, ANDROID_TIME), Err(AttestationError::ChainBroken { index: 0 }), "{sample}");
        // A chain ending at a root that is not pinned (the Apple root is pinned for Apple only).
        assert_eq!(
            android::verify(&chain, &roots.apple, b"challenge", None, &tee, ANDROID_TIME),
            Err(AttestationError::UntrustedRoot),
            "{sample}"
        );
        // Only the leaf (no path to a root).
        assert!(check(&chain[..1], b"challenge", &tee, ANDROID_TIME).is_err(), "{sample}");
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).position(|w| w == needle).expect("needle present")
}

/// One App Attest sample.
struct AppleSample {
    name: &'static str,
    json: serde_json::Value,
    at: i64,
    expired_at: i64,
}

impl AppleSample {
    fn bytes(&self, field: &str) -> Vec<u8> {
        let text = self.json[field].as_str().or_else(|| self.json["assertion"][field].as_str()).expect(field);
        STANDARD.decode(text).expect("base64")
    }
    fn assertion(&self, field: &str) -> Vec<u8> {
        STANDARD.decode(self.json["assertion"][field].as_str().expect(field)).expect("base64")
    }
    fn app_id(&self) -> String {
        self.json["app_id"].as_str().unwrap().to_owned()
    }
}

fn apple_samples() -> Vec<AppleSample> {
    [
        ("ios-14.4", 1_611_404_013, 1_612_137_600), // 2021-01-23T12:13:33Z; 2021-02-01
        ("ios-14.2", 1_605_996_780, 1_606_780_800), // 2020-11-21T22:13:00Z; 2020-12-01
    ]
    .into_iter()
    .map(|(name, at, expired_at)| AppleSample {
        name,
        json: serde_json::from_str(&data(&format!("apple/{name}.json"))).unwrap(),
        at,
        expired_at,
    })
    .collect()
}

const DEVELOPMENT_OK: AppleRequirements<'static> = AppleRequirements {
    app_ids: &[],
    allow_development: true,
};

#[test]
fn real_app_attest_objects_and_assertions_verify() {
    let roots = Roots::published();
    for s in apple_samples() {
        let app_ids = [s.app_id()];
        let req = AppleRequirements { app_ids: &app_ids, allow_development: true };
        let got = apple::verify_attestation(
            &s.bytes("attestation_b64"),
            &s.bytes("key_id_b64"),
            &s.bytes("client_data_b64"),
            &s.app_id(),
            &roots.apple,
            &req,
            s.at,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", s.name));
        assert_eq!(got.environment, Environment::Development, "{}", s.name);
        assert_eq!(got.counter, 0, "{}", s.name);
        assert_eq!(got.app_id, s.app_id());
        let counter = apple::verify_assertion(
            &s.assertion("assertion_b64"),
            &s.assertion("client_data_b64"),
            &got.public_key,
            &s.app_id(),
            0,
        )
        .unwrap_or_else(|e| panic!("{} assertion: {e}", s.name));
        assert_eq!(counter, 1, "{}", s.name);
    }
}

#[test]
fn app_attest_negatives_are_refused() {
    let roots = Roots::published();
    for s in apple_samples() {
        let attestation = s.bytes("attestation_b64");
        let key_id = s.bytes("key_id_b64");
        let client_data = s.bytes("client_data_b64");
        let app_id = s.app_id();
        let verify = |att: &[u8], key_id: &[u8], client_data: &[u8], app_id: &str, req: &AppleRequirements<'_>, at: i64| {
            apple::verify_attestation(att, key_id, client_data, app_id, &roots.apple, req, at)
        };
        let name = s.name;
        // Wrong challenge (client data).
        assert_eq!(verify(&attestation, &key_id, b"other", &app_id, &DEVELOPMENT_OK, s.at), Err(AttestationError::ChallengeMismatch), "{name}");
        // Wrong app: another App ID, or one not on the allow-list.
        assert!(matches!(verify(&attestation, &key_id, &client_data, "6MURL8TA57.com.example.other", &DEVELOPMENT_OK, s.at), Err(AttestationError::AppNotAllowed(_))), "{name}");
        let others = ["TEAM.com.example.shop".to_owned()];
        let req = AppleRequirements { app_ids: &others, allow_development: true };
        assert!(matches!(verify(&attestation, &key_id, &client_data, &app_id, &req, s.at), Err(AttestationError::AppNotAllowed(_))), "{name}");
        // Development keys refused unless allowed.
        let production_only = AppleRequirements { app_ids: &[], allow_development: false };
        assert!(matches!(verify(&attestation, &key_id, &client_data, &app_id, &production_only, s.at), Err(AttestationError::Environment(_))), "{name}");
        // Wrong key id.
        let mut other_key = key_id.clone();
        other_key[0] ^= 1;
        assert_eq!(verify(&attestation, &other_key, &client_data, &app_id, &DEVELOPMENT_OK, s.at), Err(AttestationError::KeyMismatch), "{name}");
        // Expired leaf (valid three days).
        assert!(matches!(verify(&attestation, &key_id, &client_data, &app_id, &DEVELOPMENT_OK, s.expired_at), Err(AttestationError::Expired { index: 0 })), "{name}");
        // Tampered certificate: a byte of the leaf's nonce extension changed, so its signature fails.
        let mut tampered = attestation.clone();
        let at = find(&tampered, &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x63, 0x64, 0x08, 0x02]);
        tampered[at + 20] ^= 0x01;
        assert_eq!(verify(&tampered, &key_id, &client_data, &app_id, &DEVELOPMENT_OK, s.at), Err(AttestationError::ChainBroken { index: 0 }), "{name}");
        // Tampered authData (the counter byte): the nonce no longer matches.
        let mut tampered = attestation.clone();
        let len = tampered.len();
        tampered[len - 164 + 36] ^= 0x01;
        assert_eq!(verify(&tampered, &key_id, &client_data, &app_id, &DEVELOPMENT_OK, s.at), Err(AttestationError::ChallengeMismatch), "{name}");
        // Untrusted root.
        assert_eq!(
            apple::verify_attestation(&attestation, &key_id, &client_data, &app_id, &roots.android, &DEVELOPMENT_OK, s.at),
            Err(AttestationError::UntrustedRoot),
            "{name}"
        );
        // Not CBOR.
        assert!(matches!(verify(b"not cbor", &key_id, &client_data, &app_id, &DEVELOPMENT_OK, s.at), Err(AttestationError::Malformed(_))), "{name}");
        // Assertions: replayed counter, other client data, other app.
        let key = verify(&attestation, &key_id, &client_data, &app_id, &DEVELOPMENT_OK, s.at).unwrap().public_key;
        let assertion = s.assertion("assertion_b64");
        let signed = s.assertion("client_data_b64");
        assert!(matches!(apple::verify_assertion(&assertion, &signed, &key, &app_id, 1), Err(AttestationError::Assertion(_))), "{name}");
        assert!(matches!(apple::verify_assertion(&assertion, b"other", &key, &app_id, 0), Err(AttestationError::Assertion(_))), "{name}");
        assert!(matches!(apple::verify_assertion(&assertion, &signed, &key, "TEAM.other", 0), Err(AttestationError::Assertion(_))), "{name}");
    }
}
