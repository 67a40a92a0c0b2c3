//! The client's TLS configuration: rustls on ring's crypto provider (one crypto library for Android and iOS), with
//! the platform's trust store or a pinned server certificate.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

use super::CheckoutError;

/// Which server certificates the client trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustRoots {
    /// The operating system's trust store, through `rustls-platform-verifier` (on Android the host app must
    /// initialise that crate's JNI bridge first).
    System,
    /// Only the certificate(s) in this PEM text: the server must present exactly one of them as its
    /// end-entity certificate. The pin is the server's identity, so name and validity dates are not checked
    /// (suits a self-signed server certificate; rotate by shipping a PEM with old and new certificates).
    PinnedCertPem(Vec<u8>),
}

/// Builds the rustls client configuration for `trust`, advertising HTTP/2 and HTTP/1.1 by ALPN.
pub(super) fn client_config(trust: &TrustRoots) -> Result<rustls::ClientConfig, CheckoutError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| CheckoutError::Config(format!("TLS versions: {e}")))?;
    let verifier: Arc<dyn ServerCertVerifier> = match trust {
        TrustRoots::System => Arc::new(
            rustls_platform_verifier::Verifier::new(provider)
                .map_err(|e| CheckoutError::Config(format!("system trust store: {e}")))?,
        ),
        TrustRoots::PinnedCertPem(pem) => Arc::new(PinnedCertVerifier::from_pem(pem, &provider)?),
    };
    let mut config = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Accepts a server only if its end-entity certificate is byte-for-byte one of the pinned certificates, and
/// checks the handshake signatures with that certificate's key.
#[derive(Debug)]
struct PinnedCertVerifier {
    pins: Vec<CertificateDer<'static>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedCertVerifier {
    fn from_pem(pem: &[u8], provider: &CryptoProvider) -> Result<Self, CheckoutError> {
        let pins = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CheckoutError::Config(format!("pinned certificate PEM: {e}")))?;
        if pins.is_empty() {
            return Err(CheckoutError::Config(
                "pinned certificate PEM holds no CERTIFICATE block".into(),
            ));
        }
        Ok(PinnedCertVerifier {
            pins,
            algorithms: provider.signature_verification_algorithms,
        })
    }
}

impl ServerCertVerifier for PinnedCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self
            .pins
            .iter()
            .any(|pin| pin.as_ref() == end_entity.as_ref())
        {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Finds a TLS failure in an error's source chain (reqwest wraps rustls errors in hyper errors and, possibly
/// nested, `io::Error`s, whose `source()` skips the wrapped error: so those are unwrapped with `get_ref`).
pub(super) fn tls_failure(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        current = match e.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_without_certificates_is_a_config_error() {
        let err = client_config(&TrustRoots::PinnedCertPem(b"not a pem".to_vec())).unwrap_err();
        assert!(matches!(err, CheckoutError::Config(_)), "{err:?}");
    }

    #[test]
    fn tls_failures_are_found_inside_nested_io_errors() {
        let rustls_error =
            rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure);
        let nested = std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls_error,
        ));
        assert!(tls_failure(&nested).is_some_and(|m| m.contains("ApplicationVerificationFailure")));
        assert_eq!(
            tls_failure(&std::io::Error::other("connection reset")),
            None
        );
    }

    #[test]
    fn system_roots_build() {
        let config = client_config(&TrustRoots::System).unwrap();
        assert_eq!(config.alpn_protocols[0], b"h2");
    }
}
