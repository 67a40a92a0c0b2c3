//! `facepay eval far` end to end on a small slice of real LFW images (43 images of 10 people, linked into a
//! scratch folder): the JSON keys and pair counts, the product threshold, the DET PNG, and the refusal of a folder
//! that is not in LFW layout. The full View 1 run (4,992 images, ~12 million pairs) is `facepay eval far`'s job.

use facepay_core::vision::model::ModelManifest;
use facepay_qa::paths::{default_models_dir, default_shared_dir};
use std::path::{Path, PathBuf};
use std::process::Command;

/// People with several images (genuine pairs) and people with one (impostor pairs only).
const PEOPLE: [(&str, usize); 10] = [
    ("Ricardo_Lagos", 8),
    ("Paul_Wolfowitz", 8),
    ("Jennifer_Lopez", 8),
    ("Zhu_Rongji", 7),
    ("Hans_Blix", 7),
    ("Aaron_Peirsol", 1),
    ("Jennifer_Garner", 1),
    ("John_Snow", 1),
    ("Paul_Martin", 1),
    ("Tang_Jiaxuan", 1),
];

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("eval_far");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Links the first `n` images of each person into a fresh `<scratch>/images/<Person>/` tree.
fn slice() -> PathBuf {
    let view1 = default_shared_dir().join("data/lfw-view1/images");
    assert!(
        view1.is_dir(),
        "LFW View 1 images not found at {}: put the shared data folder beside the checkout or set FACEPAY_SHARED",
        view1.display()
    );
    let root = scratch("images");
    let _ = std::fs::remove_dir_all(&root);
    for (person, n) in PEOPLE {
        let mut files: Vec<PathBuf> = std::fs::read_dir(view1.join(person))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(files.len() >= n, "{person} has {} images", files.len());
        std::fs::create_dir_all(root.join(person)).unwrap();
        for f in &files[..n] {
            std::os::unix::fs::symlink(f, root.join(person).join(f.file_name().unwrap())).unwrap();
        }
    }
    root
}

fn facepay(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_facepay"))
        .args(args)
        .output()
        .expect("run facepay")
}

#[test]
fn all_pairs_report_has_the_issue_keys_counts_and_det_plot() {
    let images = slice();
    let det = scratch("det.png");
    let cache = scratch("cache.json");
    let _ = std::fs::remove_file(&det);
    let _ = std::fs::remove_file(&cache);
    let run = || {
        facepay(&[
            "eval".as_ref(),
            "far".as_ref(),
            "--images".as_ref(),
            images.as_os_str(),
            "--json".as_ref(),
            "--det".as_ref(),
            det.as_os_str(),
            "--cache".as_ref(),
            cache.as_os_str(),
            "--threads".as_ref(),
            "2".as_ref(),
        ])
    };
    let out = run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "facepay eval far failed: {stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.trim().lines().count(),
        1,
        "one JSON object: {stdout}"
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "failed_detections",
            "far_at_threshold",
            "genuine_pairs",
            "images",
            "impostor_pairs",
            "tar_at_far",
            "tar_at_threshold",
            "threshold",
            "threshold_at_far"
        ]
    );
    for k in ["tar_at_far", "threshold_at_far"] {
        let mut sub: Vec<&str> = v[k]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        sub.sort();
        assert_eq!(sub, ["1e-3", "1e-4", "1e-5", "1e-6"], "{k}");
    }
    let n: u64 = PEOPLE.iter().map(|p| p.1 as u64).sum();
    let genuine: u64 = PEOPLE.iter().map(|p| (p.1 * (p.1 - 1) / 2) as u64).sum();
    assert_eq!(v["images"].as_u64(), Some(n));
    assert_eq!(v["genuine_pairs"].as_u64(), Some(genuine));
    assert_eq!(
        v["impostor_pairs"].as_u64(),
        Some(n * (n - 1) / 2 - genuine)
    );
    assert_eq!(v["failed_detections"].as_u64(), Some(0), "{v}");
    let manifest = ModelManifest::load(&default_models_dir()).unwrap();
    let product = f64::from(manifest.calibration().unwrap().threshold);
    assert!(
        (v["threshold"].as_f64().unwrap() - product).abs() < 1e-6,
        "{v}"
    );
    // 777 impostor pairs: every target below 1/777 allows no false accept, so all four thresholds lie above the
    // highest impostor score and far_at_threshold is a multiple of 1/777.
    let t = |k: &str| v["threshold_at_far"][k].as_f64().unwrap();
    assert!(t("1e-3") == t("1e-6") && t("1e-3") < 1.0, "{v}");
    let far = v["far_at_threshold"].as_f64().unwrap();
    assert!((far * 777.0 - (far * 777.0).round()).abs() < 1e-6, "{v}");
    let tar = v["tar_at_threshold"].as_f64().unwrap();
    assert!(
        (0.8..=1.0).contains(&tar),
        "the same faces of LFW match at the product threshold: {v}"
    );
    assert!(far <= 0.01, "{v}");
    assert!(
        stderr.contains("false accepts allowed") && stderr.contains("mislabelled"),
        "{stderr}"
    );

    let png = std::fs::read(&det).expect("DET PNG written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 5_000);

    // A second run reuses every cached embedding and reports the same figures.
    let again = run();
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("{n} of {n} embeddings reused")),
        "{stderr}"
    );
    assert_eq!(String::from_utf8(again.stdout).unwrap(), stdout);
}

#[test]
fn a_folder_outside_lfw_layout_is_refused() {
    let root = scratch("bad");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("Alice")).unwrap();
    std::fs::write(root.join("Alice/holiday.jpg"), b"not used").unwrap();
    let out = facepay(&[
        "eval".as_ref(),
        "far".as_ref(),
        "--images".as_ref(),
        root.as_os_str(),
        "--json".as_ref(),
    ]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Alice_NNNN.jpg"), "{stderr}");
}
