//! Key and app attestation, verified on the server: Android Key Attestation ([`android`]) and Apple App Attest
//! ([`apple`]), both over X.509 chains checked against pinned roots ([`chain`]). Every check takes the verification
//! time as a parameter, so recorded real samples verify at a time inside their certificates' validity.

pub mod android;
pub mod apple;
pub mod chain;

use std::path::Path;

/// Where the attested key lives, weakest first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum SecurityLevel {
    /// Android's software keystore (no hardware protection).
    Software,
    /// A trusted execution environment (Android TEE).
    Tee,
    /// A discrete secure element: Android StrongBox, or Apple's Secure Enclave (App Attest).
    StrongBox,
}

impl SecurityLevel {
    /// The stable name (`software`, `tee`, `strong_box`).
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityLevel::Software => "software",
            SecurityLevel::Tee => "tee",
            SecurityLevel::StrongBox => "strong_box",
        }
    }
}

/// Why an attestation was refused. [`AttestationError::reason`] is a stable machine name for each kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestationError {
    /// The encoding (base64, DER, CBOR, an extension) is malformed or a required field is missing.
    #[error("malformed attestation: {0}")]
    Malformed(String),
    /// A certificate's signature does not verify with its issuer's key (broken chain or tampered content).
    #[error("certificate {index} of the chain is not signed by the next one")]
    ChainBroken {
        /// Position in the chain (0 = leaf).
        index: usize,
    },
    /// The chain does not end at one of the pinned roots.
    #[error("the chain does not end at a trusted attestation root")]
    UntrustedRoot,
    /// A certificate is outside its validity period at the verification time.
    #[error("certificate {index} of the chain is not valid at the verification time")]
    Expired {
        /// Position in the chain (0 = leaf).
        index: usize,
    },
    /// The attested challenge / nonce is not the server's.
    #[error("the attested challenge is not the server's registration challenge")]
    ChallengeMismatch,
    /// The attested key is not the key being registered (or the App Attest key id does not match).
    #[error("the attested key is not the registered key")]
    KeyMismatch,
    /// The key's security level is below the policy's minimum.
    #[error("security level {found} is below the required {required}")]
    SecurityLevel {
        /// The attested level.
        found: &'static str,
        /// The policy's minimum.
        required: &'static str,
    },
    /// The app (package and signing digest, or App ID) is not on the policy's allow-list.
    #[error("the app is not allowed: {0}")]
    AppNotAllowed(String),
    /// The key's properties (purpose, algorithm, curve, origin) are not those of a FacePay signing key.
    #[error("key properties not acceptable: {0}")]
    KeyProperties(String),
    /// The device's verified boot state or bootloader lock is not acceptable.
    #[error("root of trust not acceptable: {0}")]
    RootOfTrust(String),
    /// The App Attest environment (development) is not allowed by the policy.
    #[error("App Attest environment not allowed: {0}")]
    Environment(String),
    /// An App Attest assertion's signature or counter is wrong.
    #[error("App Attest assertion refused: {0}")]
    Assertion(String),
}

impl AttestationError {
    /// A stable machine name for the kind of refusal.
    pub fn reason(&self) -> &'static str {
        match self {
            AttestationError::Malformed(_) => "malformed",
            AttestationError::ChainBroken { .. } => "chain_broken",
            AttestationError::UntrustedRoot => "untrusted_root",
            AttestationError::Expired { .. } => "certificate_expired",
            AttestationError::ChallengeMismatch => "challenge_mismatch",
            AttestationError::KeyMismatch => "key_mismatch",
            AttestationError::SecurityLevel { .. } => "security_level",
            AttestationError::AppNotAllowed(_) => "app_not_allowed",
            AttestationError::KeyProperties(_) => "key_properties",
            AttestationError::RootOfTrust(_) => "root_of_trust",
            AttestationError::Environment(_) => "environment",
            AttestationError::Assertion(_) => "assertion",
        }
    }

    /// Whether the evidence itself is broken (as opposed to valid evidence the policy does not accept).
    pub fn is_invalid_evidence(&self) -> bool {
        matches!(
            self,
            AttestationError::Malformed(_)
                | AttestationError::ChainBroken { .. }
                | AttestationError::UntrustedRoot
                | AttestationError::Expired { .. }
                | AttestationError::ChallengeMismatch
                | AttestationError::KeyMismatch
                | AttestationError::Assertion(_)
        )
    }
}

/// The pinned trust anchors, as DER certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    /// Google's hardware attestation roots (Android Key Attestation).
    pub android: Vec<Vec<u8>>,
    /// Apple's App Attestation Root CA.
    pub apple: Vec<Vec<u8>>,
}

/// Google's published hardware attestation roots (RSA 2019, sharing its key with the 2016 root; EC P-384 2025).
const GOOGLE_ROOTS_PEM: &[&str] = &[
    include_str!("../../attestation-roots/google-hardware-attestation-root-2019.pem"),
    include_str!("../../attestation-roots/google-key-attestation-ca1-2025.pem"),
];
/// Apple's App Attestation Root CA.
const APPLE_ROOTS_PEM: &[&str] = &[include_str!(
    "../../attestation-roots/apple-app-attestation-root-ca.pem"
)];

impl Roots {
    /// The platform vendors' published roots (see `server/attestation-roots/README.md`).
    pub fn published() -> Self {
        let all = |pems: &[&str]| {
            pems.iter()
                .flat_map(|pem| pem_certificates(pem).unwrap_or_default())
                .collect()
        };
        Roots {
            android: all(GOOGLE_ROOTS_PEM),
            apple: all(APPLE_ROOTS_PEM),
        }
    }

    /// Adds the certificates of a PEM file to the Android or Apple roots (e.g. a test CA).
    pub fn add_pem_file(&mut self, apple: bool, path: &Path) -> Result<(), AttestationError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            AttestationError::Malformed(format!("cannot read {}: {e}", path.display()))
        })?;
        let certs = pem_certificates(&text)?;
        if apple {
            self.apple.extend(certs);
        } else {
            self.android.extend(certs);
        }
        Ok(())
    }
}

/// The DER certificates of a PEM text (`-----BEGIN CERTIFICATE-----` blocks).
pub fn pem_certificates(text: &str) -> Result<Vec<Vec<u8>>, AttestationError> {
    let mut reader = std::io::BufReader::new(text.as_bytes());
    rustls_pki_types::pem::PemObject::pem_reader_iter(&mut reader)
        .map(|item: Result<rustls_pki_types::CertificateDer<'static>, _>| {
            item.map(|c| c.to_vec())
                .map_err(|e| AttestationError::Malformed(format!("PEM: {e}")))
        })
        .collect()
}
