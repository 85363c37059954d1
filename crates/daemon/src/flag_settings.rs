//! `baton flags set`: its options as Unleash strategies, so a flag made
//! here exports to Unleash and evaluates as Unleash would.
//!
//! - `--users a,b` is a `userWithId` strategy with `userIds = "a,b"`.
//! - `--rollout 5%` is a `flexibleRollout` strategy with `rollout = "5"`,
//!   `stickiness = "default"` (the user, else the session, else random) and
//!   `groupId` = the flag's name.
//! - Both together are both strategies: the users always, plus 5% of
//!   everyone else (a flag is on when any strategy holds).
//! - `--variants a:50,b:50` are the flag's variants, weights scaled to
//!   Unleash's total of 1000, `weightType = "variable"`, stickiness
//!   `default`.
//!
//! Each option replaces the strategy of its kind and leaves the flag's
//! other strategies (from an import, say) alone; an empty `--users ''` or
//! `--variants ''` removes its part. A new flag is created switched on.

use baton_api::{FlagSettings, VariantWeight};
use baton_flags::{Feature, Strategy, VariantDefinition};

use crate::flag_service::FlagError;

/// Unleash's variant weights add up to this.
const TOTAL_WEIGHT: u32 = 1000;

/// The flag `name` (`existing`, or a new one) with `settings` applied.
pub fn apply(
    name: &str,
    existing: Option<&Feature>,
    settings: &FlagSettings,
) -> Result<Feature, FlagError> {
    let mut feature = existing.cloned().unwrap_or_else(|| Feature {
        name: name.to_string(),
        kind: Some("release".to_string()),
        description: None,
        project: None,
        enabled: true,
        stale: false,
        impression_data: false,
        strategies: Vec::new(),
        variants: Vec::new(),
        dependencies: Vec::new(),
    });
    let had_strategies = !feature.strategies.is_empty();
    if let Some(description) = &settings.description {
        feature.description = Some(description.trim().to_string()).filter(|text| !text.is_empty());
    }
    if let Some(users) = &settings.users {
        let users: Vec<&str> = users
            .iter()
            .map(|user| user.trim())
            .filter(|user| !user.is_empty())
            .collect();
        if let Some(user) = users.iter().find(|user| user.contains(',')) {
            return Err(FlagError::Invalid(format!(
                "user id {user:?} holds a comma, which Unleash's user lists cannot hold"
            )));
        }
        let strategy =
            (!users.is_empty()).then(|| strategy("userWithId", [("userIds", users.join(","))]));
        replace_strategy(&mut feature.strategies, "userWithId", strategy);
    }
    if let Some(percent) = settings.rollout_percent {
        if !(0.0..=100.0).contains(&percent) {
            return Err(FlagError::Invalid(format!(
                "--rollout {percent}% is not a percentage from 0% to 100%"
            )));
        }
        let rollout = strategy(
            "flexibleRollout",
            [
                ("rollout", format_percent(percent)),
                ("stickiness", "default".to_string()),
                ("groupId", name.to_string()),
            ],
        );
        replace_strategy(&mut feature.strategies, "flexibleRollout", Some(rollout));
    }
    if had_strategies && feature.strategies.is_empty() {
        return Err(FlagError::Invalid(format!(
            "that would leave flag {name:?} with no strategy, which turns it on for everyone; \
             say --rollout 100% if that is meant, or `baton flags off {name}` to turn it off"
        )));
    }
    if let Some(variants) = &settings.variants {
        feature.variants = variant_definitions(variants)?;
    }
    Ok(feature)
}

fn strategy<const N: usize>(name: &str, parameters: [(&str, String); N]) -> Strategy {
    Strategy {
        name: name.to_string(),
        parameters: parameters
            .into_iter()
            .map(|(key, value)| (key.to_string(), value))
            .collect(),
        constraints: Vec::new(),
        segments: Vec::new(),
        variants: Vec::new(),
        disabled: false,
    }
}

/// Puts `new` where the first strategy called `name` is (removing any
/// others of that name), or at the end; `None` removes them.
fn replace_strategy(strategies: &mut Vec<Strategy>, name: &str, new: Option<Strategy>) {
    let at = strategies.iter().position(|strategy| strategy.name == name);
    strategies.retain(|strategy| strategy.name != name);
    if let Some(new) = new {
        let at = at.unwrap_or(strategies.len()).min(strategies.len());
        strategies.insert(at, new);
    }
}

/// `5`, `12.5`: Unleash's rollout parameter is text, and a whole number
/// reads best without `.0`.
fn format_percent(percent: f64) -> String {
    let text = format!("{percent:.4}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The variants with their weights scaled to [`TOTAL_WEIGHT`]; what the
/// rounding leaves over goes to the last one.
fn variant_definitions(variants: &[VariantWeight]) -> Result<Vec<VariantDefinition>, FlagError> {
    if variants.is_empty() {
        return Ok(Vec::new());
    }
    let mut seen = std::collections::HashSet::new();
    for variant in variants {
        if variant.name.trim().is_empty() {
            return Err(FlagError::Invalid(
                "a variant has an empty name".to_string(),
            ));
        }
        if !seen.insert(variant.name.as_str()) {
            return Err(FlagError::Invalid(format!(
                "variant {:?} is listed twice; give each variant one weight",
                variant.name
            )));
        }
    }
    let total: u64 = variants
        .iter()
        .map(|variant| u64::from(variant.weight))
        .sum();
    if total == 0 {
        return Err(FlagError::Invalid(
            "the variants weigh nothing; give at least one a weight above 0, e.g. a:50,b:50"
                .to_string(),
        ));
    }
    let mut given = 0u32;
    let last = variants.len() - 1;
    Ok(variants
        .iter()
        .enumerate()
        .map(|(index, variant)| {
            let weight = if index == last {
                TOTAL_WEIGHT - given
            } else {
                let scaled = u64::from(variant.weight) * u64::from(TOTAL_WEIGHT) / total;
                u32::try_from(scaled).unwrap_or(TOTAL_WEIGHT)
            };
            given += weight;
            VariantDefinition {
                name: variant.name.clone(),
                weight,
                weight_type: Some("variable".to_string()),
                stickiness: Some("default".to_string()),
                payload: None,
                overrides: Vec::new(),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_flags::{Context, Features};

    fn settings(rollout: Option<f64>, users: Option<&[&str]>) -> FlagSettings {
        FlagSettings {
            rollout_percent: rollout,
            users: users.map(|users| users.iter().map(|user| user.to_string()).collect()),
            ..FlagSettings::default()
        }
    }

    fn names(feature: &Feature) -> Vec<&str> {
        feature.strategies.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn users_and_rollout_become_unleash_strategies() {
        let feature = apply(
            "new_editor",
            None,
            &settings(Some(5.0), Some(&["alice", " bob"])),
        )
        .unwrap();
        assert!(feature.enabled);
        assert_eq!(names(&feature), ["userWithId", "flexibleRollout"]);
        assert_eq!(feature.strategies[0].parameters["userIds"], "alice,bob");
        let rollout = &feature.strategies[1].parameters;
        assert_eq!(rollout["rollout"], "5");
        assert_eq!(rollout["stickiness"], "default");
        assert_eq!(rollout["groupId"], "new_editor");

        // Evaluated as Unleash would: the users always, 5% of the rest.
        let features = Features::new(baton_flags::ClientFeatures {
            features: vec![feature],
            ..Default::default()
        })
        .unwrap();
        let user = |id: &str| Context {
            user_id: Some(id.to_string()),
            ..Context::default()
        };
        assert!(features.is_enabled("new_editor", &user("alice")));
        let on = (0..10_000)
            .filter(|id| features.is_enabled("new_editor", &user(&format!("u{id}"))))
            .count();
        assert!((400..=600).contains(&on), "{on} of 10000 at 5%");
    }

    #[test]
    fn each_option_replaces_its_own_strategy_only() {
        let first = apply("f", None, &settings(Some(5.0), Some(&["alice"]))).unwrap();
        let second = apply("f", Some(&first), &settings(Some(12.5), None)).unwrap();
        assert_eq!(names(&second), ["userWithId", "flexibleRollout"]);
        assert_eq!(second.strategies[1].parameters["rollout"], "12.5");
        assert_eq!(second.strategies[0].parameters["userIds"], "alice");
        let third = apply("f", Some(&second), &settings(None, Some(&[]))).unwrap();
        assert_eq!(names(&third), ["flexibleRollout"]);
    }

    #[test]
    fn removing_the_last_strategy_is_refused() {
        let first = apply("f", None, &settings(None, Some(&["alice"]))).unwrap();
        let error = apply("f", Some(&first), &settings(None, Some(&[]))).unwrap_err();
        assert!(error.to_string().contains("on for everyone"), "{error}");
    }

    #[test]
    fn bad_values_are_refused() {
        for percent in [-1.0, 100.5, f64::NAN] {
            assert!(
                apply("f", None, &settings(Some(percent), None)).is_err(),
                "{percent}"
            );
        }
        let variants = |list: &[(&str, u32)]| FlagSettings {
            variants: Some(
                list.iter()
                    .map(|(name, weight)| VariantWeight {
                        name: name.to_string(),
                        weight: *weight,
                    })
                    .collect(),
            ),
            ..FlagSettings::default()
        };
        assert!(apply("f", None, &variants(&[("a", 0), ("b", 0)])).is_err());
        assert!(apply("f", None, &variants(&[("a", 1), ("a", 1)])).is_err());
        let scaled = apply("f", None, &variants(&[("a", 1), ("b", 1), ("c", 1)])).unwrap();
        let weights: Vec<u32> = scaled.variants.iter().map(|v| v.weight).collect();
        assert_eq!(weights, [333, 333, 334]);
    }
}
