//! Issue 22: a client's sync history (`GET /api/clients/{id}/sync-history`, GraphQL
//! `syncHistory`), on both stores.

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, TimeDelta, Utc};
use common::domain::auth::Role;
use common::domain::retention::Retention;
use common::ports::Clock;
use common::service::sweeper::sweep;
use lambda_http::http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::graphql::data;
use crate::limits::SteppedClock;
use crate::support::{assert_error, fresh_store, test_settings, Backend, TestApp};

crate::on_both_stores!(
    history_is_newest_first_across_pages_with_time_statuses_and_error,
    a_repeated_status_adds_no_entry,
    a_batchs_changes_in_one_millisecond_keep_their_order,
    a_patch_that_changes_the_status_is_recorded,
    another_tenants_client_or_an_unknown_one_is_not_found,
    history_needs_client_read_and_a_valid_page,
    graphql_pages_the_history,
);

const UPDATE: &str = "/api/crm/update-sync-status";

/// An app whose clock moves only when told, and a manager's key.
async fn stepped(backend: Backend) -> (TestApp, Arc<SteppedClock>, Uuid, String) {
    let mut app = TestApp::new(backend).await;
    let clock = SteppedClock::new();
    app.deps.clock = Arc::<SteppedClock>::clone(&clock) as _;
    let (tenant, key) = app.tenant_with(Role::Manager).await;
    (app, clock, tenant, key)
}

async fn report(app: &TestApp, key: &str, client: Uuid, update: Value) {
    let mut body = update;
    body["clientId"] = json!(client);
    let (status, answer) = app.post(UPDATE, key, &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

async fn history(app: &TestApp, key: &str, client: Uuid, query: &str) -> Value {
    let (status, body) = app
        .get(&format!("/api/clients/{client}/sync-history{query}"), key)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn millis(at: DateTime<Utc>) -> String {
    common::time::rfc3339(at)
}

async fn history_is_newest_first_across_pages_with_time_statuses_and_error(backend: Backend) {
    let (app, clock, _, key) = stepped(backend).await;
    let client = app.create_client(&key, "Ada").await;
    let mut times = Vec::new();
    for update in [
        json!({"status": "PENDING"}),
        json!({"status": "FAILED", "error": "CRM said no", "errorCode": "crm.rejected"}),
        json!({"status": "SYNCED"}),
    ] {
        clock.advance(TimeDelta::seconds(10));
        times.push(clock.now());
        report(&app, &key, client, update).await;
    }

    let first = history(&app, &key, client, "?limit=2").await;
    assert_eq!(
        first["items"],
        json!([
            {"id": first["items"][0]["id"], "clientId": client, "at": millis(times[2]),
             "from": "FAILED", "to": "SYNCED", "error": null, "errorCode": null},
            {"id": first["items"][1]["id"], "clientId": client, "at": millis(times[1]),
             "from": "PENDING", "to": "FAILED", "error": "CRM said no",
             "errorCode": "crm.rejected"},
        ]),
        "{first}"
    );
    let cursor = first["nextCursor"].as_str().expect("a next page");
    let rest = history(&app, &key, client, &format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1, "{rest}");
    assert_eq!(rest["items"][0]["from"], "NEEDS_UPDATE");
    assert_eq!(rest["items"][0]["to"], "PENDING");
    assert_eq!(rest["items"][0]["at"], millis(times[0]));
    assert_eq!(rest["nextCursor"], Value::Null);
}

async fn a_repeated_status_adds_no_entry(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Manager).await;
    let client = app.create_client(&key, "Ada").await;
    assert_eq!(history(&app, &key, client, "").await["items"], json!([]));
    report(&app, &key, client, json!({"status": "SYNCED"})).await;
    report(&app, &key, client, json!({"status": "SYNCED"})).await;
    report(
        &app,
        &key,
        client,
        json!({"status": "FAILED", "error": "a"}),
    )
    .await;
    report(
        &app,
        &key,
        client,
        json!({"status": "FAILED", "error": "b"}),
    )
    .await;
    let body = history(&app, &key, client, "").await;
    let moves: Vec<(&str, &str)> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["from"].as_str().unwrap(), e["to"].as_str().unwrap()))
        .collect();
    assert_eq!(moves, [("SYNCED", "FAILED"), ("NEEDS_UPDATE", "SYNCED")]);
    assert_eq!(body["items"][0]["error"], "a", "the change's own reason");
}

async fn a_batchs_changes_in_one_millisecond_keep_their_order(backend: Backend) {
    let (app, _clock, _, key) = stepped(backend).await;
    let client = app.create_client(&key, "Ada").await;
    let updates: Vec<Value> = ["PENDING", "FAILED", "SYNCED", "NEEDS_UPDATE", "PENDING"]
        .iter()
        .map(|status| json!({"clientId": client, "status": status}))
        .collect();
    let (status, body) = app.post(UPDATE, &key, &json!({"updates": updates})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let body = history(&app, &key, client, "").await;
    let to: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    assert_eq!(
        to,
        ["PENDING", "NEEDS_UPDATE", "SYNCED", "FAILED", "PENDING"]
    );
}

async fn a_patch_that_changes_the_status_is_recorded(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Manager).await;
    let client = app.create_client(&key, "Ada").await;
    report(&app, &key, client, json!({"status": "SYNCED"})).await;
    let (status, body) = app
        .patch(
            &format!("/api/clients/{client}"),
            &key,
            &json!({"company": "AE"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let body = history(&app, &key, client, "").await;
    assert_eq!(body["items"][0]["from"], "SYNCED", "{body}");
    assert_eq!(body["items"][0]["to"], "NEEDS_UPDATE", "{body}");
    assert_eq!(body["items"].as_array().unwrap().len(), 2);
}

async fn another_tenants_client_or_an_unknown_one_is_not_found(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Manager).await;
    let (_, other) = app.tenant_with(Role::Admin).await;
    let client = app.create_client(&key, "Ada").await;
    report(&app, &key, client, json!({"status": "SYNCED"})).await;
    for (path, key) in [
        (format!("/api/clients/{client}/sync-history"), &other),
        (
            format!("/api/clients/{}/sync-history", Uuid::now_v7()),
            &key,
        ),
    ] {
        let (status, body) = app.get(&path, key).await;
        assert_error(status, &body, StatusCode::NOT_FOUND);
    }
    // A deleted client's history is not served either (retention removes it later).
    let (status, _) = app.delete(&format!("/api/clients/{client}"), &key).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app
        .get(&format!("/api/clients/{client}/sync-history"), &key)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
}

async fn history_needs_client_read_and_a_valid_page(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (tenant, key) = app.tenant_with(Role::Manager).await;
    let client = app.create_client(&key, "Ada").await;
    let reader = app.key_for(tenant, Role::ReadOnly).await;
    history(&app, &reader, client, "").await;
    for query in ["?limit=0", "?limit=101", "?cursor=nope"] {
        let (status, body) = app
            .get(&format!("/api/clients/{client}/sync-history{query}"), &key)
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
    }
    let (status, body) = app.get("/api/clients/not-a-uuid/sync-history", &key).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
}

async fn graphql_pages_the_history(backend: Backend) {
    let (app, clock, _, key) = stepped(backend).await;
    let client = app.create_client(&key, "Ada").await;
    for update in [
        json!({"status": "FAILED", "error": "down", "errorCode": "E1"}),
        json!({"status": "SYNCED"}),
    ] {
        clock.advance(TimeDelta::seconds(1));
        report(&app, &key, client, update).await;
    }
    let query = "query($id: ID!, $after: String) {
        syncHistory(clientId: $id, first: 1, after: $after) {
            edges { node { clientId from to error errorCode at } }
            pageInfo { hasNextPage endCursor }
        } }";
    let first = data(&app, &key, query, json!({"id": client})).await;
    let page = &first["syncHistory"];
    assert_eq!(page["edges"][0]["node"]["to"], "SYNCED", "{first}");
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let after = page["pageInfo"]["endCursor"].clone();
    let second = data(&app, &key, query, json!({"id": client, "after": after})).await;
    let node = &second["syncHistory"]["edges"][0]["node"];
    assert_eq!(
        *node,
        json!({"clientId": client, "from": "NEEDS_UPDATE", "to": "FAILED", "error": "down",
               "errorCode": "E1", "at": millis(clock.now() - TimeDelta::seconds(1))}),
    );
    assert_eq!(second["syncHistory"]["pageInfo"]["hasNextPage"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_the_sweep_removes_history_past_its_retention() {
    let (app, clock, _, key) = stepped(Backend::Sqlite).await;
    let client = app.create_client(&key, "Ada").await;
    report(&app, &key, client, json!({"status": "PENDING"})).await;
    clock.advance(TimeDelta::days(10));
    report(&app, &key, client, json!({"status": "SYNCED"})).await;

    // The default retention is 30 days: the first entry goes a minute after its 30th day.
    clock.advance(TimeDelta::days(20) - TimeDelta::minutes(1));
    let report_ = sweep(&app.deps, None).await.unwrap();
    assert_eq!(report_.sync_history_expired, 0);
    clock.advance(TimeDelta::minutes(2));
    let report_ = sweep(&app.deps, None).await.unwrap();
    assert_eq!(report_.sync_history_expired, 1);
    let left = history(&app, &key, client, "").await;
    assert_eq!(left["items"].as_array().unwrap().len(), 1, "{left}");
    assert_eq!(left["items"][0]["to"], "SYNCED");
    clock.advance(TimeDelta::days(10));
    assert_eq!(
        sweep(&app.deps, None).await.unwrap().sync_history_expired,
        1
    );
    assert_eq!(history(&app, &key, client, "").await["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_history_entries_carry_the_configured_expiry() {
    let fixture = fresh_store(Backend::DynamoDb).await;
    let (dynamodb, table) = fixture.dynamodb.clone().unwrap();
    let week = Retention::days(7).unwrap();
    let mut app = TestApp::over(fixture, test_settings());
    app.deps.store = Arc::new(
        common::adapters::dynamodb::DynamoStore::new(dynamodb.clone(), table.clone())
            .retaining(week),
    );
    let clock = SteppedClock::new();
    app.deps.clock = Arc::<SteppedClock>::clone(&clock) as _;
    let (tenant, key) = app.tenant_with(Role::Manager).await;
    let client = app.create_client(&key, "Ada").await;
    report(&app, &key, client, json!({"status": "SYNCED"})).await;

    let items = dynamodb
        .query()
        .table_name(&table)
        .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
        .expression_attribute_values(":pk", AttributeValue::S(format!("TENANT#{tenant}")))
        .expression_attribute_values(":prefix", AttributeValue::S(format!("SYNCHIST#{client}#")))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .items
        .unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    let expires_at = match items[0].get("expires_at") {
        Some(AttributeValue::N(n)) => n.parse::<i64>().unwrap(),
        other => panic!("no expiry: {other:?}"),
    };
    assert_eq!(expires_at, (clock.now() + TimeDelta::days(7)).timestamp());
}
