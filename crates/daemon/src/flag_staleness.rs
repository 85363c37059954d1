//! `baton flags stale`: which flags have settled (every request gets the
//! same answer, see [`Feature::settled`]) and stayed unchanged for longer
//! than a number of days. Pure: the flags, when each last changed and "now"
//! come in; the daemon's clock stays outside.

use std::collections::HashMap;

use baton_api::{FlagState, StaleFlag};
use baton_flags::{Feature, Settled};

/// One day, in milliseconds.
pub const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// When a flag last changed and who changed it: its last audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastChange {
    /// Unix epoch millis.
    pub at_ms: u64,
    /// Who made the change.
    pub who: String,
}

/// Whole days from `at_ms` to `now_ms`; 0 for a change "in the future"
/// (a clock set back).
pub fn days_since(at_ms: u64, now_ms: u64) -> u64 {
    now_ms.saturating_sub(at_ms) / DAY_MS
}

/// Whether a change at `at_ms` is more than `days` days before `now_ms`.
pub fn unchanged_for_longer_than(at_ms: u64, now_ms: u64, days: u32) -> bool {
    now_ms.saturating_sub(at_ms) > u64::from(days).saturating_mul(DAY_MS)
}

/// The settled flags of `features` whose last change is more than `days`
/// days before `now_ms`, the longest unchanged first (then by name). A flag
/// missing from `changes` is skipped: with no date there is no age.
pub fn stale_flags(
    features: &[Feature],
    changes: &HashMap<String, LastChange>,
    now_ms: u64,
    days: u32,
) -> Vec<StaleFlag> {
    let mut stale: Vec<StaleFlag> = features
        .iter()
        .filter_map(|feature| {
            let state = match feature.settled()? {
                Settled::On => FlagState::On,
                Settled::Off => FlagState::Off,
            };
            let change = changes.get(&feature.name)?;
            unchanged_for_longer_than(change.at_ms, now_ms, days).then(|| StaleFlag {
                name: feature.name.clone(),
                state,
                days: days_since(change.at_ms, now_ms),
                changed_at_ms: change.at_ms,
                changed_by: change.who.clone(),
            })
        })
        .collect();
    stale.sort_by(|a, b| {
        a.changed_at_ms
            .cmp(&b.changed_at_ms)
            .then_with(|| a.name.cmp(&b.name))
    });
    stale
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: u64 = 1_750_000_000_000;

    #[test]
    fn ages_are_whole_days_and_stale_means_strictly_longer() {
        assert_eq!(days_since(NOW, NOW), 0);
        assert_eq!(days_since(NOW - DAY_MS + 1, NOW), 0);
        assert_eq!(days_since(NOW - 30 * DAY_MS, NOW), 30);
        assert_eq!(days_since(NOW - 30 * DAY_MS - 1, NOW), 30);
        assert_eq!(days_since(NOW + DAY_MS, NOW), 0, "a clock set back");

        assert!(!unchanged_for_longer_than(NOW - 30 * DAY_MS, NOW, 30));
        assert!(unchanged_for_longer_than(NOW - 30 * DAY_MS - 1, NOW, 30));
        assert!(unchanged_for_longer_than(NOW - 2 * DAY_MS, NOW, 1));
        assert!(!unchanged_for_longer_than(NOW + 1, NOW, 1));
        assert!(!unchanged_for_longer_than(0, NOW, u32::MAX));
    }

    fn flag(name: &str, definition: serde_json::Value) -> Feature {
        let mut definition = definition;
        definition["name"] = json!(name);
        serde_json::from_value(definition).unwrap()
    }

    fn changed(days_ago: u64, who: &str) -> LastChange {
        LastChange {
            at_ms: NOW - days_ago * DAY_MS - 1,
            who: who.to_string(),
        }
    }

    #[test]
    fn settled_flags_unchanged_long_enough_are_stale_oldest_first() {
        let half = json!({"enabled": true, "strategies": [{"name": "flexibleRollout",
            "parameters": {"rollout": "50", "stickiness": "default"}}]});
        let features = [
            flag("fresh_on", json!({"enabled": true})),
            flag("old_on", json!({"enabled": true})),
            flag("older_off", json!({"enabled": false})),
            flag("old_half", half),
            flag("undated", json!({"enabled": false})),
            flag("same_age_b", json!({"enabled": false})),
            flag("same_age_a", json!({"enabled": true})),
        ];
        let changes = HashMap::from([
            ("fresh_on".to_string(), changed(2, "alice")),
            ("old_on".to_string(), changed(40, "bob")),
            ("older_off".to_string(), changed(45, "carol")),
            ("old_half".to_string(), changed(90, "dave")),
            ("same_age_b".to_string(), changed(31, "erin")),
            ("same_age_a".to_string(), changed(31, "erin")),
        ]);
        let stale = stale_flags(&features, &changes, NOW, 30);
        let seen: Vec<(&str, FlagState, u64, &str)> = stale
            .iter()
            .map(|flag| {
                (
                    flag.name.as_str(),
                    flag.state,
                    flag.days,
                    flag.changed_by.as_str(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("older_off", FlagState::Off, 45, "carol"),
                ("old_on", FlagState::On, 40, "bob"),
                ("same_age_a", FlagState::On, 31, "erin"),
                ("same_age_b", FlagState::Off, 31, "erin"),
            ]
        );
        assert_eq!(stale[0].changed_at_ms, NOW - 45 * DAY_MS - 1);

        let fewer = stale_flags(&features, &changes, NOW, 42);
        assert_eq!(fewer.len(), 1);
        assert_eq!(fewer[0].name, "older_off");
        assert_eq!(stale_flags(&features, &changes, NOW, 1).len(), 5);
        assert!(stale_flags(&features, &changes, NOW, 1000).is_empty());
    }
}
