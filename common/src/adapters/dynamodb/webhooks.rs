//! Webhooks and each tenant's webhook count (`WebhookStore`, docs/architecture.md §Limits).
//!
//! The webhook count moves in the same transaction as each webhook's creation (on condition
//! that it is under the limit) and deletion, so concurrent creations in any number of
//! containers never pass the limit.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::attributes::*;
use super::contention::{backoff, until_done, Sent};
use super::paging::{read_query, Reading};
use super::tables::{PK, TTL};
use super::{
    build_error, condition_failed, sdk_error, tenant_pk, update_collided, Condition, DynamoStore,
    VERSION,
};
use crate::domain::audit::AuditEntry;
use crate::domain::delivery::RetrySchedule;
use crate::domain::health::{DisabledReason, HealthChange, WebhookHealth};
use crate::domain::pacing::{Pacing, SECOND_US};
use crate::domain::page::{Page, PageRequest};
use crate::domain::sealed_secret::StoredSecret;
use crate::domain::webhook::Webhook;
use crate::error::{Error, Result};
use crate::ports::WebhookStore;
use crate::time::rfc3339;

const WEBHOOK_SK_PREFIX: &str = "WEBHOOK#";
const WEBHOOK_COUNT_SK: &str = "WEBHOOK_COUNT";
/// A webhook's `rateLimitPerSecond`, absent when unlimited.
const RATE_LIMIT: &str = "rate_limit_per_second";
const SEND_SLOT_SK_PREFIX: &str = "SEND_SLOT#";
/// A send slot item's next free slot (µs since the epoch).
const NEXT_SLOT: &str = "next";
/// A send slot item expires this long after its last reservation (DynamoDB's TTL): far longer
/// than a backlog of slots ahead would reach (a month at a webhook's limit).
const SEND_SLOT_KEPT_SECS: i64 = 30 * 24 * 3600;
/// The webhook count's attribute.
const COUNT: &str = "n";
/// Recounts of one tenant's webhooks before giving up, each after the count moved under it.
const RECOUNT_ROUNDS: u32 = 5;

/// The position of the webhook's own write in its transaction with the count update: whose
/// condition failed tells a duplicate id from the limit.
const WEBHOOK_WRITE: usize = 0;

fn webhook_sk(id: Uuid) -> String {
    format!("{WEBHOOK_SK_PREFIX}{id}")
}

fn webhook_item(w: &Webhook) -> Item {
    let mut item = key(tenant_pk(w.tenant_id), webhook_sk(w.id));
    item.insert("id".into(), text(w.id.to_string()));
    item.insert("tenant_id".into(), text(w.tenant_id.to_string()));
    item.insert("url".into(), text(&w.url));
    put_optional(&mut item, "description", w.description.clone());
    item.insert(
        "events".into(),
        text(serde_json::to_string(&w.events).unwrap_or_default()),
    );
    item.insert(
        "headers".into(),
        text(serde_json::to_string(&w.headers).unwrap_or_default()),
    );
    item.insert("active".into(), AttributeValue::Bool(w.active));
    item.insert("max_retries".into(), number(i64::from(w.max_retries)));
    if let Some(schedule) = &w.retry_schedule {
        let seconds = schedule
            .seconds()
            .iter()
            .map(|s| number(*s as i64))
            .collect();
        item.insert("retry_schedule".into(), AttributeValue::L(seconds));
    }
    item.insert("timeout_ms".into(), number(i64::from(w.timeout_ms)));
    // Absent: unlimited (and so on every item written before limits existed).
    if let Some(limit) = w.rate_limit_per_second {
        item.insert(RATE_LIMIT.into(), number(i64::from(limit)));
    }
    item.insert("secret".into(), text(w.secret.as_stored()));
    if let Some((secret, until)) = &w.previous_secret {
        item.insert("previous_secret".into(), text(secret.as_stored()));
        item.insert("previous_secret_until".into(), text(rfc3339(*until)));
    }
    put_optional(
        &mut item,
        "disabled_reason",
        w.disabled_reason.map(DisabledReason::as_str),
    );
    put_optional(&mut item, "disabled_at", w.disabled_at.map(rfc3339));
    item.insert("created_at".into(), text(rfc3339(w.created_at)));
    item.insert("updated_at".into(), text(rfc3339(w.updated_at)));
    item.insert(VERSION.into(), number(w.version));
    item
}

/// What a change of a webhook writes: everything but its key, id, tenant, creation time and
/// health (which only the worker writes, `record_webhook_health`).
const CONFIGURATION: &[&str] = &[
    "url",
    "description",
    "events",
    "headers",
    "active",
    "max_retries",
    "retry_schedule",
    RATE_LIMIT,
    "timeout_ms",
    "secret",
    "previous_secret",
    "previous_secret_until",
    "disabled_reason",
    "disabled_at",
    "updated_at",
    VERSION,
];

/// The health attributes, as `record_webhook_health` writes them.
const LAST_SUCCESS: &str = "last_success_at";
const LAST_FAILURE: &str = "last_failure_at";
const CONSECUTIVE_FAILURES: &str = "consecutive_failures";
const FAILING_SINCE: &str = "failing_since";

fn health_of(item: &Item) -> Result<WebhookHealth> {
    Ok(WebhookHealth {
        last_success_at: optional_time(item, LAST_SUCCESS)?,
        last_failure_at: optional_time(item, LAST_FAILURE)?,
        consecutive_failures: match item.get(CONSECUTIVE_FAILURES) {
            None => 0,
            Some(_) => number_of(item, CONSECUTIVE_FAILURES)?,
        },
        failing_since: optional_time(item, FAILING_SINCE)?,
    })
}

fn webhook_from_item(item: &Item) -> Result<Webhook> {
    let previous = match (
        optional_text(item, "previous_secret"),
        optional_time(item, "previous_secret_until")?,
    ) {
        (Some(secret), Some(until)) => Some((StoredSecret::from_stored(secret), until)),
        _ => None,
    };
    Ok(Webhook {
        id: uuid_of(item, "id")?,
        tenant_id: uuid_of(item, "tenant_id")?,
        url: text_of(item, "url")?.to_owned(),
        description: optional_text(item, "description"),
        events: serde_json::from_str(text_of(item, "events")?).map_err(|_| corrupt("events"))?,
        headers: serde_json::from_str::<BTreeMap<String, String>>(text_of(item, "headers")?)
            .map_err(|_| corrupt("headers"))?,
        active: matches!(item.get("active"), Some(AttributeValue::Bool(true))),
        max_retries: number_of(item, "max_retries")?,
        retry_schedule: retry_schedule_of(item)?,
        timeout_ms: number_of(item, "timeout_ms")?,
        rate_limit_per_second: optional_number(item, RATE_LIMIT)?,
        secret: StoredSecret::from_stored(text_of(item, "secret")?.to_owned()),
        previous_secret: previous,
        created_at: time_of(item, "created_at")?,
        updated_at: time_of(item, "updated_at")?,
        version: number_of(item, VERSION)?,
        health: health_of(item)?,
        disabled_reason: optional_text(item, "disabled_reason")
            .map(|text| DisabledReason::parse(&text).ok_or_else(|| corrupt("disabled_reason")))
            .transpose()?,
        disabled_at: optional_time(item, "disabled_at")?,
    })
}

/// A number list, not a number set: a set has no order, and may not hold a delay twice.
fn retry_schedule_of(item: &Item) -> Result<Option<RetrySchedule>> {
    match item.get("retry_schedule") {
        None => Ok(None),
        Some(AttributeValue::L(values)) => {
            let seconds: Option<Vec<i64>> = values
                .iter()
                .map(|value| match value {
                    AttributeValue::N(n) => n.parse().ok(),
                    _ => None,
                })
                .collect();
            seconds
                .and_then(|seconds| RetrySchedule::from_seconds(&seconds))
                .map(Some)
                .ok_or_else(|| corrupt("retry_schedule"))
        }
        Some(_) => Err(corrupt("retry_schedule")),
    }
}

fn send_slot_key(tenant_id: Uuid, webhook_id: Uuid) -> Item {
    key(
        tenant_pk(tenant_id),
        format!("{SEND_SLOT_SK_PREFIX}{webhook_id}"),
    )
}

fn send_slot_expiry(now_us: i64) -> AttributeValue {
    number(now_us / SECOND_US + SEND_SLOT_KEPT_SECS)
}

impl DynamoStore {
    /// `next += gap` while the next free slot is after now: the slot before the new `next`;
    /// `None` when there is no next free slot or it is past.
    async fn advance_send_slot(
        &self,
        tenant_id: Uuid,
        webhook_id: Uuid,
        pacing: Pacing,
        now_us: i64,
    ) -> Result<Option<i64>> {
        let result = until_done("reserve a send slot", |_| async {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(send_slot_key(tenant_id, webhook_id)))
                .update_expression("SET #next = #next + :gap, #ttl = :ttl")
                .condition_expression("#next > :now")
                .expression_attribute_names("#next", NEXT_SLOT)
                .expression_attribute_names("#ttl", TTL)
                .expression_attribute_values(":gap", number(pacing.gap_us))
                .expression_attribute_values(":ttl", send_slot_expiry(now_us))
                .expression_attribute_values(":now", number(now_us))
                .return_values(ReturnValue::UpdatedNew)
                .send()
                .await;
            match result {
                Ok(output) => Ok(Sent::Done(Some(output))),
                Err(error) if condition_failed(&error) => Ok(Sent::Done(None)),
                Err(error) if update_collided(&error) => Ok(Sent::Collided),
                Err(error) => Err(sdk_error(error)),
            }
        })
        .await?;
        let Some(output) = result else {
            return Ok(None);
        };
        let next: i64 = output
            .attributes()
            .map(|item| number_of(item, NEXT_SLOT))
            .ok_or_else(|| corrupt(NEXT_SLOT))??;
        Ok(Some(next - pacing.gap_us))
    }

    /// `next = now + gap` while there is no next free slot or it is past; `false` when another
    /// delivery reserved one after now since.
    async fn start_send_slots(
        &self,
        tenant_id: Uuid,
        webhook_id: Uuid,
        pacing: Pacing,
        now_us: i64,
    ) -> Result<bool> {
        let next = now_us + pacing.gap_us;
        until_done("reserve a send slot", |_| async {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(send_slot_key(tenant_id, webhook_id)))
                .update_expression("SET #next = :next, #ttl = :ttl")
                .condition_expression("attribute_not_exists(#next) OR #next <= :now")
                .expression_attribute_names("#next", NEXT_SLOT)
                .expression_attribute_names("#ttl", TTL)
                .expression_attribute_values(":next", number(next))
                .expression_attribute_values(":now", number(now_us))
                .expression_attribute_values(":ttl", send_slot_expiry(now_us))
                .send()
                .await;
            match result {
                Ok(_) => Ok(Sent::Done(true)),
                Err(error) if condition_failed(&error) => Ok(Sent::Done(false)),
                Err(error) if update_collided(&error) => Ok(Sent::Collided),
                Err(error) => Err(sdk_error(error)),
            }
        })
        .await
    }

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
}

#[async_trait]
impl WebhookStore for DynamoStore {
    /// The webhook and one more in the tenant's count, together. A colliding transaction is
    /// sent again (`transact_checked`); only a failed condition is an answer: the webhook's
    /// (its id exists) before the count's (the limit).
    async fn create_webhook(
        &self,
        webhook: &Webhook,
        max: usize,
        audit: Option<&AuditEntry>,
    ) -> Result<()> {
        let mut items = vec![
            self.put(webhook_item(webhook), Some(Condition::new_item()))?,
            self.webhook_count_update(webhook.tenant_id, 1, Some(max))?,
        ];
        items.extend(self.audit_put(audit)?);
        match self.transact_checked(items, "create webhook").await? {
            Ok(()) => Ok(()),
            Err(failed) if failed.contains(&WEBHOOK_WRITE) => Err(Error::Conflict(
                "A webhook with this id already exists.".to_owned(),
            )),
            Err(_) => Err(Error::WebhookLimitReached { limit: max }),
        }
    }

    /// The configuration alone, conditional on the version read: a Put would write back the
    /// health as read, over an attempt's record made since. With its audit entry, a
    /// transaction of the two; without (the worker disabling a webhook), one UpdateItem.
    async fn update_webhook(
        &self,
        before_version: i64,
        webhook: &Webhook,
        audit: Option<&AuditEntry>,
    ) -> Result<()> {
        let mut item = webhook_item(webhook);
        let attributes = CONFIGURATION
            .iter()
            .map(|name| (*name, item.remove(*name)))
            .collect();
        let key = key(tenant_pk(webhook.tenant_id), webhook_sk(webhook.id));
        let update = self.versioned_update(key, attributes, before_version)?;
        if audit.is_none() {
            return self.update_alone(update, "update webhook").await;
        }
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        items.extend(self.audit_put(audit)?);
        self.transact(items, "update webhook").await
    }

    /// One UpdateItem, whatever the health was: `if_not_exists` keeps a failing spell's start,
    /// `ADD` counts failed deliveries, so concurrent attempts never overwrite one another.
    async fn record_webhook_health(
        &self,
        tenant_id: Uuid,
        webhook_id: Uuid,
        change: HealthChange,
        at: DateTime<Utc>,
    ) -> Result<Option<WebhookHealth>> {
        let (expression, failed) = match change {
            HealthChange::Succeeded => ("SET #ls = :at, #cf = :zero REMOVE #fs", None),
            HealthChange::Failed { delivery_failed } => (
                "SET #lf = :at, #fs = if_not_exists(#fs, :at) ADD #cf :failed",
                Some(i64::from(delivery_failed)),
            ),
            HealthChange::Restarted => ("REMOVE #fs", None),
        };
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(tenant_pk(tenant_id), webhook_sk(webhook_id))))
            .update_expression(expression)
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#fs", FAILING_SINCE)
            .return_values(ReturnValue::AllNew);
        if expression.contains("#ls") {
            request = request
                .expression_attribute_names("#ls", LAST_SUCCESS)
                .expression_attribute_names("#cf", CONSECUTIVE_FAILURES)
                .expression_attribute_values(":at", text(rfc3339(at)))
                .expression_attribute_values(":zero", number(0));
        }
        if let Some(failed) = failed {
            request = request
                .expression_attribute_names("#lf", LAST_FAILURE)
                .expression_attribute_names("#cf", CONSECUTIVE_FAILURES)
                .expression_attribute_values(":at", text(rfc3339(at)))
                .expression_attribute_values(":failed", number(failed));
        }
        match request.send().await {
            Ok(output) => output.attributes.as_ref().map(health_of).transpose(),
            Err(error) if condition_failed(&error) => Ok(None),
            Err(error) => Err(sdk_error(error)),
        }
    }

    /// The webhook and one less in the tenant's count, together; `false` (and nothing written)
    /// when there is no such webhook.
    async fn delete_webhook(
        &self,
        tenant_id: Uuid,
        webhook_id: Uuid,
        audit: Option<&AuditEntry>,
    ) -> Result<bool> {
        let mut items = vec![
            self.delete(
                key(tenant_pk(tenant_id), webhook_sk(webhook_id)),
                Some(Condition::exists()),
            )?,
            self.webhook_count_update(tenant_id, -1, None)?,
        ];
        items.extend(self.audit_put(audit)?);
        Ok(self
            .transact_checked(items, "delete webhook")
            .await?
            .is_ok())
    }

    async fn get_webhook(&self, tenant_id: Uuid, webhook_id: Uuid) -> Result<Option<Webhook>> {
        self.get(tenant_pk(tenant_id), webhook_sk(webhook_id))
            .await?
            .map(|item| webhook_from_item(&item))
            .transpose()
    }

    /// `Pacing::reserve` in conditional UpdateItems on the webhook's send slot item: first
    /// `next += gap` on condition that the next free slot is after now (a busy webhook: one
    /// write); if it is not, `next = now + gap` on condition that there is no next free slot or
    /// it is past (an idle webhook: two writes). `next` only grows, so the second fails only
    /// when another delivery made the webhook busy meanwhile, and the first then succeeds.
    async fn reserve_send_slot(
        &self,
        tenant_id: Uuid,
        webhook_id: Uuid,
        pacing: Pacing,
        now_us: i64,
    ) -> Result<i64> {
        loop {
            if let Some(slot) = self
                .advance_send_slot(tenant_id, webhook_id, pacing, now_us)
                .await?
            {
                return Ok(slot);
            }
            if self
                .start_send_slots(tenant_id, webhook_id, pacing, now_us)
                .await?
            {
                return Ok(now_us);
            }
        }
    }

    async fn list_webhooks(&self, tenant_id: Uuid, page: PageRequest) -> Result<Page<Webhook>> {
        let start = page
            .after
            .map(|after| key(tenant_pk(tenant_id), webhook_sk(after)));
        let query = self.prefix_query(tenant_pk(tenant_id), WEBHOOK_SK_PREFIX);
        // A webhook with many long headers is tens of KB: a page may take several responses.
        let read = read_query(&query, start, Reading::first(page.limit + 1)).await?;
        let webhooks = read
            .items
            .iter()
            .map(webhook_from_item)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(webhooks, page.limit, |w| w.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::health::DisabledReason;
    use crate::domain::webhook::{NewWebhook, TargetPolicy};

    /// A change writes every attribute a webhook may have but those fixed at its creation: an
    /// attribute left out of `CONFIGURATION` would keep its old value through every change.
    #[test]
    fn a_change_writes_every_attribute_but_the_fixed_ones() {
        let now = chrono::Utc::now();
        let new = NewWebhook {
            url: "https://example.com/hook".into(),
            events: vec!["*".into()],
            headers: vec![("x-team".into(), "crm".into())],
            description: Some("all of it".into()),
            retry_schedule: Some(vec![5]),
            rate_limit_per_second: Some(20),
            ..NewWebhook::default()
        };
        let webhook = Webhook::create(Uuid::now_v7(), new, TargetPolicy::default(), now)
            .unwrap()
            .rotated(
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
                chrono::Duration::hours(1),
                now,
            )
            .disabled(DisabledReason::EndpointGone, now);
        let fixed = [PK, "sk", "id", "tenant_id", "created_at"];
        for name in webhook_item(&webhook).keys() {
            assert!(
                fixed.contains(&name.as_str()) || CONFIGURATION.contains(&name.as_str()),
                "{name} is not written by a change"
            );
        }
    }
}
