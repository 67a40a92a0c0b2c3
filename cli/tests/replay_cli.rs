//! `facepay replay` and `facepay eval liveness`, running the real binary on the shared clips and stills:
//! replaying the same clip twice prints byte-identical JSON, the JUnit and contact-sheet files are written, the
//! stills are classified with no live sample rejected and no attack accepted, and sessions started later in a clip
//! (`--from`, `--starts-every`) are reported from their start, the clip running out being no verdict.
//!
//! Needs the shared development data (`FACEPAY_SHARED`, default `<workspace>/../shared`).

use facepay_qa::paths::default_shared_dir;
use std::path::PathBuf;
use std::process::Command;

fn shared_data() -> PathBuf {
    let shared = default_shared_dir();
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

#[test]
fn replay_from_a_later_frame_and_the_clip_running_out() {
    let clip = shared_data().join("clips/live-blink-7");
    let replay = |from: &str| {
        Command::new(env!("CARGO_BIN_EXE_facepay"))
            .args(["replay".as_ref(), clip.as_os_str()])
            .args(["--challenges", "blink,blink", "--json", "--from", from])
            .output()
            .expect("running facepay")
    };
    // From frame 40 the clip still holds two blinks: the session passes, counting frames from its start.
    let out = replay("40");
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(json["verdict"], "passed", "{json}");
    assert_eq!(json["start_frame"], 40, "{json}");
    assert_eq!(json["clip_ended"], false, "{json}");
    assert!(json["frames"].as_u64().unwrap() < 154 - 40, "{json}");
    // From the last frame nothing can be decided: `timed_out` because the clip ended, not the session.
    let out = replay("153");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(
        (&json["verdict"], &json["clip_ended"], &json["frames"]),
        (&"timed_out".into(), &true.into(), &1.into()),
        "{json}"
    );
    // Past the end: a clear error, no JSON.
    let out = replay("154");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("154 frames"), "{stderr}");
}

#[test]
fn eval_liveness_starts_every_counts_only_decided_later_sessions() {
    // One clip (a link to it) so the run stays short: sessions from frames 0, 60 and 120 of live-blink-7.
    let dir = tempfile::tempdir().unwrap();
    let clip = shared_data().join("clips/live-blink-7");
    std::os::unix::fs::symlink(&clip, dir.path().join("live-blink-7")).unwrap();
    let out = facepay(&[
        "eval".as_ref(),
        "liveness".as_ref(),
        dir.path().as_os_str(),
        "--challenges".as_ref(),
        "blink,blink".as_ref(),
        "--starts-every".as_ref(),
        "60".as_ref(),
        "--json".as_ref(),
    ]);
    let json: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    let items = json["items"].as_array().expect("items");
    let starts: Vec<u64> = items
        .iter()
        .map(|i| i["start_frame"].as_u64().unwrap())
        .collect();
    assert_eq!(starts, [0, 60, 120], "{json}");
    // From 0 and 60 the clip holds two blinks: passed. From 120 its last 34 frames end before a second blink:
    // `undecided`, and not counted against the live person.
    let verdicts: Vec<&str> = items
        .iter()
        .map(|i| i["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["passed", "passed", "undecided"], "{json}");
    assert_eq!(
        (json["live"].as_u64(), json["undecided"].as_u64()),
        (Some(2), Some(1)),
        "{json}"
    );
    assert_eq!(json["bpcer"].as_f64(), Some(0.0), "{json}");
}
