//! The runner against a real PostgreSQL: a throwaway cluster per test
//! (testkit's), locks held by a long transaction, a unique violation in
//! the middle of a concurrent index build, an edited file, two runners at
//! once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, ensure};
use baton_migrate::{MigrationFile, Phase, Progress, RunError, RunSettings, Runner};
use baton_testkit::{Postgres, wait_until};
use tokio::time::Instant;
use tokio_postgres::{Client, NoTls};

/// Every progress line of a run, kept for the assertions.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Progress>>>);

impl Seen {
    fn sink(&self) -> impl Fn(&Progress) + Send + Sync + 'static {
        let seen = self.clone();
        move |progress| seen.lock().push(progress.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Progress>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn any(&self, check: impl Fn(&Progress) -> bool) -> bool {
        self.lock().iter().any(check)
    }

    fn lines(&self) -> String {
        self.lock()
            .iter()
            .map(|progress| format!("{progress}\n"))
            .collect()
    }
}

fn files(list: &[(&str, &str)]) -> anyhow::Result<Vec<MigrationFile>> {
    Ok(list
        .iter()
        .map(|(name, text)| MigrationFile::from_text(name, (*text).to_owned()))
        .collect::<Result<_, _>>()?)
}

/// A plain connection standing for the app (or for a person at psql).
async fn connect(url: &str) -> anyhow::Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

async fn run(
    url: &str,
    settings: RunSettings,
    files: &[MigrationFile],
    phase: Phase,
    seen: &Seen,
) -> Result<baton_migrate::RunReport, RunError> {
    let runner = Runner::connect(url, settings).await?;
    runner.run(files, phase, &seen.sink()).await
}

async fn applied_names(postgres: &Postgres) -> anyhow::Result<String> {
    postgres
        .psql(
            "postgres",
            "SELECT coalesce(string_agg(name, ',' ORDER BY name), '') FROM baton_migrations",
        )
        .await
}

#[tokio::test]
async fn an_expand_alter_retries_behind_a_long_transaction_while_the_apps_reads_never_wait_longer_than_lock_timeout()
-> anyhow::Result<()> {
    let postgres = Postgres::start().await?;
    let url = postgres.url();
    postgres
        .psql(
            "postgres",
            "CREATE TABLE items (id bigint PRIMARY KEY, name text); \
             INSERT INTO items SELECT n, 'item ' || n FROM generate_series(1, 100) n",
        )
        .await?;
    // A long transaction that has read the table holds ACCESS SHARE on it
    // until it ends: ALTER TABLE's ACCESS EXCLUSIVE must wait for it.
    let holder = connect(&url).await?;
    holder
        .batch_execute("BEGIN; SELECT count(*) FROM items")
        .await?;

    let lock_timeout = Duration::from_millis(300);
    let settings = RunSettings {
        lock_timeout,
        ..RunSettings::default()
    };
    let migrations = files(&[("001_note.sql", "ALTER TABLE items ADD COLUMN note text;\n")])?;
    let seen = Seen::default();
    let runner = {
        let (url, seen) = (url.clone(), seen.clone());
        tokio::spawn(async move { run(&url, settings, &migrations, Phase::Expand, &seen).await })
    };

    // The app reads all along, on a connection of its own.
    let app = connect(&url).await?;
    let mut slowest = Duration::ZERO;
    let mut reads = 0;
    let hold_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < hold_until {
        let started = Instant::now();
        app.query_one("SELECT count(*) FROM items", &[]).await?;
        slowest = slowest.max(started.elapsed());
        reads += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ensure!(
        seen.any(|p| matches!(p, Progress::Retrying { .. })),
        "the ALTER never timed out waiting for its lock:\n{}",
        seen.lines()
    );
    holder.batch_execute("COMMIT").await?;

    let report = tokio::time::timeout(Duration::from_secs(60), runner)
        .await
        .context("the runner did not finish after the lock was released")???;
    assert_eq!(report.applied.len(), 1, "{}", seen.lines());
    assert!(report.applied[0].retries >= 1, "{report:?}");
    let retry = seen
        .lock()
        .iter()
        .find_map(|p| match p {
            Progress::Retrying { line, reason, .. } => Some((*line, reason.clone())),
            _ => None,
        })
        .context("no retry")?;
    assert_eq!(retry.0, 1);
    assert!(retry.1.contains("lock timeout"), "{}", retry.1);
    // Every read waited at most about lock_timeout behind the queued
    // ALTER; without it, a read would wait the 3 s the transaction lasted.
    assert!(
        slowest < lock_timeout + Duration::from_millis(1200),
        "a read waited {slowest:?} ({reads} reads)"
    );
    let column = postgres
        .psql(
            "postgres",
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'note'",
        )
        .await?;
    assert_eq!(column, "1");
    assert_eq!(applied_names(&postgres).await?, "001_note.sql");
    Ok(())
}

#[tokio::test]
async fn a_failing_create_index_concurrently_leaves_no_invalid_index_behind_and_says_why()
-> anyhow::Result<()> {
    let postgres = Postgres::start().await?;
    postgres
        .psql(
            "postgres",
            "CREATE TABLE users (id bigint PRIMARY KEY, email text); \
             INSERT INTO users VALUES (1, 'a@example.com'), (2, 'a@example.com'), (3, 'b@example.com')",
        )
        .await?;
    let migrations = files(&[(
        "001_email.sql",
        "ALTER TABLE users ADD COLUMN IF NOT EXISTS locale text;\n\
         CREATE UNIQUE INDEX CONCURRENTLY users_email ON users (email);\n\
         CREATE UNIQUE INDEX CONCURRENTLY ON users (email, id);\n",
    )])?;
    let seen = Seen::default();
    let error = run(
        &postgres.url(),
        RunSettings::default(),
        &migrations,
        Phase::Expand,
        &seen,
    )
    .await
    .expect_err("a duplicate email must fail the unique index");
    let message = error.to_string();
    assert!(
        matches!(&error, RunError::Failed { file, line: 2, .. } if file == "001_email.sql"),
        "{message}"
    );
    assert!(
        message.contains("could not create unique index \"users_email\""),
        "{message}"
    );
    assert!(
        message.contains("Key (email)=(a@example.com) is duplicated"),
        "{message}"
    );
    assert!(
        message.contains("the INVALID index it left (public.users_email) was dropped"),
        "{message}"
    );
    assert!(
        message.contains("the statements before line 2 were applied"),
        "{message}"
    );
    assert!(
        seen.any(|p| matches!(p, Progress::DroppedInvalidIndex { index, .. } if index == "public.users_email")),
        "{}",
        seen.lines()
    );
    let invalid = postgres
        .psql(
            "postgres",
            "SELECT count(*) FROM pg_index WHERE NOT indisvalid",
        )
        .await?;
    assert_eq!(invalid, "0", "an INVALID index was left behind");
    assert_eq!(applied_names(&postgres).await?, "");

    // Once the data is fixed the same file runs from the top: its first
    // statement is safe to repeat.
    postgres
        .psql(
            "postgres",
            "UPDATE users SET email = 'c@example.com' WHERE id = 2",
        )
        .await?;
    let report = run(
        &postgres.url(),
        RunSettings::default(),
        &migrations,
        Phase::Expand,
        &Seen::default(),
    )
    .await?;
    assert_eq!(report.applied.len(), 1);
    let valid = postgres
        .psql(
            "postgres",
            "SELECT count(*) FROM pg_index WHERE indrelid = 'users'::regclass AND indisvalid AND indisunique",
        )
        .await?;
    assert_eq!(valid, "3", "the primary key and the two unique indexes");
    Ok(())
}

#[tokio::test]
async fn a_changed_checksum_is_refused_naming_the_file_and_nothing_else_runs() -> anyhow::Result<()>
{
    let postgres = Postgres::start().await?;
    let first = files(&[("001_t.sql", "CREATE TABLE t (id bigint);\n")])?;
    run(
        &postgres.url(),
        RunSettings::default(),
        &first,
        Phase::Expand,
        &Seen::default(),
    )
    .await?;
    let edited = files(&[
        ("001_t.sql", "CREATE TABLE t (id bigint, extra text);\n"),
        ("002_u.sql", "CREATE TABLE u (id bigint);\n"),
    ])?;
    let error = run(
        &postgres.url(),
        RunSettings::default(),
        &edited,
        Phase::Expand,
        &Seen::default(),
    )
    .await
    .expect_err("an edited applied file must be refused");
    assert!(
        matches!(&error, RunError::ChecksumChanged { file, .. } if file == "001_t.sql"),
        "{error}"
    );
    assert_eq!(applied_names(&postgres).await?, "001_t.sql");
    let u = postgres
        .psql("postgres", "SELECT to_regclass('u') IS NULL")
        .await?;
    assert_eq!(u, "t", "002 ran although 001 had changed");

    let runner = Runner::connect(&postgres.url(), RunSettings::default()).await?;
    let status = runner.status(&edited).await?;
    let summary: Vec<(&str, &str, &str)> = status
        .iter()
        .map(|s| (s.name.as_str(), s.state, s.checksum))
        .collect();
    assert_eq!(
        summary,
        [
            ("001_t.sql", "applied", "changed"),
            ("002_u.sql", "pending", "pending")
        ]
    );
    Ok(())
}

#[tokio::test]
async fn two_runners_at_once_the_second_waits_then_finds_nothing_to_do() -> anyhow::Result<()> {
    let postgres = Postgres::start().await?;
    let url = postgres.url();
    let migrations = files(&[(
        "001_slow.sql",
        "SELECT pg_sleep(1.5);\nCREATE TABLE slow (id bigint);\n",
    )])?;
    let first_seen = Seen::default();
    let first = {
        let (url, seen, migrations) = (url.clone(), first_seen.clone(), migrations.clone());
        tokio::spawn(async move {
            run(
                &url,
                RunSettings::default(),
                &migrations,
                Phase::Expand,
                &seen,
            )
            .await
        })
    };
    wait_until(Duration::from_secs(10), "the first runner to start", || {
        let seen = first_seen.clone();
        async move { seen.any(|p| matches!(p, Progress::Started { .. })) }
    })
    .await?;
    let second_seen = Seen::default();
    let second = run(
        &url,
        RunSettings::default(),
        &migrations,
        Phase::Expand,
        &second_seen,
    )
    .await?;
    let first = first.await??;
    assert_eq!(first.applied.len(), 1);
    assert!(second.applied.is_empty(), "{second:?}");
    let lines = second_seen.lock().clone();
    assert!(
        matches!(lines.first(), Some(Progress::Waiting { holder: Some(_) })),
        "{}",
        second_seen.lines()
    );
    assert!(
        matches!(
            lines.last(),
            Some(Progress::NothingToDo {
                phase: Phase::Expand
            })
        ),
        "{}",
        second_seen.lines()
    );
    assert_eq!(applied_names(&postgres).await?, "001_slow.sql");
    Ok(())
}

#[tokio::test]
async fn phases_run_apart_and_a_statement_timeout_is_not_retried() -> anyhow::Result<()> {
    let postgres = Postgres::start().await?;
    let url = postgres.url();
    let migrations = files(&[
        (
            "001_add.sql",
            "CREATE TABLE people (id bigint PRIMARY KEY, fax text);\nALTER TABLE people ADD COLUMN phone text;\n",
        ),
        (
            "002_drop.sql",
            "-- baton:phase contract\nALTER TABLE people DROP COLUMN fax;\n",
        ),
    ])?;
    let seen = Seen::default();
    let expand = run(
        &url,
        RunSettings::default(),
        &migrations,
        Phase::Expand,
        &seen,
    )
    .await?;
    assert_eq!(
        expand.summary().split(':').next(),
        Some("applied 1 expand migration")
    );
    assert!(
        seen.any(|p| matches!(p, Progress::Deferred { file, phase: Phase::Contract } if file == "002_drop.sql")),
        "{}",
        seen.lines()
    );
    assert_eq!(applied_names(&postgres).await?, "001_add.sql");
    let contract = run(
        &url,
        RunSettings::default(),
        &migrations,
        Phase::Contract,
        &seen,
    )
    .await?;
    assert_eq!(contract.applied[0].file, "002_drop.sql");
    let phases = postgres
        .psql(
            "postgres",
            "SELECT string_agg(name || '=' || phase, ',' ORDER BY name) FROM baton_migrations WHERE duration_ms >= 0 AND applied_at <= now()",
        )
        .await?;
    assert_eq!(phases, "001_add.sql=expand,002_drop.sql=contract");

    let slow = files(&[("003_slow.sql", "SELECT pg_sleep(5);\n")])?;
    let settings = RunSettings {
        statement_timeout: Duration::from_millis(200),
        ..RunSettings::default()
    };
    let seen = Seen::default();
    let error = run(&url, settings, &slow, Phase::Expand, &seen)
        .await
        .expect_err("the statement outlives statement_timeout");
    let message = error.to_string();
    assert!(message.contains("statement timeout"), "{message}");
    assert!(message.contains("rolled back"), "{message}");
    assert!(!seen.any(|p| matches!(p, Progress::Retrying { .. })));
    Ok(())
}
