//! The embedded store: one SQLite file (WAL) under `CRM_DATA_DIR`, for `crm-local`.
//!
//! rusqlite is synchronous: reads run on the blocking pool on a few reader connections, writes
//! on the one writer thread (`sqlite_writer`), each atomic in its own savepoint. A read waits for
//! a free reader connection before it takes a blocking-pool thread, so however many reads are
//! asked for at once, at most `READERS` threads run them (2,400 `syncStatus` aliases in one
//! GraphQL document used to park one thread each on a connection's lock: 512 threads).
//!
//! Except the worker's two reads per delivery (the delivery, its webhook): they run on the writer
//! too. Every commit invalidates a reader connection's whole page cache (WAL), so while
//! deliveries are being recorded a reader fetches each page again with a `pread`; the writer's
//! cache stays warm: on the fan-out bench the writer's reads were half again as fast (the
//! README's bench notes have the figures; `perf`: B-tree page fetches were the readers' largest
//! cost).

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use super::event_windows::EventWindows;
use super::sqlite_columns::{
    bad_text, conflict_on_duplicate, event_from_row, optional_time_column, time_column, uuid_column,
};
use super::sqlite_webhooks as rows;
use super::sqlite_writer::Writer;
use crate::domain::auth::{ApiKey, Role};
use crate::domain::client::Client;
use crate::domain::delivery::{Attempt, Delivery, DeliveryStatus, DeliverySummary, EventPayload};
use crate::domain::event::OutboxEvent;
use crate::domain::page::{Page, PageRequest};
use crate::domain::sync_status::{CounterDelta, SyncCounts, SyncStatus};
use crate::domain::tenant::Tenant;
use crate::domain::webhook::Webhook;
use crate::error::{Error, Result};
use crate::ports::{
    ClientChange, ClientQuery, DeliveryChange, DeliveryCounts, DeliveryRef, DueCursor, DuePage,
    Requeue, Store,
};
use crate::time::rfc3339;

pub const DB_FILE: &str = "crm.sqlite3";

/// Schema migrations (`sqlite_migrations/`, each file saying why), applied in order; `PRAGMA
/// user_version` records how many ran. A migration, once released, never changes: a new one is
/// a new file at the end.
const MIGRATIONS: &[&str] = &[
    include_str!("sqlite_migrations/0001_tables.sql"),
    include_str!("sqlite_migrations/0002_webhooks_and_deliveries.sql"),
    include_str!("sqlite_migrations/0003_rowid_deliveries.sql"),
    include_str!("sqlite_migrations/0004_failed_by_webhook.sql"),
    include_str!("sqlite_migrations/0005_outbox_occurred_at.sql"),
    include_str!("sqlite_migrations/0006_shared_payloads.sql"),
];

/// One writer (SQLite has one writer at a time anyway) and a few readers, which WAL lets run
/// beside it, so reads (but the worker's two: see the module's note) never queue behind writes.
#[derive(Clone)]
pub struct SqliteStore {
    writer: Arc<Writer>,
    readers: Arc<Readers>,
    event_windows: Arc<EventWindows>,
}

const READERS: usize = 4;

/// The reader connections not in use, and one permit for each.
struct Readers {
    free: Mutex<Vec<Connection>>,
    available: Arc<Semaphore>,
}

/// A reader connection taken for one read; it goes back to the pool when dropped, even when the
/// read panicked, and only then is its permit released.
struct Lease {
    conn: Option<Connection>,
    readers: Arc<Readers>,
    _permit: OwnedSemaphorePermit,
}

impl Readers {
    fn new(connections: Vec<Connection>) -> Readers {
        Readers {
            available: Arc::new(Semaphore::new(connections.len())),
            free: Mutex::new(connections),
        }
    }

    /// Waits (asynchronously) for a free connection.
    async fn lease(self: &Arc<Readers>) -> Result<Lease> {
        let permit = Arc::clone(&self.available)
            .acquire_owned()
            .await
            .map_err(Error::internal)?;
        let conn = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .ok_or_else(|| Error::internal("a reader permit without a free connection"))?;
        Ok(Lease {
            conn: Some(conn),
            readers: Arc::clone(self),
            _permit: permit,
        })
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.readers
                .free
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(error: rusqlite::Error) -> Error {
        Error::internal(error)
    }
}

/// Prepared statements kept per connection: every statement the store runs (rusqlite's default
/// of 16 is fewer than one delivery's path uses, so they evicted each other).
const STATEMENT_CACHE: usize = 128;

impl SqliteStore {
    /// Opens (creating if needed) the store file in `dir` and brings its schema up to date.
    pub fn open(dir: &Path) -> Result<SqliteStore> {
        create_private(dir).map_err(Error::internal)?;
        let mut conn = Connection::open(dir.join(DB_FILE))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // WAL with NORMAL survives a killed process; only an OS crash can lose the last commits.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        migrate(&mut conn)?;
        let readers = (0..READERS)
            .map(|_| {
                let reader = Connection::open_with_flags(
                    dir.join(DB_FILE),
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                reader.busy_timeout(std::time::Duration::from_secs(5))?;
                reader.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
                Ok(reader)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(SqliteStore {
            writer: Arc::new(Writer::start(conn, &dir.join(DB_FILE))?),
            readers: Arc::new(Readers::new(readers)),
            event_windows: Arc::new(EventWindows::default()),
        })
    }

    /// Runs a read on a free reader connection, on the blocking pool.
    async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let mut lease = self.readers.lease().await?;
        tokio::task::spawn_blocking(move || match lease.conn.as_mut() {
            Some(conn) => work(conn),
            None => Err(Error::internal("a reader lease without its connection")),
        })
        .await
        .map_err(Error::internal)?
    }

    /// Runs a write on the writer thread; it is atomic and committed when this returns.
    async fn call<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        self.writer.write(work).await
    }

    /// The durable queue in the same file, for `crm-local`.
    pub fn queue(
        &self,
        visibility_timeout: std::time::Duration,
    ) -> super::sqlite_queue::SqliteQueue {
        super::sqlite_queue::SqliteQueue::new(Arc::clone(&self.writer), visibility_timeout)
    }
}

/// The store's files hold every tenant's data, webhook secrets and header values: they are the
/// owner's only (0600), and so is a directory made for them (0700). SQLite makes the `-wal` and
/// `-shm` files with the database file's mode, so the database file is made first, with 0600; a
/// file an earlier version made is narrowed to it. A directory that exists is left as it is:
/// the operator chose it (`CRM_DATA_DIR`), and the files in it are closed anyway.
fn create_private(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(dir.join(DB_FILE))?;
        for suffix in ["", "-wal", "-shm"] {
            let file = dir.join(format!("{DB_FILE}{suffix}"));
            match std::fs::metadata(&file) {
                Ok(found) if found.permissions().mode() & 0o077 != 0 => {
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
                }
                Ok(_) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    migrate_to(conn, MIGRATIONS.len())
}

/// Applies the migrations after those already applied, up to the first `version`.
fn migrate_to(conn: &mut Connection, version: usize) -> Result<()> {
    let applied: usize = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    for (index, sql) in MIGRATIONS.iter().enumerate().take(version).skip(applied) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
    }
    Ok(())
}

const KEY_COLUMNS: &str = "id, tenant_id, name, role, prefix, key_hash, created_at";

fn key_from_row(row: &Row<'_>) -> rusqlite::Result<ApiKey> {
    let role: String = row.get(3)?;
    Ok(ApiKey {
        id: uuid_column(row, 0)?,
        tenant_id: uuid_column(row, 1)?,
        name: row.get(2)?,
        role: Role::parse(&role).ok_or_else(|| bad_text(3, "a role"))?,
        prefix: row.get(4)?,
        key_hash: row.get(5)?,
        created_at: time_column(row, 6)?,
    })
}

fn insert_key(tx: &Connection, key: &ApiKey) -> Result<()> {
    tx.execute(
        "INSERT INTO api_keys (id, tenant_id, name, role, prefix, key_hash, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            key.id.to_string(),
            key.tenant_id.to_string(),
            key.name,
            key.role.as_str(),
            key.prefix,
            key.key_hash,
            rfc3339(key.created_at),
        ],
    )
    .map_err(|e| conflict_on_duplicate(e, "An API key with this value"))?;
    Ok(())
}

const CLIENT_COLUMNS: &str = "id, tenant_id, name, email, company, phone, external_id, \
     sync_status, created_at, updated_at, last_synced_at, version";

fn client_from_row(row: &Row<'_>) -> rusqlite::Result<Client> {
    let status: String = row.get(7)?;
    Ok(Client {
        id: uuid_column(row, 0)?,
        tenant_id: uuid_column(row, 1)?,
        name: row.get(2)?,
        email: row.get(3)?,
        company: row.get(4)?,
        phone: row.get(5)?,
        external_id: row.get(6)?,
        sync_status: SyncStatus::parse(&status).ok_or_else(|| bad_text(7, "a sync status"))?,
        created_at: time_column(row, 8)?,
        updated_at: time_column(row, 9)?,
        last_synced_at: optional_time_column(row, 10)?,
        version: row.get(11)?,
    })
}

/// Writes the client row; `Conflict` when the row is not at the version the change read.
fn write_client_row(tx: &Connection, change: &ClientChange) -> Result<()> {
    let tenant = change.tenant_id.to_string();
    let changed = match (&change.before, &change.after) {
        (None, Some(after)) => tx
            .execute(
                &format!("INSERT INTO clients ({CLIENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
                params![
                    after.id.to_string(),
                    tenant,
                    after.name,
                    after.email,
                    after.company,
                    after.phone,
                    after.external_id,
                    after.sync_status.as_str(),
                    rfc3339(after.created_at),
                    rfc3339(after.updated_at),
                    after.last_synced_at.map(rfc3339),
                    after.version,
                ],
            )
            .map_err(|e| conflict_on_duplicate(e, "A client with this id"))?,
        (Some(before), Some(after)) => tx.execute(
            "UPDATE clients SET name = ?3, email = ?4, company = ?5, phone = ?6, external_id = ?7,
                 sync_status = ?8, updated_at = ?9, last_synced_at = ?10, version = ?11
             WHERE tenant_id = ?1 AND id = ?2 AND version = ?12",
            params![
                tenant,
                after.id.to_string(),
                after.name,
                after.email,
                after.company,
                after.phone,
                after.external_id,
                after.sync_status.as_str(),
                rfc3339(after.updated_at),
                after.last_synced_at.map(rfc3339),
                after.version,
                before.version,
            ],
        )?,
        (Some(before), None) => tx.execute(
            "DELETE FROM clients WHERE tenant_id = ?1 AND id = ?2 AND version = ?3",
            params![tenant, before.id.to_string(), before.version],
        )?,
        (None, None) => 1,
    };
    if changed == 1 {
        Ok(())
    } else {
        Err(Error::Conflict(
            "The client was changed by another request.".to_owned(),
        ))
    }
}

fn apply_counter_delta(tx: &Connection, change: &ClientChange) -> Result<()> {
    let delta = CounterDelta::between(
        change.before.as_ref().map(|c| c.sync_status),
        change.after.as_ref().map(|c| c.sync_status),
    );
    if delta.is_empty() {
        return Ok(());
    }
    let synced_at = delta.became_synced.then(|| rfc3339(change.now));
    tx.execute(
        "INSERT INTO sync_counts (tenant_id, total, synced, pending, failed, needs_update, last_sync_time)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (tenant_id) DO UPDATE SET
             total = total + excluded.total,
             synced = synced + excluded.synced,
             pending = pending + excluded.pending,
             failed = failed + excluded.failed,
             needs_update = needs_update + excluded.needs_update,
             last_sync_time = COALESCE(excluded.last_sync_time, last_sync_time)",
        params![
            change.tenant_id.to_string(),
            delta.total,
            delta.synced,
            delta.pending,
            delta.failed,
            delta.needs_update,
            synced_at,
        ],
    )?;
    Ok(())
}

fn insert_events(tx: &Connection, events: &[OutboxEvent]) -> Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO outbox (id, tenant_id, event, data, created_at, occurred_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for event in events {
        insert.execute(params![
            event.id.to_string(),
            event.tenant_id.to_string(),
            event.event,
            event.data.to_string(),
            rfc3339(event.created_at),
            rfc3339(event.occurred_at),
        ])?;
    }
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_tenant(&self, tenant: &Tenant, first_key: &ApiKey) -> Result<()> {
        let (tenant, key) = (tenant.clone(), first_key.clone());
        self.call(move |tx| {
            tx.execute(
                "INSERT INTO tenants (id, name, created_at) VALUES (?1, ?2, ?3)",
                params![
                    tenant.id.to_string(),
                    tenant.name,
                    rfc3339(tenant.created_at)
                ],
            )
            .map_err(|e| conflict_on_duplicate(e, "The tenant"))?;
            insert_key(tx, &key)?;
            Ok(())
        })
        .await
    }

    async fn get_tenant(&self, tenant_id: Uuid) -> Result<Option<Tenant>> {
        self.read(move |conn| {
            let tenant = conn
                .query_row(
                    "SELECT id, name, created_at FROM tenants WHERE id = ?1",
                    params![tenant_id.to_string()],
                    |row| {
                        Ok(Tenant {
                            id: uuid_column(row, 0)?,
                            name: row.get(1)?,
                            created_at: time_column(row, 2)?,
                        })
                    },
                )
                .optional()?;
            Ok(tenant)
        })
        .await
    }

    async fn put_api_key(&self, key: &ApiKey) -> Result<()> {
        let key = key.clone();
        self.call(move |conn| insert_key(conn, &key)).await
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>> {
        let key_hash = key_hash.to_owned();
        self.read(move |conn| {
            let mut query = conn.prepare_cached(&format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = ?1"
            ))?;
            Ok(query
                .query_row(params![key_hash], key_from_row)
                .optional()?)
        })
        .await
    }

    async fn list_api_keys(&self, tenant_id: Uuid) -> Result<Vec<ApiKey>> {
        self.read(move |conn| {
            let mut query = conn.prepare_cached(&format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant_id = ?1 ORDER BY id"
            ))?;
            let keys = query
                .query_map(params![tenant_id.to_string()], key_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(keys)
        })
        .await
    }

    async fn delete_api_key(&self, tenant_id: Uuid, key_id: Uuid) -> Result<bool> {
        self.call(move |conn| {
            let deleted = conn.execute(
                "DELETE FROM api_keys WHERE tenant_id = ?1 AND id = ?2",
                params![tenant_id.to_string(), key_id.to_string()],
            )?;
            Ok(deleted == 1)
        })
        .await
    }

    async fn get_client(&self, tenant_id: Uuid, client_id: Uuid) -> Result<Option<Client>> {
        self.read(move |conn| {
            let mut query = conn.prepare_cached(&format!(
                "SELECT {CLIENT_COLUMNS} FROM clients WHERE tenant_id = ?1 AND id = ?2"
            ))?;
            let client = query
                .query_row(
                    params![tenant_id.to_string(), client_id.to_string()],
                    client_from_row,
                )
                .optional()?;
            Ok(client)
        })
        .await
    }

    async fn list_clients(&self, tenant_id: Uuid, query: &ClientQuery) -> Result<Page<Client>> {
        let query = *query;
        self.read(move |conn| {
            let after = query
                .page
                .after
                .map(|id| id.to_string())
                .unwrap_or_default();
            let status = query.status.map(SyncStatus::as_str);
            let mut select = conn.prepare_cached(&format!(
                "SELECT {CLIENT_COLUMNS} FROM clients
                 WHERE tenant_id = ?1 AND id > ?2 AND (?3 IS NULL OR sync_status = ?3)
                 ORDER BY id LIMIT ?4"
            ))?;
            let clients = select
                .query_map(
                    params![
                        tenant_id.to_string(),
                        after,
                        status,
                        (query.page.limit + 1) as i64
                    ],
                    client_from_row,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Page::from_overfetch(clients, query.page.limit, |c| c.id))
        })
        .await
    }

    async fn write_client(&self, change: &ClientChange) -> Result<()> {
        let change = change.clone();
        self.call(move |conn| {
            write_client_row(conn, &change)?;
            apply_counter_delta(conn, &change)?;
            insert_events(conn, &change.events)
        })
        .await
    }

    async fn sync_counts(&self, tenant_id: Uuid) -> Result<SyncCounts> {
        self.read(move |conn| {
            let mut query = conn.prepare_cached(
                "SELECT total, synced, pending, failed, needs_update, last_sync_time
                 FROM sync_counts WHERE tenant_id = ?1",
            )?;
            let counts = query
                .query_row(params![tenant_id.to_string()], |row| {
                    Ok(SyncCounts {
                        total_clients: row.get(0)?,
                        synced_clients: row.get(1)?,
                        pending_clients: row.get(2)?,
                        failed_clients: row.get(3)?,
                        needs_update_clients: row.get(4)?,
                        last_sync_time: optional_time_column(row, 5)?,
                    })
                })
                .optional()?;
            Ok(counts.unwrap_or_default())
        })
        .await
    }

    async fn list_outbox_events(&self, tenant_id: Uuid, limit: usize) -> Result<Vec<OutboxEvent>> {
        self.read(move |conn| {
            let mut query = conn.prepare_cached(
                "SELECT id, tenant_id, event, data, created_at, occurred_at FROM outbox
                 WHERE tenant_id = ?1 ORDER BY id LIMIT ?2",
            )?;
            let rows = query
                .query_map(params![tenant_id.to_string(), limit as i64], event_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn undispatched_events(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>> {
        self.read(move |conn| rows::undispatched_events(conn, before, limit))
            .await
    }

    async fn take_event_quota(&self, tenant_id: Uuid, second: i64, max: usize) -> Result<bool> {
        Ok(self.event_windows.take(tenant_id, second, max))
    }

    async fn append_event(&self, event: &OutboxEvent) -> Result<()> {
        let event = event.clone();
        self.call(move |conn| insert_events(conn, std::slice::from_ref(&event)))
            .await
    }

    async fn mark_event_dispatched(&self, tenant_id: Uuid, event_id: Uuid) -> Result<()> {
        self.call(move |conn| rows::mark_event_dispatched(conn, tenant_id, event_id))
            .await
    }

    async fn create_webhook(&self, webhook: &Webhook, max: usize) -> Result<()> {
        let webhook = webhook.clone();
        self.call(move |conn| rows::create_webhook(conn, &webhook, max))
            .await
    }

    async fn update_webhook(&self, before_version: i64, webhook: &Webhook) -> Result<()> {
        let webhook = webhook.clone();
        self.call(move |conn| rows::update_webhook(conn, before_version, &webhook))
            .await
    }

    async fn delete_webhook(&self, tenant_id: Uuid, webhook_id: Uuid) -> Result<bool> {
        self.call(move |conn| rows::delete_webhook(conn, tenant_id, webhook_id))
            .await
    }

    async fn get_webhook(&self, tenant_id: Uuid, webhook_id: Uuid) -> Result<Option<Webhook>> {
        // On the writer: see the module's note.
        self.writer
            .read(move |conn| rows::get_webhook(conn, tenant_id, webhook_id))
            .await
    }

    async fn list_webhooks(&self, tenant_id: Uuid, page: PageRequest) -> Result<Page<Webhook>> {
        self.read(move |conn| rows::list_webhooks(conn, tenant_id, page))
            .await
    }

    async fn put_payload(&self, payload: &EventPayload) -> Result<()> {
        let payload = payload.clone();
        self.call(move |conn| rows::put_payload(conn, &payload))
            .await
    }

    async fn create_deliveries_with_payload(
        &self,
        payload: &EventPayload,
        deliveries: &[Delivery],
    ) -> Result<()> {
        let (payload, deliveries) = (payload.clone(), deliveries.to_vec());
        self.call(move |conn| {
            rows::put_payload(conn, &payload)?;
            rows::create_deliveries(conn, &deliveries)
        })
        .await
    }

    async fn create_deliveries(&self, deliveries: &[Delivery]) -> Result<()> {
        let deliveries = deliveries.to_vec();
        self.call(move |conn| rows::create_deliveries(conn, &deliveries))
            .await
    }

    async fn get_delivery(&self, tenant_id: Uuid, delivery_id: Uuid) -> Result<Option<Delivery>> {
        // On the writer: see the module's note.
        self.writer
            .read(move |conn| rows::get_delivery(conn, tenant_id, delivery_id))
            .await
    }

    async fn get_delivery_summary(
        &self,
        tenant_id: Uuid,
        delivery_id: Uuid,
    ) -> Result<Option<DeliverySummary>> {
        self.read(move |conn| rows::get_delivery_summary(conn, tenant_id, delivery_id))
            .await
    }

    async fn list_attempts(&self, tenant_id: Uuid, delivery_id: Uuid) -> Result<Vec<Attempt>> {
        self.read(move |conn| rows::list_attempts(conn, tenant_id, delivery_id))
            .await
    }

    async fn write_delivery(&self, change: &DeliveryChange) -> Result<()> {
        let change = change.clone();
        self.call(move |conn| rows::write_delivery(conn, &change))
            .await
    }

    async fn list_deliveries(
        &self,
        tenant_id: Uuid,
        webhook_id: Uuid,
        status: Option<DeliveryStatus>,
        page: PageRequest,
    ) -> Result<Page<DeliverySummary>> {
        self.read(move |conn| rows::list_deliveries(conn, tenant_id, webhook_id, status, page))
            .await
    }

    async fn due_deliveries(
        &self,
        before: DateTime<Utc>,
        after: Option<&DueCursor>,
        limit: usize,
    ) -> Result<DuePage> {
        let after = after.cloned();
        self.read(move |conn| rows::due_deliveries(conn, before, after.as_ref(), limit))
            .await
    }

    async fn requeue_deliveries(&self, requeues: &[Requeue]) -> Result<Vec<bool>> {
        let requeues = requeues.to_vec();
        self.call(move |conn| rows::requeue_deliveries(conn, &requeues))
            .await
    }

    async fn failed_deliveries(
        &self,
        tenant_id: Uuid,
        webhook_id: Option<Uuid>,
        after: Option<DeliveryRef>,
        limit: usize,
    ) -> Result<Vec<DeliveryRef>> {
        self.read(move |conn| rows::failed_deliveries(conn, tenant_id, webhook_id, after, limit))
            .await
    }

    async fn delivery_counts(&self, tenant_id: Uuid) -> Result<DeliveryCounts> {
        self.read(move |conn| rows::delivery_counts(conn, tenant_id))
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::delivery::RetrySchedule;
    use crate::ports::{DeliveryChange, SendOutcome};

    /// The first column of every row `sql` returns.
    async fn texts(store: &SqliteStore, sql: &'static str) -> Vec<String> {
        store
            .read(move |conn| {
                let mut statement = conn.prepare(sql)?;
                let rows = statement.query_map([], |row| row.get(0))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
            .unwrap()
    }

    /// A data directory made before payloads were shared keeps its deliveries, their payloads
    /// and attempts; its deliveries go on working, and the tables are the current ones.
    #[tokio::test]
    async fn deliveries_survive_the_shared_payload_migration() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        let shared = MIGRATIONS
            .iter()
            .position(|sql| sql.contains("CREATE TABLE payloads"))
            .unwrap();
        migrate_to(&mut conn, shared).unwrap();
        // Times are stored to the millisecond.
        let now = chrono::SubsecRound::trunc_subsecs(Utc::now(), 3);
        let body = format!("{{\"padding\":\"{}\"}}", "x".repeat(2_000));
        let delivery = Delivery::new(
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            "lead.created",
            body.clone(),
            now,
        );
        conn.execute(
            "INSERT INTO deliveries (tenant_id, id, webhook_id, event_id, event, payload, status,
                 attempt_count, created_at, updated_at, version, next_attempt_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'PENDING', 0, ?7, ?7, 1, ?7)",
            params![
                delivery.tenant_id.to_string(),
                delivery.id.to_string(),
                delivery.webhook_id.to_string(),
                delivery.event_id.to_string(),
                delivery.event,
                body,
                rfc3339(now),
            ],
        )
        .unwrap();
        drop(conn);

        let store = SqliteStore::open(dir.path()).unwrap();
        let read = store
            .get_delivery(delivery.tenant_id, delivery.id)
            .await
            .unwrap();
        assert_eq!(read.as_ref(), Some(&delivery));
        let claimed = delivery.claimed(now, Duration::from_secs(20)).unwrap();
        store
            .write_delivery(&DeliveryChange {
                before: delivery,
                after: claimed.clone(),
                attempt: None,
            })
            .await
            .unwrap();
        let outcome = SendOutcome {
            status: Some(500),
            body: "y".repeat(3_000),
            error: None,
            latency: Duration::from_millis(12),
        };
        let (after, attempt, _) =
            claimed.after_attempt(&outcome, 3, &RetrySchedule::default(), now);
        store
            .write_delivery(&DeliveryChange {
                before: claimed,
                after: after.clone(),
                attempt: Some(attempt.clone()),
            })
            .await
            .unwrap();
        let read = store.get_delivery(after.tenant_id, after.id).await.unwrap();
        assert_eq!(read, Some(after.clone()));
        let attempts = store
            .list_attempts(after.tenant_id, after.id)
            .await
            .unwrap();
        assert_eq!(attempts, vec![attempt]);
        let columns = texts(&store, "SELECT name FROM pragma_table_info('deliveries')").await;
        assert!(!columns.iter().any(|c| c == "payload"), "{columns:?}");
        let schemas = texts(
            &store,
            "SELECT sql FROM sqlite_master WHERE name IN ('deliveries', 'delivery_attempts')",
        )
        .await;
        assert_eq!(schemas.len(), 2);
        assert!(
            schemas.iter().all(|sql| !sql.contains("WITHOUT ROWID")),
            "{schemas:?}"
        );
        let indexes = texts(
            &store,
            "SELECT name FROM sqlite_master WHERE type = 'index' \
             AND tbl_name = 'deliveries' AND sql IS NOT NULL ORDER BY name",
        )
        .await;
        assert_eq!(
            indexes,
            [
                "deliveries_by_webhook",
                "deliveries_due",
                "deliveries_failed"
            ]
        );
    }
}
