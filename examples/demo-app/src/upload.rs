//! `POST /upload`: counts the body chunk by chunk, never holding it whole.

use axum::{
    Json,
    body::Body,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use futures_util::StreamExt;
use serde_json::json;

pub async fn upload(body: Body) -> Response {
    let mut chunks = body.into_data_stream();
    let mut bytes: u64 = 0;
    while let Some(chunk) = chunks.next().await {
        match chunk {
            Ok(chunk) => bytes += chunk.len() as u64,
            Err(err) => {
                tracing::debug!("upload cut short after {bytes} bytes: {err}");
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({ "error": err.to_string(), "bytes": bytes })),
                )
                    .into_response();
            }
        }
    }
    Json(json!({ "bytes": bytes })).into_response()
}
