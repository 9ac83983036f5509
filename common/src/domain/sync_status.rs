//! Sync statuses and the per-tenant counters that make `GET /api/crm/sync-status` one read.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::validation::FieldErrors;
use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SyncStatus {
    Synced,
    Pending,
    Failed,
    NeedsUpdate,
}

impl SyncStatus {
    pub const ALL: [SyncStatus; 4] = [
        SyncStatus::Synced,
        SyncStatus::Pending,
        SyncStatus::Failed,
        SyncStatus::NeedsUpdate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Synced => "SYNCED",
            SyncStatus::Pending => "PENDING",
            SyncStatus::Failed => "FAILED",
            SyncStatus::NeedsUpdate => "NEEDS_UPDATE",
        }
    }

    pub fn parse(s: &str) -> Option<SyncStatus> {
        SyncStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
    }
}

/// The tenant's counters, as stored and as returned (seed 000's `SyncStatusResponse`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncCounts {
    pub total_clients: i64,
    pub synced_clients: i64,
    pub pending_clients: i64,
    pub failed_clients: i64,
    pub needs_update_clients: i64,
    #[serde(serialize_with = "crate::time::serde_millis::option::serialize")]
    pub last_sync_time: Option<DateTime<Utc>>,
}

impl SyncCounts {
    /// A full recount from a list of statuses: the invariant the counters must always match.
    pub fn recount(statuses: impl IntoIterator<Item = SyncStatus>) -> SyncCounts {
        let mut counts = SyncCounts::default();
        for status in statuses {
            counts.apply(&CounterDelta::between(None, Some(status)));
        }
        counts
    }

    /// The counts of `self` and `other` together: the tenant's, from the counters it is kept in.
    pub fn plus(self, other: &SyncCounts) -> SyncCounts {
        SyncCounts {
            total_clients: self.total_clients + other.total_clients,
            synced_clients: self.synced_clients + other.synced_clients,
            pending_clients: self.pending_clients + other.pending_clients,
            failed_clients: self.failed_clients + other.failed_clients,
            needs_update_clients: self.needs_update_clients + other.needs_update_clients,
            last_sync_time: self.last_sync_time.max(other.last_sync_time),
        }
    }

    pub fn apply(&mut self, delta: &CounterDelta) {
        self.total_clients += delta.total;
        for (status, change) in delta.per_status() {
            *self.count_mut(status) += change;
        }
    }

    fn count_mut(&mut self, status: SyncStatus) -> &mut i64 {
        match status {
            SyncStatus::Synced => &mut self.synced_clients,
            SyncStatus::Pending => &mut self.pending_clients,
            SyncStatus::Failed => &mut self.failed_clients,
            SyncStatus::NeedsUpdate => &mut self.needs_update_clients,
        }
    }

    /// The counters without the timestamp, for comparing with a recount.
    pub fn counts_only(&self) -> SyncCounts {
        SyncCounts {
            last_sync_time: None,
            ..self.clone()
        }
    }
}

/// How one client write moves the counters; stores apply it in the same transaction as the write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CounterDelta {
    pub total: i64,
    pub synced: i64,
    pub pending: i64,
    pub failed: i64,
    pub needs_update: i64,
    /// Set when a client became SYNCED: the new `lastSyncTime`.
    pub became_synced: bool,
}

impl CounterDelta {
    /// `None` before means a creation, `None` after a deletion.
    pub fn between(before: Option<SyncStatus>, after: Option<SyncStatus>) -> CounterDelta {
        let mut delta = CounterDelta {
            total: i64::from(after.is_some()) - i64::from(before.is_some()),
            became_synced: after == Some(SyncStatus::Synced) && before != Some(SyncStatus::Synced),
            ..CounterDelta::default()
        };
        if let Some(status) = before {
            *delta.count_mut(status) -= 1;
        }
        if let Some(status) = after {
            *delta.count_mut(status) += 1;
        }
        delta
    }

    fn count_mut(&mut self, status: SyncStatus) -> &mut i64 {
        match status {
            SyncStatus::Synced => &mut self.synced,
            SyncStatus::Pending => &mut self.pending,
            SyncStatus::Failed => &mut self.failed,
            SyncStatus::NeedsUpdate => &mut self.needs_update,
        }
    }

    /// The non-zero per-status changes, for stores that write only what moves.
    pub fn per_status(&self) -> impl Iterator<Item = (SyncStatus, i64)> + '_ {
        SyncStatus::ALL
            .into_iter()
            .map(|status| {
                let change = match status {
                    SyncStatus::Synced => self.synced,
                    SyncStatus::Pending => self.pending,
                    SyncStatus::Failed => self.failed,
                    SyncStatus::NeedsUpdate => self.needs_update,
                };
                (status, change)
            })
            .filter(|(_, change)| *change != 0)
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0 && self.per_status().next().is_none() && !self.became_synced
    }
}

/// The longest failure message (`error`) a sync job may report.
pub const SYNC_ERROR_MAX: usize = 1_000;
/// The longest failure code (`errorCode`); a code holds `SYNC_ERROR_CODE_MARKS` besides ASCII
/// letters and digits, so that it can be matched and grouped on as it is.
pub const SYNC_ERROR_CODE_MAX: usize = 100;
pub const SYNC_ERROR_CODE_MARKS: &str = "_.-";
/// The most updates one batch carries: 500 sync results fit well within the body limit and
/// the update function's 10 s.
pub const BATCH_MAX: usize = 500;

/// Seed 000's `UpdateSyncStatusRequest`: a client moves to a status; a `FAILED` one may say
/// why (`error`, `errorCode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncStatusUpdate {
    pub client_id: Uuid,
    pub status: SyncStatus,
    pub error: Option<String>,
    pub error_code: Option<String>,
}

impl SyncStatusUpdate {
    /// The update once its failure reason follows its rules: given on `FAILED` only, the
    /// message a text of at most `SYNC_ERROR_MAX` characters (trimmed), the code a word of
    /// `[A-Za-z0-9_.-]`.
    pub fn validated(self) -> Result<SyncStatusUpdate> {
        let mut errors = FieldErrors::default();
        if self.status != SyncStatus::Failed {
            for (name, given) in [("error", &self.error), ("errorCode", &self.error_code)] {
                if given.is_some() {
                    errors.fail(name, "may only be given when status is FAILED");
                }
            }
        }
        let error = self
            .error
            .as_deref()
            .and_then(|text| errors.text("error", text, SYNC_ERROR_MAX));
        let error_code = self.error_code.filter(|code| {
            let valid = is_error_code(code);
            if !valid {
                errors.fail("errorCode", ERROR_CODE_MESSAGE);
            }
            valid
        });
        errors.finish()?;
        Ok(SyncStatusUpdate {
            error,
            error_code,
            ..self
        })
    }
}

pub const ERROR_CODE_MESSAGE: &str =
    "must be 1 to 100 characters of A-Z, a-z, 0-9, underscore, dot and hyphen";

pub fn is_error_code(code: &str) -> bool {
    (1..=SYNC_ERROR_CODE_MAX).contains(&code.len())
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || SYNC_ERROR_CODE_MARKS.contains(c))
}

/// One entry of a batch as the face read it: the client id as it was sent (for the answer),
/// and the update, or why this entry alone is refused.
#[derive(Debug)]
pub struct BatchEntry {
    pub client_id: Option<String>,
    pub update: Result<SyncStatusUpdate>,
}

/// Many updates in one request, each applied (or refused) on its own, answered in order.
#[derive(Debug, Default)]
pub struct SyncStatusBatch {
    pub entries: Vec<BatchEntry>,
}

impl SyncStatusBatch {
    /// The batch with every entry's rules checked; too many entries refuse the whole batch.
    pub fn validated(self) -> Result<SyncStatusBatch> {
        let mut errors = FieldErrors::default();
        errors.count("updates", self.entries.len(), BATCH_MAX);
        errors.finish()?;
        let entries = self
            .entries
            .into_iter()
            .map(|entry| BatchEntry {
                update: entry.update.and_then(SyncStatusUpdate::validated),
                ..entry
            })
            .collect();
        Ok(SyncStatusBatch { entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_wire_names() {
        for status in SyncStatus::ALL {
            assert_eq!(SyncStatus::parse(status.as_str()), Some(status));
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
        assert_eq!(SyncStatus::parse("synced"), None);
        assert_eq!(SyncStatus::parse("DONE"), None);
    }

    #[test]
    fn creation_counts_one_client_in_its_status() {
        let delta = CounterDelta::between(None, Some(SyncStatus::NeedsUpdate));
        assert_eq!(delta.total, 1);
        assert_eq!(delta.needs_update, 1);
        assert_eq!(delta.per_status().count(), 1);
        assert!(!delta.became_synced);
    }

    #[test]
    fn transition_moves_one_client_between_statuses() {
        let delta = CounterDelta::between(Some(SyncStatus::Pending), Some(SyncStatus::Synced));
        assert_eq!(delta.total, 0);
        assert_eq!(delta.pending, -1);
        assert_eq!(delta.synced, 1);
        assert!(delta.became_synced);
    }

    #[test]
    fn staying_synced_is_no_new_sync() {
        let delta = CounterDelta::between(Some(SyncStatus::Synced), Some(SyncStatus::Synced));
        assert!(delta.is_empty());
    }

    #[test]
    fn deletion_removes_the_client_from_its_status() {
        let delta = CounterDelta::between(Some(SyncStatus::Failed), None);
        assert_eq!(delta.total, -1);
        assert_eq!(delta.failed, -1);
    }

    #[test]
    fn applied_deltas_equal_a_recount() {
        use SyncStatus::*;
        let mut counts = SyncCounts::default();
        counts.apply(&CounterDelta::between(None, Some(NeedsUpdate)));
        counts.apply(&CounterDelta::between(None, Some(NeedsUpdate)));
        counts.apply(&CounterDelta::between(Some(NeedsUpdate), Some(Synced)));
        counts.apply(&CounterDelta::between(None, Some(Failed)));
        counts.apply(&CounterDelta::between(Some(Failed), None));
        assert_eq!(counts, SyncCounts::recount([NeedsUpdate, Synced]));
        assert_eq!(counts.total_clients, 2);
    }

    fn update(status: SyncStatus, error: Option<&str>, code: Option<&str>) -> SyncStatusUpdate {
        SyncStatusUpdate {
            client_id: Uuid::now_v7(),
            status,
            error: error.map(str::to_owned),
            error_code: code.map(str::to_owned),
        }
    }

    fn details(result: Result<SyncStatusUpdate>) -> std::collections::BTreeMap<String, String> {
        match result {
            Err(crate::error::Error::Invalid { details, .. }) => details,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_failure_keeps_its_trimmed_reason() {
        let failed = update(
            SyncStatus::Failed,
            Some(" timeout "),
            Some("CRM_TIMEOUT.v2-a"),
        )
        .validated()
        .unwrap();
        assert_eq!(failed.error.as_deref(), Some("timeout"));
        assert_eq!(failed.error_code.as_deref(), Some("CRM_TIMEOUT.v2-a"));
    }

    #[test]
    fn a_reason_is_refused_on_other_statuses() {
        let found = details(update(SyncStatus::Synced, Some("x"), Some("X")).validated());
        assert_eq!(found["error"], "may only be given when status is FAILED");
        assert_eq!(
            found["errorCode"],
            "may only be given when status is FAILED"
        );
    }

    #[test]
    fn bad_reasons_are_named() {
        let long = "x".repeat(SYNC_ERROR_MAX + 1);
        let found = details(update(SyncStatus::Failed, Some(&long), Some("no spaces")).validated());
        assert_eq!(found["error"], "must be at most 1000 characters");
        assert_eq!(found["errorCode"], ERROR_CODE_MESSAGE);
        assert!(is_error_code(&"a".repeat(SYNC_ERROR_CODE_MAX)));
        assert!(!is_error_code(&"a".repeat(SYNC_ERROR_CODE_MAX + 1)));
        assert!(!is_error_code(""));
        assert!(!is_error_code("é"));
    }
}
