//! The [`FacePay`] handle: configuration, model loading, enrolment state, device registration, and the start of
//! enrolments and payments.

use std::path::PathBuf;
use std::sync::Arc;

use facepay_core::checkout::client::{ClientConfig, TrustRoots};
use facepay_core::flow::{self, FacePayConfig as CoreConfig, FacePayError};
use facepay_core::liveness::LivenessPolicy;
use facepay_core::vision::model::ModelSource;
use facepay_core::vision::pipeline::Vision;

use crate::events::{DeviceRegistration, FlowListener, ListenerBridge};
use crate::guard::{guard, guard_async};
use crate::guidance::Challenge;
use crate::models::{AssetsBridge, ModelAssets};
use crate::platform::{DeviceSigner, KeyStore, KeyStoreBridge, SignerBridge};
use crate::session::{EnrolmentCapture, PaymentSession};

/// Everything a [`FacePay`] handle needs besides the platform keys.
#[derive(Debug, Clone, uniffi::Record)]
pub struct FacePayConfig {
    /// Base URL of the checkout server (`https://…`; plain `http://` only for loopback).
    pub server_url: String,
    /// PEM certificate(s) to pin; `null`/`nil` trusts the system store.
    pub pinned_cert_pem: Option<String>,
    /// This device's id on the server (1–128 bytes, no control characters).
    pub device_id: String,
    /// App-private directory for the sealed template and the signature counter.
    pub state_dir: String,
    /// Directory of the bundled models and their `manifest.toml`, for the primary constructor (desktops);
    /// `FacePay.withModels` reads the bundle through a `ModelAssets` instead and ignores this field.
    pub models_dir: String,
    /// Directory of the optional MiniFASNet anti-spoof models (passive liveness), for the primary constructor;
    /// `null`/`nil` for none. Ignored by `FacePay.withModels`.
    pub antispoof_models_dir: Option<String>,
    /// Challenges of enrolment sessions; `null`/`nil` derives them from a random nonce, like a payment's.
    pub enrolment_challenges: Option<Vec<Challenge>>,
}

/// The device side of FacePay: one shopper's template, the device key and the checkout client. Share one per app.
#[derive(uniffi::Object)]
pub struct FacePay {
    inner: flow::FacePay,
}

#[uniffi::export(async_runtime = "tokio")]
impl FacePay {
    /// Loads the models (sha256-checked) from `config.models_dir` and opens the device state; makes no network
    /// call. Takes a second or two: call it off the main thread.
    #[uniffi::constructor]
    pub fn new(
        config: FacePayConfig,
        signer: Arc<dyn DeviceSigner>,
        key_store: Arc<dyn KeyStore>,
    ) -> Result<Arc<Self>, FacePayError> {
        guard(|| {
            let models = PathBuf::from(&config.models_dir);
            let antispoof = config.antispoof_models_dir.as_ref().map(PathBuf::from);
            let antispoof = antispoof.as_ref().map(|d| d as &dyn ModelSource);
            open(config, &models, antispoof, signer, key_store)
        })
    }

    /// Loads the model bundle through `models` (the app's assets or bytes; sha256-checked) and the optional
    /// anti-spoof models through `antispoof_models`, and opens the device state; makes no network call. Takes a
    /// second or two: call it off the main thread.
    #[uniffi::constructor]
    pub fn with_models(
        config: FacePayConfig,
        models: Arc<dyn ModelAssets>,
        antispoof_models: Option<Arc<dyn ModelAssets>>,
        signer: Arc<dyn DeviceSigner>,
        key_store: Arc<dyn KeyStore>,
    ) -> Result<Arc<Self>, FacePayError> {
        guard(|| {
            let antispoof = antispoof_models.map(AssetsBridge);
            let antispoof = antispoof.as_ref().map(|a| a as &dyn ModelSource);
            open(config, &AssetsBridge(models), antispoof, signer, key_store)
        })
    }

    /// This device's id.
    pub fn device_id(&self) -> String {
        self.inner.device_id()
    }

    /// The calibrated match threshold in force.
    pub fn match_threshold(&self) -> f32 {
        self.inner.match_threshold()
    }

    /// The model versions (`name@sha256-prefix`) that go into the signed evidence.
    pub fn model_versions(&self) -> Vec<String> {
        self.inner.model_versions()
    }

    /// Whether a usable template is stored.
    pub fn is_enrolled(&self) -> Result<bool, FacePayError> {
        guard(|| self.inner.is_enrolled())
    }

    /// Deletes the shopper's template and its key (the "forget my face" action).
    pub fn delete_enrolment(&self) -> Result<(), FacePayError> {
        guard(|| self.inner.delete_enrolment())
    }

    /// The last signature counter this device used.
    pub fn counter(&self) -> Result<u64, FacePayError> {
        guard(|| self.inner.counter())
    }

    /// Opens an enrolment capture (no network); push camera frames into it.
    pub fn start_enrolment(
        &self,
        listener: Arc<dyn FlowListener>,
    ) -> Result<Arc<EnrolmentCapture>, FacePayError> {
        guard(|| {
            Ok(Arc::new(EnrolmentCapture::new(
                self.inner
                    .start_enrolment(Arc::new(ListenerBridge(listener)))?,
            )))
        })
    }

    /// Registers this device's public key with the checkout server, with the single-use enrolment token the
    /// merchant's backend obtained for the shopper's account.
    pub async fn register_device(
        &self,
        enrollment_token: String,
    ) -> Result<DeviceRegistration, FacePayError> {
        guard_async(async { Ok(self.inner.register_device(&enrollment_token).await?.into()) }).await
    }

    /// Starts paying the order behind `client_token` (from the merchant's backend): fetches the nonce and the
    /// challenges, and opens the capture.
    pub async fn start_payment(
        &self,
        client_token: String,
        listener: Arc<dyn FlowListener>,
    ) -> Result<Arc<PaymentSession>, FacePayError> {
        guard_async(async {
            let session = self
                .inner
                .start_payment(&client_token, Arc::new(ListenerBridge(listener)))
                .await?;
            Ok(Arc::new(PaymentSession::new(session)))
        })
        .await
    }
}

/// Loads the models from the sources and opens the handle.
fn open(
    config: FacePayConfig,
    models: &dyn ModelSource,
    antispoof: Option<&dyn ModelSource>,
    signer: Arc<dyn DeviceSigner>,
    key_store: Arc<dyn KeyStore>,
) -> Result<Arc<FacePay>, FacePayError> {
    let vision = Vision::from_sources(models, antispoof)?;
    let trust = match config.pinned_cert_pem {
        Some(pem) => TrustRoots::PinnedCertPem(pem.into_bytes()),
        None => TrustRoots::System,
    };
    let core_config = CoreConfig {
        server: ClientConfig::new(config.server_url, trust),
        device_id: config.device_id,
        state_dir: config.state_dir.into(),
        policy: LivenessPolicy::default(),
        enrolment_challenges: config.enrolment_challenges,
    };
    let inner = flow::FacePay::new(
        core_config,
        vision,
        Arc::new(SignerBridge(signer)),
        Arc::new(KeyStoreBridge(key_store)),
    )?;
    Ok(Arc::new(FacePay { inner }))
}
