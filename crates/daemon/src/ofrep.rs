//! OFREP, the OpenFeature Remote Evaluation Protocol (v0.3.0), on the admin
//! listener, so that any OpenFeature SDK can use the host's flags:
//!
//! - `POST /ofrep/v1/evaluate/flags/{key}`: one flag, for server-side
//!   (dynamic context) providers;
//! - `POST /ofrep/v1/evaluate/flags`: every flag, for client-side (static
//!   context) providers, with an `ETag` (the revision and a digest of the
//!   context) and `304` on a matching `If-None-Match`;
//! - `GET /ofrep/v1/events`: the change stream the bulk response announces
//!   in `eventStreams` (ADR-0008): one `refetchEvaluation` message per new
//!   revision, so providers refetch at once instead of polling.
//!
//! A flag without variants answers `value: true|false` (variant `on` or
//! `off`). A flag with variants answers the variant's payload as a value
//! of its type, or its name when it has none; when no variant is handed
//! out (off, or on without one) it answers no `value`, which tells the
//! provider to use the code's default (ADR-0006).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use baton_flags::{Evaluation, Feature, Payload};
use futures_util::Stream;
use serde_json::{Map, Value, json};

use crate::flag_service::{FlagService, FlagSnapshot};
use crate::flag_tally::EvaluationSource;
use crate::ofrep_context::{self, ContextError};

/// Path of the change stream, announced in every bulk answer.
pub const EVENTS_PATH: &str = "/ofrep/v1/events";

/// How long a hidden client keeps the stream open before it closes it
/// (OFREP's default too).
const INACTIVITY_DELAY_SEC: u64 = 120;

/// The OFREP routes.
pub fn router(flags: Arc<FlagService>) -> Router {
    Router::new()
        .route("/ofrep/v1/evaluate/flags/{key}", post(evaluate_one))
        .route("/ofrep/v1/evaluate/flags", post(evaluate_all))
        .route(EVENTS_PATH, get(events))
        .with_state(flags)
}

async fn evaluate_one(
    State(flags): State<Arc<FlagService>>,
    Path(key): Path<String>,
    body: Bytes,
) -> Response {
    let request = match ofrep_context::read(&body) {
        Ok(request) => request,
        Err(error) => return failure(Some(&key), &error),
    };
    let snapshot = flags.current();
    let state = snapshot.features.state();
    let (Some(feature), Some(evaluation)) = (
        state.feature(&key),
        snapshot.features.evaluate(&key, &request.context),
    ) else {
        let body = json!({
            "key": key,
            "errorCode": "FLAG_NOT_FOUND",
            "errorDetails": format!("flag {key:?} was not found; `baton flags list` shows the flags"),
        });
        return (StatusCode::NOT_FOUND, Json(body)).into_response();
    };
    snapshot.record_named(&key, EvaluationSource::Ofrep, evaluation.enabled);
    Json(success(feature, &evaluation)).into_response()
}

async fn evaluate_all(
    State(flags): State<Arc<FlagService>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = match ofrep_context::read(&body) {
        Ok(request) => request,
        Err(error) => return failure(None, &error),
    };
    let snapshot = flags.current();
    let etag = format!("\"{}-{:016x}\"", snapshot.revision, request.digest);
    let etag_value = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\""));
    if headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| matches_etag(value, &etag))
    {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response();
    }
    let answers: Vec<Value> = snapshot
        .features
        .state()
        .features
        .iter()
        .enumerate()
        .filter_map(|(index, feature)| {
            let evaluation = snapshot
                .features
                .evaluate(&feature.name, &request.context)?;
            snapshot.record(index, EvaluationSource::Ofrep, evaluation.enabled);
            Some(success(feature, &evaluation))
        })
        .collect();
    let body = json!({
        "flags": answers,
        "metadata": {"revision": snapshot.revision},
        "eventStreams": [{
            "type": "sse",
            "endpoint": {"requestUri": EVENTS_PATH},
            "inactivityDelaySec": INACTIVITY_DELAY_SEC,
        }],
    });
    ([(header::ETAG, etag_value)], Json(body)).into_response()
}

/// Whether an `If-None-Match` value (`"a", W/"b"` or `*`) names `etag`.
fn matches_etag(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

/// The change stream: a `refetchEvaluation` message for every revision
/// after the one the client has (`Last-Event-ID`, else the current one).
async fn events(State(flags): State<Arc<FlagService>>, headers: HeaderMap) -> impl IntoResponse {
    let mut revisions = flags.subscribe();
    let seen = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    // A client that missed revisions while away hears of them at once.
    let current = *revisions.borrow_and_update();
    let missed = seen.is_some_and(|seen| seen < current);
    let stream = futures_util::stream::unfold(
        (revisions, flags, missed),
        |(mut revisions, flags, missed)| async move {
            if !missed {
                revisions.changed().await.ok()?;
            }
            let snapshot = flags.current();
            let event = change_event(&snapshot);
            Some((Ok::<_, Infallible>(event), (revisions, flags, false)))
        },
    );
    let stream: std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>> =
        Box::pin(stream);
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))],
        Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))),
    )
}

/// ADR-0008's notice: refetch, with the new revision as the config ETag.
fn change_event(snapshot: &FlagSnapshot) -> Event {
    let data = json!({
        "type": "refetchEvaluation",
        "etag": format!("\"{}\"", snapshot.revision),
        "lastModified": snapshot.at_ms / 1000,
    });
    Event::default()
        .id(snapshot.revision.to_string())
        .event("message")
        .data(data.to_string())
}

/// One flag's answer.
fn success(feature: &Feature, evaluation: &Evaluation) -> Value {
    let mut answer = Map::new();
    answer.insert("key".into(), feature.name.clone().into());
    answer.insert("reason".into(), evaluation.reason.as_str().into());
    let has_variants = !feature.variants.is_empty()
        || feature
            .strategies
            .iter()
            .any(|strategy| !strategy.variants.is_empty());
    if !has_variants {
        answer.insert("value".into(), evaluation.enabled.into());
        let variant = if evaluation.enabled { "on" } else { "off" };
        answer.insert("variant".into(), variant.into());
    } else if evaluation.variant.enabled {
        let value = match &evaluation.variant.payload {
            Some(payload) => payload_value(payload),
            None => evaluation.variant.name.clone().into(),
        };
        answer.insert("value".into(), value);
        answer.insert("variant".into(), evaluation.variant.name.clone().into());
    } else {
        // No value: the provider uses the code's default.
        answer.insert("variant".into(), evaluation.variant.name.clone().into());
    }
    Value::Object(answer)
}

/// A payload as the OFREP value of its type: `json` as the JSON it holds
/// (an object, a number, ...), `number` as a number, the rest as text. A
/// payload that does not read as its type (or a JSON list, which OFREP has
/// no type for) stays text.
fn payload_value(payload: &Payload) -> Value {
    let parsed = match payload.kind.as_str() {
        "json" => serde_json::from_str::<Value>(&payload.value).ok(),
        "number" => serde_json::from_str::<serde_json::Number>(payload.value.trim())
            .ok()
            .map(Value::Number),
        _ => None,
    };
    match parsed {
        Some(Value::Array(_)) | None => Value::String(payload.value.clone()),
        Some(value) => value,
    }
}

/// A refused request: 400 with OFREP's error code (with the key for one
/// flag, without for the bulk).
fn failure(key: Option<&str>, error: &ContextError) -> Response {
    let mut body = Map::new();
    if let Some(key) = key {
        body.insert("key".into(), key.into());
    }
    body.insert("errorCode".into(), error.code.into());
    body.insert("errorDetails".into(), error.details.clone().into());
    (StatusCode::BAD_REQUEST, Json(Value::Object(body))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_flags::{Context, Features};

    fn answer(json: &str, user: &str) -> Value {
        let features = Features::from_unleash_json(json).unwrap();
        let feature = &features.state().features[0];
        let context = Context {
            user_id: Some(user.to_string()),
            ..Context::default()
        };
        let evaluation = features.evaluate(&feature.name, &context).unwrap();
        success(feature, &evaluation)
    }

    #[test]
    fn plain_flags_answer_booleans() {
        let flags = r#"{"features": [{"name": "f", "enabled": true, "strategies": [
            {"name": "userWithId", "parameters": {"userIds": "alice"}}]}]}"#;
        assert_eq!(
            answer(flags, "alice"),
            json!({"key": "f", "value": true, "variant": "on", "reason": "TARGETING_MATCH"})
        );
        assert_eq!(
            answer(flags, "bob"),
            json!({"key": "f", "value": false, "variant": "off", "reason": "TARGETING_MATCH"})
        );
        let off = r#"{"features": [{"name": "f", "enabled": false}]}"#;
        assert_eq!(answer(off, "a")["reason"], "DISABLED");
    }

    #[test]
    fn variant_flags_answer_their_variant_or_the_code_default() {
        let flags = r#"{"features": [{"name": "checkout", "enabled": true, "variants": [
            {"name": "b", "weight": 1, "payload": {"type": "json", "value": "{\"color\": \"red\"}"}}]}]}"#;
        assert_eq!(
            answer(flags, "a"),
            json!({"key": "checkout", "value": {"color": "red"}, "variant": "b", "reason": "STATIC"})
        );
        let named = r#"{"features": [{"name": "c", "enabled": true, "variants": [
            {"name": "b", "weight": 1}]}]}"#;
        assert_eq!(answer(named, "a")["value"], "b");
        let off = r#"{"features": [{"name": "c", "enabled": false, "variants": [
            {"name": "b", "weight": 1}]}]}"#;
        assert_eq!(
            answer(off, "a"),
            json!({"key": "c", "variant": "disabled", "reason": "DISABLED"})
        );
    }

    #[test]
    fn payloads_keep_their_type() {
        let payload = |kind: &str, value: &str| Payload {
            kind: kind.to_string(),
            value: value.to_string(),
        };
        assert_eq!(payload_value(&payload("number", "42")), json!(42));
        assert_eq!(payload_value(&payload("number", "4.5")), json!(4.5));
        assert_eq!(payload_value(&payload("number", "many")), json!("many"));
        assert_eq!(payload_value(&payload("json", "[1]")), json!("[1]"));
        assert_eq!(payload_value(&payload("json", "true")), json!(true));
        assert_eq!(payload_value(&payload("string", "42")), json!("42"));
        assert_eq!(payload_value(&payload("csv", "a,b")), json!("a,b"));
    }

    #[test]
    fn if_none_match_lists_and_weak_tags_match() {
        assert!(matches_etag("\"3-ab\"", "\"3-ab\""));
        assert!(matches_etag("\"1-x\", W/\"3-ab\"", "\"3-ab\""));
        assert!(matches_etag("*", "\"3-ab\""));
        assert!(!matches_etag("\"2-ab\"", "\"3-ab\""));
    }
}
