//! The flow's offline parts on a real clip and the real models: enrolment from `live-blink-7` seals a template;
//! cancellation, the busy pipeline, "not enrolled" and an unreachable server give their typed errors; the challenge
//! derivation within a configured challenge set.
//!
//! Needs the shared development data (`FACEPAY_SHARED`, default `<workspace>/../shared`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use facepay_core::checkout::client::{ClientConfig, TrustRoots};
use facepay_core::checkout::protocol::{
    ALL_CHALLENGES, Challenge, challenges_for_nonce, challenges_for_nonce_in,
    is_nonce_challenge_list,
};
use facepay_core::checkout::signer::SoftwareSigner;
use facepay_core::enrolment::EnrolmentCapture;
use facepay_core::flow::{
    EnrolmentStep, FacePay, FacePayConfig, FacePayError, FlowEvent, NoListener,
};
use facepay_core::liveness::LivenessPolicy;
use facepay_core::template::{MAX_FAILED_MATCHES, MemoryKeyStore, TemplateStore};
use facepay_core::vision::frame::decode_file;
use facepay_core::vision::pipeline::{
    DETECTOR_MODEL, DLIB_RESNET_MODEL, EYES_MODEL, MESH_MODEL, MOBILEFACENET_MODEL,
};
use facepay_qa::paths::default_shared_dir;

fn clip_dir(name: &str) -> PathBuf {
    let shared = default_shared_dir();
    let dir = shared.join("data/clips").join(name);
    assert!(
        dir.is_dir(),
        "missing clip folder {}: set FACEPAY_SHARED to the shared data folder (holding data/clips/{name})",
        dir.display()
    );
    dir
}

fn frames(name: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(clip_dir(name))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
        .collect();
    files.sort();
    files
}

/// A device whose server is a closed loopback port (nothing here touches the network).
fn device(state: &Path) -> FacePay {
    device_with_keys(state).0
}

/// [`device`] and the key store it seals its template under.
fn device_with_keys(state: &Path) -> (FacePay, Arc<MemoryKeyStore>) {
    let keys = Arc::new(MemoryKeyStore::new());
    let config = FacePayConfig {
        server: ClientConfig::new("http://127.0.0.1:9/", TrustRoots::System),
        device_id: "test-device".into(),
        state_dir: state.to_owned(),
        policy: LivenessPolicy::default(),
        enrolment_challenges: Some(vec![Challenge::Blink]),
    };
    let vision = facepay_qa::paths::load_default_vision().expect("loading the committed models");
    let device = FacePay::new(
        config,
        vision,
        Arc::new(SoftwareSigner::generate().unwrap()),
        keys.clone(),
    )
    .expect("building the device");
    (device, keys)
}

/// Pushes `live-blink-7` until the capture answers something other than guidance.
fn run_clip(capture: &EnrolmentCapture) -> Result<EnrolmentStep, FacePayError> {
    for (i, path) in frames("live-blink-7").iter().enumerate() {
        let image = decode_file(path).unwrap();
        match capture.push_image(&image, i as f64 / 15.0)? {
            EnrolmentStep::Capturing(_) => continue,
            done => return Ok(done),
        }
    }
    panic!("the clip ended before the enrolment decided")
}

fn temp_state(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("facepay-flow-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn model_versions_are_the_stages_actually_loaded() {
    let vision = facepay_qa::paths::load_default_vision().expect("loading the committed models");
    let loaded = vision.model_names();
    let state = temp_state("versions");
    let device = device(&state);
    let names: Vec<String> = device
        .model_versions()
        .iter()
        .map(|v| v.split_once('@').expect("name@sha").0.to_owned())
        .collect();
    // The iris model decides blinks: it is signed with the others, in pipeline order.
    assert_eq!(names, loaded);
    assert_eq!(
        &names[..5],
        [
            DETECTOR_MODEL,
            MESH_MODEL,
            EYES_MODEL,
            MOBILEFACENET_MODEL,
            DLIB_RESNET_MODEL
        ]
        .map(String::from),
        "{names:?}"
    );
    assert_eq!(names.len() > 5, vision.has_antispoof(), "{names:?}");
}

#[test]
fn enrolment_from_a_live_clip_seals_a_template_and_payment_needs_the_server() {
    let state = temp_state("enrol");
    let (device, keys) = device_with_keys(&state);
    assert!(!device.is_enrolled().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let before = rt.block_on(device.start_payment("token", Arc::new(NoListener)));
    assert!(
        matches!(before, Err(FacePayError::NotEnrolled)),
        "{before:?}"
    );

    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let capture = device
        .start_enrolment(Arc::new(move |e: FlowEvent| sink.lock().unwrap().push(e)))
        .unwrap();
    assert!(matches!(
        device.start_enrolment(Arc::new(NoListener)),
        Err(FacePayError::Busy)
    ));
    let EnrolmentStep::Enrolled(summary) = run_clip(&capture).unwrap() else {
        panic!("not enrolled")
    };
    println!("enrolment: {summary:?}");
    assert!((3..=5).contains(&summary.embeddings), "{summary:?}");
    assert_eq!(summary.frames.len(), summary.embeddings as usize);
    assert!(
        summary.min_agreement >= facepay_core::template::MIN_ENROL_AGREEMENT,
        "{summary:?}"
    );
    // The fused embedder's id: both models' names, then a hash of their weights and files.
    assert!(
        summary.model.starts_with("mobilefacenet.dlib_resnet@"),
        "{summary:?}"
    );
    assert!(device.is_enrolled().unwrap());
    let events = events.lock().unwrap();
    assert!(matches!(events.first(), Some(FlowEvent::Guidance(_))));
    assert!(events.contains(&FlowEvent::Verifying));
    assert!(matches!(events.last(), Some(FlowEvent::Enrolled(s)) if *s == summary));
    drop(capture);

    // Enrolled, but the server is unreachable: a typed network error, and the pipeline is given back.
    let unreachable = rt.block_on(device.start_payment("token", Arc::new(NoListener)));
    assert!(
        matches!(
            unreachable,
            Err(FacePayError::Network {
                kind: facepay_core::flow::NetworkFailure::Connection,
                ..
            })
        ),
        "{unreachable:?}"
    );
    let again = device.start_enrolment(Arc::new(NoListener));
    assert!(again.is_ok(), "the pipeline was not given back: {again:?}");
    drop(again);

    // Five failed matches in a row (recorded in the device state, as a payment's failed match does): the next
    // payment is refused on the device, before any network call, with the time to wait; a match resets it.
    let store = TemplateStore::new(&state, keys);
    let template = store.load().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    for _ in 0..MAX_FAILED_MATCHES {
        store.record_match(&template, false, now).unwrap();
    }
    let locked = rt.block_on(device.start_payment("token", Arc::new(NoListener)));
    match locked {
        Err(FacePayError::LockedOut {
            retry_after_s,
            failed_matches,
        }) => {
            assert_eq!(failed_matches, MAX_FAILED_MATCHES);
            assert!((290..=300).contains(&retry_after_s), "{retry_after_s}");
        }
        other => panic!("expected LockedOut, got {other:?}"),
    }
    store.record_match(&template, true, now).unwrap();
    let unlocked = rt.block_on(device.start_payment("token", Arc::new(NoListener)));
    assert!(
        matches!(
            unlocked,
            Err(FacePayError::Network {
                kind: facepay_core::flow::NetworkFailure::Connection,
                ..
            })
        ),
        "{unlocked:?}"
    );
    device.delete_enrolment().unwrap();
    assert!(!device.is_enrolled().unwrap());
    std::fs::remove_dir_all(&state).unwrap();
}

#[test]
fn cancelled_enrolment_stores_nothing() {
    let state = temp_state("cancel");
    let device = device(&state);
    let capture = device.start_enrolment(Arc::new(NoListener)).unwrap();
    let files = frames("live-blink-7");
    for (i, path) in files.iter().take(5).enumerate() {
        assert!(matches!(
            capture.push_image(&decode_file(path).unwrap(), i as f64 / 15.0),
            Ok(EnrolmentStep::Capturing(_))
        ));
    }
    capture.cancel();
    let after = capture.push_image(&decode_file(&files[5]).unwrap(), 5.0 / 15.0);
    assert!(matches!(after, Err(FacePayError::Cancelled)), "{after:?}");
    assert!(!device.is_enrolled().unwrap());
    drop(capture);
    assert!(device.start_enrolment(Arc::new(NoListener)).is_ok());
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn challenge_set_derivation() {
    for b in 0..=255u8 {
        let nonce = [b; 32];
        let full = challenges_for_nonce(&nonce);
        assert_eq!(challenges_for_nonce_in(&nonce, &ALL_CHALLENGES), full);
        assert_eq!(challenges_for_nonce_in(&nonce, &[]), full);
        assert!(is_nonce_challenge_list(&nonce, &full));
        let blink = challenges_for_nonce_in(&nonce, &[Challenge::Blink]);
        assert!((3..=4).contains(&blink.len()) && blink.iter().all(|c| *c == Challenge::Blink));
        assert!(is_nonce_challenge_list(&nonce, &blink));
        let turns = challenges_for_nonce_in(
            &nonce,
            &[
                Challenge::TurnRight,
                Challenge::TurnLeft,
                Challenge::TurnLeft,
            ],
        );
        assert!(turns.iter().all(|c| *c != Challenge::Blink), "{turns:?}");
        assert_eq!(
            turns,
            challenges_for_nonce_in(&nonce, &[Challenge::TurnLeft, Challenge::TurnRight])
        );
        assert!(!is_nonce_challenge_list(&nonce, &[Challenge::Blink; 5]));
    }
}
