//! Secret rotation and test deliveries to a real receiver.

use std::collections::BTreeSet;

use common::domain::auth::Role;
use hmac::{Hmac, Mac};
use lambda_http::http::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;

use super::{create, id_of, keys_of, webhook};
use crate::receiver::{Receiver, Reply};
use crate::support::{Backend, TestApp};

crate::on_both_stores!(
    a_rotation_answers_a_new_secret_that_no_read_shows,
    a_test_delivery_after_a_rotation_is_signed_with_both_secrets,
    a_second_rotation_keeps_only_the_secret_it_replaces,
    a_failing_test_delivery_is_failed_and_never_retried,
);

/// Hex HMAC-SHA256 of the body keyed with the secret string, as a seed-era receiver computes it.
fn seed_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// A webhook to `receiver` whose secret was rotated once; returns (id, old secret, new secret).
async fn rotated_once(app: &TestApp, key: &str, receiver: &Receiver) -> (String, String, String) {
    let created = create(app, key, &webhook(&receiver.url, &["client.*"])).await;
    let id = id_of(&created);
    let old = created["secret"].as_str().unwrap().to_owned();
    let (status, rotated) = app
        .post(
            &format!("/api/webhooks/{id}/rotate-secret"),
            key,
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = rotated["secret"].as_str().expect("a new secret").to_owned();
    (id, old, new)
}

/// A rotation answers a new secret; a read shows neither the new one nor the old.
async fn a_rotation_answers_a_new_secret_that_no_read_shows(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let created = create(&app, &key, &webhook(&receiver.url, &["client.*"])).await;
    let id = id_of(&created);
    let old = created["secret"].as_str().unwrap().to_owned();

    let (status, rotated) = app
        .post(
            &format!("/api/webhooks/{id}/rotate-secret"),
            &key,
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = rotated["secret"].as_str().expect("a new secret").to_owned();
    assert!(new.starts_with("whsec_"));
    assert_ne!(new, old);
    assert_eq!(rotated["id"], created["id"]);
    let (_, fetched) = app.get(&format!("/api/webhooks/{id}"), &key).await;
    let text = fetched.to_string();
    assert!(
        !text.contains(&new[6..]) && !text.contains(&old[6..]),
        "{text}"
    );
}

/// During the overlap the test delivery is signed with both secrets, the seed signature with
/// the old one, and recorded as a delivery.
async fn a_test_delivery_after_a_rotation_is_signed_with_both_secrets(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (id, old, new) = rotated_once(&app, &key, &receiver).await;

    receiver.expect_secrets(&[&new, &old]);
    let (status, result) = app
        .post(&format!("/api/webhooks/{id}/test"), &key, &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(
        keys_of(&result),
        BTreeSet::from(["success", "statusCode", "durationMs", "error", "deliveryId"]),
        "{result}"
    );
    assert_eq!(result["success"], true, "{result}");
    assert_eq!(result["statusCode"], 200);
    assert_eq!(result["error"], Value::Null);
    assert!(result["durationMs"].is_u64(), "{result}");
    let delivery_id = result["deliveryId"].as_str().unwrap().to_owned();

    // The test is synchronous: the receiver has it by the time the answer comes back.
    let seen = receiver.seen();
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert!(request.seed_signature_ok, "seed signature");
    assert!(
        request.standard_signature_ok,
        "standard signature, both secrets"
    );
    assert_eq!(
        request.header("x-webhook-signature"),
        Some(seed_signature(&old, &request.body).as_str()),
        "the seed signature stays on the old secret during the overlap, for seed-era receivers"
    );
    assert_eq!(request.header("x-webhook-event"), Some("webhook.test"));
    assert_eq!(
        request.header("x-webhook-delivery"),
        Some(delivery_id.as_str())
    );
    assert_eq!(request.header("x-webhook-retry"), None);
    let payload: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(payload["event"], "webhook.test");
    assert_eq!(request.header("webhook-id"), payload["id"].as_str());

    let (status, delivery) = app
        .get(&format!("/api/webhooks/deliveries/{delivery_id}"), &key)
        .await;
    assert_eq!(status, StatusCode::OK, "{delivery}");
    assert_eq!(delivery["id"], json!(delivery_id));
    assert_eq!(delivery["webhookId"], json!(id));
    assert_eq!(delivery["status"], "SUCCESS");
    assert_eq!(delivery["event"], "webhook.test");
    assert_eq!(delivery["attemptCount"], 1);
    let attempts = delivery["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 1, "{delivery}");
    assert_eq!(attempts[0]["statusCode"], 200);
    assert_eq!(attempts[0]["number"], 1);
    assert_eq!(attempts[0]["error"], Value::Null);
}

async fn a_second_rotation_keeps_only_the_secret_it_replaces(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (id, old, new) = rotated_once(&app, &key, &receiver).await;

    // A second rotation keeps only the secret it replaces: the first one no longer signs.
    let (status, again) = app
        .post(
            &format!("/api/webhooks/{id}/rotate-secret"),
            &key,
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    let newest = again["secret"].as_str().unwrap().to_owned();
    assert!(newest != new && newest != old);
    receiver.expect_secrets(&[&newest, &new]);
    let (_, result) = app
        .post(&format!("/api/webhooks/{id}/test"), &key, &json!({}))
        .await;
    assert_eq!(result["success"], true, "{result}");
    let request = receiver.seen().pop().unwrap();
    assert!(request.standard_signature_ok, "newest and previous secrets");
    assert_eq!(
        request.header("x-webhook-signature"),
        Some(seed_signature(&new, &request.body).as_str()),
        "the seed signature is on the secret the last rotation replaced"
    );
    let signatures = request.header("webhook-signature").unwrap().to_owned();
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    receiver.expect_secrets(&[&old]);
    app.post(&format!("/api/webhooks/{id}/test"), &key, &json!({}))
        .await;
    let request = receiver.seen().pop().unwrap();
    assert!(
        !request.standard_signature_ok && !request.seed_signature_ok,
        "the first secret was rotated out twice"
    );
}

async fn a_failing_test_delivery_is_failed_and_never_retried(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let receiver = Receiver::start(Reply::Status(500)).await;
    let created = create(&app, &key, &webhook(&receiver.url, &["*"])).await;
    let id = id_of(&created);
    assert_eq!(created["maxRetries"], 3, "the webhook itself would retry");

    let (status, result) = app
        .post(&format!("/api/webhooks/{id}/test"), &key, &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["success"], false, "{result}");
    assert_eq!(result["statusCode"], 500);
    let delivery_id = result["deliveryId"].as_str().unwrap().to_owned();
    assert_eq!(receiver.seen().len(), 1);

    let (status, delivery) = app
        .get(&format!("/api/webhooks/deliveries/{delivery_id}"), &key)
        .await;
    assert_eq!(status, StatusCode::OK, "{delivery}");
    assert_eq!(delivery["status"], "FAILED", "{delivery}");
    assert_eq!(delivery["nextAttemptAt"], Value::Null, "{delivery}");
    assert_eq!(delivery["lastStatusCode"], 500);
    let attempts = delivery["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 1, "{delivery}");
    assert_eq!(attempts[0]["statusCode"], 500);

    // A test to an unreachable endpoint answers too, with the transport error.
    let closed = create(&app, &key, &webhook("http://127.0.0.1:9/hook", &["*"])).await;
    let (status, result) = app
        .post(
            &format!("/api/webhooks/{}/test", id_of(&closed)),
            &key,
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["success"], false);
    assert_eq!(result["statusCode"], Value::Null);
    assert!(
        result["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{result}"
    );
}
