//! Errors that stop a probe from starting. Failures of individual requests
//! are never errors: they are counted in the [`Report`](crate::Report).

use std::path::PathBuf;

/// Why a probe could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The URL is not an absolute http:// or https:// URL with a host.
    #[error("invalid URL {url:?}: {reason}; give a full URL such as http://127.0.0.1:8080/path")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP method is not a valid token.
    #[error("invalid HTTP method {0:?}: use a method such as GET, POST or PUT")]
    InvalidMethod(String),
    /// A request header could not be parsed or is not valid HTTP.
    #[error("invalid header {header:?}: {reason}; write it as 'Name: value'")]
    InvalidHeader {
        /// The header as given.
        header: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The settings contradict each other or are out of range.
    #[error("invalid probe settings: {0}")]
    InvalidConfig(String),
    /// The host name of the URL did not resolve.
    #[error("cannot resolve {host}: {reason}; check the host name in the URL")]
    Resolve {
        /// The host that did not resolve.
        host: String,
        /// Why.
        reason: String,
    },
    /// The CA file could not be read or holds no usable certificate.
    #[error("cannot use CA file {}: {reason}; give a PEM file with at least one CA certificate", path.display())]
    CaFile {
        /// The file given.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// An https:// URL without a CA file, without `insecure` and no system
    /// CA bundle on this machine.
    #[error(
        "no CA certificates to verify the server of an https:// URL: give a CA file (--ca FILE, PEM) or skip verification (--insecure)"
    )]
    NoTrustRoots,
    /// rustls refused the TLS client settings.
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// A bug in the probe itself (a worker panicked, a histogram refused a value).
    #[error("internal probe error: {0}; this is a bug in baton, please report it")]
    Internal(String),
}
