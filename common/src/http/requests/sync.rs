//! The body of `POST /api/crm/update-sync-status` (one update, seed 000's, or a batch of them):
//! how it reads into its command, how a batch's answer is shaped, and how the OpenAPI document
//! describes both.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::domain::sync_status::{
    BatchEntry, SyncStatus, SyncStatusBatch, SyncStatusUpdate, BATCH_MAX, SYNC_ERROR_CODE_MAX,
    SYNC_ERROR_MAX,
};
use crate::error::{Error, Result};
use crate::http::error::status_of_core;
use crate::http::fields::{one_of, Fields};
use crate::http::schema;
use crate::json_body::parse_json;
use crate::reply::public_message;
use crate::service::input::Input;
use crate::service::sync::BatchResult;

/// Seed 000's `UpdateSyncStatusRequest`, with a failure's optional reason.
pub struct UpdateBody<'a>(pub &'a [u8]);

/// `{"updates": [...]}`: many updates, each answered on its own.
pub struct BatchBody<'a>(pub &'a [u8]);

/// Whether the body is a batch: an object with `updates`. Anything else reads as one update
/// (and a body that is not JSON is refused there, after the caller's permission is checked).
pub fn is_batch(body: &[u8]) -> bool {
    parse_json(body).is_ok_and(|body| body.get("updates").is_some())
}

impl Input<SyncStatusUpdate> for UpdateBody<'_> {
    fn read(self) -> Result<SyncStatusUpdate> {
        read_update(&parse_json(self.0)?)
    }
}

fn read_update(body: &Value) -> Result<SyncStatusUpdate> {
    let mut fields = Fields::of(body)?;
    let client_id = fields.required_uuid("clientId");
    let status = fields.required_string("status").and_then(|text| {
        let status = SyncStatus::parse(text.trim());
        if status.is_none() {
            fields.fail("status", one_of(&SyncStatus::ALL.map(SyncStatus::as_str)));
        }
        status
    });
    let error = fields.optional_string("error");
    let error_code = fields.optional_string("errorCode");
    let update = client_id
        .zip(status)
        .map(|(client_id, status)| SyncStatusUpdate {
            client_id,
            status,
            error,
            error_code,
        });
    fields.command(update)
}

impl Input<SyncStatusBatch> for BatchBody<'_> {
    fn read(self) -> Result<SyncStatusBatch> {
        let body = parse_json(self.0)?;
        let mut fields = Fields::of(&body)?;
        let items = match fields.any("updates") {
            Some(Value::Array(items)) => Some(items),
            Some(Value::Null) | None => {
                fields.fail("updates", "is required");
                None
            }
            Some(_) => {
                fields.fail("updates", "must be an array of updates");
                None
            }
        };
        let batch = items.map(|items| SyncStatusBatch {
            entries: items.iter().map(read_entry).collect(),
        });
        fields.command(batch)
    }
}

fn read_entry(item: &Value) -> BatchEntry {
    let client_id = item
        .get("clientId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let update = if item.is_object() {
        read_update(item)
    } else {
        Err(Error::invalid("Each update must be a JSON object."))
    };
    BatchEntry { client_id, update }
}

/// The answer to a batch: one result per update, in the batch's order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"success": true, "results": [
    {"clientId": "0193b2c4-5d6e-7f80-9a1b-2c3d4e5f6a7b", "ok": true, "status": "FAILED", "changed": true},
    {"clientId": "0193b2c4-5d6e-7f80-9a1b-2c3d4e5f6a7c", "ok": false, "statusCode": 404, "error": "Client not found."},
    {"clientId": "nope", "ok": false, "statusCode": 400, "error": "Validation failed.", "details": {"clientId": "must be a UUID"}}
]}))]
pub struct BatchAnswer {
    /// True: the batch was read (each entry says how it went).
    pub success: bool,
    pub results: Vec<BatchResultEntry>,
}

/// What one update of a batch did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum BatchResultEntry {
    Applied(AppliedEntry),
    Refused(RefusedEntry),
}

/// An update that was applied (or that changed nothing: `changed` false).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppliedEntry {
    #[schema(schema_with = client_id_schema)]
    pub client_id: String,
    /// Always true.
    pub ok: bool,
    /// The client's status now.
    pub status: SyncStatus,
    /// Whether the status changed (and `sync.status.changed` was emitted).
    pub changed: bool,
}

/// An update that was refused; the others of the batch went on.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefusedEntry {
    /// The `clientId` as sent; null when it was not a string.
    pub client_id: Option<String>,
    /// Always false.
    pub ok: bool,
    /// The status the same update alone would have answered: 400, 404, 409 or 500.
    pub status_code: u16,
    /// The sentence the same update alone would have answered.
    pub error: String,
    /// One message per bad field, on a 400.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<BTreeMap<String, String>>,
}

pub fn batch_answer(results: Vec<BatchResult>) -> BatchAnswer {
    let results = results
        .into_iter()
        .map(|result| match result.outcome {
            Ok(applied) => BatchResultEntry::Applied(AppliedEntry {
                client_id: applied.client.id.to_string(),
                ok: true,
                status: applied.client.sync_status,
                changed: applied.changed,
            }),
            Err(error) => {
                if let Error::Internal(cause) = &error {
                    tracing::error!(error = %cause, "internal error in a batch's update");
                }
                let details = match &error {
                    Error::Invalid { details, .. } if !details.is_empty() => Some(details.clone()),
                    _ => None,
                };
                BatchResultEntry::Refused(RefusedEntry {
                    client_id: result.client_id,
                    ok: false,
                    status_code: status_of_core(&error).as_u16(),
                    error: public_message(&error),
                    details,
                })
            }
        })
        .collect();
    BatchAnswer {
        success: true,
        results,
    }
}

/// Seed 000's `UpdateSyncStatusRequest`; `error` and `errorCode` only with `FAILED`.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"clientId": "0193b2c4-5d6e-7f80-9a1b-2c3d4e5f6a7b", "status": "SYNCED"}))]
#[allow(dead_code)] // a description of the body, never built
pub struct UpdateSyncStatusRequest {
    #[schema(schema_with = client_id_schema)]
    client_id: String,
    status: SyncStatus,
    /// Why the sync failed (FAILED only); kept as the client's `lastSyncError`.
    #[schema(schema_with = error_schema)]
    error: Option<String>,
    /// A code for the failure (FAILED only); kept as the client's `lastSyncErrorCode`.
    #[schema(schema_with = error_code_schema)]
    error_code: Option<String>,
}

/// Up to 500 updates, each applied on its own and answered in order.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"updates": [
    {"clientId": "0193b2c4-5d6e-7f80-9a1b-2c3d4e5f6a7b", "status": "FAILED", "error": "CRM answered 503", "errorCode": "CRM_UNAVAILABLE"},
    {"clientId": "0193b2c4-5d6e-7f80-9a1b-2c3d4e5f6a7c", "status": "SYNCED"}
]}))]
#[allow(dead_code)] // a description of the body, never built
pub struct UpdateSyncStatusesRequest {
    #[schema(schema_with = batch_entries_schema)]
    updates: Vec<Value>,
}

/// Up to 500 entries, each an update or any other value: the batch reads entries one by one and
/// refuses a bad one in its own result, so no entry makes the request itself invalid.
fn batch_entries_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{AnyOfBuilder, ArrayBuilder, ObjectBuilder, Schema, SchemaType};
    use utoipa::openapi::{Ref, RefOr};
    let anything = ObjectBuilder::new()
        .schema_type(SchemaType::AnyValue)
        .build();
    let entry = AnyOfBuilder::new()
        .item(Ref::from_schema_name("UpdateSyncStatusRequest"))
        .item(RefOr::T(Schema::Object(anything)))
        .build();
    ArrayBuilder::new()
        .items(RefOr::T(Schema::AnyOf(entry)))
        .max_items(Some(BATCH_MAX))
        .description(Some(
            "Each an update as in the single form. Entries are read one by one: one that is \
             not a valid update (not an object, a malformed id, an unknown status) is refused \
             in its own result with statusCode 400, never the batch.",
        ))
        .build()
}

fn client_id_schema() -> utoipa::openapi::Object {
    schema::uuid().build()
}

fn error_schema() -> utoipa::openapi::Object {
    schema::nullable(schema::text(SYNC_ERROR_MAX))
}

fn error_code_schema() -> utoipa::openapi::Object {
    schema::nullable(
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(SYNC_ERROR_CODE_MAX))
            .pattern(Some("^[A-Za-z0-9_.-]+$")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::fields::details;
    use uuid::Uuid;

    fn update(body: &[u8]) -> Result<SyncStatusUpdate> {
        UpdateBody(body).read()
    }

    fn batch(body: &[u8]) -> Result<SyncStatusBatch> {
        BatchBody(body).read()
    }

    #[test]
    fn reads_the_seed_request() {
        let id = Uuid::now_v7();
        let body = format!(r#"{{"clientId": "{id}", "status": "SYNCED"}}"#);
        let update = update(body.as_bytes()).unwrap();
        assert_eq!(update.client_id, id);
        assert_eq!(update.status, SyncStatus::Synced);
        assert_eq!(update.error, None);
    }

    #[test]
    fn names_each_bad_field() {
        let found = details(update(
            br#"{"clientId": "nope", "status": "DONE", "errorCode": 5}"#,
        ));
        assert_eq!(found["clientId"], "must be a UUID");
        assert_eq!(
            found["status"],
            "must be one of SYNCED, PENDING, FAILED, NEEDS_UPDATE"
        );
        assert_eq!(found["errorCode"], "must be a string");
    }

    #[test]
    fn tells_a_batch_from_one_update() {
        assert!(is_batch(br#"{"updates": []}"#));
        assert!(is_batch(br#"{"updates": 5}"#));
        assert!(!is_batch(br#"{"clientId": "x", "status": "SYNCED"}"#));
        assert!(!is_batch(b"not json"));
    }

    #[test]
    fn a_batch_reads_each_entry_on_its_own() {
        let id = Uuid::now_v7();
        let body = format!(
            r#"{{"updates": [{{"clientId": "{id}", "status": "FAILED", "error": "boom"}}, {{"clientId": "nope", "status": "SYNCED"}}, 7]}}"#
        );
        let entries = batch(body.as_bytes()).unwrap().entries;
        assert_eq!(entries.len(), 3);
        let first = entries[0].update.as_ref().unwrap();
        assert_eq!(first.error.as_deref(), Some("boom"));
        assert_eq!(entries[1].client_id.as_deref(), Some("nope"));
        assert!(entries[1].update.is_err());
        assert_eq!(entries[2].client_id, None);
        assert!(entries[2].update.is_err());
    }

    #[test]
    fn a_batch_that_is_no_array_is_refused_whole() {
        let found = details(batch(br#"{"updates": {"clientId": "x"}}"#));
        assert_eq!(found["updates"], "must be an array of updates");
        let found = details(batch(br#"{"updates": [], "clientId": "x"}"#));
        assert_eq!(found["clientId"], "is not a known field");
    }
}
