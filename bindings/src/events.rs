//! What the flow tells the app: [`FlowEvent`]s through the foreign [`FlowListener`], the per-frame step answers,
//! the enrolment summary, the receipt and the order. Converted one-to-one from `facepay_core::flow`.

use std::sync::Arc;

use facepay_core::checkout::protocol::OrderRef as CoreOrder;
use facepay_core::checkout::wire::RegisterDeviceResponse;
pub use facepay_core::flow::{EnrolmentSummary, Receipt};

use facepay_core::flow::{self, FacePayError};

use crate::guidance::Guidance;

/// One thing the UI should show, in order: a prompt for every frame, then `Verifying`, `Paying` and `Done` (or
/// `Enrolled`, or `Failed`).
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum FlowEvent {
    /// The liveness session's answer to a frame (named `Prompt` so it does not shadow the `Guidance` record in
    /// Kotlin).
    Prompt {
        /// Outline, prompt, progress.
        guidance: Guidance,
    },
    /// Liveness passed; the face is being matched (or embedded, when enrolling).
    Verifying,
    /// The face matched; the signed payment is being sent.
    Paying,
    /// Enrolment finished: the template is sealed and stored.
    Enrolled {
        /// What was stored.
        summary: EnrolmentSummary,
    },
    /// The payment went through.
    Done {
        /// The receipt.
        receipt: Receipt,
    },
    /// The enrolment or payment stopped; the call that failed throws the same typed error.
    Failed {
        /// Why.
        error: FacePayError,
    },
}

/// Receives the flow's events (the app's UI implements it). Called on the thread that pushed the frame or awaited
/// the network call: hand the event to the UI thread and return quickly.
#[uniffi::export(with_foreign)]
pub trait FlowListener: Send + Sync {
    /// One event.
    fn on_event(&self, event: FlowEvent);
}

/// The core's listener over a foreign one.
pub(crate) struct ListenerBridge(pub(crate) Arc<dyn FlowListener>);

impl flow::FlowListener for ListenerBridge {
    fn on_event(&self, event: flow::FlowEvent) {
        self.0.on_event(event.into())
    }
}

/// The answer of a payment session to a frame.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum PaymentStep {
    /// Still capturing: show the guidance, push the next frame.
    Capturing {
        /// Outline, prompt, progress.
        guidance: Guidance,
    },
    /// Liveness passed and the face matched: call `pay`.
    Verified {
        /// Mean cosine similarity to the template.
        match_score: f32,
        /// The calibrated threshold it passed.
        threshold: f32,
    },
}

/// The answer of an enrolment capture to a frame.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum EnrolmentStep {
    /// Still capturing: show the guidance, push the next frame.
    Capturing {
        /// Outline, prompt, progress.
        guidance: Guidance,
    },
    /// The template is sealed and stored.
    Enrolled {
        /// What was stored.
        summary: EnrolmentSummary,
    },
}

/// The order a payment session pays, as the server bound it to the nonce.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct OrderRef {
    /// The merchant's id.
    pub merchant_id: String,
    /// The merchant's order id.
    pub order_id: String,
    /// Amount in minor units.
    pub amount_minor: u64,
    /// ISO 4217 code.
    pub currency: String,
    /// SHA-256 of the merchant's item list (32 bytes).
    pub items_digest: Vec<u8>,
}

/// The server's answer to a device registration.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct DeviceRegistration {
    /// The registered device's id.
    pub device_id: String,
    /// The shopper account it is bound to.
    pub account_id: String,
    /// Registration time, Unix ms.
    pub registered_at_ms: u64,
}

impl From<flow::FlowEvent> for FlowEvent {
    fn from(e: flow::FlowEvent) -> Self {
        match e {
            flow::FlowEvent::Guidance(g) => FlowEvent::Prompt { guidance: g.into() },
            flow::FlowEvent::Verifying => FlowEvent::Verifying,
            flow::FlowEvent::Paying => FlowEvent::Paying,
            flow::FlowEvent::Enrolled(s) => FlowEvent::Enrolled { summary: s },
            flow::FlowEvent::Done(r) => FlowEvent::Done { receipt: r },
            flow::FlowEvent::Failed(error) => FlowEvent::Failed { error },
        }
    }
}

impl From<flow::PaymentStep> for PaymentStep {
    fn from(s: flow::PaymentStep) -> Self {
        match s {
            flow::PaymentStep::Capturing(g) => PaymentStep::Capturing { guidance: g.into() },
            flow::PaymentStep::Verified {
                match_score,
                threshold,
            } => PaymentStep::Verified {
                match_score,
                threshold,
            },
        }
    }
}

impl From<flow::EnrolmentStep> for EnrolmentStep {
    fn from(s: flow::EnrolmentStep) -> Self {
        match s {
            flow::EnrolmentStep::Capturing(g) => EnrolmentStep::Capturing { guidance: g.into() },
            flow::EnrolmentStep::Enrolled(s) => EnrolmentStep::Enrolled { summary: s },
        }
    }
}

impl From<CoreOrder> for OrderRef {
    fn from(o: CoreOrder) -> Self {
        OrderRef {
            merchant_id: o.merchant_id,
            order_id: o.order_id,
            amount_minor: o.amount_minor,
            currency: o.currency,
            items_digest: o.items_digest.to_vec(),
        }
    }
}

impl From<RegisterDeviceResponse> for DeviceRegistration {
    fn from(r: RegisterDeviceResponse) -> Self {
        DeviceRegistration {
            device_id: r.device_id,
            account_id: r.account_id,
            registered_at_ms: r.registered_at_ms,
        }
    }
}
