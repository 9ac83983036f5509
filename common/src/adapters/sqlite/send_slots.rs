//! The embedded store's next free send slot per rate-limited webhook
//! (`WebhookStore::reserve_send_slot`), kept in memory as `event_windows` is: one crm-local
//! process serves its data directory, so the worker tasks of that process are every sender,
//! and a delivery pays no write to SQLite's writer for its slot.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use uuid::Uuid;

use crate::domain::pacing::Pacing;

/// Webhooks remembered before those whose next free slot is past are dropped (a past free
/// slot reserves as no slot at all).
const REMEMBERED: usize = 10_000;

#[derive(Debug, Default)]
pub struct SendSlots {
    next_free: Mutex<HashMap<Uuid, i64>>,
}

impl SendSlots {
    pub fn reserve(&self, webhook_id: Uuid, pacing: Pacing, now_us: i64) -> i64 {
        let mut next_free = self
            .next_free
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if next_free.len() >= REMEMBERED {
            next_free.retain(|_, free| *free > now_us);
        }
        let (slot, after) = pacing.reserve(next_free.get(&webhook_id).copied(), now_us);
        next_free.insert(webhook_id, after);
        slot
    }
}
