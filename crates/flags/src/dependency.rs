//! A dependency of one flag on another: a child flag is on only while its
//! parent is in the expected state.

use serde::{Deserialize, Serialize};

use crate::lenient::null_as_default;

/// What a flag requires of a parent flag, evaluated with the same context.
/// As in Unleash, a parent may not have parents of its own: a child of such
/// a flag (and so any cycle) is always off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    /// The parent flag's name. A parent that does not exist keeps the child
    /// off.
    pub feature: String,
    /// Whether the parent must be on (the default) or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// When the parent must be on: the variants, one of which it must hand
    /// out (empty: any).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub variants: Vec<String>,
}

impl Dependency {
    /// Whether the parent must be on.
    pub fn wants_enabled(&self) -> bool {
        self.enabled.unwrap_or(true)
    }
}
