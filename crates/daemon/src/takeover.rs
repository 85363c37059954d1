//! `baton upgrade`, on the new daemon's side: fetch the running daemon's
//! sockets instead of binding, and say "ready" once accepting on them.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

use tokio::net::TcpListener;

use crate::control_socket::OwnerOnlyListener;
use crate::error::DaemonError;
use crate::handoff::{
    Answer, HANDOFF_SOCKET_ENV, Handover, SocketRole, receive_handover, send_answer,
};
use crate::listeners::PublicListener;

/// The sockets a daemon serves on, bound by itself or handed over.
pub struct OpenSockets {
    /// The proxy's listeners.
    pub public: Vec<PublicListener>,
    /// The admin listener and its address, when `--admin` was given.
    pub admin: Option<(TcpListener, SocketAddr)>,
    /// The control socket.
    pub control: OwnerOnlyListener,
}

/// A hand-over in progress: the running daemon waits for the answer.
pub struct TakeOver {
    stream: UnixStream,
    handover: Handover,
    fds: Vec<OwnedFd>,
    log: Option<OwnedFd>,
}

impl TakeOver {
    /// The hand-over this process was started for, if any: its environment
    /// names the socket to fetch the sockets from.
    pub fn from_env() -> Result<Option<TakeOver>, DaemonError> {
        let Some(path) = std::env::var_os(HANDOFF_SOCKET_ENV) else {
            return Ok(None);
        };
        let failure = |reason: String| DaemonError::Handoff {
            reason: format!("{}: {reason}", Path::new(&path).display()),
        };
        let stream = UnixStream::connect(&path).map_err(|error| failure(error.to_string()))?;
        let (handover, fds) =
            receive_handover(&stream).map_err(|error| failure(error.to_string()))?;
        Ok(Some(TakeOver {
            stream,
            handover,
            fds,
            log: None,
        }))
    }

    /// The daemon that hands over.
    pub fn old_pid(&self) -> u32 {
        self.handover.old_pid
    }

    /// Turns the handed-over descriptors into the sockets to serve;
    /// `control_path` is where the control socket lives.
    pub fn sockets(&mut self, control_path: &Path) -> Result<OpenSockets, DaemonError> {
        let mut public = Vec::new();
        let mut admin = None;
        let mut control = None;
        let wrong = |error: std::io::Error| DaemonError::Handoff {
            reason: format!("a handed-over socket is unusable: {error}"),
        };
        for (socket, fd) in self.handover.sockets.iter().zip(self.fds.drain(..)) {
            match socket.role {
                SocketRole::Http | SocketRole::Https => {
                    let listener = tcp_listener(fd).map_err(wrong)?;
                    let address = listener.local_addr().map_err(wrong)?;
                    public.push(PublicListener {
                        listener,
                        https: socket.role == SocketRole::Https,
                        inherited: socket.inherited,
                        address,
                    });
                }
                SocketRole::Admin => {
                    let listener = tcp_listener(fd).map_err(wrong)?;
                    let address = listener.local_addr().map_err(wrong)?;
                    admin = Some((listener, address));
                }
                SocketRole::Control => {
                    let listener = std::os::unix::net::UnixListener::from(fd);
                    control = Some(OwnerOnlyListener::adopt(listener, control_path)?);
                }
                SocketRole::Log => self.log = Some(fd),
            }
        }
        let control = control.ok_or_else(|| DaemonError::Handoff {
            reason: "the running daemon handed over no control socket".into(),
        })?;
        if public.is_empty() {
            return Err(DaemonError::NoListener);
        }
        Ok(OpenSockets {
            public,
            admin,
            control,
        })
    }

    /// Tells the running daemon this one accepts on every socket (it stops
    /// accepting and drains), and from now on logs where it logged. A
    /// daemon that fails before this exits, which closes the hand-over
    /// socket: the old daemon then reports its output and serves on.
    pub fn ready(self) {
        if let Err(error) = send_answer(
            &self.stream,
            &Answer::Ready {
                pid: std::process::id(),
            },
        ) {
            tracing::error!(%error, "Cannot tell the old daemon this one is ready");
        }
        if let Some(log) = &self.log
            && let Err(error) = rustix::stdio::dup2_stderr(log)
        {
            tracing::warn!(%error, "Cannot log where the old daemon logged");
        }
    }
}

fn tcp_listener(fd: OwnedFd) -> std::io::Result<TcpListener> {
    let listener = std::net::TcpListener::from(fd);
    listener.set_nonblocking(true)?;
    TcpListener::from_std(listener)
}
