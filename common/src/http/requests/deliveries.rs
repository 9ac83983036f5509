//! The bodies of notify and retry: how each reads into its command, and how the OpenAPI
//! document describes it.

use lambda_http::http::HeaderMap;
use serde_json::Value;

use crate::domain::catalogue::{is_service_event, CATALOGUE};
use crate::domain::delivery::{RetrySelection, RETRY_MAX_IDS};
use crate::domain::event::Notification;
use crate::domain::idempotency::{IdempotentNotification, IDEMPOTENCY_KEY_HEADER};
use crate::error::{Error, Result};
use crate::http::fields::Fields;
use crate::http::schema;
use crate::json_body::{parse_json, parse_optional_json};
use crate::service::input::Input;

/// Seed 000's `POST /api/webhooks/notify` `{event, timestamp?, data}`.
pub struct NotifyBody<'a>(pub &'a [u8]);

/// Notify's body and its optional `Idempotency-Key` header.
pub struct NotifyRequestIn<'a> {
    pub body: &'a [u8],
    pub headers: &'a HeaderMap,
}

impl Input<IdempotentNotification> for NotifyRequestIn<'_> {
    fn read(self) -> Result<IdempotentNotification> {
        let mut keys = self.headers.get_all(IDEMPOTENCY_KEY_HEADER).iter();
        let key = keys.next();
        if keys.next().is_some() {
            return Err(Error::invalid_field(
                IDEMPOTENCY_KEY_HEADER,
                "must be sent once",
            ));
        }
        Ok(IdempotentNotification {
            // Bytes that are not ASCII become U+FFFD here, which the domain's rule refuses.
            key: key.map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned()),
            key_field: IDEMPOTENCY_KEY_HEADER,
            notification: NotifyBody(self.body).read()?,
        })
    }
}

impl Input<Notification> for NotifyBody<'_> {
    fn read(self) -> Result<Notification> {
        let body = parse_json(self.0)?;
        let mut fields = Fields::of(&body)?;
        let event = fields.required_string("event");
        let occurred_at = fields.optional_time("timestamp");
        let data = fields.any("data").cloned();
        if data.is_none() {
            fields.fail("data", "is required");
        }
        let notification = event.zip(data).map(|(event, data)| Notification {
            event,
            data,
            occurred_at,
        });
        fields.command(notification)
    }
}

/// Seed 000's `POST /api/webhooks/retry`: an optional body.
pub struct RetryBody<'a>(pub &'a [u8]);

impl Input<RetrySelection> for RetryBody<'_> {
    fn read(self) -> Result<RetrySelection> {
        let body = parse_optional_json(self.0)?;
        let mut fields = Fields::of(&body)?;
        let selection = RetrySelection {
            webhook_id: fields.optional_uuid("webhookId"),
            delivery_ids: fields.optional_uuid_list("deliveryIds"),
        };
        fields.command(Some(selection))
    }
}

/// Seed 000's notify body (`WebhookPayload`).
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"event": "sync.status.changed", "timestamp": "2026-11-24T12:00:00.000Z", "data": {"clientId": "0193b2c4-5d6e-7f80-9a1b-2c3d4e5f6a7b", "oldStatus": "PENDING", "newStatus": "SYNCED", "timestamp": "2026-11-24T12:00:00.000Z"}}))]
#[allow(dead_code)] // a description of the body, never built
pub struct NotifyRequest {
    #[schema(schema_with = notify_event_schema)]
    event: String,
    /// When the event happened (RFC 3339 with a time zone), sent as the payload's `timestamp`
    /// in UTC to the millisecond; absent or null: now.
    #[schema(schema_with = schema::time)]
    timestamp: Option<String>,
    /// Any JSON value (seed 000's `data: unknown`), sent as the payload's `data`.
    data: Value,
}

/// Every event of the catalogue but the service's own (`webhook.test`, `webhook.disabled`, `webhook.enabled`).
fn notify_event_schema() -> utoipa::openapi::Object {
    schema::one_of_strings(
        CATALOGUE
            .iter()
            .map(|event| event.name)
            .filter(|name| !is_service_event(name)),
    )
    .build()
}

/// The optional body of `POST /api/webhooks/retry`, for the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"webhookId": "0193b2c4-5d6e-7f80-9a1b-2c3d4e5f6a7b"}))]
#[allow(dead_code)] // a description of the body, never built
pub struct RetryRequest {
    #[schema(schema_with = retry_webhook_id_schema)]
    webhook_id: Option<String>,
    #[schema(schema_with = retry_delivery_ids_schema)]
    delivery_ids: Option<Vec<String>>,
}

fn retry_webhook_id_schema() -> utoipa::openapi::Object {
    schema::nullable(schema::uuid())
}

fn retry_delivery_ids_schema() -> utoipa::openapi::schema::Schema {
    schema::nullable_list(schema::list(schema::uuid().build(), 0, RETRY_MAX_IDS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::fields::details;

    fn notify(body: &[u8]) -> Result<Notification> {
        NotifyBody(body).read()
    }

    fn retry(body: &[u8]) -> Result<RetrySelection> {
        RetryBody(body).read()
    }

    #[test]
    fn a_notify_body_needs_an_event_and_data() {
        let found = details(notify(br#"{"timestamp": "yesterday"}"#));
        assert_eq!(found["event"], "is required");
        assert_eq!(found["data"], "is required");
        assert!(found["timestamp"].starts_with("must be an ISO 8601 date-time"));
        let read = notify(br#"{"event": "client.created", "data": null}"#).unwrap();
        assert_eq!((read.data, read.occurred_at), (Value::Null, None));
    }

    #[test]
    fn a_retry_body_may_be_left_out_and_names_bad_ids() {
        assert_eq!(retry(b" ").unwrap(), RetrySelection::default());
        let found = details(retry(br#"{"webhookId": "x", "deliveryIds": ["y"]}"#));
        assert_eq!(found["webhookId"], "must be a UUID");
        assert_eq!(found["deliveryIds"], "must be an array of UUIDs");
    }
}
