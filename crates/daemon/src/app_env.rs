//! The environment an app's processes, build steps and hooks run with.
//!
//! The daemon's own environment is the base, minus what belongs to the
//! daemon alone (systemd's socket and readiness variables, baton's own
//! settings and tokens): an app that saw `NOTIFY_SOCKET` or `LISTEN_FDS`
//! would try to speak for the daemon. Then `shared/.env`, then the
//! config's `env`, then what baton sets.

use std::collections::BTreeMap;

/// Variables that describe the daemon's process, never an app's.
const DAEMON_ONLY: &[&str] = &[
    "NOTIFY_SOCKET",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "WATCHDOG_PID",
    "WATCHDOG_USEC",
    "INVOCATION_ID",
    "MAINPID",
];

/// The daemon's environment without what only the daemon may see.
pub fn inherited() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(name, _)| !is_daemon_only(name))
        .collect()
}

fn is_daemon_only(name: &str) -> bool {
    DAEMON_ONLY.contains(&name) || name.starts_with("BATON_")
}

/// Layers the environment: each later layer wins.
pub fn layered(layers: &[&[(String, String)]]) -> Vec<(String, String)> {
    let mut merged = BTreeMap::new();
    for layer in layers {
        for (name, value) in *layer {
            merged.insert(name.clone(), value.clone());
        }
    }
    merged.into_iter().collect()
}

/// A config `env` table as a layer.
pub fn from_table(table: &BTreeMap<String, String>) -> Vec<(String, String)> {
    table
        .iter()
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// Builds a layer of baton's own variables.
pub fn pairs(entries: &[(&str, &str)]) -> Vec<(String, String)> {
    entries
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_variables_stay_with_the_daemon() {
        assert!(is_daemon_only("NOTIFY_SOCKET"));
        assert!(is_daemon_only("LISTEN_FDNAMES"));
        assert!(is_daemon_only("BATON_ADMIN_TOKEN"));
        assert!(!is_daemon_only("PATH"));
        assert!(!is_daemon_only("DATABASE_URL"));
    }

    #[test]
    fn later_layers_win() {
        let base = pairs(&[("PATH", "/bin"), ("RUST_LOG", "warn")]);
        let dotenv = pairs(&[("SECRET", "s"), ("RUST_LOG", "info")]);
        let ours = pairs(&[("PORT", "3000")]);
        let env = layered(&[&base, &dotenv, &ours]);
        assert_eq!(
            env,
            pairs(&[
                ("PATH", "/bin"),
                ("PORT", "3000"),
                ("RUST_LOG", "info"),
                ("SECRET", "s")
            ])
        );
    }
}
