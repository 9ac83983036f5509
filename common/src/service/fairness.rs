//! Fair shares of a consumer's attempts. The consumer runs a bounded number of attempts at once
//! (crm-local: `local::CONCURRENCY`; a Lambda container: one batch); without shares, one
//! tenant's slow or hanging receivers fill every slot and every other tenant waits behind them.
//! Each attempt holds a slot of its tenant and one of its endpoint (the webhook); a delivery
//! whose tenant or endpoint has no slot free is set aside: queued again with a delay that
//! follows how long that endpoint's attempts take, and its message handled at once, so the
//! messages behind it reach a free slot.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rand::Rng;
use uuid::Uuid;

/// How many attempts of one tenant, and of one endpoint, run at once in one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FairShare {
    /// `CRM_MAX_IN_FLIGHT_PER_TENANT`.
    pub per_tenant: usize,
    /// `CRM_MAX_IN_FLIGHT_PER_ENDPOINT`.
    pub per_endpoint: usize,
}

impl Default for FairShare {
    /// Half of crm-local's 64 slots for one tenant, a quarter for one endpoint: a busy
    /// endpoint still has room for hundreds of fast attempts a second, and others keep half.
    fn default() -> FairShare {
        FairShare {
            per_tenant: 32,
            per_endpoint: 16,
        }
    }
}

/// The shortest and longest a set-aside delivery waits before it is tried again.
const SET_ASIDE_MIN: Duration = Duration::from_secs(1);
const SET_ASIDE_MAX: Duration = Duration::from_secs(30);
/// An endpoint whose attempts take less than this is fast: a delivery that finds it full waits
/// in the process for a slot, up to `FAST_WAIT_MAX`, instead of a queue round trip of a second
/// or more (a burst to one quick receiver would otherwise pay that second at the tail). An
/// endpoint not yet known counts as fast until an attempt in flight is older than this.
const FAST: Duration = Duration::from_millis(250);
const FAST_WAIT_MAX: Duration = Duration::from_secs(1);
/// How often a waiting delivery looks again for a slot (and whether its endpoint is still fast:
/// one that starts hanging frees none). Polling: waking every waiter on each slot given back
/// (a `Notify`) cost a burst to one receiver a fifth of its throughput in wake-ups.
const FAST_WAIT_STEP: Duration = Duration::from_millis(2);
/// Tenants and endpoints remembered at rest (their typical attempt time) before forgetting.
const REMEMBERED: usize = 10_000;

#[derive(Debug, Default)]
struct Holder {
    in_flight: usize,
    /// When each attempt in flight began, oldest first.
    started: Vec<Instant>,
    /// How long this endpoint's recent attempts took (a moving average).
    typical: Option<Duration>,
}

impl Holder {
    /// Its attempts take under `FAST` (or none has ended yet), and none in flight is older.
    fn is_fast(&self) -> bool {
        self.typical.is_none_or(|typical| typical < FAST)
            && self.started.first().is_none_or(|s| s.elapsed() < FAST)
    }
}

/// The slots taken in this process, by tenant and by endpoint (tenant and webhook ids are
/// distinct UUIDs: one map holds both).
#[derive(Debug, Default)]
pub struct InFlight {
    share: FairShare,
    holders: Mutex<HashMap<Uuid, Holder>>,
}

/// A tenant's and an endpoint's slot, given back when dropped.
#[derive(Debug)]
pub struct Slot {
    registry: Arc<InFlight>,
    tenant_id: Uuid,
    webhook_id: Uuid,
    started: Instant,
}

impl InFlight {
    pub fn new(share: FairShare) -> InFlight {
        InFlight {
            share,
            holders: Mutex::new(HashMap::new()),
        }
    }

    /// A slot for an attempt of this tenant to this endpoint, or how long to set the delivery
    /// aside when either has none free.
    pub fn take(
        self: &Arc<InFlight>,
        tenant_id: Uuid,
        webhook_id: Uuid,
    ) -> std::result::Result<Slot, Duration> {
        let mut holders = self.holders.lock().unwrap_or_else(PoisonError::into_inner);
        let tenant_full = holders
            .get(&tenant_id)
            .is_some_and(|h| h.in_flight >= self.share.per_tenant);
        let endpoint_full = holders
            .get(&webhook_id)
            .is_some_and(|h| h.in_flight >= self.endpoint_share(h));
        if tenant_full || endpoint_full {
            let key = if endpoint_full { webhook_id } else { tenant_id };
            return Err(set_aside_for(&holders[&key]));
        }
        let now = Instant::now();
        for key in [tenant_id, webhook_id] {
            let holder = holders.entry(key).or_default();
            holder.in_flight += 1;
            holder.started.push(now);
        }
        Ok(Slot {
            registry: Arc::clone(self),
            tenant_id,
            webhook_id,
            started: now,
        })
    }

    /// `take`, waiting a little while the full tenant or endpoint is a fast one: its slots come
    /// free within milliseconds. A slow or hanging one is set aside at once.
    pub async fn take_or_wait(
        self: &Arc<InFlight>,
        tenant_id: Uuid,
        webhook_id: Uuid,
    ) -> std::result::Result<Slot, Duration> {
        let give_up = Instant::now() + FAST_WAIT_MAX;
        loop {
            match self.take(tenant_id, webhook_id) {
                Ok(slot) => return Ok(slot),
                Err(_) if self.is_fast(tenant_id, webhook_id) && Instant::now() < give_up => {
                    tokio::time::sleep(FAST_WAIT_STEP).await;
                }
                Err(wait) => return Err(wait),
            }
        }
    }

    /// An endpoint's share: a slow one's is `per_endpoint`, so that it cannot take all of its
    /// tenant's slots from the tenant's other endpoints; a fast one gives its slots back within
    /// milliseconds and may use its tenant's whole share (a burst to one quick receiver would
    /// otherwise run a quarter slower). Should it start hanging, it holds no more than its
    /// tenant's share: other tenants never wait for it.
    fn endpoint_share(&self, holder: &Holder) -> usize {
        if holder.is_fast() {
            self.share.per_endpoint.max(self.share.per_tenant)
        } else {
            self.share.per_endpoint
        }
    }

    /// Whether the attempts of both are quick (or not known yet), and none in flight is old.
    fn is_fast(&self, tenant_id: Uuid, webhook_id: Uuid) -> bool {
        let holders = self.holders.lock().unwrap_or_else(PoisonError::into_inner);
        [tenant_id, webhook_id]
            .iter()
            .all(|key| holders.get(key).is_none_or(Holder::is_fast))
    }

    fn give_back(&self, slot: &Slot) {
        let mut holders = self.holders.lock().unwrap_or_else(PoisonError::into_inner);
        if holders.len() > REMEMBERED {
            // What is known of tenants and endpoints at rest is only a hint: keep it bounded.
            holders.retain(|_, holder| holder.in_flight > 0);
        }
        let took = slot.started.elapsed();
        for key in [slot.tenant_id, slot.webhook_id] {
            let Some(holder) = holders.get_mut(&key) else {
                continue;
            };
            holder.in_flight = holder.in_flight.saturating_sub(1);
            if let Some(index) = holder.started.iter().position(|s| *s == slot.started) {
                holder.started.remove(index);
            }
            holder.typical = Some(match holder.typical {
                Some(typical) => (typical * 3 + took) / 4,
                None => took,
            });
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.registry.give_back(self);
    }
}

/// About as long as a slot of this holder takes to come free: its attempts' typical time, or
/// the age of its oldest attempt in flight if longer (a receiver that hangs), with jitter so
/// that the deliveries set aside together do not all come back together.
fn set_aside_for(holder: &Holder) -> Duration {
    let oldest = holder
        .started
        .first()
        .map(Instant::elapsed)
        .unwrap_or_default();
    let expected = holder.typical.unwrap_or_default().max(oldest);
    let base = expected.clamp(SET_ASIDE_MIN, SET_ASIDE_MAX);
    let jitter = rand::rng().random_range(0..=base.as_millis() as u64 / 2);
    base + Duration::from_millis(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(per_tenant: usize, per_endpoint: usize) -> Arc<InFlight> {
        Arc::new(InFlight::new(FairShare {
            per_tenant,
            per_endpoint,
        }))
    }

    /// Makes the endpoint's recent attempts slow ones.
    fn slow(in_flight: &InFlight, endpoint: Uuid) {
        let mut holders = in_flight.holders.lock().unwrap();
        holders.entry(endpoint).or_default().typical = Some(FAST * 4);
    }

    #[test]
    fn a_slow_endpoint_holds_at_most_its_share() {
        let in_flight = registry(10, 2);
        let (tenant, endpoint, other) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        slow(&in_flight, endpoint);
        let first = in_flight.take(tenant, endpoint).unwrap();
        let _second = in_flight.take(tenant, endpoint).unwrap();
        let wait = in_flight.take(tenant, endpoint).unwrap_err();
        assert!(
            (SET_ASIDE_MIN..=SET_ASIDE_MAX * 2).contains(&wait),
            "{wait:?}"
        );
        assert!(
            in_flight.take(tenant, other).is_ok(),
            "another endpoint has room"
        );
        drop(first);
        assert!(in_flight.take(tenant, endpoint).is_ok(), "a slot came free");
    }

    #[test]
    fn a_fast_endpoint_may_use_its_tenants_share_and_no_more() {
        let in_flight = registry(4, 2);
        let (tenant, endpoint) = (Uuid::now_v7(), Uuid::now_v7());
        let slots: Vec<Slot> = (0..4)
            .map(|_| in_flight.take(tenant, endpoint).unwrap())
            .collect();
        assert!(
            in_flight.take(tenant, endpoint).is_err(),
            "the tenant is full"
        );
        assert!(
            in_flight.take(Uuid::now_v7(), Uuid::now_v7()).is_ok(),
            "another tenant has room"
        );
        drop(slots);
    }

    #[test]
    fn a_tenant_holds_at_most_its_share_across_endpoints() {
        let in_flight = registry(2, 10);
        let tenant = Uuid::now_v7();
        let _a = in_flight.take(tenant, Uuid::now_v7()).unwrap();
        let _b = in_flight.take(tenant, Uuid::now_v7()).unwrap();
        assert!(in_flight.take(tenant, Uuid::now_v7()).is_err());
        assert!(
            in_flight.take(Uuid::now_v7(), Uuid::now_v7()).is_ok(),
            "another tenant has room"
        );
    }

    #[tokio::test]
    async fn a_fast_endpoint_waits_for_a_slot_a_slow_one_is_set_aside() {
        let in_flight = registry(10, 1);
        let (tenant, endpoint) = (Uuid::now_v7(), Uuid::now_v7());
        drop(in_flight.take(tenant, endpoint).unwrap()); // one quick attempt: known fast
        let busy = in_flight.take(tenant, endpoint).unwrap();
        let freed = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(busy);
        });
        let started = Instant::now();
        let slot = in_flight.take_or_wait(tenant, endpoint).await;
        assert!(slot.is_ok(), "waited for the fast endpoint's slot");
        assert!(started.elapsed() < Duration::from_millis(500));
        freed.await.unwrap();
        drop(slot);

        // A new endpoint's first attempt starts hanging and fills its tenant's share: the
        // delivery behind it waits only until that attempt is older than a fast one, then is
        // set aside.
        let in_flight = registry(1, 1);
        let (tenant, new) = (Uuid::now_v7(), Uuid::now_v7());
        let _hanging = in_flight.take(tenant, new).unwrap();
        let started = Instant::now();
        assert!(in_flight.take_or_wait(tenant, new).await.is_err());
        let waited = started.elapsed();
        assert!(
            (FAST - Duration::from_millis(10)..FAST * 2).contains(&waited),
            "{waited:?}"
        );

        // Known slow: set aside at once.
        let in_flight = registry(10, 1);
        let (tenant, slow_one) = (Uuid::now_v7(), Uuid::now_v7());
        slow(&in_flight, slow_one);
        let _busy = in_flight.take(tenant, slow_one).unwrap();
        let started = Instant::now();
        assert!(in_flight.take_or_wait(tenant, slow_one).await.is_err());
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "set aside at once"
        );
    }

    #[test]
    fn a_hanging_endpoint_sets_deliveries_aside_for_longer() {
        let in_flight = registry(10, 1);
        let (tenant, endpoint) = (Uuid::now_v7(), Uuid::now_v7());
        let _hanging = in_flight.take(tenant, endpoint).unwrap();
        let mut holders = in_flight.holders.lock().unwrap();
        holders.get_mut(&endpoint).unwrap().started[0] = Instant::now() - Duration::from_secs(8);
        drop(holders);
        let wait = in_flight.take(tenant, endpoint).unwrap_err();
        assert!(wait >= Duration::from_secs(8), "{wait:?}");
    }
}
