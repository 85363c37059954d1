//! Wire types of `baton flags`: the flags as the daemon shows them, the
//! changes the CLI asks for, and the audit history.
//!
//! Flag definitions travel as Unleash's JSON (`serde_json::Value`), so this
//! crate does not need the flag model: the daemon reads and checks them.

use serde::{Deserialize, Serialize};

use crate::targeting_key::TargetingKey;

/// One flag as `baton flags show` and `list` show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlagInfo {
    /// The flag's name.
    pub name: String,
    /// The switch: off means off for everyone.
    pub enabled: bool,
    /// A description for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Each strategy in words, in order; any one that holds turns the flag
    /// on. Empty: on for everyone (while enabled).
    pub strategies: Vec<String>,
    /// The flag's own variants and their weights.
    #[serde(default)]
    pub variants: Vec<VariantWeight>,
    /// The revision that last changed this flag.
    pub revision: u64,
    /// When it last changed, unix epoch millis.
    pub updated_at_ms: u64,
    /// Parts of the flag that cannot work as written (they never match).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The flag as Unleash's JSON.
    pub definition: serde_json::Value,
}

/// A variant's name and weight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariantWeight {
    /// The variant's name.
    pub name: String,
    /// Its weight: it is handed out for `weight` of the total.
    pub weight: u32,
}

/// Every flag, at one revision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlagList {
    /// The revision of the whole set: one more on every change.
    pub revision: u64,
    /// The flags, in the document's order.
    pub flags: Vec<FlagInfo>,
    /// How many segments (shared constraint sets) there are.
    pub segments: usize,
}

/// `baton flags set NAME`: what to change; an absent field keeps what the
/// flag has. How each maps onto Unleash's strategies is the daemon's.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FlagSettings {
    /// The description; an empty one removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The share of users the flag is on for, 0 to 100 (a `flexibleRollout`
    /// with `default` stickiness).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_percent: Option<f64>,
    /// The users the flag is always on for (a `userWithId`); an empty list
    /// removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<Vec<String>>,
    /// The flag's variants and their weights; an empty list removes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variants: Option<Vec<VariantWeight>>,
}

/// A change to one flag, by someone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlagSetRequest {
    /// Who asks (the OS user running the CLI).
    pub user: String,
    /// What to change.
    pub settings: FlagSettings,
}

/// A change that needs no more than who asks for it (`on`, `off`,
/// `delete`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagActor {
    /// Who asks (the OS user running the CLI).
    pub user: String,
}

/// `baton flags import FILE`: replace every flag and segment with those of
/// an Unleash document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagImportRequest {
    /// Who asks (the OS user running the CLI).
    pub user: String,
    /// Unleash's client features JSON (`/api/client/features`), as text.
    pub document: String,
}

/// What a change did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlagChanged {
    /// The revision of the whole set now.
    pub revision: u64,
    /// Whether anything changed (a change to what already is keeps the
    /// revision).
    pub changed: bool,
    /// How many flags and segments were added, changed or removed.
    pub touched: usize,
    /// The flag changed, as it is now (`None` for a delete or an import).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag: Option<FlagInfo>,
    /// What in the flags cannot work as written.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// `baton flags export`: every flag as Unleash's JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagExport {
    /// The revision exported.
    pub revision: u64,
    /// Unleash's client features JSON, as text.
    pub document: String,
}

/// One flag or segment one change touched.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlagAuditEntry {
    /// The revision the change made.
    pub revision: u64,
    /// `flag` or `segment`.
    pub subject: String,
    /// The flag's name, or the segment's id.
    pub name: String,
    /// What was done: `set`, `on`, `off`, `delete`, `import`.
    pub action: String,
    /// Who did it: an OS user, or `admin-api`.
    pub who: String,
    /// When, unix epoch millis.
    pub at_ms: u64,
    /// The definition before (`None`: it did not exist).
    #[serde(default)]
    pub before: Option<serde_json::Value>,
    /// The definition after (`None`: it was removed).
    #[serde(default)]
    pub after: Option<serde_json::Value>,
}

/// The one answer a settled flag gives every request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlagState {
    /// On for every request.
    On,
    /// Off for every request.
    Off,
}

/// The days `baton flags stale` asks for when told none: a month.
pub const DEFAULT_STALE_DAYS: u32 = 30;

/// `baton flags stale`: the flags that give every request the same answer
/// and have not changed for more than `days` days, so teams can take them
/// out of their code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleFlags {
    /// The threshold asked for: unchanged for more than this many days.
    pub days: u32,
    /// The daemon's "now" the ages were counted to, unix epoch millis.
    pub now_ms: u64,
    /// The stale flags, the longest unchanged first.
    pub flags: Vec<StaleFlag>,
}

/// One stale flag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleFlag {
    /// The flag's name.
    pub name: String,
    /// What every request gets.
    pub state: FlagState,
    /// Whole days since its last change.
    pub days: u64,
    /// When it last changed (its last audit entry), unix epoch millis.
    pub changed_at_ms: u64,
    /// Who changed it last (`unknown` when its audit entry is missing).
    pub changed_by: String,
}

/// How the proxy evaluates flags for a service's requests: `[flags]` of an
/// app with `inject = true`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagInjection {
    /// Where a request's targeting key is read; `None` evaluates with no
    /// user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targeting_key: Option<TargetingKey>,
}

/// Whether `name` may be given to a flag by `baton flags set`: 1 to 100
/// of Unleash's URL-friendly characters (letters, digits, `-`, `_`, `.`,
/// `~`). Imported flags keep whatever name Unleash gave them.
pub fn check_flag_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "flag name {name:?} is not valid: use 1 to 100 letters, digits, '-', '_', '.' or '~'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_names_are_url_friendly() {
        assert!(check_flag_name("new_editor").is_ok());
        assert!(check_flag_name("Feature.flexibleRollout.10~x-y").is_ok());
        for bad in ["", "a b", "a/b", "a,b", "a=b", "é"] {
            assert!(check_flag_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_flag_name(&"x".repeat(101)).is_err());
    }

    #[test]
    fn settings_leave_out_what_they_do_not_change() {
        let settings = FlagSettings {
            rollout_percent: Some(5.0),
            ..FlagSettings::default()
        };
        assert_eq!(
            serde_json::to_string(&settings).unwrap(),
            r#"{"rollout_percent":5.0}"#
        );
    }
}
