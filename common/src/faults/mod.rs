//! Fault injection for the soak test and the bench (feature `faults`, which no Lambda enables):
//! wrappers of the `Store`, `Queue` and `Sender` ports that fail or delay a chosen share of
//! calls, decided by a seeded random source, and a clock the soak can move forward.
//!
//! A fault is one of three kinds:
//! - **before**: the call fails without reaching the backend (nothing happened);
//! - **after**: the call reaches the backend and does its work, then the caller sees an error
//!   (for a write, the worst case: it happened, and the caller cannot know);
//! - **delay**: the call waits, then runs as usual.
//!
//! Calls run concurrently, so the seed fixes the sequence of decisions, not which call gets
//! which: a run is reproducible in its shares, not call for call.

mod receiver;
mod store;

pub mod soak;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{Error, Result};
use crate::ports::{
    Clock, OutboundRequest, Queue, QueueMessage, Received, SendOutcome, Sender, SystemClock,
};

pub use store::{FaultyStore, LayeredStore, StoreLayer};

/// Which calls fail and how: each share is of all calls, so `before + after + delayed` is the
/// share of calls that meet a fault.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultPlan {
    pub seed: u64,
    /// Calls failed before they reach the backend.
    pub before: f64,
    /// Calls failed after the backend did the work.
    pub after: f64,
    /// Calls held for `delay`, then run.
    pub delayed: f64,
    pub delay: Duration,
}

impl FaultPlan {
    /// 10% of calls meet a fault: 4% fail before, 4% fail after, 2% wait 50 ms.
    pub fn ten_percent(seed: u64) -> FaultPlan {
        FaultPlan {
            seed,
            before: 0.04,
            after: 0.04,
            delayed: 0.02,
            delay: Duration::from_millis(50),
        }
    }
}

/// What happens to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Before,
    After,
    Delay(Duration),
}

/// The ports a fault is injected in, for the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Port {
    Store,
    Queue,
    Sender,
}

#[derive(Default)]
struct Tally {
    calls: AtomicU64,
    before: AtomicU64,
    after: AtomicU64,
    delayed: AtomicU64,
}

impl Tally {
    fn figures(&self) -> PortFigures {
        PortFigures {
            calls: self.calls.load(Ordering::Relaxed),
            before: self.before.load(Ordering::Relaxed),
            after: self.after.load(Ordering::Relaxed),
            delayed: self.delayed.load(Ordering::Relaxed),
        }
    }
}

/// Calls made through one port while faults were on, and the faults injected in them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortFigures {
    pub calls: u64,
    pub before: u64,
    pub after: u64,
    pub delayed: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultFigures {
    pub store: PortFigures,
    pub queue: PortFigures,
    pub sender: PortFigures,
}

/// The fault source the three wrappers share: a plan, a seeded random source, a switch (off
/// when made) and the counts.
pub struct Faults {
    plan: FaultPlan,
    on: AtomicBool,
    rng: Mutex<StdRng>,
    store: Tally,
    queue: Tally,
    sender: Tally,
}

impl Faults {
    /// Off until `start`.
    pub fn new(plan: FaultPlan) -> Arc<Faults> {
        Arc::new(Faults {
            plan,
            on: AtomicBool::new(false),
            rng: Mutex::new(StdRng::seed_from_u64(plan.seed)),
            store: Tally::default(),
            queue: Tally::default(),
            sender: Tally::default(),
        })
    }

    pub fn plan(&self) -> FaultPlan {
        self.plan
    }

    pub fn start(&self) {
        self.on.store(true, Ordering::SeqCst);
    }

    /// Every call from now on reaches its backend at once and returns what it returned.
    pub fn stop(&self) {
        self.on.store(false, Ordering::SeqCst);
    }

    pub fn figures(&self) -> FaultFigures {
        FaultFigures {
            store: self.store.figures(),
            queue: self.queue.figures(),
            sender: self.sender.figures(),
        }
    }

    fn tally(&self, port: Port) -> &Tally {
        match port {
            Port::Store => &self.store,
            Port::Queue => &self.queue,
            Port::Sender => &self.sender,
        }
    }

    /// The fault of one call through `port`, counted; `None` while off.
    fn decide(&self, port: Port) -> Option<Fault> {
        if !self.on.load(Ordering::SeqCst) {
            return None;
        }
        let roll: f64 = match self.rng.lock() {
            Ok(mut rng) => rng.random(),
            Err(poisoned) => poisoned.into_inner().random(),
        };
        let plan = &self.plan;
        let tally = self.tally(port);
        tally.calls.fetch_add(1, Ordering::Relaxed);
        let (fault, count) = if roll < plan.before {
            (Fault::Before, &tally.before)
        } else if roll < plan.before + plan.after {
            (Fault::After, &tally.after)
        } else if roll < plan.before + plan.after + plan.delayed {
            (Fault::Delay(plan.delay), &tally.delayed)
        } else {
            return None;
        };
        count.fetch_add(1, Ordering::Relaxed);
        Some(fault)
    }

    /// Runs `call` (a store or queue call, not started yet) under the fault decided for it.
    async fn under_fault<T>(
        &self,
        port: Port,
        method: &'static str,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        match self.decide(port) {
            None => call.await,
            Some(Fault::Before) => Err(injected(method, "before reaching the backend")),
            Some(Fault::After) => {
                // The backend's answer is dropped, as a reply lost on its way back is.
                let _ = call.await;
                Err(injected(method, "after the backend did the work"))
            }
            Some(Fault::Delay(delay)) => {
                tokio::time::sleep(delay).await;
                call.await
            }
        }
    }
}

fn injected(method: &str, when: &str) -> Error {
    Error::internal(format!("injected fault: {method} failed {when}"))
}

/// A `Queue` whose calls meet the faults of `faults`. An `after` fault on `receive` leaves the
/// messages received invisible until their visibility timeout, as a consumer that died would.
pub struct FaultyQueue {
    inner: Arc<dyn Queue>,
    faults: Arc<Faults>,
}

impl FaultyQueue {
    pub fn new(inner: Arc<dyn Queue>, faults: Arc<Faults>) -> FaultyQueue {
        FaultyQueue { inner, faults }
    }
}

#[async_trait]
impl Queue for FaultyQueue {
    async fn send(&self, messages: &[(QueueMessage, Duration)]) -> Result<()> {
        let call = self.inner.send(messages);
        self.faults.under_fault(Port::Queue, "send", call).await
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Received>> {
        let call = self.inner.receive(max, wait);
        self.faults.under_fault(Port::Queue, "receive", call).await
    }

    async fn delete(&self, receipt: &str) -> Result<()> {
        let call = self.inner.delete(receipt);
        self.faults.under_fault(Port::Queue, "delete", call).await
    }
}

/// A `Sender` whose posts meet the faults of `faults`: a failure is a transport error in the
/// outcome (the sender never fails otherwise). `before`: the receiver never sees the request;
/// `after`: it got it and answered, and the worker sees a time-out, so it sends again.
pub struct FaultySender {
    inner: Arc<dyn Sender>,
    faults: Arc<Faults>,
}

impl FaultySender {
    pub fn new(inner: Arc<dyn Sender>, faults: Arc<Faults>) -> FaultySender {
        FaultySender { inner, faults }
    }
}

#[async_trait]
impl Sender for FaultySender {
    async fn post(&self, request: OutboundRequest) -> SendOutcome {
        let failed = |error: &str, latency| SendOutcome {
            status: None,
            body: String::new(),
            error: Some(format!("injected fault: {error}")),
            latency,
        };
        match self.faults.decide(Port::Sender) {
            None => self.inner.post(request).await,
            Some(Fault::Before) => failed("connection refused", Duration::ZERO),
            Some(Fault::After) => {
                let answered = self.inner.post(request).await;
                failed("timed out waiting for the response", answered.latency)
            }
            Some(Fault::Delay(delay)) => {
                tokio::time::sleep(delay).await;
                self.inner.post(request).await
            }
        }
    }
}

/// The system clock, moved forward by `advance`: the soak's settling skips the leases and
/// grace periods a crash leaves behind instead of waiting them out.
#[derive(Debug, Default)]
pub struct SteppedClock {
    /// Whole milliseconds, so that `now` reads back from any store exactly as written, as
    /// `SystemClock`'s does.
    offset_ms: AtomicI64,
}

impl SteppedClock {
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }

    fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::SeqCst)
    }
}

impl Clock for SteppedClock {
    fn now(&self) -> DateTime<Utc> {
        SystemClock.now() + chrono::Duration::milliseconds(self.offset_ms())
    }

    fn now_us(&self) -> i64 {
        SystemClock.now_us() + self.offset_ms() * 1_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_meets_its_shares() {
        let faults = Faults::new(FaultPlan::ten_percent(7));
        assert_eq!(faults.decide(Port::Store), None, "off when made");
        assert_eq!(faults.figures().store.calls, 0, "nothing counted while off");
        faults.start();
        for _ in 0..100_000 {
            faults.decide(Port::Store);
        }
        let store = faults.figures().store;
        assert_eq!(store.calls, 100_000);
        let share = |n: u64| n as f64 / 100_000.0;
        assert!((share(store.before) - 0.04).abs() < 0.005, "{store:?}");
        assert!((share(store.after) - 0.04).abs() < 0.005, "{store:?}");
        assert!((share(store.delayed) - 0.02).abs() < 0.005, "{store:?}");
    }

    #[test]
    fn one_seed_makes_one_sequence() {
        let sequence = |seed| {
            let faults = Faults::new(FaultPlan::ten_percent(seed));
            faults.start();
            (0..1_000)
                .map(|_| faults.decide(Port::Queue))
                .collect::<Vec<_>>()
        };
        assert_eq!(sequence(1), sequence(1));
        assert_ne!(sequence(1), sequence(2));
    }

    #[test]
    fn the_stepped_clock_moves_only_forward_by_its_steps() {
        let clock = SteppedClock::default();
        let before = clock.now();
        clock.advance(Duration::from_secs(60));
        let after = clock.now();
        assert!(after - before >= chrono::Duration::seconds(60));
        assert!(after - before < chrono::Duration::seconds(61));
    }
}
