//! The route table and the handlers small enough not to need a file of their own.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::{HeaderMap, Method, StatusCode, Uri},
    middleware::from_fn_with_state,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::{crash, database, events, middleware, state::AppState, upload, websocket};

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/health", get(health))
        .route("/knobs/health/fail", post(health_fail))
        .route("/knobs/health/ok", post(health_ok))
        .route("/fixed", get(fixed))
        .route("/slow", get(slow))
        .route("/upload", post(upload::upload))
        .route("/ws", get(websocket::upgrade))
        .route("/sse", get(events::sse))
        .route("/chunked", get(events::chunked))
        .route("/headers", get(headers))
        .route("/status/{code}", get(status))
        .route("/requests", get(requests))
        .route("/visit", get(database::visit))
        .route("/exit", get(crash::exit))
        .route("/abort", get(crash::abort))
        .fallback(not_found)
        .layer(from_fn_with_state(state.clone(), middleware::stamp))
        .with_state(state)
}

/// Greets with the version, after `SLOW_MS`; `ERROR_RATE` of the answers are 500s.
async fn root(State(state): State<Arc<AppState>>) -> (StatusCode, String) {
    // Count on arrival so the failing requests follow arrival order.
    let fails = state.root_request_fails();
    if !state.slow.is_zero() {
        tokio::time::sleep(state.slow).await;
    }
    if fails {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("injected error from {}\n", state.version),
        )
    } else {
        (StatusCode::OK, format!("hello from {}\n", state.version))
    }
}

async fn health(State(state): State<Arc<AppState>>) -> (StatusCode, &'static str) {
    if state.is_healthy() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unhealthy")
    }
}

async fn health_fail(State(state): State<Arc<AppState>>) -> &'static str {
    state.set_healthy(false);
    "health is now fail\n"
}

async fn health_ok(State(state): State<Arc<AppState>>) -> &'static str {
    state.set_healthy(true);
    "health is now ok\n"
}

/// Benchmark target: no state, no allocation.
async fn fixed() -> &'static str {
    "ok\n"
}

#[derive(Deserialize)]
struct SlowParams {
    #[serde(default)]
    ms: u64,
}

async fn slow(Query(SlowParams { ms }): Query<SlowParams>) -> String {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    format!("slept {ms} ms\n")
}

/// Echoes the request head: header name → all its values, plus `_method`
/// and `_path` (path and query).
async fn headers(method: Method, uri: Uri, headers: HeaderMap) -> Json<Value> {
    let mut grouped: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (name, value) in &headers {
        grouped.entry(name.as_str().to_owned()).or_default().push(
            String::from_utf8_lossy(value.as_bytes())
                .into_owned()
                .into(),
        );
    }
    let mut body: Map<String, Value> = grouped
        .into_iter()
        .map(|(name, values)| (name, Value::Array(values)))
        .collect();
    body.insert("_method".to_owned(), method.as_str().into());
    let path = uri.path_and_query().map_or("/", |pq| pq.as_str());
    body.insert("_path".to_owned(), path.into());
    Json(Value::Object(body))
}

async fn status(Path(code): Path<u16>) -> Response {
    match StatusCode::from_u16(code) {
        Ok(status) if !status.is_informational() => {
            (status, format!("status {code}\n")).into_response()
        }
        _ => (
            StatusCode::BAD_REQUEST,
            format!("cannot answer with status {code}\n"),
        )
            .into_response(),
    }
}

async fn requests(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({ "count": state.requests(), "shadow": state.shadow_requests() }))
}

async fn not_found() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "not found\n")
}
