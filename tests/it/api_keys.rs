//! API keys that expire and show their last use (`POST /api/keys` with `expiresAt`, `GET
//! /api/keys`'s `lastUsedAt`), on both stores.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::domain::auth::Role;
use common::ports::Clock;
use common::service::key_cache::KeyCache;
use common::time::rfc3339;
use lambda_http::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::limits::SteppedClock;
use crate::on_both_stores;
use crate::support::{Backend, TestApp};

/// An app whose clock moves only when the test says.
async fn app_with_clock(backend: Backend) -> (TestApp, Arc<SteppedClock>) {
    let mut app = TestApp::new(backend).await;
    let clock = SteppedClock::new();
    app.deps.clock = clock.clone();
    (app, clock)
}

/// Creates a key through the API; returns the created key's JSON.
async fn create_key(app: &TestApp, admin: &str, body: Value) -> (StatusCode, Value) {
    let body = body.to_string();
    app.call(Method::POST, "/api/keys", Some(admin), Some(&body))
        .await
}

async fn listed(app: &TestApp, admin: &str, key_id: &str) -> Value {
    let (status, list) = app.call(Method::GET, "/api/keys", Some(admin), None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["id"] == key_id)
        .cloned()
        .unwrap_or_else(|| panic!("key {key_id} listed: {list}"))
}

fn at(time: DateTime<Utc>) -> String {
    rfc3339(time)
}

async fn a_key_created_to_expire_works_until_then_and_is_refused_after(backend: Backend) {
    let (app, clock) = app_with_clock(backend).await;
    let (_, admin) = app.tenant_with(Role::Admin).await;
    let expires = clock.now() + chrono::TimeDelta::hours(1);

    let (status, created) = create_key(
        &app,
        &admin,
        json!({"name": "quarter", "role": "READ_ONLY", "expiresAt": at(expires)}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["expiresAt"], at(expires));
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(listed(&app, &admin, &id).await["expiresAt"], at(expires));

    let (status, me) = app.call(Method::GET, "/api/me", Some(&key), None).await;
    assert_eq!(status, StatusCode::OK, "{me}");

    // A second key that expires at the same time, first used after it: refused from the store
    // read, as the first is from this process's memory of it.
    let (_, unused) = create_key(
        &app,
        &admin,
        json!({"name": "unused", "role": "READ_ONLY", "expiresAt": at(expires)}),
    )
    .await;
    let unused = unused["key"].as_str().unwrap().to_owned();

    clock.advance(chrono::TimeDelta::seconds(3599));
    let (status, _) = app.call(Method::GET, "/api/me", Some(&key), None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a second before its expiry it works"
    );

    clock.advance(chrono::TimeDelta::seconds(1));
    for key in [&key, &unused] {
        let response = app
            .respond(Method::GET, "/api/clients", Some(key), None, None)
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{challenge}"
        );
        let body: Value = serde_json::from_slice(response.body()).unwrap();
        let message = body["error"].as_str().unwrap();
        assert!(
            message.contains("expired") && message.contains(&at(expires)),
            "the message says the key expired, and when: {message}"
        );
    }

    // The tenant's other keys are not touched, and the expired key is still listed (an ADMIN
    // sees what stopped working and deletes it).
    let (status, _) = app.call(Method::GET, "/api/keys", Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed(&app, &admin, &id).await["expiresAt"], at(expires));
}

async fn an_expiry_must_be_a_time_in_the_future(backend: Backend) {
    let (app, clock) = app_with_clock(backend).await;
    let (_, admin) = app.tenant_with(Role::Admin).await;
    let now = clock.now();
    let bad = [
        (json!(at(now)), "must be in the future"),
        (
            json!(at(now - chrono::TimeDelta::days(1))),
            "must be in the future",
        ),
        (json!("tomorrow"), "ISO 8601"),
        (json!(1_800_000_000), "must be a string"),
    ];
    for (expires, message) in bad {
        let body = json!({"name": "k", "role": "ADMIN", "expiresAt": expires});
        let (status, reply) = create_key(&app, &admin, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{expires}: {reply}");
        let detail = reply["details"]["expiresAt"].as_str().unwrap_or_default();
        assert!(detail.contains(message), "{expires}: {reply}");
    }
    let (_, list) = app.call(Method::GET, "/api/keys", Some(&admin), None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "none was made");

    for absent in [
        json!({"name": "k", "role": "ADMIN"}),
        json!({"name": "k", "role": "ADMIN", "expiresAt": null}),
    ] {
        let (status, created) = create_key(&app, &admin, absent).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(
            created["expiresAt"],
            Value::Null,
            "a key that does not expire"
        );
        clock.advance(chrono::TimeDelta::seconds(10 * 365 * 24 * 3600));
        let key = created["key"].as_str().unwrap();
        let (status, _) = app.call(Method::GET, "/api/me", Some(key), None).await;
        assert_eq!(status, StatusCode::OK, "ten years on, it works");
    }
}

async fn a_key_s_last_use_is_listed_and_written_at_most_once_a_minute(backend: Backend) {
    let (mut app, clock) = app_with_clock(backend).await;
    // Every request reads the key from the store, as a request on a new container does.
    app.deps.keys = Arc::new(KeyCache::new(Duration::ZERO));
    let (_, admin) = app.tenant_with(Role::Admin).await;
    let (_, created) = create_key(&app, &admin, json!({"name": "job", "role": "SALES_REP"})).await;
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["lastUsedAt"], Value::Null);
    assert_eq!(listed(&app, &admin, &id).await["lastUsedAt"], Value::Null);

    let first = clock.now();
    let (status, _) = app
        .call(Method::GET, "/api/clients", Some(&key), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed(&app, &admin, &id).await["lastUsedAt"], at(first));

    // Uses within the minute are not written: the one written stays.
    for _ in 0..3 {
        clock.advance(chrono::TimeDelta::seconds(20));
        let (status, _) = app
            .call(Method::GET, "/api/clients", Some(&key), None)
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(listed(&app, &admin, &id).await["lastUsedAt"], at(first));

    clock.advance(chrono::TimeDelta::seconds(1));
    let later = clock.now();
    let (status, _) = app
        .call(Method::GET, "/api/clients", Some(&key), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        listed(&app, &admin, &id).await["lastUsedAt"],
        at(later),
        "a use more than a minute after the one written is written"
    );
}

/// Two processes that read the same stale use both try to write theirs: the one that lands
/// first stays, as the other's condition (the use written is stale) no longer holds.
async fn concurrent_uses_write_once_and_a_deleted_key_is_not_brought_back(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (tenant, _) = app.tenant_with(Role::Admin).await;
    let key = app.key_for(tenant, Role::ReadOnly).await;
    let hash = common::domain::auth::hash_key(&key);
    let store = &app.deps.store;
    let t0 = DateTime::parse_from_rfc3339("2026-12-03T10:00:00.000Z")
        .unwrap()
        .to_utc();
    let stale = |now: DateTime<Utc>| common::domain::auth::use_stale_before(now);
    store.record_key_use(&hash, t0, stale(t0)).await.unwrap();
    let t1 = t0 + chrono::TimeDelta::seconds(90);
    let t1_later = t1 + chrono::TimeDelta::milliseconds(5);
    store
        .record_key_use(&hash, t1_later, stale(t1_later))
        .await
        .unwrap();
    store.record_key_use(&hash, t1, stale(t1)).await.unwrap();
    let used = store
        .find_api_key(&hash)
        .await
        .unwrap()
        .unwrap()
        .last_used_at;
    assert_eq!(used, Some(t1_later), "the second write found the use fresh");

    let stored = store.find_api_key(&hash).await.unwrap().unwrap();
    assert!(store.delete_api_key(tenant, stored.id, None).await.unwrap());
    let t2 = t1 + chrono::TimeDelta::minutes(5);
    store.record_key_use(&hash, t2, stale(t2)).await.unwrap();
    assert_eq!(
        store.find_api_key(&hash).await.unwrap(),
        None,
        "no key comes back"
    );
    let keys = store.list_api_keys(tenant).await.unwrap();
    assert!(keys.iter().all(|k| k.id != stored.id));
}

on_both_stores!(
    a_key_created_to_expire_works_until_then_and_is_refused_after,
    an_expiry_must_be_a_time_in_the_future,
    a_key_s_last_use_is_listed_and_written_at_most_once_a_minute,
    concurrent_uses_write_once_and_a_deleted_key_is_not_brought_back,
);
