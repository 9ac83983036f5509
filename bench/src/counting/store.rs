//! A `Store` that counts the calls made through the port and hands each to the real store.
//! A measuring layer, not a mock: every call reaches SQLite or DynamoDB unchanged.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use common::domain::auth::ApiKey;
use common::domain::client::Client;
use common::domain::delivery::{Attempt, Delivery, DeliveryStatus, DeliverySummary, EventPayload};
use common::domain::delivery_search::DeliveryFilter;
use common::domain::event::OutboxEvent;
use common::domain::idempotency::{IdempotencyKey, IdempotencyRecord};
use common::domain::pacing::Pacing;
use common::domain::page::{Page, PageRequest};
use common::domain::sync_status::SyncCounts;
use common::domain::tenant::Tenant;
use common::domain::webhook::Webhook;
use common::error::Result;
use common::ports::{
    ClientChange, ClientQuery, ClientStore, DeliveryChange, DeliveryCounts, DeliveryRef,
    DeliveryStore, DueCursor, DuePage, IdempotencyStore, OutboxStore, Requeue, Store, TenantStore,
    WebhookStore,
};
use uuid::Uuid;

/// The port's methods that write; every other one reads.
const WRITES: &[&str] = &[
    "create_tenant",
    "put_api_key",
    "delete_api_key",
    "write_client",
    "take_event_quota",
    "append_event",
    "mark_event_dispatched",
    "claim_idempotency_key",
    "record_idempotent_answer",
    "create_webhook",
    "update_webhook",
    "delete_webhook",
    "put_payload",
    "create_deliveries",
    "write_delivery",
    "requeue_deliveries",
];

pub struct CountingStore {
    inner: Arc<dyn Store>,
    calls: Mutex<BTreeMap<&'static str, u64>>,
}

/// Calls per port method since the last reset.
#[derive(Debug, Clone, Default)]
pub struct PortCalls(pub BTreeMap<&'static str, u64>);

impl PortCalls {
    pub fn add(&mut self, other: PortCalls) {
        for (name, n) in other.0 {
            *self.0.entry(name).or_default() += n;
        }
    }

    pub fn reads(&self) -> u64 {
        self.0
            .iter()
            .filter(|(name, _)| !WRITES.contains(name))
            .map(|(_, n)| n)
            .sum()
    }

    pub fn writes(&self) -> u64 {
        self.0
            .iter()
            .filter(|(name, _)| WRITES.contains(name))
            .map(|(_, n)| n)
            .sum()
    }

    /// `method ×n` for each read method, for the tables.
    pub fn read_breakdown(&self, per: f64) -> String {
        self.0
            .iter()
            .filter(|(name, _)| !WRITES.contains(name))
            .map(|(name, n)| format!("{name} ×{}", crate::counting::figure(*n as f64 / per)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl CountingStore {
    pub fn new(inner: Arc<dyn Store>) -> CountingStore {
        CountingStore {
            inner,
            calls: Mutex::default(),
        }
    }

    fn count(&self, method: &'static str) {
        *self
            .calls
            .lock()
            .expect("call counts")
            .entry(method)
            .or_default() += 1;
    }

    /// The counts so far, zeroing them.
    pub fn take(&self) -> PortCalls {
        PortCalls(std::mem::take(
            &mut *self.calls.lock().expect("call counts"),
        ))
    }
}

#[async_trait]
impl TenantStore for CountingStore {
    async fn create_tenant(&self, tenant: &Tenant, first_key: &ApiKey) -> Result<()> {
        self.count("create_tenant");
        self.inner.create_tenant(tenant, first_key).await
    }
    async fn get_tenant(&self, tenant_id: Uuid) -> Result<Option<Tenant>> {
        self.count("get_tenant");
        self.inner.get_tenant(tenant_id).await
    }
    async fn put_api_key(&self, key: &ApiKey) -> Result<()> {
        self.count("put_api_key");
        self.inner.put_api_key(key).await
    }
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>> {
        self.count("find_api_key");
        self.inner.find_api_key(key_hash).await
    }
    async fn list_api_keys(&self, tenant_id: Uuid) -> Result<Vec<ApiKey>> {
        self.count("list_api_keys");
        self.inner.list_api_keys(tenant_id).await
    }
    async fn delete_api_key(&self, tenant_id: Uuid, key_id: Uuid) -> Result<bool> {
        self.count("delete_api_key");
        self.inner.delete_api_key(tenant_id, key_id).await
    }
}

#[async_trait]
impl ClientStore for CountingStore {
    async fn get_client(&self, tenant_id: Uuid, client_id: Uuid) -> Result<Option<Client>> {
        self.count("get_client");
        self.inner.get_client(tenant_id, client_id).await
    }
    async fn list_clients(&self, tenant_id: Uuid, query: &ClientQuery) -> Result<Page<Client>> {
        self.count("list_clients");
        self.inner.list_clients(tenant_id, query).await
    }
    async fn write_client(&self, change: &ClientChange) -> Result<()> {
        self.count("write_client");
        self.inner.write_client(change).await
    }
    async fn sync_counts(&self, tenant_id: Uuid) -> Result<SyncCounts> {
        self.count("sync_counts");
        self.inner.sync_counts(tenant_id).await
    }
    async fn sync_history(
        &self,
        tenant_id: Uuid,
        client_id: Uuid,
        page: common::domain::page::PageRequest,
    ) -> Result<common::domain::page::Page<common::domain::sync_history::SyncTransition>> {
        self.count("sync_history");
        self.inner.sync_history(tenant_id, client_id, page).await
    }
}

#[async_trait]
impl OutboxStore for CountingStore {
    async fn events_between(
        &self,
        tenant_id: Uuid,
        range: &common::domain::event::EventRange,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>> {
        self.count("events_between");
        self.inner
            .events_between(tenant_id, range, after, limit)
            .await
    }
    async fn list_outbox_events(&self, tenant_id: Uuid, limit: usize) -> Result<Vec<OutboxEvent>> {
        self.count("list_outbox_events");
        self.inner.list_outbox_events(tenant_id, limit).await
    }
    async fn undispatched_events(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>> {
        self.count("undispatched_events");
        self.inner.undispatched_events(before, limit).await
    }
    async fn take_event_quota(&self, tenant_id: Uuid, second: i64, max: usize) -> Result<bool> {
        self.count("take_event_quota");
        self.inner.take_event_quota(tenant_id, second, max).await
    }
    async fn append_event(&self, event: &OutboxEvent) -> Result<()> {
        self.count("append_event");
        self.inner.append_event(event).await
    }
    async fn mark_event_dispatched(&self, tenant_id: Uuid, event_id: Uuid) -> Result<()> {
        self.count("mark_event_dispatched");
        self.inner.mark_event_dispatched(tenant_id, event_id).await
    }
}

#[async_trait]
impl IdempotencyStore for CountingStore {
    async fn find_idempotency_record(
        &self,
        tenant_id: Uuid,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotencyRecord>> {
        self.count("find_idempotency_record");
        self.inner
            .find_idempotency_record(tenant_id, key, now)
            .await
    }
    async fn claim_idempotency_key(
        &self,
        record: &IdempotencyRecord,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.count("claim_idempotency_key");
        self.inner.claim_idempotency_key(record, now).await
    }
    async fn record_idempotent_answer(
        &self,
        tenant_id: Uuid,
        key: &IdempotencyKey,
        event_id: Uuid,
        delivery_ids: &[Uuid],
    ) -> Result<()> {
        self.count("record_idempotent_answer");
        self.inner
            .record_idempotent_answer(tenant_id, key, event_id, delivery_ids)
            .await
    }
}

#[async_trait]
impl WebhookStore for CountingStore {
    async fn create_webhook(&self, webhook: &Webhook, max: usize) -> Result<()> {
        self.count("create_webhook");
        self.inner.create_webhook(webhook, max).await
    }
    async fn update_webhook(&self, before_version: i64, webhook: &Webhook) -> Result<()> {
        self.count("update_webhook");
        self.inner.update_webhook(before_version, webhook).await
    }
    async fn delete_webhook(&self, tenant_id: Uuid, webhook_id: Uuid) -> Result<bool> {
        self.count("delete_webhook");
        self.inner.delete_webhook(tenant_id, webhook_id).await
    }
    async fn reserve_send_slot(
        &self,
        tenant_id: Uuid,
        webhook_id: Uuid,
        pacing: Pacing,
        now_us: i64,
    ) -> Result<i64> {
        self.count("reserve_send_slot");
        self.inner
            .reserve_send_slot(tenant_id, webhook_id, pacing, now_us)
            .await
    }
    async fn get_webhook(&self, tenant_id: Uuid, webhook_id: Uuid) -> Result<Option<Webhook>> {
        self.count("get_webhook");
        self.inner.get_webhook(tenant_id, webhook_id).await
    }
    async fn list_webhooks(&self, tenant_id: Uuid, page: PageRequest) -> Result<Page<Webhook>> {
        self.count("list_webhooks");
        self.inner.list_webhooks(tenant_id, page).await
    }
    async fn record_webhook_health(
        &self,
        tenant_id: Uuid,
        webhook_id: Uuid,
        change: common::domain::health::HealthChange,
        at: DateTime<Utc>,
    ) -> Result<Option<common::domain::health::WebhookHealth>> {
        self.count("record_webhook_health");
        self.inner
            .record_webhook_health(tenant_id, webhook_id, change, at)
            .await
    }
}

#[async_trait]
impl DeliveryStore for CountingStore {
    async fn put_payload(&self, payload: &EventPayload) -> Result<()> {
        self.count("put_payload");
        self.inner.put_payload(payload).await
    }
    async fn create_deliveries_with_payload(
        &self,
        payload: &EventPayload,
        deliveries: &[Delivery],
    ) -> Result<()> {
        self.count("put_payload");
        self.count("create_deliveries");
        self.inner
            .create_deliveries_with_payload(payload, deliveries)
            .await
    }
    async fn create_deliveries(&self, deliveries: &[Delivery]) -> Result<()> {
        self.count("create_deliveries");
        self.inner.create_deliveries(deliveries).await
    }
    async fn get_delivery(&self, tenant_id: Uuid, delivery_id: Uuid) -> Result<Option<Delivery>> {
        self.count("get_delivery");
        self.inner.get_delivery(tenant_id, delivery_id).await
    }
    async fn get_delivery_summary(
        &self,
        tenant_id: Uuid,
        delivery_id: Uuid,
    ) -> Result<Option<DeliverySummary>> {
        self.count("get_delivery_summary");
        self.inner
            .get_delivery_summary(tenant_id, delivery_id)
            .await
    }
    async fn list_attempts(&self, tenant_id: Uuid, delivery_id: Uuid) -> Result<Vec<Attempt>> {
        self.count("list_attempts");
        self.inner.list_attempts(tenant_id, delivery_id).await
    }
    async fn write_delivery(&self, change: &DeliveryChange) -> Result<()> {
        self.count("write_delivery");
        self.inner.write_delivery(change).await
    }
    async fn search_deliveries(
        &self,
        tenant_id: Uuid,
        filter: &DeliveryFilter,
        page: PageRequest,
    ) -> Result<Page<DeliverySummary>> {
        self.count("search_deliveries");
        self.inner.search_deliveries(tenant_id, filter, page).await
    }
    async fn list_deliveries(
        &self,
        tenant_id: Uuid,
        webhook_id: Uuid,
        status: Option<DeliveryStatus>,
        page: PageRequest,
    ) -> Result<Page<DeliverySummary>> {
        self.count("list_deliveries");
        self.inner
            .list_deliveries(tenant_id, webhook_id, status, page)
            .await
    }
    async fn due_deliveries(
        &self,
        before: DateTime<Utc>,
        after: Option<&DueCursor>,
        limit: usize,
    ) -> Result<DuePage> {
        self.count("due_deliveries");
        self.inner.due_deliveries(before, after, limit).await
    }
    async fn requeue_deliveries(&self, requeues: &[Requeue]) -> Result<Vec<bool>> {
        self.count("requeue_deliveries");
        self.inner.requeue_deliveries(requeues).await
    }
    async fn failed_deliveries(
        &self,
        tenant_id: Uuid,
        webhook_id: Option<Uuid>,
        after: Option<DeliveryRef>,
        limit: usize,
    ) -> Result<Vec<DeliveryRef>> {
        self.count("failed_deliveries");
        self.inner
            .failed_deliveries(tenant_id, webhook_id, after, limit)
            .await
    }
    async fn delivery_counts(&self, tenant_id: Uuid) -> Result<DeliveryCounts> {
        self.count("delivery_counts");
        self.inner.delivery_counts(tenant_id).await
    }
}

#[async_trait]
impl common::ports::RetentionStore for CountingStore {
    async fn remove_expired(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<common::ports::Expired> {
        self.count("remove_expired");
        self.inner.remove_expired(now, limit).await
    }
}
