//! Seed 000's sync endpoints: the O(1) summary and the status update.

use super::clients::{load, write};
use super::input::Input;
use super::retry_on_conflict;
use crate::domain::auth::{Caller, Permission};
use crate::domain::event::OutboxEvent;
use crate::domain::sync_status::{SyncCounts, SyncStatusUpdate};
use crate::error::Result;
use crate::service::deps::Deps;

pub async fn sync_status(deps: &Deps, caller: &Caller) -> Result<SyncCounts> {
    caller.require(Permission::SyncRead)?;
    deps.store.sync_counts(caller.tenant_id).await
}

/// Moves a client to a status; emits `sync.status.changed` only when the status really changes.
pub async fn update_sync_status(
    deps: &Deps,
    caller: &Caller,
    update: impl Input<SyncStatusUpdate>,
) -> Result<()> {
    caller.require(Permission::SyncUpdate)?;
    let update = update.read()?;
    retry_on_conflict(|| async {
        let before = load(deps, caller, update.client_id).await?;
        let now = deps.clock.now();
        let Some(after) = before.with_status(update.status, now) else {
            return Ok(());
        };
        let event =
            OutboxEvent::sync_status_changed(&after, before.sync_status, after.sync_status, now);
        write(deps, caller, Some(before), Some(after), vec![event], now).await
    })
    .await
}
