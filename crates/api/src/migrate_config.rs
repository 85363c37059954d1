//! `[migrate]` of `baton.toml`: where an app's schema migrations are and
//! how the deploy runs them.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use crate::app_config::{ConfigError, DurationText, RelativePath, key_offset, located};

/// `[migrate]`. Its presence turns the deploy's migration stages on: the
/// preflight lints the release's migrations, the expand phase runs before
/// the new version boots, the contract phase once the old one has stopped.
/// Every key has a default, so `[migrate]` alone is enough.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MigrateSection {
    /// The directory of `*.sql` migrations, inside the release.
    pub dir: RelativePath,
    /// The environment variable that holds the database URL (looked up in
    /// the environment build steps get: the daemon's, `shared/.env`,
    /// `[web] env`).
    pub database_url_env: EnvVarName,
    /// The longest a migration's statement waits for a lock, and so the
    /// longest the app's queries queue behind it.
    pub lock_timeout: DurationText,
    /// The longest one statement may run.
    pub statement_timeout: DurationText,
    /// How many times a migration is tried when it times out waiting for
    /// a lock (or is a deadlock's victim), the first try included.
    pub tries: NonZeroU32,
}

impl Default for MigrateSection {
    fn default() -> Self {
        MigrateSection {
            dir: RelativePath::new(PathBuf::from("migrations")),
            database_url_env: EnvVarName("DATABASE_URL".to_string()),
            lock_timeout: DurationText(Duration::from_secs(2)),
            statement_timeout: DurationText(Duration::from_secs(10 * 60)),
            tries: NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN),
        }
    }
}

impl MigrateSection {
    /// Checks what the types cannot: limits of zero, which PostgreSQL
    /// reads as "no limit".
    pub(crate) fn check(&self, text: &str, path: &Path) -> Result<(), ConfigError> {
        let zero = [
            (
                "lock_timeout",
                self.lock_timeout,
                "no limit: DDL waiting for its lock would stall every query queued behind it",
            ),
            (
                "statement_timeout",
                self.statement_timeout,
                "no limit: a runaway migration would hold its locks for good",
            ),
        ];
        for (key, value, why) in zero {
            if value.get().is_zero() {
                return Err(located(
                    text,
                    path,
                    key_offset(text, "[migrate]", 0, key),
                    format!("{key} = \"0s\" means {why}; give a duration such as \"2s\""),
                ));
            }
        }
        Ok(())
    }
}

/// The name of an environment variable: letters, digits and `_`, not
/// starting with a digit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct EnvVarName(String);

impl EnvVarName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for EnvVarName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        let valid = name
            .chars()
            .next()
            .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(de::Error::custom(format!(
                "{name:?} is not an environment variable name; write e.g. \"DATABASE_URL\""
            )));
        }
        Ok(EnvVarName(name))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::AppConfig;

    /// The smallest whole `baton.toml`, for a section's tests to add to.
    pub(crate) const BASE: &str =
        "[app]\nname = \"shop\"\nroot = \"/srv/shop\"\n\n[web]\ncommand = \"./server\"\n\n";

    /// `text` parsed as `/srv/shop/baton.toml`, its error as the user sees it.
    pub(crate) fn parse(text: &str) -> Result<AppConfig, String> {
        AppConfig::parse(text, std::path::Path::new("/srv/shop/baton.toml"))
            .map_err(|error| error.to_string())
    }

    #[test]
    fn no_section_means_no_migrations_and_an_empty_one_means_the_defaults() {
        assert_eq!(parse(BASE).unwrap().migrate, None);
        let migrate = parse(&format!("{BASE}[migrate]\n"))
            .unwrap()
            .migrate
            .unwrap();
        assert_eq!(migrate.dir.as_path(), std::path::Path::new("migrations"));
        assert_eq!(migrate.database_url_env.as_str(), "DATABASE_URL");
        assert_eq!(migrate.lock_timeout.get().as_secs(), 2);
        assert_eq!(migrate.statement_timeout.get().as_secs(), 600);
        assert_eq!(migrate.tries.get(), 10);
    }

    #[test]
    fn every_key_is_read_and_survives_the_wire() {
        let config = parse(&format!(
            "{BASE}[migrate]\ndir = \"db/migrate\"\ndatabase_url_env = \"PRIMARY_DB\"\n\
             lock_timeout = \"500ms\"\nstatement_timeout = \"1h\"\ntries = 3\n"
        ))
        .unwrap();
        let migrate = config.migrate.clone().unwrap();
        assert_eq!(migrate.dir.as_path(), std::path::Path::new("db/migrate"));
        assert_eq!(migrate.database_url_env.as_str(), "PRIMARY_DB");
        assert_eq!(migrate.lock_timeout.get().as_millis(), 500);
        assert_eq!(migrate.tries.get(), 3);
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(serde_json::from_str::<AppConfig>(&json).unwrap(), config);
    }

    #[test]
    fn bad_values_point_at_their_line_and_column() {
        let line = BASE.matches('\n').count() + 2;
        for (body, column, said) in [
            ("dir = \"../elsewhere\"\n", 7, "inside the release"),
            (
                "database_url_env = \"DATABASE-URL\"\n",
                20,
                "not an environment variable name",
            ),
            ("lock_timeout = \"0s\"\n", 1, "no limit"),
            ("statement_timeout = \"0s\"\n", 1, "runaway"),
            ("tries = 0\n", 9, "nonzero"),
            ("lock_timeout = \"soon\"\n", 16, "not a duration"),
            ("retries = 3\n", 1, "unknown field"),
        ] {
            let error = parse(&format!("{BASE}[migrate]\n{body}")).unwrap_err();
            assert!(
                error.starts_with(&format!("/srv/shop/baton.toml:{line}:{column}: ")),
                "{body}: {error}"
            );
            assert!(error.contains(said), "{body}: {error}");
        }
    }
}
