//! How long finished work is kept (`CRM_RETENTION_DAYS`): finished deliveries, their attempts
//! and the accepted events. Both stores take their expiry times from here: DynamoDB writes them
//! as TTL attributes, the SQLite store's sweep removes what is past them.

use chrono::{DateTime, Duration, Utc};

/// `CRM_RETENTION_DAYS` when unset: Svix's and Hook0's default too.
pub const DEFAULT_RETENTION_DAYS: i64 = 30;
/// The longest retention accepted: ten years.
pub const MAX_RETENTION_DAYS: i64 = 3_650;
/// How much longer than the deliveries an event's payload is kept: a delivery stays open a few
/// days at most (ten retries of up to 24 h), so its payload outlives every delivery created
/// with it even when the delivery finishes near the end of its retention.
pub const PAYLOAD_MARGIN: Duration = Duration::days(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention(Duration);

impl Default for Retention {
    fn default() -> Retention {
        Retention(Duration::days(DEFAULT_RETENTION_DAYS))
    }
}

impl Retention {
    /// `days` between 1 and `MAX_RETENTION_DAYS`.
    pub fn days(days: i64) -> Option<Retention> {
        (1..=MAX_RETENTION_DAYS)
            .contains(&days)
            .then(|| Retention(Duration::days(days)))
    }

    pub fn period(self) -> Duration {
        self.0
    }

    /// When a record last changed at `at` expires: a finished delivery (its last change), an
    /// attempt (when it was made), an accepted event (when it was dispatched).
    pub fn expiry(self, at: DateTime<Utc>) -> DateTime<Utc> {
        at + self.0
    }

    /// When an event's payload, stored or last needed again (a manual retry) at `at`, expires.
    pub fn payload_expiry(self, at: DateTime<Utc>) -> DateTime<Utc> {
        at + self.0 + PAYLOAD_MARGIN
    }

    /// Records whose last change was before this are past their retention at `now`.
    pub fn cutoff(self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_bounded_and_default_to_thirty() {
        assert_eq!(Retention::default().period(), Duration::days(30));
        assert_eq!(Retention::days(7).unwrap().period(), Duration::days(7));
        for bad in [0, -1, MAX_RETENTION_DAYS + 1] {
            assert_eq!(Retention::days(bad), None, "{bad}");
        }
    }

    #[test]
    fn payloads_outlive_the_deliveries_that_share_them() {
        let retention = Retention::days(3).unwrap();
        let at = Utc::now();
        assert_eq!(retention.expiry(at), at + Duration::days(3));
        assert_eq!(retention.cutoff(retention.expiry(at)), at);
        assert!(retention.payload_expiry(at) > retention.expiry(at + Duration::days(10)));
    }
}
