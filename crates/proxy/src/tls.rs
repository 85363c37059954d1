//! TLS for the public listeners (rustls, ALPN h2 and http/1.1).

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is missing, unreadable or holds no certificate.
    #[error(
        "cannot read TLS certificate chain from {path}: {reason}; pass a PEM file with --tls-cert"
    )]
    Certificate {
        /// The file.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// The key file is missing, unreadable or holds no private key.
    #[error("cannot read TLS private key from {path}: {reason}; pass a PEM file with --tls-key")]
    Key {
        /// The file.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// The key does not fit the certificate, or rustls refused them.
    #[error("the TLS certificate and key cannot be used together: {0}")]
    Config(#[from] rustls::Error),
}

/// A server configuration from PEM files, offering h2 then http/1.1.
pub fn server_config(cert_path: &Path, key_path: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|error| TlsError::Certificate {
            path: cert_path.display().to_string(),
            reason: error.to_string(),
        })?;
    if certificates.is_empty() {
        return Err(TlsError::Certificate {
            path: cert_path.display().to_string(),
            reason: "no certificate found in the file".to_string(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|error| TlsError::Key {
        path: key_path.display().to_string(),
        reason: error.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certificates, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
