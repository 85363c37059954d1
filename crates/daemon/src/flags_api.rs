//! The flag commands over HTTP: list, show, set, on, off, delete, import,
//! export, history and stale. The control socket serves them for the CLI
//! (the caller names its OS user); the admin listener serves the same
//! behind the admin token, and records its changes as made by `admin-api`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use baton_api::{
    DEFAULT_STALE_DAYS, ErrorBody, FlagActor, FlagExport, FlagImportRequest, FlagSetRequest,
    check_flag_name,
};
use baton_flags::ClientFeatures;
use baton_state::StateError;

use crate::flag_service::{Edit, FlagError, FlagService, unix_ms};
use crate::flag_settings;

/// Who the changes made through a router are recorded as made by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The control socket: the user the request names (the socket is the
    /// OS user's own, mode 0600).
    Socket,
    /// The admin listener: whoever holds the admin token, `admin-api`.
    Admin,
}

struct FlagsState {
    flags: Arc<FlagService>,
    caller: Caller,
}

impl FlagsState {
    fn who(&self, user: &str) -> String {
        match self.caller {
            Caller::Admin => "admin-api".to_string(),
            Caller::Socket if user.trim().is_empty() => "unknown".to_string(),
            Caller::Socket => user.trim().to_string(),
        }
    }
}

/// The flag routes: `{flags}` for the flags one by one (`/v1/flags` on the
/// control socket) and `{set}` for the whole set (`/v1/flagset`), apart so
/// that a flag may be called `import` or `history`.
pub fn router(flags: Arc<FlagService>, caller: Caller, prefix: &str) -> Router {
    let one = format!("{prefix}/flags/{{name}}");
    Router::new()
        .route(&format!("{prefix}/flags"), get(list))
        .route(&one, get(show).put(set).delete(delete))
        .route(&format!("{one}/on"), post(switch_on))
        .route(&format!("{one}/off"), post(switch_off))
        .route(&format!("{prefix}/flagset/export"), get(export))
        .route(
            &format!("{prefix}/flagset/import"),
            put(import).post(import),
        )
        .route(&format!("{prefix}/flagset/history"), get(history))
        .route(&format!("{prefix}/flagset/stale"), get(stale))
        .with_state(Arc::new(FlagsState { flags, caller }))
}

async fn list(State(state): State<Arc<FlagsState>>) -> Response {
    Json(state.flags.list()).into_response()
}

async fn show(State(state): State<Arc<FlagsState>>, Path(name): Path<String>) -> Response {
    answer(state.flags.show(&name))
}

async fn set(
    State(state): State<Arc<FlagsState>>,
    Path(name): Path<String>,
    Json(request): Json<FlagSetRequest>,
) -> Response {
    let who = state.who(&request.user);
    let target = name.clone();
    let edit: Edit<'_> = Box::new(move |document: &ClientFeatures| {
        let mut document = document.clone();
        match document
            .features
            .iter_mut()
            .find(|feature| feature.name == target)
        {
            Some(feature) => {
                *feature = flag_settings::apply(&target, Some(feature), &request.settings)?
            }
            None => {
                check_flag_name(&target).map_err(FlagError::Invalid)?;
                let feature = flag_settings::apply(&target, None, &request.settings)?;
                document.features.push(feature);
            }
        }
        Ok(document)
    });
    changed(&state, "set", &who, Some(&name), edit).await
}

async fn switch_on(
    State(state): State<Arc<FlagsState>>,
    Path(name): Path<String>,
    Json(actor): Json<FlagActor>,
) -> Response {
    switch(&state, name, true, &actor).await
}

async fn switch_off(
    State(state): State<Arc<FlagsState>>,
    Path(name): Path<String>,
    Json(actor): Json<FlagActor>,
) -> Response {
    switch(&state, name, false, &actor).await
}

async fn switch(state: &FlagsState, name: String, on: bool, actor: &FlagActor) -> Response {
    let who = state.who(&actor.user);
    let target = name.clone();
    let edit: Edit<'_> = Box::new(move |document: &ClientFeatures| {
        let mut document = document.clone();
        let feature = document
            .features
            .iter_mut()
            .find(|feature| feature.name == target)
            .ok_or_else(|| FlagError::NotFound(target.clone()))?;
        feature.enabled = on;
        Ok(document)
    });
    let action = if on { "on" } else { "off" };
    changed(state, action, &who, Some(&name), edit).await
}

async fn delete(
    State(state): State<Arc<FlagsState>>,
    Path(name): Path<String>,
    Json(actor): Json<FlagActor>,
) -> Response {
    let who = state.who(&actor.user);
    let target = name.clone();
    let edit: Edit<'_> = Box::new(move |document: &ClientFeatures| {
        let mut document = document.clone();
        let before = document.features.len();
        document.features.retain(|feature| feature.name != target);
        if document.features.len() == before {
            return Err(FlagError::NotFound(target));
        }
        Ok(document)
    });
    changed(&state, "delete", &who, None, edit).await
}

async fn import(
    State(state): State<Arc<FlagsState>>,
    Json(request): Json<FlagImportRequest>,
) -> Response {
    let who = state.who(&request.user);
    let edit: Edit<'_> = Box::new(move |_: &ClientFeatures| {
        let document = ClientFeatures::from_unleash_json(&request.document)?;
        if let Some(unnamed) = document.features.iter().position(|f| f.name.is_empty()) {
            return Err(FlagError::Invalid(format!(
                "flag {} of the document has an empty name; every flag needs one",
                unnamed + 1
            )));
        }
        Ok(document)
    });
    changed(&state, "import", &who, None, edit).await
}

async fn export(State(state): State<Arc<FlagsState>>) -> Response {
    answer(
        state
            .flags
            .export()
            .map(|(revision, document)| FlagExport { revision, document }),
    )
}

/// `?name=FLAG&limit=N` of the history.
#[derive(serde::Deserialize)]
struct HistoryQuery {
    name: Option<String>,
    limit: Option<usize>,
}

async fn history(
    State(state): State<Arc<FlagsState>>,
    Query(query): Query<HistoryQuery>,
) -> Response {
    answer(
        state
            .flags
            .history(query.name, query.limit.unwrap_or(50))
            .await,
    )
}

/// `?days=N` of `stale`.
#[derive(serde::Deserialize)]
struct StaleQuery {
    days: Option<u32>,
}

/// Flags settled and unchanged for more than `days` days (default
/// [`DEFAULT_STALE_DAYS`]), counted to the daemon's clock.
async fn stale(State(state): State<Arc<FlagsState>>, Query(query): Query<StaleQuery>) -> Response {
    answer(
        state
            .flags
            .stale(query.days.unwrap_or(DEFAULT_STALE_DAYS), unix_ms())
            .await,
    )
}

async fn changed(
    state: &FlagsState,
    action: &str,
    who: &str,
    flag: Option<&str>,
    edit: Edit<'_>,
) -> Response {
    answer(state.flags.change(action, who, flag, edit).await)
}

fn answer<T: serde::Serialize>(result: Result<T, FlagError>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(error) => {
            let status = match &error {
                FlagError::NotFound(_) => StatusCode::NOT_FOUND,
                FlagError::Invalid(_) | FlagError::Model(_) => StatusCode::BAD_REQUEST,
                FlagError::State(StateError::FlagRevisionMoved { .. }) => StatusCode::CONFLICT,
                FlagError::State(_) | FlagError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            tracing::warn!(%error, "Flag command refused");
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
