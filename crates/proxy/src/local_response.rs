//! Short answers the proxy gives itself (errors), each with a plain body.

use http::{HeaderValue, Response, StatusCode, header};

use crate::response_body::ResponseBody;

/// A plain-text answer of the proxy's own.
pub fn local_response(status: StatusCode, message: &str) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::local(format!("{message}\n")));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// 503 for a paused service whose hold ran out, telling the client when to retry.
pub fn paused_response(retry_after_seconds: u64) -> Response<ResponseBody> {
    let mut response = local_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "service paused: try again shortly",
    );
    if let Ok(value) = HeaderValue::from_str(&retry_after_seconds.max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// 400 that also closes the connection: after a malformed request nothing
/// else on the connection can be trusted.
pub fn bad_request(message: &str) -> Response<ResponseBody> {
    let mut response = local_response(StatusCode::BAD_REQUEST, message);
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
