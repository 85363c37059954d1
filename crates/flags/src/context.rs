//! What is known about the one evaluation at hand: who asks, from where, and
//! when. Its JSON form is Unleash's context shape.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::lenient::string_map;

/// The context of one evaluation, with Unleash's field names. Every field may
/// be absent; a constraint or stickiness on an absent field behaves as
/// Unleash's SDKs do (`NOT_IN` holds, every other operator fails).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Context {
    /// The user, for `userWithId`, `default` stickiness and overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The session, the second choice of `default` stickiness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The client's IP address, for `remoteAddress` and `IN_CIDR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_address: Option<String>,
    /// The environment, such as `production`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The application's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_name: Option<String>,
    /// The time of the evaluation, for `DATE_AFTER` and `DATE_BEFORE`. This
    /// crate never reads the clock: the caller fills this in (Unleash's SDKs
    /// default it to now; here an absent time makes date constraints fail).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub current_time: Option<OffsetDateTime>,
    /// Every other field, by name. Numbers and booleans in JSON are read as
    /// their text; `null` ones are left out.
    #[serde(
        default,
        deserialize_with = "string_map",
        skip_serializing_if = "HashMap::is_empty"
    )]
    pub properties: HashMap<String, String>,
}

impl Context {
    /// The value of a field by its Unleash name: one of the named fields
    /// above, else a property. `currentTime` comes back in RFC 3339.
    pub fn value(&self, name: &str) -> Option<Cow<'_, str>> {
        let named = match name {
            "userId" => &self.user_id,
            "sessionId" => &self.session_id,
            "remoteAddress" => &self.remote_address,
            "environment" => &self.environment,
            "appName" => &self.app_name,
            "currentTime" => {
                return self
                    .current_time
                    .and_then(|time| time.format(&Rfc3339).ok())
                    .map(Cow::Owned);
            }
            property => {
                return self
                    .properties
                    .get(property)
                    .map(|value| Cow::Borrowed(value.as_str()));
            }
        };
        named.as_deref().map(Cow::Borrowed)
    }
}

#[cfg(test)]
mod tests {
    use super::Context;
    use time::macros::datetime;

    #[test]
    fn reads_unleash_context_json() {
        let context: Context = serde_json::from_str(
            r#"{"userId": "123", "sessionId": "s", "remoteAddress": "127.0.0.1",
                "environment": "prod", "appName": "web",
                "currentTime": "2022-01-22T11:30:00.000Z",
                "properties": {"plan": "pro", "seats": 5, "gone": null}}"#,
        )
        .unwrap();
        assert_eq!(context.value("userId").as_deref(), Some("123"));
        assert_eq!(context.value("sessionId").as_deref(), Some("s"));
        assert_eq!(context.value("remoteAddress").as_deref(), Some("127.0.0.1"));
        assert_eq!(context.value("environment").as_deref(), Some("prod"));
        assert_eq!(context.value("appName").as_deref(), Some("web"));
        assert_eq!(context.current_time, Some(datetime!(2022-01-22 11:30 UTC)));
        assert_eq!(
            context.value("currentTime").as_deref(),
            Some("2022-01-22T11:30:00Z")
        );
        assert_eq!(context.value("plan").as_deref(), Some("pro"));
        assert_eq!(context.value("seats").as_deref(), Some("5"));
        assert_eq!(context.value("gone"), None);
        assert_eq!(context.value("missing"), None);
    }

    #[test]
    fn an_empty_context_has_no_values() {
        let context: Context = serde_json::from_str("{}").unwrap();
        assert_eq!(context, Context::default());
        assert_eq!(context.value("userId"), None);
        assert_eq!(context.value("currentTime"), None);
    }
}
