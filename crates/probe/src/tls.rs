//! TLS client settings for https:// URLs: which CAs to trust (a given PEM
//! file, else the system bundle) or none at all (`insecure`), and ALPN.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_rustls::TlsConnector;

use crate::error::ProbeError;

/// Where Linux distributions keep their CA bundle, most common first.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// A TLS connector that trusts `ca_file` (or the system bundle, or anything
/// when `insecure`) and offers `h2` (when `http2`) or `http/1.1` by ALPN.
pub(crate) fn connector(
    ca_file: Option<&Path>,
    insecure: bool,
    http2: bool,
) -> Result<TlsConnector, ProbeError> {
    // Always ring, never a process-wide default provider that may be unset.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let mut config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth()
    } else {
        builder
            .with_root_certificates(trust_roots(ca_file)?)
            .with_no_client_auth()
    };
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The name to verify the server's certificate against (and send as SNI,
/// unless it is an IP address).
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, ProbeError> {
    ServerName::try_from(host.to_owned()).map_err(|e| ProbeError::InvalidUrl {
        url: host.to_owned(),
        reason: format!("the host is not a valid TLS server name: {e}"),
    })
}

fn trust_roots(ca_file: Option<&Path>) -> Result<RootCertStore, ProbeError> {
    let mut roots = RootCertStore::empty();
    if let Some(path) = ca_file {
        let ca_error = |reason: String| ProbeError::CaFile {
            path: path.to_owned(),
            reason,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| ca_error(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ca_error(format!("not valid PEM: {e}")))?;
        if certs.is_empty() {
            return Err(ca_error("it holds no CERTIFICATE block".to_owned()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| ca_error(format!("a certificate is not usable: {e}")))?;
        }
        return Ok(roots);
    }
    for bundle in SYSTEM_BUNDLES {
        let Ok(certs) = CertificateDer::pem_file_iter(bundle) else {
            continue;
        };
        let (added, _ignored) = roots.add_parsable_certificates(certs.flatten());
        if added > 0 {
            return Ok(roots);
        }
    }
    Err(ProbeError::NoTrustRoots)
}

/// Accepts any server certificate (`insecure`), while still checking that
/// the handshake is signed by the key of the certificate presented.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn missing_ca_file_is_reported_with_its_path() {
        let err = connector(Some(Path::new("/nonexistent/ca.pem")), false, false).err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("/nonexistent/ca.pem"), "{text}");
    }

    #[test]
    fn ca_file_without_certificates_is_rejected() {
        let mut file = match tempfile::NamedTempFile::new() {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        };
        let _ = file.write_all(b"not a certificate\n");
        let err = connector(Some(file.path()), false, false).err();
        assert!(matches!(err, Some(ProbeError::CaFile { .. })), "{err:?}");
    }

    #[test]
    fn insecure_needs_no_roots() {
        assert!(connector(None, true, true).is_ok());
    }

    #[test]
    fn server_names_accept_hosts_and_ips() {
        assert!(server_name("localhost").is_ok());
        assert!(server_name("127.0.0.1").is_ok());
        assert!(server_name("::1").is_ok());
    }
}
