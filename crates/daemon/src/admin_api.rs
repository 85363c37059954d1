//! The admin API, served on the TCP admin listener (`baton daemon --admin`)
//! for callers that cannot reach the control socket, such as an alert
//! manager that should abort a bad rollout, and OpenFeature SDKs
//! evaluating flags (OFREP). Every request must carry the admin token as
//! `Authorization: Bearer TOKEN`; OFREP's evaluation routes also take the
//! read-only flags token, which can change nothing.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use baton_api::{ErrorBody, RolloutCommand};

use crate::admin_token::AdminToken;
use crate::app_manager::AppManager;
use crate::control_api::app_answer;
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

/// The admin API's routes, all behind the token check. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so refusals are
/// logged with the caller's address.
pub fn router(
    apps: Arc<AppManager>,
    metrics: Arc<MetricsEndpoint>,
    tokens: AdminTokens,
    flags: Arc<FlagService>,
) -> Router {
    guarded(
        Router::new()
            .route("/api/apps", get(list_apps))
            .route("/api/apps/{app}/rollout/abort", post(abort_rollout))
            .with_state(apps)
            .merge(metrics_endpoint::router(metrics, "/metrics"))
            .merge(flags_api::router(Arc::clone(&flags), Caller::Admin, "/api"))
            .merge(ofrep::router(flags)),
        tokens,
    )
}

/// `routes` behind the token check. `layer`, not `route_layer`: unknown
/// paths are refused too, so the listener tells nothing to a caller
/// without the token.
fn guarded(routes: Router, tokens: AdminTokens) -> Router {
    routes.layer(middleware::from_fn_with_state(
        Arc::new(tokens),
        require_token,
    ))
}

/// Lets a request through only with the admin token, or with the flags
/// token for OFREP.
async fn require_token(
    State(tokens): State<Arc<AdminTokens>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request.headers().get(header::AUTHORIZATION);
    let evaluation = request.uri().path().starts_with("/ofrep/");
    let authorizes =
        |token: &AdminToken| presented.is_some_and(|value| token.authorizes(value.as_bytes()));
    if authorizes(&tokens.admin) || (evaluation && tokens.flags.as_ref().is_some_and(authorizes)) {
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
        token_presented = presented.is_some(),
        "Admin request refused"
    );
    unauthorized(presented.is_some())
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
            "the admin API needs the header `Authorization: Bearer TOKEN` with the daemon's admin token",
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
    tracing::info!(app, "Rollout abort through the admin listener");
    match apps.rollout_command(&app, RolloutCommand::Abort).await {
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
        let app = guarded(routes, tokens);
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
