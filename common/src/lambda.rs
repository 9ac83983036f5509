//! Glue for the non-HTTP Lambdas: the SQS worker's batch and the scheduled sweeper.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};

use crate::deps::Deps;
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
