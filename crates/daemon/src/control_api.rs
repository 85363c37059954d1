//! The control API, served on the control socket (axum).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Query;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use std::time::Duration;

use baton_api::{
    DaemonInfo, DeployEvent, DeployRequest, DeployRoute, ErrorBody, PauseRequest, RollbackRequest,
    RolloutRequest, UpgradeOutcome, UpgradeRequest as WireUpgradeRequest,
};
use tokio::sync::{mpsc, oneshot};

use crate::app_manager::{AppError, AppManager};
use crate::daemon::UpgradeCall;
use crate::route_manager::{RouteError, RouteManager};
use crate::upgrade::{DEFAULT_READY_TIMEOUT, UpgradeRequest};

/// What the handlers share.
pub struct ControlState {
    /// Route changes.
    pub routes: Arc<RouteManager>,
    /// Apps: deploys, rollbacks, releases, processes.
    pub apps: Arc<AppManager>,
    /// The daemon's identity, listeners filled in.
    pub info: DaemonInfo,
    /// When the daemon started.
    pub started: tokio::time::Instant,
    /// Where `baton upgrade` requests go (the daemon's main loop).
    pub upgrades: mpsc::Sender<UpgradeCall>,
}

/// The API's routes.
pub fn router(state: Arc<ControlState>) -> Router {
    Router::new()
        .route("/v1/daemon", get(daemon_info))
        .route("/v1/daemon/upgrade", post(upgrade_daemon))
        .route("/v1/routes", get(list_routes))
        .route(
            "/v1/routes/{service}",
            put(deploy_route).delete(remove_route),
        )
        .route("/v1/routes/{service}/pause", post(pause_route))
        .route("/v1/routes/{service}/resume", post(resume_route))
        .route("/v1/apps", get(list_apps))
        .route("/v1/apps/{app}", get(show_app))
        .route("/v1/apps/{app}/deploys", post(deploy_app))
        .route("/v1/apps/{app}/rollbacks", post(rollback_app))
        .route("/v1/apps/{app}/rollout", post(command_rollout))
        .route("/v1/apps/{app}/status", get(app_status))
        .route("/v1/apps/{app}/releases", get(list_releases))
        .route("/v1/apps/{app}/history", get(list_history))
        .route("/v1/processes", get(list_processes))
        .with_state(state)
}

async fn daemon_info(State(state): State<Arc<ControlState>>) -> Json<DaemonInfo> {
    let mut info = state.info.clone();
    info.uptime_seconds = state.started.elapsed().as_secs();
    Json(info)
}

/// Hands the sockets to a new daemon; answers once it accepts (this daemon
/// then drains and exits) or with why it keeps serving.
async fn upgrade_daemon(
    State(state): State<Arc<ControlState>>,
    Json(request): Json<WireUpgradeRequest>,
) -> Response {
    let (reply, result) = oneshot::channel();
    let call = UpgradeCall {
        request: UpgradeRequest {
            binary: request.binary.map(Into::into),
            ready_timeout: request
                .ready_timeout_ms
                .map_or(DEFAULT_READY_TIMEOUT, Duration::from_millis),
        },
        reply: Some(reply),
    };
    if state.upgrades.try_send(call).is_err() {
        return refusal(
            StatusCode::CONFLICT,
            &"an upgrade is already running; wait for it to finish",
        );
    }
    match result.await {
        Ok(Ok(upgraded)) => Json(UpgradeOutcome {
            old_pid: std::process::id(),
            new_pid: upgraded.pid,
            ready_ms: u64::try_from(upgraded.ready_after.as_millis()).unwrap_or(u64::MAX),
        })
        .into_response(),
        Ok(Err(error)) => refusal(StatusCode::CONFLICT, &error),
        Err(_) => refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            &"the daemon is stopping; no upgrade was started",
        ),
    }
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
                RouteError::Unhealthy { .. } | RouteError::Aborted(_) => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                RouteError::State(_) | RouteError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            tracing::warn!(%error, "Route change refused");
            refusal(status, &error)
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

async fn list_apps(State(state): State<Arc<ControlState>>) -> Response {
    app_answer(state.apps.apps().await)
}

async fn show_app(State(state): State<Arc<ControlState>>, Path(app): Path<String>) -> Response {
    app_answer(state.apps.app(&app).await)
}

async fn deploy_app(
    State(state): State<Arc<ControlState>>,
    Path(app): Path<String>,
    Json(request): Json<DeployRequest>,
) -> Response {
    if request.config.name() != app {
        return app_answer::<()>(Err(AppError::Invalid(format!(
            "the config names app {:?}, the request {app:?}",
            request.config.name()
        ))));
    }
    match state.apps.deploy(request).await {
        Ok(events) => event_stream(events),
        Err(error) => app_answer::<()>(Err(error)),
    }
}

async fn rollback_app(
    State(state): State<Arc<ControlState>>,
    Path(app): Path<String>,
    Json(request): Json<RollbackRequest>,
) -> Response {
    match state.apps.rollback(&app, request).await {
        Ok(events) => event_stream(events),
        Err(error) => app_answer::<()>(Err(error)),
    }
}

async fn command_rollout(
    State(state): State<Arc<ControlState>>,
    Path(app): Path<String>,
    Json(request): Json<RolloutRequest>,
) -> Response {
    tracing::info!(app, command = ?request.command, user = request.user, "Rollout command");
    match state.apps.rollout_command(&app, request.command).await {
        Ok(()) => app_answer(state.apps.app(&app).await),
        Err(error) => app_answer::<()>(Err(error)),
    }
}

async fn app_status(State(state): State<Arc<ControlState>>, Path(app): Path<String>) -> Response {
    app_answer(state.apps.status(&app).await)
}

async fn list_releases(
    State(state): State<Arc<ControlState>>,
    Path(app): Path<String>,
) -> Response {
    app_answer(state.apps.releases(&app).await)
}

/// `?limit=N` of `GET /v1/apps/{app}/history`.
#[derive(serde::Deserialize)]
struct HistoryQuery {
    limit: Option<usize>,
}

async fn list_history(
    State(state): State<Arc<ControlState>>,
    Path(app): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Response {
    app_answer(state.apps.history(&app, query.limit.unwrap_or(50)).await)
}

/// `?app=NAME` of `GET /v1/processes`.
#[derive(serde::Deserialize)]
struct ProcessQuery {
    app: Option<String>,
}

async fn list_processes(
    State(state): State<Arc<ControlState>>,
    Query(query): Query<ProcessQuery>,
) -> Response {
    Json(state.apps.processes(query.app.as_deref())).into_response()
}

/// A run's events as newline-delimited JSON, each sent as it happens.
fn event_stream(events: mpsc::UnboundedReceiver<DeployEvent>) -> Response {
    let lines = futures_util::stream::unfold(events, |mut events| async move {
        let event = events.recv().await?;
        let mut line = serde_json::to_vec(&event).unwrap_or_default();
        line.push(b'\n');
        Some((Ok::<_, std::convert::Infallible>(line), events))
    });
    Response::builder()
        .header(http::header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from_stream(lines))
        .unwrap_or_else(|error| internal(&error))
}

/// An app command's answer: the value as JSON, or the refusal with the
/// status that fits it.
pub(crate) fn app_answer<T: serde::Serialize>(result: Result<T, AppError>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(error) => {
            let status = match &error {
                AppError::Invalid(_) => StatusCode::BAD_REQUEST,
                AppError::NotFound(_) => StatusCode::NOT_FOUND,
                AppError::Busy(_) => StatusCode::CONFLICT,
                AppError::State(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            tracing::warn!(%error, "App command refused");
            refusal(status, &error)
        }
    }
}

fn refusal(status: StatusCode, error: &dyn std::fmt::Display) -> Response {
    (
        status,
        Json(ErrorBody {
            error: error.to_string(),
        }),
    )
        .into_response()
}
