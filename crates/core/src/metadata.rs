//! User metadata of documents (string keys to string, number or bool values) and filters
//! over it.
//!
//! A [`MetadataFilter`] is a conjunction of conditions on keys: a value (equals), `in` a
//! list of values, or a numeric range (`gt`, `gte`, `lt`, `lte`). Its JSON form, shared by
//! every protocol, is an object from key to condition:
//!
//! ```json
//! {"lang": "en", "year": {"gte": 2020, "lt": 2025}, "team": {"in": ["hr", "it"]}}
//! ```
//!
//! Stores resolve a filter to the documents that match before ranking, so a filter narrows
//! what is searched rather than what is returned after the top k.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The most keys one document's metadata may hold.
pub const MAX_METADATA_KEYS: usize = 64;
/// The longest metadata key, in chars.
pub const MAX_METADATA_KEY_CHARS: usize = 64;
/// The longest string value, in chars.
pub const MAX_METADATA_VALUE_CHARS: usize = 1024;
/// The most values an `in` condition may list.
pub const MAX_FILTER_VALUES: usize = 100;
/// The most keys one filter may name (each becomes a subquery).
pub const MAX_FILTER_KEYS: usize = 32;

/// One metadata value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MetadataValue {
    /// A bool.
    Bool(bool),
    /// A finite number.
    Number(f64),
    /// A string.
    String(String),
}

impl MetadataValue {
    /// The value's type, as errors and the catalog name it.
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Bool(_) => "bool",
            Self::Number(_) => "number",
            Self::String(_) => "string",
        }
    }

    /// A JSON value as metadata: strings, finite numbers and bools; anything else is an
    /// error naming `key`.
    ///
    /// # Errors
    /// A message for null, arrays, objects, and strings past [`MAX_METADATA_VALUE_CHARS`].
    pub fn from_json(key: &str, value: &serde_json::Value) -> Result<Self, String> {
        match value {
            serde_json::Value::Bool(b) => Ok(Self::Bool(*b)),
            serde_json::Value::Number(n) => n
                .as_f64()
                .filter(|n| n.is_finite())
                .map(Self::Number)
                .ok_or_else(|| format!("metadata {key:?}: {n} is not a finite number")),
            serde_json::Value::String(s) if s.chars().count() > MAX_METADATA_VALUE_CHARS => {
                Err(format!(
                    "metadata {key:?}: a value may be at most {MAX_METADATA_VALUE_CHARS} chars"
                ))
            }
            serde_json::Value::String(s) => Ok(Self::String(s.clone())),
            serde_json::Value::Null
            | serde_json::Value::Array(_)
            | serde_json::Value::Object(_) => {
                Err(format!("metadata {key:?}: values are strings, numbers or bools, not {value}"))
            }
        }
    }
}

/// A document's metadata, by key.
pub type Metadata = BTreeMap<String, MetadataValue>;

/// Checks a metadata key: 1 to [`MAX_METADATA_KEY_CHARS`] chars, no control chars.
///
/// # Errors
/// A message naming the key.
pub fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.chars().count() > MAX_METADATA_KEY_CHARS {
        return Err(format!("metadata key {key:?} must be 1 to {MAX_METADATA_KEY_CHARS} chars"));
    }
    if key.chars().any(char::is_control) {
        return Err(format!("metadata key {key:?} contains a control char"));
    }
    Ok(())
}

/// A JSON object as metadata, every key and value checked. `null` values are refused here;
/// callers that accept `null` as "remove this key" take those out first.
///
/// # Errors
/// A message for a non-object, a bad key or value, or more than [`MAX_METADATA_KEYS`] keys.
pub fn metadata_from_json(value: &serde_json::Value) -> Result<Metadata, String> {
    let serde_json::Value::Object(object) = value else {
        return Err(format!("metadata must be a JSON object of key to value, not {value}"));
    };
    if object.len() > MAX_METADATA_KEYS {
        return Err(format!("metadata may hold at most {MAX_METADATA_KEYS} keys"));
    }
    object
        .iter()
        .map(|(key, value)| {
            check_key(key)?;
            Ok((key.clone(), MetadataValue::from_json(key, value)?))
        })
        .collect()
}

/// What one key must satisfy.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Equal to this value (of the same type).
    Equals(MetadataValue),
    /// Equal to one of these values.
    In(Vec<MetadataValue>),
    /// A number within these bounds (each optional, at least one set).
    Range {
        /// Greater than.
        gt: Option<f64>,
        /// Greater than or equal.
        gte: Option<f64>,
        /// Less than.
        lt: Option<f64>,
        /// Less than or equal.
        lte: Option<f64>,
    },
}

/// Conditions on metadata keys that must all hold. Empty matches every document.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetadataFilter {
    /// Each key with its condition.
    pub conditions: Vec<(String, Condition)>,
}

impl MetadataFilter {
    /// Whether the filter has no condition.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.conditions.is_empty()
    }

    /// Reads the JSON form (see the module docs).
    ///
    /// # Errors
    /// A message naming an unknown operator, a range bound that is not a number, an empty
    /// or oversized `in` list, or a bad key or value.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, String> {
        let serde_json::Value::Object(object) = value else {
            return Err(format!("a filter must be a JSON object of key to condition, not {value}"));
        };
        if object.len() > MAX_FILTER_KEYS {
            return Err(format!("a filter may name at most {MAX_FILTER_KEYS} keys"));
        }
        let mut conditions = Vec::with_capacity(object.len());
        for (key, condition) in object {
            check_key(key)?;
            let condition = if let serde_json::Value::Object(operators) = condition {
                Self::operators(key, operators)?
            } else {
                Condition::Equals(MetadataValue::from_json(key, condition)?)
            };
            conditions.push((key.clone(), condition));
        }
        Ok(Self { conditions })
    }

    fn operators(
        key: &str,
        operators: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Condition, String> {
        if operators.is_empty() {
            return Err(format!("filter on {key:?}: an empty condition"));
        }
        if let Some(values) = operators.get("in") {
            if operators.len() > 1 {
                return Err(format!("filter on {key:?}: `in` cannot be combined with a range"));
            }
            let serde_json::Value::Array(values) = values else {
                return Err(format!("filter on {key:?}: `in` takes a list of values"));
            };
            if values.is_empty() || values.len() > MAX_FILTER_VALUES {
                return Err(format!(
                    "filter on {key:?}: `in` takes 1 to {MAX_FILTER_VALUES} values"
                ));
            }
            let values = values
                .iter()
                .map(|value| MetadataValue::from_json(key, value))
                .collect::<Result<_, _>>()?;
            return Ok(Condition::In(values));
        }
        let (mut gt, mut gte, mut lt, mut lte) = (None, None, None, None);
        for (operator, bound) in operators {
            let slot = match operator.as_str() {
                "gt" => &mut gt,
                "gte" => &mut gte,
                "lt" => &mut lt,
                "lte" => &mut lte,
                other => {
                    return Err(format!(
                        "filter on {key:?}: unknown operator {other:?} (use a value, `in`, \
                         `gt`, `gte`, `lt` or `lte`)"
                    ));
                }
            };
            *slot = Some(bound.as_f64().filter(|n| n.is_finite()).ok_or_else(|| {
                format!("filter on {key:?}: `{operator}` takes a number, not {bound}")
            })?);
        }
        Ok(Condition::Range { gt, gte, lt, lte })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn filters_read_values_lists_and_ranges() {
        let filter = MetadataFilter::from_json(&json!({
            "lang": "en", "year": {"gte": 2020, "lt": 2025}, "team": {"in": ["hr", 3, true]},
            "draft": false
        }))
        .unwrap();
        assert_eq!(filter.conditions.len(), 4);
        let by_key = |key: &str| &filter.conditions.iter().find(|(k, _)| k == key).unwrap().1;
        assert_eq!(by_key("lang"), &Condition::Equals(MetadataValue::String("en".into())));
        assert_eq!(by_key("draft"), &Condition::Equals(MetadataValue::Bool(false)));
        assert_eq!(
            by_key("year"),
            &Condition::Range { gt: None, gte: Some(2020.0), lt: Some(2025.0), lte: None }
        );
        assert_eq!(
            by_key("team"),
            &Condition::In(vec![
                MetadataValue::String("hr".into()),
                MetadataValue::Number(3.0),
                MetadataValue::Bool(true)
            ])
        );
    }

    #[test]
    fn bad_filters_name_what_is_wrong() {
        let err = |value| MetadataFilter::from_json(&value).unwrap_err();
        assert!(err(json!({"year": {"between": [1, 2]}})).contains("\"between\""));
        assert!(err(json!({"year": {"gte": "2020"}})).contains("takes a number"));
        assert!(err(json!({"team": {"in": []}})).contains("1 to"));
        assert!(err(json!({"team": {"in": ["a"], "gt": 1}})).contains("cannot be combined"));
        assert!(err(json!({"x": null})).contains("not null"));
        assert!(err(json!({"x": {}})).contains("empty condition"));
        assert!(err(json!(["x"])).contains("JSON object"));
        assert!(err(json!({"": 1})).contains("1 to"));
        let many: serde_json::Map<String, serde_json::Value> =
            (0..=MAX_FILTER_KEYS).map(|i| (format!("k{i}"), json!(1))).collect();
        assert!(err(serde_json::Value::Object(many)).contains("at most"));
    }

    #[test]
    fn metadata_takes_strings_numbers_and_bools_only() {
        let metadata = metadata_from_json(&json!({"a": "x", "b": 2.5, "c": true})).unwrap();
        assert_eq!(metadata["b"], MetadataValue::Number(2.5));
        assert!(metadata_from_json(&json!({"a": [1]})).unwrap_err().contains("\"a\""));
        assert!(metadata_from_json(&json!({"a": {"b": 1}})).is_err());
        assert!(metadata_from_json(&json!("x")).is_err());
        let long = "x".repeat(MAX_METADATA_VALUE_CHARS + 1);
        assert!(metadata_from_json(&json!({ "a": long })).is_err());
    }
}
