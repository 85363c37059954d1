//! Flag injection: for an app with `[flags] inject = true`, the proxy
//! evaluates every flag for each request and hands the answers to the app
//! as `X-Baton-Flags: new_editor=on,beta=off,checkout=variant_b`, so the
//! app needs no flag SDK.
//!
//! Runs on the proxy's request path: it reads the flags in force without a
//! lock (one atomic load), so a kill switch applies from the request after
//! the swap, and no flag change ever waits for requests.

use std::fmt;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

use baton_api::TargetingKey;
use baton_flags::{Context, Variant};
use baton_proxy::{FLAGS_HEADER, RequestAnnotator};
use http::{HeaderMap, HeaderValue, header};
use time::OffsetDateTime;

use crate::flag_service::FlagService;
use crate::flag_tally::EvaluationSource;

/// Evaluates the flags for the requests of one app.
pub struct FlagAnnotator {
    flags: Arc<FlagService>,
    targeting_key: Option<TargetingKey>,
    app: String,
}

impl FlagAnnotator {
    /// For the requests of app `app`, whose user is read from
    /// `targeting_key` (none: evaluated without a user).
    pub fn new(flags: Arc<FlagService>, targeting_key: Option<TargetingKey>, app: &str) -> Self {
        FlagAnnotator {
            flags,
            targeting_key,
            app: app.to_string(),
        }
    }

    /// The request's targeting key, if it carries one.
    fn user(&self, headers: &HeaderMap) -> Option<String> {
        match self.targeting_key.as_ref()? {
            TargetingKey::Header(name) => headers
                .get(name.as_str())
                .and_then(|value| value.to_str().ok())
                .map(str::trim)
                .filter(|value| !value.is_empty())
                .map(str::to_string),
            TargetingKey::Cookie(name) => cookie(headers, name),
        }
    }
}

impl RequestAnnotator for FlagAnnotator {
    fn annotate(&self, headers: &mut HeaderMap, client: IpAddr) {
        let snapshot = self.flags.current_guard();
        let features = &snapshot.features;
        let context = Context {
            user_id: self.user(headers),
            remote_address: Some(client.to_canonical().to_string()),
            app_name: Some(self.app.clone()),
            current_time: Some(OffsetDateTime::now_utc()),
            ..Context::default()
        };
        let mut value = String::new();
        for (index, name) in features.names().enumerate() {
            let Some(evaluation) = features.evaluate(name, &context) else {
                continue;
            };
            snapshot.record(index, EvaluationSource::Proxy, evaluation.enabled);
            if !value.is_empty() {
                value.push(',');
            }
            push_encoded(&mut value, name);
            value.push('=');
            match evaluation.variant {
                _ if !evaluation.enabled => value.push_str("off"),
                Variant {
                    enabled: true,
                    name,
                    ..
                } => push_encoded(&mut value, &name),
                _ => value.push_str("on"),
            }
        }
        if value.is_empty() {
            return;
        }
        // Encoded above to visible ASCII, which a header value always takes.
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(&FLAGS_HEADER, value);
        }
    }
}

impl fmt::Debug for FlagAnnotator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlagAnnotator")
            .field("app", &self.app)
            .field("targeting_key", &self.targeting_key)
            .finish_non_exhaustive()
    }
}

/// The value of cookie `name` among the request's `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| key.trim() == name)
        .map(|(_, value)| value.trim().trim_matches('"').to_string())
        .filter(|value| !value.is_empty())
}

/// Flag and variant names as they are when made of letters, digits and
/// `-_.~:`, every other byte as `%XX`, so that `,` and `=` keep their
/// meaning in the header and any name fits in it.
fn push_encoded(out: &mut String, name: &str) {
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b':') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_flags::ClientFeatures;
    use baton_state::Store;

    async fn flags(json: &'static str) -> Arc<FlagService> {
        let flags = FlagService::load(Arc::new(Store::open_in_memory().unwrap()), None).unwrap();
        flags
            .change(
                "import",
                "test",
                None,
                Box::new(move |_| Ok(ClientFeatures::from_unleash_json(json)?)),
            )
            .await
            .unwrap();
        Arc::new(flags)
    }

    fn annotate(annotator: &FlagAnnotator, request: &[(&str, &str)]) -> Option<String> {
        let mut headers = HeaderMap::new();
        for (name, value) in request {
            headers.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        annotator.annotate(&mut headers, "127.0.0.1".parse().unwrap());
        headers
            .get(&FLAGS_HEADER)
            .map(|value| value.to_str().unwrap().to_string())
    }

    const FLAGS: &str = r#"{"features": [
        {"name": "new_editor", "enabled": true, "strategies": [
            {"name": "userWithId", "parameters": {"userIds": "alice"}}]},
        {"name": "beta", "enabled": false},
        {"name": "checkout", "enabled": true,
         "variants": [{"name": "variant_b", "weight": 1}]},
        {"name": "odd name,=", "enabled": true},
        {"name": "web only", "enabled": true, "strategies": [{"name": "default",
            "constraints": [{"contextName": "appName", "operator": "IN", "values": ["web"]}]}]}
    ]}"#;

    #[tokio::test]
    async fn every_flag_is_evaluated_for_the_user_in_the_cookie() {
        let annotator = FlagAnnotator::new(
            flags(FLAGS).await,
            Some("cookie:user_id".parse().unwrap()),
            "web",
        );
        assert_eq!(
            annotate(&annotator, &[("cookie", "theme=dark; user_id=alice")]).as_deref(),
            Some("new_editor=on,beta=off,checkout=variant_b,odd%20name%2C%3D=on,web%20only=on")
        );
        assert_eq!(
            annotate(&annotator, &[("cookie", "user_id=bob")]).as_deref(),
            Some("new_editor=off,beta=off,checkout=variant_b,odd%20name%2C%3D=on,web%20only=on")
        );
    }

    #[tokio::test]
    async fn the_user_may_come_from_a_header() {
        let annotator = FlagAnnotator::new(
            flags(FLAGS).await,
            Some("header:X-User-Id".parse().unwrap()),
            "api",
        );
        let seen = annotate(&annotator, &[("x-user-id", "alice")]).unwrap();
        assert!(seen.starts_with("new_editor=on,"), "{seen}");
        assert!(seen.ends_with("web%20only=off"), "{seen}");
        let nobody = annotate(&annotator, &[("cookie", "user_id=alice")]).unwrap();
        assert!(nobody.starts_with("new_editor=off,"), "{nobody}");
    }

    #[tokio::test]
    async fn no_flags_no_header() {
        let annotator = FlagAnnotator::new(flags(r#"{"features": []}"#).await, None, "web");
        assert_eq!(annotate(&annotator, &[]), None);
    }

    #[test]
    fn cookies_are_read_from_every_cookie_header() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1"));
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("b=2; user_id=\"u 1\""),
        );
        assert_eq!(cookie(&headers, "user_id").as_deref(), Some("u 1"));
        assert_eq!(cookie(&headers, "user"), None);
    }
}
