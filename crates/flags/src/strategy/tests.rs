//! Each built-in strategy, its parameters, segments and what it means for
//! OFREP's reason.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::json;

use super::{CompiledStrategy, Strategy};
use crate::constraint::Constraint;
use crate::context::Context;
use crate::evaluation::Reason;
use crate::host::Host;

fn compile(strategy: serde_json::Value) -> (CompiledStrategy, Vec<String>) {
    let strategy: Strategy = serde_json::from_value(strategy).unwrap();
    let segment: Constraint = serde_json::from_value(
        json!({"contextName": "environment", "operator": "IN", "values": ["prod"]}),
    )
    .unwrap();
    let segments = HashMap::from([(7, vec![segment.compile(&mut Vec::new())])]);
    let mut problems = Vec::new();
    let compiled = strategy.compile("flag", &segments, &mut problems);
    (compiled, problems)
}

fn holds(strategy: serde_json::Value, context: &Context) -> bool {
    compile(strategy).0.holds(context, &Host::default())
}

fn user(id: &str) -> Context {
    Context {
        user_id: Some(id.into()),
        ..Context::default()
    }
}

fn session(id: &str) -> Context {
    Context {
        session_id: Some(id.into()),
        ..Context::default()
    }
}

fn host(hostname: Option<&str>, bucket: u32) -> Host {
    Host {
        hostname: hostname.map(str::to_string),
        random: Arc::new(move |_| bucket),
    }
}

#[test]
fn default_always_holds() {
    assert!(holds(json!({"name": "default"}), &Context::default()));
    assert!(holds(
        json!({"name": "default", "parameters": null, "constraints": null}),
        &Context::default()
    ));
}

#[test]
fn user_with_id_holds_for_listed_users() {
    let strategy = json!({"name": "userWithId", "parameters": {"userIds": "123, 222,88"}});
    assert!(holds(strategy.clone(), &user("222")));
    assert!(holds(strategy.clone(), &user("88")));
    assert!(!holds(strategy.clone(), &user("22")));
    assert!(!holds(strategy, &Context::default()));
}

#[test]
fn flexible_rollout_hashes_the_stickiness_value() {
    let rollout = |percent: &str, stickiness: &str| {
        json!({"name": "flexibleRollout", "parameters": {
            "rollout": percent, "stickiness": stickiness,
            "groupId": "Feature.flexibleRollout.10"}})
    };
    // Bucket of "Feature.flexibleRollout.10:174" is 10.
    assert!(holds(rollout("10", "default"), &user("174")));
    assert!(!holds(rollout("9", "default"), &user("174")));
    assert!(!holds(rollout("10", "default"), &user("499")));
    assert!(holds(rollout("10", "default"), &session("174")));
    assert!(holds(rollout("10", "sessionId"), &session("174")));
    assert!(
        !holds(rollout("10", "userId"), &session("174")),
        "no userId"
    );
    assert!(!holds(rollout("100", "userId"), &Context::default()));
    assert!(!holds(rollout("0", "default"), &user("174")));
    let custom = Context {
        properties: [("tenant".to_string(), "174".to_string())].into(),
        ..Context::default()
    };
    assert!(holds(rollout("10", "tenant"), &custom));
    assert!(!holds(rollout("10", "tenant"), &user("174")));
}

#[test]
fn flexible_rollout_group_defaults_to_the_flag_name() {
    let (named, _) = compile(json!({"name": "flexibleRollout", "parameters": {"rollout": "50"}}));
    assert_eq!(named.group_id, "flag");
    let (empty, _) =
        compile(json!({"name": "flexibleRollout", "parameters": {"rollout": "50", "groupId": ""}}));
    assert_eq!(empty.group_id, "flag");
}

#[test]
fn random_stickiness_draws_from_the_source() {
    let strategy = |stickiness: &str| {
        compile(json!({"name": "flexibleRollout",
                       "parameters": {"rollout": "30", "stickiness": stickiness}}))
        .0
    };
    let random = strategy("random");
    assert!(random.holds(&user("174"), &host(None, 30)));
    assert!(!random.holds(&user("174"), &host(None, 31)));
    // default stickiness draws only when there is neither user nor session.
    let default = strategy("default");
    assert!(default.holds(&Context::default(), &host(None, 1)));
    assert!(!default.holds(&Context::default(), &host(None, 100)));
}

#[test]
fn gradual_rollouts() {
    let by_session = json!({"name": "gradualRolloutSessionId",
                            "parameters": {"percentage": "50", "groupId": "AB12A"}});
    assert!(holds(by_session.clone(), &session("122")));
    assert!(!holds(by_session.clone(), &session("155")));
    assert!(!holds(by_session, &user("122")));

    let by_user = json!({"name": "gradualRolloutUserId",
                         "parameters": {"percentage": "100", "groupId": "g"}});
    assert!(holds(by_user.clone(), &user("1")));
    assert!(!holds(by_user, &session("1")));

    let (random, _) = compile(json!({"name": "gradualRolloutRandom",
                                     "parameters": {"percentage": "40"}}));
    assert!(random.holds(&user("1"), &host(None, 40)));
    assert!(!random.holds(&user("1"), &host(None, 41)));
}

#[test]
fn remote_address_takes_addresses_and_ranges() {
    let strategy = json!({"name": "remoteAddress",
                          "parameters": {"IPs": "127.0.0.1, 192.invalid, 10.0.0.0/8"}});
    let from = |address: &str| Context {
        remote_address: Some(address.into()),
        ..Context::default()
    };
    assert!(holds(strategy.clone(), &from("127.0.0.1")));
    assert!(holds(strategy.clone(), &from("10.1.2.3")));
    assert!(!holds(strategy.clone(), &from("11.0.0.1")));
    assert!(!holds(strategy.clone(), &Context::default()));
    let (_, problems) = compile(strategy);
    assert_eq!(problems.len(), 1, "{problems:?}");
}

#[test]
fn application_hostname_compares_without_case() {
    let (strategy, _) = compile(json!({"name": "applicationHostname",
                                       "parameters": {"hostNames": "Web-1, web-2"}}));
    let context = Context::default();
    assert!(strategy.holds(&context, &host(Some("web-1"), 1)));
    assert!(!strategy.holds(&context, &host(Some("web-3"), 1)));
    assert!(
        !strategy.holds(&context, &host(None, 1)),
        "an unnamed host matches no name"
    );
}

#[test]
fn constraints_and_segments_must_all_hold() {
    let strategy = json!({"name": "default", "segments": [7], "constraints": [
        {"contextName": "userId", "operator": "IN", "values": ["1"]}]});
    let both = Context {
        user_id: Some("1".into()),
        environment: Some("prod".into()),
        ..Context::default()
    };
    assert!(holds(strategy.clone(), &both));
    assert!(!holds(strategy.clone(), &user("1")), "segment fails");
    let mut other_user = both.clone();
    other_user.user_id = Some("2".into());
    assert!(!holds(strategy, &other_user), "constraint fails");
}

#[test]
fn what_cannot_work_never_holds_and_says_why() {
    for (strategy, problem) in [
        (json!({"name": "default", "segments": [404]}), "segment 404"),
        (json!({"name": "myCustomStrategy"}), "custom strategies"),
        (json!({"name": "flexibleRollout"}), "no rollout parameter"),
        (
            json!({"name": "flexibleRollout", "parameters": {"rollout": "half"}}),
            "not a percentage",
        ),
    ] {
        let (compiled, problems) = compile(strategy.clone());
        assert!(!compiled.holds(&user("1"), &Host::default()), "{strategy}");
        assert_eq!(problems.len(), 1, "{strategy}: {problems:?}");
        assert!(problems[0].contains(problem), "{}", problems[0]);
    }
    let (disabled, problems) = compile(json!({"name": "default", "disabled": true}));
    assert!(!disabled.holds(&user("1"), &Host::default()));
    assert!(problems.is_empty());
}

#[test]
fn reasons() {
    let reason = |strategy| compile(strategy).0.reason;
    assert_eq!(reason(json!({"name": "default"})), Reason::Static);
    assert_eq!(
        reason(json!({"name": "flexibleRollout", "parameters": {"rollout": "100"}})),
        Reason::Static
    );
    assert_eq!(
        reason(json!({"name": "flexibleRollout", "parameters": {"rollout": "5"}})),
        Reason::Split
    );
    assert_eq!(
        reason(json!({"name": "flexibleRollout",
                      "parameters": {"rollout": "100", "stickiness": "userId"}})),
        Reason::TargetingMatch
    );
    assert_eq!(
        reason(json!({"name": "default", "segments": [7]})),
        Reason::TargetingMatch
    );
    assert_eq!(
        reason(json!({"name": "userWithId", "parameters": {"userIds": "a"}})),
        Reason::TargetingMatch
    );
}

#[test]
fn writes_back_the_unleash_shape() {
    let text = r#"{"name":"flexibleRollout","parameters":{"groupId":"g","rollout":"5","stickiness":"default"},"constraints":[{"contextName":"appName","operator":"IN","values":["web"],"inverted":false,"caseInsensitive":false}],"segments":[1],"variants":[{"name":"a","weight":1000,"weightType":"variable","stickiness":"default"}]}"#;
    let strategy: Strategy = serde_json::from_str(text).unwrap();
    assert_eq!(serde_json::to_string(&strategy).unwrap(), text);
}
