//! Webhook endpoints of a tenant: validation, secrets, subscriptions.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::auth::{Permission, Role};
use super::catalogue::{is_valid_pattern, pattern_matches, WEBHOOK_TEST};
use super::signature::{secret_key_bytes, SECRET_PREFIX};
use super::target::{check_url, url_pattern, MAX_URL_LEN};
use super::validation::{schema, Fields};
use crate::error::Result;

pub const DEFAULT_MAX_RETRIES: u32 = 3;
pub const DEFAULT_TIMEOUT_MS: u32 = 5_000;
/// The longest a send made while a caller waits may take (`POST /api/webhooks/{id}/test`,
/// GraphQL's `testWebhook`): API Gateway answers 504 after 30 s, so such a send stops short of
/// it, with time left to record the attempt, whatever the webhook's own timeout.
pub const IN_REQUEST_TIMEOUT_MS: u32 = 25_000;
const MAX_EVENTS: usize = 50;
const MAX_HEADERS: usize = 20;
const DESCRIPTION_MAX: usize = 500;
/// How long a rotated-out secret keeps signing, unless the rotation says otherwise.
pub const ROTATION_OVERLAP: Duration = Duration::hours(24);
/// The longest overlap a rotation may ask for.
pub const MAX_ROTATION_OVERLAP: Duration = Duration::days(7);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: Uuid,
    #[serde(skip)]
    pub tenant_id: Uuid,
    pub url: String,
    pub description: Option<String>,
    pub events: Vec<String>,
    /// Custom headers sent with every delivery. Their values read `********` for keys whose
    /// role lacks WEBHOOK_UPDATE; sent back in a PATCH, `********` keeps the value.
    pub headers: BTreeMap<String, String>,
    pub active: bool,
    pub max_retries: u32,
    pub timeout_ms: u32,
    #[serde(skip)]
    pub secret: String,
    /// The secret before the last rotation and until when it still signs.
    #[serde(skip)]
    pub previous_secret: Option<(String, DateTime<Utc>)>,
    #[serde(serialize_with = "crate::time::serde_millis::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::serde_millis::serialize")]
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    pub version: i64,
}

/// Where webhooks may point: HTTPS and public addresses, unless the operator allows more.
/// `POST /api/webhooks`: the body `Webhook::create` accepts, for the OpenAPI document. The URL
/// is shown under the production policy: https, and no loopback, private or reserved address.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"url": "https://crm.example.com/hooks/sync", "events": ["sync.status.changed", "client.*"], "description": "CRM sync listener", "headers": {"x-team": "crm"}, "maxRetries": 3, "timeoutMs": 5000}))]
#[allow(dead_code)] // a description of the body, never built
pub struct CreateWebhookRequest {
    #[schema(schema_with = url_schema)]
    url: String,
    #[schema(schema_with = events_schema)]
    events: Vec<String>,
    #[schema(schema_with = headers_schema)]
    headers: Option<BTreeMap<String, String>>,
    #[schema(schema_with = description_schema)]
    description: Option<String>,
    #[schema(schema_with = active_schema)]
    active: Option<bool>,
    #[schema(schema_with = max_retries_schema)]
    max_retries: Option<u32>,
    #[schema(schema_with = timeout_ms_schema)]
    timeout_ms: Option<u32>,
    #[schema(schema_with = secret_schema)]
    secret: Option<String>,
}

/// `PATCH /api/webhooks/{id}`: the body `Webhook::patched` accepts; absent or null leaves a
/// field alone, except `description`, which null clears.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"active": false, "description": null}))]
#[allow(dead_code)] // a description of the body, never built
pub struct UpdateWebhookRequest {
    #[schema(schema_with = url_schema)]
    url: Option<String>,
    #[schema(schema_with = nullable_events_schema)]
    events: Option<Vec<String>>,
    #[schema(schema_with = headers_schema)]
    headers: Option<BTreeMap<String, String>>,
    #[schema(schema_with = description_schema)]
    description: Option<String>,
    #[schema(schema_with = active_schema)]
    active: Option<bool>,
    #[schema(schema_with = max_retries_schema)]
    max_retries: Option<u32>,
    #[schema(schema_with = timeout_ms_schema)]
    timeout_ms: Option<u32>,
}

const URL_MAX: usize = MAX_URL_LEN;
const MAX_RETRIES: std::ops::RangeInclusive<i64> = 0..=10;
const TIMEOUT_MS: std::ops::RangeInclusive<i64> = 100..=30_000;
const SECRET_MAX: usize = 100;

/// Exactly the URLs `check_url` accepts under the production policy (`url_pattern`, the length
/// limit included). No `maxLength` or `format: uri` beside it: the pattern says both, and
/// schemathesis would spend minutes drawing 2,048-character matches for a `maxLength`.
fn url_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(url_pattern()))
        .description(Some(format!(
            "An https URL of at most {URL_MAX} characters whose host is a domain name: labels \
             of letters, digits and hyphens, none starting or ending with a hyphen or starting \
             `xn--`, the last starting with a letter; not `localhost`, not an IP address. Then \
             an optional port, path and query of RFC 3986 characters, anything else \
             percent-encoded; no fragment, no user name or password, no white space around it. \
             crm-local (WEBHOOK_ALLOW_HTTP, WEBHOOK_ALLOW_PRIVATE_TARGETS) also accepts http, IP \
             addresses and localhost."
        )))
        .build()
}

/// Subscription entries: an event of the catalogue (not `webhook.test`), `*`, or `prefix.*`.
fn event_patterns() -> Vec<String> {
    let mut patterns = vec!["*".to_owned()];
    for event in super::catalogue::CATALOGUE {
        let name = event.name;
        for (i, _) in name.match_indices('.') {
            let prefix = format!("{}.*", &name[..i]);
            if !patterns.contains(&prefix) {
                patterns.push(prefix);
            }
        }
        if name != WEBHOOK_TEST {
            patterns.push(name.to_owned());
        }
    }
    patterns
}

fn events_list() -> utoipa::openapi::schema::ArrayBuilder {
    let patterns = event_patterns();
    schema::list(
        schema::one_of_strings(patterns.iter().map(String::as_str)).build(),
        1,
        MAX_EVENTS,
    )
}

fn events_schema() -> utoipa::openapi::Array {
    events_list().build()
}

fn nullable_events_schema() -> utoipa::openapi::schema::Schema {
    schema::nullable_list(events_list())
}

/// Header names are tokens, case-insensitive, none the service sets itself; values visible
/// ASCII or tabs.
fn headers_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::{ObjectBuilder, Type};
    let any_case = |name: &str| -> String {
        name.chars()
            .map(|c| {
                if c.is_ascii_alphabetic() {
                    format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase())
                } else if c.is_ascii_alphanumeric() {
                    c.to_string()
                } else {
                    format!("\\{c}")
                }
            })
            .collect()
    };
    let reserved: Vec<String> = RESERVED_HEADERS.iter().map(|name| any_case(name)).collect();
    let name = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(format!(
            "^(?!(?:{})$)(?!(?:{})?{})[A-Za-z0-9!#$%&'*+.^_`|~-]{{1,64}}$",
            reserved.join("|"),
            any_case("x-"),
            any_case("webhook-"),
        )));
    let value = ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(HEADER_VALUE_MAX))
        .pattern(Some("^[\\t\\x20-\\x7e]*$"));
    schema::nullable(
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .max_properties(Some(MAX_HEADERS))
            .property_names(Some(name))
            .additional_properties(Some(value)),
    )
}

fn description_schema() -> utoipa::openapi::Object {
    schema::nullable(schema::text(DESCRIPTION_MAX))
}

fn active_schema() -> utoipa::openapi::Object {
    schema::nullable(
        utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::Boolean),
    )
}

fn max_retries_schema() -> utoipa::openapi::Object {
    schema::nullable(schema::int_range(*MAX_RETRIES.start(), *MAX_RETRIES.end()))
}

fn timeout_ms_schema() -> utoipa::openapi::Object {
    schema::nullable(schema::int_range(*TIMEOUT_MS.start(), *TIMEOUT_MS.end()))
}

/// `whsec_` and the canonical, padded base64 of 24 to 64 bytes.
fn secret_schema() -> utoipa::openapi::Object {
    let b = "[A-Za-z0-9+/]";
    let pattern = format!(
        "^whsec_(?:(?:{b}{{4}}){{8,20}}(?:{b}[AQgw]==|{b}{{2}}[AEIMQUYcgkosw048]=)?|(?:{b}{{4}}){{21}}(?:{b}[AQgw]==)?)$"
    );
    schema::nullable(
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .max_length(Some(SECRET_MAX))
            .pattern(Some(pattern)),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TargetPolicy {
    pub allow_http: bool,
    pub allow_private: bool,
}

/// A new `whsec_` secret: 32 random bytes, base64.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

fn valid_secret(secret: &str) -> bool {
    secret_key_bytes(secret).is_some_and(|key| (24..=64).contains(&key.len()))
}

/// Headers we set on every delivery, and transport headers nobody may set.
fn is_reserved_header(name: &str) -> bool {
    RESERVED_HEADERS.contains(&name)
        || name.starts_with("x-webhook-")
        || name.starts_with("webhook-")
}

const HEADER_VALUE_MAX: usize = 1024;

/// A custom header's value as a key whose role may not change webhooks (no `WEBHOOK_UPDATE`)
/// reads it: header values often carry the receiver's credentials, which the README tells
/// users to put there. Sent back in a PATCH, it keeps the value the header has.
pub const MASKED_HEADER_VALUE: &str = "********";

/// Headers the service sets or that would break the request; never taken from the config.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-connection",
    "expect",
];

fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The headers of a body, checked. `kept`: the headers of the webhook a PATCH changes, whose
/// values a masked value keeps (a client may send back the list it was shown).
fn check_headers(
    fields: &mut Fields<'_>,
    headers: &BTreeMap<String, String>,
    kept: Option<&BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let mut clean = BTreeMap::new();
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        let value = if value == MASKED_HEADER_VALUE {
            match kept.and_then(|kept| kept.get(&lower)) {
                Some(kept) => kept,
                None => {
                    fields.fail(
                        "headers",
                        format!(
                            "`{MASKED_HEADER_VALUE}` stands for a hidden value, and `{name}` has \
                             none to keep: send its real value"
                        ),
                    );
                    continue;
                }
            }
        } else {
            value
        };
        if !is_token(&lower) {
            fields.fail("headers", format!("`{name}` is not a valid header name"));
        } else if is_reserved_header(&lower) {
            fields.fail(
                "headers",
                format!("`{name}` is set by the service and cannot be overridden"),
            );
        } else if value.len() > HEADER_VALUE_MAX
            // What an HTTP header value may hold (`HeaderValue::from_str`): anything else could
            // never be sent, and every attempt would fail.
            || value.bytes().any(|b| !(b == b'\t' || (0x20..0x7f).contains(&b)))
        {
            fields.fail(
                "headers",
                format!("the value of `{name}` must be at most 1024 visible characters"),
            );
        } else if clean.insert(lower, value.clone()).is_some() {
            fields.fail("headers", format!("`{name}` is given twice"));
        }
    }
    clean
}

fn check_events(fields: &mut Fields<'_>, events: Vec<String>) -> Vec<String> {
    if events.is_empty() {
        fields.fail("events", "must list at least one event");
    }
    let mut clean: Vec<String> = Vec::new();
    for event in events {
        if !is_valid_pattern(&event) || event == WEBHOOK_TEST {
            fields.fail(
                "events",
                format!("`{event}` is not an event of GET /api/webhooks/events, `*` or `prefix.*`"),
            );
        } else if !clean.contains(&event) {
            clean.push(event);
        }
    }
    clean
}

/// The `url` field, which `required_string` has already read (and trimmed): the URL as sent must
/// pass `check_url`, so white space around it is refused too, as the document's pattern says.
fn check_target(fields: &mut Fields<'_>, url: &str, policy: TargetPolicy) -> String {
    let sent = fields.any("url").and_then(Value::as_str);
    let checked = if sent != Some(url) {
        Err("The URL must not have white space around it.".to_owned())
    } else {
        check_url(url, policy.allow_http, policy.allow_private)
    };
    match checked {
        Ok(parsed) => parsed.to_string(),
        Err(message) => {
            fields.fail("url", message);
            String::new()
        }
    }
}

impl Webhook {
    /// Parses `POST /api/webhooks`. The secret is generated unless one is supplied.
    pub fn create(
        tenant_id: Uuid,
        body: &Value,
        policy: TargetPolicy,
        now: DateTime<Utc>,
    ) -> Result<Webhook> {
        let mut fields = Fields::of(body)?;
        let url = fields.required_string("url", URL_MAX);
        let url = url.map(|url| check_target(&mut fields, &url, policy));
        let events = fields.optional_string_list("events", MAX_EVENTS, 100);
        // Absent or null: a webhook must listen to something (a bad list already failed).
        if events.is_none() {
            fields.fail("events", "is required");
        }
        let events = events.map(|events| check_events(&mut fields, events));
        let headers = fields
            .optional_string_map("headers", MAX_HEADERS)
            .unwrap_or_default();
        let headers = check_headers(&mut fields, &headers, None);
        let description = fields.optional_string("description", DESCRIPTION_MAX);
        let active = fields.optional_bool("active").unwrap_or(true);
        let max_retries = fields.optional_int("maxRetries", MAX_RETRIES);
        let timeout_ms = fields.optional_int("timeoutMs", TIMEOUT_MS);
        let secret = fields.optional_string("secret", SECRET_MAX);
        if secret.as_deref().is_some_and(|s| !valid_secret(s)) {
            fields.fail(
                "secret",
                "must be `whsec_` followed by the base64 of 24 to 64 random bytes",
            );
        }
        fields.finish()?;
        Ok(Webhook {
            id: Uuid::now_v7(),
            tenant_id,
            url: url.unwrap_or_default(),
            description,
            events: events.unwrap_or_default(),
            headers,
            active,
            max_retries: max_retries.map_or(DEFAULT_MAX_RETRIES, |n| n as u32),
            timeout_ms: timeout_ms.map_or(DEFAULT_TIMEOUT_MS, |n| n as u32),
            secret: secret.unwrap_or_else(generate_secret),
            previous_secret: None,
            created_at: now,
            updated_at: now,
            version: 1,
        })
    }

    /// Applies `PATCH /api/webhooks/{id}`; the secret changes only through rotation.
    pub fn patched(
        &self,
        body: &Value,
        policy: TargetPolicy,
        now: DateTime<Utc>,
    ) -> Result<Webhook> {
        let mut fields = Fields::of(body)?;
        let mut next = self.clone();
        if fields.has("url") {
            if let Some(url) = fields.required_string("url", URL_MAX) {
                next.url = check_target(&mut fields, &url, policy);
            }
        } else {
            fields.optional_string("url", URL_MAX);
        }
        if let Some(events) = fields.optional_string_list("events", MAX_EVENTS, 100) {
            next.events = check_events(&mut fields, events);
        }
        if let Some(headers) = fields.optional_string_map("headers", MAX_HEADERS) {
            next.headers = check_headers(&mut fields, &headers, Some(&self.headers));
        }
        if let Some(description) = fields.nullable_string("description", DESCRIPTION_MAX) {
            next.description = description;
        }
        if let Some(active) = fields.optional_bool("active") {
            next.active = active;
        }
        if let Some(n) = fields.optional_int("maxRetries", MAX_RETRIES) {
            next.max_retries = n as u32;
        }
        if let Some(n) = fields.optional_int("timeoutMs", TIMEOUT_MS) {
            next.timeout_ms = n as u32;
        }
        fields.finish()?;
        if next != *self {
            next.updated_at = now;
            next.version += 1;
        }
        Ok(next)
    }

    /// A new secret; the current one keeps signing for `overlap` (at most
    /// `MAX_ROTATION_OVERLAP`). A rotation within an earlier one's overlap ends that overlap:
    /// only the secret just replaced keeps signing.
    pub fn rotated(&self, overlap: Duration, now: DateTime<Utc>) -> Webhook {
        let mut next = self.clone();
        let overlap = overlap.clamp(Duration::zero(), MAX_ROTATION_OVERLAP);
        next.previous_secret = Some((self.secret.clone(), now + overlap));
        next.secret = generate_secret();
        next.updated_at = now;
        next.version += 1;
        next
    }

    /// The rotated-out secret while it still signs.
    fn overlapping_secret(&self, now: DateTime<Utc>) -> Option<&str> {
        self.previous_secret
            .as_ref()
            .filter(|(_, until)| *until > now)
            .map(|(previous, _)| previous.as_str())
    }

    /// Until when the rotated-out secret signs, while it does.
    pub fn overlap_ends_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.previous_secret
            .as_ref()
            .map(|(_, until)| *until)
            .filter(|until| *until > now)
    }

    /// The secrets of the Standard Webhooks signature now: the current one first, then the
    /// rotated-out one during its overlap.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        secrets.extend(self.overlapping_secret(now));
        secrets
    }

    /// The one secret of seed 000's `X-Webhook-Signature`: the rotated-out one during its
    /// overlap, so that a receiver that knows only the old secret keeps verifying until it
    /// has been given the new one; the current one after.
    pub fn seed_signing_secret(&self, now: DateTime<Utc>) -> &str {
        self.overlapping_secret(now).unwrap_or(&self.secret)
    }

    pub fn subscribes_to(&self, event: &str) -> bool {
        self.active
            && self
                .events
                .iter()
                .any(|pattern| pattern_matches(pattern, event))
    }

    /// The webhook as a key of `role` may read it: header values masked unless the role may
    /// change webhooks (and so set them anyway).
    pub fn as_seen_by(mut self, role: Role) -> Webhook {
        if !role.can(Permission::WebhookUpdate) {
            for value in self.headers.values_mut() {
                MASKED_HEADER_VALUE.clone_into(value);
            }
        }
        self
    }

    pub fn deactivated(&self, now: DateTime<Utc>) -> Webhook {
        let mut next = self.clone();
        next.active = false;
        next.updated_at = now;
        next.version += 1;
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use serde_json::json;

    const OPEN: TargetPolicy = TargetPolicy {
        allow_http: true,
        allow_private: true,
    };
    const STRICT: TargetPolicy = TargetPolicy {
        allow_http: false,
        allow_private: false,
    };

    fn details(result: Result<Webhook>) -> BTreeMap<String, String> {
        match result {
            Err(Error::Invalid { details, .. }) => details,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_and_a_generated_secret() {
        let body = json!({"url": "https://example.com/hook", "events": ["client.*"]});
        let webhook = Webhook::create(Uuid::now_v7(), &body, STRICT, Utc::now()).unwrap();
        assert_eq!(webhook.max_retries, 3);
        assert_eq!(webhook.timeout_ms, 5000);
        assert!(webhook.active);
        assert!(webhook.secret.starts_with("whsec_"));
        assert_eq!(secret_key_bytes(&webhook.secret).unwrap().len(), 32);
        assert!(!serde_json::to_string(&webhook)
            .unwrap()
            .contains(&webhook.secret));
    }

    #[test]
    fn rejects_bad_fields_by_name() {
        let body = json!({
            "url": "http://example.com/hook",
            "events": ["client.exploded", "webhook.test"],
            "headers": {"X-Webhook-Signature": "forged", "Host": "evil", "bad name": "x"},
            "maxRetries": 11,
            "timeoutMs": 50,
            "secret": "plain-text",
            "color": "blue"
        });
        let details = details(Webhook::create(Uuid::now_v7(), &body, STRICT, Utc::now()));
        for field in [
            "url",
            "events",
            "headers",
            "maxRetries",
            "timeoutMs",
            "secret",
            "color",
        ] {
            assert!(details.contains_key(field), "{field}: {details:?}");
        }
    }

    /// Found by the OpenAPI fuzz: `events: null` created a webhook listening to nothing, and
    /// a non-ASCII header value was stored though no attempt could ever send it.
    #[test]
    fn null_events_and_unsendable_header_values_are_refused() {
        let body = json!({"url": "https://example.com/h", "events": null});
        let found = details(Webhook::create(Uuid::now_v7(), &body, STRICT, Utc::now()));
        assert_eq!(found["events"], "is required");
        let body = json!({"url": "https://example.com/h", "events": ["*"], "headers": {"x-team": "cr\u{e9}me"}});
        let found = details(Webhook::create(Uuid::now_v7(), &body, STRICT, Utc::now()));
        assert!(found["headers"].contains("x-team"), "{found:?}");
    }

    /// Found by the OpenAPI fuzz: `https://wu.org*` was a webhook URL, though the document's
    /// pattern refused it. The URL is checked as sent, on create and on patch alike.
    #[test]
    fn the_url_is_checked_as_sent_on_create_and_patch() {
        let now = Utc::now();
        let body = json!({"url": "https://example.com/h", "events": ["*"]});
        let webhook = Webhook::create(Uuid::now_v7(), &body, STRICT, now).unwrap();
        for (url, says) in [
            ("https://wu.org*", "domain name"),
            (" https://example.com/h", "white space around it"),
            ("https://example.com/h\n", "white space around it"),
            ("https://8.8.8.8/", "not an IP address"),
        ] {
            let body = json!({"url": url, "events": ["*"]});
            let found = details(Webhook::create(Uuid::now_v7(), &body, STRICT, now));
            assert!(found["url"].contains(says), "{url}: {found:?}");
            let found = details(webhook.patched(&json!({"url": url}), STRICT, now));
            assert!(found["url"].contains(says), "{url}: {found:?}");
        }
    }

    #[test]
    fn custom_headers_are_kept_lowercased() {
        let body =
            json!({"url": "http://localhost:9/x", "events": ["*"], "headers": {"X-Team": "crm"}});
        let webhook = Webhook::create(Uuid::now_v7(), &body, OPEN, Utc::now()).unwrap();
        assert_eq!(webhook.headers["x-team"], "crm");
    }

    #[test]
    fn header_values_are_masked_for_roles_that_may_not_change_webhooks() {
        let body = json!({"url": "https://example.com/h", "events": ["*"],
            "headers": {"authorization": "Bearer receiver-token", "x-team": "crm"}});
        let webhook = Webhook::create(Uuid::now_v7(), &body, STRICT, Utc::now()).unwrap();
        for role in Role::ALL {
            let seen = webhook.clone().as_seen_by(role);
            let names: Vec<&String> = seen.headers.keys().collect();
            assert_eq!(names, ["authorization", "x-team"], "{role:?}");
            if role.can(Permission::WebhookUpdate) {
                assert_eq!(seen, webhook, "{role:?}");
            } else {
                assert!(
                    seen.headers.values().all(|v| v == MASKED_HEADER_VALUE),
                    "{role:?}"
                );
                let text = serde_json::to_string(&seen).unwrap();
                assert!(!text.contains("receiver-token") && !text.contains("\"crm\""));
            }
        }
    }

    /// A client that shows the masked list and sends it back, changed or not, never
    /// overwrites a value with the mask.
    #[test]
    fn a_masked_value_sent_back_keeps_the_value_it_stands_for() {
        let now = Utc::now();
        let body = json!({"url": "https://example.com/h", "events": ["*"],
            "headers": {"authorization": "Bearer receiver-token", "x-team": "crm"}});
        let webhook = Webhook::create(Uuid::now_v7(), &body, STRICT, now).unwrap();
        let patched = webhook
            .patched(
                &json!({"headers": {"Authorization": MASKED_HEADER_VALUE, "x-team": "sales"}}),
                STRICT,
                now,
            )
            .unwrap();
        assert_eq!(patched.headers["authorization"], "Bearer receiver-token");
        assert_eq!(patched.headers["x-team"], "sales");
        let found = details(webhook.patched(
            &json!({"headers": {"x-new": MASKED_HEADER_VALUE}}),
            STRICT,
            now,
        ));
        assert!(found["headers"].contains("x-new"), "{found:?}");
        let body = json!({"url": "https://example.com/h", "events": ["*"],
            "headers": {"x-new": MASKED_HEADER_VALUE}});
        let found = details(Webhook::create(Uuid::now_v7(), &body, STRICT, now));
        assert!(found["headers"].contains("real value"), "{found:?}");
    }

    #[test]
    fn subscriptions_and_activity() {
        let body = json!({"url": "https://example.com/h", "events": ["sync.*", "client.created"]});
        let webhook = Webhook::create(Uuid::now_v7(), &body, STRICT, Utc::now()).unwrap();
        assert!(webhook.subscribes_to("sync.status.changed"));
        assert!(webhook.subscribes_to("client.created"));
        assert!(!webhook.subscribes_to("client.deleted"));
        assert!(!webhook
            .deactivated(Utc::now())
            .subscribes_to("client.created"));
    }

    #[test]
    fn rotation_keeps_the_old_secret_signing_for_the_overlap() {
        let now = Utc::now();
        let body = json!({"url": "https://example.com/h", "events": ["*"]});
        let webhook = Webhook::create(Uuid::now_v7(), &body, STRICT, now).unwrap();
        let rotated = webhook.rotated(ROTATION_OVERLAP, now);
        assert_ne!(rotated.secret, webhook.secret);
        assert_eq!(
            rotated.signing_secrets(now),
            [rotated.secret.as_str(), webhook.secret.as_str()]
        );
        assert_eq!(rotated.seed_signing_secret(now), webhook.secret);
        assert_eq!(rotated.overlap_ends_at(now), Some(now + ROTATION_OVERLAP));
        let later = now + ROTATION_OVERLAP + Duration::seconds(1);
        assert_eq!(rotated.signing_secrets(later), [rotated.secret.as_str()]);
        assert_eq!(rotated.seed_signing_secret(later), rotated.secret);
        assert_eq!(rotated.overlap_ends_at(later), None);
    }

    #[test]
    fn a_rotation_without_overlap_signs_with_the_new_secret_at_once() {
        let now = Utc::now();
        let body = json!({"url": "https://example.com/h", "events": ["*"]});
        let webhook = Webhook::create(Uuid::now_v7(), &body, STRICT, now).unwrap();
        let rotated = webhook.rotated(Duration::zero(), now);
        assert_eq!(rotated.signing_secrets(now), [rotated.secret.as_str()]);
        assert_eq!(rotated.seed_signing_secret(now), rotated.secret);
        let capped = webhook.rotated(Duration::days(30), now);
        assert_eq!(
            capped.overlap_ends_at(now),
            Some(now + MAX_ROTATION_OVERLAP)
        );
    }

    #[test]
    fn patch_changes_only_what_it_names() {
        let now = Utc::now();
        let body = json!({"url": "https://example.com/h", "events": ["*"], "description": "d"});
        let webhook = Webhook::create(Uuid::now_v7(), &body, STRICT, now).unwrap();
        let patched = webhook
            .patched(&json!({"active": false, "description": null}), STRICT, now)
            .unwrap();
        assert!(!patched.active);
        assert_eq!(patched.description, None);
        assert_eq!(patched.url, webhook.url);
        assert_eq!(patched.version, webhook.version + 1);
        let unchanged = webhook.patched(&json!({}), STRICT, now).unwrap();
        assert_eq!(unchanged, webhook);
    }
}
