//! The trust policy (`docs/server-policy.md`): what registration must prove (attestation, security level, app)
//! and what a payment's signed evidence must show (passive check, challenge count, model versions, match score),
//! loaded from a TOML file (`--policy FILE`) and adjusted by flags.

use std::path::{Path, PathBuf};

use facepay_core::checkout::protocol::Evidence;
use facepay_core::checkout::wire::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::attestation::SecurityLevel;
use crate::attestation::android::AndroidApp;

/// The face-match threshold calibrated for the shipped embedder (`models/manifest.toml`, `[calibration]`): the
/// default minimum match score, so the server and the device read the one value.
const MANIFEST: &str = include_str!("../../models/manifest.toml");

/// The whole policy.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Registration: attestation requirements.
    pub attestation: AttestationPolicy,
    /// Payment: evidence rules.
    pub evidence: EvidencePolicy,
    /// Devices per account.
    pub devices: DevicePolicy,
}

/// What registration must prove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttestationPolicy {
    /// Refuse devices that bring no key / app attestation.
    pub required: bool,
    /// Lowest accepted security level of an attested Android key (`software`, `tee`, `strong_box`); App Attest
    /// keys live in the Secure Enclave and count as `strong_box`.
    pub min_security_level: SecurityLevel,
    /// Accepted Android apps (package name and signing-certificate SHA-256 digests); empty accepts any app.
    pub android_apps: Vec<AndroidApp>,
    /// Accepted Apple App IDs (`TEAMID.bundle.id`); empty accepts any app.
    pub apple_app_ids: Vec<String>,
    /// Require Android's verified boot state `verified` and a locked bootloader.
    pub require_verified_boot: bool,
    /// Accept App Attest keys from the development environment.
    pub allow_apple_development: bool,
    /// PEM files of extra Android roots trusted besides Google's (a private CA, tests).
    pub extra_android_roots: Vec<PathBuf>,
    /// PEM files of extra Apple roots trusted besides Apple's.
    pub extra_apple_roots: Vec<PathBuf>,
}

impl Default for AttestationPolicy {
    fn default() -> Self {
        AttestationPolicy {
            required: false,
            min_security_level: SecurityLevel::Tee,
            android_apps: Vec::new(),
            apple_app_ids: Vec::new(),
            require_verified_boot: true,
            allow_apple_development: false,
            extra_android_roots: Vec::new(),
            extra_apple_roots: Vec::new(),
        }
    }
}

/// What a payment's signed evidence must show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvidencePolicy {
    /// Require the passive anti-spoof score (the passive check ran); `false` explicitly accepts devices
    /// without the passive models.
    pub require_passive: bool,
    /// Fewest liveness challenges the evidence must list.
    pub min_challenges: usize,
    /// Model versions (`name@hash`) accepted; empty accepts any. Every version the evidence lists must be here.
    pub model_versions: Vec<String>,
    /// Lowest accepted face-match score (default: the calibrated threshold in `models/manifest.toml`).
    pub min_match_score: f32,
}

impl Default for EvidencePolicy {
    fn default() -> Self {
        EvidencePolicy {
            require_passive: true,
            min_challenges: 1,
            model_versions: Vec::new(),
            min_match_score: calibrated_threshold(),
        }
    }
}

/// Devices per account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DevicePolicy {
    /// Most active (unrevoked) devices one account may have.
    pub max_per_account: u32,
}

impl Default for DevicePolicy {
    fn default() -> Self {
        DevicePolicy { max_per_account: 5 }
    }
}

/// The `[calibration] threshold` of the shipped model manifest.
pub fn calibrated_threshold() -> f32 {
    #[derive(Deserialize)]
    struct Manifest {
        calibration: Calibration,
    }
    #[derive(Deserialize)]
    struct Calibration {
        threshold: f32,
    }
    // The manifest is part of the build and tested; a broken one fails `policy_defaults_read_the_manifest`.
    toml::from_str::<Manifest>(MANIFEST).map_or(f32::INFINITY, |m| m.calibration.threshold)
}

/// Why a policy file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read the policy file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a valid policy.
    #[error("invalid policy file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl Policy {
    /// Reads a TOML policy file (missing keys keep their defaults; unknown keys are refused).
    pub fn from_file(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| PolicyError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }
}

/// An evidence rule a payment broke, with its stable error code.
#[derive(Debug, Clone, PartialEq)]
pub struct EvidenceRejection {
    /// The stable code.
    pub code: ErrorCode,
    /// What was wrong.
    pub message: String,
}

impl EvidencePolicy {
    /// Checks the signed evidence (the liveness verdict and challenges are checked before, by the protocol).
    pub fn check(&self, evidence: &Evidence) -> Result<(), EvidenceRejection> {
        let reject = |code, message: String| Err(EvidenceRejection { code, message });
        if self.require_passive && evidence.antispoof_score.is_none() {
            return reject(
                ErrorCode::PassiveCheckMissing,
                "the evidence has no passive anti-spoof score and this server requires the passive check".into(),
            );
        }
        if evidence.challenges.len() < self.min_challenges {
            return reject(
                ErrorCode::TooFewChallenges,
                format!(
                    "{} liveness challenges performed, the server requires at least {}",
                    evidence.challenges.len(),
                    self.min_challenges
                ),
            );
        }
        if !self.model_versions.is_empty()
            && let Some(v) = evidence
                .model_versions
                .iter()
                .find(|v| !self.model_versions.contains(v))
        {
            return reject(
                ErrorCode::ModelNotAllowed,
                format!("model version {v:?} is not on the server's allow-list"),
            );
        }
        // Below the minimum, or not comparable (NaN): rejected.
        if evidence
            .match_score
            .partial_cmp(&self.min_match_score)
            .is_none_or(|order| order.is_lt())
        {
            return reject(
                ErrorCode::MatchScoreTooLow,
                format!(
                    "match score {} is below the server's minimum {}",
                    evidence.match_score, self.min_match_score
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use facepay_core::checkout::protocol::{Evidence, LivenessVerdict};
    use facepay_core::checkout::wire::ErrorCode;

    use super::EvidencePolicy;

    /// The floor is inclusive, and a score that compares with nothing (NaN) is refused like a low one.
    #[test]
    fn the_match_score_floor_refuses_low_and_nan_scores() {
        let policy = EvidencePolicy {
            require_passive: false,
            min_challenges: 0,
            model_versions: Vec::new(),
            min_match_score: 0.7,
        };
        let with = |match_score: f32| Evidence {
            liveness: LivenessVerdict::Live,
            challenges: Vec::new(),
            antispoof_score: None,
            match_score,
            model_versions: Vec::new(),
            started_at_ms: 0,
            finished_at_ms: 1,
        };
        assert_eq!(policy.check(&with(0.7)), Ok(()));
        assert_eq!(policy.check(&with(0.95)), Ok(()));
        for refused in [0.69, -1.0, f32::NAN] {
            let rejection = policy.check(&with(refused)).unwrap_err();
            assert_eq!(rejection.code, ErrorCode::MatchScoreTooLow, "{refused}");
        }
    }
}
