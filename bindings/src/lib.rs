//! FacePay for Kotlin and Swift, through uniffi. No business logic lives here: every exported function converts
//! its arguments, calls `facepay-core` and converts the answer back, in a few lines.
//!
//! - [`facepay`]: the [`FacePay`](facepay::FacePay) handle, its configuration and model loading;
//! - [`session`]: [`PaymentSession`](session::PaymentSession) and [`EnrolmentCapture`](session::EnrolmentCapture);
//! - [`models`]: where the model bundle comes from (app assets, bytes, a directory);
//! - [`frame`]: camera frames as bytes with their geometry and pixel format;
//! - [`guidance`] and [`events`]: what the UI shows, as records and enums;
//! - [`platform`]: the foreign traits `KeyStore` and `DeviceSigner` (Android Keystore, iOS Keychain / Secure
//!   Enclave) and their software implementations;
//! - [`guard`]: no panic crosses the boundary.
//!
//! The typed error every call throws is the core's own [`FacePayError`](facepay_core::flow::FacePayError), as are
//! the server's error codes, the liveness reasons and the challenge list: `facepay-core` derives uniffi's traits
//! on them (its feature `uniffi`), so they cross as they are (Kotlin package `dev.facepay.sdk.core`).

pub mod events;
pub mod facepay;
pub mod frame;
pub mod guard;
pub mod guidance;
pub mod models;
pub mod platform;
pub mod session;

uniffi::setup_scaffolding!();
