//! Eye openness from MediaPipe's iris model: per eye, a 64×64 crop around the mesh's eye corners gives 71
//! eye-contour points whose eyelids close fully on a blink (the 468-point face mesh barely moves its lids).
//!
//! Crop: a square centred between the two corners, side [`ROI_SCALE`] × the corner distance, rotated so the
//! corners are level. The model is trained on the subject's right eye (image left on an unmirrored camera): the
//! left eye's crop is mirrored horizontally. Openness is read from the contour in crop pixels (a similarity of
//! the image), so it needs neither the un-mirroring nor the map back to the image.

use super::image::{Affine, RgbImage};
use super::landmarks::{Landmarks, Roi, mesh};
use super::model::ModelEntry;
use super::runner::{Runner, ensure_image};
use super::{FrameProblem, VisionError};

/// Side of the square model input.
const INPUT: usize = 64;
/// Crop side relative to the corner-to-corner distance (MediaPipe's 2.3: the eye, the brow and a margin).
const ROI_SCALE: f32 = 2.3;
/// Number of eye-contour points the model outputs (`x, y, z` each).
const CONTOUR_POINTS: usize = 71;
/// Contour index of the outer eye corner (start of the lower lid).
const OUTER_CORNER: usize = 0;
/// Contour index of the inner eye corner (end of the lower lid).
const INNER_CORNER: usize = 8;
/// Upper/lower lid contour pairs facing each other, outer to inner. The lower lid is contour points 0–8 (corner
/// to corner), the upper lid 9–15 (without the corners); these are the five middle columns, face-mesh points
/// (161, 163), (160, 144), (159, 145), (158, 153), (157, 154) on the subject's right eye.
const LID_PAIRS: [(usize, usize); 5] = [(10, 2), (11, 3), (12, 4), (13, 5), (14, 6)];

/// Per-eye openness: mean eyelid gap over eye width, divided by [`EyeOpenness::OPEN_RATIO`], so about 1 is a
/// normally open eye and 0 lids that touch; clamped to `0..=1.5`.
///
/// Gap = mean distance of the five facing upper/lower lid points ([`LID_PAIRS`]), width = corner to corner,
/// both on the iris model's eye contour.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EyeOpenness {
    /// The subject's right eye (image left on an unmirrored camera).
    pub right: f32,
    /// The subject's left eye.
    pub left: f32,
}

impl EyeOpenness {
    /// Gap / width ratio of a typical open eye on the iris model's contour (maps to openness 1).
    pub const OPEN_RATIO: f32 = 0.32;

    /// Mean of both eyes.
    pub fn mean(&self) -> f32 {
        (self.right + self.left) * 0.5
    }

    /// Openness of a contour (`x, y, z` per point, any scale).
    fn from_contour(contour: &[f32]) -> f32 {
        let xy = |i: usize| (contour[3 * i], contour[3 * i + 1]);
        let dist = |i: usize, j: usize| {
            let (a, b) = (xy(i), xy(j));
            (a.0 - b.0).hypot(a.1 - b.1)
        };
        let width = dist(OUTER_CORNER, INNER_CORNER);
        if width.is_nan() || width <= f32::EPSILON {
            return 0.0;
        }
        let gap = LID_PAIRS.iter().map(|&(u, l)| dist(u, l)).sum::<f32>() / LID_PAIRS.len() as f32;
        (gap / width / Self::OPEN_RATIO).clamp(0.0, 1.5)
    }
}

/// Whether the two eyes run at once by default, on two threads (one the caller's): the frame's wall-clock time
/// drops by about one iris run where two cores are free, and its CPU time is the same.
pub const PARALLEL_BY_DEFAULT: bool = true;

/// The iris/eye-contour model: one tract plan, built once, run on both eyes of every frame, with a run state and
/// input buffer per eye so the two can run at once.
#[derive(Debug)]
pub struct EyeModel {
    /// Runs the right eye (and the left one too when not parallel).
    runner: Runner,
    /// Runs the left eye when parallel: the same plan with its own state and input.
    second: Runner,
    parallel: bool,
}

impl EyeModel {
    /// The manifest name of the loaded model.
    pub fn model_name(&self) -> &str {
        self.runner.name()
    }

    /// Builds the model from its manifest entry and the model bytes (sha256-checked before parsing).
    pub fn new(entry: &ModelEntry, bytes: &[u8]) -> Result<Self, VisionError> {
        let runner = Runner::load(entry, bytes)?.expect_input(INPUT, INPUT)?;
        Ok(Self {
            second: runner.fork(),
            runner,
            parallel: PARALLEL_BY_DEFAULT,
        })
    }

    /// Runs the two eyes at once (on a second thread) or one after the other. The results are the same.
    pub fn set_parallel(&mut self, parallel: bool) {
        self.parallel = parallel;
    }

    /// Openness of both eyes of the face whose mesh is `landmarks` (two model runs).
    pub fn run(
        &mut self,
        image: &RgbImage,
        landmarks: &Landmarks,
    ) -> Result<EyeOpenness, VisionError> {
        ensure_image(image)?;
        let right =
            eye_roi(landmarks, mesh::RIGHT_EYE_OUTER, mesh::RIGHT_EYE_INNER)?.crop_map(INPUT);
        let left = mirrored(
            eye_roi(landmarks, mesh::LEFT_EYE_INNER, mesh::LEFT_EYE_OUTER)?.crop_map(INPUT),
        );
        let (right, left) = if self.parallel {
            let Self { runner, second, .. } = self;
            std::thread::scope(|scope| {
                let left = scope.spawn(|| openness(second, image, &left));
                let right = openness(runner, image, &right);
                // A panic there is a bug (tract's ops do not panic on a well-formed plan): report it, typed.
                let left = left.join().unwrap_or_else(|_| {
                    Err(runner.error("the left eye's inference thread panicked"))
                });
                (right, left)
            })
        } else {
            (
                openness(&mut self.runner, image, &right),
                openness(&mut self.runner, image, &left),
            )
        };
        Ok(EyeOpenness {
            right: right?,
            left: left?,
        })
    }
}

/// Runs the model on the crop `to_src` maps from and reads the openness off its contour.
fn openness(runner: &mut Runner, image: &RgbImage, to_src: &Affine) -> Result<f32, VisionError> {
    let outputs = runner.run(image, to_src)?;
    for value in &outputs {
        let slice = runner.output(value)?;
        if slice.len() == CONTOUR_POINTS * 3 {
            if slice.iter().any(|v| !v.is_finite()) {
                return Err(runner.error("non-finite eye contour"));
            }
            return Ok(EyeOpenness::from_contour(slice));
        }
    }
    Err(runner.error("expected a 71×3 eye contour output"))
}

/// The crop region of one eye from its two mesh corners, given image-left corner first (so the region's x axis
/// runs left to right across the image).
fn eye_roi(landmarks: &Landmarks, first: usize, second: usize) -> Result<Roi, VisionError> {
    let ((x0, y0), (x1, y1)) = (landmarks.xy(first), landmarks.xy(second));
    let width = (x1 - x0).hypot(y1 - y0);
    if !(width > 1.0 && width.is_finite()) {
        return Err(VisionError::invalid_frame(
            FrameProblem::Size,
            format!("eye corners ({x0}, {y0}) and ({x1}, {y1}) are too close for an eye crop"),
        ));
    }
    Ok(Roi {
        cx: (x0 + x1) * 0.5,
        cy: (y0 + y1) * 0.5,
        size: width * ROI_SCALE,
        angle: (y1 - y0).atan2(x1 - x0),
    })
}

/// `to_src` preceded by a horizontal mirror of the `INPUT`-wide crop: crop column `u` samples column `INPUT − u`.
fn mirrored(to_src: Affine) -> Affine {
    let [a, b, c, d, e, f] = to_src.m;
    let n = INPUT as f32;
    Affine {
        m: [-a, b, c + a * n, -d, e, f + d * n],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::detect::Detector;
    use crate::vision::frame::decode_file;
    use crate::vision::landmarks::FaceMesh;
    use crate::vision::model::{
        ModelManifest, default_models_dir, read_model_file, test_shared_dir,
    };
    use crate::vision::pipeline::{DETECTOR_MODEL, EYES_MODEL, MESH_MODEL};

    fn committed(name: &str) -> (ModelEntry, Vec<u8>) {
        let manifest = ModelManifest::load(&default_models_dir()).expect("models/manifest.toml");
        let entry = manifest.entry(name).expect("manifest entry").clone();
        let bytes = read_model_file(&default_models_dir(), &entry).expect("committed model file");
        (entry, bytes)
    }

    /// Eye openness of the largest face on frame `index` (0-based) of the live blink clip.
    fn clip_frame_openness(index: usize) -> EyeOpenness {
        clip_frame_openness_with(index, PARALLEL_BY_DEFAULT)
    }

    /// The same, with the two eyes run at once (`parallel`) or one after the other.
    fn clip_frame_openness_with(index: usize, parallel: bool) -> EyeOpenness {
        let (entry, bytes) = committed(DETECTOR_MODEL);
        let mut detector = Detector::new(&entry, &bytes).unwrap();
        let (entry, bytes) = committed(MESH_MODEL);
        let mut mesh = FaceMesh::new(&entry, &bytes).unwrap();
        let (entry, bytes) = committed(EYES_MODEL);
        let mut eyes = EyeModel::new(&entry, &bytes).unwrap();
        eyes.set_parallel(parallel);
        let path = test_shared_dir()
            .join("data/clips/live-blink-7")
            .join(format!("{:05}.jpg", index + 1));
        let image = decode_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let face = detector
            .run(&image)
            .unwrap()
            .into_iter()
            .max_by(|a, b| (a.rect.w * a.rect.h).total_cmp(&(b.rect.w * b.rect.h)))
            .expect("a face on the blink clip frame");
        let landmarks = mesh.run(&image, &Roi::from_face(&face)).unwrap();
        eyes.run(&image, &landmarks).unwrap()
    }

    #[test]
    fn wrong_hash_model_is_refused() {
        let (entry, _) = committed(EYES_MODEL);
        let (_, mesh_bytes) = committed(MESH_MODEL);
        for bytes in [&b"not a model"[..], &mesh_bytes] {
            match EyeModel::new(&entry, bytes) {
                Err(VisionError::ModelHash { name, .. }) => assert_eq!(name, EYES_MODEL),
                other => panic!("expected ModelHash, got {:?}", other.map(|_| ())),
            }
        }
        // The face mesh's entry (192×192 input) with its own bytes is refused by this stage's input check.
        let (mesh_entry, _) = committed(MESH_MODEL);
        assert!(matches!(
            EyeModel::new(&mesh_entry, &mesh_bytes),
            Err(VisionError::ModelLoad { .. })
        ));
    }

    #[test]
    fn closed_eyes_read_far_below_open_eyes_on_real_frames() {
        // live-blink-7: frames 20 and 50 are open, 25 and 57 the deepest frames of two blinks (see
        // docs/vision-evaluation.md, "Eye openness").
        let open = [20, 50].map(clip_frame_openness);
        let closed = [25, 57].map(clip_frame_openness);
        for o in &open {
            assert!(o.right > 0.75 && o.left > 0.75, "open frame reads {o:?}");
            // The mirrored left-eye crop reads like the right one on an open, frontal face.
            assert!((o.right - o.left).abs() < 0.2, "eyes disagree: {o:?}");
        }
        for c in &closed {
            assert!(c.mean() < 0.5, "closed frame reads {c:?}");
            for o in &open {
                assert!(c.mean() < 0.55 * o.mean(), "closed {c:?} vs open {o:?}");
            }
        }
    }

    #[test]
    fn parallel_and_serial_eyes_read_the_same() {
        // An open frame and a blink: each eye's run state is its own, so the threads change nothing.
        for index in [20, 25] {
            let parallel = clip_frame_openness_with(index, true);
            let serial = clip_frame_openness_with(index, false);
            assert!(parallel.right > 0.0 && parallel.left > 0.0, "{parallel:?}");
            assert_eq!(parallel, serial, "frame {index}");
        }
    }

    /// A contour with the corners `width` apart and every lid pair `gap` apart.
    fn contour(width: f32, gap: f32) -> Vec<f32> {
        let mut c = vec![0.0f32; CONTOUR_POINTS * 3];
        c[3 * INNER_CORNER] = width;
        for (k, &(u, l)) in LID_PAIRS.iter().enumerate() {
            let x = width * (k as f32 + 1.0) / 6.0;
            c[3 * u] = x;
            c[3 * u + 1] = -gap * 0.5;
            c[3 * l] = x;
            c[3 * l + 1] = gap * 0.5;
        }
        c
    }

    #[test]
    fn openness_is_the_lid_gap_over_the_width_scaled_to_open() {
        let open = EyeOpenness::from_contour(&contour(30.0, 30.0 * EyeOpenness::OPEN_RATIO));
        assert!((open - 1.0).abs() < 1e-5, "{open}");
        let half = EyeOpenness::from_contour(&contour(60.0, 30.0 * EyeOpenness::OPEN_RATIO));
        assert!((half - 0.5).abs() < 1e-5, "{half}");
        assert_eq!(EyeOpenness::from_contour(&contour(30.0, 0.0)), 0.0);
        assert_eq!(EyeOpenness::from_contour(&contour(0.0, 5.0)), 0.0);
        assert_eq!(EyeOpenness::from_contour(&contour(10.0, 50.0)), 1.5);
    }

    #[test]
    fn mirrored_map_flips_the_crop_columns() {
        let roi = Roi {
            cx: 100.0,
            cy: 50.0,
            size: 32.0,
            angle: 0.3,
        };
        let (plain, flipped) = (roi.crop_map(INPUT), mirrored(roi.crop_map(INPUT)));
        for (u, v) in [(0.0, 0.0), (10.0, 20.0), (64.0, 5.0)] {
            let (a, b) = (plain.apply(INPUT as f32 - u, v), flipped.apply(u, v));
            assert!(
                (a.0 - b.0).abs() < 1e-4 && (a.1 - b.1).abs() < 1e-4,
                "{a:?} {b:?}"
            );
        }
    }
}
