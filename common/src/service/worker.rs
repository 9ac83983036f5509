//! Attempts: the queue consumer's work, and the synchronous test delivery.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::audit;
use super::deliveries::{message_for, publish, run_retry_job};
use super::fairness::Slot;
use super::lookup::load as load_webhook;
use super::redelivery::{run_recover_job, run_replay_job};
use super::retry_on_conflict;
use crate::domain::audit::AuditAction;
use crate::domain::auth::{Caller, Permission};
use crate::domain::catalogue::{WEBHOOK_DISABLED, WEBHOOK_TEST};
use crate::domain::delivery::{Decision, Delivery, EventPayload};
use crate::domain::event::OutboxEvent;
use crate::domain::health::{DisabledReason, HealthChange, WebhookHealth};
use crate::domain::outbound::signed_request;
use crate::domain::pacing::{HeldSlot, Pacing};
use crate::domain::webhook::{Webhook, IN_REQUEST_TIMEOUT_MS};
use crate::error::{Error, Result};
use crate::metrics::{Count, Outcome};
use crate::ports::{DeliveryChange, DeliveryMessage, QueueMessage, SendOutcome, MAX_QUEUE_DELAY};
use crate::service::deps::Deps;
use crate::time::rfc3339;

/// Time kept in hand after an attempt's timeout, for recording its result.
const LEASE_MARGIN: Duration = Duration::from_secs(15);
/// The longest a held delivery waits in the worker for its send slot, rather than in the
/// queue: SQS delays are whole seconds, so a held delivery comes back up to a second early.
const HELD_WAIT_MAX: Duration = Duration::from_secs(2);

/// What the consumer does with the message afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageOutcome {
    /// Done with it (including duplicates and poison): delete it.
    Done,
    /// Could not be handled now: leave it for redelivery (an SQS batch item failure).
    RetryLater,
}

/// Handles one queue message. `deadline`: when the Lambda invocation ends; an attempt that
/// could not finish before it is not started.
pub async fn process_message(deps: &Deps, body: &str, deadline: Option<Instant>) -> MessageOutcome {
    let message: QueueMessage = match serde_json::from_str(body) {
        Ok(message) => message,
        Err(error) => {
            tracing::error!(%error, "poison message acknowledged and dropped");
            return MessageOutcome::Done;
        }
    };
    match message {
        QueueMessage::Delivery(message) => match deliver(deps, &message, deadline).await {
            Ok(outcome) => outcome,
            Err(error) => {
                tracing::warn!(delivery_id = %message.delivery_id, %error, "delivery not processed; will be redelivered");
                MessageOutcome::RetryLater
            }
        },
        QueueMessage::Replay(job) => match run_replay_job(deps, &job, deadline).await {
            Ok(()) => MessageOutcome::Done,
            Err(error) => {
                tracing::warn!(tenant_id = %job.tenant_id, %error, "replay interrupted; will be redelivered");
                MessageOutcome::RetryLater
            }
        },
        QueueMessage::Recover(job) => match run_recover_job(deps, &job, deadline).await {
            Ok(()) => MessageOutcome::Done,
            Err(error) => {
                tracing::warn!(tenant_id = %job.tenant_id, %error, "recovery interrupted; will be redelivered");
                MessageOutcome::RetryLater
            }
        },
        QueueMessage::RetryFailed(job) => match run_retry_job(deps, &job, deadline).await {
            Ok(()) => MessageOutcome::Done,
            Err(error) => {
                tracing::warn!(tenant_id = %job.tenant_id, %error, "retry of FAILED deliveries interrupted; will be redelivered");
                MessageOutcome::RetryLater
            }
        },
    }
}

async fn deliver(
    deps: &Deps,
    message: &DeliveryMessage,
    deadline: Option<Instant>,
) -> Result<MessageOutcome> {
    // A delivery held for its webhook's rate limit waits, holding no slot, until shortly
    // before its send slot; back in the queue if that is far (a chained long wait).
    if let Some(held) = message.send_slot {
        let wait = micros(held.start() - deps.clock.now_us());
        if wait > HELD_WAIT_MAX {
            return hold(deps, message, held).await;
        }
        tokio::time::sleep(wait).await;
    }
    let started = deps.clock.now_us();
    // A rate-limited webhook's send slot before the delivery is read, when the message names
    // the webhook: a delivery held for it then costs one read and one reservation, and takes
    // none of the consumer's attempt slots.
    let early_webhook = match message.webhook_id {
        Some(webhook_id) => {
            deps.store
                .get_webhook(message.tenant_id, webhook_id)
                .await?
        }
        None => None,
    };
    let mut send_slot = None;
    if let Some(webhook) = &early_webhook {
        match take_send_slot(deps, message, webhook).await? {
            Ok(slot) => send_slot = slot,
            Err(held) => return Ok(held),
        }
    }
    // A busy tenant or endpoint: set aside before the delivery is read, when the message names
    // it.
    let early_slot = match message.webhook_id {
        Some(webhook_id) => match deps
            .in_flight
            .take_or_wait(message.tenant_id, webhook_id)
            .await
        {
            Ok(slot) => Some(slot),
            Err(wait) => return set_aside(deps, message, wait).await,
        },
        None => None,
    };
    let Some(stored) = deps
        .store
        .get_delivery(message.tenant_id, message.delivery_id)
        .await?
    else {
        return Ok(MessageOutcome::Done);
    };
    let stored = deps.payloads.share(stored);
    let now = deps.clock.now();
    // A user's retry reopens a delivery that is still FAILED (in the same write as the claim
    // below); one that is not was retried already, or never failed.
    let delivery = if let Some(version) = message.resend_of {
        match stored.resent(version, now) {
            Some(reopened) => reopened,
            None => return Ok(MessageOutcome::Done),
        }
    } else if message.retry {
        match stored.retried(now) {
            Some(reopened) => reopened,
            None => return Ok(MessageOutcome::Done),
        }
    } else {
        stored.clone()
    };
    if !delivery.status.is_open() {
        return Ok(MessageOutcome::Done);
    }
    // Early (a chained long delay, a duplicate) or held by another attempt (which may have
    // died with its process): look again when the wait or the lease is over.
    let come_back_at = match delivery.lease_until.filter(|until| *until > now) {
        Some(lease_end) => Some(lease_end),
        None => delivery.next_attempt_at.filter(|_| !delivery.is_due(now)),
    };
    if let Some(at) = come_back_at {
        let wait = (at - now).to_std().unwrap_or_default() + Duration::from_millis(500);
        deps.queue
            .send(&[(message_for(&delivery), wait.min(MAX_QUEUE_DELAY))])
            .await?;
        return Ok(MessageOutcome::Done);
    }
    // Held until the receiver has answered.
    let slot = match early_slot {
        Some(slot) => slot,
        None => match deps
            .in_flight
            .take_or_wait(message.tenant_id, delivery.webhook_id)
            .await
        {
            Ok(slot) => slot,
            Err(wait) => return set_aside(deps, message, wait).await,
        },
    };
    let gated = early_webhook.is_some();
    let webhook = match early_webhook.filter(|webhook| webhook.id == delivery.webhook_id) {
        Some(webhook) => Some(webhook),
        None => {
            deps.store
                .get_webhook(message.tenant_id, delivery.webhook_id)
                .await?
        }
    };
    let webhook = match webhook {
        Some(webhook) if webhook.active => webhook,
        other => {
            let reason = if other.is_some() {
                "webhook is inactive"
            } else {
                "webhook was deleted"
            };
            let change = DeliveryChange {
                after: delivery.cancelled(reason, now),
                before: stored,
                attempt: None,
            };
            return match deps.store.write_delivery(&change).await {
                Ok(()) => {
                    deps.metrics.delivery(Outcome::Cancelled);
                    Ok(MessageOutcome::Done)
                }
                Err(Error::Conflict(_)) => Ok(MessageOutcome::Done),
                Err(error) => Err(error),
            };
        }
    };
    if !gated {
        match take_send_slot(deps, message, &webhook).await? {
            Ok(slot) => send_slot = slot,
            Err(held) => return Ok(held),
        }
    }
    let timeout = Duration::from_millis(u64::from(webhook.timeout_ms));
    let slot_wait = send_slot.map_or(Duration::ZERO, |(_, slot)| {
        micros(slot - deps.clock.now_us())
    });
    if deadline.is_some_and(|deadline| {
        Instant::now() + slot_wait + timeout + Duration::from_secs(1) > deadline
    }) {
        return Ok(MessageOutcome::RetryLater);
    }
    let Some(claimed) = delivery.claimed(now, timeout + LEASE_MARGIN) else {
        return Ok(MessageOutcome::Done);
    };
    match deps
        .store
        .write_delivery(&DeliveryChange {
            before: stored,
            after: claimed.clone(),
            attempt: None,
        })
        .await
    {
        Ok(()) => {
            deps.prep_time.observe(deps.clock.now_us() - started);
            let due = delivery.next_attempt_at.unwrap_or(delivery.created_at);
            deps.metrics
                .queue_age((now - due).to_std().unwrap_or_default());
        }
        // Another consumer claimed it first: its attempt is the one that counts.
        Err(Error::Conflict(_)) => return Ok(MessageOutcome::Done),
        Err(error) => return Err(error),
    }
    // A user's retry or resend is one more attempt, whatever `maxRetries` says now.
    let retries_allowed = if message.retry || message.resend_of.is_some() {
        0
    } else {
        webhook.max_retries
    };
    if let Some((pacing, slot)) = send_slot {
        if !wait_for_send_slot(deps, slot).await {
            // The slot stays empty (the claim's write took too long); a new one, now that only
            // the send is left to do.
            let now = deps.clock.now_us();
            let again = deps
                .store
                .reserve_send_slot(message.tenant_id, webhook.id, pacing, now)
                .await?;
            if again - now > lead(deps, pacing) || !wait_for_send_slot(deps, again).await {
                return release_and_hold(deps, message, &webhook, pacing, claimed, again).await;
            }
        }
    }
    attempt(deps, &webhook, claimed, retries_allowed, Some(slot)).await?;
    Ok(MessageOutcome::Done)
}

/// Queues the message again after `wait`, so that the messages behind it reach the slots that
/// are free (service::fairness); a new message, not a visibility change, so that being set aside
/// never counts towards the dead-letter queue's receive limit.
async fn set_aside(
    deps: &Deps,
    message: &DeliveryMessage,
    wait: Duration,
) -> Result<MessageOutcome> {
    let again = QueueMessage::Delivery(message.clone());
    deps.queue
        .send(&[(again, wait.min(MAX_QUEUE_DELAY))])
        .await?;
    tracing::debug!(delivery_id = %message.delivery_id, ?wait, "set aside: its tenant or endpoint is busy");
    Ok(MessageOutcome::Done)
}

/// The delivery's send slot if its webhook is rate-limited (domain::pacing): the one its message
/// carries, unless missed, or the next; `Err` when the slot is far, and the delivery is held for
/// it, neither claimed nor tried.
async fn take_send_slot(
    deps: &Deps,
    message: &DeliveryMessage,
    webhook: &Webhook,
) -> Result<std::result::Result<Option<(Pacing, i64)>, MessageOutcome>> {
    let Some(pacing) = webhook
        .rate_limit_per_second
        .filter(|_| webhook.active)
        .map(Pacing::per_second)
    else {
        return Ok(Ok(None));
    };
    // Not before the claim can be written, as this process's recent claims took.
    let ready = deps.clock.now_us() + deps.prep_time.get();
    let slot = match message
        .send_slot
        .filter(|held| Pacing::not_missed(held.at, ready))
    {
        Some(held) => held.at,
        None => {
            deps.store
                .reserve_send_slot(message.tenant_id, webhook.id, pacing, ready)
                .await?
        }
    };
    let lead = lead(deps, pacing);
    if slot - deps.clock.now_us() > lead {
        return hold(deps, message, HeldSlot { at: slot, lead })
            .await
            .map(Err);
    }
    Ok(Ok(Some((pacing, slot))))
}

/// How long before its slot a delivery starts on it: the pacing's lead, or longer while this
/// process's store takes longer to read a delivery and claim it.
fn lead(deps: &Deps, pacing: Pacing) -> i64 {
    pacing.lead_us().max(2 * deps.prep_time.get())
}

/// Queues the message again with its send slot, to come back shortly before it. A new message,
/// as `set_aside` sends, so that holding never counts towards the dead-letter queue's receive
/// limit; the delivery was neither claimed nor tried.
async fn hold(deps: &Deps, message: &DeliveryMessage, held: HeldSlot) -> Result<MessageOutcome> {
    let mut again = message.clone();
    again.send_slot = Some(held);
    let wait = micros(held.start() - deps.clock.now_us());
    deps.queue
        .send(&[(QueueMessage::Delivery(again), wait.min(MAX_QUEUE_DELAY))])
        .await?;
    tracing::debug!(delivery_id = %message.delivery_id, ?wait, "held for its webhook's rate limit");
    Ok(MessageOutcome::Done)
}

/// Sleeps until the claimed delivery's send slot; `false` if the worker woke more than
/// `LATE_MAX_US` after it (a busy machine): a late send could make N + 1 in a second with the
/// sends of the slots after it.
async fn wait_for_send_slot(deps: &Deps, slot: i64) -> bool {
    let mut now = deps.clock.now_us();
    while now < slot {
        tokio::time::sleep(micros(slot - now)).await;
        now = deps.clock.now_us();
    }
    let on_time = Pacing::on_time(slot, now);
    if !on_time {
        tracing::debug!(late_us = now - slot, "send slot missed");
    }
    on_time
}

/// A claimed delivery whose slot is far or was missed gives its claim back (untried, as it was)
/// and is held for `slot`, or for a new one if it was missed.
async fn release_and_hold(
    deps: &Deps,
    message: &DeliveryMessage,
    webhook: &Webhook,
    pacing: Pacing,
    claimed: Delivery,
    slot: i64,
) -> Result<MessageOutcome> {
    let released = claimed.released(deps.clock.now());
    deps.store
        .write_delivery(&DeliveryChange {
            before: claimed,
            after: released,
            attempt: None,
        })
        .await?;
    let now = deps.clock.now_us();
    let slot = if Pacing::not_missed(slot, now) {
        slot
    } else {
        deps.store
            .reserve_send_slot(message.tenant_id, webhook.id, pacing, now)
            .await?
    };
    // A user's retry reopened the delivery in the claim, which stays: an ordinary delivery now.
    let message = DeliveryMessage {
        retry: false,
        ..message.clone()
    };
    hold(
        deps,
        &message,
        HeldSlot {
            at: slot,
            lead: lead(deps, pacing),
        },
    )
    .await
}

/// A wait in µs (none if negative).
fn micros(us: i64) -> Duration {
    Duration::from_micros(u64::try_from(us).unwrap_or(0))
}

/// Sends one attempt of a claimed delivery, records it, and schedules what follows. The slot
/// of its tenant and endpoint is given back once the receiver has answered: recording the
/// attempt is the store's work, not the endpoint's.
async fn attempt(
    deps: &Deps,
    webhook: &Webhook,
    claimed: Delivery,
    retries_allowed: u32,
    slot: Option<Slot>,
) -> Result<(Delivery, Decision)> {
    let secrets = deps.secrets.open(webhook).await?;
    let request = signed_request(webhook, &secrets, &claimed, deps.clock.now());
    let outcome = deps.sender.post(request).await;
    drop(slot);
    let now = deps.clock.now();
    let schedule = deps.settings.schedule_for(webhook);
    let (after, attempt, decision) =
        claimed.after_attempt(&outcome, retries_allowed, &schedule, now);
    deps.store
        .write_delivery(&DeliveryChange {
            before: claimed,
            after: after.clone(),
            attempt: Some(attempt),
        })
        .await?;
    record_attempt(deps, &outcome, &after, decision);
    let health = record_health(deps, webhook, decision, now).await;
    match decision {
        Decision::RetryAfter(delay) => {
            // If this send is lost, the sweeper finds the delivery due and not in flight.
            if let Err(error) = deps
                .queue
                .send(&[(message_for(&after), delay.min(MAX_QUEUE_DELAY))])
                .await
            {
                tracing::warn!(delivery_id = %after.id, %error, "enqueueing the retry failed; the sweeper will");
            }
        }
        Decision::FailedAndDeactivate => {
            let since = health.as_ref().and_then(|h| h.failing_since).unwrap_or(now);
            disable(deps, webhook, DisabledReason::EndpointGone, since).await?;
        }
        Decision::Succeeded | Decision::Failed => {}
    }
    if let (Some(limit), Some(health)) = (deps.settings.disable_after, &health) {
        if decision != Decision::Succeeded && health.failing_for(limit, now) {
            let since = health.failing_since.unwrap_or(now);
            disable(deps, webhook, DisabledReason::EndpointFailing, since).await?;
        }
    }
    tracing::info!(delivery_id = %after.id, status = after.status.as_str(), attempt = after.attempt_count, "attempt recorded");
    Ok((after, decision))
}

/// An attempt's figures: its latency, its outcome, and at a delivery's end its attempts. A
/// user's test send (`webhook.test`) is not traffic: testing a broken endpoint must not move the
/// failure rate.
fn record_attempt(deps: &Deps, sent: &SendOutcome, after: &Delivery, decision: Decision) {
    if after.event == WEBHOOK_TEST {
        return;
    }
    let metrics = &deps.metrics;
    metrics.attempt_latency(sent.latency);
    let outcome = match decision {
        Decision::Succeeded => Outcome::Success,
        Decision::RetryAfter(_) => Outcome::Retry,
        Decision::Failed | Decision::FailedAndDeactivate => Outcome::Failed,
    };
    metrics.delivery(outcome);
    if outcome != Outcome::Retry {
        metrics.attempts_per_delivery(after.attempt_count);
    }
}

/// What the attempt tells about its endpoint, written to the webhook's health (a success only
/// when worth a write: `WebhookHealth::success_worth_recording`); the health after it, when
/// written. A failed write is logged, not returned: the attempt is recorded, and health is not
/// worth sending the delivery twice for.
async fn record_health(
    deps: &Deps,
    webhook: &Webhook,
    decision: Decision,
    now: DateTime<Utc>,
) -> Option<WebhookHealth> {
    let change = match decision {
        Decision::Succeeded if webhook.health.success_worth_recording(now) => {
            HealthChange::Succeeded
        }
        Decision::Succeeded => return None,
        Decision::RetryAfter(_) => HealthChange::Failed {
            delivery_failed: false,
        },
        Decision::Failed | Decision::FailedAndDeactivate => HealthChange::Failed {
            delivery_failed: true,
        },
    };
    match deps
        .store
        .record_webhook_health(webhook.tenant_id, webhook.id, change, now)
        .await
    {
        Ok(health) => health,
        Err(error) => {
            tracing::warn!(webhook_id = %webhook.id, %error, "recording the webhook's health failed");
            None
        }
    }
}

/// Deactivates the webhook for `reason` (unless it is inactive already), then tells the
/// tenant's other webhooks subscribed to `webhook.disabled`.
async fn disable(
    deps: &Deps,
    webhook: &Webhook,
    reason: DisabledReason,
    failing_since: DateTime<Utc>,
) -> Result<()> {
    let disabled = retry_on_conflict(|| async {
        let Some(current) = deps
            .store
            .get_webhook(webhook.tenant_id, webhook.id)
            .await?
        else {
            return Ok(None);
        };
        if !current.active {
            return Ok(None);
        }
        let next = current.disabled(reason, deps.clock.now());
        // The service's own change, not a key's: the `webhook.disabled` event tells it, and
        // the audit log records only what keys do.
        deps.store
            .update_webhook(current.version, &next, None)
            .await?;
        Ok(Some(next))
    })
    .await?;
    if let Some(disabled) = disabled {
        tracing::warn!(webhook_id = %disabled.id, reason = reason.as_str(), "webhook disabled");
        deps.metrics.count(Count::WebhooksDisabled, 1);
        let data = json!({
            "webhookId": disabled.id,
            "url": disabled.url,
            "reason": reason.as_str(),
            "failingSince": rfc3339(failing_since),
        });
        let event = OutboxEvent::new(disabled.tenant_id, WEBHOOK_DISABLED, data, deps.clock.now());
        publish(deps, &event).await?;
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestResult {
    pub success: bool,
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    pub error: Option<String>,
    pub delivery_id: Uuid,
}

/// `POST /api/webhooks/{id}/test`: one synchronous `webhook.test` delivery, recorded like any
/// other, never retried.
pub async fn test_webhook(deps: &Deps, caller: &Caller, id: Uuid) -> Result<TestResult> {
    caller.require(Permission::WebhookTest)?;
    let mut webhook = load_webhook(deps, caller.tenant_id, id).await?;
    webhook.timeout_ms = webhook.timeout_ms.min(IN_REQUEST_TIMEOUT_MS);
    let now = deps.clock.now();
    let event = OutboxEvent::new(
        caller.tenant_id,
        WEBHOOK_TEST,
        json!({"webhookId": webhook.id, "message": "This is a test delivery."}),
        now,
    );
    let payload = EventPayload::of(&event, now)?;
    let delivery = payload.delivery_to(webhook.id, now);
    deps.store
        .create_deliveries_with_payload(&payload, std::slice::from_ref(&delivery))
        .await?;
    let sent = audit::fields([("deliveryId", delivery.id.to_string().into())]);
    audit::record(deps, caller, AuditAction::WebhookTest, webhook.id, sent).await?;
    let timeout = Duration::from_millis(u64::from(webhook.timeout_ms));
    let claimed = delivery
        .claimed(now, timeout + LEASE_MARGIN)
        .ok_or_else(|| Error::internal("a new delivery could not be claimed"))?;
    deps.store
        .write_delivery(&DeliveryChange {
            before: delivery,
            after: claimed.clone(),
            attempt: None,
        })
        .await?;
    let (after, _) = attempt(deps, &webhook, claimed, 0, None).await?;
    let attempts = deps.store.list_attempts(caller.tenant_id, after.id).await?;
    let last = attempts.last();
    Ok(TestResult {
        success: matches!(
            after.status,
            crate::domain::delivery::DeliveryStatus::Success
        ),
        status_code: after.last_status_code,
        duration_ms: last.map_or(0, |a| a.duration_ms),
        error: after.last_error.clone(),
        delivery_id: after.id,
    })
}
