//! An endpoint's health, from its attempts: when it last answered 2xx and last failed, how many
//! deliveries in a row ended FAILED, and since when every attempt has failed, which decides its
//! automatic disabling (`WEBHOOK_DISABLE_AFTER_SECONDS`, Svix's rule: 5 days by default).

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// `WEBHOOK_DISABLE_AFTER_SECONDS` when unset.
pub const DEFAULT_DISABLE_AFTER: Duration = Duration::days(5);
/// While an endpoint stays healthy, its `lastSuccessAt` is written again only once this old, so
/// that a busy endpoint's successes do not each cost a write of the webhook.
pub const SUCCESS_RECORD_INTERVAL: Duration = Duration::seconds(60);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookHealth {
    /// A recent 2xx answer (recorded at most once a minute while nothing fails).
    #[serde(serialize_with = "crate::time::serde_millis::option::serialize")]
    pub last_success_at: Option<DateTime<Utc>>,
    /// The last attempt that failed.
    #[serde(serialize_with = "crate::time::serde_millis::option::serialize")]
    pub last_failure_at: Option<DateTime<Utc>>,
    /// Deliveries that ended FAILED since the last 2xx answer.
    pub consecutive_failures: u32,
    /// The first failed attempt since the last 2xx answer (or since the webhook was re-enabled):
    /// every attempt since has failed. Null while the endpoint is healthy.
    #[serde(serialize_with = "crate::time::serde_millis::option::serialize")]
    pub failing_since: Option<DateTime<Utc>>,
}

/// What an attempt, or a user, tells about an endpoint's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthChange {
    /// A 2xx answer: healthy again.
    Succeeded,
    /// A failed attempt; `delivery_failed` when it ended its delivery FAILED.
    Failed { delivery_failed: bool },
    /// Re-enabled by a user: its failures start counting afresh.
    Restarted,
}

impl WebhookHealth {
    /// The health after `change` at `at`: what each store writes, atomically, with no read.
    pub fn after(&self, change: HealthChange, at: DateTime<Utc>) -> WebhookHealth {
        let mut next = self.clone();
        match change {
            HealthChange::Succeeded => {
                next.last_success_at = Some(at);
                next.consecutive_failures = 0;
                next.failing_since = None;
            }
            HealthChange::Failed { delivery_failed } => {
                next.last_failure_at = Some(at);
                next.failing_since = Some(self.failing_since.unwrap_or(at));
                next.consecutive_failures += u32::from(delivery_failed);
            }
            HealthChange::Restarted => next.failing_since = None,
        }
        next
    }

    /// Whether a success at `now` is worth a write: it ends a failing spell, or the last one
    /// recorded is older than `SUCCESS_RECORD_INTERVAL`.
    pub fn success_worth_recording(&self, now: DateTime<Utc>) -> bool {
        self.failing_since.is_some()
            || self.consecutive_failures > 0
            || self
                .last_success_at
                .is_none_or(|at| now - at >= SUCCESS_RECORD_INTERVAL)
    }

    /// Whether every attempt has failed for `limit` or longer at `now`.
    pub fn failing_for(&self, limit: Duration, now: DateTime<Utc>) -> bool {
        self.failing_since.is_some_and(|since| now - since >= limit)
    }
}

/// Why the service deactivated a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DisabledReason {
    /// Every attempt failed for `WEBHOOK_DISABLE_AFTER_SECONDS`.
    EndpointFailing,
    /// The endpoint answered `410 Gone`.
    EndpointGone,
}

impl DisabledReason {
    pub const ALL: [DisabledReason; 2] = [
        DisabledReason::EndpointFailing,
        DisabledReason::EndpointGone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DisabledReason::EndpointFailing => "ENDPOINT_FAILING",
            DisabledReason::EndpointGone => "ENDPOINT_GONE",
        }
    }

    pub fn parse(text: &str) -> Option<DisabledReason> {
        DisabledReason::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_start_a_spell_that_a_success_ends() {
        let t0 = Utc::now();
        let healthy = WebhookHealth::default();
        let once = healthy.after(
            HealthChange::Failed {
                delivery_failed: false,
            },
            t0,
        );
        assert_eq!(once.failing_since, Some(t0));
        assert_eq!(once.consecutive_failures, 0);
        let later = t0 + Duration::hours(1);
        let twice = once.after(
            HealthChange::Failed {
                delivery_failed: true,
            },
            later,
        );
        assert_eq!(twice.failing_since, Some(t0), "the spell's start stays");
        assert_eq!(
            (twice.last_failure_at, twice.consecutive_failures),
            (Some(later), 1)
        );
        assert!(twice.failing_for(Duration::hours(1), later));
        assert!(!twice.failing_for(Duration::hours(2), later));
        let back = twice.after(HealthChange::Succeeded, later);
        assert_eq!((back.failing_since, back.consecutive_failures), (None, 0));
        assert_eq!(back.last_failure_at, Some(later), "kept as history");
        let restarted = twice.after(HealthChange::Restarted, later);
        assert_eq!(restarted.failing_since, None);
    }

    #[test]
    fn a_healthy_endpoints_successes_are_recorded_once_a_minute() {
        let now = Utc::now();
        let recent = WebhookHealth {
            last_success_at: Some(now - Duration::seconds(10)),
            ..WebhookHealth::default()
        };
        assert!(!recent.success_worth_recording(now));
        assert!(recent.success_worth_recording(now + SUCCESS_RECORD_INTERVAL));
        assert!(WebhookHealth::default().success_worth_recording(now));
        let failing = recent.after(
            HealthChange::Failed {
                delivery_failed: false,
            },
            now,
        );
        assert!(failing.success_worth_recording(now));
    }

    #[test]
    fn reasons_read_back_as_written() {
        for reason in DisabledReason::ALL {
            assert_eq!(DisabledReason::parse(reason.as_str()), Some(reason));
        }
    }
}
