//! The sweeper: finishes what a crash interrupted. Runs every minute (EventBridge in AWS, a
//! timer in crm-local); any number may run at once.

use serde::Serialize;

use super::deliveries::{fan_out, message_for};
use crate::deps::Deps;
use crate::error::{Error, Result};
use crate::ports::DeliveryChange;

const BATCH: usize = 500;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// Outbox events whose fan-out had not completed.
    pub events_fanned_out: usize,
    /// Deliveries due for longer than the grace period and not in flight, enqueued again.
    pub deliveries_requeued: usize,
}

pub async fn sweep(deps: &Deps) -> Result<SweepReport> {
    let mut report = SweepReport::default();
    let now = deps.clock.now();
    let grace = chrono::Duration::from_std(deps.settings.sweep_grace).unwrap_or_default();
    let cutoff = now - grace;

    for event in deps.store.undispatched_events(cutoff, BATCH).await? {
        fan_out(deps, &event).await?;
        deps.store
            .mark_event_dispatched(event.tenant_id, event.id)
            .await?;
        report.events_fanned_out += 1;
    }

    let mut requeued = Vec::new();
    for delivery in deps.store.due_deliveries(cutoff, BATCH).await? {
        if delivery.is_leased(now) || !delivery.status.is_open() {
            continue;
        }
        // The claim: of two sweepers reading the same delivery, one write wins; the other
        // skips it, so each stuck delivery is enqueued once.
        let change = DeliveryChange {
            after: delivery.requeued(now),
            before: delivery,
            attempt: None,
        };
        match deps.store.write_delivery(&change).await {
            Ok(()) => requeued.push(change.after),
            Err(Error::Conflict(_)) => {}
            Err(error) => return Err(error),
        }
    }
    if !requeued.is_empty() {
        let messages: Vec<_> = requeued
            .iter()
            .map(|d| (message_for(d), std::time::Duration::ZERO))
            .collect();
        deps.queue.send(&messages).await?;
    }
    report.deliveries_requeued = requeued.len();
    if report != SweepReport::default() {
        tracing::info!(?report, "sweep finished work left behind");
    }
    Ok(report)
}
