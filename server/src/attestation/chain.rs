//! X.509 chain verification against pinned roots (x509-parser, signatures through ring): each certificate signed by
//! the next, every certificate valid at the verification time, and the last one either a pinned root itself or
//! signed by one.

use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use x509_parser::time::ASN1Time;

use super::AttestationError;

/// Parses DER certificates (leaf first).
pub fn parse_all(chain: &[Vec<u8>]) -> Result<Vec<X509Certificate<'_>>, AttestationError> {
    if chain.is_empty() {
        return Err(AttestationError::Malformed(
            "the certificate chain is empty".to_owned(),
        ));
    }
    chain
        .iter()
        .enumerate()
        .map(|(i, der)| {
            let (rest, cert) = X509Certificate::from_der(der).map_err(|e| {
                AttestationError::Malformed(format!("certificate {i} is not X.509 DER: {e}"))
            })?;
            if !rest.is_empty() {
                return Err(AttestationError::Malformed(format!(
                    "certificate {i} has trailing bytes"
                )));
            }
            Ok(cert)
        })
        .collect()
}

/// Verifies `chain` (leaf first) up to one of `roots` (DER certificates) at `at_unix_secs`.
pub fn verify(
    chain: &[X509Certificate<'_>],
    roots: &[Vec<u8>],
    at_unix_secs: i64,
) -> Result<(), AttestationError> {
    let at = ASN1Time::from_timestamp(at_unix_secs)
        .map_err(|_| AttestationError::Malformed("verification time out of range".to_owned()))?;
    let roots = parse_all(roots)?;
    for (index, cert) in chain.iter().enumerate() {
        if !cert.validity().is_valid_at(at) {
            return Err(AttestationError::Expired { index });
        }
    }
    for (index, pair) in chain.windows(2).enumerate() {
        pair[0]
            .verify_signature(Some(pair[1].public_key()))
            .map_err(|_| AttestationError::ChainBroken { index })?;
    }
    let last_index = chain.len() - 1;
    let last = &chain[last_index];
    let last_is_root = roots.iter().any(|root| {
        root.public_key().raw == last.public_key().raw && last.verify_signature(None).is_ok()
    });
    if last_is_root {
        return Ok(());
    }
    let signed_by_root = roots.iter().find(|root| {
        root.subject() == last.issuer() && last.verify_signature(Some(root.public_key())).is_ok()
    });
    match signed_by_root {
        Some(root) if root.validity().is_valid_at(at) => Ok(()),
        Some(_) => Err(AttestationError::Expired {
            index: last_index + 1,
        }),
        None if last.verify_signature(None).is_ok() => Err(AttestationError::UntrustedRoot),
        None if roots.iter().any(|r| r.subject() == last.issuer()) => {
            Err(AttestationError::ChainBroken { index: last_index })
        }
        None => Err(AttestationError::UntrustedRoot),
    }
}

/// The SEC1 point of a certificate's EC public key.
pub fn ec_point<'a>(cert: &'a X509Certificate<'_>) -> &'a [u8] {
    &cert.public_key().subject_public_key.data
}
