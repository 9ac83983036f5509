//! Request bodies as JSON: the parse both faces share (REST bodies, GraphQL requests).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::Error;

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
