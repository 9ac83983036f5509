//! The sweeper: finishes what a crash interrupted. Runs every minute (EventBridge in AWS, a
//! timer in crm-local); any number may run at once.
//!
//! One run works until its work is done or its time is up, whichever comes first, so that a
//! backlog (a minute of SQS outage at 1,000 deliveries/s is 60,000 stranded deliveries) drains
//! in a few runs rather than 500 deliveries a minute.

use std::future::ready;
use std::time::{Duration, Instant};

use futures_util::{stream, StreamExt, TryStreamExt};
use serde::Serialize;

use super::deliveries::fan_out;
use crate::domain::delivery::DueDelivery;
use crate::error::Result;
use crate::metrics::Count;
use crate::ports::{DeliveryMessage, DueCursor, QueueMessage, Requeue};
use crate::service::deps::Deps;

/// Outbox events read at a time.
const EVENT_PAGE: usize = 100;
/// Fan-outs of stuck events in flight at once.
const FAN_OUTS_IN_FLIGHT: usize = 8;
/// Due deliveries read at a time (all of the store's index shards together).
const DUE_PAGE: usize = 4_000;
/// Requeues per store call: one DynamoDB transaction, one SQLite write; their messages are
/// then sent in SQS batches of 10, 8 in flight (the queue adapter's).
const CLAIM_BATCH: usize = 100;
/// Batches claimed and sent at once.
const BATCHES_IN_FLIGHT: usize = 4;
/// Expired deliveries (and expired events) removed per store call: one SQLite write of a few
/// milliseconds, so the writer thread is never held long.
const EXPIRED_BATCH: usize = 500;
/// How long one run works at most: most of the minute before the next run (crm-local's timer,
/// or a Lambda given a longer timeout than the template's 60 s).
const BUDGET: Duration = Duration::from_secs(55);
/// Kept free before the invocation's deadline, for the writes and sends in flight to finish.
const DEADLINE_MARGIN: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// Outbox events whose fan-out had not completed.
    pub events_fanned_out: usize,
    /// Deliveries due for longer than the grace period and not in flight, enqueued again.
    pub deliveries_requeued: usize,
    /// Finished deliveries past their retention, removed (the SQLite store's: DynamoDB's TTL
    /// removes its own).
    pub deliveries_expired: usize,
    /// Dispatched events past their retention, removed (likewise).
    pub events_expired: usize,
    /// Clients' sync history entries past their retention, removed (likewise).
    pub sync_history_expired: usize,
    /// The run stopped at its time budget with work possibly left, for the next run.
    pub unfinished: bool,
}

/// When a run that starts at `start` stops: after `BUDGET`, or `DEADLINE_MARGIN` before the
/// invocation's `deadline`, whichever comes first.
pub fn stop_time(start: Instant, deadline: Option<Instant>) -> Instant {
    let budget = start + BUDGET;
    match deadline {
        Some(deadline) => budget.min(deadline.checked_sub(DEADLINE_MARGIN).unwrap_or(deadline)),
        None => budget,
    }
}

/// One run: stuck outbox events, then stuck deliveries, then what is past its retention, until
/// done or `stop_time(now, deadline)`.
pub async fn sweep(deps: &Deps, deadline: Option<Instant>) -> Result<SweepReport> {
    let stop_at = stop_time(Instant::now(), deadline);
    let grace = chrono::Duration::from_std(deps.settings.sweep_grace).unwrap_or_default();
    let cutoff = deps.clock.now() - grace;
    let mut report = SweepReport::default();
    // Each step's recoveries are counted as it ends, so that a run failing part-way (the runs
    // the recoveries' alarm is for) still counts what it did.
    let fanned_out = fan_out_stuck_events(deps, cutoff, stop_at, &mut report).await;
    let events = report.events_fanned_out as u64;
    deps.metrics.count(Count::EventsRecovered, events);
    fanned_out?;
    let requeued = requeue_stuck_deliveries(deps, cutoff, stop_at, &mut report).await;
    let deliveries = report.deliveries_requeued as u64;
    deps.metrics.count(Count::DeliveriesRecovered, deliveries);
    requeued?;
    remove_expired(deps, stop_at, &mut report).await?;
    if report != SweepReport::default() {
        tracing::info!(?report, "sweep finished work left behind");
    }
    Ok(report)
}

/// Fans out events not marked dispatched and older than `cutoff`, a page at a time.
async fn fan_out_stuck_events(
    deps: &Deps,
    cutoff: chrono::DateTime<chrono::Utc>,
    stop_at: Instant,
    report: &mut SweepReport,
) -> Result<()> {
    loop {
        let events = deps.store.undispatched_events(cutoff, EVENT_PAGE).await?;
        let last_page = events.len() < EVENT_PAGE;
        report.events_fanned_out += stream::iter(events)
            .take_while(|_| ready(Instant::now() < stop_at))
            .map(|event| async move {
                fan_out(deps, &event).await?;
                deps.store
                    .mark_event_dispatched(event.tenant_id, event.id)
                    .await
            })
            .buffer_unordered(FAN_OUTS_IN_FLIGHT)
            .try_fold(0, |sum, ()| ready(Ok(sum + 1)))
            .await?;
        if Instant::now() >= stop_at {
            report.unfinished = true;
            return Ok(());
        }
        // A marked event leaves the index, so the next read starts with those not yet read.
        if last_page {
            return Ok(());
        }
    }
}

/// Removes what is past its retention, a bounded batch per store call, until nothing is left or
/// the run's time is up: last, so that it never delays the sweep's recovery work.
async fn remove_expired(deps: &Deps, stop_at: Instant, report: &mut SweepReport) -> Result<()> {
    while Instant::now() < stop_at {
        let removed = deps
            .store
            .remove_expired(deps.clock.now(), EXPIRED_BATCH)
            .await?;
        report.deliveries_expired += removed.deliveries;
        report.events_expired += removed.events;
        report.sync_history_expired += removed.sync_history;
        if removed.deliveries < EXPIRED_BATCH
            && removed.events < EXPIRED_BATCH
            && removed.sync_history < EXPIRED_BATCH
        {
            return Ok(());
        }
    }
    report.unfinished = true;
    Ok(())
}

/// Requeues open deliveries due before `cutoff` and not leased, a page at a time: each is
/// claimed by a write conditional on its version (of two sweepers, one wins it, so each is
/// enqueued once), a batch of claims at a time, and each batch's winners are enqueued while the
/// next batches are claimed.
async fn requeue_stuck_deliveries(
    deps: &Deps,
    cutoff: chrono::DateTime<chrono::Utc>,
    stop_at: Instant,
    report: &mut SweepReport,
) -> Result<()> {
    let mut cursor: Option<DueCursor> = None;
    loop {
        let page = deps
            .store
            .due_deliveries(cutoff, cursor.as_ref(), DUE_PAGE)
            .await?;
        let now = deps.clock.now();
        let stuck = page
            .deliveries
            .into_iter()
            .filter(|d| d.status.is_open() && !d.is_leased(now));
        report.deliveries_requeued += stream::iter(stuck)
            .take_while(|_| ready(Instant::now() < stop_at))
            .chunks(CLAIM_BATCH)
            .map(|batch| claim_and_enqueue(deps, batch, now))
            .buffer_unordered(BATCHES_IN_FLIGHT)
            .try_fold(0, |sum, sent| ready(Ok(sum + sent)))
            .await?;
        if Instant::now() >= stop_at {
            report.unfinished = true;
            return Ok(());
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(()),
        }
    }
}

/// Claims a batch (the requeue writes) and sends a message for each delivery won; the number
/// sent.
async fn claim_and_enqueue(
    deps: &Deps,
    batch: Vec<DueDelivery>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<usize> {
    let requeues: Vec<Requeue> = batch
        .iter()
        .map(|delivery| Requeue {
            before_version: delivery.version,
            after: delivery.requeued(now),
        })
        .collect();
    let won = deps.store.requeue_deliveries(&requeues).await?;
    let messages: Vec<(QueueMessage, Duration)> = requeues
        .iter()
        .zip(won)
        .filter(|(_, won)| *won)
        .map(|(requeue, _)| {
            let message = DeliveryMessage {
                tenant_id: requeue.after.tenant_id,
                delivery_id: requeue.after.id,
                webhook_id: None,
                retry: false,
                resend_of: None,
                send_slot: None,
            };
            (QueueMessage::from(message), Duration::ZERO)
        })
        .collect();
    if !messages.is_empty() {
        deps.queue.send(&messages).await?;
    }
    Ok(messages.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_stops_at_its_budget_or_before_the_deadline() {
        let start = Instant::now();
        assert_eq!(stop_time(start, None), start + BUDGET);
        let far = start + Duration::from_secs(900);
        assert_eq!(stop_time(start, Some(far)), start + BUDGET);
        let near = start + Duration::from_secs(20);
        assert_eq!(stop_time(start, Some(near)), near - DEADLINE_MARGIN);
    }
}
