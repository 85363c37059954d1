//! `baton migrate lint` end to end: the real binary over a temporary
//! directory of migrations, in every output format, with its exit status.

use std::path::Path;
use std::process::Output;

use baton_testkit::binary;

/// A directory of migration files that is removed when dropped.
struct Migrations {
    dir: tempfile::TempDir,
}

impl Migrations {
    fn new(files: &[(&str, &str)]) -> anyhow::Result<Migrations> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("migrations"))?;
        for (name, sql) in files {
            std::fs::write(dir.path().join("migrations").join(name), sql)?;
        }
        Ok(Migrations { dir })
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `baton migrate lint ARGS…` in the directory above `migrations/`.
    fn lint(&self, args: &[&str]) -> anyhow::Result<Output> {
        Ok(std::process::Command::new(binary("baton"))
            .args(["migrate", "lint"])
            .args(args)
            .current_dir(self.root())
            .output()?)
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

const CLEAN: &str =
    "CREATE TABLE invoices (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, total numeric);\n";
const DROP: &str = "-- users lose their email\nALTER TABLE users DROP COLUMN email;\n";

#[test]
fn human_output_shows_file_line_column_the_line_a_caret_and_help_and_exits_1() -> anyhow::Result<()>
{
    let migrations = Migrations::new(&[("001_invoices.sql", CLEAN), ("002_drop.sql", DROP)])?;
    let output = migrations.lint(&[])?;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.starts_with("error[drop-column]: dropping column `email` of `users`"),
        "{text}"
    );
    assert!(text.contains("--> migrations/002_drop.sql:2:1\n"), "{text}");
    assert!(
        text.contains("2 | ALTER TABLE users DROP COLUMN email;\n  | ^\n"),
        "{text}"
    );
    assert!(
        text.contains("= help: Deploy code that no longer uses the column first"),
        "{text}"
    );
    assert!(
        text.ends_with("checked 2 migration files: 1 error, 0 warnings\n"),
        "{text}"
    );
    Ok(())
}

#[test]
fn json_output_is_an_array_of_findings_with_their_fields() -> anyhow::Result<()> {
    let migrations = Migrations::new(&[("002_drop.sql", DROP)])?;
    let output = migrations.lint(&["--format", "json", "migrations"])?;
    assert_eq!(output.status.code(), Some(1));
    let findings: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let findings = findings.as_array().expect("an array");
    assert_eq!(findings.len(), 1);
    let finding = findings[0].as_object().expect("an object");
    let mut keys: Vec<&str> = finding.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["column", "file", "help", "level", "line", "message", "rule"]
    );
    assert_eq!(finding["file"], "migrations/002_drop.sql");
    assert_eq!(
        (finding["line"].as_u64(), finding["column"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(finding["rule"], "drop-column");
    assert_eq!(finding["level"], "error");
    Ok(())
}

#[test]
fn gcc_output_is_one_line_per_finding() -> anyhow::Result<()> {
    let migrations = Migrations::new(&[("002_drop.sql", DROP)])?;
    let output = migrations.lint(&["--format", "gcc"])?;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text.starts_with("migrations/002_drop.sql:2:1: error: dropping column `email`"),
        "{text}"
    );
    assert!(text.ends_with(" [drop-column]\n"), "{text}");
    assert_eq!(text.lines().count(), 1);
    Ok(())
}

#[test]
fn github_output_is_workflow_annotations() -> anyhow::Result<()> {
    let migrations = Migrations::new(&[
        ("002_drop.sql", DROP),
        ("003_doc.sql", "CREATE TABLE docs (body json);\n"),
    ])?;
    let output = migrations.lint(&["--format", "github"])?;
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with(
            "::error file=migrations/002_drop.sql,line=2,col=1,title=drop-column::dropping column"
        ),
        "{text}"
    );
    assert!(lines[0].contains("%0A%0Ahelp: "), "{text}");
    assert!(
        lines[1].starts_with(
            "::warning file=migrations/003_doc.sql,line=1,col=25,title=prefer-jsonb::"
        ),
        "{text}"
    );
    Ok(())
}

#[test]
fn warnings_alone_and_clean_files_exit_0() -> anyhow::Result<()> {
    let warned = Migrations::new(&[("001_doc.sql", "CREATE TABLE docs (body json);\n")])?;
    let output = warned.lint(&[])?;
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(stdout(&output).starts_with("warning[prefer-jsonb]"));
    let clean = Migrations::new(&[("001_invoices.sql", CLEAN)])?;
    let output = clean.lint(&[])?;
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        stdout(&output),
        "checked 1 migration file: no problems found\n"
    );
    Ok(())
}

#[test]
fn an_allow_comment_needs_a_reason() -> anyhow::Result<()> {
    let with_reason = "-- baton:allow drop-column nothing has read it since v41\nALTER TABLE users DROP COLUMN email;\n";
    let migrations = Migrations::new(&[("002_drop.sql", with_reason)])?;
    let output = migrations.lint(&["--format", "gcc"])?;
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert_eq!(stdout(&output), "");

    let without = "-- baton:allow drop-column\nALTER TABLE users DROP COLUMN email;\n";
    let migrations = Migrations::new(&[("002_drop.sql", without)])?;
    let output = migrations.lint(&["--format", "gcc"])?;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with(
            "migrations/002_drop.sql:1:1: error: `-- baton:allow drop-column` gives no reason"
        ),
        "{text}"
    );
    assert!(lines[0].ends_with("[invalid-directive]"), "{text}");
    assert!(lines[1].ends_with("[drop-column]"), "{text}");
    Ok(())
}

#[test]
fn a_contract_migration_may_break_the_old_version() -> anyhow::Result<()> {
    let contract = format!("-- baton:phase contract\n{DROP}");
    let migrations = Migrations::new(&[("009_contract.sql", &contract)])?;
    let output = migrations.lint(&[])?;
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    Ok(())
}

#[test]
fn a_file_that_does_not_parse_is_an_error_at_its_location() -> anyhow::Result<()> {
    let broken = "SELECT 1;\nALTER TABLE users ADD COLUMN age int NOT NUL;\n";
    let migrations = Migrations::new(&[("001_ok.sql", CLEAN), ("002_broken.sql", broken)])?;
    let output = migrations.lint(&["--format", "gcc"])?;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stdout(&output),
        "migrations/002_broken.sql:2:42: error: syntax error at or near \"NUL\" [syntax-error]\n"
    );
    let human = migrations.lint(&[])?;
    assert!(stdout(&human).contains("2 | ALTER TABLE users ADD COLUMN age int NOT NUL;\n  |                                          ^\n"), "{}", stdout(&human));
    Ok(())
}

#[test]
fn pg_version_changes_what_a_default_costs() -> anyhow::Result<()> {
    let default = "ALTER TABLE users ADD COLUMN state text NOT NULL DEFAULT 'new';\n";
    let migrations = Migrations::new(&[("003_state.sql", default)])?;
    assert_eq!(migrations.lint(&[])?.status.code(), Some(0));
    let output = migrations.lint(&["--pg-version", "10", "--format", "gcc"])?;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("[add-column-volatile-default]"),
        "{}",
        stdout(&output)
    );
    Ok(())
}

#[test]
fn a_missing_path_is_an_error_that_says_what_to_give() -> anyhow::Result<()> {
    let migrations = Migrations::new(&[])?;
    let output = migrations.lint(&["db/nowhere"])?;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("db/nowhere: no such file or directory"),
        "{stderr}"
    );
    Ok(())
}
