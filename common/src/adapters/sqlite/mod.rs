//! The embedded store: one SQLite file (WAL) under `CRM_DATA_DIR`, for `crm-local`.
//!
//! rusqlite is synchronous: reads run on the blocking pool on a few reader connections, writes
//! on the one writer thread (`writer`), each atomic in its own savepoint. A read waits for
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
//!
//! One module per aggregate, each implementing its trait of the `Store` port: `tenants`
//! (`TenantStore`), `clients` (`ClientStore`), `outbox` (`OutboxStore`, with `event_windows`),
//! `idempotency` (`IdempotencyStore`: notify's keys), `webhooks` (`WebhookStore`, with `send_slots`), `deliveries` (`DeliveryStore`), `retention` (`RetentionStore`: the sweep's removals); `columns` reads the columns they
//! share. Here: opening the file, the reader connections, the writer (`writer`) and the schema
//! (`migrations/`). `queue`: the delivery queue in the same file.

mod audit;
mod clients;
mod columns;
mod deliveries;
mod event_windows;
mod idempotency;
mod outbox;
pub mod queue;
mod retention;
mod secrets;
mod send_slots;
mod tenants;
mod webhooks;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use self::event_windows::EventWindows;
use self::queue::SqliteQueue;
use self::send_slots::SendSlots;
use self::writer::Writer;
use crate::domain::retention::Retention;
use crate::error::{Error, Result};

pub const DB_FILE: &str = "crm.sqlite3";

/// Schema migrations (`migrations/`, each file saying why), applied in order; `PRAGMA
/// user_version` records how many ran. A migration, once released, never changes: a new one is
/// a new file at the end.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_tables.sql"),
    include_str!("migrations/0002_webhooks_and_deliveries.sql"),
    include_str!("migrations/0003_rowid_deliveries.sql"),
    include_str!("migrations/0004_failed_by_webhook.sql"),
    include_str!("migrations/0005_outbox_occurred_at.sql"),
    include_str!("migrations/0006_shared_payloads.sql"),
    include_str!("migrations/0007_idempotency_keys.sql"),
    include_str!("migrations/0008_retention.sql"),
    include_str!("migrations/0009_webhook_retry_schedule.sql"),
    include_str!("migrations/0010_webhook_health.sql"),
    include_str!("migrations/0011_delivery_search.sql"),
    include_str!("migrations/0012_webhook_rate_limit.sql"),
    include_str!("migrations/0013_sync_failure_reasons.sql"),
    include_str!("migrations/0014_sync_history.sql"),
    include_str!("migrations/0015_stale_clients.sql"),
    include_str!("migrations/0016_key_expiry_and_use.sql"),
    include_str!("migrations/0017_audit_log.sql"),
    include_str!("migrations/0018_data_keys.sql"),
];

/// One writer (SQLite has one writer at a time anyway) and a few readers, which WAL lets run
/// beside it, so reads (but the worker's two: see the module's note) never queue behind writes.
#[derive(Clone)]
pub struct SqliteStore {
    writer: Arc<Writer>,
    readers: Arc<Readers>,
    event_windows: Arc<EventWindows>,
    /// What the sweep removes (`retention`): SQLite has no TTL.
    retention: Retention,
    send_slots: Arc<SendSlots>,
    /// The database file, for `scrub`.
    file: Arc<PathBuf>,
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
            retention: Retention::default(),
            send_slots: Arc::new(SendSlots::default()),
            file: Arc::new(dir.join(DB_FILE)),
        })
    }

    /// Rewrites the file with its live rows only (VACUUM) and empties the WAL, so that nothing
    /// deleted or overwritten before stays in a freed page or an old WAL frame: after secrets
    /// were sealed (`SecretStore::seal_plain_secrets`), which happens once, at start.
    async fn scrub(&self) -> Result<()> {
        let file = Arc::clone(&self.file);
        tokio::task::spawn_blocking(move || {
            let conn = Connection::open(file.as_path())?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            conn.execute_batch("VACUUM")?;
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            Ok(())
        })
        .await
        .map_err(Error::internal)?
    }

    /// The same store, keeping finished work for `retention` instead of the default.
    pub fn retaining(self, retention: Retention) -> SqliteStore {
        SqliteStore { retention, ..self }
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
    pub fn queue(&self, visibility_timeout: std::time::Duration) -> SqliteQueue {
        SqliteQueue::new(Arc::clone(&self.writer), visibility_timeout)
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::Utc;
    use rusqlite::params;
    use uuid::Uuid;

    use super::*;
    use crate::domain::delivery::{Delivery, RetrySchedule};
    use crate::ports::{DeliveryChange, DeliveryStore, SendOutcome};
    use crate::time::rfc3339;

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
                "deliveries_failed",
                "deliveries_finished",
                "deliveries_search_event",
                "deliveries_search_status",
                "deliveries_search_webhook",
                "deliveries_search_webhook_event"
            ]
        );
    }
}
