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
//! `EnrolmentCapture`) shared behind `Arc`, plain records and enums, one error enum ([`FlowError`]) with a variant
//! per failure kind, a [`FlowListener`] callback for the UI, `async` only where the flow waits on the network.
//! [`PaymentSession::cancel`] stops a session at any point (also while the payment is in flight); dropping a
//! session or a `start_payment` future gives the vision pipeline back.

mod counter;
mod error;
mod events;
mod models;

use std::borrow::{Borrow, BorrowMut};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

pub use counter::{COUNTER_FILE, CounterFile};
pub use error::FlowError;
pub use events::{
    EnrolmentStep, EnrolmentSummary, FlowEvent, FlowListener, NoListener, PaymentStep, Receipt,
};
pub use models::ModelInfo;

use crate::checkout::client::{CheckoutClient, ClientConfig, payment_payload, sign_payment};
use crate::checkout::protocol::{Challenge, Evidence, LivenessVerdict, OrderRef, check_id};
use crate::checkout::signer::DeviceSigner;
use crate::checkout::wire::ChallengeResponse;
use crate::enrolment::{FramePicker, PROBE_FRAMES};
use crate::liveness::{LivenessPolicy, LivenessSession, Outcome, Verdict};
use crate::matcher::{MatchResult, match_template};
use crate::template::{KeyStore, Template, TemplateStore};
use crate::vision::frame::Frame;
use crate::vision::image::RgbImage;
use crate::vision::pipeline::Vision;

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
    vision: Mutex<Option<Vision>>,
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
    /// Lends the vision pipeline to one session ([`FlowError::Busy`] while another has it).
    pub(crate) fn lease_vision(self: &Arc<Self>) -> Result<VisionLease, FlowError> {
        let vision = lock(&self.vision).take().ok_or(FlowError::Busy)?;
        Ok(VisionLease {
            shared: self.clone(),
            vision: Some(vision),
        })
    }
}

/// The vision pipeline on loan to a session; given back to the handle when dropped.
pub(crate) struct VisionLease {
    shared: Arc<Shared>,
    vision: Option<Vision>,
}

impl Borrow<Vision> for VisionLease {
    fn borrow(&self) -> &Vision {
        self.vision
            .as_ref()
            .expect("a lease holds its pipeline until it is dropped")
    }
}

impl BorrowMut<Vision> for VisionLease {
    fn borrow_mut(&mut self) -> &mut Vision {
        self.vision
            .as_mut()
            .expect("a lease holds its pipeline until it is dropped")
    }
}

impl Drop for VisionLease {
    fn drop(&mut self) {
        if let Some(v) = self.vision.take() {
            *lock(&self.shared.vision) = Some(v);
        }
    }
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it (the state stays consistent: every
/// critical section either completes a transition or leaves the previous state).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Unix time in milliseconds.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
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
    ) -> Result<Self, FlowError> {
        check_id("device_id", &config.device_id).map_err(|e| FlowError::Config(e.to_string()))?;
        config
            .policy
            .validate()
            .map_err(|e| FlowError::Config(e.to_string()))?;
        let models = ModelInfo::from_manifest(vision.manifest(), vision.has_antispoof())?;
        let mut vision = vision;
        vision.embedder_mut().set_flip_average(models.flip_average);
        let client = CheckoutClient::new(config.server)?;
        Ok(Self {
            shared: Arc::new(Shared {
                vision: Mutex::new(Some(vision)),
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

    /// Whether a usable template is stored ([`FlowError::Template`] if one is stored but unreadable).
    pub fn is_enrolled(&self) -> Result<bool, FlowError> {
        match self.shared.templates.load() {
            Ok(_) => Ok(true),
            Err(e) => match FlowError::from(e) {
                FlowError::NotEnrolled => Ok(false),
                other => Err(other),
            },
        }
    }

    /// Wipes the template and its key.
    pub fn delete_enrolment(&self) -> Result<(), FlowError> {
        Ok(self.shared.templates.delete()?)
    }

    /// The last signature counter used by this device.
    pub fn counter(&self) -> Result<u64, FlowError> {
        self.shared.counter.current()
    }

    /// Starts paying the order behind `client_token` (from the merchant's backend): checks that a shopper is
    /// enrolled, fetches the nonce and challenge list, and opens the capture. Events go to `listener`.
    pub async fn start_payment(
        &self,
        client_token: &str,
        listener: Arc<dyn FlowListener>,
    ) -> Result<PaymentSession, FlowError> {
        let template = self.shared.templates.load()?;
        if template.model() != self.shared.models.embedder {
            return Err(FlowError::Template(format!(
                "the template was enrolled with `{}`, this device now runs `{}`: enrol again",
                template.model(),
                self.shared.models.embedder
            )));
        }
        let lease = self.shared.lease_vision()?;
        let challenge = self
            .shared
            .client
            .challenge(client_token, &self.shared.device_id)
            .await?;
        let session = LivenessSession::with_challenges(
            lease,
            self.shared.policy.clone(),
            challenge.nonce,
            challenge.challenges.clone(),
        );
        let (cancel, _) = tokio::sync::watch::channel(false);
        Ok(PaymentSession {
            shared: self.shared.clone(),
            listener,
            client_token: client_token.to_owned(),
            challenge,
            template,
            stage: Mutex::new(Stage::Capturing(Box::new(Capture::new(
                session,
                PROBE_FRAMES,
            )))),
            cancel,
            verdict: Mutex::new(None),
        })
    }
}

/// A running capture: the liveness session, the frames kept for matching, and when it started.
pub(crate) struct Capture {
    pub(crate) session: LivenessSession<VisionLease>,
    pub(crate) picker: FramePicker,
    buffer: RgbImage,
    pub(crate) started_ms: Option<u64>,
    pub(crate) faces_seen: u64,
}

impl Capture {
    pub(crate) fn new(session: LivenessSession<VisionLease>, keep: usize) -> Self {
        Self {
            session,
            picker: FramePicker::new(keep),
            buffer: RgbImage::default(),
            started_ms: None,
            faces_seen: 0,
        }
    }

    /// Feeds a camera frame: converts it once, runs the session on it and offers it to the picker.
    pub(crate) fn push_frame(&mut self, frame: &Frame<'_>, t: f64) -> crate::liveness::Guidance {
        let mut buffer = std::mem::take(&mut self.buffer);
        let g = match frame.to_rgb_into(&mut buffer) {
            Ok(()) => self.push_image(&buffer, frame.mirror, t),
            Err(_) => {
                self.started_ms.get_or_insert_with(now_ms);
                self.session.push_frame(frame, t)
            }
        };
        self.buffer = buffer;
        g
    }

    /// Feeds an upright RGB image (`mirrored` as for [`LivenessSession::push_image_mirrored`]).
    pub(crate) fn push_image(
        &mut self,
        image: &RgbImage,
        mirrored: bool,
        t: f64,
    ) -> crate::liveness::Guidance {
        self.started_ms.get_or_insert_with(now_ms);
        let g = self.session.push_image_mirrored(image, mirrored, t);
        if self
            .session
            .last_observation()
            .is_some_and(|o| o.face.is_some())
        {
            self.faces_seen += 1;
        }
        self.picker.offer_last(&self.session, image, t);
        g
    }

    /// The session's verdict when it passed; otherwise the error for it (`NoFace` when no face was ever seen).
    pub(crate) fn passed_verdict(&self) -> Result<Verdict, FlowError> {
        let verdict = self
            .session
            .verdict()
            .cloned()
            .ok_or_else(|| FlowError::InvalidState("no verdict".into()))?;
        if verdict.outcome == Outcome::Passed {
            return Ok(verdict);
        }
        if self.faces_seen == 0 {
            return Err(FlowError::NoFace);
        }
        let reason = match (&verdict.fail_reason, &verdict.reason) {
            (Some(r), _) => r.to_string(),
            (None, Some(r)) => r.clone(),
            (None, None) => verdict.outcome.as_str().to_owned(),
        };
        Err(FlowError::LivenessFailed { reason })
    }
}

/// Where a payment session is.
enum Stage {
    Capturing(Box<Capture>),
    Verified(Box<Verified>),
    Paying,
    Finished(Result<Receipt, FlowError>),
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
    listener: Arc<dyn FlowListener>,
    client_token: String,
    challenge: ChallengeResponse,
    template: Template,
    stage: Mutex<Stage>,
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
    ) -> Result<PaymentStep, FlowError> {
        self.push(|c| c.push_frame(frame, timestamp_s))
    }

    /// Feeds an upright, unmirrored RGB image taken at `timestamp_s` (e.g. a decoded clip frame).
    pub fn push_image(&self, image: &RgbImage, timestamp_s: f64) -> Result<PaymentStep, FlowError> {
        self.push(|c| c.push_image(image, false, timestamp_s))
    }

    fn push(
        &self,
        feed: impl FnOnce(&mut Capture) -> crate::liveness::Guidance,
    ) -> Result<PaymentStep, FlowError> {
        let mut events = Vec::new();
        let answer = {
            let mut stage = lock(&self.stage);
            match &mut *stage {
                Stage::Capturing(capture) => {
                    let g = feed(capture);
                    events.push(FlowEvent::Guidance(g));
                    if let Some(verdict) = capture.session.verdict() {
                        *lock(&self.verdict) = Some(verdict.clone());
                        events.push(FlowEvent::Verifying);
                        let Stage::Capturing(capture) =
                            std::mem::replace(&mut *stage, Stage::Paying)
                        else {
                            unreachable!("matched above")
                        };
                        match self.verify(*capture) {
                            Ok(v) => {
                                let step = PaymentStep::Verified {
                                    match_score: v.result.score,
                                    threshold: v.result.threshold,
                                };
                                *stage = Stage::Verified(Box::new(v));
                                Ok(step)
                            }
                            Err(e) => {
                                events.push(FlowEvent::Failed(e.clone()));
                                *stage = Stage::Finished(Err(e.clone()));
                                Err(e)
                            }
                        }
                    } else {
                        Ok(PaymentStep::Capturing(g))
                    }
                }
                Stage::Verified(v) => Ok(PaymentStep::Verified {
                    match_score: v.result.score,
                    threshold: v.result.threshold,
                }),
                Stage::Paying => Err(FlowError::InvalidState("the payment is being sent".into())),
                Stage::Finished(Ok(_)) => {
                    Err(FlowError::InvalidState("the payment is complete".into()))
                }
                Stage::Finished(Err(e)) => Err(e.clone()),
            }
        };
        events.into_iter().for_each(|e| self.listener.on_event(e));
        answer
    }

    /// Liveness verdict ▸ embeddings of the kept frames ▸ match against the template ▸ evidence.
    fn verify(&self, capture: Capture) -> Result<Verified, FlowError> {
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
            return Err(FlowError::NoFace);
        }
        let threshold = self.shared.models.match_threshold;
        let result = match_template(
            &self.template,
            &self.shared.models.embedder,
            &probes,
            threshold,
        )?;
        if !result.matched {
            return Err(FlowError::NotMatched {
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
    /// the canonical payload, sends it. Cancellable while in flight ([`FlowError::Cancelled`]; the server may
    /// still have recorded it — the merchant's order status is authoritative).
    pub async fn pay(&self) -> Result<Receipt, FlowError> {
        let verified = {
            let mut stage = lock(&self.stage);
            match std::mem::replace(&mut *stage, Stage::Paying) {
                Stage::Verified(v) => v,
                Stage::Capturing(c) => {
                    *stage = Stage::Capturing(c);
                    return Err(FlowError::InvalidState(
                        "the face is not verified yet: push more frames".into(),
                    ));
                }
                Stage::Paying => {
                    return Err(FlowError::InvalidState(
                        "the payment is already being sent".into(),
                    ));
                }
                Stage::Finished(r) => {
                    *stage = Stage::Finished(r.clone());
                    return r;
                }
            }
        };
        let result = if *self.cancel.borrow() {
            Err(FlowError::Cancelled)
        } else {
            self.listener.on_event(FlowEvent::Paying);
            self.submit(&verified).await
        };
        *lock(&self.stage) = Stage::Finished(result.clone());
        self.listener.on_event(match &result {
            Ok(r) => FlowEvent::Done(r.clone()),
            Err(e) => FlowEvent::Failed(e.clone()),
        });
        result
    }

    async fn submit(&self, v: &Verified) -> Result<Receipt, FlowError> {
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
            _ = cancelled.wait_for(|c| *c) => return Err(FlowError::Cancelled),
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
    /// [`FlowError::Cancelled`]. Does nothing once the payment has finished.
    pub fn cancel(&self) {
        self.cancel.send_replace(true);
        let changed = {
            let mut stage = lock(&self.stage);
            match &*stage {
                Stage::Capturing(_) | Stage::Verified(_) => {
                    *stage = Stage::Finished(Err(FlowError::Cancelled));
                    true
                }
                Stage::Paying | Stage::Finished(_) => false,
            }
        };
        if changed {
            self.listener
                .on_event(FlowEvent::Failed(FlowError::Cancelled));
        }
    }
}
