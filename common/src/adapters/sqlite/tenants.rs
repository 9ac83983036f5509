//! Tenants and their API keys (`TenantStore`).

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
use crate::domain::auth::{ApiKey, Role};
use crate::domain::tenant::Tenant;
use crate::error::Result;
use crate::ports::TenantStore;
use crate::time::rfc3339;

const KEY_COLUMNS: &str =
    "id, tenant_id, name, role, prefix, key_hash, created_at, expires_at, last_used_at";

fn key_from_row(row: &Row<'_>) -> rusqlite::Result<ApiKey> {
    let role: String = row.get(3)?;
    Ok(ApiKey {
        id: uuid_column(row, 0)?,
        tenant_id: uuid_column(row, 1)?,
        name: row.get(2)?,
        role: Role::parse(&role).ok_or_else(|| bad_text(3, "a role"))?,
        prefix: row.get(4)?,
        key_hash: row.get(5)?,
        created_at: time_column(row, 6)?,
        expires_at: optional_time_column(row, 7)?,
        last_used_at: optional_time_column(row, 8)?,
    })
}

fn insert_key(tx: &Connection, key: &ApiKey) -> Result<()> {
    tx.execute(
        "INSERT INTO api_keys (id, tenant_id, name, role, prefix, key_hash, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            key.id.to_string(),
            key.tenant_id.to_string(),
            key.name,
            key.role.as_str(),
            key.prefix,
            key.key_hash,
            rfc3339(key.created_at),
            key.expires_at.map(rfc3339),
        ],
    )
    .map_err(|e| conflict_on_duplicate(e, "An API key with this value"))?;
    Ok(())
}

#[async_trait]
impl TenantStore for SqliteStore {
    async fn create_tenant(
        &self,
        tenant: &Tenant,
        first_key: &ApiKey,
        audit: Option<&AuditEntry>,
    ) -> Result<()> {
        let (tenant, key, audit) = (tenant.clone(), first_key.clone(), audit.cloned());
        self.call(move |tx| {
            tx.execute(
                "INSERT INTO tenants (id, name, created_at) VALUES (?1, ?2, ?3)",
                params![
                    tenant.id.to_string(),
                    tenant.name,
                    rfc3339(tenant.created_at)
                ],
            )
            .map_err(|e| conflict_on_duplicate(e, "The tenant"))?;
            insert_key(tx, &key)?;
            insert_audit(tx, audit.as_ref())
        })
        .await
    }

    async fn get_tenant(&self, tenant_id: Uuid) -> Result<Option<Tenant>> {
        self.read(move |conn| {
            let tenant = conn
                .query_row(
                    "SELECT id, name, created_at FROM tenants WHERE id = ?1",
                    params![tenant_id.to_string()],
                    |row| {
                        Ok(Tenant {
                            id: uuid_column(row, 0)?,
                            name: row.get(1)?,
                            created_at: time_column(row, 2)?,
                        })
                    },
                )
                .optional()?;
            Ok(tenant)
        })
        .await
    }

    async fn put_api_key(&self, key: &ApiKey, audit: Option<&AuditEntry>) -> Result<()> {
        let (key, audit) = (key.clone(), audit.cloned());
        self.call(move |conn| {
            insert_key(conn, &key)?;
            insert_audit(conn, audit.as_ref())
        })
        .await
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>> {
        let key_hash = key_hash.to_owned();
        self.read(move |conn| {
            let mut query = conn.prepare_cached(&format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = ?1"
            ))?;
            Ok(query
                .query_row(params![key_hash], key_from_row)
                .optional()?)
        })
        .await
    }

    async fn list_api_keys(&self, tenant_id: Uuid) -> Result<Vec<ApiKey>> {
        self.read(move |conn| {
            let mut query = conn.prepare_cached(&format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant_id = ?1 ORDER BY id"
            ))?;
            let keys = query
                .query_map(params![tenant_id.to_string()], key_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(keys)
        })
        .await
    }

    async fn record_key_use(
        &self,
        key_hash: &str,
        at: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<()> {
        let key_hash = key_hash.to_owned();
        self.call(move |conn| {
            conn.execute(
                "UPDATE api_keys SET last_used_at = ?2
                 WHERE key_hash = ?1 AND (last_used_at IS NULL OR last_used_at < ?3)",
                params![key_hash, rfc3339(at), rfc3339(stale_before)],
            )?;
            Ok(())
        })
        .await
    }

    async fn delete_api_key(
        &self,
        tenant_id: Uuid,
        key_id: Uuid,
        audit: Option<&AuditEntry>,
    ) -> Result<bool> {
        let audit = audit.cloned();
        self.call(move |conn| {
            let deleted = conn.execute(
                "DELETE FROM api_keys WHERE tenant_id = ?1 AND id = ?2",
                params![tenant_id.to_string(), key_id.to_string()],
            )? == 1;
            if deleted {
                insert_audit(conn, audit.as_ref())?;
            }
            Ok(deleted)
        })
        .await
    }
}
