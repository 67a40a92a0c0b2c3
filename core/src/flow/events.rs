//! What the flow tells the UI: [`FlowEvent`]s through a [`FlowListener`], the per-frame step answers and the
//! [`Receipt`].

use serde::Serialize;

use super::FacePayError;
use crate::checkout::protocol::Challenge;
use crate::liveness::{Guidance, Outcome};

/// One thing the UI should show, in order: guidance for every frame, then `Verifying`, `Paying` and `Done` (or
/// `Failed`).
#[derive(Debug, Clone, PartialEq)]
pub enum FlowEvent {
    /// The liveness session's answer to a frame: outline, prompt, progress.
    Guidance(Guidance),
    /// Liveness passed; the face is being matched against the template (or embedded, when enrolling).
    Verifying,
    /// The face matched; the signed payment is being sent.
    Paying,
    /// Enrolment finished: the template is sealed and stored.
    Enrolled(EnrolmentSummary),
    /// The payment went through.
    Done(Receipt),
    /// The enrolment or payment stopped with this error.
    Failed(FacePayError),
}

/// Receives the flow's events (a UI implements it; through the bindings it becomes a callback interface).
/// Called on the thread that pushed the frame or awaited the network call: keep it quick.
pub trait FlowListener: Send + Sync {
    /// One event.
    fn on_event(&self, event: FlowEvent);
}

impl<F: Fn(FlowEvent) + Send + Sync> FlowListener for F {
    fn on_event(&self, event: FlowEvent) {
        self(event)
    }
}

/// A listener that ignores every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoListener;

impl FlowListener for NoListener {
    fn on_event(&self, _event: FlowEvent) {}
}

/// The answer of a payment session to a frame.
#[derive(Debug, Clone, PartialEq)]
pub enum PaymentStep {
    /// Still capturing: show this guidance and push the next frame.
    Capturing(Guidance),
    /// Liveness passed and the face matched: call `pay`.
    Verified {
        /// Mean cosine similarity to the template.
        match_score: f32,
        /// The calibrated threshold it passed.
        threshold: f32,
    },
}

/// The answer of an enrolment capture to a frame.
#[derive(Debug, Clone, PartialEq)]
pub enum EnrolmentStep {
    /// Still capturing: show this guidance and push the next frame.
    Capturing(Guidance),
    /// The template is stored.
    Enrolled(EnrolmentSummary),
}

/// What an enrolment produced (no biometric data: counts and identifiers only).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct EnrolmentSummary {
    /// Embeddings sealed into the template.
    pub embeddings: u32,
    /// Frame indices (0-based, in push order) the embeddings came from.
    pub frames: Vec<u64>,
    /// Frames pushed until liveness passed.
    pub frames_used: u64,
    /// Lowest cosine similarity between two of the enrolment embeddings (the template's consistency).
    pub min_agreement: f32,
    /// The embedder id stored with the template (`name@sha256-prefix`).
    pub model: String,
    /// Fused passive anti-spoof score of the session, when the models are installed.
    pub passive_score: Option<f32>,
}

/// The receipt of a completed payment: the server's answer plus what the device verified.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Receipt {
    /// The server's payment id.
    pub payment_id: String,
    /// The merchant's id.
    pub merchant_id: String,
    /// The merchant's order id.
    pub order_id: String,
    /// Amount in minor units.
    pub amount_minor: u64,
    /// ISO 4217 code.
    pub currency: String,
    /// When the server recorded the payment, Unix time in milliseconds.
    pub recorded_at_ms: u64,
    /// Match score against the template.
    pub match_score: f32,
    /// The threshold it passed.
    pub match_threshold: f32,
    /// The liveness outcome (always `passed` on a receipt).
    pub liveness: Outcome,
    /// The challenges performed, in order.
    pub challenges: Vec<Challenge>,
    /// Fused passive anti-spoof score, when the models are installed.
    pub passive_score: Option<f32>,
    /// Frames pushed until liveness decided.
    pub frames: u64,
    /// The device counter this payment was signed with.
    pub counter: u64,
}
