//! The records of deployed apps: the app itself, its releases, the history
//! of its deploys and its supervised processes. Plain data, no behaviour.
//!
//! Values with a fixed vocabulary (a deploy's `kind` and `outcome`, a
//! process's `state`) are strings, stored verbatim: the daemon owns their
//! meaning, and a new value must not need a schema migration. JSON columns
//! (`config_json`, `stages_json`) are opaque text here for the same reason.

use serde::{Deserialize, Serialize};

/// An app deployed from a `baton.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRecord {
    /// Unique name, from the `baton.toml`.
    pub name: String,
    /// The app's current config as JSON text; the store does not interpret it.
    pub config_json: String,
    /// The release serving now, if one has been deployed.
    #[serde(default)]
    pub current_release: Option<String>,
    /// When the record last changed, unix epoch millis.
    pub updated_at_ms: u64,
}

/// A release staged on disk for an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRecord {
    /// The app it belongs to.
    pub app: String,
    /// Its id, unique within the app (e.g. `20261122T021500Z-3f9a2c1`).
    pub id: String,
    /// When it was staged, unix epoch millis.
    pub created_at_ms: u64,
    /// Where its code came from, for humans.
    pub source: String,
    /// The git commit or content hash of its code.
    pub revision: String,
    /// The config it was deployed with, as JSON text; a rollback reuses it.
    pub config_json: String,
}

/// One deploy or rollback, as kept in the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployRecord {
    /// Sequence number, assigned by [`Store::start_deploy`] and never reused;
    /// ignored when a deploy is started.
    ///
    /// [`Store::start_deploy`]: crate::Store::start_deploy
    pub id: i64,
    /// The app deployed.
    pub app: String,
    /// `"deploy"` or `"rollback"`.
    pub kind: String,
    /// The release deployed; empty while a deploy has not staged one yet.
    pub release: String,
    /// The release serving before, if any.
    #[serde(default)]
    pub previous_release: Option<String>,
    /// When it started, unix epoch millis.
    pub started_at_ms: u64,
    /// When it ended, unix epoch millis; `None` while running.
    #[serde(default)]
    pub finished_at_ms: Option<u64>,
    /// Who asked for it.
    pub user: String,
    /// Where the code came from, for humans.
    pub source: String,
    /// `"running"`, `"succeeded"`, `"failed"` or `"interrupted"`.
    pub outcome: String,
    /// Why it failed or was interrupted.
    #[serde(default)]
    pub reason: Option<String>,
    /// The stages and their timings, as a JSON array; opaque to the store.
    pub stages_json: String,
    /// The traffic report at its end, as JSON; opaque to the store.
    #[serde(default)]
    pub report_json: Option<String>,
}

/// One supervised process slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRecord {
    /// Unique id placed in the process's environment before it is spawned,
    /// so that after a daemon restart the process can be recognised even if
    /// its pid was recycled; the record's key.
    pub marker: String,
    /// The app it belongs to.
    pub app: String,
    /// The release it runs.
    pub release: String,
    /// `"web"` or the name of a worker.
    pub role: String,
    /// Instance number within the role.
    pub index: u32,
    /// Its process id; `None` until it has been spawned.
    #[serde(default)]
    pub pid: Option<u32>,
    /// The start time of `pid` as `/proc/<pid>/stat` gives it, which tells
    /// a recycled pid from the process that was spawned.
    #[serde(default)]
    pub start_time: Option<u64>,
    /// The port it listens on, if it serves.
    #[serde(default)]
    pub port: Option<u16>,
    /// When its current incarnation started, unix epoch millis.
    pub started_at_ms: u64,
    /// How often it was restarted after exiting.
    pub restarts: u32,
    /// `"starting"`, `"running"`, `"warm"` or `"stopping"`.
    pub state: String,
    /// When a warm process is to be stopped, unix epoch millis.
    #[serde(default)]
    pub stop_after_ms: Option<u64>,
    /// The file its output goes to.
    pub log_file: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn missing_optional_fields_read_as_none() {
        let process: ProcessRecord = serde_json::from_str(
            r#"{"marker":"m","app":"a","release":"r","role":"web","index":1,
                "started_at_ms":5,"restarts":0,"state":"starting","log_file":"/l"}"#,
        )
        .unwrap();
        assert_eq!(process.pid, None);
        assert_eq!(process.port, None);
        assert_eq!(process.stop_after_ms, None);

        let app: AppRecord =
            serde_json::from_str(r#"{"name":"a","config_json":"{}","updated_at_ms":1}"#).unwrap();
        assert_eq!(app.current_release, None);
    }

    #[test]
    fn deploy_round_trips_through_json() {
        let deploy = DeployRecord {
            id: 3,
            app: "shop".to_owned(),
            kind: "rollback".to_owned(),
            release: "r2".to_owned(),
            previous_release: Some("r3".to_owned()),
            started_at_ms: 10,
            finished_at_ms: Some(20),
            user: "ana".to_owned(),
            source: "/srv/shop".to_owned(),
            outcome: "succeeded".to_owned(),
            reason: None,
            stages_json: "[]".to_owned(),
            report_json: Some("{}".to_owned()),
        };
        let json = serde_json::to_string(&deploy).unwrap();
        assert_eq!(serde_json::from_str::<DeployRecord>(&json).unwrap(), deploy);
    }
}
