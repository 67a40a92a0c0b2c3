//! FacePay core: everything between the camera and the checkout server.
//!
//! The pipeline stages are modules named after them:
//! - [`vision`]: frames in, faces, landmarks, pose, aligned crops, embeddings and anti-spoof scores out;
//! - [`liveness`]: the head-outline session: guidance, active challenges, passive check, verdict;
//! - [`template`]: the enrolment template, sealed with AES-256-GCM under a key-store key, stored atomically;
//! - [`matcher`]: probe embeddings against the template, cosine score and decision;
//! - [`checkout`]: the canonical signed payment payload, the device signer and the HTTPS client;
//! - [`capture`]: the liveness capture both enrolment and payment start with (frames in, best frames kept);
//! - [`enrolment`] and [`flow`]: enrol from a liveness-passed capture; Buy ▸ selfie ▸ signed payment ▸ receipt.
//! - `camera` (feature `camera`, desktop only): webcam frames through nokhwa, for the demo and QA recordings.
//!
//! Every module has its own error type; nothing here panics on bad input.

// The core's component for uniffi (feature `uniffi`): its types cross the FFI of `facepay-bindings` as they are.
#[cfg(feature = "uniffi")]
uniffi::setup_scaffolding!();

#[cfg(feature = "camera")]
pub mod camera;
#[cfg(all(feature = "vision", feature = "client"))]
pub mod capture;
pub mod checkout;
#[cfg(all(feature = "vision", feature = "client"))]
pub mod enrolment;
#[cfg(all(feature = "vision", feature = "client"))]
pub mod flow;
#[cfg(feature = "vision")]
pub mod liveness;
pub mod matcher;
pub mod template;
#[cfg(feature = "frames")]
pub mod vision;
