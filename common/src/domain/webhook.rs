//! Webhook endpoints of a tenant: validation, secrets, subscriptions.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use serde::Serialize;
use uuid::Uuid;

use super::auth::{Permission, Role};
use super::catalogue::{is_valid_pattern, pattern_matches, WEBHOOK_TEST};
use super::delivery::RetrySchedule;
use super::health::{DisabledReason, WebhookHealth};
use super::sealed_secret::StoredSecret;
use super::signature::{secret_key_bytes, SECRET_PREFIX};
use super::target::{check_url, MAX_URL_LEN};
use super::validation::FieldErrors;
use crate::error::Result;

pub const DEFAULT_MAX_RETRIES: u32 = 3;
pub const DEFAULT_TIMEOUT_MS: u32 = 5_000;
/// The longest a send made while a caller waits may take (`POST /api/webhooks/{id}/test`,
/// GraphQL's `testWebhook`): API Gateway answers 504 after 30 s, so such a send stops short of
/// it, with time left to record the attempt, whatever the webhook's own timeout.
pub const IN_REQUEST_TIMEOUT_MS: u32 = 25_000;
pub const URL_MAX: usize = MAX_URL_LEN;
pub const MAX_EVENTS: usize = 50;
/// The longest entry of a webhook's `events`.
pub const EVENT_MAX: usize = 100;
pub const MAX_HEADERS: usize = 20;
pub const DESCRIPTION_MAX: usize = 500;
pub const MAX_RETRIES: RangeInclusive<i64> = 0..=10;
pub const TIMEOUT_MS: RangeInclusive<i64> = 100..=30_000;
/// The deliveries a second a webhook may ask to receive at most (`rateLimitPerSecond`).
pub const RATE_LIMIT_PER_SECOND: RangeInclusive<i64> = 1..=10_000;
/// The longest secret a client may bring.
pub const SECRET_MAX: usize = 100;
/// How many random bytes a secret a client brings must hold, once its base64 is decoded.
pub const SECRET_KEY_BYTES: RangeInclusive<usize> = 24..=64;
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
    /// Seconds before retry 1, 2, …, the last repeating; `null`: the deployment's
    /// (`WEBHOOK_RETRY_DELAYS`). Either is jittered (`WEBHOOK_RETRY_JITTER`).
    #[schema(value_type = Option<Vec<u64>>)]
    pub retry_schedule: Option<RetrySchedule>,
    pub timeout_ms: u32,
    /// At most this many deliveries in any one second, 1 to 10000; null: unlimited.
    pub rate_limit_per_second: Option<u32>,
    /// Sealed, as every write stores it (`service::secrets`), except a secret just made and not
    /// written yet, or one written before secrets were sealed.
    #[serde(skip)]
    pub secret: StoredSecret,
    /// The secret before the last rotation and until when it still signs.
    #[serde(skip)]
    pub previous_secret: Option<(StoredSecret, DateTime<Utc>)>,
    #[serde(serialize_with = "crate::time::serde_millis::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::serde_millis::serialize")]
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    pub version: i64,
    /// How its deliveries have been going: written by the worker, never by a change of the
    /// webhook (`WebhookStore::record_webhook_health`).
    pub health: WebhookHealth,
    /// Why the service deactivated it (every attempt failing, or `410 Gone`); null when active
    /// or deactivated by a user.
    pub disabled_reason: Option<DisabledReason>,
    /// When it was deactivated, by the service or a user; null when active.
    #[serde(serialize_with = "crate::time::serde_millis::option::serialize")]
    pub disabled_at: Option<DateTime<Utc>>,
}

/// A new webhook as a client asks for it, before its rules are checked (`Webhook::create`).
/// Left out (`None`): the default. The secret is generated unless one is brought.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewWebhook {
    pub url: String,
    pub events: Vec<String>,
    /// As sent: a name given twice (in any case) is refused, not merged.
    pub headers: Vec<(String, String)>,
    pub description: Option<String>,
    pub active: Option<bool>,
    pub max_retries: Option<i64>,
    /// Seconds before each retry (`RetrySchedule::checked`).
    pub retry_schedule: Option<Vec<i64>>,
    pub timeout_ms: Option<i64>,
    pub rate_limit_per_second: Option<i64>,
    pub secret: Option<String>,
}

/// A change to a webhook (`Webhook::patched`): `None` leaves a field alone; `Some(None)` clears
/// the description and the rate limit, and is refused for the URL, which every webhook has. The
/// secret changes only through rotation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookChanges {
    pub url: Option<Option<String>>,
    pub events: Option<Vec<String>>,
    pub headers: Option<Vec<(String, String)>>,
    pub description: Option<Option<String>>,
    pub active: Option<bool>,
    pub max_retries: Option<i64>,
    /// `Some(None)`: back to the deployment's schedule.
    pub retry_schedule: Option<Option<Vec<i64>>>,
    pub timeout_ms: Option<i64>,
    pub rate_limit_per_second: Option<Option<i64>>,
    /// With `active: true`: its deliveries that failed or were cancelled since it began failing
    /// or was deactivated are sent again (`recovery::Recovery::on_enabling`).
    pub recover: bool,
}

pub const RECOVER_NEEDS_ACTIVE: &str = "is allowed only with \"active\": true";

/// Where webhooks may point: HTTPS and public addresses, unless the operator allows more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TargetPolicy {
    pub allow_http: bool,
    pub allow_private: bool,
}

/// A webhook's secrets in the clear, for signing one attempt: opened from the stored ones
/// (`service::secrets`), never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecrets {
    pub current: String,
    /// The rotated-out secret and until when it signs.
    pub previous: Option<(String, DateTime<Utc>)>,
}

impl SigningSecrets {
    /// The rotated-out secret while it still signs.
    fn overlapping(&self, now: DateTime<Utc>) -> Option<&str> {
        self.previous
            .as_ref()
            .filter(|(_, until)| *until > now)
            .map(|(previous, _)| previous.as_str())
    }

    /// The secrets of the Standard Webhooks signature now: the current one first, then the
    /// rotated-out one during its overlap.
    pub fn standard(&self, now: DateTime<Utc>) -> Vec<&str> {
        let mut secrets = vec![self.current.as_str()];
        secrets.extend(self.overlapping(now));
        secrets
    }

    /// The one secret of seed 000's `X-Webhook-Signature`: the rotated-out one during its
    /// overlap, so that a receiver that knows only the old secret keeps verifying until it
    /// has been given the new one; the current one after.
    pub fn seed(&self, now: DateTime<Utc>) -> &str {
        self.overlapping(now).unwrap_or(&self.current)
    }
}

/// A signing secret shows in no log line.
impl std::fmt::Debug for SigningSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecrets(..)")
    }
}

/// A new `whsec_` secret: 32 random bytes, base64.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

fn valid_secret(secret: &str) -> bool {
    secret_key_bytes(secret).is_some_and(|key| SECRET_KEY_BYTES.contains(&key.len()))
}

/// Headers we set on every delivery, and transport headers nobody may set.
fn is_reserved_header(name: &str) -> bool {
    RESERVED_HEADERS.contains(&name)
        || RESERVED_HEADER_PREFIXES
            .iter()
            .any(|prefix| name.starts_with(prefix))
}

pub const HEADER_VALUE_MAX: usize = 1024;
/// The longest custom header name.
pub const HEADER_NAME_MAX: usize = 64;
/// What a header name holds besides ASCII letters and digits: an HTTP token's characters.
pub const HEADER_NAME_MARKS: &str = "!#$%&'*+-.^_`|~";

/// A custom header's value as a key whose role may not change webhooks (no `WEBHOOK_UPDATE`)
/// reads it: header values often carry the receiver's credentials, which the README tells
/// users to put there. Sent back in a PATCH, it keeps the value the header has.
pub const MASKED_HEADER_VALUE: &str = "********";

/// Headers the service sets or that would break the request; never taken from the config.
pub const RESERVED_HEADERS: &[&str] = &[
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

/// The service's own headers: `X-Webhook-*` (seed 000) and `webhook-*` (Standard Webhooks).
pub const RESERVED_HEADER_PREFIXES: &[&str] = &["x-webhook-", "webhook-"];

fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= HEADER_NAME_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || HEADER_NAME_MARKS.as_bytes().contains(&b))
}

/// What an HTTP header value may hold (`HeaderValue::from_str`): tabs and visible ASCII.
/// Anything else could never be sent, and every attempt would fail.
pub fn is_header_value_byte(b: u8) -> bool {
    b == b'\t' || (0x20..0x7f).contains(&b)
}

/// The headers of a command, checked. `kept`: the headers of the webhook a PATCH changes, whose
/// values a masked value keeps (a client may send back the list it was shown).
fn check_headers(
    errors: &mut FieldErrors,
    headers: &[(String, String)],
    kept: Option<&BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let mut clean = BTreeMap::new();
    if !errors.count("headers", headers.len(), MAX_HEADERS) {
        return clean;
    }
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        let value = if value == MASKED_HEADER_VALUE {
            match kept.and_then(|kept| kept.get(&lower)) {
                Some(kept) => kept,
                None => {
                    errors.fail(
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
            errors.fail("headers", format!("`{name}` is not a valid header name"));
        } else if is_reserved_header(&lower) {
            errors.fail(
                "headers",
                format!("`{name}` is set by the service and cannot be overridden"),
            );
        } else if value.len() > HEADER_VALUE_MAX || !value.bytes().all(is_header_value_byte) {
            errors.fail(
                "headers",
                format!(
                    "the value of `{name}` must be at most {HEADER_VALUE_MAX} visible characters"
                ),
            );
        } else if clean.insert(lower, value.clone()).is_some() {
            errors.fail("headers", format!("`{name}` is given twice"));
        }
    }
    clean
}

/// Subscription patterns under the rule of a webhook's `events` (a replay's `events` too).
pub(crate) fn check_events(errors: &mut FieldErrors, events: &[String]) -> Vec<String> {
    let mut clean: Vec<String> = Vec::new();
    if !errors.count("events", events.len(), MAX_EVENTS) {
        return clean;
    }
    if events.is_empty() {
        errors.fail("events", "must list at least one event");
    }
    for event in events {
        let event = event.trim();
        if event.is_empty() || event.len() > EVENT_MAX {
            errors.fail(
                "events",
                format!("must be an array of strings of 1 to {EVENT_MAX} characters"),
            );
        } else if !is_valid_pattern(event) || event == WEBHOOK_TEST {
            errors.fail(
                "events",
                format!("`{event}` is not an event of GET /api/webhooks/events, `*` or `prefix.*`"),
            );
        } else if !clean.iter().any(|kept| kept == event) {
            clean.push(event.to_owned());
        }
    }
    clean
}

/// The `url` field: a text field whose value, as sent, must pass `check_url`, so white space
/// around it is refused too, as the document's pattern says.
fn check_target(errors: &mut FieldErrors, url: &str, policy: TargetPolicy) -> String {
    let Some(trimmed) = errors.text("url", url, URL_MAX) else {
        return String::new();
    };
    let checked = if trimmed != url {
        Err("The URL must not have white space around it.".to_owned())
    } else {
        check_url(url, policy.allow_http, policy.allow_private)
    };
    match checked {
        Ok(parsed) => parsed.to_string(),
        Err(message) => {
            errors.fail("url", message);
            String::new()
        }
    }
}

fn check_rate_limit(errors: &mut FieldErrors, n: i64) -> Option<u32> {
    errors
        .int("rateLimitPerSecond", n, RATE_LIMIT_PER_SECOND)
        .map(|n| n as u32)
}

/// How long the old secret keeps signing after a rotation: `seconds` (0 to
/// `MAX_ROTATION_OVERLAP`), or `ROTATION_OVERLAP` when not given.
pub fn rotation_overlap(seconds: Option<i64>) -> Result<Duration> {
    let mut errors = FieldErrors::default();
    let overlap = seconds
        .and_then(|n| errors.int("overlapSeconds", n, 0..=MAX_ROTATION_OVERLAP.num_seconds()))
        .map_or(ROTATION_OVERLAP, Duration::seconds);
    errors.finish()?;
    Ok(overlap)
}

impl Webhook {
    /// A new webhook of `tenant_id`, once every field of `new` follows its rules.
    pub fn create(
        tenant_id: Uuid,
        new: NewWebhook,
        policy: TargetPolicy,
        now: DateTime<Utc>,
    ) -> Result<Webhook> {
        let mut errors = FieldErrors::default();
        let url = check_target(&mut errors, &new.url, policy);
        let events = check_events(&mut errors, &new.events);
        let headers = check_headers(&mut errors, &new.headers, None);
        let description = new
            .description
            .and_then(|text| errors.text("description", &text, DESCRIPTION_MAX));
        let max_retries = new
            .max_retries
            .and_then(|n| errors.int("maxRetries", n, MAX_RETRIES));
        let retry_schedule = new
            .retry_schedule
            .and_then(|delays| RetrySchedule::checked(&mut errors, "retrySchedule", &delays));
        let timeout_ms = new
            .timeout_ms
            .and_then(|n| errors.int("timeoutMs", n, TIMEOUT_MS));
        let rate_limit_per_second = new
            .rate_limit_per_second
            .and_then(|n| check_rate_limit(&mut errors, n));
        let secret = new
            .secret
            .and_then(|text| errors.text("secret", &text, SECRET_MAX));
        if secret.as_deref().is_some_and(|s| !valid_secret(s)) {
            errors.fail(
                "secret",
                format!(
                    "must be `{SECRET_PREFIX}` followed by the base64 of {} to {} random bytes",
                    SECRET_KEY_BYTES.start(),
                    SECRET_KEY_BYTES.end()
                ),
            );
        }
        errors.finish()?;
        Ok(Webhook {
            id: Uuid::now_v7(),
            tenant_id,
            url,
            description,
            events,
            headers,
            active: new.active.unwrap_or(true),
            max_retries: max_retries.map_or(DEFAULT_MAX_RETRIES, |n| n as u32),
            retry_schedule,
            timeout_ms: timeout_ms.map_or(DEFAULT_TIMEOUT_MS, |n| n as u32),
            rate_limit_per_second,
            secret: StoredSecret::Plain(secret.unwrap_or_else(generate_secret)),
            previous_secret: None,
            created_at: now,
            updated_at: now,
            version: 1,
            health: WebhookHealth::default(),
            disabled_reason: None,
            disabled_at: None,
        })
    }

    /// The webhook with `changes` applied, once each changed field follows its rules.
    pub fn patched(
        &self,
        changes: &WebhookChanges,
        policy: TargetPolicy,
        now: DateTime<Utc>,
    ) -> Result<Webhook> {
        let mut errors = FieldErrors::default();
        let mut next = self.clone();
        match &changes.url {
            None => {}
            Some(None) => errors.fail("url", "is required"),
            Some(Some(url)) => next.url = check_target(&mut errors, url, policy),
        }
        if let Some(events) = &changes.events {
            next.events = check_events(&mut errors, events);
        }
        if let Some(headers) = &changes.headers {
            next.headers = check_headers(&mut errors, headers, Some(&self.headers));
        }
        match &changes.description {
            None => {}
            Some(None) => next.description = None,
            Some(Some(text)) => {
                next.description = errors.text("description", text, DESCRIPTION_MAX);
            }
        }
        if let Some(active) = changes.active {
            next.active = active;
            if active {
                next.disabled_reason = None;
                next.disabled_at = None;
            } else if self.active {
                next.disabled_at = Some(now);
            }
        }
        if changes.recover && changes.active != Some(true) {
            errors.fail("recover", RECOVER_NEEDS_ACTIVE);
        }
        if let Some(n) = changes.max_retries {
            next.max_retries = errors.int("maxRetries", n, MAX_RETRIES).unwrap_or(0) as u32;
        }
        match &changes.retry_schedule {
            None => {}
            Some(None) => next.retry_schedule = None,
            Some(Some(delays)) => {
                next.retry_schedule = RetrySchedule::checked(&mut errors, "retrySchedule", delays);
            }
        }
        if let Some(n) = changes.timeout_ms {
            next.timeout_ms = errors.int("timeoutMs", n, TIMEOUT_MS).unwrap_or(0) as u32;
        }
        if let Some(limit) = changes.rate_limit_per_second {
            next.rate_limit_per_second = limit.and_then(|n| check_rate_limit(&mut errors, n));
        }
        errors.finish()?;
        if next != *self {
            next.updated_at = now;
            next.version += 1;
        }
        Ok(next)
    }

    /// A new secret; the current one, `current` in the clear, keeps signing for `overlap` (at
    /// most `MAX_ROTATION_OVERLAP`). A rotation within an earlier one's overlap ends that
    /// overlap: only the secret just replaced keeps signing. Both are plain until sealed.
    pub fn rotated(&self, current: String, overlap: Duration, now: DateTime<Utc>) -> Webhook {
        let mut next = self.clone();
        let overlap = overlap.clamp(Duration::zero(), MAX_ROTATION_OVERLAP);
        next.previous_secret = Some((StoredSecret::Plain(current), now + overlap));
        next.secret = StoredSecret::Plain(generate_secret());
        next.updated_at = now;
        next.version += 1;
        next
    }

    /// Until when the rotated-out secret signs, while it does.
    pub fn overlap_ends_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.previous_secret
            .as_ref()
            .map(|(_, until)| *until)
            .filter(|until| *until > now)
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

    /// Deactivated by the service itself, for `reason`.
    pub fn disabled(&self, reason: DisabledReason, now: DateTime<Utc>) -> Webhook {
        let mut next = self.clone();
        next.active = false;
        next.disabled_reason = Some(reason);
        next.disabled_at = Some(now);
        next.updated_at = now;
        next.version += 1;
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn new(url: &str, events: &[&str]) -> NewWebhook {
        NewWebhook {
            url: url.to_owned(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            ..NewWebhook::default()
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

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
        let body = new("https://example.com/hook", &["client.*"]);
        let webhook = Webhook::create(Uuid::now_v7(), body, STRICT, Utc::now()).unwrap();
        assert_eq!(webhook.max_retries, 3);
        assert_eq!(webhook.timeout_ms, 5000);
        assert!(webhook.active);
        let StoredSecret::Plain(secret) = &webhook.secret else {
            panic!("a new secret is plain until the service seals it");
        };
        assert!(secret.starts_with("whsec_"));
        assert_eq!(secret_key_bytes(secret).unwrap().len(), 32);
        assert!(!serde_json::to_string(&webhook).unwrap().contains(secret));
    }

    #[test]
    fn rejects_bad_fields_by_name() {
        let body = NewWebhook {
            headers: headers(&[
                ("X-Webhook-Signature", "forged"),
                ("Host", "evil"),
                ("bad name", "x"),
            ]),
            max_retries: Some(11),
            timeout_ms: Some(50),
            rate_limit_per_second: Some(0),
            secret: Some("plain-text".to_owned()),
            description: Some(" \u{200b} ".to_owned()),
            ..new(
                "http://example.com/hook",
                &["client.exploded", "webhook.test"],
            )
        };
        let details = details(Webhook::create(Uuid::now_v7(), body, STRICT, Utc::now()));
        for field in [
            "url",
            "events",
            "headers",
            "maxRetries",
            "timeoutMs",
            "rateLimitPerSecond",
            "secret",
            "description",
        ] {
            assert!(details.contains_key(field), "{field}: {details:?}");
        }
    }

    /// Found by the OpenAPI fuzz: a webhook listening to nothing was created, and a non-ASCII
    /// header value was stored though no attempt could ever send it.
    #[test]
    fn no_events_and_unsendable_header_values_are_refused() {
        let found = details(Webhook::create(
            Uuid::now_v7(),
            new("https://example.com/h", &[]),
            STRICT,
            Utc::now(),
        ));
        assert_eq!(found["events"], "must list at least one event");
        let body = NewWebhook {
            headers: headers(&[("x-team", "cr\u{e9}me")]),
            ..new("https://example.com/h", &["*"])
        };
        let found = details(Webhook::create(Uuid::now_v7(), body, STRICT, Utc::now()));
        assert!(found["headers"].contains("x-team"), "{found:?}");
    }

    /// A name given twice in other cases is refused, not merged; entries are trimmed and kept
    /// once.
    #[test]
    fn repeated_headers_are_refused_and_repeated_events_kept_once() {
        let body = NewWebhook {
            headers: headers(&[("X-Team", "a"), ("x-team", "b")]),
            ..new("https://example.com/h", &["*"])
        };
        let found = details(Webhook::create(Uuid::now_v7(), body, STRICT, Utc::now()));
        assert!(found["headers"].contains("given twice"), "{found:?}");
        let body = new(
            "https://example.com/h",
            &[" client.created", "client.created "],
        );
        let webhook = Webhook::create(Uuid::now_v7(), body, STRICT, Utc::now()).unwrap();
        assert_eq!(webhook.events, ["client.created"]);
    }

    /// Found by the OpenAPI fuzz: `https://wu.org*` was a webhook URL, though the document's
    /// pattern refused it. The URL is checked as sent, on create and on patch alike.
    #[test]
    fn the_url_is_checked_as_sent_on_create_and_patch() {
        let now = Utc::now();
        let webhook = Webhook::create(
            Uuid::now_v7(),
            new("https://example.com/h", &["*"]),
            STRICT,
            now,
        )
        .unwrap();
        for (url, says) in [
            ("https://wu.org*", "domain name"),
            (" https://example.com/h", "white space around it"),
            ("https://example.com/h\n", "white space around it"),
            ("https://8.8.8.8/", "not an IP address"),
        ] {
            let found = details(Webhook::create(
                Uuid::now_v7(),
                new(url, &["*"]),
                STRICT,
                now,
            ));
            assert!(found["url"].contains(says), "{url}: {found:?}");
            let changes = WebhookChanges {
                url: Some(Some(url.to_owned())),
                ..WebhookChanges::default()
            };
            let found = details(webhook.patched(&changes, STRICT, now));
            assert!(found["url"].contains(says), "{url}: {found:?}");
        }
    }

    #[test]
    fn custom_headers_are_kept_lowercased() {
        let body = NewWebhook {
            headers: headers(&[("X-Team", "crm")]),
            ..new("http://localhost:9/x", &["*"])
        };
        let webhook = Webhook::create(Uuid::now_v7(), body, OPEN, Utc::now()).unwrap();
        assert_eq!(webhook.headers["x-team"], "crm");
    }

    #[test]
    fn header_values_are_masked_for_roles_that_may_not_change_webhooks() {
        let body = NewWebhook {
            headers: headers(&[
                ("authorization", "Bearer receiver-token"),
                ("x-team", "crm"),
            ]),
            ..new("https://example.com/h", &["*"])
        };
        let webhook = Webhook::create(Uuid::now_v7(), body, STRICT, Utc::now()).unwrap();
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
        let body = NewWebhook {
            headers: headers(&[
                ("authorization", "Bearer receiver-token"),
                ("x-team", "crm"),
            ]),
            ..new("https://example.com/h", &["*"])
        };
        let webhook = Webhook::create(Uuid::now_v7(), body, STRICT, now).unwrap();
        let changes = |pairs: &[(&str, &str)]| WebhookChanges {
            headers: Some(headers(pairs)),
            ..WebhookChanges::default()
        };
        let patched = webhook
            .patched(
                &changes(&[("Authorization", MASKED_HEADER_VALUE), ("x-team", "sales")]),
                STRICT,
                now,
            )
            .unwrap();
        assert_eq!(patched.headers["authorization"], "Bearer receiver-token");
        assert_eq!(patched.headers["x-team"], "sales");
        let found =
            details(webhook.patched(&changes(&[("x-new", MASKED_HEADER_VALUE)]), STRICT, now));
        assert!(found["headers"].contains("x-new"), "{found:?}");
        let body = NewWebhook {
            headers: headers(&[("x-new", MASKED_HEADER_VALUE)]),
            ..new("https://example.com/h", &["*"])
        };
        let found = details(Webhook::create(Uuid::now_v7(), body, STRICT, now));
        assert!(found["headers"].contains("real value"), "{found:?}");
    }

    #[test]
    fn subscriptions_and_activity() {
        let body = new("https://example.com/h", &["sync.*", "client.created"]);
        let webhook = Webhook::create(Uuid::now_v7(), body, STRICT, Utc::now()).unwrap();
        assert!(webhook.subscribes_to("sync.status.changed"));
        assert!(webhook.subscribes_to("client.created"));
        assert!(!webhook.subscribes_to("client.deleted"));
        assert!(!webhook
            .disabled(DisabledReason::EndpointGone, Utc::now())
            .subscribes_to("client.created"));
    }

    /// The secrets of a webhook whose secrets are still plain, as the keeper would open them.
    fn plain(webhook: &Webhook) -> SigningSecrets {
        let text = |secret: &StoredSecret| match secret {
            StoredSecret::Plain(text) => text.clone(),
            StoredSecret::Sealed(_) => panic!("sealed"),
        };
        SigningSecrets {
            current: text(&webhook.secret),
            previous: webhook
                .previous_secret
                .as_ref()
                .map(|(secret, until)| (text(secret), *until)),
        }
    }

    #[test]
    fn rotation_keeps_the_old_secret_signing_for_the_overlap() {
        let now = Utc::now();
        let body = new("https://example.com/h", &["*"]);
        let webhook = Webhook::create(Uuid::now_v7(), body, STRICT, now).unwrap();
        let old = plain(&webhook).current;
        let rotated = webhook.rotated(old.clone(), ROTATION_OVERLAP, now);
        let secrets = plain(&rotated);
        assert_ne!(secrets.current, old);
        assert_eq!(secrets.standard(now), [secrets.current.as_str(), &old]);
        assert_eq!(secrets.seed(now), old);
        assert_eq!(rotated.overlap_ends_at(now), Some(now + ROTATION_OVERLAP));
        let later = now + ROTATION_OVERLAP + Duration::seconds(1);
        assert_eq!(secrets.standard(later), [secrets.current.as_str()]);
        assert_eq!(secrets.seed(later), secrets.current);
        assert_eq!(rotated.overlap_ends_at(later), None);
    }

    #[test]
    fn a_rotation_without_overlap_signs_with_the_new_secret_at_once() {
        let now = Utc::now();
        let body = new("https://example.com/h", &["*"]);
        let webhook = Webhook::create(Uuid::now_v7(), body, STRICT, now).unwrap();
        let old = plain(&webhook).current;
        let secrets = plain(&webhook.rotated(old.clone(), Duration::zero(), now));
        assert_eq!(secrets.standard(now), [secrets.current.as_str()]);
        assert_eq!(secrets.seed(now), secrets.current);
        let capped = webhook.rotated(old, Duration::days(30), now);
        assert_eq!(
            capped.overlap_ends_at(now),
            Some(now + MAX_ROTATION_OVERLAP)
        );
    }

    #[test]
    fn patch_changes_only_what_it_names() {
        let now = Utc::now();
        let body = NewWebhook {
            description: Some("d".to_owned()),
            ..new("https://example.com/h", &["*"])
        };
        let webhook = Webhook::create(Uuid::now_v7(), body, STRICT, now).unwrap();
        let changes = WebhookChanges {
            active: Some(false),
            description: Some(None),
            ..WebhookChanges::default()
        };
        let patched = webhook.patched(&changes, STRICT, now).unwrap();
        assert!(!patched.active);
        assert_eq!(patched.description, None);
        assert_eq!(patched.url, webhook.url);
        assert_eq!(patched.version, webhook.version + 1);
        let unchanged = webhook
            .patched(&WebhookChanges::default(), STRICT, now)
            .unwrap();
        let cleared = WebhookChanges {
            url: Some(None),
            timeout_ms: Some(40_000),
            ..WebhookChanges::default()
        };
        let found = details(webhook.patched(&cleared, STRICT, now));
        assert_eq!(found["url"], "is required");
        assert_eq!(found["timeoutMs"], "must be an integer from 100 to 30000");
        assert_eq!(unchanged, webhook);
    }

    #[test]
    fn a_rate_limit_is_unlimited_by_default_and_from_1_to_10000() {
        let now = Utc::now();
        let create = |limit| {
            let body = NewWebhook {
                rate_limit_per_second: limit,
                ..new("https://example.com/h", &["*"])
            };
            Webhook::create(Uuid::now_v7(), body, STRICT, now)
        };
        assert_eq!(create(None).unwrap().rate_limit_per_second, None);
        assert_eq!(create(Some(1)).unwrap().rate_limit_per_second, Some(1));
        assert_eq!(
            create(Some(10_000)).unwrap().rate_limit_per_second,
            Some(10_000)
        );
        for bad in [0, -5, 10_001, i64::MAX] {
            let found = details(create(Some(bad)));
            assert_eq!(
                found["rateLimitPerSecond"], "must be an integer from 1 to 10000",
                "{bad}"
            );
        }
    }

    #[test]
    fn a_patch_sets_and_clears_the_rate_limit() {
        let now = Utc::now();
        let webhook = Webhook::create(
            Uuid::now_v7(),
            new("https://example.com/h", &["*"]),
            STRICT,
            now,
        )
        .unwrap();
        let change = |limit| WebhookChanges {
            rate_limit_per_second: Some(limit),
            ..WebhookChanges::default()
        };
        let limited = webhook.patched(&change(Some(20)), STRICT, now).unwrap();
        assert_eq!(limited.rate_limit_per_second, Some(20));
        assert_eq!(limited.version, webhook.version + 1);
        let kept = limited
            .patched(&WebhookChanges::default(), STRICT, now)
            .unwrap();
        assert_eq!(kept.rate_limit_per_second, Some(20));
        let cleared = limited.patched(&change(None), STRICT, now).unwrap();
        assert_eq!(cleared.rate_limit_per_second, None);
        let found = details(limited.patched(&change(Some(10_001)), STRICT, now));
        assert_eq!(
            found["rateLimitPerSecond"],
            "must be an integer from 1 to 10000"
        );
    }

    #[test]
    fn deactivating_records_when_and_recover_needs_active_true() {
        let created = Utc::now() - chrono::Duration::hours(1);
        let webhook = Webhook::create(
            Uuid::now_v7(),
            new("https://example.com/h", &["*"]),
            STRICT,
            created,
        )
        .unwrap();
        let now = Utc::now();
        let active = |active, recover| WebhookChanges {
            active,
            recover,
            ..WebhookChanges::default()
        };
        let off = webhook
            .patched(&active(Some(false), false), STRICT, now)
            .unwrap();
        assert_eq!(
            (off.active, off.disabled_at, off.disabled_reason),
            (false, Some(now), None)
        );
        let still_off = off.patched(
            &active(Some(false), false),
            STRICT,
            now + chrono::Duration::seconds(5),
        );
        assert_eq!(
            still_off.unwrap().disabled_at,
            Some(now),
            "the first deactivation"
        );
        for change in [active(None, true), active(Some(false), true)] {
            let found = details(off.patched(&change, STRICT, now));
            assert_eq!(found["recover"], RECOVER_NEEDS_ACTIVE);
        }
        let on = off.patched(&active(Some(true), true), STRICT, now).unwrap();
        assert_eq!((on.active, on.disabled_at), (true, None));
    }
}
