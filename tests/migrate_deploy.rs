//! Deploys with schema migrations (`[migrate]`), end to end: the real
//! daemon deploys the demo app against a throwaway PostgreSQL cluster
//! (testkit's) while clients write through it.
//!
//! v1 writes the column `legacy` of `visits` on every `GET /visit`; v2
//! writes `extra`, which its expand migration adds, and drops `legacy` in
//! its contract migration. Had the expand phase run after v2 booted, or the
//! contract phase while a v1 process still served, requests would fail:
//! none may. The contract migration must also start only after every v1
//! process has exited (the demo app notes its exit time) and after the old
//! version was stopped in the deploy's own event order. A migration the
//! lint refuses stops the next deploy before anything is staged, unless
//! `--allow-unsafe-migrations` gives a reason, which history keeps.

mod support;

use anyhow::{Context, bail, ensure};
use baton_api::{DeployEvent, HistoryEntry, ProcessInfo};
use baton_testkit::{AppSource, CommandOutput, Daemon, Postgres};

use support::{Load, deploy_app_args, ensure_mentions, explain, serving, strs};

const VISITS: &str = "CREATE TABLE visits (\n    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n    legacy text\n);\n";
const ADD_EXTRA: &str = "ALTER TABLE visits ADD COLUMN extra text;\n";
const DROP_LEGACY: &str = "-- baton:phase contract\nALTER TABLE visits DROP COLUMN legacy;\n";
const UNSAFE_INDEX: &str = "CREATE INDEX visits_extra ON visits (extra);\n";

#[tokio::test(flavor = "multi_thread")]
async fn expand_runs_before_the_boot_and_contract_after_the_old_version_exits_with_no_failed_request()
-> anyhow::Result<()> {
    let postgres = Postgres::start().await?;
    let url = postgres.create_database("shop").await?;
    let markers = tempfile::tempdir()?;
    let exits = markers.path().join("exits");
    let app = AppSource::builder("shop", "v1")
        .web_line("processes = 2")
        .web_line(&format!(
            "env = {{ DB_WRITE_COLUMN = \"legacy\", EXIT_MARKER = \"{}\" }}",
            exits.display()
        ))
        .extra("[migrate]\nlock_timeout = \"1s\"\n")
        .build()?;
    // The URL comes from the app's shared/.env, as the app's own does.
    std::fs::create_dir_all(app.root().join("shared"))?;
    std::fs::write(
        app.root().join("shared/.env"),
        format!("DATABASE_URL={url}\n"),
    )?;
    app.write_file("migrations/001_visits.sql", VISITS)?;
    let daemon = Daemon::start().await?;
    let outcome = scenario(&daemon, &app, &postgres, &exits).await;
    if outcome.is_err() {
        eprintln!("--- postgres log ---\n{}", postgres.log());
    }
    explain(outcome, &daemon)
}

async fn scenario(
    daemon: &Daemon,
    app: &AppSource,
    postgres: &Postgres,
    exits: &std::path::Path,
) -> anyhow::Result<()> {
    let (_, first) = deploy(daemon, app, &[]).await?;
    ensure!(
        finished(&first, "migrate_expand")?.contains("applied 1 expand migration: 001_visits.sql"),
        "{first:#?}"
    );

    let load = Load::start(daemon.http_address(), 8, "/visit");
    load.wait_for_answers(200).await?;
    let old: Vec<u32> = processes(daemon)
        .await?
        .iter()
        .filter(|process| process.role == "web")
        .map(|process| process.pid)
        .collect();
    ensure!(old.len() == 2, "v1 runs {old:?}");

    let config = std::fs::read_to_string(app.config_path())?;
    app.write_config(&config.replace("\"legacy\"", "\"extra\""))?;
    app.write_file("migrations/002_extra.sql", ADD_EXTRA)?;
    app.write_file("migrations/003_drop_legacy.sql", DROP_LEGACY)?;
    app.set_version("v2")?;
    let (output, events) = deploy(daemon, app, &[]).await?;
    let before = load.tally.ok.load(std::sync::atomic::Ordering::Relaxed);
    load.wait_for_answers(before + 200).await?;
    let tally = load.stop().await?;
    tally.assert_no_failures()?;
    let versions = tally.versions();
    ensure!(
        versions.contains_key("v1") && versions.contains_key("v2"),
        "{versions:?}"
    );

    // The order of the stages, as the deploy streamed them.
    let order = stage_order(&events);
    for (earlier, later) in [
        ("finished preflight", "started stage"),
        ("finished migrate_expand", "started boot"),
        ("finished switch", "started stop_old"),
        ("finished stop_old", "started migrate_contract"),
    ] {
        let at = |what: &str| {
            order
                .iter()
                .position(|seen| seen == what)
                .with_context(|| format!("no {what:?} in {order:?}"))
        };
        ensure!(
            at(earlier)? < at(later)?,
            "{earlier} after {later}: {order:?}"
        );
    }
    ensure!(
        finished(&events, "migrate_expand")?.contains("applied 1 expand migration: 002_extra.sql"),
        "{}",
        output.stdout
    );
    ensure!(
        finished(&events, "migrate_contract")?
            .contains("applied 1 contract migration: 003_drop_legacy.sql"),
        "{}",
        output.stdout
    );
    let stopped = finished(&events, "stop_old")?;
    for pid in &old {
        ensure!(stopped.contains(&pid.to_string()), "{pid} not in {stopped}");
    }

    // Every v1 process had exited before the contract migration started.
    let contract_start: u64 = postgres
        .psql(
            "shop",
            "SELECT (extract(epoch FROM applied_at) * 1000)::bigint - duration_ms \
             FROM baton_migrations WHERE name = '003_drop_legacy.sql'",
        )
        .await?
        .parse()?;
    let noted = std::fs::read_to_string(exits)?;
    for pid in &old {
        let exited: u64 = noted
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                let (version, noted_pid, at) = (words.next()?, words.next()?, words.next()?);
                (version == "v1" && noted_pid == pid.to_string()).then(|| at.parse().ok())?
            })
            .next()
            .with_context(|| format!("v1 process {pid} noted no exit in {noted:?}"))?;
        ensure!(
            exited <= contract_start,
            "v1 process {pid} exited at {exited}, after the contract migration started at {contract_start}"
        );
    }
    let schema = postgres
        .psql(
            "shop",
            "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns WHERE table_name = 'visits'",
        )
        .await?;
    assert_eq!(schema, "extra,id");
    let written = postgres
        .psql("shop", "SELECT count(*) > 0 FROM visits WHERE extra = 'v2'")
        .await?;
    assert_eq!(written, "t");
    let phases = postgres
        .psql(
            "shop",
            "SELECT string_agg(name || ' ' || phase, ', ' ORDER BY name) FROM baton_migrations",
        )
        .await?;
    assert_eq!(
        phases,
        "001_visits.sql expand, 002_extra.sql expand, 003_drop_legacy.sql contract"
    );

    unsafe_migrations(daemon, app).await
}

/// An index built without CONCURRENTLY stops the deploy in its preflight,
/// before anything is staged; with a reason it deploys, and history
/// keeps the reason.
async fn unsafe_migrations(daemon: &Daemon, app: &AppSource) -> anyhow::Result<()> {
    let releases = app.release_dirs();
    app.write_file("migrations/004_index.sql", UNSAFE_INDEX)?;
    app.set_version("v3")?;
    let refused = daemon.baton(&strs(&deploy_app_args(app))).await?;
    ensure!(!refused.status.success(), "{}", refused.stdout);
    ensure_mentions(
        &format!("{}{}", refused.stdout, refused.stderr),
        &[
            "error[create-index-not-concurrently]",
            "error: failed at preflight: the migration lint found 1 error in migrations/:",
            "migrations/004_index.sql:1:1: error:",
            "--allow-unsafe-migrations",
        ],
    )?;
    assert_eq!(
        app.release_dirs(),
        releases,
        "the refused deploy staged a release"
    );
    assert_eq!(serving(daemon).await?, "v2");

    let reason = "visits is small in this test";
    let (_, events) = deploy(daemon, app, &["--allow-unsafe-migrations", reason]).await?;
    ensure!(
        finished(&events, "preflight")?.contains(&format!(
            "1 error, 0 warnings; deploying anyway, allowed with --allow-unsafe-migrations: {reason}"
        )),
        "{events:#?}"
    );
    assert_eq!(serving(daemon).await?, "v3");
    let output = daemon
        .baton(&["history", "--app", app.name(), "--json"])
        .await?
        .success()?;
    let history: Vec<HistoryEntry> = serde_json::from_str(&output.stdout)?;
    ensure!(
        history[0]
            .source
            .ends_with(&format!("(unsafe migrations allowed: {reason})")),
        "{:?}",
        history[0]
    );
    Ok(())
}

/// `baton deploy --config … --json EXTRA…`, which must succeed; its output
/// and events.
async fn deploy(
    daemon: &Daemon,
    app: &AppSource,
    extra: &[&str],
) -> anyhow::Result<(CommandOutput, Vec<DeployEvent>)> {
    let mut args = deploy_app_args(app);
    args.push("--json".to_string());
    args.extend(extra.iter().map(|arg| arg.to_string()));
    let output = daemon.baton(&strs(&args)).await?;
    let events: Vec<DeployEvent> = output
        .stdout
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .with_context(|| format!("not deploy events: {}", output.stdout))?;
    match events.last() {
        Some(DeployEvent::Succeeded { .. }) => Ok((output, events)),
        other => bail!(
            "the deploy ended with {other:?}\nstdout: {}\nstderr: {}",
            output.stdout,
            output.stderr
        ),
    }
}

/// `started STAGE` and `finished STAGE`, in the order streamed.
fn stage_order(events: &[DeployEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| match event {
            DeployEvent::StageStarted { stage, .. } => Some(format!("started {stage}")),
            DeployEvent::StageFinished { stage, .. } => Some(format!("finished {stage}")),
            _ => None,
        })
        .collect()
}

/// The detail `stage` finished with.
fn finished(events: &[DeployEvent], stage: &str) -> anyhow::Result<String> {
    events
        .iter()
        .find_map(|event| match event {
            DeployEvent::StageFinished {
                stage: name,
                detail,
                ..
            } if name == stage => Some(detail.clone()),
            _ => None,
        })
        .with_context(|| format!("no finished {stage} in {events:#?}"))
}

async fn processes(daemon: &Daemon) -> anyhow::Result<Vec<ProcessInfo>> {
    let output = daemon
        .baton(&["ps", "--app", "shop", "--json"])
        .await?
        .success()?;
    Ok(serde_json::from_str(&output.stdout)?)
}
