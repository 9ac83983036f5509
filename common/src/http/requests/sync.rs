//! The body of `POST /api/crm/sync-status`: how it reads into its command, and how the OpenAPI
//! document describes it.

use crate::domain::sync_status::{SyncStatus, SyncStatusUpdate};
use crate::error::Result;
use crate::http::fields::{one_of, Fields};
use crate::http::schema;
use crate::json_body::parse_json;
use crate::service::input::Input;

/// Seed 000's `UpdateSyncStatusRequest`.
pub struct UpdateBody<'a>(pub &'a [u8]);

impl Input<SyncStatusUpdate> for UpdateBody<'_> {
    fn read(self) -> Result<SyncStatusUpdate> {
        let body = parse_json(self.0)?;
        let mut fields = Fields::of(&body)?;
        let client_id = fields.required_uuid("clientId");
        let status = fields.required_string("status").and_then(|text| {
            let status = SyncStatus::parse(text.trim());
            if status.is_none() {
                fields.fail("status", one_of(&SyncStatus::ALL.map(SyncStatus::as_str)));
            }
            status
        });
        let update = client_id
            .zip(status)
            .map(|(client_id, status)| SyncStatusUpdate { client_id, status });
        fields.command(update)
    }
}

/// Seed 000's `UpdateSyncStatusRequest`.
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
    schema::uuid().build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::fields::details;
    use uuid::Uuid;

    fn update(body: &[u8]) -> Result<SyncStatusUpdate> {
        UpdateBody(body).read()
    }

    #[test]
    fn reads_the_seed_request() {
        let id = Uuid::now_v7();
        let body = format!(r#"{{"clientId": "{id}", "status": "SYNCED"}}"#);
        let update = update(body.as_bytes()).unwrap();
        assert_eq!(update.client_id, id);
        assert_eq!(update.status, SyncStatus::Synced);
    }

    #[test]
    fn names_each_bad_field() {
        let found = details(update(br#"{"clientId": "nope", "status": "DONE"}"#));
        assert_eq!(found["clientId"], "must be a UUID");
        assert_eq!(
            found["status"],
            "must be one of SYNCED, PENDING, FAILED, NEEDS_UPDATE"
        );
    }
}
