//! The production store: one DynamoDB table (single-table design, two overloaded GSIs and the
//! delivery search's four).
//!
//! | item              | pk                 | sk                             | gsi1pk / gsi1sk                         | gsi2pk / gsi2sk                |
//! |-------------------|--------------------|--------------------------------|-----------------------------------------|--------------------------------|
//! | tenant            | `TENANT#<t>`       | `TENANT`                       |                                         |                                |
//! | API key           | `TENANT#<t>`       | `KEY#<key>`                    |                                         |                                |
//! | key lookup        | `KEYHASH#<sha256>` | `KEYHASH`                      |                                         |                                |
//! | client            | `TENANT#<t>`       | `CLIENT#<id>`                  | `TENANT#<t>#STATUS#<s>` / `CLIENT#<id>` |                                |
//! | sync counts       | `TENANT#<t>`       | `SYNC_COUNTS#<00..15>`         |                                         |                                |
//! | outbox event      | `TENANT#<t>`       | `EVENT#<id>`                   | `OUTBOX#<shard>` / `<created>#<id>`     |                                |
//! | event window      | `TENANT#<t>`       | `RATE#EVENTS#<second>`         |                                         |                                |
//! | idempotency key   | `TENANT#<t>`       | `IDEMPOTENCY#<key>`            |                                         |                                |
//! | webhook           | `TENANT#<t>`       | `WEBHOOK#<id>`                 |                                         |                                |
//! | webhook count     | `TENANT#<t>`       | `WEBHOOK_COUNT`                |                                         |                                |
//! | send slot         | `TENANT#<t>`       | `SEND_SLOT#<w>`                |                                         |                                |
//! | delivery (open)   | `TENANT#<t>`       | `DELIVERY#<id>`                | `DUE#<shard>` / `<next attempt>#<id>`   | `TENANT#<t>#WEBHOOK#<w>` / id  |
//! | delivery (failed) | `TENANT#<t>`       | `DELIVERY#<id>`                | `TENANT#<t>#FAILED` / `<w>#<id>`        | same                           |
//! | delivery (done)   | `TENANT#<t>`       | `DELIVERY#<id>`                |                                         | same                           |
//! | payload           | `TENANT#<t>`       | `PAYLOAD#<event id>`           |                                         |                                |
//! | payload (earlier) | `TENANT#<t>`       | `DELIVERY#<id>#0PAYLOAD`       |                                         |                                |
//! | attempt           | `TENANT#<t>`       | `DELIVERY#<id>#ATTEMPT#<nnnn>` |                                         |                                |
//! | delivery counts   | `TENANT#<t>`       | `DELIVERY_COUNTS#<w>`          |                                         |                                |
//! | keyring           | `KEYRING`          | `KEYRING`                      |                                         |                                |
//!
//! Every delivery is also in the four search indexes (keys only, `tables::SEARCH_*`): partition
//! keys `stpk` `<t>#<shard>`, `sepk` `<t>#<event>#<shard>`, `swpk` `<t>#<w>#<shard>`, `swepk`
//! `<t>#<w>#<event>#<shard>`, and one sort key for all four, `ssk` `<status>#<id>`
//! (`deliveries/items.rs`; `docs/architecture.md §Delivery search`).
//!
//! An outbox event leaves the sweeper's index once fanned out. The event window and the webhook
//! count keep their count in `n`; a send slot keeps a rate-limited webhook's next free slot in
//! `next` (µs since the epoch). An event window, a send slot, an idempotency key, a dispatched event, a
//! payload and a finished delivery or attempt carry `expires_at` (DynamoDB's TTL).
//!
//! One module per aggregate, each implementing its trait of the `Store` port with the mapping
//! of its items: `tenants` (`TenantStore`: tenants, API keys), `clients` (`ClientStore`: clients,
//! sync counts), `outbox` (`OutboxStore`: outbox events, event windows), `idempotency`
//! (`IdempotencyStore`: notify's idempotency keys), `webhooks`
//! (`WebhookStore`: webhooks, the webhook count, the send slot), `deliveries` (`DeliveryStore`:
//! payloads, deliveries, attempts, delivery counts; its items in `deliveries/items.rs`),
//! `secrets` (`SecretStore`: the keyring of data keys; crm-admin's sealing of plain secrets,
//! the one Scan, never on a request path). Here
//! (besides `RetentionStore`, which has nothing to do: the TTL removes what expires): the table's
//! shared keys and the writes, reads and conditions they all use; `attributes` (reading and
//! writing attributes), `paging` (every Query that may take more than one response),
//! `contention` (resending collided writes), `tables` (the table definition). Every request path
//! is a GetItem, a Query, an UpdateItem, a PutItem, a TransactWriteItems or a BatchGetItem (the
//! page of a delivery search): never a Scan.

mod attributes;
mod audit;
mod clients;
mod contention;
mod deliveries;
mod idempotency;
mod outbox;
mod paging;
mod secrets;
pub mod tables;
mod tenants;
mod webhooks;

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client as DynamoClient;
use uuid::Uuid;

use self::attributes::*;
use self::contention::{until_done, Sent};
use self::tables::{GSI1, GSI1_PK, GSI2_PK, PK, SK};
use crate::domain::retention::Retention;
use crate::error::{Error, Result};

/// The partition of every item of a tenant.
fn tenant_pk(tenant_id: Uuid) -> String {
    format!("TENANT#{tenant_id}")
}

/// The attribute of an item's version, which conditional writes compare (`Condition::version`).
const VERSION: &str = "version";

/// Sweeper indexes are split over a few partitions so no single GSI key gets hot.
const SHARDS: u8 = 4;

fn shard_of(id: Uuid) -> u8 {
    id.as_bytes()[15] % SHARDS
}

#[derive(Clone)]
pub struct DynamoStore {
    pub(super) client: DynamoClient,
    pub(super) table: String,
    /// Sets the expiry (TTL) of what is kept for a time: finished deliveries, attempts,
    /// payloads and dispatched events.
    pub(super) retention: Retention,
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
            retention: Retention::default(),
        }
    }

    /// The same store, keeping finished work for `retention` instead of the default.
    pub fn retaining(self, retention: Retention) -> DynamoStore {
        DynamoStore { retention, ..self }
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

    pub(super) fn delete(
        &self,
        key: Item,
        condition: Option<Condition>,
    ) -> Result<TransactWriteItem> {
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

    /// Runs a transaction; a failed condition is a `Conflict`.
    pub(super) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        what: &'static str,
    ) -> Result<()> {
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
        what: &'static str,
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

    /// The items of `keys` that exist (at most 100 keys: one BatchGetItem, eventually
    /// consistent, half a read unit each), in no order; keys DynamoDB leaves unprocessed
    /// (throttled) are asked again after a pause.
    pub(super) async fn batch_get(&self, keys: KeysAndAttributes) -> Result<Vec<Item>> {
        let mut pending = Some(keys);
        let mut found = Vec::new();
        let mut round = 0;
        while let Some(keys) = pending.take() {
            if round > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(25 << round.min(5))).await;
            }
            round += 1;
            let mut output = self
                .client
                .batch_get_item()
                .request_items(&self.table, keys)
                .send()
                .await
                .map_err(sdk_error)?;
            found.extend(
                output
                    .responses
                    .as_mut()
                    .and_then(|responses| responses.remove(&self.table))
                    .unwrap_or_default(),
            );
            pending = output
                .unprocessed_keys
                .and_then(|mut unprocessed| unprocessed.remove(&self.table))
                .filter(|keys| !keys.keys().is_empty());
            if pending.is_some() && round >= 8 {
                return Err(Error::internal("BatchGetItem: keys left unprocessed"));
            }
        }
        Ok(found)
    }

    /// A Query of one partition of an index (`index_pk`, the value of its partition key,
    /// `#ipk`). A caller that names the sort key adds `#isk` (DynamoDB refuses a name unused).
    pub(super) fn index_query(&self, index: &str, index_pk: String) -> QueryFluentBuilder {
        let pk_name = if index == GSI1 { GSI1_PK } else { GSI2_PK };
        self.client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#ipk = :ipk")
            .expression_attribute_names("#ipk", pk_name)
            .expression_attribute_values(":ipk", text(index_pk))
    }

    /// One conditional update outside a transaction: half a transaction's write units.
    /// An update that sets each attribute with a value and removes each without, on condition
    /// that the item's version is still `read_version`: the attributes it does not name (those
    /// fixed at creation, those another writer owns) are left as they are.
    pub(super) fn versioned_update(
        &self,
        key: Item,
        attributes: Vec<(&'static str, Option<AttributeValue>)>,
        read_version: i64,
    ) -> Result<Update> {
        let mut names = HashMap::from([("#read".to_owned(), VERSION.to_owned())]);
        let mut values = HashMap::from([(":read".to_owned(), number(read_version))]);
        let (mut sets, mut removes) = (Vec::new(), Vec::new());
        for (index, (name, value)) in attributes.into_iter().enumerate() {
            names.insert(format!("#a{index}"), name.to_owned());
            match value {
                Some(value) => {
                    values.insert(format!(":a{index}"), value);
                    sets.push(format!("#a{index} = :a{index}"));
                }
                None => removes.push(format!("#a{index}")),
            }
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(expression)
            .condition_expression("#read = :read")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(build_error)
    }

    pub(super) async fn update_alone(&self, update: Update, what: &'static str) -> Result<()> {
        until_done(what, |_| async {
            let update = update.clone();
            let result = self
                .client
                .update_item()
                .table_name(update.table_name)
                .set_key(Some(update.key))
                .update_expression(update.update_expression)
                .set_condition_expression(update.condition_expression)
                .set_expression_attribute_names(update.expression_attribute_names)
                .set_expression_attribute_values(update.expression_attribute_values)
                .send()
                .await;
            match result {
                Ok(_) => Ok(Sent::Done(())),
                Err(error) if condition_failed(&error) => Err(Error::Conflict(format!(
                    "{what}: a conditional write failed."
                ))),
                Err(error) if update_collided(&error) => Ok(Sent::Collided),
                Err(error) => Err(sdk_error(error)),
            }
        })
        .await
    }

    /// One conditional put outside a transaction.
    pub(super) async fn put_alone(
        &self,
        item: Item,
        condition: Condition,
        what: &'static str,
    ) -> Result<()> {
        until_done(what, |_| async {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .condition_expression(condition.expression)
                .set_expression_attribute_names(condition.names.clone())
                .set_expression_attribute_values(condition.values.clone())
                .send()
                .await;
            match result {
                Ok(_) => Ok(Sent::Done(())),
                Err(error) => match error.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(_)) => Err(Error::Conflict(
                        format!("{what}: a conditional write failed."),
                    )),
                    Some(PutItemError::TransactionConflictException(_)) => Ok(Sent::Collided),
                    _ => Err(sdk_error(error)),
                },
            }
        })
        .await
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

    pub(super) fn exists() -> Condition {
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

/// Whether an UpdateItem was refused because a concurrent transaction held its item.
pub(super) fn update_collided<R>(error: &SdkError<UpdateItemError, R>) -> bool {
    error
        .as_service_error()
        .is_some_and(UpdateItemError::is_transaction_conflict_exception)
}

/// Whether an UpdateItem was refused on its condition (the item changed or is gone), as
/// opposed to failing.
pub(super) fn condition_failed<R>(error: &SdkError<UpdateItemError, R>) -> bool {
    error
        .as_service_error()
        .is_some_and(UpdateItemError::is_conditional_check_failed_exception)
}

/// DynamoDB's TTL removes what is past its retention (each item carries its `expires_at`), on
/// its own and without consuming write capacity: there is nothing for the sweep to remove.
#[async_trait::async_trait]
impl crate::ports::RetentionStore for DynamoStore {
    async fn remove_expired(
        &self,
        _now: chrono::DateTime<chrono::Utc>,
        _limit: usize,
    ) -> Result<crate::ports::Expired> {
        Ok(crate::ports::Expired::default())
    }
}
