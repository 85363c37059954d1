//! The public side: accept loops, one task per client connection (HTTP/1.1,
//! h2c with prior knowledge, HTTP/2 over TLS), and the daemon's shutdown
//! rules for client connections.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::{HeaderValue, StatusCode, header};
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::admission::Admission;
use crate::forward::{ClientContext, Forwarder};
use crate::head_scanner::{HeadScanner, HeadVerdicts, MAX_HEADERS};
use crate::workers::Workers;

/// The HTTP/2 connection preface a prior-knowledge client opens with.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Serves clients on any number of listeners and stops them gracefully.
pub struct Server {
    forwarder: Arc<Forwarder>,
    connections: Arc<Admission>,
    stopping: CancellationToken,
    // Read on every response; an atomic load is cheaper than the token's lock.
    stopping_flag: AtomicBool,
    idle_grace: Duration,
}

/// What a shutdown left behind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Client connections still open when the drain timeout ended the wait.
    pub connections_cut: u64,
}

impl Server {
    /// A server forwarding through `forwarder`. While stopping, an idle
    /// keep-alive connection is kept `idle_grace` for its next request.
    pub fn new(forwarder: Arc<Forwarder>, idle_grace: Duration) -> Arc<Self> {
        Arc::new(Server {
            forwarder,
            connections: Arc::new(Admission::default()),
            stopping: CancellationToken::new(),
            stopping_flag: AtomicBool::new(false),
            idle_grace,
        })
    }

    /// Client connections open now.
    pub fn connections(&self) -> u64 {
        self.connections.in_flight()
    }

    /// Accepts on `listener` (with TLS when `tls` is set) until shutdown,
    /// on every worker: each worker accepts from the same socket and serves
    /// what it accepted.
    pub fn serve(
        self: &Arc<Self>,
        listener: std::net::TcpListener,
        tls: Option<TlsAcceptor>,
        workers: &Workers,
    ) -> std::io::Result<()> {
        listener.set_nonblocking(true)?;
        for handle in workers.handles() {
            let listener = listener.try_clone()?;
            let server = Arc::clone(self);
            let tls = tls.clone();
            handle.spawn(async move {
                match TcpListener::from_std(listener) {
                    Ok(listener) => server.accept_loop(listener, tls).await,
                    Err(error) => tracing::error!(%error, "Cannot register a listener"),
                }
            });
        }
        Ok(())
    }

    async fn accept_loop(self: Arc<Self>, listener: TcpListener, tls: Option<TlsAcceptor>) {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = self.stopping.cancelled() => break,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let Some(entered) = self.connections.enter() else {
                        break;
                    };
                    let server = Arc::clone(&self);
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        server.serve_connection(stream, peer, tls).await;
                        drop(entered);
                    });
                }
                Err(error) => {
                    // Out of file descriptors, say: back off, keep serving.
                    tracing::warn!(%error, "Accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        // Dropping the last clone of the listener stops the kernel accepting.
    }

    /// Stops accepting, lets requests in flight finish and keep-alive
    /// connections take one last request (answered `Connection: close`);
    /// HTTP/2 connections get GOAWAY. Waits up to `drain_timeout`.
    pub async fn shutdown(&self, drain_timeout: Duration) -> ShutdownReport {
        self.stopping_flag.store(true, Ordering::Release);
        self.stopping.cancel();
        let drained = tokio::time::timeout(drain_timeout, self.connections.close_when_idle()).await;
        let mut report = ShutdownReport::default();
        if drained.is_err() {
            report.connections_cut = self.connections.in_flight();
            self.connections.close_now();
        }
        report
    }

    async fn serve_connection(
        self: &Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        tls: Option<TlsAcceptor>,
    ) {
        let _ = stream.set_nodelay(true);
        let limits = self.forwarder.limits().clone();
        match tls {
            Some(acceptor) => {
                let handshake =
                    tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream)).await;
                let stream = match handshake {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        tracing::debug!(%peer, %error, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
                let http2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
                let context = ClientContext {
                    peer,
                    https: true,
                    head_verdicts: None,
                };
                if http2 {
                    self.serve_http2(stream, context).await;
                } else {
                    self.serve_http1(stream, context).await;
                }
            }
            None => {
                let context = ClientContext {
                    peer,
                    https: false,
                    head_verdicts: None,
                };
                match tokio::time::timeout(
                    limits.header_read_timeout,
                    opens_with_h2_preface(&stream),
                )
                .await
                {
                    Ok(true) => self.serve_http2(stream, context).await,
                    Ok(false) => self.serve_http1(stream, context).await,
                    Err(_) => {}
                }
            }
        }
    }

    async fn serve_http1<I>(self: &Arc<Self>, io: I, mut context: ClientContext)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let limits = self.forwarder.limits();
        let max_head = limits.max_header_size.max(8192);
        // hyper hides a Content-Length sent with Transfer-Encoding: the
        // scanner reads each head as sent and leaves its verdict for the
        // request path.
        let verdicts = Arc::new(HeadVerdicts::default());
        let io = HeadScanner::new(io, max_head, Arc::clone(&verdicts));
        context.head_verdicts = Some(verdicts);
        let server = Arc::clone(self);
        let service = service_fn(move |request| {
            let server = Arc::clone(&server);
            let context = context.clone();
            async move {
                let mut response = server.forwarder.handle(request, &context).await;
                // While stopping, every answer ends its connection: the client
                // learns it must reconnect, and nothing is closed under it.
                if server.stopping_flag.load(Ordering::Acquire)
                    && response.status() != StatusCode::SWITCHING_PROTOCOLS
                {
                    response
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                Ok::<_, Infallible>(response)
            }
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(max_head)
            .max_headers(MAX_HEADERS);
        let connection = builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(connection);
        tokio::select! {
            result = connection.as_mut() => log_connection_end(result),
            _ = self.stopping.cancelled() => {
                tokio::select! {
                    result = connection.as_mut() => log_connection_end(result),
                    _ = tokio::time::sleep(self.idle_grace) => {
                        connection.as_mut().graceful_shutdown();
                        log_connection_end(connection.await);
                    }
                }
            }
        }
    }

    async fn serve_http2<I>(self: &Arc<Self>, io: I, context: ClientContext)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let limits = self.forwarder.limits();
        let server = Arc::clone(self);
        let service = service_fn(move |request| {
            let server = Arc::clone(&server);
            let context = context.clone();
            async move { Ok::<_, Infallible>(server.forwarder.handle(request, &context).await) }
        });
        let mut builder = http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(limits.max_header_size).unwrap_or(u32::MAX));
        let connection = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        tokio::select! {
            result = connection.as_mut() => log_connection_end(result),
            _ = self.stopping.cancelled() => {
                connection.as_mut().graceful_shutdown();
                log_connection_end(connection.await);
            }
        }
    }
}

/// Peeks (without consuming) to tell h2c prior knowledge from HTTP/1.x.
async fn opens_with_h2_preface(stream: &TcpStream) -> bool {
    let mut buffer = [0u8; 24];
    loop {
        let seen = match stream.peek(&mut buffer).await {
            Ok(0) | Err(_) => return false,
            Ok(seen) => seen,
        };
        if buffer[..seen] != H2_PREFACE[..seen] {
            return false;
        }
        if seen == H2_PREFACE.len() {
            return true;
        }
        // A partial preface: wait for the rest to arrive.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn log_connection_end(result: Result<(), hyper::Error>) {
    if let Err(error) = result {
        tracing::debug!(%error, "Client connection ended with an error");
    }
}
