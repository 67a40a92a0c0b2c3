//! `facepay demo --record DIR` then `facepay replay DIR`, running the real binary on the shared clips: the
//! recording holds the payment session's frames and its clip.json (timestamps, nonce, challenges, guidance,
//! verdict), and replaying it gives the same verdict, challenges, frame count and guidance timeline, byte-identical
//! twice. Also the webcam commands' answers in this build (with or without the `camera` feature).
//!
//! Needs the shared development data (`FACEPAY_SHARED`, default `<workspace>/../shared`).

use std::path::PathBuf;
use std::process::{Command, Output};

use facepay_qa::paths::default_shared_dir;
use serde_json::Value;

fn clips() -> PathBuf {
    let shared = default_shared_dir();
    let clips = shared.join("data/clips");
    assert!(
        clips.join("live-blink-7").is_dir(),
        "missing {}/live-blink-7: set FACEPAY_SHARED to the shared data folder",
        clips.display()
    );
    clips
}

fn facepay(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_facepay"))
        .args(args)
        .output()
        .expect("running facepay")
}

fn stdout_json(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn recorded_payment_replays_to_the_same_verdict_challenges_and_frames() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("payment");
    let clips = clips();
    let out = facepay(&[
        "demo".as_ref(),
        "--json".as_ref(),
        "--clips".as_ref(),
        clips.as_os_str(),
        "--record".as_ref(),
        rec.as_os_str(),
    ]);
    let demo = stdout_json(&out);
    assert!(out.status.success(), "{demo}");
    assert_eq!(demo["outcome"], "paid", "{demo}");
    assert_eq!(demo["recording"], rec.to_str().unwrap());

    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(rec.join("clip.json")).unwrap()).unwrap();
    let frames = info["frames"].as_u64().expect("frames in clip.json");
    let jpgs = std::fs::read_dir(&rec)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "jpg")
        })
        .count() as u64;
    assert_eq!(jpgs, frames);
    assert_eq!(info["timestamps"].as_array().unwrap().len() as u64, frames);
    let verdict = &info["verdict"];
    assert_eq!(verdict["outcome"], "passed", "{info}");
    assert_eq!(verdict["frames"].as_u64(), Some(frames));
    assert_eq!(verdict["nonce"], info["nonce"]);
    assert_eq!(info["nonce"].as_str().map(str::len), Some(64));
    // The payment's receipt and the recording describe the same session.
    assert_eq!(demo["receipt"]["frames"].as_u64(), Some(frames));
    assert_eq!(demo["receipt"]["challenges"], info["challenges"]);
    let recorded_challenges: Vec<Value> = verdict["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["challenge"].clone())
        .collect();
    assert_eq!(Value::from(recorded_challenges), info["challenges"]);
    assert!(info["guidance"].as_array().is_some_and(|g| g.len() >= 2));

    let replay = || {
        let out = facepay(&["replay".as_ref(), rec.as_os_str(), "--json".as_ref()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let (first, second) = (replay(), replay());
    assert_eq!(first, second, "two replays of the recording differ");
    let report: Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(report["verdict"], verdict["outcome"], "{report}");
    assert_eq!(report["frames"].as_u64(), Some(frames));
    assert_eq!(report["clip_frames"].as_u64(), Some(frames));
    assert_eq!(report["nonce"], info["nonce"]);
    assert_eq!(report["challenges"], verdict["challenges"], "{report}");
    assert_eq!(report["timeline"], info["guidance"]);

    // A folder that already holds a recording is refused, and nothing is paid.
    let out = facepay(&[
        "demo".as_ref(),
        "--json".as_ref(),
        "--clips".as_ref(),
        clips.as_os_str(),
        "--record".as_ref(),
        rec.as_os_str(),
    ]);
    let again = stdout_json(&out);
    assert!(!out.status.success());
    assert_eq!(again["outcome"], "refused");
    assert_eq!(again["server_payments"], 0);
    assert!(
        again["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("already holds a recording")),
        "{again}"
    );
}

#[test]
fn webcam_commands_answer_clearly_in_this_build() {
    let listed = facepay(&["cameras".as_ref(), "--json".as_ref()]);
    if cfg!(feature = "camera") {
        assert!(listed.status.success());
        let cameras = stdout_json(&listed)["cameras"].clone();
        let cameras = cameras.as_array().expect("a camera list");
        if cameras.is_empty() {
            let demo = facepay(&["demo".as_ref(), "--camera".as_ref()]);
            let err = String::from_utf8_lossy(&demo.stderr);
            assert!(
                !demo.status.success() && err.contains("no camera found"),
                "{err}"
            );
        } else {
            // A machine with a webcam: every device is listed with its index and name.
            assert!(
                cameras
                    .iter()
                    .all(|c| c["index"].is_u64() && c["name"].is_string())
            );
        }
    } else {
        let demo = facepay(&["demo".as_ref(), "--camera".as_ref()]);
        assert!(!listed.status.success() && !demo.status.success());
        for out in [&listed, &demo] {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("webcam support") && err.contains("--features camera"),
                "{err}"
            );
        }
    }
}
