//! The dashboard on the admin listener: one page (`/`), its script and
//! style compiled into the binary, the login that trades the admin token
//! for a session cookie, and the JSON and server-sent events the page reads.
//! Nothing is fetched from anywhere else; the Content-Security-Policy says
//! so to the browser too.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use baton_proxy::Version;
use tokio_util::sync::CancellationToken;

use crate::admin_access::same_origin;
use crate::admin_token::AdminToken;
use crate::app_manager::{AppError, AppManager};
use crate::control_api::app_answer;
use crate::dashboard_sessions::{Sessions, clear_cookie, session_cookie, set_cookie};
use crate::dashboard_snapshot::{self, DashboardSnapshot};
use crate::departed_versions::DepartedVersions;
use crate::flag_service::FlagService;
use crate::process_table::unix_ms;

const INDEX_HTML: &str = include_str!("dashboard/index.html");
const LOGIN_HTML: &str = include_str!("dashboard/login.html");
const DASHBOARD_JS: &str = include_str!("dashboard/dashboard.js");
const DASHBOARD_CSS: &str = include_str!("dashboard/dashboard.css");

/// The login page's hidden error line; shown after a wrong token.
const LOGIN_ERROR_HIDDEN: &str = "<p id=\"login-error\" class=\"error\" hidden>";

/// Only this listener's own script and style; no inline code, no frames,
/// forms post only here.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'self'";

/// How often the event stream looks for news; with a rollout running it
/// sends a snapshot every time.
const TICK: Duration = Duration::from_secs(1);

/// While nothing runs, a snapshot at least this often even if nothing
/// changed, so the charts keep moving with the clock.
const IDLE_REFRESH: Duration = Duration::from_secs(5);

/// How long a snapshot serves every page that asks: a little under the
/// event stream's tick, so each tick sees a fresh one.
const FRESH: Duration = Duration::from_millis(900);

/// A wrong token waits this long for its answer, which slows guessing down
/// on top of the constant-time comparison.
const WRONG_TOKEN_DELAY: Duration = Duration::from_millis(500);

/// What the dashboard's handlers share.
pub struct Dashboard {
    /// Apps: status, history, releases, processes, rollout commands.
    pub apps: Arc<AppManager>,
    /// Flags.
    pub flags: Arc<FlagService>,
    /// Login sessions.
    pub sessions: Arc<Sessions>,
    /// The admin token a login must present.
    pub token: AdminToken,
    /// Cancelled when the daemon stops: event streams end then, so the
    /// listener's graceful shutdown does not wait for open browsers.
    pub stop: CancellationToken,
    /// The last snapshot read and when: every open page asks each second,
    /// and the store is read for them once.
    pub latest: tokio::sync::Mutex<Option<(tokio::time::Instant, Arc<DashboardSnapshot>)>>,
    /// Versions that left a route, for the live chart.
    pub departed: std::sync::Mutex<DepartedVersions<Version>>,
}

/// The dashboard's routes. The access check in front of them is the admin
/// listener's (`admin_access`): the page, its assets and login/logout are
/// open, the rest needs the token or a session.
pub fn router(dashboard: Arc<Dashboard>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/assets/dashboard.js", get(script))
        .route("/assets/dashboard.css", get(style))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/api/dashboard", get(snapshot))
        .route("/api/events", get(events))
        .route("/api/dashboard/apps/{app}/deploys/{id}", get(run_events))
        .with_state(dashboard)
}

impl Dashboard {
    /// The dashboard's snapshot, read anew unless one younger than
    /// [`FRESH`] was read already.
    pub async fn snapshot(&self) -> Result<Arc<DashboardSnapshot>, AppError> {
        let mut latest = self.latest.lock().await;
        if let Some((read_at, snapshot)) = latest.as_ref()
            && read_at.elapsed() < FRESH
        {
            return Ok(Arc::clone(snapshot));
        }
        let snapshot =
            Arc::new(dashboard_snapshot::read(&self.apps, &self.flags, &self.departed).await?);
        *latest = Some((tokio::time::Instant::now(), Arc::clone(&snapshot)));
        Ok(snapshot)
    }

    /// Whether `headers` carry a live session's cookie.
    pub fn has_session(&self, headers: &HeaderMap) -> bool {
        session_id(headers).is_some_and(|id| self.sessions.is_valid(id, now_ms()))
    }
}

fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(session_cookie)
}

fn now_ms() -> u64 {
    unix_ms(SystemTime::now())
}

/// The dashboard with a session, the login form without.
async fn page(State(dashboard): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    if dashboard.has_session(&headers) {
        html(StatusCode::OK, INDEX_HTML.to_string())
    } else {
        html(StatusCode::OK, LOGIN_HTML.to_string())
    }
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", DASHBOARD_JS)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", DASHBOARD_CSS)
}

/// `POST /login` with the form field `token`: a session cookie and back
/// to the page, or the form again with the error.
async fn login(
    State(dashboard): State<Arc<Dashboard>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !same_origin(&headers) {
        return cross_site();
    }
    let token = form_urlencoded::parse(&body)
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value.trim().to_string())
        .unwrap_or_default();
    if !dashboard.token.matches(token.as_bytes()) {
        tracing::warn!("Dashboard login with a wrong token");
        tokio::time::sleep(WRONG_TOKEN_DELAY).await;
        return html(
            StatusCode::UNAUTHORIZED,
            LOGIN_HTML.replace(LOGIN_ERROR_HIDDEN, "<p id=\"login-error\" class=\"error\">"),
        );
    }
    match dashboard.sessions.create(now_ms()) {
        Ok(id) => {
            tracing::info!("Dashboard login");
            back_to_page(&set_cookie(&id))
        }
        Err(error) => {
            tracing::error!(%error, "Dashboard login failed");
            (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response()
        }
    }
}

/// `POST /logout`: the session ends, the cookie goes, the login form shows.
async fn logout(State(dashboard): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    if !same_origin(&headers) {
        return cross_site();
    }
    if let Some(id) = session_id(&headers) {
        dashboard.sessions.remove(id);
    }
    back_to_page(&clear_cookie())
}

async fn snapshot(State(dashboard): State<Arc<Dashboard>>) -> Response {
    match dashboard.snapshot().await {
        Ok(snapshot) => Json(&*snapshot).into_response(),
        Err(error) => app_answer::<()>(Err(error)),
    }
}

async fn run_events(
    State(dashboard): State<Arc<Dashboard>>,
    Path((app, id)): Path<(String, i64)>,
) -> Response {
    app_answer(dashboard_snapshot::run_events(&dashboard.apps, &app, id).await)
}

/// `GET /api/events`: a `snapshot` event with the whole dashboard now,
/// then whenever it changes, every second while a deploy runs, and at
/// least every few seconds otherwise; comments keep idle proxies from
/// closing the stream. It ends with the session (the page then logs in
/// again) or the daemon.
async fn events(State(dashboard): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    let session = session_id(&headers).map(str::to_string);
    let state = Stream {
        dashboard,
        session,
        last: None,
        ticks: tokio::time::interval(TICK),
    };
    let stream = futures_util::stream::unfold(state, |mut state| async move {
        let event = state.next().await?;
        Some((Ok::<_, Infallible>(event), state))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// One browser's event stream.
struct Stream {
    dashboard: Arc<Dashboard>,
    /// The session it was opened with (`None`: opened with the token).
    session: Option<String>,
    /// The last snapshot sent (without its clock) and when.
    last: Option<(String, tokio::time::Instant)>,
    ticks: tokio::time::Interval,
}

impl Stream {
    /// The next event to send; `None` ends the stream.
    async fn next(&mut self) -> Option<Event> {
        loop {
            tokio::select! {
                () = self.dashboard.stop.cancelled() => return None,
                _ = self.ticks.tick() => {}
            }
            if let Some(id) = &self.session
                && !self.dashboard.sessions.is_valid(id, now_ms())
            {
                return None;
            }
            let snapshot = match self.dashboard.snapshot().await {
                Ok(snapshot) => snapshot,
                Err(error) => {
                    tracing::warn!(%error, "Reading the dashboard failed");
                    continue;
                }
            };
            let content = serde_json::to_string(&(&snapshot.apps, &snapshot.flags)).ok()?;
            let due = match &self.last {
                None => true,
                Some((last, sent)) => {
                    snapshot.busy() || *last != content || sent.elapsed() >= IDLE_REFRESH
                }
            };
            if !due {
                continue;
            }
            let data = serde_json::to_string(&*snapshot).ok()?;
            self.last = Some((content, tokio::time::Instant::now()));
            return Some(Event::default().event("snapshot").data(data));
        }
    }
}

/// 303 to `/` with `cookie` set.
fn back_to_page(cookie: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, HeaderValue::from_static("/"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(cookie) {
        headers.insert(header::SET_COOKIE, value);
    }
    response
}

fn cross_site() -> Response {
    tracing::warn!("Dashboard login or logout from another site refused");
    (
        StatusCode::FORBIDDEN,
        "this form may only be sent from the dashboard's own page",
    )
        .into_response()
}

fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // The page differs with and without a session: never from a cache.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    protect(headers);
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Revalidated on every load: a daemon upgrade brings new assets under
    // the same name.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    protect(headers);
    response
}

/// The headers every dashboard document carries: the policy above, no
/// MIME sniffing, no framing, no referrer sent to other sites.
fn protect(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        // Not `no-referrer`: with it, browsers send `Origin: null` on the
        // login form's POST, which the same-origin check must refuse.
        HeaderValue::from_static("same-origin"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_page_has_the_error_line_to_show() {
        assert!(LOGIN_HTML.contains(LOGIN_ERROR_HIDDEN));
    }

    #[test]
    fn the_pages_load_only_their_own_assets_and_no_inline_script() {
        for page in [INDEX_HTML, LOGIN_HTML] {
            assert!(!page.contains("<script>"), "inline script");
            assert!(!page.contains(" style="), "inline style");
            assert!(!page.contains("http://") && !page.contains("https://"));
            assert!(!page.contains("//cdn"));
        }
        assert!(INDEX_HTML.contains("src=\"/assets/dashboard.js\""));
        // The SVG namespace is a name, not an address the page loads.
        let script = DASHBOARD_JS.replace("http://www.w3.org/2000/svg", "");
        assert!(!script.contains("http://") && !script.contains("https://"));
    }
}
