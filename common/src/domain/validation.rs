//! Field-by-field validation of JSON request bodies, collecting every problem into `details`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::error::Error;
use crate::time::parse_rfc3339;

/// The longest date-time string `optional_time` reads.
const TIME_MAX: usize = 64;

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

    /// An RFC 3339 date-time with its offset (ISO 8601's internet profile, what JavaScript's
    /// `toISOString` writes), kept to the millisecond in UTC; absent or null → `None`.
    pub fn optional_time(&mut self, name: &'static str) -> Option<DateTime<Utc>> {
        let text = self.optional_string(name, TIME_MAX)?;
        let time = parse_rfc3339(&text)
            .and_then(|time| DateTime::from_timestamp_millis(time.timestamp_millis()));
        if time.is_none() {
            self.fail(
                name,
                "must be an ISO 8601 date-time with a time zone, e.g. 2026-11-24T12:00:00.000Z",
            );
        }
        time
    }

    fn string_value(&mut self, name: &str, value: &Value, max: usize) -> Option<String> {
        let Value::String(text) = value else {
            self.fail(name, "must be a string");
            return None;
        };
        // The limit holds for what was sent, white space included, as a JSON Schema
        // `maxLength` says: a long string is not made acceptable by trailing blanks.
        let too_long = text.chars().count() > max;
        let text = text.trim();
        if text.is_empty() {
            self.fail(name, "must not be empty");
            None
        } else if too_long {
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
            // `2.0` is an integer too, as JSON Schema's `integer` says.
            Some(Value::Number(n)) => match n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                    .map(|f| f as i64)
            }) {
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
    fn limits_count_what_was_sent_and_integers_may_be_written_as_floats() {
        let body = json!({"name": "abc\u{85}\u{85}", "n": 2.0, "m": 2.5});
        let mut fields = Fields::of(&body).unwrap();
        assert_eq!(fields.required_string("name", 4), None);
        assert_eq!(fields.optional_int("n", 0..=10), Some(2));
        assert_eq!(fields.optional_int("m", 0..=10), None);
        let details = details(fields.finish().unwrap_err());
        assert_eq!(details["name"], "must be at most 4 characters");
        assert_eq!(details["m"], "must be an integer from 0 to 10");
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

/// `parse_json` for a route whose body may be left out: no body reads as `{}`.
pub fn parse_optional_json(body: &[u8]) -> Result<Value, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    parse_json(body)
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

/// JSON Schema pieces that say exactly what `Fields` accepts, for the request types of the
/// OpenAPI document. They live here, beside the checks they describe, so the two change together.
pub mod schema {
    use utoipa::openapi::schema::{
        ArrayBuilder, Object, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type,
    };
    use utoipa::openapi::KnownFormat;

    /// `char::is_whitespace`, which `str::trim` strips, as a regex class body.
    const WHITE_SPACE: &str =
        r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
    /// `char::is_control`, refused inside a string, as a regex class body.
    const CONTROL: &str = r"\x00-\x1f\x7f-\x9f";

    /// A string `Fields` accepts: after trimming white space, at least one character and no
    /// control character.
    pub fn text_pattern() -> String {
        let (ws, cc) = (WHITE_SPACE, CONTROL);
        format!("^[{ws}]*[^{ws}{cc}](?:[^{cc}]*[^{ws}{cc}])?[{ws}]*$")
    }

    /// `required_string(name, max)` / `optional_string(name, max)`: at most `max` characters.
    pub fn text(max: usize) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(max))
            .pattern(Some(text_pattern()))
    }

    /// `optional_time(name)`: an RFC 3339 date-time, or null.
    pub fn time() -> Object {
        nullable(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                .max_length(Some(super::TIME_MAX)),
        )
    }

    /// A string holding a UUID (parsed after the text checks).
    pub fn uuid() -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
    }

    /// One of the given strings.
    pub fn one_of_strings<'a>(values: impl IntoIterator<Item = &'a str>) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(values.into_iter().map(str::to_owned)))
    }

    /// `optional_int(name, min..=max)`: null means "not set".
    pub fn int_range(min: i64, max: i64) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(min))
            .maximum(Some(max))
    }

    /// `optional_string_list(name, max_items, ..)` of items described by `item`.
    pub fn list(item: impl Into<Schema>, min_items: usize, max_items: usize) -> ArrayBuilder {
        ArrayBuilder::new()
            .items(utoipa::openapi::schema::ArrayItems::RefOrSchema(Box::new(
                utoipa::openapi::RefOr::T(item.into()),
            )))
            .min_items(Some(min_items))
            .max_items(Some(max_items))
    }

    /// The same schema, also allowing `null` (absent, null and a value are three cases).
    pub fn nullable(builder: ObjectBuilder) -> Object {
        let mut object = builder.build();
        let types = match object.schema_type {
            SchemaType::Type(t) => vec![t, Type::Null],
            SchemaType::Array(mut types) => {
                types.push(Type::Null);
                types
            }
            SchemaType::AnyValue => return object,
        };
        object.schema_type = SchemaType::Array(types);
        object
    }

    /// A nullable array (`optional_string_list`: null means "not set").
    pub fn nullable_list(builder: ArrayBuilder) -> Schema {
        let mut array = builder.build();
        array.schema_type = SchemaType::Array(vec![Type::Array, Type::Null]);
        Schema::Array(array)
    }

    #[cfg(test)]
    mod tests {
        use super::super::Fields;
        use super::*;
        use serde_json::json;

        /// The pattern and `Fields` agree on the edge cases (checked with the regex semantics
        /// schemathesis uses, by the fuzz; here with the cases we know).
        #[test]
        fn text_pattern_names_what_fields_accepts() {
            let pattern = text_pattern();
            assert!(pattern.starts_with('^') && pattern.ends_with('$'));
            for (text, accepted) in [
                ("Ada", true),
                ("  Ada Lovelace\t", true),
                ("\u{a0}x\u{3000}", true),
                ("", false),
                (" \t ", false),
                ("a\tb", false),
                ("a\u{85}b", false),
            ] {
                let body = json!({ "name": text });
                let mut fields = Fields::of(&body).expect("an object");
                let got = fields.required_string("name", 20).is_some();
                assert_eq!(got, accepted, "{text:?}");
            }
        }
    }
}
