//! Issue 22: update-sync-status in batches, and the reasons of a failed sync, on both stores.

use std::collections::HashMap;
use std::time::Duration;

use common::domain::auth::Role;
use common::domain::sync_status::{SyncCounts, SyncStatus};
use lambda_http::http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::delivery::setup;
use crate::graphql::{data, gql};
use crate::receiver::{Receiver, Reply};
use crate::support::{assert_error, eventually, Backend, TestApp};

crate::on_both_stores!(
    a_batch_of_500_applies_each_valid_update_and_answers_each_in_order,
    a_batch_too_long_or_not_an_array_is_refused_whole,
    a_batch_needs_the_sync_permission,
    a_failure_reason_is_kept_shown_and_carried_in_its_event,
    a_sync_clears_the_failure_reason_and_records_its_time,
    a_reason_is_refused_on_other_statuses_and_when_malformed,
    a_repeated_failure_records_its_new_reason_without_an_event,
    graphql_applies_a_batch_and_shows_the_sync_fields,
    graphql_refuses_a_batch_too_long_or_without_the_permission,
);

const UPDATE: &str = "/api/crm/update-sync-status";
const WAIT: Duration = Duration::from_secs(120);

async fn sync_events(app: &TestApp, tenant: Uuid) -> Vec<Value> {
    app.deps
        .store
        .list_outbox_events(tenant, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|event| event.event == "sync.status.changed")
        .map(|event| event.data)
        .collect()
}

async fn client(app: &TestApp, key: &str, id: Uuid) -> Value {
    let (status, body) = app.get(&format!("/api/clients/{id}"), key).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// What one entry of the 500 is, and so what its result must say.
enum Entry {
    Failed(usize),
    Synced(usize),
    Unknown(Uuid),
    Malformed(Value, &'static str),
}

fn malformed(k: usize) -> (Value, &'static str) {
    match k % 4 {
        0 => (
            json!({"clientId": "not-a-uuid", "status": "SYNCED"}),
            "clientId",
        ),
        1 => (
            json!({"clientId": Uuid::now_v7(), "status": "DONE"}),
            "status",
        ),
        2 => (
            json!({"clientId": Uuid::now_v7(), "status": "SYNCED", "error": "x"}),
            "error",
        ),
        _ => (
            json!({"clientId": Uuid::now_v7(), "status": "FAILED", "errorCode": "has space"}),
            "errorCode",
        ),
    }
}

async fn a_batch_of_500_applies_each_valid_update_and_answers_each_in_order(backend: Backend) {
    let s = setup(backend).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    s.webhook(&receiver, json!({"events": ["sync.status.changed"]}))
        .await;
    let ids: Vec<Uuid> = {
        let mut ids = Vec::new();
        for i in 0..200 {
            ids.push(s.app.create_client(&s.key, &format!("client {i}")).await);
        }
        ids
    };
    // 100 rounds of five: a failure, an unknown id, a malformed entry, another failure, and
    // the sync of the first failed client (after its failure, so the order matters).
    let mut entries = Vec::new();
    for k in 0..100 {
        entries.push(Entry::Failed(k));
        entries.push(Entry::Unknown(Uuid::now_v7()));
        let (body, field) = malformed(k);
        entries.push(Entry::Malformed(body, field));
        entries.push(Entry::Failed(100 + k));
        entries.push(Entry::Synced(k));
    }
    let updates: Vec<Value> = entries
        .iter()
        .map(|entry| match entry {
            Entry::Failed(i) => json!({"clientId": ids[*i], "status": "FAILED",
                "error": format!("CRM refused client {i}"), "errorCode": "CRM_REFUSED"}),
            Entry::Synced(i) => json!({"clientId": ids[*i], "status": "SYNCED"}),
            Entry::Unknown(id) => json!({"clientId": id, "status": "PENDING"}),
            Entry::Malformed(body, _) => body.clone(),
        })
        .collect();
    assert_eq!(updates.len(), 500);
    let worker = s.app.start_worker();
    let (status, body) = s
        .app
        .post(UPDATE, &s.key, &json!({"updates": updates}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["success"], true);
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 500);

    for (index, (entry, result)) in entries.iter().zip(results).enumerate() {
        match entry {
            Entry::Failed(i) => {
                let expected =
                    json!({"clientId": ids[*i], "ok": true, "status": "FAILED", "changed": true});
                assert_eq!(result, &expected, "entry {index}");
            }
            Entry::Synced(i) => {
                let expected =
                    json!({"clientId": ids[*i], "ok": true, "status": "SYNCED", "changed": true});
                assert_eq!(result, &expected, "entry {index}");
            }
            Entry::Unknown(id) => {
                let expected = json!({"clientId": id, "ok": false, "statusCode": 404, "error": "Client not found."});
                assert_eq!(result, &expected, "entry {index}");
            }
            Entry::Malformed(sent, field) => {
                assert_eq!(result["ok"], false, "entry {index}: {result}");
                assert_eq!(result["statusCode"], 400, "entry {index}: {result}");
                assert_eq!(result["clientId"], sent["clientId"], "entry {index}");
                assert!(
                    result["details"][field].is_string(),
                    "entry {index} names {field}: {result}"
                );
            }
        }
    }

    let (_, counts) = s.app.get("/api/crm/sync-status", &s.key).await;
    assert_eq!(counts["totalClients"], 200);
    assert_eq!(counts["syncedClients"], 100);
    assert_eq!(counts["failedClients"], 100);
    assert_eq!(counts["needsUpdateClients"], 0);
    assert_eq!(counts["pendingClients"], 0);
    let synced = client(&s.app, &s.key, ids[7]).await;
    assert_eq!(synced["syncStatus"], "SYNCED");
    assert_eq!(synced["lastSyncError"], Value::Null);
    let failed = client(&s.app, &s.key, ids[107]).await;
    assert_eq!(failed["syncStatus"], "FAILED");
    assert_eq!(failed["lastSyncError"], "CRM refused client 107");
    assert_eq!(failed["lastSyncErrorCode"], "CRM_REFUSED");

    // One event per real change: 200 failures and 100 syncs, each delivered once.
    let events = sync_events(&s.app, s.tenant).await;
    assert_eq!(events.len(), 300);
    let seen = eventually(WAIT, "300 deliveries", || async {
        let seen = receiver.seen();
        (seen.len() >= 300).then_some(seen)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    worker.stop().await;
    assert_eq!(receiver.seen().len(), 300, "no event delivered twice");
    let mut per_client: HashMap<String, Vec<String>> = HashMap::new();
    for request in &seen {
        let payload: Value = serde_json::from_slice(&request.body).unwrap();
        let data = &payload["data"];
        per_client
            .entry(data["clientId"].as_str().unwrap().to_owned())
            .or_default()
            .push(data["newStatus"].as_str().unwrap().to_owned());
    }
    assert_eq!(per_client.len(), 200);
    let mut first_ones = per_client[&ids[3].to_string()].clone();
    first_ones.sort();
    assert_eq!(first_ones, ["FAILED", "SYNCED"]);
    assert_eq!(per_client[&ids[103].to_string()], ["FAILED"]);
}

async fn a_batch_too_long_or_not_an_array_is_refused_whole(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (tenant, key) = app.tenant_with(Role::Admin).await;
    let id = app.create_client(&key, "A").await;
    let update = json!({"clientId": id, "status": "SYNCED"});
    let too_many = json!({"updates": vec![update.clone(); 501]});
    let (status, body) = app.post(UPDATE, &key, &too_many).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    assert_eq!(body["details"]["updates"], "must have at most 500 entries");
    for not_a_list in [json!("x"), json!({"clientId": id}), Value::Null] {
        let (status, body) = app
            .post(UPDATE, &key, &json!({"updates": not_a_list}))
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
        assert!(body["details"]["updates"].is_string(), "{body}");
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["details", "error", "success"], "the seed's envelope");
    }
    let (status, body) = app
        .post(UPDATE, &key, &json!({"updates": [update], "clientId": id}))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    assert_eq!(body["details"]["clientId"], "is not a known field");
    assert_eq!(client(&app, &key, id).await["syncStatus"], "NEEDS_UPDATE");
    assert!(sync_events(&app, tenant).await.is_empty());

    let (status, body) = app.post(UPDATE, &key, &json!({"updates": []})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"success": true, "results": []}));
}

async fn a_batch_needs_the_sync_permission(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (tenant, admin) = app.tenant_with(Role::Admin).await;
    let id = app.create_client(&admin, "A").await;
    let reader = app.key_for(tenant, Role::ReadOnly).await;
    let batch = json!({"updates": [{"clientId": id, "status": "SYNCED"}]});
    let (status, body) = app.post(UPDATE, &reader, &batch).await;
    assert_error(status, &body, StatusCode::FORBIDDEN);
    assert_eq!(client(&app, &admin, id).await["syncStatus"], "NEEDS_UPDATE");
}

async fn a_failure_reason_is_kept_shown_and_carried_in_its_event(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (tenant, key) = app.tenant_with(Role::Admin).await;
    let id = app.create_client(&key, "A").await;
    let fresh = client(&app, &key, id).await;
    for field in [
        "lastSyncError",
        "lastSyncErrorCode",
        "lastSyncAttemptAt",
        "lastSyncedAt",
    ] {
        assert_eq!(fresh[field], Value::Null, "{field} of a new client");
    }
    let failure = json!({"clientId": id, "status": "FAILED",
        "error": "  Salesforce answered 503  ", "errorCode": "SF_UNAVAILABLE"});
    let (status, body) = app.post(UPDATE, &key, &failure).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));

    let shown = client(&app, &key, id).await;
    assert_eq!(shown["syncStatus"], "FAILED");
    assert_eq!(shown["lastSyncError"], "Salesforce answered 503");
    assert_eq!(shown["lastSyncErrorCode"], "SF_UNAVAILABLE");
    assert!(shown["lastSyncAttemptAt"].is_string(), "{shown}");
    assert_eq!(shown["lastSyncedAt"], Value::Null);
    let (_, listed) = app.get("/api/clients?syncStatus=FAILED", &key).await;
    assert_eq!(listed["items"][0], shown);

    let events = sync_events(&app, tenant).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["newStatus"], "FAILED");
    assert_eq!(events[0]["error"], "Salesforce answered 503");
    assert_eq!(events[0]["errorCode"], "SF_UNAVAILABLE");
    assert_eq!(events[0]["timestamp"], shown["lastSyncAttemptAt"]);

    // A retry under way keeps the reason; its event has none of its own to carry.
    app.post(UPDATE, &key, &json!({"clientId": id, "status": "PENDING"}))
        .await;
    let pending = client(&app, &key, id).await;
    assert_eq!(pending["lastSyncError"], "Salesforce answered 503");
    let events = sync_events(&app, tenant).await;
    let keys: Vec<&String> = events[1].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["clientId", "newStatus", "oldStatus", "timestamp"]);
}

async fn a_sync_clears_the_failure_reason_and_records_its_time(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let id = app.create_client(&key, "A").await;
    let failure = json!({"clientId": id, "status": "FAILED", "error": "boom"});
    app.post(UPDATE, &key, &failure).await;
    let (status, _) = app
        .post(UPDATE, &key, &json!({"clientId": id, "status": "SYNCED"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let synced = client(&app, &key, id).await;
    assert_eq!(synced["lastSyncError"], Value::Null);
    assert_eq!(synced["lastSyncErrorCode"], Value::Null);
    assert!(synced["lastSyncedAt"].is_string());
    assert_eq!(synced["lastSyncAttemptAt"], synced["lastSyncedAt"]);
    let (_, counts) = app.get("/api/crm/sync-status", &key).await;
    assert_eq!(counts["lastSyncTime"], synced["lastSyncedAt"]);
}

async fn a_reason_is_refused_on_other_statuses_and_when_malformed(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (tenant, key) = app.tenant_with(Role::Admin).await;
    let id = app.create_client(&key, "A").await;
    let refused = [
        (
            json!({"clientId": id, "status": "SYNCED", "error": "x"}),
            "error",
            "may only be given when status is FAILED",
        ),
        (
            json!({"clientId": id, "status": "PENDING", "errorCode": "X"}),
            "errorCode",
            "may only be given when status is FAILED",
        ),
        (
            json!({"clientId": id, "status": "FAILED", "error": "x".repeat(1_001)}),
            "error",
            "must be at most 1000 characters",
        ),
        (
            json!({"clientId": id, "status": "FAILED", "error": "   "}),
            "error",
            "must not be empty",
        ),
        (
            json!({"clientId": id, "status": "FAILED", "errorCode": "a/b"}),
            "errorCode",
            "must be 1 to 100 characters of A-Z, a-z, 0-9, underscore, dot and hyphen",
        ),
        (
            json!({"clientId": id, "status": "FAILED", "errorCode": "E".repeat(101)}),
            "errorCode",
            "must be 1 to 100 characters of A-Z, a-z, 0-9, underscore, dot and hyphen",
        ),
    ];
    for (body, field, message) in refused {
        let (status, answer) = app.post(UPDATE, &key, &body).await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST);
        assert_eq!(answer["details"][field], message, "{body}");
    }
    let limits = json!({"clientId": id, "status": "FAILED",
        "error": "x".repeat(1_000), "errorCode": "E".repeat(100)});
    let (status, _) = app.post(UPDATE, &key, &limits).await;
    assert_eq!(status, StatusCode::OK);
    let events = sync_events(&app, tenant).await;
    assert_eq!(events.len(), 1, "only the accepted update changed anything");
}

async fn a_repeated_failure_records_its_new_reason_without_an_event(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (tenant, key) = app.tenant_with(Role::Admin).await;
    let id = app.create_client(&key, "A").await;
    let first = json!({"clientId": id, "status": "FAILED", "error": "first", "errorCode": "A"});
    app.post(UPDATE, &key, &first).await;
    let before = client(&app, &key, id).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let batch = json!({"updates": [{"clientId": id, "status": "FAILED", "error": "second"}]});
    let (status, body) = app.post(UPDATE, &key, &batch).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"][0]["changed"], false);
    let after = client(&app, &key, id).await;
    assert_eq!(after["lastSyncError"], "second");
    assert_eq!(
        after["lastSyncErrorCode"],
        Value::Null,
        "the new report has no code"
    );
    assert!(after["lastSyncAttemptAt"].as_str() > before["lastSyncAttemptAt"].as_str());
    assert_eq!(
        sync_events(&app, tenant).await.len(),
        1,
        "the status did not change"
    );
    let (_, counts) = app.get("/api/crm/sync-status", &key).await;
    assert_eq!(counts["failedClients"], 1);
}

const BATCH: &str = "mutation Batch($updates: [SyncStatusUpdateInput!]!) {
    updateSyncStatuses(updates: $updates) {
        success
        results { clientId ok changed status lastSyncError lastSyncErrorCode lastSyncAttemptAt
                  lastSyncedAt error code details }
    } }";

async fn graphql_applies_a_batch_and_shows_the_sync_fields(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (tenant, key) = app.tenant_with(Role::Admin).await;
    let a = app.create_client(&key, "A").await;
    let b = app.create_client(&key, "B").await;
    let unknown = Uuid::now_v7();
    let updates = json!([
        {"clientId": a, "status": "FAILED", "error": "timeout", "errorCode": "T1"},
        {"clientId": "nope", "status": "SYNCED"},
        {"clientId": unknown, "status": "SYNCED"},
        {"clientId": b, "status": "SYNCED", "errorCode": "X"},
        {"clientId": b, "status": "SYNCED"},
    ]);
    let found = data(&app, &key, BATCH, json!({"updates": updates})).await;
    let payload = &found["updateSyncStatuses"];
    assert_eq!(payload["success"], true);
    let results = payload["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    assert_eq!(results[0]["ok"], true);
    assert_eq!(results[0]["clientId"], json!(a));
    assert_eq!(results[0]["status"], "FAILED");
    assert_eq!(results[0]["lastSyncError"], "timeout");
    assert_eq!(results[0]["lastSyncErrorCode"], "T1");
    assert!(results[0]["lastSyncAttemptAt"].is_string());
    assert_eq!(
        (
            &results[1]["ok"],
            &results[1]["code"],
            &results[1]["details"]["clientId"]
        ),
        (
            &json!(false),
            &json!("BAD_USER_INPUT"),
            &json!("must be a UUID")
        )
    );
    assert_eq!(results[2]["code"], "NOT_FOUND");
    assert_eq!(results[2]["error"], "Client not found.");
    assert_eq!(
        results[3]["details"]["errorCode"],
        "may only be given when status is FAILED"
    );
    assert_eq!(results[4]["ok"], true);
    assert_eq!(results[4]["changed"], true);
    assert!(results[4]["lastSyncedAt"].is_string());

    let counts = app.deps.store.sync_counts(tenant).await.unwrap();
    assert_eq!(
        counts.counts_only(),
        SyncCounts::recount([SyncStatus::Failed, SyncStatus::Synced])
    );
}

async fn graphql_refuses_a_batch_too_long_or_without_the_permission(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (tenant, key) = app.tenant_with(Role::Admin).await;
    let id = app.create_client(&key, "A").await;
    let update = json!({"clientId": id, "status": "SYNCED"});
    let (status, body) = gql(
        &app,
        &key,
        BATCH,
        json!({"updates": vec![update.clone(); 501]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"], Value::Null, "{body}");
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{body}");
    assert_eq!(error["extensions"]["field"], "updates", "{body}");

    let reader = app.key_for(tenant, Role::ReadOnly).await;
    let (_, body) = gql(&app, &reader, BATCH, json!({"updates": [update]})).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    assert_eq!(client(&app, &key, id).await["syncStatus"], "NEEDS_UPDATE");
}
