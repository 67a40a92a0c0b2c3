//! `facepay replay` and `facepay eval liveness`, running the real binary on the shared clips and stills:
//! replaying the same clip twice prints byte-identical JSON, the JUnit and contact-sheet files are written, and
//! the stills are classified with no live sample rejected and no attack accepted.
//!
//! Needs the shared development data (`FACEPAY_SHARED`, default `<workspace>/../shared`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn shared_data() -> PathBuf {
    let shared = std::env::var_os("FACEPAY_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let data = shared.join("data");
    assert!(
        data.join("clips/live-blink-7").is_dir() && data.join("stills").is_dir(),
        "missing {}/clips/live-blink-7 or stills: set FACEPAY_SHARED to the shared data folder",
        data.display()
    );
    data
}

fn facepay(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_facepay"))
        .args(args)
        .output()
        .expect("running facepay");
    assert!(
        out.status.success(),
        "facepay {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

#[test]
fn replay_is_byte_identical_and_writes_junit_and_sheet() {
    let clip = shared_data().join("clips/live-blink-7");
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("report.xml");
    let sheet = dir.path().join("sheet.png");
    let run = |with_files: bool| {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "replay".as_ref(),
            clip.as_os_str(),
            "--challenges".as_ref(),
            "blink,blink".as_ref(),
            "--json".as_ref(),
        ];
        if with_files {
            args.extend(["--junit".as_ref(), junit.as_os_str()]);
            args.extend(["--sheet".as_ref(), sheet.as_os_str()]);
        }
        facepay(&args)
    };
    let first = run(true);
    let second = run(false);
    assert_eq!(first, second, "two replays of the same clip differ");
    let json: serde_json::Value = serde_json::from_str(first.trim()).expect("one JSON object");
    assert_eq!(json["verdict"], "passed", "{json}");
    assert!(json["frames"].as_u64().unwrap() > 0, "{json}");
    assert!(json["passive_score"].is_number() || json["passive_score"].is_null());
    assert_eq!(
        json["challenges"].as_array().map(Vec::len),
        Some(2),
        "{json}"
    );

    let xml = std::fs::read_to_string(&junit).expect("JUnit file written");
    assert!(
        xml.contains("<testsuite") && xml.contains("<testcase"),
        "{xml}"
    );
    assert!(
        !xml.contains("<failure"),
        "a passing live clip reported a failure: {xml}"
    );
    let png = std::fs::read(&sheet).expect("contact sheet written");
    assert_eq!(
        &png[..8],
        b"\x89PNG\r\n\x1a\n",
        "contact sheet is not a PNG"
    );
}

#[test]
fn eval_liveness_on_the_stills_rejects_attacks_and_keeps_live() {
    let stills = shared_data().join("stills");
    let out = facepay(&[
        "eval".as_ref(),
        "liveness".as_ref(),
        stills.as_os_str(),
        "--json".as_ref(),
    ]);
    let json: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(json["live"], 2, "{json}");
    assert_eq!(json["attacks"], 2, "{json}");
    assert_eq!(json["bpcer"].as_f64(), Some(0.0), "{json}");
    assert_eq!(json["apcer"].as_f64(), Some(0.0), "{json}");
    assert_eq!(json["items"].as_array().map(Vec::len), Some(4), "{json}");
}

#[test]
fn eval_liveness_on_the_clips_with_the_challenges_each_holds() {
    let clips = shared_data().join("clips");
    let out = facepay(&[
        "eval".as_ref(),
        "liveness".as_ref(),
        clips.as_os_str(),
        "--clip-challenges".as_ref(),
        "live-blink-7=blink,blink".as_ref(),
        "--clip-challenges".as_ref(),
        "live-turning=turn_right,turn_left".as_ref(),
        "--challenges".as_ref(),
        "blink,blink".as_ref(),
        "--json".as_ref(),
    ]);
    let json: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    // The two live clips pass with what they hold; the phone replay fails whatever it is asked.
    assert_eq!(
        (json["live"].as_u64(), json["attacks"].as_u64()),
        (Some(2), Some(1)),
        "{json}"
    );
    assert_eq!(json["bpcer"].as_f64(), Some(0.0), "{json}");
    assert_eq!(json["apcer"].as_f64(), Some(0.0), "{json}");
    assert_eq!(
        json["apcer_by_type"]["replay"].as_f64(),
        Some(0.0),
        "{json}"
    );
}
