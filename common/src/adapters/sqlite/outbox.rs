//! The outbox and notify's event windows (`OutboxStore`). Event windows are counted in memory
//! (`event_windows`): one crm-local process serves its data directory.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, Row};
use uuid::Uuid;

use super::columns::{bad_text, optional_time_column, time_column, uuid_column};
use super::SqliteStore;
use crate::domain::event::{EventRange, OutboxEvent};
use crate::error::Result;
use crate::ports::OutboxStore;
use crate::time::rfc3339;

/// Columns: id, tenant_id, event, data, created_at, occurred_at.
fn event_from_row(row: &Row<'_>) -> rusqlite::Result<OutboxEvent> {
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

/// Also a client write's (`clients`).
pub(super) fn insert_events(tx: &Connection, events: &[OutboxEvent]) -> Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO outbox (id, tenant_id, event, data, created_at, occurred_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for event in events {
        insert.execute(params![
            event.id.to_string(),
            event.tenant_id.to_string(),
            event.event,
            event.data.to_string(),
            rfc3339(event.created_at),
            rfc3339(event.occurred_at),
        ])?;
    }
    Ok(())
}

fn undispatched_events(
    conn: &mut Connection,
    before: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<OutboxEvent>> {
    let mut query = conn.prepare_cached(
        "SELECT id, tenant_id, event, data, created_at, occurred_at FROM outbox
         WHERE dispatched = 0 AND created_at < ?1 ORDER BY created_at LIMIT ?2",
    )?;
    let rows = query
        .query_map(params![rfc3339(before), limit as i64], event_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn list_outbox_events(&self, tenant_id: Uuid, limit: usize) -> Result<Vec<OutboxEvent>> {
        self.read(move |conn| {
            let mut query = conn.prepare_cached(
                "SELECT id, tenant_id, event, data, created_at, occurred_at FROM outbox
                 WHERE tenant_id = ?1 ORDER BY id LIMIT ?2",
            )?;
            let rows = query
                .query_map(params![tenant_id.to_string(), limit as i64], event_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn undispatched_events(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>> {
        self.read(move |conn| undispatched_events(conn, before, limit))
            .await
    }

    async fn events_between(
        &self,
        tenant_id: Uuid,
        range: &EventRange,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>> {
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let low = after.map_or(range.first_id(), |after| after.max(range.first_id()));
        let inclusive = after.is_none_or(|after| after < range.first_id());
        let high = range.last_id();
        self.read(move |conn| {
            let sql = if inclusive {
                "SELECT id, tenant_id, event, data, created_at, occurred_at FROM outbox
                 WHERE tenant_id = ?1 AND id >= ?2 AND id <= ?3 ORDER BY id LIMIT ?4"
            } else {
                "SELECT id, tenant_id, event, data, created_at, occurred_at FROM outbox
                 WHERE tenant_id = ?1 AND id > ?2 AND id <= ?3 ORDER BY id LIMIT ?4"
            };
            let rows = conn
                .prepare_cached(sql)?
                .query_map(
                    params![
                        tenant_id.to_string(),
                        low.to_string(),
                        high.to_string(),
                        limit as i64
                    ],
                    event_from_row,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn take_event_quota(&self, tenant_id: Uuid, second: i64, max: usize) -> Result<bool> {
        Ok(self.event_windows.take(tenant_id, second, max))
    }

    async fn append_event(&self, event: &OutboxEvent) -> Result<()> {
        let event = event.clone();
        // An event already stored stays as it is (an idempotent notify finishing another's work).
        self.call(move |conn| {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO outbox (id, tenant_id, event, data, created_at, occurred_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                event.id.to_string(),
                event.tenant_id.to_string(),
                event.event,
                event.data.to_string(),
                rfc3339(event.created_at),
                rfc3339(event.occurred_at),
            ])?;
            Ok(())
        })
        .await
    }

    async fn mark_event_dispatched(&self, tenant_id: Uuid, event_id: Uuid) -> Result<()> {
        self.call(move |conn| {
            conn.prepare_cached(
                "UPDATE outbox SET dispatched = 1 WHERE tenant_id = ?1 AND id = ?2",
            )?
            .execute(params![tenant_id.to_string(), event_id.to_string()])?;
            Ok(())
        })
        .await
    }
}
