//! What the daemon is started with.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use baton_proxy::Limits;

use crate::admin_token::AdminToken;

/// Everything `baton daemon` was told on its command line.
#[derive(Clone, Debug)]
pub struct DaemonConfig {
    /// Where state.db and the control socket live.
    pub state_dir: PathBuf,
    /// Plain-HTTP listeners to bind.
    pub http: Vec<SocketAddr>,
    /// HTTPS listeners to bind.
    pub https: Vec<SocketAddr>,
    /// PEM certificate chain for HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS.
    pub tls_key: Option<PathBuf>,
    /// Proxy limits and timeouts.
    pub limits: Limits,
    /// How long shutdown waits for requests in flight.
    pub drain_timeout: Duration,
    /// While stopping, how long an idle keep-alive connection is kept for
    /// its next request.
    pub idle_grace: Duration,
    /// After handing over to a new daemon (`baton upgrade`), how long this
    /// one keeps relaying upgraded connections (WebSockets) before it sends
    /// them a close frame and exits.
    pub upgrade_grace: Duration,
    /// Proxy worker threads (one per core is right for most hosts).
    pub workers: usize,
    /// The authenticated HTTP admin listener, if asked for.
    pub admin: Option<AdminConfig>,
}

/// `baton daemon --admin ADDR` and its token.
#[derive(Clone, Debug)]
pub struct AdminConfig {
    /// The address to bind (port 0 picks a free port).
    pub address: SocketAddr,
    /// What every request must present as `Authorization: Bearer TOKEN`.
    pub token: AdminToken,
    /// A read-only token for OFREP's flag evaluation (`--flags-token-file`
    /// or `BATON_FLAGS_TOKEN`): it evaluates flags and changes nothing.
    pub flags_token: Option<AdminToken>,
}

impl DaemonConfig {
    /// The control socket's path.
    pub fn socket_path(&self) -> PathBuf {
        self.state_dir.join("baton.sock")
    }
}

/// `/var/lib/baton` for root, else `$XDG_STATE_HOME/baton`
/// (`~/.local/state/baton` when unset).
pub fn default_state_dir() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/baton");
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|dir| !dir.is_empty()) {
        return PathBuf::from(dir).join("baton");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home).join(".local/state/baton")
}
