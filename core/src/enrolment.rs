//! Enrolment: a liveness-passed capture ▸ 3–5 good frames spread over the session ▸ embeddings ▸ a template
//! sealed into the [`TemplateStore`](crate::template::TemplateStore); and registration of the device key with
//! the checkout server.
//!
//! The frames are chosen by a [`FramePicker`] as the session runs: only frames whose single face passes the
//! liveness quality gates (lit, sharp, large, frontal, eyes open) are considered; picks are kept at least
//! [`MIN_PICK_GAP_S`] apart so they come from different moments, and a better frame replaces a worse one. The
//! payment flow uses the same picker for its probe frames.

use std::borrow::Borrow;
use std::sync::{Arc, Mutex};

use ring::rand::{SecureRandom, SystemRandom};

use crate::checkout::protocol::challenges_for_nonce;
use crate::checkout::wire::RegisterDeviceResponse;
use crate::flow::{
    Capture, EnrolmentStep, EnrolmentSummary, FacePay, FlowError, FlowEvent, FlowListener, Shared,
    lock,
};
use crate::liveness::{FaceObservation, Guidance, LivenessPolicy, LivenessSession};
use crate::template::{MAX_EMBEDDINGS, MIN_EMBEDDINGS, enrol};
use crate::vision::frame::Frame;
use crate::vision::image::RgbImage;
use crate::vision::landmarks::Landmarks;
use crate::vision::pipeline::Vision;

/// Frames embedded for an enrolment template (at most; at least [`MIN_EMBEDDINGS`] are needed).
pub const ENROL_FRAMES: usize = MAX_EMBEDDINGS;
/// Frames embedded as probes for a payment's match.
pub const PROBE_FRAMES: usize = 3;
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
    pub fn offer_last<V: Borrow<Vision> + std::borrow::BorrowMut<Vision>>(
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

/// Where an enrolment capture is.
enum Stage {
    Capturing(Box<Capture>),
    Finished(Result<EnrolmentSummary, FlowError>),
}

/// One enrolment: frames in (synchronously) until the template is stored.
pub struct EnrolmentCapture {
    shared: Arc<Shared>,
    listener: Arc<dyn FlowListener>,
    stage: Mutex<Stage>,
}

impl std::fmt::Debug for EnrolmentCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolmentCapture").finish_non_exhaustive()
    }
}

impl FacePay {
    /// Starts an enrolment capture (no network). Its challenges are the configured enrolment challenges, or
    /// derived from a fresh random nonce. A successful capture replaces any stored template atomically.
    pub fn start_enrolment(
        &self,
        listener: Arc<dyn FlowListener>,
    ) -> Result<EnrolmentCapture, FlowError> {
        let mut nonce = [0u8; 32];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| FlowError::Storage("random generator failed".into()))?;
        let challenges = self
            .shared
            .enrolment_challenges
            .clone()
            .unwrap_or_else(|| challenges_for_nonce(&nonce));
        let lease = self.shared.lease_vision()?;
        let session =
            LivenessSession::with_challenges(lease, self.shared.policy.clone(), nonce, challenges);
        Ok(EnrolmentCapture {
            shared: self.shared.clone(),
            listener,
            stage: Mutex::new(Stage::Capturing(Box::new(Capture::new(
                session,
                ENROL_FRAMES,
            )))),
        })
    }

    /// Registers this device's public key with the checkout server, with the single-use enrolment token the
    /// merchant's backend obtained for the shopper's account.
    pub async fn register_device(
        &self,
        enrollment_token: &str,
    ) -> Result<RegisterDeviceResponse, FlowError> {
        Ok(self
            .shared
            .client
            .register_device(
                enrollment_token,
                &self.shared.device_id,
                self.shared.signer.as_ref(),
            )
            .await?)
    }
}

impl EnrolmentCapture {
    /// Feeds one camera frame taken at `timestamp_s` (seconds, increasing).
    pub fn push_frame(
        &self,
        frame: &Frame<'_>,
        timestamp_s: f64,
    ) -> Result<EnrolmentStep, FlowError> {
        self.push(|c| c.push_frame(frame, timestamp_s))
    }

    /// Feeds an upright, unmirrored RGB image taken at `timestamp_s`.
    pub fn push_image(
        &self,
        image: &RgbImage,
        timestamp_s: f64,
    ) -> Result<EnrolmentStep, FlowError> {
        self.push(|c| c.push_image(image, false, timestamp_s))
    }

    /// Stops the capture; nothing is stored. Later frames answer [`FlowError::Cancelled`].
    pub fn cancel(&self) {
        let mut stage = lock(&self.stage);
        if matches!(*stage, Stage::Capturing(_)) {
            *stage = Stage::Finished(Err(FlowError::Cancelled));
            drop(stage);
            self.listener
                .on_event(FlowEvent::Failed(FlowError::Cancelled));
        }
    }

    fn push(
        &self,
        feed: impl FnOnce(&mut Capture) -> Guidance,
    ) -> Result<EnrolmentStep, FlowError> {
        let mut events = Vec::new();
        let answer = {
            let mut stage = lock(&self.stage);
            match &mut *stage {
                Stage::Capturing(capture) => {
                    let g = feed(capture);
                    events.push(FlowEvent::Guidance(g));
                    if capture.session.verdict().is_some() {
                        events.push(FlowEvent::Verifying);
                        let done = std::mem::replace(
                            &mut *stage,
                            Stage::Finished(Err(FlowError::Cancelled)),
                        );
                        let Stage::Capturing(capture) = done else {
                            unreachable!("matched above")
                        };
                        let result = self.finish(*capture);
                        events.push(match &result {
                            Ok(s) => FlowEvent::Enrolled(s.clone()),
                            Err(e) => FlowEvent::Failed(e.clone()),
                        });
                        *stage = Stage::Finished(result.clone());
                        result.map(EnrolmentStep::Enrolled)
                    } else {
                        Ok(EnrolmentStep::Capturing(g))
                    }
                }
                Stage::Finished(r) => r.clone().map(EnrolmentStep::Enrolled),
            }
        };
        events.into_iter().for_each(|e| self.listener.on_event(e));
        answer
    }

    /// Verdict ▸ embeddings ▸ template ▸ sealed store.
    fn finish(&self, capture: Capture) -> Result<EnrolmentSummary, FlowError> {
        let verdict = capture.passed_verdict()?;
        if capture.picker.len() < MIN_EMBEDDINGS {
            return Err(if capture.picker.is_empty() {
                FlowError::NoFace
            } else {
                FlowError::TooFewFrames {
                    found: capture.picker.len(),
                    needed: MIN_EMBEDDINGS,
                }
            });
        }
        let frames = capture.picker.frame_indices();
        let Capture {
            session, picker, ..
        } = capture;
        let mut lease = session.into_vision();
        let embeddings = picker.embed(std::borrow::BorrowMut::<Vision>::borrow_mut(&mut lease));
        drop(lease);
        if embeddings.len() < MIN_EMBEDDINGS {
            return Err(FlowError::TooFewFrames {
                found: embeddings.len(),
                needed: MIN_EMBEDDINGS,
            });
        }
        let min_agreement = min_pairwise(&embeddings);
        let count = embeddings.len();
        let template = enrol(embeddings, self.shared.models.embedder.clone())?;
        self.shared.templates.save(&template)?;
        Ok(EnrolmentSummary {
            embeddings: count,
            frames,
            frames_used: verdict.frames,
            min_agreement,
            model: template.model().to_owned(),
            passive_score: verdict.passive_score,
        })
    }
}

/// Lowest cosine similarity between two unit vectors of the list (1 for fewer than two).
fn min_pairwise(v: &[Vec<f32>]) -> f32 {
    let mut min = 1.0f32;
    for i in 0..v.len() {
        for j in i + 1..v.len() {
            min = min.min(v[i].iter().zip(&v[j]).map(|(a, b)| a * b).sum());
        }
    }
    min
}
