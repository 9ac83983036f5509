//! Every mutation over HTTP: what each changes, and what it answers.

use common::domain::auth::Role;
use serde_json::{json, Value};

use super::{create_with_every_field, data, gql, only_error, test_delivery};
use crate::receiver::{Receiver, Reply};
use crate::support::{Backend, TestApp};

crate::on_both_stores!(
    create_webhook_answers_every_field_and_the_secret_once,
    update_webhook_changes_only_what_it_names,
    rotate_webhook_secret_answers_a_new_secret,
    retry_webhook_deliveries_with_none_failed_retries_none,
    a_deleted_webhook_is_not_found_and_null_beside_the_fields_that_work,
);

/// A tenant's admin key and a webhook with every field set to `url`; returns (app, key, id).
async fn one_webhook(backend: Backend, url: &str) -> (TestApp, String, String) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let created = create_with_every_field(&app, &key, url).await;
    let id = created["webhook"]["id"].as_str().unwrap().to_owned();
    (app, key, id)
}

/// `createWebhook`: the webhook and its secret, once.
async fn create_webhook_answers_every_field_and_the_secret_once(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let created = create_with_every_field(&app, &key, &receiver.url).await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{created}");
    let webhook = &created["webhook"];
    assert_eq!(webhook["url"], receiver.url.as_str());
    assert_eq!(webhook["events"], json!(["client.created", "sync.*"]));
    assert_eq!(
        webhook["headers"],
        json!([{"name": "x-team", "value": "crm"}])
    );
    assert_eq!(webhook["description"], "CRM mirror");
    assert_eq!(webhook["active"], true);
    assert_eq!(webhook["maxRetries"], 5);
    assert_eq!(webhook["timeoutMs"], 2000);
    assert!(webhook["createdAt"].as_str().unwrap().ends_with('Z'));
    assert!(!webhook.to_string().contains(&secret));
}

/// `updateWebhook`: only what it names; a null description clears it.
async fn update_webhook_changes_only_what_it_names(backend: Backend) {
    let url = "https://example.com/hook";
    let (app, key, id) = one_webhook(backend, url).await;
    let updated = data(
        &app,
        &key,
        "mutation U($id: ID!, $input: UpdateWebhookInput!) {
            updateWebhook(id: $id, input: $input) { webhook { id description events maxRetries url } } }",
        json!({"id": id, "input": {"description": null, "events": ["*"], "maxRetries": 2}}),
    )
    .await["updateWebhook"]["webhook"]
        .clone();
    assert_eq!(updated["description"], Value::Null);
    assert_eq!(updated["events"], json!(["*"]));
    assert_eq!(updated["maxRetries"], 2);
    assert_eq!(updated["url"], url);
}

/// `rotateWebhookSecret`: a new secret, shown once.
async fn rotate_webhook_secret_answers_a_new_secret(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let created = create_with_every_field(&app, &key, "https://example.com/hook").await;
    let id = created["webhook"]["id"].as_str().unwrap();
    let secret = created["secret"].as_str().unwrap();
    let rotated = data(
        &app,
        &key,
        "mutation R($id: ID!) { rotateWebhookSecret(id: $id) { secret webhook { id } } }",
        json!({"id": id}),
    )
    .await["rotateWebhookSecret"]
        .clone();
    let new_secret = rotated["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    assert_eq!(rotated["webhook"]["id"], id);
}

/// `retryWebhookDeliveries` after a successful delivery: nothing FAILED, nothing retried.
async fn retry_webhook_deliveries_with_none_failed_retries_none(backend: Backend) {
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (app, key, id) = one_webhook(backend, &receiver.url).await;
    assert_eq!(test_delivery(&app, &key, &id).await["success"], true);
    let retried = data(
        &app,
        &key,
        "mutation { retryWebhookDeliveries { success retriedCount } }",
        json!({}),
    )
    .await;
    assert_eq!(
        retried["retryWebhookDeliveries"],
        json!({"success": true, "retriedCount": 0})
    );
}

/// `deleteWebhook`, then the webhook is NOT_FOUND; a nullable field that fails is null, beside
/// the fields that worked.
async fn a_deleted_webhook_is_not_found_and_null_beside_the_fields_that_work(backend: Backend) {
    let (app, key, id) = one_webhook(backend, "https://example.com/hook").await;
    let deleted = data(
        &app,
        &key,
        "mutation X($id: ID!) { deleteWebhook(id: $id) { success deletedId } }",
        json!({"id": id}),
    )
    .await;
    assert_eq!(
        deleted["deleteWebhook"],
        json!({"success": true, "deletedId": id})
    );
    let error = only_error(
        &app,
        &key,
        "query W($id: ID!) { webhook(id: $id) { id } }",
        json!({"id": id}),
        "NOT_FOUND",
    )
    .await;
    assert_eq!(error["message"], "Webhook not found.");
    assert_eq!(error["path"], json!(["webhook"]));
    let (_, body) = gql(
        &app,
        &key,
        "query W($id: ID!) { webhook(id: $id) { id } webhookEvents { name } }",
        json!({"id": id}),
    )
    .await;
    assert_eq!(body["data"]["webhook"], Value::Null, "{body}");
    assert!(body["data"].get("webhook").is_some(), "{body}");
    assert!(body["data"]["webhookEvents"].is_array(), "{body}");
}
