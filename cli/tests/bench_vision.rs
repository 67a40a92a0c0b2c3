//! `facepay bench vision --json` end to end on a shared clip: one JSON object with every key the issue names (and
//! `eyes_ms`, `session_ms`), each a finite positive figure, and the refusal of too few runs.

use facepay_qa::paths::default_shared_dir;
use std::path::PathBuf;
use std::process::Command;

/// The shared MiniFASNet folder and a clip; panics with what is missing.
fn shared() -> PathBuf {
    let dir = default_shared_dir();
    assert!(
        dir.join("data/clips/live-blink-7").is_dir() && dir.join("models").is_dir(),
        "shared data not found at {} (data/clips/live-blink-7 and models/): put the shared data folder beside \
         the checkout or set FACEPAY_SHARED",
        dir.display()
    );
    dir
}

fn facepay(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_facepay"))
        .args(args)
        .env("FACEPAY_SHARED", shared())
        .output()
        .expect("facepay runs")
}

#[test]
fn json_report_has_every_figure_and_too_few_runs_are_refused() {
    let out = facepay(&["bench", "vision", "--json", "--runs", "100"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench vision failed: {stderr}");
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(stdout.lines().count(), 1, "one JSON line: {stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    let figure = |key: &str| -> f64 {
        let v = report[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing or not a number in {report}"));
        assert!(v.is_finite() && v > 0.0, "{key} = {v}");
        v
    };
    for key in [
        "detect_ms",
        "landmarks_ms",
        "eyes_ms",
        "embed_ms",
        "antispoof_ms",
        "frame_ms",
        "load_ms",
        "peak_rss_mb",
    ] {
        figure(key);
    }
    // A frame is at least the mesh and the eyes (the tracker skips the detector, never those two).
    assert!(
        figure("frame_ms") > 0.5 * (figure("landmarks_ms") + figure("eyes_ms")),
        "{report}"
    );
    let session = &report["session_ms"];
    assert_eq!(session["frames"].as_u64(), Some(100), "{report}");
    for key in ["median", "p95", "active_only_median", "active_only_p95"] {
        let v = session[key].as_f64().unwrap_or(f64::NAN);
        assert!(v.is_finite() && v > 0.0, "session_ms.{key} = {v}");
    }

    let out = facepay(&["bench", "vision", "--json", "--runs", "99"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("100"), "{stderr}");
}
