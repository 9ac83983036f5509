//! Mutations: the typed input becomes the REST body and goes through the same use case, so
//! every rule and every validation message is the REST one.

use async_graphql::{Context, Json, MaybeUndefined, Object, Result, ID};
use serde_json::{json, Map, Value};

use super::error::OrFieldError;
use super::parse_id;
use super::scope;
use super::types::{
    CreateWebhookInput, CreateWebhookPayload, DateTime, DeleteWebhookPayload,
    NotifyWebhooksPayload, RetryWebhookDeliveriesPayload, RotateWebhookSecretPayload,
    TestWebhookPayload, UpdateWebhookInput, UpdateWebhookPayload, WebhookHeaderInput,
};
use crate::error::{Error, Result as ServiceResult};
use crate::service::{deliveries, webhooks, worker};
use crate::time::rfc3339;

pub struct Mutation;

/// Complexity of a write, so that one document cannot pack hundreds of them (the limit is
/// `MAX_COMPLEXITY`): at most 50 writes per request.
const MUTATION_COST: usize = 100;
/// Complexity of a mutation that sends requests out (a test delivery) or may queue many
/// deliveries (a retry): at most 5 per request.
const OUTBOUND_COST: usize = 1_000;

/// REST's `headers` object. A name given twice would be lost in an object: it is refused with
/// REST's message for a repeated header.
fn headers_object(headers: &[WebhookHeaderInput]) -> ServiceResult<Value> {
    let mut object = Map::new();
    for header in headers {
        if object
            .insert(header.name.clone(), Value::String(header.value.clone()))
            .is_some()
        {
            return Err(Error::invalid_field(
                "headers",
                format!("`{}` is given twice", header.name),
            ));
        }
    }
    Ok(Value::Object(object))
}

/// Sets `name` unless the input left it out; an explicit null stays null.
fn put<T>(
    body: &mut Map<String, Value>,
    name: &str,
    value: &MaybeUndefined<T>,
    to_json: impl FnOnce(&T) -> ServiceResult<Value>,
) -> ServiceResult<()> {
    match value {
        MaybeUndefined::Undefined => {}
        MaybeUndefined::Null => {
            body.insert(name.to_owned(), Value::Null);
        }
        MaybeUndefined::Value(value) => {
            body.insert(name.to_owned(), to_json(value)?);
        }
    }
    Ok(())
}

fn create_body(input: &CreateWebhookInput) -> ServiceResult<Vec<u8>> {
    let mut body = Map::new();
    body.insert("url".into(), json!(input.url));
    body.insert("events".into(), json!(input.events));
    let optional = [
        ("description", input.description.as_ref().map(|d| json!(d))),
        ("active", input.active.map(|a| json!(a))),
        ("maxRetries", input.max_retries.map(|n| json!(n))),
        ("timeoutMs", input.timeout_ms.map(|n| json!(n))),
        ("secret", input.secret.as_ref().map(|s| json!(s))),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            body.insert(name.into(), value);
        }
    }
    if let Some(headers) = &input.headers {
        body.insert("headers".into(), headers_object(headers)?);
    }
    Ok(Value::Object(body).to_string().into_bytes())
}

fn update_body(input: &UpdateWebhookInput) -> ServiceResult<Vec<u8>> {
    let mut body = Map::new();
    put(&mut body, "url", &input.url, |v| Ok(json!(v)))?;
    put(&mut body, "events", &input.events, |v| Ok(json!(v)))?;
    put(&mut body, "description", &input.description, |v| {
        Ok(json!(v))
    })?;
    put(&mut body, "headers", &input.headers, |v| headers_object(v))?;
    put(&mut body, "active", &input.active, |v| Ok(json!(v)))?;
    put(&mut body, "maxRetries", &input.max_retries, |v| {
        Ok(json!(v))
    })?;
    put(&mut body, "timeoutMs", &input.timeout_ms, |v| Ok(json!(v)))?;
    Ok(Value::Object(body).to_string().into_bytes())
}

#[Object]
impl Mutation {
    /// Creates a webhook; the payload carries its secret, shown this once.
    #[graphql(complexity = "MUTATION_COST + child_complexity")]
    async fn create_webhook(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookInput,
    ) -> Result<CreateWebhookPayload> {
        let (deps, caller, _slot) = scope(ctx).await?;
        let body = create_body(&input).or_field_error(ctx)?;
        let created = webhooks::create_webhook(deps, caller, &body)
            .await
            .or_field_error(ctx)?;
        Ok(CreateWebhookPayload {
            secret: created.secret,
            webhook: created.webhook.into(),
        })
    }

    /// Changes the fields given in `input`, and only those.
    #[graphql(complexity = "MUTATION_COST + child_complexity")]
    async fn update_webhook(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateWebhookInput,
    ) -> Result<UpdateWebhookPayload> {
        let (deps, caller, _slot) = scope(ctx).await?;
        let id = parse_id("id", &id).or_field_error(ctx)?;
        let body = update_body(&input).or_field_error(ctx)?;
        let webhook = webhooks::update_webhook(deps, caller, id, &body)
            .await
            .or_field_error(ctx)?;
        Ok(UpdateWebhookPayload {
            webhook: webhook.into(),
        })
    }

    /// Deletes a webhook; its pending deliveries are cancelled.
    #[graphql(complexity = "MUTATION_COST + child_complexity")]
    async fn delete_webhook(&self, ctx: &Context<'_>, id: ID) -> Result<DeleteWebhookPayload> {
        let (deps, caller, _slot) = scope(ctx).await?;
        let uuid = parse_id("id", &id).or_field_error(ctx)?;
        webhooks::delete_webhook(deps, caller, uuid)
            .await
            .or_field_error(ctx)?;
        Ok(DeleteWebhookPayload {
            success: true,
            deleted_id: ID(uuid.to_string()),
        })
    }

    /// Sends one signed `webhook.test` delivery now and waits for the answer.
    #[graphql(complexity = "OUTBOUND_COST + child_complexity")]
    async fn test_webhook(&self, ctx: &Context<'_>, id: ID) -> Result<TestWebhookPayload> {
        let (deps, caller, _slot) = scope(ctx).await?;
        let id = parse_id("id", &id).or_field_error(ctx)?;
        let result = worker::test_webhook(deps, caller, id)
            .await
            .or_field_error(ctx)?;
        Ok(result.into())
    }

    /// A new signing secret, shown this once. The old one keeps signing for `overlapSeconds`
    /// (0 to 604800; default 86400, 24 hours): seed-era receivers keep verifying
    /// `X-Webhook-Signature` with it until then.
    #[graphql(complexity = "MUTATION_COST + child_complexity")]
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        id: ID,
        overlap_seconds: Option<i32>,
    ) -> Result<RotateWebhookSecretPayload> {
        let (deps, caller, _slot) = scope(ctx).await?;
        let id = parse_id("id", &id).or_field_error(ctx)?;
        let body = match overlap_seconds {
            Some(seconds) => json!({ "overlapSeconds": seconds })
                .to_string()
                .into_bytes(),
            None => Vec::new(),
        };
        let rotated = webhooks::rotate_secret(deps, caller, id, &body)
            .await
            .or_field_error(ctx)?;
        Ok(RotateWebhookSecretPayload {
            secret: rotated.secret,
            previous_secret_expires_at: DateTime(rotated.previous_secret_expires_at),
            webhook: rotated.webhook.into(),
        })
    }

    /// Seed 000's notify: sends `event` with `data` to every active webhook subscribed to it.
    /// `timestamp` is when the event happened (the payload's `timestamp`); absent: now.
    #[graphql(complexity = "OUTBOUND_COST + child_complexity")]
    async fn notify_webhooks(
        &self,
        ctx: &Context<'_>,
        event: String,
        data: Json<Value>,
        timestamp: Option<DateTime>,
    ) -> Result<NotifyWebhooksPayload> {
        let (deps, caller, _slot) = scope(ctx).await?;
        let mut body = json!({ "event": event, "data": data.0 });
        if let Some(timestamp) = timestamp {
            body["timestamp"] = json!(rfc3339(timestamp.0));
        }
        let result = deliveries::notify(deps, caller, body.to_string().as_bytes())
            .await
            .or_field_error(ctx)?;
        Ok(NotifyWebhooksPayload {
            success: result.success,
            delivery_ids: result
                .delivery_ids
                .iter()
                .map(|id| ID(id.to_string()))
                .collect(),
        })
    }

    /// Queues FAILED deliveries for one more attempt each: all of the tenant's, one webhook's,
    /// or the listed ones, as REST's retry does. Each is sent again at once, as the attempt
    /// after its earlier ones; if it fails, it is FAILED again without automatic retries.
    #[graphql(complexity = "OUTBOUND_COST + child_complexity")]
    async fn retry_webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        webhook_id: Option<ID>,
        delivery_ids: Option<Vec<ID>>,
    ) -> Result<RetryWebhookDeliveriesPayload> {
        let (deps, caller, _slot) = scope(ctx).await?;
        let mut body = Map::new();
        if let Some(id) = webhook_id {
            body.insert("webhookId".into(), json!(id.0));
        }
        if let Some(ids) = delivery_ids {
            let ids: Vec<String> = ids.into_iter().map(|id| id.0).collect();
            body.insert("deliveryIds".into(), json!(ids));
        }
        let body = Value::Object(body).to_string().into_bytes();
        let result = deliveries::retry_failed(deps, caller, &body)
            .await
            .or_field_error(ctx)?;
        Ok(RetryWebhookDeliveriesPayload {
            success: result.success,
            retried_count: result.retried_count,
        })
    }
}
