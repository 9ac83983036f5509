//! Every query over HTTP: each shows what REST shows for the same resource.

use common::domain::auth::Role;
use serde_json::{json, Value};

use super::{create_with_every_field, data, test_delivery, WEBHOOK_FIELDS};
use crate::receiver::{Receiver, Reply};
use crate::support::{Backend, TestApp};

crate::on_both_stores!(
    webhook_by_id_shows_the_created_fields_as_rest_does,
    webhooks_lists_the_one_webhook_on_one_page,
    webhook_events_is_the_rest_catalogue,
    a_test_delivery_shows_in_webhook_delivery_and_webhook_deliveries,
    webhook_stats_match_rest_tenant_wide_and_for_one_webhook,
    sync_status_is_the_rest_counters,
);

/// A tenant's admin key and a webhook with every field set to a receiver answering 200; returns
/// (app, key, receiver, id, secret).
async fn one_webhook(backend: Backend) -> (TestApp, String, Receiver, String, String) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let created = create_with_every_field(&app, &key, &receiver.url).await;
    let id = created["webhook"]["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    (app, key, receiver, id, secret)
}

/// A successful test delivery of `id`, signed with `secret`; returns its id.
async fn successful_test(
    app: &TestApp,
    key: &str,
    receiver: &Receiver,
    id: &str,
    secret: &str,
) -> String {
    receiver.expect_secrets(&[secret]);
    let test = test_delivery(app, key, id).await;
    assert_eq!(test["success"], true, "{test}");
    assert_eq!(test["statusCode"], 200);
    assert_eq!(test["error"], Value::Null);
    test["deliveryId"].as_str().unwrap().to_owned()
}

/// `webhook(id)`: the same fields as REST shows, never the secret.
async fn webhook_by_id_shows_the_created_fields_as_rest_does(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let created = create_with_every_field(&app, &key, &receiver.url).await;
    let webhook = &created["webhook"];
    let id = webhook["id"].as_str().unwrap().to_owned();
    let fetched = data(
        &app,
        &key,
        &format!("query W($id: ID!) {{ webhook(id: $id) {{ {WEBHOOK_FIELDS} }} }}"),
        json!({"id": id}),
    )
    .await["webhook"]
        .clone();
    assert_eq!(&fetched, webhook);
    let (_, rest) = app.get(&format!("/api/webhooks/{id}"), &key).await;
    assert_eq!(fetched["createdAt"], rest["createdAt"]);
    assert_eq!(fetched["url"], rest["url"]);
}

async fn webhooks_lists_the_one_webhook_on_one_page(backend: Backend) {
    let (app, key, _receiver, id, _) = one_webhook(backend).await;
    let listed = data(
        &app,
        &key,
        "{ webhooks { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }",
        json!({}),
    )
    .await;
    assert_eq!(listed["webhooks"]["edges"][0]["node"]["id"], id.as_str());
    assert_eq!(listed["webhooks"]["pageInfo"]["hasNextPage"], false);
}

async fn webhook_events_is_the_rest_catalogue(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let events = data(
        &app,
        &key,
        "{ webhookEvents { name description } }",
        json!({}),
    )
    .await;
    let (_, catalogue) = app.get("/api/webhooks/events", &key).await;
    assert_eq!(events["webhookEvents"], catalogue["events"]);
}

/// testWebhook → webhookDelivery → webhookDeliveries.
async fn a_test_delivery_shows_in_webhook_delivery_and_webhook_deliveries(backend: Backend) {
    let (app, key, receiver, id, secret) = one_webhook(backend).await;
    let delivery_id = successful_test(&app, &key, &receiver, &id, &secret).await;
    let delivery = data(
        &app,
        &key,
        "query D($id: ID!) { webhookDelivery(id: $id) {
            id webhookId eventId event status attemptCount lastStatusCode lastError nextAttemptAt
            createdAt updatedAt attempts { number at time statusCode durationMs error responseBody } } }",
        json!({"id": delivery_id}),
    )
    .await["webhookDelivery"]
        .clone();
    assert_eq!(delivery["id"], delivery_id.as_str());
    assert_eq!(delivery["webhookId"], id.as_str());
    assert_eq!(delivery["event"], "webhook.test");
    assert_eq!(delivery["status"], "SUCCESS");
    assert_eq!(delivery["attemptCount"], 1);
    assert_eq!(delivery["lastStatusCode"], 200);
    assert_eq!(delivery["nextAttemptAt"], Value::Null);
    assert_eq!(delivery["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(delivery["attempts"][0]["statusCode"], 200);
    assert_eq!(delivery["attempts"][0]["responseBody"], "thanks");
    assert!(delivery["attempts"][0]["at"].as_str().is_some());
    assert_eq!(
        delivery["attempts"][0]["time"], delivery["attempts"][0]["at"],
        "the deprecated name still answers"
    );
    let deliveries = data(
        &app,
        &key,
        "query L($id: ID!) {
            all: webhookDeliveries(webhookId: $id) { edges { node { id status attempts { statusCode } } } pageInfo { hasNextPage } }
            failed: webhookDeliveries(webhookId: $id, status: FAILED) { edges { node { id } } } }",
        json!({"id": id}),
    )
    .await;
    assert_eq!(
        deliveries["all"]["edges"][0]["node"]["id"],
        delivery_id.as_str()
    );
    assert_eq!(
        deliveries["all"]["edges"][0]["node"]["attempts"][0]["statusCode"],
        200
    );
    assert_eq!(deliveries["failed"]["edges"], json!([]));
}

/// `webhookStats`: the REST numbers, tenant-wide and for the one webhook.
async fn webhook_stats_match_rest_tenant_wide_and_for_one_webhook(backend: Backend) {
    let (app, key, receiver, id, secret) = one_webhook(backend).await;
    successful_test(&app, &key, &receiver, &id, &secret).await;
    let stats = data(
        &app,
        &key,
        "query S($id: ID) {
            all: webhookStats { webhookId total success failed pending retrying cancelled successRate webhooks { webhookId total success } }
            one: webhookStats(webhookId: $id) { webhookId total success successRate webhooks { total } } }",
        json!({"id": id}),
    )
    .await;
    let (_, rest_stats) = app.get("/api/webhooks/stats", &key).await;
    assert_eq!(stats["all"]["total"], rest_stats["total"]);
    assert_eq!(stats["all"]["success"], 1);
    assert_eq!(stats["all"]["successRate"], 1.0);
    assert_eq!(stats["all"]["webhookId"], Value::Null);
    assert_eq!(stats["all"]["webhooks"][0]["webhookId"], id.as_str());
    assert_eq!(stats["one"]["webhookId"], id.as_str());
    assert_eq!(stats["one"]["success"], 1);
    assert_eq!(stats["one"]["webhooks"], json!([]));
}

async fn sync_status_is_the_rest_counters(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    app.create_client(&key, "Ada").await;
    let sync = data(
        &app,
        &key,
        "{ syncStatus { totalClients syncedClients pendingClients failedClients needsUpdateClients lastSyncTime } }",
        json!({}),
    )
    .await;
    let (_, rest_sync) = app.get("/api/crm/sync-status", &key).await;
    assert_eq!(sync["syncStatus"], rest_sync);
}
