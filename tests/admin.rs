//! End-to-end tests of the daemon's admin listener (`baton daemon --admin`):
//! every request needs the bearer token; with it, an alert manager can list
//! apps and abort a running canary as `baton abort` would, and the listener
//! goes away with the daemon.

mod support;

use std::time::Duration;

use anyhow::{Context, ensure};
use baton_api::{AppInfo, ErrorBody};
use baton_testkit::{AppSource, Daemon, wait_until};
use http::{Method, StatusCode};
use nix::sys::signal::Signal;
use tokio::net::TcpStream;

use support::{
    Load, Reply, SOON, admin_address, admin_call, admin_daemon, admin_token_file, bearer, explain,
    get_once, join, spawn_baton,
};

fn error_of(reply: &Reply) -> anyhow::Result<String> {
    let body: ErrorBody = serde_json::from_slice(&reply.body)
        .with_context(|| format!("not a JSON error: {reply:?}"))?;
    Ok(body.error)
}

fn challenge(reply: &Reply) -> &str {
    support::header_text(&reply.headers, "www-authenticate")
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_token_opens_the_admin_listener_and_it_stops_with_the_daemon() -> anyhow::Result<()>
{
    let (mut daemon, _token_dir) = admin_daemon().await?;
    let outcome = async {
        let admin = admin_address(&daemon).await?;

        let none = admin_call(admin, Method::GET, "/api/apps", None).await?;
        ensure!(none.status == StatusCode::UNAUTHORIZED, "{none:?}");
        ensure!(challenge(&none).starts_with("Bearer"), "{none:?}");
        ensure!(error_of(&none)?.contains("Authorization: Bearer"));

        let wrong = admin_call(admin, Method::GET, "/api/apps", Some("Bearer not-it")).await?;
        ensure!(wrong.status == StatusCode::UNAUTHORIZED, "{wrong:?}");
        ensure!(challenge(&wrong).starts_with("Bearer"), "{wrong:?}");
        error_of(&wrong)?;

        // Without the token, a route that would change something is refused.
        let refused =
            admin_call(admin, Method::POST, "/api/apps/ghost/rollout/abort", None).await?;
        ensure!(refused.status == StatusCode::UNAUTHORIZED, "{refused:?}");

        let listed = admin_call(admin, Method::GET, "/api/apps", Some(&bearer())).await?;
        ensure!(listed.status == StatusCode::OK, "{listed:?}");
        ensure!(
            support::header_text(&listed.headers, "content-type").starts_with("application/json"),
            "{listed:?}"
        );
        let apps: Vec<AppInfo> = serde_json::from_slice(&listed.body)?;
        ensure!(apps.is_empty(), "{apps:?}");

        let abort = admin_call(
            admin,
            Method::POST,
            "/api/apps/ghost/rollout/abort",
            Some(&bearer()),
        )
        .await?;
        ensure!(abort.status == StatusCode::NOT_FOUND, "{abort:?}");
        let message = error_of(&abort)?;
        ensure!(
            message.contains("ghost") && message.contains("no progressive rollout"),
            "{message}"
        );

        daemon.signal(Signal::SIGTERM);
        let status = daemon.wait_exit(Duration::from_secs(30)).await?;
        ensure!(status.success(), "the daemon exited with {status}");
        ensure!(
            TcpStream::connect(admin).await.is_err(),
            "the admin listener still accepts after the daemon stopped"
        );
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_file_others_can_read_stops_the_start() -> anyhow::Result<()> {
    let (_dir, path) = admin_token_file(0o644)?;
    let started = Daemon::builder()
        .args(["--admin", "127.0.0.1:0", "--admin-token-file"])
        .args([path.display().to_string()])
        .start()
        .await;
    let Err(error) = started else {
        anyhow::bail!("the daemon started with a token file of mode 0644");
    };
    let message = format!("{error:#}");
    ensure!(
        message.contains("chmod 600") && message.contains("0644"),
        "{message}"
    );
    Ok(())
}

/// Short steps for tests, ten-minute ones so only a command ends the canary.
fn slow_canary(app: &str) -> anyhow::Result<AppSource> {
    AppSource::builder(app, "v1")
        .web_line("processes = 2")
        .extra(
            "[rollout]\nstrategy = \"canary\"\nsteps = [\"10%\", \"50%\", \"100%\"]\n\
             step_duration = \"10m\"\nstep_timeout = \"20m\"\nmin_requests = 20\nbake = \"1s\"\n",
        )
        .build()
}

fn deploy_args(app: &AppSource) -> Vec<String> {
    vec![
        "deploy".into(),
        "--config".into(),
        app.config_path().display().to_string(),
    ]
}

async fn serving(daemon: &Daemon) -> anyhow::Result<String> {
    let reply = get_once(daemon.http_address(), "/").await?;
    Ok(reply.version().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_abort_on_the_admin_listener_ends_a_running_canary() -> anyhow::Result<()> {
    let app = slow_canary("alerted")?;
    let (daemon, _token_dir) = admin_daemon().await?;
    let outcome = async {
        let admin = admin_address(&daemon).await?;
        let args: Vec<String> = deploy_args(&app);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        daemon.baton(&args).await?.success()?;
        let load = Load::start(daemon.http_address(), 4, "/");
        load.wait_for_answers(50).await?;

        app.set_version("v2")?;
        let deploy = spawn_baton(&daemon, &deploy_args(&app));
        wait_until(SOON, "the canary to run", || async {
            daemon
                .client()
                .app("alerted")
                .await
                .is_ok_and(|info: AppInfo| info.running_deploy.is_some())
        })
        .await?;
        let abort = admin_call(
            admin,
            Method::POST,
            "/api/apps/alerted/rollout/abort",
            Some(&bearer()),
        )
        .await?;
        ensure!(abort.status == StatusCode::OK, "{abort:?}");
        let info: AppInfo = serde_json::from_slice(&abort.body)
            .with_context(|| format!("not an app: {abort:?}"))?;
        ensure!(info.name == "alerted", "{info:?}");

        let aborted = join(deploy, Duration::from_secs(60), "the aborted deploy").await??;
        ensure!(!aborted.status.success(), "an aborted deploy succeeded");
        ensure!(aborted.stderr.contains("aborted"), "{}", aborted.stderr);
        ensure!(serving(&daemon).await? == "v1");
        let tally = load.stop().await?;
        tally.assert_no_failures()?;
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}
