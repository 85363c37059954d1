//! The admin API, served on the TCP admin listener (`baton daemon --admin`)
//! for callers that cannot reach the control socket, such as an alert
//! manager that should abort a bad rollout, and OpenFeature SDKs
//! evaluating flags (OFREP), and the dashboard (`/`) for people. Every
//! request must carry the admin token as `Authorization: Bearer TOKEN`, or
//! a dashboard session cookie (see `admin_access`); OFREP's evaluation
//! routes also take the read-only flags token, which can change nothing.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use baton_api::{ErrorBody, RolloutCommand};
use tokio_util::sync::CancellationToken;

use crate::admin_access::{self, Access};
use crate::admin_token::AdminToken;
use crate::app_manager::AppManager;
use crate::control_api::app_answer;
use crate::dashboard::{self, Dashboard};
use crate::dashboard_sessions::Sessions;
use crate::flag_service::FlagService;
use crate::flags_api::{self, Caller};
use crate::metrics_endpoint::{self, MetricsEndpoint};
use crate::ofrep;

/// The tokens the admin listener takes.
#[derive(Clone, Debug)]
pub struct AdminTokens {
    /// Opens every route.
    pub admin: AdminToken,
    /// Opens OFREP's evaluation routes only (`/ofrep/...`): it can read
    /// flags, never change anything.
    pub flags: Option<AdminToken>,
}

/// The admin API's routes and the dashboard, behind the access check of
/// `admin_access`. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so refusals are
/// logged with the caller's address. `stop` ends the dashboard's event
/// streams when the daemon stops.
pub fn router(
    apps: Arc<AppManager>,
    metrics: Arc<MetricsEndpoint>,
    tokens: AdminTokens,
    flags: Arc<FlagService>,
    stop: CancellationToken,
) -> Router {
    let dashboard = Arc::new(Dashboard {
        apps: Arc::clone(&apps),
        flags: Arc::clone(&flags),
        sessions: Arc::new(Sessions::default()),
        token: tokens.admin.clone(),
        stop,
        latest: tokio::sync::Mutex::new(None),
        departed: std::sync::Mutex::default(),
    });
    guarded(
        Router::new()
            .route("/api/apps", get(list_apps))
            .route("/api/apps/{app}/rollout/abort", post(abort_rollout))
            .route("/api/apps/{app}/rollout/promote", post(promote_rollout))
            .with_state(apps)
            .merge(dashboard::router(Arc::clone(&dashboard)))
            .merge(metrics_endpoint::router(metrics, "/metrics"))
            .merge(flags_api::router(Arc::clone(&flags), Caller::Admin, "/api"))
            .merge(ofrep::router(flags)),
        Door {
            tokens,
            dashboard: Some(dashboard),
        },
    )
}

/// What the access check needs: the tokens, and the dashboard's sessions.
struct Door {
    tokens: AdminTokens,
    dashboard: Option<Arc<Dashboard>>,
}

/// `routes` behind the access check. `layer`, not `route_layer`: unknown
/// paths are refused too, so the listener tells nothing to a caller
/// without the token.
fn guarded(routes: Router, door: Door) -> Router {
    routes.layer(middleware::from_fn_with_state(
        Arc::new(door),
        require_access,
    ))
}

/// Lets a request through with the admin token, the flags token for OFREP,
/// or a dashboard session (which needs the page's CSRF header to change
/// anything); the login page and its assets are open.
async fn require_access(State(door): State<Arc<Door>>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let session = door
        .dashboard
        .as_ref()
        .is_some_and(|dashboard| dashboard.has_session(headers));
    let access = admin_access::decide(
        request.method(),
        request.uri().path(),
        headers,
        &door.tokens.admin,
        door.tokens.flags.as_ref(),
        session,
    );
    if access == Access::Granted {
        return next.run(request).await;
    }
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.to_string())
        .unwrap_or_default();
    tracing::warn!(
        peer,
        method = %request.method(),
        path = request.uri().path(),
        ?access,
        "Admin request refused"
    );
    match access {
        Access::CrossSite => refusal(
            StatusCode::FORBIDDEN,
            "a dashboard session may change things only from the dashboard's own page (the X-Baton-Csrf header, same origin)",
        ),
        _ => unauthorized(access == Access::WrongToken),
    }
}

/// 401 with the challenge RFC 6750 asks for (`error="invalid_token"` when a
/// token was sent but is wrong).
fn unauthorized(token_presented: bool) -> Response {
    let (challenge, message) = if token_presented {
        (
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
            "the bearer token is not this daemon's admin token",
        )
    } else {
        (
            HeaderValue::from_static("Bearer"),
            "the admin API needs the header `Authorization: Bearer TOKEN` with the daemon's admin token (or a dashboard login)",
        )
    };
    let mut response = refusal(StatusCode::UNAUTHORIZED, message);
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge);
    response
}

async fn list_apps(State(apps): State<Arc<AppManager>>) -> Response {
    app_answer(apps.apps().await)
}

async fn abort_rollout(State(apps): State<Arc<AppManager>>, Path(app): Path<String>) -> Response {
    command_rollout(&apps, app, RolloutCommand::Abort).await
}

async fn promote_rollout(State(apps): State<Arc<AppManager>>, Path(app): Path<String>) -> Response {
    command_rollout(&apps, app, RolloutCommand::Promote).await
}

/// Passes `command` to `app`'s running rollout; answers with the app.
async fn command_rollout(apps: &AppManager, app: String, command: RolloutCommand) -> Response {
    tracing::info!(app, ?command, "Rollout command through the admin listener");
    match apps.rollout_command(&app, command).await {
        Ok(()) => app_answer(apps.app(&app).await),
        Err(error) => app_answer::<()>(Err(error)),
    }
}

fn refusal(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(ErrorBody {
            error: message.to_string(),
        }),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::TokioIo;
    use tokio::net::{TcpListener, TcpStream};

    /// The token check in front of a route that always answers, served on
    /// a real port as the daemon serves it.
    async fn serve_guarded() -> SocketAddr {
        let tokens = AdminTokens {
            admin: AdminToken::from_text("right-token", "test").expect("token"),
            flags: Some(AdminToken::from_text("flags-token", "test").expect("token")),
        };
        let routes = Router::new()
            .route("/api/apps", get(|| async { "listed" }))
            .route("/ofrep/v1/evaluate/flags", get(|| async { "evaluated" }));
        let app = guarded(
            routes,
            Door {
                tokens,
                dashboard: None,
            },
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        address
    }

    /// Status, `WWW-Authenticate` and body of `GET path`.
    async fn call(authorization: Option<&str>, path: &str) -> (StatusCode, String, String) {
        let address = serve_guarded().await;
        let stream = TcpStream::connect(address).await.expect("connect");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(connection);
        let mut request = http::Request::get(path).header(header::HOST, address.to_string());
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        let request = request.body(Empty::<Bytes>::new()).expect("request");
        let response = sender.send_request(request).await.expect("response");
        let status = response.status();
        let challenge = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (
            status,
            challenge,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    #[tokio::test]
    async fn no_token_is_refused_with_a_bearer_challenge_and_a_json_error() {
        let (status, challenge, body) = call(None, "/api/apps").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(challenge, "Bearer");
        let body: ErrorBody = serde_json::from_str(&body).expect("a JSON error");
        assert!(
            body.error.contains("Authorization: Bearer"),
            "{}",
            body.error
        );
    }

    #[tokio::test]
    async fn a_wrong_token_is_refused() {
        for wrong in [
            "Bearer wrong-token",
            "Bearer right-toke",
            "Basic right-token",
        ] {
            let (status, challenge, body) = call(Some(wrong), "/api/apps").await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{wrong}");
            assert!(challenge.starts_with("Bearer"), "{challenge}");
            assert!(challenge.contains("invalid_token"), "{challenge}");
            assert!(serde_json::from_str::<ErrorBody>(&body).is_ok(), "{body}");
        }
    }

    #[tokio::test]
    async fn the_right_token_passes() {
        let (status, _, body) = call(Some("Bearer right-token"), "/api/apps").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "listed");
    }

    #[tokio::test]
    async fn the_flags_token_opens_evaluation_only() {
        let (status, _, body) = call(Some("Bearer flags-token"), "/ofrep/v1/evaluate/flags").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "evaluated"));
        let (status, _, _) = call(Some("Bearer right-token"), "/ofrep/v1/evaluate/flags").await;
        assert_eq!(status, StatusCode::OK);
        let (status, challenge, _) = call(Some("Bearer flags-token"), "/api/apps").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(challenge.contains("invalid_token"), "{challenge}");
        let (status, _, _) = call(None, "/ofrep/v1/evaluate/flags").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn unknown_paths_need_the_token_too() {
        let (status, _, _) = call(None, "/nothing/here").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _, _) = call(Some("Bearer right-token"), "/nothing/here").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
