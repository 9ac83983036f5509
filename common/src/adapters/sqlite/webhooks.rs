//! Webhooks (`WebhookStore`), counted against the tenant's limit in the write that creates one.

use std::collections::BTreeMap;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

use super::columns::{
    bad_text, conflict_on_duplicate, optional_time_column, time_column, uuid_column,
};
use super::SqliteStore;
use crate::domain::pacing::Pacing;
use crate::domain::page::{Page, PageRequest};
use crate::domain::webhook::Webhook;
use crate::error::{Error, Result};
use crate::ports::WebhookStore;
use crate::time::rfc3339;

const WEBHOOK_COLUMNS: &str = "tenant_id, id, url, description, events, headers, active, \
     max_retries, timeout_ms, secret, previous_secret, previous_secret_until, created_at, \
     updated_at, version, rate_limit_per_second";

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
        rate_limit_per_second: row.get(15)?,
        secret: row.get(9)?,
        previous_secret: previous.zip(until),
        created_at: time_column(row, 12)?,
        updated_at: time_column(row, 13)?,
        version: row.get(14)?,
    })
}

fn webhook_params(w: &Webhook) -> [Box<dyn rusqlite::ToSql>; 16] {
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
        Box::new(w.rate_limit_per_second),
    ]
}

/// Counted after the insert, in the same write (the writer runs one write at a time, and an
/// error undoes the write's savepoint): a duplicate id is a `Conflict` first, as on DynamoDB.
fn create_webhook(conn: &mut Connection, webhook: &Webhook, max: usize) -> Result<()> {
    let params = webhook_params(webhook);
    conn.execute(
        &format!("INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"),
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

fn update_webhook(conn: &mut Connection, before_version: i64, webhook: &Webhook) -> Result<()> {
    let mut params: Vec<Box<dyn rusqlite::ToSql>> = webhook_params(webhook).into_iter().collect();
    params.push(Box::new(before_version));
    let changed = conn.execute(
        "UPDATE webhooks SET url = ?3, description = ?4, events = ?5, headers = ?6, active = ?7,
             max_retries = ?8, timeout_ms = ?9, secret = ?10, previous_secret = ?11,
             previous_secret_until = ?12, created_at = ?13, updated_at = ?14, version = ?15,
             rate_limit_per_second = ?16
         WHERE tenant_id = ?1 AND id = ?2 AND version = ?17",
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

fn delete_webhook(conn: &mut Connection, tenant_id: Uuid, id: Uuid) -> Result<bool> {
    let deleted = conn.execute(
        "DELETE FROM webhooks WHERE tenant_id = ?1 AND id = ?2",
        params![tenant_id.to_string(), id.to_string()],
    )?;
    Ok(deleted == 1)
}

fn get_webhook(conn: &mut Connection, tenant_id: Uuid, id: Uuid) -> Result<Option<Webhook>> {
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

fn list_webhooks(
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

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn create_webhook(&self, webhook: &Webhook, max: usize) -> Result<()> {
        let webhook = webhook.clone();
        self.call(move |conn| create_webhook(conn, &webhook, max))
            .await
    }

    async fn update_webhook(&self, before_version: i64, webhook: &Webhook) -> Result<()> {
        let webhook = webhook.clone();
        self.call(move |conn| update_webhook(conn, before_version, &webhook))
            .await
    }

    async fn delete_webhook(&self, tenant_id: Uuid, webhook_id: Uuid) -> Result<bool> {
        self.call(move |conn| delete_webhook(conn, tenant_id, webhook_id))
            .await
    }

    async fn get_webhook(&self, tenant_id: Uuid, webhook_id: Uuid) -> Result<Option<Webhook>> {
        // On the writer: see `sqlite/mod.rs`.
        self.writer
            .read(move |conn| get_webhook(conn, tenant_id, webhook_id))
            .await
    }

    async fn list_webhooks(&self, tenant_id: Uuid, page: PageRequest) -> Result<Page<Webhook>> {
        self.read(move |conn| list_webhooks(conn, tenant_id, page))
            .await
    }

    async fn reserve_send_slot(
        &self,
        _tenant_id: Uuid,
        webhook_id: Uuid,
        pacing: Pacing,
        now_us: i64,
    ) -> Result<i64> {
        Ok(self.send_slots.reserve(webhook_id, pacing, now_us))
    }
}
