//! The variant an evaluation hands back, in the shape Unleash's SDKs and its
//! client specification use.

use serde::{Deserialize, Serialize};

use crate::variant_definition::VariantDefinition;

/// The variant a user gets. When the flag is off for them, or has no
/// variants, this is Unleash's `disabled` variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variant {
    /// The variant's name; `disabled` when there is none.
    pub name: String,
    /// The data the variant carries, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Payload>,
    /// Whether a real variant was picked (false for `disabled`).
    pub enabled: bool,
    /// Whether the flag itself is on for this context; a flag can be on and
    /// still hand back `disabled` when it has no variants.
    #[serde(alias = "featureEnabled")]
    pub feature_enabled: bool,
}

/// A variant's data: its type (`string`, `json`, `csv`, `number`) and its
/// value, always text on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// The type, as Unleash names it.
    #[serde(rename = "type")]
    pub kind: String,
    /// The value, as text (a `json` payload holds JSON text).
    pub value: String,
}

impl Variant {
    /// The name Unleash gives the absence of a variant.
    pub const DISABLED: &'static str = "disabled";

    /// Unleash's `disabled` variant, for a flag that is on
    /// (`feature_enabled`) or off.
    pub fn disabled(feature_enabled: bool) -> Self {
        Self {
            name: Self::DISABLED.to_string(),
            payload: None,
            enabled: false,
            feature_enabled,
        }
    }

    /// The variant a definition gives when picked (its flag is on).
    pub(crate) fn picked(definition: &VariantDefinition) -> Self {
        Self {
            name: definition.name.clone(),
            payload: definition.payload.clone(),
            enabled: true,
            feature_enabled: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Variant;

    #[test]
    fn disabled_has_unleash_shape() {
        assert_eq!(
            serde_json::to_string(&Variant::disabled(true)).unwrap(),
            r#"{"name":"disabled","enabled":false,"feature_enabled":true}"#
        );
        let camel: Variant =
            serde_json::from_str(r#"{"name":"disabled","enabled":false,"featureEnabled":false}"#)
                .unwrap();
        assert_eq!(camel, Variant::disabled(false));
    }
}
