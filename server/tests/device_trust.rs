//! Device trust against the real server, on SQLite and PostgreSQL: registration challenge and proof of possession
//! (off-curve key, missing / wrong proof, reused challenge), attestation required by the policy and verified
//! (a test CA trusted through the policy stands in for Google's roots, since no real device key can sign the
//! proof here: the real samples are verified in `attestation_samples.rs`), device list, revocation, re-keying after
//! a reinstall, the per-account device limit, and the evidence policy at pay time.

mod common;

use common::{Backend, Env, on_each_backend, payload_for, signed};
use facepay_core::checkout::protocol::registration_message;
use facepay_core::checkout::signer::{DeviceSigner, SoftwareSigner};
use facepay_core::checkout::wire::{ErrorCode, b64_encode};
use facepay_server::ServerConfig;
use serde_json::{Value, json};

/// A test attestation CA and the PEM file the policy trusts it through.
struct TestCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    _dir: tempfile::TempDir,
    pem_path: std::path::PathBuf,
}

fn test_ca() -> TestCa {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, "FacePay test attestation root");
    let issuer = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pem_path = dir.path().join("test-root.pem");
    std::fs::write(&pem_path, issuer.pem()).unwrap();
    TestCa { issuer, _dir: dir, pem_path }
}

/// The package and signing digest the test policy allows.
const PACKAGE: &str = "dev.facepay.shop";
const DIGEST: [u8; 32] = [0x5a; 32];

/// A KeyDescription (KeyMint 200) for `challenge` at `level` (0 software, 1 TEE, 2 StrongBox), with the key
/// properties in the list of that level and attestationApplicationId for `package`.
fn key_description(challenge: &[u8], level: i64, package: &str) -> Vec<u8> {
    use yasna::Tag;
    let app_id = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_set_of(|w| {
                w.next().write_sequence(|w| {
                    w.next().write_bytes(package.as_bytes());
                    w.next().write_u32(1);
                });
            });
            w.next().write_set_of(|w| w.next().write_bytes(&DIGEST));
        })
    });
    let key_properties = |w: yasna::DERWriterSeq<'_>| {
        w.next().write_tagged(Tag::context(1), |w| w.write_set_of(|w| w.next().write_u32(2)));
        w.next().write_tagged(Tag::context(2), |w| w.write_u32(3));
        w.next().write_tagged(Tag::context(10), |w| w.write_u32(1));
        w.next().write_tagged(Tag::context(702), |w| w.write_u32(0));
        w.next().write_tagged(Tag::context(704), |w| {
            w.write_sequence(|w| {
                w.next().write_bytes(&[7; 32]);
                w.next().write_bool(true);
                w.next().write_enum(0);
                w.next().write_bytes(&[9; 32]);
            })
        });
    };
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_u32(200);
            w.next().write_enum(level);
            w.next().write_u32(200);
            w.next().write_enum(level);
            w.next().write_bytes(challenge);
            w.next().write_bytes(b"");
            w.next().write_sequence(|w| {
                w.next().write_tagged(Tag::context(709), |w| w.write_bytes(&app_id));
                if level == 0 {
                    key_properties(w);
                }
            });
            w.next().write_sequence(|w| {
                if level != 0 {
                    key_properties(w);
                }
            });
        })
    })
}

/// An attestation chain `[leaf, root]` for `signer`'s key, issued by `ca` with `description` as the extension.
fn android_chain(ca: &TestCa, signer: &SoftwareSigner, description: Vec<u8>, expired: bool) -> Vec<Vec<u8>> {
    let key = rcgen::KeyPair::try_from(signer.to_pkcs8().as_slice()).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "Android Keystore Key");
    params.custom_extensions =
        vec![rcgen::CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 11129, 2, 1, 17], description)];
    if expired {
        params.not_before = rcgen::date_time_ymd(2019, 1, 1);
        params.not_after = rcgen::date_time_ymd(2020, 1, 1);
    }
    let leaf = params.signed_by(&key, &ca.issuer).unwrap();
    vec![leaf.der().to_vec(), ca.issuer.der().to_vec()]
}

fn android_attestation(chain: &[Vec<u8>]) -> Value {
    json!({"format": "android_key", "certificate_chain": chain.iter().map(|c| b64_encode(c)).collect::<Vec<_>>()})
}

/// The policy of the attestation tests: attestation required, TEE or better, one app, the test CA trusted.
fn attesting(ca: &TestCa) -> impl FnOnce(&mut ServerConfig) + '_ {
    move |c| {
        let p = &mut c.policy.attestation;
        p.required = true;
        p.android_apps = vec![facepay_server::attestation::android::AndroidApp {
            package: PACKAGE.to_owned(),
            signing_digests: vec![common::hex(&DIGEST)],
        }];
        p.extra_android_roots = vec![ca.pem_path.clone()];
    }
}

#[tokio::test]
async fn registration_requires_a_valid_point_a_fresh_challenge_and_proof_of_possession() {
    on_each_backend(|backend| async move {
        let env = Env::start(backend, |_| {}).await;
        let signer = SoftwareSigner::generate().unwrap();
        // A well-formed request registers.
        let token = env.enrollment("shopper-1").await;
        let ch = env.registration_challenge(&token).await;
        let ok = env.register_with(&token, "dev-1", &signer.public_key(), &ch, &signer.sign(&registration_message(&ch, "dev-1", &signer.public_key())).unwrap(), None).await;
        assert_eq!(ok.status, 201, "{}", String::from_utf8_lossy(&ok.bytes));
        // The challenge is single-use.
        let token = env.enrollment("shopper-1").await;
        let proof = signer.sign(&registration_message(&ch, "dev-2", &signer.public_key())).unwrap();
        env.register_with(&token, "dev-2", &signer.public_key(), &ch, &proof, None).await
            .assert_error(403, ErrorCode::RegistrationChallengeInvalid);
        // A challenge issued for another enrolment token does not work with this one.
        let other_token = env.enrollment("shopper-2").await;
        let other_ch = env.registration_challenge(&other_token).await;
        let proof = signer.sign(&registration_message(&other_ch, "dev-2", &signer.public_key())).unwrap();
        env.register_with(&token, "dev-2", &signer.public_key(), &other_ch, &proof, None).await
            .assert_error(403, ErrorCode::RegistrationChallengeInvalid);
        // Off-curve point (the P-256 generator's x with y + 1): refused before anything is stored.
        let ch = env.registration_challenge(&token).await;
        let mut off_curve = signer.public_key();
        off_curve[64] ^= 1;
        env.register_with(&token, "dev-2", &off_curve, &ch, &proof, None).await
            .assert_error(400, ErrorCode::InvalidPublicKey);
        // Missing proof, and a proof by another key, and a proof over another device id.
        let body = json!({"enrollment_token": token, "device_id": "dev-2", "public_key": b64_encode(&signer.public_key()), "challenge": b64_encode(&ch)});
        env.post("/v1/devices", None, &[], &body).await.assert_error(403, ErrorCode::ProofInvalid);
        let stranger = SoftwareSigner::generate().unwrap();
        let wrong = stranger.sign(&registration_message(&ch, "dev-2", &signer.public_key())).unwrap();
        env.register_with(&token, "dev-2", &signer.public_key(), &ch, &wrong, None).await
            .assert_error(403, ErrorCode::ProofInvalid);
        let wrong = signer.sign(&registration_message(&ch, "dev-3", &signer.public_key())).unwrap();
        env.register_with(&token, "dev-2", &signer.public_key(), &ch, &wrong, None).await
            .assert_error(403, ErrorCode::ProofInvalid);
        // Missing challenge.
        let body = json!({"enrollment_token": token, "device_id": "dev-2", "public_key": b64_encode(&signer.public_key()), "proof": b64_encode(&wrong)});
        env.post("/v1/devices", None, &[], &body).await.assert_error(403, ErrorCode::RegistrationChallengeInvalid);
        // None of the refusals consumed the enrolment token: it still registers dev-2.
        let ch = env.registration_challenge(&token).await;
        let proof = signer.sign(&registration_message(&ch, "dev-2", &signer.public_key())).unwrap();
        let a = env.register_with(&token, "dev-2", &signer.public_key(), &ch, &proof, None).await;
        assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.bytes));
        // A used enrolment token gets no registration challenge.
        let a = env.post("/v1/devices/challenge", None, &[], &json!({"enrollment_token": token})).await;
        a.assert_error(401, ErrorCode::InvalidEnrollmentToken);
    })
    .await;
}

#[tokio::test]
async fn attestation_is_verified_against_the_policy() {
    let ca = test_ca();
    let ca = &ca;
    on_each_backend(|backend: Backend| async move {
        let env = Env::start(backend, attesting(ca)).await;
        let register = |signer: SoftwareSigner, device: &'static str, make: Box<dyn Fn(&[u8; 32], &SoftwareSigner) -> Option<Value>>| {
            let env = &env;
            async move {
                let token = env.enrollment("shopper-1").await;
                let ch = env.registration_challenge(&token).await;
                let pk = signer.public_key();
                let proof = signer.sign(&registration_message(&ch, device, &pk)).unwrap();
                env.register_with(&token, device, &pk, &ch, &proof, make(&ch, &signer)).await
            }
        };
        // Required but absent.
        register(SoftwareSigner::generate().unwrap(), "dev-none", Box::new(|_, _| None)).await
            .assert_error(403, ErrorCode::AttestationRequired);
        // Valid TEE attestation for the allowed app: registered, and listed with what it proved.
        let a = register(SoftwareSigner::generate().unwrap(), "dev-tee", Box::new(move |ch, s| {
            Some(android_attestation(&android_chain(ca, s, key_description(ch, 1, PACKAGE), false)))
        })).await;
        assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.bytes));
        let list = env.get_with("/v1/accounts/shopper-1/devices", Some(&env.merchant.api_key)).await;
        assert_eq!(list.status, 200);
        let devices = list.json()["devices"].clone();
        assert_eq!(devices[0]["device_id"], "dev-tee");
        assert_eq!(devices[0]["attestation"], "android_key");
        assert_eq!(devices[0]["security_level"], "tee");
        assert_eq!(devices[0]["app_id"], PACKAGE);
        // Negatives: each refused with its code, none registers.
        let cases: Vec<(&'static str, ErrorCode, Box<dyn Fn(&[u8; 32], &SoftwareSigner) -> Option<Value>>)> = vec![
            ("wrong challenge", ErrorCode::AttestationInvalid, Box::new(move |_, s| {
                Some(android_attestation(&android_chain(ca, s, key_description(&[0; 32], 1, PACKAGE), false)))
            })),
            ("software level", ErrorCode::AttestationRejected, Box::new(move |ch, s| {
                Some(android_attestation(&android_chain(ca, s, key_description(ch, 0, PACKAGE), false)))
            })),
            ("wrong package", ErrorCode::AttestationRejected, Box::new(move |ch, s| {
                Some(android_attestation(&android_chain(ca, s, key_description(ch, 2, "com.evil.clone"), false)))
            })),
            ("expired leaf", ErrorCode::AttestationInvalid, Box::new(move |ch, s| {
                Some(android_attestation(&android_chain(ca, s, key_description(ch, 1, PACKAGE), true)))
            })),
            ("broken chain", ErrorCode::AttestationInvalid, Box::new(move |ch, s| {
                let chain = android_chain(ca, s, key_description(ch, 1, PACKAGE), false);
                Some(android_attestation(&chain[..1]))
            })),
            ("tampered extension", ErrorCode::AttestationInvalid, Box::new(move |ch, s| {
                let mut chain = android_chain(ca, s, key_description(ch, 1, PACKAGE), false);
                let at = chain[0].windows(PACKAGE.len()).position(|w| w == PACKAGE.as_bytes()).unwrap();
                chain[0][at] ^= 0x20;
                Some(android_attestation(&chain))
            })),
            ("another key's attestation", ErrorCode::AttestationInvalid, Box::new(move |ch, _| {
                let other = SoftwareSigner::generate().unwrap();
                Some(android_attestation(&android_chain(ca, &other, key_description(ch, 1, PACKAGE), false)))
            })),
            ("untrusted root", ErrorCode::AttestationInvalid, Box::new(move |ch, s| {
                let stranger = test_ca();
                Some(android_attestation(&android_chain(&stranger, s, key_description(ch, 1, PACKAGE), false)))
            })),
        ];
        for (i, (name, code, make)) in cases.into_iter().enumerate() {
            let device: &'static str = Box::leak(format!("dev-neg-{i}").into_boxed_str());
            let a = register(SoftwareSigner::generate().unwrap(), device, make).await;
            let message = String::from_utf8_lossy(&a.bytes).into_owned();
            assert_eq!((a.status, a.json()["error"]["code"].as_str().map(str::to_owned)), (403, Some(code.as_str().to_owned())), "{name}: {message}");
        }
        let list = env.get_with("/v1/accounts/shopper-1/devices", Some(&env.merchant.api_key)).await;
        assert_eq!(list.json()["devices"].as_array().unwrap().len(), 1, "only dev-tee is registered");
    })
    .await;
}

#[tokio::test]
async fn revoked_devices_cannot_pay_reinstalls_rekey_and_the_account_limit_holds() {
    on_each_backend(|backend| async move {
        let env = Env::start(backend, |c| c.policy.devices.max_per_account = 2).await;
        let dev = env.device("dev-1").await;
        let order = env.order("o-1", 500, "EUR").await;
        let ch = env.challenge(&order.client_token, &dev.id).await;
        let (bytes, sig) = signed(&payload_for(&ch, &dev.id, 1), &dev);
        // Revoke: the signed payment is refused, and so is a new challenge.
        let a = env.post("/v1/devices/dev-1/revoke", Some(&env.merchant.api_key), &[], &json!({})).await;
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.bytes));
        env.pay_rejected(&order.client_token, "k-1", &bytes, &sig, 403, ErrorCode::DeviceRevoked).await;
        env.post("/v1/checkout/challenge", Some(&order.client_token), &[], &json!({"device_id": "dev-1"})).await
            .assert_error(403, ErrorCode::DeviceRevoked);
        // Unknown device, and another merchant's API key, cannot revoke.
        env.post("/v1/devices/nope/revoke", Some(&env.merchant.api_key), &[], &json!({})).await
            .assert_error(404, ErrorCode::NotFound);
        env.post("/v1/devices/dev-1/revoke", Some("fpk_wrong"), &[], &json!({})).await
            .assert_error(401, ErrorCode::Unauthorized);
        // Reinstall: the same device id re-registers with a new key (same account); the old key is dead.
        let reinstalled = env.device("dev-1").await;
        let ch = env.challenge(&order.client_token, "dev-1").await;
        let (bytes, sig) = signed(&payload_for(&ch, "dev-1", 1), &dev);
        env.pay_rejected(&order.client_token, "k-2", &bytes, &sig, 403, ErrorCode::BadSignature).await;
        let (bytes, sig) = signed(&payload_for(&ch, "dev-1", 1), &reinstalled);
        env.pay_ok(&order.client_token, "k-3", &bytes, &sig).await;
        // Another account cannot take the device id over.
        let signer = SoftwareSigner::generate().unwrap();
        env.register_account("shopper-2", "dev-1", &signer).await.assert_error(409, ErrorCode::DeviceExists);
        // Device limit: shopper-1 has dev-1; dev-2 fits, dev-3 does not.
        env.device("dev-2").await;
        let signer = SoftwareSigner::generate().unwrap();
        env.register_account("shopper-1", "dev-3", &signer).await.assert_error(409, ErrorCode::DeviceLimitReached);
        let list = env.get_with("/v1/accounts/shopper-1/devices", Some(&env.merchant.api_key)).await;
        let ids: Vec<String> = list.json()["devices"].as_array().unwrap().iter().map(|d| d["device_id"].as_str().unwrap().to_owned()).collect();
        assert_eq!(ids, ["dev-1", "dev-2"]);
    })
    .await;
}

#[tokio::test]
async fn evidence_below_the_policy_is_refused_with_stable_codes() {
    on_each_backend(|backend| async move {
        let env = Env::start(backend, |c| {
            c.policy.evidence.min_match_score = 0.5;
            c.policy.evidence.model_versions = vec!["detector@test".to_owned()];
            c.policy.evidence.min_challenges = 1;
        })
        .await;
        let dev = env.device("dev-1").await;
        let order = env.order("o-1", 500, "EUR").await;
        type Tamper = fn(&mut facepay_core::checkout::protocol::Evidence);
        let cases: [(&str, Tamper, ErrorCode); 4] = [
            ("no passive score", |e| e.antispoof_score = None, ErrorCode::PassiveCheckMissing),
            ("low match score", |e| e.match_score = 0.49, ErrorCode::MatchScoreTooLow),
            ("model not allowed", |e| e.model_versions.push("embedder@unknown".into()), ErrorCode::ModelNotAllowed),
            ("NaN match score", |e| e.match_score = f32::NAN, ErrorCode::MatchScoreTooLow),
        ];
        for (i, (name, tamper, code)) in cases.into_iter().enumerate() {
            let ch = env.challenge(&order.client_token, &dev.id).await;
            let mut payload = payload_for(&ch, &dev.id, 1);
            tamper(&mut payload.evidence);
            let (bytes, sig) = signed(&payload, &dev);
            let before = env.counts().await;
            let a = env.pay(&order.client_token, &format!("k-{i}"), &bytes, &sig).await;
            assert_eq!(a.json()["error"]["code"].as_str(), Some(code.as_str()), "{name}");
            assert_eq!(a.status, 403, "{name}");
            assert_eq!(env.counts().await, before, "{name}");
        }
        // The passive check explicitly waived: the same evidence without the score pays.
        drop(env);
    })
    .await;
    on_each_backend(|backend| async move {
        let env = Env::start(backend, |c| c.policy.evidence.require_passive = false).await;
        let dev = env.device("dev-1").await;
        let order = env.order("o-1", 500, "EUR").await;
        let ch = env.challenge(&order.client_token, &dev.id).await;
        let mut payload = payload_for(&ch, &dev.id, 1);
        payload.evidence.antispoof_score = None;
        let (bytes, sig) = signed(&payload, &dev);
        env.pay_ok(&order.client_token, "k-1", &bytes, &sig).await;
    })
    .await;
}
