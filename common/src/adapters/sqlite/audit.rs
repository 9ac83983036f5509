//! The audit log (`AuditStore`): a row per entry, inserted by the management writes in their
//! own transaction (`insert_audit`), read a range of the tenant's ids at a time.

use async_trait::async_trait;
use rusqlite::{params, Connection, Row};
use uuid::Uuid;

use super::columns::{bad_text, time_column, uuid_column};
use super::SqliteStore;
use crate::domain::audit::{Actor, AuditAction, AuditEntry, AuditQuery};
use crate::domain::page::{Page, PageRequest};
use crate::error::{Error, Result};
use crate::ports::AuditStore;
use crate::time::rfc3339;

/// Writes `entry` within the caller's transaction, when there is one to write.
pub(super) fn insert_audit(conn: &Connection, entry: Option<&AuditEntry>) -> Result<()> {
    let Some(entry) = entry else {
        return Ok(());
    };
    let changes = serde_json::to_string(&entry.changes).map_err(Error::internal)?;
    conn.prepare_cached(
        "INSERT INTO audit_log
             (id, tenant_id, at, action, actor_key_id, actor_key_name, target_id, changes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        entry.id.to_string(),
        entry.tenant_id.to_string(),
        rfc3339(entry.at),
        entry.action.as_str(),
        entry.actor.key_id.map(|id| id.to_string()),
        entry.actor.key_name,
        entry.target_id.to_string(),
        changes,
    ])?;
    Ok(())
}

fn entry_from_row(row: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    let action: String = row.get(3)?;
    let key_id: Option<String> = row.get(4)?;
    let changes: String = row.get(7)?;
    Ok(AuditEntry {
        id: uuid_column(row, 0)?,
        tenant_id: uuid_column(row, 1)?,
        at: time_column(row, 2)?,
        action: AuditAction::parse(&action).ok_or_else(|| bad_text(3, "an audit action"))?,
        actor: Actor {
            key_id: key_id
                .map(|id| Uuid::parse_str(&id).map_err(|_| bad_text(4, "a UUID")))
                .transpose()?,
            key_name: row.get(5)?,
        },
        target_id: uuid_column(row, 6)?,
        changes: serde_json::from_str(&changes).map_err(|_| bad_text(7, "a JSON object"))?,
    })
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        let entry = entry.clone();
        self.call(move |conn| insert_audit(conn, Some(&entry)))
            .await
    }

    async fn list_audit(
        &self,
        tenant_id: Uuid,
        query: &AuditQuery,
        page: PageRequest,
    ) -> Result<Page<AuditEntry>> {
        let (low, mut high) = query.id_range();
        if let Some(after) = page.after {
            high = high.min(after);
        }
        let action = query.action.map(AuditAction::as_str);
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT id, tenant_id, at, action, actor_key_id, actor_key_name, target_id, changes
                 FROM audit_log
                 WHERE tenant_id = ?1 AND id >= ?2 AND id < ?3 AND (?4 IS NULL OR action = ?4)
                 ORDER BY id DESC LIMIT ?5",
            )?;
            let entries = statement
                .query_map(
                    params![
                        tenant_id.to_string(),
                        low.to_string(),
                        high.to_string(),
                        action,
                        (page.limit + 1) as i64
                    ],
                    entry_from_row,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Page::from_overfetch(entries, page.limit, |e| e.id))
        })
        .await
    }
}
