//! Recovery: a webhook's deliveries that failed or were cancelled (while it was inactive) in a
//! time range, sent again, as a team does once an endpoint that was down is back.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::delivery::DeliveryStatus;
use super::delivery_search::DeliveryFilter;
use super::replay::checked_range;
use super::validation::FieldErrors;
use super::webhook::Webhook;
use crate::error::Result;

/// A recovery as asked: the deliveries created from `since` until `until` (default now).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoverySelection {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// A recovery, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recovery {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// The statuses a recovery sends again, in the order it goes through them.
pub const RECOVERED: [DeliveryStatus; 2] = [DeliveryStatus::Failed, DeliveryStatus::Cancelled];

impl RecoverySelection {
    /// `since` given; `until` at most `now` (the rule of a replay's range).
    pub fn validated(self, now: DateTime<Utc>) -> Result<Recovery> {
        let mut errors = FieldErrors::default();
        let (since, until) = checked_range(&mut errors, self.since, self.until, now);
        errors.finish()?;
        Ok(Recovery { since, until })
    }
}

impl Recovery {
    /// What re-enabling `before` (the webhook as it was, inactive or failing) with
    /// `"recover": true` sends again: its deliveries that were pending when it began failing or
    /// was deactivated, whichever came first, and every one made since. A delivery pending then
    /// was created at most `reach` earlier: the longest its retries can take. `None`: it was
    /// neither failing nor inactive, and nothing is pending.
    pub fn on_enabling(
        before: &Webhook,
        reach: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Option<Recovery> {
        let failing = before.health.failing_since;
        let inactive = if before.active {
            None
        } else {
            // Deactivated before `disabledAt` was recorded for every deactivation: since its
            // last change, which was that deactivation or came after it.
            Some(before.disabled_at.unwrap_or(before.updated_at))
        };
        let trouble = match (failing, inactive) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some(Recovery {
            since: trouble
                .checked_sub_signed(reach)
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
            until: now,
        })
    }

    /// One status's part of the recovery of `webhook_id`, as a delivery search.
    pub fn filter(&self, webhook_id: Uuid, status: DeliveryStatus) -> DeliveryFilter {
        DeliveryFilter {
            status: Some(status),
            event: None,
            webhook_id: Some(webhook_id),
            since: Some(self.since),
            until: Some(self.until),
        }
    }

    /// Whether no delivery can fall in it.
    pub fn is_empty(&self) -> bool {
        self.until <= self.since
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::webhook::{NewWebhook, TargetPolicy};

    fn webhook_at(created: DateTime<Utc>) -> Webhook {
        let new = NewWebhook {
            url: "https://example.com/hook".into(),
            events: vec!["*".into()],
            ..NewWebhook::default()
        };
        Webhook::create(Uuid::now_v7(), new, TargetPolicy::default(), created).unwrap()
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn since_is_required_and_until_is_never_past_now() {
        match RecoverySelection::default().validated(at(0)) {
            Err(crate::error::Error::Invalid { details, .. }) => {
                assert!(details.contains_key("since"), "{details:?}")
            }
            other => panic!("since is required: {other:?}"),
        }
        let recovery = RecoverySelection {
            since: Some(at(-60)),
            until: Some(at(60)),
        }
        .validated(at(0))
        .unwrap();
        assert_eq!(recovery.until, at(0));
        assert!(!recovery.is_empty());
        let backwards = RecoverySelection {
            since: Some(at(0)),
            until: Some(at(-60)),
        }
        .validated(at(0))
        .unwrap();
        assert!(backwards.is_empty());
    }

    #[test]
    fn re_enabling_recovers_from_the_earlier_of_failing_and_deactivation_less_the_reach() {
        let reach = chrono::Duration::seconds(30);
        let mut webhook = webhook_at(at(-1000));
        assert_eq!(
            Recovery::on_enabling(&webhook, reach, at(0)),
            None,
            "healthy"
        );
        webhook.health.failing_since = Some(at(-300));
        assert_eq!(
            Recovery::on_enabling(&webhook, reach, at(0)).unwrap().since,
            at(-330),
            "active and failing"
        );
        webhook.active = false;
        webhook.disabled_at = Some(at(-100));
        assert_eq!(
            Recovery::on_enabling(&webhook, reach, at(0)),
            Some(Recovery {
                since: at(-330),
                until: at(0)
            })
        );
        webhook.health.failing_since = None;
        let since = |webhook: &Webhook| Recovery::on_enabling(webhook, reach, at(0)).unwrap().since;
        assert_eq!(since(&webhook), at(-130));
        webhook.disabled_at = None;
        webhook.updated_at = at(-50);
        assert_eq!(since(&webhook), at(-80));
    }

    #[test]
    fn a_filter_is_one_status_of_one_webhook_in_the_range() {
        let recovery = Recovery {
            since: at(-60),
            until: at(0),
        };
        let webhook = Uuid::now_v7();
        let filter = recovery.filter(webhook, DeliveryStatus::Cancelled);
        assert_eq!(filter.status, Some(DeliveryStatus::Cancelled));
        assert_eq!(filter.webhook_id, Some(webhook));
        assert_eq!((filter.since, filter.until), (Some(at(-60)), Some(at(0))));
        assert_eq!(filter.event, None);
    }
}
