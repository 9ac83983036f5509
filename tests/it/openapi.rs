//! The OpenAPI document: one operation per REST route, served without a key, and the same text
//! as `infra/openapi.json` (regenerate with `UPDATE_OPENAPI=1 cargo test -p integration-tests openapi`).

use std::collections::BTreeSet;

use chrono::Utc;
use common::domain::validation::{check_text, INVISIBLE};
use common::domain::webhook::{NewWebhook, TargetPolicy, Webhook, WebhookChanges};
use common::http::openapi::{document, is_documented, DOCUMENT};
use common::http::routes::{RequestBody, ROUTES};
use lambda_http::http::{Method, StatusCode};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use uuid::Uuid;

use crate::support::{Backend, TestApp};

const KEPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/openapi.json");

#[test]
fn infra_copy_is_the_generated_document() {
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(KEPT, DOCUMENT.as_str()).unwrap();
    }
    let kept = std::fs::read_to_string(KEPT).unwrap_or_default();
    assert!(
        kept == *DOCUMENT,
        "infra/openapi.json differs from the generated document: run \
         UPDATE_OPENAPI=1 cargo test -p integration-tests openapi"
    );
}

#[test]
fn every_route_has_one_operation_and_every_operation_a_route() {
    let routes: BTreeSet<(String, String)> = ROUTES
        .iter()
        .filter(|route| is_documented(route.operation))
        .map(|route| {
            (
                route.method.to_string().to_lowercase(),
                route.path.to_owned(),
            )
        })
        .collect();
    let doc = serde_json::to_value(document()).unwrap();
    let mut operations = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations.insert((method.clone(), path.clone()));
            let id = operation["operationId"].as_str().unwrap().to_owned();
            assert!(ids.insert(id.clone()), "operationId {id} twice");
        }
    }
    assert_eq!(operations, routes);
    // Only the GraphQL endpoint, its page and the dashboard's page and assets are left out.
    let left_out: Vec<&str> = ROUTES
        .iter()
        .filter(|route| !is_documented(route.operation))
        .map(|route| route.path)
        .collect();
    assert_eq!(
        left_out,
        [
            "/graphql",
            "/graphql",
            "/",
            "/dashboard/app.js",
            "/dashboard/app.css"
        ]
    );
}

#[test]
fn every_operation_documents_its_errors_with_the_envelope() {
    let doc = serde_json::to_value(document()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            assert!(responses.contains_key("500"), "{method} {path}");
            let public = operation.get("security") == Some(&Value::Array(vec![]));
            assert_eq!(!public, responses.contains_key("401"), "{method} {path}");
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorEnvelope",
                        "{method} {path} {status}"
                    );
                }
            }
            if operation.get("requestBody").is_some() {
                assert!(responses.contains_key("413"), "{method} {path}");
                assert!(responses.contains_key("400"), "{method} {path}");
            }
        }
    }
}

#[tokio::test]
async fn served_without_a_key() {
    let app = TestApp::new(Backend::Sqlite).await;
    let (status, body) = app.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::from_str::<Value>(&DOCUMENT).unwrap());
}

/// The webhook `url` pattern of the served document (the same in both request bodies), read by
/// fancy-regex as schemathesis's validator (jsonschema-rs) reads it. It is the whole rule: the
/// schema has no other keyword that could refuse a string.
fn webhook_url_pattern() -> fancy_regex::Regex {
    let doc: Value = serde_json::from_str(&DOCUMENT).unwrap();
    let schemas = &doc["components"]["schemas"];
    let url = &schemas["CreateWebhookRequest"]["properties"]["url"];
    assert_eq!(url, &schemas["UpdateWebhookRequest"]["properties"]["url"]);
    let mut keywords: Vec<&str> = url
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keywords.sort_unstable();
    assert_eq!(keywords, ["description", "pattern", "type"]);
    fancy_regex::Regex::new(url["pattern"].as_str().unwrap()).unwrap()
}

/// Characters for paths, queries and edits: every RFC 3986 one, and the usual near misses.
#[rustfmt::skip]
const URL_BITS: &[&str] = &[
    "a", "Z", "0", "9", "-", ".", "_", "~", "!", "$", "&", "'", "(", ")", "*", "+", ",", ";",
    "=", ":", "@", "/", "?", "%", "%2F", "%e9", "%G0", "%4", "#", " ", "\t", "\u{a0}",
    "\u{3000}", "\u{85}", "\\", "\"", "<", ">", "^", "`", "{", "|", "}", "[", "]", "\u{e9}",
    "\u{0}", "\u{7f}", "\n", "xn--", "localhost", "..", "//", "[::1]", "1", ":443",
];

/// Webhook URLs and near misses, reproducibly: grammar pieces drawn at random (edge lengths,
/// letter case, hyphens, `xn--` and numeric labels, localhost, IP literals, ports, schemes,
/// white space around), then sometimes a few random edits.
struct UrlCases(StdRng);

impl UrlCases {
    fn one<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items.choose(&mut self.0).copied().unwrap_or_default()
    }

    fn label(&mut self) -> String {
        let len = if self.0.random_bool(0.03) {
            64
        } else {
            *[1, 2, 3, 5, 8, 12, 20, 40, 62, 63]
                .choose(&mut self.0)
                .unwrap()
        };
        let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-";
        let mut label: String = (0..len)
            .map(|_| {
                // Mostly letters and digits, hyphens now and then.
                let i = if self.0.random_bool(0.985) {
                    self.0.random_range(0..62)
                } else {
                    62
                };
                char::from(alphabet[i])
            })
            .collect();
        match self.0.random_range(0..25) {
            0 => label.replace_range(..label.len().min(4), self.one(&["xn--", "XN--", "xN--"])),
            1 => {
                label = self
                    .one(&["localhost", "LocalHost", "123", "0x7f", "1"])
                    .to_owned()
            }
            _ => {}
        }
        if self.0.random_bool(0.03) {
            // A character no host name holds, where one of its own would be.
            let at = self.0.random_range(0..label.len());
            let odd = self.one(&["*", "_", "!", "~", "%", " ", "\u{e9}", "'"]);
            label.replace_range(at..=at, odd);
        }
        label
    }

    fn host(&mut self) -> String {
        if self.0.random_bool(0.05) {
            return self
                .one(&[
                    "8.8.8.8",
                    "127.0.0.1",
                    "1.2.3",
                    "256.1.1.1",
                    "01.2.3.4",
                    "[::1]",
                    "[2606:4700::1111]",
                    "[::ffff:8.8.8.8]",
                    "0x7f.1",
                    "2130706433",
                    "",
                ])
                .to_owned();
        }
        // Few labels mostly; many at times, to reach the 253-character limit from both sides.
        let count = if self.0.random_bool(0.15) {
            self.0.random_range(4..=9)
        } else {
            self.0.random_range(1..=4)
        };
        let labels: Vec<String> = (0..count).map(|_| self.label()).collect();
        let mut host = labels.join(".");
        if self.0.random_bool(0.05) {
            host.push('.');
        }
        host
    }

    fn url(&mut self) -> String {
        let mut url = String::new();
        if self.0.random_bool(0.1) {
            url.push_str(self.one(&[" ", "\t", "\u{3000}", "\u{85}"]));
        }
        let scheme = if self.0.random_bool(0.9) {
            self.one(&["https://", "https://", "https://", "HTTPS://", "hTtPs://"])
        } else {
            self.one(&["http://", "https:", "https:///", "ftp://", "https//", ""])
        };
        url.push_str(scheme);
        if self.0.random_bool(0.03) {
            url.push_str("user@");
        }
        url.push_str(&self.host());
        if self.0.random_bool(0.2) {
            url.push(':');
            url.push_str(self.one(&[
                "1", "443", "8443", "65535", "65536", "0", "080", "", "99999", "1a",
            ]));
        }
        if self.0.random_bool(0.7) {
            url.push_str(self.one(&["/", "/", "/", "?", "#"]));
            if self.0.random_bool(0.02) {
                // Around the 2048-character limit.
                let len: usize = self.0.random_range(2040..=2056);
                url.push_str(&"a".repeat(len.saturating_sub(url.chars().count())));
            } else {
                for _ in 0..self.0.random_range(0..30) {
                    // Mostly characters a path may hold, so that many stay valid.
                    let bit = if self.0.random_bool(0.95) {
                        self.one(&["a", "Z", "0", "-", "_", "~", "/", "%41", "=", "&"])
                    } else {
                        self.one(URL_BITS)
                    };
                    url.push_str(bit);
                }
            }
        }
        if self.0.random_bool(0.1) {
            url.push_str(self.one(&[" ", "\n", "\u{a0}", "\u{2028}"]));
        }
        if self.0.random_bool(0.25) {
            for _ in 0..self.0.random_range(1..=3) {
                let chars: Vec<char> = url.chars().collect();
                let at = self.0.random_range(0..=chars.len());
                let (before, after) = chars.split_at(at);
                let (before, after): (String, String) =
                    (before.iter().collect(), after.iter().collect());
                url = match self.0.random_range(0..3) {
                    0 => format!("{before}{}{after}", self.one(URL_BITS)),
                    1 => format!("{before}{}", after.chars().skip(1).collect::<String>()),
                    _ => format!(
                        "{before}{}{}",
                        self.one(URL_BITS),
                        after.chars().skip(1).collect::<String>()
                    ),
                };
            }
        }
        url
    }
}

/// One rule, one source: for 10,000 generated URLs and near misses, `POST /api/webhooks` and
/// `PATCH /api/webhooks/{id}` (production policy) accept exactly the URLs the document's `url`
/// pattern describes. The schemathesis run checks the same against the running service; this
/// finds a drift in seconds, and says which URL.
fn any_events(url: &str) -> NewWebhook {
    NewWebhook {
        url: url.to_owned(),
        events: vec!["*".to_owned()],
        ..NewWebhook::default()
    }
}

#[test]
fn the_webhook_url_schema_is_exactly_what_the_service_accepts() {
    let production = TargetPolicy::default();
    let now = Utc::now();
    let tenant = Uuid::now_v7();
    let existing =
        Webhook::create(tenant, any_events("https://example.com/h"), production, now).unwrap();
    let pattern = webhook_url_pattern();
    let mut cases = UrlCases(StdRng::seed_from_u64(20_261_124));
    let (mut accepted, mut disagreements) = (0, Vec::new());
    for _ in 0..10_000 {
        let url = cases.url();
        let described = pattern.is_match(&url).unwrap();
        let created = Webhook::create(tenant, any_events(&url), production, now).is_ok();
        let moved = existing
            .patched(
                &WebhookChanges {
                    url: Some(Some(url.clone())),
                    ..WebhookChanges::default()
                },
                production,
                now,
            )
            .is_ok();
        if created != described || moved != described {
            disagreements.push(format!(
                "{url:?}: document {described}, create {created}, patch {moved}"
            ));
        }
        accepted += usize::from(created);
    }
    assert!(
        disagreements.is_empty(),
        "{} URLs where the document and the validator disagree, e.g.:\n{}",
        disagreements.len(),
        disagreements[..disagreements.len().min(10)].join("\n")
    );
    // Both verdicts are common, or the cases say little.
    assert!(
        (1_500..=8_500).contains(&accepted),
        "{accepted} of 10000 accepted"
    );
}

/// A request body is described exactly where the route table says one is read, with the
/// `required` it has, and every operation that reads one documents the 415 it can answer.
#[test]
fn request_bodies_and_their_415_follow_the_route_table() {
    let doc = serde_json::to_value(document()).unwrap();
    for route in ROUTES.iter().filter(|route| is_documented(route.operation)) {
        let method = route.method.to_string().to_lowercase();
        let operation = &doc["paths"][route.path][&method];
        let body = operation.get("requestBody");
        let expected = route.operation.request_body();
        let what = format!("{method} {}", route.path);
        match expected {
            RequestBody::None => assert!(body.is_none(), "{what}"),
            RequestBody::Optional | RequestBody::Required => {
                let body = body.unwrap_or_else(|| panic!("{what} has no requestBody"));
                assert_eq!(
                    body["required"],
                    expected == RequestBody::Required,
                    "{what}"
                );
                let types: Vec<&String> = body["content"].as_object().unwrap().keys().collect();
                assert_eq!(types, ["application/json"], "{what}");
            }
        }
        assert_eq!(
            operation["responses"].get("415").is_some(),
            expected != RequestBody::None,
            "{what}"
        );
    }
}

/// The text pattern of the document (client name, key name, description, …), read by
/// fancy-regex as schemathesis's validator reads it, against `check_text` on every character
/// the rule names and its neighbours, alone, around a letter, and in blanks.
#[test]
fn the_text_pattern_is_exactly_what_check_text_accepts() {
    let doc: Value = serde_json::from_str(&DOCUMENT).unwrap();
    let schemas = &doc["components"]["schemas"];
    let name = &schemas["CreateClientRequest"]["properties"]["name"];
    let pattern = fancy_regex::Regex::new(name["pattern"].as_str().unwrap()).unwrap();
    let max = usize::try_from(name["maxLength"].as_u64().unwrap()).unwrap();
    let mut chars: Vec<char> = (0..0x300u32).filter_map(char::from_u32).collect();
    for &(first, last) in INVISIBLE {
        chars.extend(first..=last);
        chars.extend(char::from_u32(u32::from(first) - 1));
        chars.extend(char::from_u32(u32::from(last) + 1));
    }
    chars.extend([
        '\u{1680}',
        '\u{2028}',
        '\u{3000}',
        '\u{93f}',
        '\u{10ffff}',
        'é',
    ]);
    let mut disagreements = Vec::new();
    for c in chars {
        for text in [
            c.to_string(),
            format!("a{c}"),
            format!("{c}a"),
            format!(" {c} "),
            format!("{c}{c}"),
            format!("\u{200b}{c}\u{301}"),
            format!("\u{200b}{c}a"),
            format!("a\u{301}{c}\u{200b}b"),
            format!("\u{2003}{c}\u{2003}a\u{2003}"),
        ] {
            let described = pattern.is_match(&text).unwrap();
            let accepted = check_text(&text, max).is_ok();
            if described != accepted {
                disagreements.push(format!(
                    "{text:?}: document {described}, check_text {accepted}"
                ));
            }
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} texts where the document and check_text disagree, e.g.:\n{}",
        disagreements.len(),
        disagreements[..disagreements.len().min(10)].join("\n")
    );
}
