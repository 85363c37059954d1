use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::routing::get as route_get;
use baton_rollout::Ratio;

use super::*;

const OK: StatusCode = StatusCode::OK;

fn vector(samples: &[&str]) -> String {
    let series: Vec<String> = samples
        .iter()
        .enumerate()
        .map(|(n, value)| {
            format!(r#"{{"metric":{{"instance":"i{n}"}},"value":[1700000000.123,"{value}"]}}"#)
        })
        .collect();
    format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
        series.join(",")
    )
}

#[test]
fn prometheus_answers_give_one_number_or_say_why_not() {
    let cases: Vec<(StatusCode, String, Result<f64, &str>)> = vec![
        (OK, vector(&["0.97"]), Ok(0.97)),
        (
            OK,
            r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"12"]}}"#
                .to_string(),
            Ok(12.0),
        ),
        (OK, vector(&[]), Err("the query returned no series")),
        (
            OK,
            vector(&["1", "2", "3"]),
            Err("the query returned 3 series; aggregate it to one, e.g. with sum(…)"),
        ),
        (OK, vector(&["NaN"]), Err("the value is NaN")),
        (OK, vector(&["+Inf"]), Err("the value is +Inf")),
        (OK, vector(&["many"]), Err("\"many\" is not a number")),
        (
            StatusCode::BAD_REQUEST,
            r#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#
                .to_string(),
            Err("the query failed (error: parse error at char 5)"),
        ),
        (
            OK,
            r#"{"status":"pending"}"#.to_string(),
            Err("the query failed (pending: no reason given)"),
        ),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"status":"success","data":{}}"#.to_string(),
            Err("the server answered 503 Service Unavailable"),
        ),
        (
            StatusCode::BAD_GATEWAY,
            "<html>bad gateway</html>".to_string(),
            Err("the server answered 502 Bad Gateway"),
        ),
        (OK, "not json".to_string(), Err("the answer is not JSON")),
        (
            OK,
            r#"{"rate": 1}"#.to_string(),
            Err("the answer has no \"status\"; is this a Prometheus server?"),
        ),
        (
            OK,
            r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#.to_string(),
            Err("the query returned a matrix, not a number"),
        ),
    ];
    for (status, body, expected) in cases {
        let got = prometheus_value(status, body.as_bytes());
        match expected {
            Ok(value) => assert_eq!(got, Ok(value), "{body}"),
            Err(start) => {
                let error = got.expect_err(&body);
                assert!(error.starts_with(start), "{body}: {error}");
            }
        }
    }
}

#[test]
fn json_paths_select_one_number_or_say_why_not() {
    let body = r#"{
        "checkout": {"success_rate": 0.991, "quoted": " 0.5 ", "text": "high"},
        "regions": [{"name": "eu", "rate": 0.9}, {"name": "us", "rate": 0.8}],
        "up": true,
        "none": null
    }"#;
    let cases: &[(&str, Result<f64, &str>)] = &[
        ("$.checkout.success_rate", Ok(0.991)),
        ("$['checkout']['quoted']", Ok(0.5)),
        ("$.regions[?@.name == 'us'].rate", Ok(0.8)),
        ("$.regions[1].rate", Ok(0.8)),
        ("$.missing", Err("the path selects nothing in the answer")),
        (
            "$.regions[*].rate",
            Err("the path selects 2 values; make it select one"),
        ),
        ("$.checkout.text", Err("\"high\" is not a number")),
        ("$.up", Err("the path selects true, not a number")),
        ("$.none", Err("the path selects null, not a number")),
        (
            "$.checkout",
            Err(r#"the path selects {"quoted":" 0.5 ","success_rate":0.991,"text":"high"}"#),
        ),
    ];
    for &(path, expected) in cases {
        let parsed = JsonPath::parse(path).unwrap();
        let got = json_path_value(OK, body.as_bytes(), &parsed);
        match expected {
            Ok(value) => assert_eq!(got, Ok(value), "{path}"),
            Err(start) => {
                let error = got.expect_err(path);
                assert!(error.starts_with(start), "{path}: {error}");
            }
        }
    }
    let path = JsonPath::parse("$.rate").unwrap();
    let error = json_path_value(StatusCode::INTERNAL_SERVER_ERROR, b"{\"rate\":1}", &path);
    assert_eq!(
        error,
        Err("the endpoint answered 500 Internal Server Error".to_string())
    );
    let error = json_path_value(OK, b"{\"rate\":", &path).unwrap_err();
    assert!(error.starts_with("the answer is not JSON"), "{error}");
}

#[test]
fn polls_four_times_a_window_within_a_second_and_fifteen() {
    let secs = Duration::from_secs;
    assert_eq!(poll_interval(secs(60)), secs(15));
    assert_eq!(poll_interval(secs(20)), secs(5));
    assert_eq!(poll_interval(secs(2)), secs(1));
    assert_eq!(poll_interval(secs(3600)), secs(15));
}

#[test]
fn a_value_counts_for_two_polls_and_a_fetch_then_is_no_evidence() {
    let poll = Duration::from_secs(5);
    let at = Instant::now();
    let sample = Some(Sample { value: 0.97, at });
    // 2 × 5 s + 2 s.
    let oldest = Duration::from_secs(12);
    assert_eq!(fresh_value(None, at, poll), None);
    assert_eq!(fresh_value(sample, at, poll), Some(0.97));
    assert_eq!(fresh_value(sample, at + oldest, poll), Some(0.97));
    assert_eq!(
        fresh_value(sample, at + oldest + Duration::from_millis(1), poll),
        None
    );
    // A clock read before the sample was stored is not "old".
    assert_eq!(
        fresh_value(sample, at - Duration::from_secs(1), poll),
        Some(0.97)
    );
}

#[test]
fn sources_follow_the_guardrails_of_the_section() {
    let text = "[app]\nname = \"a\"\nroot = \"/r\"\n[web]\ncommand = \"./s\"\n\
        [[rollout.guardrails]]\nmetric = \"error_rate\"\nmax = \"1%\"\nwindow = \"1m\"\n\
        [[rollout.guardrails]]\nmetric = \"prometheus\"\nserver = \"http://p:9090\"\n\
        query = \"sum(up)\"\nmin = 1\nwindow = \"1m\"\n\
        [[rollout.guardrails]]\nmetric = \"http\"\nurl = \"http://s/stats\"\n\
        json_path = \"$.ok\"\nmax = 1\nwindow = \"1m\"\n";
    let config = baton_api::AppConfig::parse(text, std::path::Path::new("/a/baton.toml")).unwrap();
    assert_eq!(
        ExternalSource::by_guardrail(&config.rollout),
        vec![
            None,
            Some(ExternalSource::Prometheus {
                server: "http://p:9090".to_string(),
                query: "sum(up)".to_string(),
            }),
            Some(ExternalSource::Http {
                url: "http://s/stats".to_string(),
                json_path: "$.ok".to_string(),
            }),
        ]
    );
}

#[test]
fn a_prometheus_query_is_sent_url_encoded_to_the_query_api() {
    let source = ExternalSource::Prometheus {
        server: "http://127.0.0.1:9090/prom/".to_string(),
        query: "sum(rate(checkout_total{code=\"200\"}[2m])) / 2".to_string(),
    };
    let target = source.target().unwrap();
    assert_eq!(
        target.uri.to_string(),
        "http://127.0.0.1:9090/prom/api/v1/query?query=\
         sum%28rate%28checkout_total%7Bcode%3D%22200%22%7D%5B2m%5D%29%29+%2F+2"
    );
    let bad = ExternalSource::Http {
        url: "http://s/".to_string(),
        json_path: "rate".to_string(),
    };
    let error = bad.target().unwrap_err();
    assert!(
        error.starts_with("json_path \"rate\" is not a JSONPath"),
        "{error}"
    );
    let tls = ExternalSource::Http {
        url: "https://s/".to_string(),
        json_path: "$.rate".to_string(),
    };
    assert_eq!(
        tls.target().unwrap_err(),
        "\"https://s/\" is not an http:// address"
    );
}

/// What the stub endpoint answers; switchable while it serves.
type Answer = Arc<Mutex<(StatusCode, String)>>;

/// An HTTP server on 127.0.0.1:0 answering every path with `answer`.
async fn stub(answer: Answer) -> SocketAddr {
    async fn reply(State(answer): State<Answer>) -> (StatusCode, String) {
        answer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = Router::new().fallback(route_get(reply)).with_state(answer);
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

fn answer(status: StatusCode, body: &str) -> Answer {
    Arc::new(Mutex::new((status, body.to_string())))
}

fn http_target(address: SocketAddr, path: &str) -> Target {
    ExternalSource::Http {
        url: format!("http://{address}/stats"),
        json_path: path.to_string(),
    }
    .target()
    .unwrap()
}

#[tokio::test]
async fn fetches_from_a_real_prometheus_shaped_server_and_a_json_endpoint() {
    let prometheus = stub(answer(OK, &vector(&["0.993"]))).await;
    let target = ExternalSource::Prometheus {
        server: format!("http://{prometheus}"),
        query: "sum(rate(x[1m]))".to_string(),
    }
    .target()
    .unwrap();
    assert_eq!(fetch(&target).await, Ok(0.993));

    let stats = answer(OK, r#"{"checkout":{"rate":"0.5"}}"#);
    let address = stub(Arc::clone(&stats)).await;
    let target = http_target(address, "$.checkout.rate");
    assert_eq!(fetch(&target).await, Ok(0.5));
    *stats.lock().unwrap() = (StatusCode::SERVICE_UNAVAILABLE, "down".to_string());
    assert_eq!(
        fetch(&target).await,
        Err("the endpoint answered 503 Service Unavailable".to_string())
    );
}

#[tokio::test]
async fn an_unreachable_port_is_a_failure_not_a_value() {
    // A port that was just free: nothing listens on it now.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let error = fetch(&http_target(address, "$.rate")).await.unwrap_err();
    assert!(
        error.starts_with(&format!("cannot connect to {address}")),
        "{error}"
    );
}

#[tokio::test]
async fn a_server_that_hangs_is_given_up_on_at_the_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    // Accepts, then never answers: the connections are held open.
    let _hang = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let started = std::time::Instant::now();
    let error = fetch(&http_target(address, "$.rate")).await.unwrap_err();
    assert_eq!(error, "no answer within 2s");
    // Generous: only that it did not wait for the server.
    assert!(started.elapsed() < Duration::from_secs(30));
}

fn external(name: &str, window: Duration) -> Guardrail {
    Guardrail {
        metric: Metric::External {
            name: name.to_string(),
            min: Some(0.9),
            max: None,
        },
        window,
    }
}

#[tokio::test]
async fn a_rollout_reads_each_external_guardrail_and_hears_when_it_changes() {
    let stats = answer(OK, r#"{"rate": 0.97}"#);
    let address = stub(Arc::clone(&stats)).await;
    let guardrails = vec![
        Guardrail {
            metric: Metric::ErrorRate {
                max: Ratio::from_parts_per_million(10_000).unwrap(),
            },
            window: Duration::from_secs(60),
        },
        external("$.rate", Duration::from_secs(4)),
    ];
    let sources = vec![
        None,
        Some(ExternalSource::Http {
            url: format!("http://{address}/stats"),
            json_path: "$.rate".to_string(),
        }),
    ];
    let mut metrics = ExternalMetrics::start(&guardrails, &sources);
    let deadline = Instant::now() + Duration::from_secs(20);
    while metrics.value(1).is_none() {
        assert!(Instant::now() < deadline, "no value within 20 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(metrics.value(1), Some(0.97));
    assert_eq!(metrics.value(0), None);
    assert_eq!(metrics.news(), ["guardrail 2 ($.rate) reads 0.97"]);

    // The source breaks: said once, however many polls fail.
    *stats.lock().unwrap() = (StatusCode::OK, r#"{"rate": null}"#.to_string());
    let mut heard = Vec::new();
    while heard.is_empty() {
        assert!(
            Instant::now() < deadline,
            "no news of the failure within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        heard = metrics.news();
    }
    assert_eq!(
        heard,
        [
            "guardrail 2 ($.rate) cannot be read: the path selects null, not a number; it gives \
          no evidence until it can"
        ]
    );
    // The last good value still vouches until it is too old (pure rule
    // above); then none, which the decision core takes as no evidence.
    while metrics.value(1).is_some() {
        assert!(Instant::now() < deadline, "the value never went stale");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        metrics.news().is_empty(),
        "a failing source repeated itself"
    );
}

/// A source with a path no endpoint can answer: it fails at once, without
/// the network, so a paused clock can run through many polls.
fn unparsable_path() -> Vec<Option<ExternalSource>> {
    vec![Some(ExternalSource::Http {
        url: "http://127.0.0.1:9/stats".to_string(),
        json_path: "rate".to_string(),
    })]
}

#[tokio::test(start_paused = true)]
async fn a_source_that_keeps_failing_says_so_once_and_never_gives_a_value() {
    let guardrails = vec![external("rate", Duration::from_secs(60))];
    let sources = unparsable_path();
    let mut metrics = ExternalMetrics::start(&guardrails, &sources);
    tokio::time::sleep(Duration::from_secs(10 * 60)).await;
    assert_eq!(metrics.value(0), None);
    let news = metrics.news();
    assert_eq!(news.len(), 1, "{news:?}");
    assert!(
        news[0]
            .starts_with("guardrail 1 (rate) cannot be read: json_path \"rate\" is not a JSONPath"),
        "{news:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_external_guardrail_without_a_source_is_never_evidence() {
    let guardrails = vec![external("orphan", Duration::from_secs(60))];
    let mut metrics = ExternalMetrics::start(&guardrails, &[]);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(metrics.value(0), None);
    assert_eq!(
        metrics.news(),
        [
            "guardrail 1 (orphan) cannot be read: its source is not known to this rollout; it \
          gives no evidence until it can"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_the_metrics_stops_every_fetcher() {
    let guardrails = vec![external("rate", Duration::from_secs(4))];
    let sources = unparsable_path();
    let metrics = ExternalMetrics::start(&guardrails, &sources);
    let latest = metrics.watched[0]
        .as_ref()
        .map(|watched| watched.latest.clone());
    let holders = latest.as_ref().map(|latest| Arc::strong_count(&latest.0));
    assert_eq!(holders, Some(3), "the fetcher, the metrics and this test");
    drop(metrics);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let holders = latest.as_ref().map(|latest| Arc::strong_count(&latest.0));
    assert_eq!(holders, Some(1), "a fetcher outlived its rollout");
}
