//! Reads the fields of a JSON request body into a command's typed values: what is required,
//! what null means, which JSON type each field has, and which fields exist at all. The values'
//! own rules (lengths, ranges, formats) are the domain's, checked on the command.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::domain::validation::FieldErrors;
use crate::error::{Error, Result};
use crate::time::parse_rfc3339;

/// The longest date-time string `optional_time` reads.
pub const TIME_MAX: usize = 64;
/// What a date-time that is none is told.
pub const TIME_MESSAGE: &str =
    "must be an ISO 8601 date-time with a time zone, e.g. 2026-11-24T12:00:00.000Z";

/// A date-time as a client writes it (RFC 3339 with its offset, up to `TIME_MAX` characters,
/// blanks around it ignored), to the nanosecond; `None` for anything else.
pub fn read_time(text: &str) -> Option<DateTime<Utc>> {
    Some(text.trim())
        .filter(|text| text.chars().count() <= TIME_MAX)
        .and_then(parse_rfc3339)
}

/// Reads fields from a JSON object and records a message per bad field; `finish` turns the
/// messages into one 400, so a client learns about every problem at once.
pub struct Fields<'a> {
    object: &'a Map<String, Value>,
    allowed: Vec<&'static str>,
    errors: FieldErrors,
}

impl<'a> Fields<'a> {
    pub fn of(body: &'a Value) -> Result<Fields<'a>> {
        match body {
            Value::Object(object) => Ok(Fields {
                object,
                allowed: Vec::new(),
                errors: FieldErrors::default(),
            }),
            _ => Err(Error::invalid("Request body must be a JSON object.")),
        }
    }

    pub fn fail(&mut self, name: &str, message: impl Into<String>) {
        self.errors.fail(name, message);
    }

    /// The field's value, if it is present and not null; absent and null alike are `None`.
    fn value(&mut self, name: &'static str) -> Option<&'a Value> {
        self.allowed.push(name);
        self.object.get(name).filter(|value| !value.is_null())
    }

    /// A present, non-null string.
    pub fn required_string(&mut self, name: &'static str) -> Option<String> {
        if self.value(name).is_none() {
            self.fail(name, "is required");
            return None;
        }
        self.optional_string(name)
    }

    /// Absent → `None`; null → `Some(None)` (clear it); a string → `Some(Some(..))`.
    pub fn nullable_string(&mut self, name: &'static str) -> Option<Option<String>> {
        self.allowed.push(name);
        match self.object.get(name)? {
            Value::Null => Some(None),
            Value::String(text) => Some(Some(text.clone())),
            _ => {
                self.fail(name, "must be a string");
                None
            }
        }
    }

    /// A string, when present and not null.
    pub fn optional_string(&mut self, name: &'static str) -> Option<String> {
        self.nullable_string(name).flatten()
    }

    /// A field that is present but must not be null: a PATCH leaves an absent one alone.
    pub fn present_string(&mut self, name: &'static str) -> Option<String> {
        if self.object.contains_key(name) {
            self.required_string(name)
        } else {
            self.optional_string(name)
        }
    }

    /// An RFC 3339 date-time with its offset (ISO 8601's internet profile, what JavaScript's
    /// `toISOString` writes), kept to the millisecond in UTC; absent or null → `None`.
    pub fn optional_time(&mut self, name: &'static str) -> Option<DateTime<Utc>> {
        let text = self.optional_string(name)?;
        let time = read_time(&text)
            .and_then(|time| DateTime::from_timestamp_millis(time.timestamp_millis()));
        if time.is_none() {
            self.fail(name, TIME_MESSAGE);
        }
        time
    }

    /// A UUID written as a string; absent or null → `None`.
    pub fn optional_uuid(&mut self, name: &'static str) -> Option<Uuid> {
        let text = self.optional_string(name)?;
        let id = Uuid::parse_str(text.trim()).ok();
        if id.is_none() {
            self.fail(name, "must be a UUID");
        }
        id
    }

    /// A present UUID.
    pub fn required_uuid(&mut self, name: &'static str) -> Option<Uuid> {
        if self.value(name).is_none() {
            self.fail(name, "is required");
            return None;
        }
        self.optional_uuid(name)
    }

    /// An integer; `2.0` is one too, as JSON Schema's `integer` says.
    pub fn optional_int(&mut self, name: &'static str) -> Option<i64> {
        let value = self.value(name)?;
        self.int_of(name, value)
    }

    /// Absent → `None`; null → `Some(None)` (clear it); an integer → `Some(Some(..))`.
    pub fn nullable_int(&mut self, name: &'static str) -> Option<Option<i64>> {
        self.allowed.push(name);
        match self.object.get(name)? {
            Value::Null => Some(None),
            value => self.int_of(name, value).map(Some),
        }
    }

    fn int_of(&mut self, name: &'static str, value: &Value) -> Option<i64> {
        let n = integer(value);
        if n.is_none() {
            self.fail(name, "must be an integer");
        }
        n
    }

    pub fn optional_bool(&mut self, name: &'static str) -> Option<bool> {
        let value = self.value(name)?;
        if value.as_bool().is_none() {
            self.fail(name, "must be true or false");
        }
        value.as_bool()
    }

    /// An array of strings.
    pub fn optional_string_list(&mut self, name: &'static str) -> Option<Vec<String>> {
        let list = self.value(name)?.as_array().and_then(|items| {
            items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect::<Option<Vec<String>>>()
        });
        if list.is_none() {
            self.fail(name, "must be an array of strings");
        }
        list
    }

    /// An array of integers; null is `Some(None)` (a PATCH's "back to the default").
    pub fn nullable_int_list(&mut self, name: &'static str) -> Option<Option<Vec<i64>>> {
        self.allowed.push(name);
        let value = self.object.get(name)?;
        if value.is_null() {
            return Some(None);
        }
        let list = value
            .as_array()
            .and_then(|items| items.iter().map(integer).collect::<Option<Vec<i64>>>());
        if list.is_none() {
            self.fail(name, "must be an array of integers");
        }
        list.map(Some)
    }

    /// An array of UUIDs written as strings.
    pub fn optional_uuid_list(&mut self, name: &'static str) -> Option<Vec<Uuid>> {
        let list = self.value(name)?.as_array().and_then(|items| {
            items
                .iter()
                .map(|item| item.as_str().and_then(|id| Uuid::parse_str(id.trim()).ok()))
                .collect::<Option<Vec<Uuid>>>()
        });
        if list.is_none() {
            self.fail(name, "must be an array of UUIDs");
        }
        list
    }

    /// An object whose values are all strings, as (name, value) pairs in the body's order.
    pub fn optional_string_map(&mut self, name: &'static str) -> Option<Vec<(String, String)>> {
        let map = self.value(name)?.as_object().and_then(|entries| {
            entries
                .iter()
                .map(|(key, value)| value.as_str().map(|value| (key.clone(), value.to_owned())))
                .collect::<Option<Vec<(String, String)>>>()
        });
        if map.is_none() {
            self.fail(name, "must be an object of string values");
        }
        map
    }

    /// Any JSON value under `name` (absent → `None`; null is a value here).
    pub fn any(&mut self, name: &'static str) -> Option<&'a Value> {
        self.allowed.push(name);
        self.object.get(name)
    }

    /// Fails every field the operation does not know, so a typo is not silently ignored.
    pub fn finish(mut self) -> Result<()> {
        let unknown: Vec<&String> = self
            .object
            .keys()
            .filter(|key| !self.allowed.contains(&key.as_str()))
            .collect();
        for key in unknown {
            self.errors.fail(key, "is not a known field");
        }
        self.errors.finish()
    }

    /// `finish`, then the command the fields were read into: present once nothing failed.
    pub fn command<T>(self, command: Option<T>) -> Result<T> {
        self.finish()?;
        command.ok_or_else(|| Error::invalid("Validation failed."))
    }
}

pub use crate::domain::validation::one_of;

/// Details by field, for the tests of each decoder.
/// A JSON number that is a whole number (`5` or `5.0`, as some clients write it).
fn integer(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
            .map(|f| f as i64)
    })
}

#[cfg(test)]
pub fn details<T: std::fmt::Debug>(
    result: Result<T>,
) -> std::collections::BTreeMap<String, String> {
    match result {
        Err(Error::Invalid { details, .. }) => details,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_every_bad_field_at_once() {
        let body = json!({"name": 5, "n": 2.5, "extra": true, "list": [1], "map": {"a": 1}});
        let mut fields = Fields::of(&body).unwrap();
        fields.required_string("name");
        fields.required_string("company");
        assert_eq!(fields.optional_int("n"), None);
        fields.optional_string_list("list");
        fields.optional_string_map("map");
        let details = details(fields.finish());
        assert_eq!(details["name"], "must be a string");
        assert_eq!(details["company"], "is required");
        assert_eq!(details["n"], "must be an integer");
        assert_eq!(details["extra"], "is not a known field");
        assert_eq!(details["list"], "must be an array of strings");
        assert_eq!(details["map"], "must be an object of string values");
    }

    #[test]
    fn null_clears_a_nullable_field_and_means_absent_elsewhere() {
        let body = json!({"phone": null, "n": null, "flag": null, "n2": 2.0});
        let mut fields = Fields::of(&body).unwrap();
        assert_eq!(fields.nullable_string("phone"), Some(None));
        assert_eq!(fields.nullable_string("email"), None);
        assert_eq!(fields.optional_int("n"), None);
        assert_eq!(fields.optional_bool("flag"), None);
        assert_eq!(fields.optional_int("n2"), Some(2));
        fields.finish().unwrap();
    }

    #[test]
    fn a_present_field_may_not_be_null() {
        let body = json!({"url": null});
        let mut fields = Fields::of(&body).unwrap();
        assert_eq!(fields.present_string("url"), None);
        assert_eq!(fields.present_string("other"), None);
        assert_eq!(details(fields.finish())["url"], "is required");
    }

    #[test]
    fn refuses_a_body_that_is_not_an_object() {
        assert!(matches!(
            Fields::of(&json!([1, 2])),
            Err(Error::Invalid { .. })
        ));
    }
}
