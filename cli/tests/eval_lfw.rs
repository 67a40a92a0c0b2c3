//! `facepay eval lfw` end to end on real LFW images: the k-fold path on a small View-2-style pairs file built
//! from View 1 names (10 folds × (10 matched + 10 mismatched)), its JSON, ROC PNG and scores CSV, and the
//! refusals for unusable pairs files.

use facepay_qa::paths::default_shared_dir;
use std::path::{Path, PathBuf};
use std::process::Command;

fn shared() -> PathBuf {
    let dir = default_shared_dir();
    let view1 = dir.join("data").join("lfw-view1");
    assert!(
        view1.join("pairsDevTest.txt").is_file() && view1.join("images").is_dir(),
        "LFW View 1 not found at {} (pairsDevTest.txt and images/): put the shared data folder beside the \
         checkout or set FACEPAY_SHARED",
        view1.display()
    );
    view1
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("eval_lfw");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A `10 10` pairs file: fold f holds DevTest's matched lines 10f..10f+10, then its mismatched lines 10f..10f+10.
fn view2_style(view1: &Path) -> PathBuf {
    let text = std::fs::read_to_string(view1.join("pairsDevTest.txt")).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let matched: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.split('\t').count() == 3)
        .collect();
    let mismatched: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.split('\t').count() == 4)
        .collect();
    assert!(
        matched.len() >= 100 && mismatched.len() >= 100,
        "pairsDevTest.txt has too few pairs"
    );
    let mut out = String::from("10\t10\n");
    for fold in 0..10 {
        for l in &matched[fold * 10..fold * 10 + 10] {
            out += l;
            out += "\n";
        }
        for l in &mismatched[fold * 10..fold * 10 + 10] {
            out += l;
            out += "\n";
        }
    }
    let path = scratch("pairs_10x10.txt");
    std::fs::write(&path, out).unwrap();
    path
}

fn facepay(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_facepay"))
        .args(args)
        .output()
        .expect("run facepay")
}

#[test]
fn ten_fold_protocol_reports_json_roc_and_scores() {
    let view1 = shared();
    let pairs = view2_style(&view1);
    let (roc, csv) = (scratch("roc.png"), scratch("scores.csv"));
    let _ = std::fs::remove_file(&roc);
    let _ = std::fs::remove_file(&csv);
    let images = view1.join("images");
    let out = facepay(&[
        "eval".as_ref(),
        "lfw".as_ref(),
        "--pairs".as_ref(),
        pairs.as_os_str(),
        "--images".as_ref(),
        images.as_os_str(),
        "--json".as_ref(),
        "--roc".as_ref(),
        roc.as_os_str(),
        "--scores".as_ref(),
        csv.as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "facepay eval lfw failed: {stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.trim().lines().count(),
        1,
        "stdout must be exactly one JSON object: {stdout}"
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let obj = v.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "accuracy",
            "accuracy_std",
            "at_product_threshold",
            "eer",
            "failed_detections",
            "pairs",
            "tar_at_far_1e-2",
            "tar_at_far_1e-3",
            "threshold"
        ]
    );
    let f = |k: &str| {
        v[k].as_f64()
            .unwrap_or_else(|| panic!("{k} is not a number: {v}"))
    };
    assert_eq!(v["pairs"].as_u64(), Some(200));
    // The committed models reach ~99 % on DevTest; 10-pair folds are coarse, so allow a wide margin.
    assert!((0.9..=1.0).contains(&f("accuracy")), "{v}");
    assert!(
        (0.0..=0.2).contains(&f("accuracy_std")),
        "k-fold must report a std: {v}"
    );
    assert!((-1.0..1.0).contains(&f("threshold")), "{v}");
    for k in ["tar_at_far_1e-2", "tar_at_far_1e-3"] {
        assert!((0.5..=1.0).contains(&f(k)), "{v}");
    }
    assert!(f("tar_at_far_1e-2") >= f("tar_at_far_1e-3"), "{v}");
    assert!((0.0..=0.1).contains(&f("eer")), "{v}");
    assert!(
        v["failed_detections"].as_u64().is_some_and(|n| n <= 4),
        "{v}"
    );

    let product = &v["at_product_threshold"];
    let manifest =
        facepay_core::vision::model::ModelManifest::load(&facepay_qa::paths::default_models_dir())
            .unwrap();
    let threshold = f64::from(manifest.calibration().unwrap().threshold);
    assert!(
        (product["threshold"].as_f64().unwrap() - threshold).abs() < 1e-6,
        "{product}"
    );
    // 100 matched and 100 mismatched pairs: the rates are multiples of 1/100, and the strict payment threshold
    // accepts fewer pairs of either kind than the 10-fold accuracy threshold would.
    for k in ["tar", "far"] {
        let rate = product[k].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&rate), "{product}");
        assert!(
            ((rate * 100.0) - (rate * 100.0).round()).abs() < 1e-9,
            "{product}"
        );
    }
    assert!(product["tar"].as_f64().unwrap() >= 0.5, "{product}");
    assert!(product["far"].as_f64().unwrap() <= 0.02, "{product}");

    let png = std::fs::read(&roc).expect("ROC PNG written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 5_000,
        "ROC PNG is suspiciously small ({} bytes)",
        png.len()
    );

    let csv = std::fs::read_to_string(&csv).expect("scores CSV written");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows[0],
        "set,fold,same,name_a,number_a,name_b,number_b,score"
    );
    assert_eq!(rows.len(), 201);
    let folds: std::collections::BTreeSet<&str> = rows[1..]
        .iter()
        .map(|r| r.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(folds.len(), 10);
    for r in &rows[1..] {
        let score: f32 = r.rsplit(',').next().unwrap().parse().unwrap();
        assert!((-1.0..=1.0001).contains(&score), "{r}");
    }
}

#[test]
fn single_block_file_without_train_is_refused() {
    let view1 = shared();
    let pairs = view1.join("pairsDevTest.txt");
    let images = view1.join("images");
    let out = facepay(&[
        "eval".as_ref(),
        "lfw".as_ref(),
        "--pairs".as_ref(),
        pairs.as_os_str(),
        "--images".as_ref(),
        images.as_os_str(),
        "--json".as_ref(),
    ]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--train"));
}

#[test]
fn malformed_pairs_file_names_the_line() {
    let view1 = shared();
    let bad = scratch("bad_pairs.txt");
    std::fs::write(&bad, "1\nAaron_Peirsol\t1\t2\nnot a pair line at all\n").unwrap();
    let images = view1.join("images");
    let out = facepay(&[
        "eval".as_ref(),
        "lfw".as_ref(),
        "--pairs".as_ref(),
        bad.as_os_str(),
        "--images".as_ref(),
        images.as_os_str(),
        "--train".as_ref(),
        bad.as_os_str(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 3"), "{stderr}");
}
