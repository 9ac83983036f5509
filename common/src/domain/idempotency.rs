//! Idempotent notify: a caller's key for one notification, so that sending it again (after a
//! timeout, a lost answer) answers the first request's deliveries and creates nothing.
//! (docs/architecture.md §Idempotent notify.)

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::event::{Notification, OutboxEvent};
use super::validation::FieldErrors;
use crate::error::Result;
use crate::time::rfc3339;

/// REST's header carrying the key (Stripe's and Svix's name).
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";
/// GraphQL's argument of `notifyWebhooks` carrying the key.
pub const IDEMPOTENCY_KEY_ARGUMENT: &str = "idempotencyKey";
/// The longest key (Stripe's limit).
pub const IDEMPOTENCY_KEY_MAX: usize = 255;
/// How long a key is kept, from its first request; after it, the key may be used again.
pub const IDEMPOTENCY_KEY_KEPT: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// `IdempotencyKey::check`'s rule as a pattern, for the OpenAPI document (with the length).
pub const IDEMPOTENCY_KEY_PATTERN: &str = "^[ -~]+$";

/// A key as the caller sent it: 1 to 255 printable ASCII characters (0x20 to 0x7e).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The key, or a failure of `field` (the header's or the argument's name) in `errors`.
    pub fn check(errors: &mut FieldErrors, field: &str, raw: String) -> Option<IdempotencyKey> {
        let printable = raw.bytes().all(|b| (0x20..=0x7e).contains(&b));
        if raw.is_empty() || raw.len() > IDEMPOTENCY_KEY_MAX || !printable {
            errors.fail(
                field,
                format!(
                    "must be 1 to {IDEMPOTENCY_KEY_MAX} printable ASCII characters (0x20 to 0x7e)"
                ),
            );
            return None;
        }
        Some(IdempotencyKey(raw))
    }

    /// A key read back from a store, which only ever holds checked keys.
    pub fn stored(key: String) -> IdempotencyKey {
        IdempotencyKey(key)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Notify's command: the notification, and the caller's key for it when one was sent.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotentNotification {
    /// The key as sent, checked by `into_event`.
    pub key: Option<String>,
    /// Where the key came from, for the error that names it: `IDEMPOTENCY_KEY_HEADER` or
    /// `IDEMPOTENCY_KEY_ARGUMENT`.
    pub key_field: &'static str,
    pub notification: Notification,
}

/// A checked notify: its key and the fingerprint of its request (when keyed), and its event.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyCommand {
    pub key: Option<(IdempotencyKey, String)>,
    pub event: OutboxEvent,
}

impl IdempotentNotification {
    /// Checks the key and the notification together (every bad field in one 400).
    pub fn into_event(self, tenant_id: Uuid, now: DateTime<Utc>) -> Result<NotifyCommand> {
        let mut errors = FieldErrors::default();
        let key = self
            .key
            .and_then(|raw| IdempotencyKey::check(&mut errors, self.key_field, raw));
        let fingerprint = key.as_ref().map(|_| fingerprint(&self.notification));
        let event = self.notification.into_event_with(errors, tenant_id, now)?;
        Ok(NotifyCommand {
            key: key.zip(fingerprint),
            event,
        })
    }
}

/// What "the same request" means for a key: the same event, data and timestamp as parsed, not
/// the same bytes. SHA-256 (hex) of a canonical JSON text of the three: object keys sorted at
/// every depth (serde_json keeps insertion order in this build: utoipa enables its
/// `preserve_order`), no white space, numbers as serde_json writes them, the timestamp as the
/// payload will carry it (UTC, milliseconds; `null` when absent). So `{"a":1,"b":2}` and
/// `{ "b": 2, "a": 1 }` are the same request, and `1` and `1.0` are not.
pub fn fingerprint(notification: &Notification) -> String {
    let mut text = String::from("{\"data\":");
    canonical(&notification.data, &mut text);
    text.push_str(",\"event\":");
    text.push_str(&Value::from(notification.event.as_str()).to_string());
    text.push_str(",\"timestamp\":");
    match notification.occurred_at {
        Some(at) => text.push_str(&Value::from(rfc3339(at)).to_string()),
        None => text.push_str("null"),
    }
    text.push('}');
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (index, (name, value)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(name.as_str()).to_string());
                out.push(':');
                canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// A key's record: claimed by the first request (without `delivery_ids`), completed with its
/// answer. Until `expires_at` a request with the key answers from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub tenant_id: Uuid,
    pub key: IdempotencyKey,
    /// `fingerprint` of the first request.
    pub fingerprint: String,
    /// The first request's event: a request that finishes the work of one that died part-way
    /// writes the same event, so it creates the same deliveries.
    pub event_id: Uuid,
    /// The first request's answer, once it has one.
    pub delivery_ids: Option<Vec<Uuid>>,
    pub expires_at: DateTime<Utc>,
}

impl IdempotencyRecord {
    /// The record a first request claims, kept `IDEMPOTENCY_KEY_KEPT` from `now`.
    pub fn claim(
        tenant_id: Uuid,
        key: IdempotencyKey,
        fingerprint: String,
        event_id: Uuid,
        now: DateTime<Utc>,
    ) -> IdempotencyRecord {
        IdempotencyRecord {
            tenant_id,
            key,
            fingerprint,
            event_id,
            delivery_ids: None,
            expires_at: now + IDEMPOTENCY_KEY_KEPT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(raw: &str) -> Option<IdempotencyKey> {
        let mut errors = FieldErrors::default();
        let key = IdempotencyKey::check(&mut errors, IDEMPOTENCY_KEY_HEADER, raw.to_owned());
        assert_eq!(key.is_none(), errors.has_failed(IDEMPOTENCY_KEY_HEADER));
        key
    }

    #[test]
    fn a_key_is_1_to_255_printable_ascii_characters() {
        assert!(key("a").is_some());
        assert!(key(" order 42: ~!@#$%^&*()_+{}|<>?/\\'\"`=").is_some());
        assert!(key(&"k".repeat(255)).is_some());
        assert!(key("").is_none());
        assert!(key(&"k".repeat(256)).is_none());
        for bad in [
            "tab\there",
            "new\nline",
            "del\u{7f}",
            "\u{0}",
            "café",
            "zero\u{200b}width",
        ] {
            assert!(key(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn the_documents_pattern_is_the_rule() {
        let pattern = fancy_regex::Regex::new(IDEMPOTENCY_KEY_PATTERN).unwrap();
        for raw in [
            "a",
            " ~",
            "tab\there",
            "café",
            "\u{7f}",
            "x y",
            "",
            "new\nline",
        ] {
            assert_eq!(
                pattern.is_match(raw).unwrap(),
                key(raw).is_some(),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn a_bad_key_is_named_with_the_notifications_errors() {
        let command = IdempotentNotification {
            key: Some(String::new()),
            key_field: IDEMPOTENCY_KEY_ARGUMENT,
            notification: Notification {
                event: "no.such.event".to_owned(),
                data: Value::Null,
                occurred_at: None,
            },
        };
        let Err(crate::error::Error::Invalid { details, .. }) =
            command.into_event(Uuid::now_v7(), Utc::now())
        else {
            panic!("a bad key and event are invalid");
        };
        assert!(
            details.contains_key(IDEMPOTENCY_KEY_ARGUMENT),
            "{details:?}"
        );
        assert!(details.contains_key("event"), "{details:?}");
    }

    fn notification(data: Value, occurred_at: Option<&str>) -> Notification {
        Notification {
            event: "lead.created".to_owned(),
            data,
            occurred_at: occurred_at.map(|t| t.parse().unwrap()),
        }
    }

    #[test]
    fn the_fingerprint_is_of_the_parsed_request_not_its_bytes() {
        let a: Value =
            serde_json::from_str(r#"{"b": {"y": 1, "x": [2, {"q": 3, "p": 4}]}, "a": "A"}"#)
                .unwrap();
        let b: Value =
            serde_json::from_str(r#"{"a":"A","b":{"x":[2,{"p":4,"q":3}],"y":1}}"#).unwrap();
        assert_eq!(
            fingerprint(&notification(a.clone(), None)),
            fingerprint(&notification(b, None))
        );
        // The same instant written in another zone is the same timestamp.
        assert_eq!(
            fingerprint(&notification(a.clone(), Some("2026-12-02T12:00:00Z"))),
            fingerprint(&notification(a.clone(), Some("2026-12-02T13:00:00+01:00")))
        );
        let differs = [
            notification(json!({"a": "A"}), None),
            notification(a.clone(), Some("2026-12-02T12:00:00Z")),
            notification(json!(1), None),
            notification(json!(1.0), None),
            Notification {
                event: "lead.updated".to_owned(),
                ..notification(a.clone(), None)
            },
        ];
        let mut seen: Vec<String> = vec![fingerprint(&notification(a, None))];
        for other in &differs {
            let print = fingerprint(other);
            assert!(!seen.contains(&print), "{other:?}");
            seen.push(print);
        }
    }
}
