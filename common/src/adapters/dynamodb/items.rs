//! Domain types to and from DynamoDB items. `AttributeValue` never leaves this adapter.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::tables::{GSI1_PK, GSI1_SK, PK, SK};
use crate::domain::auth::{ApiKey, Role};
use crate::domain::client::Client;
use crate::domain::event::OutboxEvent;
use crate::domain::sync_status::{SyncCounts, SyncStatus};
use crate::domain::tenant::Tenant;
use crate::error::{Error, Result};
use crate::time::{parse_rfc3339, rfc3339};

pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) const TENANT_SK: &str = "TENANT";
pub(super) const KEY_HASH_SK: &str = "KEYHASH";
pub(super) const KEY_SK_PREFIX: &str = "KEY#";
pub(super) const CLIENT_SK_PREFIX: &str = "CLIENT#";
pub(super) const EVENT_SK_PREFIX: &str = "EVENT#";
pub(super) const COUNTS_SK: &str = "SYNC_COUNTS";

pub(super) const VERSION: &str = "version";
pub(super) const COUNT_TOTAL: &str = "total";
pub(super) const LAST_SYNC_TIME: &str = "last_sync_time";

pub(super) fn tenant_pk(tenant_id: Uuid) -> String {
    format!("TENANT#{tenant_id}")
}

pub(super) fn key_sk(key_id: Uuid) -> String {
    format!("{KEY_SK_PREFIX}{key_id}")
}

pub(super) fn key_hash_pk(hash: &str) -> String {
    format!("KEYHASH#{hash}")
}

pub(super) fn client_sk(client_id: Uuid) -> String {
    format!("{CLIENT_SK_PREFIX}{client_id}")
}

pub(super) fn status_index_pk(tenant_id: Uuid, status: SyncStatus) -> String {
    format!("TENANT#{tenant_id}#STATUS#{}", status.as_str())
}

pub(super) fn status_counter(status: SyncStatus) -> &'static str {
    match status {
        SyncStatus::Synced => "synced",
        SyncStatus::Pending => "pending",
        SyncStatus::Failed => "failed",
        SyncStatus::NeedsUpdate => "needs_update",
    }
}

pub(super) fn text(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn number(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(super) fn key(pk: String, sk: String) -> Item {
    HashMap::from([(PK.to_owned(), text(pk)), (SK.to_owned(), text(sk))])
}

fn corrupt(name: &str) -> Error {
    Error::internal(format!("stored item has a missing or malformed `{name}`"))
}

fn get_text<'a>(item: &'a Item, name: &str) -> Result<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value),
        _ => Err(corrupt(name)),
    }
}

fn optional_text(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Some(value.clone()),
        _ => None,
    }
}

fn get_number(item: &Item, name: &str) -> Result<i64> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value.parse().map_err(|_| corrupt(name)),
        None => Ok(0),
        _ => Err(corrupt(name)),
    }
}

fn get_uuid(item: &Item, name: &str) -> Result<Uuid> {
    Uuid::parse_str(get_text(item, name)?).map_err(|_| corrupt(name))
}

fn get_time(item: &Item, name: &str) -> Result<DateTime<Utc>> {
    parse_rfc3339(get_text(item, name)?).ok_or_else(|| corrupt(name))
}

fn optional_time(item: &Item, name: &str) -> Result<Option<DateTime<Utc>>> {
    optional_text(item, name)
        .map(|value| parse_rfc3339(&value).ok_or_else(|| corrupt(name)))
        .transpose()
}

fn put_optional(item: &mut Item, name: &str, value: Option<&str>) {
    if let Some(value) = value {
        item.insert(name.to_owned(), text(value));
    }
}

pub(super) fn tenant_item(tenant: &Tenant) -> Item {
    let mut item = key(tenant_pk(tenant.id), TENANT_SK.to_owned());
    item.insert("id".into(), text(tenant.id.to_string()));
    item.insert("name".into(), text(&tenant.name));
    item.insert("created_at".into(), text(rfc3339(tenant.created_at)));
    item
}

pub(super) fn tenant_from_item(item: &Item) -> Result<Tenant> {
    Ok(Tenant {
        id: get_uuid(item, "id")?,
        name: get_text(item, "name")?.to_owned(),
        created_at: get_time(item, "created_at")?,
    })
}

/// `lookup`: the copy keyed by the key's hash, read by authentication.
pub(super) fn api_key_item(key_record: &ApiKey, lookup: bool) -> Item {
    let mut item = if lookup {
        key(key_hash_pk(&key_record.key_hash), KEY_HASH_SK.to_owned())
    } else {
        key(tenant_pk(key_record.tenant_id), key_sk(key_record.id))
    };
    item.insert("id".into(), text(key_record.id.to_string()));
    item.insert("tenant_id".into(), text(key_record.tenant_id.to_string()));
    item.insert("name".into(), text(&key_record.name));
    item.insert("role".into(), text(key_record.role.as_str()));
    item.insert("prefix".into(), text(&key_record.prefix));
    item.insert("key_hash".into(), text(&key_record.key_hash));
    item.insert("created_at".into(), text(rfc3339(key_record.created_at)));
    item
}

pub(super) fn api_key_from_item(item: &Item) -> Result<ApiKey> {
    Ok(ApiKey {
        id: get_uuid(item, "id")?,
        tenant_id: get_uuid(item, "tenant_id")?,
        name: get_text(item, "name")?.to_owned(),
        role: Role::parse(get_text(item, "role")?).ok_or_else(|| corrupt("role"))?,
        prefix: get_text(item, "prefix")?.to_owned(),
        key_hash: get_text(item, "key_hash")?.to_owned(),
        created_at: get_time(item, "created_at")?,
    })
}

pub(super) fn client_item(client: &Client) -> Item {
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
    item.insert(VERSION.into(), number(client.version));
    item
}

pub(super) fn client_from_item(item: &Item) -> Result<Client> {
    Ok(Client {
        id: get_uuid(item, "id")?,
        tenant_id: get_uuid(item, "tenant_id")?,
        name: get_text(item, "name")?.to_owned(),
        email: optional_text(item, "email"),
        company: optional_text(item, "company"),
        phone: optional_text(item, "phone"),
        external_id: optional_text(item, "external_id"),
        sync_status: SyncStatus::parse(get_text(item, "sync_status")?)
            .ok_or_else(|| corrupt("sync_status"))?,
        created_at: get_time(item, "created_at")?,
        updated_at: get_time(item, "updated_at")?,
        last_synced_at: optional_time(item, "last_synced_at")?,
        version: get_number(item, VERSION)?,
    })
}

pub(super) fn counts_from_item(item: &Item) -> Result<SyncCounts> {
    Ok(SyncCounts {
        total_clients: get_number(item, COUNT_TOTAL)?,
        synced_clients: get_number(item, status_counter(SyncStatus::Synced))?,
        pending_clients: get_number(item, status_counter(SyncStatus::Pending))?,
        failed_clients: get_number(item, status_counter(SyncStatus::Failed))?,
        needs_update_clients: get_number(item, status_counter(SyncStatus::NeedsUpdate))?,
        last_sync_time: optional_time(item, LAST_SYNC_TIME)?,
    })
}

/// Sweeper indexes are split over a few partitions so no single GSI key gets hot.
pub(super) const SHARDS: u8 = 4;

pub(super) fn shard_of(id: Uuid) -> u8 {
    id.as_bytes()[15] % SHARDS
}

pub(super) fn outbox_index_pk(shard: u8) -> String {
    format!("OUTBOX#{shard}")
}

pub(super) fn event_sk(event_id: Uuid) -> String {
    format!("{EVENT_SK_PREFIX}{event_id}")
}

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

pub(super) fn event_from_item(item: &Item) -> Result<OutboxEvent> {
    let created_at = get_time(item, "created_at")?;
    Ok(OutboxEvent {
        id: get_uuid(item, "id")?,
        tenant_id: get_uuid(item, "tenant_id")?,
        event: get_text(item, "event")?.to_owned(),
        data: serde_json::from_str(get_text(item, "data")?).map_err(|_| corrupt("data"))?,
        created_at,
        // Written before notify's events came through the outbox: a client write's, which
        // happened when written.
        occurred_at: optional_time(item, "occurred_at")?.unwrap_or(created_at),
    })
}
