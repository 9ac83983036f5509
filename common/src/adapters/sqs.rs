//! The production queue: an SQS standard queue (with a DLQ configured on it).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{MessageSystemAttributeName, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client as SqsClient;

use crate::error::{Error, Result};
use crate::ports::{Queue, QueueMessage, Received};

/// SQS's limits: 10 entries a batch, 900 s of delay, 20 s of long polling.
const BATCH: usize = 10;
const MAX_DELAY_SECONDS: u64 = 900;
const MAX_WAIT_SECONDS: u64 = 20;

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
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, messages: &[(QueueMessage, Duration)]) -> Result<()> {
        for chunk in messages.chunks(BATCH) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (index, (message, delay)) in chunk.iter().enumerate() {
                let delay = i32::try_from(delay.as_secs().min(MAX_DELAY_SECONDS)).unwrap_or(0);
                entries.push(
                    SendMessageBatchRequestEntry::builder()
                        .id(index.to_string())
                        .message_body(serde_json::to_string(message).map_err(Error::internal)?)
                        .delay_seconds(delay)
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
        }
        Ok(())
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Received>> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(i32::try_from(max.clamp(1, BATCH)).unwrap_or(1))
            .wait_time_seconds(i32::try_from(wait.as_secs().min(MAX_WAIT_SECONDS)).unwrap_or(0))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
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
