//! The embedded store's one writer: a thread that owns the write connection and commits the
//! writes waiting for it together (group commit). Each write runs in a savepoint of its own, so a
//! write whose condition fails undoes only itself; every caller hears back only after the commit
//! that holds its write, so an answer never runs ahead of the WAL.
//!
//! Why: SQLite allows one writer at a time anyway, and one commit per write made every write pay
//! for a blocking-pool hand-off, a lock and its own WAL frames. Checkpoints (copying the WAL into
//! the database file, with an fsync) run on a thread of their own for the same reason: the writer
//! that happened to cross the auto-checkpoint threshold used to pay for them, in the middle of
//! someone's request.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// At most this many writes share a commit, so that the first of them does not wait long.
const MAX_BATCH: usize = 256;
/// How often the checkpointer copies committed WAL frames into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

const STOPPED: &str = "the SQLite writer has stopped";

/// A write waiting for the writer thread.
trait Job: Send {
    /// Runs the write in its own savepoint. `false` when the savepoint could not be released or
    /// undone: the batch must not commit.
    fn run(&mut self, conn: &mut Connection) -> bool;
    /// Answers the caller: its own outcome if the batch committed, else why it did not.
    fn finish(self: Box<Self>, committed: std::result::Result<(), String>);
}

struct Pending<T, F> {
    work: Option<F>,
    /// A write, run in a savepoint; a read (nothing to undo) runs without one.
    writes: bool,
    outcome: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send,
    F: FnOnce(&mut Connection) -> Result<T> + Send,
{
    fn run(&mut self, conn: &mut Connection) -> bool {
        let Some(work) = self.work.take() else {
            return true;
        };
        if !self.writes {
            self.outcome = Some(work(conn));
            return true;
        }
        if let Err(error) = run_cached(conn, "SAVEPOINT write") {
            self.outcome = Some(Err(error.into()));
            return true;
        }
        let outcome = work(conn);
        let closed = match outcome {
            Ok(_) => run_cached(conn, "RELEASE write"),
            Err(_) => run_cached(conn, "ROLLBACK TO write")
                .and_then(|()| run_cached(conn, "RELEASE write")),
        };
        self.outcome = Some(outcome);
        closed.is_ok()
    }

    fn finish(self: Box<Self>, committed: std::result::Result<(), String>) {
        let answer = match committed {
            Ok(()) => self
                .outcome
                .unwrap_or_else(|| Err(Error::internal("the write did not run"))),
            Err(why) => Err(Error::internal(why)),
        };
        // The caller may have gone (a cancelled request): its write stands all the same.
        let _ = self.reply.send(answer);
    }
}

/// Runs a statement that takes no parameters from the connection's statement cache: the writer
/// runs several per write, and parsing them anew each time showed up in the fan-out profile.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// The handle the store and the queue share; the thread ends when the last handle is dropped.
pub(crate) struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
    checkpointing: Arc<AtomicBool>,
}

impl Writer {
    /// Takes over `conn` (already migrated) for the writer thread, and starts the checkpointer on
    /// a connection of its own to `file`.
    pub(crate) fn start(conn: Connection, file: &Path) -> Result<Writer> {
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpointer = Connection::open(file)?;
        let (jobs, waiting) = mpsc::channel::<Box<dyn Job>>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || commit_in_batches(conn, &waiting))
            .map_err(Error::internal)?;
        let checkpointing = Arc::new(AtomicBool::new(true));
        let running = Arc::clone(&checkpointing);
        std::thread::Builder::new()
            .name("sqlite-checkpointer".into())
            .spawn(move || checkpoint_until_stopped(&checkpointer, &running))
            .map_err(Error::internal)?;
        Ok(Writer {
            jobs,
            checkpointing,
        })
    }

    /// Runs `work` as one atomic write and returns once it is committed (or failed).
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        self.run(work, true).await
    }

    /// Runs `work`, which only reads, on the writer's connection, whose page cache stays warm
    /// while readers' caches are emptied by every commit. Like a write, it is answered once the
    /// batch it ran in has committed, so it never reports what a rolled-back batch wrote.
    pub(crate) async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        self.run(work, false).await
    }

    async fn run<T, F>(&self, work: F, writes: bool) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Pending {
            work: Some(work),
            writes,
            outcome: None,
            reply,
        });
        self.jobs.send(job).map_err(|_| Error::internal(STOPPED))?;
        answer.await.map_err(|_| Error::internal(STOPPED))?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.checkpointing.store(false, Ordering::Relaxed);
    }
}

fn commit_in_batches(mut conn: Connection, waiting: &mpsc::Receiver<Box<dyn Job>>) {
    while let Ok(first) = waiting.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match waiting.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let committed = commit(&mut conn, &mut batch);
        for job in batch {
            job.finish(committed.clone());
        }
    }
}

/// One transaction around the whole batch; rolled back whole if any write left it unclean.
fn commit(conn: &mut Connection, batch: &mut [Box<dyn Job>]) -> std::result::Result<(), String> {
    run_cached(conn, "BEGIN IMMEDIATE").map_err(|e| e.to_string())?;
    let clean = batch.iter_mut().all(|job| job.run(conn));
    let committed = if clean {
        run_cached(conn, "COMMIT").map_err(|e| e.to_string())
    } else {
        Err("a write could not be undone; its batch was rolled back".to_owned())
    };
    if !conn.is_autocommit() {
        // Whatever went wrong, the next batch starts from a clean connection.
        let _ = conn.execute_batch("ROLLBACK");
    }
    committed
}

fn checkpoint_until_stopped(conn: &Connection, running: &AtomicBool) {
    while running.load(Ordering::Relaxed) {
        std::thread::sleep(CHECKPOINT_EVERY);
        // PASSIVE: copies what no reader still needs, never waits for readers or the writer.
        if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(%error, "WAL checkpoint failed; the next one retries");
        }
    }
}
