//! `[[smoke]]`: requests sent to each new web process directly, before it
//! gets live traffic, and the answers they must get.

use std::time::Duration;

use baton_api::SmokeCheck;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// How long a check without `max_latency` may take.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How much of a body is read to look for `expect_body` and to quote.
const BODY_LIMIT: usize = 1024 * 1024;

/// Runs every check against every port; the failures, one line each, or
/// a summary when all passed.
pub async fn run(checks: &[SmokeCheck], ports: &[u16]) -> Result<String, String> {
    let mut failures = Vec::new();
    for port in ports {
        for check in checks {
            if let Err(why) = run_one(check, *port).await {
                failures.push(format!(
                    "{} {} on :{port}: {why}",
                    check.method.as_str(),
                    check.path.as_str()
                ));
            }
        }
    }
    if failures.is_empty() {
        Ok(format!(
            "{} check{} passed on {} process{}",
            checks.len(),
            if checks.len() == 1 { "" } else { "s" },
            ports.len(),
            if ports.len() == 1 { "" } else { "es" }
        ))
    } else {
        Err(format!(
            "{} smoke check{} failed; the new version got no live traffic:\n{}",
            failures.len(),
            if failures.len() == 1 { "" } else { "s" },
            failures.join("\n")
        ))
    }
}

async fn run_one(check: &SmokeCheck, port: u16) -> Result<(), String> {
    let limit = check
        .max_latency
        .map_or(DEFAULT_TIMEOUT, |latency| latency.get());
    let started = Instant::now();
    let exchange = tokio::time::timeout(limit, send(check, port));
    let (status, body) = match exchange.await {
        Ok(result) => result?,
        Err(_) => {
            return Err(format!(
                "no answer within {}",
                humantime::format_duration(limit)
            ));
        }
    };
    let took = started.elapsed();
    if status != check.expect_status {
        return Err(format!(
            "expected status {}, got {status} (body: {})",
            check.expect_status,
            quote(&body)
        ));
    }
    if let Some(expected) = &check.expect_body
        && !body.contains(expected.as_str())
    {
        return Err(format!(
            "the body does not contain {expected:?} (body: {})",
            quote(&body)
        ));
    }
    if check
        .max_latency
        .is_some_and(|latency| took > latency.get())
    {
        return Err(format!(
            "took {} ms, more than max_latency {}",
            took.as_millis(),
            humantime::format_duration(limit)
        ));
    }
    Ok(())
}

async fn send(check: &SmokeCheck, port: u16) -> Result<(u16, String), String> {
    let stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|error| format!("cannot connect: {error}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| format!("HTTP handshake failed: {error}"))?;
    tokio::spawn(connection);
    let method = Method::from_bytes(check.method.as_str().as_bytes())
        .map_err(|error| format!("bad method: {error}"))?;
    let mut request = Request::builder()
        .method(method)
        .uri(check.path.as_str())
        .header(http::header::HOST, format!("127.0.0.1:{port}"))
        .header(http::header::USER_AGENT, "baton-smoke-check");
    for (name, value) in &check.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("header name {name:?} is not valid"))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| format!("the value of header {name} is not valid"))?;
        request = request.header(name, value);
    }
    let body = Bytes::from(check.body.clone().unwrap_or_default());
    let request = request
        .body(Full::new(body))
        .map_err(|error| format!("cannot build the request: {error}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| format!("the request failed: {error}"))?;
    let status = response.status().as_u16();
    let bytes = Limited::new(response.into_body(), BODY_LIMIT)
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

/// The start of a body, on one line, for an error message.
fn quote(body: &str) -> String {
    let flat: String = body
        .chars()
        .take(200)
        .collect::<String>()
        .replace('\n', " ");
    if body.chars().count() > 200 {
        format!("{flat:?}…")
    } else {
        format!("{flat:?}")
    }
}
