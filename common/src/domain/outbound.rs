//! The HTTP request of one attempt: body, our headers and signatures, the webhook's own headers.

use chrono::{DateTime, Utc};
use std::time::Duration;

use super::delivery::Delivery;
use super::signature::{seed_signature, standard_signature};
use super::webhook::{SigningSecrets, Webhook};

/// One signed POST to a webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    pub url: String,
    /// Header names in lowercase; the sender adds nothing but `content-length`.
    pub headers: Vec<(String, String)>,
    /// The delivery's payload itself, not a copy.
    pub body: std::sync::Arc<str>,
    pub timeout: std::time::Duration,
}

pub const USER_AGENT: &str = concat!("crm-webhooks/", env!("CARGO_PKG_VERSION"));

/// Builds the signed request for the next attempt of `delivery`, signed with `secrets` (the
/// webhook's, opened). Our headers come last and replace any custom header of the same name
/// (validation already refuses such names).
pub fn signed_request(
    webhook: &Webhook,
    secrets: &SigningSecrets,
    delivery: &Delivery,
    now: DateTime<Utc>,
) -> OutboundRequest {
    let body = delivery.payload.as_bytes();
    let timestamp = now.timestamp();
    let webhook_id = delivery.event_id.to_string();
    let standard: Vec<String> = secrets
        .standard(now)
        .iter()
        .filter_map(|secret| standard_signature(secret, &webhook_id, timestamp, body))
        .collect();
    let mut ours = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("user-agent".to_owned(), USER_AGENT.to_owned()),
        (
            "x-webhook-signature".to_owned(),
            seed_signature(secrets.seed(now), body),
        ),
        ("x-webhook-event".to_owned(), delivery.event.clone()),
        ("x-webhook-delivery".to_owned(), delivery.id.to_string()),
        ("webhook-id".to_owned(), webhook_id),
        ("webhook-timestamp".to_owned(), timestamp.to_string()),
        ("webhook-signature".to_owned(), standard.join(" ")),
    ];
    if delivery.attempt_count > 0 {
        ours.push((
            "x-webhook-retry".to_owned(),
            delivery.attempt_count.to_string(),
        ));
    }
    let mut headers: Vec<(String, String)> = webhook
        .headers
        .iter()
        .filter(|(name, _)| !ours.iter().any(|(ours, _)| ours == *name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    headers.extend(ours);
    OutboundRequest {
        url: webhook.url.clone(),
        headers,
        body: std::sync::Arc::clone(&delivery.payload),
        timeout: Duration::from_millis(u64::from(webhook.timeout_ms)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::signature::{verify_seed_signature, verify_standard_signature};
    use crate::domain::webhook::{NewWebhook, TargetPolicy};
    use uuid::Uuid;

    fn header<'a>(request: &'a OutboundRequest, name: &str) -> Option<&'a str> {
        request
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn both_signatures_verify_and_retries_are_numbered() {
        let now = Utc::now();
        let policy = TargetPolicy {
            allow_http: true,
            allow_private: true,
        };
        let body = NewWebhook {
            url: "http://localhost:1/h".to_owned(),
            events: vec!["*".to_owned()],
            headers: vec![("X-Team".to_owned(), "crm".to_owned())],
            ..NewWebhook::default()
        };
        let webhook = Webhook::create(Uuid::now_v7(), body, policy, now).unwrap();
        let old = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned();
        let new = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".to_owned();
        let rotated = webhook.rotated(old.clone(), crate::domain::webhook::ROTATION_OVERLAP, now);
        let secrets = SigningSecrets {
            current: new.clone(),
            previous: Some((old.clone(), now + crate::domain::webhook::ROTATION_OVERLAP)),
        };
        let mut delivery = Delivery::new(
            webhook.tenant_id,
            webhook.id,
            Uuid::now_v7(),
            "client.created",
            r#"{"id":"x"}"#,
            now,
        );
        let first = signed_request(&rotated, &secrets, &delivery, now);
        assert_eq!(header(&first, "x-webhook-retry"), None);
        assert_eq!(header(&first, "x-team"), Some("crm"));
        let body = first.body.as_bytes();
        assert!(
            verify_seed_signature(&old, body, header(&first, "x-webhook-signature").unwrap()),
            "the seed signature stays on the old secret during the overlap"
        );
        let id = header(&first, "webhook-id").unwrap();
        let ts: i64 = header(&first, "webhook-timestamp")
            .unwrap()
            .parse()
            .unwrap();
        let signature = header(&first, "webhook-signature").unwrap();
        assert_eq!(
            signature.split(' ').count(),
            2,
            "both secrets sign during a rotation"
        );
        assert!(verify_standard_signature(&new, id, ts, body, signature));
        assert!(verify_standard_signature(&old, id, ts, body, signature));

        delivery.attempt_count = 2;
        let third = signed_request(&rotated, &secrets, &delivery, now);
        assert_eq!(header(&third, "x-webhook-retry"), Some("2"));
        assert_eq!(
            header(&third, "webhook-id"),
            Some(id),
            "stable across attempts"
        );
    }
}
