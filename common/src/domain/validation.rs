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
        match check_text(text, max) {
            Ok(text) => Some(text.to_owned()),
            Err(message) => {
                self.fail(name, message);
                None
            }
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

/// Characters that show nothing on their own, besides white space (which `str::trim` strips)
/// and control characters (refused anywhere in a string): Unicode's Default_Ignorable_Code_Point
/// (zero-width space and joiners, bidirectional marks, the word joiner, variation selectors, the
/// byte-order mark, Hangul fillers, tags, …), the blocks of generic combining marks (accents
/// with no letter under them), the interlinear annotation controls and the blank Braille
/// pattern. A script's own vowel signs are left out: alone, they are drawn on a dotted circle.
/// A text made only of these (and white space) looks empty, so `check_text` refuses it as
/// empty; the OpenAPI pattern (`schema::text_pattern`) is written from this same table.
pub const INVISIBLE: &[(char, char)] = &[
    ('\u{00ad}', '\u{00ad}'),
    ('\u{0300}', '\u{036f}'),
    ('\u{061c}', '\u{061c}'),
    ('\u{115f}', '\u{1160}'),
    ('\u{17b4}', '\u{17b5}'),
    ('\u{180b}', '\u{180f}'),
    ('\u{1ab0}', '\u{1aff}'),
    ('\u{1dc0}', '\u{1dff}'),
    ('\u{200b}', '\u{200f}'),
    ('\u{202a}', '\u{202e}'),
    ('\u{2060}', '\u{206f}'),
    ('\u{20d0}', '\u{20ff}'),
    ('\u{2800}', '\u{2800}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{fe00}', '\u{fe0f}'),
    ('\u{fe20}', '\u{fe2f}'),
    ('\u{feff}', '\u{feff}'),
    ('\u{ffa0}', '\u{ffa0}'),
    ('\u{fff0}', '\u{fffb}'),
    ('\u{1bca0}', '\u{1bca3}'),
    ('\u{1d173}', '\u{1d17a}'),
    ('\u{e0000}', '\u{e0fff}'),
];

/// Whether `c` shows nothing on its own: white space, a control character, or one of
/// `INVISIBLE`.
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || INVISIBLE
            .iter()
            .any(|&(first, last)| (first..=last).contains(&c))
}

/// The one rule for a text field (a name, a description, …): trimmed of white space, at least
/// one visible character, at most `max` characters as sent, no control character. Returns the
/// trimmed text, or the message for the field.
pub fn check_text(text: &str, max: usize) -> Result<&str, String> {
    // The limit holds for what was sent, white space included, as a JSON Schema
    // `maxLength` says: a long string is not made acceptable by trailing blanks.
    let too_long = text.chars().count() > max;
    let text = text.trim();
    if text.is_empty() {
        Err("must not be empty".to_owned())
    } else if too_long {
        Err(format!("must be at most {max} characters"))
    } else if text.chars().any(char::is_control) {
        Err("must not contain control characters".to_owned())
    } else if text.chars().all(is_invisible) {
        Err("must have a visible character".to_owned())
    } else {
        Ok(text)
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
    fn a_text_of_invisible_characters_only_is_refused() {
        for text in [
            "\u{200b}",
            " \u{200b}\u{200c}\u{200d} ",
            "\u{2060}\u{feff}",
            "\u{301}\u{301}",
            "\u{3164}",
            "\u{2800}",
            "\u{ad}",
            "\u{202e}\u{2066}",
            "\u{e0041}\u{e007f}",
            "\u{fe0f}",
        ] {
            assert_eq!(
                check_text(text, 100),
                Err("must have a visible character".to_owned()),
                "{text:?}"
            );
        }
        for (text, kept) in [
            ("e\u{301}", "e\u{301}"),
            ("\u{200b}Ada", "\u{200b}Ada"),
            (" Ada\u{200d} ", "Ada\u{200d}"),
            ("\u{93f}", "\u{93f}"),
        ] {
            assert_eq!(check_text(text, 100), Ok(kept), "{text:?}");
        }
    }

    /// The pattern's classes are written as disjoint: blanks, controls and `INVISIBLE`.
    #[test]
    fn invisible_ranges_are_ordered_and_hold_no_blank_or_control() {
        for pair in INVISIBLE.windows(2) {
            assert!(pair[0].1 < pair[1].0, "{pair:?}");
        }
        for &(first, last) in INVISIBLE {
            assert!(first <= last);
            for c in first..=last {
                assert!(!c.is_whitespace() && !c.is_control(), "{c:?}");
            }
        }
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

/// Parses a request body as JSON; malformed or empty bodies are the caller's 400, and so is an
/// object that names a key twice, at any depth: JSON leaves its meaning open (serde_json keeps
/// the last, other parsers the first), so a proxy or receiver could read another body than the
/// one validated here. `details` names the key by its path, e.g. `data.items[0].id`.
pub fn parse_json(body: &[u8]) -> Result<Value, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::invalid("Request body is required: a JSON object."));
    }
    let mut repeated = None;
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed = serde::de::DeserializeSeed::deserialize(
        UniqueKeys {
            repeated: &mut repeated,
        },
        &mut deserializer,
    )
    .and_then(|value| deserializer.end().map(|()| value));
    match (parsed, repeated) {
        (Ok(value), _) => Ok(value),
        (Err(_), Some(path)) => Err(Error::Invalid {
            message: "Request body names a key twice in one object.".to_owned(),
            details: BTreeMap::from([(path.into_string(), "appears twice".to_owned())]),
        }),
        (Err(error), None) => Err(Error::invalid(format!(
            "Request body is not valid JSON: {error}."
        ))),
    }
}

/// Where a repeated key was found, built from the inside out as the parse unwinds.
struct KeyPath(Vec<String>);

impl KeyPath {
    fn into_string(self) -> String {
        let mut path = String::new();
        for step in self.0.into_iter().rev() {
            if !path.is_empty() && !step.starts_with('[') {
                path.push('.');
            }
            path.push_str(&step);
        }
        path
    }
}

/// A `serde_json::Value` that refuses an object with a key twice (serde_json's own keeps the
/// last). serde_json's depth limit (128) still holds: it is the deserializer's.
struct UniqueKeys<'a> {
    repeated: &'a mut Option<KeyPath>,
}

impl<'de> serde::de::DeserializeSeed<'de> for UniqueKeys<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for UniqueKeys<'_> {
    type Value = Value;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(value)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut items: A) -> Result<Value, A::Error> {
        let mut list = Vec::new();
        loop {
            let item = items.next_element_seed(UniqueKeys {
                repeated: &mut *self.repeated,
            });
            match item {
                Ok(Some(value)) => list.push(value),
                Ok(None) => return Ok(Value::Array(list)),
                Err(error) => {
                    if let Some(path) = self.repeated.as_mut() {
                        path.0.push(format!("[{}]", list.len()));
                    }
                    return Err(error);
                }
            }
        }
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut entries: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = entries.next_key::<String>()? {
            if object.contains_key(&key) {
                *self.repeated = Some(KeyPath(vec![key]));
                return Err(serde::de::Error::custom("a key appears twice"));
            }
            let value = entries.next_value_seed(UniqueKeys {
                repeated: &mut *self.repeated,
            });
            match value {
                Ok(value) => {
                    object.insert(key, value);
                }
                Err(error) => {
                    if let Some(path) = self.repeated.as_mut() {
                        path.0.push(key);
                    }
                    return Err(error);
                }
            }
        }
        Ok(Value::Object(object))
    }
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

    fn repeated(body: &str) -> BTreeMap<String, String> {
        match parse_json(body.as_bytes()) {
            Err(Error::Invalid { details, .. }) => details,
            other => panic!("expected a 400 for {body}, got {other:?}"),
        }
    }

    #[test]
    fn a_key_twice_in_one_object_is_refused_at_any_depth() {
        assert_eq!(
            repeated(r#"{"name":"a","name":"b"}"#)["name"],
            "appears twice"
        );
        // The same key once decoded: an escape does not make it another key.
        assert!(repeated(r#"{"name":"a","n\u0061me":"b"}"#).contains_key("name"));
        assert!(
            repeated(r#"{"event":"x","data":{"a":1,"b":{"c":1,"c":2}}}"#).contains_key("data.b.c")
        );
        assert!(
            repeated(r#"{"headers":{"X-Team":"a","X-Team":"b"}}"#).contains_key("headers.X-Team")
        );
        assert!(repeated(r#"{"data":[{"id":1},{"id":2,"id":3}]}"#).contains_key("data[1].id"));
        assert!(repeated(r#"[[{"a":1,"a":1}]]"#).contains_key("[0][0].a"));
    }

    #[test]
    fn parses_what_serde_json_parses() {
        let body = r#"{"a":[1,-2,3.5,1e300,18446744073709551615,true,null,"x\u00e9"],"b":{},"a2":{"a":{"a":1}}}"#;
        let ours = parse_json(body.as_bytes()).unwrap();
        let theirs: Value = serde_json::from_str(body).unwrap();
        assert_eq!(ours, theirs);
        // The same keys in different objects are not repeats.
        parse_json(br#"{"a":{"a":1},"b":{"a":2}}"#).unwrap();
        // Trailing text, too deep a nesting and numbers out of range stay malformed JSON.
        for body in ["{} {}", &"[".repeat(200), "[1e400]"] {
            let error = parse_json(body.as_bytes()).unwrap_err();
            assert!(
                matches!(&error, Error::Invalid { message, details } if message.contains("not valid JSON") && details.is_empty()),
                "{body}: {error:?}"
            );
        }
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
    /// White space that is not a control character: what may stand inside a string.
    const BLANK: &str = r" \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

    /// A string `Fields` accepts (`check_text`): after trimming white space, no control
    /// character and at least one visible character. Read as: white space; invisible
    /// characters (and blanks among them); the first visible character; anything but a control
    /// character up to the last character that is not white space; white space.
    pub fn text_pattern() -> String {
        let (ws, cc, bl, inv) = (WHITE_SPACE, CONTROL, BLANK, invisible_class());
        format!("^[{ws}]*(?:[{inv}][{bl}{inv}]*)?[^{ws}{cc}{inv}](?:[^{cc}]*[^{ws}{cc}])?[{ws}]*$")
    }

    /// `INVISIBLE` as a regex class body. Characters beyond the BMP are written as themselves:
    /// Python's `\U0001bca0` and ECMAScript's `\u{1bca0}` have no spelling in common.
    fn invisible_class() -> String {
        let one = |c: char| {
            if u32::from(c) <= 0xffff {
                format!("\\u{:04x}", u32::from(c))
            } else {
                c.to_string()
            }
        };
        super::INVISIBLE
            .iter()
            .map(|&(first, last)| {
                if first == last {
                    one(first)
                } else {
                    format!("{}-{}", one(first), one(last))
                }
            })
            .collect()
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
                ("\u{200b}", false),
                (" \u{200b} \u{301} ", false),
                ("\u{200b}x\u{200b}", true),
                ("\u{200b}\u{85}x", false),
                ("\u{200b}\u{2003}x", true),
            ] {
                let body = json!({ "name": text });
                let mut fields = Fields::of(&body).expect("an object");
                let got = fields.required_string("name", 20).is_some();
                assert_eq!(got, accepted, "{text:?}");
            }
        }
    }
}
