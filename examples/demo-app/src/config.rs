//! Settings read once from the environment at startup.
//!
//! | variable            | default     | meaning                                                           |
//! |---------------------|-------------|-------------------------------------------------------------------|
//! | `PORT`              | `3000`      | TCP port; `0` picks a free one                                    |
//! | `BIND`              | `127.0.0.1` | address (or host name) to bind                                    |
//! | `VERSION`           | `dev`       | in the body of `/` and sent as `X-Version` on every response      |
//! | `BOOT_DELAY_MS`     | `0`         | sleep this long before binding (slow boot)                        |
//! | `HEALTH`            | `ok`        | `fail` makes `/health` answer 503 from the start                  |
//! | `FAIL_HEALTH`       | `0`         | `1` (or `true`) does the same as `HEALTH=fail`                    |
//! | `ERROR_RATE`        | `0`         | share of requests to `/` that answer 500; `0.05` fails every 20th |
//! | `SLOW_MS`           | `0`         | every request to `/` waits this long before answering             |
//! | `SHUTDOWN_GRACE_MS` | `30000`     | longest drain after SIGTERM/SIGINT before exit                    |
//! | `DATABASE_URL`      | unset       | PostgreSQL to connect to at boot; `GET /visit` inserts into it    |
//! | `DB_WRITE_COLUMN`   | `note`      | the column of `visits` that `/visit` writes the version into      |
//! | `EXIT_MARKER`       | unset       | file to append `VERSION PID UNIX_MS` to as the process exits      |
//!
//! The `/knobs/health/*` routes flip health at run time whatever
//! `HEALTH` and `FAIL_HEALTH` said. `ERROR_RATE` picks its failures by a
//! per-request count, not at random (see [`crate::error_rate`]).

use std::time::Duration;

use axum::http::HeaderValue;

use crate::error_rate::ErrorRate;

/// Everything the app reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: String,
    pub port: u16,
    pub version: String,
    /// `version` checked to be a valid header value.
    pub version_header: HeaderValue,
    pub boot_delay: Duration,
    /// Initial state of the health flag (the `/knobs/health/*` routes flip it).
    pub healthy: bool,
    /// Which requests to `/` answer 500.
    pub error_rate: ErrorRate,
    /// Delay before every answer from `/`.
    pub slow: Duration,
    pub shutdown_grace: Duration,
    /// PostgreSQL for `/visit`, if any.
    pub database_url: Option<String>,
    /// The column of `visits` this version writes.
    pub write_column: String,
    /// Where to note the moment the process exits.
    pub exit_marker: Option<String>,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| match std::env::var(name) {
            Ok(value) => Ok(Some(value)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(format!("{name} is not valid UTF-8")),
        })
    }

    /// Reads settings through `get`, which answers `Ok(None)` for an unset variable.
    fn from_lookup(get: impl Fn(&str) -> Result<Option<String>, String>) -> Result<Self, String> {
        let text = |name: &str, default: &str| -> Result<String, String> {
            Ok(get(name)?.unwrap_or_else(|| default.to_owned()))
        };
        let number = |name: &str, default: u64| -> Result<u64, String> {
            match get(name)? {
                None => Ok(default),
                Some(raw) => raw
                    .trim()
                    .parse()
                    .map_err(|err| format!("{name}={raw:?} is not a number: {err}")),
            }
        };

        let port = match get("PORT")? {
            None => 3000,
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|err| format!("PORT={raw:?} is not a port number: {err}"))?,
        };
        let version = text("VERSION", "dev")?;
        let version_header = HeaderValue::from_str(&version)
            .map_err(|_| format!("VERSION={version:?} cannot be sent as a header value"))?;
        let health_ok = match text("HEALTH", "ok")?.trim() {
            "ok" => true,
            "fail" => false,
            other => return Err(format!("HEALTH={other:?}: expected \"ok\" or \"fail\"")),
        };
        let fail_health = match text("FAIL_HEALTH", "0")?.trim() {
            "" | "0" | "false" => false,
            "1" | "true" => true,
            other => return Err(format!("FAIL_HEALTH={other:?}: expected \"1\" or \"0\"")),
        };
        let error_rate = match get("ERROR_RATE")? {
            None => ErrorRate::default(),
            Some(raw) => ErrorRate::parse(&raw)?,
        };

        Ok(Self {
            bind: text("BIND", "127.0.0.1")?,
            port,
            version,
            version_header,
            boot_delay: Duration::from_millis(number("BOOT_DELAY_MS", 0)?),
            healthy: health_ok && !fail_health,
            error_rate,
            slow: Duration::from_millis(number("SLOW_MS", 0)?),
            shutdown_grace: Duration::from_millis(number("SHUTDOWN_GRACE_MS", 30_000)?),
            database_url: get("DATABASE_URL")?.filter(|url| !url.is_empty()),
            write_column: text("DB_WRITE_COLUMN", "note")?,
            exit_marker: get("EXIT_MARKER")?.filter(|path| !path.is_empty()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, String> {
        Config::from_lookup(|name| {
            Ok(vars
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned()))
        })
    }

    #[test]
    fn defaults() -> Result<(), String> {
        let config = config(&[])?;
        assert_eq!(config.bind, "127.0.0.1");
        assert_eq!(config.port, 3000);
        assert_eq!(config.version, "dev");
        assert_eq!(config.boot_delay, Duration::ZERO);
        assert!(config.healthy);
        assert_eq!(config.error_rate, ErrorRate::default());
        assert_eq!(config.slow, Duration::ZERO);
        assert_eq!(config.database_url, None);
        assert_eq!(config.write_column, "note");
        assert_eq!(config.exit_marker, None);
        Ok(())
    }

    #[test]
    fn reads_every_variable() -> Result<(), String> {
        let config = config(&[
            ("BIND", "0.0.0.0"),
            ("PORT", "0"),
            ("VERSION", "v2"),
            ("BOOT_DELAY_MS", "250"),
            ("HEALTH", "fail"),
            ("ERROR_RATE", "0.05"),
            ("SLOW_MS", "40"),
            ("SHUTDOWN_GRACE_MS", "10"),
            ("DATABASE_URL", "postgres://127.0.0.1/app"),
            ("DB_WRITE_COLUMN", "extra"),
            ("EXIT_MARKER", "/tmp/exits"),
        ])?;
        assert_eq!(config.bind, "0.0.0.0");
        assert_eq!(config.port, 0);
        assert_eq!(config.version_header, "v2");
        assert_eq!(config.boot_delay, Duration::from_millis(250));
        assert!(!config.healthy);
        assert_eq!(config.error_rate, ErrorRate::parse("0.05")?);
        assert_eq!(config.slow, Duration::from_millis(40));
        assert_eq!(config.shutdown_grace, Duration::from_millis(10));
        assert_eq!(
            config.database_url.as_deref(),
            Some("postgres://127.0.0.1/app")
        );
        assert_eq!(config.write_column, "extra");
        assert_eq!(config.exit_marker.as_deref(), Some("/tmp/exits"));
        Ok(())
    }

    #[test]
    fn either_health_variable_starts_unhealthy() -> Result<(), String> {
        assert!(!config(&[("FAIL_HEALTH", "1")])?.healthy);
        assert!(!config(&[("FAIL_HEALTH", "true")])?.healthy);
        assert!(config(&[("FAIL_HEALTH", "0")])?.healthy);
        assert!(config(&[("FAIL_HEALTH", "")])?.healthy);
        assert!(!config(&[("HEALTH", "fail"), ("FAIL_HEALTH", "0")])?.healthy);
        assert!(!config(&[("HEALTH", "ok"), ("FAIL_HEALTH", "1")])?.healthy);
        Ok(())
    }

    #[test]
    fn rejects_bad_values() {
        assert!(config(&[("PORT", "70000")]).is_err());
        assert!(config(&[("PORT", "http")]).is_err());
        assert!(config(&[("BOOT_DELAY_MS", "-1")]).is_err());
        assert!(config(&[("HEALTH", "maybe")]).is_err());
        assert!(config(&[("FAIL_HEALTH", "yes please")]).is_err());
        assert!(config(&[("ERROR_RATE", "2")]).is_err());
        assert!(config(&[("ERROR_RATE", "often")]).is_err());
        assert!(config(&[("SLOW_MS", "1.5")]).is_err());
        assert!(config(&[("VERSION", "bad\nversion")]).is_err());
    }
}
