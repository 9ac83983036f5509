//! The payloads of the attempts in flight in this process, one copy per event: the deliveries
//! of a fan-out run many at once, and each reads its event's payload (up to 256 KiB) from the
//! store; they keep the first copy still alive and let theirs go, so a fan-out's memory is one
//! payload, not one per attempt in flight.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use uuid::Uuid;

use crate::domain::delivery::Delivery;

/// Events remembered before the ones no attempt holds any more are forgotten.
const REMEMBERED: usize = 1_024;

#[derive(Debug, Default)]
pub struct SharedPayloads {
    live: Mutex<HashMap<(Uuid, Uuid), Weak<str>>>,
}

impl SharedPayloads {
    /// `delivery` with the copy of its payload that another attempt in flight holds, if any
    /// (the same bytes: an event's payload never changes); otherwise its own, remembered.
    pub fn share(&self, mut delivery: Delivery) -> Delivery {
        let key = (delivery.tenant_id, delivery.event_id);
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        match live.get(&key).and_then(Weak::upgrade) {
            Some(held) if *held == *delivery.payload => delivery.payload = held,
            _ => {
                if live.len() >= REMEMBERED {
                    live.retain(|_, payload| payload.strong_count() > 0);
                }
                live.insert(key, Arc::downgrade(&delivery.payload));
            }
        }
        delivery
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    #[test]
    fn deliveries_of_one_event_in_flight_share_one_payload() {
        let shared = SharedPayloads::default();
        let (tenant, event) = (Uuid::now_v7(), Uuid::now_v7());
        let read = |webhook: Uuid| {
            let body = String::from(r#"{"data":"x"}"#);
            Delivery::new(tenant, webhook, event, "lead.created", body, Utc::now())
        };
        let first = shared.share(read(Uuid::now_v7()));
        let second = shared.share(read(Uuid::now_v7()));
        assert!(Arc::ptr_eq(&first.payload, &second.payload));

        drop((first, second));
        let later = read(Uuid::now_v7());
        let own = Arc::clone(&later.payload);
        let later = shared.share(later);
        assert!(
            Arc::ptr_eq(&later.payload, &own),
            "no attempt held the old copy: the new one is kept"
        );
    }
}
