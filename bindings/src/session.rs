//! The capture objects: [`PaymentSession`] (frames in, then `pay`) and [`EnrolmentCapture`] (frames in until the
//! template is stored). Push frames from one thread (the camera's analyser); `cancel` from any thread.

use facepay_core::enrolment::EnrolmentCapture as CoreCapture;
use facepay_core::flow::{FacePayError, PaymentSession as CoreSession};

use crate::events::{EnrolmentStep, OrderRef, PaymentStep, Receipt};
use crate::frame::CameraFrame;
use crate::guard::{guard, guard_async};
use crate::guidance::Challenge;

/// One payment: push frames until the answer is `Verified`, then `pay`.
#[derive(uniffi::Object)]
pub struct PaymentSession {
    inner: CoreSession,
}

impl PaymentSession {
    pub(crate) fn new(inner: CoreSession) -> Self {
        Self { inner }
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl PaymentSession {
    /// The order being paid.
    pub fn order(&self) -> OrderRef {
        self.inner.order().into()
    }

    /// The challenges the shopper must perform, in order.
    pub fn challenges(&self) -> Vec<Challenge> {
        self.inner.challenges()
    }

    /// Feeds one camera frame taken at `timestamp_s` (seconds, increasing).
    pub fn push_frame(
        &self,
        frame: CameraFrame,
        timestamp_s: f64,
    ) -> Result<PaymentStep, FacePayError> {
        guard(|| {
            Ok(self
                .inner
                .push_frame(&frame.as_core()?, timestamp_s)?
                .into())
        })
    }

    /// Signs and submits the verified payment; answers the receipt.
    pub async fn pay(&self) -> Result<Receipt, FacePayError> {
        guard_async(self.inner.pay()).await
    }

    /// Cancels the session: later frames and a pending or later `pay` throw `Cancelled`.
    pub fn cancel(&self) {
        self.inner.cancel()
    }
}

/// One enrolment: push frames until the answer is `Enrolled`.
#[derive(uniffi::Object)]
pub struct EnrolmentCapture {
    inner: CoreCapture,
}

impl EnrolmentCapture {
    pub(crate) fn new(inner: CoreCapture) -> Self {
        Self { inner }
    }
}

#[uniffi::export]
impl EnrolmentCapture {
    /// Feeds one camera frame taken at `timestamp_s` (seconds, increasing).
    pub fn push_frame(
        &self,
        frame: CameraFrame,
        timestamp_s: f64,
    ) -> Result<EnrolmentStep, FacePayError> {
        guard(|| {
            Ok(self
                .inner
                .push_frame(&frame.as_core()?, timestamp_s)?
                .into())
        })
    }

    /// Stops the capture; nothing is stored.
    pub fn cancel(&self) {
        self.inner.cancel()
    }
}
