//! The per-frame vision pipeline: detect-or-track ▸ face mesh ▸ head pose ▸ eye openness (iris model on both
//! eyes) ▸ frame quality, plus
//! embedding and anti-spoofing on demand for the frames a caller selects.
//!
//! Tracking: after a detection, the next frames take their face region from the previous frame's mesh
//! ([`Roi::from_landmarks`]) and skip the detector, until the mesh's face-presence score drops below
//! [`Tracking::min_presence`] or [`Tracking::redetect_every`] frames have passed.

use std::path::Path;

use super::VisionError;
use super::antispoof::AntiSpoof;
use super::detect::{Detector, Face, iou};
use super::embed::{Embedding, FaceEmbedder};
use super::eyes::{EyeModel, EyeOpenness};
use super::image::{Rect, RgbImage};
use super::landmarks::{FaceMesh, HeadPose, Landmarks, Roi, mesh};
use super::model::{ModelManifest, ModelSource, read_model_file};
use super::quality::{QualityReport, assess};
use super::runner::ensure_image;

/// Manifest names of the committed models the pipeline uses.
pub const DETECTOR_MODEL: &str = "face_detection_short_range";
/// Manifest name of the face-mesh model.
pub const MESH_MODEL: &str = "face_landmark";
/// Manifest name of the iris/eye-contour model.
pub const EYES_MODEL: &str = "iris_landmark";
/// Manifest name of MobileFaceNet, an embedder (which embedders a match fuses, and how, is `[calibration]`'s).
pub const MOBILEFACENET_MODEL: &str = "mobilefacenet";
/// Manifest name of dlib's ResNet, an embedder.
pub const DLIB_RESNET_MODEL: &str = "dlib_resnet";

/// When the pipeline may skip the detector. The default — the detector on every frame — is also the liveness
/// policy's (`VisionPolicy::default` reads it), so benchmarks and sessions time the same work.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tracking {
    /// Run the detector at least every this many frames (1 = every frame, no tracking).
    pub redetect_every: u32,
    /// Below this mesh face-presence score the track is dropped and the detector runs.
    pub min_presence: f32,
}

impl Default for Tracking {
    fn default() -> Self {
        Self {
            redetect_every: 1,
            min_presence: 0.5,
        }
    }
}

/// Everything the liveness session reads from one frame.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameAnalysis {
    /// All faces, best first: fresh detections when [`FrameAnalysis::detected`], otherwise the tracked face
    /// (box from its mesh) followed by the other faces of the last detection.
    pub faces: Vec<Face>,
    /// Whether the detector ran on this frame (otherwise the primary face was tracked).
    pub detected: bool,
    /// The primary (largest) face's mesh and what is derived from it; `None` when no face was found. Check
    /// `landmarks.presence`: a detected face whose mesh has low presence (blur, profile) is still reported.
    pub primary: Option<FaceAnalysis>,
    /// Brightness, contrast and sharpness of the primary face's box (the whole frame when there is none).
    pub quality: QualityReport,
}

/// The primary face of a frame.
#[derive(Clone, Debug, PartialEq)]
pub struct FaceAnalysis {
    /// Its box, score and keypoints.
    pub face: Face,
    /// Its 468-point mesh.
    pub landmarks: Landmarks,
    /// Head pose in degrees.
    pub pose: HeadPose,
    /// Per-eye openness (iris model).
    pub eyes: EyeOpenness,
}

/// All vision stages, built once, plus the tracking state between frames.
#[derive(Debug)]
pub struct Vision {
    detector: Detector,
    mesh: FaceMesh,
    eyes: EyeModel,
    embedder: FaceEmbedder,
    antispoof: Option<AntiSpoof>,
    manifest: ModelManifest,
    tracking: Tracking,
    track: Option<Track>,
}

/// What is carried from one frame to the next while a face is tracked.
#[derive(Clone, Debug)]
struct Track {
    roi: Roi,
    frames_since_detection: u32,
    others: Vec<Face>,
}

impl Vision {
    /// Loads the committed models (and `manifest.toml`) from `models_dir`; the anti-spoof models from
    /// `antispoof_dir` when given and present there.
    pub fn load(models_dir: &Path, antispoof_dir: Option<&Path>) -> Result<Self, VisionError> {
        let antispoof = antispoof_dir.map(Path::to_path_buf);
        Self::from_sources(
            &models_dir.to_path_buf(),
            antispoof.as_ref().map(|d| d as &dyn ModelSource),
        )
    }

    /// Loads `manifest.toml` and the committed models from `models` (a directory, bytes in memory, an app's
    /// assets); the anti-spoof models from `antispoof` when given and present there. Every model is sha256-checked
    /// against the manifest before it is parsed.
    pub fn from_sources(
        models: &dyn ModelSource,
        antispoof: Option<&dyn ModelSource>,
    ) -> Result<Self, VisionError> {
        let manifest = ModelManifest::read(models)?;
        let bytes = |name: &str| -> Result<_, VisionError> {
            let entry = manifest.entry(name)?;
            Ok((entry, read_model_file(models, entry)?))
        };
        let (entry, data) = bytes(DETECTOR_MODEL)?;
        let detector = Detector::new(entry, &data)?;
        let (entry, data) = bytes(MESH_MODEL)?;
        let mesh = FaceMesh::new(entry, &data)?;
        let (entry, data) = bytes(EYES_MODEL)?;
        let eyes = EyeModel::new(entry, &data)?;
        let embedder = FaceEmbedder::load(&manifest, models)?;
        let antispoof = match antispoof {
            Some(source) => AntiSpoof::load(&manifest, source)?,
            None => None,
        };
        Ok(Self::new(
            manifest, detector, mesh, eyes, embedder, antispoof,
        ))
    }

    /// Assembles the pipeline from loaded stages and the manifest they came from, with default [`Tracking`].
    pub fn new(
        manifest: ModelManifest,
        detector: Detector,
        mesh: FaceMesh,
        eyes: EyeModel,
        embedder: FaceEmbedder,
        antispoof: Option<AntiSpoof>,
    ) -> Self {
        Self {
            detector,
            mesh,
            eyes,
            embedder,
            antispoof,
            manifest,
            tracking: Tracking::default(),
            track: None,
        }
    }

    /// The manifest the models were loaded with (model versions, calibration).
    pub fn manifest(&self) -> &ModelManifest {
        &self.manifest
    }

    /// Changes the tracking policy (and forgets the current track).
    pub fn set_tracking(&mut self, tracking: Tracking) {
        self.tracking = tracking;
        self.track = None;
    }

    /// Runs the two eyes' iris models at once, on a second thread, or one after the other
    /// ([`EyeModel::set_parallel`]; the default is [`super::eyes::PARALLEL_BY_DEFAULT`]).
    pub fn set_parallel_eyes(&mut self, parallel: bool) {
        self.eyes.set_parallel(parallel);
    }

    /// Forgets the tracked face: the next frame runs the detector (call it when a new session starts).
    pub fn reset(&mut self) {
        self.track = None;
    }

    /// The manifest names of every loaded stage's model, in pipeline order: detector, mesh, eyes, the fused
    /// embedders, then the anti-spoof models when loaded. These are the models whose versions a verdict rests on.
    pub fn model_names(&self) -> Vec<String> {
        let mut names = vec![
            self.detector.model_name(),
            self.mesh.model_name(),
            self.eyes.model_name(),
        ];
        names.extend(self.embedder.model_names());
        if let Some(a) = &self.antispoof {
            names.extend(a.model_names());
        }
        names.into_iter().map(str::to_owned).collect()
    }

    /// Whether the anti-spoof models are loaded.
    pub fn has_antispoof(&self) -> bool {
        self.antispoof.is_some()
    }

    /// The (fused) embedder (e.g. to switch flip-averaging on).
    pub fn embedder_mut(&mut self) -> &mut FaceEmbedder {
        &mut self.embedder
    }

    /// Analyses one frame: faces, the primary face's mesh, pose and eye openness, and the quality report.
    pub fn analyze(&mut self, image: &RgbImage) -> Result<FrameAnalysis, VisionError> {
        ensure_image(image)?;
        if let Some(tracked) = self.try_track(image)? {
            return Ok(tracked);
        }
        let faces = self.detector.run(image)?;
        let primary_index =
            (0..faces.len()).max_by(|&a, &b| area(&faces[a].rect).total_cmp(&area(&faces[b].rect)));
        let mut primary = None;
        self.track = None;
        if let Some(i) = primary_index {
            let face = faces[i];
            let landmarks = self.mesh.run(image, &Roi::from_face(&face))?;
            // A low presence (motion blur, profile) still reports the mesh, but is not tracked from.
            if landmarks.presence >= self.tracking.min_presence {
                let others = faces
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .map(|(_, f)| *f)
                    .collect();
                self.track = Some(Track {
                    roi: Roi::from_landmarks(&landmarks),
                    frames_since_detection: 0,
                    others,
                });
            }
            primary = Some(face_analysis(&mut self.eyes, image, face, landmarks)?);
        }
        Ok(self.finish(image, faces, true, primary))
    }

    /// The frame analysed from the previous frame's mesh, or `None` when the detector has to run.
    fn try_track(&mut self, image: &RgbImage) -> Result<Option<FrameAnalysis>, VisionError> {
        let Some(track) = self.track.as_mut() else {
            return Ok(None);
        };
        track.frames_since_detection += 1;
        if track.frames_since_detection >= self.tracking.redetect_every {
            return Ok(None);
        }
        let landmarks = self.mesh.run(image, &track.roi)?;
        if landmarks.presence < self.tracking.min_presence {
            return Ok(None);
        }
        track.roi = Roi::from_landmarks(&landmarks);
        let face = face_from_landmarks(&landmarks);
        let mut faces = vec![face];
        faces.extend(
            track
                .others
                .iter()
                .filter(|f| iou(&f.rect, &face.rect) < 0.3)
                .copied(),
        );
        let primary = Some(face_analysis(&mut self.eyes, image, face, landmarks)?);
        Ok(Some(self.finish(image, faces, false, primary)))
    }

    fn finish(
        &self,
        image: &RgbImage,
        faces: Vec<Face>,
        detected: bool,
        primary: Option<FaceAnalysis>,
    ) -> FrameAnalysis {
        let region = match &primary {
            Some(p) => p.face.rect,
            None => Rect {
                x: 0.0,
                y: 0.0,
                w: image.width as f32,
                h: image.height as f32,
            },
        };
        FrameAnalysis {
            faces,
            detected,
            primary,
            quality: assess(image, region),
        }
    }

    /// The fused embedding of the face with mesh `landmarks` (each model on its own aligned crop). Not for every
    /// frame.
    pub fn embed_face(
        &mut self,
        image: &RgbImage,
        landmarks: &Landmarks,
    ) -> Result<Embedding, VisionError> {
        self.embedder.run(image, landmarks)
    }

    /// Fused MiniFASNet "real face" probability for `face`, or `None` when the anti-spoof models are not loaded.
    /// Not for every frame.
    pub fn antispoof(&mut self, image: &RgbImage, face: &Face) -> Result<Option<f32>, VisionError> {
        match self.antispoof.as_mut() {
            Some(a) => a.run(image, &face.rect).map(Some),
            None => Ok(None),
        }
    }
}

fn area(r: &Rect) -> f32 {
    r.w * r.h
}

/// The primary face's analysis: pose from the mesh, eye openness from the iris model on the mesh's eye corners.
fn face_analysis(
    eyes: &mut EyeModel,
    image: &RgbImage,
    face: Face,
    landmarks: Landmarks,
) -> Result<FaceAnalysis, VisionError> {
    Ok(FaceAnalysis {
        face,
        pose: landmarks.pose(),
        eyes: eyes.run(image, &landmarks)?,
        landmarks,
    })
}

/// Mesh points standing in for the detector's six keypoints (eyes, nose tip, mouth centre, ear tragions).
const KEYPOINT_MESH: [[usize; 2]; 6] = [
    [mesh::RIGHT_EYE_OUTER, mesh::RIGHT_EYE_INNER],
    [mesh::LEFT_EYE_OUTER, mesh::LEFT_EYE_INNER],
    [mesh::NOSE_TIP, mesh::NOSE_TIP],
    [13, 14],
    [234, 234],
    [454, 454],
];

/// A detector-like face for a tracked frame, score = face presence. The detector's square box is smaller than
/// the mesh's extent (which reaches the top of the forehead) and sits lower; the factors below reproduce it on
/// average (measured on the development clips), so quality and anti-spoof crops match detected frames.
fn face_from_landmarks(landmarks: &Landmarks) -> Face {
    let b = landmarks.bounds();
    let long = b.w.max(b.h);
    let (cx, cy) = b.center();
    let (cx, cy) = (
        cx + TRACKED_BOX_SHIFT.0 * long,
        cy + TRACKED_BOX_SHIFT.1 * long,
    );
    let side = long * TRACKED_BOX_SCALE;
    let rect = Rect {
        x: cx - side * 0.5,
        y: cy - side * 0.5,
        w: side,
        h: side,
    };
    let keypoints = KEYPOINT_MESH.map(|[a, b]| {
        let (pa, pb) = (landmarks.xy(a), landmarks.xy(b));
        ((pa.0 + pb.0) * 0.5, (pa.1 + pb.1) * 0.5)
    });
    Face {
        rect,
        score: landmarks.presence,
        keypoints,
    }
}

/// Side of the detector's box relative to the mesh's long extent.
const TRACKED_BOX_SCALE: f32 = 0.946;
/// Offset of the detector's box centre from the mesh's bounding-box centre, relative to the mesh's long extent.
const TRACKED_BOX_SHIFT: (f32, f32) = (0.012, 0.056);
