//! Which database the runner migrates, and how to name it without its
//! password.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::run_error::RunError;

/// The variable that holds the database URL when the config names none.
pub const DEFAULT_DATABASE_URL_ENV: &str = "DATABASE_URL";

/// A database URL and where it was found.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    /// The URL (`postgres://user:secret@host/db`) or key=value string.
    pub url: String,
    /// Where it came from.
    pub source: UrlSource,
}

/// Where a database URL was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlSource {
    /// `--database-url`.
    Flag,
    /// The environment variable of this name.
    Environment(String),
    /// The variable of this name in the app's env file at this path.
    EnvFile(String, PathBuf),
}

impl fmt::Debug for DatabaseUrl {
    /// Without the password, so a URL can be logged.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseUrl")
            .field("url", &redacted(&self.url))
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for UrlSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlSource::Flag => f.write_str("--database-url"),
            UrlSource::Environment(name) => write!(f, "${name}"),
            UrlSource::EnvFile(name, path) => write!(f, "{name} in {}", path.display()),
        }
    }
}

/// The database URL: `flag` (`--database-url`), else the value of
/// `variable` in the environment (`from_env`), else `variable` in the
/// app's env file, given as its path and entries (none without an app).
/// An empty value counts as unset.
pub fn resolve_database_url(
    flag: Option<&str>,
    variable: &str,
    from_env: Option<String>,
    env_file: Option<(&Path, &[(String, String)])>,
) -> Result<DatabaseUrl, RunError> {
    let present = |value: &str| !value.trim().is_empty();
    if let Some(url) = flag.filter(|url| present(url)) {
        return Ok(DatabaseUrl {
            url: url.to_owned(),
            source: UrlSource::Flag,
        });
    }
    if let Some(url) = from_env.filter(|url| present(url)) {
        return Ok(DatabaseUrl {
            url,
            source: UrlSource::Environment(variable.to_owned()),
        });
    }
    let in_file = env_file.and_then(|(path, entries)| {
        let (_, url) = entries
            .iter()
            .rev()
            .find(|(name, value)| name == variable && present(value))?;
        Some((path, url))
    });
    match in_file {
        Some((path, url)) => Ok(DatabaseUrl {
            url: url.clone(),
            source: UrlSource::EnvFile(variable.to_owned(), path.to_path_buf()),
        }),
        None => Err(RunError::NoDatabaseUrl {
            variable: variable.to_owned(),
            env_file: env_file.map(|(path, _)| path.to_path_buf()),
        }),
    }
}

/// `url` with its password replaced by `***`, in both the URL form
/// (`postgres://user:pw@host`) and the key=value form (`password=pw`).
pub fn redacted(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        if let Some((userinfo, host)) = authority.rsplit_once('@')
            && let Some((user, _)) = userinfo.split_once(':')
        {
            return format!("{scheme}://{user}:***@{host}{tail}");
        }
        return url.to_owned();
    }
    url.split_whitespace()
        .map(|pair| match pair.split_once('=') {
            Some(("password", _)) => "password=***".to_owned(),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn the_flag_wins_then_the_environment_then_the_env_file() {
        let file = Path::new("/srv/app/shared/.env");
        let dotenv = entries(&[("DATABASE_URL", "postgres://file/db")]);
        let app = Some((file, dotenv.as_slice()));
        let env = || Some("postgres://env/db".to_owned());
        let url = resolve_database_url(Some("postgres://flag/db"), "DATABASE_URL", env(), app);
        assert_eq!(url.unwrap().source, UrlSource::Flag);
        let url = resolve_database_url(None, "DATABASE_URL", env(), app).unwrap();
        assert_eq!(url.url, "postgres://env/db");
        assert_eq!(url.source, UrlSource::Environment("DATABASE_URL".into()));
        let url = resolve_database_url(Some(" "), "DATABASE_URL", Some(String::new()), app);
        let url = url.unwrap();
        assert_eq!(url.url, "postgres://file/db");
        assert_eq!(
            url.source.to_string(),
            "DATABASE_URL in /srv/app/shared/.env"
        );
    }

    #[test]
    fn the_variable_is_the_one_the_config_names_and_its_absence_says_where_it_was_looked_for() {
        let file = Path::new("/srv/app/shared/.env");
        let dotenv = entries(&[("DATABASE_URL", "postgres://file/db")]);
        let app = Some((file, dotenv.as_slice()));
        let error = resolve_database_url(None, "PRIMARY_DB", None, app).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("--database-url"), "{message}");
        assert!(message.contains("PRIMARY_DB"), "{message}");
        assert!(message.contains("/srv/app/shared/.env"), "{message}");
        let alone = resolve_database_url(None, "DATABASE_URL", None, None).unwrap_err();
        assert_eq!(
            alone.to_string(),
            "no database URL: pass --database-url or set DATABASE_URL in the environment"
        );
    }

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redacted("postgres://app:s3cret@db.internal:5432/app?sslmode=require"),
            "postgres://app:***@db.internal:5432/app?sslmode=require"
        );
        assert_eq!(redacted("postgres://app@db/app"), "postgres://app@db/app");
        assert_eq!(
            redacted("host=db user=app password=s3cret dbname=app"),
            "host=db user=app password=*** dbname=app"
        );
        let url = DatabaseUrl {
            url: "postgres://a:b@c/d".into(),
            source: UrlSource::Flag,
        };
        assert!(!format!("{url:?}").contains(":b@"));
    }
}
