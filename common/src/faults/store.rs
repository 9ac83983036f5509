//! `LayeredStore`: every method of every `Store` trait, reads and writes alike, handed to the
//! real store through a `StoreLayer` that sees each call by its method's name: fault injection
//! here (`FaultyStore`), call counting in the bench. Mechanical on purpose: one line per
//! method, so that a method added to a port shows here as a compile error, not a gap.

use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Faults, Port};
use crate::domain::audit::{AuditEntry, AuditQuery};
use crate::domain::auth::ApiKey;
use crate::domain::client::Client;
use crate::domain::delivery::{Attempt, Delivery, DeliveryStatus, DeliverySummary, EventPayload};
use crate::domain::delivery_search::DeliveryFilter;
use crate::domain::event::{EventRange, OutboxEvent};
use crate::domain::health::{HealthChange, WebhookHealth};
use crate::domain::idempotency::{IdempotencyKey, IdempotencyRecord};
use crate::domain::pacing::Pacing;
use crate::domain::page::{Page, PageRequest};
use crate::domain::sealed_secret::WrappedDataKey;
use crate::domain::sync_history::SyncTransition;
use crate::domain::sync_status::SyncCounts;
use crate::domain::tenant::Tenant;
use crate::domain::webhook::Webhook;
use crate::error::Result;
use crate::ports::{
    AuditStore, ClientChange, ClientQuery, ClientStore, DeliveryChange, DeliveryCounts,
    DeliveryRef, DeliveryStore, DueCursor, DuePage, Expired, IdempotencyStore, OutboxStore,
    Requeue, RetentionStore, SecretStore, Store, TenantStore, WebhookStore,
};

/// What stands around each store call: `call` is the real store's, not started yet.
pub trait StoreLayer: Send + Sync {
    fn around<T: Send>(
        &self,
        method: &'static str,
        call: impl Future<Output = Result<T>> + Send,
    ) -> impl Future<Output = Result<T>> + Send;
}

/// The injected faults of `Faults`, around each store call.
impl StoreLayer for Arc<Faults> {
    fn around<T: Send>(
        &self,
        method: &'static str,
        call: impl Future<Output = Result<T>> + Send,
    ) -> impl Future<Output = Result<T>> + Send {
        self.under_fault(Port::Store, method, call)
    }
}

/// The real store, each call through `layer`; the layer's own methods (its counts) through
/// `Deref`.
pub struct LayeredStore<L> {
    inner: Arc<dyn Store>,
    layer: L,
}

impl<L> LayeredStore<L> {
    pub fn new(inner: Arc<dyn Store>, layer: L) -> LayeredStore<L> {
        LayeredStore { inner, layer }
    }
}

impl<L> Deref for LayeredStore<L> {
    type Target = L;

    fn deref(&self) -> &L {
        &self.layer
    }
}

/// A store whose calls meet the faults of a `Faults`.
pub type FaultyStore = LayeredStore<Arc<Faults>>;

/// `self.inner.$method($args)` through the layer.
macro_rules! layered {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        $self
            .layer
            .around(stringify!($method), $self.inner.$method($($arg),*))
            .await
    };
}

#[async_trait]
impl<L: StoreLayer> TenantStore for LayeredStore<L> {
    async fn create_tenant(
        &self,
        tenant: &Tenant,
        first_key: &ApiKey,
        audit: Option<&AuditEntry>,
    ) -> Result<()> {
        layered!(self.create_tenant(tenant, first_key, audit))
    }
    async fn get_tenant(&self, tenant_id: Uuid) -> Result<Option<Tenant>> {
        layered!(self.get_tenant(tenant_id))
    }
    async fn put_api_key(&self, key: &ApiKey, audit: Option<&AuditEntry>) -> Result<()> {
        layered!(self.put_api_key(key, audit))
    }
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>> {
        layered!(self.find_api_key(key_hash))
    }
    async fn list_api_keys(&self, tenant_id: Uuid) -> Result<Vec<ApiKey>> {
        layered!(self.list_api_keys(tenant_id))
    }
    async fn record_key_use(
        &self,
        key_hash: &str,
        at: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<()> {
        layered!(self.record_key_use(key_hash, at, stale_before))
    }
    async fn delete_api_key(
        &self,
        tenant_id: Uuid,
        key_id: Uuid,
        audit: Option<&AuditEntry>,
    ) -> Result<bool> {
        layered!(self.delete_api_key(tenant_id, key_id, audit))
    }
}

#[async_trait]
impl<L: StoreLayer> ClientStore for LayeredStore<L> {
    async fn get_client(&self, tenant_id: Uuid, client_id: Uuid) -> Result<Option<Client>> {
        layered!(self.get_client(tenant_id, client_id))
    }
    async fn list_clients(&self, tenant_id: Uuid, query: &ClientQuery) -> Result<Page<Client>> {
        layered!(self.list_clients(tenant_id, query))
    }
    async fn write_client(&self, change: &ClientChange) -> Result<()> {
        layered!(self.write_client(change))
    }
    async fn sync_counts(&self, tenant_id: Uuid) -> Result<SyncCounts> {
        layered!(self.sync_counts(tenant_id))
    }
    async fn sync_history(
        &self,
        tenant_id: Uuid,
        client_id: Uuid,
        page: PageRequest,
    ) -> Result<Page<SyncTransition>> {
        layered!(self.sync_history(tenant_id, client_id, page))
    }
}

#[async_trait]
impl<L: StoreLayer> OutboxStore for LayeredStore<L> {
    async fn list_outbox_events(&self, tenant_id: Uuid, limit: usize) -> Result<Vec<OutboxEvent>> {
        layered!(self.list_outbox_events(tenant_id, limit))
    }
    async fn undispatched_events(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>> {
        layered!(self.undispatched_events(before, limit))
    }
    async fn take_event_quota(&self, tenant_id: Uuid, second: i64, max: usize) -> Result<bool> {
        layered!(self.take_event_quota(tenant_id, second, max))
    }
    async fn append_event(&self, event: &OutboxEvent) -> Result<()> {
        layered!(self.append_event(event))
    }
    async fn events_between(
        &self,
        tenant_id: Uuid,
        range: &EventRange,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>> {
        layered!(self.events_between(tenant_id, range, after, limit))
    }
    async fn mark_event_dispatched(&self, tenant_id: Uuid, event_id: Uuid) -> Result<()> {
        layered!(self.mark_event_dispatched(tenant_id, event_id))
    }
}

#[async_trait]
impl<L: StoreLayer> IdempotencyStore for LayeredStore<L> {
    async fn find_idempotency_record(
        &self,
        tenant_id: Uuid,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotencyRecord>> {
        layered!(self.find_idempotency_record(tenant_id, key, now))
    }
    async fn claim_idempotency_key(
        &self,
        record: &IdempotencyRecord,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        layered!(self.claim_idempotency_key(record, now))
    }
    async fn record_idempotent_answer(
        &self,
        tenant_id: Uuid,
        key: &IdempotencyKey,
        event_id: Uuid,
        delivery_ids: &[Uuid],
    ) -> Result<()> {
        layered!(self.record_idempotent_answer(tenant_id, key, event_id, delivery_ids))
    }
}

#[async_trait]
impl<L: StoreLayer> WebhookStore for LayeredStore<L> {
    async fn create_webhook(
        &self,
        webhook: &Webhook,
        max: usize,
        audit: Option<&AuditEntry>,
    ) -> Result<()> {
        layered!(self.create_webhook(webhook, max, audit))
    }
    async fn update_webhook(
        &self,
        before_version: i64,
        webhook: &Webhook,
        audit: Option<&AuditEntry>,
    ) -> Result<()> {
        layered!(self.update_webhook(before_version, webhook, audit))
    }
    async fn delete_webhook(
        &self,
        tenant_id: Uuid,
        webhook_id: Uuid,
        audit: Option<&AuditEntry>,
    ) -> Result<bool> {
        layered!(self.delete_webhook(tenant_id, webhook_id, audit))
    }
    async fn get_webhook(&self, tenant_id: Uuid, webhook_id: Uuid) -> Result<Option<Webhook>> {
        layered!(self.get_webhook(tenant_id, webhook_id))
    }
    async fn list_webhooks(&self, tenant_id: Uuid, page: PageRequest) -> Result<Page<Webhook>> {
        layered!(self.list_webhooks(tenant_id, page))
    }
    async fn record_webhook_health(
        &self,
        tenant_id: Uuid,
        webhook_id: Uuid,
        change: HealthChange,
        at: DateTime<Utc>,
    ) -> Result<Option<WebhookHealth>> {
        layered!(self.record_webhook_health(tenant_id, webhook_id, change, at))
    }
    async fn reserve_send_slot(
        &self,
        tenant_id: Uuid,
        webhook_id: Uuid,
        pacing: Pacing,
        now_us: i64,
    ) -> Result<i64> {
        layered!(self.reserve_send_slot(tenant_id, webhook_id, pacing, now_us))
    }
}

#[async_trait]
impl<L: StoreLayer> DeliveryStore for LayeredStore<L> {
    async fn put_payload(&self, payload: &EventPayload) -> Result<()> {
        layered!(self.put_payload(payload))
    }
    async fn create_deliveries(&self, deliveries: &[Delivery]) -> Result<()> {
        layered!(self.create_deliveries(deliveries))
    }
    /// The real store's one write (SQLite's), not the trait's default of two calls.
    async fn create_deliveries_with_payload(
        &self,
        payload: &EventPayload,
        deliveries: &[Delivery],
    ) -> Result<()> {
        layered!(self.create_deliveries_with_payload(payload, deliveries))
    }
    async fn get_delivery(&self, tenant_id: Uuid, delivery_id: Uuid) -> Result<Option<Delivery>> {
        layered!(self.get_delivery(tenant_id, delivery_id))
    }
    async fn get_delivery_summary(
        &self,
        tenant_id: Uuid,
        delivery_id: Uuid,
    ) -> Result<Option<DeliverySummary>> {
        layered!(self.get_delivery_summary(tenant_id, delivery_id))
    }
    async fn list_attempts(&self, tenant_id: Uuid, delivery_id: Uuid) -> Result<Vec<Attempt>> {
        layered!(self.list_attempts(tenant_id, delivery_id))
    }
    async fn write_delivery(&self, change: &DeliveryChange) -> Result<()> {
        layered!(self.write_delivery(change))
    }
    async fn list_deliveries(
        &self,
        tenant_id: Uuid,
        webhook_id: Uuid,
        status: Option<DeliveryStatus>,
        page: PageRequest,
    ) -> Result<Page<DeliverySummary>> {
        layered!(self.list_deliveries(tenant_id, webhook_id, status, page))
    }
    async fn search_deliveries(
        &self,
        tenant_id: Uuid,
        filter: &DeliveryFilter,
        page: PageRequest,
    ) -> Result<Page<DeliverySummary>> {
        layered!(self.search_deliveries(tenant_id, filter, page))
    }
    async fn due_deliveries(
        &self,
        before: DateTime<Utc>,
        after: Option<&DueCursor>,
        limit: usize,
    ) -> Result<DuePage> {
        layered!(self.due_deliveries(before, after, limit))
    }
    async fn requeue_deliveries(&self, requeues: &[Requeue]) -> Result<Vec<bool>> {
        layered!(self.requeue_deliveries(requeues))
    }
    async fn failed_deliveries(
        &self,
        tenant_id: Uuid,
        webhook_id: Option<Uuid>,
        after: Option<DeliveryRef>,
        limit: usize,
    ) -> Result<Vec<DeliveryRef>> {
        layered!(self.failed_deliveries(tenant_id, webhook_id, after, limit))
    }
    async fn delivery_counts(&self, tenant_id: Uuid) -> Result<DeliveryCounts> {
        layered!(self.delivery_counts(tenant_id))
    }
}

#[async_trait]
impl<L: StoreLayer> RetentionStore for LayeredStore<L> {
    async fn remove_expired(&self, now: DateTime<Utc>, limit: usize) -> Result<Expired> {
        layered!(self.remove_expired(now, limit))
    }
}

#[async_trait]
impl<L: StoreLayer> AuditStore for LayeredStore<L> {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        layered!(self.append_audit(entry))
    }
    async fn list_audit(
        &self,
        tenant_id: Uuid,
        query: &AuditQuery,
        page: PageRequest,
    ) -> Result<Page<AuditEntry>> {
        layered!(self.list_audit(tenant_id, query, page))
    }
}

#[async_trait]
impl<L: StoreLayer> SecretStore for LayeredStore<L> {
    async fn data_keys(&self) -> Result<Vec<WrappedDataKey>> {
        layered!(self.data_keys())
    }
    async fn add_first_data_key(&self, key: &WrappedDataKey) -> Result<bool> {
        layered!(self.add_first_data_key(key))
    }
}
