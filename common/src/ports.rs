//! What the use cases need from the outside world, as traits with one adapter per backend.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::auth::ApiKey;
use crate::domain::client::Client;
use crate::domain::event::OutboxEvent;
use crate::domain::page::{Page, PageRequest};
use crate::domain::sync_status::{SyncCounts, SyncStatus};
use crate::domain::tenant::Tenant;
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
    pub page: PageRequest,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Creates a tenant and its first key together; `Conflict` if either exists.
    async fn create_tenant(&self, tenant: &Tenant, first_key: &ApiKey) -> Result<()>;
    async fn get_tenant(&self, tenant_id: Uuid) -> Result<Option<Tenant>>;

    /// `Conflict` when a key with the same hash exists.
    async fn put_api_key(&self, key: &ApiKey) -> Result<()>;
    /// The authentication lookup: one read by the key's hash.
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>>;
    async fn list_api_keys(&self, tenant_id: Uuid) -> Result<Vec<ApiKey>>;
    /// `false` when the tenant has no such key.
    async fn delete_api_key(&self, tenant_id: Uuid, key_id: Uuid) -> Result<bool>;

    async fn get_client(&self, tenant_id: Uuid, client_id: Uuid) -> Result<Option<Client>>;
    /// Clients in id order (ids are UUIDv7: creation order).
    async fn list_clients(&self, tenant_id: Uuid, query: &ClientQuery) -> Result<Page<Client>>;
    /// `Conflict` when the stored version is not `before`'s (or the client exists, on create).
    async fn write_client(&self, change: &ClientChange) -> Result<()>;
    /// One read, whatever the number of clients.
    async fn sync_counts(&self, tenant_id: Uuid) -> Result<SyncCounts>;

    /// The tenant's outbox, oldest first.
    async fn list_outbox_events(&self, tenant_id: Uuid, limit: usize) -> Result<Vec<OutboxEvent>>;
}

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// Wall-clock time, cut to milliseconds so a value reads back from any store exactly as written.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        let now = Utc::now();
        DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
    }
}
