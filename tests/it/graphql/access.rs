//! Who sees and changes what: the role × operation matrix, tenant isolation, masked headers.

use common::domain::auth::Role;
use lambda_http::http::StatusCode;
use serde_json::{json, Value};

use super::{create, data, error_codes, gql, only_error, test_delivery, CREATE};
use crate::receiver::{Receiver, Reply};
use crate::support::{Backend, TestApp};

crate::on_both_stores!(
    each_role_may_do_what_the_permission_table_says,
    another_tenant_sees_none_of_the_webhooks_or_deliveries,
    header_values_are_masked_for_keys_that_may_not_change_webhooks,
    a_manager_who_sends_the_masked_headers_back_keeps_the_value,
);

/// A failed delivery of `webhook`: a receiver answering 500 and a webhook without retries.
async fn failed_delivery(app: &TestApp, admin: &str, webhook: &str) -> String {
    let result = test_delivery(app, admin, webhook).await;
    assert_eq!(result["success"], false, "{result}");
    result["deliveryId"].as_str().unwrap().to_owned()
}

/// Which roles may run each operation, written out as users read the permission table: every
/// role reads webhooks, deliveries, the catalogue, stats and the sync status; only ADMIN and
/// MANAGER change webhooks, send tests and retry.
fn allowed(role: Role, operation: &str) -> bool {
    let reads = [
        "webhook",
        "webhooks",
        "webhookDeliveries",
        "deliveries",
        "webhookDelivery",
        "webhookEvents",
        "webhookStats",
        "syncStatus",
    ];
    reads.contains(&operation) || matches!(role, Role::Admin | Role::Manager)
}

async fn each_role_may_do_what_the_permission_table_says(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (tenant, admin) = app.tenant_with(Role::Admin).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (webhook, _) = create(&app, &admin, &receiver.url, &["lead.*"]).await;
    let delivery = test_delivery(&app, &admin, &webhook).await["deliveryId"]
        .as_str()
        .unwrap()
        .to_owned();
    let operations: Vec<(&str, String)> = vec![
        (
            "webhook",
            format!(r#"{{ webhook(id: "{webhook}") {{ id }} }}"#),
        ),
        ("webhooks", "{ webhooks { edges { node { id } } } }".into()),
        (
            "webhookDeliveries",
            format!(
                r#"{{ webhookDeliveries(webhookId: "{webhook}") {{ edges {{ node {{ id }} }} }} }}"#
            ),
        ),
        (
            "deliveries",
            format!(
                r#"{{ deliveries(filter: {{webhookId: "{webhook}"}}) {{ edges {{ node {{ id }} }} }} }}"#
            ),
        ),
        (
            "webhookDelivery",
            format!(
                r#"{{ webhookDelivery(id: "{delivery}") {{ id attempts {{ statusCode }} }} }}"#
            ),
        ),
        ("webhookEvents", "{ webhookEvents { name } }".into()),
        ("webhookStats", "{ webhookStats { total } }".into()),
        ("syncStatus", "{ syncStatus { totalClients } }".into()),
        (
            "createWebhook",
            format!(
                r#"mutation {{ createWebhook(input: {{url: "{}", events: ["lead.*"]}}) {{ secret }} }}"#,
                receiver.url
            ),
        ),
        (
            "updateWebhook",
            format!(
                r#"mutation {{ updateWebhook(id: "{webhook}", input: {{description: "x"}}) {{ webhook {{ id }} }} }}"#
            ),
        ),
        (
            "testWebhook",
            format!(r#"mutation {{ testWebhook(id: "{webhook}") {{ success }} }}"#),
        ),
        (
            "rotateWebhookSecret",
            format!(r#"mutation {{ rotateWebhookSecret(id: "{webhook}") {{ secret }} }}"#),
        ),
        (
            "retryWebhookDeliveries",
            "mutation { retryWebhookDeliveries { retriedCount } }".into(),
        ),
        // Last: it removes the webhook the others use (a fresh one per role).
        ("deleteWebhook", String::new()),
    ];
    for role in Role::ALL {
        let key = app.key_for(tenant, role).await;
        for (operation, query) in &operations {
            let query = if *operation == "deleteWebhook" {
                let (target, _) = create(&app, &admin, &receiver.url, &["lead.*"]).await;
                format!(r#"mutation {{ deleteWebhook(id: "{target}") {{ success }} }}"#)
            } else {
                query.clone()
            };
            let (status, body) = gql(&app, &key, &query, json!({})).await;
            assert_eq!(status, StatusCode::OK, "{role:?} {operation}: {body}");
            if allowed(role, operation) {
                assert!(body.get("errors").is_none(), "{role:?} {operation}: {body}");
                assert!(
                    !body["data"][operation].is_null(),
                    "{role:?} {operation}: {body}"
                );
            } else {
                assert_eq!(
                    error_codes(&body),
                    [("FORBIDDEN".to_owned(), None)],
                    "{role:?} {operation}: {body}"
                );
                let message = body["errors"][0]["message"].as_str().unwrap();
                assert!(message.contains("permission"), "{message}");
                assert!(
                    body["errors"][0]["extensions"]["permission"]
                        .as_str()
                        .is_some_and(|p| p.starts_with("WEBHOOK_")),
                    "{body}"
                );
                assert_eq!(body["data"], Value::Null, "{role:?} {operation}: {body}");
            }
        }
    }
}

async fn another_tenant_sees_none_of_the_webhooks_or_deliveries(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, first) = app.tenant_with(Role::Admin).await;
    let (_, second) = app.tenant_with(Role::Admin).await;
    let receiver = Receiver::start(Reply::Status(500)).await;
    let (webhook, _) = create(&app, &first, &receiver.url, &["*"]).await;
    data(
        &app,
        &first,
        "mutation U($id: ID!) { updateWebhook(id: $id, input: {maxRetries: 0}) { webhook { id } } }",
        json!({"id": webhook}),
    )
    .await;
    let delivery = failed_delivery(&app, &first, &webhook).await;

    let listed = data(
        &app,
        &second,
        "{ webhooks { edges { node { id } } } webhookStats { total webhooks { webhookId } } }",
        json!({}),
    )
    .await;
    assert_eq!(listed["webhooks"]["edges"], json!([]));
    assert_eq!(listed["webhookStats"]["total"], 0);
    assert_eq!(listed["webhookStats"]["webhooks"], json!([]));

    let by_id = [
        "query Q($id: ID!) { webhook(id: $id) { id } }",
        "query Q($id: ID!) { webhookDeliveries(webhookId: $id) { edges { node { id } } } }",
        "query Q($id: ID!) { webhookStats(webhookId: $id) { total } }",
        "mutation M($id: ID!) { updateWebhook(id: $id, input: {active: false}) { webhook { id } } }",
        "mutation M($id: ID!) { testWebhook(id: $id) { success } }",
        "mutation M($id: ID!) { rotateWebhookSecret(id: $id) { secret } }",
        "mutation M($id: ID!) { deleteWebhook(id: $id) { success } }",
        "mutation M($id: ID!) { retryWebhookDeliveries(webhookId: $id) { retriedCount } }",
    ];
    for query in by_id {
        only_error(&app, &second, query, json!({"id": webhook}), "NOT_FOUND").await;
    }
    only_error(
        &app,
        &second,
        "query Q($id: ID!) { webhookDelivery(id: $id) { id } }",
        json!({"id": delivery}),
        "NOT_FOUND",
    )
    .await;
    let retried = data(
        &app,
        &second,
        "mutation M($ids: [ID!]) { retryWebhookDeliveries(deliveryIds: $ids) { retriedCount } }",
        json!({"ids": [delivery]}),
    )
    .await;
    assert_eq!(retried["retryWebhookDeliveries"]["retriedCount"], 0);

    // Untouched for its owner, and still retryable by it.
    let owned = data(
        &app,
        &first,
        "query Q($id: ID!, $d: ID!) { webhook(id: $id) { active } webhookDelivery(id: $d) { status } }",
        json!({"id": webhook, "d": delivery}),
    )
    .await;
    assert_eq!(owned["webhook"]["active"], true);
    assert_eq!(owned["webhookDelivery"]["status"], "FAILED");
    let retried = data(
        &app,
        &first,
        "mutation M($ids: [ID!]) { retryWebhookDeliveries(deliveryIds: $ids) { retriedCount } }",
        json!({"ids": [delivery]}),
    )
    .await;
    assert_eq!(retried["retryWebhookDeliveries"]["retriedCount"], 1);
}

/// One webhook's headers.
const ONE: &str = "query W($id: ID!) { webhook(id: $id) { headers { name value } } }";

/// A webhook whose `Authorization` header carries the receiver's token; returns its id.
async fn webhook_with_a_token_header(app: &TestApp, admin: &str) -> Value {
    let created = data(
        app,
        admin,
        CREATE,
        json!({"input": {"url": "https://example.com/h", "events": ["*"],
            "headers": [{"name": "Authorization", "value": "Bearer receiver-token"}]}}),
    )
    .await;
    created["createWebhook"]["webhook"]["id"].clone()
}

async fn header_values_are_masked_for_keys_that_may_not_change_webhooks(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (tenant, admin) = app.tenant_with(Role::Admin).await;
    let id = webhook_with_a_token_header(&app, &admin).await;
    let list = "{ webhooks { edges { node { headers { name value } } } } }";
    let filtered =
        "{ webhooks(filter: {active: true}) { edges { node { headers { name value } } } } }";
    for role in Role::ALL {
        let key = app.key_for(tenant, role).await;
        let expected = if role.can(common::domain::auth::Permission::WebhookUpdate) {
            "Bearer receiver-token"
        } else {
            "********"
        };
        let shown = json!([{"name": "authorization", "value": expected}]);
        let got = data(&app, &key, ONE, json!({ "id": id })).await;
        assert_eq!(got["webhook"]["headers"], shown, "{role:?}");
        for query in [list, filtered] {
            let got = data(&app, &key, query, json!({})).await;
            assert_eq!(
                got["webhooks"]["edges"][0]["node"]["headers"], shown,
                "{role:?}"
            );
        }
    }
}

async fn a_manager_who_sends_the_masked_headers_back_keeps_the_value(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (tenant, admin) = app.tenant_with(Role::Admin).await;
    let id = webhook_with_a_token_header(&app, &admin).await;

    // A manager who sends the masked list back keeps the value.
    let manager = app.key_for(tenant, Role::Manager).await;
    data(
        &app,
        &manager,
        "mutation U($id: ID!) { updateWebhook(id: $id, input: {headers: [{name: \"authorization\", value: \"********\"}]}) { webhook { id } } }",
        json!({ "id": id }),
    )
    .await;
    let got = data(&app, &manager, ONE, json!({ "id": id })).await;
    assert_eq!(
        got["webhook"]["headers"][0]["value"],
        "Bearer receiver-token"
    );
}
