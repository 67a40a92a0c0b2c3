//! Picking frames: the best few good frames of a capture, spread over time, kept for embedding.
//!
//! Only frames whose single face passes the liveness quality gates (lit, sharp, large, frontal, eyes open) are
//! considered; picks are kept at least [`MIN_PICK_GAP_S`] apart so they come from different moments, and a better
//! frame replaces a worse one. Enrolment embeds its picks into the template, a payment into its probes.

use std::borrow::{Borrow, BorrowMut};

use crate::liveness::{FaceObservation, LivenessPolicy, LivenessSession};
use crate::vision::image::RgbImage;
use crate::vision::landmarks::Landmarks;
use crate::vision::pipeline::Vision;

/// Smallest time between two picked frames, in seconds.
pub const MIN_PICK_GAP_S: f64 = 0.25;

/// One kept frame: a copy of the image and the face's mesh.
#[derive(Debug)]
struct Pick {
    frame_index: u64,
    t: f64,
    score: f32,
    image: RgbImage,
    landmarks: Landmarks,
}

/// Keeps the best few good frames of a session, spread over time (bounded: at most `keep` image copies).
#[derive(Debug)]
pub struct FramePicker {
    keep: usize,
    picks: Vec<Pick>,
}

impl FramePicker {
    /// A picker keeping at most `keep` frames.
    pub fn new(keep: usize) -> Self {
        Self {
            keep: keep.max(1),
            picks: Vec::new(),
        }
    }

    /// Offers the frame the session has just analysed (`image`, taken at `t`): kept when its single face passes
    /// the session's quality gates and it beats a kept frame.
    pub fn offer_last<V: Borrow<Vision> + BorrowMut<Vision>>(
        &mut self,
        session: &LivenessSession<V>,
        image: &RgbImage,
        t: f64,
    ) {
        let (Some(obs), Some(analysis)) = (session.last_observation(), session.last_analysis())
        else {
            return;
        };
        let (Some(face), Some(primary)) = (obs.face.as_ref(), analysis.primary.as_ref()) else {
            return;
        };
        if obs.face_count != 1 || !session.machine().is_good_face(face) || !t.is_finite() {
            return;
        }
        let score = frame_score(face, session.machine().policy());
        let frame_index = session.machine().frames().saturating_sub(1);
        self.offer(frame_index, t, score, image, &primary.landmarks);
    }

    fn offer(
        &mut self,
        frame_index: u64,
        t: f64,
        score: f32,
        image: &RgbImage,
        landmarks: &Landmarks,
    ) {
        let slot = match self
            .picks
            .iter()
            .position(|p| (p.t - t).abs() < MIN_PICK_GAP_S)
        {
            Some(near) if self.picks[near].score < score => near,
            Some(_) => return,
            None if self.picks.len() < self.keep => {
                self.picks.push(Pick {
                    frame_index,
                    t,
                    score,
                    image: image.clone(),
                    landmarks: landmarks.clone(),
                });
                return;
            }
            None => match (0..self.picks.len())
                .min_by(|&a, &b| self.picks[a].score.total_cmp(&self.picks[b].score))
            {
                Some(worst) if self.picks[worst].score < score => worst,
                _ => return,
            },
        };
        let p = &mut self.picks[slot];
        p.image.width = image.width;
        p.image.height = image.height;
        p.image.data.clear();
        p.image.data.extend_from_slice(&image.data);
        p.landmarks = landmarks.clone();
        (p.frame_index, p.t, p.score) = (frame_index, t, score);
    }

    /// Number of frames kept.
    pub fn len(&self) -> usize {
        self.picks.len()
    }

    /// Whether no frame was kept.
    pub fn is_empty(&self) -> bool {
        self.picks.is_empty()
    }

    /// Frame indices of the kept frames, in time order.
    pub fn frame_indices(&self) -> Vec<u64> {
        let mut v: Vec<(f64, u64)> = self.picks.iter().map(|p| (p.t, p.frame_index)).collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v.into_iter().map(|(_, i)| i).collect()
    }

    /// Embeds the kept frames (a frame the embedder fails on is left out), in time order.
    pub fn embed(mut self, vision: &mut Vision) -> Vec<Vec<f32>> {
        self.picks.sort_by(|a, b| a.t.total_cmp(&b.t));
        self.picks
            .iter()
            .filter_map(|p| vision.embed_face(&p.image, &p.landmarks).ok())
            .map(|e| e.values)
            .collect()
    }
}

/// Frame score for picking: frontal, sharp, eyes open, well lit (each term 0..1, summed).
fn frame_score(face: &FaceObservation, policy: &LivenessPolicy) -> f32 {
    let p = &policy.placement;
    let frontal = 1.0
        - (face.yaw_deg.abs() / p.max_yaw_deg.max(1.0)).min(1.0) * 0.5
        - (face.pitch_deg.abs() / p.max_pitch_deg.max(1.0)).min(1.0) * 0.5;
    let sharp = (face.quality.sharpness / (4.0 * policy.quality.min_sharpness.max(1.0))).min(1.0);
    let eyes = face.mean_eye_openness().clamp(0.0, 1.0);
    let light = 1.0 - ((face.quality.brightness - 128.0).abs() / 128.0).min(1.0);
    let s = frontal + sharp + eyes + light;
    if s.is_finite() { s } else { 0.0 }
}
