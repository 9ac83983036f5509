//! The embedded store's count of notify events per tenant and second
//! (`OutboxStore::take_event_quota`), kept in memory: one crm-local process serves its data
//! directory, so its count is the deployment's, and a notify pays no extra write for it (a
//! round trip to SQLite's writer before the event's own, on every call).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use uuid::Uuid;

use crate::domain::tenant::EVENT_WINDOW_KEPT_SECS;

/// Windows remembered before those older than `EVENT_WINDOW_KEPT_SECS` are dropped.
const REMEMBERED: usize = 10_000;

#[derive(Debug, Default)]
pub struct EventWindows {
    counts: Mutex<HashMap<(Uuid, i64), usize>>,
}

impl EventWindows {
    /// One more event in the tenant's window `second`, unless it holds `max` already.
    pub fn take(&self, tenant_id: Uuid, second: i64, max: usize) -> bool {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if counts.len() >= REMEMBERED {
            counts.retain(|(_, kept), _| *kept >= second - EVENT_WINDOW_KEPT_SECS);
        }
        let count = counts.entry((tenant_id, second)).or_default();
        if *count >= max {
            return false;
        }
        *count += 1;
        true
    }
}
