//! What the daemon says about itself.

use serde::{Deserialize, Serialize};

/// The running daemon: who it is and where it listens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DaemonInfo {
    /// Process id of the daemon.
    pub pid: u32,
    /// The daemon's version (the crate version it was built from).
    pub version: String,
    /// The state directory in use.
    pub state_dir: String,
    /// The control socket path.
    pub socket: String,
    /// Public listeners, and the admin listener if there is one, with the
    /// addresses actually bound (port 0 resolved).
    pub listeners: Vec<ListenerInfo>,
    /// Seconds since the daemon started.
    pub uptime_seconds: u64,
}

/// One listener.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListenerInfo {
    /// `http` or `https` (the proxy), or `admin` (the authenticated admin
    /// API of `baton daemon --admin`).
    pub protocol: String,
    /// The bound address, e.g. `127.0.0.1:8080`.
    pub address: String,
    /// Whether the socket came from systemd socket activation.
    pub inherited: bool,
}

/// `baton upgrade`: hand the daemon's sockets to a new binary.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradeRequest {
    /// The new binary; `None` is the running daemon's own path, read again
    /// from the disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<String>,
    /// How long the new daemon may take to accept on every socket
    /// (default 30 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_timeout_ms: Option<u64>,
}

/// A finished upgrade: the new daemon accepts; the old one finishes what
/// it holds and exits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradeOutcome {
    /// The daemon that handed over.
    pub old_pid: u32,
    /// The daemon that took over.
    pub new_pid: u32,
    /// From the start of the hand-over to the new daemon accepting.
    pub ready_ms: u64,
}
