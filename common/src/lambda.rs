//! Glue for the non-HTTP Lambdas: the SQS worker's batch and the scheduled sweeper. Each
//! invocation ends by writing its metrics (`Metrics::flush`).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};

use crate::error::Result;
use crate::service::deps::Deps;
use crate::service::sweeper::{sweep, SweepReport};
use crate::service::worker::{process_message, MessageOutcome};

/// Converts the invocation deadline (epoch milliseconds) into an `Instant`.
pub fn deadline_from_epoch_ms(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

/// Processes an SQS batch concurrently and reports only the records to redeliver
/// (`ReportBatchItemFailures`): the rest are deleted by Lambda.
pub async fn handle_sqs_event(
    deps: &Deps,
    event: SqsEvent,
    deadline: Option<Instant>,
) -> SqsBatchResponse {
    let work = event.records.into_iter().map(|record| async move {
        let body = record.body.unwrap_or_default();
        let outcome = process_message(deps, &body, deadline).await;
        (record.message_id.unwrap_or_default(), outcome)
    });
    let outcomes = futures_util::future::join_all(work).await;
    deps.metrics.flush();
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = outcomes
        .into_iter()
        .filter(|(_, outcome)| *outcome == MessageOutcome::RetryLater)
        .map(|(id, _)| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

/// The sweeper's invocation: EventBridge Scheduler's default notification ("Scheduled Event",
/// source `aws.scheduler`) once a minute. Typed, so that anything else invoking the function is
/// refused by the runtime instead of being taken for a tick; the sweep itself does not depend
/// on the event's time, only on the store's clock. It works until its budget or shortly before
/// the invocation's `deadline`.
pub async fn handle_scheduled_event(
    deps: &Deps,
    event: EventBridgeEvent<serde_json::Value>,
    deadline: Option<Instant>,
) -> Result<SweepReport> {
    tracing::debug!(source = %event.source, time = ?event.time, "scheduled sweep");
    let report = sweep(deps, deadline).await;
    deps.metrics.flush();
    report
}
