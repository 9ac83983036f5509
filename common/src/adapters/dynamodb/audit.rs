//! The audit log (`AuditStore`): an item per entry in its tenant's partition, sorted by id
//! (`AUDIT#<id>`, UUIDv7: by time), so a page is one range of one partition read backwards. The
//! management writes add `DynamoStore::audit_put` to their transaction. Each entry carries its
//! expiry for the table's TTL, as the rest of the tenant's history does.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::TransactWriteItem;
use uuid::Uuid;

use super::attributes::*;
use super::paging::{read_query, Reading};
use super::tables::{PK, SK, TTL};
use super::{tenant_pk, Condition, DynamoStore};
use crate::domain::audit::{Actor, AuditAction, AuditEntry, AuditQuery};
use crate::domain::page::{Page, PageRequest, FILTER_SCAN_LIMIT};
use crate::error::{Error, Result};
use crate::ports::AuditStore;
use crate::time::rfc3339;

const AUDIT_SK_PREFIX: &str = "AUDIT#";

fn audit_sk(id: Uuid) -> String {
    format!("{AUDIT_SK_PREFIX}{id}")
}

fn audit_item(entry: &AuditEntry, expires_at: i64) -> Result<Item> {
    let mut item = key(tenant_pk(entry.tenant_id), audit_sk(entry.id));
    item.insert("id".into(), text(entry.id.to_string()));
    item.insert("tenant_id".into(), text(entry.tenant_id.to_string()));
    item.insert("at".into(), text(rfc3339(entry.at)));
    item.insert("action".into(), text(entry.action.as_str()));
    put_optional(
        &mut item,
        "actor_key_id",
        entry.actor.key_id.map(|id| id.to_string()),
    );
    item.insert("actor_key_name".into(), text(&entry.actor.key_name));
    item.insert("target_id".into(), text(entry.target_id.to_string()));
    let changes = serde_json::to_string(&entry.changes).map_err(Error::internal)?;
    item.insert("changes".into(), text(changes));
    item.insert(TTL.into(), number(expires_at));
    Ok(item)
}

fn audit_from_item(item: &Item) -> Result<AuditEntry> {
    let action = text_of(item, "action")?;
    Ok(AuditEntry {
        id: uuid_of(item, "id")?,
        tenant_id: uuid_of(item, "tenant_id")?,
        at: time_of(item, "at")?,
        action: AuditAction::parse(action).ok_or_else(|| corrupt("action"))?,
        actor: Actor {
            key_id: optional_text(item, "actor_key_id")
                .map(|id| Uuid::parse_str(&id).map_err(|_| corrupt("actor_key_id")))
                .transpose()?,
            key_name: text_of(item, "actor_key_name")?.to_owned(),
        },
        target_id: uuid_of(item, "target_id")?,
        changes: serde_json::from_str(text_of(item, "changes")?).map_err(|_| corrupt("changes"))?,
    })
}

impl DynamoStore {
    /// The entry's Put in a management write's transaction, when there is one to write.
    pub(super) fn audit_put(&self, entry: Option<&AuditEntry>) -> Result<Vec<TransactWriteItem>> {
        entry
            .map(|entry| {
                let expires_at = self.retention.expiry(entry.at).timestamp();
                self.put(audit_item(entry, expires_at)?, Some(Condition::new_item()))
            })
            .into_iter()
            .collect()
    }
}

#[async_trait]
impl AuditStore for DynamoStore {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        let items = self.audit_put(Some(entry))?;
        self.transact(items, "append audit entry").await
    }

    /// One range of the partition, newest first; an action is a filter on it, so a page of a
    /// rare action may be short (or empty) and still have a next cursor: at most
    /// `FILTER_SCAN_LIMIT` entries are read per request.
    async fn list_audit(
        &self,
        tenant_id: Uuid,
        query: &AuditQuery,
        page: PageRequest,
    ) -> Result<Page<AuditEntry>> {
        let (low, high) = query.id_range();
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :low AND :high")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", text(tenant_pk(tenant_id)))
            .expression_attribute_values(":low", text(audit_sk(low)))
            // BETWEEN includes its end: `high` (`id_range`) is below every id made in `until`'s
            // millisecond, and no id is it.
            .expression_attribute_values(":high", text(audit_sk(high)))
            .scan_index_forward(false)
            .consistent_read(true);
        let reading = match query.action {
            Some(action) => {
                request = request
                    .filter_expression("#action = :action")
                    .expression_attribute_names("#action", "action")
                    .expression_attribute_values(":action", text(action.as_str()));
                Reading::first_among(page.limit + 1, FILTER_SCAN_LIMIT)
            }
            None => Reading::first(page.limit + 1),
        };
        // A cursor from a list with other bounds: what is left of the range below it, as on
        // SQLite. DynamoDB refuses a start key outside the key condition's range.
        let start = match page.after {
            Some(after) if after <= low => {
                return Ok(Page {
                    items: Vec::new(),
                    next_cursor: None,
                })
            }
            Some(after) if after < high => Some(key(tenant_pk(tenant_id), audit_sk(after))),
            _ => None,
        };
        let read = read_query(&request, start, reading).await?;
        let mut entries = read
            .items
            .iter()
            .map(audit_from_item)
            .collect::<Result<Vec<_>>>()?;
        entries.truncate(page.limit + 1);
        let stopped_after = read
            .stopped_at
            .as_ref()
            .map(|item| text_of(item, SK))
            .transpose()?
            .and_then(|sk| sk.strip_prefix(AUDIT_SK_PREFIX))
            .and_then(|id| Uuid::parse_str(id).ok());
        Ok(Page::from_read(
            entries,
            page.limit,
            |e| e.id,
            stopped_after,
        ))
    }
}
