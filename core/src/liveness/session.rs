//! [`LivenessSession`]: camera frames in, guidance out — the vision pipeline feeding the [`LivenessMachine`].
//!
//! Per frame: convert once (into a reused buffer) ▸ `Vision::analyze` (detect-or-track, mesh, pose, eyes,
//! quality) ▸ an [`Observation`] ▸ the machine. The passive anti-spoof models run only on the frames the machine
//! asks for (at most `passive.max_samples`, spread out), and the embedder runs once, on the best frame, when the
//! verdict is out — never on the hot path. A frame that cannot be converted or analysed counts as a frame without
//! a face (the error is counted, not returned): bad input never panics and never stops the session.
//!
//! Memory is bounded: besides the machine's fixed state, the session keeps the conversion buffer, the last
//! analysis and one copy of the best frame so far.

use std::borrow::BorrowMut;

use super::guidance::Guidance;
use super::machine::LivenessMachine;
use super::observation::{FaceObservation, FaceQuality, NormPoint, NormRect, Observation};
use super::policy::LivenessPolicy;
use super::verdict::Verdict;
use super::{Challenge, challenges_for_nonce};
use crate::vision::align::aligned_crop;
use crate::vision::embed::Embedding;
use crate::vision::frame::Frame;
use crate::vision::image::RgbImage;
use crate::vision::landmarks::Landmarks;
use crate::vision::pipeline::{FrameAnalysis, Tracking, Vision};

/// Mesh indices of the face outline (forehead, temples, jaw, chin), clockwise from the top of the forehead.
pub const FACE_OVAL: [usize; 36] = [
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
    148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
];

/// The best frame for matching, returned with the verdict (kept in memory only; the core never writes it).
#[derive(Debug, Clone)]
pub struct BestFrame {
    /// Index of the frame it came from.
    pub frame_index: u64,
    /// Its selection score (frontal, sharp, eyes open, well lit; higher is better).
    pub score: f32,
    /// The face aligned to the embedder's 112×112 template.
    pub aligned_crop: RgbImage,
    /// The unit-length embedding of the crop, when the embedder produced one.
    pub embedding: Option<Embedding>,
}

/// The candidate best frame while the session runs.
#[derive(Debug)]
struct Candidate {
    frame_index: u64,
    score: f32,
    image: RgbImage,
    landmarks: Landmarks,
}

/// A liveness session over a [`Vision`] pipeline, owned (`LivenessSession<Vision>`) or borrowed
/// (`LivenessSession<&mut Vision>`).
#[derive(Debug)]
pub struct LivenessSession<V: BorrowMut<Vision>> {
    vision: V,
    machine: LivenessMachine,
    buffer: RgbImage,
    last: Option<FrameAnalysis>,
    last_observation: Option<Observation>,
    candidate: Option<Candidate>,
    best: Option<BestFrame>,
    frame_errors: u64,
}

impl<V: BorrowMut<Vision>> LivenessSession<V> {
    /// A session for the payment with server `nonce`: its challenges are [`challenges_for_nonce`].
    pub fn new(vision: V, policy: LivenessPolicy, nonce: [u8; 32]) -> Self {
        Self::with_challenges(vision, policy, nonce, challenges_for_nonce(&nonce))
    }

    /// A session asking an explicit challenge list (QA replay, tests); the verdict still records `nonce`.
    pub fn with_challenges(
        mut vision: V,
        policy: LivenessPolicy,
        nonce: [u8; 32],
        challenges: Vec<Challenge>,
    ) -> Self {
        let tracking = Tracking {
            redetect_every: policy.vision.redetect_every,
            ..Tracking::default()
        };
        let pipeline = vision.borrow_mut();
        pipeline.set_tracking(tracking);
        pipeline.set_parallel_eyes(policy.vision.parallel_eyes);
        let passive = pipeline.has_antispoof();
        Self {
            vision,
            machine: LivenessMachine::new(policy, nonce, challenges, passive),
            buffer: RgbImage::default(),
            last: None,
            last_observation: None,
            candidate: None,
            best: None,
            frame_errors: 0,
        }
    }

    /// Feeds one camera frame taken at `timestamp_s` (seconds, any origin, increasing).
    pub fn push_frame(&mut self, frame: &Frame<'_>, timestamp_s: f64) -> Guidance {
        let mut buffer = std::mem::take(&mut self.buffer);
        let g = match frame.to_rgb_into(&mut buffer) {
            Ok(()) => self.push_image_mirrored(&buffer, frame.mirror, timestamp_s),
            Err(_) => {
                self.frame_errors += 1;
                self.push_observation(Observation::empty(frame.width, frame.height), timestamp_s)
            }
        };
        self.buffer = buffer;
        g
    }

    /// Feeds a frame that could not be read at all (e.g. an unreadable file): it counts as an error and as a frame
    /// without a face.
    pub fn push_unreadable(&mut self, timestamp_s: f64) -> Guidance {
        self.frame_errors += 1;
        self.last = None;
        self.push_observation(Observation::empty(0, 0), timestamp_s)
    }

    /// Feeds an upright, unmirrored RGB image taken at `timestamp_s` (e.g. a decoded clip frame).
    pub fn push_image(&mut self, image: &RgbImage, timestamp_s: f64) -> Guidance {
        self.push_image_mirrored(image, false, timestamp_s)
    }

    /// Feeds an upright RGB image; `mirrored` says it was flipped left–right (a front camera's preview), so yaw
    /// and the eyes are swapped back to the shopper's own left and right.
    pub fn push_image_mirrored(
        &mut self,
        image: &RgbImage,
        mirrored: bool,
        timestamp_s: f64,
    ) -> Guidance {
        let analysis = match self.vision.borrow_mut().analyze(image) {
            Ok(a) => a,
            Err(_) => {
                self.frame_errors += 1;
                self.last = None;
                return self
                    .push_observation(Observation::empty(image.width, image.height), timestamp_s);
            }
        };
        let mut obs = observation(&analysis, image.width, image.height, mirrored);
        if self.machine.wants_passive_sample(&obs)
            && let (Some(face), Some(primary)) = (obs.face.as_mut(), analysis.primary.as_ref())
        {
            match self.vision.borrow_mut().antispoof(image, &primary.face) {
                Ok(score) => face.passive_score = score,
                Err(_) => self.frame_errors += 1,
            }
        }
        self.consider_best(&obs, &analysis, image);
        self.last = Some(analysis);
        self.push_observation(obs, timestamp_s)
    }

    /// Pushes the observation and, when this frame produced the verdict, finalises the best frame.
    fn push_observation(&mut self, obs: Observation, t: f64) -> Guidance {
        let before = self.machine.verdict().is_some();
        let g = self.machine.push(&obs, t);
        self.last_observation = Some(obs);
        if !before && self.machine.verdict().is_some() {
            self.finalise_best();
        }
        g
    }

    /// Keeps a copy of this frame when it is the best so far (only while the session runs).
    fn consider_best(&mut self, obs: &Observation, analysis: &FrameAnalysis, image: &RgbImage) {
        if self.machine.verdict().is_some() || obs.face_count != 1 {
            return;
        }
        let (Some(face), Some(primary)) = (obs.face.as_ref(), analysis.primary.as_ref()) else {
            return;
        };
        if !self.machine.is_good_face(face) {
            return;
        }
        let score = best_frame_score(face, self.machine.policy());
        if self.candidate.as_ref().is_some_and(|c| c.score >= score) {
            return;
        }
        let frame_index = self.machine.frames();
        match self.candidate.as_mut() {
            Some(c) => {
                c.image.width = image.width;
                c.image.height = image.height;
                c.image.data.clear();
                c.image.data.extend_from_slice(&image.data);
                c.landmarks = primary.landmarks.clone();
                c.score = score;
                c.frame_index = frame_index;
            }
            None => {
                self.candidate = Some(Candidate {
                    frame_index,
                    score,
                    image: image.clone(),
                    landmarks: primary.landmarks.clone(),
                })
            }
        }
    }

    /// Aligns and embeds the best frame (once, when the verdict is out).
    fn finalise_best(&mut self) {
        let Some(c) = self.candidate.take() else {
            return;
        };
        let Some(aligned) = aligned_crop(&c.image, &c.landmarks) else {
            return;
        };
        let embedding = self
            .vision
            .borrow_mut()
            .embed_face(&c.image, &c.landmarks)
            .ok();
        self.best = Some(BestFrame {
            frame_index: c.frame_index,
            score: c.score,
            aligned_crop: aligned,
            embedding,
        });
    }

    /// The verdict, once the session has ended.
    pub fn verdict(&self) -> Option<&Verdict> {
        self.machine.verdict()
    }

    /// The best frame for matching (available with the verdict; `None` if no frame was good enough).
    pub fn best_frame(&self) -> Option<&BestFrame> {
        self.best.as_ref()
    }

    /// The state machine (policy, challenges, frame count).
    pub fn machine(&self) -> &LivenessMachine {
        &self.machine
    }

    /// The vision analysis of the last frame (`None` if it could not be analysed).
    pub fn last_analysis(&self) -> Option<&FrameAnalysis> {
        self.last.as_ref()
    }

    /// The observation the machine saw for the last frame.
    pub fn last_observation(&self) -> Option<&Observation> {
        self.last_observation.as_ref()
    }

    /// Frames that could not be converted or analysed (counted as frames without a face).
    pub fn frame_errors(&self) -> u64 {
        self.frame_errors
    }

    /// Gives the pipeline back (e.g. to start the next session without reloading the models).
    pub fn into_vision(self) -> V {
        self.vision
    }
}

/// The observation of one analysed frame; `mirrored` images have their yaw and eyes swapped back.
pub fn observation(
    analysis: &FrameAnalysis,
    width: u32,
    height: u32,
    mirrored: bool,
) -> Observation {
    let (w, h) = (width.max(1) as f32, height.max(1) as f32);
    let face = analysis.primary.as_ref().map(|p| {
        let r = p.face.rect;
        let contour = FACE_OVAL
            .iter()
            .map(|&i| p.landmarks.xy(i))
            .map(|(x, y)| NormPoint { x: x / w, y: y / h })
            .collect();
        let (yaw, eyes) = if mirrored {
            (-p.pose.yaw, [p.eyes.left, p.eyes.right])
        } else {
            (p.pose.yaw, [p.eyes.right, p.eyes.left])
        };
        FaceObservation {
            bbox: NormRect {
                x: r.x / w,
                y: r.y / h,
                w: r.w / w,
                h: r.h / h,
            },
            contour,
            yaw_deg: yaw,
            pitch_deg: p.pose.pitch,
            roll_deg: if mirrored { -p.pose.roll } else { p.pose.roll },
            eye_openness: eyes,
            quality: FaceQuality {
                brightness: analysis.quality.brightness,
                contrast: analysis.quality.contrast,
                sharpness: analysis.quality.sharpness,
                face_size_px: analysis.quality.face_size_px,
            },
            passive_score: None,
        }
    });
    let face_count = if face.is_some() {
        analysis.faces.len().max(1)
    } else {
        0
    };
    Observation {
        frame_width: width,
        frame_height: height,
        face_count,
        face,
    }
}

/// Best-frame score: frontal, sharp, eyes open, well lit (each term 0..1, summed).
fn best_frame_score(face: &FaceObservation, policy: &LivenessPolicy) -> f32 {
    let p = &policy.placement;
    let frontal = 1.0
        - 0.5
            * (face.yaw_deg.abs() / p.max_yaw_deg.max(1.0)
                + face.pitch_deg.abs() / p.max_pitch_deg.max(1.0))
            .min(2.0);
    let sharp = (face.quality.sharpness / (4.0 * policy.quality.min_sharpness.max(1.0))).min(1.0);
    let eyes = face.mean_eye_openness().min(1.0);
    let light = 1.0 - ((face.quality.brightness - 128.0).abs() / 128.0).min(1.0);
    let s = frontal + sharp + eyes + light;
    if s.is_finite() { s } else { 0.0 }
}
