//! The webhook reads several use cases share (webhooks, deliveries, the worker): one webhook
//! of a tenant, or the ids of those an event goes to.

use uuid::Uuid;

use crate::domain::page::{PageRequest, MAX_LIMIT};
use crate::domain::webhook::Webhook;
use crate::error::{Error, Result};
use crate::service::deps::Deps;

/// The tenant's webhook, or 404.
pub(crate) async fn load(deps: &Deps, tenant_id: Uuid, id: Uuid) -> Result<Webhook> {
    deps.store
        .get_webhook(tenant_id, id)
        .await?
        .ok_or(Error::NotFound("Webhook"))
}

/// The ids of the tenant's active webhooks subscribed to `event`, read a page at a time: only
/// the ids are kept, however many webhooks (and headers) the tenant has.
pub(crate) async fn subscribers(deps: &Deps, tenant_id: Uuid, event: &str) -> Result<Vec<Uuid>> {
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let page = deps
            .store
            .list_webhooks(
                tenant_id,
                PageRequest {
                    limit: MAX_LIMIT,
                    after,
                },
            )
            .await?;
        after = page.items.last().map(|w| w.id);
        ids.extend(
            page.items
                .iter()
                .filter(|webhook| webhook.subscribes_to(event))
                .map(|webhook| webhook.id),
        );
        if page.next_cursor.is_none() || after.is_none() {
            return Ok(ids);
        }
    }
}
