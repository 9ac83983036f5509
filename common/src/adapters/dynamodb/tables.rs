//! The table definition, in one place: the adapter's key names, the table-creation function
//! (tests, `crm-admin create-tables`, local development) and the SAM template all follow it.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex,
    GlobalSecondaryIndexUpdate, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client as DynamoClient;

use super::sdk_error;
use crate::error::{Error, Result};

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1: &str = "gsi1";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
pub const GSI2: &str = "gsi2";
pub const GSI2_PK: &str = "gsi2pk";
pub const GSI2_SK: &str = "gsi2sk";
/// The delivery search's indexes (`deliveries/items.rs`): keys only, each partitioned by the
/// tenant and a set of the search's fixed dimensions, all sorted by one attribute, the
/// delivery's status and id (`SEARCH_SK`).
pub const SEARCH_TENANT: &str = "search_tenant";
pub const SEARCH_TENANT_PK: &str = "stpk";
pub const SEARCH_EVENT: &str = "search_event";
pub const SEARCH_EVENT_PK: &str = "sepk";
pub const SEARCH_WEBHOOK: &str = "search_webhook";
pub const SEARCH_WEBHOOK_PK: &str = "swpk";
pub const SEARCH_WEBHOOK_EVENT: &str = "search_webhook_event";
pub const SEARCH_WEBHOOK_EVENT_PK: &str = "swepk";
pub const SEARCH_SK: &str = "ssk";
/// The stale-clients list's index (`clients.rs`): keys only, a tenant's clients sorted by their
/// last successful sync (never-synced first) and id.
pub const LAST_SYNC: &str = "last_sync";
pub const LAST_SYNC_PK: &str = "lspk";
pub const LAST_SYNC_SK: &str = "lssk";
pub const TTL: &str = "expires_at";
/// The partition prefix of an API key's copy under its hash (`tenants.rs`), which every
/// function that authenticates may write `LAST_USED_AT` of, and nothing else (the template's
/// `RecordKeyUse` statement names both).
pub const KEY_HASH_PK_PREFIX: &str = "KEYHASH#";
/// A key's last use, on its copy under its hash.
pub const LAST_USED_AT: &str = "last_used_at";

/// What an index holds of an item besides the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexProjection {
    /// Every attribute: a read of the index is the read of the items.
    All,
    /// The keys only (the table's and the index's): the item is read from the table by key.
    /// DynamoDB writes such an index only when the item enters it, leaves it or changes its
    /// index key, so an item's other changes cost it nothing.
    KeysOnly,
}

/// One global secondary index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexSpec {
    pub name: &'static str,
    pub hash_key: &'static str,
    pub range_key: &'static str,
    pub projection: IndexProjection,
}

const fn index(
    name: &'static str,
    hash_key: &'static str,
    range_key: &'static str,
    projection: IndexProjection,
) -> IndexSpec {
    IndexSpec {
        name,
        hash_key,
        range_key,
        projection,
    }
}

/// A plain description of a table, for building it and for comparing it with the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    pub hash_key: &'static str,
    pub range_key: &'static str,
    pub indexes: Vec<IndexSpec>,
    /// The attribute DynamoDB's TTL deletes items by (epoch seconds); delivery records set it.
    pub ttl_attribute: Option<&'static str>,
}

/// The main table of the service.
pub fn main_table() -> TableSpec {
    TableSpec {
        hash_key: PK,
        range_key: SK,
        indexes: vec![
            index(GSI1, GSI1_PK, GSI1_SK, IndexProjection::All),
            index(GSI2, GSI2_PK, GSI2_SK, IndexProjection::All),
            index(
                SEARCH_TENANT,
                SEARCH_TENANT_PK,
                SEARCH_SK,
                IndexProjection::KeysOnly,
            ),
            index(
                SEARCH_EVENT,
                SEARCH_EVENT_PK,
                SEARCH_SK,
                IndexProjection::KeysOnly,
            ),
            index(
                SEARCH_WEBHOOK,
                SEARCH_WEBHOOK_PK,
                SEARCH_SK,
                IndexProjection::KeysOnly,
            ),
            index(
                SEARCH_WEBHOOK_EVENT,
                SEARCH_WEBHOOK_EVENT_PK,
                SEARCH_SK,
                IndexProjection::KeysOnly,
            ),
            index(
                LAST_SYNC,
                LAST_SYNC_PK,
                LAST_SYNC_SK,
                IndexProjection::KeysOnly,
            ),
        ],
        ttl_attribute: Some(TTL),
    }
}

fn key_schema(hash: &str, range: &str) -> Result<Vec<KeySchemaElement>> {
    let element = |name: &str, key_type| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .map_err(Error::internal)
    };
    Ok(vec![
        element(hash, KeyType::Hash)?,
        element(range, KeyType::Range)?,
    ])
}

/// Creates the table if it does not exist and waits until it and its indexes are ACTIVE.
pub async fn create_table(client: &DynamoClient, name: &str, spec: &TableSpec) -> Result<()> {
    let mut attributes = vec![spec.hash_key, spec.range_key];
    for index in &spec.indexes {
        for key in [index.hash_key, index.range_key] {
            // The search indexes share their sort key: declared once.
            if !attributes.contains(&key) {
                attributes.push(key);
            }
        }
    }
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(spec.hash_key, spec.range_key)?));
    for attribute in attributes {
        request = request.attribute_definitions(attribute_definition(attribute)?);
    }
    for index in &spec.indexes {
        request = request.global_secondary_indexes(global_index(index)?);
    }
    let mut existed = false;
    if let Err(error) = request.send().await {
        existed = error
            .as_service_error()
            .is_some_and(|e| e.is_resource_in_use_exception());
        if !existed {
            return Err(sdk_error(error));
        }
    }
    wait_until_active(client, name).await?;
    if existed {
        add_missing_indexes(client, name, spec).await?;
    }
    if let Some(attribute) = spec.ttl_attribute {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(attribute)
                    .build()
                    .map_err(Error::internal)?,
            )
            .send()
            .await
            .map_err(sdk_error)?;
    }
    Ok(())
}

fn attribute_definition(name: &str) -> Result<AttributeDefinition> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(Error::internal)
}

fn projection(index: &IndexSpec) -> Projection {
    let projection = match index.projection {
        IndexProjection::All => ProjectionType::All,
        IndexProjection::KeysOnly => ProjectionType::KeysOnly,
    };
    Projection::builder().projection_type(projection).build()
}

fn global_index(index: &IndexSpec) -> Result<GlobalSecondaryIndex> {
    GlobalSecondaryIndex::builder()
        .index_name(index.name)
        .set_key_schema(Some(key_schema(index.hash_key, index.range_key)?))
        .projection(projection(index))
        .build()
        .map_err(Error::internal)
}

/// A table made by an earlier version lacks the indexes added since: each is created, one
/// UpdateTable at a time (DynamoDB builds one new index per update), waiting for it to be
/// ACTIVE (backfilled) before the next.
async fn add_missing_indexes(client: &DynamoClient, name: &str, spec: &TableSpec) -> Result<()> {
    let table = client
        .describe_table()
        .table_name(name)
        .send()
        .await
        .map_err(sdk_error)?
        .table;
    let present: Vec<String> = table
        .iter()
        .flat_map(|table| table.global_secondary_indexes())
        .filter_map(|index| index.index_name().map(str::to_owned))
        .collect();
    for index in &spec.indexes {
        if present.iter().any(|name| name == index.name) {
            continue;
        }
        let create = CreateGlobalSecondaryIndexAction::builder()
            .index_name(index.name)
            .set_key_schema(Some(key_schema(index.hash_key, index.range_key)?))
            .projection(projection(index))
            .build()
            .map_err(Error::internal)?;
        client
            .update_table()
            .table_name(name)
            .attribute_definitions(attribute_definition(index.hash_key)?)
            .attribute_definitions(attribute_definition(index.range_key)?)
            .global_secondary_index_updates(
                GlobalSecondaryIndexUpdate::builder().create(create).build(),
            )
            .send()
            .await
            .map_err(sdk_error)?;
        wait_until_active(client, name).await?;
    }
    Ok(())
}

async fn wait_until_active(client: &DynamoClient, name: &str) -> Result<()> {
    for _ in 0..120 {
        let table = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(sdk_error)?
            .table;
        let active = table.as_ref().is_some_and(|table| {
            table.table_status() == Some(&TableStatus::Active)
                && table
                    .global_secondary_indexes()
                    .iter()
                    .all(|index| index.index_status().is_none_or(|s| s.as_str() == "ACTIVE"))
        });
        if active {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(Error::internal(format!(
        "table {name} did not become ACTIVE"
    )))
}
