//! Deliveries: one event to one webhook, its attempts, and the state machine between them.
//!
//! PENDING ─claim→ (leased) ─2xx→ SUCCESS
//!                          └─fail→ RETRYING (next attempt after the schedule's delay) ─…→ FAILED
//! A deleted or inactive webhook turns a delivery CANCELLED without a request.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::event::OutboxEvent;
use super::outcome::{SendOutcome, RESPONSE_BODY_LIMIT};
use super::validation::FieldErrors;
use crate::error::{Error, Result};
use crate::time::rfc3339;

/// The `apiVersion` of every payload.
pub const API_VERSION: &str = "2026-11-01";
/// docs/architecture.md §Limits: a payload is at most 256 KiB.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeliveryStatus {
    Pending,
    Success,
    Failed,
    Retrying,
    Cancelled,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 5] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Success,
        DeliveryStatus::Failed,
        DeliveryStatus::Retrying,
        DeliveryStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "PENDING",
            DeliveryStatus::Success => "SUCCESS",
            DeliveryStatus::Failed => "FAILED",
            DeliveryStatus::Retrying => "RETRYING",
            DeliveryStatus::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        DeliveryStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
    }

    /// Still owed an attempt.
    pub fn is_open(self) -> bool {
        matches!(self, DeliveryStatus::Pending | DeliveryStatus::Retrying)
    }
}

/// What the sweeper reads of a due delivery: what it decides on and what its requeue writes.
/// Small, because a sweep reads thousands, and without a payload, so it cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDelivery {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub lease_until: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl DueDelivery {
    pub fn is_leased(&self, now: DateTime<Utc>) -> bool {
        self.lease_until.is_some_and(|until| until > now)
    }

    /// The sweeper's claim on a stuck delivery (due long ago and not in flight): due now again.
    /// Only the schedule changes, so the sweeper never needs the rest of the delivery.
    pub fn requeued(&self, now: DateTime<Utc>) -> DueDelivery {
        DueDelivery {
            next_attempt_at: Some(now),
            lease_until: None,
            updated_at: now,
            version: self.version + 1,
            ..self.clone()
        }
    }
}

impl From<&Delivery> for DueDelivery {
    fn from(d: &Delivery) -> DueDelivery {
        DueDelivery {
            tenant_id: d.tenant_id,
            id: d.id,
            status: d.status,
            next_attempt_at: d.next_attempt_at,
            lease_until: d.lease_until,
            updated_at: d.updated_at,
            version: d.version,
        }
    }
}

/// A delivery with its payload: what the worker reads to send it. The API shows its summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub webhook_id: Uuid,
    /// The payload's `id` and the Standard Webhooks `webhook-id`: the same on every attempt.
    pub event_id: Uuid,
    pub event: String,
    /// The exact body sent, byte for byte, on every attempt: the event's, shared by all its
    /// deliveries (stored once, as an `EventPayload`).
    pub payload: Arc<str>,
    pub status: DeliveryStatus,
    pub attempt_count: u32,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// While set and in the future, a worker owns the attempt in progress.
    pub lease_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

// What lists and the API read of a delivery: everything but the payload (up to 256 KiB), so
// that a page never reads one, and a type that cannot be sent. In the OpenAPI document it is the
// `Delivery` (no payload was ever shown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Delivery)]
pub struct DeliverySummary {
    pub id: Uuid,
    #[serde(skip)]
    pub tenant_id: Uuid,
    pub webhook_id: Uuid,
    /// The payload's `id` and the Standard Webhooks `webhook-id`: the same on every attempt.
    pub event_id: Uuid,
    pub event: String,
    pub status: DeliveryStatus,
    pub attempt_count: u32,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    #[serde(serialize_with = "crate::time::serde_millis::option::serialize")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// While set and in the future, a worker owns the attempt in progress.
    #[serde(skip)]
    pub lease_until: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::time::serde_millis::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::serde_millis::serialize")]
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    pub version: i64,
}

impl DeliverySummary {
    /// The delivery this summary is of, with its payload.
    pub fn with_payload(self, payload: impl Into<Arc<str>>) -> Delivery {
        Delivery {
            id: self.id,
            tenant_id: self.tenant_id,
            webhook_id: self.webhook_id,
            event_id: self.event_id,
            event: self.event,
            payload: payload.into(),
            status: self.status,
            attempt_count: self.attempt_count,
            last_status_code: self.last_status_code,
            last_error: self.last_error,
            next_attempt_at: self.next_attempt_at,
            lease_until: self.lease_until,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// 1 for the first attempt; retry n is attempt n + 1.
    pub number: u32,
    #[serde(serialize_with = "crate::time::serde_millis::serialize")]
    pub at: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    pub error: Option<String>,
    pub response_body: String,
}

/// An event's payload, rendered once and stored once for all the deliveries of the event: a
/// fan-out to a thousand webhooks writes (and holds in memory) one copy, not a thousand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPayload {
    pub tenant_id: Uuid,
    pub event_id: Uuid,
    pub event: String,
    pub body: Arc<str>,
    pub created_at: DateTime<Utc>,
}

impl EventPayload {
    /// The payload of `event` (seed 003's shape), refused when over `MAX_PAYLOAD_BYTES`.
    pub fn of(event: &OutboxEvent, now: DateTime<Utc>) -> Result<EventPayload> {
        let body = payload(event.id, &event.event, &event.data, event.occurred_at)?;
        Ok(EventPayload {
            tenant_id: event.tenant_id,
            event_id: event.id,
            event: event.event.clone(),
            body: body.into(),
            created_at: now,
        })
    }

    /// The new delivery of this payload to `webhook_id`; it shares the body.
    pub fn delivery_to(&self, webhook_id: Uuid, now: DateTime<Utc>) -> Delivery {
        Delivery::new(
            self.tenant_id,
            webhook_id,
            self.event_id,
            &self.event,
            Arc::clone(&self.body),
            now,
        )
    }
}

/// The payload of seed 003: `{id, event, timestamp, apiVersion, data}`.
pub fn payload(event_id: Uuid, event: &str, data: &Value, at: DateTime<Utc>) -> Result<String> {
    let body = json!({
        "id": event_id,
        "event": event,
        "timestamp": rfc3339(at),
        "apiVersion": API_VERSION,
        "data": data,
    })
    .to_string();
    if body.len() > MAX_PAYLOAD_BYTES {
        return Err(Error::PayloadTooLarge);
    }
    Ok(body)
}

/// The delivery of an event to a webhook has one id, whoever creates it: a fan-out that runs
/// twice (request path and sweeper) writes the same record once. It keeps the event id's first
/// 64 bits (the millisecond and the sub-millisecond bits of `OutboxEvent` ids), so deliveries
/// sort like their events even within a millisecond; 62 hashed bits tell webhooks apart.
pub fn delivery_id(event_id: Uuid, webhook_id: Uuid) -> Uuid {
    let digest = Sha256::digest([event_id.as_bytes().as_slice(), webhook_id.as_bytes()].concat());
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&event_id.as_bytes()[..8]);
    bytes[8..].copy_from_slice(&digest[..8]);
    uuid::Builder::from_bytes(bytes)
        .with_version(uuid::Version::SortRand)
        .with_variant(uuid::Variant::RFC4122)
        .into_uuid()
}

/// The most delays a webhook's own `retrySchedule` may list.
pub const RETRY_SCHEDULE_MAX: usize = 10;
/// Each delay of a schedule, in seconds: up to a day (a wait past SQS's 900 s is chained).
pub const RETRY_DELAY_SECONDS: RangeInclusive<i64> = 1..=86_400;
/// `WEBHOOK_RETRY_JITTER` when unset: each delay is drawn within ±20% of the schedule's.
pub const DEFAULT_JITTER_PERCENT: u8 = 20;
/// The widest jitter: ±100% (from no wait at all to twice the delay).
pub const MAX_JITTER_PERCENT: u8 = 100;

/// Seconds to wait before retry 1, 2, …; the last delay repeats. The deployment's
/// (`WEBHOOK_RETRY_DELAYS`), or a webhook's own (`retrySchedule`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
    jitter: Jitter,
}

impl Default for RetrySchedule {
    fn default() -> RetrySchedule {
        RetrySchedule::of([300, 600, 900].map(Duration::from_secs).to_vec())
    }
}

impl Serialize for RetrySchedule {
    /// As a client gives it: the seconds of each delay.
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_seq(self.seconds())
    }
}

impl RetrySchedule {
    fn of(delays: Vec<Duration>) -> RetrySchedule {
        RetrySchedule {
            delays,
            jitter: Jitter::NONE,
        }
    }

    /// `WEBHOOK_RETRY_DELAYS`: comma-separated seconds, e.g. `300,600,900`.
    pub fn parse(text: &str) -> std::result::Result<RetrySchedule, String> {
        let delays = text
            .split(',')
            .map(|part| part.trim().parse::<i64>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| format!("`{text}` is not a comma-separated list of seconds"))?;
        RetrySchedule::from_seconds(&delays).ok_or_else(|| {
            format!(
                "`{text}`: each delay must be {} to {} seconds",
                RETRY_DELAY_SECONDS.start(),
                RETRY_DELAY_SECONDS.end()
            )
        })
    }

    /// At least one delay, each within `RETRY_DELAY_SECONDS`.
    pub fn from_seconds(delays: &[i64]) -> Option<RetrySchedule> {
        let valid = !delays.is_empty() && delays.iter().all(|d| RETRY_DELAY_SECONDS.contains(d));
        valid.then(|| {
            RetrySchedule::of(
                delays
                    .iter()
                    .map(|d| Duration::from_secs(d.unsigned_abs()))
                    .collect(),
            )
        })
    }

    /// A webhook's `retrySchedule`, checked: 1 to `RETRY_SCHEDULE_MAX` delays, each within
    /// `RETRY_DELAY_SECONDS`.
    pub(crate) fn checked(
        errors: &mut FieldErrors,
        name: &str,
        delays: &[i64],
    ) -> Option<RetrySchedule> {
        if !errors.count(name, delays.len(), RETRY_SCHEDULE_MAX) {
            return None;
        }
        let schedule = RetrySchedule::from_seconds(delays);
        if schedule.is_none() {
            errors.fail(
                name,
                format!(
                    "must list 1 to {RETRY_SCHEDULE_MAX} delays, each from {} to {} seconds",
                    RETRY_DELAY_SECONDS.start(),
                    RETRY_DELAY_SECONDS.end()
                ),
            );
        }
        schedule
    }

    /// The seconds of each delay, as configured.
    pub fn seconds(&self) -> Vec<u64> {
        self.delays.iter().map(Duration::as_secs).collect()
    }

    /// The same delays, each drawn within `jitter` of its value when used.
    pub fn jittered(&self, jitter: Jitter) -> RetrySchedule {
        RetrySchedule {
            jitter,
            ..self.clone()
        }
    }

    /// The longest `retries` retries can take: every delay drawn at its longest.
    pub fn longest(&self, retries: u32) -> Duration {
        (1..=retries)
            .map(|n| {
                let index = (n as usize - 1).min(self.delays.len() - 1);
                self.jitter.widest(self.delays[index])
            })
            .sum()
    }

    /// The wait before retry `n` (1-based), jittered if the schedule is.
    pub fn delay_before_retry(&self, n: u32) -> Duration {
        let index = (n.max(1) as usize - 1).min(self.delays.len() - 1);
        self.jitter.spread(self.delays[index])
    }
}

/// How far a retry's delay may stray from its schedule, in percent either way, so that the
/// retries of deliveries that failed together (an endpoint back from an outage) do not all
/// come back in the same second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jitter(u8);

impl Default for Jitter {
    fn default() -> Jitter {
        Jitter(DEFAULT_JITTER_PERCENT)
    }
}

impl Jitter {
    pub const NONE: Jitter = Jitter(0);

    /// `WEBHOOK_RETRY_JITTER`: 0 to `MAX_JITTER_PERCENT`.
    pub fn percent(percent: u8) -> Option<Jitter> {
        (percent <= MAX_JITTER_PERCENT).then_some(Jitter(percent))
    }

    /// `delay` moved by the whole jitter upwards: the longest `spread` can make it.
    fn widest(self, delay: Duration) -> Duration {
        delay + delay * u32::from(self.0) / 100
    }

    /// `delay`, moved by a random share of up to this jitter either way, to the millisecond.
    pub fn spread(self, delay: Duration) -> Duration {
        if self.0 == 0 {
            return delay;
        }
        let millis = delay.as_millis() as f64;
        let share = f64::from(self.0) / 100.0 * (rand::random::<f64>() * 2.0 - 1.0);
        Duration::from_millis((millis * (1.0 + share)).round().max(0.0) as u64)
    }
}

/// What the state machine decided after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Succeeded,
    RetryAfter(Duration),
    Failed,
    /// 410 Gone: the endpoint asked never to be called again.
    FailedAndDeactivate,
}

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

impl Delivery {
    pub fn new(
        tenant_id: Uuid,
        webhook_id: Uuid,
        event_id: Uuid,
        event: &str,
        payload: impl Into<Arc<str>>,
        now: DateTime<Utc>,
    ) -> Delivery {
        Delivery {
            id: delivery_id(event_id, webhook_id),
            tenant_id,
            webhook_id,
            event_id,
            event: event.to_owned(),
            payload: payload.into(),
            status: DeliveryStatus::Pending,
            attempt_count: 0,
            last_status_code: None,
            last_error: None,
            next_attempt_at: Some(now),
            lease_until: None,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    /// The event payload this delivery shares with the event's other deliveries.
    pub fn event_payload(&self) -> EventPayload {
        EventPayload {
            tenant_id: self.tenant_id,
            event_id: self.event_id,
            event: self.event.clone(),
            body: Arc::clone(&self.payload),
            created_at: self.created_at,
        }
    }

    /// Everything but the payload.
    pub fn summary(&self) -> DeliverySummary {
        DeliverySummary {
            id: self.id,
            tenant_id: self.tenant_id,
            webhook_id: self.webhook_id,
            event_id: self.event_id,
            event: self.event.clone(),
            status: self.status,
            attempt_count: self.attempt_count,
            last_status_code: self.last_status_code,
            last_error: self.last_error.clone(),
            next_attempt_at: self.next_attempt_at,
            lease_until: self.lease_until,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
        }
    }

    pub fn is_leased(&self, now: DateTime<Utc>) -> bool {
        self.lease_until.is_some_and(|until| until > now)
    }

    /// Whether its next attempt is due at `now` (with a second of slack for clock skew).
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.status.is_open()
            && self
                .next_attempt_at
                .is_none_or(|at| at <= now + chrono::Duration::seconds(1))
    }

    /// Takes the attempt: only one worker can hold an unexpired lease.
    pub fn claimed(&self, now: DateTime<Utc>, lease: Duration) -> Option<Delivery> {
        if !self.is_due(now) || self.is_leased(now) {
            return None;
        }
        let mut next = self.clone();
        next.lease_until = Some(now + chrono_duration(lease));
        next.updated_at = now;
        next.version += 1;
        Some(next)
    }

    /// Gives a claim back untried (the attempt's send slot was missed): due again, as it was.
    pub fn released(&self, now: DateTime<Utc>) -> Delivery {
        let mut next = self.clone();
        next.lease_until = None;
        next.updated_at = now;
        next.version += 1;
        next
    }

    pub fn cancelled(&self, reason: &str, now: DateTime<Utc>) -> Delivery {
        let mut next = self.clone();
        next.status = DeliveryStatus::Cancelled;
        next.last_error = Some(reason.to_owned());
        next.next_attempt_at = None;
        next.lease_until = None;
        next.updated_at = now;
        next.version += 1;
        next
    }

    /// A user's retry of a FAILED delivery: one more attempt, now.
    pub fn retried(&self, now: DateTime<Utc>) -> Option<Delivery> {
        (self.status == DeliveryStatus::Failed).then(|| self.reopened(now))
    }

    /// A user's resend of a finished delivery (SUCCESS included): one more attempt, now, on
    /// condition that it is still as it was when asked (`version`), so that a resend message
    /// delivered twice sends once.
    pub fn resent(&self, version: i64, now: DateTime<Utc>) -> Option<Delivery> {
        (self.version == version && !self.status.is_open()).then(|| self.reopened(now))
    }

    /// Due for an attempt now, and not in flight.
    fn reopened(&self, now: DateTime<Utc>) -> Delivery {
        let mut next = self.clone();
        next.status = DeliveryStatus::Retrying;
        next.next_attempt_at = Some(now);
        next.lease_until = None;
        next.updated_at = now;
        next.version += 1;
        next
    }

    /// Records an attempt made under this (claimed) delivery and decides what comes next.
    /// `retries_allowed`: the webhook's `maxRetries`, or 0 when a retry is a user's single shot.
    pub fn after_attempt(
        &self,
        outcome: &SendOutcome,
        retries_allowed: u32,
        schedule: &RetrySchedule,
        now: DateTime<Utc>,
    ) -> (Delivery, Attempt, Decision) {
        let number = self.attempt_count + 1;
        let attempt = Attempt {
            number,
            at: now - chrono_duration(outcome.latency),
            status_code: outcome.status,
            duration_ms: u64::try_from(outcome.latency.as_millis()).unwrap_or(u64::MAX),
            error: outcome.error.clone(),
            response_body: truncate(&outcome.body, RESPONSE_BODY_LIMIT),
        };
        let success = outcome.status.is_some_and(|s| (200..300).contains(&s));
        // Retries already made before this attempt, counted since the last user retry too.
        let retries_made = self.attempt_count;
        let decision = if success {
            Decision::Succeeded
        } else if outcome.status == Some(410) {
            Decision::FailedAndDeactivate
        } else if retries_made < retries_allowed {
            Decision::RetryAfter(schedule.delay_before_retry(retries_made + 1))
        } else {
            Decision::Failed
        };
        let mut next = self.clone();
        next.attempt_count = number;
        next.last_status_code = outcome.status;
        next.last_error = outcome.error.clone();
        next.lease_until = None;
        next.updated_at = now;
        next.version += 1;
        match decision {
            Decision::Succeeded => {
                next.status = DeliveryStatus::Success;
                next.next_attempt_at = None;
            }
            Decision::RetryAfter(delay) => {
                next.status = DeliveryStatus::Retrying;
                next.next_attempt_at = Some(now + chrono_duration(delay));
            }
            Decision::Failed | Decision::FailedAndDeactivate => {
                next.status = DeliveryStatus::Failed;
                next.next_attempt_at = None;
            }
        }
        (next, attempt, decision)
    }
}

fn truncate(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// Deliveries per status, for a tenant or one webhook.
/// Deliveries per status and the share of finished ones that succeeded (null before any).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CountSummary {
    pub total: i64,
    pub pending: i64,
    pub success: i64,
    pub failed: i64,
    pub retrying: i64,
    pub cancelled: i64,
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub success_rate: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusCounts(pub BTreeMap<DeliveryStatus, i64>);

impl StatusCounts {
    /// How a transition moves the counts; `None` before means a new delivery.
    pub fn delta(before: Option<DeliveryStatus>, after: DeliveryStatus) -> StatusCounts {
        let mut counts = BTreeMap::new();
        if before != Some(after) {
            if let Some(before) = before {
                counts.insert(before, -1);
            }
            counts.insert(after, 1);
        }
        StatusCounts(counts)
    }

    pub fn get(&self, status: DeliveryStatus) -> i64 {
        self.0.get(&status).copied().unwrap_or(0)
    }

    /// Adds another delta to this one (several deliveries' moves in one counter write).
    pub fn add(&mut self, other: &StatusCounts) {
        for (status, n) in &other.0 {
            *self.0.entry(*status).or_default() += n;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.values().all(|n| *n == 0)
    }

    pub fn summary(&self) -> CountSummary {
        let success = self.get(DeliveryStatus::Success);
        let failed = self.get(DeliveryStatus::Failed);
        let finished = success + failed;
        CountSummary {
            total: self.0.values().sum(),
            pending: self.get(DeliveryStatus::Pending),
            success,
            failed,
            retrying: self.get(DeliveryStatus::Retrying),
            cancelled: self.get(DeliveryStatus::Cancelled),
            success_rate: (finished != 0).then(|| success as f64 / finished as f64),
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.summary()).unwrap_or(Value::Null)
    }
}

/// The most deliveries one retry may list.
pub const RETRY_MAX_IDS: usize = 100;

/// Seed 000's retry: the tenant's FAILED deliveries, only one webhook's, or only the listed
/// ones (those of that webhook, when both are given).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetrySelection {
    pub webhook_id: Option<Uuid>,
    pub delivery_ids: Option<Vec<Uuid>>,
}

impl RetrySelection {
    /// The selection, once it lists no more than `RETRY_MAX_IDS` deliveries.
    pub fn validated(self) -> Result<RetrySelection> {
        let mut errors = FieldErrors::default();
        if let Some(ids) = &self.delivery_ids {
            errors.count("deliveryIds", ids.len(), RETRY_MAX_IDS);
        }
        errors.finish()?;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::OutboxEvent;

    fn outcome(status: Option<u16>) -> SendOutcome {
        SendOutcome {
            status,
            body: "x".repeat(10_000),
            error: status.is_none().then(|| "timed out".to_owned()),
            latency: Duration::from_millis(12),
        }
    }

    fn sample(now: DateTime<Utc>) -> Delivery {
        Delivery::new(
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            "client.created",
            "{}",
            now,
        )
    }

    #[test]
    fn delivery_ids_are_stable_per_event_and_webhook() {
        let (event, a, b) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(delivery_id(event, a), delivery_id(event, a));
        assert_ne!(delivery_id(event, a), delivery_id(event, b));
        assert_eq!(delivery_id(event, a).get_version_num(), 7);
        assert_eq!(delivery_id(event, a).as_bytes()[..8], event.as_bytes()[..8]);
    }

    #[test]
    fn deliveries_sort_like_their_events_within_a_millisecond() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let events: Vec<OutboxEvent> = (0..200)
            .map(|_| OutboxEvent::new(a, "lead.created", json!({}), Utc::now()))
            .collect();
        for pair in events.windows(2) {
            assert!(delivery_id(pair[0].id, b) <= delivery_id(pair[1].id, b));
        }
    }

    #[test]
    fn the_schedule_repeats_its_last_delay() {
        let schedule = RetrySchedule::parse("1, 2").unwrap();
        assert_eq!(schedule.delay_before_retry(1), Duration::from_secs(1));
        assert_eq!(schedule.delay_before_retry(2), Duration::from_secs(2));
        assert_eq!(schedule.delay_before_retry(5), Duration::from_secs(2));
        assert_eq!(
            RetrySchedule::default().delay_before_retry(3),
            Duration::from_secs(900)
        );
        for bad in ["", "a", "1,,2", "0", "-5", "100000"] {
            assert!(RetrySchedule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_webhooks_schedule_has_one_to_ten_delays_of_up_to_a_day() {
        let check = |delays: &[i64]| {
            let mut errors = FieldErrors::default();
            let schedule = RetrySchedule::checked(&mut errors, "retrySchedule", delays);
            (schedule, errors.has_failed("retrySchedule"))
        };
        let (schedule, failed) = check(&[5, 86_400]);
        assert_eq!(schedule.unwrap().seconds(), [5, 86_400]);
        assert!(!failed);
        for bad in [&[][..], &[0], &[-1], &[86_401], &[1; 11]] {
            assert_eq!(check(bad), (None, true), "{bad:?}");
        }
        assert_eq!(check(&[1; 10]).0.unwrap().seconds().len(), 10);
    }

    #[test]
    fn jitter_spreads_delays_within_its_share_and_none_keeps_them() {
        let delay = Duration::from_secs(300);
        let jittered = RetrySchedule::default().jittered(Jitter::default());
        let delays: Vec<Duration> = (0..2_000).map(|_| jittered.delay_before_retry(1)).collect();
        assert!(delays
            .iter()
            .all(|d| (240_000..=360_000).contains(&d.as_millis())));
        let (low, high) = (delays.iter().min().unwrap(), delays.iter().max().unwrap());
        assert!(
            low.as_millis() < 250_000 && high.as_millis() > 350_000,
            "{low:?} {high:?}"
        );
        assert!(
            delays.iter().filter(|d| **d < delay).count() > 800,
            "both ways"
        );
        assert_eq!(RetrySchedule::default().delay_before_retry(1), delay);
        assert_eq!(Jitter::NONE.spread(delay), delay);
        assert_eq!(Jitter::percent(101), None);
        assert!(
            Jitter::percent(100).unwrap().spread(Duration::from_secs(1)) <= Duration::from_secs(2)
        );
    }

    #[test]
    fn the_longest_retries_take_every_delay_at_its_widest() {
        let schedule = RetrySchedule::parse("300,600,900").unwrap();
        assert_eq!(schedule.longest(0), Duration::ZERO);
        assert_eq!(schedule.longest(3), Duration::from_secs(1_800));
        assert_eq!(
            schedule.longest(5),
            Duration::from_secs(3_600),
            "the last repeats"
        );
        let jittered = schedule.jittered(Jitter::default());
        assert_eq!(jittered.longest(3), Duration::from_secs(2_160));
        let drawn: Duration = (1..=3).map(|n| jittered.delay_before_retry(n)).sum();
        assert!(drawn <= jittered.longest(3));
    }

    #[test]
    fn retries_then_fails_for_good() {
        let now = Utc::now();
        let schedule = RetrySchedule::parse("1,2,3").unwrap();
        let mut delivery = sample(now);
        let mut decisions = Vec::new();
        for _ in 0..4 {
            let claimed = delivery
                .claimed(now + chrono::Duration::days(1), Duration::from_secs(10))
                .unwrap();
            let (next, attempt, decision) =
                claimed.after_attempt(&outcome(Some(500)), 3, &schedule, now);
            assert_eq!(attempt.number, next.attempt_count);
            assert!(attempt.response_body.len() <= RESPONSE_BODY_LIMIT);
            decisions.push(decision);
            delivery = next;
        }
        assert_eq!(
            decisions,
            [
                Decision::RetryAfter(Duration::from_secs(1)),
                Decision::RetryAfter(Duration::from_secs(2)),
                Decision::RetryAfter(Duration::from_secs(3)),
                Decision::Failed
            ]
        );
        assert_eq!(delivery.status, DeliveryStatus::Failed);
        assert_eq!(delivery.attempt_count, 4);
        assert_eq!(delivery.next_attempt_at, None);
    }

    #[test]
    fn only_2xx_succeeds_and_410_deactivates() {
        let now = Utc::now();
        let schedule = RetrySchedule::default();
        let delivery = sample(now).claimed(now, Duration::from_secs(10)).unwrap();
        for (status, expected) in [
            (Some(200), Decision::Succeeded),
            (Some(299), Decision::Succeeded),
            (Some(308), Decision::RetryAfter(Duration::from_secs(300))),
            (Some(410), Decision::FailedAndDeactivate),
            (None, Decision::RetryAfter(Duration::from_secs(300))),
        ] {
            assert_eq!(
                delivery
                    .after_attempt(&outcome(status), 3, &schedule, now)
                    .2,
                expected,
                "{status:?}"
            );
        }
    }

    #[test]
    fn a_resend_reopens_a_finished_delivery_once() {
        let now = Utc::now();
        let claimed = sample(now).claimed(now, Duration::from_secs(10)).unwrap();
        let (done, _, _) =
            claimed.after_attempt(&outcome(Some(200)), 3, &RetrySchedule::default(), now);
        assert_eq!(done.status, DeliveryStatus::Success);
        let reopened = done.resent(done.version, now).unwrap();
        assert_eq!(reopened.status, DeliveryStatus::Retrying);
        assert!(reopened.is_due(now));
        assert_eq!(
            reopened.resent(done.version, now),
            None,
            "a second resend message of the same request"
        );
        assert_eq!(
            sample(now).resent(1, now),
            None,
            "an open delivery is on its way already"
        );
    }

    #[test]
    fn one_lease_at_a_time_and_not_before_due() {
        let now = Utc::now();
        let delivery = sample(now);
        let claimed = delivery.claimed(now, Duration::from_secs(30)).unwrap();
        assert!(claimed.claimed(now, Duration::from_secs(30)).is_none());
        assert!(claimed
            .claimed(now + chrono::Duration::seconds(31), Duration::from_secs(30))
            .is_some());
        let (retrying, _, _) =
            claimed.after_attempt(&outcome(Some(500)), 3, &RetrySchedule::default(), now);
        assert!(
            retrying.claimed(now, Duration::from_secs(30)).is_none(),
            "not due for 300 s"
        );
    }

    #[test]
    fn counts_move_with_transitions() {
        let delta = StatusCounts::delta(Some(DeliveryStatus::Pending), DeliveryStatus::Success);
        assert_eq!(delta.get(DeliveryStatus::Pending), -1);
        assert_eq!(delta.get(DeliveryStatus::Success), 1);
        assert!(
            StatusCounts::delta(Some(DeliveryStatus::Retrying), DeliveryStatus::Retrying)
                .is_empty()
        );
        let json = StatusCounts(BTreeMap::from([
            (DeliveryStatus::Success, 3),
            (DeliveryStatus::Failed, 1),
        ]))
        .to_json();
        assert_eq!(json["successRate"], 0.75);
        assert_eq!(json["total"], 4);
    }

    #[test]
    fn payloads_have_the_seed_shape_and_a_size_limit() {
        let id = Uuid::now_v7();
        let body = payload(id, "lead.created", &json!({"a": 1}), Utc::now()).unwrap();
        let value: Value = serde_json::from_str(&body).unwrap();
        let mut keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["apiVersion", "data", "event", "id", "timestamp"]);
        assert_eq!(value["id"], json!(id));
        let huge = json!("x".repeat(MAX_PAYLOAD_BYTES));
        assert!(matches!(
            payload(id, "lead.created", &huge, Utc::now()),
            Err(Error::PayloadTooLarge)
        ));
    }
}
