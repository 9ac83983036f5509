//! The per-tenant limits on DynamoDB (`TenantLimits`, docs/architecture.md §Limits).
//!
//! | item          | pk           | sk                     | attributes                |
//! |---------------|--------------|------------------------|---------------------------|
//! | webhook count | `TENANT#<t>` | `WEBHOOK_COUNT`        | `n`                       |
//! | event window  | `TENANT#<t>` | `RATE#EVENTS#<second>` | `n`, `expires_at` (TTL)   |
//!
//! The webhook count moves in the same transaction as each webhook's creation (on condition
//! that it is under the limit) and deletion, so concurrent creations in any number of
//! containers never pass the limit. An event window counts one second's notify calls, one
//! conditional UpdateItem each, and expires a minute later.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use uuid::Uuid;

use super::attributes::{key, number};
use super::contention::{backoff, until_done, Sent};
use super::delivery_items::{webhook_item, webhook_sk, WEBHOOK_SK_PREFIX};
use super::items::tenant_pk;
use super::paging::{read_query, Reading};
use super::tables::TTL;
use super::{build_error, sdk_error, Condition, DynamoStore};
use crate::domain::tenant::EVENT_WINDOW_KEPT_SECS;
use crate::domain::webhook::Webhook;
use crate::error::{Error, Result};

const WEBHOOK_COUNT_SK: &str = "WEBHOOK_COUNT";
const EVENT_WINDOW_SK_PREFIX: &str = "RATE#EVENTS#";
/// The count attribute of both items.
const COUNT: &str = "n";
/// Recounts of one tenant's webhooks before giving up, each after the count moved under it.
const RECOUNT_ROUNDS: u32 = 5;

/// The position of the webhook's own write in its transaction with the count update: whose
/// condition failed tells a duplicate id from the limit.
const WEBHOOK_WRITE: usize = 0;

fn event_window_sk(second: i64) -> String {
    format!("{EVENT_WINDOW_SK_PREFIX}{second}")
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
    /// Adds `delta` to the tenant's webhook count; with `below`, on condition that the count
    /// (absent: none yet) is under it.
    fn webhook_count_update(
        &self,
        tenant_id: Uuid,
        delta: i64,
        below: Option<usize>,
    ) -> Result<TransactWriteItem> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(tenant_pk(tenant_id), WEBHOOK_COUNT_SK.to_owned())))
            .update_expression("ADD #n :delta")
            .expression_attribute_names("#n", COUNT)
            .expression_attribute_values(":delta", number(delta));
        if let Some(max) = below {
            update = update
                .condition_expression("attribute_not_exists(#n) OR #n < :max")
                .expression_attribute_values(":max", number(count_value(max)));
        }
        Ok(TransactWriteItem::builder()
            .update(update.build().map_err(build_error)?)
            .build())
    }

    /// The webhook and one more in the tenant's count, together. A colliding transaction is
    /// sent again (`transact_checked`); only a failed condition is an answer: the webhook's
    /// (its id exists) before the count's (the limit).
    pub(super) async fn create_counted_webhook(&self, webhook: &Webhook, max: usize) -> Result<()> {
        let items = vec![
            self.put(webhook_item(webhook), Some(Condition::new_item()))?,
            self.webhook_count_update(webhook.tenant_id, 1, Some(max))?,
        ];
        match self.transact_checked(items, "create webhook").await? {
            Ok(()) => Ok(()),
            Err(failed) if failed.contains(&WEBHOOK_WRITE) => Err(Error::Conflict(
                "A webhook with this id already exists.".to_owned(),
            )),
            Err(_) => Err(Error::WebhookLimitReached { limit: max }),
        }
    }

    /// The webhook and one less in the tenant's count, together; `false` (and nothing written)
    /// when there is no such webhook.
    pub(super) async fn delete_counted_webhook(
        &self,
        tenant_id: Uuid,
        webhook_id: Uuid,
    ) -> Result<bool> {
        let items = vec![
            self.delete(
                key(tenant_pk(tenant_id), webhook_sk(webhook_id)),
                Some(Condition::exists()),
            )?,
            self.webhook_count_update(tenant_id, -1, None)?,
        ];
        Ok(self
            .transact_checked(items, "delete webhook")
            .await?
            .is_ok())
    }

    /// Sets the tenant's webhook count to the webhooks it has, for a tenant with webhooks
    /// created before the count existed (`crm-admin recount-webhooks`). Written on condition
    /// that the count did not move since it was read; if it did, the webhooks are counted again.
    pub async fn recount_webhooks(&self, tenant_id: Uuid) -> Result<usize> {
        for _ in 0..RECOUNT_ROUNDS {
            let before = self
                .get(tenant_pk(tenant_id), WEBHOOK_COUNT_SK.to_owned())
                .await?
                .and_then(|mut item| item.remove(COUNT));
            let query = self
                .prefix_query(tenant_pk(tenant_id), WEBHOOK_SK_PREFIX)
                .projection_expression("#sk");
            let webhooks = read_query(&query, None, Reading::all()).await?.items.len();
            let update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(tenant_pk(tenant_id), WEBHOOK_COUNT_SK.to_owned())))
                .update_expression("SET #n = :n")
                .expression_attribute_names("#n", COUNT)
                .expression_attribute_values(":n", number(count_value(webhooks)));
            let update = match before {
                Some(read) => update
                    .condition_expression("#n = :read")
                    .expression_attribute_values(":read", read),
                None => update.condition_expression("attribute_not_exists(#n)"),
            };
            match update.send().await {
                Ok(_) => return Ok(webhooks),
                Err(error) => match error.as_service_error() {
                    Some(e)
                        if e.is_conditional_check_failed_exception()
                            || e.is_transaction_conflict_exception() =>
                    {
                        backoff(1).await
                    }
                    _ => return Err(sdk_error(error)),
                },
            }
        }
        Err(Error::internal(format!(
            "the webhook count of tenant {tenant_id} moved during each of {RECOUNT_ROUNDS} recounts"
        )))
    }

    pub(super) async fn take_event_quota_impl(
        &self,
        tenant_id: Uuid,
        second: i64,
        max: usize,
    ) -> Result<bool> {
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
}

fn count_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
