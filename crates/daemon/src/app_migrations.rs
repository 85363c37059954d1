//! An app's schema migrations in a deploy (`[migrate]`): the preflight
//! lint of the release's files, and the expand and contract phases run
//! against the database the app's environment names. The order of these
//! steps is the rollout pipeline's; what is pending, retried or refused is
//! `baton_migrate`'s. This module only finds the files and the database.

use std::path::{Path, PathBuf};

use baton_api::MigrateSection;
use baton_migrate::{
    Format, LintOptions, MigrationFile, Phase, Progress, RetryPolicy, RunError, RunSettings,
    Runner, lint_sources, migration_files, render, resolve_database_url,
};
use baton_rollout::{MigrationPhase, StepError};

use crate::app_host::blocking;

/// The runner's settings from `[migrate]`.
pub fn migrate_settings(section: &MigrateSection) -> RunSettings {
    RunSettings {
        lock_timeout: section.lock_timeout.get(),
        statement_timeout: section.statement_timeout.get(),
        retry: RetryPolicy {
            tries: section.tries.get(),
            ..RetryPolicy::default()
        },
    }
}

/// Where one deploy's migrations are and which database they go to.
pub struct AppMigrations<'a> {
    /// `[migrate]`.
    pub section: &'a MigrateSection,
    /// The environment build steps get (the daemon's, `shared/.env`,
    /// `[web] env`), where the database URL is looked up.
    pub env: Vec<(String, String)>,
    /// The app's env file, named when the URL is missing.
    pub env_file: PathBuf,
}

/// Lints the migrations in `base`'s `[migrate] dir` (a source directory or
/// a staged release). Findings are passed to `output`, line by line as
/// `baton migrate lint` prints them. An error fails the preflight, unless
/// `allowed` gives the reason it is safe anyway.
pub async fn lint(
    section: &MigrateSection,
    base: &Path,
    allowed: Option<&str>,
    output: &(dyn Fn(String) + Send + Sync),
) -> Result<String, StepError> {
    let label = section.dir.as_path().display().to_string();
    let dir = base.join(section.dir.as_path());
    let read_dir = dir.clone();
    let sources = blocking(move || {
        if !read_dir.is_dir() {
            return Ok(None);
        }
        let files = migration_files(std::slice::from_ref(&read_dir)).map_err(|e| e.to_string())?;
        files
            .iter()
            .map(|path| {
                let name = path
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned());
                std::fs::read_to_string(path)
                    .map(|text| (name.unwrap_or_default(), text))
                    .map_err(|error| {
                        format!("cannot read the migration {}: {error}", path.display())
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    })
    .await
    .map_err(StepError::new)?;
    let Some(sources) = sources else {
        return Ok(format!("no {label}/ in the release: nothing to lint"));
    };
    let named: Vec<(String, String)> = sources
        .into_iter()
        .map(|(name, text)| (format!("{label}/{name}"), text))
        .collect();
    let report = lint_sources(
        named
            .iter()
            .map(|(name, text)| (name.as_str(), text.as_str())),
        &LintOptions::default(),
    );
    if !report.diagnostics.is_empty() {
        for line in render(&report, Format::Human).lines() {
            output(line.to_string());
        }
    }
    let errors = report.count(baton_migrate::Level::Error);
    let warnings = report.count(baton_migrate::Level::Warning);
    let counted = format!(
        "{} migration file{}: {errors} error{}, {warnings} warning{}",
        report.files,
        plural(report.files),
        plural(errors),
        plural(warnings)
    );
    if errors == 0 {
        return Ok(counted);
    }
    if let Some(reason) = allowed {
        return Ok(format!(
            "{counted}; deploying anyway, allowed with --allow-unsafe-migrations: {reason}"
        ));
    }
    let found = render(&report, Format::Gcc);
    Err(StepError::new(format!(
        "the migration lint found {errors} error{} in {label}/:\n{}\nEach is a lock on a busy \
         table or a change the running version cannot take; fix it the safe way its help shows \
         (`baton migrate lint` prints it), or deploy with --allow-unsafe-migrations \"why it is \
         safe\". Nothing was built or started; the running version still serves.",
        plural(errors),
        found.trim_end()
    )))
}

impl AppMigrations<'_> {
    /// The migrations of the release at `release_dir`, none when it has
    /// no migrations directory.
    async fn files(&self, release_dir: &Path) -> Result<Vec<MigrationFile>, StepError> {
        let dir = release_dir.join(self.section.dir.as_path());
        blocking(move || match MigrationFile::read_dir(&dir) {
            Err(RunError::NoDirectory { .. }) => Ok(Vec::new()),
            other => other.map_err(|error| error.to_string()),
        })
        .await
        .map_err(StepError::new)
    }

    async fn runner(&self) -> Result<Runner, StepError> {
        let variable = self.section.database_url_env.as_str();
        let from_env = self
            .env
            .iter()
            .rev()
            .find(|(name, _)| name == variable)
            .map(|(_, value)| value.clone());
        let url = resolve_database_url(None, variable, from_env, None).map_err(|_| {
            StepError::new(format!(
                "no database URL for the migrations: [migrate] database_url_env names {variable}, \
                 which is set neither in the daemon's environment, nor in {}, nor in [web] env; \
                 set it in one of them",
                self.env_file.display()
            ))
        })?;
        Runner::connect(&url.url, migrate_settings(self.section))
            .await
            .map_err(|error| StepError::new(error.to_string()))
    }

    /// How many migrations of `phase` in `release_dir` are not applied.
    pub async fn pending(
        &self,
        release_dir: &Path,
        phase: MigrationPhase,
    ) -> Result<usize, StepError> {
        let files = self.files(release_dir).await?;
        if files.is_empty() {
            return Ok(0);
        }
        let statuses = self
            .runner()
            .await?
            .status(&files)
            .await
            .map_err(|error| StepError::new(error.to_string()))?;
        let phase = phase_of(phase);
        Ok(statuses
            .iter()
            .filter(|status| status.state == "pending" && status.phase == phase.name())
            .count())
    }

    /// Applies the pending migrations of `phase` in `release_dir`, each
    /// step passed to `output`.
    pub async fn run(
        &self,
        release_dir: &Path,
        phase: MigrationPhase,
        output: &(dyn Fn(String) + Send + Sync),
    ) -> Result<String, StepError> {
        let files = self.files(release_dir).await?;
        if files.is_empty() {
            return Ok(format!(
                "no migrations in {}/",
                self.section.dir.as_path().display()
            ));
        }
        let runner = self.runner().await?;
        let progress = |progress: &Progress| output(progress.to_string());
        let report = runner
            .run(&files, phase_of(phase), &progress)
            .await
            .map_err(|error| StepError::new(error.to_string()))?;
        Ok(report.summary())
    }
}

fn phase_of(phase: MigrationPhase) -> Phase {
    match phase {
        MigrationPhase::Expand => Phase::Expand,
        MigrationPhase::Contract => Phase::Contract,
    }
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn section() -> MigrateSection {
        MigrateSection::default()
    }

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("migrations")).unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join("migrations").join(name), text).unwrap();
        }
        dir
    }

    #[tokio::test]
    async fn a_lint_error_fails_the_preflight_with_the_findings_unless_allowed() {
        let dir = tree(&[
            ("001_ok.sql", "CREATE TABLE t (id bigint);\n"),
            ("002_index.sql", "CREATE INDEX t_id ON t (id);\n"),
        ]);
        let lines = Mutex::new(Vec::new());
        let output = |line: String| lines.lock().unwrap().push(line);
        let error = lint(&section(), dir.path(), None, &output)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("the migration lint found 1 error in migrations/:\n"),
            "{error}"
        );
        assert!(
            error.contains("migrations/002_index.sql:1:1: error: "),
            "{error}"
        );
        assert!(error.contains("--allow-unsafe-migrations"), "{error}");
        let printed = lines.lock().unwrap().join("\n");
        assert!(
            printed.contains("error[create-index-not-concurrently]"),
            "{printed}"
        );
        let allowed = lint(&section(), dir.path(), Some("t has 3 rows"), &output)
            .await
            .unwrap();
        assert_eq!(
            allowed,
            "2 migration files: 1 error, 0 warnings; deploying anyway, allowed with \
             --allow-unsafe-migrations: t has 3 rows"
        );
    }

    #[tokio::test]
    async fn clean_or_missing_migrations_pass() {
        let quiet = |_: String| {};
        let dir = tree(&[("001_ok.sql", "CREATE TABLE t (id bigint);\n")]);
        let clean = lint(&section(), dir.path(), None, &quiet).await.unwrap();
        assert_eq!(clean, "1 migration file: 0 errors, 0 warnings");
        let empty = tempfile::tempdir().unwrap();
        let none = lint(&section(), empty.path(), None, &quiet).await.unwrap();
        assert_eq!(none, "no migrations/ in the release: nothing to lint");
    }

    #[tokio::test]
    async fn without_a_database_url_the_error_says_where_to_set_it() {
        let dir = tree(&[("001_ok.sql", "CREATE TABLE t (id bigint);\n")]);
        let section = section();
        let migrations = AppMigrations {
            section: &section,
            env: vec![("PATH".into(), "/bin".into())],
            env_file: PathBuf::from("/srv/shop/shared/.env"),
        };
        let error = migrations
            .pending(dir.path(), MigrationPhase::Contract)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("DATABASE_URL"), "{error}");
        assert!(error.contains("/srv/shop/shared/.env"), "{error}");
        let none = tempfile::tempdir().unwrap();
        let nothing = migrations
            .run(none.path(), MigrationPhase::Expand, &|_| {})
            .await
            .unwrap();
        assert_eq!(nothing, "no migrations in migrations/");
    }
}
