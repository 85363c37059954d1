//! The control API client: one HTTP/1.1 request per connection over the
//! daemon's Unix socket.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;

use crate::flags::{
    FlagActor, FlagAuditEntry, FlagChanged, FlagExport, FlagImportRequest, FlagInfo, FlagList,
    FlagSetRequest, StaleFlags,
};

use crate::{
    ApiError, AppInfo, AppStatus, DaemonInfo, DeployEvent, DeployOutcome, DeployRequest,
    DeployRoute, ErrorBody, HistoryEntry, PauseRequest, ProcessInfo, ReleaseInfo, RollbackRequest,
    RolloutRequest, RouteInfo, UpgradeOutcome, UpgradeRequest,
};

/// Talks to a running daemon through its control socket.
#[derive(Clone, Debug)]
pub struct Client {
    socket: PathBuf,
}

impl Client {
    /// A client for the daemon listening on `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Client {
            socket: socket.into(),
        }
    }

    /// The socket this client talks to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The daemon's identity and listeners.
    pub async fn daemon_info(&self) -> Result<DaemonInfo, ApiError> {
        self.call(Method::GET, "/v1/daemon", None::<&()>).await
    }

    /// Hands the daemon's sockets to a new binary and returns once it
    /// accepts on them (the old daemon then drains and exits).
    pub async fn upgrade(&self, request: &UpgradeRequest) -> Result<UpgradeOutcome, ApiError> {
        self.call(Method::POST, "/v1/daemon/upgrade", Some(request))
            .await
    }

    /// Every service with its versions and targets.
    pub async fn routes(&self) -> Result<Vec<RouteInfo>, ApiError> {
        self.call(Method::GET, "/v1/routes", None::<&()>).await
    }

    /// Health-gates `route` and swaps it in; returns after the old version drained.
    pub async fn deploy_route(
        &self,
        service: &str,
        route: &DeployRoute,
    ) -> Result<DeployOutcome, ApiError> {
        let path = format!("/v1/routes/{}", checked_name(service)?);
        self.call(Method::PUT, &path, Some(route)).await
    }

    /// Removes a service; returns after its version drained.
    pub async fn remove_route(&self, service: &str) -> Result<DeployOutcome, ApiError> {
        let path = format!("/v1/routes/{}", checked_name(service)?);
        self.call(Method::DELETE, &path, None::<&()>).await
    }

    /// Holds new requests to a service.
    pub async fn pause_route(
        &self,
        service: &str,
        pause: &PauseRequest,
    ) -> Result<RouteInfo, ApiError> {
        let path = format!("/v1/routes/{}/pause", checked_name(service)?);
        self.call(Method::POST, &path, Some(pause)).await
    }

    /// Releases held requests and lets new ones through.
    pub async fn resume_route(&self, service: &str) -> Result<RouteInfo, ApiError> {
        let path = format!("/v1/routes/{}/resume", checked_name(service)?);
        self.call(Method::POST, &path, None::<&()>).await
    }

    /// Every app the daemon has deployed.
    pub async fn apps(&self) -> Result<Vec<AppInfo>, ApiError> {
        self.call(Method::GET, "/v1/apps", None::<&()>).await
    }

    /// One app, with the config of its current release.
    pub async fn app(&self, app: &str) -> Result<AppInfo, ApiError> {
        let path = format!("/v1/apps/{}", checked_name(app)?);
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// `baton status`: the app's running rollout and each version's share
    /// and numbers.
    pub async fn status(&self, app: &str) -> Result<AppStatus, ApiError> {
        let path = format!("/v1/apps/{}/status", checked_name(app)?);
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// Deploys; `on_event` sees each stage as it happens. Returns the last
    /// event (`Succeeded` or `Failed`).
    pub async fn deploy(
        &self,
        request: &DeployRequest,
        on_event: impl FnMut(&DeployEvent),
    ) -> Result<DeployEvent, ApiError> {
        let path = format!("/v1/apps/{}/deploys", checked_name(request.config.name())?);
        self.stream(&path, request, on_event).await
    }

    /// Rolls back; like [`Client::deploy`].
    pub async fn rollback(
        &self,
        app: &str,
        request: &RollbackRequest,
        on_event: impl FnMut(&DeployEvent),
    ) -> Result<DeployEvent, ApiError> {
        let path = format!("/v1/apps/{}/rollbacks", checked_name(app)?);
        self.stream(&path, request, on_event).await
    }

    /// Tells `app`'s running rollout to promote, abort, pause or resume.
    pub async fn rollout_command(
        &self,
        app: &str,
        request: &RolloutRequest,
    ) -> Result<AppInfo, ApiError> {
        let path = format!("/v1/apps/{}/rollout", checked_name(app)?);
        self.call(Method::POST, &path, Some(request)).await
    }

    /// An app's releases on disk.
    pub async fn releases(&self, app: &str) -> Result<Vec<ReleaseInfo>, ApiError> {
        let path = format!("/v1/apps/{}/releases", checked_name(app)?);
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// An app's deploys and rollbacks, newest first.
    pub async fn history(&self, app: &str, limit: usize) -> Result<Vec<HistoryEntry>, ApiError> {
        let path = format!("/v1/apps/{}/history?limit={limit}", checked_name(app)?);
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// Supervised processes, of one app or all.
    pub async fn processes(&self, app: Option<&str>) -> Result<Vec<ProcessInfo>, ApiError> {
        let path = match app {
            Some(app) => format!("/v1/processes?app={}", checked_name(app)?),
            None => "/v1/processes".to_string(),
        };
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// The daemon's metrics as Prometheus (OpenMetrics) text, as its
    /// admin listener serves them on `/metrics`.
    pub async fn metrics(&self) -> Result<String, ApiError> {
        let response = self
            .request(Method::GET, "/v1/metrics", None::<&()>)
            .await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        if status.is_success() {
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        } else {
            Err(rejected(status, &bytes))
        }
    }

    /// Every flag, at the current revision.
    pub async fn flags(&self) -> Result<FlagList, ApiError> {
        self.call(Method::GET, "/v1/flags", None::<&()>).await
    }

    /// One flag.
    pub async fn flag(&self, name: &str) -> Result<FlagInfo, ApiError> {
        self.call(Method::GET, &flag_path(name, ""), None::<&()>)
            .await
    }

    /// Creates or changes a flag (`baton flags set`).
    pub async fn set_flag(
        &self,
        name: &str,
        request: &FlagSetRequest,
    ) -> Result<FlagChanged, ApiError> {
        self.call(Method::PUT, &flag_path(name, ""), Some(request))
            .await
    }

    /// Switches a flag on or off for everyone; the switch is in force for
    /// every evaluation on the host once this returns.
    pub async fn switch_flag(
        &self,
        name: &str,
        on: bool,
        actor: &FlagActor,
    ) -> Result<FlagChanged, ApiError> {
        let action = if on { "/on" } else { "/off" };
        self.call(Method::POST, &flag_path(name, action), Some(actor))
            .await
    }

    /// Removes a flag.
    pub async fn delete_flag(
        &self,
        name: &str,
        actor: &FlagActor,
    ) -> Result<FlagChanged, ApiError> {
        self.call(Method::DELETE, &flag_path(name, ""), Some(actor))
            .await
    }

    /// Replaces every flag and segment with an Unleash document's; nothing
    /// changes if any part of it is refused.
    pub async fn import_flags(&self, request: &FlagImportRequest) -> Result<FlagChanged, ApiError> {
        self.call(Method::POST, "/v1/flagset/import", Some(request))
            .await
    }

    /// Every flag as Unleash's JSON.
    pub async fn export_flags(&self) -> Result<FlagExport, ApiError> {
        self.call(Method::GET, "/v1/flagset/export", None::<&()>)
            .await
    }

    /// The audit entries of one flag, or of all, newest first.
    pub async fn flag_history(
        &self,
        name: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FlagAuditEntry>, ApiError> {
        let path = match name {
            Some(name) => format!("/v1/flagset/history?limit={limit}&name={}", encoded(name)),
            None => format!("/v1/flagset/history?limit={limit}"),
        };
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// The flags that give every request the same answer and have not
    /// changed for more than `days` days, the longest unchanged first.
    pub async fn stale_flags(&self, days: u32) -> Result<StaleFlags, ApiError> {
        let path = format!("/v1/flagset/stale?days={days}");
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// Posts `body` and reads newline-delimited events until the stream
    /// ends; returns the last one.
    async fn stream<B: Serialize>(
        &self,
        path: &str,
        body: &B,
        mut on_event: impl FnMut(&DeployEvent),
    ) -> Result<DeployEvent, ApiError> {
        let response = self.request(Method::POST, path, Some(body)).await?;
        let status = response.status();
        let mut body = response.into_body();
        if !status.is_success() {
            let bytes = body.collect().await?.to_bytes();
            return Err(rejected(status, &bytes));
        }
        let mut pending: Vec<u8> = Vec::new();
        let mut last = None;
        while let Some(frame) = body.frame().await {
            let frame = frame?;
            let Some(data) = frame.data_ref() else {
                continue;
            };
            pending.extend_from_slice(data);
            while let Some(end) = pending.iter().position(|byte| *byte == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let event: DeployEvent = serde_json::from_slice(&line)?;
                on_event(&event);
                last = Some(event);
            }
        }
        last.ok_or(ApiError::StreamEnded)
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        let response = self.request(method, path, body).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        if status.is_success() {
            Ok(serde_json::from_slice(&bytes)?)
        } else {
            Err(rejected(status, &bytes))
        }
    }

    async fn request<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<http::Response<hyper::body::Incoming>, ApiError> {
        let stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|reason| ApiError::Unreachable {
                    socket: self.socket.display().to_string(),
                    reason,
                })?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let payload = match body {
            Some(body) => Bytes::from(serde_json::to_vec(body)?),
            None => Bytes::new(),
        };
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, "baton")
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(payload))
            .map_err(|error| ApiError::InvalidRequest(error.to_string()))?;
        Ok(sender.send_request(request).await?)
    }
}

fn rejected(status: StatusCode, bytes: &[u8]) -> ApiError {
    let message = match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(body) => body.error,
        Err(_) => String::from_utf8_lossy(bytes).trim().to_string(),
    };
    ApiError::Rejected {
        status: status.as_u16(),
        message,
    }
}

/// `/v1/flags/NAME` + `action`. Imported flags keep Unleash's names, which
/// may hold any character, so the name is percent-encoded.
fn flag_path(name: &str, action: &str) -> String {
    format!("/v1/flags/{}{action}", encoded(name))
}

/// Every byte but RFC 3986's unreserved characters as `%XX`: safe in a
/// path segment and in a query value.
fn encoded(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn checked_name(service: &str) -> Result<&str, ApiError> {
    check_service_name(service).map_err(ApiError::InvalidRequest)?;
    Ok(service)
}

/// Whether `host` can be routed: a host name (`app.example.com`) or a
/// wildcard over one (`*.example.com`).
pub fn is_host_name(host: &str) -> bool {
    let bare = host.strip_prefix("*.").unwrap_or(host);
    !bare.is_empty()
        && bare
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'.')
}

/// Service names travel in URL paths and file names; keep them to a safe
/// alphabet. The error says what is allowed.
pub fn check_service_name(service: &str) -> Result<(), String> {
    let valid = !service.is_empty()
        && service.len() <= 63
        && service.bytes().all(|byte| {
            byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' || byte == b'.'
        });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "service name {service:?} is not valid: use 1 to 63 letters, digits, '-', '_' or '.'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_are_checked() {
        assert!(checked_name("web-1.app_x").is_ok());
        assert!(checked_name("").is_err());
        assert!(checked_name("a/b").is_err());
        assert!(checked_name("a b").is_err());
        assert!(checked_name(&"x".repeat(64)).is_err());
    }

    #[test]
    fn flag_names_are_encoded_into_paths() {
        assert_eq!(flag_path("new_editor", "/on"), "/v1/flags/new_editor/on");
        assert_eq!(flag_path("a b/ü", ""), "/v1/flags/a%20b%2F%C3%BC");
    }

    #[tokio::test]
    async fn unreachable_daemon_says_what_to_do() {
        let client = Client::new("/nonexistent/baton.sock");
        let error = client.routes().await.unwrap_err();
        let message = error.to_string();
        assert!(message.contains("/nonexistent/baton.sock"), "{message}");
        assert!(message.contains("baton daemon"), "{message}");
    }
}
