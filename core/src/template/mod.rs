//! Enrolment templates: build one from 3-5 embeddings, seal it with AES-256-GCM under a key from a
//! [`KeyStore`], and keep it in a [`TemplateStore`] that replaces it atomically and wipes it on deletion.
//!
//! No embedding is ever written unencrypted; the sealed format is documented in `docs/template-format.md`.
//! Everything here needs only `ring`, `serde` and `thiserror` (it builds with `default-features = false`).

pub mod attempts;
mod codec;
mod enrol;
mod error;
mod files;
mod keystore;
mod seal;
mod store;

pub use attempts::{MAX_FAILED_MATCHES, MatchAttempts};
pub use enrol::{
    MAX_DIMENSION, MAX_EMBEDDINGS, MAX_MODEL_ID_LEN, MIN_EMBEDDINGS, MIN_ENROL_AGREEMENT,
    TEMPLATE_VERSION, Template, UNIT_NORM_TOLERANCE, enrol, enrol_at, model_id,
};
pub(crate) use enrol::{dot, l2_norm};
pub use error::TemplateError;
pub use keystore::{
    FileKeyStore, KEY_LEN, KeyStore, MAX_KEY_ID_LEN, MemoryKeyStore, TemplateKey, check_key_id,
};
pub use seal::{FORMAT_VERSION, MAGIC};
pub use store::{DEFAULT_KEY_ID, TEMPLATE_FILE, TemplateStore};

#[cfg(test)]
mod tests;
