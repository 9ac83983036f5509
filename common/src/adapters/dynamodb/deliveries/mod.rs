//! Payloads, deliveries, attempts and their counters (`DeliveryStore`); their items: `items`.
//! Every read is a GetItem or a Query; every transition a conditional write.

mod items;

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use futures_util::{stream, StreamExt, TryStreamExt};
use uuid::Uuid;

use self::items::*;
use super::attributes::*;
use super::paging::{read_query, Reading};
use super::tables::{
    GSI1, GSI1_PK, GSI1_SK, GSI2, GSI2_PK, GSI2_SK, PK, SEARCH_EVENT, SEARCH_EVENT_PK, SEARCH_SK,
    SEARCH_TENANT, SEARCH_TENANT_PK, SEARCH_WEBHOOK, SEARCH_WEBHOOK_EVENT, SEARCH_WEBHOOK_EVENT_PK,
    SEARCH_WEBHOOK_PK, SK, TTL,
};
use super::{build_error, sdk_error, tenant_pk, Condition, DynamoStore, SHARDS, VERSION};
use crate::domain::delivery::{
    Attempt, Delivery, DeliveryStatus, DeliverySummary, EventPayload, StatusCounts,
};
use crate::domain::delivery_search::{DeliveryFilter, IdRange};
use crate::domain::page::{Page, PageRequest, FILTER_SCAN_LIMIT};
use crate::error::{Error, Result};
use crate::ports::{
    DeliveryChange, DeliveryCounts, DeliveryRef, DeliveryStore, DueCursor, DuePage, Requeue,
};
use crate::time::rfc3339;

/// TransactWriteItems' limit on actions.
const TRANSACTION_MAX: usize = 100;
/// Transactions of one fan-out batch in flight at once.
const IN_FLIGHT: usize = 8;

/// Consecutive runs of deliveries that fit one transaction with their counter updates (one
/// per webhook among them).
fn transaction_chunks(deliveries: &[Delivery]) -> Vec<&[Delivery]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut webhooks: Vec<(Uuid, Uuid)> = Vec::new();
    for (index, delivery) in deliveries.iter().enumerate() {
        let scope = (delivery.tenant_id, delivery.webhook_id);
        let new_scope = !webhooks.contains(&scope);
        let actions = (index - start) + webhooks.len() + 1 + usize::from(new_scope);
        if actions > TRANSACTION_MAX {
            chunks.push(&deliveries[start..index]);
            start = index;
            webhooks.clear();
        }
        if !webhooks.contains(&scope) {
            webhooks.push(scope);
        }
    }
    if start < deliveries.len() {
        chunks.push(&deliveries[start..]);
    }
    chunks
}

impl DynamoStore {
    /// Adds a status delta to the tenant's and the webhook's counters.
    fn count_updates(
        &self,
        tenant_id: Uuid,
        webhook_id: Uuid,
        delta: &StatusCounts,
    ) -> Result<Vec<TransactWriteItem>> {
        if delta.is_empty() {
            return Ok(Vec::new());
        }
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let mut adds = Vec::new();
        for (index, (status, change)) in delta.0.iter().enumerate() {
            names.insert(
                format!("#s{index}"),
                status_counter_name(*status).to_owned(),
            );
            values.insert(format!(":s{index}"), number(*change));
            adds.push(format!("#s{index} :s{index}"));
        }
        // The webhook's counters only: the tenant's are their sum (`delivery_counts`).
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(tenant_pk(tenant_id), counts_sk(webhook_id))))
            .update_expression(format!("ADD {}", adds.join(", ")))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(build_error)?;
        Ok(vec![TransactWriteItem::builder().update(update).build()])
    }

    /// A transition as an update of the state attributes only, conditional on the version read:
    /// the payload and the fixed attributes are not rewritten.
    fn transition(&self, change: &DeliveryChange) -> Result<Update> {
        let after = &change.after;
        self.versioned_update(
            key(tenant_pk(after.tenant_id), delivery_sk(after.id)),
            delivery_state(after, self.retention),
            change.before.version,
        )
    }

    async fn create_chunk(&self, chunk: &[Delivery]) -> Result<()> {
        let mut pending: Vec<&Delivery> = chunk.iter().collect();
        while !pending.is_empty() {
            let items = self.creation_items(&pending)?;
            match self.transact_checked(items, "create deliveries").await? {
                Ok(()) => return Ok(()),
                Err(failed) => {
                    // Only delivery puts carry a condition, and they come first, in order.
                    let exists = |index: usize| failed.contains(&index);
                    let before = pending.len();
                    pending = (0..before)
                        .filter(|index| !exists(*index))
                        .map(|index| pending[index])
                        .collect();
                    if pending.len() == before {
                        return Err(Error::internal(
                            "create deliveries: a condition failed on a counter",
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The conditional puts of new deliveries and one counter update per webhook among them.
    fn creation_items(&self, deliveries: &[&Delivery]) -> Result<Vec<TransactWriteItem>> {
        let mut items = Vec::with_capacity(deliveries.len() + 1);
        let mut per_webhook: Vec<((Uuid, Uuid), StatusCounts)> = Vec::new();
        for delivery in deliveries {
            items.push(self.put(
                delivery_item(delivery, self.retention),
                Some(Condition::new_item()),
            )?);
            let scope = (delivery.tenant_id, delivery.webhook_id);
            let delta = StatusCounts::delta(None, delivery.status);
            match per_webhook.iter_mut().find(|(s, _)| *s == scope) {
                Some((_, counts)) => counts.add(&delta),
                None => per_webhook.push((scope, delta)),
            }
        }
        for ((tenant_id, webhook_id), delta) in &per_webhook {
            items.extend(self.count_updates(*tenant_id, *webhook_id, delta)?);
        }
        Ok(items)
    }

    /// An event's payload. It never changes once written, and is written before any of its
    /// deliveries: an eventually consistent read (half the price) finds it but for a write a
    /// moment old, which a strongly consistent one then reads.
    async fn event_payload(&self, tenant_id: Uuid, event_id: Uuid) -> Result<Option<String>> {
        for consistent in [false, true] {
            let output = self
                .client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(key(tenant_pk(tenant_id), event_payload_sk(event_id))))
                .projection_expression("#payload")
                .expression_attribute_names("#payload", PAYLOAD)
                .consistent_read(consistent)
                .send()
                .await
                .map_err(sdk_error)?;
            if let Some(payload) = output
                .item
                .as_ref()
                .and_then(|item| optional_text(item, PAYLOAD))
            {
                return Ok(Some(payload));
            }
        }
        Ok(None)
    }

    /// One range of a search: the ids of one status's deliveries in one partition of a search
    /// index, within `range`, newest first, at most `want` (the index holds keys only).
    async fn search_range(
        &self,
        (index, pk_name, pk): (&'static str, &'static str, String),
        status: DeliveryStatus,
        range: IdRange,
        want: usize,
    ) -> Result<Vec<Uuid>> {
        // BETWEEN includes its upper end: one more is read, and an id equal to it dropped.
        let lower = range.lower.map_or_else(String::new, |id| id.to_string());
        let upper = range
            .upper
            .map_or_else(|| "~".to_owned(), |id| id.to_string());
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#ipk = :ipk AND #isk BETWEEN :lower AND :upper")
            .expression_attribute_names("#ipk", pk_name)
            .expression_attribute_names("#isk", SEARCH_SK)
            .expression_attribute_values(":ipk", text(pk))
            .expression_attribute_values(":lower", text(format!("{}#{lower}", status.as_str())))
            .expression_attribute_values(":upper", text(format!("{}#{upper}", status.as_str())))
            .scan_index_forward(false);
        let read = read_query(&query, None, Reading::first(want + 1)).await?;
        let ids = read
            .items
            .iter()
            .map(search_delivery_id)
            .collect::<Result<Vec<_>>>()?;
        Ok(ids.into_iter().filter(|id| range.contains(*id)).collect())
    }

    /// A webhook's deliveries within `range`, newest first, from its list's index (`gsi2`,
    /// which holds deliveries written before the search indexes too): at most `want`.
    async fn webhook_range(
        &self,
        tenant_id: Uuid,
        webhook_id: Uuid,
        range: IdRange,
        want: usize,
    ) -> Result<Vec<DeliverySummary>> {
        // Every id sorts after "0" and before "~"; BETWEEN includes its upper end.
        let lower = range
            .lower
            .map_or_else(|| "0".to_owned(), |id| id.to_string());
        let upper = range
            .upper
            .map_or_else(|| "~".to_owned(), |id| id.to_string());
        let (projection, names) = summary_projection();
        let mut query = self
            .index_query(GSI2, webhook_index_pk(tenant_id, webhook_id))
            .key_condition_expression("#ipk = :ipk AND #isk BETWEEN :lower AND :upper")
            .expression_attribute_names("#isk", GSI2_SK)
            .expression_attribute_values(":lower", text(lower))
            .expression_attribute_values(":upper", text(upper))
            .scan_index_forward(false)
            .projection_expression(projection);
        for (placeholder, name) in names {
            query = query.expression_attribute_names(placeholder, name);
        }
        let read = read_query(&query, None, Reading::first(want + 1)).await?;
        let found = read
            .items
            .iter()
            .map(summary_from_item)
            .collect::<Result<Vec<_>>>()?;
        Ok(found
            .into_iter()
            .filter(|d| range.contains(d.id))
            .take(want)
            .collect())
    }

    /// The summaries of the tenant's deliveries `ids`, in that order, read by key (one
    /// BatchGetItem, eventually consistent: half a read unit each). One gone meanwhile (expired)
    /// is left out.
    async fn summaries(&self, tenant_id: Uuid, ids: &[Uuid]) -> Result<Vec<DeliverySummary>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let (projection, names) = summary_projection();
        let mut request = KeysAndAttributes::builder()
            .set_keys(Some(
                ids.iter()
                    .map(|id| key(tenant_pk(tenant_id), delivery_sk(*id)))
                    .collect(),
            ))
            .projection_expression(projection);
        for (placeholder, name) in names {
            request = request.expression_attribute_names(placeholder, name);
        }
        let mut found = HashMap::new();
        for item in self
            .batch_get(request.build().map_err(build_error)?)
            .await?
        {
            let summary = summary_from_item(&item)?;
            found.insert(summary.id, summary);
        }
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    /// One requeue: the schedule attributes and the due index's sort key, conditional on the
    /// version read; the payload and the rest of the delivery are not touched.
    fn requeue_update(&self, requeue: &Requeue) -> Result<Update> {
        let after = &requeue.after;
        let due = after.next_attempt_at.unwrap_or(after.updated_at);
        let mut expression =
            "SET #isk = :isk, #next = :next, #updated = :updated, #version = :version".to_owned();
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(tenant_pk(after.tenant_id), delivery_sk(after.id))))
            .condition_expression("#version = :read")
            .expression_attribute_names("#isk", GSI1_SK)
            .expression_attribute_names("#next", "next_attempt_at")
            .expression_attribute_names("#updated", "updated_at")
            .expression_attribute_names("#version", VERSION)
            .expression_attribute_names("#lease", "lease_until")
            .expression_attribute_values(":isk", text(due_index_sk(due, after.id)))
            .expression_attribute_values(":next", text(rfc3339(due)))
            .expression_attribute_values(":updated", text(rfc3339(after.updated_at)))
            .expression_attribute_values(":version", number(after.version))
            .expression_attribute_values(":read", number(requeue.before_version));
        match after.lease_until {
            Some(until) => {
                expression.push_str(", #lease = :lease");
                update = update.expression_attribute_values(":lease", text(rfc3339(until)));
            }
            None => expression.push_str(" REMOVE #lease"),
        }
        update
            .update_expression(expression)
            .build()
            .map_err(build_error)
    }
}

#[async_trait]
impl DeliveryStore for DynamoStore {
    /// Writes the deliveries (whose payload is stored: `put_payload`) with their counters,
    /// many to a transaction, the transactions concurrently.
    /// A delivery that exists already (a fan-out run twice) refuses its transaction on its
    /// condition: the transaction is sent again without it, so that counters move only for
    /// the deliveries created.
    async fn create_deliveries(&self, deliveries: &[Delivery]) -> Result<()> {
        let chunks: Vec<_> = transaction_chunks(deliveries)
            .into_iter()
            .map(|chunk| self.create_chunk(chunk))
            .collect();
        stream::iter(chunks)
            .buffer_unordered(IN_FLIGHT)
            .try_collect::<()>()
            .await
    }

    /// The event's payload item, once: a second fan-out of the event finds it and keeps it.
    async fn put_payload(&self, payload: &EventPayload) -> Result<()> {
        let item = payload_item(payload, self.retention);
        match self
            .put_alone(item, Condition::new_item(), "store payload")
            .await
        {
            Err(Error::Conflict(_)) => Ok(()),
            other => other,
        }
    }

    async fn get_delivery(&self, tenant_id: Uuid, delivery_id: Uuid) -> Result<Option<Delivery>> {
        // The delivery, with the payload item of a delivery written before payloads were shared,
        // which sorts right after it: one strongly consistent Query.
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :delivery AND :payload")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", text(tenant_pk(tenant_id)))
            .expression_attribute_values(":delivery", text(delivery_sk(delivery_id)))
            .expression_attribute_values(":payload", text(payload_sk(delivery_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        let items = output.items.unwrap_or_default();
        let delivery = delivery_sk(delivery_id);
        let payload = payload_sk(delivery_id);
        let Some(item) = items.iter().find(|i| sk_of(i) == Some(delivery.as_str())) else {
            return Ok(None);
        };
        if let Some(payload) = items.iter().find(|i| sk_of(i) == Some(payload.as_str())) {
            return delivery_from_item(item, Some(payload)).map(Some);
        }
        let summary = summary_from_item(item)?;
        let payload = self
            .event_payload(tenant_id, summary.event_id)
            .await?
            .ok_or_else(|| Error::internal(format!("delivery {delivery_id}: no payload")))?;
        Ok(Some(summary.with_payload(payload)))
    }

    async fn get_delivery_summary(
        &self,
        tenant_id: Uuid,
        delivery_id: Uuid,
    ) -> Result<Option<DeliverySummary>> {
        let (projection, names) = summary_projection();
        let mut request = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(tenant_pk(tenant_id), delivery_sk(delivery_id))))
            .projection_expression(projection)
            .consistent_read(true);
        for (placeholder, name) in names {
            request = request.expression_attribute_names(placeholder, name);
        }
        let output = request.send().await.map_err(sdk_error)?;
        output.item.as_ref().map(summary_from_item).transpose()
    }

    async fn list_attempts(&self, tenant_id: Uuid, delivery_id: Uuid) -> Result<Vec<Attempt>> {
        let query = self.prefix_query(tenant_pk(tenant_id), &attempt_prefix(delivery_id));
        let read = read_query(&query, None, Reading::all()).await?;
        read.items.iter().map(attempt_from_item).collect()
    }

    async fn write_delivery(&self, change: &DeliveryChange) -> Result<()> {
        let after = &change.after;
        let transition = self.transition(change)?;
        let counts = self.count_updates(
            after.tenant_id,
            after.webhook_id,
            &StatusCounts::delta(Some(change.before.status), after.status),
        )?;
        let reopened = !change.before.status.is_open() && after.status.is_open();
        if change.attempt.is_none() && counts.is_empty() && !reopened {
            // A claim or a requeue: the delivery's item alone, still conditional.
            return self.update_alone(transition, "write delivery").await;
        }
        let mut items = vec![TransactWriteItem::builder().update(transition).build()];
        if let Some(attempt) = &change.attempt {
            items.push(self.put(attempt_item(after, attempt, self.retention), None)?);
        }
        items.extend(counts);
        if reopened {
            // A manual retry: the payload must outlive the delivery's new attempts.
            let expiry = self.retention.payload_expiry(after.updated_at).timestamp();
            let payload = event_payload_sk(after.event_id);
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(tenant_pk(after.tenant_id), payload)))
                .update_expression("SET #ttl = :ttl")
                .expression_attribute_names("#ttl", TTL)
                .expression_attribute_values(":ttl", number(expiry))
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        self.transact(items, "write delivery").await
    }

    async fn list_deliveries(
        &self,
        tenant_id: Uuid,
        webhook_id: Uuid,
        status: Option<DeliveryStatus>,
        page: PageRequest,
    ) -> Result<Page<DeliverySummary>> {
        let index_pk = webhook_index_pk(tenant_id, webhook_id);
        let start = page.after.map(|after| {
            let mut start = key(tenant_pk(tenant_id), delivery_sk(after));
            start.insert(GSI2_PK.to_owned(), text(index_pk.clone()));
            start.insert(GSI2_SK.to_owned(), text(after.to_string()));
            start
        });
        // Summaries only: no list shows a payload.
        let (projection, names) = summary_projection();
        let mut query = self
            .index_query(GSI2, index_pk)
            .scan_index_forward(false)
            .projection_expression(projection);
        for (placeholder, name) in names {
            query = query.expression_attribute_names(placeholder, name);
        }
        if let Some(status) = status {
            query = query
                .filter_expression("#status = :status")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":status", text(status.as_str()));
        }
        // A status filter applies after `Limit`: read on until the page is full, but no further
        // than the filter's budget, and resume after the last delivery read.
        let reading = match status {
            Some(_) => Reading::first_among(page.limit + 1, FILTER_SCAN_LIMIT),
            None => Reading::first(page.limit + 1),
        };
        let read = read_query(&query, start, reading).await?;
        let found = read
            .items
            .iter()
            .map(summary_from_item)
            .collect::<Result<Vec<_>>>()?;
        // The index's sort key is the delivery id.
        let stopped_after = match &read.stopped_at {
            Some(key) => Some(index_delivery_id(key)?),
            None => None,
        };
        Ok(Page::from_read(found, page.limit, |d| d.id, stopped_after))
    }

    /// With a status, one id range of each shard of the search index of the filter's fixed
    /// dimensions; without, the five statuses' ranges of each shard (a webhook's alone: its
    /// list's index). Each range reads at most a page and one, keys only; the newest of all
    /// are the page, whose summaries are then read by key.
    async fn search_deliveries(
        &self,
        tenant_id: Uuid,
        filter: &DeliveryFilter,
        page: PageRequest,
    ) -> Result<Page<DeliverySummary>> {
        let range = filter.id_range().before(page.after);
        if range.is_empty() {
            return Ok(Page::from_overfetch(Vec::new(), page.limit, |d| d.id));
        }
        let want = page.limit + 1;
        if let (None, None, Some(webhook_id)) = (filter.status, &filter.event, filter.webhook_id) {
            let found = self
                .webhook_range(tenant_id, webhook_id, range, want)
                .await?;
            return Ok(Page::from_overfetch(found, page.limit, |d| d.id));
        }
        let webhook = filter.webhook_id.map(|id| id.to_string());
        let (index, pk_name, parts): (_, _, Vec<&str>) = match (&filter.event, &webhook) {
            (None, None) => (SEARCH_TENANT, SEARCH_TENANT_PK, vec![]),
            (Some(event), None) => (SEARCH_EVENT, SEARCH_EVENT_PK, vec![event]),
            (None, Some(webhook)) => (SEARCH_WEBHOOK, SEARCH_WEBHOOK_PK, vec![webhook]),
            (Some(event), Some(webhook)) => (
                SEARCH_WEBHOOK_EVENT,
                SEARCH_WEBHOOK_EVENT_PK,
                vec![webhook, event],
            ),
        };
        let statuses = match filter.status {
            Some(status) => vec![status],
            None => DeliveryStatus::ALL.to_vec(),
        };
        let reads = (0..SHARDS).flat_map(|shard| {
            let pk = search_pk(tenant_id, &parts, shard);
            statuses.iter().map(move |status| {
                self.search_range((index, pk_name, pk.clone()), *status, range, want)
            })
        });
        let mut ids: Vec<Uuid> = futures_util::future::try_join_all(reads)
            .await?
            .into_iter()
            .flatten()
            .collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids.dedup();
        ids.truncate(want);
        let more = ids.len() > page.limit;
        ids.truncate(page.limit);
        let stopped_after = if more { ids.last().copied() } else { None };
        // The indexes are eventually consistent with the table: a delivery whose status changed
        // since its index entry was read is left out rather than shown under another status.
        let found: Vec<DeliverySummary> = self
            .summaries(tenant_id, &ids)
            .await?
            .into_iter()
            .filter(|d| filter.status.is_none_or(|status| d.status == status))
            .collect();
        Ok(Page::from_read(found, page.limit, |d| d.id, stopped_after))
    }

    /// A page of due deliveries: up to a share of `limit` from each shard of the due index, the
    /// shards read at once, each from where the cursor left it.
    async fn due_deliveries(
        &self,
        before: DateTime<Utc>,
        after: Option<&DueCursor>,
        limit: usize,
    ) -> Result<DuePage> {
        let positions = match after {
            None => vec![ShardPosition::Start; usize::from(SHARDS)],
            Some(cursor) => ShardPosition::decode(cursor)?,
        };
        // `limit` shared among the shards not done, the first ones taking what does not divide.
        let open = positions
            .iter()
            .filter(|p| **p != ShardPosition::Done)
            .count()
            .max(1);
        let mut shares = (0..open).map(|n| limit / open + usize::from(n < limit % open));
        let (projection, names) = due_projection();
        let reads = (0..SHARDS).zip(positions).map(|(shard, position)| {
            let share = match position {
                ShardPosition::Done => 0,
                _ => shares.next().unwrap_or(0),
            };
            let start = match position {
                ShardPosition::Start if share > 0 => None,
                ShardPosition::After(key) if share > 0 => Some(key_item(key)),
                // Done, or no share of this page: it stays where it was.
                unread => {
                    return futures_util::future::Either::Left(async { Ok((Vec::new(), unread)) })
                }
            };
            // What the sweeper decides on, no more: it reads thousands, never a payload.
            let mut query = self
                .index_query(GSI1, due_index_pk(shard))
                .key_condition_expression("#ipk = :ipk AND #isk < :before")
                .expression_attribute_names("#isk", GSI1_SK)
                .expression_attribute_values(":before", text(rfc3339(before)))
                .projection_expression(projection.clone());
            for (placeholder, name) in &names {
                query = query.expression_attribute_names(placeholder, *name);
            }
            futures_util::future::Either::Right(async move {
                let read = read_query(&query, start, Reading::first(share)).await?;
                let position = match read.stopped_at {
                    Some(key) => ShardPosition::After(key_text(&key)?),
                    None => ShardPosition::Done,
                };
                Ok::<_, Error>((read.items, position))
            })
        });
        let mut deliveries = Vec::new();
        let mut positions = Vec::new();
        for (items, position) in futures_util::future::try_join_all(reads).await? {
            for item in &items {
                deliveries.push(due_from_item(item)?);
            }
            positions.push(position);
        }
        let next = positions
            .iter()
            .any(|p| *p != ShardPosition::Done)
            .then(|| ShardPosition::encode(&positions));
        Ok(DuePage { deliveries, next })
    }

    /// The sweeper's requeues, up to 100 to a TransactWriteItems: one request and one round trip
    /// for a hundred conditional writes (at twice a single write's units), where a sweep has
    /// thousands to make from one small function. A transaction is all or nothing, so one whose
    /// delivery changed since it was read (another sweeper or a worker won it) is cancelled:
    /// DynamoDB says which writes failed their condition, and the rest go again without them.
    /// Writes that keep meeting concurrent transactions are left for the next sweep.
    async fn requeue_deliveries(&self, requeues: &[Requeue]) -> Result<Vec<bool>> {
        let mut written = vec![false; requeues.len()];
        let indices: Vec<usize> = (0..requeues.len()).collect();
        for chunk in indices.chunks(TRANSACTION_MAX) {
            let mut pending = chunk.to_vec();
            // Each round drops at least one write (the ones whose condition failed), so this
            // ends; collisions with concurrent transactions are resent by `transact_checked`.
            while !pending.is_empty() {
                let items = pending
                    .iter()
                    .map(|i| {
                        let update = self.requeue_update(&requeues[*i])?;
                        Ok(TransactWriteItem::builder().update(update).build())
                    })
                    .collect::<Result<Vec<_>>>()?;
                match self.transact_checked(items, "requeue deliveries").await? {
                    Ok(()) => {
                        for i in pending.drain(..) {
                            written[i] = true;
                        }
                    }
                    // Changed since they were read: not this sweeper's to requeue.
                    Err(failed) if !failed.is_empty() => {
                        pending = pending
                            .iter()
                            .enumerate()
                            .filter(|(position, _)| !failed.contains(position))
                            .map(|(_, i)| *i)
                            .collect();
                    }
                    Err(_) => {
                        return Err(Error::internal(
                            "requeue deliveries: refused without a failed condition",
                        ))
                    }
                }
            }
        }
        Ok(written)
    }

    async fn failed_deliveries(
        &self,
        tenant_id: Uuid,
        webhook_id: Option<Uuid>,
        after: Option<DeliveryRef>,
        limit: usize,
    ) -> Result<Vec<DeliveryRef>> {
        let index_pk = failed_index_pk(tenant_id);
        let start = after.map(|after| {
            let mut start = key(tenant_pk(tenant_id), delivery_sk(after.delivery_id));
            start.insert(GSI1_PK.to_owned(), text(index_pk.clone()));
            let sort = failed_index_sk(after.webhook_id, after.delivery_id);
            start.insert(GSI1_SK.to_owned(), text(sort));
            start
        });
        // The references only: the rest of the item is not needed.
        let mut query = self
            .index_query(GSI1, index_pk)
            .projection_expression("#isk")
            .expression_attribute_names("#isk", GSI1_SK);
        if let Some(webhook_id) = webhook_id {
            query = query
                .key_condition_expression("#ipk = :ipk AND begins_with(#isk, :webhook)")
                .expression_attribute_values(":webhook", text(format!("{webhook_id}#")));
        }
        let read = read_query(&query, start, Reading::first(limit)).await?;
        read.items.iter().map(failed_ref_from_item).collect()
    }

    async fn delivery_counts(&self, tenant_id: Uuid) -> Result<DeliveryCounts> {
        let mut counts = DeliveryCounts::default();
        let query = self.prefix_query(tenant_pk(tenant_id), COUNTS_SK_PREFIX);
        for item in &read_query(&query, None, Reading::all()).await?.items {
            let Some(sk) = sk_of(item) else {
                continue;
            };
            // Written by earlier versions; the sum of the webhooks' counts equals it.
            if sk == COUNTS_ALL {
                continue;
            }
            let item_counts = delivery_counts_from_item(item)?;
            for (status, n) in &item_counts.0 {
                *counts.overall.0.entry(*status).or_default() += n;
            }
            if let Some(id) = sk
                .strip_prefix(COUNTS_SK_PREFIX)
                .and_then(|id| Uuid::parse_str(id).ok())
            {
                counts.per_webhook.push((id, item_counts));
            }
        }
        Ok(counts)
    }
}

/// Where one shard of the due index stands in a read that goes on over several calls.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum ShardPosition {
    Start,
    /// After this key (the index's and the table's, all strings).
    After(BTreeMap<String, String>),
    Done,
}

impl ShardPosition {
    fn encode(positions: &[ShardPosition]) -> DueCursor {
        DueCursor(serde_json::to_string(positions).unwrap_or_default())
    }

    fn decode(cursor: &DueCursor) -> Result<Vec<ShardPosition>> {
        serde_json::from_str::<Vec<ShardPosition>>(&cursor.0)
            .ok()
            .filter(|positions| positions.len() == usize::from(SHARDS))
            .ok_or_else(|| Error::internal("not a due-deliveries cursor of this store"))
    }
}

/// A key's attributes as text (every key attribute of the table is a string).
fn key_text(key: &Item) -> Result<BTreeMap<String, String>> {
    key.iter()
        .map(|(name, value)| match value {
            AttributeValue::S(text) => Ok((name.clone(), text.clone())),
            _ => Err(Error::internal(format!(
                "key attribute `{name}` is not a string"
            ))),
        })
        .collect()
}

fn key_item(key: BTreeMap<String, String>) -> Item {
    key.into_iter()
        .map(|(name, value)| (name, AttributeValue::S(value)))
        .collect()
}
