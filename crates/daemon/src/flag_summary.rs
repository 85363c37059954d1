//! A flag's strategies in words, for `baton flags list` and `show`: who the
//! flag is on for, without reading Unleash's JSON.

use baton_flags::{Constraint, Strategy};

/// What `strategy` of flag `flag` turns the flag on for, such as
/// `5% of users` or `users alice, bob if environment IN [prod]`.
pub fn describe_strategy(flag: &str, strategy: &Strategy) -> String {
    let parameter = |name: &str| strategy.parameters.get(name).map(String::as_str);
    let list = |name: &str| {
        parameter(name)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let percent = |name: &str| format!("{}%", parameter(name).unwrap_or("?").trim());
    let group = || match parameter("groupId") {
        Some(group) if !group.is_empty() && group != flag => format!(", group {group}"),
        _ => String::new(),
    };
    let mut text = match strategy.name.as_str() {
        "default" => "everyone".to_string(),
        "userWithId" => format!("users {}", list("userIds")),
        "flexibleRollout" => {
            let stickiness = match parameter("stickiness") {
                None | Some("" | "default") => String::new(),
                Some(field) => format!(" by {field}"),
            };
            format!("{} of users{stickiness}{}", percent("rollout"), group())
        }
        "gradualRolloutUserId" => {
            format!("{} of users by userId{}", percent("percentage"), group())
        }
        "gradualRolloutSessionId" => {
            format!("{} of sessions{}", percent("percentage"), group())
        }
        "gradualRolloutRandom" => format!("{} at random", percent("percentage")),
        "remoteAddress" => format!("addresses {}", list("IPs")),
        "applicationHostname" => format!("hosts {}", list("hostNames")),
        other => format!("custom strategy {other:?} (not supported: never holds)"),
    };
    let conditions: Vec<String> = strategy
        .constraints
        .iter()
        .map(describe_constraint)
        .chain(strategy.segments.iter().map(|id| format!("segment {id}")))
        .collect();
    if !conditions.is_empty() {
        text.push_str(" if ");
        text.push_str(&conditions.join(" and "));
    }
    if !strategy.variants.is_empty() {
        let names: Vec<&str> = strategy
            .variants
            .iter()
            .map(|variant| variant.name.as_str())
            .collect();
        text.push_str(&format!(", variants {}", names.join(", ")));
    }
    if strategy.disabled {
        text.push_str(" (disabled)");
    }
    text
}

fn describe_constraint(constraint: &Constraint) -> String {
    let not = if constraint.inverted { "NOT " } else { "" };
    let values = match &constraint.value {
        Some(value) => value.clone(),
        None => format!("[{}]", constraint.values.join(", ")),
    };
    let case = if constraint.case_insensitive {
        " (any case)"
    } else {
        ""
    };
    format!(
        "{} {not}{} {values}{case}",
        constraint.context_name,
        constraint.operator.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::describe_strategy;
    use baton_flags::Strategy;

    fn describe(json: &str) -> String {
        let strategy: Strategy = serde_json::from_str(json).unwrap();
        describe_strategy("f", &strategy)
    }

    #[test]
    fn says_who_the_flag_is_on_for() {
        assert_eq!(describe(r#"{"name": "default"}"#), "everyone");
        assert_eq!(
            describe(r#"{"name": "userWithId", "parameters": {"userIds": "alice, bob"}}"#),
            "users alice, bob"
        );
        assert_eq!(
            describe(
                r#"{"name": "flexibleRollout", "parameters": {"rollout": "5", "stickiness": "default", "groupId": "f"}}"#
            ),
            "5% of users"
        );
        assert_eq!(
            describe(
                r#"{"name": "flexibleRollout", "parameters": {"rollout": "50", "stickiness": "tenant", "groupId": "g"},
                    "constraints": [{"contextName": "environment", "operator": "IN", "values": ["prod"]},
                                    {"contextName": "appVersion", "operator": "SEMVER_GT", "value": "1.2.0", "inverted": true}],
                    "segments": [3], "variants": [{"name": "blue", "weight": 1}]}"#
            ),
            "50% of users by tenant, group g if environment IN [prod] and appVersion NOT \
             SEMVER_GT 1.2.0 and segment 3, variants blue"
        );
        assert_eq!(
            describe(r#"{"name": "mine", "disabled": true}"#),
            "custom strategy \"mine\" (not supported: never holds) (disabled)"
        );
    }
}
