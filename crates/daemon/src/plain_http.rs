//! One plain HTTP/1.1 exchange on a connection of its own: how the daemon
//! reaches the addresses users give it (external guardrails, webhooks).
//! No TLS; the config refuses `https://` for that reason.

use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Sends `request` (its URI in origin form, as built by [`request_to`]) to
/// `uri`'s host and reads at most `body_limit` bytes of the answer.
///
/// The connection is driven inside this future, not spawned, so a timeout
/// that drops it leaves nothing behind waiting on a server that hangs.
pub async fn exchange(
    uri: &Uri,
    request: Request<Full<Bytes>>,
    body_limit: usize,
) -> Result<(StatusCode, Bytes), String> {
    let authority = uri
        .authority()
        .ok_or_else(|| format!("{uri} names no host"))?;
    // An IPv6 literal is written in brackets in a URL, not in a socket address.
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(80);
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|error| format!("cannot connect to {authority}: {error}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| format!("HTTP handshake with {authority} failed: {error}"))?;
    let exchange = async move {
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| format!("the request failed: {error}"))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), body_limit)
            .collect()
            .await
            .map_err(|error| format!("reading the answer failed: {error}"))?
            .to_bytes();
        Ok((status, body))
    };
    let mut exchange = std::pin::pin!(exchange);
    tokio::select! {
        answer = &mut exchange => answer,
        ended = connection => match ended {
            // A server that closes after answering ends the connection
            // before the answer is taken; it is complete by then.
            Ok(()) => exchange.await,
            Err(error) => Err(format!("the connection to {authority} failed: {error}")),
        },
    }
}

/// A request builder for `method` to `uri`: origin-form target and `Host`
/// already set, the rest (headers, body) for the caller.
pub fn request_to(method: http::Method, uri: &Uri) -> http::request::Builder {
    let builder = Request::builder()
        .method(method)
        .uri(uri.path_and_query().map_or("/", |path| path.as_str()));
    match uri.authority() {
        Some(authority) => builder.header(header::HOST, authority.as_str()),
        None => builder,
    }
}
