//! `POST /graphql` over real `lambda_http` requests, on both stores: every query and mutation,
//! the role × operation matrix, tenant isolation, pagination, a signed test delivery to a real
//! receiver, validation errors, limits, and the SDL kept in `infra/schema.graphql`.

use std::time::Duration;

use common::domain::auth::{Caller, Role};
use common::graphql::limits::TimeBudgets;
use lambda_http::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::receiver::{Receiver, Reply};
use crate::support::{assert_error, Backend, TestApp};

crate::on_both_stores!(
    every_query_and_mutation_over_http,
    each_role_may_do_what_the_permission_table_says,
    another_tenant_sees_none_of_the_webhooks_or_deliveries,
    pagination_walks_25_webhooks_ten_at_a_time_once_each,
    filters_narrow_the_webhook_list,
    test_webhook_reaches_a_receiver_that_verifies_both_signatures,
    invalid_input_is_bad_user_input_naming_the_field,
    deep_huge_batched_and_malformed_requests_are_refused,
    root_fields_are_bounded_in_all_and_per_field,
    a_filtered_list_looks_at_one_store_page_and_pays_for_it,
    a_tenant_over_its_share_waits_then_gets_429_while_others_are_served,
    a_request_past_its_time_budget_is_stopped_with_timeout,
    header_values_are_masked_for_keys_that_may_not_change_webhooks,
);

const WEBHOOK_FIELDS: &str = "id url description events headers { name value } active maxRetries \
                              timeoutMs createdAt updatedAt";

/// Posts one GraphQL request; returns the HTTP status and the JSON body.
async fn gql(app: &TestApp, key: &str, query: &str, variables: Value) -> (StatusCode, Value) {
    let body = json!({"query": query, "variables": variables}).to_string();
    app.call(Method::POST, "/graphql", Some(key), Some(&body))
        .await
}

/// A request that must succeed: 200, no errors; returns `data`.
async fn data(app: &TestApp, key: &str, query: &str, variables: Value) -> Value {
    let (status, body) = gql(app, key, query, variables).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    assert!(body.get("errors").is_none(), "{query}: {body}");
    body["data"].clone()
}

/// The `(code, field)` of each error of a response.
fn error_codes(body: &Value) -> Vec<(String, Option<String>)> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|error| {
                    let extensions = &error["extensions"];
                    (
                        extensions["code"].as_str().unwrap_or("").to_owned(),
                        extensions["field"].as_str().map(str::to_owned),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A 200 whose only error has `code`; returns the error.
async fn only_error(app: &TestApp, key: &str, query: &str, variables: Value, code: &str) -> Value {
    let (status, body) = gql(app, key, query, variables).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{query}: {body}");
    assert_eq!(errors[0]["extensions"]["code"], code, "{query}: {body}");
    assert!(
        errors[0]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    errors[0].clone()
}

const CREATE: &str = "mutation Create($input: CreateWebhookInput!) {
    createWebhook(input: $input) { secret webhook { id url events active } } }";

/// Creates a webhook over GraphQL; returns (id, secret).
async fn create(app: &TestApp, key: &str, url: &str, events: &[&str]) -> (String, String) {
    let created = data(
        app,
        key,
        CREATE,
        json!({"input": {"url": url, "events": events}}),
    )
    .await;
    let payload = &created["createWebhook"];
    (
        payload["webhook"]["id"].as_str().expect("an id").to_owned(),
        payload["secret"].as_str().expect("a secret").to_owned(),
    )
}

async fn test_delivery(app: &TestApp, key: &str, webhook: &str) -> Value {
    data(
        app,
        key,
        "mutation T($id: ID!) { testWebhook(id: $id) { success statusCode durationMs error deliveryId } }",
        json!({"id": webhook}),
    )
    .await["testWebhook"]
        .clone()
}

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

const PAGE: &str = "query P($first: Int, $after: String, $filter: WebhookFilter) {
    webhooks(first: $first, after: $after, filter: $filter) {
        edges { cursor node { id active events } }
        pageInfo { hasNextPage endCursor hasPreviousPage startCursor } } }";

/// Walks every page of `filter` with `first`; returns the ids in order and the page sizes.
async fn walk(app: &TestApp, key: &str, first: i32, filter: Value) -> (Vec<String>, Vec<usize>) {
    let mut ids = Vec::new();
    let mut sizes = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = data(
            app,
            key,
            PAGE,
            json!({"first": first, "after": after, "filter": filter}),
        )
        .await["webhooks"]
            .clone();
        let edges = page["edges"].as_array().unwrap();
        sizes.push(edges.len());
        for edge in edges {
            ids.push(edge["node"]["id"].as_str().unwrap().to_owned());
        }
        let info = &page["pageInfo"];
        assert_eq!(info["hasPreviousPage"], !after.is_null());
        if let Some(last) = edges.last() {
            assert_eq!(info["endCursor"], last["cursor"]);
            assert_eq!(info["startCursor"], edges[0]["cursor"]);
        }
        if info["hasNextPage"] == false {
            return (ids, sizes);
        }
        after = info["endCursor"].clone();
        assert!(sizes.len() < 100, "the walk does not end");
    }
}

async fn pagination_walks_25_webhooks_ten_at_a_time_once_each(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let mut created = Vec::new();
    for n in 0..25 {
        let (id, _) = create(
            &app,
            &key,
            &format!("https://example.com/hooks/{n}"),
            &["client.*"],
        )
        .await;
        created.push(id);
    }
    let (ids, sizes) = walk(&app, &key, 10, Value::Null).await;
    assert_eq!(sizes, [10, 10, 5]);
    assert_eq!(ids, created, "each once, in creation order");

    // Cursors are stable: the same `after` gives the same page, and any edge's cursor resumes
    // right after it.
    let first_page = data(&app, &key, PAGE, json!({"first": 10})).await["webhooks"].clone();
    let cursor = first_page["pageInfo"]["endCursor"].clone();
    let again = data(&app, &key, PAGE, json!({"first": 10, "after": cursor})).await;
    let once_more = data(&app, &key, PAGE, json!({"first": 10, "after": cursor})).await;
    assert_eq!(again, once_more);
    assert_eq!(
        again["webhooks"]["edges"][0]["node"]["id"],
        created[10].as_str()
    );
    let third_cursor = first_page["edges"][2]["cursor"].clone();
    let resumed = data(&app, &key, PAGE, json!({"first": 1, "after": third_cursor})).await;
    assert_eq!(
        resumed["webhooks"]["edges"][0]["node"]["id"],
        created[3].as_str()
    );

    // `first` is capped at 100, and defaults to a page that holds all 25.
    let capped = data(&app, &key, PAGE, json!({"first": 1000})).await;
    assert_eq!(capped["webhooks"]["edges"].as_array().unwrap().len(), 25);
    let default = data(&app, &key, PAGE, json!({})).await;
    assert_eq!(default["webhooks"]["edges"].as_array().unwrap().len(), 25);
}

async fn filters_narrow_the_webhook_list(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    // n % 3: 0 → `lead.*`, 1 → `lead.created` and `client.deleted`, 2 → `sync.status.changed`;
    // n % 4 == 0 → deactivated. So 0, 4 and 8 are inactive.
    let mut ids = Vec::new();
    for n in 0..12 {
        let events: &[&str] = match n % 3 {
            0 => &["lead.*"],
            1 => &["lead.created", "client.deleted"],
            _ => &["sync.status.changed"],
        };
        let (id, _) = create(&app, &key, &format!("https://example.com/{n}"), events).await;
        if n % 4 == 0 {
            data(
                &app,
                &key,
                "mutation U($id: ID!) { updateWebhook(id: $id, input: {active: false}) { webhook { id } } }",
                json!({"id": id}),
            )
            .await;
        }
        ids.push(id);
    }
    let pick = |ns: &[usize]| -> Vec<String> { ns.iter().map(|&n| ids[n].clone()).collect() };
    for (first, filter, expected) in [
        (
            3,
            json!({"event": "lead.created"}),
            pick(&[0, 1, 3, 4, 6, 7, 9, 10]),
        ),
        (2, json!({"active": false}), pick(&[0, 4, 8])),
        (
            5,
            json!({"active": true, "event": "lead.converted"}),
            pick(&[3, 6, 9]),
        ),
        (
            4,
            json!({"event": "lead.*"}),
            pick(&[0, 1, 3, 4, 6, 7, 9, 10]),
        ),
        (10, json!({"event": "sync.*"}), pick(&[2, 5, 8, 11])),
        (10, json!({"event": "*"}), ids.clone()),
        (
            10,
            json!({"event": "client.deleted", "active": true}),
            pick(&[1, 7, 10]),
        ),
        (10, json!({"event": "account.deleted"}), Vec::new()),
    ] {
        let (found, _) = walk(&app, &key, first, filter.clone()).await;
        assert_eq!(found, expected, "{filter}");
    }
}

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

    // After a rotation both secrets sign, and the receiver checks each.
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
    assert!(seen[1].seed_signature_ok && seen[1].standard_signature_ok);

    // A failing receiver: reported, not an error.
    let failing = Receiver::start(Reply::Status(503)).await;
    let (id, _) = create(&app, &key, &failing.url, &["client.*"]).await;
    let result = test_delivery(&app, &key, &id).await;
    assert_eq!(result["success"], false);
    assert_eq!(result["statusCode"], 503);
}

/// The GraphQL errors of a request, as `field → message`, all BAD_USER_INPUT.
async fn field_errors(
    app: &TestApp,
    key: &str,
    query: &str,
    variables: Value,
) -> Vec<(String, String)> {
    let (status, body) = gql(app, key, query, variables).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let errors = body["errors"].as_array().expect("errors");
    errors
        .iter()
        .map(|error| {
            assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{body}");
            (
                error["extensions"]["field"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no field: {body}"))
                    .to_owned(),
                error["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn invalid_input_is_bad_user_input_naming_the_field(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    // The same input over REST and GraphQL: the same fields, the same messages.
    let input = json!({
        "url": "ftp://example.com/hook",
        "events": ["client.exploded"],
        "headers": [{"name": "X-Webhook-Signature", "value": "forged"}],
        "maxRetries": 11,
        "timeoutMs": 50,
    });
    let errors = field_errors(&app, &key, CREATE, json!({"input": input})).await;
    let (status, rest) = app
        .post(
            "/api/webhooks",
            &key,
            &json!({
                "url": "ftp://example.com/hook",
                "events": ["client.exploded"],
                "headers": {"X-Webhook-Signature": "forged"},
                "maxRetries": 11,
                "timeoutMs": 50,
            }),
        )
        .await;
    assert_error(status, &rest, StatusCode::BAD_REQUEST);
    let details = rest["details"].as_object().unwrap();
    let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        details.keys().map(String::as_str).collect::<Vec<_>>()
    );
    for (field, message) in &errors {
        assert_eq!(
            *message,
            format!("{field}: {}", details[field].as_str().unwrap())
        );
    }

    let (id, _) = create(&app, &key, "https://example.com/h", &["*"]).await;
    let cases: Vec<(&str, Value, &[&str])> = vec![
        (
            "mutation U($id: ID!, $input: UpdateWebhookInput!) { updateWebhook(id: $id, input: $input) { webhook { id } } }",
            json!({"id": id, "input": {"url": null, "events": [], "timeoutMs": 40000}}),
            &["events", "timeoutMs", "url"],
        ),
        (
            "mutation U($id: ID!, $input: UpdateWebhookInput!) { updateWebhook(id: $id, input: $input) { webhook { id } } }",
            json!({"id": "not-a-uuid", "input": {}}),
            &["id"],
        ),
        (
            CREATE,
            json!({"input": {"url": "https://example.com/x", "events": ["*"],
                   "headers": [{"name": "X-A", "value": "1"}, {"name": "X-A", "value": "2"}]}}),
            &["headers"],
        ),
        (
            CREATE,
            json!({"input": {"url": "https://example.com/x", "events": ["*"], "secret": "plain"}}),
            &["secret"],
        ),
        ("query Q($id: ID!) { webhook(id: $id) { id } }", json!({"id": "42"}), &["id"]),
        (PAGE, json!({"first": 0}), &["first"]),
        (PAGE, json!({"after": "not a cursor"}), &["after"]),
        (PAGE, json!({"filter": {"event": "nope.*"}}), &["event"]),
        (
            "mutation { retryWebhookDeliveries(deliveryIds: [\"x\"]) { retriedCount } }",
            json!({}),
            &["deliveryIds"],
        ),
        (
            "mutation { retryWebhookDeliveries(webhookId: \"x\") { retriedCount } }",
            json!({}),
            &["webhookId"],
        ),
    ];
    for (query, variables, expected) in cases {
        let errors = field_errors(&app, &key, query, variables.clone()).await;
        let mut fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(fields, expected, "{variables}");
    }
    // Nothing was created or changed by the refused requests.
    let listed = data(&app, &key, PAGE, json!({})).await;
    assert_eq!(listed["webhooks"]["edges"].as_array().unwrap().len(), 1);
    assert_eq!(
        listed["webhooks"]["edges"][0]["node"]["events"],
        json!(["*"])
    );
}

/// graphql-js's introspection query (what GraphiQL and most tools send), as deep as it goes.
const INTROSPECTION: &str = r"
query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) {
    name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
}";

async fn deep_huge_batched_and_malformed_requests_are_refused(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;

    // The tools' introspection passes the limits.
    let schema = data(&app, &key, INTROSPECTION, json!({})).await;
    assert_eq!(schema["__schema"]["queryType"]["name"], "Query");

    // Too deep.
    let deep = format!(
        "{{ __schema {{ types {{ fields {{ type {} name {} }} }} }} }}",
        "{ ofType ".repeat(20),
        "}".repeat(20)
    );
    let error = only_error(&app, &key, &deep, json!({}), "GRAPHQL_VALIDATION_FAILED").await;
    assert!(
        error["message"].as_str().unwrap().contains("deep"),
        "{error}"
    );

    // Too costly: many aliases of full pages.
    let huge: String = (0..20)
        .map(|n| format!("a{n}: webhooks(first: 100) {{ edges {{ node {{ id url events }} }} }} "))
        .collect();
    let error = only_error(
        &app,
        &key,
        &format!("{{ {huge} }}"),
        json!({}),
        "GRAPHQL_VALIDATION_FAILED",
    )
    .await;
    assert!(
        error["message"].as_str().unwrap().contains("complex"),
        "{error}"
    );

    // One request cannot pack many writes or outbound calls: six test deliveries are too many.
    let unknown = uuid::Uuid::now_v7();
    let tests: String = (0..6)
        .map(|n| format!(r#"t{n}: testWebhook(id: "{unknown}") {{ success }} "#))
        .collect();
    let error = only_error(
        &app,
        &key,
        &format!("mutation {{ {tests} }}"),
        json!({}),
        "GRAPHQL_VALIDATION_FAILED",
    )
    .await;
    assert!(
        error["message"].as_str().unwrap().contains("complex"),
        "{error}"
    );

    // Over 256 KiB: the REST 413, before any parsing.
    let padding = " ".repeat(256 * 1024);
    let body =
        json!({"query": format!("{{ syncStatus {{ totalClients }} }}{padding}")}).to_string();
    let (status, reply) = app
        .call(Method::POST, "/graphql", Some(&key), Some(&body))
        .await;
    assert_error(status, &reply, StatusCode::PAYLOAD_TOO_LARGE);

    // Batches, bodies that are not one request, and documents that do not parse.
    for body in [
        r#"[{"query": "{ syncStatus { totalClients } }"}]"#,
        "[]",
        "",
        "{",
        "\"{ syncStatus { totalClients } }\"",
        r#"{"variables": {}}"#,
        r#"{"query": 42}"#,
        r#"{"query": "{ webhooks { edges { node { id } } } }", "variables": [1]}"#,
    ] {
        let (status, reply) = app
            .call(Method::POST, "/graphql", Some(&key), Some(body))
            .await;
        assert_error(status, &reply, StatusCode::BAD_REQUEST);
    }
    for query in [
        "{",
        "{ nope }",
        "mutation { deleteWebhook { success } }",
        "{ webhooks(first: 99999999999) { edges { cursor } } }",
        "query A { syncStatus { totalClients } } query B { webhookEvents { name } }",
    ] {
        let (status, reply) = gql(&app, &key, query, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{query}: {reply}");
        assert!(
            error_codes(&reply)
                .iter()
                .all(|(code, _)| code == "GRAPHQL_VALIDATION_FAILED"),
            "{query}: {reply}"
        );
        assert!(!error_codes(&reply).is_empty(), "{query}: {reply}");
    }
    // Several operations in one document: one is chosen by name.
    let (_, reply) = app
        .call(
            Method::POST,
            "/graphql",
            Some(&key),
            Some(
                &json!({
                    "query": "query A { syncStatus { totalClients } } query B { webhookEvents { name } }",
                    "operationName": "B"
                })
                .to_string(),
            ),
        )
        .await;
    assert!(reply["data"]["webhookEvents"].is_array(), "{reply}");

    // No key, or a bad one: REST's 401 envelope.
    for key in [None, Some("crm_not-a-key")] {
        let (status, reply) = app
            .call(
                Method::POST,
                "/graphql",
                key,
                Some(r#"{"query": "{ webhookEvents { name } }"}"#),
            )
            .await;
        assert_error(status, &reply, StatusCode::UNAUTHORIZED);
    }
}

/// `n` aliases `a0`, `a1`, … of `field`.
fn aliases(field: &str, n: usize) -> String {
    named_aliases("a", field, n)
}

/// `n` aliases `<prefix>0`, `<prefix>1`, … of `field`.
fn named_aliases(prefix: &str, field: &str, n: usize) -> String {
    (0..n).map(|i| format!("{prefix}{i}: {field} ")).collect()
}

async fn root_fields_are_bounded_in_all_and_per_field(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::ReadOnly).await;
    let sync = "syncStatus { totalClients }";

    let twenty = data(
        &app,
        &key,
        &format!("{{ {} }}", aliases(sync, 20)),
        json!({}),
    )
    .await;
    assert_eq!(twenty.as_object().unwrap().len(), 20);
    let error = only_error(
        &app,
        &key,
        &format!("{{ {} }}", aliases(sync, 21)),
        json!({}),
        "GRAPHQL_VALIDATION_FAILED",
    )
    .await;
    assert!(
        error["message"].as_str().unwrap().contains("`syncStatus`"),
        "{error}"
    );

    // The report's documents: 1,600 filtered lists, 2,400 `syncStatus`.
    let filtered = r#"webhooks(first: 1, filter: {event: "lead.created"}) { edges { cursor } }"#;
    for (field, n) in [(filtered, 1600), (sync, 2400)] {
        let document = format!("{{ {} }}", aliases(field, n));
        only_error(
            &app,
            &key,
            &document,
            json!({}),
            "GRAPHQL_VALIDATION_FAILED",
        )
        .await;
    }

    // Fifty in all run; one more is refused, and so are repeats through fragments.
    let fifty = format!(
        "{} {} {}",
        aliases(sync, 20),
        named_aliases("e", "webhookEvents { name }", 20),
        named_aliases("t", "webhookStats { total }", 10),
    );
    data(&app, &key, &format!("{{ {fifty} }}"), json!({})).await;
    let error = only_error(
        &app,
        &key,
        &format!("{{ {fifty} __typename }}"),
        json!({}),
        "GRAPHQL_VALIDATION_FAILED",
    )
    .await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("50 root fields"),
        "{error}"
    );
    let spread = format!(
        "query {{ ...F ...F ...F }} fragment F on Query {{ {} }}",
        aliases(sync, 7)
    );
    only_error(&app, &key, &spread, json!({}), "GRAPHQL_VALIDATION_FAILED").await;
}

async fn a_filtered_list_looks_at_one_store_page_and_pays_for_it(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    // 120 webhooks; only the last receives `lead.created`.
    let mut last = String::new();
    for n in 0..120 {
        let events = if n == 119 {
            "lead.created"
        } else {
            "client.created"
        };
        let (status, created) = app
            .post(
                "/api/webhooks",
                &key,
                &json!({"url": format!("https://example.com/{n}"), "events": [events]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        last = created["id"].as_str().unwrap().to_owned();
    }
    // The first page looks at 100, finds none, and says where the next look starts.
    let first = data(
        &app,
        &key,
        PAGE,
        json!({"first": 10, "filter": {"event": "lead.created"}}),
    )
    .await["webhooks"]
        .clone();
    assert_eq!(first["edges"], json!([]), "{first}");
    assert_eq!(first["pageInfo"]["hasNextPage"], true, "{first}");
    assert!(first["pageInfo"]["endCursor"].is_string(), "{first}");
    let (ids, sizes) = walk(&app, &key, 10, json!({"event": "lead.created"})).await;
    assert_eq!((ids, sizes), (vec![last], vec![0, 1]));

    // Nine full pages are within the complexity limit; nine filtered ones are not: each also
    // pays for the 100 webhooks it may look at.
    let pages = |filter: &str| -> String {
        let page =
            format!("webhooks(first: 100{filter}) {{ edges {{ node {{ id url events }} }} }}");
        format!("{{ {} }}", aliases(&page, 9))
    };
    data(&app, &key, &pages(""), json!({})).await;
    let error = only_error(
        &app,
        &key,
        &pages(", filter: {active: true}"),
        json!({}),
        "GRAPHQL_VALIDATION_FAILED",
    )
    .await;
    assert!(
        error["message"].as_str().unwrap().contains("complex"),
        "{error}"
    );
}

/// A GraphQL request as `handle` answers it, headers included.
async fn graphql_response(
    app: &TestApp,
    key: &str,
    query: &str,
) -> lambda_http::Response<lambda_http::Body> {
    let request = lambda_http::http::Request::builder()
        .method(Method::POST)
        .uri("/graphql")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(lambda_http::Body::Text(
            json!({ "query": query }).to_string(),
        ))
        .unwrap();
    common::http::handle(&app.deps, common::http::routes::ROUTES, request).await
}

async fn a_tenant_over_its_share_waits_then_gets_429_while_others_are_served(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (tenant, key) = app.tenant_with(Role::ReadOnly).await;
    let (_, other) = app.tenant_with(Role::ReadOnly).await;
    let query = "{ syncStatus { totalClients } }";
    let mut held = Vec::new();
    for _ in 0..common::admission::TENANT_LIMIT {
        held.push(app.deps.admission.admit(tenant).await.unwrap());
    }

    let response = graphql_response(&app, &key, query).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = serde_json::from_slice(response.body()).unwrap();
    assert_error(response.status(), &body, StatusCode::TOO_MANY_REQUESTS);

    data(&app, &other, query, json!({})).await;
    drop(held);
    data(&app, &key, query, json!({})).await;
}

async fn a_request_past_its_time_budget_is_stopped_with_timeout(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (tenant, key) = app.tenant_with(Role::Admin).await;
    let silent = Receiver::start(Reply::Hang).await;
    let (webhook, _) = create(&app, &key, &silent.url, &["client.created"]).await;
    let caller = Caller {
        tenant_id: tenant,
        key_id: uuid::Uuid::now_v7(),
        role: Role::Admin,
    };
    let budgets = TimeBudgets {
        query: Duration::from_secs(10),
        mutation: Duration::from_millis(300),
    };
    let body = json!({
        "query": "mutation T($id: ID!) { testWebhook(id: $id) { success } }",
        "variables": {"id": webhook},
    })
    .to_string();
    let started = std::time::Instant::now();
    let response = common::graphql::execute_within(&app.deps, &caller, body.as_bytes(), budgets)
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "stopped at its budget"
    );
    assert_eq!(response.status(), StatusCode::OK);
    let reply: Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(reply["data"], Value::Null, "{reply}");
    assert_eq!(
        error_codes(&reply),
        [("TIMEOUT".to_owned(), None)],
        "{reply}"
    );
}

async fn header_values_are_masked_for_keys_that_may_not_change_webhooks(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (tenant, admin) = app.tenant_with(Role::Admin).await;
    let created = data(
        &app,
        &admin,
        CREATE,
        json!({"input": {"url": "https://example.com/h", "events": ["*"],
            "headers": [{"name": "Authorization", "value": "Bearer receiver-token"}]}}),
    )
    .await;
    let id = created["createWebhook"]["webhook"]["id"].clone();
    let one = "query W($id: ID!) { webhook(id: $id) { headers { name value } } }";
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
        let got = data(&app, &key, one, json!({ "id": id })).await;
        assert_eq!(got["webhook"]["headers"], shown, "{role:?}");
        for query in [list, filtered] {
            let got = data(&app, &key, query, json!({})).await;
            assert_eq!(
                got["webhooks"]["edges"][0]["node"]["headers"], shown,
                "{role:?}"
            );
        }
    }
    // A manager who sends the masked list back keeps the value.
    let manager = app.key_for(tenant, Role::Manager).await;
    data(
        &app,
        &manager,
        "mutation U($id: ID!) { updateWebhook(id: $id, input: {headers: [{name: \"authorization\", value: \"********\"}]}) { webhook { id } } }",
        json!({ "id": id }),
    )
    .await;
    let got = data(&app, &manager, one, json!({ "id": id })).await;
    assert_eq!(
        got["webhook"]["headers"][0]["value"],
        "Bearer receiver-token"
    );
}

/// GraphiQL needs no key: it is a page that asks for one.
#[tokio::test]
async fn graphiql_is_served_without_a_key() {
    let app = TestApp::new(Backend::Sqlite).await;
    let request = lambda_http::http::Request::builder()
        .method(Method::GET)
        .uri("/graphql")
        .body(lambda_http::Body::Empty)
        .unwrap();
    let response = common::http::handle(&app.deps, common::http::routes::ROUTES, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let page = String::from_utf8(response.body().to_vec()).unwrap();
    assert!(page.contains("GraphiQL.createFetcher"), "{page}");
    assert!(page.contains("Authorization"));
}

/// `infra/schema.graphql` is the schema the code serves. After changing the schema, regenerate
/// it with `UPDATE_SCHEMA=1 cargo test -p integration-tests schema_file`.
#[test]
fn schema_file_matches_the_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/schema.graphql");
    let sdl = common::graphql::sdl();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &sdl).unwrap();
    }
    let kept = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        kept == sdl,
        "infra/schema.graphql differs from the code's schema; regenerate it with \
         UPDATE_SCHEMA=1 cargo test -p integration-tests schema_file"
    );
    // Field names are a contract with seed 003's clients (an added optional argument keeps
    // every earlier query valid).
    for name in [
        "webhook(id: ID!): Webhook",
        "webhooks(first: Int, after: String, filter: WebhookFilter): WebhookConnection!",
        "webhookDeliveries(webhookId: ID!, first: Int, after: String, status: WebhookDeliveryStatus): WebhookDeliveryConnection!",
        "webhookDelivery(id: ID!): WebhookDelivery",
        "webhookEvents: [WebhookEventType!]!",
        "webhookStats(webhookId: ID): WebhookStats!",
        "syncStatus: SyncStatus!",
        "createWebhook(input: CreateWebhookInput!): CreateWebhookPayload!",
        "updateWebhook(id: ID!, input: UpdateWebhookInput!): UpdateWebhookPayload!",
        "deleteWebhook(id: ID!): DeleteWebhookPayload!",
        "testWebhook(id: ID!): TestWebhookPayload!",
        "rotateWebhookSecret(id: ID!, overlapSeconds: Int): RotateWebhookSecretPayload!",
        "retryWebhookDeliveries(webhookId: ID, deliveryIds: [ID!]): RetryWebhookDeliveriesPayload!",
    ] {
        assert!(sdl.contains(name), "missing from the schema: {name}");
    }
    let webhook_type = sdl
        .split("\ntype Webhook {")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .expect("type Webhook");
    assert!(
        !webhook_type.contains("secret"),
        "a Webhook never shows its secret"
    );
}
