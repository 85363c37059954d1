//! Public listening sockets: bound from the command line, or handed over by
//! systemd socket activation (then used instead of binding).

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

use crate::config::DaemonConfig;
use crate::error::DaemonError;

/// Connections waiting to be accepted before the kernel refuses more.
const BACKLOG: u32 = 4096;

/// A listening socket ready to serve.
#[derive(Debug)]
pub struct PublicListener {
    /// The socket.
    pub listener: TcpListener,
    /// Whether it speaks TLS.
    pub https: bool,
    /// Whether systemd passed it.
    pub inherited: bool,
    /// The bound address.
    pub address: SocketAddr,
}

/// Takes the systemd sockets if there are any, else binds the configured
/// addresses. A socket systemd names `https` (FileDescriptorName=) speaks
/// TLS; any other is plain HTTP.
pub fn open(config: &DaemonConfig) -> Result<Vec<PublicListener>, DaemonError> {
    let inherited = inherited_listeners()?;
    if !inherited.is_empty() {
        return Ok(inherited);
    }
    let mut listeners = Vec::new();
    for (addresses, https) in [(&config.http, false), (&config.https, true)] {
        for &address in addresses {
            let listener = bind(address).map_err(|reason| DaemonError::Bind {
                address: address.to_string(),
                reason,
            })?;
            let address = listener.local_addr().unwrap_or(address);
            listeners.push(PublicListener {
                listener,
                https,
                inherited: false,
                address,
            });
        }
    }
    if listeners.is_empty() {
        return Err(DaemonError::NoListener);
    }
    Ok(listeners)
}

fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(BACKLOG)
}

fn inherited_listeners() -> Result<Vec<PublicListener>, DaemonError> {
    let mut fds = listenfd::ListenFd::from_env();
    let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
        .map(|names| names.split(':').map(str::to_string).collect())
        .unwrap_or_default();
    let mut listeners = Vec::new();
    for index in 0..fds.len() {
        let Some(listener) = fds
            .take_tcp_listener(index)
            .map_err(DaemonError::Inherited)?
        else {
            continue;
        };
        listener
            .set_nonblocking(true)
            .map_err(DaemonError::Inherited)?;
        let listener = TcpListener::from_std(listener).map_err(DaemonError::Inherited)?;
        let address = listener.local_addr().map_err(DaemonError::Inherited)?;
        let https = names.get(index).is_some_and(|name| name.contains("https"));
        listeners.push(PublicListener {
            listener,
            https,
            inherited: true,
            address,
        });
    }
    Ok(listeners)
}
