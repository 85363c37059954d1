//! Routes that kill the process, to play an upstream that crashes.

use std::{convert::Infallible, time::Duration};

use axum::{body::Body, http::header::CONTENT_TYPE, response::IntoResponse};
use bytes::Bytes;
use futures_util::stream;

/// `GET /exit`: exits with code 1 at once, without answering.
pub async fn exit() -> Infallible {
    tracing::error!("GET /exit: exiting with code 1 without answering");
    std::process::exit(1)
}

/// `GET /abort`: starts a chunked response, sends `partial\n`, then exits
/// with code 1, leaving the response unfinished.
pub async fn abort() -> impl IntoResponse {
    let body = stream::unfold(false, |sent| async move {
        if !sent {
            return Some((Ok::<_, Infallible>(Bytes::from_static(b"partial\n")), true));
        }
        // Pending here lets hyper flush the head and the first chunk.
        tokio::time::sleep(Duration::from_millis(100)).await;
        tracing::error!("GET /abort: exiting with code 1 mid-response");
        std::process::exit(1)
    });
    (
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(body),
    )
}
