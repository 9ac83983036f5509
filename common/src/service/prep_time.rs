//! How long this process takes from starting on a delivery to its claim written, lately: the
//! time a rate-limited delivery's send slot must leave it (service::worker, domain::pacing).

use std::sync::atomic::{AtomicI64, Ordering};

/// How long this process takes from starting on a delivery to its claim written, lately (a
/// moving average, µs): the time a send slot must leave it.
#[derive(Debug, Default)]
pub struct PrepTime {
    us: AtomicI64,
}

impl PrepTime {
    pub fn get(&self) -> i64 {
        self.us.load(Ordering::Relaxed)
    }

    pub fn observe(&self, took_us: i64) {
        let before = self.get();
        self.us
            .store((before * 7 + took_us.max(0)) / 8, Ordering::Relaxed);
    }
}
