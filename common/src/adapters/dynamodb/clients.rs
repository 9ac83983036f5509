//! Clients and the tenant's sync counts (`ClientStore`). A client write is one transaction: the
//! client's item, conditional on its version, the counters it moves and its outbox events.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use uuid::Uuid;

use super::attributes::*;
use super::outbox::event_item;
use super::paging::{read_query, Reading};
use super::tables::{GSI1, GSI1_PK, GSI1_SK, TTL};
use super::{build_error, tenant_pk, Condition, DynamoStore, VERSION};
use crate::domain::client::Client;
use crate::domain::page::{Page, PageRequest};
use crate::domain::sync_history::SyncTransition;
use crate::domain::sync_status::{CounterDelta, SyncCounts, SyncStatus};
use crate::error::Result;
use crate::ports::{ClientChange, ClientQuery, ClientStore};
use crate::time::rfc3339;

const CLIENT_SK_PREFIX: &str = "CLIENT#";
const COUNTS_SK: &str = "SYNC_COUNTS";
/// A client's sync history: `SYNCHIST#<client id>#<entry id>`, one key range per client in the
/// tenant's partition; entry ids are UUIDv7, so the range read backwards is newest first.
const HISTORY_SK_PREFIX: &str = "SYNCHIST#";
const COUNT_TOTAL: &str = "total";
const LAST_SYNC_TIME: &str = "last_sync_time";

fn client_sk(client_id: Uuid) -> String {
    format!("{CLIENT_SK_PREFIX}{client_id}")
}

fn history_prefix(client_id: Uuid) -> String {
    format!("{HISTORY_SK_PREFIX}{client_id}#")
}

fn history_sk(client_id: Uuid, entry_id: Uuid) -> String {
    format!("{}{entry_id}", history_prefix(client_id))
}

fn status_index_pk(tenant_id: Uuid, status: SyncStatus) -> String {
    format!("TENANT#{tenant_id}#STATUS#{}", status.as_str())
}

fn status_counter(status: SyncStatus) -> &'static str {
    match status {
        SyncStatus::Synced => "synced",
        SyncStatus::Pending => "pending",
        SyncStatus::Failed => "failed",
        SyncStatus::NeedsUpdate => "needs_update",
    }
}

fn client_item(client: &Client) -> Item {
    let mut item = key(tenant_pk(client.tenant_id), client_sk(client.id));
    item.insert(
        GSI1_PK.into(),
        text(status_index_pk(client.tenant_id, client.sync_status)),
    );
    item.insert(GSI1_SK.into(), text(client_sk(client.id)));
    item.insert("id".into(), text(client.id.to_string()));
    item.insert("tenant_id".into(), text(client.tenant_id.to_string()));
    item.insert("name".into(), text(&client.name));
    put_optional(&mut item, "email", client.email.as_deref());
    put_optional(&mut item, "company", client.company.as_deref());
    put_optional(&mut item, "phone", client.phone.as_deref());
    put_optional(&mut item, "external_id", client.external_id.as_deref());
    item.insert("sync_status".into(), text(client.sync_status.as_str()));
    item.insert("created_at".into(), text(rfc3339(client.created_at)));
    item.insert("updated_at".into(), text(rfc3339(client.updated_at)));
    put_optional(
        &mut item,
        "last_synced_at",
        client.last_synced_at.map(rfc3339).as_deref(),
    );
    put_optional(
        &mut item,
        "last_sync_attempt_at",
        client.last_sync_attempt_at.map(rfc3339).as_deref(),
    );
    put_optional(
        &mut item,
        "last_sync_error",
        client.last_sync_error.as_deref(),
    );
    put_optional(
        &mut item,
        "last_sync_error_code",
        client.last_sync_error_code.as_deref(),
    );
    item.insert(VERSION.into(), number(client.version));
    item
}

fn client_from_item(item: &Item) -> Result<Client> {
    Ok(Client {
        id: uuid_of(item, "id")?,
        tenant_id: uuid_of(item, "tenant_id")?,
        name: text_of(item, "name")?.to_owned(),
        email: optional_text(item, "email"),
        company: optional_text(item, "company"),
        phone: optional_text(item, "phone"),
        external_id: optional_text(item, "external_id"),
        sync_status: SyncStatus::parse(text_of(item, "sync_status")?)
            .ok_or_else(|| corrupt("sync_status"))?,
        created_at: time_of(item, "created_at")?,
        updated_at: time_of(item, "updated_at")?,
        last_synced_at: optional_time(item, "last_synced_at")?,
        last_sync_attempt_at: optional_time(item, "last_sync_attempt_at")?,
        last_sync_error: optional_text(item, "last_sync_error"),
        last_sync_error_code: optional_text(item, "last_sync_error_code"),
        version: count_of(item, VERSION)?,
    })
}

/// A history entry, with its expiry for the TTL.
fn transition_item(entry: &SyncTransition, expires_at: i64) -> Item {
    let mut item = key(
        tenant_pk(entry.tenant_id),
        history_sk(entry.client_id, entry.id),
    );
    item.insert("id".into(), text(entry.id.to_string()));
    item.insert("tenant_id".into(), text(entry.tenant_id.to_string()));
    item.insert("client_id".into(), text(entry.client_id.to_string()));
    item.insert("at".into(), text(rfc3339(entry.at)));
    item.insert("from".into(), text(entry.from.as_str()));
    item.insert("to".into(), text(entry.to.as_str()));
    put_optional(&mut item, "error", entry.error.as_deref());
    put_optional(&mut item, "error_code", entry.error_code.as_deref());
    item.insert(TTL.into(), number(expires_at));
    item
}

fn transition_from_item(item: &Item) -> Result<SyncTransition> {
    let status = |name: &str| SyncStatus::parse(text_of(item, name)?).ok_or_else(|| corrupt(name));
    Ok(SyncTransition {
        id: uuid_of(item, "id")?,
        tenant_id: uuid_of(item, "tenant_id")?,
        client_id: uuid_of(item, "client_id")?,
        at: time_of(item, "at")?,
        from: status("from")?,
        to: status("to")?,
        error: optional_text(item, "error"),
        error_code: optional_text(item, "error_code"),
    })
}

fn counts_from_item(item: &Item) -> Result<SyncCounts> {
    Ok(SyncCounts {
        total_clients: count_of(item, COUNT_TOTAL)?,
        synced_clients: count_of(item, status_counter(SyncStatus::Synced))?,
        pending_clients: count_of(item, status_counter(SyncStatus::Pending))?,
        failed_clients: count_of(item, status_counter(SyncStatus::Failed))?,
        needs_update_clients: count_of(item, status_counter(SyncStatus::NeedsUpdate))?,
        last_sync_time: optional_time(item, LAST_SYNC_TIME)?,
    })
}

impl DynamoStore {
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
}

#[async_trait]
impl ClientStore for DynamoStore {
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
                (self.index_query(GSI1, index_pk), start)
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
        // One more item of the transaction's 100 and 4 MB: a few KB at most (an error of up to
        // `SYNC_ERROR_MAX` characters).
        if let Some(entry) =
            SyncTransition::between(change.before.as_ref(), change.after.as_ref(), change.now)
        {
            let expires_at = self.retention.expiry(entry.at).timestamp();
            items.push(self.put(
                transition_item(&entry, expires_at),
                Some(Condition::new_item()),
            )?);
        }
        self.transact(items, "write client").await
    }

    async fn sync_counts(&self, tenant_id: Uuid) -> Result<SyncCounts> {
        match self.get(tenant_pk(tenant_id), COUNTS_SK.to_owned()).await? {
            Some(item) => counts_from_item(&item),
            None => Ok(SyncCounts::default()),
        }
    }

    async fn sync_history(
        &self,
        tenant_id: Uuid,
        client_id: Uuid,
        page: PageRequest,
    ) -> Result<Page<SyncTransition>> {
        let request = self
            .prefix_query(tenant_pk(tenant_id), &history_prefix(client_id))
            .scan_index_forward(false);
        let start = page
            .after
            .map(|after| key(tenant_pk(tenant_id), history_sk(client_id, after)));
        let read = read_query(&request, start, Reading::first(page.limit + 1)).await?;
        let entries = read
            .items
            .iter()
            .map(transition_from_item)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(entries, page.limit, |e| e.id))
    }
}
