//! Nanoseconds per evaluation, baton beside Unleash's own engine
//! (yggdrasil), on the same flags and the same context, in one run:
//!
//! - `no_strategy`: one flag, switched on, no strategy;
//! - `one_constraint`: one `default` strategy with `userId IN [7]`;
//! - `two_constraints`: one strategy with `userId IN [7]` and
//!   `userId NOT_IN [8]` (yggdrasil's own "two strategies" bench);
//! - `two_strategies`: a `userWithId` that does not name the user, then a
//!   50% `flexibleRollout`: both are evaluated;
//! - `hundred_flags`: every flag of a set of 100 for one request (a mix of
//!   plain, user-list, rollout and constrained flags), as the proxy's
//!   injection does.
//!
//! Each engine answers `is_enabled`, the call both offer for the same work.
//! `bench/flags.sh` runs this and writes the medians to `BENCHMARKS.md`.

use std::hint::black_box;

use baton_flags::{Context, Features};
use criterion::{Criterion, criterion_group, criterion_main};
use unleash_yggdrasil::{EngineState, UpdateMessage};

/// Both engines loaded with the flags of `json` (Unleash's client features
/// document).
fn engines(json: &str) -> (Features, EngineState) {
    let features = Features::from_unleash_json(json).expect("baton reads the flags");
    let engine = EngineState::default();
    let message: UpdateMessage = serde_json::from_str(json).expect("yggdrasil reads the flags");
    engine.take_state(message);
    (features, engine)
}

fn one_flag(strategies: &str) -> String {
    format!(
        r#"{{"version": 2, "features": [{{"name": "test", "enabled": true, "strategies": {strategies}}}]}}"#
    )
}

/// The context of every case: user 7 in production.
fn contexts() -> (Context, unleash_yggdrasil::Context) {
    let baton = Context {
        user_id: Some("7".into()),
        environment: Some("production".into()),
        ..Context::default()
    };
    let yggdrasil = unleash_yggdrasil::Context {
        user_id: Some("7".into()),
        environment: Some("production".into()),
        ..unleash_yggdrasil::Context::default()
    };
    (baton, yggdrasil)
}

fn compare(criterion: &mut Criterion, case: &str, json: &str, names: &[String]) {
    let (features, engine) = engines(json);
    let (context, unleash_context) = contexts();
    // Both must agree, or the comparison would be of different work.
    for name in names {
        assert_eq!(
            features.is_enabled(name, &context),
            engine.is_enabled(name, &unleash_context, &None),
            "{case}: the engines disagree on {name}"
        );
    }
    let mut group = criterion.benchmark_group(case);
    group.bench_function("baton", |bench| {
        bench.iter(|| {
            for name in names {
                black_box(features.is_enabled(black_box(name), black_box(&context)));
            }
        })
    });
    group.bench_function("yggdrasil", |bench| {
        bench.iter(|| {
            for name in names {
                black_box(engine.is_enabled(black_box(name), black_box(&unleash_context), &None));
            }
        })
    });
    group.finish();
}

fn single_flags(criterion: &mut Criterion) {
    let test = ["test".to_string()];
    compare(criterion, "no_strategy", &one_flag("[]"), &test);
    let user_in = r#"{"contextName": "userId", "operator": "IN", "values": ["7"]}"#;
    let user_not_in = r#"{"contextName": "userId", "operator": "NOT_IN", "values": ["8"]}"#;
    compare(
        criterion,
        "one_constraint",
        &one_flag(&format!(
            r#"[{{"name": "default", "constraints": [{user_in}]}}]"#
        )),
        &test,
    );
    compare(
        criterion,
        "two_constraints",
        &one_flag(&format!(
            r#"[{{"name": "default", "constraints": [{user_in}, {user_not_in}]}}]"#
        )),
        &test,
    );
    compare(
        criterion,
        "two_strategies",
        &one_flag(
            r#"[{"name": "userWithId", "parameters": {"userIds": "alice,bob"}},
                {"name": "flexibleRollout", "parameters": {"rollout": "50", "stickiness": "default", "groupId": "test"}}]"#,
        ),
        &test,
    );
}

/// 100 flags, a quarter of each kind.
fn hundred(criterion: &mut Criterion) {
    let mut flags = Vec::new();
    for index in 0..100 {
        let strategies = match index % 4 {
            0 => "[]".to_string(),
            1 => r#"[{"name": "userWithId", "parameters": {"userIds": "alice,bob,7"}}]"#.to_string(),
            2 => format!(
                r#"[{{"name": "flexibleRollout", "parameters": {{"rollout": "{}", "stickiness": "default", "groupId": "flag_{index}"}}}}]"#,
                index % 100
            ),
            _ => r#"[{"name": "default", "constraints": [
                    {"contextName": "environment", "operator": "IN", "values": ["production", "staging"]}]}]"#
                .to_string(),
        };
        flags.push(format!(
            r#"{{"name": "flag_{index}", "enabled": {}, "strategies": {strategies}}}"#,
            index % 10 != 9
        ));
    }
    let json = format!(r#"{{"version": 2, "features": [{}]}}"#, flags.join(","));
    let names: Vec<String> = (0..100).map(|index| format!("flag_{index}")).collect();
    compare(criterion, "hundred_flags", &json, &names);
}

criterion_group!(benches, single_flags, hundred);
criterion_main!(benches);
