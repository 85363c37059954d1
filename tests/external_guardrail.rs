//! End-to-end `prometheus` and `http` guardrails: a canary of the demo app
//! under load, judged on a number the test itself serves over HTTP. A
//! number that drops below its minimum mid-canary rolls the deploy back; a
//! good Prometheus answer lets the canary be promoted; a source nobody
//! answers at never passes a step, and the step times out onto stable.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, ensure};
use baton_testkit::{AppSource, CommandOutput, Daemon, wait_until};
use bytes::Bytes;
use http::{Request, Response, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use support::{
    Load, SOON, deploy_app as deploy, deploy_app_args as deploy_args, ensure_mentions, explain,
    join, lock, serving, spawn_baton,
};

/// Longest a whole canary deploy of these tests may take.
const DEPLOY: Duration = Duration::from_secs(120);

/// A metrics endpoint on 127.0.0.1:0 that answers every GET with a JSON
/// body the test can change while it serves. It stops on drop.
struct Stub {
    address: SocketAddr,
    body: Arc<Mutex<String>>,
    asked: Arc<AtomicU64>,
    last_target: Arc<Mutex<String>>,
    server: JoinHandle<()>,
}

impl Stub {
    async fn start(body: &str) -> anyhow::Result<Stub> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let body = Arc::new(Mutex::new(body.to_string()));
        let asked = Arc::new(AtomicU64::new(0));
        let last_target = Arc::new(Mutex::new(String::new()));
        let (answer, count, target) = (
            Arc::clone(&body),
            Arc::clone(&asked),
            Arc::clone(&last_target),
        );
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (answer, count, target) =
                    (Arc::clone(&answer), Arc::clone(&count), Arc::clone(&target));
                let service = service_fn(move |request: Request<Incoming>| {
                    *lock(&target) = request.uri().to_string();
                    count.fetch_add(1, Ordering::Relaxed);
                    let body = lock(&answer).clone();
                    async move {
                        Ok::<_, Infallible>(
                            Response::builder()
                                .header(header::CONTENT_TYPE, "application/json")
                                .body(Full::new(Bytes::from(body)))
                                .unwrap_or_default(),
                        )
                    }
                });
                tokio::spawn(async move {
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    let _ = connection.await;
                });
            }
        });
        Ok(Stub {
            address,
            body,
            asked,
            last_target,
            server,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    fn answer(&self, body: &str) {
        *lock(&self.body) = body.to_string();
    }

    fn asked(&self) -> u64 {
        self.asked.load(Ordering::Relaxed)
    }

    async fn wait_asked(&self, times: u64) -> anyhow::Result<()> {
        wait_until(DEPLOY, "the guardrail's source to be asked", || async {
            self.asked() >= times
        })
        .await
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A canary with three steps, short times and one guardrail.
fn canary(app: &str, step: &str, timeout: &str, guardrail: &str) -> anyhow::Result<AppSource> {
    AppSource::builder(app, "v1")
        .web_line("processes = 2")
        .extra(&format!(
            "[rollout]\nstrategy = \"canary\"\nsteps = [\"10%\", \"50%\", \"100%\"]\n\
             step_duration = \"{step}\"\nstep_timeout = \"{timeout}\"\nmin_requests = 20\n\
             bake = \"1s\"\n\n[[rollout.guardrails]]\n{guardrail}"
        ))
        .build()
}

/// Deploys `app` as v1 (one swap: nothing to split with yet), puts it
/// under load and makes its source v2, ready for the canary.
async fn stable_under_load(daemon: &Daemon, app: &AppSource) -> anyhow::Result<Load> {
    deploy(daemon, app).await?.success()?;
    let load = Load::start(daemon.http_address(), 4, "/");
    load.wait_for_answers(50).await?;
    app.set_version("v2")?;
    Ok(load)
}

fn checkout(rate: f64) -> String {
    format!(r#"{{"checkout": {{"success_rate": {rate}, "orders": 1200}}}}"#)
}

/// Both outputs of a command, for looking things up in either.
fn everything(output: &CommandOutput) -> String {
    format!("{}\n{}", output.stdout, output.stderr)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http_number_that_drops_below_its_minimum_rolls_the_canary_back() -> anyhow::Result<()> {
    let stats = Stub::start(&checkout(0.99)).await?;
    let url = stats.url("/stats");
    let app = canary(
        "dropping",
        "20s",
        "60s",
        &format!(
            "metric = \"http\"\nurl = \"{url}\"\njson_path = \"$.checkout.success_rate\"\n\
             min = 0.95\nwindow = \"4s\"\n"
        ),
    )?;
    let daemon = Daemon::start().await?;
    let outcome = async {
        let load = stable_under_load(&daemon, &app).await?;
        let before = stats.asked();
        let deploying = spawn_baton(&daemon, &deploy_args(&app));
        // The canary reads a good number first; then checkouts collapse.
        stats.wait_asked(before + 2).await?;
        stats.answer(&checkout(0.5));
        let output = join(deploying, DEPLOY, "the canary deploy").await??;
        let tally = load.stop().await?;
        ensure!(
            !output.status.success(),
            "the canary was promoted:\n{}",
            everything(&output)
        );
        let source = format!("$.checkout.success_rate from {url}");
        ensure_mentions(
            &output.stderr,
            &[
                "rolled back",
                &format!("{source} = 0.5 < 0.95"),
                "all traffic is back on",
            ],
        )?;
        ensure_mentions(&output.stdout, &[&format!("({source}) reads 0.99")])?;
        ensure!(serving(&daemon).await? == "v1");
        tally.assert_no_failures()?;
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_good_prometheus_number_lets_the_canary_be_promoted() -> anyhow::Result<()> {
    let prometheus = Stub::start(
        r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{},"value":[1700000000.5,"0.993"]}]}}"#,
    )
    .await?;
    let server = prometheus.url("");
    let query = "sum(rate(checkout_completed_total[2m]))";
    let app = canary(
        "measured",
        "1s",
        "60s",
        &format!(
            "metric = \"prometheus\"\nserver = \"{server}\"\nquery = '{query}'\nmin = 0.95\n\
             window = \"4s\"\n"
        ),
    )?;
    let daemon = Daemon::start().await?;
    let outcome = async {
        let load = stable_under_load(&daemon, &app).await?;
        let output = deploy(&daemon, &app).await?.success()?;
        let tally = load.stop().await?;
        ensure_mentions(
            &output.stdout,
            &[
                "10%",
                "50%",
                "100%",
                "the candidate becomes stable",
                &format!("({query} on prometheus {server}) reads 0.993"),
            ],
        )?;
        // An instant query, URL-encoded, on Prometheus's query API.
        let asked = lock(&prometheus.last_target).clone();
        ensure!(
            asked == "/api/v1/query?query=sum%28rate%28checkout_completed_total%5B2m%5D%29%29",
            "the stub was asked {asked:?}"
        );
        ensure!(serving(&daemon).await? == "v2");
        tally.assert_no_failures()?;
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_source_never_passes_a_step_and_the_step_times_out() -> anyhow::Result<()> {
    // A port that was free a moment ago: nothing answers there.
    let nobody = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let url = format!("http://{nobody}/stats");
    let app = canary(
        "unheard",
        "1s",
        "5s",
        &format!(
            "metric = \"http\"\nurl = \"{url}\"\njson_path = \"$.rate\"\nmin = 0.95\n\
             window = \"4s\"\n"
        ),
    )?;
    let daemon = Daemon::start().await?;
    let outcome = async {
        let load = stable_under_load(&daemon, &app).await?;
        let output = tokio::time::timeout(DEPLOY, deploy(&daemon, &app))
            .await
            .context("the deploy did not end")??;
        ensure!(
            !output.status.success(),
            "a deploy without evidence succeeded:\n{}",
            everything(&output)
        );
        let text = everything(&output);
        let source = format!("$.rate from {url}");
        ensure_mentions(
            &text,
            &[
                "step 1 of 3 (10%) found too little evidence",
                &format!("{source}: no evidence"),
                &format!("({source}) cannot be read: cannot connect to {nobody}"),
                "all traffic is back on",
            ],
        )?;
        ensure!(
            !text.contains("step 2 of 3"),
            "a step passed without evidence:\n{text}"
        );
        // Everything is on stable again, and stays there.
        wait_until(SOON, "stable to serve", || async {
            serving(&daemon).await.is_ok_and(|version| version == "v1")
        })
        .await?;
        let settled = load.tally.versions();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let later = load.tally.versions();
        ensure!(
            later.get("v2") == settled.get("v2"),
            "the candidate still served after the abort: {settled:?} then {later:?}"
        );
        let tally = load.stop().await?;
        tally.assert_no_failures()?;
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}
