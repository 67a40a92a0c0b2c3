//! The device key that signs payments: the [`DeviceSigner`] trait (platform keystores implement it through the
//! bindings) and [`SoftwareSigner`], a `ring` ECDSA P-256 key held in memory and persisted as PKCS#8.

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use thiserror::Error;

use super::wire::DeviceAttestation;

/// Why a device key could not be created, loaded or used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignerError {
    /// The key material is not a valid PKCS#8 ECDSA P-256 private key.
    #[error("not a PKCS#8 ECDSA P-256 private key: {0}")]
    InvalidKey(String),
    /// The system random number generator failed.
    #[error("random number generator failed")]
    Rng,
    /// The platform keystore needs the user to authenticate (device credential, biometric) before it signs.
    #[error("keystore needs user authentication: {0}")]
    AuthenticationRequired(String),
    /// The platform keystore's key was permanently invalidated (e.g. the device lock was removed): register the
    /// device again.
    #[error("keystore key invalidated: {0}")]
    KeyInvalidated(String),
    /// The platform keystore refused or failed to sign for another reason.
    #[error("keystore failed to sign: {0}")]
    Keystore(String),
}

/// A device's payment key: ECDSA P-256 with SHA-256. Object-safe, so platform keystores can implement it.
pub trait DeviceSigner: Send + Sync {
    /// The public key as a SEC1 uncompressed point (65 bytes, starting with `0x04`).
    fn public_key(&self) -> Vec<u8>;
    /// Signs `message` (hashed with SHA-256 by the signer); returns an ASN.1 DER ECDSA signature.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError>;
    /// The platform's attestation for registering this key with the server's registration `challenge`, whose
    /// `registration_message` is `message` (Android Key Attestation uses the challenge, App Attest the message's
    /// SHA-256 as clientDataHash). `None` (the default) when the platform attests nothing.
    fn attestation(
        &self,
        challenge: &[u8; 32],
        message: &[u8],
    ) -> Result<Option<DeviceAttestation>, SignerError> {
        let _ = (challenge, message);
        Ok(None)
    }
}

/// A software device key (`ring`), for tests, the demo and devices without a hardware keystore.
pub struct SoftwareSigner {
    key: EcdsaKeyPair,
    pkcs8: Vec<u8>,
    rng: SystemRandom,
}

impl SoftwareSigner {
    /// Generates a fresh random key.
    pub fn generate() -> Result<Self, SignerError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| SignerError::Rng)?;
        Self::from_pkcs8(pkcs8.as_ref())
    }

    /// Loads a key from PKCS#8 v1 or v2 DER bytes (as written by [`to_pkcs8`](Self::to_pkcs8)).
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, SignerError> {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8, &rng)
            .map_err(|e| SignerError::InvalidKey(e.to_string()))?;
        Ok(SoftwareSigner {
            key,
            pkcs8: pkcs8.to_vec(),
            rng,
        })
    }

    /// The PKCS#8 DER bytes of the private key, for persistence. Keep them secret.
    pub fn to_pkcs8(&self) -> Vec<u8> {
        self.pkcs8.clone()
    }
}

impl std::fmt::Debug for SoftwareSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftwareSigner")
            .field("public_key", &self.key.public_key())
            .finish_non_exhaustive()
    }
}

impl DeviceSigner for SoftwareSigner {
    fn public_key(&self) -> Vec<u8> {
        self.key.public_key().as_ref().to_vec()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        self.key
            .sign(&self.rng, message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| SignerError::Rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkout::protocol::verify_signature;

    #[test]
    fn signatures_verify_and_survive_pkcs8_round_trip() {
        let signer = SoftwareSigner::generate().unwrap();
        let pk = signer.public_key();
        assert_eq!(pk.len(), 65);
        assert_eq!(pk[0], 4);
        let sig = signer.sign(b"pay 10 EUR").unwrap();
        verify_signature(&pk, b"pay 10 EUR", &sig).unwrap();
        assert!(verify_signature(&pk, b"pay 11 EUR", &sig).is_err());

        let reloaded = SoftwareSigner::from_pkcs8(&signer.to_pkcs8()).unwrap();
        assert_eq!(reloaded.public_key(), pk);
        let sig2 = reloaded.sign(b"again").unwrap();
        verify_signature(&pk, b"again", &sig2).unwrap();
    }

    #[test]
    fn distinct_keys_do_not_verify_each_other() {
        let a = SoftwareSigner::generate().unwrap();
        let b = SoftwareSigner::generate().unwrap();
        assert_ne!(a.public_key(), b.public_key());
        let sig = a.sign(b"m").unwrap();
        assert!(verify_signature(&b.public_key(), b"m", &sig).is_err());
    }

    #[test]
    fn garbage_pkcs8_is_a_typed_error() {
        assert!(matches!(
            SoftwareSigner::from_pkcs8(b"not a key"),
            Err(SignerError::InvalidKey(_))
        ));
    }

    #[test]
    fn signer_is_object_safe() {
        let boxed: Box<dyn DeviceSigner> = Box::new(SoftwareSigner::generate().unwrap());
        assert_eq!(boxed.public_key().len(), 65);
    }
}
