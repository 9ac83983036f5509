//! The production store: one DynamoDB table (single-table design, one overloaded GSI).
//!
//! | item        | pk                    | sk               | gsi1pk                        | gsi1sk          |
//! |-------------|-----------------------|------------------|-------------------------------|-----------------|
//! | tenant      | `TENANT#<tenant>`     | `TENANT`         |                               |                 |
//! | API key     | `TENANT#<tenant>`     | `KEY#<key>`      |                               |                 |
//! | key lookup  | `KEYHASH#<sha256>`    | `KEYHASH`        |                               |                 |
//! | client      | `TENANT#<tenant>`     | `CLIENT#<id>`    | `TENANT#<tenant>#STATUS#<s>`  | `CLIENT#<id>`   |
//! | sync counts | `TENANT#<tenant>`     | `SYNC_COUNTS`    |                               |                 |
//! | outbox      | `TENANT#<tenant>`     | `EVENT#<id>`     |                               |                 |
//!
//! Webhooks and deliveries: `delivery_items`; the webhook count and notify's event windows:
//! `tenant_limits`. Every request path is a GetItem, a Query, an UpdateItem or a
//! TransactWriteItems: never a Scan.

mod attributes;
mod contention;
mod delivery_items;
mod delivery_store;
mod items;
mod paging;
pub mod tables;
mod tenant_limits;

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client as DynamoClient;
use uuid::Uuid;

use self::attributes::*;
use self::contention::{until_done, Sent};
use self::items::*;
use self::paging::{read_query, Reading};
use self::tables::{GSI1, GSI1_PK, GSI1_SK, PK, SK};
use crate::domain::auth::ApiKey;
use crate::domain::client::Client;
use crate::domain::delivery::{Attempt, Delivery, DeliveryStatus, DeliverySummary, EventPayload};
use crate::domain::event::OutboxEvent;
use crate::domain::page::{Page, PageRequest};
use crate::domain::sync_status::{CounterDelta, SyncCounts};
use crate::domain::tenant::Tenant;
use crate::domain::webhook::Webhook;
use crate::error::{Error, Result};
use crate::ports::{
    ClientChange, ClientQuery, DeliveryChange, DeliveryCounts, DeliveryRef, DueCursor, DuePage,
    Requeue, Store,
};
use crate::time::rfc3339;
use chrono::{DateTime, Utc};

#[derive(Clone)]
pub struct DynamoStore {
    pub(super) client: DynamoClient,
    pub(super) table: String,
}

pub(super) fn sdk_error<E, R>(error: SdkError<E, R>) -> Error
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    Error::internal(DisplayErrorContext(error).to_string())
}

pub(super) fn build_error(error: aws_sdk_dynamodb::error::BuildError) -> Error {
    Error::internal(error)
}

impl DynamoStore {
    pub fn new(client: DynamoClient, table: impl Into<String>) -> DynamoStore {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    pub(super) fn put(
        &self,
        item: Item,
        condition: Option<Condition>,
    ) -> Result<TransactWriteItem> {
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        if let Some(condition) = condition {
            put = put
                .condition_expression(condition.expression)
                .set_expression_attribute_names(condition.names)
                .set_expression_attribute_values(condition.values);
        }
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(build_error)?)
            .build())
    }

    fn delete(&self, key: Item, condition: Option<Condition>) -> Result<TransactWriteItem> {
        let mut delete = Delete::builder().table_name(&self.table).set_key(Some(key));
        if let Some(condition) = condition {
            delete = delete
                .condition_expression(condition.expression)
                .set_expression_attribute_names(condition.names)
                .set_expression_attribute_values(condition.values);
        }
        Ok(TransactWriteItem::builder()
            .delete(delete.build().map_err(build_error)?)
            .build())
    }

    /// Adds the delta to the tenant's counters (creating them at zero) in the same transaction.
    fn counter_update(
        &self,
        change: &ClientChange,
        delta: &CounterDelta,
    ) -> Result<TransactWriteItem> {
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let mut adds = Vec::new();
        let mut moves: Vec<(&str, i64)> = vec![(COUNT_TOTAL, delta.total)];
        moves.extend(
            delta
                .per_status()
                .map(|(status, n)| (status_counter(status), n)),
        );
        for (index, (attribute, n)) in moves.into_iter().enumerate() {
            if n != 0 {
                names.insert(format!("#c{index}"), attribute.to_owned());
                values.insert(format!(":c{index}"), number(n));
                adds.push(format!("#c{index} :c{index}"));
            }
        }
        let mut expression = String::new();
        if !adds.is_empty() {
            expression = format!("ADD {}", adds.join(", "));
        }
        if delta.became_synced {
            names.insert("#synced_at".to_owned(), LAST_SYNC_TIME.to_owned());
            values.insert(":synced_at".to_owned(), text(rfc3339(change.now)));
            expression.push_str(" SET #synced_at = :synced_at");
        }
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(tenant_pk(change.tenant_id), COUNTS_SK.to_owned())))
            .update_expression(expression.trim())
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Runs a transaction; a failed condition is a `Conflict`.
    pub(super) async fn transact(&self, items: Vec<TransactWriteItem>, what: &str) -> Result<()> {
        match self.transact_checked(items, what).await? {
            Ok(()) => Ok(()),
            Err(_) => Err(Error::Conflict(format!(
                "{what}: a conditional write failed."
            ))),
        }
    }

    /// Runs a transaction: `Ok(Err(indices))` when it was refused because the conditions of
    /// the items at those indices failed. A transaction refused because it collided with
    /// another is sent again (`contention`), with a fresh idempotency token, since the refused
    /// one did nothing. The token makes the SDK's own resends of one send (after a timeout, or
    /// while DynamoDB says it is still in progress) apply it at most once.
    pub(super) async fn transact_checked(
        &self,
        items: Vec<TransactWriteItem>,
        what: &str,
    ) -> Result<Result<(), Vec<usize>>> {
        let token = Mutex::new(Uuid::new_v4().to_string());
        let token = &token;
        until_done(what, |_| {
            let items = items.clone();
            async move {
                let sent = token.lock().unwrap_or_else(PoisonError::into_inner).clone();
                let result = self
                    .client
                    .transact_write_items()
                    .set_transact_items(Some(items))
                    .client_request_token(sent)
                    .send()
                    .await;
                let Err(error) = result else {
                    return Ok(Sent::Done(Ok(())));
                };
                match refusal(&error) {
                    Refusal::Conditions(indices) => Ok(Sent::Done(Err(indices))),
                    Refusal::Cancelled => {
                        *token.lock().unwrap_or_else(PoisonError::into_inner) =
                            Uuid::new_v4().to_string();
                        Ok(Sent::Collided)
                    }
                    // The same send may still apply: resend it under the same token.
                    Refusal::InProgress => Ok(Sent::Collided),
                    Refusal::Failed => Err(sdk_error(error)),
                }
            }
        })
        .await
    }

    pub(super) async fn get(&self, pk: String, sk: String) -> Result<Option<Item>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(output.item)
    }

    /// A strongly consistent Query of a partition's items whose sort key starts with `prefix`,
    /// for `paging::read_query`.
    pub(super) fn prefix_query(&self, pk: String, prefix: &str) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", text(pk))
            .expression_attribute_values(":prefix", text(prefix))
            .consistent_read(true)
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn create_tenant(&self, tenant: &Tenant, first_key: &ApiKey) -> Result<()> {
        let mut items = vec![self.put(tenant_item(tenant), Some(Condition::new_item()))?];
        items.extend(self.key_writes(first_key)?);
        self.transact(items, "create tenant")
            .await
            .map_err(|error| match error {
                Error::Conflict(_) => {
                    Error::Conflict("The tenant or its key already exists.".into())
                }
                other => other,
            })
    }

    async fn get_tenant(&self, tenant_id: Uuid) -> Result<Option<Tenant>> {
        self.get(tenant_pk(tenant_id), TENANT_SK.to_owned())
            .await?
            .map(|item| tenant_from_item(&item))
            .transpose()
    }

    async fn put_api_key(&self, key: &ApiKey) -> Result<()> {
        let items = self.key_writes(key)?;
        self.transact(items, "put API key")
            .await
            .map_err(|error| match error {
                Error::Conflict(_) => {
                    Error::Conflict("An API key with this value already exists.".into())
                }
                other => other,
            })
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>> {
        self.get(key_hash_pk(key_hash), KEY_HASH_SK.to_owned())
            .await?
            .map(|item| api_key_from_item(&item))
            .transpose()
    }

    async fn list_api_keys(&self, tenant_id: Uuid) -> Result<Vec<ApiKey>> {
        let query = self.prefix_query(tenant_pk(tenant_id), KEY_SK_PREFIX);
        let read = read_query(&query, None, Reading::all()).await?;
        read.items.iter().map(api_key_from_item).collect()
    }

    async fn delete_api_key(&self, tenant_id: Uuid, key_id: Uuid) -> Result<bool> {
        let Some(item) = self.get(tenant_pk(tenant_id), key_sk(key_id)).await? else {
            return Ok(false);
        };
        let stored = api_key_from_item(&item)?;
        let items = vec![
            self.delete(
                key(tenant_pk(tenant_id), key_sk(key_id)),
                Some(Condition::exists()),
            )?,
            self.delete(
                key(key_hash_pk(&stored.key_hash), KEY_HASH_SK.to_owned()),
                None,
            )?,
        ];
        match self.transact(items, "delete API key").await {
            Ok(()) => Ok(true),
            Err(Error::Conflict(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }

    async fn get_client(&self, tenant_id: Uuid, client_id: Uuid) -> Result<Option<Client>> {
        self.get(tenant_pk(tenant_id), client_sk(client_id))
            .await?
            .map(|item| client_from_item(&item))
            .transpose()
    }

    async fn list_clients(&self, tenant_id: Uuid, query: &ClientQuery) -> Result<Page<Client>> {
        let after = query.page.after;
        let (request, start) = match query.status {
            None => (
                self.prefix_query(tenant_pk(tenant_id), CLIENT_SK_PREFIX),
                after.map(|after| key(tenant_pk(tenant_id), client_sk(after))),
            ),
            Some(status) => {
                let index_pk = status_index_pk(tenant_id, status);
                let start = after.map(|after| {
                    let mut start = key(tenant_pk(tenant_id), client_sk(after));
                    start.insert(GSI1_PK.to_owned(), text(index_pk.clone()));
                    start.insert(GSI1_SK.to_owned(), text(client_sk(after)));
                    start
                });
                let request = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(GSI1)
                    .key_condition_expression("#ipk = :ipk")
                    .expression_attribute_names("#ipk", GSI1_PK)
                    .expression_attribute_values(":ipk", text(index_pk));
                (request, start)
            }
        };
        // Up to 1 MB of clients per response: a page of big clients takes several.
        let read = read_query(&request, start, Reading::first(query.page.limit + 1)).await?;
        let clients = read
            .items
            .iter()
            .map(client_from_item)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(clients, query.page.limit, |c| c.id))
    }

    async fn write_client(&self, change: &ClientChange) -> Result<()> {
        let mut items = Vec::with_capacity(2 + change.events.len());
        items.push(match (&change.before, &change.after) {
            (None, Some(after)) => self.put(client_item(after), Some(Condition::new_item()))?,
            (Some(before), Some(after)) => {
                self.put(client_item(after), Some(Condition::version(before.version)))?
            }
            (Some(before), None) => self.delete(
                key(tenant_pk(before.tenant_id), client_sk(before.id)),
                Some(Condition::version(before.version)),
            )?,
            (None, None) => return Ok(()),
        });
        let delta = CounterDelta::between(
            change.before.as_ref().map(|c| c.sync_status),
            change.after.as_ref().map(|c| c.sync_status),
        );
        if !delta.is_empty() {
            items.push(self.counter_update(change, &delta)?);
        }
        for event in &change.events {
            items.push(self.put(event_item(event), Some(Condition::new_item()))?);
        }
        self.transact(items, "write client").await
    }

    async fn sync_counts(&self, tenant_id: Uuid) -> Result<SyncCounts> {
        match self.get(tenant_pk(tenant_id), COUNTS_SK.to_owned()).await? {
            Some(item) => counts_from_item(&item),
            None => Ok(SyncCounts::default()),
        }
    }

    async fn list_outbox_events(&self, tenant_id: Uuid, limit: usize) -> Result<Vec<OutboxEvent>> {
        let query = self.prefix_query(tenant_pk(tenant_id), EVENT_SK_PREFIX);
        let read = read_query(&query, None, Reading::first(limit)).await?;
        read.items.iter().map(event_from_item).collect()
    }

    async fn undispatched_events(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>> {
        self.undispatched_events_impl(before, limit).await
    }

    async fn take_event_quota(&self, tenant_id: Uuid, second: i64, max: usize) -> Result<bool> {
        self.take_event_quota_impl(tenant_id, second, max).await
    }

    async fn append_event(&self, event: &OutboxEvent) -> Result<()> {
        self.put_alone(event_item(event), Condition::new_item(), "append event")
            .await
    }

    async fn mark_event_dispatched(&self, tenant_id: Uuid, event_id: Uuid) -> Result<()> {
        self.mark_event_dispatched_impl(tenant_id, event_id).await
    }

    async fn create_webhook(&self, webhook: &Webhook, max: usize) -> Result<()> {
        self.create_counted_webhook(webhook, max).await
    }

    async fn update_webhook(&self, before_version: i64, webhook: &Webhook) -> Result<()> {
        self.update_webhook_impl(before_version, webhook).await
    }

    async fn delete_webhook(&self, tenant_id: Uuid, webhook_id: Uuid) -> Result<bool> {
        self.delete_counted_webhook(tenant_id, webhook_id).await
    }

    async fn get_webhook(&self, tenant_id: Uuid, webhook_id: Uuid) -> Result<Option<Webhook>> {
        self.get_webhook_impl(tenant_id, webhook_id).await
    }

    async fn list_webhooks(&self, tenant_id: Uuid, page: PageRequest) -> Result<Page<Webhook>> {
        self.list_webhooks_impl(tenant_id, page).await
    }

    async fn put_payload(&self, payload: &EventPayload) -> Result<()> {
        self.put_payload_impl(payload).await
    }

    async fn create_deliveries(&self, deliveries: &[Delivery]) -> Result<()> {
        self.create_deliveries_impl(deliveries).await
    }

    async fn get_delivery(&self, tenant_id: Uuid, delivery_id: Uuid) -> Result<Option<Delivery>> {
        self.get_delivery_impl(tenant_id, delivery_id).await
    }

    async fn get_delivery_summary(
        &self,
        tenant_id: Uuid,
        delivery_id: Uuid,
    ) -> Result<Option<DeliverySummary>> {
        self.get_delivery_summary_impl(tenant_id, delivery_id).await
    }

    async fn list_attempts(&self, tenant_id: Uuid, delivery_id: Uuid) -> Result<Vec<Attempt>> {
        self.list_attempts_impl(tenant_id, delivery_id).await
    }

    async fn write_delivery(&self, change: &DeliveryChange) -> Result<()> {
        self.write_delivery_impl(change).await
    }

    async fn list_deliveries(
        &self,
        tenant_id: Uuid,
        webhook_id: Uuid,
        status: Option<DeliveryStatus>,
        page: PageRequest,
    ) -> Result<Page<DeliverySummary>> {
        self.list_deliveries_impl(tenant_id, webhook_id, status, page)
            .await
    }

    async fn due_deliveries(
        &self,
        before: DateTime<Utc>,
        after: Option<&DueCursor>,
        limit: usize,
    ) -> Result<DuePage> {
        self.due_deliveries_impl(before, after, limit).await
    }

    async fn requeue_deliveries(&self, requeues: &[Requeue]) -> Result<Vec<bool>> {
        self.requeue_deliveries_impl(requeues).await
    }

    async fn failed_deliveries(
        &self,
        tenant_id: Uuid,
        webhook_id: Option<Uuid>,
        after: Option<DeliveryRef>,
        limit: usize,
    ) -> Result<Vec<DeliveryRef>> {
        self.failed_deliveries_impl(tenant_id, webhook_id, after, limit)
            .await
    }

    async fn delivery_counts(&self, tenant_id: Uuid) -> Result<DeliveryCounts> {
        self.delivery_counts_impl(tenant_id).await
    }
}

impl DynamoStore {
    /// A key is two items: the tenant's record of it and the lookup by hash that auth reads.
    fn key_writes(&self, key: &ApiKey) -> Result<Vec<TransactWriteItem>> {
        Ok(vec![
            self.put(api_key_item(key, false), Some(Condition::new_item()))?,
            self.put(api_key_item(key, true), Some(Condition::new_item()))?,
        ])
    }
}

/// A condition expression with its placeholders.
pub(super) struct Condition {
    pub(super) expression: &'static str,
    pub(super) names: Option<HashMap<String, String>>,
    pub(super) values: Option<HashMap<String, AttributeValue>>,
}

impl Condition {
    pub(super) fn new_item() -> Condition {
        Condition {
            expression: "attribute_not_exists(#pk)",
            names: Some(HashMap::from([("#pk".to_owned(), PK.to_owned())])),
            values: None,
        }
    }

    fn exists() -> Condition {
        Condition {
            expression: "attribute_exists(#pk)",
            names: Some(HashMap::from([("#pk".to_owned(), PK.to_owned())])),
            values: None,
        }
    }

    pub(super) fn version(version: i64) -> Condition {
        Condition {
            expression: "#version = :version",
            names: Some(HashMap::from([("#version".to_owned(), VERSION.to_owned())])),
            values: Some(HashMap::from([(":version".to_owned(), number(version))])),
        }
    }
}

/// Why DynamoDB refused a transaction.
enum Refusal {
    /// The conditions of these items failed: an answer.
    Conditions(Vec<usize>),
    /// Cancelled, nothing applied, because it collided with a concurrent write or was
    /// throttled on an item.
    Cancelled,
    /// A send under the same token is still being applied.
    InProgress,
    /// Anything else: an error.
    Failed,
}

fn refusal<R>(error: &SdkError<TransactWriteItemsError, R>) -> Refusal {
    match error.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
            let reasons = cancelled.cancellation_reasons();
            let failed: Vec<usize> = reasons
                .iter()
                .enumerate()
                .filter(|(_, reason)| reason.code() == Some("ConditionalCheckFailed"))
                .map(|(index, _)| index)
                .collect();
            let collided = reasons.iter().any(|reason| {
                matches!(
                    reason.code(),
                    Some(
                        "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
                    )
                )
            });
            if !failed.is_empty() {
                Refusal::Conditions(failed)
            } else if collided {
                Refusal::Cancelled
            } else {
                Refusal::Failed
            }
        }
        Some(TransactWriteItemsError::TransactionInProgressException(_)) => Refusal::InProgress,
        _ => Refusal::Failed,
    }
}
