//! Fan-out, notify, manual retry and monitoring of deliveries. Resend, recover and replay are
//! `service::redelivery`'s.

use std::time::{Duration, Instant};

use serde::Serialize;
use uuid::Uuid;

use super::audit;
use super::input::Input;
use super::lookup::{load as load_webhook, subscribers};
use crate::domain::audit::AuditAction;
use crate::domain::auth::{Caller, Permission};
use crate::domain::delivery::{
    delivery_id, Attempt, CountSummary, Delivery, DeliveryStatus, DeliverySummary, EventPayload,
    RetrySelection,
};
use crate::domain::delivery_search::DeliverySearch;
use crate::domain::event::{Notification, OutboxEvent};
use crate::domain::health::WebhookHealth;
use crate::domain::idempotency::{
    IdempotencyKey, IdempotencyRecord, IdempotentNotification, NotifyCommand,
    IDEMPOTENCY_KEY_ARGUMENT,
};
use crate::domain::page::{Page, PageRequest};
use crate::error::{Error, Result};
use crate::metrics::Count;
use crate::ports::{DeliveryMessage, QueueMessage, RetryFailedMessage, RetryScope};
use crate::service::deps::Deps;

/// Deliveries are created and enqueued this many at a time, so that a fan-out's memory does not
/// grow with the tenant's number of webhooks (docs/architecture.md §Outbox and fan-out).
const FAN_OUT_BATCH: usize = 100;

/// Creates a PENDING delivery for every active webhook of the tenant subscribed to the event,
/// then enqueues them. Safe to run twice for one event: delivery ids are derived from it.
pub async fn fan_out(deps: &Deps, event: &OutboxEvent) -> Result<Vec<Uuid>> {
    let payload = EventPayload::of(event, deps.clock.now())?;
    let webhooks = subscribers(deps, event.tenant_id, &event.event).await?;
    deliver(deps, &payload, &webhooks).await?;
    Ok(delivery_ids(event, &webhooks))
}

fn delivery_ids(event: &OutboxEvent, webhooks: &[Uuid]) -> Vec<Uuid> {
    webhooks
        .iter()
        .map(|webhook_id| delivery_id(event.id, *webhook_id))
        .collect()
}

/// Stores the event's payload once (with the first batch), then creates and enqueues its
/// deliveries to `webhooks` a batch at a time; each delivery shares the one payload.
async fn deliver(deps: &Deps, payload: &EventPayload, webhooks: &[Uuid]) -> Result<()> {
    if webhooks.is_empty() {
        return Ok(());
    }
    for (index, batch) in webhooks.chunks(FAN_OUT_BATCH).enumerate() {
        let now = deps.clock.now();
        let deliveries: Vec<Delivery> = batch
            .iter()
            .map(|webhook_id| payload.delivery_to(*webhook_id, now))
            .collect();
        if index == 0 {
            deps.store
                .create_deliveries_with_payload(payload, &deliveries)
                .await?;
        } else {
            deps.store.create_deliveries(&deliveries).await?;
        }
        enqueue_now(deps, &deliveries).await;
    }
    Ok(())
}

/// Stores an event the service emits itself (`webhook.disabled`, `webhook.enabled`), then fans
/// it out: once stored, its deliveries will exist, made here or by the sweeper.
pub(crate) async fn publish(deps: &Deps, event: &OutboxEvent) -> Result<()> {
    deps.store.append_event(event).await?;
    dispatch_events(deps, std::slice::from_ref(event)).await;
    Ok(())
}

/// Fans out events just written by a request. A failure here loses nothing: the event stays in
/// the outbox and the sweeper fans it out.
pub async fn dispatch_events(deps: &Deps, events: &[OutboxEvent]) {
    deps.metrics
        .count(Count::EventsAccepted, events.len() as u64);
    for event in events {
        match fan_out(deps, event).await {
            Ok(_) => mark_dispatched(deps, event).await,
            Err(error) => {
                tracing::warn!(event_id = %event.id, %error, "fan-out failed; the sweeper will retry")
            }
        }
    }
}

/// Takes a fanned-out event off the sweeper's list; a failure only means the sweeper fans it
/// out again, which creates nothing twice.
async fn mark_dispatched(deps: &Deps, event: &OutboxEvent) {
    if let Err(error) = deps
        .store
        .mark_event_dispatched(event.tenant_id, event.id)
        .await
    {
        tracing::warn!(event_id = %event.id, %error, "marking the event dispatched failed");
    }
}

/// Enqueues deliveries for an immediate attempt. A failed send is logged, not returned: the
/// deliveries are stored, and the sweeper enqueues what is still due after its grace period.
pub(crate) async fn enqueue_now(deps: &Deps, deliveries: &[Delivery]) {
    let messages: Vec<(QueueMessage, Duration)> = deliveries
        .iter()
        .map(|d| (message_for(d), Duration::ZERO))
        .collect();
    if messages.is_empty() {
        return;
    }
    if let Err(error) = deps.queue.send(&messages).await {
        tracing::warn!(%error, count = messages.len(), "enqueue failed; the sweeper will retry");
    }
}

pub(crate) fn message_for(delivery: &Delivery) -> QueueMessage {
    QueueMessage::Delivery(DeliveryMessage {
        tenant_id: delivery.tenant_id,
        delivery_id: delivery.id,
        webhook_id: Some(delivery.webhook_id),
        retry: false,
        resend_of: None,
        send_slot: None,
    })
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotifyResult {
    pub success: bool,
    pub delivery_ids: Vec<Uuid>,
}

/// Seed 000's `POST /api/webhooks/notify` `{event, timestamp?, data}`, with an optional
/// idempotency key (docs/architecture.md §Idempotent notify).
pub async fn notify(
    deps: &Deps,
    caller: &Caller,
    command: impl Input<IdempotentNotification>,
) -> Result<NotifyResult> {
    caller.require(Permission::WebhookNotify)?;
    let now = deps.clock.now();
    let NotifyCommand { key, event } = command.read()?.into_event(caller.tenant_id, now)?;
    // Rendered before anything is stored or counted: one over the size limit is a 413.
    let payload = EventPayload::of(&event, now)?;
    let Some((key, fingerprint)) = key else {
        super::limits::take_event_quota(deps, caller.tenant_id, now).await?;
        let delivery_ids = notify_event(deps, &event, &payload).await?;
        deps.metrics.count(Count::EventsAccepted, 1);
        return Ok(answer(delivery_ids));
    };
    // A repeat creates nothing, so it takes no place in the second's quota.
    let tenant_id = caller.tenant_id;
    if let Some(first) = deps
        .store
        .find_idempotency_record(tenant_id, &key, now)
        .await?
    {
        return answer_repeat(deps, first, &fingerprint, event, now).await;
    }
    super::limits::take_event_quota(deps, tenant_id, now).await?;
    let record =
        IdempotencyRecord::claim(tenant_id, key.clone(), fingerprint.clone(), event.id, now);
    if !deps.store.claim_idempotency_key(&record, now).await? {
        // A request with the same key claimed it between the read and the claim.
        let first = deps
            .store
            .find_idempotency_record(tenant_id, &key, now)
            .await?
            .ok_or_else(|| Error::Conflict(KEY_IN_USE.to_owned()))?;
        return answer_repeat(deps, first, &fingerprint, event, now).await;
    }
    let delivery_ids = notify_event(deps, &event, &payload).await?;
    // Here, not in `notify_event`, which a repeat of a slow first request runs again for the
    // same event.
    deps.metrics.count(Count::EventsAccepted, 1);
    record_answer(deps, &key, &event, &delivery_ids).await;
    Ok(answer(delivery_ids))
}

/// A notification alone: a call without a key.
impl Input<IdempotentNotification> for Notification {
    fn read(self) -> Result<IdempotentNotification> {
        Ok(IdempotentNotification {
            key: None,
            key_field: IDEMPOTENCY_KEY_ARGUMENT,
            notification: self,
        })
    }
}

fn answer(delivery_ids: Vec<Uuid>) -> NotifyResult {
    NotifyResult {
        success: true,
        delivery_ids,
    }
}

/// The sentence of a key sent again with another notification.
pub const KEY_REUSED: &str = "This Idempotency-Key (idempotencyKey) was already used with \
    another request (event, data or timestamp) in the last 24 hours; send a new key for a new \
    notification.";
/// The sentence of a claim that lost to another and found no record (it expired meanwhile).
const KEY_IN_USE: &str = "A request with this Idempotency-Key (idempotencyKey) is in progress; \
    retry it.";

/// How long a repeat waits for the first request's answer, looking every `REPEAT_POLL`, before
/// it finishes the first request's work itself (that request may have died part-way).
const REPEAT_WAIT: Duration = Duration::from_secs(3);
const REPEAT_POLL: Duration = Duration::from_millis(25);

/// A request whose key has a record: another notification is a 409; the same one answers the
/// first request's deliveries, once it has them. A first request that has not answered within
/// `REPEAT_WAIT` is taken to have died: its work is done again with its event id, which
/// creates only what it did not (every write of a notify is idempotent for one event id).
async fn answer_repeat(
    deps: &Deps,
    mut first: IdempotencyRecord,
    fingerprint: &str,
    event: OutboxEvent,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<NotifyResult> {
    if first.fingerprint != fingerprint {
        return Err(Error::Conflict(KEY_REUSED.to_owned()));
    }
    let waited = Instant::now();
    loop {
        if let Some(delivery_ids) = first.delivery_ids {
            return Ok(answer(delivery_ids));
        }
        if waited.elapsed() >= REPEAT_WAIT {
            break;
        }
        tokio::time::sleep(REPEAT_POLL).await;
        match deps
            .store
            .find_idempotency_record(first.tenant_id, &first.key, now)
            .await?
        {
            Some(again) if again.event_id == first.event_id => first = again,
            _ => break,
        }
    }
    let event = OutboxEvent {
        id: first.event_id,
        ..event
    };
    tracing::warn!(event_id = %event.id, "the first request of an idempotency key did not answer; finishing its work");
    let payload = EventPayload::of(&event, now)?;
    let delivery_ids = notify_event(deps, &event, &payload).await?;
    record_answer(deps, &first.key, &event, &delivery_ids).await;
    Ok(answer(delivery_ids))
}

/// A failure is logged, not returned: the deliveries exist, and a repeat that finds no answer
/// finishes the work again, which creates nothing twice.
async fn record_answer(deps: &Deps, key: &IdempotencyKey, event: &OutboxEvent, ids: &[Uuid]) {
    if let Err(error) = deps
        .store
        .record_idempotent_answer(event.tenant_id, key, event.id, ids)
        .await
    {
        tracing::warn!(event_id = %event.id, %error, "recording the answer of an idempotency key failed");
    }
}

/// Writes the event, then fans it out; answers its delivery ids.
async fn notify_event(
    deps: &Deps,
    event: &OutboxEvent,
    payload: &EventPayload,
) -> Result<Vec<Uuid>> {
    // The event first, as a client write's: once it is stored, its deliveries will exist, made
    // here or by the sweeper if this request dies part-way.
    deps.store.append_event(event).await?;
    let webhooks = subscribers(deps, event.tenant_id, &event.event).await?;
    match deliver(deps, payload, &webhooks).await {
        Ok(()) => mark_dispatched(deps, event).await,
        Err(error) => {
            tracing::warn!(event_id = %event.id, %error, "fan-out failed; the sweeper will finish it")
        }
    }
    Ok(delivery_ids(event, &webhooks))
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryResult {
    pub success: bool,
    /// FAILED deliveries accepted for one more attempt each.
    pub retried_count: u64,
}

/// FAILED references read from the store at a time, and queued before the next read.
const RETRY_PAGE: usize = 1_000;
/// How long one worker message pages through FAILED deliveries before it hands the rest on.
const RETRY_JOB_BUDGET: Duration = Duration::from_secs(20);

/// Seed 000's `POST /api/webhooks/retry`: queues the tenant's FAILED deliveries for one more
/// attempt each, optionally only one webhook's or only the listed ones.
///
/// The listed ones are queued at once. A retry of all (or of a webhook's) answers at once
/// too, whatever their number: it counts them (one read of the counters) and hands the
/// paging to the worker (`run_retry_job`).
///
/// The worker reopens each delivery that is still FAILED when its message arrives and sends it
/// at once: one more attempt, numbered after the earlier ones and carrying `X-Webhook-Retry`.
/// If it fails, the delivery is FAILED again, without further automatic retries.
pub async fn retry_failed(
    deps: &Deps,
    caller: &Caller,
    selection: impl Input<RetrySelection>,
) -> Result<RetryResult> {
    caller.require(Permission::WebhookRetry)?;
    let RetrySelection {
        webhook_id,
        delivery_ids,
    } = selection.read()?.validated()?;
    if let Some(webhook_id) = webhook_id {
        load_webhook(deps, caller.tenant_id, webhook_id).await?;
    }
    let asked = audit::fields([
        ("webhookId", webhook_id.map(|id| id.to_string()).into()),
        ("deliveryIds", serde_json::json!(delivery_ids)),
    ]);
    let retried_count = match delivery_ids {
        Some(ids) => retry_listed(deps, caller, webhook_id, &ids).await?,
        None => retry_all(deps, caller, webhook_id).await?,
    };
    // The target is the webhook retried, or the tenant when the retry is of all its webhooks.
    let target = webhook_id.unwrap_or(caller.tenant_id);
    audit::record(deps, caller, AuditAction::DeliveriesRetry, target, asked).await?;
    Ok(RetryResult {
        success: true,
        retried_count,
    })
}

/// When a worker's job stops: after `RETRY_JOB_BUDGET`, or 5 s before its invocation ends.
pub(crate) fn job_stop(deadline: Option<Instant>) -> Instant {
    let stop_at = Instant::now() + RETRY_JOB_BUDGET;
    match deadline {
        Some(deadline) => stop_at.min(
            deadline
                .checked_sub(Duration::from_secs(5))
                .unwrap_or(deadline),
        ),
        None => stop_at,
    }
}

/// The listed deliveries that are FAILED (and of `webhook_id`, when given).
async fn retry_listed(
    deps: &Deps,
    caller: &Caller,
    webhook_id: Option<Uuid>,
    ids: &[Uuid],
) -> Result<u64> {
    // Summaries: the decision needs the status, not the payload.
    let reads = ids
        .iter()
        .map(|id| deps.store.get_delivery_summary(caller.tenant_id, *id));
    let mut failed = Vec::new();
    for delivery in futures_util::future::try_join_all(reads)
        .await?
        .into_iter()
        .flatten()
    {
        if delivery.status == DeliveryStatus::Failed
            && webhook_id.is_none_or(|w| w == delivery.webhook_id)
            && !failed.contains(&delivery.id)
        {
            failed.push(delivery.id);
        }
    }
    enqueue_retries(deps, caller.tenant_id, &failed).await?;
    Ok(failed.len() as u64)
}

/// Counts the FAILED deliveries of the tenant (or of one webhook) and queues the job that
/// retries them.
async fn retry_all(deps: &Deps, caller: &Caller, webhook_id: Option<Uuid>) -> Result<u64> {
    let counts = deps.store.delivery_counts(caller.tenant_id).await?;
    let failed = match webhook_id {
        None => counts.overall.get(DeliveryStatus::Failed),
        Some(webhook_id) => counts
            .per_webhook
            .iter()
            .find(|(id, _)| *id == webhook_id)
            .map_or(0, |(_, counts)| counts.get(DeliveryStatus::Failed)),
    };
    if failed > 0 {
        let job = RetryFailedMessage {
            tenant_id: caller.tenant_id,
            retry_failed: RetryScope {
                webhook_id,
                after: None,
            },
        };
        deps.queue
            .send(&[(QueueMessage::RetryFailed(job), Duration::ZERO)])
            .await?;
    }
    Ok(u64::try_from(failed).unwrap_or(0))
}

/// The worker's half of a retry of all: queues a retry of each FAILED delivery in the job's
/// scope, a page at a time, until none is left; past its time budget (or close to the end of
/// the invocation) it queues the job again from where it stopped.
pub(crate) async fn run_retry_job(
    deps: &Deps,
    job: &RetryFailedMessage,
    deadline: Option<Instant>,
) -> Result<()> {
    let stop_at = job_stop(deadline);
    let scope = &job.retry_failed;
    let mut after = scope.after;
    loop {
        let page = deps
            .store
            .failed_deliveries(job.tenant_id, scope.webhook_id, after, RETRY_PAGE)
            .await?;
        let ids: Vec<Uuid> = page.iter().map(|r| r.delivery_id).collect();
        enqueue_retries(deps, job.tenant_id, &ids).await?;
        if page.len() < RETRY_PAGE {
            return Ok(());
        }
        after = page.last().copied();
        if Instant::now() >= stop_at {
            let rest = RetryFailedMessage {
                tenant_id: job.tenant_id,
                retry_failed: RetryScope {
                    webhook_id: scope.webhook_id,
                    after,
                },
            };
            return deps
                .queue
                .send(&[(QueueMessage::RetryFailed(rest), Duration::ZERO)])
                .await;
        }
    }
}

async fn enqueue_retries(deps: &Deps, tenant_id: Uuid, delivery_ids: &[Uuid]) -> Result<()> {
    let messages: Vec<(QueueMessage, Duration)> = delivery_ids
        .iter()
        .map(|delivery_id| {
            let message = DeliveryMessage {
                tenant_id,
                delivery_id: *delivery_id,
                webhook_id: None,
                retry: true,
                resend_of: None,
                send_slot: None,
            };
            (message.into(), Duration::ZERO)
        })
        .collect();
    if messages.is_empty() {
        return Ok(());
    }
    deps.queue.send(&messages).await
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: DeliverySummary,
    pub attempts: Vec<Attempt>,
}

pub async fn get_delivery(deps: &Deps, caller: &Caller, id: Uuid) -> Result<DeliveryDetail> {
    caller.require(Permission::WebhookRead)?;
    let delivery = deps
        .store
        .get_delivery_summary(caller.tenant_id, id)
        .await?
        .ok_or(Error::NotFound("Delivery"))?;
    let attempts = deps.store.list_attempts(caller.tenant_id, id).await?;
    Ok(DeliveryDetail { delivery, attempts })
}

pub async fn list_deliveries(
    deps: &Deps,
    caller: &Caller,
    webhook_id: Uuid,
    status: Option<DeliveryStatus>,
    page: PageRequest,
) -> Result<Page<DeliverySummary>> {
    caller.require(Permission::WebhookRead)?;
    load_webhook(deps, caller.tenant_id, webhook_id).await?;
    deps.store
        .list_deliveries(caller.tenant_id, webhook_id, status, page)
        .await
}

/// The tenant's deliveries that pass a filter, newest first: a page. A webhook id of another
/// tenant finds nothing, as the stores read only the caller's tenant's keys.
pub async fn search_deliveries(
    deps: &Deps,
    caller: &Caller,
    search: impl Input<DeliverySearch>,
) -> Result<Page<DeliverySummary>> {
    caller.require(Permission::WebhookRead)?;
    let search = search.read()?;
    deps.store
        .search_deliveries(caller.tenant_id, &search.filter, search.page)
        .await
}

/// One webhook's entry of `delivery_stats` (all zeros before its first delivery).
pub async fn webhook_stats(
    deps: &Deps,
    caller: &Caller,
    webhook_id: Uuid,
) -> Result<WebhookCounts> {
    caller.require(Permission::WebhookRead)?;
    let webhook = load_webhook(deps, caller.tenant_id, webhook_id).await?;
    let counts = deps.store.delivery_counts(caller.tenant_id).await?;
    let mine = counts
        .per_webhook
        .into_iter()
        .find(|(id, _)| *id == webhook_id)
        .map(|(_, counts)| counts)
        .unwrap_or_default();
    Ok(WebhookCounts {
        counts: mine.summary(),
        webhook_id,
        health: Some(webhook.health),
    })
}

/// One webhook's counts in `GET /api/webhooks/stats`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookCounts {
    #[serde(flatten)]
    pub counts: CountSummary,
    pub webhook_id: Uuid,
    /// The webhook's health, in its own stats (`GET /api/webhooks/{id}/stats`); the tenant's
    /// stats, which read no webhook, leave it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<WebhookHealth>,
}

/// `GET /api/webhooks/stats`: the tenant's counts, and each webhook's.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryStats {
    #[serde(flatten)]
    pub overall: CountSummary,
    pub webhooks: Vec<WebhookCounts>,
}

/// `GET /api/webhooks/stats`: counts per status and success rate, overall and per webhook.
pub async fn delivery_stats(deps: &Deps, caller: &Caller) -> Result<DeliveryStats> {
    caller.require(Permission::WebhookRead)?;
    let counts = deps.store.delivery_counts(caller.tenant_id).await?;
    let webhooks = counts
        .per_webhook
        .iter()
        .map(|(id, counts)| WebhookCounts {
            counts: counts.summary(),
            webhook_id: *id,
            health: None,
        })
        .collect();
    Ok(DeliveryStats {
        overall: counts.overall.summary(),
        webhooks,
    })
}
