//! TLS with rustls on ring: certificates from PEM files, or a generated self-signed one for local use.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::ServerError;
use crate::config::TlsMode;

/// The rustls server configuration for a TLS mode (`None` for plain HTTP), with ALPN h2 and http/1.1.
pub fn server_config(mode: &TlsMode) -> Result<Option<Arc<rustls::ServerConfig>>, ServerError> {
    let (certs, key) = match mode {
        TlsMode::PlainLoopback => return Ok(None),
        TlsMode::Files { cert, key } => (load_certs(cert)?, load_key(key)?),
        TlsMode::SelfSigned { cert_out } => self_signed(cert_out)?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServerError::Tls(format!("certificate and key do not fit together: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ServerError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            ServerError::Tls(format!(
                "cannot read certificates from {}: {e}",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(ServerError::Tls(format!(
            "no certificate in {}",
            path.display()
        )));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, ServerError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        ServerError::Tls(format!(
            "cannot read a private key from {}: {e}",
            path.display()
        ))
    })
}

/// A self-signed certificate for `localhost`, `127.0.0.1` and `::1`; its PEM is written to `cert_out`.
fn self_signed(
    cert_out: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ServerError> {
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let generated = rcgen::generate_simple_self_signed(names)
        .map_err(|e| ServerError::Tls(format!("cannot generate a self-signed certificate: {e}")))?;
    std::fs::write(cert_out, generated.cert.pem()).map_err(|e| {
        ServerError::Tls(format!(
            "cannot write the certificate to {}: {e}",
            cert_out.display()
        ))
    })?;
    let key = PrivatePkcs8KeyDer::from(generated.signing_key.serialize_der());
    Ok((
        vec![generated.cert.der().clone()],
        PrivateKeyDer::Pkcs8(key),
    ))
}
