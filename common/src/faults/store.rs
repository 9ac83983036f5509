//! `FaultyStore`: every method of every `Store` trait, reads and writes alike, handed to the
//! real store under the fault `Faults` decides for the call. Mechanical on purpose: one line
//! per method, so that a method added to a port shows here as a compile error, not a gap.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Faults, Port};
use crate::domain::auth::ApiKey;
use crate::domain::client::Client;
use crate::domain::delivery::{Attempt, Delivery, DeliveryStatus, DeliverySummary, EventPayload};
use crate::domain::delivery_search::DeliveryFilter;
use crate::domain::event::{EventRange, OutboxEvent};
use crate::domain::health::{HealthChange, WebhookHealth};
use crate::domain::idempotency::{IdempotencyKey, IdempotencyRecord};
use crate::domain::pacing::Pacing;
use crate::domain::page::{Page, PageRequest};
use crate::domain::sync_history::SyncTransition;
use crate::domain::sync_status::SyncCounts;
use crate::domain::tenant::Tenant;
use crate::domain::webhook::Webhook;
use crate::error::Result;
use crate::ports::{
    ClientChange, ClientQuery, ClientStore, DeliveryChange, DeliveryCounts, DeliveryRef,
    DeliveryStore, DueCursor, DuePage, Expired, IdempotencyStore, OutboxStore, Requeue,
    RetentionStore, Store, TenantStore, WebhookStore,
};

pub struct FaultyStore {
    inner: Arc<dyn Store>,
    faults: Arc<Faults>,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn Store>, faults: Arc<Faults>) -> FaultyStore {
        FaultyStore { inner, faults }
    }
}

/// `self.inner.$method($args)` under the call's fault.
macro_rules! faulty {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        $self
            .faults
            .around(Port::Store, stringify!($method), $self.inner.$method($($arg),*))
            .await
    };
}

#[async_trait]
impl TenantStore for FaultyStore {
    async fn create_tenant(&self, tenant: &Tenant, first_key: &ApiKey) -> Result<()> {
        faulty!(self.create_tenant(tenant, first_key))
    }
    async fn get_tenant(&self, tenant_id: Uuid) -> Result<Option<Tenant>> {
        faulty!(self.get_tenant(tenant_id))
    }
    async fn put_api_key(&self, key: &ApiKey) -> Result<()> {
        faulty!(self.put_api_key(key))
    }
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>> {
        faulty!(self.find_api_key(key_hash))
    }
    async fn list_api_keys(&self, tenant_id: Uuid) -> Result<Vec<ApiKey>> {
        faulty!(self.list_api_keys(tenant_id))
    }
    async fn delete_api_key(&self, tenant_id: Uuid, key_id: Uuid) -> Result<bool> {
        faulty!(self.delete_api_key(tenant_id, key_id))
    }
}

#[async_trait]
impl ClientStore for FaultyStore {
    async fn get_client(&self, tenant_id: Uuid, client_id: Uuid) -> Result<Option<Client>> {
        faulty!(self.get_client(tenant_id, client_id))
    }
    async fn list_clients(&self, tenant_id: Uuid, query: &ClientQuery) -> Result<Page<Client>> {
        faulty!(self.list_clients(tenant_id, query))
    }
    async fn write_client(&self, change: &ClientChange) -> Result<()> {
        faulty!(self.write_client(change))
    }
    async fn sync_counts(&self, tenant_id: Uuid) -> Result<SyncCounts> {
        faulty!(self.sync_counts(tenant_id))
    }
    async fn sync_history(
        &self,
        tenant_id: Uuid,
        client_id: Uuid,
        page: PageRequest,
    ) -> Result<Page<SyncTransition>> {
        faulty!(self.sync_history(tenant_id, client_id, page))
    }
}

#[async_trait]
impl OutboxStore for FaultyStore {
    async fn list_outbox_events(&self, tenant_id: Uuid, limit: usize) -> Result<Vec<OutboxEvent>> {
        faulty!(self.list_outbox_events(tenant_id, limit))
    }
    async fn undispatched_events(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>> {
        faulty!(self.undispatched_events(before, limit))
    }
    async fn take_event_quota(&self, tenant_id: Uuid, second: i64, max: usize) -> Result<bool> {
        faulty!(self.take_event_quota(tenant_id, second, max))
    }
    async fn append_event(&self, event: &OutboxEvent) -> Result<()> {
        faulty!(self.append_event(event))
    }
    async fn events_between(
        &self,
        tenant_id: Uuid,
        range: &EventRange,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>> {
        faulty!(self.events_between(tenant_id, range, after, limit))
    }
    async fn mark_event_dispatched(&self, tenant_id: Uuid, event_id: Uuid) -> Result<()> {
        faulty!(self.mark_event_dispatched(tenant_id, event_id))
    }
}

#[async_trait]
impl IdempotencyStore for FaultyStore {
    async fn find_idempotency_record(
        &self,
        tenant_id: Uuid,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotencyRecord>> {
        faulty!(self.find_idempotency_record(tenant_id, key, now))
    }
    async fn claim_idempotency_key(
        &self,
        record: &IdempotencyRecord,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        faulty!(self.claim_idempotency_key(record, now))
    }
    async fn record_idempotent_answer(
        &self,
        tenant_id: Uuid,
        key: &IdempotencyKey,
        event_id: Uuid,
        delivery_ids: &[Uuid],
    ) -> Result<()> {
        faulty!(self.record_idempotent_answer(tenant_id, key, event_id, delivery_ids))
    }
}

#[async_trait]
impl WebhookStore for FaultyStore {
    async fn create_webhook(&self, webhook: &Webhook, max: usize) -> Result<()> {
        faulty!(self.create_webhook(webhook, max))
    }
    async fn update_webhook(&self, before_version: i64, webhook: &Webhook) -> Result<()> {
        faulty!(self.update_webhook(before_version, webhook))
    }
    async fn delete_webhook(&self, tenant_id: Uuid, webhook_id: Uuid) -> Result<bool> {
        faulty!(self.delete_webhook(tenant_id, webhook_id))
    }
    async fn get_webhook(&self, tenant_id: Uuid, webhook_id: Uuid) -> Result<Option<Webhook>> {
        faulty!(self.get_webhook(tenant_id, webhook_id))
    }
    async fn list_webhooks(&self, tenant_id: Uuid, page: PageRequest) -> Result<Page<Webhook>> {
        faulty!(self.list_webhooks(tenant_id, page))
    }
    async fn record_webhook_health(
        &self,
        tenant_id: Uuid,
        webhook_id: Uuid,
        change: HealthChange,
        at: DateTime<Utc>,
    ) -> Result<Option<WebhookHealth>> {
        faulty!(self.record_webhook_health(tenant_id, webhook_id, change, at))
    }
    async fn reserve_send_slot(
        &self,
        tenant_id: Uuid,
        webhook_id: Uuid,
        pacing: Pacing,
        now_us: i64,
    ) -> Result<i64> {
        faulty!(self.reserve_send_slot(tenant_id, webhook_id, pacing, now_us))
    }
}

#[async_trait]
impl DeliveryStore for FaultyStore {
    async fn put_payload(&self, payload: &EventPayload) -> Result<()> {
        faulty!(self.put_payload(payload))
    }
    async fn create_deliveries(&self, deliveries: &[Delivery]) -> Result<()> {
        faulty!(self.create_deliveries(deliveries))
    }
    /// The real store's one write (SQLite's), not the trait's default of two calls.
    async fn create_deliveries_with_payload(
        &self,
        payload: &EventPayload,
        deliveries: &[Delivery],
    ) -> Result<()> {
        faulty!(self.create_deliveries_with_payload(payload, deliveries))
    }
    async fn get_delivery(&self, tenant_id: Uuid, delivery_id: Uuid) -> Result<Option<Delivery>> {
        faulty!(self.get_delivery(tenant_id, delivery_id))
    }
    async fn get_delivery_summary(
        &self,
        tenant_id: Uuid,
        delivery_id: Uuid,
    ) -> Result<Option<DeliverySummary>> {
        faulty!(self.get_delivery_summary(tenant_id, delivery_id))
    }
    async fn list_attempts(&self, tenant_id: Uuid, delivery_id: Uuid) -> Result<Vec<Attempt>> {
        faulty!(self.list_attempts(tenant_id, delivery_id))
    }
    async fn write_delivery(&self, change: &DeliveryChange) -> Result<()> {
        faulty!(self.write_delivery(change))
    }
    async fn list_deliveries(
        &self,
        tenant_id: Uuid,
        webhook_id: Uuid,
        status: Option<DeliveryStatus>,
        page: PageRequest,
    ) -> Result<Page<DeliverySummary>> {
        faulty!(self.list_deliveries(tenant_id, webhook_id, status, page))
    }
    async fn search_deliveries(
        &self,
        tenant_id: Uuid,
        filter: &DeliveryFilter,
        page: PageRequest,
    ) -> Result<Page<DeliverySummary>> {
        faulty!(self.search_deliveries(tenant_id, filter, page))
    }
    async fn due_deliveries(
        &self,
        before: DateTime<Utc>,
        after: Option<&DueCursor>,
        limit: usize,
    ) -> Result<DuePage> {
        faulty!(self.due_deliveries(before, after, limit))
    }
    async fn requeue_deliveries(&self, requeues: &[Requeue]) -> Result<Vec<bool>> {
        faulty!(self.requeue_deliveries(requeues))
    }
    async fn failed_deliveries(
        &self,
        tenant_id: Uuid,
        webhook_id: Option<Uuid>,
        after: Option<DeliveryRef>,
        limit: usize,
    ) -> Result<Vec<DeliveryRef>> {
        faulty!(self.failed_deliveries(tenant_id, webhook_id, after, limit))
    }
    async fn delivery_counts(&self, tenant_id: Uuid) -> Result<DeliveryCounts> {
        faulty!(self.delivery_counts(tenant_id))
    }
}

#[async_trait]
impl RetentionStore for FaultyStore {
    async fn remove_expired(&self, now: DateTime<Utc>, limit: usize) -> Result<Expired> {
        faulty!(self.remove_expired(now, limit))
    }
}
