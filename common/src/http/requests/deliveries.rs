//! The bodies of notify and retry, and the query of the delivery search: how each reads into
//! its command, and how the OpenAPI document describes the bodies.

use lambda_http::http::HeaderMap;
use serde_json::Value;
use uuid::Uuid;

use super::query_param;
use crate::domain::catalogue::{is_service_event, CATALOGUE};
use crate::domain::delivery::{DeliveryStatus, RetrySelection, RETRY_MAX_IDS};
use crate::domain::delivery_search::{DeliveryFilter, DeliverySearch};
use crate::domain::event::Notification;
use crate::domain::idempotency::{IdempotentNotification, IDEMPOTENCY_KEY_HEADER};
use crate::domain::page::PageRequest;
use crate::domain::validation::FieldErrors;
use crate::error::{Error, Result};
use crate::http::fields::{one_of, read_time, Fields, TIME_MESSAGE};
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

/// `GET /api/webhooks/deliveries?status=&event=&webhookId=&since=&until=&limit=&cursor=`: the
/// query string as sent (a repeated parameter keeps its first value, as on every route).
pub struct SearchQuery<'a>(pub &'a str);

impl SearchQuery<'_> {
    fn param(&self, name: &str) -> Option<String> {
        query_param(self.0, name)
    }
}

impl Input<DeliverySearch> for SearchQuery<'_> {
    fn read(self) -> Result<DeliverySearch> {
        let mut errors = FieldErrors::default();
        let status = self.param("status").and_then(|text| {
            let status = DeliveryStatus::parse(&text);
            if status.is_none() {
                errors.fail(
                    "status",
                    one_of(&DeliveryStatus::ALL.map(DeliveryStatus::as_str)),
                );
            }
            status
        });
        let webhook_id = self.param("webhookId").and_then(|text| {
            let id = Uuid::parse_str(text.trim()).ok();
            if id.is_none() {
                errors.fail("webhookId", "must be a UUID");
            }
            id
        });
        let mut time = |name: &str| {
            let text = self.param(name)?;
            // Kept to the nanosecond: a bound within a millisecond rounds up (`id_range`).
            let time = read_time(&text);
            if time.is_none() {
                errors.fail(name, TIME_MESSAGE);
            }
            time
        };
        let (since, until) = (time("since"), time("until"));
        let limit = self.param("limit").and_then(|text| {
            let limit = text.parse::<i64>().ok();
            if limit.is_none() {
                errors.fail("limit", "must be an integer");
            }
            limit
        });
        let page = PageRequest::new(limit, self.param("cursor").as_deref(), ("limit", "cursor"));
        let filter = DeliveryFilter {
            status,
            event: self.param("event"),
            webhook_id,
            since,
            until,
        };
        DeliverySearch::new(filter, page, errors)
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

    fn search(query: &str) -> Result<DeliverySearch> {
        SearchQuery(query).read()
    }

    #[test]
    fn a_search_reads_every_filter() {
        let webhook = Uuid::now_v7();
        let read = search(&format!(
            "status=FAILED&event=lead.created&webhookId={webhook}&since=2026-12-01T10:00:00Z\
             &until=2026-12-01T11:00:00%2B01:00&limit=10"
        ))
        .unwrap();
        assert_eq!(read.filter.status, Some(DeliveryStatus::Failed));
        assert_eq!(read.filter.event.as_deref(), Some("lead.created"));
        assert_eq!(read.filter.webhook_id, Some(webhook));
        assert_eq!(
            read.filter.since, read.filter.until,
            "11:00 at +01:00 is 10:00 UTC"
        );
        assert_eq!(read.page.limit, 10);
        assert_eq!(search("").unwrap().filter, DeliveryFilter::default());
    }

    #[test]
    fn a_search_names_every_bad_parameter_at_once() {
        let found = details(search(
            "status=DONE&event=nope&webhookId=x&since=yesterday&until=2026-13-01T00:00:00Z\
             &limit=ten&cursor=!!",
        ));
        assert_eq!(
            found.keys().map(String::as_str).collect::<Vec<_>>(),
            [
                "cursor",
                "event",
                "limit",
                "since",
                "status",
                "until",
                "webhookId"
            ]
        );
        let found = details(search(
            "since=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00Z&limit=0",
        ));
        assert_eq!(found["since"], "must not be after until");
        assert_eq!(found["limit"], "must be an integer from 1 to 100");
    }

    #[test]
    fn a_retry_body_may_be_left_out_and_names_bad_ids() {
        assert_eq!(retry(b" ").unwrap(), RetrySelection::default());
        let found = details(retry(br#"{"webhookId": "x", "deliveryIds": ["y"]}"#));
        assert_eq!(found["webhookId"], "must be a UUID");
        assert_eq!(found["deliveryIds"], "must be an array of UUIDs");
    }
}
