//! Domain types to and from DynamoDB items. `AttributeValue` never leaves this adapter.

use uuid::Uuid;

use super::attributes::*;
use super::tables::{GSI1_PK, GSI1_SK};
use crate::domain::auth::{ApiKey, Role};
use crate::domain::client::Client;
use crate::domain::event::OutboxEvent;
use crate::domain::sync_status::{SyncCounts, SyncStatus};
use crate::domain::tenant::Tenant;
use crate::error::Result;
use crate::time::rfc3339;

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

pub(super) fn tenant_item(tenant: &Tenant) -> Item {
    let mut item = key(tenant_pk(tenant.id), TENANT_SK.to_owned());
    item.insert("id".into(), text(tenant.id.to_string()));
    item.insert("name".into(), text(&tenant.name));
    item.insert("created_at".into(), text(rfc3339(tenant.created_at)));
    item
}

pub(super) fn tenant_from_item(item: &Item) -> Result<Tenant> {
    Ok(Tenant {
        id: uuid_of(item, "id")?,
        name: text_of(item, "name")?.to_owned(),
        created_at: time_of(item, "created_at")?,
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
        id: uuid_of(item, "id")?,
        tenant_id: uuid_of(item, "tenant_id")?,
        name: text_of(item, "name")?.to_owned(),
        role: Role::parse(text_of(item, "role")?).ok_or_else(|| corrupt("role"))?,
        prefix: text_of(item, "prefix")?.to_owned(),
        key_hash: text_of(item, "key_hash")?.to_owned(),
        created_at: time_of(item, "created_at")?,
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
        version: count_of(item, VERSION)?,
    })
}

pub(super) fn counts_from_item(item: &Item) -> Result<SyncCounts> {
    Ok(SyncCounts {
        total_clients: count_of(item, COUNT_TOTAL)?,
        synced_clients: count_of(item, status_counter(SyncStatus::Synced))?,
        pending_clients: count_of(item, status_counter(SyncStatus::Pending))?,
        failed_clients: count_of(item, status_counter(SyncStatus::Failed))?,
        needs_update_clients: count_of(item, status_counter(SyncStatus::NeedsUpdate))?,
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
