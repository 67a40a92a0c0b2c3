//! Face matching on real faces with the committed models and the calibrated threshold: a template enrolled from
//! early frames of `live-blink-7` accepts later frames of the same person and refuses the person of
//! `live-turning` (frontal frames only, so it is the face that differs, not the pose).
//!
//! Needs the shared development data (`FACEPAY_SHARED`, default `<workspace>/../shared`).

use std::path::PathBuf;

use facepay_core::matcher::match_template;
use facepay_core::template::enrol;
use facepay_core::vision::frame::decode_file;
use facepay_core::vision::model::ModelManifest;
use facepay_core::vision::pipeline::Vision;
use facepay_qa::paths::{default_models_dir, default_shared_dir};

fn frame(clip: &str, index: usize) -> PathBuf {
    let shared = default_shared_dir();
    let path = shared
        .join("data/clips")
        .join(clip)
        .join(format!("{index:05}.jpg"));
    assert!(
        path.is_file(),
        "missing {}: set FACEPAY_SHARED to the shared data folder (holding data/clips/{clip})",
        path.display()
    );
    path
}

/// Embeddings of the given frames' primary faces, keeping only near-frontal ones (|yaw| ≤ `max_yaw`).
fn embeddings(vision: &mut Vision, clip: &str, frames: &[usize], max_yaw: f32) -> Vec<Vec<f32>> {
    let mut out = Vec::new();
    for &i in frames {
        let image = decode_file(frame(clip, i)).expect("decoding a clip frame");
        let analysis = vision.analyze(&image).expect("analysing a clip frame");
        let Some(face) = analysis.primary else {
            continue;
        };
        if face.pose.yaw.abs() > max_yaw {
            continue;
        }
        let e = vision
            .embed_face(&image, &face.landmarks)
            .expect("embedding a face");
        out.push(e.values);
        vision.reset();
    }
    out
}

#[test]
fn template_accepts_the_shopper_and_refuses_another_person() {
    let manifest = ModelManifest::load(&default_models_dir()).expect("models/manifest.toml");
    let threshold = manifest.calibration().expect("[calibration]").threshold;
    let mut vision =
        facepay_qa::paths::load_default_vision().expect("loading the committed models");
    let model = "mobilefacenet@test";

    let enrolled = embeddings(&mut vision, "live-blink-7", &[2, 8, 14, 20, 26], 15.0);
    assert_eq!(
        enrolled.len(),
        5,
        "every enrolment frame has a frontal face"
    );
    let template = enrol(enrolled, model).expect("the enrolment frames agree");

    let later = embeddings(&mut vision, "live-blink-7", &[100, 115, 130, 145], 15.0);
    assert_eq!(later.len(), 4);
    let same = match_template(&template, model, &later, threshold).unwrap();
    println!("same person: {same:?} (threshold {threshold})");
    assert!(same.matched, "{same:?}");

    let other_frames: Vec<usize> = (1..=199).step_by(6).collect();
    let other = embeddings(&mut vision, "live-turning", &other_frames, 10.0);
    assert!(other.len() >= 5, "only {} frontal frames", other.len());
    for probe in other.chunks(3) {
        let result = match_template(&template, model, probe, threshold).unwrap();
        println!("other person: {result:?}");
        assert!(!result.matched, "{result:?}");
        assert!(
            result.score < threshold - 0.2,
            "an impostor within 0.2 of the threshold: {result:?}"
        );
    }
}
