//! JSON Schema pieces for the request bodies of the OpenAPI document. Each says exactly what
//! the REST decoder (`fields`) and the domain's rules accept, written from the same constants.

use utoipa::openapi::schema::{
    ArrayBuilder, Object, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::KnownFormat;

use super::fields::TIME_MAX;
use crate::domain::validation::INVISIBLE;

/// `char::is_whitespace`, which `str::trim` strips, as a regex class body.
pub const WHITE_SPACE: &str =
    r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// `char::is_control`, refused inside a string, as a regex class body.
const CONTROL: &str = r"\x00-\x1f\x7f-\x9f";
/// White space that is not a control character: what may stand inside a string.
const BLANK: &str = r" \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// A string `check_text` accepts: after trimming white space, no control
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
    INVISIBLE
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

/// `chars` as the body of a regex class: `-` goes last, where it stands for itself, and the
/// characters a class gives a meaning to are escaped.
pub fn class_of(chars: &str) -> String {
    let mut class: String = chars
        .chars()
        .filter(|c| *c != '-')
        .map(|c| match c {
            '\\' | ']' | '[' | '^' => format!("\\{c}"),
            c => c.to_string(),
        })
        .collect();
    if chars.contains('-') {
        class.push('-');
    }
    class
}

/// A text of at most `max` characters (`check_text`).
pub fn text(max: usize) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(text_pattern()))
}

/// An RFC 3339 date-time (`fields::Fields::optional_time`), or null.
pub fn time() -> Object {
    nullable(query_time())
}

/// An RFC 3339 date-time in a query string (`fields::read_time`).
pub fn query_time() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .max_length(Some(TIME_MAX))
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

/// An integer from `min` to `max`.
pub fn int_range(min: i64, max: i64) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(min))
        .maximum(Some(max))
}

/// A list of `min_items` to `max_items` items described by `item`.
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

/// A nullable array (null means "not set").
pub fn nullable_list(builder: ArrayBuilder) -> Schema {
    let mut array = builder.build();
    array.schema_type = SchemaType::Array(vec![Type::Array, Type::Null]);
    Schema::Array(array)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::validation::check_text;

    /// The pattern and `check_text` agree on the edge cases (checked with the regex semantics
    /// schemathesis uses, by the fuzz; here with the cases we know).
    #[test]
    fn text_pattern_names_what_check_text_accepts() {
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
            assert_eq!(check_text(text, 20).is_ok(), accepted, "{text:?}");
        }
    }
}
