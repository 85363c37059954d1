//! A strategy: one way a flag can be on for a context. A flag is on when any
//! of its strategies holds; a strategy holds when all its constraints and
//! segments do and its own rule (a user list, a rollout percentage, an
//! address list) does.

use std::collections::{BTreeMap, HashMap};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::bucket::rollout_bucket;
use crate::constraint::{Condition, Constraint};
use crate::context::Context;
use crate::evaluation::Reason;
use crate::host::Host;
use crate::lenient::{null_as_default, string_map};
use crate::network;
use crate::stickiness::{Stickiness, Sticky};
use crate::variant_definition::VariantDefinition;

/// One strategy of a flag, as Unleash writes it.
///
/// The names baton knows are Unleash's built-in ones: `default`,
/// `userWithId` (`userIds`), `flexibleRollout` (`rollout`, `stickiness`,
/// `groupId`), `gradualRolloutUserId` and `gradualRolloutSessionId`
/// (`percentage`, `groupId`), `gradualRolloutRandom` (`percentage`),
/// `remoteAddress` (`IPs`) and `applicationHostname` (`hostNames`). Any other
/// name (an Unleash custom strategy) never holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Strategy {
    /// Which strategy.
    pub name: String,
    /// Its parameters, all text, as Unleash sends them.
    #[serde(default, deserialize_with = "string_map")]
    pub parameters: BTreeMap<String, String>,
    /// Constraints that must all hold.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub constraints: Vec<Constraint>,
    /// Ids of segments whose constraints must all hold too. A missing
    /// segment makes the strategy fail, as in Unleash.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub segments: Vec<u32>,
    /// Variants handed out when this strategy is the one that turned the flag
    /// on; empty means the flag's own variants.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub variants: Vec<VariantDefinition>,
    /// A strategy switched off in Unleash's UI; it never holds.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub disabled: bool,
}

/// A strategy ready to evaluate.
#[derive(Debug, Clone)]
pub(crate) struct CompiledStrategy {
    rule: Rule,
    /// The strategy's constraints, then its segments' constraints.
    conditions: Vec<Condition>,
    pub(crate) variants: Vec<VariantDefinition>,
    /// The `groupId` its rollout and variants hash with.
    pub(crate) group_id: String,
    /// The stickiness its variants use (its own `stickiness` parameter).
    pub(crate) stickiness: Stickiness,
    /// What this strategy holding (or not) means for OFREP.
    pub(crate) reason: Reason,
}

/// The strategy's own rule, beside its constraints.
#[derive(Debug, Clone)]
enum Rule {
    Always,
    UserIds(Vec<String>),
    Rollout {
        percent: f64,
        stickiness: Stickiness,
    },
    Networks(Vec<IpNet>),
    /// Lowered, as host names compare without case.
    Hostnames(Vec<String>),
    Never,
}

impl Strategy {
    /// Makes the strategy ready to evaluate for flag `flag`. `segments` holds
    /// every segment's constraints, ready, by id. What cannot be read makes
    /// the strategy fail and is described in `problems`.
    pub(crate) fn compile(
        &self,
        flag: &str,
        segments: &HashMap<u32, Vec<Condition>>,
        problems: &mut Vec<String>,
    ) -> CompiledStrategy {
        let mut own = Vec::new();
        let mut rule = self.rule(&mut own).unwrap_or_else(|problem| {
            own.push(format!("{problem}; it never holds"));
            Rule::Never
        });
        let mut conditions: Vec<Condition> = self
            .constraints
            .iter()
            .map(|constraint| constraint.compile(&mut own))
            .collect();
        for id in &self.segments {
            match segments.get(id) {
                Some(segment) => conditions.extend(segment.iter().cloned()),
                None => {
                    own.push(format!("segment {id} does not exist; it never holds"));
                    rule = Rule::Never;
                }
            }
        }
        if self.disabled {
            rule = Rule::Never;
        }
        problems.extend(
            own.into_iter()
                .map(|problem| format!("strategy {:?}: {problem}", self.name)),
        );
        let reason = reason(&rule, conditions.is_empty());
        CompiledStrategy {
            rule,
            conditions,
            variants: self.variants.clone(),
            group_id: self
                .parameter("groupId")
                .filter(|group| !group.is_empty())
                .unwrap_or(flag)
                .to_string(),
            stickiness: Stickiness::named(self.parameter("stickiness")),
            reason,
        }
    }

    fn rule(&self, problems: &mut Vec<String>) -> Result<Rule, String> {
        let rollout = |parameter, stickiness| -> Result<Rule, String> {
            Ok(Rule::Rollout {
                percent: self.percent(parameter)?,
                stickiness,
            })
        };
        Ok(match self.name.as_str() {
            "default" => Rule::Always,
            "userWithId" => Rule::UserIds(self.list("userIds").map(str::to_string).collect()),
            "flexibleRollout" => {
                rollout("rollout", Stickiness::named(self.parameter("stickiness")))?
            }
            "gradualRolloutUserId" => rollout("percentage", Stickiness::Field("userId".into()))?,
            "gradualRolloutSessionId" => {
                rollout("percentage", Stickiness::Field("sessionId".into()))?
            }
            "gradualRolloutRandom" => rollout("percentage", Stickiness::Random)?,
            "remoteAddress" => Rule::Networks(network::networks(self.list("IPs"), problems)),
            "applicationHostname" => {
                Rule::Hostnames(self.list("hostNames").map(str::to_lowercase).collect())
            }
            other => {
                return Err(format!(
                    "{other:?} is not a strategy baton knows (custom strategies are not \
                     supported)"
                ));
            }
        })
    }

    pub(crate) fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters.get(name).map(String::as_str)
    }

    /// A comma-separated parameter's entries, trimmed, empty ones left out.
    pub(crate) fn list(&self, name: &str) -> impl Iterator<Item = &str> {
        self.parameter(name)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
    }

    pub(crate) fn percent(&self, name: &str) -> Result<f64, String> {
        let text = self
            .parameter(name)
            .ok_or_else(|| format!("it has no {name} parameter"))?;
        text.trim()
            .parse::<f64>()
            .ok()
            .filter(|percent| percent.is_finite())
            .ok_or_else(|| format!("{name} {text:?} is not a percentage"))
    }
}

/// What a strategy holding means for OFREP: `SPLIT` for a partial rollout,
/// `STATIC` for one that holds for every context, `TARGETING_MATCH` else.
fn reason(rule: &Rule, unconditional: bool) -> Reason {
    match rule {
        Rule::Rollout { percent, .. } if *percent > 0.0 && *percent < 100.0 => Reason::Split,
        Rule::Always if unconditional => Reason::Static,
        // default stickiness falls back to a random bucket, so a full
        // rollout on it holds for everyone.
        Rule::Rollout {
            stickiness: Stickiness::Default | Stickiness::Random,
            ..
        } if unconditional => Reason::Static,
        _ => Reason::TargetingMatch,
    }
}

impl CompiledStrategy {
    /// Whether the strategy holds for the context.
    pub(crate) fn holds(&self, context: &Context, host: &Host) -> bool {
        self.conditions
            .iter()
            .all(|condition| condition.holds(context))
            && self.rule_holds(context, host)
    }

    fn rule_holds(&self, context: &Context, host: &Host) -> bool {
        match &self.rule {
            Rule::Always => true,
            Rule::Never => false,
            Rule::UserIds(ids) => context
                .user_id
                .as_deref()
                .is_some_and(|user| ids.iter().any(|id| id == user)),
            Rule::Rollout {
                percent,
                stickiness,
            } => {
                let bucket = match stickiness.resolve(context) {
                    Sticky::Value(value) => rollout_bucket(&self.group_id, &value),
                    Sticky::Random => host.random.bucket(100),
                    Sticky::Missing => return false,
                };
                f64::from(bucket) <= *percent
            }
            Rule::Networks(networks) => context
                .remote_address
                .as_deref()
                .is_some_and(|address| network::contains(networks, address)),
            Rule::Hostnames(names) => host
                .hostname
                .as_deref()
                .is_some_and(|host| names.iter().any(|name| name == host)),
        }
    }
}

#[cfg(test)]
mod tests;
