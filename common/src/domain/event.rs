//! Events written to the outbox in the same transaction as the change they describe.

use std::sync::{LazyLock, Mutex};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::{ContextV7, Timestamp, Uuid};

use super::catalogue::{is_known_event, is_service_event};
use super::client::Client;
use super::sync_status::SyncStatus;
use super::validation::FieldErrors;
use crate::error::Result;
use crate::time::rfc3339;

pub const CLIENT_CREATED: &str = "client.created";
pub const CLIENT_UPDATED: &str = "client.updated";
pub const CLIENT_DELETED: &str = "client.deleted";
pub const SYNC_STATUS_CHANGED: &str = "sync.status.changed";

/// Event ids carry 12 bits of time below the millisecond (RFC 9562, method 3), so the events of
/// a process, and the deliveries whose ids keep these bits, list in the order they happened even
/// when several fall in one millisecond.
static EVENT_IDS: LazyLock<Mutex<ContextV7>> =
    LazyLock::new(|| Mutex::new(ContextV7::new().with_additional_precision()));

/// The longest event name a notification may carry.
pub const EVENT_NAME_MAX: usize = 100;

/// Seed 000's notify: an event of the catalogue that happened in the CRM, with its data.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub event: String,
    pub data: Value,
    /// When the event happened; `None`: now.
    pub occurred_at: Option<DateTime<Utc>>,
}

impl Notification {
    /// The event of the outbox the notification becomes, once its name is one of the
    /// catalogue's (but `webhook.test`, which only a test delivery sends).
    pub fn into_event(self, tenant_id: Uuid, now: DateTime<Utc>) -> Result<OutboxEvent> {
        self.into_event_with(FieldErrors::default(), tenant_id, now)
    }

    /// `into_event`, failing with the problems already found in the command around it too.
    pub(crate) fn into_event_with(
        self,
        mut errors: FieldErrors,
        tenant_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<OutboxEvent> {
        let event = errors.text("event", &self.event, EVENT_NAME_MAX);
        if event
            .as_deref()
            .is_some_and(|e| !is_known_event(e) || is_service_event(e))
        {
            errors.fail("event", "must be an event of GET /api/webhooks/events");
        }
        errors.finish()?;
        let event = OutboxEvent::new(
            tenant_id,
            event.as_deref().unwrap_or_default(),
            self.data,
            now,
        );
        Ok(event.occurred(self.occurred_at.unwrap_or(now)))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub event: String,
    pub data: Value,
    /// When the event was written: it orders the outbox and the sweeper's work.
    pub created_at: DateTime<Utc>,
    /// When the event happened: the payload's `timestamp`. The same as `created_at` unless the
    /// caller of notify said otherwise (seed 000's `WebhookPayload.timestamp`).
    pub occurred_at: DateTime<Utc>,
}

impl OutboxEvent {
    pub fn new(tenant_id: Uuid, event: &str, data: Value, now: DateTime<Utc>) -> OutboxEvent {
        OutboxEvent {
            id: Uuid::new_v7(Timestamp::now(&*EVENT_IDS)),
            tenant_id,
            event: event.to_owned(),
            data,
            created_at: now,
            occurred_at: now,
        }
    }

    /// The same event, said to have happened at `at`.
    pub fn occurred(self, at: DateTime<Utc>) -> OutboxEvent {
        OutboxEvent {
            occurred_at: at,
            ..self
        }
    }

    pub fn client(event: &str, client: &Client, now: DateTime<Utc>) -> OutboxEvent {
        let data = serde_json::to_value(client).unwrap_or(Value::Null);
        OutboxEvent::new(client.tenant_id, event, data, now)
    }

    /// Seed 000's `sync.status.changed` payload; a change to `FAILED` adds its `error` and
    /// `errorCode`.
    pub fn sync_status_changed(
        client: &Client,
        old: SyncStatus,
        new: SyncStatus,
        now: DateTime<Utc>,
    ) -> OutboxEvent {
        let mut data = json!({
            "clientId": client.id,
            "oldStatus": old,
            "newStatus": new,
            "timestamp": rfc3339(now),
        });
        // Added to the seed's shape: a change to FAILED says why (null when the job did not).
        if new == SyncStatus::Failed {
            data["error"] = json!(client.last_sync_error);
            data["errorCode"] = json!(client.last_sync_error_code);
        }
        OutboxEvent::new(client.tenant_id, SYNC_STATUS_CHANGED, data, now)
    }
}
/// Events accepted from `since` (inclusive) until `until` (exclusive), as bounds on their
/// UUIDv7 ids, which begin with the millisecond they were made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRange {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

impl EventRange {
    /// Whether no event can fall in it (`until` not after `since`).
    pub fn is_empty(&self) -> bool {
        self.until <= self.since
    }

    /// The smallest id of an event accepted at `since`.
    pub fn first_id(&self) -> Uuid {
        id_bound(self.since, 0x00)
    }

    /// The largest id of an event accepted before `until`.
    pub fn last_id(&self) -> Uuid {
        id_bound(self.until - chrono::Duration::milliseconds(1), 0xff)
    }
}

/// A UUIDv7 of the millisecond of `at`, its random bits all `fill`.
fn id_bound(at: DateTime<Utc>, fill: u8) -> Uuid {
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    let mut id = *uuid::Builder::from_unix_timestamp_millis(millis, &[fill; 10])
        .into_uuid()
        .as_bytes();
    if fill == 0xff {
        // The version and variant bits stay as v7 has them; the rest of bytes 6 to 15 are set.
        id[6] |= 0x0f;
        id[8] |= 0x3f;
    }
    Uuid::from_bytes(id)
}
