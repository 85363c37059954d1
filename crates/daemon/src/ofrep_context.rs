//! An OFREP evaluation context as an Unleash one: `targetingKey` is the
//! user (`userId`), `sessionId`, `remoteAddress`, `environment`, `appName`
//! and `currentTime` keep their names, and every other field becomes a
//! property. The time is now unless the caller says otherwise.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use baton_flags::Context;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Why a request's context cannot be evaluated, as OFREP codes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextError {
    /// `PARSE_ERROR`, `TARGETING_KEY_MISSING` or `INVALID_CONTEXT`.
    pub code: &'static str,
    /// What is wrong and what to send instead.
    pub details: String,
}

/// A request's context, read.
#[derive(Debug)]
pub struct RequestContext {
    /// The context to evaluate with.
    pub context: Context,
    /// A digest of what the caller sent, for the bulk response's `ETag`:
    /// the same context at the same revision gets the same answers.
    pub digest: u64,
}

/// Reads the body of an evaluation request, `{"context": {...}}`.
pub fn read(body: &[u8]) -> Result<RequestContext, ContextError> {
    let value: Value = serde_json::from_slice(body).map_err(|error| ContextError {
        code: "PARSE_ERROR",
        details: format!("the request body is not JSON ({error}); send {{\"context\": {{\"targetingKey\": \"...\"}}}}"),
    })?;
    let invalid = |details: String| ContextError {
        code: "INVALID_CONTEXT",
        details,
    };
    let Some(Value::Object(fields)) = value.get("context") else {
        return Err(invalid(
            "the request has no context object; send {\"context\": {\"targetingKey\": \"...\"}}"
                .to_string(),
        ));
    };
    let targeting_key = match fields.get("targetingKey") {
        None | Some(Value::Null) => None,
        Some(Value::String(key)) => Some(key.clone()).filter(|key| !key.is_empty()),
        Some(other) => {
            return Err(invalid(format!(
                "targetingKey must be a string, not {}",
                kind(other)
            )));
        }
    };
    let Some(user_id) = targeting_key else {
        return Err(ContextError {
            code: "TARGETING_KEY_MISSING",
            details: "the context has no targetingKey; send the user's id (or an anonymous id \
                      kept per client) as targetingKey, which baton evaluates as Unleash's userId"
                .to_string(),
        });
    };
    let mut context = Context {
        user_id: Some(user_id),
        ..Context::default()
    };
    let mut properties = HashMap::new();
    for (name, value) in fields {
        if name == "targetingKey" {
            continue;
        }
        if name == "currentTime" {
            context.current_time = time(value).map_err(invalid)?;
            continue;
        }
        let text = text(name, value).map_err(invalid)?;
        match name.as_str() {
            "sessionId" => context.session_id = text,
            "remoteAddress" => context.remote_address = text,
            "environment" => context.environment = text,
            "appName" => context.app_name = text,
            _ => {
                if let Some(text) = text {
                    properties.insert(name.clone(), text);
                }
            }
        }
    }
    context.properties = properties;
    let digest = digest(fields);
    if context.current_time.is_none() {
        context.current_time = Some(OffsetDateTime::now_utc());
    }
    Ok(RequestContext { context, digest })
}

/// A field's value as Unleash's text: strings as they are, numbers and
/// booleans as written, `null` as absent. Unleash compares text only, so
/// lists and objects cannot be matched and are refused.
fn text(name: &str, value: &Value) -> Result<Option<String>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => Ok(Some(text.clone())),
        Value::Number(number) => Ok(Some(number.to_string())),
        Value::Bool(flag) => Ok(Some(flag.to_string())),
        Value::Array(_) | Value::Object(_) => Err(format!(
            "context field {name:?} is {}; baton compares text, numbers and booleans only: \
             send it flattened, e.g. {name}Id",
            kind(value)
        )),
    }
}

fn time(value: &Value) -> Result<Option<OffsetDateTime>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => OffsetDateTime::parse(text, &Rfc3339)
            .map(Some)
            .map_err(|_| {
                format!(
                    "currentTime {text:?} is not an RFC 3339 time such as \
                     2026-05-01T12:00:00Z; leave it out to evaluate at the daemon's time"
                )
            }),
        other => Err(format!(
            "currentTime must be an RFC 3339 string, not {}",
            kind(other)
        )),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The fields in name order, so that the same context hashes the same
/// whatever order its fields were sent in.
fn digest(fields: &Map<String, Value>) -> u64 {
    let mut sorted: Vec<(&String, &Value)> = fields.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut hasher = DefaultHasher::new();
    for (name, value) in sorted {
        name.hash(&mut hasher);
        value.to_string().hash(&mut hasher);
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_json(body: &str) -> Result<RequestContext, ContextError> {
        read(body.as_bytes())
    }

    #[test]
    fn maps_ofrep_fields_onto_unleash_ones() {
        let read = read_json(
            r#"{"context": {"targetingKey": "alice", "sessionId": "s1",
                "remoteAddress": "10.0.0.1", "environment": "prod", "appName": "web",
                "currentTime": "2026-01-02T03:04:05Z", "plan": "pro", "seats": 5,
                "beta": true, "gone": null}}"#,
        )
        .unwrap();
        let context = read.context;
        assert_eq!(context.user_id.as_deref(), Some("alice"));
        assert_eq!(context.session_id.as_deref(), Some("s1"));
        assert_eq!(context.remote_address.as_deref(), Some("10.0.0.1"));
        assert_eq!(context.environment.as_deref(), Some("prod"));
        assert_eq!(context.app_name.as_deref(), Some("web"));
        assert_eq!(
            context.value("currentTime").as_deref(),
            Some("2026-01-02T03:04:05Z")
        );
        assert_eq!(context.properties.len(), 3);
        assert_eq!(context.value("plan").as_deref(), Some("pro"));
        assert_eq!(context.value("seats").as_deref(), Some("5"));
        assert_eq!(context.value("beta").as_deref(), Some("true"));
    }

    #[test]
    fn the_time_defaults_to_now() {
        let before = OffsetDateTime::now_utc();
        let context = read_json(r#"{"context": {"targetingKey": "a"}}"#)
            .unwrap()
            .context;
        let time = context.current_time.unwrap();
        assert!(time >= before && time <= OffsetDateTime::now_utc());
    }

    #[test]
    fn the_digest_ignores_field_order_and_the_default_time() {
        let a = read_json(r#"{"context": {"targetingKey": "a", "plan": "x"}}"#).unwrap();
        let b = read_json(r#"{"context": {"plan": "x", "targetingKey": "a"}}"#).unwrap();
        let c = read_json(r#"{"context": {"plan": "y", "targetingKey": "a"}}"#).unwrap();
        assert_eq!(a.digest, b.digest);
        assert_ne!(a.digest, c.digest);
    }

    #[test]
    fn errors_carry_ofrep_codes() {
        for (body, code, said) in [
            ("not json", "PARSE_ERROR", "not JSON"),
            ("", "PARSE_ERROR", "not JSON"),
            ("{}", "INVALID_CONTEXT", "no context object"),
            (r#"{"context": []}"#, "INVALID_CONTEXT", "no context object"),
            (
                r#"{"context": {}}"#,
                "TARGETING_KEY_MISSING",
                "targetingKey",
            ),
            (
                r#"{"context": {"targetingKey": ""}}"#,
                "TARGETING_KEY_MISSING",
                "targetingKey",
            ),
            (
                r#"{"context": {"targetingKey": 7}}"#,
                "INVALID_CONTEXT",
                "must be a string",
            ),
            (
                r#"{"context": {"targetingKey": "a", "user": {"id": 1}}}"#,
                "INVALID_CONTEXT",
                "\"user\" is an object",
            ),
            (
                r#"{"context": {"targetingKey": "a", "currentTime": "yesterday"}}"#,
                "INVALID_CONTEXT",
                "not an RFC 3339 time",
            ),
        ] {
            let error = read_json(body).unwrap_err();
            assert_eq!(error.code, code, "{body}: {error:?}");
            assert!(error.details.contains(said), "{body}: {}", error.details);
        }
    }
}
