//! Client CRUD. Every write carries its counter change and its events in one transaction.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::input::Input;
use super::retry_on_conflict;
use crate::domain::auth::{Caller, Permission};
use crate::domain::client::{Client, ClientFields, ClientPatch};
use crate::domain::event::{self, OutboxEvent};
use crate::domain::page::Page;
use crate::error::{Error, Result};
use crate::ports::{ClientChange, ClientQuery};
use crate::service::deps::Deps;

pub async fn create_client(
    deps: &Deps,
    caller: &Caller,
    fields: impl Input<ClientFields>,
) -> Result<Client> {
    caller.require(Permission::ClientCreate)?;
    let fields = fields.read()?.validated()?;
    let now = deps.clock.now();
    let client = Client::new(caller.tenant_id, fields, now);
    let change = ClientChange {
        tenant_id: caller.tenant_id,
        before: None,
        after: Some(client.clone()),
        events: vec![OutboxEvent::client(event::CLIENT_CREATED, &client, now)],
        now,
    };
    deps.store.write_client(&change).await?;
    super::deliveries::dispatch_events(deps, &change.events).await;
    Ok(client)
}

pub async fn get_client(deps: &Deps, caller: &Caller, client_id: Uuid) -> Result<Client> {
    caller.require(Permission::ClientRead)?;
    load(deps, caller, client_id).await
}

pub async fn list_clients(
    deps: &Deps,
    caller: &Caller,
    query: impl Input<ClientQuery>,
) -> Result<Page<Client>> {
    caller.require(Permission::ClientRead)?;
    let query = query.read()?;
    if query.synced_before.is_some_and(|stale| stale.is_past_end()) {
        return Ok(Page {
            items: Vec::new(),
            next_cursor: None,
        });
    }
    deps.store.list_clients(caller.tenant_id, &query).await
}

pub async fn update_client(
    deps: &Deps,
    caller: &Caller,
    client_id: Uuid,
    patch: impl Input<ClientPatch>,
) -> Result<Client> {
    caller.require(Permission::ClientUpdate)?;
    let patch = patch.read()?.validated()?;
    retry_on_conflict(|| async {
        let before = load(deps, caller, client_id).await?;
        let now = deps.clock.now();
        let Some(after) = before.patched(&patch, now) else {
            return Ok(before);
        };
        let mut events = vec![OutboxEvent::client(event::CLIENT_UPDATED, &after, now)];
        if after.sync_status != before.sync_status {
            events.push(OutboxEvent::sync_status_changed(
                &after,
                before.sync_status,
                after.sync_status,
                now,
            ));
        }
        write(deps, caller, Some(before), Some(after.clone()), events, now).await?;
        Ok(after)
    })
    .await
}

pub async fn delete_client(deps: &Deps, caller: &Caller, client_id: Uuid) -> Result<()> {
    caller.require(Permission::ClientDelete)?;
    retry_on_conflict(|| async {
        let before = load(deps, caller, client_id).await?;
        let now = deps.clock.now();
        let events = vec![OutboxEvent::client(event::CLIENT_DELETED, &before, now)];
        write(deps, caller, Some(before), None, events, now).await
    })
    .await
}

pub(crate) async fn load(deps: &Deps, caller: &Caller, client_id: Uuid) -> Result<Client> {
    deps.store
        .get_client(caller.tenant_id, client_id)
        .await?
        .ok_or(Error::NotFound("Client"))
}

/// Writes a client change. `now` is the instant the change itself was made at, so that the
/// counters' `lastSyncTime` equals the client's `lastSyncedAt` to the millisecond.
pub(crate) async fn write(
    deps: &Deps,
    caller: &Caller,
    before: Option<Client>,
    after: Option<Client>,
    events: Vec<OutboxEvent>,
    now: DateTime<Utc>,
) -> Result<()> {
    let change = ClientChange {
        tenant_id: caller.tenant_id,
        before,
        after,
        events,
        now,
    };
    deps.store.write_client(&change).await?;
    super::deliveries::dispatch_events(deps, &change.events).await;
    Ok(())
}
