//! Opening connections: TCP (counted), TLS when the URL is https://, then an
//! HTTP/1.1 or HTTP/2 handshake with hyper's client connection API. Also the
//! one HTTP/2 connection that all workers share.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The request body type every request uses.
pub(crate) type Body = Full<Bytes>;

/// Why a connection could not be established. Always counted as a
/// `connect` failure.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("connect to {addr}: {source}")]
    Tcp { addr: String, source: io::Error },
    #[error("TLS handshake with {addr}: {source}")]
    Tls { addr: String, source: io::Error },
    #[error("server at {addr} did not agree to HTTP/2 by ALPN (it offered {offered})")]
    NoH2 { addr: String, offered: String },
    #[error("HTTP handshake with {addr}: {source}")]
    Handshake { addr: String, source: hyper::Error },
}

/// Opens connections to the probed server and counts them.
pub(crate) struct Connector {
    addrs: Vec<SocketAddr>,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    opened: AtomicU64,
    next_id: AtomicU64,
}

impl Connector {
    /// A connector to `addrs` (tried in order), through TLS if given.
    pub fn new(addrs: Vec<SocketAddr>, tls: Option<(TlsConnector, ServerName<'static>)>) -> Self {
        Self {
            addrs,
            tls,
            opened: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
        }
    }

    /// TCP connections opened so far.
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    fn addr_text(&self) -> String {
        match self.addrs.as_slice() {
            [one] => one.to_string(),
            many => many
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" or "),
        }
    }

    async fn tcp(&self) -> Result<TcpStream, ConnectError> {
        let mut last = io::Error::new(io::ErrorKind::AddrNotAvailable, "no address to connect to");
        for addr in &self.addrs {
            match TcpStream::connect(addr).await {
                Ok(tcp) => {
                    self.opened.fetch_add(1, Ordering::Relaxed);
                    // Latency numbers should not include Nagle delays.
                    let _ = tcp.set_nodelay(true);
                    return Ok(tcp);
                }
                Err(e) => last = e,
            }
        }
        Err(ConnectError::Tcp {
            addr: self.addr_text(),
            source: last,
        })
    }

    async fn stream(&self, http2: bool) -> Result<Stream, ConnectError> {
        let tcp = self.tcp().await?;
        let Some((tls, name)) = &self.tls else {
            return Ok(Stream::Plain(tcp));
        };
        let stream = tls
            .connect(name.clone(), tcp)
            .await
            .map_err(|source| ConnectError::Tls {
                addr: self.addr_text(),
                source,
            })?;
        if http2 {
            let alpn = stream.get_ref().1.alpn_protocol();
            if alpn != Some(b"h2".as_slice()) {
                return Err(ConnectError::NoH2 {
                    addr: self.addr_text(),
                    offered: alpn
                        .map(|p| String::from_utf8_lossy(p).into_owned())
                        .unwrap_or_else(|| "no protocol".to_owned()),
                });
            }
        }
        Ok(Stream::Tls(Box::new(stream)))
    }

    /// A new HTTP/1.1 connection.
    pub async fn http1(&self) -> Result<Http1Conn, ConnectError> {
        let io = TokioIo::new(self.stream(false).await?);
        let (sender, connection) =
            http1::handshake(io)
                .await
                .map_err(|source| ConnectError::Handshake {
                    addr: self.addr_text(),
                    source,
                })?;
        Ok(Http1Conn {
            sender,
            _task: AbortOnDrop(drive(connection, "HTTP/1.1")),
        })
    }

    /// A new HTTP/2 connection.
    pub async fn http2(&self) -> Result<Http2Conn, ConnectError> {
        let io = TokioIo::new(self.stream(true).await?);
        let (sender, connection) =
            http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(|source| ConnectError::Handshake {
                    addr: self.addr_text(),
                    source,
                })?;
        let task = drive(connection, "HTTP/2");
        Ok(Http2Conn {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            sender,
            _task: Arc::new(AbortOnDrop(task)),
        })
    }
}

/// Aborts the connection task when the last handle to the connection goes.
#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One worker's HTTP/1.1 connection. Dropping it closes the connection.
#[derive(Debug)]
pub(crate) struct Http1Conn {
    pub sender: http1::SendRequest<Body>,
    _task: AbortOnDrop,
}

/// A handle to a shared HTTP/2 connection. The connection closes when the
/// last handle is dropped.
#[derive(Clone, Debug)]
pub(crate) struct Http2Conn {
    /// Tells connections apart, so that a worker replaces only the one it
    /// saw fail.
    pub id: u64,
    pub sender: http2::SendRequest<Body>,
    _task: Arc<AbortOnDrop>,
}

/// The one HTTP/2 connection all workers share, reopened when it dies.
#[derive(Default)]
pub(crate) struct SharedHttp2 {
    slot: tokio::sync::Mutex<Option<Http2Conn>>,
}

impl SharedHttp2 {
    /// The live shared connection, opening one if there is none. Only one
    /// worker opens at a time; the others wait for it (callers bound the
    /// wait).
    pub async fn get(&self, connector: &Connector) -> Result<Http2Conn, ConnectError> {
        let mut slot = self.slot.lock().await;
        if let Some(conn) = slot.as_ref()
            && !conn.sender.is_closed()
        {
            return Ok(conn.clone());
        }
        *slot = None;
        let conn = connector.http2().await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Stops handing out connection `id` (it is going away); the next
    /// [`get`](Self::get) opens a new one. Requests in flight on it finish.
    pub async fn retire(&self, id: u64) {
        let mut slot = self.slot.lock().await;
        if slot.as_ref().is_some_and(|conn| conn.id == id) {
            *slot = None;
        }
    }
}

/// A TCP stream, with or without TLS.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Runs a connection's I/O in its own task until it ends.
fn drive<C>(connection: C, protocol: &'static str) -> tokio::task::JoinHandle<()>
where
    C: std::future::Future<Output = Result<(), hyper::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, protocol, "Connection ended with an error");
        }
    })
}
