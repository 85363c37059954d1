//! The request annotator hook on real sockets: a proxy in front of an
//! upstream that echoes the `X-Baton-Flags` headers it got. A client's own
//! `X-Baton-Flags` never reaches the upstream, with or without an
//! annotator; an annotator's does, once, after routing.
#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use baton_proxy::{
    FLAGS_HEADER, Forwarder, Limits, LoadBalancer, RequestAnnotator, Router, Server, Service,
    Target, Version, Workers,
};
use bytes::Bytes;
use http::header::HOST;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Answers with every `X-Baton-Flags` value it got, one per line.
async fn echo_flags() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = service_fn(|request: Request<hyper::body::Incoming>| async move {
                    let seen: Vec<String> = request
                        .headers()
                        .get_all(&FLAGS_HEADER)
                        .iter()
                        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
                        .collect();
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(seen.join("\n")))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    address
}

/// Says which client it saw and what the request asked for.
#[derive(Debug)]
struct Stamp;

impl RequestAnnotator for Stamp {
    fn annotate(&self, headers: &mut HeaderMap, client: IpAddr) {
        let user = headers
            .get("x-user")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("nobody")
            .to_string();
        let value = format!("user={user},client={client}");
        headers.insert(&FLAGS_HEADER, HeaderValue::from_str(&value).unwrap());
    }
}

fn service(
    name: &str,
    prefix: &str,
    upstream: SocketAddr,
    annotator: Option<Arc<dyn RequestAnnotator>>,
) -> Service {
    let version = Arc::new(Version::new(
        format!("{name}-v1"),
        vec![Arc::new(Target::new(upstream.to_string(), upstream))],
        LoadBalancer::default(),
    ));
    version.set_target_health(0, true);
    Service {
        name: name.to_string(),
        hosts: vec![],
        path_prefix: prefix.to_string(),
        max_request_body: None,
        drain_timeout: Duration::from_secs(1),
        gate: Arc::default(),
        active: version,
        split: Arc::default(),
        annotator,
    }
}

async fn get(address: SocketAddr, path: &str, headers: &[(&str, &str)]) -> String {
    let stream = TcpStream::connect(address).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut request = Request::get(path).header(HOST, "app.test");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = sender
        .send_request(request.body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_annotator_says_which_flags_are_on() {
    let workers = Workers::start(1).unwrap();
    let upstream = echo_flags().await;
    let router = Arc::new(Router::new());
    router
        .install(service(
            "annotated",
            "/annotated",
            upstream,
            Some(Arc::new(Stamp)),
        ))
        .unwrap();
    router
        .install(service("plain", "/", upstream, None))
        .unwrap();
    let forwarder = Arc::new(Forwarder::new(
        router,
        Limits::default(),
        CancellationToken::new(),
    ));
    let server = Server::new(forwarder, Duration::from_millis(10));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    server.serve(listener, None, &workers).unwrap();

    let forged = [
        ("x-baton-flags", "admin=on"),
        ("X-Baton-Flags", "other=on"),
        ("x-user", "alice"),
    ];
    assert_eq!(get(address, "/plain", &forged).await, "");
    assert_eq!(
        get(address, "/annotated/x", &forged).await,
        "user=alice,client=127.0.0.1"
    );
    assert_eq!(
        get(address, "/annotated", &[]).await,
        "user=nobody,client=127.0.0.1"
    );
    workers.stop();
}
