//! Webhook endpoints of a tenant: validation, secrets, subscriptions.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::catalogue::{is_valid_pattern, pattern_matches, WEBHOOK_TEST};
use super::signature::{secret_key_bytes, SECRET_PREFIX};
use super::target::check_url;
use super::validation::Fields;
use crate::error::Result;

pub const DEFAULT_MAX_RETRIES: u32 = 3;
pub const DEFAULT_TIMEOUT_MS: u32 = 5_000;
const MAX_EVENTS: usize = 50;
const MAX_HEADERS: usize = 20;
const DESCRIPTION_MAX: usize = 500;
/// How long a rotated-out secret keeps signing beside the new one.
pub const ROTATION_OVERLAP: Duration = Duration::hours(24);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: Uuid,
    #[serde(skip)]
    pub tenant_id: Uuid,
    pub url: String,
    pub description: Option<String>,
    pub events: Vec<String>,
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
    const RESERVED: &[&str] = &[
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
    RESERVED.contains(&name) || name.starts_with("x-webhook-") || name.starts_with("webhook-")
}

fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn check_headers(
    fields: &mut Fields<'_>,
    headers: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut clean = BTreeMap::new();
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if !is_token(&lower) {
            fields.fail("headers", format!("`{name}` is not a valid header name"));
        } else if is_reserved_header(&lower) {
            fields.fail(
                "headers",
                format!("`{name}` is set by the service and cannot be overridden"),
            );
        } else if value.len() > 1024 || value.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
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

fn check_target(fields: &mut Fields<'_>, url: &str, policy: TargetPolicy) -> String {
    match check_url(url, policy.allow_http, policy.allow_private) {
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
        let url = fields.required_string("url", 2048);
        let url = url.map(|url| check_target(&mut fields, &url, policy));
        let events = fields.optional_string_list("events", MAX_EVENTS, 100);
        if events.is_none() && !fields.has("events") {
            fields.fail("events", "is required");
        }
        let events = events.map(|events| check_events(&mut fields, events));
        let headers = fields
            .optional_string_map("headers", MAX_HEADERS)
            .unwrap_or_default();
        let headers = check_headers(&mut fields, &headers);
        let description = fields.optional_string("description", DESCRIPTION_MAX);
        let active = fields.optional_bool("active").unwrap_or(true);
        let max_retries = fields.optional_int("maxRetries", 0..=10);
        let timeout_ms = fields.optional_int("timeoutMs", 100..=30_000);
        let secret = fields.optional_string("secret", 100);
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
            if let Some(url) = fields.required_string("url", 2048) {
                next.url = check_target(&mut fields, &url, policy);
            }
        } else {
            fields.optional_string("url", 2048);
        }
        if let Some(events) = fields.optional_string_list("events", MAX_EVENTS, 100) {
            next.events = check_events(&mut fields, events);
        }
        if let Some(headers) = fields.optional_string_map("headers", MAX_HEADERS) {
            next.headers = check_headers(&mut fields, &headers);
        }
        if let Some(description) = fields.nullable_string("description", DESCRIPTION_MAX) {
            next.description = description;
        }
        if let Some(active) = fields.optional_bool("active") {
            next.active = active;
        }
        if let Some(n) = fields.optional_int("maxRetries", 0..=10) {
            next.max_retries = n as u32;
        }
        if let Some(n) = fields.optional_int("timeoutMs", 100..=30_000) {
            next.timeout_ms = n as u32;
        }
        fields.finish()?;
        if next != *self {
            next.updated_at = now;
            next.version += 1;
        }
        Ok(next)
    }

    /// A new secret; the current one keeps signing beside it for `ROTATION_OVERLAP`.
    pub fn rotated(&self, now: DateTime<Utc>) -> Webhook {
        let mut next = self.clone();
        next.previous_secret = Some((self.secret.clone(), now + ROTATION_OVERLAP));
        next.secret = generate_secret();
        next.updated_at = now;
        next.version += 1;
        next
    }

    /// The secrets that sign a delivery now: the current one first.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let Some((previous, until)) = &self.previous_secret {
            if *until > now {
                secrets.push(previous);
            }
        }
        secrets
    }

    pub fn subscribes_to(&self, event: &str) -> bool {
        self.active
            && self
                .events
                .iter()
                .any(|pattern| pattern_matches(pattern, event))
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

    #[test]
    fn custom_headers_are_kept_lowercased() {
        let body =
            json!({"url": "http://localhost:9/x", "events": ["*"], "headers": {"X-Team": "crm"}});
        let webhook = Webhook::create(Uuid::now_v7(), &body, OPEN, Utc::now()).unwrap();
        assert_eq!(webhook.headers["x-team"], "crm");
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
    fn rotation_keeps_the_old_secret_for_a_day() {
        let now = Utc::now();
        let body = json!({"url": "https://example.com/h", "events": ["*"]});
        let webhook = Webhook::create(Uuid::now_v7(), &body, STRICT, now).unwrap();
        let rotated = webhook.rotated(now);
        assert_ne!(rotated.secret, webhook.secret);
        assert_eq!(
            rotated.signing_secrets(now),
            [rotated.secret.as_str(), webhook.secret.as_str()]
        );
        let later = now + ROTATION_OVERLAP + Duration::seconds(1);
        assert_eq!(rotated.signing_secrets(later), [rotated.secret.as_str()]);
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
