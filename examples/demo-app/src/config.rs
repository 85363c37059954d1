//! Settings read once from the environment at startup.
//!
//! | variable            | default     | meaning                                          |
//! |---------------------|-------------|--------------------------------------------------|
//! | `PORT`              | `3000`      | TCP port; `0` picks a free one                   |
//! | `BIND`              | `127.0.0.1` | address (or host name) to bind                   |
//! | `VERSION`           | `dev`       | sent as `X-Version` on every response            |
//! | `BOOT_DELAY_MS`     | `0`         | sleep this long before binding (slow boot)       |
//! | `HEALTH`            | `ok`        | `fail` makes `/health` answer 503 from the start |
//! | `SHUTDOWN_GRACE_MS` | `30000`     | longest drain after SIGTERM/SIGINT before exit   |

use std::time::Duration;

use axum::http::HeaderValue;

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
    pub shutdown_grace: Duration,
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
        let healthy = match text("HEALTH", "ok")?.trim() {
            "ok" => true,
            "fail" => false,
            other => return Err(format!("HEALTH={other:?}: expected \"ok\" or \"fail\"")),
        };

        Ok(Self {
            bind: text("BIND", "127.0.0.1")?,
            port,
            version,
            version_header,
            boot_delay: Duration::from_millis(number("BOOT_DELAY_MS", 0)?),
            healthy,
            shutdown_grace: Duration::from_millis(number("SHUTDOWN_GRACE_MS", 30_000)?),
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
            ("SHUTDOWN_GRACE_MS", "10"),
        ])?;
        assert_eq!(config.bind, "0.0.0.0");
        assert_eq!(config.port, 0);
        assert_eq!(config.version_header, "v2");
        assert_eq!(config.boot_delay, Duration::from_millis(250));
        assert!(!config.healthy);
        assert_eq!(config.shutdown_grace, Duration::from_millis(10));
        Ok(())
    }

    #[test]
    fn rejects_bad_values() {
        assert!(config(&[("PORT", "70000")]).is_err());
        assert!(config(&[("PORT", "http")]).is_err());
        assert!(config(&[("BOOT_DELAY_MS", "-1")]).is_err());
        assert!(config(&[("HEALTH", "maybe")]).is_err());
        assert!(config(&[("VERSION", "bad\nversion")]).is_err());
    }
}
