//! The audit log's entries as the use cases make them, and its listing (`GET /api/audit`,
//! GraphQL `auditLog`), for ADMINs only.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::input::Input;
use crate::domain::audit::{changed_fields, Actor, AuditAction, AuditEntry, AuditQuery, MASK};
use crate::domain::auth::{Caller, Permission, Role};
use crate::domain::delivery_search::SINCE_AFTER_UNTIL;
use crate::domain::page::{Page, PageRequest};
use crate::domain::validation::{one_of, FieldErrors};
use crate::domain::webhook::Webhook;
use crate::error::{Error, Result};
use crate::service::deps::Deps;

/// A page of the audit log as asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditListing {
    pub query: AuditQuery,
    pub page: PageRequest,
}

impl AuditListing {
    /// A listing from a face: `errors` holds what the face could not read (a time that is
    /// none, a limit that is no number), `page` is read by the face with its own names. One
    /// 400 names every bad field.
    pub fn new(
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        action: Option<&str>,
        page: Result<PageRequest>,
        mut errors: FieldErrors,
    ) -> Result<AuditListing> {
        if since.zip(until).is_some_and(|(since, until)| since > until) {
            errors.fail("since", SINCE_AFTER_UNTIL);
        }
        let action = action.and_then(|text| {
            let action = AuditAction::parse(text.trim());
            if action.is_none() {
                errors.fail("action", one_of(&AuditAction::ALL.map(AuditAction::as_str)));
            }
            action
        });
        let page = match page {
            Ok(page) => Some(page),
            Err(error) => {
                errors.absorb(error)?;
                None
            }
        };
        errors.finish()?;
        let page = page.ok_or_else(|| Error::internal("a page refused without a reason"))?;
        Ok(AuditListing {
            query: AuditQuery {
                since,
                until,
                action,
            },
            page,
        })
    }
}

/// The entry of `action` on `target_id` by the calling key, made now.
pub fn entry(
    deps: &Deps,
    caller: &Caller,
    action: AuditAction,
    target_id: Uuid,
    changes: Map<String, Value>,
) -> AuditEntry {
    AuditEntry::new(
        caller.tenant_id,
        Actor::key(caller),
        action,
        target_id,
        changes,
        deps.clock.now(),
    )
}

/// Records an action that is not one write of the store (a test send, a recovery, a replay, a
/// retry): once it is done, so an entry says it happened.
pub async fn record(
    deps: &Deps,
    caller: &Caller,
    action: AuditAction,
    target_id: Uuid,
    changes: Map<String, Value>,
) -> Result<()> {
    let entry = entry(deps, caller, action, target_id, changes);
    deps.store.append_audit(&entry).await
}

/// The settings of a webhook a user sets, as a key that may not change webhooks reads them
/// (header values masked); never its secret, its health or its times.
const WEBHOOK_SETTINGS: [&str; 9] = [
    "url",
    "description",
    "events",
    "headers",
    "active",
    "maxRetries",
    "retrySchedule",
    "timeoutMs",
    "rateLimitPerSecond",
];

fn webhook_settings(webhook: &Webhook) -> Value {
    let seen = serde_json::to_value(webhook.clone().as_seen_by(Role::ReadOnly));
    let mut settings = Map::new();
    if let Ok(Value::Object(mut fields)) = seen {
        for name in WEBHOOK_SETTINGS {
            if let Some(value) = fields.remove(name) {
                settings.insert(name.to_owned(), value);
            }
        }
    }
    Value::Object(settings)
}

/// The settings a change of a webhook set (all of them at its creation).
pub fn webhook_changes(before: Option<&Webhook>, after: &Webhook) -> Map<String, Value> {
    let before = before.map(webhook_settings);
    changed_fields(before.as_ref(), &webhook_settings(after))
}

/// A rotation names the secret, never its value.
pub fn secret_rotated() -> Map<String, Value> {
    Map::from_iter([("secret".to_owned(), Value::from(MASK))])
}

/// Fields given as they are (a key's name and role, a request's parameters).
pub fn fields<const N: usize>(fields: [(&str, Value); N]) -> Map<String, Value> {
    fields
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

/// `GET /api/audit`: ADMIN only (`AUDIT_READ`).
pub async fn list_audit(
    deps: &Deps,
    caller: &Caller,
    listing: impl Input<AuditListing>,
) -> Result<Page<AuditEntry>> {
    caller.require(Permission::AuditRead)?;
    let AuditListing { query, page } = listing.read()?;
    deps.store.list_audit(caller.tenant_id, &query, page).await
}
