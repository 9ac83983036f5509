//! The bodies of the webhook routes: how each reads into its command, and how the OpenAPI
//! document describes it, from the constants the domain's rules use.

use std::collections::BTreeMap;

use utoipa::openapi::schema::{ArrayBuilder, Schema};
use utoipa::openapi::{Array, Object, ObjectBuilder, Type};

use crate::domain::catalogue::{CATALOGUE, WEBHOOK_TEST};
use crate::domain::delivery::{RETRY_DELAY_SECONDS, RETRY_SCHEDULE_MAX};
use crate::domain::recovery::RecoverySelection;
use crate::domain::replay::ReplaySelection;
use crate::domain::signature::SECRET_PREFIX;
use crate::domain::target::{MAX_HOST_LEN, MAX_LABEL_LEN, MAX_URL_LEN, URL_MARKS};
use crate::domain::webhook::{
    NewWebhook, WebhookChanges, DESCRIPTION_MAX, HEADER_NAME_MARKS, HEADER_NAME_MAX,
    HEADER_VALUE_MAX, MAX_EVENTS, MAX_HEADERS, MAX_RETRIES, MAX_ROTATION_OVERLAP,
    RATE_LIMIT_PER_SECOND, RESERVED_HEADERS, RESERVED_HEADER_PREFIXES, SECRET_KEY_BYTES,
    SECRET_MAX, TIMEOUT_MS, URL_MAX,
};
use crate::error::Result;
use crate::http::fields::Fields;
use crate::http::schema;
use crate::json_body::{parse_json, parse_optional_json};
use crate::service::input::Input;

/// `POST /api/webhooks`.
pub struct CreateBody<'a>(pub &'a [u8]);

impl Input<NewWebhook> for CreateBody<'_> {
    fn read(self) -> Result<NewWebhook> {
        let body = parse_json(self.0)?;
        let mut fields = Fields::of(&body)?;
        let url = fields.required_string("url");
        let events = fields.optional_string_list("events");
        // Absent or null: a webhook must listen to something (a bad list already failed).
        if fields.any("events").is_none_or(|events| events.is_null()) {
            fields.fail("events", "is required");
        }
        let new = NewWebhook {
            url: url.unwrap_or_default(),
            events: events.unwrap_or_default(),
            headers: fields.optional_string_map("headers").unwrap_or_default(),
            description: fields.optional_string("description"),
            active: fields.optional_bool("active"),
            max_retries: fields.optional_int("maxRetries"),
            retry_schedule: fields.nullable_int_list("retrySchedule").flatten(),
            timeout_ms: fields.optional_int("timeoutMs"),
            rate_limit_per_second: fields.optional_int("rateLimitPerSecond"),
            secret: fields.optional_string("secret"),
        };
        fields.command(Some(new))
    }
}

/// `PATCH /api/webhooks/{id}`: absent or null leaves a field alone, except `description` and
/// `rateLimitPerSecond`, which null clears, and `url`, which the domain refuses to clear.
pub struct UpdateBody<'a>(pub &'a [u8]);

impl Input<WebhookChanges> for UpdateBody<'_> {
    fn read(self) -> Result<WebhookChanges> {
        let body = parse_json(self.0)?;
        let mut fields = Fields::of(&body)?;
        let changes = WebhookChanges {
            url: fields.nullable_string("url"),
            events: fields.optional_string_list("events"),
            headers: fields.optional_string_map("headers"),
            description: fields.nullable_string("description"),
            active: fields.optional_bool("active"),
            max_retries: fields.optional_int("maxRetries"),
            retry_schedule: fields.nullable_int_list("retrySchedule"),
            timeout_ms: fields.optional_int("timeoutMs"),
            rate_limit_per_second: fields.nullable_int("rateLimitPerSecond"),
            recover: fields.optional_bool("recover").unwrap_or(false),
        };
        fields.command(Some(changes))
    }
}

/// `POST /api/webhooks/{id}/replay {since, until?, events?}`.
pub struct ReplayBody<'a>(pub &'a [u8]);

impl Input<ReplaySelection> for ReplayBody<'_> {
    fn read(self) -> Result<ReplaySelection> {
        let body = parse_json(self.0)?;
        let mut fields = Fields::of(&body)?;
        let selection = ReplaySelection {
            since: fields.optional_time("since"),
            until: fields.optional_time("until"),
            events: fields.optional_string_list("events"),
        };
        fields.command(Some(selection))
    }
}

/// `POST /api/webhooks/{id}/recover {since, until?}`.
pub struct RecoverBody<'a>(pub &'a [u8]);

impl Input<RecoverySelection> for RecoverBody<'_> {
    fn read(self) -> Result<RecoverySelection> {
        let body = parse_json(self.0)?;
        let mut fields = Fields::of(&body)?;
        let selection = RecoverySelection {
            since: fields.optional_time("since"),
            until: fields.optional_time("until"),
        };
        fields.command(Some(selection))
    }
}

/// The body of `POST /api/webhooks/{id}/recover`, for the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"since": "2026-11-24T00:00:00.000Z"}))]
#[allow(dead_code)] // a description of the body, never built
pub struct RecoverRequest {
    /// The first creation time recovered (inclusive), RFC 3339 with a time zone; before `until`.
    #[schema(schema_with = required_time_schema)]
    since: String,
    /// The end of the range (exclusive); absent or null: now.
    #[schema(schema_with = schema::time)]
    until: Option<String>,
}

/// The body of `POST /api/webhooks/{id}/replay`, for the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"since": "2026-11-24T00:00:00.000Z", "events": ["client.*"]}))]
#[allow(dead_code)] // a description of the body, never built
pub struct ReplayRequest {
    /// The first acceptance time replayed (inclusive), RFC 3339 with a time zone; before `until`.
    #[schema(schema_with = required_time_schema)]
    since: String,
    /// The end of the range (exclusive); absent or null: now.
    #[schema(schema_with = schema::time)]
    until: Option<String>,
    /// Only the events these names or patterns match (as a subscription); absent or null: every
    /// event the webhook subscribes to.
    #[schema(schema_with = nullable_events_schema)]
    events: Option<Vec<String>>,
}

fn required_time_schema() -> Object {
    let mut time = schema::time();
    time.schema_type = utoipa::openapi::schema::SchemaType::Type(Type::String);
    time
}

/// `POST /api/webhooks/{id}/rotate-secret`'s optional body: the overlap in seconds.
pub struct RotateBody<'a>(pub &'a [u8]);

impl Input<Option<i64>> for RotateBody<'_> {
    fn read(self) -> Result<Option<i64>> {
        let body = parse_optional_json(self.0)?;
        let mut fields = Fields::of(&body)?;
        let overlap = fields.optional_int("overlapSeconds");
        fields.command(Some(overlap))
    }
}

/// `POST /api/webhooks`: a new webhook. The URL is shown under the production policy: https,
/// and no loopback, private or reserved address.
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
    #[schema(schema_with = retry_schedule_schema)]
    retry_schedule: Option<Vec<u32>>,
    #[schema(schema_with = timeout_ms_schema)]
    timeout_ms: Option<u32>,
    /// At most this many deliveries in any one second; absent or null: unlimited.
    #[schema(schema_with = rate_limit_schema)]
    rate_limit_per_second: Option<u32>,
    #[schema(schema_with = secret_schema)]
    secret: Option<String>,
}

/// `PATCH /api/webhooks/{id}`: the fields to change; absent or null leaves a field alone,
/// except `description` and `rateLimitPerSecond`, which null clears.
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
    #[schema(schema_with = retry_schedule_schema)]
    retry_schedule: Option<Vec<u32>>,
    #[schema(schema_with = timeout_ms_schema)]
    timeout_ms: Option<u32>,
    /// At most this many deliveries in any one second; null: unlimited.
    #[schema(schema_with = rate_limit_schema)]
    rate_limit_per_second: Option<u32>,
    /// Only with `"active": true`: the webhook's deliveries that failed or were cancelled since
    /// it began failing or was deactivated are sent again, by the worker, as by
    /// `POST /api/webhooks/{id}/recover`.
    #[schema(schema_with = active_schema)]
    recover: Option<bool>,
}

/// The optional body of `POST /api/webhooks/{id}/rotate-secret`, for the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"overlapSeconds": 86400}))]
#[allow(dead_code)] // a description of the body, never built
pub struct RotateSecretRequest {
    /// How long the old secret keeps signing: 0 (stop at once) to 604800 (7 days); absent or
    /// null: 86400 (24 hours).
    #[schema(schema_with = overlap_schema)]
    overlap_seconds: Option<i64>,
}

fn overlap_schema() -> Object {
    schema::nullable(schema::int_range(0, MAX_ROTATION_OVERLAP.num_seconds()))
}

/// Exactly the URLs `check_url` accepts under the production policy (`url_pattern`, the length
/// limit included). No `maxLength` or `format: uri` beside it: the pattern says both, and
/// schemathesis would spend minutes drawing 2,048-character matches for a `maxLength`.
fn url_schema() -> Object {
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

/// The URLs [`check_url`] accepts under the production policy (`allow_http` and
/// `allow_private` off), as a regular expression for the OpenAPI document, in the syntax
/// ECMA-262, Python's `re` and fancy-regex read alike. Built from the same constants as the
/// checks; `tests/it/openapi.rs` checks that the two agree on generated near misses, and the
/// schemathesis run (`scripts/openapi_fuzz.sh`) against the running service.
fn url_pattern() -> String {
    let inner = MAX_LABEL_LEN - 2;
    let not_idn = format!("(?!{}--)", any_case("xn"));
    let label = format!("{not_idn}[A-Za-z0-9](?:[A-Za-z0-9-]{{0,{inner}}}[A-Za-z0-9])?");
    let last_label = format!("{not_idn}[A-Za-z](?:[A-Za-z0-9-]{{0,{inner}}}[A-Za-z0-9])?");
    let name_char = "[A-Za-z0-9.-]";
    let short_enough = format!("(?={name_char}{{1,{MAX_HOST_LEN}}}(?!{name_char}))");
    let not_localhost = format!(
        "(?!(?:[A-Za-z0-9-]+\\.)*{}(?!{name_char}))",
        any_case("localhost")
    );
    let port = "(?::(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?";
    let marks = URL_MARKS.replace('-', "\\-");
    let path_and_query = format!("(?:[/?](?:[A-Za-z0-9/?{marks}]|%[0-9A-Fa-f]{{2}})*)?");
    let too_long = MAX_URL_LEN + 1;
    format!(
        "^(?![\\s\\S]{{{too_long}}}){}://{short_enough}{not_localhost}(?:{label}\\.)*{last_label}{port}{path_and_query}$",
        any_case("https")
    )
}

/// Subscription entries: an event of the catalogue (not `webhook.test`), `*`, or `prefix.*`.
fn event_patterns() -> Vec<String> {
    let mut patterns = vec!["*".to_owned()];
    for event in CATALOGUE {
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

fn events_list() -> ArrayBuilder {
    let patterns = event_patterns();
    schema::list(
        schema::one_of_strings(patterns.iter().map(String::as_str)).build(),
        1,
        MAX_EVENTS,
    )
}

fn events_schema() -> Array {
    events_list().build()
}

fn nullable_events_schema() -> Schema {
    schema::nullable_list(events_list())
}

/// `word` matched in any case, each character a class of itself: `[xX]\-`.
fn any_case(word: &str) -> String {
    word.chars()
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
}

/// A header value's characters, as `is_header_value_byte` has them.
const HEADER_VALUE_PATTERN: &str = "^[\\t\\x20-\\x7e]*$";

/// Header names are tokens (`HEADER_NAME_MARKS`), case-insensitive, none the service sets
/// itself (`RESERVED_HEADERS`, `RESERVED_HEADER_PREFIXES`); values tabs and visible ASCII
/// (`is_header_value_byte`).
fn headers_schema() -> Object {
    let reserved: Vec<String> = RESERVED_HEADERS.iter().map(|name| any_case(name)).collect();
    let prefixes: Vec<String> = RESERVED_HEADER_PREFIXES
        .iter()
        .map(|prefix| any_case(prefix))
        .collect();
    let marks = schema::class_of(HEADER_NAME_MARKS);
    let name = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(format!(
            "^(?!(?:{})$)(?!(?:{}))[A-Za-z0-9{marks}]{{1,{HEADER_NAME_MAX}}}$",
            reserved.join("|"),
            prefixes.join("|"),
        )));
    let value = ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(HEADER_VALUE_MAX))
        .pattern(Some(HEADER_VALUE_PATTERN));
    schema::nullable(
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .max_properties(Some(MAX_HEADERS))
            .property_names(Some(name))
            .additional_properties(Some(value)),
    )
}

fn description_schema() -> Object {
    schema::nullable(schema::text(DESCRIPTION_MAX))
}

fn active_schema() -> Object {
    schema::nullable(ObjectBuilder::new().schema_type(Type::Boolean))
}

fn max_retries_schema() -> Object {
    schema::nullable(schema::int_range(*MAX_RETRIES.start(), *MAX_RETRIES.end()))
}

/// Seconds before each retry, the last repeating; null: the deployment's schedule.
fn retry_schedule_schema() -> Schema {
    let delay = schema::int_range(*RETRY_DELAY_SECONDS.start(), *RETRY_DELAY_SECONDS.end()).build();
    schema::nullable_list(schema::list(delay, 1, RETRY_SCHEDULE_MAX))
}

fn timeout_ms_schema() -> Object {
    schema::nullable(schema::int_range(*TIMEOUT_MS.start(), *TIMEOUT_MS.end()))
}

fn rate_limit_schema() -> Object {
    schema::nullable(schema::int_range(
        *RATE_LIMIT_PER_SECOND.start(),
        *RATE_LIMIT_PER_SECOND.end(),
    ))
}

/// `whsec_` and the canonical, padded base64 of `SECRET_KEY_BYTES` bytes.
fn secret_schema() -> Object {
    schema::nullable(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(SECRET_MAX))
            .pattern(Some(secret_pattern())),
    )
}

/// The base64 of n bytes is n / 3 groups of four characters, then for a remainder of 1 or 2 a
/// padded group whose last character carries only the remainder's bits (canonical base64):
/// one alternative per remainder, over the group counts the byte range allows.
fn secret_pattern() -> String {
    let b = "[A-Za-z0-9+/]";
    let (min, max) = (*SECRET_KEY_BYTES.start(), *SECRET_KEY_BYTES.end());
    let tails = [
        String::new(),
        format!("{b}[AQgw]=="),
        format!("{b}{{2}}[AEIMQUYcgkosw048]="),
    ];
    let alternatives: Vec<String> = tails
        .iter()
        .enumerate()
        .filter(|(remainder, _)| max >= *remainder)
        .map(|(remainder, tail)| {
            let fewest = min.saturating_sub(remainder).div_ceil(3);
            let most = (max - remainder) / 3;
            (fewest, most, tail)
        })
        .filter(|(fewest, most, _)| fewest <= most)
        .map(|(fewest, most, tail)| format!("(?:{b}{{4}}){{{fewest},{most}}}{tail}"))
        .collect();
    format!("^{SECRET_PREFIX}(?:{})$", alternatives.join("|"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::fields::details;

    fn create(body: &[u8]) -> Result<NewWebhook> {
        CreateBody(body).read()
    }

    fn update(body: &[u8]) -> Result<WebhookChanges> {
        UpdateBody(body).read()
    }

    fn rotate(body: &[u8]) -> Result<Option<i64>> {
        RotateBody(body).read()
    }

    #[test]
    fn a_create_body_reads_into_its_command() {
        let body = br#"{"url": "https://example.com/h", "events": ["*"], "headers": {"X-Team": "crm"}, "maxRetries": 2.0, "active": null}"#;
        let new = create(body).unwrap();
        assert_eq!(new.url, "https://example.com/h");
        assert_eq!(new.events, ["*"]);
        assert_eq!(new.headers, [("X-Team".to_owned(), "crm".to_owned())]);
        assert_eq!((new.max_retries, new.active), (Some(2), None));
    }

    #[test]
    fn a_create_body_names_each_field_of_the_wrong_shape() {
        let body =
            br#"{"url": 5, "events": null, "headers": ["x"], "maxRetries": "3", "color": "blue"}"#;
        let found = details(create(body));
        assert_eq!(found["url"], "must be a string");
        assert_eq!(found["events"], "is required");
        assert_eq!(found["headers"], "must be an object of string values");
        assert_eq!(found["maxRetries"], "must be an integer");
        assert_eq!(found["color"], "is not a known field");
    }

    #[test]
    fn a_patch_leaves_absent_and_null_fields_alone_but_clears_the_description() {
        let changes = update(br#"{"events": null, "description": null}"#).unwrap();
        assert_eq!(
            changes,
            WebhookChanges {
                description: Some(None),
                ..WebhookChanges::default()
            }
        );
        assert_eq!(update(br#"{"url": null}"#).unwrap().url, Some(None));
    }

    #[test]
    fn a_rate_limit_is_read_on_create_and_null_clears_it_on_patch() {
        let body =
            br#"{"url": "https://example.com/h", "events": ["*"], "rateLimitPerSecond": 20}"#;
        assert_eq!(create(body).unwrap().rate_limit_per_second, Some(20));
        let body =
            br#"{"url": "https://example.com/h", "events": ["*"], "rateLimitPerSecond": null}"#;
        assert_eq!(create(body).unwrap().rate_limit_per_second, None);
        let changes = update(br#"{"rateLimitPerSecond": null}"#).unwrap();
        assert_eq!(changes.rate_limit_per_second, Some(None));
        let changes = update(br#"{"rateLimitPerSecond": 5.0}"#).unwrap();
        assert_eq!(changes.rate_limit_per_second, Some(Some(5)));
        assert_eq!(update(b"{}").unwrap().rate_limit_per_second, None);
        for body in [
            &br#"{"rateLimitPerSecond": "20"}"#[..],
            br#"{"rateLimitPerSecond": 1.5}"#,
        ] {
            let found = details(update(body));
            assert_eq!(found["rateLimitPerSecond"], "must be an integer");
        }
    }

    #[test]
    fn a_rotation_body_may_be_left_out() {
        assert_eq!(rotate(b"").unwrap(), None);
        assert_eq!(rotate(br#"{"overlapSeconds": 60}"#).unwrap(), Some(60));
    }

    #[test]
    fn the_header_value_pattern_is_the_domain_rule() {
        use crate::domain::webhook::is_header_value_byte;
        let pattern = fancy_regex::Regex::new(HEADER_VALUE_PATTERN).unwrap();
        for byte in 0u8..=0x7f {
            let value = char::from(byte).to_string();
            assert_eq!(
                pattern.is_match(&value).unwrap(),
                is_header_value_byte(byte),
                "{byte:#x}"
            );
        }
    }

    /// The secret pattern, written from `SECRET_KEY_BYTES`, says what the domain accepts: the
    /// base64 of each allowed length, and of no other.
    #[test]
    fn the_secret_pattern_follows_the_allowed_key_lengths() {
        use base64::engine::general_purpose::STANDARD;
        use base64::Engine as _;
        let pattern = fancy_regex::Regex::new(&secret_pattern()).unwrap();
        let (min, max) = (*SECRET_KEY_BYTES.start(), *SECRET_KEY_BYTES.end());
        for len in (min - 3)..=(max + 3) {
            for byte in [0u8, 0xff, 0x5a] {
                let secret = format!("{SECRET_PREFIX}{}", STANDARD.encode(vec![byte; len]));
                assert_eq!(
                    pattern.is_match(&secret).unwrap(),
                    SECRET_KEY_BYTES.contains(&len),
                    "{len} bytes: {secret}"
                );
            }
        }
    }
}
