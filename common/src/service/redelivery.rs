//! Sending again what a webhook missed: one delivery (resend), a webhook's failed and cancelled
//! deliveries of a time range (recover), the tenant's past events of a range (replay).
//!
//! A recovery or a replay works a page at a time for `REQUEST_BUDGET`, then hands the rest of
//! its range to the worker as a job, which goes on the same way (docs/architecture.md §Replay,
//! §Recover).

use std::time::{Duration, Instant};

use serde::Serialize;
use uuid::Uuid;

use super::audit;
use super::deliveries::{enqueue_now, job_stop};
use super::input::Input;
use super::lookup::load as load_webhook;
use crate::domain::audit::AuditAction;
use crate::domain::auth::{Caller, Permission};
use crate::domain::delivery::{delivery_id, DeliverySummary, EventPayload};
use crate::domain::event::OutboxEvent;
use crate::domain::page::PageRequest;
use crate::domain::recovery::{Recovery, RecoverySelection, RECOVERED};
use crate::domain::replay::{Replay, ReplaySelection};
use crate::domain::webhook::Webhook;
use crate::error::{Error, Result};
use crate::ports::{DeliveryMessage, QueueMessage, RecoverMessage, ReplayMessage, MAX_QUEUE_DELAY};
use crate::service::deps::Deps;
use crate::time::rfc3339;

/// How long a recover or replay request works before it hands the rest to the worker: its
/// function (`retry`) times out at 10 s, and the page under way when the budget runs out must
/// still finish.
const REQUEST_BUDGET: Duration = Duration::from_secs(4);
/// Events read at a time by a replay.
const REPLAY_PAGE: usize = 100;
/// Deliveries read at a time by a recovery: one page of the delivery search.
const RECOVER_PAGE: usize = 100;

/// What a resend queued.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueuedResult {
    pub success: bool,
    /// Deliveries queued for one more attempt each.
    pub queued: u64,
}

/// What a recover or a replay queued.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RedeliveryResult {
    pub success: bool,
    /// Deliveries this request queued.
    pub queued: u64,
    /// `false`: the range was longer than the request's time; the worker queues the rest.
    pub complete: bool,
}

/// `POST /api/webhooks/deliveries/{id}/resend`: one more attempt of a finished delivery (SUCCESS,
/// FAILED or CANCELLED), recorded as an attempt of the same delivery, with the same `webhook-id`.
/// It brings no automatic retries. A delivery still open (PENDING, RETRYING) is 409: it is on its
/// way already.
pub async fn resend_delivery(deps: &Deps, caller: &Caller, id: Uuid) -> Result<QueuedResult> {
    caller.require(Permission::WebhookRetry)?;
    let delivery = deps
        .store
        .get_delivery_summary(caller.tenant_id, id)
        .await?
        .ok_or(Error::NotFound("Delivery"))?;
    if delivery.status.is_open() {
        return Err(Error::Conflict(format!(
            "The delivery is {}: its next attempt is on its way; resend a finished delivery.",
            delivery.status.as_str()
        )));
    }
    deps.queue
        .send(&[(resend_message(&delivery), Duration::ZERO)])
        .await?;
    let asked = audit::fields([("webhookId", delivery.webhook_id.to_string().into())]);
    audit::record(deps, caller, AuditAction::DeliveryResend, id, asked).await?;
    Ok(QueuedResult {
        success: true,
        queued: 1,
    })
}

/// A resend of `delivery` as it is now: the worker makes it only if the delivery has not
/// changed meanwhile (`Delivery::resent`), so that a message delivered twice sends once.
fn resend_message(delivery: &DeliverySummary) -> QueueMessage {
    QueueMessage::Delivery(DeliveryMessage {
        tenant_id: delivery.tenant_id,
        delivery_id: delivery.id,
        webhook_id: Some(delivery.webhook_id),
        retry: false,
        resend_of: Some(delivery.version),
        send_slot: None,
    })
}

fn inactive(what: &str) -> Error {
    Error::Conflict(format!(
        "The webhook is inactive: activate it before {what}."
    ))
}

/// `POST /api/webhooks/{id}/recover {since, until?}`: a resend of each of the webhook's FAILED,
/// then CANCELLED, deliveries created in the range, newest first. Each is one more attempt of
/// the same delivery, without automatic retries, as a resend. What the request has not reached
/// after `REQUEST_BUDGET` is handed to the worker; `queued` counts what the request queued.
pub async fn recover(
    deps: &Deps,
    caller: &Caller,
    webhook_id: Uuid,
    selection: impl Input<RecoverySelection>,
) -> Result<RedeliveryResult> {
    caller.require(Permission::WebhookRetry)?;
    let recovery = selection.read()?.validated(deps.clock.now())?;
    let webhook = load_webhook(deps, caller.tenant_id, webhook_id).await?;
    if !webhook.active {
        return Err(inactive("recovering its deliveries"));
    }
    let asked = audit::fields([
        ("since", rfc3339(recovery.since).into()),
        ("until", rfc3339(recovery.until).into()),
    ]);
    let job = RecoverMessage::start(&webhook, recovery);
    let (queued, complete) = recover_until(deps, job, Instant::now() + REQUEST_BUDGET).await?;
    audit::record(deps, caller, AuditAction::WebhookRecover, webhook_id, asked).await?;
    Ok(RedeliveryResult {
        success: true,
        queued,
        complete,
    })
}

/// The recovery of a webhook just re-enabled with `"recover": true`, from the webhook as it was
/// before (`Recovery::on_enabling`): handed to the worker whole, so that the change answers at
/// once.
pub(crate) async fn recover_on_enabling(deps: &Deps, before: &Webhook) -> Result<()> {
    // A delivery's retries, and the queue's longest delay on top (a held or chained message).
    let retries = deps
        .settings
        .schedule_for(before)
        .longest(before.max_retries);
    let reach =
        chrono::Duration::from_std(retries + MAX_QUEUE_DELAY).unwrap_or(chrono::Duration::MAX);
    let Some(recovery) = Recovery::on_enabling(before, reach, deps.clock.now()) else {
        return Ok(());
    };
    let job = RecoverMessage::start(before, recovery);
    deps.queue
        .send(&[(QueueMessage::Recover(job), Duration::ZERO)])
        .await
}

/// A recovery handed on by a request (or an earlier worker) that ran out of time. A webhook
/// deleted or deactivated meanwhile ends it: its deliveries would be cancelled again.
pub(crate) async fn run_recover_job(
    deps: &Deps,
    job: &RecoverMessage,
    deadline: Option<Instant>,
) -> Result<()> {
    match deps
        .store
        .get_webhook(job.tenant_id, job.webhook_id)
        .await?
    {
        Some(webhook) if webhook.active => {
            recover_until(deps, job.clone(), job_stop(deadline)).await?;
        }
        _ => {}
    }
    Ok(())
}

/// Resends the job's pages of deliveries, status after status, until none is left
/// (`complete`) or `stop_at`, when the rest is handed to the worker. How many it queued.
async fn recover_until(
    deps: &Deps,
    mut job: RecoverMessage,
    stop_at: Instant,
) -> Result<(u64, bool)> {
    let mut queued = 0;
    if job.recover.is_empty() {
        return Ok((0, true));
    }
    loop {
        let filter = job.recover.filter(job.webhook_id, job.status);
        let page = PageRequest {
            limit: RECOVER_PAGE,
            after: job.after,
        };
        let found = deps
            .store
            .search_deliveries(job.tenant_id, &filter, page)
            .await?;
        let messages: Vec<(QueueMessage, Duration)> = found
            .items
            .iter()
            .map(|delivery| (resend_message(delivery), Duration::ZERO))
            .collect();
        if !messages.is_empty() {
            deps.queue.send(&messages).await?;
        }
        queued += messages.len() as u64;
        match (found.next_cursor, found.items.last()) {
            (Some(_), Some(last)) => job.after = Some(last.id),
            _ => match RECOVERED.iter().skip_while(|s| **s != job.status).nth(1) {
                Some(next) => {
                    job.status = *next;
                    job.after = None;
                }
                None => return Ok((queued, true)),
            },
        }
        if Instant::now() >= stop_at {
            deps.queue
                .send(&[(QueueMessage::Recover(job), Duration::ZERO)])
                .await?;
            return Ok((queued, false));
        }
    }
}

/// `POST /api/webhooks/{id}/replay {since, until?, events?}`: the tenant's events of the range
/// that the webhook subscribes to (and `events` names), sent to it as new deliveries, oldest
/// first: a new endpoint catches up. An event the webhook has a delivery of already is left
/// alone (resend or recover re-send those). What the request has not reached after
/// `REQUEST_BUDGET` is handed to the worker; `queued` counts what the request queued itself.
pub async fn replay(
    deps: &Deps,
    caller: &Caller,
    webhook_id: Uuid,
    selection: impl Input<ReplaySelection>,
) -> Result<RedeliveryResult> {
    caller.require(Permission::WebhookRetry)?;
    let replay = selection.read()?.validated(deps.clock.now())?;
    let webhook = load_webhook(deps, caller.tenant_id, webhook_id).await?;
    if !webhook.active {
        return Err(inactive("replaying events to it"));
    }
    let stop_at = Instant::now() + REQUEST_BUDGET;
    let (queued, complete) = replay_until(deps, &webhook, &replay, None, stop_at).await?;
    let asked = audit::fields([
        ("since", rfc3339(replay.since).into()),
        ("until", rfc3339(replay.until).into()),
        ("events", serde_json::json!(replay.events)),
    ]);
    audit::record(deps, caller, AuditAction::WebhookReplay, webhook_id, asked).await?;
    Ok(RedeliveryResult {
        success: true,
        queued,
        complete,
    })
}

/// A replay handed on by a request (or an earlier worker) that ran out of time.
pub(crate) async fn run_replay_job(
    deps: &Deps,
    job: &ReplayMessage,
    deadline: Option<Instant>,
) -> Result<()> {
    let Some(webhook) = deps
        .store
        .get_webhook(job.tenant_id, job.webhook_id)
        .await?
    else {
        return Ok(());
    };
    let stop_at = job_stop(deadline);
    replay_until(deps, &webhook, &job.replay, Some(job.after), stop_at).await?;
    Ok(())
}

/// Replays pages of events after `after` until the range ends (`complete`) or `stop_at`, when
/// the rest is handed to the worker. How many deliveries it created.
async fn replay_until(
    deps: &Deps,
    webhook: &Webhook,
    replay: &Replay,
    mut after: Option<Uuid>,
    stop_at: Instant,
) -> Result<(u64, bool)> {
    let mut queued = 0;
    loop {
        let events = deps
            .store
            .events_between(webhook.tenant_id, &replay.range(), after, REPLAY_PAGE)
            .await?;
        for event in &events {
            if webhook.subscribes_to(&event.event) && replay.wants(&event.event) {
                queued += u64::from(replay_one(deps, webhook, event).await?);
            }
        }
        after = events.last().map(|event| event.id).or(after);
        if events.len() < REPLAY_PAGE {
            return Ok((queued, true));
        }
        if Instant::now() >= stop_at {
            let rest = ReplayMessage {
                tenant_id: webhook.tenant_id,
                webhook_id: webhook.id,
                replay: replay.clone(),
                after: after.unwrap_or_default(),
            };
            deps.queue
                .send(&[(QueueMessage::Replay(rest), Duration::ZERO)])
                .await?;
            return Ok((queued, false));
        }
    }
}

/// The event's delivery to the webhook, created and queued unless it exists; whether it was.
async fn replay_one(deps: &Deps, webhook: &Webhook, event: &OutboxEvent) -> Result<bool> {
    let id = delivery_id(event.id, webhook.id);
    if deps
        .store
        .get_delivery_summary(webhook.tenant_id, id)
        .await?
        .is_some()
    {
        return Ok(false);
    }
    let now = deps.clock.now();
    let payload = EventPayload::of(event, now)?;
    let delivery = payload.delivery_to(webhook.id, now);
    deps.store
        .create_deliveries_with_payload(&payload, std::slice::from_ref(&delivery))
        .await?;
    enqueue_now(deps, std::slice::from_ref(&delivery)).await;
    Ok(true)
}
