//! A constraint's operator, read and written by its Unleash wire name.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares the operators once, so the enum, its wire names and the parsing
/// of them cannot drift apart.
macro_rules! operators {
    ($($(#[$doc:meta])* $variant:ident => $wire:literal,)+) => {
        /// How a constraint compares a context field with its values.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum Operator {
            $($(#[$doc])* $variant,)+
            /// An operator this version does not know, kept by name so an
            /// export writes it back unchanged. A constraint with it never
            /// matches, as in Unleash's SDKs.
            Unknown(String),
        }

        impl Operator {
            /// The operator's Unleash wire name, such as `STR_CONTAINS`.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)+
                    Self::Unknown(name) => name,
                }
            }

            /// The operator with this wire name; any other name is
            /// [`Operator::Unknown`].
            pub fn from_name(name: &str) -> Self {
                match name {
                    $($wire => Self::$variant,)+
                    other => Self::Unknown(other.to_string()),
                }
            }
        }
    };
}

operators! {
    /// The field's value is one of the values.
    In => "IN",
    /// The field is absent or its value is none of the values.
    NotIn => "NOT_IN",
    /// The value contains one of the values.
    StrContains => "STR_CONTAINS",
    /// The value starts with one of the values.
    StrStartsWith => "STR_STARTS_WITH",
    /// The value ends with one of the values.
    StrEndsWith => "STR_ENDS_WITH",
    /// The value, as a number, equals the constraint's number.
    NumEq => "NUM_EQ",
    /// The value, as a number, is greater.
    NumGt => "NUM_GT",
    /// The value, as a number, is greater or equal.
    NumGte => "NUM_GTE",
    /// The value, as a number, is less.
    NumLt => "NUM_LT",
    /// The value, as a number, is less or equal.
    NumLte => "NUM_LTE",
    /// The value, as an RFC 3339 time, is after the constraint's time.
    DateAfter => "DATE_AFTER",
    /// The value, as an RFC 3339 time, is before the constraint's time.
    DateBefore => "DATE_BEFORE",
    /// The value, as a semantic version, has the same precedence.
    SemverEq => "SEMVER_EQ",
    /// The value, as a semantic version, is newer.
    SemverGt => "SEMVER_GT",
    /// The value, as a semantic version, is newer or the same.
    SemverGte => "SEMVER_GTE",
    /// The value, as a semantic version, is older.
    SemverLt => "SEMVER_LT",
    /// The value, as a semantic version, is older or the same.
    SemverLte => "SEMVER_LTE",
    /// The value matches the regular expression (Rust `regex` syntax: no
    /// look-around or back-references, as in Unleash's specification).
    Regex => "REGEX",
    /// The value, as an IP address, is inside one of the networks (CIDR
    /// ranges or single addresses).
    InCidr => "IN_CIDR",
}

impl Serialize for Operator {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Operator {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Ok(Self::from_name(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::Operator;

    #[test]
    fn wire_names_round_trip() {
        for name in [
            "IN",
            "NOT_IN",
            "STR_CONTAINS",
            "STR_STARTS_WITH",
            "STR_ENDS_WITH",
            "NUM_EQ",
            "NUM_GT",
            "NUM_GTE",
            "NUM_LT",
            "NUM_LTE",
            "DATE_AFTER",
            "DATE_BEFORE",
            "SEMVER_EQ",
            "SEMVER_GT",
            "SEMVER_GTE",
            "SEMVER_LT",
            "SEMVER_LTE",
            "REGEX",
            "IN_CIDR",
        ] {
            let operator = Operator::from_name(name);
            assert!(!matches!(operator, Operator::Unknown(_)), "{name}");
            assert_eq!(operator.as_str(), name);
        }
    }

    #[test]
    fn unknown_operators_keep_their_name() {
        let operator: Operator = serde_json::from_str(r#""NOT_A_VALID_OPERATOR""#).unwrap();
        assert_eq!(operator, Operator::Unknown("NOT_A_VALID_OPERATOR".into()));
        assert_eq!(
            serde_json::to_string(&operator).unwrap(),
            r#""NOT_A_VALID_OPERATOR""#
        );
    }
}
