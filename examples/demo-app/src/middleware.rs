//! Runs around every request, including 404s.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::HeaderName,
    middleware::Next,
    response::Response,
};

use crate::state::AppState;

static X_VERSION: HeaderName = HeaderName::from_static("x-version");

/// Counts the request for `/requests` (except `/requests` and `/health`
/// themselves, so polling them does not disturb the count) and stamps
/// `X-Version` on the response.
pub async fn stamp(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path != "/requests" && path != "/health" {
        state.count_request();
    }
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(X_VERSION.clone(), state.version_header.clone());
    response
}
