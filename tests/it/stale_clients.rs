//! Issue 22: stale clients (`GET /api/clients?syncedBefore=`), through the REST face on both
//! stores: never-synced first, then the oldest sync, cursor-paged; and on DynamoDB, clients
//! written before the index existed are put into it by `crm-admin index-clients`.

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, TimeDelta, Utc};
use common::domain::auth::Role;
use common::ports::Clock;
use lambda_http::http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::limits::SteppedClock;
use crate::support::{assert_error, fresh_store, test_settings, Backend, TestApp};

crate::on_both_stores!(
    stale_clients_page_never_synced_first_then_oldest_sync,
    a_stale_list_refuses_bad_input_with_the_field_named,
);

const UPDATE: &str = "/api/crm/update-sync-status";

fn encoded(at: DateTime<Utc>) -> String {
    common::time::rfc3339(at)
        .replace(':', "%3A")
        .replace('+', "%2B")
}

/// Every client of the stale list before `before`, page by page (`limit` a page).
async fn walk(app: &TestApp, key: &str, before: DateTime<Utc>, limit: usize) -> Vec<Value> {
    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..40 {
        let mut path = format!(
            "/api/clients?syncedBefore={}&limit={limit}",
            encoded(before)
        );
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let (status, page) = app.get(&path, key).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().expect("items").clone();
        assert!(items.len() <= limit, "{page}");
        listed.extend(items);
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return listed,
        }
    }
    panic!("the stale list did not end in 40 pages");
}

fn ids(clients: &[Value]) -> Vec<Uuid> {
    clients
        .iter()
        .map(|c| c["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

async fn stale_clients_page_never_synced_first_then_oldest_sync(backend: Backend) {
    let mut app = TestApp::new(backend).await;
    let clock = SteppedClock::new();
    app.deps.clock = Arc::<SteppedClock>::clone(&clock) as _;
    let (_, key) = app.tenant_with(Role::Manager).await;

    // Three never synced (one of them failed: a failure is no sync), three synced a minute
    // apart, the second of them failing since (it keeps its last sync time).
    let mut never = Vec::new();
    for name in ["n0", "n1", "n2"] {
        never.push(app.create_client(&key, name).await);
    }
    let report = |client: Uuid, update: Value| {
        let mut body = update;
        body["clientId"] = json!(client);
        body
    };
    let (status, answer) = app
        .post(
            UPDATE,
            &key,
            &report(never[1], json!({"status": "FAILED", "error": "boom"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let mut synced = Vec::new();
    for name in ["s0", "s1", "s2"] {
        let client = app.create_client(&key, name).await;
        clock.advance(TimeDelta::minutes(1));
        let (status, answer) = app
            .post(UPDATE, &key, &report(client, json!({"status": "SYNCED"})))
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        synced.push((client, clock.now()));
    }
    clock.advance(TimeDelta::minutes(1));
    let (status, answer) = app
        .post(
            UPDATE,
            &key,
            &report(synced[1].0, json!({"status": "FAILED"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    never.sort();
    let all: Vec<Uuid> = never
        .iter()
        .copied()
        .chain(synced.iter().map(|s| s.0))
        .collect();
    for limit in [1, 2, 50] {
        let listed = walk(&app, &key, clock.now(), limit).await;
        assert_eq!(ids(&listed), all, "pages of {limit}");
    }
    // Before the third sync: it is not stale yet; the second's time is shown, FAILED as it is.
    let listed = walk(&app, &key, synced[2].1, 2).await;
    assert_eq!(ids(&listed), all[..5]);
    assert_eq!(listed[4]["syncStatus"], "FAILED");
    assert_eq!(
        listed[4]["lastSyncedAt"],
        json!(common::time::rfc3339(synced[1].1))
    );
    assert_eq!(listed[0]["lastSyncedAt"], Value::Null);
    // A bound before every sync lists the never-synced alone.
    let listed = walk(&app, &key, synced[0].1, 50).await;
    assert_eq!(ids(&listed), never);
    // Syncing a listed client takes it off.
    let (status, answer) = app
        .post(UPDATE, &key, &report(never[0], json!({"status": "SYNCED"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let listed = walk(&app, &key, clock.now(), 50).await;
    assert_eq!(ids(&listed), all[1..]);
    // A reader may list; the plain list is unchanged by the new parameter.
    let (status, page) = app.get("/api/clients?limit=2", &key).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
}

async fn a_stale_list_refuses_bad_input_with_the_field_named(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (tenant, key) = app.tenant_with(Role::Manager).await;
    let reader = app.key_for(tenant, Role::ReadOnly).await;
    let (status, page) = app
        .get("/api/clients?syncedBefore=2026-01-01T00:00:00Z", &reader)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    // An id cursor from the plain list is not a stale list's cursor, nor the reverse.
    let id_cursor = common::domain::page::encode_cursor(Uuid::now_v7());
    let stale_cursor = common::domain::stale_clients::StaleKey {
        last_synced_at: None,
        id: Uuid::now_v7(),
    }
    .encode();
    for (query, field) in [
        ("syncedBefore=yesterday".to_owned(), "syncedBefore"),
        ("syncedBefore=2026-01-01".to_owned(), "syncedBefore"),
        (
            "syncedBefore=2026-01-01T00:00:00Z&syncStatus=FAILED".to_owned(),
            "syncedBefore",
        ),
        (
            "syncedBefore=2026-01-01T00:00:00Z&cursor=nope".to_owned(),
            "cursor",
        ),
        (
            format!("syncedBefore=2026-01-01T00:00:00Z&cursor={id_cursor}"),
            "cursor",
        ),
        (format!("cursor={stale_cursor}"), "cursor"),
        (
            "syncedBefore=2026-01-01T00:00:00Z&limit=0".to_owned(),
            "limit",
        ),
        // Past year 9999 in UTC, which the stores cannot order as text.
        (
            "syncedBefore=9999-12-31T23:00:00-05:00".to_owned(),
            "syncedBefore",
        ),
    ] {
        let (status, body) = app.get(&format!("/api/clients?{query}"), &key).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
        assert!(body["details"][field].is_string(), "{query}: {body}");
    }
    // A cursor at or past the bound (from a list with a later one) is the end of the list.
    let late = common::domain::stale_clients::StaleKey {
        last_synced_at: Some("2026-06-01T00:00:00Z".parse().unwrap()),
        id: Uuid::now_v7(),
    }
    .encode();
    app.create_client(&key, "never synced").await;
    let (status, page) = app
        .get(
            &format!("/api/clients?syncedBefore=2026-01-01T00:00:00Z&cursor={late}"),
            &key,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page, json!({"items": [], "nextCursor": null}));
}

/// A client item written before the `last_sync` index existed (no index keys) is not listed;
/// `crm-admin index-clients` puts it in, once, and a second run finds nothing to do.
#[tokio::test]
async fn dynamodb_index_clients_lists_clients_written_before_the_index() {
    let fixture = fresh_store(Backend::DynamoDb).await;
    let (dynamodb, table) = fixture.dynamodb.clone().unwrap();
    let app = TestApp::over(fixture, test_settings());
    let (tenant, key) = app.tenant_with(Role::Manager).await;
    let old = app.create_client(&key, "old").await;
    let new = app.create_client(&key, "new").await;
    dynamodb
        .update_item()
        .table_name(&table)
        .key("pk", AttributeValue::S(format!("TENANT#{tenant}")))
        .key("sk", AttributeValue::S(format!("CLIENT#{old}")))
        .update_expression("REMOVE lspk, lssk")
        .send()
        .await
        .unwrap();
    let now = Utc::now() + TimeDelta::minutes(1);
    assert_eq!(ids(&walk(&app, &key, now, 10).await), vec![new]);

    let store = common::adapters::dynamodb::DynamoStore::new(dynamodb, table);
    assert_eq!(store.index_clients(tenant).await.unwrap(), 1);
    let mut both = vec![old, new];
    both.sort();
    assert_eq!(ids(&walk(&app, &key, now, 10).await), both);
    assert_eq!(store.index_clients(tenant).await.unwrap(), 0);
}

/// `crm-admin create-tables` over a table an earlier version made (without the `last_sync`
/// index) adds the index, and the stale list then works on it.
#[tokio::test]
async fn dynamodb_create_tables_adds_the_index_an_older_table_lacks() {
    use common::adapters::dynamodb::tables::{create_table, main_table, LAST_SYNC};
    let (dynamodb, _) = common::config::aws_clients().await;
    let table = format!("crm-test-{}", Uuid::new_v4());
    let mut older = main_table();
    older.indexes.retain(|index| index.name != LAST_SYNC);
    create_table(&dynamodb, &table, &older).await.unwrap();
    let indexes = |described: aws_sdk_dynamodb::types::TableDescription| -> Vec<String> {
        described
            .global_secondary_indexes()
            .iter()
            .filter_map(|index| index.index_name().map(str::to_owned))
            .collect()
    };
    let describe = || async {
        dynamodb
            .describe_table()
            .table_name(&table)
            .send()
            .await
            .unwrap()
            .table
            .unwrap()
    };
    assert!(!indexes(describe().await).contains(&LAST_SYNC.to_owned()));

    create_table(&dynamodb, &table, &main_table())
        .await
        .unwrap();
    let now = indexes(describe().await);
    assert!(now.contains(&LAST_SYNC.to_owned()), "{now:?}");
    assert_eq!(now.len(), main_table().indexes.len());
    // Made again: nothing to add, no error.
    create_table(&dynamodb, &table, &main_table())
        .await
        .unwrap();
}
