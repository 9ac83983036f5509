//! Seed 000's sync endpoints: the O(1) summary and the status update, one or a batch.

use std::collections::HashMap;

use futures_util::stream::{self, StreamExt};
use uuid::Uuid;

use super::clients::{load, write};
use super::input::Input;
use super::retry_on_conflict;
use crate::domain::auth::{Caller, Permission};
use crate::domain::client::Client;
use crate::domain::event::OutboxEvent;
use crate::domain::page::{Page, PageRequest};
use crate::domain::sync_history::SyncTransition;
use crate::domain::sync_status::{SyncCounts, SyncStatusBatch, SyncStatusUpdate};
use crate::error::{Error, Result};
use crate::service::deps::Deps;

/// How many of a batch's clients are written at once: each is its own transaction (with its
/// counters and its event), so a few in flight cut the batch's time without piling up
/// conflicts on the tenant's counters.
const BATCH_IN_FLIGHT: usize = 8;

pub async fn sync_status(deps: &Deps, caller: &Caller) -> Result<SyncCounts> {
    caller.require(Permission::SyncRead)?;
    deps.store.sync_counts(caller.tenant_id).await
}

/// A client's sync status changes, newest first. `NotFound` for a client the caller's tenant
/// does not have; what is kept of a deleted client is not served. `CLIENT_READ`: the history
/// is part of the client, as its `lastSyncError` is.
pub async fn sync_history(
    deps: &Deps,
    caller: &Caller,
    client_id: Uuid,
    page: PageRequest,
) -> Result<Page<SyncTransition>> {
    caller.require(Permission::ClientRead)?;
    load(deps, caller, client_id).await?;
    deps.store
        .sync_history(caller.tenant_id, client_id, page)
        .await
}

/// What one update did: the client as it is now, and whether its status really changed (and
/// so emitted `sync.status.changed`).
#[derive(Debug, Clone)]
pub struct Applied {
    pub client: Client,
    pub changed: bool,
}

/// One entry of a batch's answer, in the batch's order: the client id as it was sent, and
/// what its update did or why it was refused.
#[derive(Debug)]
pub struct BatchResult {
    pub client_id: Option<String>,
    pub outcome: Result<Applied>,
}

/// Moves a client to a status; emits `sync.status.changed` only when the status really changes.
pub async fn update_sync_status(
    deps: &Deps,
    caller: &Caller,
    update: impl Input<SyncStatusUpdate>,
) -> Result<()> {
    caller.require(Permission::SyncUpdate)?;
    let update = update.read()?.validated()?;
    apply(deps, caller, &update).await.map(|_| ())
}

/// Applies each update of a batch as `update_sync_status` applies one: in its own transaction
/// with its counters and its event. An entry that is refused (a bad field, an unknown client,
/// a conflict that outlasted its retries) is answered in its place and the rest go on. The
/// updates of one client are applied in the batch's order; different clients', a few at once.
pub async fn update_sync_statuses(
    deps: &Deps,
    caller: &Caller,
    batch: impl Input<SyncStatusBatch>,
) -> Result<Vec<BatchResult>> {
    caller.require(Permission::SyncUpdate)?;
    let batch = batch.read()?.validated()?;
    let mut client_ids = Vec::with_capacity(batch.entries.len());
    let mut outcomes: Vec<Option<Result<Applied>>> = Vec::with_capacity(batch.entries.len());
    let mut chains: Vec<Vec<(usize, SyncStatusUpdate)>> = Vec::new();
    let mut chain_of: HashMap<Uuid, usize> = HashMap::new();
    for (index, entry) in batch.entries.into_iter().enumerate() {
        client_ids.push(entry.client_id);
        match entry.update {
            Ok(update) => {
                outcomes.push(None);
                let chain = *chain_of.entry(update.client_id).or_insert_with(|| {
                    chains.push(Vec::new());
                    chains.len() - 1
                });
                chains[chain].push((index, update));
            }
            Err(refusal) => outcomes.push(Some(Err(refusal))),
        }
    }
    let mut applied = stream::iter(chains)
        .map(|chain| async move {
            let mut done = Vec::with_capacity(chain.len());
            for (index, update) in chain {
                done.push((index, apply(deps, caller, &update).await));
            }
            done
        })
        .buffer_unordered(BATCH_IN_FLIGHT);
    while let Some(done) = applied.next().await {
        for (index, outcome) in done {
            outcomes[index] = Some(outcome);
        }
    }
    Ok(client_ids
        .into_iter()
        .zip(outcomes)
        .map(|(client_id, outcome)| BatchResult {
            client_id,
            // Every entry was answered above: refused as read, or applied.
            outcome: outcome
                .unwrap_or_else(|| Err(Error::internal("a batch entry went unanswered"))),
        })
        .collect())
}

async fn apply(deps: &Deps, caller: &Caller, update: &SyncStatusUpdate) -> Result<Applied> {
    retry_on_conflict(|| async {
        let before = load(deps, caller, update.client_id).await?;
        let now = deps.clock.now();
        let Some(after) = before.after_sync_report(update, now) else {
            return Ok(Applied {
                client: before,
                changed: false,
            });
        };
        let changed = after.sync_status != before.sync_status;
        let events = if changed {
            vec![OutboxEvent::sync_status_changed(
                &after,
                before.sync_status,
                after.sync_status,
                now,
            )]
        } else {
            Vec::new()
        };
        write(deps, caller, Some(before), Some(after.clone()), events, now).await?;
        Ok(Applied {
            client: after,
            changed,
        })
    })
    .await
}
