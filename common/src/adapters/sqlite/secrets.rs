//! The keyring (`SecretStore`) and the sealing of plain secrets (`PlainSecretMigration`),
//! docs/architecture.md §Secrets at rest.

use async_trait::async_trait;
use rusqlite::{params, Connection};
use uuid::Uuid;

use super::columns::{time_column, uuid_column};
use super::SqliteStore;
use crate::domain::sealed_secret::{SecretPlace, SecretSlot, WrappedDataKey, SEALED_PREFIX};
use crate::error::Result;
use crate::ports::{PlainSecretMigration, Sealer, SecretStore};
use crate::time::rfc3339;

#[async_trait]
impl SecretStore for SqliteStore {
    async fn data_keys(&self) -> Result<Vec<WrappedDataKey>> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT id, wrapped, wrapped_by, created_at FROM data_keys ORDER BY id",
            )?;
            let keys = statement.query_map([], |row| {
                Ok(WrappedDataKey {
                    id: row.get(0)?,
                    wrapped: row.get(1)?,
                    wrapped_by: row.get(2)?,
                    created_at: time_column(row, 3)?,
                })
            })?;
            Ok(keys.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn add_first_data_key(&self, key: &WrappedDataKey) -> Result<bool> {
        let key = key.clone();
        self.call(move |conn| {
            let added = conn.execute(
                "INSERT INTO data_keys (id, wrapped, wrapped_by, created_at)
                 SELECT ?1, ?2, ?3, ?4 WHERE NOT EXISTS (SELECT 1 FROM data_keys)",
                params![key.id, key.wrapped, key.wrapped_by, rfc3339(key.created_at)],
            )?;
            Ok(added == 1)
        })
        .await
    }
}

#[async_trait]
impl PlainSecretMigration for SqliteStore {
    /// In one write; then, if it sealed any, the file is rewritten (VACUUM) and the WAL emptied,
    /// so that no copy of a plain secret stays in a freed page or an old WAL frame.
    async fn seal_plain_secrets(&self, seal: Sealer) -> Result<usize> {
        let sealed = self
            .call(move |conn| seal_plain_rows(conn, seal.as_ref()))
            .await?;
        if sealed > 0 {
            self.scrub().await?;
        }
        Ok(sealed)
    }
}

/// A webhook row with a secret in the clear.
struct PlainRow {
    tenant_id: Uuid,
    id: Uuid,
    secret: String,
    previous_secret: Option<String>,
    version: i64,
}

fn seal_plain_rows(
    conn: &mut Connection,
    seal: &(dyn Fn(&SecretPlace, &str) -> String + Send + Sync),
) -> Result<usize> {
    let sealed_form = format!("{SEALED_PREFIX}%");
    let rows: Vec<PlainRow> = {
        let mut statement = conn.prepare(
            "SELECT tenant_id, id, secret, previous_secret, version FROM webhooks
             WHERE secret NOT LIKE ?1
                OR (previous_secret IS NOT NULL AND previous_secret NOT LIKE ?1)",
        )?;
        let rows = statement.query_map(params![sealed_form], |row| {
            Ok(PlainRow {
                tenant_id: uuid_column(row, 0)?,
                id: uuid_column(row, 1)?,
                secret: row.get(2)?,
                previous_secret: row.get(3)?,
                version: row.get(4)?,
            })
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for row in &rows {
        let place = |slot| SecretPlace {
            tenant_id: row.tenant_id,
            webhook_id: row.id,
            slot,
        };
        let sealed_or_kept = |text: &str, slot| {
            if text.starts_with(SEALED_PREFIX) {
                text.to_owned()
            } else {
                seal(&place(slot), text)
            }
        };
        let secret = sealed_or_kept(&row.secret, SecretSlot::Current);
        let previous = row
            .previous_secret
            .as_deref()
            .map(|text| sealed_or_kept(text, SecretSlot::Previous));
        conn.execute(
            "UPDATE webhooks SET secret = ?1, previous_secret = ?2, version = version + 1
             WHERE tenant_id = ?3 AND id = ?4 AND version = ?5",
            params![
                secret,
                previous,
                row.tenant_id.to_string(),
                row.id.to_string(),
                row.version
            ],
        )?;
    }
    Ok(rows.len())
}
