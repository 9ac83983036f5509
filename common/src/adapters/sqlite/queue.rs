//! The embedded delivery queue: a table in the store's SQLite file, so an accepted message
//! survives a crash. Delays and visibility timeouts work as in SQS; a received message that is
//! not deleted becomes visible again. Consumers wait on a notification, not a polling loop.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use rusqlite::params;
use tokio::sync::Notify;

use super::writer::Writer;
use crate::error::{Error, Result};
use crate::ports::{Queue, QueueMessage, Received};

#[derive(Clone)]
pub struct SqliteQueue {
    /// The store's writer: queue rows live in the same file, and every queue call writes.
    writer: Arc<Writer>,
    visibility_timeout: Duration,
    wake: Arc<Notify>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl SqliteQueue {
    pub(super) fn new(writer: Arc<Writer>, visibility_timeout: Duration) -> SqliteQueue {
        SqliteQueue {
            writer,
            visibility_timeout,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Takes up to `max` visible messages; also returns when the next hidden one shows.
    async fn take_visible(&self, max: usize) -> Result<(Vec<Received>, Option<i64>)> {
        let visibility = millis(self.visibility_timeout);
        self.writer
            .write(move |conn| {
                let now = now_ms();
                let taken = {
                    let mut select = conn.prepare_cached(
                        "SELECT id, body, receive_count FROM queue_messages
                     WHERE visible_at <= ?1 ORDER BY visible_at, id LIMIT ?2",
                    )?;
                    let rows = select
                        .query_map(params![now, max as i64], |row| {
                            Ok((
                                row.get::<_, i64>(0)?,
                                row.get::<_, String>(1)?,
                                row.get::<_, u32>(2)?,
                            ))
                        })?
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    let mut hide = conn.prepare_cached(
                    "UPDATE queue_messages SET visible_at = ?2, receive_count = ?3 WHERE id = ?1",
                )?;
                    let mut taken = Vec::with_capacity(rows.len());
                    for (id, body, count) in rows {
                        hide.execute(params![id, now + visibility, count + 1])?;
                        taken.push(Received {
                            message_id: id.to_string(),
                            receipt: format!("{id}:{}", count + 1),
                            body,
                            receive_count: count + 1,
                        });
                    }
                    taken
                };
                let next: Option<i64> = conn
                    .prepare_cached("SELECT MIN(visible_at) FROM queue_messages")?
                    .query_row([], |row| row.get(0))?;
                Ok((taken, next))
            })
            .await
    }

    /// Makes every received-but-undeleted message visible again. For a process that is the
    /// queue's only consumer, at start-up: whatever it held before a crash is not in progress.
    pub async fn release_unacknowledged(&self) -> Result<usize> {
        self.writer.write(|conn| {
            let released = conn.execute(
                "UPDATE queue_messages SET visible_at = ?1 WHERE receive_count > 0 AND visible_at > ?1",
                params![now_ms()],
            )?;
            Ok(released)
        })
        .await
    }

    /// Messages in the queue, visible or not (for tests and benchmarks).
    pub async fn len(&self) -> Result<usize> {
        self.writer
            .read(|conn| {
                let n: i64 =
                    conn.query_row("SELECT COUNT(*) FROM queue_messages", [], |row| row.get(0))?;
                Ok(usize::try_from(n).unwrap_or(0))
            })
            .await
    }
}

#[async_trait]
impl Queue for SqliteQueue {
    async fn send(&self, messages: &[(QueueMessage, Duration)]) -> Result<()> {
        let rows: Vec<(String, i64)> = messages
            .iter()
            .map(|(message, delay)| {
                let body = serde_json::to_string(message).map_err(Error::internal)?;
                Ok((body, millis(*delay)))
            })
            .collect::<Result<_>>()?;
        self.writer
            .write(move |conn| {
                let now = now_ms();
                {
                    let mut insert = conn.prepare_cached(
                        "INSERT INTO queue_messages (body, visible_at) VALUES (?1, ?2)",
                    )?;
                    for (body, delay) in &rows {
                        insert.execute(params![body, now + delay])?;
                    }
                }
                Ok(())
            })
            .await?;
        self.wake.notify_waiters();
        Ok(())
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Received>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before looking, so a send between the look and the wait still wakes us.
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let (taken, next_visible) = self.take_visible(max).await?;
            if !taken.is_empty() {
                return Ok(taken);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let until = next_visible
                .map(|at| now + Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)))
                .map_or(deadline, |at| at.min(deadline));
            tokio::select! {
                () = &mut woken => {}
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }

    async fn delete(&self, receipt: &str) -> Result<()> {
        let Some((id, count)) = receipt
            .split_once(':')
            .and_then(|(id, count)| Some((id.parse::<i64>().ok()?, count.parse::<u32>().ok()?)))
        else {
            return Err(Error::internal(format!("malformed receipt {receipt}")));
        };
        self.writer
            .write(move |conn| {
                // A receipt from before a redelivery no longer owns the message.
                conn.prepare_cached(
                    "DELETE FROM queue_messages WHERE id = ?1 AND receive_count = ?2",
                )?
                .execute(params![id, count])?;
                Ok(())
            })
            .await
    }
}
