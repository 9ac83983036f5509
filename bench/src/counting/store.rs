//! A `Store` that counts the calls made through the port and hands each to the real store: a
//! `StoreLayer` of common's `LayeredStore`. A measuring layer, not a mock: every call reaches
//! SQLite or DynamoDB unchanged.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;

use common::error::Result;
use common::faults::{LayeredStore, StoreLayer};

/// The port's methods that write; every other one reads.
const WRITES: &[&str] = &[
    "create_tenant",
    "put_api_key",
    "delete_api_key",
    "write_client",
    "take_event_quota",
    "append_event",
    "mark_event_dispatched",
    "claim_idempotency_key",
    "record_idempotent_answer",
    "create_webhook",
    "update_webhook",
    "delete_webhook",
    "put_payload",
    "create_deliveries",
    "write_delivery",
    "requeue_deliveries",
];

/// The real store, its calls counted (`take` through `Deref`).
pub type CountingStore = LayeredStore<CallCounts>;

/// Calls per port method, counted as they are made.
#[derive(Default)]
pub struct CallCounts {
    calls: Mutex<BTreeMap<&'static str, u64>>,
}

impl CallCounts {
    fn count(&self, method: &'static str) {
        *self
            .calls
            .lock()
            .expect("call counts")
            .entry(method)
            .or_default() += 1;
    }

    /// The counts so far, zeroing them.
    pub fn take(&self) -> PortCalls {
        PortCalls(std::mem::take(
            &mut *self.calls.lock().expect("call counts"),
        ))
    }
}

impl StoreLayer for CallCounts {
    fn around<T: Send>(
        &self,
        method: &'static str,
        call: impl Future<Output = Result<T>> + Send,
    ) -> impl Future<Output = Result<T>> + Send {
        // The payload and the deliveries written together count as the two writes they are.
        if method == "create_deliveries_with_payload" {
            self.count("put_payload");
            self.count("create_deliveries");
        } else {
            self.count(method);
        }
        call
    }
}

/// Calls per port method since the last reset.
#[derive(Debug, Clone, Default)]
pub struct PortCalls(pub BTreeMap<&'static str, u64>);

impl PortCalls {
    pub fn add(&mut self, other: PortCalls) {
        for (name, n) in other.0 {
            *self.0.entry(name).or_default() += n;
        }
    }

    pub fn reads(&self) -> u64 {
        self.0
            .iter()
            .filter(|(name, _)| !WRITES.contains(name))
            .map(|(_, n)| n)
            .sum()
    }

    pub fn writes(&self) -> u64 {
        self.0
            .iter()
            .filter(|(name, _)| WRITES.contains(name))
            .map(|(_, n)| n)
            .sum()
    }

    /// `method ×n` for each read method, for the tables.
    pub fn read_breakdown(&self, per: f64) -> String {
        self.0
            .iter()
            .filter(|(name, _)| !WRITES.contains(name))
            .map(|(name, n)| format!("{name} ×{}", crate::counting::figure(*n as f64 / per)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
