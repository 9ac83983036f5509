//! Clients and the tenant's sync counts (`ClientStore`). A client write is one transaction: the
//! client's item, conditional on its version, the counters it moves and its outbox events.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{KeysAndAttributes, TransactWriteItem, Update};
use uuid::Uuid;

use super::attributes::*;
use super::outbox::event_item;
use super::paging::{read_query, Reading};
use super::tables::{GSI1, GSI1_PK, GSI1_SK, LAST_SYNC, LAST_SYNC_PK, LAST_SYNC_SK, TTL};
use super::{build_error, condition_failed, sdk_error, tenant_pk, Condition, DynamoStore, VERSION};
use crate::domain::client::Client;
use crate::domain::page::{Page, PageRequest};
use crate::domain::stale_clients::{StaleKey, StaleQuery};
use crate::domain::sync_history::SyncTransition;
use crate::domain::sync_status::{CounterDelta, SyncCounts, SyncStatus};
use crate::error::Result;
use crate::ports::{ClientChange, ClientQuery, ClientStore};
use crate::time::{parse_rfc3339, rfc3339};

const CLIENT_SK_PREFIX: &str = "CLIENT#";
/// The tenant's sync counters: the item written before they were split, and the prefix of the
/// split ones.
const COUNTS_SK: &str = "SYNC_COUNTS";
/// The counters are split over this many items (`SYNC_COUNTS#00` to `#15`), a client's moves in
/// the one its id picks, so that concurrent writes of one tenant's clients rarely share an item
/// (DynamoDB refuses a transaction that names an item another one is writing: docs/scale.md).
/// One Query reads them all with the unsplit item, which stays the first term of the sum: a
/// table written before the split needs no migration.
const COUNT_SHARDS: u8 = 16;

fn counts_sk(client_id: Uuid) -> String {
    format!("{COUNTS_SK}#{:02}", client_id.as_bytes()[15] % COUNT_SHARDS)
}
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

/// A client's key in the `LAST_SYNC` index: its last sync (`-` for never, before any time) and
/// its id, so that the index's order is the stale list's (`StaleKey`'s).
fn last_sync_sk(key: StaleKey) -> String {
    match key.last_synced_at {
        Some(at) => format!("{}#{}", rfc3339(at), key.id),
        None => format!("{NEVER_SYNCED}#{}", key.id),
    }
}

const NEVER_SYNCED: &str = "-";

fn stale_key_of(index_item: &Item) -> Result<StaleKey> {
    let sk = text_of(index_item, LAST_SYNC_SK)?;
    let (at, id) = sk.rsplit_once('#').ok_or_else(|| corrupt(LAST_SYNC_SK))?;
    let last_synced_at = match at {
        NEVER_SYNCED => None,
        at => Some(parse_rfc3339(at).ok_or_else(|| corrupt(LAST_SYNC_SK))?),
    };
    let id = Uuid::parse_str(id).map_err(|_| corrupt(LAST_SYNC_SK))?;
    Ok(StaleKey { last_synced_at, id })
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
    item.insert(LAST_SYNC_PK.into(), text(tenant_pk(client.tenant_id)));
    item.insert(
        LAST_SYNC_SK.into(),
        text(last_sync_sk(StaleKey::of(client))),
    );
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
    /// Adds the delta to the tenant's counters (creating them at zero) in the same transaction:
    /// to the split counter of `client_id`.
    fn counter_update(
        &self,
        change: &ClientChange,
        client_id: Uuid,
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
            .set_key(Some(key(tenant_pk(change.tenant_id), counts_sk(client_id))))
            .update_expression(expression.trim())
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

impl DynamoStore {
    /// One key range of the `LAST_SYNC` index (keys only), below `before` and past the cursor
    /// (which the service has checked is below `before`: DynamoDB refuses a start key outside
    /// the key condition), then the clients read by key. A client synced since the index was
    /// read (the index is eventually consistent, the read too) is left out; the page still ends
    /// at the last key read.
    async fn stale_clients(
        &self,
        tenant_id: Uuid,
        stale: StaleQuery,
        limit: usize,
    ) -> Result<Page<Client>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(LAST_SYNC)
            .key_condition_expression("#ipk = :ipk AND #isk < :before")
            .expression_attribute_names("#ipk", LAST_SYNC_PK)
            .expression_attribute_names("#isk", LAST_SYNC_SK)
            .expression_attribute_values(":ipk", text(tenant_pk(tenant_id)))
            .expression_attribute_values(":before", text(rfc3339(stale.before)));
        let start = stale.after.map(|after| {
            let mut start = key(tenant_pk(tenant_id), client_sk(after.id));
            start.insert(LAST_SYNC_PK.to_owned(), text(tenant_pk(tenant_id)));
            start.insert(LAST_SYNC_SK.to_owned(), text(last_sync_sk(after)));
            start
        });
        let read = read_query(&query, start, Reading::first(limit + 1)).await?;
        let mut keys = read
            .items
            .iter()
            .map(stale_key_of)
            .collect::<Result<Vec<_>>>()?;
        let next_cursor = (keys.len() > limit).then(|| keys[limit - 1].encode());
        keys.truncate(limit);
        if keys.is_empty() {
            return Ok(Page {
                items: Vec::new(),
                next_cursor,
            });
        }
        let request = KeysAndAttributes::builder()
            .set_keys(Some(
                keys.iter()
                    .map(|k| key(tenant_pk(tenant_id), client_sk(k.id)))
                    .collect(),
            ))
            .build()
            .map_err(build_error)?;
        let mut found = HashMap::new();
        for item in self.batch_get(request).await? {
            let client = client_from_item(&item)?;
            found.insert(client.id, client);
        }
        // A client whose sync moved since the index was read is listed at its new key, if
        // still stale, not here.
        let items = keys
            .iter()
            .filter_map(|k| found.remove(&k.id).filter(|c| StaleKey::of(c) <= *k))
            .filter(|client| stale.includes(client))
            .collect();
        Ok(Page { items, next_cursor })
    }
}

impl DynamoStore {
    /// Puts the tenant's clients written before the `LAST_SYNC` index existed into it
    /// (`crm-admin index-clients`): each client without the index's keys gets them, on
    /// condition that it did not change since it was read. A client that did was written by
    /// this version, which indexes it. Running it again finds nothing to do.
    pub async fn index_clients(&self, tenant_id: Uuid) -> Result<usize> {
        let query = self.prefix_query(tenant_pk(tenant_id), CLIENT_SK_PREFIX);
        let mut indexed = 0;
        for item in read_query(&query, None, Reading::all()).await?.items {
            if item.contains_key(LAST_SYNC_SK) {
                continue;
            }
            let client = client_from_item(&item)?;
            let sent = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(tenant_pk(tenant_id), client_sk(client.id))))
                .update_expression("SET #ipk = :ipk, #isk = :isk")
                .condition_expression("#version = :read AND attribute_not_exists(#isk)")
                .expression_attribute_names("#ipk", LAST_SYNC_PK)
                .expression_attribute_names("#isk", LAST_SYNC_SK)
                .expression_attribute_names("#version", VERSION)
                .expression_attribute_values(":ipk", text(tenant_pk(tenant_id)))
                .expression_attribute_values(":isk", text(last_sync_sk(StaleKey::of(&client))))
                .expression_attribute_values(":read", number(client.version))
                .send()
                .await;
            match sent {
                Ok(_) => indexed += 1,
                Err(error) if condition_failed(&error) => {}
                Err(error) => return Err(sdk_error(error)),
            }
        }
        Ok(indexed)
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
        if let Some(stale) = query.synced_before {
            return self.stale_clients(tenant_id, stale, query.page.limit).await;
        }
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
        let client_id = match (&change.before, &change.after) {
            (_, Some(client)) | (Some(client), None) => client.id,
            (None, None) => return Ok(()),
        };
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
            items.push(self.counter_update(change, client_id, &delta)?);
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
        let query = self.prefix_query(tenant_pk(tenant_id), COUNTS_SK);
        let read = read_query(&query, None, Reading::all()).await?;
        read.items
            .iter()
            .try_fold(SyncCounts::default(), |sum, item| {
                Ok(sum.plus(&counts_from_item(item)?))
            })
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
