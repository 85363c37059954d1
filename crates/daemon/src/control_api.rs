//! The control API, served on the control socket (axum).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use baton_api::{DaemonInfo, DeployRoute, ErrorBody, PauseRequest};

use crate::route_manager::{RouteError, RouteManager};

/// What the handlers share.
pub struct ControlState {
    /// Route changes.
    pub routes: Arc<RouteManager>,
    /// The daemon's identity, listeners filled in.
    pub info: DaemonInfo,
    /// When the daemon started.
    pub started: tokio::time::Instant,
}

/// The API's routes.
pub fn router(state: Arc<ControlState>) -> Router {
    Router::new()
        .route("/v1/daemon", get(daemon_info))
        .route("/v1/routes", get(list_routes))
        .route(
            "/v1/routes/{service}",
            put(deploy_route).delete(remove_route),
        )
        .route("/v1/routes/{service}/pause", post(pause_route))
        .route("/v1/routes/{service}/resume", post(resume_route))
        .with_state(state)
}

async fn daemon_info(State(state): State<Arc<ControlState>>) -> Json<DaemonInfo> {
    let mut info = state.info.clone();
    info.uptime_seconds = state.started.elapsed().as_secs();
    Json(info)
}

async fn list_routes(State(state): State<Arc<ControlState>>) -> Response {
    Json(state.routes.list()).into_response()
}

async fn deploy_route(
    State(state): State<Arc<ControlState>>,
    Path(service): Path<String>,
    Json(request): Json<DeployRoute>,
) -> Response {
    // Run the change in its own task: a client that hangs up mid-deploy must
    // not cancel it half-way.
    let task = tokio::spawn(async move { state.routes.deploy(&service, request).await });
    match task.await {
        Ok(result) => answer(result),
        Err(error) => internal(&error),
    }
}

async fn remove_route(
    State(state): State<Arc<ControlState>>,
    Path(service): Path<String>,
) -> Response {
    let task = tokio::spawn(async move { state.routes.remove(&service).await });
    match task.await {
        Ok(result) => answer(result),
        Err(error) => internal(&error),
    }
}

async fn pause_route(
    State(state): State<Arc<ControlState>>,
    Path(service): Path<String>,
    Json(request): Json<PauseRequest>,
) -> Response {
    answer(state.routes.pause(&service, &request).await)
}

async fn resume_route(
    State(state): State<Arc<ControlState>>,
    Path(service): Path<String>,
) -> Response {
    answer(state.routes.resume(&service).await)
}

fn answer<T: serde::Serialize>(result: Result<T, RouteError>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(error) => {
            let status = match &error {
                RouteError::Invalid(_) => StatusCode::BAD_REQUEST,
                RouteError::NotFound(_) => StatusCode::NOT_FOUND,
                RouteError::Busy(_) | RouteError::Conflict(_) => StatusCode::CONFLICT,
                RouteError::Unhealthy { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                RouteError::State(_) | RouteError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            tracing::warn!(%error, "Route change refused");
            (
                status,
                Json(ErrorBody {
                    error: error.to_string(),
                }),
            )
                .into_response()
        }
    }
}

fn internal(error: &dyn std::fmt::Display) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(ErrorBody {
            error: format!(
                "the route change failed inside the daemon: {error}; see the daemon's log"
            ),
        }),
    )
        .into_response()
}
