//! `[[notify]]` of `baton.toml`: where a deploy's events are announced.

use std::path::Path;
use std::time::Duration;

use baton_notify::EventKind;
use serde::{Deserialize, Serialize};

use crate::app_config::{ConfigError, DurationText, check_plain_http, key_offset, located};
use crate::migrate_config::EnvVarName;

/// The most `retries` a target may have: past this a dead receiver would
/// hold its queue for hours.
pub const MAX_NOTIFY_RETRIES: u32 = 20;

/// One `[[notify]]`: a webhook that gets each event as a signed JSON POST,
/// or a command that gets it on stdin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyTarget {
    /// `webhook = "http://…"`: the address events are POSTed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// `command = "…"`: a shell command run once per event, the event's
    /// JSON on its stdin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The events sent; all of them when not written.
    #[serde(default = "all_events")]
    pub events: Vec<EventKind>,
    /// A webhook's: the environment variable holding the key its bodies
    /// are signed with (looked up like `[migrate] database_url_env`: the
    /// daemon's environment, `shared/.env`, `[web] env`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<EnvVarName>,
    /// How long one try may take (the POST answered, or the command
    /// exited).
    #[serde(default = "default_timeout")]
    pub timeout: DurationText,
    /// How many times a failed delivery is tried again.
    #[serde(default = "default_retries")]
    pub retries: u32,
}

const NOTIFY: &str = "[[notify]]";

impl NotifyTarget {
    /// What the target is called in messages, logs and `/metrics`: its
    /// address (without a `?query`, where tokens tend to be) or its
    /// command.
    pub fn label(&self) -> String {
        match (&self.webhook, &self.command) {
            (Some(url), _) => {
                let address = url
                    .split_once('?')
                    .map_or(url.as_str(), |(address, _)| address);
                format!("webhook {address}")
            }
            (None, Some(command)) => format!("command {command:?}"),
            (None, None) => "nowhere".to_string(),
        }
    }

    /// Whether events of `kind` go to this target.
    pub fn wants(&self, kind: EventKind) -> bool {
        self.events.contains(&kind)
    }

    /// Checks `targets`, the `[[notify]]` tables of the file `text` read
    /// from `path`, in order.
    pub(crate) fn check_all(
        targets: &[NotifyTarget],
        text: &str,
        path: &Path,
    ) -> Result<(), ConfigError> {
        for (index, target) in targets.iter().enumerate() {
            target.check().map_err(|(key, message)| {
                let offset = key_offset(text, NOTIFY, index, key);
                located(
                    text,
                    path,
                    offset,
                    format!("notify {}: {message}", index + 1),
                )
            })?;
        }
        Ok(())
    }

    /// The first problem, with the key it is at.
    fn check(&self) -> Result<(), (&'static str, String)> {
        match (&self.webhook, &self.command) {
            (Some(_), Some(_)) => {
                return Err((
                    "command",
                    "has both webhook and command; give each its own [[notify]]".to_string(),
                ));
            }
            (None, None) => {
                return Err((
                    "events",
                    "says nowhere to send the events; add webhook = \"http://…\" or \
                     command = \"…\""
                        .to_string(),
                ));
            }
            (Some(url), None) => {
                check_plain_http("webhook", url, "\"http://127.0.0.1:9000/hooks/baton\"")
                    .map_err(|message| ("webhook", message))?;
                if self.secret_env.is_none() {
                    return Err((
                        "webhook",
                        "a webhook needs secret_env, the environment variable holding the key \
                         its events are signed with, e.g. secret_env = \"WEBHOOK_SECRET\""
                            .to_string(),
                    ));
                }
            }
            (None, Some(command)) => {
                if command.trim().is_empty() {
                    return Err((
                        "command",
                        "command is empty; write the command that takes the event on stdin"
                            .to_string(),
                    ));
                }
                if self.secret_env.is_some() {
                    return Err((
                        "secret_env",
                        "secret_env signs webhook bodies; a command gets its event on stdin \
                         unsigned, so remove it"
                            .to_string(),
                    ));
                }
            }
        }
        if self.events.is_empty() {
            return Err((
                "events",
                "events is empty, so nothing would be sent; list the events, or leave events \
                 out to send all of them"
                    .to_string(),
            ));
        }
        if self.timeout.get().is_zero() {
            return Err((
                "timeout",
                "timeout = \"0s\" leaves no time to deliver anything; give e.g. \"5s\"".to_string(),
            ));
        }
        if self.retries > MAX_NOTIFY_RETRIES {
            return Err((
                "retries",
                format!(
                    "retries = {} is more than {MAX_NOTIFY_RETRIES}; a receiver down that long \
                     would hold up every later event to it",
                    self.retries
                ),
            ));
        }
        Ok(())
    }
}

fn all_events() -> Vec<EventKind> {
    EventKind::ALL.to_vec()
}

fn default_timeout() -> DurationText {
    DurationText(Duration::from_secs(5))
}

fn default_retries() -> u32 {
    5
}

#[cfg(test)]
mod tests {
    use crate::AppConfig;
    use crate::migrate_config::tests::{BASE, parse};

    #[test]
    fn none_by_default_and_defaults_for_each_key() {
        assert!(parse(BASE).unwrap().notify.is_empty());
        let config = parse(&format!(
            "{BASE}[[notify]]\nwebhook = \"http://127.0.0.1:9000/hook\"\nsecret_env = \"HOOK_KEY\"\n"
        ))
        .unwrap();
        let [target] = config.notify.as_slice() else {
            panic!("one target: {:?}", config.notify);
        };
        assert_eq!(target.events, baton_notify::EventKind::ALL.to_vec());
        assert_eq!(target.timeout.get().as_secs(), 5);
        assert_eq!(target.retries, 5);
        assert_eq!(target.secret_env.as_ref().unwrap().as_str(), "HOOK_KEY");
        assert_eq!(target.label(), "webhook http://127.0.0.1:9000/hook");
        let with_token = parse(&format!(
            "{BASE}[[notify]]\nwebhook = \"http://h/hook?token=s3cret\"\nsecret_env = \"K\"\n"
        ))
        .unwrap();
        assert_eq!(with_token.notify[0].label(), "webhook http://h/hook");
    }

    #[test]
    fn every_key_is_read_and_survives_the_wire() {
        let config = parse(&format!(
            "{BASE}[[notify]]\nwebhook = \"http://hooks.internal/baton\"\nsecret_env = \"K\"\n\
             events = [\"deploy_succeeded\", \"rolled_back\"]\ntimeout = \"2s\"\nretries = 0\n\n\
             [[notify]]\ncommand = \"./bin/announce\"\nevents = [\"guardrail_breached\"]\n"
        ))
        .unwrap();
        assert_eq!(config.notify.len(), 2);
        assert!(config.notify[0].wants(baton_notify::EventKind::RolledBack));
        assert!(!config.notify[0].wants(baton_notify::EventKind::DeployStarted));
        assert_eq!(config.notify[0].retries, 0);
        assert_eq!(config.notify[1].command.as_deref(), Some("./bin/announce"));
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(serde_json::from_str::<AppConfig>(&json).unwrap(), config);
    }

    #[test]
    fn mistakes_are_reported_at_their_line() {
        let cases: &[(&str, &str)] = &[
            (
                "[[notify]]\nwebhook = \"http://h/x\"\nsecret_env = \"K\"\nevents = [\"deploy_done\"]\n",
                "baton.toml:11:10: \"deploy_done\" is not an event; the events are deploy_started, \
                 deploy_succeeded, deploy_failed, rolled_back, guardrail_breached, budget_exhausted",
            ),
            (
                "[[notify]]\nwebhook = \"http://h/x\"\ncommand = \"echo\"\nsecret_env = \"K\"\n",
                "baton.toml:10:1: notify 1: has both webhook and command",
            ),
            (
                "[[notify]]\nevents = [\"rolled_back\"]\n",
                "baton.toml:9:1: notify 1: says nowhere to send the events",
            ),
            (
                "[[notify]]\nwebhook = \"https://hooks.example.com/x\"\nsecret_env = \"K\"\n",
                "baton.toml:9:1: notify 1: webhook = \"https://hooks.example.com/x\" uses https",
            ),
            (
                "[[notify]]\nwebhook = \"http://h/x\"\n",
                "baton.toml:9:1: notify 1: a webhook needs secret_env",
            ),
            (
                "[[notify]]\ncommand = \"cat\"\nsecret_env = \"K\"\n",
                "baton.toml:10:1: notify 1: secret_env signs webhook bodies",
            ),
            (
                "[[notify]]\ncommand = \"cat\"\nevents = []\n",
                "baton.toml:10:1: notify 1: events is empty",
            ),
            (
                "[[notify]]\ncommand = \"cat\"\ntimeout = \"0s\"\n",
                "baton.toml:10:1: notify 1: timeout = \"0s\"",
            ),
            (
                "[[notify]]\ncommand = \"cat\"\nretries = 21\n",
                "baton.toml:10:1: notify 1: retries = 21 is more than 20",
            ),
            (
                "[[notify]]\ncommand = \"  \"\n",
                "baton.toml:9:1: notify 1: command is empty",
            ),
            (
                "[[notify]]\ncommand = \"cat\"\nsecret = \"K\"\n",
                "baton.toml:10:1: unknown field `secret`",
            ),
            (
                "[[notify]]\ncommand = \"cat\"\n\n[[notify]]\nwebhook = \"ftp://h/x\"\nsecret_env = \"K\"\n",
                "baton.toml:12:1: notify 2: webhook = \"ftp://h/x\" uses ftp://",
            ),
        ];
        let mut failed = 0;
        for (notify, expected) in cases {
            let error = parse(&format!("{BASE}{notify}")).unwrap_err();
            let error = error.trim_start_matches("/srv/shop/");
            if !error.starts_with(expected) {
                eprintln!("for\n{notify}\nexpected {expected}\n     got {error}");
                failed += 1;
            }
        }
        assert_eq!(failed, 0);
    }
}
