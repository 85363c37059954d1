//! Reading and writing the Unleash documents, and applying delta events.

use serde_json::json;

use super::ClientFeatures;
use crate::delta::DeltaEvent;
use crate::error::FlagsError;

#[test]
fn reads_what_unleash_serves_and_writes_it_back() {
    let served = json!({
        "version": 2,
        "features": [{
            "name": "checkout", "type": "release", "description": "new checkout",
            "project": "default", "enabled": true, "stale": false, "impressionData": false,
            "strategies": [{
                "name": "flexibleRollout",
                "parameters": {"groupId": "checkout", "rollout": "25", "stickiness": "default"},
                "constraints": [{"contextName": "appName", "operator": "IN",
                                 "values": ["web"], "inverted": false, "caseInsensitive": false}],
                "segments": [3],
                "variants": []
            }],
            "variants": [{"name": "a", "weight": 1000, "weightType": "variable",
                          "stickiness": "default", "payload": {"type": "json", "value": "{}"},
                          "overrides": []}],
            "dependencies": [{"feature": "cart", "enabled": true, "variants": ["x"]}]
        }],
        "segments": [{"id": 3, "name": "eu", "constraints": []}],
        "query": {"environment": "production"},
        "meta": {"revisionId": 12}
    });
    let document = ClientFeatures::from_unleash_json(&served.to_string()).unwrap();
    let written: serde_json::Value =
        serde_json::from_str(&document.to_unleash_json().unwrap()).unwrap();
    // Unleash's server-side extras (query, meta) and empty or false fields
    // are not written back; everything that evaluation reads is.
    let mut expected = served.clone();
    let expected = expected.as_object_mut().unwrap();
    expected.remove("query");
    expected.remove("meta");
    let feature = expected["features"][0].as_object_mut().unwrap();
    feature.remove("stale");
    feature.remove("impressionData");
    feature["strategies"][0]
        .as_object_mut()
        .unwrap()
        .remove("variants");
    feature["variants"][0]
        .as_object_mut()
        .unwrap()
        .remove("overrides");
    assert_eq!(written, serde_json::Value::Object(expected.clone()));
    assert_eq!(
        ClientFeatures::from_unleash_json(&written.to_string()).unwrap(),
        document
    );
}

#[test]
fn reads_nulls_and_numbers_as_unleash_exports_them() {
    let document = ClientFeatures::from_unleash_json(
        r#"{"features": [{"name": "f", "enabled": true, "description": null,
            "strategies": [{"name": "flexibleRollout", "parameters": {"rollout": 50},
                            "constraints": null, "segments": null, "variants": null}],
            "variants": null, "dependencies": null}], "segments": null}"#,
    )
    .unwrap();
    assert_eq!(document.version, 2);
    let strategy = &document.feature("f").unwrap().strategies[0];
    assert_eq!(strategy.parameters["rollout"], "50");
}

#[test]
fn reads_delta_events() {
    let events = json!({"events": [
        {"eventId": 1, "type": "hydration",
         "features": [{"name": "old", "enabled": true}, {"name": "kept", "enabled": false}],
         "segments": [{"id": 1, "constraints": []}]},
        {"eventId": 2, "type": "feature-updated", "feature": {"name": "kept", "enabled": true}},
        {"eventId": 3, "type": "feature-updated", "feature": {"name": "new", "enabled": true}},
        {"eventId": 4, "type": "feature-removed", "featureName": "old", "project": "default"},
        {"eventId": 5, "type": "segment-updated", "segment": {"id": 2, "constraints": []}},
        {"eventId": 6, "type": "segment-removed", "segmentId": 1},
        {"eventId": 7, "type": "something-new", "whatever": true}
    ]});
    let document = ClientFeatures::from_unleash_json(&events.to_string()).unwrap();
    let names: Vec<_> = document
        .features
        .iter()
        .map(|f| (f.name.as_str(), f.enabled))
        .collect();
    assert_eq!(names, [("kept", true), ("new", true)]);
    let ids: Vec<_> = document.segments.iter().map(|s| s.id).collect();
    assert_eq!(ids, [2]);
}

#[test]
fn hydration_replaces_everything() {
    let mut document = ClientFeatures::from_unleash_json(
        r#"{"features": [{"name": "a", "enabled": true}], "segments": [{"id": 1}]}"#,
    )
    .unwrap();
    document.apply(DeltaEvent::Hydration {
        event_id: 9,
        features: Vec::new(),
        segments: Vec::new(),
    });
    assert_eq!(document, ClientFeatures::default());
}

#[test]
fn says_what_is_wrong_and_what_to_do() {
    for (text, said) in [
        ("not json", "at line 1 column 2"),
        (
            r#"{"features": [{"name": "f"}]}"#,
            "missing field `enabled`",
        ),
        (
            r#"{"features": [{"enabled": true}]}"#,
            "missing field `name`",
        ),
        (
            r#"{"events": [{"type": "feature-updated"}]}"#,
            "missing field `eventId`",
        ),
        ("[]", "invalid type: sequence, expected a map"),
    ] {
        let error = ClientFeatures::from_unleash_json(text).unwrap_err();
        assert!(matches!(error, FlagsError::Read(_)));
        let message = error.to_string();
        assert!(message.contains(said), "{text}: {message}");
        assert!(message.contains("/api/client/features"), "{message}");
    }
}
