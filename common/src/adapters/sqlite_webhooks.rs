//! Webhooks, deliveries, attempts and their counters in the embedded store. Called by the
//! `Store` impl in `sqlite.rs`: reads on a reader connection (the worker's two on the writer's:
//! see there), writes on the writer thread, each write atomic in its own savepoint.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

use super::sqlite_columns::{
    bad_text, conflict_on_duplicate, event_from_row, optional_time_column, time_column, uuid_column,
};
use crate::domain::delivery::{
    Attempt, Delivery, DeliveryStatus, DeliverySummary, DueDelivery, EventPayload, StatusCounts,
    PAYLOAD_RETENTION,
};
use crate::domain::event::OutboxEvent;
use crate::domain::page::{Page, PageRequest, FILTER_SCAN_LIMIT};
use crate::domain::webhook::Webhook;
use crate::error::{Error, Result};
use crate::ports::{DeliveryChange, DeliveryCounts, DeliveryRef, DueCursor, DuePage, Requeue};
use crate::time::rfc3339;

const WEBHOOK_COLUMNS: &str = "tenant_id, id, url, description, events, headers, active, \
     max_retries, timeout_ms, secret, previous_secret, previous_secret_until, created_at, \
     updated_at, version";

fn webhook_from_row(row: &Row<'_>) -> rusqlite::Result<Webhook> {
    let events: String = row.get(4)?;
    let headers: String = row.get(5)?;
    let previous: Option<String> = row.get(10)?;
    let until = optional_time_column(row, 11)?;
    Ok(Webhook {
        tenant_id: uuid_column(row, 0)?,
        id: uuid_column(row, 1)?,
        url: row.get(2)?,
        description: row.get(3)?,
        events: serde_json::from_str(&events).map_err(|_| bad_text(4, "a JSON list"))?,
        headers: serde_json::from_str::<BTreeMap<String, String>>(&headers)
            .map_err(|_| bad_text(5, "a JSON object"))?,
        active: row.get(6)?,
        max_retries: row.get(7)?,
        timeout_ms: row.get(8)?,
        secret: row.get(9)?,
        previous_secret: previous.zip(until),
        created_at: time_column(row, 12)?,
        updated_at: time_column(row, 13)?,
        version: row.get(14)?,
    })
}

fn webhook_params(w: &Webhook) -> [Box<dyn rusqlite::ToSql>; 15] {
    [
        Box::new(w.tenant_id.to_string()),
        Box::new(w.id.to_string()),
        Box::new(w.url.clone()),
        Box::new(w.description.clone()),
        Box::new(serde_json::to_string(&w.events).unwrap_or_default()),
        Box::new(serde_json::to_string(&w.headers).unwrap_or_default()),
        Box::new(w.active),
        Box::new(w.max_retries),
        Box::new(w.timeout_ms),
        Box::new(w.secret.clone()),
        Box::new(w.previous_secret.as_ref().map(|(s, _)| s.clone())),
        Box::new(w.previous_secret.as_ref().map(|(_, t)| rfc3339(*t))),
        Box::new(rfc3339(w.created_at)),
        Box::new(rfc3339(w.updated_at)),
        Box::new(w.version),
    ]
}

/// Counted after the insert, in the same write (the writer runs one write at a time, and an
/// error undoes the write's savepoint): a duplicate id is a `Conflict` first, as on DynamoDB.
pub(super) fn create_webhook(conn: &mut Connection, webhook: &Webhook, max: usize) -> Result<()> {
    let params = webhook_params(webhook);
    conn.execute(
        &format!("INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"),
        rusqlite::params_from_iter(params.iter()),
    )
    .map_err(|e| conflict_on_duplicate(e, "A webhook with this id"))?;
    let count: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM webhooks WHERE tenant_id = ?1")?
        .query_row(params![webhook.tenant_id.to_string()], |row| row.get(0))?;
    if usize::try_from(count).unwrap_or(usize::MAX) > max {
        return Err(Error::WebhookLimitReached { limit: max });
    }
    Ok(())
}

pub(super) fn update_webhook(
    conn: &mut Connection,
    before_version: i64,
    webhook: &Webhook,
) -> Result<()> {
    let mut params: Vec<Box<dyn rusqlite::ToSql>> = webhook_params(webhook).into_iter().collect();
    params.push(Box::new(before_version));
    let changed = conn.execute(
        "UPDATE webhooks SET url = ?3, description = ?4, events = ?5, headers = ?6, active = ?7,
             max_retries = ?8, timeout_ms = ?9, secret = ?10, previous_secret = ?11,
             previous_secret_until = ?12, created_at = ?13, updated_at = ?14, version = ?15
         WHERE tenant_id = ?1 AND id = ?2 AND version = ?16",
        rusqlite::params_from_iter(params.iter()),
    )?;
    if changed == 1 {
        Ok(())
    } else {
        Err(Error::Conflict(
            "The webhook was changed by another request.".into(),
        ))
    }
}

pub(super) fn delete_webhook(conn: &mut Connection, tenant_id: Uuid, id: Uuid) -> Result<bool> {
    let deleted = conn.execute(
        "DELETE FROM webhooks WHERE tenant_id = ?1 AND id = ?2",
        params![tenant_id.to_string(), id.to_string()],
    )?;
    Ok(deleted == 1)
}

pub(super) fn get_webhook(
    conn: &mut Connection,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<Webhook>> {
    let mut query = conn.prepare_cached(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE tenant_id = ?1 AND id = ?2"
    ))?;
    Ok(query
        .query_row(
            params![tenant_id.to_string(), id.to_string()],
            webhook_from_row,
        )
        .optional()?)
}

pub(super) fn list_webhooks(
    conn: &mut Connection,
    tenant_id: Uuid,
    page: PageRequest,
) -> Result<Page<Webhook>> {
    let mut query = conn.prepare_cached(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
    ))?;
    let after = page.after.map(|id| id.to_string()).unwrap_or_default();
    let rows = query
        .query_map(
            params![tenant_id.to_string(), after, (page.limit + 1) as i64],
            webhook_from_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Page::from_overfetch(rows, page.limit, |w| w.id))
}

/// The columns of a delivery; its payload is the event's, in `payloads`.
const DELIVERY_COLUMNS: &str = "tenant_id, id, webhook_id, event_id, event, status, \
     attempt_count, last_status_code, last_error, next_attempt_at, lease_until, created_at, \
     updated_at, version";

/// A delivery from a row of `DELIVERY_COLUMNS` followed by its event's payload.
fn delivery_from_row(row: &Row<'_>) -> rusqlite::Result<Delivery> {
    // Straight from SQLite's buffer into the shared copy: no intermediate String.
    let payload: std::sync::Arc<str> = row.get_ref(14)?.as_str()?.into();
    Ok(summary_from_row(row)?.with_payload(payload))
}

fn summary_from_row(row: &Row<'_>) -> rusqlite::Result<DeliverySummary> {
    let status: String = row.get(5)?;
    Ok(DeliverySummary {
        tenant_id: uuid_column(row, 0)?,
        id: uuid_column(row, 1)?,
        webhook_id: uuid_column(row, 2)?,
        event_id: uuid_column(row, 3)?,
        event: row.get(4)?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| bad_text(5, "a delivery status"))?,
        attempt_count: row.get(6)?,
        last_status_code: row.get(7)?,
        last_error: row.get(8)?,
        next_attempt_at: optional_time_column(row, 9)?,
        lease_until: optional_time_column(row, 10)?,
        created_at: time_column(row, 11)?,
        updated_at: time_column(row, 12)?,
        version: row.get(13)?,
    })
}

fn add_counts(
    tx: &Connection,
    tenant_id: Uuid,
    webhook_id: Uuid,
    delta: &StatusCounts,
) -> Result<()> {
    let mut upsert = tx.prepare_cached(
        "INSERT INTO delivery_counts (tenant_id, webhook_id, status, count) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (tenant_id, webhook_id, status) DO UPDATE SET count = count + excluded.count",
    )?;
    for (status, change) in &delta.0 {
        for scope in [String::new(), webhook_id.to_string()] {
            upsert.execute(params![
                tenant_id.to_string(),
                scope,
                status.as_str(),
                change
            ])?;
        }
    }
    Ok(())
}

/// The payload once per event: a second fan-out of the event keeps the stored bytes.
pub(super) fn put_payload(conn: &mut Connection, payload: &EventPayload) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO payloads (tenant_id, event_id, payload, created_at)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        payload.tenant_id.to_string(),
        payload.event_id.to_string(),
        &*payload.body,
        rfc3339(payload.created_at),
    ])?;
    Ok(())
}

pub(super) fn create_deliveries(conn: &mut Connection, deliveries: &[Delivery]) -> Result<()> {
    let mut insert = conn.prepare_cached(&format!(
        "INSERT OR IGNORE INTO deliveries ({DELIVERY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
    ))?;
    for d in deliveries {
        let inserted = insert.execute(params![
            d.tenant_id.to_string(),
            d.id.to_string(),
            d.webhook_id.to_string(),
            d.event_id.to_string(),
            d.event,
            d.status.as_str(),
            d.attempt_count,
            d.last_status_code,
            d.last_error,
            d.next_attempt_at.map(rfc3339),
            d.lease_until.map(rfc3339),
            rfc3339(d.created_at),
            rfc3339(d.updated_at),
            d.version,
        ])?;
        if inserted == 1 {
            add_counts(
                conn,
                d.tenant_id,
                d.webhook_id,
                &StatusCounts::delta(None, d.status),
            )?;
        }
    }
    Ok(())
}

pub(super) fn get_delivery(
    conn: &mut Connection,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<Delivery>> {
    let mut query = conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS}, (SELECT p.payload FROM payloads p
             WHERE p.tenant_id = deliveries.tenant_id AND p.event_id = deliveries.event_id)
         FROM deliveries WHERE tenant_id = ?1 AND id = ?2"
    ))?;
    Ok(query
        .query_row(
            params![tenant_id.to_string(), id.to_string()],
            delivery_from_row,
        )
        .optional()?)
}

pub(super) fn get_delivery_summary(
    conn: &mut Connection,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<DeliverySummary>> {
    let mut query = conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE tenant_id = ?1 AND id = ?2"
    ))?;
    Ok(query
        .query_row(
            params![tenant_id.to_string(), id.to_string()],
            summary_from_row,
        )
        .optional()?)
}

pub(super) fn list_attempts(
    conn: &mut Connection,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Vec<Attempt>> {
    let mut query = conn.prepare_cached(
        "SELECT number, at, status_code, duration_ms, error, response_body FROM delivery_attempts
         WHERE tenant_id = ?1 AND delivery_id = ?2 ORDER BY number",
    )?;
    let rows = query
        .query_map(params![tenant_id.to_string(), id.to_string()], |row| {
            Ok(Attempt {
                number: row.get(0)?,
                at: time_column(row, 1)?,
                status_code: row.get(2)?,
                duration_ms: row.get(3)?,
                error: row.get(4)?,
                response_body: row.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub(super) fn write_delivery(conn: &mut Connection, change: &DeliveryChange) -> Result<()> {
    let (before, d) = (&change.before, &change.after);
    let changed = conn
        .prepare_cached(
            "UPDATE deliveries SET status = ?3, attempt_count = ?4, last_status_code = ?5,
                 last_error = ?6, next_attempt_at = ?7, lease_until = ?8, updated_at = ?9,
                 version = ?10
             WHERE tenant_id = ?1 AND id = ?2 AND version = ?11",
        )?
        .execute(params![
            d.tenant_id.to_string(),
            d.id.to_string(),
            d.status.as_str(),
            d.attempt_count,
            d.last_status_code,
            d.last_error,
            d.next_attempt_at.map(rfc3339),
            d.lease_until.map(rfc3339),
            rfc3339(d.updated_at),
            d.version,
            before.version,
        ])?;
    if changed != 1 {
        return Err(Error::Conflict(
            "The delivery was changed by another worker.".into(),
        ));
    }
    if let Some(a) = &change.attempt {
        conn.prepare_cached(
            "INSERT INTO delivery_attempts (tenant_id, delivery_id, number, at, status_code,
                 duration_ms, error, response_body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            d.tenant_id.to_string(),
            d.id.to_string(),
            a.number,
            rfc3339(a.at),
            a.status_code,
            a.duration_ms as i64,
            a.error,
            a.response_body,
        ])?;
    }
    add_counts(
        conn,
        d.tenant_id,
        d.webhook_id,
        &StatusCounts::delta(Some(before.status), d.status),
    )?;
    Ok(())
}

pub(super) fn list_deliveries(
    conn: &mut Connection,
    tenant_id: Uuid,
    webhook_id: Uuid,
    status: Option<DeliveryStatus>,
    page: PageRequest,
) -> Result<Page<DeliverySummary>> {
    let mut query = conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries
         WHERE tenant_id = ?1 AND webhook_id = ?2 AND (?3 IS NULL OR id < ?3)
         ORDER BY id DESC LIMIT ?4"
    ))?;
    // With a status, the same bound as DynamoDB's filter: at most FILTER_SCAN_LIMIT deliveries
    // read, then the page resumes after the last one, so that both stores page alike.
    let read_at_most = match status {
        Some(_) => FILTER_SCAN_LIMIT,
        None => page.limit + 1,
    };
    let mut rows = query.query(params![
        tenant_id.to_string(),
        webhook_id.to_string(),
        page.after.map(|id| id.to_string()),
        read_at_most as i64
    ])?;
    let (mut found, mut read, mut last_read) = (Vec::new(), 0, None);
    while let Some(row) = rows.next()? {
        let delivery = summary_from_row(row)?;
        read += 1;
        last_read = Some(delivery.id);
        if status.is_none_or(|status| delivery.status == status) {
            found.push(delivery);
            if found.len() > page.limit {
                break;
            }
        }
    }
    let stopped_after = if status.is_some() && read == FILTER_SCAN_LIMIT {
        last_read
    } else {
        None
    };
    Ok(Page::from_read(found, page.limit, |d| d.id, stopped_after))
}

/// Due deliveries in (due time, id) order from where `after` stopped, only the columns the
/// sweeper needs; the cursor is the last one's due time and id.
pub(super) fn due_deliveries(
    conn: &mut Connection,
    before: DateTime<Utc>,
    after: Option<&DueCursor>,
    limit: usize,
) -> Result<DuePage> {
    // An empty text sorts before every time and id: no `after` starts at the beginning.
    let (after_due, after_id) = match after {
        Some(cursor) => cursor
            .0
            .split_once(' ')
            .ok_or_else(|| Error::internal("not a due-deliveries cursor of this store"))?,
        None => ("", ""),
    };
    let mut query = conn.prepare_cached(
        "SELECT tenant_id, id, status, next_attempt_at, lease_until, updated_at, version
         FROM deliveries
         WHERE status IN ('PENDING', 'RETRYING') AND next_attempt_at < ?1
           AND next_attempt_at >= ?2 AND (next_attempt_at > ?2 OR id > ?3)
         ORDER BY next_attempt_at, id LIMIT ?4",
    )?;
    let deliveries = query
        .query_map(
            params![rfc3339(before), after_due, after_id, limit as i64],
            |row| {
                let status: String = row.get(2)?;
                Ok(DueDelivery {
                    tenant_id: uuid_column(row, 0)?,
                    id: uuid_column(row, 1)?,
                    status: DeliveryStatus::parse(&status)
                        .ok_or_else(|| bad_text(2, "a delivery status"))?,
                    next_attempt_at: optional_time_column(row, 3)?,
                    lease_until: optional_time_column(row, 4)?,
                    updated_at: time_column(row, 5)?,
                    version: row.get(6)?,
                })
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let next = match deliveries.last() {
        Some(last) if deliveries.len() == limit => {
            let due = last.next_attempt_at.map(rfc3339).unwrap_or_default();
            Some(DueCursor(format!("{due} {}", last.id)))
        }
        _ => None,
    };
    Ok(DuePage { deliveries, next })
}

/// The sweeper's requeues, in one write: the schedule columns only, each conditional on the
/// version read.
pub(super) fn requeue_deliveries(conn: &mut Connection, requeues: &[Requeue]) -> Result<Vec<bool>> {
    let mut update = conn.prepare_cached(
        "UPDATE deliveries SET next_attempt_at = ?3, lease_until = ?4, updated_at = ?5,
             version = ?6
         WHERE tenant_id = ?1 AND id = ?2 AND version = ?7",
    )?;
    requeues
        .iter()
        .map(|requeue| {
            let d = &requeue.after;
            let changed = update.execute(params![
                d.tenant_id.to_string(),
                d.id.to_string(),
                d.next_attempt_at.map(rfc3339),
                d.lease_until.map(rfc3339),
                rfc3339(d.updated_at),
                d.version,
                requeue.before_version,
            ])?;
            Ok(changed == 1)
        })
        .collect()
}

pub(super) fn failed_deliveries(
    conn: &mut Connection,
    tenant_id: Uuid,
    webhook_id: Option<Uuid>,
    after: Option<DeliveryRef>,
    limit: usize,
) -> Result<Vec<DeliveryRef>> {
    // An empty text sorts before every id: no `after` starts at the beginning.
    let (after_webhook, after_delivery) = after.map_or((String::new(), String::new()), |a| {
        (a.webhook_id.to_string(), a.delivery_id.to_string())
    });
    let mut query = conn.prepare_cached(
        "SELECT webhook_id, id FROM deliveries INDEXED BY deliveries_failed
         WHERE tenant_id = ?1 AND status = 'FAILED' AND (?2 IS NULL OR webhook_id = ?2)
           AND (webhook_id, id) > (?3, ?4)
         ORDER BY webhook_id, id LIMIT ?5",
    )?;
    let rows = query
        .query_map(
            params![
                tenant_id.to_string(),
                webhook_id.map(|id| id.to_string()),
                after_webhook,
                after_delivery,
                limit as i64
            ],
            |row| {
                Ok(DeliveryRef {
                    webhook_id: uuid_column(row, 0)?,
                    delivery_id: uuid_column(row, 1)?,
                })
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub(super) fn delivery_counts(conn: &mut Connection, tenant_id: Uuid) -> Result<DeliveryCounts> {
    let mut query = conn.prepare_cached(
        "SELECT webhook_id, status, count FROM delivery_counts WHERE tenant_id = ?1 ORDER BY webhook_id",
    )?;
    let mut counts = DeliveryCounts::default();
    let rows = query.query_map(params![tenant_id.to_string()], |row| {
        let scope: String = row.get(0)?;
        let status: String = row.get(1)?;
        let count: i64 = row.get(2)?;
        Ok((scope, status, count))
    })?;
    for row in rows {
        let (scope, status, count) = row?;
        let status = DeliveryStatus::parse(&status).ok_or_else(|| Error::internal("bad status"))?;
        if scope.is_empty() {
            counts.overall.0.insert(status, count);
        } else {
            let id = Uuid::parse_str(&scope).map_err(Error::internal)?;
            match counts.per_webhook.last_mut() {
                Some((last, c)) if *last == id => {
                    c.0.insert(status, count);
                }
                _ => counts
                    .per_webhook
                    .push((id, StatusCounts(BTreeMap::from([(status, count)])))),
            }
        }
    }
    Ok(counts)
}

pub(super) fn undispatched_events(
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

/// Dispatched events removed per event marked: more than are written, so the outbox keeps up.
const OUTBOX_DELETES_PER_MARK: i64 = 16;

/// Marks the event dispatched, and removes a few events dispatched longer than
/// `PAYLOAD_RETENTION` ago, as DynamoDB's TTL does. Event ids are UUIDv7, so the oldest are the
/// first of the primary key's index: the delete reads only them.
pub(super) fn mark_event_dispatched(
    conn: &mut Connection,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<()> {
    conn.prepare_cached("UPDATE outbox SET dispatched = 1 WHERE tenant_id = ?1 AND id = ?2")?
        .execute(params![tenant_id.to_string(), id.to_string()])?;
    let cutoff = (Utc::now() - PAYLOAD_RETENTION).timestamp_millis();
    let first_kept =
        uuid::Builder::from_unix_timestamp_millis(u64::try_from(cutoff).unwrap_or(0), &[0; 10])
            .into_uuid();
    conn.prepare_cached(
        "DELETE FROM outbox WHERE id IN (
             SELECT id FROM outbox WHERE id < ?1 AND dispatched = 1 ORDER BY id LIMIT ?2)",
    )?
    .execute(params![first_kept.to_string(), OUTBOX_DELETES_PER_MARK])?;
    Ok(())
}
