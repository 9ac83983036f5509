//! Notify's idempotency keys (`IdempotencyStore`): a row per tenant and key. A claim is an
//! upsert that replaces only an expired row, on the one writer, so of two claims one wins; it
//! also removes a few expired rows, as DynamoDB's TTL would.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::columns::{bad_text, uuid_column};
use super::SqliteStore;
use crate::domain::idempotency::{IdempotencyKey, IdempotencyRecord};
use crate::error::Result;
use crate::ports::IdempotencyStore;

/// Expired rows removed per claim: more than one, so the table never grows with old keys.
const EXPIRED_DELETES_PER_CLAIM: i64 = 16;

fn claim(conn: &mut Connection, record: &IdempotencyRecord, now: DateTime<Utc>) -> Result<bool> {
    let now = now.timestamp_millis();
    conn.prepare_cached(
        "DELETE FROM idempotency_keys WHERE rowid IN (
             SELECT rowid FROM idempotency_keys WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2)",
    )?
    .execute(params![now, EXPIRED_DELETES_PER_CLAIM])?;
    let written = conn
        .prepare_cached(
            "INSERT INTO idempotency_keys
                 (tenant_id, key, fingerprint, event_id, delivery_ids, expires_at)
             VALUES (?1, ?2, ?3, ?4, NULL, ?5)
             ON CONFLICT (tenant_id, key) DO UPDATE SET
                 fingerprint = excluded.fingerprint, event_id = excluded.event_id,
                 delivery_ids = NULL, expires_at = excluded.expires_at
             WHERE idempotency_keys.expires_at <= ?6",
        )?
        .execute(params![
            record.tenant_id.to_string(),
            record.key.as_str(),
            record.fingerprint,
            record.event_id.to_string(),
            record.expires_at.timestamp_millis(),
            now,
        ])?;
    Ok(written == 1)
}

#[async_trait]
impl IdempotencyStore for SqliteStore {
    async fn find_idempotency_record(
        &self,
        tenant_id: Uuid,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotencyRecord>> {
        let key = key.clone();
        self.read(move |conn| {
            let row = conn
                .prepare_cached(
                    "SELECT fingerprint, event_id, delivery_ids, expires_at FROM idempotency_keys
                     WHERE tenant_id = ?1 AND key = ?2 AND expires_at > ?3",
                )?
                .query_row(
                    params![tenant_id.to_string(), key.as_str(), now.timestamp_millis()],
                    |row| {
                        let ids: Option<String> = row.get(2)?;
                        let delivery_ids = ids
                            .map(|ids| serde_json::from_str(&ids).map_err(|_| bad_text(2, "JSON")))
                            .transpose()?;
                        let expires_at: i64 = row.get(3)?;
                        Ok(IdempotencyRecord {
                            tenant_id,
                            key: key.clone(),
                            fingerprint: row.get(0)?,
                            event_id: uuid_column(row, 1)?,
                            delivery_ids,
                            expires_at: DateTime::from_timestamp_millis(expires_at)
                                .ok_or_else(|| bad_text(3, "a time"))?,
                        })
                    },
                )
                .optional()?;
            Ok(row)
        })
        .await
    }

    async fn claim_idempotency_key(
        &self,
        record: &IdempotencyRecord,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let record = record.clone();
        self.call(move |conn| claim(conn, &record, now)).await
    }

    async fn record_idempotent_answer(
        &self,
        tenant_id: Uuid,
        key: &IdempotencyKey,
        event_id: Uuid,
        delivery_ids: &[Uuid],
    ) -> Result<()> {
        let key = key.clone();
        let ids = serde_json::to_string(delivery_ids).map_err(crate::error::Error::internal)?;
        self.call(move |conn| {
            conn.prepare_cached(
                "UPDATE idempotency_keys SET delivery_ids = ?4
                 WHERE tenant_id = ?1 AND key = ?2 AND event_id = ?3",
            )?
            .execute(params![
                tenant_id.to_string(),
                key.as_str(),
                event_id.to_string(),
                ids
            ])?;
            Ok(())
        })
        .await
    }
}
