//! Evaluating whole flags: the switch, strategies in order, parents,
//! variants, reasons, and the host's part.

use serde_json::json;

use super::Features;
use crate::context::Context;
use crate::error::FlagsError;
use crate::evaluation::Reason;
use crate::variant::Variant;

fn features(flags: serde_json::Value) -> Features {
    Features::from_unleash_json(&json!({"version": 2, "features": flags}).to_string()).unwrap()
}

fn user(id: &str) -> Context {
    Context {
        user_id: Some(id.into()),
        ..Context::default()
    }
}

fn reason(features: &Features, name: &str, context: &Context) -> (bool, Reason) {
    let evaluation = features.evaluate(name, context).unwrap();
    (evaluation.enabled, evaluation.reason)
}

#[test]
fn the_switch_decides_first() {
    let flags = features(json!([
        {"name": "off", "enabled": false, "strategies": [{"name": "default"}],
         "variants": [{"name": "a", "weight": 1}]},
        {"name": "on", "enabled": true, "strategies": []}
    ]));
    assert_eq!(reason(&flags, "off", &user("1")), (false, Reason::Disabled));
    assert_eq!(flags.variant("off", &user("1")), Variant::disabled(false));
    assert_eq!(reason(&flags, "on", &user("1")), (true, Reason::Static));
    assert_eq!(flags.variant("on", &user("1")), Variant::disabled(true));
}

#[test]
fn unknown_flags_are_off() {
    let flags = features(json!([]));
    assert!(!flags.is_enabled("nope", &user("1")));
    assert_eq!(flags.evaluate("nope", &user("1")), None);
    assert_eq!(flags.variant("nope", &user("1")), Variant::disabled(false));
    assert!(!flags.contains("nope"));
}

#[test]
fn any_strategy_suffices_and_the_first_that_holds_picks_the_variant() {
    let flags = features(json!([{
        "name": "f", "enabled": true,
        "strategies": [
            {"name": "userWithId", "parameters": {"userIds": "staff"},
             "variants": [{"name": "staff-variant", "weight": 1}]},
            {"name": "default", "constraints": [
                {"contextName": "environment", "operator": "IN", "values": ["prod"]}]}
        ],
        "variants": [{"name": "flag-variant", "weight": 1}]
    }]));
    assert_eq!(flags.variant("f", &user("staff")).name, "staff-variant");
    assert_eq!(
        reason(&flags, "f", &user("staff")),
        (true, Reason::TargetingMatch)
    );
    let prod = Context {
        environment: Some("prod".into()),
        ..user("other")
    };
    assert_eq!(flags.variant("f", &prod).name, "flag-variant");
    assert_eq!(
        reason(&flags, "f", &user("other")),
        (false, Reason::TargetingMatch)
    );
}

#[test]
fn rollouts_split() {
    let flags = features(json!([{
        "name": "Feature.flexibleRollout.10", "enabled": true,
        "strategies": [{"name": "flexibleRollout", "parameters": {"rollout": "10"}}]
    }]));
    let name = "Feature.flexibleRollout.10";
    assert_eq!(reason(&flags, name, &user("174")), (true, Reason::Split));
    assert_eq!(reason(&flags, name, &user("499")), (false, Reason::Split));
}

#[test]
fn weighted_variants_split_and_overrides_target() {
    let flags = features(json!([{
        "name": "f", "enabled": true, "strategies": [{"name": "default"}],
        "variants": [
            {"name": "a", "weight": 500, "overrides": [{"contextName": "userId", "values": ["vip"]}]},
            {"name": "b", "weight": 500}
        ]
    }]));
    assert_eq!(reason(&flags, "f", &user("1")), (true, Reason::Split));
    let vip = flags.evaluate("f", &user("vip")).unwrap();
    assert_eq!(
        (vip.variant.name.as_str(), vip.reason),
        ("a", Reason::TargetingMatch)
    );
    let single = features(json!([{
        "name": "f", "enabled": true, "variants": [{"name": "only", "weight": 1}]
    }]));
    let only = single.evaluate("f", &user("1")).unwrap();
    assert_eq!(
        (only.variant.name.as_str(), only.reason),
        ("only", Reason::Static)
    );
}

#[test]
fn variants_follow_the_injected_random_source_without_stickiness() {
    let flags = features(json!([{
        "name": "f", "enabled": true,
        "variants": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}]
    }]));
    let nobody = Context::default();
    assert_eq!(
        flags.clone().with_random(|_| 1).variant("f", &nobody).name,
        "a"
    );
    assert_eq!(flags.with_random(|_| 2).variant("f", &nobody).name, "b");
}

#[test]
fn parents_gate_their_children() {
    let flags = features(json!([
        {"name": "parent", "enabled": true, "strategies": [{"name": "userWithId",
            "parameters": {"userIds": "a,b"},
            "variants": [{"name": "blue", "weight": 1, "overrides": [
                {"contextName": "userId", "values": ["b"]}]},
                {"name": "green", "weight": 0, "overrides": [
                {"contextName": "userId", "values": ["a"]}]}]}]},
        {"name": "needs-on", "enabled": true, "dependencies": [{"feature": "parent"}]},
        {"name": "needs-off", "enabled": true,
         "dependencies": [{"feature": "parent", "enabled": false}]},
        {"name": "needs-green", "enabled": true,
         "dependencies": [{"feature": "parent", "variants": ["green"]}]},
        {"name": "grandchild", "enabled": true, "dependencies": [{"feature": "needs-on"}]},
        {"name": "orphan", "enabled": true, "dependencies": [{"feature": "missing"}]}
    ]));
    let on = |name, id| flags.is_enabled(name, &user(id));
    assert!(on("needs-on", "a") && !on("needs-on", "c"));
    assert!(!on("needs-off", "a") && on("needs-off", "c"));
    assert!(on("needs-green", "a") && !on("needs-green", "b") && !on("needs-green", "c"));
    assert!(
        !on("grandchild", "a"),
        "Unleash allows one level of parents"
    );
    assert!(!on("orphan", "a"));
    assert_eq!(
        reason(&flags, "needs-on", &user("c")),
        (false, Reason::TargetingMatch)
    );
    let warnings: Vec<String> = flags.warnings().iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].starts_with("flag \"grandchild\": parent flag \"needs-on\" has parents"));
    assert!(warnings[1].starts_with("flag \"orphan\": parent flag \"missing\" does not exist"));
}

#[test]
fn cycles_stay_off() {
    let flags = features(json!([
        {"name": "a", "enabled": true, "dependencies": [{"feature": "b"}]},
        {"name": "b", "enabled": true, "dependencies": [{"feature": "a"}]}
    ]));
    assert!(!flags.is_enabled("a", &user("1")));
    assert!(!flags.is_enabled("b", &user("1")));
}

#[test]
fn segments_are_shared_and_checked() {
    let flags = Features::from_unleash_json(
        &json!({"version": 2,
            "features": [{"name": "f", "enabled": true,
                          "strategies": [{"name": "default", "segments": [1]}]}],
            "segments": [{"id": 1, "name": "beta", "constraints": [
                {"contextName": "plan", "operator": "IN", "values": ["beta"]}]}]})
        .to_string(),
    )
    .unwrap();
    let beta = Context {
        properties: [("plan".to_string(), "beta".to_string())].into(),
        ..Context::default()
    };
    assert!(flags.is_enabled("f", &beta));
    assert!(!flags.is_enabled("f", &Context::default()));
    assert!(flags.warnings().is_empty());
}

#[test]
fn the_hostname_comes_from_the_caller() {
    let flags = features(json!([{"name": "f", "enabled": true, "strategies": [
        {"name": "applicationHostname", "parameters": {"hostNames": "web-1"}}]}]));
    assert!(!flags.is_enabled("f", &Context::default()));
    assert!(
        flags
            .with_hostname("WEB-1")
            .is_enabled("f", &Context::default())
    );
}

#[test]
fn duplicates_are_refused() {
    let flags = json!({"features": [{"name": "f", "enabled": true},
                                    {"name": "f", "enabled": false}]});
    let error = Features::from_unleash_json(&flags.to_string()).unwrap_err();
    assert!(matches!(error, FlagsError::DuplicateFlag(ref name) if name == "f"));
    assert!(error.to_string().contains("rename or remove one"));

    let segments = json!({"features": [], "segments": [{"id": 1}, {"id": 1}]});
    let error = Features::from_unleash_json(&segments.to_string()).unwrap_err();
    assert!(matches!(error, FlagsError::DuplicateSegment(1)));
}

#[test]
fn names_keep_the_document_order() {
    let flags = features(json!([{"name": "b", "enabled": true}, {"name": "a", "enabled": true}]));
    assert_eq!(flags.names().collect::<Vec<_>>(), ["b", "a"]);
}
