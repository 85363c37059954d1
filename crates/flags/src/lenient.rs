//! How Unleash's JSON is read leniently. Real exports carry `null` where a
//! list or map is empty, and numbers or booleans where text is meant
//! (`"rollout": 50`); Unleash's own SDKs accept both, so refusing them would
//! refuse flags that work elsewhere.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Reads `null` as the empty value (a missing field needs `#[serde(default)]`
/// beside this).
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Reads a map whose values are meant as text. Numbers and booleans become
/// their text; `null` entries are left out, because Unleash treats a property
/// set to `null` as one that is absent; lists and objects are left out too,
/// since no operator could compare them.
pub(crate) fn string_map<'de, D, M>(deserializer: D) -> Result<M, D::Error>
where
    D: Deserializer<'de>,
    M: FromIterator<(String, String)>,
{
    let raw = Option::<BTreeMap<String, Value>>::deserialize(deserializer)?.unwrap_or_default();
    Ok(raw
        .into_iter()
        .filter_map(|(key, value)| text(value).map(|text| (key, text)))
        .collect())
}

/// Reads one optional value meant as text, taking a number or boolean as its
/// text.
pub(crate) fn optional_text<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(Option::<Value>::deserialize(deserializer)?.and_then(text))
}

fn text(value: Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Sample {
        #[serde(default, deserialize_with = "super::null_as_default")]
        list: Vec<String>,
        #[serde(default, deserialize_with = "super::string_map")]
        map: BTreeMap<String, String>,
        #[serde(default, deserialize_with = "super::optional_text")]
        value: Option<String>,
    }

    #[test]
    fn nulls_read_as_empty_and_numbers_as_text() {
        let sample: Sample = serde_json::from_str(
            r#"{"list": null, "map": {"rollout": 50, "on": true, "gone": null, "name": "x"}, "value": 1.5}"#,
        )
        .unwrap();
        assert!(sample.list.is_empty());
        assert_eq!(
            sample.map.into_iter().collect::<Vec<_>>(),
            [
                ("name".to_string(), "x".to_string()),
                ("on".to_string(), "true".to_string()),
                ("rollout".to_string(), "50".to_string())
            ]
        );
        assert_eq!(sample.value.as_deref(), Some("1.5"));
    }

    #[test]
    fn missing_fields_read_as_empty() {
        let sample: Sample = serde_json::from_str("{}").unwrap();
        assert!(sample.list.is_empty() && sample.map.is_empty() && sample.value.is_none());
    }
}
