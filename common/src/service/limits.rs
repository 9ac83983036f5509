//! The per-tenant limits of a deployment that a use case checks itself (`TenantLimits`; the
//! webhook count is checked by the store, with the write). docs/architecture.md §Limits.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{Error, Result, Throttle};
use crate::service::deps::Deps;

/// When a refused event may be sent again: the next second has room.
pub const EVENTS_RETRY_AFTER_SECS: u64 = 1;

/// Counts one event of the tenant against its events of the second `now` falls in; past
/// `CRM_MAX_EVENTS_PER_SECOND` it is refused with 429, before anything is stored.
pub async fn take_event_quota(deps: &Deps, tenant_id: Uuid, now: DateTime<Utc>) -> Result<()> {
    let limit = deps.settings.limits.events_per_second;
    if deps
        .store
        .take_event_quota(tenant_id, now.timestamp(), limit)
        .await?
    {
        Ok(())
    } else {
        Err(Error::TooManyRequests {
            retry_after_secs: EVENTS_RETRY_AFTER_SECS,
            cause: Throttle::EventsPerSecond { limit },
        })
    }
}
