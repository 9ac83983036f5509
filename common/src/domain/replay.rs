//! Replay: the tenant's past events sent to one webhook as the deliveries it is missing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::catalogue::pattern_matches;
use super::event::EventRange;
use super::validation::FieldErrors;
use super::webhook::check_events;
use crate::error::Result;

/// A replay to one webhook: the tenant's events accepted from `since` until `until` (default
/// now), only those matching `events` when given (names or patterns, as a subscription).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaySelection {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub events: Option<Vec<String>>,
}

/// A replay, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Replay {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
}

impl ReplaySelection {
    /// `since` given; `until` at most `now`; each entry of `events` a subscription pattern
    /// (`webhook::check_events`' rule), at most `MAX_EVENTS` of them.
    pub fn validated(self, now: DateTime<Utc>) -> Result<Replay> {
        let mut errors = FieldErrors::default();
        let (since, until) = checked_range(&mut errors, self.since, self.until, now);
        let events = self.events.map(|events| check_events(&mut errors, &events));
        errors.finish()?;
        Ok(Replay {
            since,
            until,
            events,
        })
    }
}

/// The rule of a range of a replay or a recovery: `since` given (a failure recorded under its
/// name), `until` at most `now` (absent: now). A range that ends before it starts, or in the
/// future, holds nothing: it is answered with nothing queued, not refused.
pub(crate) fn checked_range(
    errors: &mut FieldErrors,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    if since.is_none() {
        errors.fail("since", "is required");
    }
    (since.unwrap_or(now), until.unwrap_or(now).min(now))
}

impl Replay {
    pub fn range(&self) -> EventRange {
        EventRange {
            since: self.since,
            until: self.until,
        }
    }

    /// Whether `event` is among those asked for.
    pub fn wants(&self, event: &str) -> bool {
        self.events.as_ref().is_none_or(|patterns| {
            patterns
                .iter()
                .any(|pattern| pattern_matches(pattern, event))
        })
    }
}
