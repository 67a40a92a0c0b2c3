//! `facepay demo` end to end, running the real binary under the real challenge policy (every kind, 3–4 per
//! payment) with a simulated scripted shopper: the shopper pays and gets a receipt; the impostor (another person
//! who completes the challenges) is refused by the face match and the server records no payment; cancellation
//! stops the payment; a missing clips folder gives a clear message. (`--camera`'s answers, with or without the
//! feature, are checked by `record_replay.rs`.)
//!
//! Needs the shared development data (`FACEPAY_SHARED`, default `<workspace>/../shared`).

use facepay_qa::paths::default_shared_dir;
use std::path::PathBuf;
use std::process::{Command, Output};

fn clips() -> PathBuf {
    let shared = default_shared_dir();
    let clips = shared.join("data/clips");
    let liveness = shared.join("data/liveness");
    assert!(
        clips.join("live-turning").is_dir()
            && liveness.join("live-tranvanluyt").is_dir()
            && liveness.join("live-d6").is_dir(),
        "missing {}/live-turning or {}/live-tranvanluyt or live-d6 (the demo's shopper and impostors): set \
         FACEPAY_SHARED to the shared data folder",
        clips.display(),
        liveness.display()
    );
    clips
}

fn demo(extra: &[&str]) -> (Output, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_facepay"))
        .args(["demo", "--json", "--clips"])
        .arg(clips())
        .args(extra)
        .output()
        .expect("running facepay");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    let json = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {stdout}"));
    (out, json)
}

#[test]
fn demo_pays_and_prints_a_receipt() {
    let (out, json) = demo(&[]);
    assert!(out.status.success(), "{json}");
    assert_eq!(json["outcome"], "paid");
    let r = &json["receipt"];
    assert!(
        r["payment_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{r}"
    );
    assert_eq!(r["order_id"], "demo-order-0001");
    assert_eq!(r["amount_minor"], 1250);
    assert_eq!(r["liveness"], "passed");
    let (score, threshold) = (
        r["match_score"].as_f64().unwrap(),
        r["match_threshold"].as_f64().unwrap(),
    );
    assert!(score >= threshold, "{r}");
    // The server's full policy: 3–4 challenges chosen by the nonce (not a blink-only demo policy).
    assert!(
        r["challenges"]
            .as_array()
            .is_some_and(|c| (3..=4).contains(&c.len())),
        "{r}"
    );
    assert_eq!(json["server_payments"], 1);
    assert!((3..=5).contains(&json["enrolment"]["embeddings"].as_u64().unwrap()));
}

#[test]
fn demo_impostor_is_refused_and_nothing_is_paid() {
    let (out, json) = demo(&["--impostor"]);
    assert!(!out.status.success(), "{json}");
    assert_eq!(json["outcome"], "refused");
    // The impostor (another person: live-turning or live-d6, whichever can show the nonce's challenges) completes the
    // scripted challenges: the face match refuses them.
    assert_eq!(json["error"]["kind"], "not_matched", "{json}");
    assert_eq!(json["server_payments"], 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("SIMULATED"));
}

#[test]
fn demo_cancelled_payment_records_nothing() {
    let (out, json) = demo(&["--cancel-after", "10"]);
    assert!(!out.status.success(), "{json}");
    assert_eq!(json["error"]["kind"], "cancelled", "{json}");
    assert_eq!(json["server_payments"], 0);
}

#[test]
fn demo_without_clips_says_what_to_pass() {
    let missing = std::env::temp_dir().join("facepay-no-such-clips-folder");
    let out = Command::new(env!("CARGO_BIN_EXE_facepay"))
        .args(["demo", "--clips"])
        .arg(&missing)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--clips DIR") && err.contains(&*missing.to_string_lossy()),
        "{err}"
    );
}
