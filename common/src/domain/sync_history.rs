//! A client's sync history: one entry per real change of its sync status, written with the
//! change itself (the same transaction) and kept as long as the retention says.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::client::Client;
use super::sync_status::SyncStatus;

/// One change of a client's sync status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncTransition {
    /// UUIDv7 of `at`: newest first is highest id first (see `SyncTransition::between`).
    pub id: Uuid,
    #[serde(skip)]
    pub tenant_id: Uuid,
    pub client_id: Uuid,
    #[serde(serialize_with = "crate::time::serde_millis::serialize")]
    pub at: DateTime<Utc>,
    pub from: SyncStatus,
    pub to: SyncStatus,
    /// Why the sync failed, as reported with `FAILED`; absent otherwise.
    pub error: Option<String>,
    pub error_code: Option<String>,
}

impl SyncTransition {
    /// The entry a client write records: `Some` only when an existing client's status really
    /// changes (a creation, a deletion, or a repeated status records none).
    ///
    /// The id is a UUIDv7 of `now` whose next 34 bits are the client's new version, so two
    /// changes of one client in the same millisecond (a batch) still sort in their order.
    pub fn between(
        before: Option<&Client>,
        after: Option<&Client>,
        now: DateTime<Utc>,
    ) -> Option<SyncTransition> {
        let (before, after) = (before?, after?);
        if before.sync_status == after.sync_status {
            return None;
        }
        let failed = after.sync_status == SyncStatus::Failed;
        Some(SyncTransition {
            id: sequenced_id(now, after.version),
            tenant_id: after.tenant_id,
            client_id: after.id,
            at: now,
            from: before.sync_status,
            to: after.sync_status,
            error: after.last_sync_error.clone().filter(|_| failed),
            error_code: after.last_sync_error_code.clone().filter(|_| failed),
        })
    }
}

/// The lowest id of an entry made at `at` or later: entries below it are older.
pub fn first_id_at(at: DateTime<Utc>) -> Uuid {
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &[0; 10]).into_uuid()
}

/// A UUIDv7 of `at` whose next 34 bits are `version` (a client's version, or any count), so
/// that ids made in one millisecond sort in its order.
pub(crate) fn sequenced_id(at: DateTime<Utc>, version: i64) -> Uuid {
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    let v = u64::try_from(version).unwrap_or(0);
    let random: [u8; 5] = rand::random();
    // The builder keeps 4 bits of byte 0 and 6 of byte 2 (the version and variant take the
    // rest): 34 bits of the client's version, most significant first, then random bytes.
    let bytes = [
        ((v >> 30) & 0x0f) as u8,
        ((v >> 22) & 0xff) as u8,
        ((v >> 16) & 0x3f) as u8,
        ((v >> 8) & 0xff) as u8,
        (v & 0xff) as u8,
        random[0],
        random[1],
        random[2],
        random[3],
        random[4],
    ];
    uuid::Builder::from_unix_timestamp_millis(millis, &bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::client::ClientFields;

    fn client() -> Client {
        let fields = ClientFields {
            name: "Ada".to_owned(),
            ..ClientFields::default()
        };
        Client::new(Uuid::now_v7(), fields, Utc::now())
    }

    #[test]
    fn only_a_real_change_is_recorded() {
        let now = Utc::now();
        let before = client();
        let same = before.with_status(SyncStatus::Failed, now).unwrap();
        let failed_again = same.with_status(SyncStatus::Failed, now).unwrap();
        assert!(SyncTransition::between(Some(&same), Some(&failed_again), now).is_none());
        assert!(SyncTransition::between(None, Some(&before), now).is_none());
        assert!(SyncTransition::between(Some(&before), None, now).is_none());
        let entry = SyncTransition::between(Some(&before), Some(&same), now).unwrap();
        assert_eq!(
            (entry.from, entry.to),
            (before.sync_status, SyncStatus::Failed)
        );
        assert_eq!(entry.at, now);
    }

    #[test]
    fn ids_follow_time_then_version() {
        let at = Utc::now();
        let later = at + chrono::Duration::milliseconds(1);
        let ids: Vec<Uuid> = [(at, 2), (at, 3), (at, 300), (at, 1 << 30), (later, 1)]
            .into_iter()
            .map(|(at, version)| sequenced_id(at, version))
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert!(first_id_at(at) <= ids[0] && ids[3] < first_id_at(later));
    }
}
