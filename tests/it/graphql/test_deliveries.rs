//! `testWebhook` against a real receiver that checks the signatures.

use common::domain::auth::Role;
use serde_json::{json, Value};

use super::{create, data, test_delivery};
use crate::receiver::{Receiver, Reply};
use crate::support::{Backend, TestApp};

crate::on_both_stores!(
    test_webhook_reaches_a_receiver_that_verifies_both_signatures,
    after_a_rotation_both_secrets_sign_the_test_delivery,
    a_failing_receiver_is_reported_not_an_error,
);

async fn test_webhook_reaches_a_receiver_that_verifies_both_signatures(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Manager).await;
    let receiver = Receiver::start(Reply::Status(204)).await;
    let (id, secret) = create(&app, &key, &receiver.url, &["client.*"]).await;
    receiver.expect_secrets(&[&secret]);
    let result = test_delivery(&app, &key, &id).await;
    assert_eq!(result["success"], true, "{result}");
    assert_eq!(result["statusCode"], 204);
    assert!(result["durationMs"].as_u64().is_some());
    let seen = receiver.seen();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].seed_signature_ok, "X-Webhook-Signature");
    assert!(seen[0].standard_signature_ok, "webhook-signature");
    assert_eq!(seen[0].header("x-webhook-event"), Some("webhook.test"));
    assert_eq!(
        seen[0].header("x-webhook-delivery"),
        result["deliveryId"].as_str()
    );
    let payload: Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(payload["event"], "webhook.test");
}

/// After a rotation both secrets sign, and the receiver checks each.
async fn after_a_rotation_both_secrets_sign_the_test_delivery(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Manager).await;
    let receiver = Receiver::start(Reply::Status(204)).await;
    let (id, secret) = create(&app, &key, &receiver.url, &["client.*"]).await;
    let rotated = data(
        &app,
        &key,
        "mutation R($id: ID!) { rotateWebhookSecret(id: $id) { secret } }",
        json!({"id": id}),
    )
    .await;
    let new_secret = rotated["rotateWebhookSecret"]["secret"].as_str().unwrap();
    receiver.expect_secrets(&[new_secret, &secret]);
    assert_eq!(test_delivery(&app, &key, &id).await["success"], true);
    let seen = receiver.seen();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].seed_signature_ok && seen[0].standard_signature_ok);
}

/// A failing receiver: reported, not an error.
async fn a_failing_receiver_is_reported_not_an_error(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Manager).await;
    let failing = Receiver::start(Reply::Status(503)).await;
    let (id, _) = create(&app, &key, &failing.url, &["client.*"]).await;
    let result = test_delivery(&app, &key, &id).await;
    assert_eq!(result["success"], false);
    assert_eq!(result["statusCode"], 503);
}
