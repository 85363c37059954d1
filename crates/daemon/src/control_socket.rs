//! The control socket: a Unix socket of mode 0600 that also checks each
//! peer's uid, so only the daemon's owner (or root) can drive it.

use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::net::{UnixListener, UnixStream};

use crate::error::DaemonError;

/// Accepts only connections from the daemon's own user or root.
pub struct OwnerOnlyListener {
    listener: UnixListener,
    path: PathBuf,
    owner: u32,
}

impl OwnerOnlyListener {
    /// Binds `path`, replacing a stale socket left by a crashed daemon but
    /// refusing to take over one that a live daemon answers on.
    pub async fn bind(path: &Path) -> Result<Self, DaemonError> {
        let failure = |reason: String| DaemonError::ControlSocket {
            path: path.display().to_string(),
            reason,
        };
        if path.exists() {
            if UnixStream::connect(path).await.is_ok() {
                return Err(failure(
                    "another baton daemon is running with this state directory; stop it or use another --state-dir"
                        .to_string(),
                ));
            }
            std::fs::remove_file(path)
                .map_err(|error| failure(format!("cannot remove the stale socket: {error}")))?;
        }
        let listener = UnixListener::bind(path).map_err(|error| failure(error.to_string()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|error| failure(format!("cannot set mode 0600: {error}")))?;
        Ok(OwnerOnlyListener {
            listener,
            path: path.to_path_buf(),
            owner: nix::unistd::geteuid().as_raw(),
        })
    }

    /// Serves on `listener`, a control socket handed over by the daemon
    /// that bound it at `path` (`baton upgrade`).
    pub fn adopt(
        listener: std::os::unix::net::UnixListener,
        path: &Path,
    ) -> Result<Self, DaemonError> {
        let failure = |error: std::io::Error| DaemonError::ControlSocket {
            path: path.display().to_string(),
            reason: format!("cannot serve the handed-over socket: {error}"),
        };
        listener.set_nonblocking(true).map_err(failure)?;
        Ok(OwnerOnlyListener {
            listener: UnixListener::from_std(listener).map_err(failure)?,
            path: path.to_path_buf(),
            owner: nix::unistd::geteuid().as_raw(),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl AsFd for OwnerOnlyListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }
}

impl axum::serve::Listener for OwnerOnlyListener {
    type Io = UnixStream;
    type Addr = ();

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let stream = match self.listener.accept().await {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "Control socket accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            match stream.peer_cred() {
                Ok(credentials) if credentials.uid() == self.owner || credentials.uid() == 0 => {
                    return (stream, ());
                }
                Ok(credentials) => {
                    tracing::warn!(
                        uid = credentials.uid(),
                        "Refused a control connection from another user"
                    );
                }
                Err(error) => tracing::warn!(%error, "Cannot read control peer credentials"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(())
    }
}
