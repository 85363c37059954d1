//! What to probe and how: [`ProbeConfig`] (plain data, as the CLI or a test
//! fills it in) and its validated form, `Plan`, that the workers use.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONNECTION, HOST, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Method, Uri, Version};

use crate::error::ProbeError;

/// Largest request body, in bytes (1 GiB): it is held in memory.
const MAX_BODY_SIZE: u64 = 1 << 30;

/// Everything a probe run needs, as plain data.
///
/// Build it with [`ProbeConfig::new`] and change the fields you need; it is
/// checked when [`run`](crate::run) starts.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeConfig {
    /// Absolute `http://` or `https://` URL to send requests to.
    pub url: String,
    /// How long to send requests. Requests in flight at the end may finish,
    /// each bounded by `timeout`.
    pub duration: Duration,
    /// Stop after this many requests in total (whichever comes first:
    /// this or `duration`).
    pub requests: Option<u64>,
    /// Number of workers, each with one request in flight at a time.
    pub concurrency: usize,
    /// Total requests per second across all workers, evenly paced. `None`
    /// sends as fast as responses come back.
    pub rate: Option<f64>,
    /// Reuse connections (HTTP/1.1 keep-alive). When false, every request
    /// opens a new connection and sends `Connection: close`.
    pub keepalive: bool,
    /// Speak HTTP/2 (prior knowledge on http://, ALPN `h2` on https://).
    /// All workers share one connection, reopened if it dies.
    pub http2: bool,
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// Bytes of request body sent with every request (zeros; at most 1 GiB).
    pub body_size: u64,
    /// Extra request headers, in order; a name may repeat.
    pub headers: Vec<(String, String)>,
    /// Bound for one request: connecting (if needed), sending and reading
    /// the whole response.
    pub timeout: Duration,
    /// Count responses per value of this response header (e.g. `X-Version`).
    pub count_header: Option<String>,
    /// PEM file of CA certificates to trust for https:// (instead of the
    /// system bundle).
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate on https://.
    pub insecure: bool,
}

impl ProbeConfig {
    /// The defaults for `url`: 10 s, 8 workers, keep-alive, HTTP/1.1, GET,
    /// no body, 10 s timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            duration: Duration::from_secs(10),
            requests: None,
            concurrency: 8,
            rate: None,
            keepalive: true,
            http2: false,
            method: "GET".to_owned(),
            body_size: 0,
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            count_header: None,
            ca_file: None,
            insecure: false,
        }
    }
}

/// The scheme, host and port to connect to.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// Whether to speak TLS.
    pub https: bool,
    /// Host to resolve, without IPv6 brackets.
    pub host: String,
    /// TCP port (the scheme's default if the URL has none).
    pub port: u16,
}

/// A validated [`ProbeConfig`]: parsed URL, method, headers and body, ready
/// to stamp out requests.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub target: Target,
    pub method: Method,
    /// The URI put in requests: origin-form for HTTP/1.1, absolute for HTTP/2.
    pub request_uri: Uri,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub duration: Duration,
    pub requests: Option<u64>,
    pub concurrency: usize,
    pub rate: Option<f64>,
    pub keepalive: bool,
    pub http2: bool,
    pub timeout: Duration,
    pub count_header: Option<HeaderName>,
}

impl Plan {
    /// Checks `config` and prepares what every request shares.
    pub fn from_config(config: &ProbeConfig) -> Result<Self, ProbeError> {
        let bad_url = |reason: &str| ProbeError::InvalidUrl {
            url: config.url.clone(),
            reason: reason.to_owned(),
        };
        let uri: Uri = config
            .url
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad_url(&e.to_string()))?;
        let https = match uri.scheme() {
            Some(s) if *s == Scheme::HTTP => false,
            Some(s) if *s == Scheme::HTTPS => true,
            Some(_) => return Err(bad_url("the scheme must be http or https")),
            None => return Err(bad_url("the URL has no scheme")),
        };
        let authority: Authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| bad_url("the URL has no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad_url("user info (user@host) is not supported"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(bad_url("the URL has no host"));
        }
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path_and_query = uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));

        let method = Method::from_bytes(config.method.trim().as_bytes())
            .map_err(|_| ProbeError::InvalidMethod(config.method.clone()))?;

        if config.concurrency == 0 {
            return Err(ProbeError::InvalidConfig(
                "concurrency must be at least 1".to_owned(),
            ));
        }
        if config.duration.is_zero() {
            return Err(ProbeError::InvalidConfig(
                "duration must be longer than zero, e.g. 10s".to_owned(),
            ));
        }
        if config.timeout.is_zero() {
            return Err(ProbeError::InvalidConfig(
                "timeout must be longer than zero, e.g. 10s".to_owned(),
            ));
        }
        if config.requests == Some(0) {
            return Err(ProbeError::InvalidConfig(
                "the request count must be at least 1".to_owned(),
            ));
        }
        if let Some(rate) = config.rate
            && (!rate.is_finite() || rate <= 0.0)
        {
            return Err(ProbeError::InvalidConfig(format!(
                "rate must be a positive number of requests per second, not {rate}"
            )));
        }
        if config.http2 && !config.keepalive {
            return Err(ProbeError::InvalidConfig(
                "HTTP/2 always keeps its one shared connection open: drop --no-keepalive or --http2"
                    .to_owned(),
            ));
        }
        if config.ca_file.is_some() && config.insecure {
            return Err(ProbeError::InvalidConfig(
                "a CA file and insecure mode exclude each other: give one of them".to_owned(),
            ));
        }
        // The body is built once and shared by every request.
        let body_len = usize::try_from(config.body_size)
            .ok()
            .filter(|&len| len as u64 <= MAX_BODY_SIZE)
            .ok_or_else(|| {
                ProbeError::InvalidConfig(format!(
                    "a request body of {} bytes is too large: the limit is 1 GiB",
                    config.body_size
                ))
            })?;

        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let (name, value) = header_pair(name, value)?;
            headers.append(name, value);
        }
        let version = if config.http2 {
            // Connection-specific headers are forbidden in HTTP/2; the
            // authority travels as :authority, taken from the URI.
            headers.remove(CONNECTION);
            Version::HTTP_2
        } else {
            if !headers.contains_key(HOST) {
                let host = HeaderValue::from_str(authority.as_str())
                    .map_err(|e| bad_url(&format!("the host is not a valid Host header: {e}")))?;
                headers.insert(HOST, host);
            }
            if !config.keepalive {
                headers.insert(CONNECTION, HeaderValue::from_static("close"));
            }
            Version::HTTP_11
        };
        let request_uri = if config.http2 {
            Uri::builder()
                .scheme(if https { Scheme::HTTPS } else { Scheme::HTTP })
                .authority(authority)
                .path_and_query(path_and_query)
                .build()
                .map_err(|e| bad_url(&e.to_string()))?
        } else {
            Uri::from(path_and_query)
        };
        let count_header = match &config.count_header {
            None => None,
            Some(name) => Some(HeaderName::from_bytes(name.trim().as_bytes()).map_err(|e| {
                ProbeError::InvalidHeader {
                    header: name.clone(),
                    reason: format!("not a valid header name to count: {e}"),
                }
            })?),
        };

        Ok(Self {
            target: Target { https, host, port },
            method,
            request_uri,
            version,
            headers,
            body: Bytes::from(vec![0u8; body_len]),
            duration: config.duration,
            requests: config.requests,
            concurrency: config.concurrency,
            rate: config.rate,
            keepalive: config.keepalive,
            http2: config.http2,
            timeout: config.timeout,
            count_header,
        })
    }
}

fn header_pair(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), ProbeError> {
    let invalid = |reason: String| ProbeError::InvalidHeader {
        header: format!("{name}: {value}"),
        reason,
    };
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|e| invalid(format!("bad name: {e}")))?;
    let value =
        HeaderValue::from_str(value.trim()).map_err(|e| invalid(format!("bad value: {e}")))?;
    Ok((name, value))
}

/// Parses a header given as `Name: value` into its name and value.
pub fn parse_header(input: &str) -> Result<(String, String), ProbeError> {
    let Some((name, value)) = input.split_once(':') else {
        return Err(ProbeError::InvalidHeader {
            header: input.to_owned(),
            reason: "there is no ':' between name and value".to_owned(),
        });
    };
    let (name, value) = header_pair(name, value)?;
    let value = value.to_str().map_err(|e| ProbeError::InvalidHeader {
        header: input.to_owned(),
        reason: format!("bad value: {e}"),
    })?;
    Ok((name.as_str().to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_as_name_colon_value() {
        assert_eq!(
            parse_header("X-Test:  hello world ").ok(),
            Some(("x-test".to_owned(), "hello world".to_owned()))
        );
        assert_eq!(
            parse_header("Authorization: Bearer a:b").ok(),
            Some(("authorization".to_owned(), "Bearer a:b".to_owned()))
        );
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("bad name: x").is_err());
    }

    #[test]
    fn plan_for_http1_uses_origin_form_and_host() {
        let plan = Plan::from_config(&ProbeConfig::new("http://example.test:8080/a?b=c"));
        let plan = match plan {
            Ok(plan) => plan,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(plan.request_uri, "/a?b=c");
        assert_eq!(plan.headers[HOST], "example.test:8080");
        assert_eq!(plan.target.port, 8080);
        assert!(!plan.target.https);
        assert!(!plan.headers.contains_key(CONNECTION));
    }

    #[test]
    fn plan_without_keepalive_asks_to_close() {
        let mut config = ProbeConfig::new("https://[::1]/");
        config.keepalive = false;
        let plan = match Plan::from_config(&config) {
            Ok(plan) => plan,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(plan.headers[CONNECTION], "close");
        assert_eq!(plan.target.host, "::1");
        assert_eq!(plan.target.port, 443);
    }

    #[test]
    fn plan_for_http2_uses_absolute_uri() {
        let mut config = ProbeConfig::new("http://127.0.0.1:9/x");
        config.http2 = true;
        let plan = match Plan::from_config(&config) {
            Ok(plan) => plan,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(plan.request_uri, "http://127.0.0.1:9/x");
        assert!(!plan.headers.contains_key(HOST));
        assert_eq!(plan.version, Version::HTTP_2);
    }

    #[test]
    fn bad_settings_are_rejected() {
        let bad = |change: fn(&mut ProbeConfig)| {
            let mut config = ProbeConfig::new("http://127.0.0.1:9/");
            change(&mut config);
            Plan::from_config(&config).is_err()
        };
        assert!(bad(|c| c.url = "ftp://x/".to_owned()));
        assert!(bad(|c| c.url = "/relative".to_owned()));
        assert!(bad(|c| c.concurrency = 0));
        assert!(bad(|c| c.duration = Duration::ZERO));
        assert!(bad(|c| c.rate = Some(0.0)));
        assert!(bad(|c| c.requests = Some(0)));
        assert!(bad(|c| c.body_size = MAX_BODY_SIZE + 1));
        assert!(bad(|c| c.method = "NOT A METHOD".to_owned()));
        assert!(bad(|c| {
            c.http2 = true;
            c.keepalive = false;
        }));
        assert!(bad(|c| {
            c.insecure = true;
            c.ca_file = Some(PathBuf::from("ca.pem"));
        }));
        assert!(!bad(|_| {}));
    }
}
