//! A feature flag: its switch, strategies, variants and parent flags.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::constraint::Condition;
use crate::context::Context;
use crate::dependency::Dependency;
use crate::evaluation::Reason;
use crate::host::Host;
use crate::lenient::null_as_default;
use crate::stickiness::Stickiness;
use crate::strategy::{CompiledStrategy, Strategy};
use crate::variant::Variant;
use crate::variant_definition::{Pick, VariantDefinition, pick};

/// One flag, as Unleash's `/api/client/features` writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Feature {
    /// The name applications ask for; unique among the flags.
    pub name: String,
    /// Unleash's flag type (`release`, `experiment`, `kill-switch`, ...);
    /// informative only.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// A description for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Unleash's project; informative only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The switch: when false the flag is off for everyone, whatever its
    /// strategies say.
    pub enabled: bool,
    /// Marked stale in Unleash.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub stale: bool,
    /// Unleash's impression-data switch; kept for export.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub impression_data: bool,
    /// Ways the flag can be on; any one suffices. No strategies at all means
    /// on for everyone (while `enabled`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub strategies: Vec<Strategy>,
    /// The flag's variants, used when the strategy that turned it on has
    /// none of its own.
    #[serde(default, deserialize_with = "null_as_default")]
    pub variants: Vec<VariantDefinition>,
    /// Parent flags that must be in a given state for this one to be on.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub dependencies: Vec<Dependency>,
}

/// A flag ready to evaluate.
#[derive(Debug, Clone)]
pub(crate) struct CompiledFeature {
    name: String,
    pub(crate) enabled: bool,
    strategies: Vec<CompiledStrategy>,
    variants: Vec<VariantDefinition>,
    /// The first variant's stickiness, which Unleash applies to the list.
    variant_stickiness: Stickiness,
    pub(crate) dependencies: Vec<Dependency>,
}

/// What the strategies say about a flag for one context.
#[derive(Debug)]
pub(crate) enum Decision<'f> {
    /// On, through this strategy (none when the flag has no strategies).
    On {
        strategy: Option<&'f CompiledStrategy>,
        reason: Reason,
    },
    /// Off.
    Off(Reason),
}

impl Feature {
    /// Makes the flag ready to evaluate; `problems` receives what could not
    /// be read (each such part fails rather than holds).
    pub(crate) fn compile(
        &self,
        segments: &HashMap<u32, Vec<Condition>>,
        problems: &mut Vec<String>,
    ) -> CompiledFeature {
        CompiledFeature {
            name: self.name.clone(),
            enabled: self.enabled,
            strategies: self
                .strategies
                .iter()
                .map(|strategy| strategy.compile(&self.name, segments, problems))
                .collect(),
            variants: self.variants.clone(),
            variant_stickiness: Stickiness::named(
                self.variants
                    .first()
                    .and_then(|variant| variant.stickiness.as_deref()),
            ),
            dependencies: self.dependencies.clone(),
        }
    }
}

impl CompiledFeature {
    /// What the strategies say, the switch and parents aside.
    pub(crate) fn decide(&self, context: &Context, host: &Host) -> Decision<'_> {
        if self.strategies.is_empty() {
            return Decision::On {
                strategy: None,
                reason: Reason::Static,
            };
        }
        match self
            .strategies
            .iter()
            .find(|strategy| strategy.holds(context, host))
        {
            Some(strategy) => Decision::On {
                strategy: Some(strategy),
                reason: strategy.reason,
            },
            // Left out of a partial rollout is a split; left out by a
            // condition is targeting.
            None if self
                .strategies
                .iter()
                .any(|strategy| strategy.reason == Reason::Split) =>
            {
                Decision::Off(Reason::Split)
            }
            None => Decision::Off(Reason::TargetingMatch),
        }
    }

    /// The variant for a context the flag is on for: the deciding strategy's
    /// variants if it has any, else the flag's. The reason becomes
    /// `TARGETING_MATCH` for an override and `SPLIT` for a pick by weight.
    pub(crate) fn variant(
        &self,
        strategy: Option<&CompiledStrategy>,
        reason: Reason,
        context: &Context,
        host: &Host,
    ) -> (Variant, Reason) {
        let (definitions, group_id, stickiness) = match strategy {
            Some(strategy) if !strategy.variants.is_empty() => {
                (&strategy.variants, &strategy.group_id, &strategy.stickiness)
            }
            _ => (&self.variants, &self.name, &self.variant_stickiness),
        };
        match pick(
            definitions,
            group_id,
            stickiness,
            context,
            host.random.as_ref(),
        ) {
            None => (Variant::disabled(true), reason),
            Some((definition, how)) => {
                let reason = match how {
                    Pick::Override => Reason::TargetingMatch,
                    Pick::Weight => Reason::Split,
                    Pick::Only => reason,
                };
                (Variant::picked(definition), reason)
            }
        }
    }
}
