//! Webhooks (`WebhookStore`), counted against the tenant's limit in the write that creates one.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

use super::audit::insert_audit;
use super::columns::{
    bad_text, conflict_on_duplicate, optional_time_column, time_column, uuid_column,
};
use super::SqliteStore;
use crate::domain::audit::AuditEntry;
use crate::domain::delivery::RetrySchedule;
use crate::domain::health::{DisabledReason, HealthChange, WebhookHealth};
use crate::domain::pacing::Pacing;
use crate::domain::page::{Page, PageRequest};
use crate::domain::sealed_secret::StoredSecret;
use crate::domain::webhook::Webhook;
use crate::error::{Error, Result};
use crate::ports::WebhookStore;
use crate::time::rfc3339;

/// What a creation or a change writes (`webhook_params`, in order).
const WEBHOOK_COLUMNS: &str = "tenant_id, id, url, description, events, headers, active, \
     max_retries, timeout_ms, secret, previous_secret, previous_secret_until, created_at, \
     updated_at, version, retry_schedule, disabled_reason, disabled_at, rate_limit_per_second";
/// What a read reads: the written columns, then the health the worker writes.
const READ_COLUMNS: &str = "tenant_id, id, url, description, events, headers, active, \
     max_retries, timeout_ms, secret, previous_secret, previous_secret_until, created_at, \
     updated_at, version, retry_schedule, disabled_reason, disabled_at, rate_limit_per_second, \
     last_success_at, last_failure_at, consecutive_failures, failing_since";

fn webhook_from_row(row: &Row<'_>) -> rusqlite::Result<Webhook> {
    let events: String = row.get(4)?;
    let headers: String = row.get(5)?;
    let previous: Option<String> = row.get(10)?;
    let previous = previous.map(StoredSecret::from_stored);
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
        rate_limit_per_second: row.get(18)?,
        secret: StoredSecret::from_stored(row.get(9)?),
        previous_secret: previous.zip(until),
        created_at: time_column(row, 12)?,
        updated_at: time_column(row, 13)?,
        version: row.get(14)?,
        retry_schedule: match row.get::<_, Option<String>>(15)? {
            None => None,
            Some(text) => Some(
                serde_json::from_str::<Vec<i64>>(&text)
                    .ok()
                    .and_then(|seconds| RetrySchedule::from_seconds(&seconds))
                    .ok_or_else(|| bad_text(15, "a JSON list of seconds"))?,
            ),
        },
        disabled_reason: match row.get::<_, Option<String>>(16)? {
            None => None,
            Some(text) => Some(
                DisabledReason::parse(&text).ok_or_else(|| bad_text(16, "a disabled reason"))?,
            ),
        },
        disabled_at: optional_time_column(row, 17)?,
        health: WebhookHealth {
            last_success_at: optional_time_column(row, 19)?,
            last_failure_at: optional_time_column(row, 20)?,
            consecutive_failures: row.get(21)?,
            failing_since: optional_time_column(row, 22)?,
        },
    })
}

fn webhook_params(w: &Webhook) -> [Box<dyn rusqlite::ToSql>; 19] {
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
        Box::new(w.secret.as_stored().to_owned()),
        Box::new(
            w.previous_secret
                .as_ref()
                .map(|(s, _)| s.as_stored().to_owned()),
        ),
        Box::new(w.previous_secret.as_ref().map(|(_, t)| rfc3339(*t))),
        Box::new(rfc3339(w.created_at)),
        Box::new(rfc3339(w.updated_at)),
        Box::new(w.version),
        Box::new(
            w.retry_schedule
                .as_ref()
                .map(|schedule| serde_json::to_string(schedule).unwrap_or_default()),
        ),
        Box::new(w.disabled_reason.map(DisabledReason::as_str)),
        Box::new(w.disabled_at.map(rfc3339)),
        Box::new(w.rate_limit_per_second),
    ]
}

/// Counted after the insert, in the same write (the writer runs one write at a time, and an
/// error undoes the write's savepoint): a duplicate id is a `Conflict` first, as on DynamoDB.
fn create_webhook(conn: &mut Connection, webhook: &Webhook, max: usize) -> Result<()> {
    let params = webhook_params(webhook);
    conn.execute(
        &format!("INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"),
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
             retry_schedule = ?16, disabled_reason = ?17, disabled_at = ?18,
             rate_limit_per_second = ?19
         WHERE tenant_id = ?1 AND id = ?2 AND version = ?20",
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
        "SELECT {READ_COLUMNS} FROM webhooks WHERE tenant_id = ?1 AND id = ?2"
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
        "SELECT {READ_COLUMNS} FROM webhooks WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
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

/// One UPDATE, whatever the health was: concurrent attempts each add their own change.
fn record_health(
    conn: &mut Connection,
    tenant_id: Uuid,
    id: Uuid,
    change: HealthChange,
    at: DateTime<Utc>,
) -> Result<Option<WebhookHealth>> {
    let (sql, failed_deliveries) = match change {
        HealthChange::Succeeded => (
            "UPDATE webhooks SET last_success_at = ?3, consecutive_failures = 0,
                 failing_since = NULL WHERE tenant_id = ?1 AND id = ?2",
            0,
        ),
        HealthChange::Failed { delivery_failed } => (
            "UPDATE webhooks SET last_failure_at = ?3, failing_since = coalesce(failing_since, ?3),
                 consecutive_failures = consecutive_failures + ?4
             WHERE tenant_id = ?1 AND id = ?2",
            i64::from(delivery_failed),
        ),
        HealthChange::Restarted => (
            "UPDATE webhooks SET failing_since = NULL WHERE tenant_id = ?1 AND id = ?2",
            0,
        ),
    };
    let (tenant, webhook) = (tenant_id.to_string(), id.to_string());
    let changed = {
        let mut statement = conn.prepare_cached(sql)?;
        match change {
            HealthChange::Failed { .. } => {
                statement.execute(params![tenant, webhook, rfc3339(at), failed_deliveries])?
            }
            HealthChange::Succeeded => statement.execute(params![tenant, webhook, rfc3339(at)])?,
            HealthChange::Restarted => statement.execute(params![tenant, webhook])?,
        }
    };
    if changed == 0 {
        return Ok(None);
    }
    Ok(get_webhook(conn, tenant_id, id)?.map(|w| w.health))
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn record_webhook_health(
        &self,
        tenant_id: Uuid,
        webhook_id: Uuid,
        change: HealthChange,
        at: DateTime<Utc>,
    ) -> Result<Option<WebhookHealth>> {
        self.call(move |conn| record_health(conn, tenant_id, webhook_id, change, at))
            .await
    }

    async fn create_webhook(
        &self,
        webhook: &Webhook,
        max: usize,
        audit: Option<&AuditEntry>,
    ) -> Result<()> {
        let (webhook, audit) = (webhook.clone(), audit.cloned());
        self.call(move |conn| {
            create_webhook(conn, &webhook, max)?;
            insert_audit(conn, audit.as_ref())
        })
        .await
    }

    async fn update_webhook(
        &self,
        before_version: i64,
        webhook: &Webhook,
        audit: Option<&AuditEntry>,
    ) -> Result<()> {
        let (webhook, audit) = (webhook.clone(), audit.cloned());
        self.call(move |conn| {
            update_webhook(conn, before_version, &webhook)?;
            insert_audit(conn, audit.as_ref())
        })
        .await
    }

    async fn delete_webhook(
        &self,
        tenant_id: Uuid,
        webhook_id: Uuid,
        audit: Option<&AuditEntry>,
    ) -> Result<bool> {
        let audit = audit.cloned();
        self.call(move |conn| {
            let deleted = delete_webhook(conn, tenant_id, webhook_id)?;
            if deleted {
                insert_audit(conn, audit.as_ref())?;
            }
            Ok(deleted)
        })
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
