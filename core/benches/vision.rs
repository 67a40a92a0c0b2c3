//! `cargo bench -p facepay-core`: criterion timings of each vision stage and of the liveness session on real
//! frames of `$FACEPAY_SHARED/data/clips/live-blink-7` (default `<workspace>/../shared`), one thread.
//!
//! Groups: `detect` (BlazeFace), `landmarks` (face mesh on the detected face), `eyes` (the iris model on both
//! eyes of that mesh), `embed` (alignment + MobileFaceNet,
//! one inference and flip-averaged), `antispoof` (both MiniFASNet models, only when they are in
//! `$FACEPAY_SHARED/models`), `frame` (`Vision::analyze` over consecutive clip frames, tracking on) and `session`
//! (`LivenessSession::push_image` over the clip, a fresh blink session whenever one ends, with and without the
//! MiniFASNet models). Frames are decoded once, before timing, at the clip's size (640×427).
//!
//! Under `cargo test` (no `--bench`), criterion runs each benchmark once as a smoke test.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use facepay_core::liveness::{Challenge, LivenessPolicy, LivenessSession};
use facepay_core::vision::antispoof::AntiSpoof;
use facepay_core::vision::detect::{Detector, Face};
use facepay_core::vision::embed::Embedder;
use facepay_core::vision::eyes::EyeModel;
use facepay_core::vision::frame::decode_file;
use facepay_core::vision::image::RgbImage;
use facepay_core::vision::landmarks::{FaceMesh, Landmarks, Roi};
use facepay_core::vision::model::{ModelManifest, read_model_file};
use facepay_core::vision::pipeline::{
    DETECTOR_MODEL, EYES_MODEL, MESH_MODEL, MOBILEFACENET_MODEL, Vision,
};
use facepay_qa::paths::{default_antispoof_dir, default_models_dir, default_shared_dir};

/// Clip frames decoded for the `frame` and `session` groups (5 s at 15 fps: the face settles, then blinks).
const CLIP_FRAMES: usize = 75;
/// Frame rate of the clip (timestamps of the session).
const FPS: f64 = 15.0;

/// The development data folder, or a panic naming what is missing.
fn clip_dir() -> PathBuf {
    let shared = default_shared_dir();
    let clip = shared.join("data/clips/live-blink-7");
    assert!(
        clip.join("00001.jpg").is_file(),
        "benchmark clip missing: expected {}/00001.jpg (set FACEPAY_SHARED to the shared data folder)",
        clip.display()
    );
    clip
}

/// The first [`CLIP_FRAMES`] frames of the clip, decoded.
fn clip_frames() -> Vec<RgbImage> {
    let dir = clip_dir();
    (1..=CLIP_FRAMES)
        .map(|i| {
            let path = dir.join(format!("{i:05}.jpg"));
            decode_file(&path).unwrap_or_else(|e| panic!("decoding {}: {e}", path.display()))
        })
        .collect()
}

/// The stages, each loaded on its own, and the face of the first frame.
struct Stages {
    detector: Detector,
    mesh: FaceMesh,
    eyes: EyeModel,
    embedder: Embedder,
    antispoof: Option<AntiSpoof>,
    face: Face,
    roi: Roi,
    landmarks: Landmarks,
}

impl Stages {
    fn load(frame: &RgbImage) -> Self {
        let dir = default_models_dir();
        let manifest = ModelManifest::load(&dir).expect("models/manifest.toml");
        let bytes = |name: &str| {
            let entry = manifest.entry(name).expect("model in the manifest");
            (
                entry,
                read_model_file(&dir, entry).expect("committed model file"),
            )
        };
        let (entry, data) = bytes(DETECTOR_MODEL);
        let mut detector = Detector::new(entry, &data).expect("detector loads");
        let (entry, data) = bytes(MESH_MODEL);
        let mut mesh = FaceMesh::new(entry, &data).expect("face mesh loads");
        let (entry, data) = bytes(EYES_MODEL);
        let eyes = EyeModel::new(entry, &data).expect("iris model loads");
        let (entry, data) = bytes(MOBILEFACENET_MODEL);
        let embedder = Embedder::new(entry, &data).expect("embedder loads");
        let antispoof = AntiSpoof::load(&manifest, &default_antispoof_dir()).expect("MiniFASNet");
        let face = *detector
            .run(frame)
            .expect("detection runs")
            .first()
            .expect("a face in the first clip frame");
        let roi = Roi::from_face(&face);
        let landmarks = mesh.run(frame, &roi).expect("face mesh runs");
        Self {
            detector,
            mesh,
            eyes,
            embedder,
            antispoof,
            face,
            roi,
            landmarks,
        }
    }
}

fn stages(c: &mut Criterion) {
    let frame = &clip_frames()[0];
    let mut s = Stages::load(frame);
    c.benchmark_group("detect")
        .bench_function("blazeface", |b| {
            b.iter(|| s.detector.run(black_box(frame)).expect("detect"))
        });
    c.benchmark_group("landmarks")
        .bench_function("face_mesh", |b| {
            b.iter(|| s.mesh.run(black_box(frame), &s.roi).expect("mesh"))
        });
    c.benchmark_group("eyes")
        .bench_function("iris_both_eyes", |b| {
            b.iter(|| s.eyes.run(black_box(frame), &s.landmarks).expect("eyes"))
        });
    let mut group = c.benchmark_group("embed");
    for (id, flip) in [("one_inference", false), ("flip_averaged", true)] {
        s.embedder.set_flip_average(flip);
        group.bench_function(id, |b| {
            b.iter(|| {
                s.embedder
                    .run(black_box(frame), &s.landmarks)
                    .expect("embed")
            })
        });
    }
    group.finish();
    match s.antispoof.as_mut() {
        Some(a) => {
            c.benchmark_group("antispoof")
                .bench_function("minifasnet_v2_v1se", |b| {
                    b.iter(|| a.run(black_box(frame), &s.face.rect).expect("antispoof"))
                });
        }
        None => eprintln!(
            "antispoof group not run: no MiniFASNet models in {}",
            default_antispoof_dir().display()
        ),
    }
}

fn pipeline(c: &mut Criterion) {
    let frames = clip_frames();
    let mut vision = Vision::load(&default_models_dir(), None).expect("pipeline loads");
    let mut next = 0;
    c.benchmark_group("frame")
        .bench_function("analyze_tracked", |b| {
            b.iter(|| {
                if next % frames.len() == 0 {
                    vision.reset();
                }
                let analysis = vision
                    .analyze(&frames[next % frames.len()])
                    .expect("analyze");
                next += 1;
                analysis
            })
        });
    let mut group = c.benchmark_group("session");
    let with_models = Vision::load(&default_models_dir(), Some(&default_antispoof_dir()))
        .expect("pipeline with MiniFASNet loads");
    for (id, vision) in [("with_antispoof", with_models), ("active_only", vision)] {
        if id == "with_antispoof" && !vision.has_antispoof() {
            eprintln!("session/with_antispoof not run: no MiniFASNet models");
            continue;
        }
        let mut sessions = Sessions::new(vision);
        group.bench_function(id, |b| b.iter(|| sessions.push(&frames)));
    }
    group.finish();
}

/// Back-to-back blink sessions over the clip frames, a fresh one whenever one ends.
struct Sessions {
    /// Always `Some` between pushes (taken only to hand the pipeline to the next session).
    session: Option<LivenessSession<Vision>>,
    frame: usize,
    in_session: u64,
}

impl Sessions {
    fn new(vision: Vision) -> Self {
        Self {
            session: Some(Self::start(vision)),
            frame: 0,
            in_session: 0,
        }
    }

    fn start(vision: Vision) -> LivenessSession<Vision> {
        LivenessSession::with_challenges(
            vision,
            LivenessPolicy::default(),
            [7; 32],
            vec![Challenge::Blink],
        )
    }

    /// Pushes the next frame; starts a new session when this one has ended.
    fn push(&mut self, frames: &[RgbImage]) {
        let session = self.session.as_mut().expect("a session is running");
        let image = &frames[self.frame % frames.len()];
        let t = self.in_session as f64 / FPS;
        let guidance = session.push_image(black_box(image), t);
        self.frame += 1;
        self.in_session += 1;
        if guidance.state.is_terminal()
            && let Some(ended) = self.session.take()
        {
            self.session = Some(Self::start(ended.into_vision()));
            self.in_session = 0;
        }
    }
}

criterion_group!(benches, stages, pipeline);
criterion_main!(benches);
