//! Where the proxy reads a request's targeting key (Unleash's `userId`)
//! when it evaluates flags for the app: `cookie:NAME` or `header:NAME`.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

/// `targeting_key` of `[flags]`: a cookie or a request header.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TargetingKey {
    /// The value of the cookie of this name.
    Cookie(String),
    /// The value of the header of this name (stored lowercase: header
    /// names compare without case).
    Header(String),
}

impl FromStr for TargetingKey {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let example = "write \"cookie:NAME\" or \"header:NAME\", e.g. \"cookie:user_id\" or \
                       \"header:X-User-Id\"";
        let Some((source, name)) = text.split_once(':') else {
            return Err(format!("targeting_key {text:?} names no source; {example}"));
        };
        // RFC 9110 tokens: what a header or cookie name may be made of.
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte));
        if !token {
            return Err(format!(
                "targeting_key {text:?}: {name:?} is not a valid {source} name (letters, digits \
                 and !#$%&'*+-.^_`|~ only); {example}"
            ));
        }
        match source {
            "cookie" => Ok(TargetingKey::Cookie(name.to_string())),
            "header" => Ok(TargetingKey::Header(name.to_ascii_lowercase())),
            other => Err(format!(
                "targeting_key {text:?}: {other:?} is not a source baton reads; {example}"
            )),
        }
    }
}

impl fmt::Display for TargetingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetingKey::Cookie(name) => write!(f, "cookie:{name}"),
            TargetingKey::Header(name) => write!(f, "header:{name}"),
        }
    }
}

impl Serialize for TargetingKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TargetingKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::TargetingKey;

    #[test]
    fn reads_cookies_and_headers() {
        assert_eq!(
            "cookie:user_id".parse::<TargetingKey>(),
            Ok(TargetingKey::Cookie("user_id".to_string()))
        );
        assert_eq!(
            "header:X-User-Id".parse::<TargetingKey>(),
            Ok(TargetingKey::Header("x-user-id".to_string()))
        );
        assert_eq!(
            TargetingKey::Header("x-user-id".to_string()).to_string(),
            "header:x-user-id"
        );
    }

    #[test]
    fn refuses_what_it_cannot_read_and_says_what_to_write() {
        for (text, said) in [
            ("user_id", "names no source"),
            ("query:user", "\"query\" is not a source"),
            ("cookie:", "is not a valid cookie name"),
            ("header:X User", "is not a valid header name"),
            ("cookie:a;b", "is not a valid cookie name"),
        ] {
            let error = text.parse::<TargetingKey>().unwrap_err();
            assert!(error.contains(said), "{text}: {error}");
            assert!(error.contains("cookie:user_id"), "{error}");
        }
    }
}
