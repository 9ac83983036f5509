//! The REST API over real `lambda_http` requests, on both stores: seed shapes and behaviour.

use common::domain::auth::Role;
use lambda_http::http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{assert_error, Backend, TestApp};

crate::on_both_stores!(
    sync_status_has_the_seed_shape_and_follows_updates,
    a_repeated_status_emits_no_second_event,
    client_crud_round_trip_with_events,
    patching_a_synced_client_marks_it_needs_update,
    listing_pages_and_filters_over_http,
    another_tenants_ids_are_not_found,
    api_keys_are_shown_once_and_can_be_revoked,
);

async fn events(app: &TestApp, tenant: Uuid) -> Vec<(String, Value)> {
    app.deps
        .store
        .list_outbox_events(tenant, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|event| (event.event, event.data))
        .collect()
}

async fn sync_status_has_the_seed_shape_and_follows_updates(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let (status, body) = app.get("/api/crm/sync-status", &key).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({
            "totalClients": 0, "syncedClients": 0, "pendingClients": 0,
            "failedClients": 0, "needsUpdateClients": 0, "lastSyncTime": null
        })
    );

    let a = app.create_client(&key, "A").await;
    let _b = app.create_client(&key, "B").await;
    let (status, body) = app
        .post(
            "/api/crm/update-sync-status",
            &key,
            &json!({"clientId": a, "status": "SYNCED"}),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));

    let (_, body) = app.get("/api/crm/sync-status", &key).await;
    assert_eq!(body["totalClients"], 2);
    assert_eq!(body["syncedClients"], 1);
    assert_eq!(body["needsUpdateClients"], 1);
    assert_eq!(body["pendingClients"], 0);
    assert_eq!(body["failedClients"], 0);
    let (_, client) = app.get(&format!("/api/clients/{a}"), &key).await;
    assert_eq!(body["lastSyncTime"], client["lastSyncedAt"]);
    assert!(body["lastSyncTime"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
}

async fn a_repeated_status_emits_no_second_event(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (tenant, key) = app.tenant_with(Role::Admin).await;
    let id = app.create_client(&key, "A").await;
    let update = json!({"clientId": id, "status": "PENDING"});
    for _ in 0..2 {
        let (status, _) = app.post("/api/crm/update-sync-status", &key, &update).await;
        assert_eq!(status, StatusCode::OK);
    }
    let events = events(&app, tenant).await;
    let changes: Vec<&Value> = events
        .iter()
        .filter(|(name, _)| name == "sync.status.changed")
        .map(|(_, data)| data)
        .collect();
    assert_eq!(changes.len(), 1, "{events:?}");
    let data = changes[0];
    assert_eq!(data["clientId"], json!(id));
    assert_eq!(data["oldStatus"], "NEEDS_UPDATE");
    assert_eq!(data["newStatus"], "PENDING");
    assert!(data["timestamp"].as_str().is_some());
    let keys: Vec<&String> = data.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["clientId", "newStatus", "oldStatus", "timestamp"]);
}

async fn client_crud_round_trip_with_events(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (tenant, key) = app.tenant_with(Role::Admin).await;
    let (status, created) = app
        .post(
            "/api/clients",
            &key,
            &json!({"name": "Ada Lovelace", "email": "ada@example.com", "company": "Engines",
                    "phone": "+44 20 7946 0958", "externalId": "hs-123"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(Uuid::parse_str(&id).is_ok());
    assert_eq!(created["syncStatus"], "NEEDS_UPDATE");
    assert_eq!(created["externalId"], "hs-123");
    assert_eq!(created["lastSyncedAt"], Value::Null);
    for field in ["createdAt", "updatedAt"] {
        assert!(created[field].as_str().is_some(), "{field}");
    }

    let (status, fetched) = app.get(&format!("/api/clients/{id}"), &key).await;
    assert_eq!((status, &fetched), (StatusCode::OK, &created));

    let (status, patched) = app
        .patch(
            &format!("/api/clients/{id}"),
            &key,
            &json!({"company": "Analytical Engines", "phone": null}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["company"], "Analytical Engines");
    assert_eq!(patched["phone"], Value::Null);
    assert_eq!(patched["name"], "Ada Lovelace");

    let (status, body) = app.delete(&format!("/api/clients/{id}"), &key).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (status, body) = app.get(&format!("/api/clients/{id}"), &key).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app.delete(&format!("/api/clients/{id}"), &key).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);

    let names: Vec<String> = events(&app, tenant)
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(
        names,
        ["client.created", "client.updated", "client.deleted"]
    );
    let (_, counts) = app.get("/api/crm/sync-status", &key).await;
    assert_eq!(counts["totalClients"], 0);
    assert_eq!(counts["needsUpdateClients"], 0);
}

async fn patching_a_synced_client_marks_it_needs_update(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (tenant, key) = app.tenant_with(Role::Admin).await;
    let id = app.create_client(&key, "A").await;
    app.post(
        "/api/crm/update-sync-status",
        &key,
        &json!({"clientId": id, "status": "SYNCED"}),
    )
    .await;
    let (status, patched) = app
        .patch(&format!("/api/clients/{id}"), &key, &json!({"name": "A2"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patched["syncStatus"], "NEEDS_UPDATE");
    assert!(
        patched["lastSyncedAt"].is_string(),
        "the last sync is still known"
    );

    let events = events(&app, tenant).await;
    let last_two: Vec<&str> = events[events.len() - 2..]
        .iter()
        .map(|e| e.0.as_str())
        .collect();
    assert_eq!(last_two, ["client.updated", "sync.status.changed"]);
    assert_eq!(events.last().unwrap().1["oldStatus"], "SYNCED");
    let (_, counts) = app.get("/api/crm/sync-status", &key).await;
    assert_eq!(counts["syncedClients"], 0);
    assert_eq!(counts["needsUpdateClients"], 1);

    // A patch that changes nothing writes nothing.
    let before = events.len();
    let (status, _) = app
        .patch(&format!("/api/clients/{id}"), &key, &json!({"name": "A2"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(self::events(&app, tenant).await.len(), before);
}

async fn listing_pages_and_filters_over_http(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(app.create_client(&key, &format!("c{i}")).await);
    }
    for id in &ids[..3] {
        app.post(
            "/api/crm/update-sync-status",
            &key,
            &json!({"clientId": id, "status": "FAILED"}),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut path = "/api/clients?limit=3".to_owned();
    loop {
        let (status, page) = app.get(&path, &key).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().parse::<Uuid>().unwrap());
        }
        match page["nextCursor"].as_str() {
            Some(cursor) => path = format!("/api/clients?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);

    let (_, failed) = app.get("/api/clients?syncStatus=FAILED", &key).await;
    let failed: Vec<Uuid> = failed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(failed, ids[..3]);
    let (_, none) = app.get("/api/clients?syncStatus=SYNCED", &key).await;
    assert_eq!(none, json!({"items": [], "nextCursor": null}));
}

async fn another_tenants_ids_are_not_found(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, owner) = app.tenant_with(Role::Admin).await;
    let (_, stranger) = app.tenant_with(Role::Admin).await;
    let id = app.create_client(&owner, "private").await;
    let path = format!("/api/clients/{id}");

    let (status, body) = app.get(&path, &stranger).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app.patch(&path, &stranger, &json!({"name": "x"})).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app.delete(&path, &stranger).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app
        .post(
            "/api/crm/update-sync-status",
            &stranger,
            &json!({"clientId": id, "status": "SYNCED"}),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (_, listed) = app.get("/api/clients", &stranger).await;
    assert_eq!(listed["items"], json!([]));

    let (_, mine) = app.get(&path, &owner).await;
    assert_eq!(mine["name"], "private");
    assert_eq!(mine["syncStatus"], "NEEDS_UPDATE");
}

async fn api_keys_are_shown_once_and_can_be_revoked(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, admin) = app.tenant_with(Role::Admin).await;
    let (_, other_admin) = app.tenant_with(Role::Admin).await;
    let (status, created) = app
        .post(
            "/api/keys",
            &admin,
            &json!({"name": "reporting", "role": "READ_ONLY"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    let key_id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["role"], "READ_ONLY");
    assert!(key.starts_with(created["prefix"].as_str().unwrap()));

    let (status, listed) = app.get("/api/keys", &admin).await;
    assert_eq!(status, StatusCode::OK);
    let listed = listed["items"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    for item in listed {
        assert!(
            item.get("key").is_none() && item.get("keyHash").is_none(),
            "{item}"
        );
        assert!(!item.to_string().contains(&key[12..]));
    }

    // The new key works with its role's permissions.
    let (status, _) = app.get("/api/crm/sync-status", &key).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.post("/api/clients", &key, &json!({"name": "x"})).await;
    assert_error(status, &body, StatusCode::FORBIDDEN);

    // Another tenant's admin cannot see or revoke it; its own admin can.
    let path = format!("/api/keys/{key_id}");
    let (status, body) = app.delete(&path, &other_admin).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (status, _) = app.delete(&path, &admin).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get("/api/crm/sync-status", &key).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED);
}
