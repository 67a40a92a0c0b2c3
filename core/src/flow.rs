//! The pay flow: Buy ▸ selfie ▸ receipt, on one [`FacePay`] handle.
//!
//! [`FacePay::start_payment`] fetches the server's nonce and challenge list for the merchant's order and opens a
//! [`PaymentSession`]; the caller pushes camera frames into it **synchronously** (the app's camera, a clip folder,
//! a webcam) and gets guidance back for each; when liveness passes, the session matches the best frames against
//! the enrolled template; [`PaymentSession::pay`] then takes the next device counter (persisted first), signs the
//! payment with the [`DeviceSigner`] and submits it, returning a [`Receipt`]. Enrolment is the same shape
//! ([`FacePay::start_enrolment`], see [`crate::enrolment`]).
//!
//! Everything is built to be exposed through uniffi as it is: object handles (`FacePay`, `PaymentSession`,
//! `EnrolmentCapture`) shared behind `Arc`, plain records and enums, one error enum ([`FacePayError`]) with a variant
//! per failure kind, a [`FlowListener`] callback for the UI, `async` only where the flow waits on the network.
//! [`PaymentSession::cancel`] stops a session at any point (also while the payment is in flight); dropping a
//! session or a `start_payment` future gives the vision pipeline back.

mod counter;
mod error;
mod events;
mod models;

use std::borrow::BorrowMut;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use counter::{COUNTER_FILE, CounterFile};
pub use error::{
    ConfigSetting, FacePayError, NetworkFailure, ProtocolViolation, SessionState, SignerFailure,
    StorageFailure, TemplateProblem, VisionFailure,
};
pub use events::{
    EnrolmentStep, EnrolmentSummary, FlowEvent, FlowListener, NoListener, PaymentStep, Receipt,
};
pub use models::ModelInfo;

use crate::capture::{Capture, CaptureStage, Stage, VisionLease, VisionSlot, lock, now_ms};
use crate::checkout::client::{CheckoutClient, ClientConfig, payment_payload, sign_payment};
use crate::checkout::protocol::{Challenge, Evidence, LivenessVerdict, OrderRef, check_id};
use crate::checkout::signer::DeviceSigner;
use crate::checkout::wire::ChallengeResponse;
use crate::liveness::{LivenessPolicy, Verdict};
use crate::matcher::{MatchResult, match_template};
use crate::template::{KeyStore, Template, TemplateStore};
use crate::vision::frame::Frame;
use crate::vision::image::RgbImage;
use crate::vision::pipeline::Vision;

/// Frames embedded as probes for a payment's match.
pub const PROBE_FRAMES: usize = 3;

/// Everything a [`FacePay`] handle needs besides the loaded models and the keys.
#[derive(Debug, Clone)]
pub struct FacePayConfig {
    /// The checkout server and how to trust it.
    pub server: ClientConfig,
    /// This device's id on the server (1..=128 bytes, no control characters).
    pub device_id: String,
    /// Directory of the sealed template and the signature counter.
    pub state_dir: PathBuf,
    /// The liveness policy for enrolment and payment sessions.
    pub policy: LivenessPolicy,
    /// Challenges of the enrolment session; `None` derives them from a fresh random nonce, like a payment's.
    pub enrolment_challenges: Option<Vec<Challenge>>,
}

/// State shared by the handle and its sessions.
pub(crate) struct Shared {
    vision: VisionSlot,
    pub(crate) templates: TemplateStore,
    pub(crate) signer: Arc<dyn DeviceSigner>,
    pub(crate) client: CheckoutClient,
    counter: CounterFile,
    pub(crate) models: ModelInfo,
    pub(crate) device_id: String,
    pub(crate) policy: LivenessPolicy,
    pub(crate) enrolment_challenges: Option<Vec<Challenge>>,
}

impl Shared {
    /// Lends the vision pipeline to one session ([`FacePayError::Busy`] while another has it).
    pub(crate) fn lease_vision(&self) -> Result<VisionLease, FacePayError> {
        self.vision.lease()
    }

    /// [`FacePayError::LockedOut`] while the attempt limit of `template` holds (see
    /// [`crate::template::attempts`]): checked before a payment starts and again before its match.
    pub(crate) fn check_attempts(&self, template: &Template) -> Result<(), FacePayError> {
        let now = now_ms();
        let attempts = self.templates.match_attempts(template, now)?;
        match attempts.retry_after_ms(now) {
            0 => Ok(()),
            wait => Err(FacePayError::LockedOut {
                retry_after_s: wait.div_ceil(1000),
                failed_matches: attempts.consecutive_failures,
            }),
        }
    }
}

/// The device side of FacePay: one shopper's template, the device key and the checkout client.
#[derive(Clone)]
pub struct FacePay {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for FacePay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FacePay")
            .field("device_id", &self.shared.device_id)
            .finish_non_exhaustive()
    }
}

impl FacePay {
    /// A handle over loaded models, the device key and a key store for the template key. Reads the manifest the
    /// models were loaded with (model versions, calibrated threshold, and the flip-averaging setting the threshold
    /// holds for, which it sets on the embedder); makes no network call.
    pub fn new(
        config: FacePayConfig,
        vision: Vision,
        signer: Arc<dyn DeviceSigner>,
        keystore: Arc<dyn KeyStore>,
    ) -> Result<Self, FacePayError> {
        check_id("device_id", &config.device_id)
            .map_err(|e| FacePayError::config(ConfigSetting::DeviceId, e))?;
        config
            .policy
            .validate()
            .map_err(|e| FacePayError::config(ConfigSetting::LivenessPolicy, e))?;
        let models = ModelInfo::from_manifest(vision.manifest(), &vision.model_names())?;
        let mut vision = vision;
        vision.embedder_mut().set_flip_average(models.flip_average);
        let client = CheckoutClient::new(config.server)?;
        Ok(Self {
            shared: Arc::new(Shared {
                vision: VisionSlot::new(vision),
                templates: TemplateStore::new(&config.state_dir, keystore),
                signer,
                client,
                counter: CounterFile::new(&config.state_dir),
                models,
                device_id: config.device_id,
                policy: config.policy,
                enrolment_challenges: config.enrolment_challenges,
            }),
        })
    }

    /// This device's id.
    pub fn device_id(&self) -> String {
        self.shared.device_id.clone()
    }

    /// The calibrated match threshold in force.
    pub fn match_threshold(&self) -> f32 {
        self.shared.models.match_threshold
    }

    /// The model versions that go into the signed evidence.
    pub fn model_versions(&self) -> Vec<String> {
        self.shared.models.versions.clone()
    }

    /// Whether a usable template is stored ([`FacePayError::Template`] if one is stored but unreadable).
    pub fn is_enrolled(&self) -> Result<bool, FacePayError> {
        match self.shared.templates.load() {
            Ok(_) => Ok(true),
            Err(e) => match FacePayError::from(e) {
                FacePayError::NotEnrolled => Ok(false),
                other => Err(other),
            },
        }
    }

    /// Wipes the template and its key.
    pub fn delete_enrolment(&self) -> Result<(), FacePayError> {
        Ok(self.shared.templates.delete()?)
    }

    /// The last signature counter used by this device.
    pub fn counter(&self) -> Result<u64, FacePayError> {
        self.shared.counter.current()
    }

    /// Starts paying the order behind `client_token` (from the merchant's backend): checks that a shopper is
    /// enrolled, fetches the nonce and challenge list, and opens the capture. Events go to `listener`.
    pub async fn start_payment(
        &self,
        client_token: &str,
        listener: Arc<dyn FlowListener>,
    ) -> Result<PaymentSession, FacePayError> {
        let template = self.shared.templates.load()?;
        if template.model() != self.shared.models.embedder {
            return Err(FacePayError::template(
                TemplateProblem::ModelMismatch,
                format!(
                    "the template was enrolled with `{}`, this device now runs `{}`: enrol again",
                    template.model(),
                    self.shared.models.embedder
                ),
            ));
        }
        self.shared.check_attempts(&template)?;
        let lease = self.shared.lease_vision()?;
        let challenge = self
            .shared
            .client
            .challenge(client_token, &self.shared.device_id)
            .await?;
        let capture = Capture::new(
            lease,
            &self.shared.policy,
            challenge.nonce,
            challenge.challenges.clone(),
            PROBE_FRAMES,
        );
        let (cancel, _) = tokio::sync::watch::channel(false);
        Ok(PaymentSession {
            shared: self.shared.clone(),
            client_token: client_token.to_owned(),
            challenge,
            template,
            stage: CaptureStage::new(capture, listener),
            cancel,
            verdict: Mutex::new(None),
        })
    }
}

/// Where a payment session is once its capture decided.
enum Decided {
    Verified(Box<Verified>),
    Paying,
    Finished(Result<Receipt, FacePayError>),
}

/// A face that passed liveness and matched: the evidence to sign.
struct Verified {
    evidence: Evidence,
    result: MatchResult,
    verdict: Verdict,
}

/// One payment: frames in (synchronously), then [`pay`](Self::pay).
pub struct PaymentSession {
    shared: Arc<Shared>,
    client_token: String,
    challenge: ChallengeResponse,
    template: Template,
    stage: CaptureStage<Decided>,
    cancel: tokio::sync::watch::Sender<bool>,
    verdict: Mutex<Option<Verdict>>,
}

impl std::fmt::Debug for PaymentSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentSession")
            .field("order", &self.challenge.order)
            .finish_non_exhaustive()
    }
}

impl PaymentSession {
    /// The order being paid, as the server bound it to the nonce.
    pub fn order(&self) -> OrderRef {
        self.challenge.order.clone()
    }

    /// The challenges the shopper must perform, in order.
    pub fn challenges(&self) -> Vec<Challenge> {
        self.challenge.challenges.clone()
    }

    /// The server nonce the challenges were derived from (for a QA recording of the session).
    pub fn nonce(&self) -> [u8; 32] {
        self.challenge.nonce
    }

    /// The liveness verdict once the capture has decided, whatever came after it (match, refusal, payment).
    pub fn liveness_verdict(&self) -> Option<Verdict> {
        lock(&self.verdict).clone()
    }

    /// Feeds one camera frame taken at `timestamp_s` (seconds, increasing).
    pub fn push_frame(
        &self,
        frame: &Frame<'_>,
        timestamp_s: f64,
    ) -> Result<PaymentStep, FacePayError> {
        self.push(|c| c.push_frame(frame, timestamp_s))
    }

    /// Feeds an upright, unmirrored RGB image taken at `timestamp_s` (e.g. a decoded clip frame).
    pub fn push_image(
        &self,
        image: &RgbImage,
        timestamp_s: f64,
    ) -> Result<PaymentStep, FacePayError> {
        self.push(|c| (c.push_image(image, false, timestamp_s), None))
    }

    fn push(
        &self,
        feed: impl FnOnce(&mut Capture) -> (crate::liveness::Guidance, Option<FacePayError>),
    ) -> Result<PaymentStep, FacePayError> {
        let verified_step = |v: &Verified| PaymentStep::Verified {
            match_score: v.result.score,
            threshold: v.result.threshold,
        };
        self.stage.push(
            feed,
            PaymentStep::Capturing,
            || Decided::Paying,
            |capture, events| {
                *lock(&self.verdict) = capture.session.verdict().cloned();
                match self.verify(capture) {
                    Ok(v) => {
                        let step = verified_step(&v);
                        (Decided::Verified(Box::new(v)), Ok(step))
                    }
                    Err(e) => {
                        events.push(FlowEvent::Failed(e.clone()));
                        (Decided::Finished(Err(e.clone())), Err(e))
                    }
                }
            },
            |state| match state {
                Decided::Verified(v) => Ok(verified_step(v)),
                Decided::Paying => Err(FacePayError::InvalidState {
                    state: SessionState::Paying,
                }),
                Decided::Finished(Ok(_)) => Err(FacePayError::InvalidState {
                    state: SessionState::Paid,
                }),
                Decided::Finished(Err(e)) => Err(e.clone()),
            },
        )
    }

    /// Liveness verdict ▸ embeddings of the kept frames ▸ match against the template ▸ evidence.
    fn verify(&self, capture: Capture) -> Result<Verified, FacePayError> {
        let verdict = capture.passed_verdict()?;
        let finished_ms = now_ms();
        let started_ms = capture.started_ms.unwrap_or(finished_ms);
        let fallback = capture
            .session
            .best_frame()
            .and_then(|b| b.embedding.clone());
        let Capture {
            session, picker, ..
        } = capture;
        let mut lease = session.into_vision();
        let mut probes = picker.embed(BorrowMut::<Vision>::borrow_mut(&mut lease));
        drop(lease);
        if probes.is_empty() {
            probes.extend(fallback.map(|e| e.values));
        }
        if probes.is_empty() {
            return Err(FacePayError::NoFace);
        }
        let threshold = self.shared.models.match_threshold;
        // A lock-out that began while this session was capturing (another session's failures) holds here too.
        self.shared.check_attempts(&self.template)?;
        let result = match_template(
            &self.template,
            &self.shared.models.embedder,
            &probes,
            threshold,
        )?;
        // Persisted before the outcome is acted on: a crash cannot forget a failed match.
        self.shared
            .templates
            .record_match(&self.template, result.matched, now_ms())?;
        if !result.matched {
            return Err(FacePayError::NotMatched {
                score: result.score,
                threshold,
            });
        }
        let evidence = Evidence {
            liveness: LivenessVerdict::Live,
            challenges: self.challenge.challenges.clone(),
            antispoof_score: verdict.passive_score.map(|s| s.clamp(0.0, 1.0)),
            match_score: result.score,
            model_versions: self.shared.models.versions.clone(),
            started_at_ms: started_ms,
            finished_at_ms: finished_ms.max(started_ms),
        };
        Ok(Verified {
            evidence,
            result,
            verdict,
        })
    }

    /// Signs and submits the verified payment: takes the next device counter (persisted before signing), signs
    /// the canonical payload, sends it. Cancellable while in flight ([`FacePayError::Cancelled`]; the server may
    /// still have recorded it — the merchant's order status is authoritative).
    pub async fn pay(&self) -> Result<Receipt, FacePayError> {
        let verified = {
            let mut stage = self.stage.lock();
            match std::mem::replace(&mut *stage, Stage::Decided(Decided::Paying)) {
                Stage::Decided(Decided::Verified(v)) => v,
                Stage::Capturing(c) => {
                    *stage = Stage::Capturing(c);
                    return Err(FacePayError::InvalidState {
                        state: SessionState::Capturing,
                    });
                }
                Stage::Decided(Decided::Paying) => {
                    return Err(FacePayError::InvalidState {
                        state: SessionState::Paying,
                    });
                }
                Stage::Decided(Decided::Finished(r)) => {
                    *stage = Stage::Decided(Decided::Finished(r.clone()));
                    return r;
                }
            }
        };
        let result = if *self.cancel.borrow() {
            Err(FacePayError::Cancelled)
        } else {
            self.stage.emit(FlowEvent::Paying);
            self.submit(&verified).await
        };
        *self.stage.lock() = Stage::Decided(Decided::Finished(result.clone()));
        self.stage.emit(match &result {
            Ok(r) => FlowEvent::Done(r.clone()),
            Err(e) => FlowEvent::Failed(e.clone()),
        });
        result
    }

    async fn submit(&self, v: &Verified) -> Result<Receipt, FacePayError> {
        let counter = self.shared.counter.take_next()?;
        let payload = payment_payload(
            &self.challenge,
            &self.shared.device_id,
            counter,
            v.evidence.clone(),
        );
        let signed = sign_payment(&payload, self.shared.signer.as_ref())?;
        let mut cancelled = self.cancel.subscribe();
        let answer = tokio::select! {
            answer = self.shared.client.submit(&self.client_token, &signed) => answer?,
            _ = cancelled.wait_for(|c| *c) => return Err(FacePayError::Cancelled),
        };
        Ok(Receipt {
            payment_id: answer.payment_id,
            merchant_id: payload.order.merchant_id,
            order_id: answer.order_id,
            amount_minor: answer.amount_minor,
            currency: answer.currency,
            recorded_at_ms: answer.recorded_at_ms,
            match_score: v.result.score,
            match_threshold: v.result.threshold,
            liveness: v.verdict.outcome,
            challenges: payload.evidence.challenges,
            passive_score: v.evidence.antispoof_score,
            frames: v.verdict.frames,
            counter,
        })
    }

    /// Cancels the session: frames pushed afterwards and a pending or later [`pay`](Self::pay) answer
    /// [`FacePayError::Cancelled`]. Does nothing once the payment has finished.
    pub fn cancel(&self) {
        self.cancel.send_replace(true);
        self.stage.cancel(
            |state| matches!(state, Decided::Verified(_)),
            Decided::Finished(Err(FacePayError::Cancelled)),
        );
    }
}
