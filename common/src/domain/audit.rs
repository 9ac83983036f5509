//! The audit log: who changed a tenant's webhooks and keys, or asked for its deliveries to be
//! sent again, and when. One entry per management action, written with the change where the
//! store can (the same transaction), never holding a secret or a key.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::auth::Caller;
use super::delivery_search::id_bound;
use super::sync_history::sequenced_id;

/// What was done, by the name `GET /api/audit?action=` filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, utoipa::ToSchema)]
pub enum AuditAction {
    #[schema(rename = "tenant.create")]
    TenantCreate,
    #[schema(rename = "key.create")]
    KeyCreate,
    #[schema(rename = "key.delete")]
    KeyDelete,
    #[schema(rename = "webhook.create")]
    WebhookCreate,
    #[schema(rename = "webhook.update")]
    WebhookUpdate,
    #[schema(rename = "webhook.delete")]
    WebhookDelete,
    #[schema(rename = "webhook.rotate_secret")]
    WebhookRotateSecret,
    #[schema(rename = "webhook.test")]
    WebhookTest,
    #[schema(rename = "webhook.recover")]
    WebhookRecover,
    #[schema(rename = "webhook.replay")]
    WebhookReplay,
    #[schema(rename = "deliveries.retry")]
    DeliveriesRetry,
    #[schema(rename = "delivery.resend")]
    DeliveryResend,
}

impl AuditAction {
    pub const ALL: [AuditAction; 12] = [
        AuditAction::TenantCreate,
        AuditAction::KeyCreate,
        AuditAction::KeyDelete,
        AuditAction::WebhookCreate,
        AuditAction::WebhookUpdate,
        AuditAction::WebhookDelete,
        AuditAction::WebhookRotateSecret,
        AuditAction::WebhookTest,
        AuditAction::WebhookRecover,
        AuditAction::WebhookReplay,
        AuditAction::DeliveriesRetry,
        AuditAction::DeliveryResend,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::TenantCreate => "tenant.create",
            AuditAction::KeyCreate => "key.create",
            AuditAction::KeyDelete => "key.delete",
            AuditAction::WebhookCreate => "webhook.create",
            AuditAction::WebhookUpdate => "webhook.update",
            AuditAction::WebhookDelete => "webhook.delete",
            AuditAction::WebhookRotateSecret => "webhook.rotate_secret",
            AuditAction::WebhookTest => "webhook.test",
            AuditAction::WebhookRecover => "webhook.recover",
            AuditAction::WebhookReplay => "webhook.replay",
            AuditAction::DeliveriesRetry => "deliveries.retry",
            AuditAction::DeliveryResend => "delivery.resend",
        }
    }

    pub fn parse(text: &str) -> Option<AuditAction> {
        AuditAction::ALL
            .into_iter()
            .find(|action| action.as_str() == text)
    }
}

impl Serialize for AuditAction {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Who acted: the API key, by id and by the name it had then (a key deleted since keeps its
/// name here), or, with no key, the tool that did (`crm-admin`, `crm-local`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    /// Null for an action no key made (a tenant created by `crm-admin` or by crm-local).
    pub key_id: Option<Uuid>,
    pub key_name: String,
}

impl Actor {
    pub fn key(caller: &Caller) -> Actor {
        Actor {
            key_id: Some(caller.key_id),
            key_name: caller.key_name.to_string(),
        }
    }

    /// An action of a tool run by whoever runs the deployment, not of an API key.
    pub fn tool(name: &str) -> Actor {
        Actor {
            key_id: None,
            key_name: name.to_owned(),
        }
    }
}

/// One management action.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// UUIDv7 of `at`: newest first is highest id first.
    pub id: Uuid,
    #[serde(skip)]
    pub tenant_id: Uuid,
    #[serde(serialize_with = "crate::time::serde_millis::serialize")]
    pub at: DateTime<Utc>,
    pub action: AuditAction,
    pub actor: Actor,
    /// What the action was done to: a webhook, a key, a delivery or the tenant.
    pub target_id: Uuid,
    /// The fields the action set, with their new values as a key without `WEBHOOK_UPDATE`
    /// would read them (header values masked); never a secret or a key. A secret rotated is
    /// named with the value `"********"`. Empty for a deletion.
    #[schema(value_type = Object)]
    pub changes: Map<String, Value>,
}

/// Ids of one process's entries made in one millisecond still sort in the order they were
/// made: each carries the next number of this count.
static ORDER: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// What a secret, a key or a header value reads as in `changes`.
pub const MASK: &str = "********";

impl AuditEntry {
    pub fn new(
        tenant_id: Uuid,
        actor: Actor,
        action: AuditAction,
        target_id: Uuid,
        changes: Map<String, Value>,
        at: DateTime<Utc>,
    ) -> AuditEntry {
        let sequence = ORDER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        AuditEntry {
            id: sequenced_id(at, sequence),
            tenant_id,
            // Kept to the millisecond, as its id and both stores keep it.
            at: DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at),
            action,
            actor,
            target_id,
            changes,
        }
    }
}

/// The fields of `after` that differ from `before` (all of them for a creation), with their
/// values in `after`. Both are the JSON of what a user reads, secrets already left out.
pub fn changed_fields(before: Option<&Value>, after: &Value) -> Map<String, Value> {
    let Some(after) = after.as_object() else {
        return Map::new();
    };
    after
        .iter()
        .filter(|(name, value)| before.and_then(|before| before.get(name.as_str())) != Some(value))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// A page of a tenant's audit log: newest first, between `since` (included) and `until`
/// (excluded), of one action when given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub action: Option<AuditAction>,
}

impl AuditQuery {
    /// The ids of the entries made in `[since, until)`, as a range `[low, high)`: ids are UUIDv7
    /// of their entries' times, to the millisecond (a bound within one rounds up).
    pub fn id_range(&self) -> (Uuid, Uuid) {
        (
            self.since.map(id_bound).unwrap_or(Uuid::nil()),
            self.until.map(id_bound).unwrap_or(Uuid::max()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_action_reads_back_from_its_wire_name() {
        for action in AuditAction::ALL {
            assert_eq!(AuditAction::parse(action.as_str()), Some(action));
            assert_eq!(json!(action), json!(action.as_str()));
        }
        assert_eq!(AuditAction::parse("webhook.explode"), None);
    }

    #[test]
    fn changed_fields_are_those_set_to_a_new_value() {
        let before = json!({"url": "https://a.example", "events": ["x"], "description": "d"});
        let after = json!({"url": "https://b.example", "events": ["x"], "description": null});
        let changed = changed_fields(Some(&before), &after);
        assert_eq!(
            Value::Object(changed),
            json!({"url": "https://b.example", "description": null})
        );
        let created = changed_fields(None, &after);
        assert_eq!(created.len(), 3);
    }

    #[test]
    fn ids_sort_as_their_times() {
        let tenant = Uuid::now_v7();
        let t0 = Utc::now();
        let earlier = AuditEntry::new(
            tenant,
            Actor::tool("crm-admin"),
            AuditAction::TenantCreate,
            tenant,
            Map::new(),
            t0,
        );
        let later = AuditEntry::new(
            tenant,
            Actor::tool("crm-admin"),
            AuditAction::TenantCreate,
            tenant,
            Map::new(),
            t0 + chrono::TimeDelta::milliseconds(1),
        );
        assert!(earlier.id < later.id);
    }
}
