//! Whether a flag has settled: every request gets the same answer from it,
//! so the code that asks could stop asking. `baton flags stale` reports the
//! settled flags nobody has changed for a while.
//!
//! The rule reads the flag alone (not the segments, not the parent flags),
//! and when in doubt it says "not settled": a flag wrongly reported invites
//! someone to delete code that still matters.

use serde::{Deserialize, Serialize};

use crate::feature::Feature;
use crate::stickiness::Stickiness;
use crate::strategy::Strategy;
use crate::variant::Payload;
use crate::variant_definition::VariantDefinition;

/// The one answer a settled flag gives every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Settled {
    /// On for every request, with the same variant (or none) for all.
    On,
    /// Off for every request.
    Off,
}

/// What a list of variants can hand out: a variant's name and payload, or
/// `None` for no variant (the list is empty or weighs nothing).
type Outcome<'f> = Option<(&'f str, Option<&'f Payload>)>;

impl Feature {
    /// The answer every request gets from this flag, if there is just one;
    /// `None` while the answer can depend on who asks.
    ///
    /// **Off** when the flag is switched off, or switched on with
    /// strategies none of which can ever hold: each is switched off itself
    /// (`disabled`), a rollout of 0% (`flexibleRollout`'s `rollout`,
    /// `gradualRollout*`'s `percentage`), or a `userWithId` naming nobody.
    ///
    /// **On** when the flag is switched on, has no parent flags, and either
    /// has no strategy (on for everyone) or has one that holds for every
    /// request: not switched off, no constraints, no segments, and either
    /// `default` or a 100% rollout that needs no context field
    /// (`flexibleRollout` with `default` or `random` stickiness, or
    /// `gradualRolloutRandom`). And the variants must not split it: the
    /// strategies that can decide for some request (each live one up to and
    /// including the first that always holds) together hand out at most one
    /// variant, where a list of variants hands out each one with a weight or
    /// overrides (the strategy's own list, else the flag's).
    ///
    /// Anything else (a partial rollout, a user list, constraints, segments,
    /// a parent flag, a strategy baton does not know, a rollout it cannot
    /// read) is not settled.
    pub fn settled(&self) -> Option<Settled> {
        if !self.enabled {
            return Some(Settled::Off);
        }
        let live: Vec<&Strategy> = self
            .strategies
            .iter()
            .filter(|strategy| !never_holds(strategy))
            .collect();
        if !self.strategies.is_empty() && live.is_empty() {
            return Some(Settled::Off);
        }
        if !self.dependencies.is_empty() {
            return None;
        }
        let deciding: &[&Strategy] = if self.strategies.is_empty() {
            &[]
        } else {
            let first = live.iter().position(|strategy| always_holds(strategy))?;
            &live[..=first]
        };
        // The variants each deciding strategy hands out: its own, else the
        // flag's; with no strategy at all, the flag's.
        let lists: Vec<&[VariantDefinition]> = if deciding.is_empty() {
            vec![self.variants.as_slice()]
        } else {
            deciding
                .iter()
                .map(|strategy| {
                    if strategy.variants.is_empty() {
                        self.variants.as_slice()
                    } else {
                        strategy.variants.as_slice()
                    }
                })
                .collect()
        };
        let mut outcomes: Vec<Outcome<'_>> = Vec::new();
        for list in lists {
            for outcome in handed_out(list) {
                if !outcomes.contains(&outcome) {
                    outcomes.push(outcome);
                }
            }
        }
        (outcomes.len() <= 1).then_some(Settled::On)
    }
}

/// Whether the strategy can never hold, whatever the request.
fn never_holds(strategy: &Strategy) -> bool {
    if strategy.disabled {
        return true;
    }
    match strategy.name.as_str() {
        "userWithId" => strategy.list("userIds").next().is_none(),
        name => rollout_parameter(name)
            .and_then(|parameter| strategy.percent(parameter).ok())
            .is_some_and(|percent| percent <= 0.0),
    }
}

/// Whether the strategy holds for every request.
fn always_holds(strategy: &Strategy) -> bool {
    if strategy.disabled || !strategy.constraints.is_empty() || !strategy.segments.is_empty() {
        return false;
    }
    let full = |parameter| {
        strategy
            .percent(parameter)
            .is_ok_and(|percent| percent >= 100.0)
    };
    match strategy.name.as_str() {
        "default" => true,
        "flexibleRollout" => {
            matches!(
                Stickiness::named(strategy.parameter("stickiness")),
                Stickiness::Default | Stickiness::Random
            ) && full("rollout")
        }
        "gradualRolloutRandom" => full("percentage"),
        _ => false,
    }
}

/// The parameter that holds a rollout strategy's percentage.
fn rollout_parameter(strategy: &str) -> Option<&'static str> {
    match strategy {
        "flexibleRollout" => Some("rollout"),
        "gradualRolloutUserId" | "gradualRolloutSessionId" | "gradualRolloutRandom" => {
            Some("percentage")
        }
        _ => None,
    }
}

/// Every answer a list of variants can give: each variant with a weight or
/// an override, or no variant at all when none has either.
fn handed_out(list: &[VariantDefinition]) -> Vec<Outcome<'_>> {
    let given: Vec<Outcome<'_>> = list
        .iter()
        .filter(|variant| variant.weight > 0 || !variant.overrides.is_empty())
        .map(|variant| Some((variant.name.as_str(), variant.payload.as_ref())))
        .collect();
    if given.is_empty() { vec![None] } else { given }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn settled(flag: Value) -> Option<Settled> {
        let mut flag = flag;
        flag["name"] = json!("f");
        serde_json::from_value::<Feature>(flag).unwrap().settled()
    }

    fn on_with(strategies: Value) -> Option<Settled> {
        settled(json!({"enabled": true, "strategies": strategies}))
    }

    fn rollout(percent: &str, stickiness: &str) -> Value {
        json!({"name": "flexibleRollout",
               "parameters": {"rollout": percent, "stickiness": stickiness}})
    }

    #[test]
    fn a_flag_switched_off_is_off_whatever_its_strategies() {
        assert_eq!(settled(json!({"enabled": false})), Some(Settled::Off));
        assert_eq!(
            settled(json!({"enabled": false, "strategies": [rollout("50", "default")]})),
            Some(Settled::Off)
        );
    }

    #[test]
    fn a_flag_with_no_strategy_or_an_unconditional_one_is_on() {
        assert_eq!(settled(json!({"enabled": true})), Some(Settled::On));
        assert_eq!(on_with(json!([{"name": "default"}])), Some(Settled::On));
        assert_eq!(
            on_with(json!([rollout("100", "default")])),
            Some(Settled::On)
        );
        assert_eq!(
            on_with(json!([rollout("100", "random")])),
            Some(Settled::On)
        );
        assert_eq!(
            on_with(json!([{"name": "gradualRolloutRandom", "parameters": {"percentage": "100"}}])),
            Some(Settled::On)
        );
        // A partial rule first, then one for everyone: still on for all.
        assert_eq!(
            on_with(json!([
                {"name": "userWithId", "parameters": {"userIds": "alice"}},
                {"name": "default"}
            ])),
            Some(Settled::On)
        );
    }

    #[test]
    fn a_flag_whose_answer_depends_on_the_request_is_not_settled() {
        for strategies in [
            json!([rollout("50", "default")]),
            json!([rollout("99.9", "default")]),
            // Needs a userId: a request without one is left out.
            json!([rollout("100", "userId")]),
            json!([{"name": "gradualRolloutUserId", "parameters": {"percentage": "100"}}]),
            json!([{"name": "userWithId", "parameters": {"userIds": "alice"}}]),
            json!([{"name": "default", "constraints": [
                {"contextName": "environment", "operator": "IN", "values": ["prod"]}]}]),
            json!([{"name": "default", "segments": [1]}]),
            json!([{"name": "remoteAddress", "parameters": {"IPs": "10.0.0.0/8"}}]),
            json!([{"name": "myCustomStrategy"}]),
            json!([{"name": "flexibleRollout", "parameters": {"rollout": "lots"}}]),
        ] {
            assert_eq!(on_with(strategies.clone()), None, "{strategies}");
        }
        let child = json!({"enabled": true, "dependencies": [{"feature": "parent"}]});
        assert_eq!(settled(child), None);
    }

    #[test]
    fn a_flag_on_with_strategies_that_never_hold_is_off() {
        assert_eq!(
            on_with(json!([rollout("0", "default")])),
            Some(Settled::Off)
        );
        assert_eq!(
            on_with(json!([
                {"name": "default", "disabled": true},
                {"name": "userWithId", "parameters": {"userIds": " , "}},
                {"name": "gradualRolloutSessionId", "parameters": {"percentage": "0"}}
            ])),
            Some(Settled::Off)
        );
        // Off whatever a parent says.
        assert_eq!(
            settled(
                json!({"enabled": true, "strategies": [rollout("0", "default")],
                           "dependencies": [{"feature": "parent"}]})
            ),
            Some(Settled::Off)
        );
        // A dead strategy beside a live one changes nothing.
        assert_eq!(
            on_with(json!([{"name": "default", "disabled": true}, rollout("50", "default")])),
            None
        );
        assert_eq!(
            on_with(json!([{"name": "default", "disabled": true}, {"name": "default"}])),
            Some(Settled::On)
        );
    }

    #[test]
    fn variants_that_split_the_flag_unsettle_it() {
        let split = json!([{"name": "a", "weight": 500}, {"name": "b", "weight": 500}]);
        assert_eq!(settled(json!({"enabled": true, "variants": split})), None);
        let one = json!([{"name": "a", "weight": 1000}, {"name": "b", "weight": 0}]);
        assert_eq!(
            settled(json!({"enabled": true, "variants": one})),
            Some(Settled::On)
        );
        // An override hands a second variant to someone.
        let overridden = json!([{"name": "a", "weight": 1000},
            {"name": "b", "weight": 0,
             "overrides": [{"contextName": "userId", "values": ["alice"]}]}]);
        assert_eq!(
            settled(json!({"enabled": true, "variants": overridden})),
            None
        );
        // The strategy's own variants count, not the flag's.
        let own = json!({"name": "default", "variants": split});
        assert_eq!(
            settled(json!({"enabled": true, "strategies": [own], "variants": one})),
            None
        );
        let own = json!({"name": "default", "variants": one});
        assert_eq!(
            settled(json!({"enabled": true, "strategies": [own], "variants": split})),
            Some(Settled::On)
        );
        // Two deciding strategies that give different variants split it.
        let alice = json!({"name": "userWithId", "parameters": {"userIds": "alice"},
                           "variants": [{"name": "b", "weight": 1000}]});
        assert_eq!(
            settled(
                json!({"enabled": true, "strategies": [alice, {"name": "default"}],
                           "variants": one})
            ),
            None
        );
        // A disabled flag is off, variants or not.
        assert_eq!(
            settled(json!({"enabled": false, "variants": split})),
            Some(Settled::Off)
        );
    }

    #[test]
    fn settled_reads_as_on_and_off() {
        assert_eq!(serde_json::to_string(&Settled::On).unwrap(), "\"on\"");
        assert_eq!(serde_json::to_string(&Settled::Off).unwrap(), "\"off\"");
    }
}
