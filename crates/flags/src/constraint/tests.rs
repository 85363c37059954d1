//! Each operator, with `inverted`, `caseInsensitive` and absent fields.

use serde_json::json;
use time::macros::datetime;

use super::Constraint;
use crate::context::Context;

fn constraint(json: serde_json::Value) -> Constraint {
    serde_json::from_value(json).unwrap()
}

/// Whether a constraint on `field` holds when the context gives `value` (as a
/// property, or `None` for absent).
fn holds(constraint: &Constraint, value: Option<&str>) -> bool {
    let mut context = Context::default();
    if let Some(value) = value {
        context
            .properties
            .insert(constraint.context_name.clone(), value.to_string());
    }
    let mut problems = Vec::new();
    constraint.compile(&mut problems).holds(&context)
}

fn op(operator: &str, values: &[&str]) -> Constraint {
    constraint(json!({"contextName": "f", "operator": operator, "values": values}))
}

fn op1(operator: &str, value: &str) -> Constraint {
    constraint(json!({"contextName": "f", "operator": operator, "value": value}))
}

/// Checks (operator, constraint value, context value, expected) rows of
/// single-value operators.
fn check_single_value(cases: &[(&str, &str, &str, bool)]) {
    for &(operator, value, context, expected) in cases {
        assert_eq!(
            holds(&op1(operator, value), Some(context)),
            expected,
            "{context} {operator} {value}"
        );
    }
}

fn with(mut constraint: Constraint, inverted: bool, case_insensitive: bool) -> Constraint {
    constraint.inverted = inverted;
    constraint.case_insensitive = case_insensitive;
    constraint
}

#[test]
fn in_and_not_in() {
    let is_in = op("IN", &["a", "b"]);
    assert!(holds(&is_in, Some("a")));
    assert!(!holds(&is_in, Some("c")));
    assert!(!holds(&is_in, None));
    assert!(!holds(&op("IN", &[]), Some("a")));
    // IN compares exactly: Unleash applies caseInsensitive to STR_* only.
    assert!(!holds(&with(op("IN", &["a"]), false, true), Some("A")));

    let not_in = op("NOT_IN", &["a", "b"]);
    assert!(!holds(&not_in, Some("a")));
    assert!(holds(&not_in, Some("c")));
    assert!(holds(&not_in, None), "an absent field is in no list");
    assert!(holds(&op("NOT_IN", &[]), Some("a")));

    assert!(!holds(&with(op("IN", &["a"]), true, false), Some("a")));
    assert!(holds(&with(op("IN", &["a"]), true, false), None));
    assert!(!holds(&with(op("NOT_IN", &["a"]), true, false), None));
}

#[test]
fn string_operators() {
    let contains = op("STR_CONTAINS", &["email", "mail"]);
    assert!(holds(&contains, Some("test@some-email.com")));
    assert!(!holds(&contains, Some("test@another.com")));
    assert!(!holds(&contains, None));
    assert!(holds(
        &with(contains, true, false),
        Some("test@another.com")
    ));

    let starts = op("STR_STARTS_WITH", &["e1", "e2"]);
    assert!(holds(&starts, Some("e2 cool")));
    assert!(!holds(&starts, Some("cool e1")));

    let ends = op("STR_ENDS_WITH", &["some-email.com"]);
    assert!(holds(&ends, Some("a@some-email.com")));
    assert!(!holds(&ends, Some("a@SOME-EMAIL.com")));
    assert!(holds(&with(ends, false, true), Some("a@SOME-EMAIL.com")));
    assert!(holds(
        &with(op("STR_STARTS_WITH", &["TEST"]), false, true),
        Some("TEsT@example.com")
    ));
    assert!(!holds(&op("STR_CONTAINS", &[]), Some("x")));
}

#[test]
fn number_operators() {
    let cases = [
        ("NUM_EQ", "12", "12.0", true),
        ("NUM_EQ", "12.0", "12", true),
        ("NUM_EQ", "12", "13", false),
        ("NUM_GT", "12", "13", true),
        ("NUM_GT", "12", "12", false),
        ("NUM_GTE", "12", "12", true),
        ("NUM_GTE", "12", "11", false),
        ("NUM_LT", "12", "-3", true),
        ("NUM_LT", "12", "12", false),
        ("NUM_LTE", "12", "12", true),
        ("NUM_LTE", "12", "13", false),
        ("NUM_EQ", "12", "twelve", false),
    ];
    check_single_value(&cases);
    assert!(!holds(&op1("NUM_EQ", "12"), None));
    assert!(holds(&with(op1("NUM_EQ", "12"), true, false), Some("13")));
}

#[test]
fn date_operators_read_the_context_time() {
    let after = op1("DATE_AFTER", "2022-01-29T13:00:00.000Z");
    let before = op1("DATE_BEFORE", "2022-01-29T13:00:00.000Z");
    let at = |time| Context {
        current_time: Some(time),
        ..Context::default()
    };
    let on_time = |mut constraint: Constraint, context: &Context| {
        constraint.context_name = "currentTime".into();
        constraint.compile(&mut Vec::new()).holds(context)
    };
    let later = at(datetime!(2022-01-30 13:00 UTC));
    let earlier = at(datetime!(2022-01-28 13:00 UTC));
    let same = at(datetime!(2022-01-29 13:00 UTC));
    assert!(on_time(after.clone(), &later));
    assert!(!on_time(after.clone(), &earlier));
    assert!(!on_time(after.clone(), &same));
    assert!(on_time(before.clone(), &earlier));
    assert!(!on_time(before.clone(), &same));
    assert!(
        !on_time(after.clone(), &Context::default()),
        "no time given, no match"
    );
    // Offsets count: 11:30Z is after 13:00+02:00.
    let zoned = op1("DATE_AFTER", "2022-01-22T13:00:00.000+02:00");
    assert!(on_time(zoned, &at(datetime!(2022-01-22 11:30 UTC))));
    // Any other field is parsed from text.
    assert!(holds(&after, Some("2022-02-01T00:00:00Z")));
    assert!(!holds(&after, Some("next tuesday")));
}

#[test]
fn semver_operators() {
    let cases = [
        ("SEMVER_EQ", "1.2.2", "1.2.2", true),
        ("SEMVER_EQ", "1.2.2", "1.2.0", false),
        ("SEMVER_GT", "1.2.2", "1.2.3", true),
        ("SEMVER_GT", "1.2.2", "1.2.2", false),
        ("SEMVER_GTE", "1.2.2", "1.2.2", true),
        ("SEMVER_GTE", "1.2.2", "1.2.1", false),
        ("SEMVER_LT", "1.2.2", "1.2.1", true),
        ("SEMVER_LT", "2.0.0-alpha.1", "2.0.0-beta.1", false),
        ("SEMVER_LTE", "1.2.2", "1.2.2", true),
        ("SEMVER_LTE", "1.2.2", "1.2.3", false),
        ("SEMVER_GT", "2.0.0-alpha", "2.0.0-alpha.1", true),
        ("SEMVER_GT", "2.0.0-rc", "2.0.0", true),
        // Build metadata does not change precedence.
        ("SEMVER_EQ", "1.0.0+a", "1.0.0+b", true),
        ("SEMVER_EQ", "2.0.0", "v2.0.0", false),
        ("SEMVER_EQ", "2.0.0", "not a semver", false),
    ];
    check_single_value(&cases);
}

#[test]
fn regex_operator() {
    let email = op1("REGEX", "^[^@]+@[^@]+$");
    assert!(holds(&email, Some("test@example.com")));
    assert!(!holds(&email, Some("not-an-email")));
    assert!(!holds(&email, None));
    assert!(!holds(&op1("REGEX", "^abc$"), Some("AbC")));
    assert!(holds(
        &with(op1("REGEX", "^abc$"), false, true),
        Some("AbC")
    ));
    assert!(holds(
        &with(op1("REGEX", "^abc$"), true, false),
        Some("xyz")
    ));
    assert!(holds(&op1("REGEX", "(?m)^foo$"), Some("x\nfoo\ny")));
}

#[test]
fn cidr_operator() {
    let range = op("IN_CIDR", &["127.invalid", "160.33.0.0/16", "2001:db8::1"]);
    assert!(holds(&range, Some("160.33.0.33")));
    assert!(!holds(&range, Some("160.34.0.1")));
    assert!(holds(&range, Some("2001:db8::1")));
    assert!(!holds(&range, Some("2001:db8::2")));
    assert!(!holds(&range, None));
    assert!(!holds(&op("IN_CIDR", &["127.invalid"]), Some("127.0.0.1")));
}

#[test]
fn broken_constraints_never_match_and_say_why() {
    for broken in [
        op1("NUM_EQ", "twelve"),
        op1("DATE_AFTER", "yesterday"),
        op1("SEMVER_EQ", "v2.0.0"),
        op1("REGEX", "(regex"),
        op1("REGEX", "^(?=a)b$"),
        op("NOT_A_VALID_OPERATOR", &["x"]),
        constraint(json!({"contextName": "f", "operator": "NUM_EQ"})),
    ] {
        for inverted in [false, true] {
            let broken = with(broken.clone(), inverted, false);
            let mut problems = Vec::new();
            let condition = broken.compile(&mut problems);
            let context = Context {
                properties: [("f".to_string(), "x".to_string())].into(),
                ..Context::default()
            };
            assert!(!condition.holds(&context), "{broken:?}");
            assert_eq!(problems.len(), 1, "{broken:?}");
            assert!(problems[0].contains("never matches"), "{}", problems[0]);
        }
    }
}

#[test]
fn named_fields_are_read_from_the_context() {
    let constraint =
        constraint(json!({"contextName": "userId", "operator": "IN", "values": ["7"]}));
    let condition = constraint.compile(&mut Vec::new());
    let user = Context {
        user_id: Some("7".into()),
        ..Context::default()
    };
    let property = Context {
        properties: [("userId".to_string(), "7".to_string())].into(),
        ..Context::default()
    };
    assert!(condition.holds(&user));
    assert!(!condition.holds(&property), "userId is the named field");
}

#[test]
fn writes_back_the_unleash_shape() {
    let text = r#"{"contextName":"version","operator":"SEMVER_LT","value":"3.2.2","inverted":false,"caseInsensitive":false}"#;
    let constraint: Constraint = serde_json::from_str(text).unwrap();
    assert_eq!(serde_json::to_string(&constraint).unwrap(), text);
}
