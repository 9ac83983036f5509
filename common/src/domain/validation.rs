//! Field-by-field validation of JSON request bodies, collecting every problem into `details`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::Error;

/// Reads fields from a JSON object and records a message per bad field; `finish` turns the
/// messages into one 400 error, so a client learns about every problem at once.
pub struct Fields<'a> {
    object: &'a Map<String, Value>,
    allowed: Vec<&'static str>,
    details: BTreeMap<String, String>,
}

impl<'a> Fields<'a> {
    pub fn of(body: &'a Value) -> Result<Fields<'a>, Error> {
        match body {
            Value::Object(object) => Ok(Fields {
                object,
                allowed: Vec::new(),
                details: BTreeMap::new(),
            }),
            _ => Err(Error::invalid("Request body must be a JSON object.")),
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.object.contains_key(name)
    }

    pub fn fail(&mut self, name: &str, message: impl Into<String>) {
        self.details
            .entry(name.to_owned())
            .or_insert(message.into());
    }

    /// A present, non-null string of 1..=max characters (trimmed).
    pub fn required_string(&mut self, name: &'static str, max: usize) -> Option<String> {
        self.allowed.push(name);
        match self.object.get(name) {
            None | Some(Value::Null) => {
                self.fail(name, "is required");
                None
            }
            Some(value) => self.string_value(name, value, max),
        }
    }

    /// Absent → `None`; null → `Some(None)` (clear it); a string → `Some(Some(..))`.
    pub fn nullable_string(&mut self, name: &'static str, max: usize) -> Option<Option<String>> {
        self.allowed.push(name);
        match self.object.get(name) {
            None => None,
            Some(Value::Null) => Some(None),
            Some(value) => self.string_value(name, value, max).map(Some),
        }
    }

    /// Like `required_string`, but absent and null are allowed and mean "not set".
    pub fn optional_string(&mut self, name: &'static str, max: usize) -> Option<String> {
        self.nullable_string(name, max).flatten()
    }

    fn string_value(&mut self, name: &str, value: &Value, max: usize) -> Option<String> {
        let Value::String(text) = value else {
            self.fail(name, "must be a string");
            return None;
        };
        let text = text.trim();
        if text.is_empty() {
            self.fail(name, "must not be empty");
            None
        } else if text.chars().count() > max {
            self.fail(name, format!("must be at most {max} characters"));
            None
        } else if text.chars().any(char::is_control) {
            self.fail(name, "must not contain control characters");
            None
        } else {
            Some(text.to_owned())
        }
    }

    /// An optional integer within `range`.
    pub fn optional_int(
        &mut self,
        name: &'static str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<i64> {
        self.allowed.push(name);
        match self.object.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => match n.as_i64() {
                Some(n) if range.contains(&n) => Some(n),
                _ => {
                    let message = format!(
                        "must be an integer from {} to {}",
                        range.start(),
                        range.end()
                    );
                    self.fail(name, message);
                    None
                }
            },
            Some(_) => {
                self.fail(name, "must be an integer");
                None
            }
        }
    }

    pub fn optional_bool(&mut self, name: &'static str) -> Option<bool> {
        self.allowed.push(name);
        match self.object.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.fail(name, "must be true or false");
                None
            }
        }
    }

    /// An optional array of non-empty strings, at most `max_items` of at most `max_len` each.
    pub fn optional_string_list(
        &mut self,
        name: &'static str,
        max_items: usize,
        max_len: usize,
    ) -> Option<Vec<String>> {
        self.allowed.push(name);
        let value = self.object.get(name)?;
        let items = match value {
            Value::Null => return None,
            Value::Array(items) => items,
            _ => {
                self.fail(name, "must be an array of strings");
                return None;
            }
        };
        if items.len() > max_items {
            self.fail(name, format!("must have at most {max_items} entries"));
            return None;
        }
        let mut list = Vec::with_capacity(items.len());
        for item in items {
            match item.as_str().map(str::trim) {
                Some(text) if !text.is_empty() && text.len() <= max_len => {
                    list.push(text.to_owned())
                }
                _ => {
                    self.fail(
                        name,
                        format!("must be an array of strings of 1 to {max_len} characters"),
                    );
                    return None;
                }
            }
        }
        Some(list)
    }

    /// An optional object whose values are all strings.
    pub fn optional_string_map(
        &mut self,
        name: &'static str,
        max_entries: usize,
    ) -> Option<std::collections::BTreeMap<String, String>> {
        self.allowed.push(name);
        let value = self.object.get(name)?;
        let entries = match value {
            Value::Null => return None,
            Value::Object(entries) => entries,
            _ => {
                self.fail(name, "must be an object of string values");
                return None;
            }
        };
        if entries.len() > max_entries {
            self.fail(name, format!("must have at most {max_entries} entries"));
            return None;
        }
        let mut map = std::collections::BTreeMap::new();
        for (key, value) in entries {
            let Some(value) = value.as_str() else {
                self.fail(name, "must be an object of string values");
                return None;
            };
            map.insert(key.clone(), value.to_owned());
        }
        Some(map)
    }

    /// Any JSON value under `name` (absent → `None`).
    pub fn any(&mut self, name: &'static str) -> Option<&'a Value> {
        self.allowed.push(name);
        self.object.get(name)
    }

    /// Fails every field the operation does not know, so a typo is not silently ignored.
    pub fn finish(mut self) -> Result<(), Error> {
        let unknown: Vec<String> = self
            .object
            .keys()
            .filter(|key| !self.allowed.contains(&key.as_str()))
            .cloned()
            .collect();
        for key in unknown {
            self.fail(&key, "is not a known field");
        }
        if self.details.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid {
                message: "Validation failed.".to_owned(),
                details: self.details,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn details(error: Error) -> BTreeMap<String, String> {
        match error {
            Error::Invalid { details, .. } => details,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn reports_every_bad_field_at_once() {
        let body = json!({"name": 5, "email": "", "extra": true});
        let mut fields = Fields::of(&body).unwrap();
        fields.required_string("name", 10);
        fields.optional_string("email", 10);
        fields.required_string("company", 10);
        let details = details(fields.finish().unwrap_err());
        assert_eq!(details["name"], "must be a string");
        assert_eq!(details["email"], "must not be empty");
        assert_eq!(details["company"], "is required");
        assert_eq!(details["extra"], "is not a known field");
    }

    #[test]
    fn trims_and_limits_strings() {
        let body = json!({"name": "  Ada  ", "company": "abcdef"});
        let mut fields = Fields::of(&body).unwrap();
        assert_eq!(fields.required_string("name", 10).as_deref(), Some("Ada"));
        assert_eq!(fields.optional_string("company", 3), None);
        let details = details(fields.finish().unwrap_err());
        assert_eq!(details["company"], "must be at most 3 characters");
    }

    #[test]
    fn null_clears_an_optional_field() {
        let body = json!({"phone": null});
        let mut fields = Fields::of(&body).unwrap();
        assert_eq!(fields.nullable_string("phone", 10), Some(None));
        assert_eq!(fields.nullable_string("email", 10), None);
        fields.finish().unwrap();
    }

    #[test]
    fn refuses_a_body_that_is_not_an_object() {
        assert!(matches!(
            Fields::of(&json!([1, 2])),
            Err(Error::Invalid { .. })
        ));
    }
}

/// Parses a request body as JSON; malformed or empty bodies are the caller's 400.
pub fn parse_json(body: &[u8]) -> Result<Value, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::invalid("Request body is required: a JSON object."));
    }
    serde_json::from_slice(body)
        .map_err(|error| Error::invalid(format!("Request body is not valid JSON: {error}.")))
}

#[cfg(test)]
mod parse_tests {
    use super::*;

    #[test]
    fn malformed_and_empty_bodies_are_invalid() {
        for body in [&b""[..], b"  ", b"{", b"{\"a\":}", b"\xff\xfe"] {
            assert!(
                matches!(parse_json(body), Err(Error::Invalid { .. })),
                "{body:?}"
            );
        }
        assert_eq!(parse_json(b"{\"a\":1}").unwrap()["a"], 1);
    }
}
