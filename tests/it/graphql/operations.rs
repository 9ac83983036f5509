//! Every query and mutation over HTTP, each field as REST shows it.

use serde_json::{json, Value};

use super::{data, gql, only_error, test_delivery};
use crate::receiver::{Receiver, Reply};
use crate::support::{Backend, TestApp};
use common::domain::auth::Role;

crate::on_both_stores!(every_query_and_mutation_over_http);

const WEBHOOK_FIELDS: &str = "id url description events headers { name value } active maxRetries \
                              timeoutMs createdAt updatedAt";

async fn every_query_and_mutation_over_http(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let receiver = Receiver::start(Reply::Status(200)).await;

    // createWebhook: the webhook and its secret, once.
    let created = data(
        &app,
        &key,
        &format!(
            "mutation C($input: CreateWebhookInput!) {{
                createWebhook(input: $input) {{ secret webhook {{ {WEBHOOK_FIELDS} }} }} }}"
        ),
        json!({"input": {
            "url": receiver.url,
            "events": ["client.created", "sync.*"],
            "description": "CRM mirror",
            "headers": [{"name": "X-Team", "value": "crm"}],
            "maxRetries": 5,
            "timeoutMs": 2000,
        }}),
    )
    .await["createWebhook"]
        .clone();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{created}");
    let webhook = &created["webhook"];
    let id = webhook["id"].as_str().unwrap().to_owned();
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

    // webhook(id): the same fields as REST shows, never the secret.
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

    // webhooks: one page with the one webhook.
    let listed = data(
        &app,
        &key,
        "{ webhooks { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }",
        json!({}),
    )
    .await;
    assert_eq!(listed["webhooks"]["edges"][0]["node"]["id"], id.as_str());
    assert_eq!(listed["webhooks"]["pageInfo"]["hasNextPage"], false);

    // updateWebhook: only what it names; a null description clears it.
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
    assert_eq!(updated["url"], receiver.url.as_str());

    // webhookEvents: REST's catalogue.
    let events = data(
        &app,
        &key,
        "{ webhookEvents { name description } }",
        json!({}),
    )
    .await;
    let (_, catalogue) = app.get("/api/webhooks/events", &key).await;
    assert_eq!(events["webhookEvents"], catalogue["events"]);

    // testWebhook → webhookDelivery → webhookDeliveries.
    receiver.expect_secrets(&[&secret]);
    let test = test_delivery(&app, &key, &id).await;
    assert_eq!(test["success"], true, "{test}");
    assert_eq!(test["statusCode"], 200);
    assert_eq!(test["error"], Value::Null);
    let delivery_id = test["deliveryId"].as_str().unwrap().to_owned();
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

    // webhookStats: the REST numbers, tenant-wide and for the one webhook.
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

    // syncStatus: REST's counters.
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

    // rotateWebhookSecret: a new secret, shown once; both sign during the overlap.
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
    assert_eq!(rotated["webhook"]["id"], id.as_str());

    // retryWebhookDeliveries: nothing FAILED yet.
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

    // deleteWebhook, then the webhook is NOT_FOUND.
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
    // A nullable field that fails is null, beside the fields that worked.
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
