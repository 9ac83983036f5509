//! Tenants and their API keys (`TenantStore`): the tenant's item, and each key twice, under its
//! tenant (for listing) and under its hash (for authentication's one read). A key's last use is
//! written on the copy under its hash only: authentication already reads that item, and every
//! function may write that one attribute of those items and nothing else (the template's
//! `RecordKeyUse` statement), so the key list reads the uses from there.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{KeysAndAttributes, TransactWriteItem};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::attributes::*;
use super::paging::{read_query, Reading};
use super::tables::{KEY_HASH_PK_PREFIX, LAST_USED_AT, PK, SK};
use super::{build_error, condition_failed, sdk_error, tenant_pk, Condition, DynamoStore};
use crate::domain::audit::AuditEntry;
use crate::domain::auth::{ApiKey, Role};
use crate::domain::tenant::Tenant;
use crate::error::{Error, Result};
use crate::ports::TenantStore;
use crate::time::rfc3339;

const TENANT_SK: &str = "TENANT";
const KEY_HASH_SK: &str = "KEYHASH";
const KEY_SK_PREFIX: &str = "KEY#";

fn key_sk(key_id: Uuid) -> String {
    format!("{KEY_SK_PREFIX}{key_id}")
}

fn key_hash_pk(hash: &str) -> String {
    format!("{KEY_HASH_PK_PREFIX}{hash}")
}

/// A key's expiry (not `expires_at`: that name is the table's TTL, which would delete the key
/// and turn "expired" into "unknown").
const KEY_EXPIRES_AT: &str = "key_expires_at";

fn tenant_item(tenant: &Tenant) -> Item {
    let mut item = key(tenant_pk(tenant.id), TENANT_SK.to_owned());
    item.insert("id".into(), text(tenant.id.to_string()));
    item.insert("name".into(), text(&tenant.name));
    item.insert("created_at".into(), text(rfc3339(tenant.created_at)));
    item
}

fn tenant_from_item(item: &Item) -> Result<Tenant> {
    Ok(Tenant {
        id: uuid_of(item, "id")?,
        name: text_of(item, "name")?.to_owned(),
        created_at: time_of(item, "created_at")?,
    })
}

/// `lookup`: the copy keyed by the key's hash, read by authentication.
fn api_key_item(key_record: &ApiKey, lookup: bool) -> Item {
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
    if let Some(at) = key_record.expires_at {
        item.insert(KEY_EXPIRES_AT.into(), text(rfc3339(at)));
    }
    item
}

fn api_key_from_item(item: &Item) -> Result<ApiKey> {
    Ok(ApiKey {
        id: uuid_of(item, "id")?,
        tenant_id: uuid_of(item, "tenant_id")?,
        name: text_of(item, "name")?.to_owned(),
        role: Role::parse(text_of(item, "role")?).ok_or_else(|| corrupt("role"))?,
        prefix: text_of(item, "prefix")?.to_owned(),
        key_hash: text_of(item, "key_hash")?.to_owned(),
        created_at: time_of(item, "created_at")?,
        expires_at: optional_time(item, KEY_EXPIRES_AT)?,
        last_used_at: optional_time(item, LAST_USED_AT)?,
    })
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

impl DynamoStore {
    /// The last use of each of `keys` that has one, by key hash: only the last use attribute
    /// of their copies under their hashes, 100 to a BatchGetItem.
    async fn key_uses(&self, keys: &[ApiKey]) -> Result<HashMap<String, DateTime<Utc>>> {
        let mut uses = HashMap::new();
        for chunk in keys.chunks(100) {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(
                    chunk
                        .iter()
                        .map(|k| key(key_hash_pk(&k.key_hash), KEY_HASH_SK.to_owned()))
                        .collect(),
                ))
                .projection_expression("#pk, #sk, #used")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_names("#used", LAST_USED_AT)
                .build()
                .map_err(build_error)?;
            for item in self.batch_get(request).await? {
                let hash = text_of(&item, PK)?
                    .strip_prefix(KEY_HASH_PK_PREFIX)
                    .ok_or_else(|| corrupt(PK))?
                    .to_owned();
                if let Some(at) = optional_time(&item, LAST_USED_AT)? {
                    uses.insert(hash, at);
                }
            }
        }
        Ok(uses)
    }
}

#[async_trait]
impl TenantStore for DynamoStore {
    async fn create_tenant(
        &self,
        tenant: &Tenant,
        first_key: &ApiKey,
        audit: Option<&AuditEntry>,
    ) -> Result<()> {
        let mut items = vec![self.put(tenant_item(tenant), Some(Condition::new_item()))?];
        items.extend(self.key_writes(first_key)?);
        items.extend(self.audit_put(audit)?);
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

    async fn put_api_key(&self, key: &ApiKey, audit: Option<&AuditEntry>) -> Result<()> {
        let mut items = self.key_writes(key)?;
        items.extend(self.audit_put(audit)?);
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
        let mut keys = read
            .items
            .iter()
            .map(api_key_from_item)
            .collect::<Result<Vec<_>>>()?;
        let uses = self.key_uses(&keys).await?;
        for key in &mut keys {
            key.last_used_at = uses.get(&key.key_hash).copied();
        }
        Ok(keys)
    }

    async fn record_key_use(
        &self,
        key_hash: &str,
        at: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<()> {
        let sent = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(key_hash_pk(key_hash), KEY_HASH_SK.to_owned())))
            .update_expression("SET #used = :at")
            .condition_expression(
                "attribute_exists(#pk) AND (attribute_not_exists(#used) OR #used < :stale)",
            )
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#used", LAST_USED_AT)
            .expression_attribute_values(":at", text(rfc3339(at)))
            .expression_attribute_values(":stale", text(rfc3339(stale_before)))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(error) if condition_failed(&error) => Ok(()),
            Err(error) => Err(sdk_error(error)),
        }
    }

    async fn delete_api_key(
        &self,
        tenant_id: Uuid,
        key_id: Uuid,
        audit: Option<&AuditEntry>,
    ) -> Result<bool> {
        let Some(item) = self.get(tenant_pk(tenant_id), key_sk(key_id)).await? else {
            return Ok(false);
        };
        let stored = api_key_from_item(&item)?;
        let mut items = vec![
            self.delete(
                key(tenant_pk(tenant_id), key_sk(key_id)),
                Some(Condition::exists()),
            )?,
            self.delete(
                key(key_hash_pk(&stored.key_hash), KEY_HASH_SK.to_owned()),
                None,
            )?,
        ];
        items.extend(self.audit_put(audit)?);
        match self.transact(items, "delete API key").await {
            Ok(()) => Ok(true),
            Err(Error::Conflict(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }
}
