//! Clients and the tenant's sync counts (`ClientStore`): a client write is one write with its
//! counters and its outbox events.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

use super::columns::{
    bad_text, conflict_on_duplicate, optional_time_column, time_column, uuid_column,
};
use super::outbox::insert_events;
use super::SqliteStore;
use crate::domain::client::Client;
use crate::domain::page::{Page, PageRequest};
use crate::domain::stale_clients::{StaleKey, StaleQuery};
use crate::domain::sync_history::SyncTransition;
use crate::domain::sync_status::{CounterDelta, SyncCounts, SyncStatus};
use crate::error::{Error, Result};
use crate::ports::{ClientChange, ClientQuery, ClientStore};
use crate::time::rfc3339;

const CLIENT_COLUMNS: &str = "id, tenant_id, name, email, company, phone, external_id, \
     sync_status, created_at, updated_at, last_synced_at, version, last_sync_attempt_at, \
     last_sync_error, last_sync_error_code";

fn client_from_row(row: &Row<'_>) -> rusqlite::Result<Client> {
    let status: String = row.get(7)?;
    Ok(Client {
        id: uuid_column(row, 0)?,
        tenant_id: uuid_column(row, 1)?,
        name: row.get(2)?,
        email: row.get(3)?,
        company: row.get(4)?,
        phone: row.get(5)?,
        external_id: row.get(6)?,
        sync_status: SyncStatus::parse(&status).ok_or_else(|| bad_text(7, "a sync status"))?,
        created_at: time_column(row, 8)?,
        updated_at: time_column(row, 9)?,
        last_synced_at: optional_time_column(row, 10)?,
        version: row.get(11)?,
        last_sync_attempt_at: optional_time_column(row, 12)?,
        last_sync_error: row.get(13)?,
        last_sync_error_code: row.get(14)?,
    })
}

/// Writes the client row; `Conflict` when the row is not at the version the change read.
fn write_client_row(tx: &Connection, change: &ClientChange) -> Result<()> {
    let tenant = change.tenant_id.to_string();
    let changed = match (&change.before, &change.after) {
        (None, Some(after)) => tx
            .execute(
                &format!("INSERT INTO clients ({CLIENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"),
                params![
                    after.id.to_string(),
                    tenant,
                    after.name,
                    after.email,
                    after.company,
                    after.phone,
                    after.external_id,
                    after.sync_status.as_str(),
                    rfc3339(after.created_at),
                    rfc3339(after.updated_at),
                    after.last_synced_at.map(rfc3339),
                    after.version,
                    after.last_sync_attempt_at.map(rfc3339),
                    after.last_sync_error,
                    after.last_sync_error_code,
                ],
            )
            .map_err(|e| conflict_on_duplicate(e, "A client with this id"))?,
        (Some(before), Some(after)) => tx.execute(
            "UPDATE clients SET name = ?3, email = ?4, company = ?5, phone = ?6, external_id = ?7,
                 sync_status = ?8, updated_at = ?9, last_synced_at = ?10, version = ?11,
                 last_sync_attempt_at = ?13, last_sync_error = ?14, last_sync_error_code = ?15
             WHERE tenant_id = ?1 AND id = ?2 AND version = ?12",
            params![
                tenant,
                after.id.to_string(),
                after.name,
                after.email,
                after.company,
                after.phone,
                after.external_id,
                after.sync_status.as_str(),
                rfc3339(after.updated_at),
                after.last_synced_at.map(rfc3339),
                after.version,
                before.version,
                after.last_sync_attempt_at.map(rfc3339),
                after.last_sync_error,
                after.last_sync_error_code,
            ],
        )?,
        (Some(before), None) => tx.execute(
            "DELETE FROM clients WHERE tenant_id = ?1 AND id = ?2 AND version = ?3",
            params![tenant, before.id.to_string(), before.version],
        )?,
        (None, None) => 1,
    };
    if changed == 1 {
        Ok(())
    } else {
        Err(Error::Conflict(
            "The client was changed by another request.".to_owned(),
        ))
    }
}

fn apply_counter_delta(tx: &Connection, change: &ClientChange) -> Result<()> {
    let delta = CounterDelta::between(
        change.before.as_ref().map(|c| c.sync_status),
        change.after.as_ref().map(|c| c.sync_status),
    );
    if delta.is_empty() {
        return Ok(());
    }
    let synced_at = delta.became_synced.then(|| rfc3339(change.now));
    tx.execute(
        "INSERT INTO sync_counts (tenant_id, total, synced, pending, failed, needs_update, last_sync_time)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (tenant_id) DO UPDATE SET
             total = total + excluded.total,
             synced = synced + excluded.synced,
             pending = pending + excluded.pending,
             failed = failed + excluded.failed,
             needs_update = needs_update + excluded.needs_update,
             last_sync_time = COALESCE(excluded.last_sync_time, last_sync_time)",
        params![
            change.tenant_id.to_string(),
            delta.total,
            delta.synced,
            delta.pending,
            delta.failed,
            delta.needs_update,
            synced_at,
        ],
    )?;
    Ok(())
}

/// The change's history entry, when its status really changes (`SyncTransition::between`).
fn insert_transition(tx: &Connection, change: &ClientChange) -> Result<()> {
    let Some(entry) =
        SyncTransition::between(change.before.as_ref(), change.after.as_ref(), change.now)
    else {
        return Ok(());
    };
    tx.prepare_cached(
        "INSERT INTO sync_history
             (id, tenant_id, client_id, at, from_status, to_status, error, error_code)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        entry.id.to_string(),
        entry.tenant_id.to_string(),
        entry.client_id.to_string(),
        rfc3339(entry.at),
        entry.from.as_str(),
        entry.to.as_str(),
        entry.error,
        entry.error_code,
    ])?;
    Ok(())
}

fn transition_from_row(row: &Row<'_>) -> rusqlite::Result<SyncTransition> {
    let status = |index: usize| -> rusqlite::Result<SyncStatus> {
        let text: String = row.get(index)?;
        SyncStatus::parse(&text).ok_or_else(|| bad_text(index, "a sync status"))
    };
    Ok(SyncTransition {
        id: uuid_column(row, 0)?,
        tenant_id: uuid_column(row, 1)?,
        client_id: uuid_column(row, 2)?,
        at: time_column(row, 3)?,
        from: status(4)?,
        to: status(5)?,
        error: row.get(6)?,
        error_code: row.get(7)?,
    })
}

#[async_trait]
impl ClientStore for SqliteStore {
    async fn get_client(&self, tenant_id: Uuid, client_id: Uuid) -> Result<Option<Client>> {
        self.read(move |conn| {
            let mut query = conn.prepare_cached(&format!(
                "SELECT {CLIENT_COLUMNS} FROM clients WHERE tenant_id = ?1 AND id = ?2"
            ))?;
            let client = query
                .query_row(
                    params![tenant_id.to_string(), client_id.to_string()],
                    client_from_row,
                )
                .optional()?;
            Ok(client)
        })
        .await
    }

    async fn list_clients(&self, tenant_id: Uuid, query: &ClientQuery) -> Result<Page<Client>> {
        let query = *query;
        if let Some(stale) = query.synced_before {
            return self.stale_clients(tenant_id, stale, query.page.limit).await;
        }
        self.read(move |conn| {
            let after = query
                .page
                .after
                .map(|id| id.to_string())
                .unwrap_or_default();
            let status = query.status.map(SyncStatus::as_str);
            let mut select = conn.prepare_cached(&format!(
                "SELECT {CLIENT_COLUMNS} FROM clients
                 WHERE tenant_id = ?1 AND id > ?2 AND (?3 IS NULL OR sync_status = ?3)
                 ORDER BY id LIMIT ?4"
            ))?;
            let clients = select
                .query_map(
                    params![
                        tenant_id.to_string(),
                        after,
                        status,
                        (query.page.limit + 1) as i64
                    ],
                    client_from_row,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Page::from_overfetch(clients, query.page.limit, |c| c.id))
        })
        .await
    }

    async fn write_client(&self, change: &ClientChange) -> Result<()> {
        let change = change.clone();
        self.call(move |conn| {
            write_client_row(conn, &change)?;
            apply_counter_delta(conn, &change)?;
            insert_transition(conn, &change)?;
            insert_events(conn, &change.events)
        })
        .await
    }

    async fn sync_counts(&self, tenant_id: Uuid) -> Result<SyncCounts> {
        self.read(move |conn| {
            let mut query = conn.prepare_cached(
                "SELECT total, synced, pending, failed, needs_update, last_sync_time
                 FROM sync_counts WHERE tenant_id = ?1",
            )?;
            let counts = query
                .query_row(params![tenant_id.to_string()], |row| {
                    Ok(SyncCounts {
                        total_clients: row.get(0)?,
                        synced_clients: row.get(1)?,
                        pending_clients: row.get(2)?,
                        failed_clients: row.get(3)?,
                        needs_update_clients: row.get(4)?,
                        last_sync_time: optional_time_column(row, 5)?,
                    })
                })
                .optional()?;
            Ok(counts.unwrap_or_default())
        })
        .await
    }

    async fn sync_history(
        &self,
        tenant_id: Uuid,
        client_id: Uuid,
        page: PageRequest,
    ) -> Result<Page<SyncTransition>> {
        self.read(move |conn| {
            // No cursor: from above every id (text order is byte order: lowercase hex).
            let before = page
                .after
                .map_or_else(|| "g".to_owned(), |id| id.to_string());
            let entries = conn
                .prepare_cached(
                    "SELECT id, tenant_id, client_id, at, from_status, to_status, error, error_code
                     FROM sync_history WHERE tenant_id = ?1 AND client_id = ?2 AND id < ?3
                     ORDER BY id DESC LIMIT ?4",
                )?
                .query_map(
                    params![
                        tenant_id.to_string(),
                        client_id.to_string(),
                        before,
                        (page.limit + 1) as i64
                    ],
                    transition_from_row,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Page::from_overfetch(entries, page.limit, |e| e.id))
        })
        .await
    }
}

impl SqliteStore {
    /// One range of `clients_by_last_sync` (NULLs first, as the list wants): from the start, or
    /// past the cursor's key, which in the never-synced part also takes every synced client.
    async fn stale_clients(
        &self,
        tenant_id: Uuid,
        stale: StaleQuery,
        limit: usize,
    ) -> Result<Page<Client>> {
        self.read(move |conn| {
            let before = rfc3339(stale.before);
            let (range, after_time, after_id) = match stale.after {
                None => (
                    "(last_synced_at IS NULL OR last_synced_at < ?2)",
                    None,
                    None,
                ),
                Some(StaleKey {
                    last_synced_at: None,
                    id,
                }) => (
                    "((last_synced_at IS NULL AND id > ?4) OR last_synced_at < ?2)",
                    None,
                    Some(id.to_string()),
                ),
                Some(StaleKey {
                    last_synced_at: Some(at),
                    id,
                }) => (
                    "(last_synced_at, id) > (?3, ?4) AND last_synced_at < ?2",
                    Some(rfc3339(at)),
                    Some(id.to_string()),
                ),
            };
            let mut select = conn.prepare_cached(&format!(
                "SELECT {CLIENT_COLUMNS} FROM clients
                 WHERE tenant_id = ?1 AND {range}
                 ORDER BY last_synced_at, id LIMIT ?5"
            ))?;
            let clients = select
                .query_map(
                    params![
                        tenant_id.to_string(),
                        before,
                        after_time,
                        after_id,
                        (limit + 1) as i64
                    ],
                    client_from_row,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Page::from_overfetch_by(clients, limit, |c| {
                StaleKey::of(c).encode()
            }))
        })
        .await
    }
}
