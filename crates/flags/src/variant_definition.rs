//! A variant as a flag or strategy defines it, and how one is picked: an
//! override first, else by weight, hashing the stickiness value with the
//! variant seed as Unleash does.

use serde::{Deserialize, Serialize};

use crate::bucket::variant_bucket;
use crate::context::Context;
use crate::lenient::null_as_default;
use crate::random::RandomSource;
use crate::stickiness::{Stickiness, Sticky};
use crate::variant::Payload;

/// One variant of a flag or of a strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VariantDefinition {
    /// The variant's name, as the application sees it.
    pub name: String,
    /// Its share: it is picked for `weight` out of the sum of all weights.
    /// Unleash's weights add up to 1000.
    #[serde(default)]
    pub weight: u32,
    /// Unleash's `fix` or `variable`; kept so an export writes it back. The
    /// weight is what counts here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_type: Option<String>,
    /// The field that keeps a user on the same variant; the first variant's
    /// counts for a flag's list, and a strategy's variants use the
    /// strategy's `stickiness` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stickiness: Option<String>,
    /// The data it carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Payload>,
    /// Contexts that get this variant whatever their bucket.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub overrides: Vec<VariantOverride>,
}

/// Gives a variant to every context whose field has one of the values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VariantOverride {
    /// The context field, by its Unleash name.
    pub context_name: String,
    /// The values that get the variant.
    #[serde(default, deserialize_with = "null_as_default")]
    pub values: Vec<String>,
}

/// How a variant came to be picked, which tells OFREP's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pick {
    /// An override named this context.
    Override,
    /// The only variant with weight.
    Only,
    /// The context's bucket among several weighted variants.
    Weight,
}

/// The variant `definitions` give this context, and how it was picked; `None`
/// when there are none or they weigh nothing.
pub(crate) fn pick<'d>(
    definitions: &'d [VariantDefinition],
    group_id: &str,
    stickiness: &Stickiness,
    context: &Context,
    random: &dyn RandomSource,
) -> Option<(&'d VariantDefinition, Pick)> {
    if let Some(overridden) = definitions
        .iter()
        .find(|definition| definition.overrides.iter().any(|o| o.names(context)))
    {
        return Some((overridden, Pick::Override));
    }
    let weighted = || {
        definitions
            .iter()
            .filter(|definition| definition.weight > 0)
    };
    let total = weighted().fold(0u32, |total, definition| {
        total.saturating_add(definition.weight)
    });
    if total == 0 {
        return None;
    }
    let target = match stickiness.resolve(context) {
        Sticky::Value(value) => variant_bucket(group_id, &value, total),
        Sticky::Random | Sticky::Missing => random.bucket(total),
    };
    let mut reached = 0u32;
    let picked = weighted().find(|definition| {
        reached = reached.saturating_add(definition.weight);
        reached >= target
    })?;
    let how = if weighted().nth(1).is_some() {
        Pick::Weight
    } else {
        Pick::Only
    };
    Some((picked, how))
}

impl VariantOverride {
    fn names(&self, context: &Context) -> bool {
        context
            .value(&self.context_name)
            .is_some_and(|value| self.values.iter().any(|v| *v == *value))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Pick, VariantDefinition, pick};
    use crate::context::Context;
    use crate::stickiness::Stickiness;

    fn definitions(json: serde_json::Value) -> Vec<VariantDefinition> {
        serde_json::from_value(json).unwrap()
    }

    fn user(id: &str) -> Context {
        Context {
            user_id: Some(id.into()),
            ..Context::default()
        }
    }

    fn name(
        definitions: &[VariantDefinition],
        stickiness: &Stickiness,
        context: &Context,
        random: u32,
    ) -> Option<(String, Pick)> {
        pick(
            definitions,
            "Feature.Variants.D",
            stickiness,
            context,
            &move |_| random,
        )
        .map(|(definition, how)| (definition.name.clone(), how))
    }

    #[test]
    fn picks_by_weight_like_unleash() {
        // The client specification's Feature.Variants.D.
        let list = definitions(json!([
            {"name": "variant1", "weight": 1},
            {"name": "variant2", "weight": 49},
            {"name": "variant3", "weight": 50}
        ]));
        let default = Stickiness::Default;
        for (id, expected) in [
            ("712", "variant1"),
            ("525", "variant2"),
            ("537", "variant3"),
        ] {
            assert_eq!(
                name(&list, &default, &user(id), 1),
                Some((expected.to_string(), Pick::Weight))
            );
        }
    }

    #[test]
    fn overrides_come_first() {
        let list = definitions(json!([
            {"name": "a", "weight": 0, "overrides": [{"contextName": "userId", "values": ["132", "61"]}]},
            {"name": "b", "weight": 1}
        ]));
        let default = Stickiness::Default;
        assert_eq!(
            name(&list, &default, &user("61"), 1),
            Some(("a".to_string(), Pick::Override))
        );
        assert_eq!(
            name(&list, &default, &user("62"), 1),
            Some(("b".to_string(), Pick::Only)),
            "a variant of weight 0 is only reachable by override"
        );
    }

    #[test]
    fn without_a_stickiness_value_the_draw_decides() {
        let list = definitions(json!([{"name": "a", "weight": 1}, {"name": "b", "weight": 3}]));
        let nobody = Context::default();
        let default = Stickiness::Default;
        assert_eq!(name(&list, &default, &nobody, 1).unwrap().0, "a");
        assert_eq!(name(&list, &default, &nobody, 2).unwrap().0, "b");
        assert_eq!(name(&list, &default, &nobody, 4).unwrap().0, "b");
        // A named field that is absent draws too.
        let tenant = Stickiness::Field("tenant".into());
        assert_eq!(name(&list, &tenant, &user("x"), 1).unwrap().0, "a");
    }

    #[test]
    fn custom_stickiness_hashes_the_field() {
        // The client specification's custom stickiness cases: four variants
        // of weight 25 sticky on customField.
        let list = definitions(json!([
            {"name": "blue", "weight": 25}, {"name": "red", "weight": 25},
            {"name": "green", "weight": 25}, {"name": "yellow", "weight": 25}
        ]));
        let field = Stickiness::Field("customField".into());
        for (value, expected) in [
            ("616", "blue"),
            ("503", "red"),
            ("438", "green"),
            ("44", "yellow"),
        ] {
            let context = Context {
                properties: [("customField".to_string(), value.to_string())].into(),
                ..Context::default()
            };
            let picked = pick(
                &list,
                "Feature.flexible.rollout.custom.stickiness_100",
                &field,
                &context,
                &|_| 1,
            );
            assert_eq!(picked.unwrap().0.name, expected, "customField={value}");
        }
    }

    #[test]
    fn nothing_to_pick() {
        let default = Stickiness::Default;
        assert_eq!(name(&[], &default, &user("1"), 1), None);
        let weightless = definitions(json!([{"name": "a", "weight": 0}]));
        assert_eq!(name(&weightless, &default, &user("1"), 1), None);
    }
}
