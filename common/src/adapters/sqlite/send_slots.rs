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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_webhook_has_its_own_slots_and_past_ones_are_forgotten_first() {
        let slots = SendSlots::default();
        let pacing = Pacing { gap_us: 100 };
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(slots.reserve(a, pacing, 1_000), 1_000);
        assert_eq!(slots.reserve(a, pacing, 1_000), 1_100);
        assert_eq!(slots.reserve(b, pacing, 1_000), 1_000);
        // Full: webhooks whose next free slot is past go, as they reserve like none at all.
        for _ in 0..REMEMBERED {
            slots.reserve(Uuid::now_v7(), pacing, 0);
        }
        assert_eq!(slots.reserve(a, pacing, 1_150), 1_200);
        assert!(slots.next_free.lock().unwrap().len() <= REMEMBERED + 1);
    }
}
