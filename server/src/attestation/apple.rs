//! Apple App Attest: the CBOR attestation object (ciborium), its x5c chain to Apple's App Attestation Root CA, the
//! nonce (SHA-256 of authData ‖ SHA-256(clientData)) in the leaf's extension 1.2.840.113635.100.8.2, the key id,
//! the RP ID hash (SHA-256 of the App ID), the counter and the environment; and per-request assertions with an
//! increasing counter.

use ciborium::Value;
use facepay_core::checkout::protocol::sha256;
use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use serde::Serialize;

use super::{AttestationError, chain};

/// The nonce extension's OID.
const NONCE_OID: &str = "1.2.840.113635.100.8.2";
/// authData's AAGUID in the development environment.
const AAGUID_DEVELOPMENT: &[u8; 16] = b"appattestdevelop";
/// authData's AAGUID in production.
const AAGUID_PRODUCTION: &[u8; 16] = b"appattest\0\0\0\0\0\0\0";

/// Which App Attest environment produced the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    /// Apps signed for development (the sandbox).
    Development,
    /// App Store / TestFlight apps.
    Production,
}

/// What the policy requires of an App Attest attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppleRequirements<'a> {
    /// Accepted App IDs (`TEAMID.bundle.id`); empty accepts any.
    pub app_ids: &'a [String],
    /// Whether keys from the development environment are accepted.
    pub allow_development: bool,
}

/// What a verified App Attest attestation says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppleAttestation {
    /// The App ID whose RP ID hash the authData carries.
    pub app_id: String,
    /// The environment.
    pub environment: Environment,
    /// The App Attest key (SEC1 point), for verifying assertions.
    #[serde(skip)]
    pub public_key: Vec<u8>,
    /// The authData counter (0 for an attestation).
    pub counter: u32,
}

fn malformed(what: impl std::fmt::Display) -> AttestationError {
    AttestationError::Malformed(format!("App Attest: {what}"))
}

fn map_get<'a>(map: &'a Value, key: &str) -> Result<&'a Value, AttestationError> {
    map.as_map()
        .ok_or_else(|| malformed("not a CBOR map"))?
        .iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
        .ok_or_else(|| malformed(format!("no {key:?}")))
}

fn bytes<'a>(value: &'a Value, what: &str) -> Result<&'a [u8], AttestationError> {
    value
        .as_bytes()
        .map(Vec::as_slice)
        .ok_or_else(|| malformed(format!("{what} is not a byte string")))
}

/// The parts of authenticator data this verifier reads.
struct AuthData<'a> {
    rp_id_hash: &'a [u8],
    counter: u32,
    /// (AAGUID, credential id) when attested credential data is present.
    credential: Option<(&'a [u8], &'a [u8])>,
}

fn auth_data(data: &[u8], with_credential: bool) -> Result<AuthData<'_>, AttestationError> {
    if data.len() < 37 {
        return Err(malformed("authenticator data shorter than 37 bytes"));
    }
    let counter = u32::from_be_bytes([data[33], data[34], data[35], data[36]]);
    let credential = if with_credential {
        let rest = &data[37..];
        if rest.len() < 18 {
            return Err(malformed("no attested credential data"));
        }
        let len = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
        let id = rest
            .get(18..18 + len)
            .ok_or_else(|| malformed("credential id runs past the data"))?;
        Some((&rest[..16], id))
    } else {
        None
    };
    Ok(AuthData {
        rp_id_hash: &data[..32],
        counter,
        credential,
    })
}

/// The allowed App ID whose SHA-256 is `rp_id_hash`.
fn app_id_for(rp_id_hash: &[u8], app_ids: &[String], claimed: &str) -> Result<String, AttestationError> {
    if sha256(claimed.as_bytes()) != rp_id_hash {
        return Err(AttestationError::AppNotAllowed(format!(
            "the RP ID hash is not SHA-256 of {claimed:?}"
        )));
    }
    if !app_ids.is_empty() && !app_ids.iter().any(|a| a == claimed) {
        return Err(AttestationError::AppNotAllowed(format!(
            "{claimed:?} is not an allowed App ID"
        )));
    }
    Ok(claimed.to_owned())
}

/// Verifies an attestation object for `key_id` (SHA-256 of the App Attest public key) over `client_data` (the
/// bytes whose SHA-256 the app passed as clientDataHash) from the app `app_id`, at `at_unix_secs`.
pub fn verify_attestation(
    attestation_object: &[u8],
    key_id: &[u8],
    client_data: &[u8],
    app_id: &str,
    roots: &[Vec<u8>],
    requirements: &AppleRequirements<'_>,
    at_unix_secs: i64,
) -> Result<AppleAttestation, AttestationError> {
    let object: Value =
        ciborium::de::from_reader(attestation_object).map_err(|e| malformed(format!("CBOR: {e}")))?;
    if map_get(&object, "fmt")?.as_text() != Some("apple-appattest") {
        return Err(malformed("fmt is not apple-appattest"));
    }
    let statement = map_get(&object, "attStmt")?;
    let x5c: Vec<Vec<u8>> = map_get(statement, "x5c")?
        .as_array()
        .ok_or_else(|| malformed("x5c is not an array"))?
        .iter()
        .map(|c| bytes(c, "x5c entry").map(<[u8]>::to_vec))
        .collect::<Result<_, _>>()?;
    let auth_bytes = bytes(map_get(&object, "authData")?, "authData")?;
    let certs = chain::parse_all(&x5c)?;
    chain::verify(&certs, roots, at_unix_secs)?;
    let leaf = &certs[0];
    let nonce = {
        let mut message = auth_bytes.to_vec();
        message.extend_from_slice(&sha256(client_data));
        sha256(&message)
    };
    let extension = leaf
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == NONCE_OID)
        .ok_or_else(|| malformed("the leaf certificate has no nonce extension"))?;
    if attested_nonce(extension.value)? != nonce {
        return Err(AttestationError::ChallengeMismatch);
    }
    let public_key = chain::ec_point(leaf).to_vec();
    if sha256(&public_key) != key_id {
        return Err(AttestationError::KeyMismatch);
    }
    let data = auth_data(auth_bytes, true)?;
    let app_id = app_id_for(data.rp_id_hash, requirements.app_ids, app_id)?;
    if data.counter != 0 {
        return Err(malformed("the attestation counter is not 0"));
    }
    let (aaguid, credential_id) = data
        .credential
        .ok_or_else(|| malformed("no attested credential data"))?;
    let environment = if aaguid == AAGUID_PRODUCTION {
        Environment::Production
    } else if aaguid == AAGUID_DEVELOPMENT {
        Environment::Development
    } else {
        return Err(malformed("unknown AAGUID"));
    };
    if environment == Environment::Development && !requirements.allow_development {
        return Err(AttestationError::Environment(
            "development keys are not accepted".to_owned(),
        ));
    }
    if credential_id != key_id {
        return Err(AttestationError::KeyMismatch);
    }
    Ok(AppleAttestation {
        app_id,
        environment,
        public_key,
        counter: data.counter,
    })
}

/// The nonce in the extension: `SEQUENCE { [1] EXPLICIT OCTET STRING }`.
fn attested_nonce(value: &[u8]) -> Result<Vec<u8>, AttestationError> {
    let der = |e: der_parser::error::BerError| malformed(format!("nonce extension: {e}"));
    let (_, seq) = der_parser::der::parse_der(value).map_err(der)?;
    let first = seq
        .as_sequence()
        .map_err(der)?
        .first()
        .ok_or_else(|| malformed("empty nonce extension"))?;
    let inner = first.as_slice().map_err(der)?;
    let (_, octets) = der_parser::der::parse_der(inner).map_err(der)?;
    Ok(octets.as_slice().map_err(der)?.to_vec())
}

/// Verifies an App Attest assertion over `client_data` with the attested key; the counter must exceed
/// `last_counter`. Returns the assertion's counter.
pub fn verify_assertion(
    assertion: &[u8],
    client_data: &[u8],
    public_key: &[u8],
    app_id: &str,
    last_counter: u32,
) -> Result<u32, AttestationError> {
    let object: Value = ciborium::de::from_reader(assertion)
        .map_err(|e| AttestationError::Assertion(format!("CBOR: {e}")))?;
    let signature = bytes(map_get(&object, "signature")?, "signature")?;
    let auth_bytes = bytes(map_get(&object, "authenticatorData")?, "authenticatorData")?;
    let nonce = {
        let mut message = auth_bytes.to_vec();
        message.extend_from_slice(&sha256(client_data));
        sha256(&message)
    };
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, public_key)
        .verify(&nonce, signature)
        .map_err(|_| AttestationError::Assertion("the signature does not verify".to_owned()))?;
    let data = auth_data(auth_bytes, false)?;
    if sha256(app_id.as_bytes()) != data.rp_id_hash {
        return Err(AttestationError::Assertion(
            "the RP ID hash is not the attested app's".to_owned(),
        ));
    }
    if data.counter <= last_counter {
        return Err(AttestationError::Assertion(format!(
            "counter {} is not above {last_counter}",
            data.counter
        )));
    }
    Ok(data.counter)
}
