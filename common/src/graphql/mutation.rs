//! Mutations: the typed input becomes the use case's command and goes through the same use
//! case as REST's, so every rule and every validation message is the REST one.

use async_graphql::{Context, Json, Object, Result, ID};
use serde_json::Value;
use uuid::Uuid;

use super::error::OrFieldError;
use super::parse_id;
use super::scope;
use super::types::{
    CreateWebhookInput, CreateWebhookPayload, DateTime, DeleteWebhookPayload,
    NotifyWebhooksPayload, QueuedPayload, RedeliveryPayload, RetryWebhookDeliveriesPayload,
    RotateWebhookSecretPayload, SyncStatusUpdateInput, TestWebhookPayload,
    UpdateSyncStatusesPayload, UpdateWebhookInput, UpdateWebhookPayload,
};
use crate::domain::delivery::RetrySelection;
use crate::domain::event::Notification;
use crate::domain::idempotency::{IdempotentNotification, IDEMPOTENCY_KEY_ARGUMENT};
use crate::domain::recovery::RecoverySelection;
use crate::domain::replay::ReplaySelection;
use crate::domain::sync_status::SyncStatusBatch;
use crate::domain::webhook::NewWebhook;
use crate::error::Error;
use crate::service::{deliveries, redelivery, sync, webhooks, worker};

pub struct Mutation;

/// Complexity of a write, so that one document cannot pack hundreds of them (the limit is
/// `MAX_COMPLEXITY`): at most 50 writes per request.
const MUTATION_COST: usize = 100;
/// Complexity of a mutation that sends requests out (a test delivery) or may queue many
/// deliveries (a retry): at most 5 per request.
const OUTBOUND_COST: usize = 1_000;

#[Object]
impl Mutation {
    /// Creates a webhook; the payload carries its secret, shown this once.
    #[graphql(complexity = "MUTATION_COST + child_complexity")]
    async fn create_webhook(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookInput,
    ) -> Result<CreateWebhookPayload> {
        let (deps, caller, _slot) = scope(ctx).await?;
        let created = webhooks::create_webhook(deps, caller, NewWebhook::from(input))
            .await
            .or_field_error(ctx)?;
        Ok(CreateWebhookPayload {
            secret: created.secret,
            webhook: created.webhook.into(),
        })
    }

    /// Changes the fields given in `input`, and only those.
    #[graphql(complexity = "MUTATION_COST + child_complexity")]
    async fn update_webhook(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateWebhookInput,
    ) -> Result<UpdateWebhookPayload> {
        let (deps, caller, _slot) = scope(ctx).await?;
        let id = parse_id("id", &id).or_field_error(ctx)?;
        let changes = input.into_changes();
        let webhook = webhooks::update_webhook(deps, caller, id, changes)
            .await
            .or_field_error(ctx)?;
        Ok(UpdateWebhookPayload {
            webhook: webhook.into(),
        })
    }

    /// Deletes a webhook; its pending deliveries are cancelled.
    #[graphql(complexity = "MUTATION_COST + child_complexity")]
    async fn delete_webhook(&self, ctx: &Context<'_>, id: ID) -> Result<DeleteWebhookPayload> {
        let (deps, caller, _slot) = scope(ctx).await?;
        let uuid = parse_id("id", &id).or_field_error(ctx)?;
        webhooks::delete_webhook(deps, caller, uuid)
            .await
            .or_field_error(ctx)?;
        Ok(DeleteWebhookPayload {
            success: true,
            deleted_id: ID(uuid.to_string()),
        })
    }

    /// One more attempt of a finished delivery (SUCCESS, FAILED or CANCELLED), recorded as an
    /// attempt of the same delivery with the same `webhook-id`; REST's
    /// `POST /api/webhooks/deliveries/{id}/resend`. A delivery still open is CONFLICT.
    #[graphql(complexity = "MUTATION_COST + child_complexity")]
    async fn resend_webhook_delivery(&self, ctx: &Context<'_>, id: ID) -> Result<QueuedPayload> {
        let (deps, caller, _slot) = scope(ctx).await?;
        let id = parse_id("id", &id).or_field_error(ctx)?;
        let result = redelivery::resend_delivery(deps, caller, id)
            .await
            .or_field_error(ctx)?;
        Ok(QueuedPayload {
            success: result.success,
            queued: result.queued,
        })
    }

    /// The tenant's events accepted from `since` until `until` (default now) that the webhook
    /// subscribes to (and `events` names), sent to it as new deliveries, oldest first; events it
    /// has a delivery of already are left alone. REST's `POST /api/webhooks/{id}/replay`.
    #[graphql(complexity = "MUTATION_COST + child_complexity")]
    async fn replay_webhook_events(
        &self,
        ctx: &Context<'_>,
        id: ID,
        since: DateTime,
        until: Option<DateTime>,
        events: Option<Vec<String>>,
    ) -> Result<RedeliveryPayload> {
        let (deps, caller, _slot) = scope(ctx).await?;
        let id = parse_id("id", &id).or_field_error(ctx)?;
        let selection = ReplaySelection {
            since: Some(since.0),
            until: until.map(|t| t.0),
            events,
        };
        let result = redelivery::replay(deps, caller, id, selection)
            .await
            .or_field_error(ctx)?;
        Ok(result.into())
    }

    /// The webhook's FAILED, then CANCELLED, deliveries created from `since` until `until`
    /// (default now), each sent again as one more attempt of the same delivery. REST's
    /// `POST /api/webhooks/{id}/recover`.
    #[graphql(complexity = "MUTATION_COST + child_complexity")]
    async fn recover_webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        id: ID,
        since: DateTime,
        until: Option<DateTime>,
    ) -> Result<RedeliveryPayload> {
        let (deps, caller, _slot) = scope(ctx).await?;
        let id = parse_id("id", &id).or_field_error(ctx)?;
        let selection = RecoverySelection {
            since: Some(since.0),
            until: until.map(|t| t.0),
        };
        let result = redelivery::recover(deps, caller, id, selection)
            .await
            .or_field_error(ctx)?;
        Ok(result.into())
    }

    /// Sends one signed `webhook.test` delivery now and waits for the answer.
    #[graphql(complexity = "OUTBOUND_COST + child_complexity")]
    async fn test_webhook(&self, ctx: &Context<'_>, id: ID) -> Result<TestWebhookPayload> {
        let (deps, caller, _slot) = scope(ctx).await?;
        let id = parse_id("id", &id).or_field_error(ctx)?;
        let result = worker::test_webhook(deps, caller, id)
            .await
            .or_field_error(ctx)?;
        Ok(result.into())
    }

    /// A new signing secret, shown this once. The old one keeps signing for `overlapSeconds`
    /// (0 to 604800; default 86400, 24 hours): seed-era receivers keep verifying
    /// `X-Webhook-Signature` with it until then.
    #[graphql(complexity = "MUTATION_COST + child_complexity")]
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        id: ID,
        overlap_seconds: Option<i32>,
    ) -> Result<RotateWebhookSecretPayload> {
        let (deps, caller, _slot) = scope(ctx).await?;
        let id = parse_id("id", &id).or_field_error(ctx)?;
        let overlap = overlap_seconds.map(i64::from);
        let rotated = webhooks::rotate_secret(deps, caller, id, overlap)
            .await
            .or_field_error(ctx)?;
        Ok(RotateWebhookSecretPayload {
            secret: rotated.secret,
            previous_secret_expires_at: DateTime(rotated.previous_secret_expires_at),
            webhook: rotated.webhook.into(),
        })
    }

    /// Seed 000's notify: sends `event` with `data` to every active webhook subscribed to it.
    /// `timestamp` is when the event happened (the payload's `timestamp`); absent: now.
    /// `idempotencyKey` (1 to 255 printable ASCII characters, kept 24 hours per tenant), as
    /// REST's `Idempotency-Key` header: the same notification sent again with the same key
    /// answers the first one's `deliveryIds` and creates nothing; another notification with
    /// the key is a `CONFLICT` error.
    #[graphql(complexity = "OUTBOUND_COST + child_complexity")]
    async fn notify_webhooks(
        &self,
        ctx: &Context<'_>,
        event: String,
        data: Json<Value>,
        timestamp: Option<DateTime>,
        idempotency_key: Option<String>,
    ) -> Result<NotifyWebhooksPayload> {
        let (deps, caller, _slot) = scope(ctx).await?;
        let command = IdempotentNotification {
            key: idempotency_key,
            key_field: IDEMPOTENCY_KEY_ARGUMENT,
            notification: Notification {
                event,
                data: data.0,
                occurred_at: timestamp.map(|t| t.0),
            },
        };
        let result = deliveries::notify(deps, caller, command)
            .await
            .or_field_error(ctx)?;
        Ok(NotifyWebhooksPayload {
            success: result.success,
            delivery_ids: result
                .delivery_ids
                .iter()
                .map(|id| ID(id.to_string()))
                .collect(),
        })
    }

    /// REST's batch of update-sync-status: up to 500 updates, each applied on its own (with
    /// its counters and its `sync.status.changed` event) and answered in order; one refused
    /// update (unknown or malformed id, a reason on a status other than FAILED) never fails
    /// the others. More than 500 is a BAD_USER_INPUT error for the whole mutation.
    #[graphql(complexity = "MUTATION_COST + child_complexity")]
    async fn update_sync_statuses(
        &self,
        ctx: &Context<'_>,
        updates: Vec<SyncStatusUpdateInput>,
    ) -> Result<UpdateSyncStatusesPayload> {
        let (deps, caller, _slot) = scope(ctx).await?;
        let batch = SyncStatusBatch {
            entries: updates.into_iter().map(Into::into).collect(),
        };
        let results = sync::update_sync_statuses(deps, caller, batch)
            .await
            .or_field_error(ctx)?;
        Ok(UpdateSyncStatusesPayload {
            success: true,
            results: results.into_iter().map(Into::into).collect(),
        })
    }

    /// Queues FAILED deliveries for one more attempt each: all of the tenant's, one webhook's,
    /// or the listed ones, as REST's retry does. Each is sent again at once, as the attempt
    /// after its earlier ones; if it fails, it is FAILED again without automatic retries.
    #[graphql(complexity = "OUTBOUND_COST + child_complexity")]
    async fn retry_webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        webhook_id: Option<ID>,
        delivery_ids: Option<Vec<ID>>,
    ) -> Result<RetryWebhookDeliveriesPayload> {
        let (deps, caller, _slot) = scope(ctx).await?;
        let selection = RetrySelection {
            webhook_id: webhook_id
                .map(|id| parse_id("webhookId", &id))
                .transpose()
                .or_field_error(ctx)?,
            delivery_ids: delivery_ids
                .map(|ids| {
                    ids.iter()
                        .map(|id| Uuid::parse_str(id).ok())
                        .collect::<Option<Vec<Uuid>>>()
                        .ok_or_else(|| {
                            Error::invalid_field("deliveryIds", "must be an array of UUIDs")
                        })
                })
                .transpose()
                .or_field_error(ctx)?,
        };
        let result = deliveries::retry_failed(deps, caller, selection)
            .await
            .or_field_error(ctx)?;
        Ok(RetryWebhookDeliveriesPayload {
            success: result.success,
            retried_count: result.retried_count,
        })
    }
}
