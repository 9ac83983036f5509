//! Notify's idempotency keys (`IdempotencyStore`): an item per tenant and key
//! (`IDEMPOTENCY#<key>`), claimed by a conditional PutItem that replaces only an expired item,
//! completed by a conditional UpdateItem, and removed by DynamoDB's TTL after `expires_at`
//! (a lookup ignores an expired item the TTL has not removed yet).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::attributes::*;
use super::tables::{PK, TTL};
use super::{tenant_pk, Condition, DynamoStore};
use crate::domain::idempotency::{IdempotencyKey, IdempotencyRecord};
use crate::error::{Error, Result};
use crate::ports::IdempotencyStore;
use aws_sdk_dynamodb::types::Update;

const IDEMPOTENCY_SK_PREFIX: &str = "IDEMPOTENCY#";
const DELIVERY_IDS: &str = "delivery_ids";

fn idempotency_sk(key: &IdempotencyKey) -> String {
    format!("{IDEMPOTENCY_SK_PREFIX}{}", key.as_str())
}

fn record_item(record: &IdempotencyRecord) -> Item {
    let mut item = key(tenant_pk(record.tenant_id), idempotency_sk(&record.key));
    item.insert("fingerprint".into(), text(&record.fingerprint));
    item.insert("event_id".into(), text(record.event_id.to_string()));
    item.insert(TTL.into(), number(record.expires_at.timestamp()));
    item
}

fn record_from_item(
    tenant_id: Uuid,
    key: &IdempotencyKey,
    item: &Item,
) -> Result<IdempotencyRecord> {
    let delivery_ids = optional_text(item, DELIVERY_IDS)
        .map(|ids| serde_json::from_str(&ids).map_err(|_| corrupt(DELIVERY_IDS)))
        .transpose()?;
    let expires_at: i64 = number_of(item, TTL)?;
    Ok(IdempotencyRecord {
        tenant_id,
        key: key.clone(),
        fingerprint: text_of(item, "fingerprint")?.to_owned(),
        event_id: uuid_of(item, "event_id")?,
        delivery_ids,
        expires_at: DateTime::from_timestamp(expires_at, 0).ok_or_else(|| corrupt(TTL))?,
    })
}

#[async_trait]
impl IdempotencyStore for DynamoStore {
    async fn find_idempotency_record(
        &self,
        tenant_id: Uuid,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotencyRecord>> {
        let Some(item) = self.get(tenant_pk(tenant_id), idempotency_sk(key)).await? else {
            return Ok(None);
        };
        let record = record_from_item(tenant_id, key, &item)?;
        Ok(Some(record).filter(|record| record.expires_at > now))
    }

    async fn claim_idempotency_key(
        &self,
        record: &IdempotencyRecord,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let condition = Condition {
            expression: "attribute_not_exists(#pk) OR #ttl <= :now",
            names: Some(HashMap::from([
                ("#pk".to_owned(), PK.to_owned()),
                ("#ttl".to_owned(), TTL.to_owned()),
            ])),
            values: Some(HashMap::from([(
                ":now".to_owned(),
                number(now.timestamp()),
            )])),
        };
        match self
            .put_alone(record_item(record), condition, "claim idempotency key")
            .await
        {
            Ok(()) => Ok(true),
            Err(Error::Conflict(_)) => Ok(false),
            Err(error) => Err(error),
        }
    }

    async fn record_idempotent_answer(
        &self,
        tenant_id: Uuid,
        key: &IdempotencyKey,
        event_id: Uuid,
        delivery_ids: &[Uuid],
    ) -> Result<()> {
        let ids = serde_json::to_string(delivery_ids).map_err(Error::internal)?;
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(super::attributes::key(
                tenant_pk(tenant_id),
                idempotency_sk(key),
            )))
            .update_expression("SET #ids = :ids")
            .condition_expression("#event = :event")
            .expression_attribute_names("#ids", DELIVERY_IDS)
            .expression_attribute_names("#event", "event_id")
            .expression_attribute_values(":ids", text(ids))
            .expression_attribute_values(":event", text(event_id.to_string()))
            .build()
            .map_err(super::build_error)?;
        match self.update_alone(update, "record idempotent answer").await {
            // The key expired and another request claimed it: its answer is not ours to write.
            Err(Error::Conflict(_)) => Ok(()),
            other => other,
        }
    }
}
