//! Payloads, deliveries, attempts and their counters (`DeliveryStore`). Reads run on a reader
//! connection (the worker's one, `get_delivery`, on the writer's: see `sqlite/mod.rs`), writes on
//! the writer thread, each write atomic in its own savepoint.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

use super::columns::{bad_text, optional_time_column, time_column, uuid_column};
use super::SqliteStore;
use crate::domain::delivery::{
    Attempt, Delivery, DeliveryStatus, DeliverySummary, DueDelivery, EventPayload, StatusCounts,
};
use crate::domain::delivery_search::DeliveryFilter;
use crate::domain::page::{Page, PageRequest, FILTER_SCAN_LIMIT};
use crate::error::{Error, Result};
use crate::ports::{
    DeliveryChange, DeliveryCounts, DeliveryRef, DeliveryStore, DueCursor, DuePage, Requeue,
};
use crate::time::rfc3339;

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
fn put_payload(conn: &mut Connection, payload: &EventPayload) -> Result<()> {
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

fn create_deliveries(conn: &mut Connection, deliveries: &[Delivery]) -> Result<()> {
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

fn get_delivery(conn: &mut Connection, tenant_id: Uuid, id: Uuid) -> Result<Option<Delivery>> {
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

fn get_delivery_summary(
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

fn list_attempts(conn: &mut Connection, tenant_id: Uuid, id: Uuid) -> Result<Vec<Attempt>> {
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

fn write_delivery(conn: &mut Connection, change: &DeliveryChange) -> Result<()> {
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

fn list_deliveries(
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

/// The index a search reads: the one of its fixed dimensions (event, webhook), ordered by
/// status then id (`migrations/0011_delivery_search.sql`).
fn search_index(filter: &DeliveryFilter) -> &'static str {
    match (&filter.event, filter.webhook_id) {
        (None, None) => "deliveries_search_status",
        (Some(_), None) => "deliveries_search_event",
        (None, Some(_)) => "deliveries_search_webhook",
        (Some(_), Some(_)) => "deliveries_search_webhook_event",
    }
}

/// The statement of a search, newest first, at most `?6` rows; parameters: ?1 tenant, ?2 event,
/// ?3 webhook, ?4 the lowest id (inclusive), ?5 the highest (exclusive). Every form reads id
/// ranges of an index (`EXPLAIN QUERY PLAN` in the tests): with a status, one range; without,
/// the tenant's primary key, or a webhook's index by id, or the five status ranges of the
/// filter's index, merged.
fn search_sql(filter: &DeliveryFilter) -> String {
    let mut fixed = "tenant_id = ?1".to_owned();
    if filter.event.is_some() {
        fixed.push_str(" AND event = ?2");
    }
    if filter.webhook_id.is_some() {
        fixed.push_str(" AND webhook_id = ?3");
    }
    let range = "id >= ?4 AND id < ?5 ORDER BY id DESC LIMIT ?6";
    let index = search_index(filter);
    match (filter.status, &filter.event, filter.webhook_id) {
        (Some(status), _, _) => format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries INDEXED BY {index}
             WHERE {fixed} AND status = '{}' AND {range}",
            status.as_str()
        ),
        (None, None, None) => {
            format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE {fixed} AND {range}")
        }
        (None, None, Some(_)) => format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries INDEXED BY deliveries_by_webhook
             WHERE {fixed} AND {range}"
        ),
        (None, Some(_), _) => {
            let ranges: Vec<String> = DeliveryStatus::ALL
                .iter()
                .map(|status| {
                    format!(
                        "SELECT * FROM (SELECT {DELIVERY_COLUMNS} FROM deliveries INDEXED BY {index}
                         WHERE {fixed} AND status = '{}' AND {range})",
                        status.as_str()
                    )
                })
                .collect();
            format!(
                "SELECT * FROM ({}) ORDER BY id DESC LIMIT ?6",
                ranges.join(" UNION ALL ")
            )
        }
    }
}

fn search_deliveries(
    conn: &mut Connection,
    tenant_id: Uuid,
    filter: &DeliveryFilter,
    page: PageRequest,
) -> Result<Page<DeliverySummary>> {
    let range = filter.id_range().before(page.after);
    let mut query = conn.prepare_cached(&search_sql(filter))?;
    let found = query
        .query_map(
            params![
                tenant_id.to_string(),
                filter.event,
                filter.webhook_id.map(|id| id.to_string()),
                range.lower.map(|id| id.to_string()).unwrap_or_default(),
                // Above every id: no upper bound.
                range
                    .upper
                    .map_or_else(|| "~".to_owned(), |id| id.to_string()),
                (page.limit + 1) as i64,
            ],
            summary_from_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Page::from_overfetch(found, page.limit, |d| d.id))
}

/// Due deliveries in (due time, id) order from where `after` stopped, only the columns the
/// sweeper needs; the cursor is the last one's due time and id.
fn due_deliveries(
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
fn requeue_deliveries(conn: &mut Connection, requeues: &[Requeue]) -> Result<Vec<bool>> {
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

fn failed_deliveries(
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

fn delivery_counts(conn: &mut Connection, tenant_id: Uuid) -> Result<DeliveryCounts> {
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

#[async_trait]
impl DeliveryStore for SqliteStore {
    async fn put_payload(&self, payload: &EventPayload) -> Result<()> {
        let payload = payload.clone();
        self.call(move |conn| put_payload(conn, &payload)).await
    }

    async fn create_deliveries_with_payload(
        &self,
        payload: &EventPayload,
        deliveries: &[Delivery],
    ) -> Result<()> {
        let (payload, deliveries) = (payload.clone(), deliveries.to_vec());
        self.call(move |conn| {
            put_payload(conn, &payload)?;
            create_deliveries(conn, &deliveries)
        })
        .await
    }

    async fn create_deliveries(&self, deliveries: &[Delivery]) -> Result<()> {
        let deliveries = deliveries.to_vec();
        self.call(move |conn| create_deliveries(conn, &deliveries))
            .await
    }

    async fn get_delivery(&self, tenant_id: Uuid, delivery_id: Uuid) -> Result<Option<Delivery>> {
        // On the writer: see `sqlite/mod.rs`.
        self.writer
            .read(move |conn| get_delivery(conn, tenant_id, delivery_id))
            .await
    }

    async fn get_delivery_summary(
        &self,
        tenant_id: Uuid,
        delivery_id: Uuid,
    ) -> Result<Option<DeliverySummary>> {
        self.read(move |conn| get_delivery_summary(conn, tenant_id, delivery_id))
            .await
    }

    async fn list_attempts(&self, tenant_id: Uuid, delivery_id: Uuid) -> Result<Vec<Attempt>> {
        self.read(move |conn| list_attempts(conn, tenant_id, delivery_id))
            .await
    }

    async fn write_delivery(&self, change: &DeliveryChange) -> Result<()> {
        let change = change.clone();
        self.call(move |conn| write_delivery(conn, &change)).await
    }

    async fn list_deliveries(
        &self,
        tenant_id: Uuid,
        webhook_id: Uuid,
        status: Option<DeliveryStatus>,
        page: PageRequest,
    ) -> Result<Page<DeliverySummary>> {
        self.read(move |conn| list_deliveries(conn, tenant_id, webhook_id, status, page))
            .await
    }

    async fn search_deliveries(
        &self,
        tenant_id: Uuid,
        filter: &DeliveryFilter,
        page: PageRequest,
    ) -> Result<Page<DeliverySummary>> {
        let filter = filter.clone();
        self.read(move |conn| search_deliveries(conn, tenant_id, &filter, page))
            .await
    }

    async fn due_deliveries(
        &self,
        before: DateTime<Utc>,
        after: Option<&DueCursor>,
        limit: usize,
    ) -> Result<DuePage> {
        let after = after.cloned();
        self.read(move |conn| due_deliveries(conn, before, after.as_ref(), limit))
            .await
    }

    async fn requeue_deliveries(&self, requeues: &[Requeue]) -> Result<Vec<bool>> {
        let requeues = requeues.to_vec();
        self.call(move |conn| requeue_deliveries(conn, &requeues))
            .await
    }

    async fn failed_deliveries(
        &self,
        tenant_id: Uuid,
        webhook_id: Option<Uuid>,
        after: Option<DeliveryRef>,
        limit: usize,
    ) -> Result<Vec<DeliveryRef>> {
        self.read(move |conn| failed_deliveries(conn, tenant_id, webhook_id, after, limit))
            .await
    }

    async fn delivery_counts(&self, tenant_id: Uuid) -> Result<DeliveryCounts> {
        self.read(move |conn| delivery_counts(conn, tenant_id))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every combination of the search's filters, with and without a time range.
    fn every_filter() -> Vec<DeliveryFilter> {
        let mut filters = Vec::new();
        for status in [None, Some(DeliveryStatus::Failed)] {
            for event in [None, Some("lead.created".to_owned())] {
                for webhook_id in [None, Some(Uuid::now_v7())] {
                    for since in [None, Some(Utc::now())] {
                        filters.push(DeliveryFilter {
                            status,
                            event: event.clone(),
                            webhook_id,
                            since,
                            until: None,
                        });
                    }
                }
            }
        }
        filters
    }

    #[test]
    fn no_search_scans_the_deliveries_table() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("plan.sqlite3")).unwrap();
        super::super::migrate(&mut conn).unwrap();
        for filter in every_filter() {
            let sql = search_sql(&filter);
            let mut plan = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let steps: Vec<String> = plan
                .query_map(params!["t", "e", "w", "", "~", 51], |row| {
                    row.get::<_, String>(3)
                })
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            let reads: Vec<&String> = steps.iter().filter(|s| s.contains("deliveries")).collect();
            assert!(!reads.is_empty(), "{filter:?}: {steps:?}");
            for read in reads {
                assert!(
                    read.starts_with("SEARCH deliveries USING") && read.contains("id>? AND id<?"),
                    "{filter:?} reads the table otherwise than by an id range of an index: {steps:?}"
                );
            }
        }
    }
}
