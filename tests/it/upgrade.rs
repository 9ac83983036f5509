//! A DynamoDB table written by an earlier version keeps working after an upgrade of the item
//! layout (docs/scale.md): each case puts the table in the old layout, as the earlier version
//! left it, then uses the service as a user would and checks the answers.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use common::domain::auth::Role;
use lambda_http::http::StatusCode;
use serde_json::{json, Value};

use crate::support::{assert_counters_recount, fresh_store, test_settings, Backend, TestApp};

fn text(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn number(value: &Value) -> AttributeValue {
    AttributeValue::N(value.as_i64().unwrap_or(0).to_string())
}

/// Before the split, a tenant's sync counters were one item, `SYNC_COUNTS`. A table written
/// then has that item and no split ones; the split ones start from nothing and the old item
/// stays the first term of the sum, so the sync status is right at once, with no migration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_counters_written_as_one_item_still_count_after_the_split() {
    let store = fresh_store(Backend::DynamoDb).await;
    let (raw, table) = store.dynamodb.clone().unwrap();
    let app = TestApp::over(store, test_settings());
    let (tenant, key) = app.tenant_with(Role::Admin).await;
    let mut clients = Vec::new();
    for name in ["Ada", "Grace", "Edsger", "Barbara"] {
        clients.push(app.create_client(&key, name).await);
    }
    for (client, status) in clients.iter().zip(["SYNCED", "FAILED"]) {
        let update = json!({"clientId": client, "status": status});
        let (code, body) = app.post("/api/crm/update-sync-status", &key, &update).await;
        assert_eq!(code, StatusCode::OK, "{body}");
    }
    let (_, before) = app.get("/api/crm/sync-status", &key).await;

    // The old layout: the same counts in the one item, no split counters.
    let pk = format!("TENANT#{tenant}");
    let split = raw
        .query()
        .table_name(&table)
        .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
        .expression_attribute_values(":pk", text(&pk))
        .expression_attribute_values(":prefix", text("SYNC_COUNTS#"))
        .send()
        .await
        .unwrap();
    assert!(
        split.count() > 0,
        "the counters are written to their split items"
    );
    for item in split.items() {
        raw.delete_item()
            .table_name(&table)
            .key("pk", item["pk"].clone())
            .key("sk", item["sk"].clone())
            .send()
            .await
            .unwrap();
    }
    let mut old = HashMap::from([
        ("pk".to_owned(), text(&pk)),
        ("sk".to_owned(), text("SYNC_COUNTS")),
        ("total".to_owned(), number(&before["totalClients"])),
        ("synced".to_owned(), number(&before["syncedClients"])),
        ("pending".to_owned(), number(&before["pendingClients"])),
        ("failed".to_owned(), number(&before["failedClients"])),
        (
            "needs_update".to_owned(),
            number(&before["needsUpdateClients"]),
        ),
    ]);
    old.insert(
        "last_sync_time".to_owned(),
        text(before["lastSyncTime"].as_str().unwrap()),
    );
    raw.put_item()
        .table_name(&table)
        .set_item(Some(old))
        .send()
        .await
        .unwrap();
    let (_, read_back) = app.get("/api/crm/sync-status", &key).await;
    assert_eq!(read_back, before, "the old item alone reads as it did");

    // The upgraded service writes: a new client, a client synced later, one deleted.
    let newcomer = app.create_client(&key, "Alan").await;
    let update = json!({"clientId": clients[2], "status": "SYNCED"});
    let (code, body) = app.post("/api/crm/update-sync-status", &key, &update).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (code, body) = app
        .delete(&format!("/api/clients/{}", clients[1]), &key)
        .await;
    assert!(code.is_success(), "{code} {body}");

    let (statuses, counts) =
        assert_counters_recount(&app, &key, &[clients[0], clients[2], clients[3], newcomer]).await;
    let synced = statuses.values().filter(|s| *s == "SYNCED").count();
    let failed = statuses.values().filter(|s| *s == "FAILED").count();
    assert_eq!((synced, failed), (2, 0), "{statuses:?}");
    // The latest sync across the old item and the split ones: the one just made.
    let (_, synced) = app.get(&format!("/api/clients/{}", clients[2]), &key).await;
    assert_eq!(counts["lastSyncTime"], synced["lastSyncedAt"], "{counts}");
    assert_ne!(counts["lastSyncTime"], before["lastSyncTime"]);
}
