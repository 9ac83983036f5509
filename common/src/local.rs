//! `crm-local`'s background tasks: the queue consumer and the sweeper's timer. They call the
//! same functions as the `worker` and `sweeper` Lambdas.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Semaphore};

use crate::deps::Deps;
use crate::service::sweeper::sweep;
use crate::service::worker::{process_message, MessageOutcome};

/// Attempts in flight at once in one process (and so, at most, connections to one receiver).
pub const CONCURRENCY: usize = 64;
const BATCH: usize = 10;

/// Consumes the queue until `stop` turns true: wakes on enqueue, never polls on a timer.
pub async fn run_worker(deps: Deps, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    while !*stop.borrow() {
        // Only take messages there is room to work on, so none waits out its visibility.
        let Ok(room) = Arc::clone(&permits).acquire_many_owned(BATCH as u32).await else {
            break;
        };
        drop(room);
        let received = tokio::select! {
            received = deps.queue.receive(BATCH, Duration::from_secs(20)) => received,
            _ = stop.changed() => break,
        };
        let messages = match received {
            Ok(messages) => messages,
            Err(error) => {
                tracing::error!(%error, "receiving from the queue failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for message in messages {
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                break;
            };
            let deps = deps.clone();
            tasks.spawn(async move {
                let outcome = process_message(&deps, &message.body, None).await;
                if outcome == MessageOutcome::Done {
                    if let Err(error) = deps.queue.delete(&message.receipt).await {
                        tracing::warn!(%error, "deleting a handled message failed; it will be redelivered");
                    }
                }
                drop(permit);
            });
        }
        while tasks.try_join_next().is_some() {}
    }
    // Let attempts in progress finish and record their result.
    while tasks.join_next().await.is_some() {}
}

/// Runs the sweeper every `interval` until `stop` turns true.
pub async fn run_sweeper(deps: Deps, interval: Duration, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if let Err(error) = sweep(&deps).await {
                    tracing::error!(%error, "sweep failed");
                }
            }
            _ = stop.changed() => break,
        }
    }
}
