//! Why the daemon could not start.

/// A startup failure; the daemon exits and changes nothing.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A listener could not be bound.
    #[error(
        "cannot listen on {address}: {reason}; is another process using it? pick another address"
    )]
    Bind {
        /// The address.
        address: String,
        /// What the OS said (in the message, so not also an error source
        /// that error chains would print again).
        reason: std::io::Error,
    },
    /// Sockets passed by systemd could not be used.
    #[error(
        "cannot use the sockets passed by systemd (LISTEN_FDS): {0}; give the .socket unit only TCP ListenStream= sockets, or unset LISTEN_FDS to bind --http/--https instead"
    )]
    Inherited(std::io::Error),
    /// HTTPS was asked for without its certificate or key.
    #[error("--https needs both --tls-cert FILE and --tls-key FILE")]
    TlsMissing,
    /// The certificate or key is unusable.
    #[error(transparent)]
    Tls(#[from] baton_proxy::TlsError),
    /// No public listener at all.
    #[error(
        "no listener: pass --http ADDR (e.g. --http 0.0.0.0:80) or start under systemd socket activation"
    )]
    NoListener,
    /// Started by `baton upgrade`, this daemon could not take the running
    /// daemon's sockets over (the running daemon keeps serving).
    #[error("taking over from the running daemon failed: {reason}")]
    Handoff {
        /// What went wrong.
        reason: String,
    },
    /// The state directory or database is unusable.
    #[error(transparent)]
    State(#[from] baton_state::StateError),
    /// The control socket could not be set up.
    #[error("cannot set up the control socket {path}: {reason}")]
    ControlSocket {
        /// The socket path.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The proxy's worker threads could not start.
    #[error("cannot start the proxy worker threads: {0}")]
    Workers(std::io::Error),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}
