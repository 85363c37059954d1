//! A constraint: one condition on the context that a strategy or segment
//! requires. The wire form is Unleash's; [`Condition`] is the same rule made
//! ready to evaluate (numbers, dates, versions, patterns and networks parsed
//! once, when the flags are loaded, not on every request).

use std::cmp::Ordering;

use ipnet::IpNet;
use regex::{Regex, RegexBuilder};
use semver::Version;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::context::Context;
use crate::lenient::{null_as_default, optional_text};
use crate::network;
use crate::operator::Operator;

/// One condition on the context, as Unleash writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Constraint {
    /// The context field compared: `userId`, `sessionId`, `remoteAddress`,
    /// `environment`, `appName`, `currentTime`, or a property's name.
    pub context_name: String,
    /// How the field is compared.
    pub operator: Operator,
    /// The values of the list operators (`IN`, `NOT_IN`, `STR_*`,
    /// `IN_CIDR`).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub values: Vec<String>,
    /// The one value of the `NUM_*`, `DATE_*`, `SEMVER_*` and `REGEX`
    /// operators.
    #[serde(
        default,
        deserialize_with = "optional_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub value: Option<String>,
    /// Whether the result is negated.
    #[serde(default, deserialize_with = "null_as_default")]
    pub inverted: bool,
    /// Whether the `STR_*` operators and `REGEX` ignore case.
    #[serde(default, deserialize_with = "null_as_default")]
    pub case_insensitive: bool,
}

/// A constraint ready to evaluate.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    field: String,
    test: Test,
    inverted: bool,
}

#[derive(Debug, Clone)]
enum Test {
    In(Vec<String>),
    NotIn(Vec<String>),
    Text {
        kind: TextTest,
        values: Vec<String>,
        case_insensitive: bool,
    },
    Number(Order, f64),
    Date(Order, OffsetDateTime),
    Version(Order, Version),
    Pattern(Regex),
    Network(Vec<IpNet>),
    /// The operator is unknown or the constraint's own value unreadable.
    Never,
}

#[derive(Debug, Clone, Copy)]
enum TextTest {
    Contains,
    StartsWith,
    EndsWith,
}

/// Which orderings of (context value, constraint value) satisfy an operator.
#[derive(Debug, Clone, Copy)]
enum Order {
    Equal,
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
}

impl Order {
    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Self::Equal => ordering.is_eq(),
            Self::Greater => ordering.is_gt(),
            Self::GreaterOrEqual => ordering.is_ge(),
            Self::Less => ordering.is_lt(),
            Self::LessOrEqual => ordering.is_le(),
        }
    }
}

impl Constraint {
    /// Makes the constraint ready to evaluate. A constraint whose own value
    /// cannot be read (an unknown operator, a number that is not one) becomes
    /// one that never matches, and `problems` says why.
    pub(crate) fn compile(&self, problems: &mut Vec<String>) -> Condition {
        let mut skipped = Vec::new();
        let test = self.test(&mut skipped).unwrap_or_else(|problem| {
            skipped.push(format!("{problem}; it never matches"));
            Test::Never
        });
        problems.extend(skipped.into_iter().map(|problem| {
            format!(
                "constraint on {:?} with {}: {problem}",
                self.context_name,
                self.operator.as_str()
            )
        }));
        Condition {
            field: self.context_name.clone(),
            test,
            inverted: self.inverted,
        }
    }

    fn test(&self, problems: &mut Vec<String>) -> Result<Test, String> {
        use Operator as Op;
        Ok(match &self.operator {
            Op::In => Test::In(self.values.clone()),
            Op::NotIn => Test::NotIn(self.values.clone()),
            Op::StrContains => self.text(TextTest::Contains),
            Op::StrStartsWith => self.text(TextTest::StartsWith),
            Op::StrEndsWith => self.text(TextTest::EndsWith),
            Op::NumEq => Test::Number(Order::Equal, self.number()?),
            Op::NumGt => Test::Number(Order::Greater, self.number()?),
            Op::NumGte => Test::Number(Order::GreaterOrEqual, self.number()?),
            Op::NumLt => Test::Number(Order::Less, self.number()?),
            Op::NumLte => Test::Number(Order::LessOrEqual, self.number()?),
            Op::DateAfter => Test::Date(Order::Greater, self.date()?),
            Op::DateBefore => Test::Date(Order::Less, self.date()?),
            Op::SemverEq => Test::Version(Order::Equal, self.version()?),
            Op::SemverGt => Test::Version(Order::Greater, self.version()?),
            Op::SemverGte => Test::Version(Order::GreaterOrEqual, self.version()?),
            Op::SemverLt => Test::Version(Order::Less, self.version()?),
            Op::SemverLte => Test::Version(Order::LessOrEqual, self.version()?),
            Op::Regex => Test::Pattern(self.pattern()?),
            Op::InCidr => Test::Network(network::networks(
                self.values.iter().map(String::as_str),
                problems,
            )),
            Op::Unknown(name) => return Err(format!("operator {name:?} is unknown")),
        })
    }

    fn text(&self, kind: TextTest) -> Test {
        // Unleash lowers both sides for caseInsensitive: the values once
        // here, the context value on each evaluation.
        let values = if self.case_insensitive {
            self.values
                .iter()
                .map(|value| value.to_lowercase())
                .collect()
        } else {
            self.values.clone()
        };
        Test::Text {
            kind,
            values,
            case_insensitive: self.case_insensitive,
        }
    }

    fn number(&self) -> Result<f64, String> {
        let text = self.single()?;
        text.trim()
            .parse()
            .map_err(|_| format!("value {text:?} is not a number"))
    }

    fn date(&self) -> Result<OffsetDateTime, String> {
        let text = self.single()?;
        OffsetDateTime::parse(text.trim(), &Rfc3339)
            .map_err(|_| format!("value {text:?} is not an RFC 3339 time"))
    }

    fn version(&self) -> Result<Version, String> {
        let text = self.single()?;
        Version::parse(text.trim()).map_err(|_| format!("value {text:?} is not a semantic version"))
    }

    fn pattern(&self) -> Result<Regex, String> {
        let text = self.single()?;
        RegexBuilder::new(text)
            .case_insensitive(self.case_insensitive)
            .build()
            .map_err(|_| {
                format!(
                    "{text:?} is not a regular expression this engine accepts \
                     (no look-around or back-references)"
                )
            })
    }

    fn single(&self) -> Result<&str, String> {
        self.value
            .as_deref()
            .ok_or_else(|| "it has no value".to_string())
    }
}

impl Condition {
    /// Whether the context satisfies the constraint.
    pub(crate) fn holds(&self, context: &Context) -> bool {
        // Fetched only by the tests that need it: `currentTime` as text
        // costs a formatting.
        let value = || context.value(&self.field);
        let result = match &self.test {
            // A broken constraint must not switch a flag on for everyone
            // when inverted: it fails either way.
            Test::Never => return false,
            Test::In(values) => value().is_some_and(|value| values.iter().any(|v| *v == *value)),
            Test::NotIn(values) => value().is_none_or(|value| values.iter().all(|v| *v != *value)),
            Test::Text {
                kind,
                values,
                case_insensitive,
            } => value().is_some_and(|value| {
                let value = if *case_insensitive {
                    value.to_lowercase()
                } else {
                    value.into_owned()
                };
                values.iter().any(|wanted| kind.holds(&value, wanted))
            }),
            Test::Number(order, wanted) => value()
                .and_then(|value| value.trim().parse::<f64>().ok())
                .and_then(|number| number.partial_cmp(wanted))
                .is_some_and(|ordering| order.holds(ordering)),
            Test::Date(order, wanted) => self
                .time(context)
                .is_some_and(|time| order.holds(time.cmp(wanted))),
            Test::Version(order, wanted) => value()
                .and_then(|value| Version::parse(value.trim()).ok())
                .is_some_and(|version| order.holds(version.cmp_precedence(wanted))),
            Test::Pattern(pattern) => value().is_some_and(|value| pattern.is_match(&value)),
            Test::Network(networks) => {
                value().is_some_and(|value| network::contains(networks, &value))
            }
        };
        result != self.inverted
    }

    /// The field as a time: `currentTime` as given, any other field parsed
    /// from RFC 3339.
    fn time(&self, context: &Context) -> Option<OffsetDateTime> {
        if self.field == "currentTime" {
            return context.current_time;
        }
        let value = context.value(&self.field)?;
        OffsetDateTime::parse(value.trim(), &Rfc3339).ok()
    }
}

impl TextTest {
    fn holds(self, value: &str, wanted: &str) -> bool {
        match self {
            Self::Contains => value.contains(wanted),
            Self::StartsWith => value.starts_with(wanted),
            Self::EndsWith => value.ends_with(wanted),
        }
    }
}

#[cfg(test)]
mod tests;
