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

/// The codec and the sealed-file parser, for the fuzz targets only (`cargo fuzz` builds with `--cfg fuzzing`).
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    use super::{Template, TemplateError, TemplateKey};

    /// Decodes a plaintext template payload (what the sealed file holds once decrypted).
    pub fn decode(bytes: &[u8]) -> Result<Template, TemplateError> {
        super::codec::decode(bytes)
    }

    /// Encodes a template as the plaintext payload.
    pub fn encode(template: &Template) -> Vec<u8> {
        super::codec::encode(template)
    }

    /// Parses a sealed file's header and opens it under `key`, as `TemplateStore::load` does.
    pub fn open(bytes: &[u8], key: &TemplateKey) -> Result<Template, TemplateError> {
        let header = super::seal::parse_header(bytes)?;
        super::seal::open(bytes, &header, key)
    }
}
