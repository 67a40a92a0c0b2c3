//! Enrolment: a liveness-passed capture ▸ 3–5 good frames spread over the session ▸ embeddings ▸ a template
//! sealed into the [`TemplateStore`](crate::template::TemplateStore); and registration of the device key with
//! the checkout server.
//!
//! The capture is the one the payment flow runs too ([`crate::capture`]): the frames are chosen by its
//! [`FramePicker`](crate::capture::FramePicker) as the session runs.

use std::sync::Arc;

use ring::rand::{SecureRandom, SystemRandom};

use crate::capture::{Capture, CaptureStage};
use crate::checkout::protocol::{Challenge, challenges_for_nonce};
use crate::checkout::wire::RegisterDeviceResponse;
use crate::flow::{
    EnrolmentStep, EnrolmentSummary, FacePay, FacePayError, FlowEvent, FlowListener, Shared,
    StorageFailure,
};
use crate::liveness::Guidance;
use crate::template::{MAX_EMBEDDINGS, MIN_EMBEDDINGS, enrol};
use crate::vision::frame::Frame;
use crate::vision::image::RgbImage;
use crate::vision::pipeline::Vision;

/// Frames embedded for an enrolment template (at most; at least [`MIN_EMBEDDINGS`] are needed).
pub const ENROL_FRAMES: usize = MAX_EMBEDDINGS;
/// What an enrolment capture became once its session decided.
type Enrolled = Result<EnrolmentSummary, FacePayError>;

/// One enrolment: frames in (synchronously) until the template is stored.
pub struct EnrolmentCapture {
    shared: Arc<Shared>,
    stage: CaptureStage<Enrolled>,
    challenges: Vec<Challenge>,
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
    ) -> Result<EnrolmentCapture, FacePayError> {
        let mut nonce = [0u8; 32];
        SystemRandom::new().fill(&mut nonce).map_err(|_| {
            FacePayError::storage(StorageFailure::Random, "random generator failed")
        })?;
        let challenges = self
            .shared
            .enrolment_challenges
            .clone()
            .unwrap_or_else(|| challenges_for_nonce(&nonce));
        let lease = self.shared.lease_vision()?;
        let capture = Capture::new(
            lease,
            &self.shared.policy,
            nonce,
            challenges.clone(),
            ENROL_FRAMES,
        );
        Ok(EnrolmentCapture {
            shared: self.shared.clone(),
            stage: CaptureStage::new(capture, listener),
            challenges,
        })
    }

    /// Registers this device's public key with the checkout server, with the single-use enrolment token the
    /// merchant's backend obtained for the shopper's account.
    pub async fn register_device(
        &self,
        enrollment_token: &str,
    ) -> Result<RegisterDeviceResponse, FacePayError> {
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
    /// The challenges the shopper must perform, in order.
    pub fn challenges(&self) -> Vec<Challenge> {
        self.challenges.clone()
    }

    /// Feeds one camera frame taken at `timestamp_s` (seconds, increasing).
    pub fn push_frame(
        &self,
        frame: &Frame<'_>,
        timestamp_s: f64,
    ) -> Result<EnrolmentStep, FacePayError> {
        self.push(|c| c.push_frame(frame, timestamp_s))
    }

    /// Feeds an upright, unmirrored RGB image taken at `timestamp_s`.
    pub fn push_image(
        &self,
        image: &RgbImage,
        timestamp_s: f64,
    ) -> Result<EnrolmentStep, FacePayError> {
        self.push(|c| (c.push_image(image, false, timestamp_s), None))
    }

    /// Stops the capture; nothing is stored. Later frames answer [`FacePayError::Cancelled`].
    pub fn cancel(&self) {
        self.stage.cancel(|_| false, Err(FacePayError::Cancelled));
    }

    fn push(
        &self,
        feed: impl FnOnce(&mut Capture) -> (Guidance, Option<FacePayError>),
    ) -> Result<EnrolmentStep, FacePayError> {
        self.stage.push(
            feed,
            EnrolmentStep::Capturing,
            || Err(FacePayError::Cancelled),
            |capture, events| {
                let result = self.finish(capture);
                events.push(match &result {
                    Ok(s) => FlowEvent::Enrolled(s.clone()),
                    Err(e) => FlowEvent::Failed(e.clone()),
                });
                (result.clone(), result.map(EnrolmentStep::Enrolled))
            },
            |done| done.clone().map(EnrolmentStep::Enrolled),
        )
    }

    /// Verdict ▸ embeddings ▸ template ▸ sealed store.
    fn finish(&self, capture: Capture) -> Result<EnrolmentSummary, FacePayError> {
        let verdict = capture.passed_verdict()?;
        if capture.picker.len() < MIN_EMBEDDINGS {
            return Err(if capture.picker.is_empty() {
                FacePayError::NoFace
            } else {
                FacePayError::TooFewFrames {
                    found: capture.picker.len() as u32,
                    needed: MIN_EMBEDDINGS as u32,
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
            return Err(FacePayError::TooFewFrames {
                found: embeddings.len() as u32,
                needed: MIN_EMBEDDINGS as u32,
            });
        }
        let min_agreement = min_pairwise(&embeddings);
        let count = embeddings.len() as u32;
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
