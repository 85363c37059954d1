//! `baton migrate run` and `baton migrate status` end to end: the real
//! binary against a throwaway PostgreSQL cluster (testkit's), with its
//! output and exit status. Needs no daemon.

use std::path::Path;
use std::process::Output;

use anyhow::ensure;
use baton_testkit::{Postgres, binary};

/// A project directory: `migrations/` and, when asked, a `baton.toml`.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new(files: &[(&str, &str)]) -> anyhow::Result<Project> {
        let project = Project {
            dir: tempfile::tempdir()?,
        };
        std::fs::create_dir(project.root().join("migrations"))?;
        for (name, sql) in files {
            project.write(name, sql)?;
        }
        Ok(project)
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, name: &str, sql: &str) -> anyhow::Result<()> {
        Ok(std::fs::write(
            self.root().join("migrations").join(name),
            sql,
        )?)
    }

    /// Runs `baton migrate ARGS…` in the project, without DATABASE_URL
    /// from the test's own environment.
    fn migrate(&self, args: &[&str]) -> anyhow::Result<Output> {
        Ok(std::process::Command::new(binary("baton"))
            .arg("migrate")
            .args(args)
            .current_dir(self.root())
            .env_remove("DATABASE_URL")
            .output()?)
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY, fax text);\n";
const PHONE: &str = "ALTER TABLE users ADD COLUMN phone text;\n";
const DROP_FAX: &str = "-- baton:phase contract\nALTER TABLE users DROP COLUMN fax;\n";

#[tokio::test]
async fn run_applies_a_phase_and_status_shows_each_file() -> anyhow::Result<()> {
    let postgres = Postgres::start().await?;
    let url = postgres.url();
    let project = Project::new(&[
        ("001_users.sql", USERS),
        ("002_phone.sql", PHONE),
        ("003_drop_fax.sql", DROP_FAX),
    ])?;

    let expand = project.migrate(&["run", "--phase", "expand", "--database-url", &url])?;
    let said = text(&expand);
    ensure!(expand.status.success(), "{said}");
    for line in [
        "running 001_users.sql in a transaction\n",
        "003_drop_fax.sql is a contract migration: it runs in the contract phase\n",
        "applied 2 expand migrations: 001_users.sql (",
    ] {
        ensure!(said.contains(line), "no {line:?} in:\n{said}");
    }

    let status = project.migrate(&["status", "--database-url", &url])?;
    let said = text(&status);
    ensure!(status.status.success(), "{said}");
    let rows: Vec<Vec<&str>> = said
        .lines()
        .skip(1)
        .take(3)
        .map(|line| line.split_whitespace().take(4).collect())
        .collect();
    assert_eq!(
        rows,
        [
            ["001_users.sql", "expand", "applied", "ok"],
            ["002_phone.sql", "expand", "applied", "ok"],
            ["003_drop_fax.sql", "contract", "pending", "-"],
        ],
        "{said}"
    );
    ensure!(
        said.contains("3 migrations: 2 applied, 1 pending (database from --database-url)"),
        "{said}"
    );

    let contract = project.migrate(&["run", "--phase", "contract", "--database-url", &url])?;
    ensure!(contract.status.success(), "{}", text(&contract));
    ensure!(
        text(&contract).contains("applied 1 contract migration: 003_drop_fax.sql ("),
        "{}",
        text(&contract)
    );
    let again = project.migrate(&["run", "--phase", "contract", "--database-url", &url])?;
    ensure!(
        text(&again).contains("no contract migrations pending"),
        "{}",
        text(&again)
    );

    let json = project.migrate(&["status", "--json", "--database-url", &url])?;
    let statuses: serde_json::Value = serde_json::from_slice(&json.stdout)?;
    let statuses = statuses.as_array().expect("an array");
    assert_eq!(statuses.len(), 3);
    assert_eq!(statuses[2]["name"], "003_drop_fax.sql");
    assert_eq!(statuses[2]["phase"], "contract");
    assert_eq!(statuses[2]["state"], "applied");
    assert_eq!(statuses[2]["checksum"], "ok");
    assert!(
        statuses[2]["applied_at_ms"]
            .as_i64()
            .is_some_and(|ms| ms > 0)
    );
    assert!(statuses[2]["duration_ms"].as_i64().is_some());
    Ok(())
}

#[tokio::test]
async fn an_edited_applied_file_fails_run_and_status_naming_it() -> anyhow::Result<()> {
    let postgres = Postgres::start().await?;
    let url = postgres.url();
    let project = Project::new(&[("001_users.sql", USERS)])?;
    let first = project.migrate(&["run", "--phase", "expand", "--database-url", &url])?;
    ensure!(first.status.success(), "{}", text(&first));
    project.write(
        "001_users.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY);\n",
    )?;
    project.write("002_phone.sql", PHONE)?;

    let run = project.migrate(&["run", "--phase", "expand", "--database-url", &url])?;
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    let said = text(&run);
    ensure!(
        said.contains("error: 001_users.sql was changed after it was applied"),
        "{said}"
    );
    ensure!(said.contains("put the change in a new migration"), "{said}");
    let phone = postgres
        .psql(
            "postgres",
            "SELECT count(*) FROM information_schema.columns WHERE column_name = 'phone'",
        )
        .await?;
    assert_eq!(phone, "0", "002 ran although 001 had changed");

    let status = project.migrate(&["status", "--database-url", &url])?;
    assert_eq!(status.status.code(), Some(1), "{}", text(&status));
    ensure!(
        text(&status).contains("001_users.sql  expand    applied  changed"),
        "{}",
        text(&status)
    );
    Ok(())
}

#[tokio::test]
async fn the_url_comes_from_the_variable_baton_toml_names_else_the_apps_env_file()
-> anyhow::Result<()> {
    let postgres = Postgres::start().await?;
    let project = Project::new(&[("001_users.sql", USERS)])?;
    std::fs::rename(project.root().join("migrations"), project.root().join("db"))?;
    let root = project.root().join("app-root");
    std::fs::create_dir_all(root.join("shared"))?;
    std::fs::write(
        project.root().join("baton.toml"),
        format!(
            "[app]\nname = \"shop\"\nroot = \"{}\"\n\n[web]\ncommand = \"./server\"\n\n\
             [migrate]\ndir = \"db\"\ndatabase_url_env = \"SHOP_DB\"\n",
            root.display()
        ),
    )?;

    let missing = project.migrate(&["status"])?;
    assert_eq!(missing.status.code(), Some(1));
    let said = text(&missing);
    ensure!(
        said.contains("error: no database URL: pass --database-url, set SHOP_DB in the environment, or put SHOP_DB=postgres://… in"),
        "{said}"
    );
    ensure!(said.contains("app-root/shared/.env"), "{said}");

    std::fs::write(
        root.join("shared/.env"),
        format!("SHOP_DB={}\n", postgres.url()),
    )?;
    let run = project.migrate(&["run", "--phase", "expand"])?;
    ensure!(run.status.success(), "{}", text(&run));
    let status = project.migrate(&["status"])?;
    ensure!(
        text(&status).contains("(database from SHOP_DB in "),
        "{}",
        text(&status)
    );

    let refused = project.migrate(&[
        "run",
        "--phase",
        "expand",
        "--database-url",
        "postgres://nobody@127.0.0.1:1/none",
    ])?;
    assert_eq!(refused.status.code(), Some(1));
    ensure!(
        text(&refused)
            .contains("cannot connect to the database postgres://nobody@127.0.0.1:1/none"),
        "{}",
        text(&refused)
    );
    let phase = project.migrate(&["run", "--phase", "later"])?;
    assert_eq!(phase.status.code(), Some(2), "a usage error");
    Ok(())
}
