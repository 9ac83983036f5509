//! The GraphQL types: views of the domain types and of the REST shapes, never a rule of their own.

use async_graphql::{
    ComplexObject, Context, Enum, InputObject, InputValueError, InputValueResult, MaybeUndefined,
    Scalar, ScalarType, SimpleObject, Value, ID,
};
use std::collections::BTreeMap;

use uuid::Uuid;

use super::error::OrFieldError;
use super::scope;
use crate::domain::audit::AuditEntry;
use crate::domain::catalogue::EventType;
use crate::domain::delivery::{Attempt, CountSummary, DeliverySummary};
use crate::domain::delivery_search::{DeliveryFilter, DeliverySearch};
use crate::domain::health::WebhookHealth;
use crate::domain::page::{encode_cursor, Page};
use crate::domain::sync_history::SyncTransition;
use crate::domain::sync_status::{BatchEntry, SyncCounts, SyncStatusUpdate};
use crate::domain::validation::FieldErrors;
use crate::domain::webhook::{NewWebhook, Webhook, WebhookChanges};
use crate::error::Error;
use crate::reply::public_message;
use crate::service::audit::AuditListing;
use crate::service::deliveries::{self, DeliveryStats, WebhookCounts};
use crate::service::input::Input;
use crate::service::redelivery::RedeliveryResult;
use crate::service::sync::BatchResult;
use crate::service::worker::TestResult;
use crate::time::{parse_rfc3339, rfc3339};

/// An instant as RFC 3339 text in UTC with milliseconds, e.g. `2026-11-01T09:30:00.000Z`: the
/// same text as in the REST API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime(pub chrono::DateTime<chrono::Utc>);

/// An instant as RFC 3339 text in UTC with milliseconds, e.g. `2026-11-01T09:30:00.000Z`.
#[Scalar(
    name = "DateTime",
    specified_by_url = "https://www.rfc-editor.org/rfc/rfc3339"
)]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(text) => parse_rfc3339(text)
                .map(DateTime)
                .ok_or_else(|| InputValueError::custom("must be an RFC 3339 date and time")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(rfc3339(self.0))
    }
}

/// A custom header sent with every delivery of a webhook.
#[derive(Debug, Clone, SimpleObject)]
pub struct WebhookHeader {
    /// Lowercase header name.
    pub name: String,
    /// `********` for keys whose role lacks WEBHOOK_UPDATE. Sent back as is in
    /// `updateWebhook`, it keeps the value.
    pub value: String,
}

/// A webhook endpoint of the tenant. Its secret is never shown here: `createWebhook` and
/// `rotateWebhookSecret` return it, once.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "Webhook")]
pub struct WebhookNode {
    pub id: ID,
    /// Where deliveries are POSTed.
    pub url: String,
    pub description: Option<String>,
    /// Subscriptions: event names of `webhookEvents`, `*`, or `prefix.*`.
    pub events: Vec<String>,
    /// Custom headers sent with every delivery.
    pub headers: Vec<WebhookHeader>,
    /// Inactive webhooks receive nothing; their pending deliveries are cancelled.
    pub active: bool,
    /// Retries after a failed first attempt, 0 to 10.
    pub max_retries: u32,
    /// Seconds before retry 1, 2, …, the last repeating; null: the deployment's
    /// (`WEBHOOK_RETRY_DELAYS`). Each delay is jittered (`WEBHOOK_RETRY_JITTER`).
    pub retry_schedule: Option<Vec<u64>>,
    /// How long an attempt waits for the response, 100 to 30000 ms.
    pub timeout_ms: u32,
    /// At most this many deliveries in any one second, 1 to 10000; null: unlimited.
    pub rate_limit_per_second: Option<u32>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
    /// How its deliveries have been going.
    pub health: WebhookHealthNode,
    /// Why the service deactivated it; null when active or deactivated by a user.
    pub disabled_reason: Option<DisabledReasonValue>,
    pub disabled_at: Option<DateTime>,
}

/// An endpoint's health, from its attempts.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "WebhookHealth")]
pub struct WebhookHealthNode {
    /// A recent 2xx answer (recorded at most once a minute while nothing fails).
    pub last_success_at: Option<DateTime>,
    /// The last attempt that failed.
    pub last_failure_at: Option<DateTime>,
    /// Deliveries that ended FAILED since the last 2xx answer.
    pub consecutive_failures: u32,
    /// The first failed attempt since the last 2xx answer: every attempt since has failed.
    pub failing_since: Option<DateTime>,
}

impl From<WebhookHealth> for WebhookHealthNode {
    fn from(health: WebhookHealth) -> WebhookHealthNode {
        WebhookHealthNode {
            last_success_at: health.last_success_at.map(DateTime),
            last_failure_at: health.last_failure_at.map(DateTime),
            consecutive_failures: health.consecutive_failures,
            failing_since: health.failing_since.map(DateTime),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(
    name = "WebhookDisabledReason",
    remote = "crate::domain::health::DisabledReason"
)]
pub enum DisabledReasonValue {
    /// Every attempt failed for WEBHOOK_DISABLE_AFTER_SECONDS.
    EndpointFailing,
    /// The endpoint answered 410 Gone.
    EndpointGone,
}

impl From<Webhook> for WebhookNode {
    fn from(webhook: Webhook) -> WebhookNode {
        WebhookNode {
            id: ID(webhook.id.to_string()),
            url: webhook.url,
            description: webhook.description,
            events: webhook.events,
            headers: webhook
                .headers
                .into_iter()
                .map(|(name, value)| WebhookHeader { name, value })
                .collect(),
            active: webhook.active,
            max_retries: webhook.max_retries,
            retry_schedule: webhook.retry_schedule.map(|schedule| schedule.seconds()),
            timeout_ms: webhook.timeout_ms,
            rate_limit_per_second: webhook.rate_limit_per_second,
            created_at: DateTime(webhook.created_at),
            updated_at: DateTime(webhook.updated_at),
            health: webhook.health.into(),
            disabled_reason: webhook.disabled_reason.map(Into::into),
            disabled_at: webhook.disabled_at.map(DateTime),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(
    name = "WebhookDeliveryStatus",
    remote = "crate::domain::delivery::DeliveryStatus"
)]
pub enum DeliveryStatusValue {
    /// Waiting for its first attempt.
    Pending,
    /// A 2xx answer.
    Success,
    /// Every attempt failed (or the receiver answered 410 Gone); `retryWebhookDeliveries` re-sends.
    Failed,
    /// Failed at least once; the next attempt is at `nextAttemptAt`.
    Retrying,
    /// Not sent: the webhook was deleted or deactivated.
    Cancelled,
}

/// One HTTP attempt of a delivery.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "WebhookDeliveryAttempt")]
pub struct AttemptNode {
    /// 1 for the first attempt; retry n is attempt n + 1.
    pub number: u32,
    /// When the request was sent (REST's `at`).
    pub at: DateTime,
    /// When the request was sent.
    #[graphql(deprecation = "Use `at`, the name REST gives it.")]
    pub time: DateTime,
    /// The receiver's HTTP status; null when no answer came (timeout, refused connection).
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    pub error: Option<String>,
    /// The start of the receiver's answer, capped.
    pub response_body: String,
}

impl From<Attempt> for AttemptNode {
    fn from(attempt: Attempt) -> AttemptNode {
        AttemptNode {
            number: attempt.number,
            at: DateTime(attempt.at),
            time: DateTime(attempt.at),
            status_code: attempt.status_code,
            duration_ms: attempt.duration_ms,
            error: attempt.error,
            response_body: attempt.response_body,
        }
    }
}

/// One event sent to one webhook, with every attempt.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "WebhookDelivery", complex)]
pub struct DeliveryNode {
    pub id: ID,
    pub webhook_id: ID,
    /// The payload's `id` and the `webhook-id` header: the same on every attempt.
    pub event_id: ID,
    pub event: String,
    pub status: DeliveryStatusValue,
    pub attempt_count: u32,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    /// When the next attempt is due; null once the delivery is final.
    pub next_attempt_at: Option<DateTime>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
    #[graphql(skip)]
    pub loaded_attempts: Option<Vec<Attempt>>,
}

impl DeliveryNode {
    pub fn new(delivery: DeliverySummary, attempts: Option<Vec<Attempt>>) -> DeliveryNode {
        DeliveryNode {
            id: ID(delivery.id.to_string()),
            webhook_id: ID(delivery.webhook_id.to_string()),
            event_id: ID(delivery.event_id.to_string()),
            event: delivery.event,
            status: delivery.status.into(),
            attempt_count: delivery.attempt_count,
            last_status_code: delivery.last_status_code,
            last_error: delivery.last_error,
            next_attempt_at: delivery.next_attempt_at.map(DateTime),
            created_at: DateTime(delivery.created_at),
            updated_at: DateTime(delivery.updated_at),
            loaded_attempts: attempts,
        }
    }
}

#[ComplexObject]
impl DeliveryNode {
    /// Every attempt, oldest first.
    #[graphql(complexity = "5 + child_complexity")]
    async fn attempts(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<AttemptNode>> {
        let attempts = match &self.loaded_attempts {
            Some(attempts) => attempts.clone(),
            None => {
                let (deps, caller, _slot) = scope(ctx).await?;
                let id = self.id.parse().map_err(|_| {
                    super::error::field_error(ctx, crate::error::Error::internal("delivery id"))
                })?;
                deliveries::get_delivery(deps, caller, id)
                    .await
                    .or_field_error(ctx)?
                    .attempts
            }
        };
        Ok(attempts.into_iter().map(AttemptNode::from).collect())
    }
}

/// Where a page ends and whether another follows (Relay's `PageInfo`).
#[derive(Debug, Clone, SimpleObject)]
pub struct PageInfo {
    /// Pass `endCursor` as `after` for the next page.
    pub has_next_page: bool,
    /// Where the next page starts: the last edge's cursor, or, when a filter's read stopped
    /// before the page was full (it may even be empty), the last item read.
    pub end_cursor: Option<String>,
    /// True when this page was asked for with `after`.
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
}

#[derive(Debug, Clone, SimpleObject)]
pub struct WebhookEdge {
    /// Opaque and stable: pass it as `after` to continue after this webhook.
    pub cursor: String,
    pub node: WebhookNode,
}

/// Webhooks in creation order.
#[derive(Debug, Clone, SimpleObject)]
pub struct WebhookConnection {
    pub edges: Vec<WebhookEdge>,
    pub page_info: PageInfo,
}

#[derive(Debug, Clone, SimpleObject)]
pub struct WebhookDeliveryEdge {
    /// Opaque and stable: pass it as `after` to continue after this delivery.
    pub cursor: String,
    pub node: DeliveryNode,
}

/// Deliveries, newest first.
#[derive(Debug, Clone, SimpleObject)]
pub struct WebhookDeliveryConnection {
    pub edges: Vec<WebhookDeliveryEdge>,
    pub page_info: PageInfo,
}

/// Edges with the REST cursors (the same opaque text as `nextCursor`), and the page info.
fn edges<T, N>(
    page: Page<T>,
    asked_after: bool,
    id_of: impl Fn(&T) -> uuid::Uuid,
    node: impl Fn(T) -> N,
) -> (Vec<(String, N)>, PageInfo) {
    let edges: Vec<(String, N)> = page
        .items
        .into_iter()
        .map(|item| (encode_cursor(id_of(&item)), node(item)))
        .collect();
    // A page cut short by a filter's read budget goes on after the last item read, which may
    // be past its last edge: `next_cursor` says where.
    let end_cursor = page
        .next_cursor
        .clone()
        .or_else(|| edges.last().map(|(cursor, _)| cursor.clone()));
    let info = PageInfo {
        has_next_page: page.next_cursor.is_some(),
        end_cursor,
        has_previous_page: asked_after,
        start_cursor: edges.first().map(|(cursor, _)| cursor.clone()),
    };
    (edges, info)
}

impl WebhookConnection {
    pub fn new(page: Page<Webhook>, asked_after: bool) -> WebhookConnection {
        let (edges, page_info) = edges(page, asked_after, |w| w.id, WebhookNode::from);
        WebhookConnection {
            edges: edges
                .into_iter()
                .map(|(cursor, node)| WebhookEdge { cursor, node })
                .collect(),
            page_info,
        }
    }
}

impl WebhookDeliveryConnection {
    pub fn new(page: Page<DeliverySummary>, asked_after: bool) -> WebhookDeliveryConnection {
        let (edges, page_info) = edges(page, asked_after, |d| d.id, |d| DeliveryNode::new(d, None));
        WebhookDeliveryConnection {
            edges: edges
                .into_iter()
                .map(|(cursor, node)| WebhookDeliveryEdge { cursor, node })
                .collect(),
            page_info,
        }
    }
}

/// An event a webhook can subscribe to.
#[derive(Debug, Clone, SimpleObject)]
pub struct WebhookEventType {
    pub name: String,
    pub description: String,
}

impl From<&EventType> for WebhookEventType {
    fn from(event: &EventType) -> WebhookEventType {
        WebhookEventType {
            name: event.name.to_owned(),
            description: event.description.to_owned(),
        }
    }
}

/// Deliveries per status and the success rate: REST's `GET /api/webhooks/stats`, field for field.
#[derive(Debug, Clone, SimpleObject)]
pub struct WebhookStats {
    /// The webhook these counts are for; null for the whole tenant.
    pub webhook_id: Option<ID>,
    pub total: i64,
    pub pending: i64,
    pub success: i64,
    pub failed: i64,
    pub retrying: i64,
    pub cancelled: i64,
    /// success / (success + failed); null until a delivery has finished.
    pub success_rate: Option<f64>,
    /// Per webhook, in the tenant-wide stats only.
    pub webhooks: Vec<WebhookStats>,
    /// The webhook's health, in one webhook's stats only.
    pub health: Option<WebhookHealthNode>,
}

impl WebhookStats {
    fn of(counts: CountSummary, webhook_id: Option<Uuid>, webhooks: Vec<WebhookStats>) -> Self {
        WebhookStats {
            webhook_id: webhook_id.map(|id| ID(id.to_string())),
            total: counts.total,
            pending: counts.pending,
            success: counts.success,
            failed: counts.failed,
            retrying: counts.retrying,
            cancelled: counts.cancelled,
            success_rate: counts.success_rate,
            webhooks,
            health: None,
        }
    }
}

impl From<WebhookCounts> for WebhookStats {
    fn from(entry: WebhookCounts) -> WebhookStats {
        WebhookStats {
            health: entry.health.map(Into::into),
            ..WebhookStats::of(entry.counts, Some(entry.webhook_id), Vec::new())
        }
    }
}

impl From<DeliveryStats> for WebhookStats {
    fn from(stats: DeliveryStats) -> WebhookStats {
        let webhooks = stats.webhooks.into_iter().map(WebhookStats::from).collect();
        WebhookStats::of(stats.overall, None, webhooks)
    }
}

/// The tenant's clients per CRM sync status: REST's `GET /api/crm/sync-status`.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "SyncStatus")]
pub struct SyncStatusNode {
    pub total_clients: i64,
    pub synced_clients: i64,
    pub pending_clients: i64,
    pub failed_clients: i64,
    pub needs_update_clients: i64,
    pub last_sync_time: Option<DateTime>,
}

impl From<SyncCounts> for SyncStatusNode {
    fn from(counts: SyncCounts) -> SyncStatusNode {
        SyncStatusNode {
            total_clients: counts.total_clients,
            synced_clients: counts.synced_clients,
            pending_clients: counts.pending_clients,
            failed_clients: counts.failed_clients,
            needs_update_clients: counts.needs_update_clients,
            last_sync_time: counts.last_sync_time.map(DateTime),
        }
    }
}

/// One change of a client's sync status: REST's sync-history entry.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "SyncTransition")]
pub struct SyncTransitionNode {
    pub id: ID,
    pub client_id: ID,
    pub at: DateTime,
    pub from: SyncStatusValue,
    pub to: SyncStatusValue,
    /// Why the sync failed, as reported with FAILED; null otherwise.
    pub error: Option<String>,
    pub error_code: Option<String>,
}

impl From<SyncTransition> for SyncTransitionNode {
    fn from(entry: SyncTransition) -> SyncTransitionNode {
        SyncTransitionNode {
            id: ID(entry.id.to_string()),
            client_id: ID(entry.client_id.to_string()),
            at: DateTime(entry.at),
            from: entry.from.into(),
            to: entry.to.into(),
            error: entry.error,
            error_code: entry.error_code,
        }
    }
}

#[derive(Debug, Clone, SimpleObject)]
pub struct SyncTransitionEdge {
    /// Opaque and stable: pass it as `after` to continue after this entry.
    pub cursor: String,
    pub node: SyncTransitionNode,
}

/// A client's sync status changes, newest first.
#[derive(Debug, Clone, SimpleObject)]
pub struct SyncHistoryConnection {
    pub edges: Vec<SyncTransitionEdge>,
    pub page_info: PageInfo,
}

impl SyncHistoryConnection {
    pub fn new(page: Page<SyncTransition>, asked_after: bool) -> SyncHistoryConnection {
        let (edges, page_info) = edges(
            page,
            asked_after,
            |e| e.id,
            <SyncTransitionNode as From<SyncTransition>>::from,
        );
        SyncHistoryConnection {
            edges: edges
                .into_iter()
                .map(|(cursor, node)| SyncTransitionEdge { cursor, node })
                .collect(),
            page_info,
        }
    }
}

/// A client's CRM sync status (seed 000's four).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(
    name = "ClientSyncStatus",
    remote = "crate::domain::sync_status::SyncStatus"
)]
pub enum SyncStatusValue {
    Synced,
    Pending,
    Failed,
    NeedsUpdate,
}

/// One update of `updateSyncStatuses`: REST's `{clientId, status, error?, errorCode?}`.
#[derive(Debug, Clone, InputObject)]
#[graphql(name = "SyncStatusUpdateInput")]
pub struct SyncStatusUpdateInput {
    pub client_id: ID,
    pub status: SyncStatusValue,
    /// Why the sync failed: FAILED only, 1 to 1,000 characters; kept as `lastSyncError`.
    pub error: Option<String>,
    /// A code for the failure: FAILED only, 1 to 100 of A-Z a-z 0-9 _ . -; kept as
    /// `lastSyncErrorCode`.
    pub error_code: Option<String>,
}

impl From<SyncStatusUpdateInput> for BatchEntry {
    fn from(input: SyncStatusUpdateInput) -> BatchEntry {
        let update = Uuid::parse_str(input.client_id.trim())
            .map_err(|_| Error::invalid_field("clientId", "must be a UUID"))
            .map(|client_id| SyncStatusUpdate {
                client_id,
                status: input.status.into(),
                error: input.error,
                error_code: input.error_code,
            });
        BatchEntry {
            client_id: Some(input.client_id.0),
            update,
        }
    }
}

#[derive(Debug, Clone, SimpleObject)]
pub struct UpdateSyncStatusesPayload {
    pub success: bool,
    /// One result per update, in the order given.
    pub results: Vec<SyncStatusUpdateResult>,
}

/// What one update did (`ok`), or why it alone was refused (`error`, `code`, `details`).
#[derive(Debug, Clone, SimpleObject)]
pub struct SyncStatusUpdateResult {
    /// The client's id as given.
    pub client_id: Option<String>,
    pub ok: bool,
    /// Whether the status changed (and `sync.status.changed` was emitted); null when refused.
    pub changed: Option<bool>,
    /// The client's sync state after the update; null when refused.
    pub status: Option<SyncStatusValue>,
    pub last_synced_at: Option<DateTime>,
    pub last_sync_attempt_at: Option<DateTime>,
    pub last_sync_error: Option<String>,
    pub last_sync_error_code: Option<String>,
    /// The refusal's sentence, as the REST answer words it.
    pub error: Option<String>,
    /// The refusal's code, as a field error's `extensions.code`: `BAD_USER_INPUT`,
    /// `NOT_FOUND`, `CONFLICT` or `INTERNAL_SERVER_ERROR`.
    pub code: Option<String>,
    /// One message per bad field, on `BAD_USER_INPUT`.
    pub details: Option<async_graphql::Json<BTreeMap<String, String>>>,
}

impl From<BatchResult> for SyncStatusUpdateResult {
    fn from(result: BatchResult) -> SyncStatusUpdateResult {
        let mut node = SyncStatusUpdateResult {
            client_id: result.client_id,
            ok: false,
            changed: None,
            status: None,
            last_synced_at: None,
            last_sync_attempt_at: None,
            last_sync_error: None,
            last_sync_error_code: None,
            error: None,
            code: None,
            details: None,
        };
        match result.outcome {
            Ok(applied) => {
                let client = applied.client;
                node.client_id = Some(client.id.to_string());
                node.ok = true;
                node.changed = Some(applied.changed);
                node.status = Some(client.sync_status.into());
                node.last_synced_at = client.last_synced_at.map(DateTime);
                node.last_sync_attempt_at = client.last_sync_attempt_at.map(DateTime);
                node.last_sync_error = client.last_sync_error;
                node.last_sync_error_code = client.last_sync_error_code;
            }
            Err(error) => {
                if let Error::Internal(cause) = &error {
                    tracing::error!(error = %cause, "internal error in a batch's update");
                }
                node.code = Some(super::error::code_of(&error).to_owned());
                node.error = Some(public_message(&error));
                if let Error::Invalid { details, .. } = error {
                    node.details = Some(async_graphql::Json(details)).filter(|d| !d.0.is_empty());
                }
            }
        }
        node
    }
}

/// Which of the tenant's deliveries `deliveries` finds: every field given must hold.
#[derive(Debug, Clone, Default, InputObject)]
#[graphql(name = "DeliveryFilter")]
pub struct DeliveryFilterInput {
    pub status: Option<DeliveryStatusValue>,
    /// An event name of the catalogue (`webhookEvents`), matched exactly.
    pub event: Option<String>,
    /// Only deliveries to this webhook (another tenant's finds nothing).
    pub webhook_id: Option<ID>,
    /// Created at or after this time; a time within a millisecond counts from the next one.
    pub since: Option<DateTime>,
    /// Created before this time, which must not be before `since`.
    pub until: Option<DateTime>,
}

/// `deliveries`' arguments, read into the search's command (after the permission check, as
/// REST's query) with REST's rules and messages; `first`/`after` read as `limit`/`cursor`.
pub struct SearchArguments {
    pub filter: Option<DeliveryFilterInput>,
    pub page: crate::error::Result<crate::domain::page::PageRequest>,
}

impl Input<DeliverySearch> for SearchArguments {
    fn read(self) -> crate::error::Result<DeliverySearch> {
        let filter = self.filter.unwrap_or_default();
        let mut errors = FieldErrors::default();
        let webhook_id = filter.webhook_id.and_then(|id| {
            let id = Uuid::parse_str(&id).ok();
            if id.is_none() {
                errors.fail("webhookId", "must be a UUID");
            }
            id
        });
        let search = DeliveryFilter {
            status: filter.status.map(Into::into),
            event: filter.event,
            webhook_id,
            since: filter.since.map(|time| time.0),
            until: filter.until.map(|time| time.0),
        };
        DeliverySearch::new(search, self.page, errors)
    }
}

#[derive(Debug, Clone, InputObject)]
#[graphql(name = "WebhookFilter")]
pub struct WebhookFilterInput {
    /// Only active (true) or only inactive (false) webhooks.
    pub active: Option<bool>,
    /// Only webhooks that receive this event; with `*` or `prefix.*`, those that receive at
    /// least one of its events.
    pub event: Option<String>,
}

#[derive(Debug, Clone, InputObject)]
pub struct WebhookHeaderInput {
    pub name: String,
    pub value: String,
}

/// The fields of REST's `POST /api/webhooks`, with the same rules.
#[derive(Debug, Clone, InputObject)]
pub struct CreateWebhookInput {
    /// HTTPS URL that receives the deliveries.
    pub url: String,
    /// Event names of `webhookEvents`, `*`, or `prefix.*`.
    pub events: Vec<String>,
    pub description: Option<String>,
    /// Custom headers (at most 20); the service's own headers cannot be overridden.
    pub headers: Option<Vec<WebhookHeaderInput>>,
    /// Default true.
    pub active: Option<bool>,
    /// 0 to 10, default 3.
    pub max_retries: Option<i32>,
    /// 1 to 10 delays of 1 to 86400 seconds before each retry, the last repeating; default
    /// the deployment's.
    pub retry_schedule: Option<Vec<i32>>,
    /// 100 to 30000, default 5000.
    pub timeout_ms: Option<i32>,
    /// At most this many deliveries in any one second, 1 to 10000; default unlimited.
    pub rate_limit_per_second: Option<i32>,
    /// Bring your own `whsec_` secret; one is generated otherwise.
    pub secret: Option<String>,
}

/// The fields of REST's `PATCH /api/webhooks/{id}`: only the fields given change; a null
/// `description` clears it, a null `url` is refused, and any other null leaves its field alone.
#[derive(Debug, Clone, InputObject)]
pub struct UpdateWebhookInput {
    pub url: MaybeUndefined<String>,
    pub events: MaybeUndefined<Vec<String>>,
    pub description: MaybeUndefined<String>,
    /// Replaces every custom header.
    pub headers: MaybeUndefined<Vec<WebhookHeaderInput>>,
    pub active: MaybeUndefined<bool>,
    pub max_retries: MaybeUndefined<i32>,
    /// Null: back to the deployment's schedule.
    pub retry_schedule: MaybeUndefined<Vec<i32>>,
    pub timeout_ms: MaybeUndefined<i32>,
    /// Null: unlimited.
    pub rate_limit_per_second: MaybeUndefined<i32>,
    /// Only with `active: true`: the deliveries that failed or were cancelled since the webhook
    /// began failing or was deactivated are sent again, by the worker.
    pub recover: MaybeUndefined<bool>,
}

fn header_pairs(headers: Vec<WebhookHeaderInput>) -> Vec<(String, String)> {
    headers
        .into_iter()
        .map(|header| (header.name, header.value))
        .collect()
}

impl From<CreateWebhookInput> for NewWebhook {
    fn from(input: CreateWebhookInput) -> NewWebhook {
        NewWebhook {
            url: input.url,
            events: input.events,
            headers: input.headers.map(header_pairs).unwrap_or_default(),
            description: input.description,
            active: input.active,
            max_retries: input.max_retries.map(i64::from),
            retry_schedule: input.retry_schedule.map(seconds),
            timeout_ms: input.timeout_ms.map(i64::from),
            rate_limit_per_second: input.rate_limit_per_second.map(i64::from),
            secret: input.secret,
        }
    }
}

impl UpdateWebhookInput {
    pub fn into_changes(self) -> WebhookChanges {
        WebhookChanges {
            url: nullable(self.url),
            events: self.events.take(),
            headers: self.headers.take().map(header_pairs),
            description: nullable(self.description),
            active: self.active.take(),
            max_retries: self.max_retries.take().map(i64::from),
            retry_schedule: nullable(self.retry_schedule).map(|delays| delays.map(seconds)),
            timeout_ms: self.timeout_ms.take().map(i64::from),
            rate_limit_per_second: nullable(self.rate_limit_per_second)
                .map(|limit| limit.map(i64::from)),
            recover: self.recover.take().unwrap_or(false),
        }
    }
}

fn seconds(delays: Vec<i32>) -> Vec<i64> {
    delays.into_iter().map(i64::from).collect()
}

/// Left out: `None`; null: `Some(None)`, for the domain to say what clearing means.
fn nullable<T>(value: MaybeUndefined<T>) -> Option<Option<T>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(value) => Some(Some(value)),
    }
}

/// What a recover or a replay queued.
#[derive(Debug, Clone, SimpleObject)]
pub struct RedeliveryPayload {
    pub success: bool,
    /// Deliveries this request queued.
    pub queued: u64,
    /// False: the range was longer than the request's time; the worker queues the rest.
    pub complete: bool,
}

impl From<RedeliveryResult> for RedeliveryPayload {
    fn from(result: RedeliveryResult) -> RedeliveryPayload {
        RedeliveryPayload {
            success: result.success,
            queued: result.queued,
            complete: result.complete,
        }
    }
}

/// What a resend queued.
#[derive(Debug, Clone, SimpleObject)]
pub struct QueuedPayload {
    pub success: bool,
    /// Deliveries queued for one more attempt each.
    pub queued: u64,
}

#[derive(Debug, Clone, SimpleObject)]
pub struct CreateWebhookPayload {
    pub webhook: WebhookNode,
    /// The signing secret, shown this once.
    pub secret: String,
}

#[derive(Debug, Clone, SimpleObject)]
pub struct UpdateWebhookPayload {
    pub webhook: WebhookNode,
}

#[derive(Debug, Clone, SimpleObject)]
pub struct DeleteWebhookPayload {
    pub success: bool,
    pub deleted_id: ID,
}

/// The result of one synchronous `webhook.test` delivery.
#[derive(Debug, Clone, SimpleObject)]
pub struct TestWebhookPayload {
    /// The receiver answered 2xx.
    pub success: bool,
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    pub error: Option<String>,
    /// The recorded delivery, readable with `webhookDelivery`.
    pub delivery_id: ID,
}

impl From<TestResult> for TestWebhookPayload {
    fn from(result: TestResult) -> TestWebhookPayload {
        TestWebhookPayload {
            success: result.success,
            status_code: result.status_code,
            duration_ms: result.duration_ms,
            error: result.error,
            delivery_id: ID(result.delivery_id.to_string()),
        }
    }
}

#[derive(Debug, Clone, SimpleObject)]
pub struct RotateWebhookSecretPayload {
    pub webhook: WebhookNode,
    /// The new secret, shown this once.
    pub secret: String,
    /// Until then the previous secret signs `X-Webhook-Signature` and, beside the new one,
    /// `webhook-signature`; from then on only the new one signs.
    pub previous_secret_expires_at: DateTime,
}

#[derive(Debug, Clone, SimpleObject)]
pub struct NotifyWebhooksPayload {
    pub success: bool,
    /// One delivery per active webhook subscribed to the event.
    pub delivery_ids: Vec<ID>,
}

#[derive(Debug, Clone, SimpleObject)]
pub struct RetryWebhookDeliveriesPayload {
    pub success: bool,
    /// FAILED deliveries accepted for one more attempt each (see `retryWebhookDeliveries`).
    pub retried_count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::delivery::DeliveryStatus;
    use async_graphql::resolver_utils::EnumType;

    /// The GraphQL values are the REST status names, and every domain status has one.
    #[test]
    fn statuses_map_both_ways_by_name() {
        let items = <DeliveryStatusValue as EnumType>::items();
        assert_eq!(items.len(), DeliveryStatus::ALL.len());
        for item in items {
            let status = DeliveryStatus::from(item.value);
            assert_eq!(status.as_str(), item.name);
            assert_eq!(DeliveryStatusValue::from(status), item.value);
        }
    }

    /// A page a filter's read cut short goes on after the last item read, even with no edge.
    #[test]
    fn the_end_cursor_of_a_short_page_is_where_the_read_stopped() {
        let ids: Vec<uuid::Uuid> = (0..3).map(|_| uuid::Uuid::now_v7()).collect();
        let read_on = uuid::Uuid::now_v7();
        let info = |items: &[uuid::Uuid], limit, stopped| {
            edges(
                Page::from_read(items.to_vec(), limit, |id| *id, stopped),
                false,
                |id| *id,
                |id| id,
            )
            .1
        };
        let empty = info(&[], 2, Some(read_on));
        assert!(empty.has_next_page);
        assert_eq!(empty.end_cursor, Some(encode_cursor(read_on)));
        let short = info(&ids[..1], 2, Some(read_on));
        assert_eq!(short.end_cursor, Some(encode_cursor(read_on)));
        let full = info(&ids, 2, None);
        assert_eq!(full.end_cursor, Some(encode_cursor(ids[1])));
        let last = info(&ids[..1], 2, None);
        assert!(!last.has_next_page);
        assert_eq!(last.end_cursor, Some(encode_cursor(ids[0])));
    }
}

/// Who made an audited action: an API key (its id and its name then), or a tool (`crm-admin`,
/// `crm-local`) with a null key id.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "AuditActor")]
pub struct AuditActorNode {
    pub key_id: Option<ID>,
    pub key_name: String,
}

/// One management action: REST's audit entry.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "AuditEntry")]
pub struct AuditEntryNode {
    pub id: ID,
    pub at: DateTime,
    /// The action's wire name, e.g. `webhook.update`.
    pub action: String,
    pub actor: AuditActorNode,
    pub target_id: ID,
    /// The fields the action set, with their new values (header values masked); never a
    /// secret or a key.
    pub changes: async_graphql::Json<serde_json::Map<String, serde_json::Value>>,
}

impl From<AuditEntry> for AuditEntryNode {
    fn from(entry: AuditEntry) -> AuditEntryNode {
        AuditEntryNode {
            id: ID(entry.id.to_string()),
            at: DateTime(entry.at),
            action: entry.action.as_str().to_owned(),
            actor: AuditActorNode {
                key_id: entry.actor.key_id.map(|id| ID(id.to_string())),
                key_name: entry.actor.key_name,
            },
            target_id: ID(entry.target_id.to_string()),
            changes: async_graphql::Json(entry.changes),
        }
    }
}

#[derive(Debug, Clone, SimpleObject)]
pub struct AuditEntryEdge {
    /// Opaque and stable: pass it as `after` to continue after this entry.
    pub cursor: String,
    pub node: AuditEntryNode,
}

/// The tenant's audit log, newest first.
#[derive(Debug, Clone, SimpleObject)]
pub struct AuditLogConnection {
    pub edges: Vec<AuditEntryEdge>,
    pub page_info: PageInfo,
}

impl AuditLogConnection {
    pub fn new(page: Page<AuditEntry>, asked_after: bool) -> AuditLogConnection {
        let (edges, page_info) = edges(
            page,
            asked_after,
            |e| e.id,
            <AuditEntryNode as From<AuditEntry>>::from,
        );
        AuditLogConnection {
            edges: edges
                .into_iter()
                .map(|(cursor, node)| AuditEntryEdge { cursor, node })
                .collect(),
            page_info,
        }
    }
}

/// `auditLog`'s arguments, read as REST's query string is (`AuditListing::new`).
pub struct AuditArguments {
    pub since: Option<DateTime>,
    pub until: Option<DateTime>,
    pub action: Option<String>,
    pub page: crate::error::Result<crate::domain::page::PageRequest>,
}

impl Input<AuditListing> for AuditArguments {
    fn read(self) -> crate::error::Result<AuditListing> {
        AuditListing::new(
            self.since.map(|time| time.0),
            self.until.map(|time| time.0),
            self.action.as_deref(),
            self.page,
            FieldErrors::default(),
        )
    }
}
