//! The OpenAPI 3.1 document of the REST API, built from the route table: every row of `ROUTES`
//! gets the operation `operation_of` describes (an exhaustive match, so a new operation cannot
//! lack one), with the request types next to their parsing code and the domain response types.
//! `GET /api/openapi.json` serves it; `infra/openapi.json` is the same text, checked by a test.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use lambda_http::http::Method;
use serde_json::json;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{
    AnyOfBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Paths, Ref, RefOr,
    Required, Response, ResponseBuilder,
};
use utoipa::{PartialSchema, ToSchema};

use super::error::ErrorEnvelope;
use super::requests::clients::{CreateClientRequest, UpdateClientRequest};
use super::requests::deliveries::{NotifyRequest, RetryRequest};
use super::requests::keys::CreateKeyRequest;
use super::requests::sync::{BatchAnswer, UpdateSyncStatusRequest, UpdateSyncStatusesRequest};
use super::requests::webhooks::{
    CreateWebhookRequest, RecoverRequest, ReplayRequest, RotateSecretRequest, UpdateWebhookRequest,
};
use super::routes::{Operation, ROUTES};
use crate::config::{MAX_EVENTS_PER_SECOND, MAX_WEBHOOKS_PER_TENANT};
use crate::domain::audit::{AuditAction, AuditEntry};
use crate::domain::auth::ApiKey;
use crate::domain::catalogue::CATALOGUE;
use crate::domain::client::Client;
use crate::domain::delivery::{DeliveryStatus, DeliverySummary};
use crate::domain::idempotency::{
    IDEMPOTENCY_KEY_HEADER, IDEMPOTENCY_KEY_KEPT, IDEMPOTENCY_KEY_MAX, IDEMPOTENCY_KEY_PATTERN,
};
use crate::domain::page::{Page, FILTER_SCAN_LIMIT, MAX_LIMIT};
use crate::domain::sync_history::SyncTransition;
use crate::domain::sync_status::{SyncCounts, SyncStatus};
use crate::domain::webhook::Webhook;
use crate::service::deliveries::{DeliveryDetail, DeliveryStats, NotifyResult, RetryResult};
use crate::service::deps::TenantLimits;
use crate::service::keys::{CreatedKey, KeyList, Me};
use crate::service::redelivery::{QueuedResult, RedeliveryResult};
use crate::service::webhooks::{EventCatalogue, RotatedSecret, WithSecret};
use crate::service::worker::TestResult;

/// The document as served and as kept in `infra/openapi.json` (pretty JSON, trailing newline).
pub static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    let mut value = serde_json::to_value(document()).unwrap_or_default();
    camel_case_links(&mut value);
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
});

/// utoipa 5 writes a link's `operationId` as `operation_id` (and `operationRef`,
/// `requestBody` likewise); OpenAPI tools then see links without a target.
fn camel_case_links(document: &mut serde_json::Value) {
    let Some(paths) = document.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    let responses = paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|operation| operation.get_mut("responses")?.as_object_mut())
        .flat_map(|responses| responses.values_mut());
    for response in responses {
        let Some(links) = response.get_mut("links").and_then(|l| l.as_object_mut()) else {
            continue;
        };
        for link in links.values_mut().filter_map(|l| l.as_object_mut()) {
            for (from, to) in [
                ("operation_id", "operationId"),
                ("operation_ref", "operationRef"),
                ("request_body", "requestBody"),
            ] {
                if let Some(value) = link.remove(from) {
                    link.insert(to.to_owned(), value);
                }
            }
        }
    }
}

/// The `GET /api/openapi.json` answer.
pub fn response() -> lambda_http::Response<lambda_http::Body> {
    let mut response = lambda_http::Response::new(lambda_http::Body::Text(DOCUMENT.clone()));
    response.headers_mut().insert(
        lambda_http::http::header::CONTENT_TYPE,
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    response
}

/// `{success: true}`: the answer of an update that returns nothing else (seed 000).
#[derive(serde::Serialize, ToSchema)]
pub struct Acknowledged {
    /// Always true.
    pub success: bool,
}

const BEARER: &str = "bearerAuth";

/// The operations left out of the document: the GraphQL endpoint has its own schema
/// (introspection); GraphiQL and the dashboard are pages, not an API.
pub fn is_documented(operation: Operation) -> bool {
    !matches!(
        operation,
        Operation::GraphQl | Operation::GraphiQl | Operation::Dashboard
    )
}

pub fn document() -> OpenApi {
    let mut schemas = Schemas::default();
    let mut paths = Paths::new();
    for route in ROUTES {
        if let Some(mut operation) = operation_of(route.operation, &mut schemas) {
            if route.method != Method::GET {
                may_meet_contention(&mut operation, &mut schemas);
            }
            paths.add_path_operation(route.path, vec![http_method(&route.method)], operation);
        }
    }
    let components = ComponentsBuilder::new()
        .schemas_from_iter(schemas.0)
        .security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key: crm-local prints the dev tenant's at first start; \
                         crm-admin creates others; POST /api/keys too.",
                    ))
                    .build(),
            ),
        )
        .build();
    let tags = [
        ("sync", "Seed 000's CRM sync status."),
        (
            "clients",
            "The tenant's clients; every change emits an event.",
        ),
        ("keys", "API keys of the tenant (ADMIN only)."),
        (
            "webhooks",
            "Webhook registry, notification, delivery monitoring and retry.",
        ),
        ("meta", "This document."),
    ]
    .map(|(name, description)| {
        TagBuilder::new()
            .name(name)
            .description(Some(description))
            .build()
    });
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("CRM sync status and webhooks")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Tracks the CRM sync status of a tenant's clients and delivers signed \
                     webhooks for CRM events. Every error is `{success:false, error, details?}`. \
                     A request body is JSON (UTF-8, no key twice in one object), sent with \
                     `Content-Type: application/json`.",
                ))
                .build(),
        )
        .paths(paths)
        .components(Some(components))
        .security(Some([SecurityRequirement::new::<_, _, &str>(BEARER, [])]))
        .tags(Some(tags))
        .build()
}

/// Any write can keep colliding with concurrent transactions on an item it shares (DynamoDB's
/// `TransactionConflict`) past its retries: a 409 to send again, nothing written
/// (`Error::Contended`). An operation that words its own 409 keeps it.
fn may_meet_contention(operation: &mut utoipa::openapi::path::Operation, schemas: &mut Schemas) {
    let envelope = schemas.of::<ErrorEnvelope>();
    operation
        .responses
        .responses
        .entry("409".to_owned())
        .or_insert_with(|| {
            error_response(error_description(409), envelope)
                .build()
                .into()
        });
}

/// An error answer: `description`, and the error envelope as its JSON body.
fn error_response(description: &str, envelope: RefOr<Schema>) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new().schema(Some(envelope)).build(),
    )
}

fn http_method(method: &Method) -> HttpMethod {
    match *method {
        Method::POST => HttpMethod::Post,
        Method::PATCH => HttpMethod::Patch,
        Method::DELETE => HttpMethod::Delete,
        Method::PUT => HttpMethod::Put,
        _ => HttpMethod::Get,
    }
}

/// Named schemas, collected as operations refer to them.
#[derive(Default)]
struct Schemas(BTreeMap<String, RefOr<Schema>>);

impl Schemas {
    /// Registers `T` (and what it refers to) and returns a reference to it.
    fn of<T: ToSchema>(&mut self) -> RefOr<Schema> {
        let mut nested = Vec::new();
        T::schemas(&mut nested);
        self.0.extend(nested);
        self.named(&T::name(), T::schema())
    }

    /// Registers a schema under a name of our choosing (e.g. one page type per item type).
    fn named(&mut self, name: &str, schema: impl Into<RefOr<Schema>>) -> RefOr<Schema> {
        self.0.insert(name.to_owned(), schema.into());
        RefOr::Ref(Ref::from_schema_name(name))
    }

    fn page_of<T: ToSchema>(&mut self) -> RefOr<Schema> {
        self.of::<T>();
        let name = format!("{}Page", T::name());
        self.named(&name, <Page<T> as PartialSchema>::schema())
    }
}

/// What one operation is: its id, tag, summary, inputs and the statuses it can answer.
struct Spec {
    builder: OperationBuilder,
    statuses: Vec<u16>,
    /// Statuses this operation answers for more reasons than `error_description` gives.
    descriptions: Vec<(u16, String)>,
}

fn spec(id: &str, tag: &str, summary: &str) -> Spec {
    Spec {
        builder: OperationBuilder::new()
            .operation_id(Some(id))
            .tag(tag)
            .summary(Some(summary)),
        // Every authenticated operation can answer these.
        statuses: vec![401, 403, 500],
        descriptions: Vec::new(),
    }
}

impl Spec {
    fn body(mut self, schema: RefOr<Schema>, required: bool) -> Spec {
        let required = if required {
            Required::True
        } else {
            Required::False
        };
        self.builder = self.builder.request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(required))
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(schema)).build(),
                )
                .build(),
        ));
        self.errors(&[400, 413, 415])
    }

    fn path_id(mut self, what: &str) -> Spec {
        self.builder = self.builder.parameter(
            ParameterBuilder::new()
                .name("id")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some(format!("The {what}'s id.")))
                .schema(Some(uuid_schema())),
        );
        self.errors(&[400, 404])
    }

    fn query(mut self, name: &str, description: &str, schema: impl Into<RefOr<Schema>>) -> Spec {
        self.builder = self.builder.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(description))
                .schema(Some(schema)),
        );
        self.errors(&[400])
    }

    /// An optional request header.
    fn header(mut self, name: &str, description: &str, schema: impl Into<RefOr<Schema>>) -> Spec {
        self.builder = self.builder.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(description))
                .schema(Some(schema)),
        );
        self.errors(&[400])
    }

    /// `?limit=&cursor=`: cursor pagination, `nextCursor` of one page starts the next.
    fn paginated(self) -> Spec {
        // 16 bytes (an id) in unpadded base64url, canonical last symbol.
        self.paginated_by("^[A-Za-z0-9_-]{21}[AQgw]$")
    }

    /// `paginated` with cursors of the shape `pattern`.
    fn paginated_by(self, pattern: &str) -> Spec {
        self.query(
            "limit",
            "Items per page (default 50).",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .maximum(Some(MAX_LIMIT as i64)),
        )
        .query(
            "cursor",
            "The `nextCursor` of the previous page.",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(pattern)),
        )
    }

    fn errors(mut self, statuses: &[u16]) -> Spec {
        for status in statuses {
            if !self.statuses.contains(status) {
                self.statuses.push(*status);
            }
        }
        self
    }

    /// A status with this operation's own description of it.
    fn error(mut self, status: u16, description: String) -> Spec {
        self.descriptions.push((status, description));
        self.errors(&[status])
    }

    fn public(mut self) -> Spec {
        self.builder = self
            .builder
            .securities(Some(Vec::<SecurityRequirement>::new()));
        self.statuses
            .retain(|status| *status != 401 && *status != 403);
        self
    }

    fn answers(
        self,
        status: u16,
        response: impl Into<RefOr<Response>>,
        schemas: &mut Schemas,
    ) -> utoipa::openapi::path::Operation {
        let mut builder = self.builder.response(status.to_string(), response);
        let mut statuses = self.statuses;
        statuses.sort_unstable();
        let envelope = schemas.of::<ErrorEnvelope>();
        for status in statuses {
            let description = self
                .descriptions
                .iter()
                .find(|(own, _)| *own == status)
                .map_or(error_description(status), |(_, text)| text.as_str());
            let mut response = error_response(description, envelope.clone());
            if status == 429 {
                response = response.header("Retry-After", retry_after_header());
            }
            builder = builder.response(status.to_string(), response);
        }
        builder.build()
    }
}

fn error_description(status: u16) -> &'static str {
    match status {
        400 => "The request is malformed or invalid; `details` names each bad field.",
        401 => "No API key, or not a valid one.",
        403 => "The key's role lacks the permission this operation needs.",
        404 => "Not found (another tenant's ids are not found either).",
        409 => "A concurrent change kept winning; try again.",
        413 => "The request body is over 256 KiB, or the payload it makes is.",
        415 => "The request has a body that is not declared as JSON: send `Content-Type: application/json`.",
        429 => "Too many requests for now: retry after `Retry-After` seconds.",
        _ => "Internal error: nothing internal is shown; `requestId` identifies it in the logs.",
    }
}

fn retry_after_header() -> Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1)),
        )
        .description(Some("Seconds to wait before sending the request again."))
        .build()
}

fn uuid_schema() -> Schema {
    Schema::Object(super::schema::uuid().build())
}

fn json_response(
    description: &str,
    schema: RefOr<Schema>,
    example: Option<serde_json::Value>,
) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(schema))
            .example(example)
            .build(),
    )
}

/// Links from a created resource to the operations on it: schemathesis' stateful phase and
/// client generators follow them.
fn with_links(mut response: ResponseBuilder, operations: &[&str]) -> ResponseBuilder {
    for operation in operations {
        response = response.link(
            *operation,
            LinkBuilder::new()
                .operation_id(*operation)
                .parameter("id", "$response.body#/id")
                .build(),
        );
    }
    response
}

fn no_content(description: &str) -> Response {
    ResponseBuilder::new().description(description).build()
}

/// The operation of each route, or `None` for the ones left out (see `is_documented`).
fn operation_of(
    operation: Operation,
    schemas: &mut Schemas,
) -> Option<utoipa::openapi::path::Operation> {
    use Operation as O;
    let s = schemas;
    let ack = || Some(json!({"success": true}));
    Some(match operation {
        O::GetSyncStatus => spec("getSyncStatus", "sync", "Sync status counts of the tenant's clients (O(1)).").answers(
            200,
            json_response(
                "Seed 000's SyncStatusResponse.",
                s.of::<SyncCounts>(),
                Some(json!({"totalClients": 120, "syncedClients": 100, "pendingClients": 8, "failedClients": 2, "needsUpdateClients": 10, "lastSyncTime": "2026-11-24T12:00:00.000Z"})),
            ),
            s,
        ),
        O::UpdateSyncStatus => {
            let one = s.of::<UpdateSyncStatusRequest>();
            let batch = s.of::<UpdateSyncStatusesRequest>();
            let body = RefOr::T(Schema::OneOf(OneOfBuilder::new().item(one).item(batch).build()));
            // Any of, not one of: a batch's answer also has the single answer's `success`.
            let answer = AnyOfBuilder::new()
                .item(s.of::<Acknowledged>())
                .item(s.of::<BatchAnswer>())
                .build();
            spec(
                "updateSyncStatus",
                "sync",
                "Sets a client's sync status (FAILED may say why: error, errorCode); emits \
                 sync.status.changed when it changes. A body of {updates: [...]} (up to 500) \
                 applies each update on its own and answers one result per update, in order: \
                 an unknown or malformed entry is refused in its result, never the batch \
                 (404 and 409 are then in results).",
            )
            .body(body, true)
            .errors(&[404, 409])
            .answers(
                200,
                json_response(
                    "Updated: {success: true} for one update, one result per update for a batch.",
                    RefOr::T(Schema::AnyOf(answer)),
                    ack(),
                ),
                s,
            )
        }
        O::CreateClient => {
            let body = s.of::<CreateClientRequest>();
            spec("createClient", "clients", "Creates a client (NEEDS_UPDATE); emits client.created.")
                .body(body, true)
                .answers(
                    201,
                    with_links(
                        json_response("The new client.", s.of::<Client>(), None),
                        &["getClient", "updateClient", "deleteClient"],
                    ),
                    s,
                )
        }
        O::ListClients => {
            let status = s.of::<SyncStatus>();
            spec(
                "listClients",
                "clients",
                "Lists clients, oldest first, optionally of one sync status; or, with \
                 syncedBefore, the stale clients: those never synced first, then those whose \
                 last successful sync (lastSyncedAt) is before the time, oldest sync first.",
            )
            // An id's cursor (16 bytes), or a stale list's (24: the sync time and the id).
            .paginated_by("^([A-Za-z0-9_-]{21}[AQgw]|[A-Za-z0-9_-]{32})$")
            .query("syncStatus", "Only clients in this sync status.", status)
            .query(
                "syncedBefore",
                "Only clients never synced or last synced before this time (RFC 3339, cut to \
                 its millisecond); not with syncStatus.",
                super::schema::query_time(),
            )
                .answers(200, json_response("A page of clients.", s.page_of::<Client>(), None), s)
        }
        O::GetClient => spec("getClient", "clients", "One client.")
            .path_id("client")
            .answers(200, json_response("The client.", s.of::<Client>(), None), s),
        O::GetSyncHistory => spec(
            "getSyncHistory",
            "clients",
            "The client's sync status changes, newest first: when, from and to which status, \
             and the error (and errorCode) reported with FAILED. One entry per real change (a \
             repeated status adds none), kept for the retention period (CRM_RETENTION_DAYS).",
        )
        .path_id("client")
        .paginated()
        .answers(
            200,
            json_response(
                "A page of the client's sync history.",
                s.page_of::<SyncTransition>(),
                None,
            ),
            s,
        ),
        O::UpdateClient => {
            let body = s.of::<UpdateClientRequest>();
            spec("updateClient", "clients", "Changes a client's fields; a change marks it NEEDS_UPDATE and emits client.updated.")
                .path_id("client")
                .body(body, true)
                .errors(&[409])
                .answers(200, json_response("The client after the change.", s.of::<Client>(), None), s)
        }
        O::DeleteClient => spec("deleteClient", "clients", "Deletes a client; emits client.deleted.")
            .path_id("client")
            .errors(&[409])
            .answers(204, no_content("Deleted."), s),
        O::CreateKey => {
            let body = s.of::<CreateKeyRequest>();
            spec("createKey", "keys", "Creates an API key; the key is in this response only.")
                .body(body, true)
                .answers(
                    201,
                    with_links(
                        json_response("The key, shown once.", s.of::<CreatedKey>(), None),
                        &["deleteKey"],
                    ),
                    s,
                )
        }
        O::ListKeys => {
            s.of::<ApiKey>();
            spec("listKeys", "keys", "The tenant's API keys (never the keys themselves).")
                .answers(200, json_response("Every key of the tenant.", s.of::<KeyList>(), None), s)
        }
        O::DeleteKey => spec("deleteKey", "keys", "Revokes an API key.")
            .path_id("API key")
            .answers(204, no_content("Revoked."), s),
        O::ListAudit => {
            let action = s.of::<AuditAction>();
            spec(
                "listAudit",
                "keys",
                "The tenant's audit log, newest first (ADMIN only): each management action \
                 (webhook create, update, delete, rotate-secret, test, recover, replay; \
                 delivery retry and resend; key create and delete; tenant creation) with its \
                 time, the acting key's id and name, the target's id and the fields it set, \
                 never a secret or a key. Kept for the retention period (CRM_RETENTION_DAYS).",
            )
            .paginated()
            .query(
                "since",
                "Only entries made at or after this time (RFC 3339).",
                super::schema::query_time(),
            )
            .query(
                "until",
                "Only entries made before this time (RFC 3339); not before `since`.",
                super::schema::query_time(),
            )
            .query("action", "Only entries of this action.", action)
            .answers(
                200,
                json_response("A page of the audit log.", s.page_of::<AuditEntry>(), None),
                s,
            )
        }
        O::Notify => {
            let body = s.of::<NotifyRequest>();
            spec("notify", "webhooks", "Seed 000's notify: one delivery per active webhook subscribed to the event.")
                .body(body, true)
                .header(
                    IDEMPOTENCY_KEY_HEADER,
                    &format!(
                        "Makes the call safe to send again: the same notification (event, data and \
                         timestamp, as parsed: key order and spacing do not matter) sent with the \
                         same key within {} hours answers the first call's `deliveryIds` and creates \
                         nothing (nor counts against `{MAX_EVENTS_PER_SECOND}`). Kept per tenant.",
                        IDEMPOTENCY_KEY_KEPT.num_hours()
                    ),
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .min_length(Some(1))
                        .max_length(Some(IDEMPOTENCY_KEY_MAX))
                        .pattern(Some(IDEMPOTENCY_KEY_PATTERN)),
                )
                .error(
                    409,
                    format!(
                        "The `{IDEMPOTENCY_KEY_HEADER}` was already used, in the last {} hours, \
                         with another notification (event, data or timestamp); nothing was stored.",
                        IDEMPOTENCY_KEY_KEPT.num_hours()
                    ),
                )
                .error(
                    429,
                    format!(
                        "The tenant has made as many notify calls this second as the deployment \
                         allows (`{MAX_EVENTS_PER_SECOND}`, default {}); nothing was stored. \
                         Retry after `Retry-After` seconds.",
                        TenantLimits::default().events_per_second
                    ),
                )
                .answers(
                    200,
                    json_response(
                        "The deliveries created.",
                        s.of::<NotifyResult>(),
                        Some(json!({"success": true, "deliveryIds": ["0193b2c4-5d6e-7f80-9a1b-2c3d4e5f6a7b"]})),
                    ),
                    s,
                )
        }
        O::RetryDeliveries => {
            let body = s.of::<RetryRequest>();
            spec("retryDeliveries", "webhooks", "Seed 000's retry: re-queues FAILED deliveries, all or the ones named.")
                .body(body, false)
                .errors(&[404, 409])
                .answers(
                    200,
                    json_response(
                        "How many were re-queued.",
                        s.of::<RetryResult>(),
                        Some(json!({"success": true, "retriedCount": 2})),
                    ),
                    s,
                )
        }
        O::ReplayEvents => {
            let body = s.of::<ReplayRequest>();
            spec("replayEvents", "webhooks", "Sends the tenant's events of a time range that the webhook subscribes to (and `events` names) to it as new deliveries, oldest first, so that a new endpoint catches up. Events it has a delivery of already are left alone. A range the request cannot finish in 4 s is finished by the worker (`complete: false`).")
                .path_id("webhook")
                .body(body, true)
                .error(409, "The webhook is inactive: activate it first.".to_owned())
                .answers(
                    200,
                    json_response(
                        "How many new deliveries the request queued.",
                        s.of::<RedeliveryResult>(),
                        Some(json!({"success": true, "queued": 12, "complete": true})),
                    ),
                    s,
                )
        }
        O::RecoverDeliveries => {
            let body = s.of::<RecoverRequest>();
            spec("recoverDeliveries", "webhooks", "Sends again the webhook's FAILED, then CANCELLED, deliveries created in a time range, newest first: each gets one more attempt, recorded as an attempt of the same delivery (same webhook-id), without automatic retries. A range the request cannot finish in 4 s is finished by the worker (`complete: false`).")
                .path_id("webhook")
                .body(body, true)
                .error(409, "The webhook is inactive: activate it first (`{\"active\": true, \"recover\": true}` does both).".to_owned())
                .answers(
                    200,
                    json_response(
                        "How many deliveries the request queued.",
                        s.of::<RedeliveryResult>(),
                        Some(json!({"success": true, "queued": 42, "complete": true})),
                    ),
                    s,
                )
        }
        O::ResendDelivery => spec("resendDelivery", "webhooks", "One more attempt of a finished delivery (SUCCESS, FAILED or CANCELLED), recorded as an attempt of the same delivery with the same webhook-id; no automatic retries follow.")
            .path_id("delivery")
            .error(409, "The delivery is still PENDING or RETRYING: its next attempt is on its way.".to_owned())
            .answers(
                200,
                json_response(
                    "Queued: the attempt is made by the worker, shortly.",
                    s.of::<QueuedResult>(),
                    Some(json!({"success": true, "queued": 1})),
                ),
                s,
            ),
        O::ListEventTypes => spec("listEventTypes", "webhooks", "The event catalogue: what webhooks can subscribe to.")
            .answers(200, json_response("Every event.", s.of::<EventCatalogue>(), None), s),
        O::WebhookStats => spec("webhookStats", "webhooks", "Delivery counts per status and success rate, overall and per webhook.")
            .answers(200, json_response("The counts.", s.of::<DeliveryStats>(), None), s),
        O::GetDelivery => spec("getDelivery", "webhooks", "One delivery with every attempt.")
            .path_id("delivery")
            .answers(200, json_response("The delivery.", s.of::<DeliveryDetail>(), None), s),
        O::CreateWebhook => {
            let body = s.of::<CreateWebhookRequest>();
            spec("createWebhook", "webhooks", "Registers a webhook; its secret is in this response only.")
                .body(body, true)
                .error(
                    403,
                    format!(
                        "The key's role lacks the permission this operation needs, or the tenant \
                         has as many webhooks as the deployment allows \
                         (`{MAX_WEBHOOKS_PER_TENANT}`, default {}): delete one first.",
                        TenantLimits::default().webhooks
                    ),
                )
                .answers(
                    201,
                    with_links(
                        json_response("The webhook and its secret.", s.of::<WithSecret>(), None),
                        &[
                            "getWebhook",
                            "updateWebhook",
                            "deleteWebhook",
                            "testWebhook",
                            "rotateWebhookSecret",
                            "listWebhookDeliveries",
                        ],
                    ),
                    s,
                )
        }
        O::ListWebhooks => spec("listWebhooks", "webhooks", "Lists webhooks, oldest first.")
            .paginated()
            .answers(200, json_response("A page of webhooks.", s.page_of::<Webhook>(), None), s),
        O::GetWebhook => spec("getWebhook", "webhooks", "One webhook (without its secret).")
            .path_id("webhook")
            .answers(200, json_response("The webhook.", s.of::<Webhook>(), None), s),
        O::UpdateWebhook => {
            let body = s.of::<UpdateWebhookRequest>();
            spec("updateWebhook", "webhooks", "Changes a webhook's fields. `recover: true` is refused (400) unless the same change has `active: true`.")
                .path_id("webhook")
                .body(body, true)
                .errors(&[409])
                .answers(200, json_response("The webhook after the change.", s.of::<Webhook>(), None), s)
        }
        O::DeleteWebhook => spec("deleteWebhook", "webhooks", "Deletes a webhook; its pending deliveries are cancelled.")
            .path_id("webhook")
            .answers(204, no_content("Deleted."), s),
        O::TestWebhook => spec("testWebhook", "webhooks", "Sends one webhook.test delivery now and waits for it (up to the webhook's timeout).")
            .path_id("webhook")
            .answers(
                200,
                json_response("What the receiver answered.", s.of::<TestResult>(), None).link(
                    "getDelivery",
                    LinkBuilder::new()
                        .operation_id("getDelivery")
                        .parameter("id", "$response.body#/deliveryId")
                        .build(),
                ),
                s,
            ),
        O::RotateWebhookSecret => {
            let body = s.of::<RotateSecretRequest>();
            spec("rotateWebhookSecret", "webhooks", "A new secret; the old one keeps signing for the overlap asked for (default 24 hours).")
                .path_id("webhook")
                .body(body, false)
                .errors(&[409])
                .answers(200, json_response("The webhook, its new secret, and until when the old one signs.", s.of::<RotatedSecret>(), None), s)
        }
        O::ListWebhookDeliveries => {
            let status = s.of::<DeliveryStatus>();
            s.of::<DeliverySummary>();
            spec("listWebhookDeliveries", "webhooks", "A webhook's deliveries, newest first, optionally of one status.")
                .path_id("webhook")
                .paginated()
                .query(
                    "status",
                    &format!(
                        "Only deliveries in this status. One request reads at most \
                         {FILTER_SCAN_LIMIT} deliveries: a page of a rare status may hold fewer \
                         than `limit` (even none) and still have a `nextCursor`; the list ends \
                         when `nextCursor` is null."
                    ),
                    status,
                )
                .answers(200, json_response("A page of deliveries.", s.page_of::<DeliverySummary>(), None), s)
        }
        O::SearchDeliveries => {
            let status = s.of::<DeliveryStatus>();
            s.of::<DeliverySummary>();
            let time = super::schema::query_time;
            spec("searchDeliveries", "webhooks", "The tenant's deliveries, newest first, filtered by any of status, event, webhook and creation time.")
                .paginated()
                .query("status", "Only deliveries in this status.", status)
                .query(
                    "event",
                    "Only deliveries of this event (exact name).",
                    super::schema::one_of_strings(CATALOGUE.iter().map(|event| event.name)),
                )
                .query(
                    "webhookId",
                    "Only deliveries to this webhook (another tenant's finds nothing).",
                    uuid_schema(),
                )
                .query(
                    "since",
                    "Only deliveries created at or after this time (RFC 3339). A time within \
                     a millisecond counts from the next millisecond.",
                    time(),
                )
                .query(
                    "until",
                    "Only deliveries created before this time (RFC 3339), which must not be \
                     before `since`.",
                    time(),
                )
                .answers(200, json_response("A page of deliveries, newest first.", s.page_of::<DeliverySummary>(), None), s)
        }
        O::OpenApi => spec("getOpenApi", "meta", "This OpenAPI document.")
            .public()
            .answers(
                200,
                json_response(
                    "The OpenAPI 3.1 document.",
                    RefOr::T(Schema::Object(
                        ObjectBuilder::new().schema_type(SchemaType::Type(Type::Object)).build(),
                    )),
                    None,
                ),
                s,
            ),
        O::Me => spec("getMe", "keys", "Who the calling key is: its tenant, name, role and the role's permissions. Any key may ask; a client such as the dashboard offers only what the role may do.")
            .answers(
                200,
                json_response(
                    "The key.",
                    s.of::<Me>(),
                    Some(json!({"tenantId": "0193a8f0-1c2d-7e3f-8a4b-5c6d7e8f9a0b", "keyId": "0193a8f0-2d3e-7f40-9b5c-6d7e8f9a0b1c", "keyName": "dashboard", "role": "READ_ONLY", "permissions": ["CLIENT_READ", "SYNC_READ", "WEBHOOK_READ"]})),
                ),
                s,
            ),
        O::GraphQl | O::GraphiQl | O::Dashboard => return None,
    })
}
