//! What the use cases need from the outside world, as traits with one adapter per backend.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::audit::{AuditEntry, AuditQuery};
use crate::domain::auth::ApiKey;
use crate::domain::client::Client;
use crate::domain::delivery::{
    Attempt, Delivery, DeliveryStatus, DeliverySummary, DueDelivery, EventPayload, StatusCounts,
};
use crate::domain::delivery_search::DeliveryFilter;
use crate::domain::event::{EventRange, OutboxEvent};
use crate::domain::health::{HealthChange, WebhookHealth};
use crate::domain::idempotency::{IdempotencyKey, IdempotencyRecord};
// The values of an attempt belong to the domain; the sender port speaks in them.
pub use crate::domain::outbound::OutboundRequest;
pub use crate::domain::outcome::{SendOutcome, RESPONSE_BODY_LIMIT};
use crate::domain::pacing::{HeldSlot, Pacing};
use crate::domain::page::{Page, PageRequest};
use crate::domain::stale_clients::StaleQuery;
use crate::domain::sync_history::SyncTransition;
use crate::domain::sync_status::{SyncCounts, SyncStatus};
use crate::domain::tenant::Tenant;
use crate::domain::webhook::Webhook;
use crate::error::Result;

/// One client write and everything that must happen with it, atomically: the client row,
/// the tenant's counters (`CounterDelta::between(before, after)`) and the outbox events.
#[derive(Debug, Clone)]
pub struct ClientChange {
    pub tenant_id: Uuid,
    /// The client as read; the write is conditional on its `version`. `None`: a creation,
    /// conditional on the id being new.
    pub before: Option<Client>,
    /// `None`: a deletion.
    pub after: Option<Client>,
    pub events: Vec<OutboxEvent>,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientQuery {
    pub status: Option<SyncStatus>,
    /// Only stale clients (never with `status`); the page then starts at its cursor, and
    /// `page.after` is unused.
    pub synced_before: Option<StaleQuery>,
    pub page: PageRequest,
}

/// Everything the use cases keep: one trait per aggregate, each implemented by both stores in
/// the file of that aggregate (`adapters/dynamodb/`, `adapters/sqlite/`). The rest of the code
/// names only `Store` (`Arc<dyn Store>`): the methods of its supertraits are callable on a
/// `dyn Store` or a `T: Store` without importing them; a concrete store (a test's `SqliteStore`)
/// needs the aggregate's trait in scope.
pub trait Store:
    TenantStore
    + ClientStore
    + OutboxStore
    + IdempotencyStore
    + WebhookStore
    + DeliveryStore
    + RetentionStore
    + AuditStore
    + Keyring
{
}

impl<T> Store for T where
    T: TenantStore
        + ClientStore
        + OutboxStore
        + IdempotencyStore
        + WebhookStore
        + DeliveryStore
        + RetentionStore
        + AuditStore
        + Keyring
{
}

/// Tenants and their API keys.
#[async_trait]
pub trait TenantStore: Send + Sync {
    /// Creates a tenant and its first key together; `Conflict` if either exists.
    ///
    /// Here and in the other management writes, `audit` is the entry that records the change,
    /// written in the same transaction (`None`: a change nobody asked for, or a test's).
    async fn create_tenant(
        &self,
        tenant: &Tenant,
        first_key: &ApiKey,
        audit: Option<&AuditEntry>,
    ) -> Result<()>;
    async fn get_tenant(&self, tenant_id: Uuid) -> Result<Option<Tenant>>;

    /// `Conflict` when a key with the same hash exists.
    async fn put_api_key(&self, key: &ApiKey, audit: Option<&AuditEntry>) -> Result<()>;
    /// The authentication lookup: one read by the key's hash.
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>>;
    /// The tenant's keys, each with its `last_used_at`.
    async fn list_api_keys(&self, tenant_id: Uuid) -> Result<Vec<ApiKey>>;
    /// Writes that the key was used at `at` if the use written last is older than
    /// `stale_before` (or none is). A fresher one (another process got there first) or a key
    /// that is gone leave it unwritten and are `Ok`: the write tells the key's owner, it guards
    /// nothing.
    async fn record_key_use(
        &self,
        key_hash: &str,
        at: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<()>;
    /// `false` when the tenant has no such key (and nothing is written).
    async fn delete_api_key(
        &self,
        tenant_id: Uuid,
        key_id: Uuid,
        audit: Option<&AuditEntry>,
    ) -> Result<bool>;
}

/// Clients and each tenant's sync counts, written together with the outbox events.
#[async_trait]
pub trait ClientStore: Send + Sync {
    async fn get_client(&self, tenant_id: Uuid, client_id: Uuid) -> Result<Option<Client>>;
    /// Clients in id order (ids are UUIDv7: creation order).
    async fn list_clients(&self, tenant_id: Uuid, query: &ClientQuery) -> Result<Page<Client>>;
    /// `Conflict` when the stored version is not `before`'s (or the client exists, on create).
    async fn write_client(&self, change: &ClientChange) -> Result<()>;
    /// One read, whatever the number of clients.
    async fn sync_counts(&self, tenant_id: Uuid) -> Result<SyncCounts>;
    /// A client's sync status changes (`write_client` records them), newest first, those of
    /// one client only: one key range, whatever the tenant's other clients.
    async fn sync_history(
        &self,
        tenant_id: Uuid,
        client_id: Uuid,
        page: PageRequest,
    ) -> Result<Page<SyncTransition>>;
}

/// The outbox of events to fan out, and the per-tenant count of notify events.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// The tenant's outbox, oldest first.
    async fn list_outbox_events(&self, tenant_id: Uuid, limit: usize) -> Result<Vec<OutboxEvent>>;
    /// Events of any tenant not yet fanned out, created before `before`: the sweeper's work.
    async fn undispatched_events(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>>;
    /// Counts one event of the tenant in the one-second window `second` (Unix seconds) unless
    /// `max` were counted in it already: `false` then, and nothing is counted. Atomic, so the
    /// bound holds across every process of the deployment.
    async fn take_event_quota(&self, tenant_id: Uuid, second: i64, max: usize) -> Result<bool>;
    /// Writes an event that no other change carries (notify's) to the outbox, before its
    /// fan-out, so that the sweeper finishes a fan-out a crash interrupted. An event already
    /// stored is left as it is: an idempotent notify may write its event a second time when it
    /// finishes the work of a request that died part-way.
    async fn append_event(&self, event: &OutboxEvent) -> Result<()>;
    /// The tenant's accepted events (fanned out or not, kept for the retention) whose ids fall
    /// in `range` (UUIDv7: their acceptance time), oldest first, after `after` when given: at
    /// most `limit`; fewer means the range is read to its end.
    async fn events_between(
        &self,
        tenant_id: Uuid,
        range: &EventRange,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>>;
    /// Idempotent: an event is fanned out once its deliveries exist.
    async fn mark_event_dispatched(&self, tenant_id: Uuid, event_id: Uuid) -> Result<()>;
}

/// Notify's idempotency keys (docs/architecture.md §Idempotent notify): a record per tenant and
/// key, kept until its `expires_at`; a record past it is as if it did not exist.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// The tenant's record of `key`, unless it expired before `now`. One strongly consistent read.
    async fn find_idempotency_record(
        &self,
        tenant_id: Uuid,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotencyRecord>>;
    /// Writes `record` (the first request's, without an answer) unless the tenant has a record
    /// of its key that has not expired at `now`: `false` then, and nothing is written. Atomic:
    /// of requests claiming one key at once, one wins.
    async fn claim_idempotency_key(
        &self,
        record: &IdempotencyRecord,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Records the answer of the request that claimed `key` for `event_id`, on condition that
    /// the record is still that event's; otherwise (it expired and was claimed again) nothing.
    async fn record_idempotent_answer(
        &self,
        tenant_id: Uuid,
        key: &IdempotencyKey,
        event_id: Uuid,
        delivery_ids: &[Uuid],
    ) -> Result<()>;
}

/// Webhooks, counted per tenant against its limit.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// `Conflict` if the id exists; `WebhookLimitReached` if the tenant has `max` webhooks
    /// already. Counted with the write, atomically: concurrent creations never leave a tenant
    /// more than `max`.
    async fn create_webhook(
        &self,
        webhook: &Webhook,
        max: usize,
        audit: Option<&AuditEntry>,
    ) -> Result<()>;
    /// Conditional on `before_version`; `Conflict` otherwise.
    async fn update_webhook(
        &self,
        before_version: i64,
        webhook: &Webhook,
        audit: Option<&AuditEntry>,
    ) -> Result<()>;
    /// `false` when the tenant has no such webhook (and nothing is written).
    async fn delete_webhook(
        &self,
        tenant_id: Uuid,
        webhook_id: Uuid,
        audit: Option<&AuditEntry>,
    ) -> Result<bool>;
    async fn get_webhook(&self, tenant_id: Uuid, webhook_id: Uuid) -> Result<Option<Webhook>>;
    /// In creation order.
    async fn list_webhooks(&self, tenant_id: Uuid, page: PageRequest) -> Result<Page<Webhook>>;
    /// Applies `change` at `at` to the webhook's health (`WebhookHealth::after`), atomically and
    /// without condition on its version: a change of the webhook never writes its health, and
    /// concurrent attempts each add theirs. The health after it; `None` when the webhook is gone.
    async fn record_webhook_health(
        &self,
        tenant_id: Uuid,
        webhook_id: Uuid,
        change: HealthChange,
        at: DateTime<Utc>,
    ) -> Result<Option<WebhookHealth>>;
    /// Reserves the webhook's next send slot for a delivery at `now_us` (µs since the epoch) by
    /// `Pacing::reserve` on the webhook's next free slot as stored, and returns it. Atomic, so
    /// that no two deliveries in any process of the deployment take one slot.
    async fn reserve_send_slot(
        &self,
        tenant_id: Uuid,
        webhook_id: Uuid,
        pacing: Pacing,
        now_us: i64,
    ) -> Result<i64>;
}

/// Event payloads, deliveries, their attempts and counters: the fan-out's writes, the worker's
/// transitions, the sweeper's reads and requeues.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Stores an event's payload, once for all its deliveries, before any of them is created.
    /// A payload already stored is kept as it is (fan-out may run twice).
    async fn put_payload(&self, payload: &EventPayload) -> Result<()>;
    /// Writes new PENDING deliveries, whose payloads are stored; one that exists already is left
    /// as it is (fan-out may run twice). Counters move only for those really created.
    async fn create_deliveries(&self, deliveries: &[Delivery]) -> Result<()>;
    /// `put_payload`, then `create_deliveries` of deliveries of that payload: one write where
    /// the store can make it one (SQLite), so that the first deliveries of an event pay no
    /// round trip of their own for the payload.
    async fn create_deliveries_with_payload(
        &self,
        payload: &EventPayload,
        deliveries: &[Delivery],
    ) -> Result<()> {
        self.put_payload(payload).await?;
        self.create_deliveries(deliveries).await
    }
    /// With its payload: for sending it.
    async fn get_delivery(&self, tenant_id: Uuid, delivery_id: Uuid) -> Result<Option<Delivery>>;
    /// Without its payload: for showing it or deciding about it.
    async fn get_delivery_summary(
        &self,
        tenant_id: Uuid,
        delivery_id: Uuid,
    ) -> Result<Option<DeliverySummary>>;
    /// Oldest first.
    async fn list_attempts(&self, tenant_id: Uuid, delivery_id: Uuid) -> Result<Vec<Attempt>>;
    /// A state transition, conditional on `before.version`, with its attempt and counter moves.
    async fn write_delivery(&self, change: &DeliveryChange) -> Result<()>;
    /// A webhook's deliveries, newest first, optionally of one status; payloads are not read.
    async fn list_deliveries(
        &self,
        tenant_id: Uuid,
        webhook_id: Uuid,
        status: Option<DeliveryStatus>,
        page: PageRequest,
    ) -> Result<Page<DeliverySummary>>;
    /// The tenant's deliveries that pass `filter`, newest first, payloads not read: one page.
    /// Every combination of filters reads id ranges of indexes, each no further than the page
    /// needs: never a delivery that does not pass the filter.
    async fn search_deliveries(
        &self,
        tenant_id: Uuid,
        filter: &DeliveryFilter,
        page: PageRequest,
    ) -> Result<Page<DeliverySummary>>;
    /// Open deliveries of any tenant whose next attempt was due before `before`, without their
    /// payloads: at most `limit`, from where `after` (a cursor from an earlier page) left off,
    /// in no particular order.
    async fn due_deliveries(
        &self,
        before: DateTime<Utc>,
        after: Option<&DueCursor>,
        limit: usize,
    ) -> Result<DuePage>;
    /// The sweeper's requeues: for each, writes `after`'s schedule (next attempt, lease,
    /// `updated_at`, version) and nothing else, on condition that the stored version is still
    /// `before_version`. Whether each was written, in order: one not written changed since it
    /// was read (another sweeper or a worker won it).
    async fn requeue_deliveries(&self, requeues: &[Requeue]) -> Result<Vec<bool>>;
    /// Up to `limit` of the tenant's FAILED deliveries (only `webhook_id`'s, when given), in
    /// (webhook, delivery) id order after `after`; fewer than `limit` means there are no more.
    /// References only: no payload is read.
    async fn failed_deliveries(
        &self,
        tenant_id: Uuid,
        webhook_id: Option<Uuid>,
        after: Option<DeliveryRef>,
        limit: usize,
    ) -> Result<Vec<DeliveryRef>>;
    /// Counts per status: the tenant's and each webhook's.
    async fn delivery_counts(&self, tenant_id: Uuid) -> Result<DeliveryCounts>;
}

/// Removing what is past its retention (`domain::retention`, docs/architecture.md §Retention).
#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// Removes up to `limit` finished deliveries (with their attempts, and each event's payload
    /// with the last delivery that needs it) and up to `limit` dispatched events, past their
    /// retention at `now`; fewer than `limit` of both means nothing more is past it. DynamoDB
    /// removes them with its TTL, on its own: that store removes nothing here.
    async fn remove_expired(&self, now: DateTime<Utc>, limit: usize) -> Result<Expired>;
}

/// The audit log (`domain::audit`). The management writes take their entry with the change;
/// an action that is not one write (a test send, a recovery, a replay, a retry) appends its
/// entry once it is done.
#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<()>;
    /// The tenant's entries that `query` matches, newest first.
    async fn list_audit(
        &self,
        tenant_id: Uuid,
        query: &AuditQuery,
        page: PageRequest,
    ) -> Result<Page<AuditEntry>>;
}

/// What one `RetentionStore::remove_expired` removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expired {
    pub deliveries: usize,
    pub events: usize,
    /// Clients' sync history entries.
    pub sync_history: usize,
    pub audit_entries: usize,
}

/// One of the sweeper's requeues (`DeliveryStore::requeue_deliveries`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requeue {
    pub before_version: i64,
    pub after: DueDelivery,
}

/// A page of due deliveries and where the next one starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DuePage {
    pub deliveries: Vec<DueDelivery>,
    /// `None`: no due delivery is left after this page.
    pub next: Option<DueCursor>,
}

/// Where a read of due deliveries stopped: only the store that made it reads it (DynamoDB
/// keeps one position per index shard, SQLite the last due time and id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueCursor(pub(crate) String);

/// Which delivery of which webhook, without the delivery itself.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRef {
    pub webhook_id: Uuid,
    pub delivery_id: Uuid,
}

/// One delivery transition and what must be written with it.
#[derive(Debug, Clone)]
pub struct DeliveryChange {
    pub before: Delivery,
    pub after: Delivery,
    pub attempt: Option<Attempt>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    pub overall: StatusCounts,
    pub per_webhook: Vec<(Uuid, StatusCounts)>,
}

/// A message on the delivery queue: which delivery to attempt.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryMessage {
    pub tenant_id: Uuid,
    pub delivery_id: Uuid,
    /// The delivery's webhook, so that a consumer can set aside a delivery to a busy endpoint
    /// without reading it. Absent from messages written before it was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_id: Option<Uuid>,
    /// A user's retry of a FAILED delivery: the worker reopens it (if it is still FAILED) and
    /// attempts it once more. Absent from ordinary messages.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retry: bool,
    /// A user's resend of a finished delivery, asked when it was at this version: the worker
    /// reopens it if it still is, and attempts it once more. Absent from other messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resend_of: Option<i64>,
    /// A delivery held for its webhook's rate limit: its send slot (domain::pacing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_slot: Option<HeldSlot>,
}

/// A retry of every FAILED delivery of a tenant, or of one of its webhooks, handed to the
/// worker so that it is not bounded by one request's time: the worker queues a retry of each,
/// a page at a time, and hands what it has not reached on to a message like this one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryFailedMessage {
    pub tenant_id: Uuid,
    pub retry_failed: RetryScope,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryScope {
    /// Only this webhook's FAILED deliveries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_id: Option<Uuid>,
    /// Where the previous worker stopped: the FAILED deliveries after this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<DeliveryRef>,
}

/// The rest of a replay a request could not finish in its time: the worker goes on from `after`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayMessage {
    pub tenant_id: Uuid,
    pub webhook_id: Uuid,
    pub replay: crate::domain::replay::Replay,
    /// The last event already replayed.
    pub after: Uuid,
}

/// The longest delay a queued message may have: SQS caps `DelaySeconds` at 15 minutes; longer
/// waits are chained.
pub const MAX_QUEUE_DELAY: std::time::Duration = std::time::Duration::from_secs(900);

/// A recovery (`service::redelivery::recover`), or the rest of one a request could not finish in
/// its time: the worker goes on from `status` and `after`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoverMessage {
    pub tenant_id: Uuid,
    pub webhook_id: Uuid,
    pub recover: crate::domain::recovery::Recovery,
    /// The status whose deliveries are being resent (`recovery::RECOVERED`, in order).
    pub status: crate::domain::delivery::DeliveryStatus,
    /// The last delivery of that status already resent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Uuid>,
}

impl RecoverMessage {
    /// The recovery of `webhook` from its beginning.
    pub fn start(
        webhook: &crate::domain::webhook::Webhook,
        recover: crate::domain::recovery::Recovery,
    ) -> RecoverMessage {
        RecoverMessage {
            tenant_id: webhook.tenant_id,
            webhook_id: webhook.id,
            recover,
            status: crate::domain::recovery::RECOVERED[0],
            after: None,
        }
    }
}

/// Everything the delivery queue carries.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum QueueMessage {
    Delivery(DeliveryMessage),
    RetryFailed(RetryFailedMessage),
    Replay(ReplayMessage),
    Recover(RecoverMessage),
}

impl QueueMessage {
    /// Whose work the message is.
    pub fn tenant_id(&self) -> Uuid {
        match self {
            QueueMessage::Delivery(message) => message.tenant_id,
            QueueMessage::RetryFailed(message) => message.tenant_id,
            QueueMessage::Replay(message) => message.tenant_id,
            QueueMessage::Recover(message) => message.tenant_id,
        }
    }
}

impl From<DeliveryMessage> for QueueMessage {
    fn from(message: DeliveryMessage) -> QueueMessage {
        QueueMessage::Delivery(message)
    }
}

/// A message as received, with what is needed to delete it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub message_id: String,
    pub receipt: String,
    pub body: String,
    pub receive_count: u32,
}

#[async_trait]
pub trait Queue: Send + Sync {
    /// Enqueues each message after its delay (SQS: `DelaySeconds`, at most 900 s; batches of 10).
    async fn send(&self, messages: &[(QueueMessage, std::time::Duration)]) -> Result<()>;
    /// Waits up to `wait` for at most `max` visible messages; they stay invisible for the
    /// queue's visibility timeout unless deleted.
    async fn receive(&self, max: usize, wait: std::time::Duration) -> Result<Vec<Received>>;
    async fn delete(&self, receipt: &str) -> Result<()>;
}

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
    /// Now in µs since the epoch, for send slots (domain::pacing) that may lie 100 µs apart.
    fn now_us(&self) -> i64 {
        self.now().timestamp_micros()
    }
}

/// Wall-clock time, cut to milliseconds so a value reads back from any store exactly as written.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        let now = Utc::now();
        DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
    }

    fn now_us(&self) -> i64 {
        Utc::now().timestamp_micros()
    }
}

#[async_trait]
pub trait Sender: Send + Sync {
    /// Never follows redirects; never fails: every problem is reported in the outcome.
    async fn post(&self, request: OutboundRequest) -> SendOutcome;
}

/// Wraps the deployment's data keys under its main key, which never leaves it: a KMS key on AWS
/// (`adapters::kms`), crm-local's main key (`adapters::main_key`). docs/architecture.md §Secrets
/// at rest.
#[async_trait]
pub trait KeyWrapper: Send + Sync {
    /// Which main key this is, stored with each data key it wraps (`WrappedDataKey::wrapped_by`).
    fn kind(&self) -> &'static str;
    /// A new random AES-256 data key: in the clear, and wrapped for the store.
    async fn generate_data_key(&self) -> Result<NewDataKey>;
    /// The data key `wrapped` holds.
    async fn unwrap_data_key(&self, wrapped: &[u8]) -> Result<Vec<u8>>;
}

/// A data key just made (`KeyWrapper::generate_data_key`).
pub struct NewDataKey {
    pub plain: Vec<u8>,
    pub wrapped: Vec<u8>,
}

/// Seals one plain secret for its place (`domain::sealed_secret::seal` under the data key).
pub type Sealer = std::sync::Arc<
    dyn Fn(&crate::domain::sealed_secret::SecretPlace, &str) -> String + Send + Sync,
>;

/// What keeping secrets sealed needs of a store, besides the webhooks themselves: the
/// deployment's keyring.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The deployment's data keys, wrapped, oldest first; none before the first secret is sealed.
    async fn data_keys(&self) -> Result<Vec<crate::domain::sealed_secret::WrappedDataKey>>;
    /// Stores `key` as the deployment's first data key, unless it has one already (another
    /// process made it first): `false` then, and the caller reads that one.
    async fn add_first_data_key(
        &self,
        key: &crate::domain::sealed_secret::WrappedDataKey,
    ) -> Result<bool>;
}

/// A store's keyring as part of `Store`, in the builds that seal secrets (common's `secrets`
/// feature): there `dyn Store` is a `SecretStore`. In the others it asks nothing, so that their
/// `dyn Store` carries none of the keyring's code.
#[cfg(feature = "secrets")]
pub trait Keyring: SecretStore {}
#[cfg(feature = "secrets")]
impl<T: SecretStore + ?Sized> Keyring for T {}
#[cfg(not(feature = "secrets"))]
pub trait Keyring {}
#[cfg(not(feature = "secrets"))]
impl<T: ?Sized> Keyring for T {}

/// The sealing of the secrets written in the clear before secrets were sealed: an operator's
/// migration (crm-local at start, `crm-admin encrypt-secrets`), apart from `Store` so that no
/// Lambda function links it (on DynamoDB it is a Scan).
#[async_trait]
pub trait PlainSecretMigration: Send + Sync {
    /// Seals every plain secret, current and previous, of every webhook with `seal`; sealed
    /// ones are left as they are. Each webhook's write is conditional on its version as read (a
    /// webhook changed meanwhile is read again) and moves the version on, so that a change read
    /// before cannot write the plain secret back. How many webhooks it sealed.
    async fn seal_plain_secrets(&self, seal: Sealer) -> Result<usize>;
}
