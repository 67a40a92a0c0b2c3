//! Android Key Attestation: the certificate chain up to Google's roots, and the KeyDescription extension
//! (OID 1.3.6.1.4.1.11129.2.1.17) of the leaf parsed with der-parser: challenge, security level, key purpose,
//! algorithm and curve, the app's package name and signing-certificate digests, and the root of trust.

use der_parser::ber::{BerObject, BerObjectContent};
use der_parser::der::parse_der;
use serde::{Deserialize, Serialize};

use super::{AttestationError, SecurityLevel, chain};

/// The KeyDescription extension's OID.
const KEY_DESCRIPTION_OID: &str = "1.3.6.1.4.1.11129.2.1.17";

/// AuthorizationList tags used here (Android's `Tag` numbers without their type bits).
mod tag {
    pub const PURPOSE: u32 = 1;
    pub const ALGORITHM: u32 = 2;
    pub const EC_CURVE: u32 = 10;
    pub const ORIGIN: u32 = 702;
    pub const ROOT_OF_TRUST: u32 = 704;
    pub const ATTESTATION_APPLICATION_ID: u32 = 709;
}
/// `KeyPurpose::SIGN`.
const PURPOSE_SIGN: u64 = 2;
/// `Algorithm::EC`.
const ALGORITHM_EC: u64 = 3;
/// `EcCurve::P_256`.
const CURVE_P256: u64 = 1;
/// `KeyOrigin::GENERATED` (the key was made inside the keystore, never imported).
const ORIGIN_GENERATED: u64 = 0;

/// An app the policy accepts: its package name and the SHA-256 digests (hex) of its signing certificates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AndroidApp {
    /// The package name, e.g. `com.example.shop`.
    pub package: String,
    /// SHA-256 digests of the signing certificates, lower-case hex; the attested app must carry one of them.
    pub signing_digests: Vec<String>,
}

/// What the policy requires of an Android attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AndroidRequirements<'a> {
    /// Minimum attestation (and keymaster) security level.
    pub min_level: SecurityLevel,
    /// Accepted apps; empty accepts any app.
    pub apps: &'a [AndroidApp],
    /// Require verified boot state `Verified` and a locked bootloader.
    pub require_verified_boot: bool,
}

/// Verified boot state from the root of trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BootState {
    /// Boot chain verified with the OEM key.
    Verified,
    /// Verified with a user-installed key.
    SelfSigned,
    /// Not verified (unlocked bootloader).
    Unverified,
    /// Verification failed.
    Failed,
}

/// What a verified Android attestation says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AndroidAttestation {
    /// KeyDescription version (e.g. 3, 4, 100, 200, 300).
    pub attestation_version: u64,
    /// The attestation's security level.
    pub security_level: SecurityLevel,
    /// The keymaster / KeyMint security level.
    pub keymaster_level: SecurityLevel,
    /// The attested challenge.
    #[serde(skip)]
    pub challenge: Vec<u8>,
    /// Package names from attestationApplicationId.
    pub packages: Vec<String>,
    /// Signing-certificate digests from attestationApplicationId, lower-case hex.
    pub signing_digests: Vec<String>,
    /// Verified boot state, when a root of trust is present.
    pub boot_state: Option<BootState>,
    /// Whether the bootloader is locked, when a root of trust is present.
    pub device_locked: Option<bool>,
    /// The attested key (SEC1 point for EC keys).
    #[serde(skip)]
    pub public_key: Vec<u8>,
}

/// Verifies an attestation chain (DER, leaf first) at `at_unix_secs`: chain to `roots`, the challenge, the
/// attested key (when `public_key` is given), its properties, and the policy's level, app and boot rules.
pub fn verify(
    chain_der: &[Vec<u8>],
    roots: &[Vec<u8>],
    challenge: &[u8],
    public_key: Option<&[u8]>,
    requirements: &AndroidRequirements<'_>,
    at_unix_secs: i64,
) -> Result<AndroidAttestation, AttestationError> {
    let certs = chain::parse_all(chain_der)?;
    chain::verify(&certs, roots, at_unix_secs)?;
    let leaf = &certs[0];
    let extension = leaf
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == KEY_DESCRIPTION_OID)
        .ok_or_else(|| malformed("the leaf certificate has no KeyDescription extension"))?;
    let description = parse_key_description(extension.value, chain::ec_point(leaf))?;
    if description.record.challenge != challenge {
        return Err(AttestationError::ChallengeMismatch);
    }
    if public_key.is_some_and(|k| k != description.record.public_key.as_slice()) {
        return Err(AttestationError::KeyMismatch);
    }
    check_requirements(&description, requirements)?;
    Ok(description.record)
}

/// The parsed KeyDescription with the key properties that are checked but not reported.
struct Description {
    record: AndroidAttestation,
    purposes: Vec<u64>,
    algorithm: Option<u64>,
    ec_curve: Option<u64>,
    origin: Option<u64>,
}

fn malformed(what: &str) -> AttestationError {
    AttestationError::Malformed(format!("KeyDescription: {what}"))
}

fn der_error<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> AttestationError {
    move |e| malformed(&format!("{what}: {e}"))
}

fn level(value: u64) -> Result<SecurityLevel, AttestationError> {
    match value {
        0 => Ok(SecurityLevel::Software),
        1 => Ok(SecurityLevel::Tee),
        2 => Ok(SecurityLevel::StrongBox),
        _ => Err(malformed("unknown security level")),
    }
}

/// The context-tagged entries of an AuthorizationList, as (tag number, inner object).
fn tagged_entries<'a>(list: &BerObject<'a>) -> Result<Vec<(u32, BerObject<'a>)>, AttestationError> {
    list.as_sequence()
        .map_err(der_error("AuthorizationList"))?
        .iter()
        .map(|entry| {
            let BerObjectContent::Unknown(any) = &entry.content else {
                return Err(malformed("AuthorizationList entry is not context-tagged"));
            };
            let (_, inner) = parse_der(any.data).map_err(der_error("AuthorizationList entry"))?;
            Ok((entry.header.tag().0, inner))
        })
        .collect()
}

fn integers(set: &BerObject<'_>) -> Result<Vec<u64>, AttestationError> {
    set.as_set()
        .map_err(der_error("integer set"))?
        .iter()
        .map(|i| i.as_u64().map_err(der_error("integer")))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_key_description(ext: &[u8], leaf_key: &[u8]) -> Result<Description, AttestationError> {
    let (_, obj) = parse_der(ext).map_err(der_error("KeyDescription"))?;
    let fields = obj.as_sequence().map_err(der_error("KeyDescription"))?;
    if fields.len() < 8 {
        return Err(malformed("fewer than 8 fields"));
    }
    let num = |i: usize, what: &'static str| fields[i].as_u64().map_err(der_error(what));
    let mut description = Description {
        record: AndroidAttestation {
            attestation_version: num(0, "attestationVersion")?,
            security_level: level(num(1, "attestationSecurityLevel")?)?,
            keymaster_level: level(num(3, "keymasterSecurityLevel")?)?,
            challenge: fields[4]
                .as_slice()
                .map_err(der_error("attestationChallenge"))?
                .to_vec(),
            packages: Vec::new(),
            signing_digests: Vec::new(),
            boot_state: None,
            device_locked: None,
            public_key: leaf_key.to_vec(),
        },
        purposes: Vec::new(),
        algorithm: None,
        ec_curve: None,
        origin: None,
    };
    // Key properties come from the list of the attestation's own level (hardware for TEE / StrongBox).
    let hardware = description.record.security_level != SecurityLevel::Software;
    let (enforced, other) = if hardware {
        (&fields[7], &fields[6])
    } else {
        (&fields[6], &fields[7])
    };
    for (number, value) in tagged_entries(enforced)? {
        match number {
            tag::PURPOSE => description.purposes = integers(&value)?,
            tag::ALGORITHM => {
                description.algorithm = Some(value.as_u64().map_err(der_error("algorithm"))?)
            }
            tag::EC_CURVE => {
                description.ec_curve = Some(value.as_u64().map_err(der_error("ecCurve"))?)
            }
            tag::ORIGIN => description.origin = Some(value.as_u64().map_err(der_error("origin"))?),
            tag::ROOT_OF_TRUST => parse_root_of_trust(&value, &mut description.record)?,
            tag::ATTESTATION_APPLICATION_ID => {
                parse_application_id(&value, &mut description.record)?
            }
            _ => {}
        }
    }
    // attestationApplicationId is software-enforced (the OS fills it in), and the root of trust may sit in either.
    for (number, value) in tagged_entries(other)? {
        match number {
            tag::ATTESTATION_APPLICATION_ID if description.record.packages.is_empty() => {
                parse_application_id(&value, &mut description.record)?;
            }
            tag::ROOT_OF_TRUST if description.record.boot_state.is_none() && !hardware => {
                parse_root_of_trust(&value, &mut description.record)?;
            }
            _ => {}
        }
    }
    Ok(description)
}

fn parse_root_of_trust(
    value: &BerObject<'_>,
    record: &mut AndroidAttestation,
) -> Result<(), AttestationError> {
    let fields = value.as_sequence().map_err(der_error("RootOfTrust"))?;
    if fields.len() < 3 {
        return Err(malformed("RootOfTrust has fewer than 3 fields"));
    }
    record.device_locked = Some(fields[1].as_bool().map_err(der_error("deviceLocked"))?);
    record.boot_state = Some(
        match fields[2].as_u64().map_err(der_error("verifiedBootState"))? {
            0 => BootState::Verified,
            1 => BootState::SelfSigned,
            2 => BootState::Unverified,
            3 => BootState::Failed,
            _ => return Err(malformed("unknown verifiedBootState")),
        },
    );
    Ok(())
}

fn parse_application_id(
    value: &BerObject<'_>,
    record: &mut AndroidAttestation,
) -> Result<(), AttestationError> {
    let bytes = value
        .as_slice()
        .map_err(der_error("attestationApplicationId"))?;
    let (_, id) = parse_der(bytes).map_err(der_error("AttestationApplicationId"))?;
    let fields = id
        .as_sequence()
        .map_err(der_error("AttestationApplicationId"))?;
    if fields.len() < 2 {
        return Err(malformed(
            "AttestationApplicationId has fewer than 2 fields",
        ));
    }
    for info in fields[0].as_set().map_err(der_error("package_infos"))? {
        let info = info
            .as_sequence()
            .map_err(der_error("AttestationPackageInfo"))?;
        let name = info
            .first()
            .ok_or_else(|| malformed("empty AttestationPackageInfo"))?
            .as_slice()
            .map_err(der_error("package_name"))?;
        record
            .packages
            .push(String::from_utf8_lossy(name).into_owned());
    }
    for digest in fields[1].as_set().map_err(der_error("signature_digests"))? {
        record.signing_digests.push(hex(digest
            .as_slice()
            .map_err(der_error("signature digest"))?));
    }
    Ok(())
}

fn check_requirements(
    description: &Description,
    requirements: &AndroidRequirements<'_>,
) -> Result<(), AttestationError> {
    let record = &description.record;
    let found = record.security_level.min(record.keymaster_level);
    if found < requirements.min_level {
        return Err(AttestationError::SecurityLevel {
            found: found.as_str(),
            required: requirements.min_level.as_str(),
        });
    }
    if !description.purposes.contains(&PURPOSE_SIGN) {
        return Err(AttestationError::KeyProperties(
            "the key may not sign".to_owned(),
        ));
    }
    if description.algorithm != Some(ALGORITHM_EC) {
        return Err(AttestationError::KeyProperties(
            "the key is not an EC key".to_owned(),
        ));
    }
    if description.ec_curve.is_some_and(|c| c != CURVE_P256) {
        return Err(AttestationError::KeyProperties(
            "the key is not on P-256".to_owned(),
        ));
    }
    if description.origin.is_some_and(|o| o != ORIGIN_GENERATED) {
        return Err(AttestationError::KeyProperties(
            "the key was imported, not generated in the keystore".to_owned(),
        ));
    }
    if requirements.require_verified_boot
        && (record.boot_state != Some(BootState::Verified) || record.device_locked != Some(true))
    {
        return Err(AttestationError::RootOfTrust(format!(
            "boot state {:?}, bootloader locked {:?}",
            record.boot_state, record.device_locked
        )));
    }
    if !requirements.apps.is_empty() {
        let allowed = requirements.apps.iter().any(|app| {
            record.packages.contains(&app.package)
                && app
                    .signing_digests
                    .iter()
                    .any(|d| record.signing_digests.contains(&d.to_ascii_lowercase()))
        });
        if !allowed {
            return Err(AttestationError::AppNotAllowed(format!(
                "packages {:?} with signing digests {:?}",
                record.packages, record.signing_digests
            )));
        }
    }
    Ok(())
}
