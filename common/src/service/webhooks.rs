//! Webhook registry: CRUD, secret rotation, the event catalogue.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::audit;
use super::deliveries::publish;
use super::input::Input;
use super::lookup::load;
use super::redelivery::recover_on_enabling;
use super::retry_on_conflict;
use crate::domain::audit::AuditAction;
use crate::domain::auth::{Caller, Permission};
use crate::domain::catalogue::{
    is_valid_pattern, pattern_matches, EventType, CATALOGUE, WEBHOOK_ENABLED,
};
use crate::domain::event::OutboxEvent;
use crate::domain::health::HealthChange;
use crate::domain::page::{encode_cursor, Page, PageRequest, MAX_LIMIT};
use crate::domain::webhook::{rotation_overlap, NewWebhook, Webhook, WebhookChanges};
use crate::error::{Error, Result};
use crate::service::deps::Deps;

/// A webhook with its secret: the answer to creation and rotation only.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WithSecret {
    #[serde(flatten)]
    pub webhook: Webhook,
    pub secret: String,
}

pub async fn create_webhook(
    deps: &Deps,
    caller: &Caller,
    new: impl Input<NewWebhook>,
) -> Result<WithSecret> {
    caller.require(Permission::WebhookCreate)?;
    let mut webhook = Webhook::create(
        caller.tenant_id,
        new.read()?,
        deps.settings.targets,
        deps.clock.now(),
    )?;
    let changes = audit::webhook_changes(None, &webhook);
    let entry = audit::entry(
        deps,
        caller,
        AuditAction::WebhookCreate,
        webhook.id,
        changes,
    );
    let secret = webhook.secret.as_stored().to_owned();
    deps.secrets.seal(&mut webhook).await?;
    deps.store
        .create_webhook(&webhook, deps.settings.limits.webhooks, Some(&entry))
        .await?;
    Ok(WithSecret {
        secret,
        webhook: shown_to(caller, webhook),
    })
}

/// Every webhook a use case answers goes through here: header values are write-only for roles
/// that may not change webhooks (`Webhook::as_seen_by`).
fn shown_to(caller: &Caller, webhook: Webhook) -> Webhook {
    webhook.as_seen_by(caller.role)
}

pub async fn get_webhook(deps: &Deps, caller: &Caller, id: Uuid) -> Result<Webhook> {
    caller.require(Permission::WebhookRead)?;
    Ok(shown_to(caller, load(deps, caller.tenant_id, id).await?))
}

pub async fn list_webhooks(
    deps: &Deps,
    caller: &Caller,
    page: PageRequest,
) -> Result<Page<Webhook>> {
    caller.require(Permission::WebhookRead)?;
    let page = deps.store.list_webhooks(caller.tenant_id, page).await?;
    Ok(Page {
        items: page
            .items
            .into_iter()
            .map(|w| shown_to(caller, w))
            .collect(),
        next_cursor: page.next_cursor,
    })
}

/// Narrows a listing: by `active`, and to the webhooks that receive `event`; with `*` or
/// `prefix.*`, to those that receive at least one of its events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookFilter {
    pub active: Option<bool>,
    pub event: Option<String>,
}

/// How many webhooks one filtered page looks at, at most: one store page. A filter that matches
/// few of many webhooks answers a short (even empty) page that says a next one exists, rather
/// than reading on until the page is full: 1,600 filtered lists in one GraphQL document each read
/// every webhook of the tenant. GraphQL prices a filtered list by it (`graphql::webhooks_cost`).
pub const FILTER_SCAN: usize = MAX_LIMIT;

/// `list_webhooks` through a filter, looking at no more than [`FILTER_SCAN`] webhooks. Cursors
/// stay webhook ids: the next page starts after the last webhook returned, or, when none was,
/// after the last one looked at.
pub async fn list_filtered_webhooks(
    deps: &Deps,
    caller: &Caller,
    filter: &WebhookFilter,
    page: PageRequest,
) -> Result<Page<Webhook>> {
    caller.require(Permission::WebhookRead)?;
    if let Some(event) = filter.event.as_deref().filter(|e| !is_valid_pattern(e)) {
        return Err(Error::invalid_field(
            "event",
            format!("`{event}` is not an event of GET /api/webhooks/events, `*` or `prefix.*`"),
        ));
    }
    let wanted = |webhook: &Webhook| {
        filter.active.is_none_or(|active| webhook.active == active)
            && filter.event.as_deref().is_none_or(|wanted| {
                CATALOGUE.iter().any(|event| {
                    pattern_matches(wanted, event.name)
                        && webhook
                            .events
                            .iter()
                            .any(|pattern| pattern_matches(pattern, event.name))
                })
            })
    };
    let looked_at = deps
        .store
        .list_webhooks(
            caller.tenant_id,
            PageRequest {
                limit: FILTER_SCAN,
                after: page.after,
            },
        )
        .await?;
    let last_looked_at = looked_at.items.last().map(|w| w.id);
    let mut found: Vec<Webhook> = looked_at.items.into_iter().filter(|w| wanted(w)).collect();
    let next = if found.len() > page.limit {
        found.truncate(page.limit);
        found.last().map(|w| w.id)
    } else if looked_at.next_cursor.is_some() {
        found.last().map(|w| w.id).or(last_looked_at)
    } else {
        None
    };
    Ok(Page {
        items: found.into_iter().map(|w| shown_to(caller, w)).collect(),
        next_cursor: next.map(encode_cursor),
    })
}

pub async fn update_webhook(
    deps: &Deps,
    caller: &Caller,
    id: Uuid,
    changes: impl Input<WebhookChanges>,
) -> Result<Webhook> {
    caller.require(Permission::WebhookUpdate)?;
    let changes = changes.read()?;
    if changes.recover {
        caller.require(Permission::WebhookRetry)?;
    }
    let (before, after) = retry_on_conflict(|| async {
        let before = load(deps, caller.tenant_id, id).await?;
        let after = before.patched(&changes, deps.settings.targets, deps.clock.now())?;
        if after != before {
            let mut set = audit::webhook_changes(Some(&before), &after);
            if changes.recover {
                set.insert("recover".to_owned(), true.into());
            }
            let entry = audit::entry(deps, caller, AuditAction::WebhookUpdate, id, set);
            deps.store
                .update_webhook(before.version, &after, Some(&entry))
                .await?;
        }
        Ok((before, after))
    })
    .await?;
    if !before.active && after.active {
        enabled(deps, &after).await?;
    }
    if changes.recover {
        recover_on_enabling(deps, &before).await?;
    }
    Ok(shown_to(caller, after))
}

/// A webhook active again: its failures count afresh towards disabling it, and the tenant's
/// webhooks subscribed to `webhook.enabled` are told.
async fn enabled(deps: &Deps, webhook: &Webhook) -> Result<()> {
    let now = deps.clock.now();
    deps.store
        .record_webhook_health(webhook.tenant_id, webhook.id, HealthChange::Restarted, now)
        .await?;
    let data = json!({"webhookId": webhook.id, "url": webhook.url});
    publish(
        deps,
        &OutboxEvent::new(webhook.tenant_id, WEBHOOK_ENABLED, data, now),
    )
    .await
}

pub async fn delete_webhook(deps: &Deps, caller: &Caller, id: Uuid) -> Result<()> {
    caller.require(Permission::WebhookDelete)?;
    let entry = audit::entry(
        deps,
        caller,
        AuditAction::WebhookDelete,
        id,
        Default::default(),
    );
    if deps
        .store
        .delete_webhook(caller.tenant_id, id, Some(&entry))
        .await?
    {
        Ok(())
    } else {
        Err(Error::NotFound("Webhook"))
    }
}

/// The answer to a rotation: the webhook, its new secret (shown this once), and until when
/// the old secret still signs.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotatedSecret {
    #[serde(flatten)]
    pub webhook: Webhook,
    pub secret: String,
    /// Until then the old secret signs `X-Webhook-Signature` and, beside the new one,
    /// `webhook-signature`; from then on only the new one signs. Equal to the time of the
    /// rotation when it asked for no overlap.
    #[serde(serialize_with = "crate::time::serde_millis::serialize")]
    pub previous_secret_expires_at: DateTime<Utc>,
}

/// A new secret, shown once; the old one keeps signing for `overlap_seconds` (default 24
/// hours).
pub async fn rotate_secret(
    deps: &Deps,
    caller: &Caller,
    id: Uuid,
    overlap_seconds: impl Input<Option<i64>>,
) -> Result<RotatedSecret> {
    caller.require(Permission::WebhookUpdate)?;
    let overlap = rotation_overlap(overlap_seconds.read()?)?;
    retry_on_conflict(|| async {
        let before = load(deps, caller.tenant_id, id).await?;
        let now = deps.clock.now();
        let current = deps.secrets.open_current(&before).await?;
        let mut after = before.rotated(current, overlap, now);
        let secret = after.secret.as_stored().to_owned();
        deps.secrets.seal(&mut after).await?;
        let changes = audit::secret_rotated();
        let entry = audit::entry(deps, caller, AuditAction::WebhookRotateSecret, id, changes);
        deps.store
            .update_webhook(before.version, &after, Some(&entry))
            .await?;
        Ok(RotatedSecret {
            secret,
            previous_secret_expires_at: after.overlap_ends_at(now).unwrap_or(now),
            webhook: shown_to(caller, after),
        })
    })
    .await
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventCatalogue {
    #[schema(value_type = Vec<EventType>)]
    pub events: &'static [EventType],
}

pub fn event_catalogue(caller: &Caller) -> Result<EventCatalogue> {
    caller.require(Permission::WebhookRead)?;
    Ok(EventCatalogue { events: CATALOGUE })
}
