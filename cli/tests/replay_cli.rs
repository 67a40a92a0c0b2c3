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
    // Played straight, a recording cannot answer prompts it never saw: live-turning turns when its footage does,
    // not within the window after each prompt, so the strict challenge-response refuses it; the phone replay
    // fails whatever it is asked. (live-blink-7 blinks about once a second, so a blink-only list may or may not
    // catch it in time: it is not asserted.)
    assert_eq!(
        (json["live"].as_u64(), json["attacks"].as_u64()),
        (Some(2), Some(1)),
        "{json}"
    );
    assert_eq!(json["apcer"].as_f64(), Some(0.0), "{json}");
    assert_eq!(
        json["apcer_by_type"]["replay"].as_f64(),
        Some(0.0),
        "{json}"
    );
    let item = |name: &str| {
        json["items"]
            .as_array()
            .and_then(|items| {
                items
                    .iter()
                    .find(|i| i["path"].as_str().is_some_and(|p| p.ends_with(name)))
            })
            .cloned()
            .unwrap_or_else(|| panic!("no item for {name}: {json}"))
    };
    let turning = item("live-turning");
    assert_eq!(turning["verdict"], "failed", "{json}");
    let reason = turning["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("did not start within") || reason.contains("was asked"),
        "{reason}"
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
    // From 0 and 60 the clip's blinks happen to fall inside both response windows: passed. From 120 none starts
    // within 1.6 s of a prompt (the clip's next blink comes too late): failed by the response window, which
    // decides before the clip runs out, so no session is left undecided.
    let verdicts: Vec<&str> = items
        .iter()
        .map(|i| i["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["passed", "passed", "failed"], "{json}");
    assert_eq!(
        (json["live"].as_u64(), json["undecided"].as_u64()),
        (Some(3), Some(0)),
        "{json}"
    );
    let bpcer = json["bpcer"].as_f64().unwrap();
    assert!((bpcer - 1.0 / 3.0).abs() < 1e-9, "{json}");
}

/// A directory holding links to the named shared clips (so a run analyses only those).
fn clips_dir(names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let data = shared_data();
    for name in names {
        let src = ["clips", "liveness"]
            .iter()
            .map(|d| data.join(d).join(name))
            .find(|p| p.is_dir())
            .unwrap_or_else(|| {
                panic!("missing shared clip {name} (in data/clips or data/liveness)")
            });
        std::os::unix::fs::symlink(&src, dir.path().join(name)).unwrap();
    }
    dir
}

#[test]
fn eval_liveness_chance_of_a_recording_is_measured_over_cached_frames() {
    // A short slice of the full measurement (docs/liveness.md): two recordings that never saw the prompts, 40
    // nonces from every 30th frame; the full run is `facepay eval liveness DIR --nonces N --starts-every K`.
    let dir = clips_dir(&["live-turning", "replay-phone"]);
    let out = facepay(&[
        "eval".as_ref(),
        "liveness".as_ref(),
        dir.path().as_os_str(),
        "--nonces".as_ref(),
        "40".as_ref(),
        "--starts-every".as_ref(),
        "30".as_ref(),
        "--active-only".as_ref(),
        "--json".as_ref(),
    ]);
    let json: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    let chance = &json["chance"];
    // live-turning: 199 frames → 7 starts; replay-phone: 157 → 6 starts; × 40 nonces.
    assert_eq!(chance["attempts"], (7 + 6) * 40, "{chance}");
    let passed = chance["passed"].as_u64().unwrap();
    assert_eq!(
        chance["passing"].as_array().map(Vec::len),
        Some(passed as usize)
    );
    assert!(
        passed <= 2,
        "recordings pass the strict challenges: {chance}"
    );
    let upper = chance["upper_95"].as_f64().unwrap();
    assert!(
        upper > chance["rate"].as_f64().unwrap() && upper < 0.02,
        "{chance}"
    );
    assert_eq!(chance["passive"], false);
}

#[test]
fn eval_liveness_scripted_shopper_is_simulated_and_passes() {
    let dir = clips_dir(&["live-tranvanluyt"]);
    let out = facepay(&[
        "eval".as_ref(),
        "liveness".as_ref(),
        dir.path().as_os_str(),
        "--scripted".as_ref(),
        "--scripted-nonces".as_ref(),
        "40".as_ref(),
        "--json".as_ref(),
    ]);
    let json: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    let s = &json["scripted"];
    assert_eq!(s["simulated"], true, "{s}");
    assert!(s["note"].as_str().unwrap().contains("simulated"), "{s}");
    let attempts = s["attempts"].as_u64().unwrap();
    assert!(attempts >= 20, "the clip shows most lists: {s}");
    assert_eq!(attempts + s["not_covered"].as_u64().unwrap(), 40, "{s}");
    assert!(s["bpcer"].as_f64().unwrap() <= 0.1, "{s}");
    assert!(s["median_prompt_to_pass_s"].as_f64().unwrap() <= 8.0, "{s}");
}
