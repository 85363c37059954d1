//! The answer to "is this flag on for this context, and with which
//! variant", with the reason OFREP reports for it.

use serde::{Deserialize, Serialize};

use crate::variant::Variant;

/// One flag evaluated for one context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Whether the flag is on.
    pub enabled: bool,
    /// The variant handed out (`disabled` when off or without variants).
    pub variant: Variant,
    /// Why, in OFREP's terms.
    pub reason: Reason,
}

/// Why an evaluation came out as it did, with OFREP's names for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// The answer is the same for every context: the flag has no
    /// strategies, or the one that matched has no condition at all.
    Static,
    /// A condition on the context decided: constraints, segments, user
    /// lists, addresses, host names, a parent flag, a variant override.
    TargetingMatch,
    /// A percentage decided: the context's bucket in a rollout, or among
    /// weighted variants.
    Split,
    /// The flag is switched off.
    Disabled,
}

impl Reason {
    /// The name OFREP gives the reason, such as `TARGETING_MATCH`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Static => "STATIC",
            Self::TargetingMatch => "TARGETING_MATCH",
            Self::Split => "SPLIT",
            Self::Disabled => "DISABLED",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Reason;

    #[test]
    fn names_match_ofrep() {
        for reason in [
            Reason::Static,
            Reason::TargetingMatch,
            Reason::Split,
            Reason::Disabled,
        ] {
            assert_eq!(
                serde_json::to_string(&reason).unwrap(),
                format!("\"{}\"", reason.as_str())
            );
        }
    }
}
