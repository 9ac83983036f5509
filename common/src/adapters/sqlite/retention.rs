//! Removing what is past its retention (`RetentionStore`): the sweep's work on SQLite, where no
//! TTL does it. Each call is one write of a bounded batch, so the writer thread is never held
//! long and the sweep stops between batches when its time is up.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};
use uuid::Uuid;

use super::columns::uuid_column;
use super::SqliteStore;
use crate::error::Result;
use crate::ports::{Expired, RetentionStore};
use crate::time::rfc3339;

/// The smallest and largest delivery ids of an event: a delivery's id keeps its event id's
/// first 64 bits (`domain::delivery::delivery_id`), and ids are stored lowercase and
/// hyphenated, so text order is byte order.
fn delivery_id_range(event_id: Uuid) -> (String, String) {
    let mut low = [0x00; 16];
    let mut high = [0xff; 16];
    low[..8].copy_from_slice(&event_id.as_bytes()[..8]);
    high[..8].copy_from_slice(&event_id.as_bytes()[..8]);
    (
        Uuid::from_bytes(low).to_string(),
        Uuid::from_bytes(high).to_string(),
    )
}

/// Up to `limit` finished deliveries last changed before `cutoff`, oldest first, with their
/// attempts; each event's payload goes with the last delivery of it.
fn remove_finished_deliveries(
    conn: &Connection,
    cutoff: DateTime<Utc>,
    limit: usize,
) -> Result<usize> {
    let expired: Vec<(String, String, Uuid)> = conn
        .prepare_cached(
            "SELECT tenant_id, id, event_id FROM deliveries
             WHERE status IN ('SUCCESS', 'FAILED', 'CANCELLED') AND updated_at < ?1
             ORDER BY updated_at LIMIT ?2",
        )?
        .query_map(params![rfc3339(cutoff), limit as i64], |row| {
            Ok((row.get(0)?, row.get(1)?, uuid_column(row, 2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut attempts = conn.prepare_cached(
        "DELETE FROM delivery_attempts WHERE tenant_id = ?1 AND delivery_id = ?2",
    )?;
    let mut delivery =
        conn.prepare_cached("DELETE FROM deliveries WHERE tenant_id = ?1 AND id = ?2")?;
    let mut payload = conn.prepare_cached(
        "DELETE FROM payloads WHERE tenant_id = ?1 AND event_id = ?2 AND NOT EXISTS (
             SELECT 1 FROM deliveries WHERE tenant_id = ?1 AND id BETWEEN ?3 AND ?4)",
    )?;
    for (tenant_id, id, event_id) in &expired {
        attempts.execute(params![tenant_id, id])?;
        delivery.execute(params![tenant_id, id])?;
        let (low, high) = delivery_id_range(*event_id);
        payload.execute(params![tenant_id, event_id.to_string(), low, high])?;
    }
    Ok(expired.len())
}

/// Up to `limit` dispatched outbox events accepted before `cutoff`. Event ids are UUIDv7, so the
/// oldest are the first of the primary key's index: the delete reads only them (and the few
/// events still waiting for their fan-out among them, which stay).
fn remove_dispatched_events(
    conn: &Connection,
    cutoff: DateTime<Utc>,
    limit: usize,
) -> Result<usize> {
    let millis = u64::try_from(cutoff.timestamp_millis()).unwrap_or(0);
    let first_kept = uuid::Builder::from_unix_timestamp_millis(millis, &[0; 10]).into_uuid();
    let removed = conn
        .prepare_cached(
            "DELETE FROM outbox WHERE id IN (
                 SELECT id FROM outbox WHERE id < ?1 AND dispatched = 1 ORDER BY id LIMIT ?2)",
        )?
        .execute(params![first_kept.to_string(), limit as i64])?;
    Ok(removed)
}

/// Up to `limit` rows of `table` (the sync history, the audit log: tables whose ids are UUIDv7
/// of their rows' times) made before `cutoff`: the oldest are the first of the primary key.
fn remove_rows_made_before(
    conn: &Connection,
    table: &str,
    cutoff: DateTime<Utc>,
    limit: usize,
) -> Result<usize> {
    let first_kept = crate::domain::sync_history::first_id_at(cutoff);
    let removed = conn
        .prepare_cached(&format!(
            "DELETE FROM {table} WHERE id IN (
                 SELECT id FROM {table} WHERE id < ?1 ORDER BY id LIMIT ?2)"
        ))?
        .execute(params![first_kept.to_string(), limit as i64])?;
    Ok(removed)
}

#[async_trait]
impl RetentionStore for SqliteStore {
    async fn remove_expired(&self, now: DateTime<Utc>, limit: usize) -> Result<Expired> {
        let cutoff = self.retention.cutoff(now);
        self.call(move |conn| {
            Ok(Expired {
                deliveries: remove_finished_deliveries(conn, cutoff, limit)?,
                events: remove_dispatched_events(conn, cutoff, limit)?,
                sync_history: remove_rows_made_before(conn, "sync_history", cutoff, limit)?,
                audit_entries: remove_rows_made_before(conn, "audit_log", cutoff, limit)?,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_events_delivery_ids_fall_in_its_range() {
        let event = Uuid::now_v7();
        let (low, high) = delivery_id_range(event);
        for _ in 0..50 {
            let id = crate::domain::delivery::delivery_id(event, Uuid::now_v7()).to_string();
            assert!(low <= id && id <= high, "{low} <= {id} <= {high}");
        }
        let (seconds, nanos) = event.get_timestamp().unwrap().to_unix();
        let next_millis = seconds * 1_000 + u64::from(nanos / 1_000_000) + 1;
        let next = uuid::Builder::from_unix_timestamp_millis(next_millis, &[0; 10]).into_uuid();
        let later = crate::domain::delivery::delivery_id(next, Uuid::now_v7());
        assert!(
            later.to_string() > high,
            "an event a millisecond later is outside"
        );
    }
}
