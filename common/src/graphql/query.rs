//! Queries: each resolver is one call to a use case of `crate::service`.

use async_graphql::{Context, Object, Result, ID};

use super::error::OrFieldError;
use super::types::{
    AuditArguments, AuditLogConnection, DateTime, DeliveryFilterInput, DeliveryNode,
    DeliveryStatusValue, SearchArguments, SyncHistoryConnection, SyncStatusNode, WebhookConnection,
    WebhookDeliveryConnection, WebhookEventType, WebhookFilterInput, WebhookNode, WebhookStats,
};
use super::{page_cost, page_request, parse_id, scope, webhooks_cost};
use crate::service::webhooks::WebhookFilter;
use crate::service::{audit, deliveries, sync, webhooks};

pub struct Query;

#[Object]
impl Query {
    /// One webhook of the tenant (NOT_FOUND for an unknown id or another tenant's).
    async fn webhook(&self, ctx: &Context<'_>, id: ID) -> Result<Option<WebhookNode>> {
        let (deps, caller, _slot) = scope(ctx).await?;
        let found = async { webhooks::get_webhook(deps, caller, parse_id("id", &id)?).await };
        Ok(found.await.or_null(ctx).map(WebhookNode::from))
    }

    /// The tenant's webhooks in creation order, `first` (default 50, at most 100) at a time.
    /// With a `filter`, a page looks at no more than 100 webhooks: it may hold fewer than
    /// `first` (none, even) and still have `hasNextPage`; `endCursor` continues the look.
    #[graphql(complexity = "webhooks_cost(first, filter.is_some(), child_complexity)")]
    async fn webhooks(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<WebhookFilterInput>,
    ) -> Result<WebhookConnection> {
        let (deps, caller, _slot) = scope(ctx).await?;
        let asked_after = after.is_some();
        let page = page_request(first, after).or_field_error(ctx)?;
        let filter = filter.map_or_else(WebhookFilter::default, |f| WebhookFilter {
            active: f.active,
            event: f.event,
        });
        let page = webhooks::list_filtered_webhooks(deps, caller, &filter, page)
            .await
            .or_field_error(ctx)?;
        Ok(WebhookConnection::new(page, asked_after))
    }

    /// A webhook's deliveries, newest first, optionally only those in one status. With a status,
    /// one request reads at most 1,000 deliveries: a page of a rare status may hold fewer than
    /// `first` (even none) with `hasNextPage` true; go on from `endCursor`.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        webhook_id: ID,
        first: Option<i32>,
        after: Option<String>,
        status: Option<DeliveryStatusValue>,
    ) -> Result<WebhookDeliveryConnection> {
        let (deps, caller, _slot) = scope(ctx).await?;
        let webhook_id = parse_id("webhookId", &webhook_id).or_field_error(ctx)?;
        let asked_after = after.is_some();
        let page = page_request(first, after).or_field_error(ctx)?;
        let page =
            deliveries::list_deliveries(deps, caller, webhook_id, status.map(Into::into), page)
                .await
                .or_field_error(ctx)?;
        Ok(WebhookDeliveryConnection::new(page, asked_after))
    }

    /// The tenant's deliveries, newest first, filtered by any of status, event, webhook and
    /// creation time; `first` (default 50, at most 100) at a time. REST's
    /// `GET /api/webhooks/deliveries`.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        filter: Option<DeliveryFilterInput>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<WebhookDeliveryConnection> {
        let (deps, caller, _slot) = scope(ctx).await?;
        let asked_after = after.is_some();
        let search = SearchArguments {
            filter,
            page: page_request(first, after),
        };
        // The permission before the arguments' problems, as on REST.
        let page = deliveries::search_deliveries(deps, caller, search)
            .await
            .or_field_error(ctx)?;
        Ok(WebhookDeliveryConnection::new(page, asked_after))
    }

    /// One delivery with every attempt.
    async fn webhook_delivery(&self, ctx: &Context<'_>, id: ID) -> Result<Option<DeliveryNode>> {
        let (deps, caller, _slot) = scope(ctx).await?;
        let found = async { deliveries::get_delivery(deps, caller, parse_id("id", &id)?).await };
        Ok(found
            .await
            .or_null(ctx)
            .map(|detail| DeliveryNode::new(detail.delivery, Some(detail.attempts))))
    }

    /// Every event a webhook can subscribe to.
    async fn webhook_events(&self, ctx: &Context<'_>) -> Result<Vec<WebhookEventType>> {
        let (_, caller, _) = scope(ctx).await?;
        let catalogue = webhooks::event_catalogue(caller).or_field_error(ctx)?;
        Ok(catalogue
            .events
            .iter()
            .map(WebhookEventType::from)
            .collect())
    }

    /// Delivery counts: the tenant's with one entry per webhook, or one webhook's.
    async fn webhook_stats(
        &self,
        ctx: &Context<'_>,
        webhook_id: Option<ID>,
    ) -> Result<WebhookStats> {
        let (deps, caller, _slot) = scope(ctx).await?;
        let stats = match webhook_id {
            Some(id) => {
                let id = parse_id("webhookId", &id).or_field_error(ctx)?;
                deliveries::webhook_stats(deps, caller, id)
                    .await
                    .map(WebhookStats::from)
            }
            None => deliveries::delivery_stats(deps, caller)
                .await
                .map(WebhookStats::from),
        }
        .or_field_error(ctx)?;
        Ok(stats)
    }

    /// The tenant's clients per CRM sync status.
    async fn sync_status(&self, ctx: &Context<'_>) -> Result<SyncStatusNode> {
        let (deps, caller, _slot) = scope(ctx).await?;
        let counts = sync::sync_status(deps, caller).await.or_field_error(ctx)?;
        Ok(counts.into())
    }

    /// The tenant's audit log, newest first, `first` (default 50, at most 100) at a time: each
    /// management action with its time, the acting key and the fields it set (never a secret).
    /// `since` (included) and `until` (excluded) bound the time; `action` is a wire name such
    /// as `webhook.update`. With an action, a page reads at most 1,000 entries and may be
    /// short with `hasNextPage`. ADMIN only (AUDIT_READ).
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        since: Option<DateTime>,
        until: Option<DateTime>,
        action: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<AuditLogConnection> {
        let (deps, caller, _slot) = scope(ctx).await?;
        let asked_after = after.is_some();
        let listing = AuditArguments {
            since,
            until,
            action,
            page: page_request(first, after),
        };
        let page = audit::list_audit(deps, caller, listing)
            .await
            .or_field_error(ctx)?;
        Ok(AuditLogConnection::new(page, asked_after))
    }

    /// A client's sync status changes, newest first, `first` (default 50, at most 100) at a
    /// time; NOT_FOUND for an unknown client or another tenant's. Needs CLIENT_READ.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn sync_history(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<SyncHistoryConnection> {
        let (deps, caller, _slot) = scope(ctx).await?;
        let client_id = parse_id("clientId", &client_id).or_field_error(ctx)?;
        let asked_after = after.is_some();
        let page = page_request(first, after).or_field_error(ctx)?;
        let page = sync::sync_history(deps, caller, client_id, page)
            .await
            .or_field_error(ctx)?;
        Ok(SyncHistoryConnection::new(page, asked_after))
    }
}
