//! Stale clients (`GET /api/clients?syncedBefore=`): the clients whose last successful sync
//! (`lastSyncedAt`) is before a time, or that never synced. Never-synced clients come first,
//! then the oldest sync first, by id within one millisecond: the order of both stores' index,
//! and what a cursor resumes after.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Datelike as _, TimeZone as _, Utc};
use uuid::Uuid;

use super::client::Client;
use super::page::NOT_A_CURSOR;
use super::validation::FieldErrors;

/// Where a client stands in the list: never synced (`None`) before any time, then by time, then
/// by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct StaleKey {
    pub last_synced_at: Option<DateTime<Utc>>,
    pub id: Uuid,
}

/// The cursor's time for a client that never synced: no real time is this far back.
const NEVER: i64 = i64::MIN;

impl StaleKey {
    pub fn of(client: &Client) -> StaleKey {
        StaleKey {
            last_synced_at: client.last_synced_at,
            id: client.id,
        }
    }

    /// 24 bytes (the time in milliseconds, then the id) in unpadded base64url: 32 characters.
    pub fn encode(&self) -> String {
        let millis = self.last_synced_at.map_or(NEVER, |t| t.timestamp_millis());
        let mut bytes = [0u8; 24];
        bytes[..8].copy_from_slice(&millis.to_be_bytes());
        bytes[8..].copy_from_slice(self.id.as_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub fn decode(cursor: &str) -> Option<StaleKey> {
        let bytes: [u8; 24] = URL_SAFE_NO_PAD.decode(cursor).ok()?.try_into().ok()?;
        let millis = i64::from_be_bytes(bytes[..8].try_into().ok()?);
        let last_synced_at = match millis {
            NEVER => None,
            millis => Some(
                Utc.timestamp_millis_opt(millis)
                    .single()
                    .filter(|t| in_stored_range(*t))?,
            ),
        };
        Some(StaleKey {
            last_synced_at,
            id: Uuid::from_slice(&bytes[8..]).ok()?,
        })
    }
}

/// Whether a time is one the stores write and compare as text in order: RFC 3339 with a
/// four-digit year (`rfc3339` writes a sign and more digits beyond).
fn in_stored_range(time: DateTime<Utc>) -> bool {
    (0..=9999).contains(&time.year())
}

/// What a bound outside the years 0000 to 9999 (in UTC) is told.
pub const BOUND_RANGE: &str = "must be a time from year 0000 to 9999 (in UTC)";

/// The list's filter and where its page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaleQuery {
    /// Synced strictly before this time, to the millisecond (the stores keep milliseconds).
    pub before: DateTime<Utc>,
    /// The key of the previous page's last client.
    pub after: Option<StaleKey>,
}

impl StaleQuery {
    /// `before` is cut to its millisecond: a client synced within it, at or after the time
    /// given, is not stale. A bound outside the stored years is named `before_name` in
    /// `errors`, a bad cursor `cursor_name`.
    pub fn new(
        before: DateTime<Utc>,
        cursor: Option<&str>,
        (before_name, cursor_name): (&str, &str),
        errors: &mut FieldErrors,
    ) -> StaleQuery {
        if !in_stored_range(before) {
            errors.fail(before_name, BOUND_RANGE);
        }
        let after = cursor.and_then(|cursor| {
            let key = StaleKey::decode(cursor);
            if key.is_none() {
                errors.fail(cursor_name, NOT_A_CURSOR);
            }
            key
        });
        StaleQuery {
            before: DateTime::from_timestamp_millis(before.timestamp_millis()).unwrap_or(before),
            after,
        }
    }

    /// Whether nothing can follow the cursor: it stands at or past the bound (a cursor of a
    /// list with a later bound). The page is then empty and the last, on both stores.
    pub fn is_past_end(&self) -> bool {
        self.after
            .and_then(|after| after.last_synced_at)
            .is_some_and(|at| at >= self.before)
    }

    /// Whether the client is in the list now (a store whose index lags re-checks the client).
    pub fn includes(&self, client: &Client) -> bool {
        client.last_synced_at.is_none_or(|t| t < self.before)
    }

    /// Whether the client is in the list and after the cursor.
    pub fn admits(&self, client: &Client) -> bool {
        self.includes(client) && self.after.is_none_or(|after| StaleKey::of(client) > after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn cursors_round_trip_with_and_without_a_time() {
        for last_synced_at in [None, Some(at("2026-12-01T10:00:00.123Z"))] {
            let key = StaleKey {
                last_synced_at,
                id: Uuid::now_v7(),
            };
            let cursor = key.encode();
            assert_eq!(cursor.len(), 32);
            assert_eq!(StaleKey::decode(&cursor), Some(key));
        }
        let id_cursor = URL_SAFE_NO_PAD.encode(Uuid::now_v7().as_bytes());
        for bad in [
            "",
            "!!",
            id_cursor.as_str(),
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(StaleKey::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn never_synced_comes_first_then_the_oldest() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let never = StaleKey {
            last_synced_at: None,
            id: b,
        };
        let old = StaleKey {
            last_synced_at: Some(at("2020-01-01T00:00:00Z")),
            id: a,
        };
        let older_id_same_time = StaleKey { id: b, ..old };
        assert!(never < old);
        assert!(old < older_id_same_time);
    }

    #[test]
    fn the_bound_is_cut_to_its_millisecond_and_strict() {
        let mut errors = FieldErrors::default();
        let names = ("syncedBefore", "cursor");
        let query = StaleQuery::new(at("2026-12-01T10:00:00.1239Z"), None, names, &mut errors);
        assert!(errors.finish().is_ok());
        assert_eq!(query.before, at("2026-12-01T10:00:00.123Z"));
        let mut errors = FieldErrors::default();
        StaleQuery::new(query.before, Some("nope"), names, &mut errors);
        assert!(errors.has_failed("cursor"));
    }

    #[test]
    fn times_past_four_digit_years_are_refused_as_bounds_and_cursors() {
        let far = at("9999-12-31T23:00:00-05:00");
        let mut errors = FieldErrors::default();
        StaleQuery::new(far, None, ("syncedBefore", "cursor"), &mut errors);
        assert!(errors.has_failed("syncedBefore"));
        let key = StaleKey {
            last_synced_at: Some(far),
            id: Uuid::now_v7(),
        };
        assert_eq!(StaleKey::decode(&key.encode()), None);
    }

    #[test]
    fn a_cursor_at_or_past_the_bound_ends_the_list() {
        let before = at("2026-12-01T10:00:00Z");
        let cursor = |at| StaleQuery {
            before,
            after: Some(StaleKey {
                last_synced_at: at,
                id: Uuid::now_v7(),
            }),
        };
        assert!(cursor(Some(before)).is_past_end());
        assert!(!cursor(Some(before - chrono::TimeDelta::milliseconds(1))).is_past_end());
        assert!(!cursor(None).is_past_end());
    }
}
