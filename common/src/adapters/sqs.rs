//! The production queue: an SQS standard queue (with a DLQ configured on it).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{MessageSystemAttributeName, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client as SqsClient;
use futures_util::stream::{self, StreamExt as _};

use crate::error::{Error, Result};
use crate::ports::{Queue, QueueMessage, Received};

/// SQS's limits: 10 entries a batch, 900 s of delay, 20 s of long polling.
const BATCH: usize = 10;
const MAX_DELAY_SECONDS: u64 = 900;
const MAX_WAIT_SECONDS: u64 = 20;
/// `SendMessageBatch` calls in flight at once for one `send`: a fan-out of thousands of
/// messages is hundreds of batches, which one after the other would take a round trip each.
const BATCHES_IN_FLIGHT: usize = 8;
/// How much longer than its wait a long poll may take to answer before the attempt is given up.
const LONG_POLL_MARGIN: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct SqsQueue {
    client: SqsClient,
    url: String,
}

fn sdk_error(error: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::internal(DisplayErrorContext(error).to_string())
}

impl SqsQueue {
    pub fn new(client: SqsClient, url: impl Into<String>) -> SqsQueue {
        SqsQueue {
            client,
            url: url.into(),
        }
    }

    /// One `SendMessageBatch` of at most `BATCH` messages.
    async fn send_batch(&self, chunk: &[(QueueMessage, Duration)]) -> Result<()> {
        let mut entries = Vec::with_capacity(chunk.len());
        for (index, (message, delay)) in chunk.iter().enumerate() {
            let delay = i32::try_from(delay.as_secs().min(MAX_DELAY_SECONDS)).unwrap_or(0);
            entries.push(
                SendMessageBatchRequestEntry::builder()
                    .id(index.to_string())
                    .message_body(serde_json::to_string(message).map_err(Error::internal)?)
                    .delay_seconds(delay)
                    // SQS fair queues: a tenant with a backlog in flight does not hold back
                    // the others' messages, across every consumer.
                    .message_group_id(message.tenant_id().to_string())
                    .build()
                    .map_err(Error::internal)?,
            );
        }
        let output = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(sdk_error)?;
        if let Some(failed) = output.failed().first() {
            return Err(Error::internal(format!(
                "SQS refused {} of {} messages: {}",
                output.failed().len(),
                chunk.len(),
                failed.message().unwrap_or(failed.code())
            )));
        }
        Ok(())
    }

    /// The timeouts of a long poll: an empty queue answers only when the wait is over, so no
    /// read may time out before that (the HTTP client's read timeout applies to the wait for
    /// the response headers), and the attempt ends `LONG_POLL_MARGIN` after it, so that a
    /// connection that never answers cannot hold the consumer forever. The client's connect
    /// timeout is kept.
    fn long_poll_timeouts(&self, wait_seconds: u64) -> aws_sdk_sqs::config::Builder {
        let limit = Duration::from_secs(wait_seconds) + LONG_POLL_MARGIN;
        let mut timeouts = TimeoutConfig::builder()
            .read_timeout(limit)
            .operation_attempt_timeout(limit)
            .build();
        if let Some(client) = self.client.config().timeout_config() {
            timeouts.take_defaults_from(client);
        }
        aws_sdk_sqs::config::Builder::default().timeout_config(timeouts)
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, messages: &[(QueueMessage, Duration)]) -> Result<()> {
        // Futures do nothing until polled: this only lines the batches up.
        let batches: Vec<_> = messages
            .chunks(BATCH)
            .map(|chunk| self.send_batch(chunk))
            .collect();
        let mut batches = stream::iter(batches).buffer_unordered(BATCHES_IN_FLIGHT);
        // The first failure is the answer, as when batches went one by one; the batches still in
        // flight are dropped with the stream (queued or not, the sweeper covers them).
        while let Some(sent) = batches.next().await {
            sent?;
        }
        Ok(())
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Received>> {
        let wait_seconds = wait.as_secs().min(MAX_WAIT_SECONDS);
        let output = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(i32::try_from(max.clamp(1, BATCH)).unwrap_or(1))
            .wait_time_seconds(i32::try_from(wait_seconds).unwrap_or(0))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .customize()
            .config_override(self.long_poll_timeouts(wait_seconds))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(output
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|message| {
                let receive_count = message
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1);
                Some(Received {
                    message_id: message.message_id?,
                    receipt: message.receipt_handle?,
                    body: message.body.unwrap_or_default(),
                    receive_count,
                })
            })
            .collect())
    }

    async fn delete(&self, receipt: &str) -> Result<()> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }
}

/// The delivery queue's visibility timeout in production: six times the worker Lambda's 60 s
/// timeout, as Lambda's SQS event source asks, so that a batch still being worked on does not
/// show again. `infra/template.yaml` sets the same and `crm-admin create-tables` creates the
/// queue with it (`tests/it/infra.rs` checks both).
pub const DELIVERY_QUEUE_VISIBILITY: Duration = Duration::from_secs(360);

/// Creates the delivery queue and its dead-letter queue (for tests, local development and
/// `crm-admin create-tables`); returns the queue URL. Idempotent.
pub async fn create_queues(
    client: &SqsClient,
    name: &str,
    visibility_timeout: Duration,
) -> Result<String> {
    let dlq_url = client
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::MessageRetentionPeriod,
            "1209600",
        )
        .send()
        .await
        .map_err(sdk_error)?
        .queue_url
        .ok_or_else(|| Error::internal("SQS returned no DLQ URL"))?;
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(sdk_error)?
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .ok_or_else(|| Error::internal("SQS returned no DLQ ARN"))?;
    let redrive =
        serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}).to_string();
    client
        .create_queue()
        .queue_name(name)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            visibility_timeout.as_secs().to_string(),
        )
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
            redrive,
        )
        .send()
        .await
        .map_err(sdk_error)?
        .queue_url
        .ok_or_else(|| Error::internal("SQS returned no queue URL"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::config::{BehaviorVersion, Region};

    #[test]
    fn a_long_poll_outlasts_its_wait_whatever_the_client_timeouts() {
        let client = SqsClient::from_conf(
            aws_sdk_sqs::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .timeout_config(
                    TimeoutConfig::builder()
                        .connect_timeout(Duration::from_secs(3))
                        .read_timeout(Duration::from_secs(5))
                        .operation_attempt_timeout(Duration::from_secs(5))
                        .build(),
                )
                .build(),
        );
        let queue = SqsQueue::new(client, "http://127.0.0.1/123456789012/q");
        let config = queue.long_poll_timeouts(MAX_WAIT_SECONDS).build();
        let timeouts = config.timeout_config().unwrap();
        let wait = Duration::from_secs(MAX_WAIT_SECONDS);
        assert!(timeouts.read_timeout().unwrap() > wait, "{timeouts:?}");
        assert!(timeouts.operation_attempt_timeout().unwrap() > wait);
        assert_eq!(timeouts.connect_timeout(), Some(Duration::from_secs(3)));
    }
}
