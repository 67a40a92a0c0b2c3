//! Platform services the app provides as **foreign traits**: [`KeyStore`] holds the 256-bit key that seals the
//! enrolment template (Android Keystore / StrongBox, iOS Keychain), [`DeviceSigner`] is the device's hardware P-256
//! payment key (Android Keystore, iOS Secure Enclave). The software implementations of the core are exported too
//! ([`software_device_signer`], [`memory_key_store`], [`file_key_store`]) for tests and devices without hardware
//! keys. The bridges adapt either kind to the core's traits.

use std::sync::Arc;

use facepay_core::checkout::signer::{DeviceSigner as CoreSigner, SignerError, SoftwareSigner};
use facepay_core::flow::FacePayError;
use facepay_core::template::{
    FileKeyStore, KeyStore as CoreKeyStore, MemoryKeyStore, TemplateError, TemplateKey,
};

/// Why a platform service failed (thrown by the app's implementation, or by a software one). FacePay tells the
/// first two apart (`SignerFailure.AUTHENTICATION_REQUIRED` / `KEY_INVALIDATED`, `TemplateProblem.KEY_UNAVAILABLE`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum PlatformError {
    /// The key needs the user to authenticate first (Android `UserNotAuthenticatedException`, iOS
    /// `errSecInteractionNotAllowed` / a cancelled LocalAuthentication prompt).
    #[error("user authentication required: {reason}")]
    AuthenticationRequired {
        /// Details, for logs.
        reason: String,
    },
    /// The key was permanently invalidated (Android `KeyPermanentlyInvalidatedException`, a removed device lock).
    #[error("key permanently invalidated: {reason}")]
    KeyInvalidated {
        /// Details, for logs.
        reason: String,
    },
    /// Any other failure (storage error, missing asset, …).
    #[error("{reason}")]
    Failed {
        /// Details, for logs.
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for PlatformError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        PlatformError::Failed {
            reason: format!(
                "unexpected error in the platform implementation: {}",
                e.reason
            ),
        }
    }
}

/// Holds template keys (32 bytes each) by id. Safe to call from any thread.
#[uniffi::export(with_foreign)]
pub trait KeyStore: Send + Sync {
    /// The key with this id, created (32 random bytes) and persisted first if it does not exist yet.
    fn get_or_create(&self, key_id: String) -> Result<Vec<u8>, PlatformError>;
    /// The key with this id, or `null`/`nil` if there is none (never creates one).
    fn get(&self, key_id: String) -> Result<Option<Vec<u8>>, PlatformError>;
    /// Destroys the key with this id; succeeds if there is none.
    fn delete(&self, key_id: String) -> Result<(), PlatformError>;
}

/// The device's payment key: ECDSA P-256 over SHA-256.
#[uniffi::export(with_foreign)]
pub trait DeviceSigner: Send + Sync {
    /// The public key as a SEC1 uncompressed point (65 bytes, `0x04 ‖ x ‖ y`).
    fn public_key(&self) -> Vec<u8>;
    /// Signs `message` (the signer hashes it with SHA-256); answers an ASN.1 DER ECDSA signature.
    fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, PlatformError>;
}

/// The core's key store over an exported one.
pub(crate) struct KeyStoreBridge(pub(crate) Arc<dyn KeyStore>);

impl CoreKeyStore for KeyStoreBridge {
    fn get_or_create(&self, key_id: &str) -> Result<TemplateKey, TemplateError> {
        TemplateKey::try_from(
            self.0
                .get_or_create(key_id.into())
                .map_err(|e| key_store(key_id, e))?
                .as_slice(),
        )
    }

    fn get(&self, key_id: &str) -> Result<Option<TemplateKey>, TemplateError> {
        self.0
            .get(key_id.into())
            .map_err(|e| key_store(key_id, e))?
            .map(|k| TemplateKey::try_from(k.as_slice()))
            .transpose()
    }

    fn delete(&self, key_id: &str) -> Result<(), TemplateError> {
        self.0
            .delete(key_id.into())
            .map_err(|e| key_store(key_id, e))
    }
}

/// A platform key store's failure for the key `key_id`: an invalidated key is gone for good.
fn key_store(key_id: &str, e: PlatformError) -> TemplateError {
    match e {
        PlatformError::KeyInvalidated { .. } => TemplateError::KeyUnavailable {
            key_id: key_id.to_owned(),
        },
        other => TemplateError::KeyStore(other.to_string()),
    }
}

/// The core's signer over an exported one.
pub(crate) struct SignerBridge(pub(crate) Arc<dyn DeviceSigner>);

impl CoreSigner for SignerBridge {
    fn public_key(&self) -> Vec<u8> {
        self.0.public_key()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        self.0.sign(message.to_vec()).map_err(|e| match e {
            PlatformError::AuthenticationRequired { reason } => {
                SignerError::AuthenticationRequired(reason)
            }
            PlatformError::KeyInvalidated { reason } => SignerError::KeyInvalidated(reason),
            PlatformError::Failed { reason } => SignerError::Keystore(reason),
        })
    }
}

/// A core key store, exported.
struct SoftwareKeyStore<K>(K);

impl<K: CoreKeyStore> KeyStore for SoftwareKeyStore<K> {
    fn get_or_create(&self, key_id: String) -> Result<Vec<u8>, PlatformError> {
        self.0
            .get_or_create(&key_id)
            .map(|k| k.as_bytes().to_vec())
            .map_err(platform)
    }

    fn get(&self, key_id: String) -> Result<Option<Vec<u8>>, PlatformError> {
        Ok(self
            .0
            .get(&key_id)
            .map_err(platform)?
            .map(|k| k.as_bytes().to_vec()))
    }

    fn delete(&self, key_id: String) -> Result<(), PlatformError> {
        self.0.delete(&key_id).map_err(platform)
    }
}

/// The core's software signer, exported.
struct SoftwareDeviceSigner(SoftwareSigner);

impl DeviceSigner for SoftwareDeviceSigner {
    fn public_key(&self) -> Vec<u8> {
        self.0.public_key()
    }

    fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, PlatformError> {
        self.0.sign(&message).map_err(platform)
    }
}

fn platform(e: impl std::fmt::Display) -> PlatformError {
    PlatformError::Failed {
        reason: e.to_string(),
    }
}

/// A software P-256 key: freshly generated, or loaded from PKCS#8 DER bytes when `pkcs8` is given.
#[uniffi::export]
pub fn software_device_signer(
    pkcs8: Option<Vec<u8>>,
) -> Result<Arc<dyn DeviceSigner>, FacePayError> {
    crate::guard::guard(|| {
        let signer = match pkcs8 {
            Some(bytes) => SoftwareSigner::from_pkcs8(&bytes),
            None => SoftwareSigner::generate(),
        }
        .map_err(FacePayError::from)?;
        Ok(Arc::new(SoftwareDeviceSigner(signer)) as Arc<dyn DeviceSigner>)
    })
}

/// A key store in memory (keys are lost with the process): for tests.
#[uniffi::export]
pub fn memory_key_store() -> Arc<dyn KeyStore> {
    Arc::new(SoftwareKeyStore(MemoryKeyStore::new()))
}

/// A key store of owner-only files in `dir` (one per key): for desktops and tests, not for phones.
#[uniffi::export]
pub fn file_key_store(dir: String) -> Arc<dyn KeyStore> {
    Arc::new(SoftwareKeyStore(FileKeyStore::new(dir)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A platform implementation that fails every call with one error.
    struct Failing(PlatformError);

    impl DeviceSigner for Failing {
        fn public_key(&self) -> Vec<u8> {
            vec![4; 65]
        }

        fn sign(&self, _: Vec<u8>) -> Result<Vec<u8>, PlatformError> {
            Err(self.0.clone())
        }
    }

    impl KeyStore for Failing {
        fn get_or_create(&self, _: String) -> Result<Vec<u8>, PlatformError> {
            Err(self.0.clone())
        }

        fn get(&self, _: String) -> Result<Option<Vec<u8>>, PlatformError> {
            Err(self.0.clone())
        }

        fn delete(&self, _: String) -> Result<(), PlatformError> {
            Err(self.0.clone())
        }
    }

    #[test]
    fn platform_errors_keep_their_kind_through_the_bridges() {
        let reason = || "r".to_owned();
        let cases = [
            (
                PlatformError::AuthenticationRequired { reason: reason() },
                SignerError::AuthenticationRequired(reason()),
            ),
            (
                PlatformError::KeyInvalidated { reason: reason() },
                SignerError::KeyInvalidated(reason()),
            ),
            (
                PlatformError::Failed { reason: reason() },
                SignerError::Keystore(reason()),
            ),
        ];
        for (platform, expected) in cases {
            let bridge = SignerBridge(Arc::new(Failing(platform)));
            assert_eq!(bridge.sign(b"m"), Err(expected));
        }
        let invalidated = KeyStoreBridge(Arc::new(Failing(PlatformError::KeyInvalidated {
            reason: reason(),
        })));
        assert!(matches!(
            invalidated.get("k"),
            Err(TemplateError::KeyUnavailable { .. })
        ));
        let failed = KeyStoreBridge(Arc::new(Failing(PlatformError::Failed {
            reason: reason(),
        })));
        assert!(matches!(
            failed.get_or_create("k"),
            Err(TemplateError::KeyStore(_))
        ));
    }
}
