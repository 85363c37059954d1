//! End-to-end tests of the dashboard on the admin listener: the login that
//! trades the admin token for a session cookie, what a cookie alone may and
//! may not do, the JSON and event stream the page reads, and the page itself
//! in a real headless Chromium (Debian's `/usr/bin/chromium`, driven by
//! `tests/dashboard/dashboard.mjs` with Playwright's `playwright-core`,
//! which `scripts/playwright-core` installs into a cache outside the repo):
//! log in, see the app, watch a canary's marker and split, press Abort and
//! see traffic back on stable. Screenshots are kept under
//! `$CARGO_TARGET_TMPDIR/dashboard-screenshots`.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use baton_testkit::{AppSource, Daemon, GroupChild, wait_until};
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use nix::sys::signal::Signal;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use support::{
    ADMIN_TOKEN, Load, Reply, SOON, admin_address, admin_daemon, bearer, deploy_app,
    deploy_app_args, exchange, explain, header_text, join, send, serving, spawn_baton,
};

/// How long the browser script may take from start to end.
const BROWSER_DEADLINE: Duration = Duration::from_secs(300);

/// `method path` on the admin listener with `headers` and a form `body`.
async fn call(
    admin: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> anyhow::Result<Reply> {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, admin.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let typed = headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
    if !body.is_empty() && !typed {
        request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    exchange(
        admin,
        request.body(Full::new(Bytes::from(body.to_string())))?,
    )
    .await
}

/// The `name=value` of the session cookie a login answer sets.
fn session_cookie(reply: &Reply) -> anyhow::Result<String> {
    let set = header_text(&reply.headers, "set-cookie");
    ensure!(
        set.starts_with("baton_session="),
        "no session cookie: {reply:?}"
    );
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        ensure!(set.contains(part), "the cookie lacks {part}: {set}");
    }
    ensure!(!set.contains(ADMIN_TOKEN), "the cookie carries the token");
    Ok(set.split(';').next().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_login_trades_the_token_for_a_session_that_changes_nothing_without_the_page()
-> anyhow::Result<()> {
    let (mut daemon, _token_dir) = admin_daemon().await?;
    let outcome = async {
        let admin = admin_address(&daemon).await?;

        // The login form, open to all, with the page's protections.
        let page = call(admin, Method::GET, "/", &[], "").await?;
        ensure!(page.status == StatusCode::OK, "{page:?}");
        ensure!(header_text(&page.headers, "content-type").starts_with("text/html"));
        let policy = header_text(&page.headers, "content-security-policy");
        ensure!(
            policy.contains("default-src 'self'") && policy.contains("script-src 'self'"),
            "{policy}"
        );
        ensure!(header_text(&page.headers, "cache-control") == "no-store");
        ensure!(page.text().contains("id=\"token\""), "{}", page.text());
        let script = call(admin, Method::GET, "/assets/dashboard.js", &[], "").await?;
        ensure!(script.status == StatusCode::OK, "{script:?}");
        ensure!(header_text(&script.headers, "content-type").starts_with("text/javascript"));
        ensure!(!header_text(&script.headers, "cache-control").is_empty());
        let style = call(admin, Method::GET, "/assets/dashboard.css", &[], "").await?;
        ensure!(header_text(&style.headers, "content-type").starts_with("text/css"));

        // Everything else still needs credentials.
        for path in ["/api/dashboard", "/api/events", "/favicon.ico"] {
            let refused = call(admin, Method::GET, path, &[], "").await?;
            ensure!(
                refused.status == StatusCode::UNAUTHORIZED,
                "{path}: {refused:?}"
            );
        }

        // A wrong token: the form again with its error, and no cookie.
        let wrong = call(admin, Method::POST, "/login", &[], "token=not-it").await?;
        ensure!(wrong.status == StatusCode::UNAUTHORIZED, "{wrong:?}");
        ensure!(header_text(&wrong.headers, "set-cookie").is_empty());
        ensure!(
            wrong
                .text()
                .contains("<p id=\"login-error\" class=\"error\">")
        );
        // A login form on another site cannot log a browser in.
        let elsewhere = call(
            admin,
            Method::POST,
            "/login",
            &[("origin", "http://evil.example")],
            &format!("token={ADMIN_TOKEN}"),
        )
        .await?;
        ensure!(elsewhere.status == StatusCode::FORBIDDEN, "{elsewhere:?}");

        let login = call(
            admin,
            Method::POST,
            "/login",
            &[("origin", &format!("http://{admin}"))],
            &format!("token={ADMIN_TOKEN}"),
        )
        .await?;
        ensure!(login.status == StatusCode::SEE_OTHER, "{login:?}");
        ensure!(header_text(&login.headers, "location") == "/");
        let cookie = session_cookie(&login)?;
        let with_cookie = [("cookie", cookie.as_str())];

        let page = call(admin, Method::GET, "/", &with_cookie, "").await?;
        ensure!(
            page.text().contains("/assets/dashboard.js"),
            "{}",
            page.text()
        );
        let snapshot = call(admin, Method::GET, "/api/dashboard", &with_cookie, "").await?;
        ensure!(snapshot.status == StatusCode::OK, "{snapshot:?}");
        let snapshot: serde_json::Value = serde_json::from_slice(&snapshot.body)?;
        ensure!(
            snapshot["apps"].is_array() && snapshot["flags"].is_object(),
            "{snapshot}"
        );

        // A cookie alone changes nothing; with the page's header it passes
        // the door (and finds no rollout to abort).
        let abort = "/api/apps/ghost/rollout/abort";
        let forged = call(admin, Method::POST, abort, &with_cookie, "").await?;
        ensure!(forged.status == StatusCode::FORBIDDEN, "{forged:?}");
        let from_page = call(
            admin,
            Method::POST,
            abort,
            &[("cookie", cookie.as_str()), ("x-baton-csrf", "1")],
            "",
        )
        .await?;
        ensure!(from_page.status == StatusCode::NOT_FOUND, "{from_page:?}");
        let promote = call(
            admin,
            Method::POST,
            "/api/apps/ghost/rollout/promote",
            &[("authorization", &bearer())],
            "",
        )
        .await?;
        ensure!(promote.status == StatusCode::NOT_FOUND, "{promote:?}");
        ensure!(
            promote.text().contains("no progressive rollout"),
            "{promote:?}"
        );

        // The event stream opens with a snapshot.
        let request = Request::get("/api/events")
            .header(header::HOST, admin.to_string())
            .header(header::COOKIE, cookie.as_str())
            .body(Full::new(Bytes::new()))?;
        let mut events = send(admin, request).await?;
        ensure!(
            header_text(events.headers(), "content-type").starts_with("text/event-stream"),
            "{:?}",
            events.headers()
        );
        let mut seen = String::new();
        tokio::time::timeout(SOON, async {
            while !seen.contains("event: snapshot\ndata: {") {
                let Some(frame) = events.body_mut().frame().await else {
                    break;
                };
                if let Some(data) = frame?.data_ref() {
                    seen.push_str(&String::from_utf8_lossy(data));
                }
            }
            anyhow::Ok(())
        })
        .await
        .context("no snapshot event in time")??;
        ensure!(seen.contains("\"now_ms\""), "{seen}");

        // Logging out ends the session on the daemon's side too.
        let logout = call(admin, Method::POST, "/logout", &with_cookie, "").await?;
        ensure!(logout.status == StatusCode::SEE_OTHER, "{logout:?}");
        ensure!(header_text(&logout.headers, "set-cookie").contains("Max-Age=0"));
        let gone = call(admin, Method::GET, "/api/dashboard", &with_cookie, "").await?;
        ensure!(gone.status == StatusCode::UNAUTHORIZED, "{gone:?}");

        // An open event stream does not hold the daemon up when it stops.
        let request = Request::get("/api/events")
            .header(header::HOST, admin.to_string())
            .header(header::AUTHORIZATION, bearer())
            .body(Full::new(Bytes::new()))?;
        let open = send(admin, request).await?;
        ensure!(open.status() == StatusCode::OK, "{open:?}");
        daemon.signal(Signal::SIGTERM);
        let status = daemon.wait_exit(Duration::from_secs(20)).await?;
        ensure!(status.success(), "the daemon exited with {status}");
        drop(open);
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

/// Short steps for tests, ten-minute ones so only the Abort button ends
/// the canary.
fn slow_canary(app: &str) -> anyhow::Result<AppSource> {
    AppSource::builder(app, "v1")
        .web_line("processes = 2")
        .extra(
            "[rollout]\nstrategy = \"canary\"\nsteps = [\"10%\", \"50%\", \"100%\"]\n\
             step_duration = \"10m\"\nstep_timeout = \"20m\"\nmin_requests = 20\nbake = \"1s\"\n\
             [slo]\navailability = \"99.9%\"\nwindow = \"1h\"\n",
        )
        .build()
}

/// Deploys `app`'s first version and puts 4 keep-alive clients on it;
/// returns the admin listener's address and the clients.
async fn first_version_under_load(
    daemon: &Daemon,
    app: &AppSource,
) -> anyhow::Result<(SocketAddr, Load)> {
    let admin = admin_address(daemon).await?;
    deploy_app(daemon, app).await?.success()?;
    let load = Load::start(daemon.http_address(), 4, "/");
    load.wait_for_answers(50).await?;
    Ok((admin, load))
}

#[tokio::test(flavor = "multi_thread")]
async fn promote_from_a_dashboard_session_finishes_a_running_canary() -> anyhow::Result<()> {
    let app = slow_canary("promoted")?;
    let (daemon, _token_dir) = admin_daemon().await?;
    let outcome = async {
        let (admin, load) = first_version_under_load(&daemon, &app).await?;

        let login = call(
            admin,
            Method::POST,
            "/login",
            &[],
            &format!("token={ADMIN_TOKEN}"),
        )
        .await?;
        let cookie = session_cookie(&login)?;
        app.set_version("v2")?;
        let deploy = spawn_baton(&daemon, &deploy_app_args(&app));
        wait_until(SOON, "the canary to run", || async {
            daemon
                .client()
                .status("promoted")
                .await
                .is_ok_and(|status| status.rollout.is_some())
        })
        .await?;
        let promote = call(
            admin,
            Method::POST,
            "/api/apps/promoted/rollout/promote",
            &[("cookie", cookie.as_str()), ("x-baton-csrf", "1")],
            "",
        )
        .await?;
        ensure!(promote.status == StatusCode::OK, "{promote:?}");
        let promoted = join(deploy, Duration::from_secs(60), "the promoted deploy").await??;
        ensure!(promoted.status.success(), "{}", promoted.stderr);
        ensure!(serving(&daemon).await? == "v2");
        load.stop().await?.assert_no_failures()?;
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

/// The node_modules directory holding playwright-core: `BATON_PLAYWRIGHT`,
/// or what `scripts/playwright-core` installs.
fn playwright_modules() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("BATON_PLAYWRIGHT") {
        return Ok(PathBuf::from(dir));
    }
    let script = repo().join("scripts/playwright-core");
    let output = std::process::Command::new("bash")
        .arg(&script)
        .output()
        .with_context(|| format!("could not run {}", script.display()))?;
    ensure!(
        output.status.success(),
        "{} failed ({}): {}\nset BATON_PLAYWRIGHT to a node_modules directory holding playwright-core",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(PathBuf::from(
        String::from_utf8_lossy(&output.stdout).trim(),
    ))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The browser the script drives: `BATON_CHROMIUM`, or Debian's.
fn chromium() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("BATON_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    ensure!(
        path.exists(),
        "no browser at {}: install Debian's chromium (scripts/test does), or set BATON_CHROMIUM",
        path.display()
    );
    Ok(path)
}

#[tokio::test(flavor = "multi_thread")]
async fn in_chromium_a_canary_shows_its_marker_and_split_and_abort_returns_traffic_to_stable()
-> anyhow::Result<()> {
    let browser = chromium()?;
    let modules = playwright_modules()?;
    let screenshots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    let _ = std::fs::remove_dir_all(&screenshots);
    eprintln!("dashboard screenshots: {}", screenshots.display());

    let app = slow_canary("shop")?;
    let (daemon, _token_dir) = admin_daemon().await?;
    let outcome = async {
        let (admin, load) = first_version_under_load(&daemon, &app).await?;
        // A flag at 25%, off: the page shows it and switches it on.
        let flag = call(
            admin,
            Method::PUT,
            "/api/flags/new_checkout",
            &[
                ("authorization", &bearer()),
                ("content-type", "application/json"),
            ],
            r#"{"user": "", "settings": {"rollout_percent": 25}}"#,
        )
        .await?;
        ensure!(flag.status.is_success(), "{flag:?}");
        let off = call(
            admin,
            Method::POST,
            "/api/flags/new_checkout/off",
            &[
                ("authorization", &bearer()),
                ("content-type", "application/json"),
            ],
            r#"{"user": ""}"#,
        )
        .await?;
        ensure!(off.status.is_success(), "{off:?}");

        let mut script = GroupChild::spawn(
            Command::new("node")
                .arg(repo().join("tests/dashboard/dashboard.mjs"))
                .env("BATON_ADMIN_URL", format!("http://{admin}"))
                .env("BATON_ADMIN_TOKEN", ADMIN_TOKEN)
                .env("BATON_APP", app.name())
                .env("BATON_SCREENSHOTS", &screenshots)
                .env("BATON_PLAYWRIGHT", &modules)
                .env("BATON_CHROMIUM", &browser)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit()),
        )
        .context("could not start node (apt-get install nodejs)")?;
        let mut stdin = script.child().stdin.take().context("no stdin")?;
        let stdout = script.child().stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let deadline = tokio::time::Instant::now() + BROWSER_DEADLINE;
        let mut next_line = async || -> anyhow::Result<String> {
            let line = tokio::time::timeout_at(deadline, lines.next_line())
                .await
                .context("the browser script took too long")??;
            line.context("the browser script ended early")
        };

        let mut line = next_line().await?;
        if line != "READY" {
            bail!("the browser script did not get ready: {line}");
        }
        app.set_version("v2")?;
        let deploy = spawn_baton(&daemon, &deploy_app_args(&app));
        stdin.write_all(b"deploy started\n").await?;
        line = next_line().await?;
        let result = if line == "ABORTED" {
            next_line().await?
        } else {
            line
        };
        let status = tokio::time::timeout_at(deadline, script.child().wait())
            .await
            .context("the browser script did not exit")??;
        ensure!(
            status.success() && result.starts_with("RESULT ") && !result.contains("\"error\""),
            "the browser script failed ({status}): {result}\nscreenshots in {}",
            screenshots.display()
        );
        let seen: serde_json::Value = serde_json::from_str(&result["RESULT ".len()..])?;
        ensure!(
            seen["outside"].as_array().is_some_and(Vec::is_empty),
            "{seen}"
        );
        ensure!(
            seen["evidence"]
                .as_array()
                .is_some_and(|lines| !lines.is_empty()),
            "no rollout evidence shown: {seen}"
        );
        let flags = call(
            admin,
            Method::GET,
            "/api/flags/new_checkout",
            &[("authorization", &bearer())],
            "",
        )
        .await?;
        let flag: serde_json::Value = serde_json::from_slice(&flags.body)?;
        ensure!(
            flag["enabled"] == true,
            "the page did not switch the flag on: {flag}"
        );
        let shots = seen["screenshots"].as_array().map_or(0, Vec::len);
        ensure!(shots >= 8, "{shots} screenshots: {seen}");

        // The daemon agrees: the deploy ended aborted, v1 takes everything.
        let aborted = join(deploy, Duration::from_secs(60), "the aborted deploy").await??;
        ensure!(!aborted.status.success(), "the aborted deploy succeeded");
        ensure!(serving(&daemon).await? == "v1");
        wait_until(SOON, "the API to show v1 alone at 100%", || async {
            stable_alone(admin, app.name()).await.unwrap_or(false)
        })
        .await?;
        let tally = load.stop().await?;
        tally.assert_no_failures()?;
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

/// Whether the dashboard's data has `app` with no rollout and its stable
/// version alone taking all the traffic.
async fn stable_alone(admin: SocketAddr, app: &str) -> anyhow::Result<bool> {
    let reply = call(
        admin,
        Method::GET,
        "/api/dashboard",
        &[("authorization", &bearer())],
        "",
    )
    .await?;
    let snapshot: serde_json::Value = serde_json::from_slice(&reply.body)?;
    let status = snapshot["apps"]
        .as_array()
        .and_then(|apps| apps.iter().find(|view| view["status"]["app"] == app))
        .map(|view| view["status"].clone())
        .context("the app is missing")?;
    let routed: Vec<&serde_json::Value> = status["versions"]
        .as_array()
        .context("no versions")?
        .iter()
        .filter(|version| version["role"] != "draining")
        .collect();
    Ok(status["rollout"].is_null()
        && routed.len() == 1
        && routed[0]["role"] == "stable"
        && routed[0]["weight_percent"] == 100.0)
}
