//! End-to-end deploy notifications: a webhook receiver the test serves gets
//! each event of a good deploy and of a canary rolled back by its
//! guardrail, every body signed with the app's secret; a receiver that
//! answers 500 twice gets the event on the third try; one that never
//! answers does not hold up the deploy, nor the other targets; a
//! `command` target gets each event's JSON on its stdin, including a spent
//! error budget (refused, then forced) and a `baton rollback`.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use baton_testkit::{AppSource, Daemon, wait_until};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use sha2::Sha256;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use support::{deploy_app as deploy, deploy_failing_candidate, explain, lock};

const SECRET: &str = "correct horse battery staple";

/// How long events may take to arrive once their deploy has ended.
const ARRIVAL: Duration = Duration::from_secs(30);

/// One request a receiver got.
#[derive(Clone, Debug)]
struct Received {
    event: String,
    delivery: String,
    signature: String,
    timestamp: String,
    content_type: String,
    body: Bytes,
}

impl Received {
    fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "the body is not JSON: {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Checks the signature the way a receiver would: HMAC-SHA256 of the
    /// exact body under the shared secret, in constant time.
    fn ensure_signed(&self) -> anyhow::Result<()> {
        let hex = self
            .signature
            .strip_prefix("sha256=")
            .with_context(|| format!("signature {:?} has no sha256=", self.signature))?;
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&hex[at..at + 2], 16))
            .collect::<Result<_, _>>()?;
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes())?;
        mac.update(&self.body);
        mac.verify_slice(&bytes)
            .map_err(|_| anyhow::anyhow!("bad signature on {}", self.event))?;
        let json = self.json()?;
        ensure!(json["event"] == self.event.as_str(), "{json} vs {self:?}");
        ensure!(json["id"] == self.delivery.as_str(), "{json} vs {self:?}");
        ensure!(self.content_type == "application/json", "{self:?}");
        ensure!(self.timestamp.parse::<u64>().is_ok(), "{self:?}");
        Ok(())
    }
}

/// A webhook receiver on 127.0.0.1:0 that answers its requests with
/// `statuses` in turn (the last one for the rest), recording each.
struct Receiver {
    address: SocketAddr,
    got: Arc<Mutex<Vec<Received>>>,
    server: JoinHandle<()>,
}

impl Receiver {
    async fn start(statuses: &[u16]) -> anyhow::Result<Receiver> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let got = Arc::new(Mutex::new(Vec::new()));
        let statuses = Arc::new(statuses.to_vec());
        let record = Arc::clone(&got);
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (record, statuses) = (Arc::clone(&record), Arc::clone(&statuses));
                let service = service_fn(move |request: Request<Incoming>| {
                    let (record, statuses) = (Arc::clone(&record), Arc::clone(&statuses));
                    async move {
                        let header = |name: &str| {
                            request
                                .headers()
                                .get(name)
                                .and_then(|value| value.to_str().ok())
                                .unwrap_or_default()
                                .to_string()
                        };
                        let mut received = Received {
                            event: header("x-baton-event"),
                            delivery: header("x-baton-delivery"),
                            signature: header("x-baton-signature"),
                            timestamp: header("x-baton-timestamp"),
                            content_type: header("content-type"),
                            body: Bytes::new(),
                        };
                        received.body = request
                            .into_body()
                            .collect()
                            .await
                            .map(|body| body.to_bytes())
                            .unwrap_or_default();
                        let status = {
                            let mut got = lock(&record);
                            got.push(received);
                            statuses
                                .get(got.len() - 1)
                                .or(statuses.last())
                                .copied()
                                .unwrap_or(200)
                        };
                        let mut response = Response::new(Full::new(Bytes::new()));
                        *response.status_mut() = StatusCode::from_u16(status).unwrap_or_default();
                        Ok::<_, Infallible>(response)
                    }
                });
                tokio::spawn(async move {
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    let _ = connection.await;
                });
            }
        });
        Ok(Receiver {
            address,
            got,
            server,
        })
    }

    fn url(&self) -> String {
        format!("http://{}/hooks/baton", self.address)
    }

    fn got(&self) -> Vec<Received> {
        lock(&self.got).clone()
    }

    fn events(&self) -> Vec<String> {
        self.got().into_iter().map(|r| r.event).collect()
    }

    /// Waits until the events received are `expected`, in order.
    async fn wait_for(&self, expected: &[&str]) -> anyhow::Result<()> {
        let what = format!("the receiver to get {expected:?}");
        wait_until(ARRIVAL, &what, || async { self.events() == expected })
            .await
            .with_context(|| format!("it got {:?}", self.events()))
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A receiver that accepts connections and never answers.
struct Silent {
    address: SocketAddr,
    held: Arc<Mutex<Vec<TcpStream>>>,
    server: JoinHandle<()>,
}

impl Silent {
    async fn start() -> anyhow::Result<Silent> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let held = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&held);
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                lock(&keep).push(stream);
            }
        });
        Ok(Silent {
            address,
            held,
            server,
        })
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Writes the app's `shared/.env` (where the daemon finds the webhook
/// key) before its first deploy.
fn share_secret(app: &AppSource) -> anyhow::Result<()> {
    let shared = app.root().join("shared");
    std::fs::create_dir_all(&shared)?;
    std::fs::write(shared.join(".env"), format!("HOOK_SECRET=\"{SECRET}\"\n"))?;
    Ok(())
}

/// The events a `command` target appended to `file`, one JSON per line.
fn written(file: &Path) -> anyhow::Result<Vec<Value>> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let events: Result<Vec<Value>, _> = text.lines().map(serde_json::from_str).collect();
    events.with_context(|| format!("the command wrote {text:?}"))
}

/// Waits until `file` holds at least `count` events, and returns them.
async fn wait_for_written(file: &Path, count: usize) -> anyhow::Result<Vec<Value>> {
    let what = format!("{count} events from the command");
    wait_until(ARRIVAL, &what, || async {
        written(file).is_ok_and(|events| events.len() >= count)
    })
    .await?;
    written(file)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_gets_signed_events_of_a_good_deploy_and_of_a_canary_rolled_back()
-> anyhow::Result<()> {
    let receiver = Receiver::start(&[200]).await?;
    let app = AppSource::builder("announced", "v1")
        .web_line("processes = 2")
        .extra(&format!(
            "[rollout]\nstrategy = \"canary\"\nsteps = [\"50%\", \"100%\"]\n\
             step_duration = \"1s\"\nstep_timeout = \"60s\"\nmin_requests = 20\n\n\
             [[notify]]\nwebhook = \"{}\"\nsecret_env = \"HOOK_SECRET\"\n",
            receiver.url()
        ))
        .build()?;
    share_secret(&app)?;
    let daemon = Daemon::start().await?;
    let outcome = async {
        // The first deploy is one swap; under load, the next one is a
        // candidate failing half its requests, whose error-rate guardrail
        // (a default one) sends the traffic back.
        let (output, _) =
            deploy_failing_candidate(&daemon, &app, "ERROR_RATE = \"0.5\"", 4).await?;
        ensure!(
            output.stdout.contains("back to stable"),
            "{}",
            output.stdout
        );
        receiver
            .wait_for(&[
                "deploy_started",
                "deploy_succeeded",
                "deploy_started",
                "guardrail_breached",
                "rolled_back",
            ])
            .await?;
        let got = receiver.got();
        let started = got[0].json()?;
        let succeeded = got[1].json()?;
        let first = app.current_release().context("no current release")?;
        ensure!(started["app"] == "announced", "{started}");
        ensure!(started["kind"] == "deploy", "{started}");
        ensure!(started["deploy_id"].is_i64(), "{started}");
        ensure!(started["previous_release"].is_null(), "{started}");
        ensure!(
            succeeded["deploy_id"] == started["deploy_id"],
            "{succeeded}"
        );
        ensure!(succeeded["release"] == first.as_str(), "{succeeded}");
        // The traffic report the deploy printed rides along.
        ensure!(
            succeeded["traffic"]["version"] == first.as_str(),
            "{succeeded}"
        );
        ensure!(succeeded["duration_ms"].is_u64(), "{succeeded}");
        ensure!(
            succeeded["at"].as_str().is_some_and(|at| at.ends_with('Z')),
            "{succeeded}"
        );
        ensure!(got[0].delivery != got[1].delivery, "{got:?}");
        let got = receiver.got();
        for received in &got {
            received.ensure_signed()?;
        }
        let breached = got[3].json()?;
        let guardrail = &breached["guardrails"][0];
        ensure!(guardrail["guardrail"] == "error rate", "{breached}");
        ensure!(guardrail["unit"] == "fraction", "{breached}");
        ensure!(
            guardrail["value"].as_f64() > guardrail["max"].as_f64(),
            "{breached}"
        );
        ensure!(
            guardrail["evidence"]
                .as_str()
                .is_some_and(|text| text.contains("error rate")),
            "{breached}"
        );
        ensure!(breached["previous_release"] == first.as_str(), "{breached}");
        ensure!(breached["release"].is_string(), "{breached}");
        let rolled_back = got[4].json()?;
        ensure!(
            rolled_back["rollback_reason"] == "guardrail",
            "{rolled_back}"
        );
        ensure!(
            rolled_back["previous_release"] == first.as_str(),
            "{rolled_back}"
        );
        ensure!(
            rolled_back["reason"]
                .as_str()
                .is_some_and(|reason| reason.contains("rolled back")),
            "{rolled_back}"
        );
        ensure!(
            rolled_back["deploy_id"].as_i64() > started["deploy_id"].as_i64(),
            "{rolled_back}"
        );
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_receiver_is_retried_a_silent_one_delays_nothing_and_a_command_reads_stdin()
-> anyhow::Result<()> {
    let flaky = Receiver::start(&[500, 500, 200]).await?;
    let silent = Silent::start().await?;
    let files = tempfile::tempdir()?;
    let events_file = files.path().join("events.jsonl");
    let app = AppSource::builder("told", "v1")
        .extra(&format!(
            "[[notify]]\nwebhook = \"http://{silent}/never\"\nsecret_env = \"HOOK_SECRET\"\n\
             timeout = \"60s\"\n\n\
             [[notify]]\nwebhook = \"{flaky}\"\nsecret_env = \"HOOK_SECRET\"\n\
             events = [\"deploy_succeeded\"]\n\n\
             [[notify]]\ncommand = 'cat >> \"{file}\" && echo >> \"{file}\"'\n",
            silent = silent.address,
            flaky = flaky.url(),
            file = events_file.display(),
        ))
        .build()?;
    share_secret(&app)?;
    let daemon = Daemon::start().await?;
    let outcome = async {
        let begun = Instant::now();
        deploy(&daemon, &app).await?.success()?;
        let took = begun.elapsed();
        // The silent receiver's first try alone may take a minute.
        ensure!(
            took < Duration::from_secs(50),
            "the deploy took {took:?} with a receiver that never answers"
        );
        wait_until(
            ARRIVAL,
            "the silent receiver to be connected to",
            || async { !lock(&silent.held).is_empty() },
        )
        .await?;

        // 500, then 500 after about a second, then 200 after two more.
        flaky
            .wait_for(&["deploy_succeeded", "deploy_succeeded", "deploy_succeeded"])
            .await?;
        let tries = flaky.got();
        for received in &tries {
            received.ensure_signed()?;
        }
        ensure!(
            tries
                .iter()
                .all(|t| t.delivery == tries[0].delivery && t.body == tries[0].body),
            "the retries are not the same delivery: {tries:?}"
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        ensure!(
            flaky.got().len() == 3,
            "tried after a 200: {:?}",
            flaky.events()
        );
        let metrics = daemon.baton(&["metrics"]).await?.success()?.stdout;
        let delivered = format!(
            "baton_notifications_total{{app=\"told\",target=\"webhook {}\",outcome=\"delivered\"}} 1",
            flaky.url()
        );
        ensure!(metrics.contains(&delivered), "no {delivered} in:\n{metrics}");

        let events = wait_for_written(&events_file, 2).await?;
        ensure!(events[0]["event"] == "deploy_started", "{events:?}");
        ensure!(events[1]["event"] == "deploy_succeeded", "{events:?}");
        ensure!(events[1]["app"] == "told", "{events:?}");
        ensure!(
            events[1]["release"].as_str() == app.current_release().as_deref(),
            "{events:?}"
        );
        ensure!(
            events[1]["id"].as_str() == Some(tries[0].delivery.as_str()),
            "the command and the webhook got different ids for one event: {events:?}"
        );
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_whose_webhook_key_is_set_nowhere_is_refused() -> anyhow::Result<()> {
    let app = AppSource::builder("unkeyed", "v1")
        .extra(
            "[[notify]]\nwebhook = \"http://127.0.0.1:9/x\"\nsecret_env = \"NOT_SET_ANYWHERE\"\n",
        )
        .build()?;
    let daemon = Daemon::start().await?;
    let outcome = async {
        let output = deploy(&daemon, &app).await?;
        ensure!(!output.status.success(), "deployed: {}", output.stdout);
        ensure!(
            output
                .stderr
                .contains("secret_env names NOT_SET_ANYWHERE, which is not set"),
            "{}",
            output.stderr
        );
        ensure!(app.current_release().is_none(), "a release went live");
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spent_budget_and_a_manual_rollback_are_announced() -> anyhow::Result<()> {
    let files = tempfile::tempdir()?;
    let events_file = files.path().join("events.jsonl");
    let app = AppSource::builder("budgeted", "v1")
        .web_line("env = { ERROR_RATE = \"0.5\" }")
        .extra(&format!(
            "[slo]\navailability = \"99.9%\"\nwindow = \"1h\"\n\n\
             [[notify]]\ncommand = 'cat >> \"{file}\" && echo >> \"{file}\"'\n\
             events = [\"budget_exhausted\", \"rolled_back\"]\n",
            file = events_file.display(),
        ))
        .build()?;
    let daemon = Daemon::start().await?;
    let outcome = async {
        deploy(&daemon, &app).await?.success()?;
        let first = app.current_release().context("no current release")?;
        for _ in 0..40 {
            support::get_once(daemon.http_address(), "/").await?;
        }
        app.set_version("v2")?;
        let refused = deploy(&daemon, &app).await?;
        ensure!(!refused.status.success(), "{}", refused.stdout);
        wait_for_written(&events_file, 1).await?;
        let mut args = support::deploy_app_args(&app);
        args.extend(["--force".to_string(), "hotfix".to_string()]);
        daemon.baton(&support::strs(&args)).await?.success()?;
        let second = app.current_release().context("no current release")?;
        wait_for_written(&events_file, 2).await?;
        daemon
            .baton(&["rollback", "--app", "budgeted"])
            .await?
            .success()?;
        let events = wait_for_written(&events_file, 3).await?;
        ensure!(events.len() == 3, "{events:?}");
        let (refusal, forced, rolled_back) = (&events[0], &events[1], &events[2]);
        ensure!(refusal["event"] == "budget_exhausted", "{refusal}");
        ensure!(refusal["deploy_id"].is_null(), "{refusal}");
        ensure!(refusal.get("forced").is_none(), "{refusal}");
        ensure!(refusal["budget"]["availability"] == "99.9%", "{refusal}");
        ensure!(
            refusal["budget"]["errors"].as_u64() > Some(0)
                && refusal["budget"]["left"].as_f64() <= Some(0.0),
            "{refusal}"
        );
        ensure!(forced["event"] == "budget_exhausted", "{forced}");
        ensure!(forced["forced"] == "hotfix", "{forced}");
        ensure!(rolled_back["event"] == "rolled_back", "{rolled_back}");
        ensure!(rolled_back["kind"] == "rollback", "{rolled_back}");
        ensure!(rolled_back["rollback_reason"] == "manual", "{rolled_back}");
        ensure!(rolled_back["release"] == first.as_str(), "{rolled_back}");
        ensure!(
            rolled_back["previous_release"] == second.as_str(),
            "{rolled_back}"
        );
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}
