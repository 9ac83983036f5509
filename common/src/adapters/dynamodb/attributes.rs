//! Reading and writing the attributes of DynamoDB items: the one set of helpers every item
//! mapping (`tenants.rs`, `clients.rs`, `outbox.rs`, `webhooks.rs`, `deliveries/items.rs`) uses.

use std::collections::HashMap;
use std::str::FromStr;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::tables::{PK, SK};
use crate::error::{Error, Result};
use crate::time::parse_rfc3339;

pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) fn text(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn number(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(super) fn key(pk: String, sk: String) -> Item {
    HashMap::from([(PK.to_owned(), text(pk)), (SK.to_owned(), text(sk))])
}

/// A count or a limit as a number attribute's value (saturating: no count reaches it).
pub(super) fn count_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Sets `name` when there is a value; an absent attribute is how an item says "none".
pub(super) fn put_optional(item: &mut Item, name: &str, value: Option<impl Into<String>>) {
    if let Some(value) = value {
        item.insert(name.to_owned(), text(value));
    }
}

pub(super) fn corrupt(name: &str) -> Error {
    Error::internal(format!("stored item has a missing or malformed `{name}`"))
}

pub(super) fn text_of<'a>(item: &'a Item, name: &str) -> Result<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value),
        _ => Err(corrupt(name)),
    }
}

pub(super) fn optional_text(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Some(value.clone()),
        _ => None,
    }
}

pub(super) fn number_of<T: FromStr>(item: &Item, name: &str) -> Result<T> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value.parse().map_err(|_| corrupt(name)),
        _ => Err(corrupt(name)),
    }
}

pub(super) fn optional_number<T: FromStr>(item: &Item, name: &str) -> Result<Option<T>> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value.parse().map(Some).map_err(|_| corrupt(name)),
        _ => Ok(None),
    }
}

/// A counter: one never added to is absent, and counts zero.
pub(super) fn count_of(item: &Item, name: &str) -> Result<i64> {
    match item.get(name) {
        None => Ok(0),
        Some(_) => number_of(item, name),
    }
}

pub(super) fn uuid_of(item: &Item, name: &str) -> Result<Uuid> {
    Uuid::parse_str(text_of(item, name)?).map_err(|_| corrupt(name))
}

pub(super) fn time_of(item: &Item, name: &str) -> Result<DateTime<Utc>> {
    parse_rfc3339(text_of(item, name)?).ok_or_else(|| corrupt(name))
}

pub(super) fn optional_time(item: &Item, name: &str) -> Result<Option<DateTime<Utc>>> {
    optional_text(item, name)
        .map(|value| parse_rfc3339(&value).ok_or_else(|| corrupt(name)))
        .transpose()
}
