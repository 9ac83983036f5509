//! A search of the tenant's deliveries (`GET /api/webhooks/deliveries`, GraphQL `deliveries`):
//! its filters as typed values, their rules, and the time range as a range of delivery ids.
//!
//! A delivery id keeps its event id's first 64 bits (`delivery::delivery_id`), a UUIDv7 whose
//! first 48 bits are the millisecond its event was accepted: ids sort by creation, so a time
//! range is an id range and every index sorted by id serves it as a key range.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::catalogue::is_known_event;
use super::delivery::DeliveryStatus;
use super::page::PageRequest;
use super::validation::FieldErrors;
use crate::error::{Error, Result};

/// Which of the tenant's deliveries a search finds; every filter given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    pub status: Option<DeliveryStatus>,
    /// An event name of the catalogue, matched exactly.
    pub event: Option<String>,
    /// Another tenant's webhook finds nothing: every key the stores read is the tenant's.
    pub webhook_id: Option<Uuid>,
    /// Created at or after.
    pub since: Option<DateTime<Utc>>,
    /// Created before.
    pub until: Option<DateTime<Utc>>,
}

/// A search and its page: the command of `service::deliveries::search_deliveries`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverySearch {
    pub filter: DeliveryFilter,
    pub page: PageRequest,
}

pub const UNKNOWN_EVENT: &str = "must be an event of the catalogue (GET /api/webhooks/events)";
pub const SINCE_AFTER_UNTIL: &str = "must not be after until";

impl DeliveryFilter {
    /// The values' rules, each failure recorded under its field's name (`event`, `since`).
    pub fn check(&self, errors: &mut FieldErrors) {
        if let Some(event) = &self.event {
            if !is_known_event(event) {
                errors.fail("event", UNKNOWN_EVENT);
            }
        }
        if let (Some(since), Some(until)) = (self.since, self.until) {
            if since > until {
                errors.fail("since", SINCE_AFTER_UNTIL);
            }
        }
    }

    /// The ids the time range covers, `lower <= id < upper` (`None`: unbounded).
    pub fn id_range(&self) -> IdRange {
        IdRange {
            lower: self.since.map(id_bound),
            upper: self.until.map(id_bound),
        }
    }
}

impl DeliverySearch {
    /// A filter from a face, checked: `errors` holds what the face could not read (a status
    /// that is none, a webhook id that is no UUID), `page` is read by the face (with its own
    /// names for the limit and the cursor). One 400 names every bad field.
    pub fn new(
        filter: DeliveryFilter,
        page: Result<PageRequest>,
        mut errors: FieldErrors,
    ) -> Result<DeliverySearch> {
        let page = match page {
            Ok(page) => Some(page),
            Err(error) => {
                errors.absorb(error)?;
                None
            }
        };
        filter.check(&mut errors);
        errors.finish()?;
        let page = page.ok_or_else(|| Error::internal("a page refused without details"))?;
        Ok(DeliverySearch { filter, page })
    }
}

/// Delivery ids from `lower` (inclusive) to `upper` (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IdRange {
    pub lower: Option<Uuid>,
    pub upper: Option<Uuid>,
}

impl IdRange {
    /// The range a page reads: below the cursor too, when there is one.
    pub fn before(self, cursor: Option<Uuid>) -> IdRange {
        let upper = match (self.upper, cursor) {
            (Some(upper), Some(cursor)) => Some(upper.min(cursor)),
            (upper, cursor) => upper.or(cursor),
        };
        IdRange { upper, ..self }
    }

    /// No id lies in it (a cursor below `since`, or `since` and `until` in one millisecond).
    pub fn is_empty(&self) -> bool {
        matches!((self.lower, self.upper), (Some(lower), Some(upper)) if lower >= upper)
    }

    pub fn contains(&self, id: Uuid) -> bool {
        self.lower.is_none_or(|lower| id >= lower) && self.upper.is_none_or(|upper| id < upper)
    }
}

/// The smallest id of a delivery created at `time` or later: its millisecond (rounded up, since
/// ids keep no finer time), then zeros. Times before 1970 or past UUIDv7's 48 bits are clamped.
pub(crate) fn id_bound(time: DateTime<Utc>) -> Uuid {
    let nanos_past_ms = time.timestamp_subsec_nanos() % 1_000_000;
    let millis = time.timestamp_millis() + i64::from(nanos_past_ms > 0);
    let millis = millis.clamp(0, (1 << 48) - 1) as u64;
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    Uuid::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::delivery::delivery_id;

    fn at(text: &str) -> DateTime<Utc> {
        crate::time::parse_rfc3339(text).unwrap()
    }

    fn id_at(text: &str) -> Uuid {
        let time = at(text);
        let event = Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            time.timestamp() as u64,
            time.timestamp_subsec_nanos(),
        ));
        delivery_id(event, Uuid::now_v7())
    }

    #[test]
    fn a_time_range_is_an_id_range_since_inclusive_until_exclusive() {
        let filter = DeliveryFilter {
            since: Some(at("2026-12-01T10:00:00.000Z")),
            until: Some(at("2026-12-01T11:00:00.000Z")),
            ..DeliveryFilter::default()
        };
        let range = filter.id_range();
        assert!(range.contains(id_at("2026-12-01T10:00:00.000Z")));
        assert!(range.contains(id_at("2026-12-01T10:59:59.999Z")));
        assert!(!range.contains(id_at("2026-12-01T11:00:00.000Z")));
        assert!(!range.contains(id_at("2026-12-01T09:59:59.999Z")));
    }

    #[test]
    fn a_bound_within_a_millisecond_rounds_up() {
        let filter = DeliveryFilter {
            since: Some(at("2026-12-01T10:00:00.0005Z")),
            until: Some(at("2026-12-01T10:00:00.0015Z")),
            ..DeliveryFilter::default()
        };
        let range = filter.id_range();
        assert!(!range.contains(id_at("2026-12-01T10:00:00.000Z")));
        assert!(range.contains(id_at("2026-12-01T10:00:00.001Z")));
        assert!(!range.contains(id_at("2026-12-01T10:00:00.002Z")));
    }

    #[test]
    fn far_times_are_clamped() {
        let filter = DeliveryFilter {
            since: Some(at("0001-01-01T00:00:00Z")),
            until: Some(at("9999-12-31T23:59:59.999Z")),
            ..DeliveryFilter::default()
        };
        assert!(filter.id_range().contains(Uuid::now_v7()));
    }

    #[test]
    fn a_cursor_narrows_the_upper_bound() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let range = IdRange {
            lower: None,
            upper: Some(b),
        };
        assert_eq!(range.before(Some(a)).upper, Some(a));
        assert_eq!(range.before(None).upper, Some(b));
        assert_eq!(IdRange::default().before(Some(a)).upper, Some(a));
    }

    #[test]
    fn every_bad_value_is_named_at_once() {
        let filter = DeliveryFilter {
            event: Some("lead.exploded".into()),
            since: Some(at("2026-12-02T00:00:00Z")),
            until: Some(at("2026-12-01T00:00:00Z")),
            ..DeliveryFilter::default()
        };
        let page = PageRequest::new(Some(0), None, ("limit", "cursor"));
        let Err(Error::Invalid { details, .. }) =
            DeliverySearch::new(filter, page, FieldErrors::default())
        else {
            panic!("refused");
        };
        assert_eq!(details["event"], UNKNOWN_EVENT);
        assert_eq!(details["since"], SINCE_AFTER_UNTIL);
        assert_eq!(details["limit"], "must be an integer from 1 to 100");
    }

    #[test]
    fn equal_bounds_are_an_empty_range_not_an_error() {
        let time = at("2026-12-01T10:00:00Z");
        let filter = DeliveryFilter {
            since: Some(time),
            until: Some(time),
            ..DeliveryFilter::default()
        };
        let page = PageRequest::new(None, None, ("limit", "cursor"));
        assert!(DeliverySearch::new(filter.clone(), page, FieldErrors::default()).is_ok());
        assert!(!filter.id_range().contains(id_at("2026-12-01T10:00:00Z")));
    }
}
