//! Responses streamed a piece at a time: server-sent events and a plain
//! chunked body. Each piece is written as soon as it exists.

use std::{convert::Infallible, time::Duration};

use axum::{
    body::Body,
    extract::Query,
    http::header::{CACHE_CONTROL, CONTENT_TYPE},
    response::IntoResponse,
};
use bytes::Bytes;
use futures_util::{Stream, stream};
use serde::Deserialize;

/// `?count=N&interval_ms=M`: N pieces, M ms apart (the first at once).
#[derive(Deserialize, Clone, Copy)]
#[serde(default)]
pub struct Ticks {
    count: u64,
    interval_ms: u64,
}

impl Default for Ticks {
    fn default() -> Self {
        Self {
            count: 5,
            interval_ms: 100,
        }
    }
}

/// `text/event-stream` of `data: <i>\n\n`, i from 1 to count.
pub async fn sse(Query(ticks): Query<Ticks>) -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/event-stream"),
            (CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(tick_stream(ticks, |i| format!("data: {i}\n\n"))),
    )
}

/// Chunked `text/plain` of `chunk <i>\n` lines.
pub async fn chunked(Query(ticks): Query<Ticks>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(tick_stream(ticks, |i| format!("chunk {i}\n"))),
    )
}

fn tick_stream(
    ticks: Ticks,
    render: fn(u64) -> String,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let interval = Duration::from_millis(ticks.interval_ms);
    stream::unfold(1u64, move |i| async move {
        if i > ticks.count {
            return None;
        }
        if i > 1 {
            tokio::time::sleep(interval).await;
        }
        Some((Ok(Bytes::from(render(i))), i + 1))
    })
}
