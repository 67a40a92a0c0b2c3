//! Capture: the stage enrolment and payment both start with. Frames go into a liveness session, the best of
//! them are kept for embedding ([`picker`]), and once the session decides, the capture is handed to its owner
//! (enrolment seals a template, a payment matches and signs). [`CaptureStage`] is that push loop, shared by
//! [`EnrolmentCapture`](crate::enrolment::EnrolmentCapture) and [`PaymentSession`](crate::flow::PaymentSession).

pub mod picker;

use std::borrow::{Borrow, BorrowMut};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

pub use picker::{FramePicker, MIN_PICK_GAP_S};

use crate::checkout::protocol::Challenge;
use crate::flow::{FacePayError, FlowEvent, FlowListener, SessionState};
use crate::liveness::{Guidance, LivenessPolicy, LivenessSession, Outcome, Verdict};
use crate::vision::frame::Frame;
use crate::vision::image::RgbImage;
use crate::vision::pipeline::Vision;

/// A handle's one vision pipeline, lent to one capture at a time.
pub(crate) struct VisionSlot(Arc<Mutex<Option<Vision>>>);

impl VisionSlot {
    /// A slot holding `vision`.
    pub(crate) fn new(vision: Vision) -> Self {
        Self(Arc::new(Mutex::new(Some(vision))))
    }

    /// Lends the pipeline to one session ([`FacePayError::Busy`] while another has it).
    pub(crate) fn lease(&self) -> Result<VisionLease, FacePayError> {
        let vision = lock(&self.0).take().ok_or(FacePayError::Busy)?;
        Ok(VisionLease {
            slot: self.0.clone(),
            vision: Some(vision),
        })
    }
}

/// The vision pipeline on loan to a session; given back to its slot when dropped.
pub(crate) struct VisionLease {
    slot: Arc<Mutex<Option<Vision>>>,
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
            *lock(&self.slot) = Some(v);
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

/// A running capture: the liveness session, the frames kept for embedding, and when it started.
pub(crate) struct Capture {
    pub(crate) session: LivenessSession<VisionLease>,
    pub(crate) picker: FramePicker,
    buffer: RgbImage,
    pub(crate) started_ms: Option<u64>,
    pub(crate) faces_seen: u64,
}

impl Capture {
    /// A session on the leased pipeline under `policy` for `nonce` and its `challenges`, keeping `keep` frames.
    pub(crate) fn new(
        lease: VisionLease,
        policy: &LivenessPolicy,
        nonce: [u8; 32],
        challenges: Vec<Challenge>,
        keep: usize,
    ) -> Self {
        Self {
            session: LivenessSession::with_challenges(lease, policy.clone(), nonce, challenges),
            picker: FramePicker::new(keep),
            buffer: RgbImage::default(),
            started_ms: None,
            faces_seen: 0,
        }
    }

    /// Feeds a camera frame: converts it once, runs the session on it and offers it to the picker. A frame that
    /// cannot be converted still counts in the session (as a frame without a face) and comes back as the typed
    /// [`FacePayError::InvalidFrame`] beside the guidance.
    pub(crate) fn push_frame(
        &mut self,
        frame: &Frame<'_>,
        t: f64,
    ) -> (Guidance, Option<FacePayError>) {
        let mut buffer = std::mem::take(&mut self.buffer);
        let answer = match frame.to_rgb_into(&mut buffer) {
            Ok(()) => (self.push_image(&buffer, frame.mirror, t), None),
            Err(e) => {
                self.started_ms.get_or_insert_with(now_ms);
                (
                    self.session.push_frame(frame, t),
                    Some(FacePayError::invalid_frame(e)),
                )
            }
        };
        self.buffer = buffer;
        answer
    }

    /// Feeds an upright RGB image (`mirrored` as for [`LivenessSession::push_image_mirrored`]).
    pub(crate) fn push_image(&mut self, image: &RgbImage, mirrored: bool, t: f64) -> Guidance {
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
    pub(crate) fn passed_verdict(&self) -> Result<Verdict, FacePayError> {
        let verdict = self
            .session
            .verdict()
            .cloned()
            .ok_or(FacePayError::InvalidState {
                state: SessionState::Undecided,
            })?;
        if verdict.outcome == Outcome::Passed {
            return Ok(verdict);
        }
        if self.faces_seen == 0 {
            return Err(FacePayError::NoFace);
        }
        Err(match (verdict.fail_reason, verdict.timeout_reason) {
            (Some(reason), _) => FacePayError::liveness_failed(reason),
            (None, Some(reason)) => FacePayError::liveness_timed_out(reason),
            (None, None) => FacePayError::Internal {
                detail: format!(
                    "the liveness session ended {} without a typed reason",
                    verdict.outcome.as_str()
                ),
            },
        })
    }
}

/// Where a capture-led session is: still capturing, or decided into the owner's state `T`.
pub(crate) enum Stage<T> {
    /// Frames are going into the liveness session.
    Capturing(Box<Capture>),
    /// The session decided; what became of it is the owner's.
    Decided(T),
}

/// The push loop of a capture-led session: feeds frames while capturing, hands the capture to the owner once the
/// session decides, and tells the listener (after the lock is released) what happened.
pub(crate) struct CaptureStage<T> {
    stage: Mutex<Stage<T>>,
    listener: Arc<dyn FlowListener>,
}

impl<T> CaptureStage<T> {
    /// A stage capturing into `capture`, reporting to `listener`.
    pub(crate) fn new(capture: Capture, listener: Arc<dyn FlowListener>) -> Self {
        Self {
            stage: Mutex::new(Stage::Capturing(Box::new(capture))),
            listener,
        }
    }

    /// The stage, locked.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Stage<T>> {
        lock(&self.stage)
    }

    /// Tells the listener.
    pub(crate) fn emit(&self, event: FlowEvent) {
        self.listener.on_event(event);
    }

    /// Feeds one frame through `feed` while capturing (answering `capturing` of its guidance); when the session
    /// decides, the capture goes to `decide`, which returns the new state and the answer, and may add events
    /// (`interim` is the state while it runs, never seen outside the lock). Once decided, `decided` answers. A frame
    /// `feed` could not convert (its error beside the guidance) is answered with that error, whatever the session
    /// made of it; a decision it led to is kept for the next call.
    pub(crate) fn push<A>(
        &self,
        feed: impl FnOnce(&mut Capture) -> (Guidance, Option<FacePayError>),
        capturing: impl FnOnce(Guidance) -> A,
        interim: impl FnOnce() -> T,
        decide: impl FnOnce(Capture, &mut Vec<FlowEvent>) -> (T, Result<A, FacePayError>),
        decided: impl FnOnce(&T) -> Result<A, FacePayError>,
    ) -> Result<A, FacePayError> {
        let mut events = Vec::new();
        let mut invalid_frame = None;
        let answer = {
            let mut stage = self.lock();
            match &mut *stage {
                Stage::Capturing(capture) => {
                    let (g, invalid) = feed(capture);
                    invalid_frame = invalid;
                    events.push(FlowEvent::Guidance(g));
                    if capture.session.verdict().is_some() {
                        events.push(FlowEvent::Verifying);
                        let Stage::Capturing(capture) =
                            std::mem::replace(&mut *stage, Stage::Decided(interim()))
                        else {
                            unreachable!("matched above")
                        };
                        let (state, answer) = decide(*capture, &mut events);
                        *stage = Stage::Decided(state);
                        answer
                    } else {
                        Ok(capturing(g))
                    }
                }
                Stage::Decided(state) => decided(state),
            }
        };
        events.into_iter().for_each(|e| self.listener.on_event(e));
        invalid_frame.map_or(answer, Err)
    }

    /// Ends the session with `cancelled` if it is still capturing or `cancellable` says so of its state; tells
    /// the listener [`FacePayError::Cancelled`] then.
    pub(crate) fn cancel(&self, cancellable: impl FnOnce(&T) -> bool, cancelled: T) {
        let changed = {
            let mut stage = self.lock();
            let open = match &*stage {
                Stage::Capturing(_) => true,
                Stage::Decided(state) => cancellable(state),
            };
            if open {
                *stage = Stage::Decided(cancelled);
            }
            open
        };
        if changed {
            self.emit(FlowEvent::Failed(FacePayError::Cancelled));
        }
    }
}
