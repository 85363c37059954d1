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
static X_BATON_SHADOW: HeaderName = HeaderName::from_static("x-baton-shadow");

/// Counts the request for `/requests` (except `/requests` and `/health`
/// themselves, so polling them does not disturb the count), shadow copies
/// by method, and stamps `X-Version` on the response.
pub async fn stamp(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path != "/requests" && path != "/health" {
        state.count_request();
        if request.headers().contains_key(&X_BATON_SHADOW) {
            state.count_shadow_request(request.method().as_str());
        }
    }
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(X_VERSION.clone(), state.version_header.clone());
    response
}
