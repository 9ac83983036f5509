//! A webhook's rate limit as send slots (docs/architecture.md §Rate limits): a webhook limited
//! to N deliveries a second sends each delivery in a slot of its own, slots at least
//! `(1 s + SEND_SLACK) / N` apart, and only while its slot is not more than `LATE_MAX` past.
//! Any N + 1 sends then span their slots' N gaps, 1 s + `SEND_SLACK`, less the lateness of the
//! first: at least 1 s + `SEND_SLACK` - `LATE_MAX`, so a receiver whose clock sees each request
//! up to `SEND_SLACK` - `LATE_MAX` later than another never counts N + 1 in any one-second
//! window, sliding or not. Clock-aligned windows would let 2N through across a boundary.
//!
//! The store keeps, per webhook, only the next free slot (`Pacing::reserve`, the rule both
//! stores apply); every delivery takes the next slot, however far ahead. One whose slot is near
//! (within its lead) waits for it and sends; one whose slot is further is held: queued again,
//! unclaimed and untried, with its slot (`HeldSlot`), to come back shortly before it. A slot
//! missed (a worker or queue late by more than `LATE_MAX_US`) is left empty, and the delivery
//! takes a new one.

use serde::{Deserialize, Serialize};

/// One second; slots are µs since the Unix epoch.
pub const SECOND_US: i64 = 1_000_000;
/// What N gaps hold beyond one second: the lateness of a send (`LATE_MAX_US`) and up to 80 ms
/// of variation in how long a request takes to reach the receiver and be counted there (a
/// loaded two-core machine showed 25 ms too little). A limit's throughput is N / 1.1 a second.
pub const SEND_SLACK_US: i64 = 100_000;
/// The latest a delivery may be sent after its slot; a later one takes a new slot.
pub const LATE_MAX_US: i64 = 20_000;
/// How long before its slot a delivery starts on it (its reads and claim, then a wait in the
/// worker): at most this long, and at most `LEAD_SLOTS` gaps, so that only a few of a webhook's
/// deliveries wait in its endpoint's attempt slots at once (service::fairness); figures for 8
/// and 32 gaps in README, Performance.
const LEAD_MAX_US: i64 = 250_000;
const LEAD_SLOTS: i64 = 8;

/// The slot spacing of one webhook's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// Between one slot and the next.
    pub gap_us: i64,
}

/// A held delivery's slot, carried in its queue message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldSlot {
    /// The slot (µs since the epoch).
    pub at: i64,
    /// How long before it the worker starts on the delivery (`Pacing::lead_us`).
    pub lead: i64,
}

impl HeldSlot {
    /// When the worker starts on the delivery.
    pub fn start(&self) -> i64 {
        self.at - self.lead
    }
}

impl Pacing {
    /// The pacing of a limit of `per_second` deliveries (at least 1).
    pub fn per_second(per_second: u32) -> Pacing {
        let n = i64::from(per_second.max(1));
        Pacing {
            gap_us: (SECOND_US + SEND_SLACK_US + n - 1) / n,
        }
    }

    /// The rule every store applies atomically: given the webhook's next free slot (`None`:
    /// nothing reserved yet), the slot a delivery at `now_us` takes, and the next free slot.
    pub fn reserve(&self, next_free: Option<i64>, now_us: i64) -> (i64, i64) {
        let slot = next_free.map_or(now_us, |free| free.max(now_us));
        (slot, slot + self.gap_us)
    }

    /// How long before its slot a delivery starts on it, at least (the worker takes longer
    /// while its store is slow to claim a delivery).
    pub fn lead_us(&self) -> i64 {
        (LEAD_SLOTS * self.gap_us).min(LEAD_MAX_US)
    }

    /// Whether a send at `now_us` keeps to `slot`: not before it, and not more than `LATE_MAX_US`
    /// after it.
    pub fn on_time(slot: i64, now_us: i64) -> bool {
        (slot..=slot + LATE_MAX_US).contains(&now_us)
    }

    /// Whether `slot` can still be kept by a delivery at `now_us`.
    pub fn not_missed(slot: i64, now_us: i64) -> bool {
        now_us <= slot + LATE_MAX_US
    }
}

#[cfg(test)]
mod tests {
    use rand::Rng;

    use super::*;

    #[test]
    fn slots_are_spaced_so_that_n_gaps_exceed_a_second() {
        for n in [1, 5, 20, 500, 10_000] {
            let pacing = Pacing::per_second(n);
            assert!(
                pacing.gap_us * i64::from(n) >= SECOND_US + SEND_SLACK_US,
                "{n}"
            );
            assert!(pacing.gap_us * i64::from(n) < SECOND_US + SEND_SLACK_US + i64::from(n));
        }
        assert_eq!(Pacing::per_second(20).gap_us, 55_000);
    }

    #[test]
    fn an_idle_webhook_sends_at_once_and_a_busy_one_takes_the_next_slot() {
        let pacing = Pacing::per_second(20);
        let now = 1_000 * SECOND_US;
        assert_eq!(pacing.reserve(None, now), (now, now + 55_000));
        // A free slot in the past is now.
        assert_eq!(pacing.reserve(Some(now - 10), now), (now, now + 55_000));
        let mut next = None;
        for i in 0..50 {
            let (slot, after) = pacing.reserve(next, now);
            assert_eq!(slot, now + i * 55_000);
            next = Some(after);
        }
    }

    #[test]
    fn a_delivery_starts_on_its_slot_a_lead_ahead() {
        assert_eq!(Pacing::per_second(5).lead_us(), LEAD_MAX_US);
        assert_eq!(Pacing::per_second(500).lead_us(), 8 * 2_200);
        let held = HeldSlot {
            at: 5 * SECOND_US,
            lead: LEAD_MAX_US,
        };
        assert_eq!(held.start(), 5 * SECOND_US - LEAD_MAX_US);
        let message = serde_json::to_string(&held).unwrap();
        assert_eq!(serde_json::from_str::<HeldSlot>(&message).unwrap(), held);
    }

    #[test]
    fn a_send_is_on_time_from_its_slot_to_late_max() {
        assert!(!Pacing::on_time(100, 99));
        assert!(Pacing::on_time(100, 100));
        assert!(Pacing::on_time(100, 100 + LATE_MAX_US));
        assert!(!Pacing::on_time(100, 101 + LATE_MAX_US));
        assert!(Pacing::not_missed(100, 50));
        assert!(!Pacing::not_missed(100, 101 + LATE_MAX_US));
    }

    /// Many workers reserving at random times and sending late by up to `LATE_MAX_US`, then
    /// seen by the receiver up to the rest of the slack later: never N + 1 in any second.
    #[test]
    fn no_sliding_second_holds_more_than_the_limit() {
        let mut rng = rand::rng();
        for n in [1u32, 5, 20, 500] {
            let pacing = Pacing::per_second(n);
            let mut next = None;
            let mut now = 0i64;
            let mut seen = Vec::new();
            while seen.len() < 20 * n as usize {
                now += rng.random_range(0..=pacing.gap_us / 2 + 1);
                let (slot, after) = pacing.reserve(next, now);
                next = Some(after);
                // Some slots are missed, and left empty.
                if rng.random_range(0..10) > 0 {
                    let sent = slot + rng.random_range(0..=LATE_MAX_US);
                    let delay = rng.random_range(0..=SEND_SLACK_US - LATE_MAX_US);
                    seen.push(sent + delay);
                }
            }
            seen.sort_unstable();
            let most = max_in_any_second(&seen);
            assert!(most <= n as usize, "{n}/s: {most} in one second");
        }
    }

    /// The most of `times` (sorted, µs) in any half-open window [t, t + 1 s).
    fn max_in_any_second(times: &[i64]) -> usize {
        let mut start = 0;
        let mut most = 0;
        for (end, t) in times.iter().enumerate() {
            while times[start] <= t - SECOND_US {
                start += 1;
            }
            most = most.max(end + 1 - start);
        }
        most
    }
}
