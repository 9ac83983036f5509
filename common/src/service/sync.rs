//! Seed 000's sync endpoints: the O(1) summary and the status update.

use serde_json::Value;
use uuid::Uuid;

use super::clients::{load, write};
use super::retry_on_conflict;
use crate::domain::auth::{Caller, Permission};
use crate::domain::event::OutboxEvent;
use crate::domain::sync_status::{SyncCounts, SyncStatus};
use crate::domain::validation::{parse_json, Fields};
use crate::error::Result;
use crate::service::deps::Deps;

pub async fn sync_status(deps: &Deps, caller: &Caller) -> Result<SyncCounts> {
    caller.require(Permission::SyncRead)?;
    deps.store.sync_counts(caller.tenant_id).await
}

/// Seed 000's `UpdateSyncStatusRequest` as the OpenAPI document shows it: what
/// `SyncStatusUpdate::parse` accepts.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"clientId": "0193b2c4-5d6e-7f80-9a1b-2c3d4e5f6a7b", "status": "SYNCED"}))]
#[allow(dead_code)] // a description of the body, never built
pub struct UpdateSyncStatusRequest {
    #[schema(schema_with = client_id_schema)]
    client_id: String,
    status: SyncStatus,
}

fn client_id_schema() -> utoipa::openapi::Object {
    crate::domain::validation::schema::uuid().build()
}

/// Seed 000's `UpdateSyncStatusRequest`, validated field by field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncStatusUpdate {
    pub client_id: Uuid,
    pub status: SyncStatus,
}

impl SyncStatusUpdate {
    pub fn parse(body: &Value) -> Result<SyncStatusUpdate> {
        let mut fields = Fields::of(body)?;
        let client_id = fields.required_string("clientId", 64).and_then(|text| {
            let parsed = Uuid::parse_str(&text).ok();
            if parsed.is_none() {
                fields.fail("clientId", "must be a UUID");
            }
            parsed
        });
        let status = fields.required_string("status", 32).and_then(|text| {
            let parsed = SyncStatus::parse(&text);
            if parsed.is_none() {
                fields.fail(
                    "status",
                    "must be one of SYNCED, PENDING, FAILED, NEEDS_UPDATE",
                );
            }
            parsed
        });
        fields.finish()?;
        match (client_id, status) {
            (Some(client_id), Some(status)) => Ok(SyncStatusUpdate { client_id, status }),
            _ => Err(crate::error::Error::invalid("Validation failed.")),
        }
    }
}

/// Moves a client to a status; emits `sync.status.changed` only when the status really changes.
pub async fn update_sync_status(deps: &Deps, caller: &Caller, body: &[u8]) -> Result<()> {
    caller.require(Permission::SyncUpdate)?;
    let update = SyncStatusUpdate::parse(&parse_json(body)?)?;
    retry_on_conflict(|| async {
        let before = load(deps, caller, update.client_id).await?;
        let now = deps.clock.now();
        let Some(after) = before.with_status(update.status, now) else {
            return Ok(());
        };
        let event =
            OutboxEvent::sync_status_changed(&after, before.sync_status, after.sync_status, now);
        write(deps, caller, Some(before), Some(after), vec![event], now).await
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use serde_json::json;

    #[test]
    fn parses_the_seed_request() {
        let id = Uuid::now_v7();
        let update =
            SyncStatusUpdate::parse(&json!({"clientId": id.to_string(), "status": "SYNCED"}))
                .unwrap();
        assert_eq!(update.client_id, id);
        assert_eq!(update.status, SyncStatus::Synced);
    }

    #[test]
    fn names_each_bad_field() {
        let Err(Error::Invalid { details, .. }) =
            SyncStatusUpdate::parse(&json!({"clientId": "nope", "status": "DONE"}))
        else {
            panic!("expected a validation error");
        };
        assert_eq!(details["clientId"], "must be a UUID");
        assert!(details["status"].starts_with("must be one of"));
    }
}
