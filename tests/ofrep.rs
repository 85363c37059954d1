//! End-to-end OFREP and flag injection against a real daemon: the
//! evaluation endpoints answer with the spec's bodies, codes and reasons;
//! the bulk answer carries an ETag that a matching If-None-Match turns into
//! a 304 until the flags change; the change stream sends an event for every
//! revision; the read-only flags token evaluates and changes nothing, and
//! no token or a wrong one gets 401 and changes nothing; a user's answers
//! are the same after a restart; the proxy hands the demo app the flags of
//! each request and drops a client's forged header; and once
//! `baton flags off` returns, no request through the proxy sees the flag on.

mod support;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, ensure};
use baton_api::FlagList;
use baton_testkit::{App, AppSource, Daemon};
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Empty, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::Instant;

use support::{
    Reply, SOON, TempDir, deploy, deploy_app, exchange, explain, header_text, parse_metrics,
    restart, send, value, values,
};

const ADMIN: &str = "the-admin-token-of-this-test";
const READER: &str = "the-read-only-flags-token";

/// The flags most tests start from: a user list, variants with a JSON
/// payload, a switched-off flag and a 50% rollout on the user.
const FLAGS: &str = r#"{"version": 2, "features": [
    {"name": "new_editor", "enabled": true, "strategies": [
        {"name": "userWithId", "parameters": {"userIds": "alice"}}]},
    {"name": "checkout", "enabled": true, "strategies": [{"name": "default"}],
     "variants": [{"name": "variant_b", "weight": 1000,
                   "payload": {"type": "json", "value": "{\"color\": \"red\"}"}}]},
    {"name": "dark", "enabled": false},
    {"name": "half", "enabled": true, "strategies": [
        {"name": "flexibleRollout", "parameters": {"rollout": "50", "stickiness": "userId"}}]}
]}"#;

/// Token files in a directory of their own (kept alive by the caller).
fn token_files() -> anyhow::Result<(TempDir, Vec<String>)> {
    let dir = TempDir::new("ofrep-tokens")?;
    let mut args = Vec::new();
    for (flag, token) in [
        ("--admin-token-file", ADMIN),
        ("--flags-token-file", READER),
    ] {
        let path = dir.path.join(flag.trim_start_matches('-'));
        std::fs::write(&path, token)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        args.extend([flag.to_string(), path.display().to_string()]);
    }
    args.extend(["--admin".to_string(), "127.0.0.1:0".to_string()]);
    Ok((dir, args))
}

/// A daemon with an admin listener, both tokens, and [`FLAGS`] imported.
async fn flag_daemon() -> anyhow::Result<(Daemon, TempDir, Vec<String>)> {
    let (dir, args) = token_files()?;
    let daemon = Daemon::builder().args(args.clone()).start().await?;
    let file = dir.path.join("flags.json");
    std::fs::write(&file, FLAGS)?;
    daemon
        .baton(&["flags", "import", &file.display().to_string()])
        .await?
        .success()?;
    Ok((daemon, dir, args))
}

async fn admin_address(daemon: &Daemon) -> anyhow::Result<SocketAddr> {
    let info = daemon.client().daemon_info().await?;
    let listener = info
        .listeners
        .iter()
        .find(|listener| listener.protocol == "admin")
        .context("no admin listener")?;
    Ok(listener.address.parse()?)
}

/// `METHOD path` on the admin listener with `token` and `body`, and extra
/// `headers`.
async fn call(
    address: SocketAddr,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<Reply> {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, address.to_string())
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    exchange(
        address,
        request.body(Full::new(Bytes::from(body.to_string())))?,
    )
    .await
}

/// `POST /ofrep/v1/evaluate/flags[/key]` with the read-only token.
async fn evaluate(address: SocketAddr, key: Option<&str>, body: &str) -> anyhow::Result<Reply> {
    let path = match key {
        Some(key) => format!("/ofrep/v1/evaluate/flags/{key}"),
        None => "/ofrep/v1/evaluate/flags".to_string(),
    };
    call(address, Method::POST, &path, Some(READER), body, &[]).await
}

/// The bulk evaluation for user `id`, sent with `If-None-Match: etag`.
async fn bulk_if_none_match(admin: SocketAddr, id: &str, etag: &str) -> anyhow::Result<Reply> {
    let path = "/ofrep/v1/evaluate/flags";
    let headers = [("if-none-match", etag)];
    call(admin, Method::POST, path, Some(READER), &user(id), &headers).await
}

fn body(reply: &Reply) -> anyhow::Result<Value> {
    serde_json::from_slice(&reply.body).with_context(|| format!("not JSON: {reply:?}"))
}

fn user(id: &str) -> String {
    json!({"context": {"targetingKey": id}}).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn evaluation_answers_as_the_ofrep_spec_says() -> anyhow::Result<()> {
    let (daemon, _tokens, _) = flag_daemon().await?;
    let outcome = async {
        let admin = admin_address(&daemon).await?;
        let alice = evaluate(admin, Some("new_editor"), &user("alice")).await?;
        ensure!(alice.status == StatusCode::OK, "{alice:?}");
        ensure!(
            body(&alice)?
                == json!({"key": "new_editor", "value": true, "variant": "on", "reason": "TARGETING_MATCH"}),
            "{alice:?}"
        );
        let bob = body(&evaluate(admin, Some("new_editor"), &user("bob")).await?)?;
        ensure!(bob["value"] == false && bob["reason"] == "TARGETING_MATCH", "{bob}");
        let checkout = body(&evaluate(admin, Some("checkout"), &user("bob")).await?)?;
        ensure!(
            checkout == json!({"key": "checkout", "value": {"color": "red"}, "variant": "variant_b", "reason": "STATIC"}),
            "{checkout}"
        );
        let dark = body(&evaluate(admin, Some("dark"), &user("bob")).await?)?;
        ensure!(dark["value"] == false && dark["reason"] == "DISABLED", "{dark}");
        let half = body(&evaluate(admin, Some("half"), &user("bob")).await?)?;
        ensure!(half["reason"] == "SPLIT", "{half}");

        let missing = evaluate(admin, Some("nope"), &user("bob")).await?;
        ensure!(missing.status == StatusCode::NOT_FOUND, "{missing:?}");
        let missing = body(&missing)?;
        ensure!(
            missing["key"] == "nope" && missing["errorCode"] == "FLAG_NOT_FOUND",
            "{missing}"
        );
        ensure!(missing["errorDetails"].is_string(), "{missing}");

        for (sent, code) in [
            (r#"{"context": {}}"#, "TARGETING_KEY_MISSING"),
            ("{not json", "PARSE_ERROR"),
            (r#"{"ctx": {}}"#, "INVALID_CONTEXT"),
            (
                r#"{"context": {"targetingKey": "a", "user": {"id": 1}}}"#,
                "INVALID_CONTEXT",
            ),
            (
                r#"{"context": {"targetingKey": "a", "currentTime": "noon"}}"#,
                "INVALID_CONTEXT",
            ),
        ] {
            let one = evaluate(admin, Some("new_editor"), sent).await?;
            ensure!(one.status == StatusCode::BAD_REQUEST, "{sent}: {one:?}");
            let one = body(&one)?;
            ensure!(
                one["key"] == "new_editor" && one["errorCode"] == code,
                "{sent}: {one}"
            );
            ensure!(one["errorDetails"].is_string(), "{one}");
            let all = evaluate(admin, None, sent).await?;
            ensure!(all.status == StatusCode::BAD_REQUEST, "{sent}: {all:?}");
            let all = body(&all)?;
            ensure!(all["errorCode"] == code && all.get("key").is_none(), "{sent}: {all}");
        }

        // The bulk answer: every flag, an ETag, and the change stream.
        let bulk = evaluate(admin, None, &user("alice")).await?;
        ensure!(bulk.status == StatusCode::OK, "{bulk:?}");
        let etag = header_text(&bulk.headers, "etag").to_string();
        ensure!(etag.starts_with('"') && etag.ends_with('"'), "{etag:?}");
        let answers = body(&bulk)?;
        let keys: Vec<&str> = answers["flags"]
            .as_array()
            .context("no flags")?
            .iter()
            .filter_map(|flag| flag["key"].as_str())
            .collect();
        ensure!(keys == ["new_editor", "checkout", "dark", "half"], "{answers}");
        ensure!(answers["flags"][0]["value"] == true, "{answers}");
        let stream = &answers["eventStreams"][0];
        ensure!(stream["type"] == "sse", "{answers}");
        ensure!(stream["endpoint"]["requestUri"] == "/ofrep/v1/events", "{answers}");

        let cached = bulk_if_none_match(admin, "alice", &etag).await?;
        ensure!(cached.status == StatusCode::NOT_MODIFIED, "{cached:?}");
        ensure!(cached.body.is_empty(), "{cached:?}");
        // Another user's answers differ: the ETag covers the context.
        let bob = bulk_if_none_match(admin, "bob", &etag).await?;
        ensure!(bob.status == StatusCode::OK, "{bob:?}");

        daemon
            .baton(&["flags", "off", "new_editor"])
            .await?
            .success()?;
        let changed = bulk_if_none_match(admin, "alice", &etag).await?;
        ensure!(changed.status == StatusCode::OK, "{changed:?}");
        ensure!(header_text(&changed.headers, "etag") != etag, "{changed:?}");
        let answers = body(&changed)?;
        ensure!(
            answers["flags"][0]["value"] == false && answers["flags"][0]["reason"] == "DISABLED",
            "{answers}"
        );
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

/// Reads the change stream until `wanted` appears in it (within [`SOON`]).
async fn read_until(
    body: &mut hyper::body::Incoming,
    seen: &mut String,
    wanted: &str,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + SOON;
    while !seen.contains(wanted) {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .with_context(|| format!("no {wanted:?} in the stream within {SOON:?}:\n{seen}"))?
            .context("the stream ended")??;
        if let Some(data) = frame.data_ref() {
            seen.push_str(&String::from_utf8_lossy(data));
        }
    }
    Ok(())
}

async fn open_stream(
    admin: SocketAddr,
    last_event_id: Option<&str>,
) -> anyhow::Result<hyper::body::Incoming> {
    let mut request = Request::get("/ofrep/v1/events")
        .header(header::HOST, admin.to_string())
        .header(header::AUTHORIZATION, format!("Bearer {READER}"));
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = send(admin, request.body(Empty::<Bytes>::new())?).await?;
    ensure!(
        response.status() == StatusCode::OK,
        "{:?}",
        response.status()
    );
    let kind = header_text(response.headers(), "content-type").to_string();
    ensure!(kind.starts_with("text/event-stream"), "{kind}");
    Ok(response.into_body())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_change_stream_announces_every_revision() -> anyhow::Result<()> {
    let (daemon, _tokens, _) = flag_daemon().await?;
    let outcome = async {
        let admin = admin_address(&daemon).await?;
        let revision = daemon.client().flags().await?.revision;
        let mut stream = open_stream(admin, None).await?;
        let mut seen = String::new();
        daemon.baton(&["flags", "off", "half"]).await?.success()?;
        let next = revision + 1;
        read_until(&mut stream, &mut seen, &format!("id: {next}\n")).await?;
        read_until(&mut stream, &mut seen, "\n\n").await?;
        ensure!(seen.contains("event: message"), "{seen}");
        let data = seen
            .lines()
            .find_map(|line| line.strip_prefix("data: "))
            .context("no data line")?;
        let data: Value = serde_json::from_str(data)?;
        ensure!(data["type"] == "refetchEvaluation", "{data}");
        ensure!(data["etag"] == format!("\"{next}\""), "{data}");
        ensure!(
            data["lastModified"].as_u64().is_some_and(|at| at > 0),
            "{data}"
        );

        daemon.baton(&["flags", "on", "half"]).await?.success()?;
        read_until(&mut stream, &mut seen, &format!("id: {}\n", next + 1)).await?;

        // A client that was away hears of what it missed at once.
        let mut late = open_stream(admin, Some(&revision.to_string())).await?;
        let mut caught_up = String::new();
        read_until(&mut late, &mut caught_up, &format!("id: {}\n", next + 1)).await?;
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_decide_who_may_evaluate_and_who_may_change() -> anyhow::Result<()> {
    let (daemon, _tokens, _) = flag_daemon().await?;
    let outcome = async {
        let admin = admin_address(&daemon).await?;
        let before: FlagList = daemon.client().flags().await?;
        let actor = r#"{"user": "intruder"}"#;
        for (method, path, token, body) in [
            (Method::POST, "/ofrep/v1/evaluate/flags", None, user("a")),
            (
                Method::POST,
                "/ofrep/v1/evaluate/flags/dark",
                Some("wrong"),
                user("a"),
            ),
            (
                Method::GET,
                "/ofrep/v1/events",
                Some("Bearer-less"),
                String::new(),
            ),
            (
                Method::POST,
                "/api/flags/new_editor/off",
                Some(READER),
                actor.to_string(),
            ),
            (Method::POST, "/api/flags/dark/on", None, actor.to_string()),
            (
                Method::DELETE,
                "/api/flags/dark",
                Some("wrong"),
                actor.to_string(),
            ),
            (
                Method::PUT,
                "/api/flagset/import",
                Some(READER),
                json!({"user": "x", "document": "{\"features\": []}"}).to_string(),
            ),
            (Method::GET, "/api/flags", Some(READER), String::new()),
        ] {
            let reply = call(admin, method.clone(), path, token, &body, &[]).await?;
            ensure!(
                reply.status == StatusCode::UNAUTHORIZED,
                "{method} {path} with {token:?}: {reply:?}"
            );
            ensure!(
                header_text(&reply.headers, "www-authenticate").starts_with("Bearer"),
                "{reply:?}"
            );
        }
        let after: FlagList = daemon.client().flags().await?;
        ensure!(after == before, "{before:?}\nbecame\n{after:?}");

        // The admin token changes flags, recorded as the admin listener's.
        let off = call(
            admin,
            Method::POST,
            "/api/flags/half/off",
            Some(ADMIN),
            actor,
            &[],
        )
        .await?;
        ensure!(off.status == StatusCode::OK, "{off:?}");
        let history = daemon.client().flag_history(Some("half"), 1).await?;
        ensure!(
            history[0].who == "admin-api" && history[0].action == "off",
            "{history:?}"
        );
        let evaluated = call(
            admin,
            Method::POST,
            "/ofrep/v1/evaluate/flags/half",
            Some(ADMIN),
            &user("a"),
            &[],
        )
        .await?;
        ensure!(body(&evaluated)?["reason"] == "DISABLED", "{evaluated:?}");
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_users_answers_are_the_same_after_a_restart() -> anyhow::Result<()> {
    let (daemon, _tokens, args) = flag_daemon().await?;
    let users: Vec<String> = (0..200).map(|id| format!("user-{id}")).collect();
    let answers = |admin: SocketAddr| {
        let users = users.clone();
        async move {
            let mut on = Vec::new();
            for id in &users {
                let answer = body(&evaluate(admin, Some("half"), &user(id)).await?)?;
                on.push(answer["value"].as_bool().context("no value")?);
            }
            anyhow::Ok(on)
        }
    };
    let before = match async { answers(admin_address(&daemon).await?).await }.await {
        Ok(before) => before,
        Err(error) => return explain(Err(error), &daemon),
    };
    let share = before.iter().filter(|on| **on).count();
    ensure!((70..=130).contains(&share), "{share} of 200 at 50%");
    let (again, state) = restart(daemon, &args).await?;
    let outcome = async {
        let after = answers(admin_address(&again).await?).await?;
        ensure!(after == before, "answers changed across the restart");
        Ok(())
    }
    .await;
    let result = explain(outcome, &again);
    drop(again);
    drop(state);
    result
}

/// `GET /headers` with `cookie`, on `sender`; the `X-Baton-Flags` values
/// the demo app got.
async fn flags_seen(
    sender: &mut http1::SendRequest<Empty<Bytes>>,
    host: &str,
    cookie: &str,
) -> anyhow::Result<Vec<String>> {
    sender.ready().await?;
    let request = Request::get("/headers")
        .header(header::HOST, host)
        .header(header::COOKIE, cookie)
        .header("x-baton-flags", "kill=on,forged=on")
        .body(Empty::<Bytes>::new())?;
    let response = tokio::time::timeout(SOON, sender.send_request(request)).await??;
    ensure!(
        response.status() == StatusCode::OK,
        "{:?}",
        response.status()
    );
    let body = tokio::time::timeout(SOON, response.into_body().collect())
        .await??
        .to_bytes();
    let echoed: Value = serde_json::from_slice(&body)?;
    Ok(echoed["x-baton-flags"]
        .as_array()
        .map(|values| {
            values
                .iter()
                .filter_map(|value| value.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

async fn connect(address: SocketAddr) -> anyhow::Result<http1::SendRequest<Empty<Bytes>>> {
    let stream = tokio::time::timeout(SOON, TcpStream::connect(address)).await??;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// An app whose requests get `X-Baton-Flags`, for the user in the
/// `user_id` cookie.
fn injecting_app(name: &str) -> anyhow::Result<AppSource> {
    AppSource::builder(name, "v1")
        .extra("[flags]\ninject = true\ntargeting_key = \"cookie:user_id\"\n")
        .build()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_proxy_injects_flags_and_the_kill_switch_holds_once_off_returns() -> anyhow::Result<()>
{
    let app = injecting_app("flagged")?;
    let (daemon, _tokens, _) = flag_daemon().await?;
    let plain = App::start("plain-v1").await?;
    let outcome = async {
        deploy_app(&daemon, &app).await?.success()?;
        deploy(&daemon, "plain", &plain, &["--host", "plain.test"]).await?;
        daemon
            .baton(&[
                "flags",
                "set",
                "kill",
                "--description",
                "the switch under test",
            ])
            .await?
            .success()?;
        let proxy = daemon.http_address();
        let mut sender = connect(proxy).await?;
        let alice = flags_seen(&mut sender, "app.test", "theme=dark; user_id=alice").await?;
        ensure!(
            alice == ["new_editor=on,checkout=variant_b,dark=off,half=off,kill=on"],
            "{alice:?}"
        );
        let bob = flags_seen(&mut sender, "app.test", "user_id=bob").await?;
        ensure!(
            bob.len() == 1 && bob[0].starts_with("new_editor=off,checkout=variant_b,"),
            "{bob:?}"
        );
        // Injection off: the client's header is dropped all the same.
        let untouched = flags_seen(&mut sender, "plain.test", "user_id=alice").await?;
        ensure!(untouched.is_empty(), "{untouched:?}");

        // The kill switch: a tight loop of requests; every one sent after
        // `flags off` returned must see the flag off.
        let stop = Arc::new(AtomicBool::new(false));
        let mut loops = Vec::new();
        for _ in 0..4 {
            let stop = Arc::clone(&stop);
            let mut sender = connect(proxy).await?;
            loops.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let flags = flags_seen(&mut sender, "app.test", "user_id=alice").await?;
                    let on = flags.iter().any(|value| value.contains("kill=on"));
                    seen.push((sent, on));
                }
                anyhow::Ok(seen)
            }));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        daemon.baton(&["flags", "off", "kill"]).await?.success()?;
        let returned = Instant::now();
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.store(true, Ordering::Relaxed);
        let mut before_on = 0;
        let mut after = 0;
        for task in loops {
            for (sent, on) in task.await?? {
                if sent >= returned {
                    ensure!(!on, "a request sent after `flags off` returned saw kill=on");
                    after += 1;
                } else if on {
                    before_on += 1;
                }
            }
        }
        ensure!(
            before_on > 0 && after > 0,
            "on before: {before_on}, after: {after}"
        );
        // And it stays off.
        let last = flags_seen(&mut connect(proxy).await?, "app.test", "user_id=alice").await?;
        ensure!(
            last.iter().any(|value| value.ends_with("kill=off")),
            "{last:?}"
        );
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

/// Every evaluation is counted in `/metrics` by flag, source and result,
/// exactly: OFREP single and bulk answers, and the proxy's injection; a
/// bulk answer the client still has (304) evaluated nothing.
#[tokio::test(flavor = "multi_thread")]
async fn every_evaluation_is_counted_by_flag_source_and_result() -> anyhow::Result<()> {
    let app = injecting_app("counted-flags")?;
    let (daemon, _tokens, _) = flag_daemon().await?;
    let outcome = async {
        deploy_app(&daemon, &app).await?.success()?;
        let admin = admin_address(&daemon).await?;
        for _ in 0..3 {
            let one = evaluate(admin, Some("new_editor"), &user("alice")).await?;
            ensure!(one.status == StatusCode::OK, "{one:?}");
        }
        let bulk = evaluate(admin, None, &user("alice")).await?;
        ensure!(bulk.status == StatusCode::OK, "{bulk:?}");
        let etag = header_text(&bulk.headers, "etag").to_string();
        let cached = bulk_if_none_match(admin, "alice", &etag).await?;
        ensure!(cached.status == StatusCode::NOT_MODIFIED, "{cached:?}");
        let mut sender = connect(daemon.http_address()).await?;
        for _ in 0..2 {
            let seen = flags_seen(&mut sender, "app.test", "user_id=alice").await?;
            ensure!(
                seen == ["new_editor=on,checkout=variant_b,dark=off,half=off"],
                "{seen:?}"
            );
        }
        let printed = daemon.baton(&["metrics"]).await?.success()?;
        let scrape = parse_metrics(&printed.stdout)?;
        let count = |flag: &str, source: &str, result: &str| {
            value(
                &scrape,
                "baton_flag_evaluations_total",
                &[("flag", flag), ("source", source), ("result", result)],
            )
        };
        ensure!(count("new_editor", "ofrep", "on")? == 4.0);
        ensure!(count("dark", "ofrep", "off")? == 1.0);
        ensure!(count("checkout", "ofrep", "on")? == 1.0);
        ensure!(count("new_editor", "proxy", "on")? == 2.0);
        ensure!(count("half", "proxy", "off")? == 2.0);
        // Alice never saw new_editor off: no such series.
        let none = values(
            &scrape,
            "baton_flag_evaluations_total",
            &[("flag", "new_editor"), ("result", "off")],
        )?;
        ensure!(none.is_empty(), "{none:?}");
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}
