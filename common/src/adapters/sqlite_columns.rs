//! Reading the SQLite store's columns and answering its constraint failures: what the store's
//! aggregates (`sqlite.rs`, `sqlite_webhooks.rs`) share, so that neither imports the other.

use chrono::{DateTime, Utc};
use rusqlite::Row;
use uuid::Uuid;

use crate::domain::event::OutboxEvent;
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

/// Columns: id, tenant_id, event, data, created_at.
pub(super) fn event_from_row(row: &Row<'_>) -> rusqlite::Result<OutboxEvent> {
    let data: String = row.get(3)?;
    let created_at = time_column(row, 4)?;
    // Written before notify's events came through the outbox: a client write's, which
    // happened when written.
    let occurred_at = optional_time_column(row, 5)?.unwrap_or(created_at);
    Ok(OutboxEvent {
        id: uuid_column(row, 0)?,
        tenant_id: uuid_column(row, 1)?,
        event: row.get(2)?,
        data: serde_json::from_str(&data).map_err(|_| bad_text(3, "JSON"))?,
        created_at,
        occurred_at,
    })
}
