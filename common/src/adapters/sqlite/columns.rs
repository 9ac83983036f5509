//! Reading the SQLite store's columns and answering its constraint failures: what the store's
//! aggregates (`tenants.rs`, `clients.rs`, `outbox.rs`, `webhooks.rs`, `deliveries.rs`) share,
//! so that none imports another for them.

use chrono::{DateTime, Utc};
use rusqlite::Row;
use uuid::Uuid;

use crate::error::Error;
use crate::time::parse_rfc3339;

fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(e, _)
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

pub(super) fn conflict_on_duplicate(error: rusqlite::Error, what: &str) -> Error {
    if is_unique_violation(&error) {
        Error::Conflict(format!("{what} already exists."))
    } else {
        error.into()
    }
}

pub(super) fn uuid_column(row: &Row<'_>, index: usize) -> rusqlite::Result<Uuid> {
    let text: String = row.get(index)?;
    Uuid::parse_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub(super) fn time_column(row: &Row<'_>, index: usize) -> rusqlite::Result<DateTime<Utc>> {
    let text: String = row.get(index)?;
    parse_rfc3339(&text).ok_or_else(|| bad_text(index, "an RFC 3339 time"))
}

pub(super) fn optional_time_column(
    row: &Row<'_>,
    index: usize,
) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let text: Option<String> = row.get(index)?;
    text.map(|text| parse_rfc3339(&text).ok_or_else(|| bad_text(index, "an RFC 3339 time")))
        .transpose()
}

pub(super) fn bad_text(index: usize, expected: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        index,
        rusqlite::types::Type::Text,
        format!("stored value is not {expected}").into(),
    )
}
