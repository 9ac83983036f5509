//! The outbox and notify's event windows (`OutboxStore`, docs/architecture.md §Limits).
//!
//! An outbox event sits in the sweeper's index (`OUTBOX#<shard>`) until it is fanned out; then
//! it leaves the index and DynamoDB's TTL removes it with its deliveries' payloads. An event
//! window counts one second's notify calls of a tenant, one conditional UpdateItem each, and
//! expires a minute later.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::attributes::*;
use super::contention::{until_done, Sent};
use super::paging::{read_query, Reading};
use super::tables::{GSI1, GSI1_PK, GSI1_SK, PK, SK, TTL};
use super::{
    condition_failed, sdk_error, shard_of, tenant_pk, update_collided, Condition, DynamoStore,
    SHARDS,
};
use crate::domain::event::{EventRange, OutboxEvent};
use crate::domain::tenant::EVENT_WINDOW_KEPT_SECS;
use crate::error::Result;
use crate::ports::OutboxStore;
use crate::time::rfc3339;

const EVENT_SK_PREFIX: &str = "EVENT#";
const EVENT_WINDOW_SK_PREFIX: &str = "RATE#EVENTS#";
/// An event window's count attribute.
const COUNT: &str = "n";

fn outbox_index_pk(shard: u8) -> String {
    format!("OUTBOX#{shard}")
}

fn event_sk(event_id: Uuid) -> String {
    format!("{EVENT_SK_PREFIX}{event_id}")
}

fn event_window_sk(second: i64) -> String {
    format!("{EVENT_WINDOW_SK_PREFIX}{second}")
}

/// An outbox event's item; also written by a client write's transaction (`clients`).
pub(super) fn event_item(event: &OutboxEvent) -> Item {
    let mut item = key(tenant_pk(event.tenant_id), event_sk(event.id));
    // In the sweeper's index until fanned out.
    item.insert(GSI1_PK.into(), text(outbox_index_pk(shard_of(event.id))));
    item.insert(
        GSI1_SK.into(),
        text(format!("{}#{}", rfc3339(event.created_at), event.id)),
    );
    item.insert("id".into(), text(event.id.to_string()));
    item.insert("tenant_id".into(), text(event.tenant_id.to_string()));
    item.insert("event".into(), text(&event.event));
    item.insert("data".into(), text(event.data.to_string()));
    item.insert("created_at".into(), text(rfc3339(event.created_at)));
    item.insert("occurred_at".into(), text(rfc3339(event.occurred_at)));
    item
}

fn event_from_item(item: &Item) -> Result<OutboxEvent> {
    let created_at = time_of(item, "created_at")?;
    Ok(OutboxEvent {
        id: uuid_of(item, "id")?,
        tenant_id: uuid_of(item, "tenant_id")?,
        event: text_of(item, "event")?.to_owned(),
        data: serde_json::from_str(text_of(item, "data")?).map_err(|_| corrupt("data"))?,
        created_at,
        // Written before notify's events came through the outbox: a client write's, which
        // happened when written.
        occurred_at: optional_time(item, "occurred_at")?.unwrap_or(created_at),
    })
}

/// Whether DynamoDB refused an event window's update for the writes its item takes (one item
/// takes at most 1,000 write units a second, refused conditional writes included), after the
/// SDK's own retries.
fn throttled<R>(error: &SdkError<UpdateItemError, R>) -> bool {
    error.as_service_error().is_some_and(|e| {
        e.is_provisioned_throughput_exceeded_exception() || e.is_throttling_exception()
    })
}

impl DynamoStore {
    /// The first `limit` items of every shard of a sweeper index whose sort key is before
    /// `before`; the shards are read at once.
    async fn query_shards_before(
        &self,
        index_pk: fn(u8) -> String,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Item>> {
        let reads = (0..SHARDS).map(|shard| {
            let query = self
                .index_query(GSI1, index_pk(shard))
                .key_condition_expression("#ipk = :ipk AND #isk < :before")
                .expression_attribute_names("#isk", GSI1_SK)
                .expression_attribute_values(":before", text(rfc3339(before)));
            async move { read_query(&query, None, Reading::first(limit)).await }
        });
        let reads = futures_util::future::try_join_all(reads).await?;
        Ok(reads.into_iter().flat_map(|read| read.items).collect())
    }
}

#[async_trait]
impl OutboxStore for DynamoStore {
    async fn list_outbox_events(&self, tenant_id: Uuid, limit: usize) -> Result<Vec<OutboxEvent>> {
        let query = self.prefix_query(tenant_pk(tenant_id), EVENT_SK_PREFIX);
        let read = read_query(&query, None, Reading::first(limit)).await?;
        read.items.iter().map(event_from_item).collect()
    }

    /// One key range of the tenant's partition: `EVENT#<id>` sorts as the ids do.
    async fn events_between(
        &self,
        tenant_id: Uuid,
        range: &EventRange,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>> {
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :low AND :high")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", text(tenant_pk(tenant_id)))
            .expression_attribute_values(":low", text(event_sk(range.first_id())))
            .expression_attribute_values(":high", text(event_sk(range.last_id())))
            .consistent_read(true);
        let start = after
            .filter(|after| *after >= range.first_id())
            .map(|after| key(tenant_pk(tenant_id), event_sk(after)));
        let read = read_query(&query, start, Reading::first(limit)).await?;
        read.items.iter().map(event_from_item).collect()
    }

    async fn undispatched_events(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>> {
        let items = self
            .query_shards_before(outbox_index_pk, before, limit)
            .await?;
        let mut events = items
            .iter()
            .map(event_from_item)
            .collect::<Result<Vec<_>>>()?;
        events.sort_by_key(|e| e.created_at);
        events.truncate(limit);
        Ok(events)
    }

    async fn take_event_quota(&self, tenant_id: Uuid, second: i64, max: usize) -> Result<bool> {
        let expires_at = second + EVENT_WINDOW_KEPT_SECS;
        until_done("take event quota", |_| async {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(tenant_pk(tenant_id), event_window_sk(second))))
                .update_expression("ADD #n :one SET #ttl = :ttl")
                .condition_expression("attribute_not_exists(#n) OR #n < :max")
                .expression_attribute_names("#n", COUNT)
                .expression_attribute_names("#ttl", TTL)
                .expression_attribute_values(":one", number(1))
                .expression_attribute_values(":max", number(count_value(max)))
                .expression_attribute_values(":ttl", number(expires_at))
                .send()
                .await;
            match result {
                Ok(_) => Ok(Sent::Done(true)),
                Err(error) => match error.as_service_error() {
                    Some(e) if e.is_conditional_check_failed_exception() => Ok(Sent::Done(false)),
                    Some(e) if e.is_transaction_conflict_exception() => Ok(Sent::Collided),
                    // The tenant sends faster than its window's item can count: over the limit.
                    _ if throttled(&error) => Ok(Sent::Done(false)),
                    _ => Err(sdk_error(error)),
                },
            }
        })
        .await
    }

    async fn append_event(&self, event: &OutboxEvent) -> Result<()> {
        // An event already stored stays as it is (an idempotent notify finishing another's work).
        match self
            .put_alone(event_item(event), Condition::new_item(), "append event")
            .await
        {
            Err(crate::error::Error::Conflict(_)) => Ok(()),
            other => other,
        }
    }

    async fn mark_event_dispatched(&self, tenant_id: Uuid, event_id: Uuid) -> Result<()> {
        // Out of the sweeper's index, and kept for replay as long as finished deliveries are,
        // then removed by DynamoDB's TTL: an outbox that kept every event would only grow.
        let expiry = self.retention.expiry(Utc::now()).timestamp();
        until_done("mark event dispatched", |_| async {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(tenant_pk(tenant_id), event_sk(event_id))))
                .update_expression("REMOVE #ipk, #isk SET #ttl = :ttl")
                .condition_expression("attribute_exists(#pk)")
                .expression_attribute_names("#ipk", GSI1_PK)
                .expression_attribute_names("#isk", GSI1_SK)
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#ttl", TTL)
                .expression_attribute_values(":ttl", number(expiry))
                .send()
                .await;
            match result {
                Ok(_) => Ok(Sent::Done(())),
                Err(error) if condition_failed(&error) => Ok(Sent::Done(())),
                Err(error) if update_collided(&error) => Ok(Sent::Collided),
                Err(error) => Err(sdk_error(error)),
            }
        })
        .await
    }
}
