//! The audit log (`GET /api/audit`, GraphQL `auditLog`), on both stores: each management action
//! once, with the acting key and the fields it set, never a secret or a key; ADMIN only; a
//! refused change records nothing.

use common::domain::auth::Role;
use common::ports::{Clock, SystemClock};
use common::service::tenants::create_tenant;
use common::time::rfc3339;
use lambda_http::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::graphql::data;
use crate::limits::SteppedClock;
use crate::on_both_stores;
use crate::receiver::{Receiver, Reply};
use crate::support::{Backend, TestApp};

async fn call(app: &TestApp, method: Method, path: &str, key: &str, body: Value) -> Value {
    let body = (!body.is_null()).then(|| body.to_string());
    let (status, reply) = app.call(method, path, Some(key), body.as_deref()).await;
    assert!(status.is_success(), "{path}: {status} {reply}");
    reply
}

/// Every entry of the tenant's log, newest first, read page by page.
async fn audit_log(app: &TestApp, key: &str, query: &str) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let after = cursor.map(|c| format!("&cursor={c}")).unwrap_or_default();
        let path = format!("/api/audit?limit=2&{query}{after}");
        let (status, page) = app.call(Method::GET, &path, Some(key), None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        entries.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return entries,
        }
    }
}

fn actions(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|entry| entry["action"].as_str().unwrap())
        .collect()
}

async fn each_management_action_appears_once_with_its_actor_and_no_secret(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, root) = app.tenant_with(Role::Admin).await;
    let receiver = Receiver::start(Reply::Status(200)).await;

    // The acting key: an ADMIN key made through the API, so that it has a name of its own.
    let made = call(
        &app,
        Method::POST,
        "/api/keys",
        &root,
        json!({"name": "ops", "role": "ADMIN"}),
    )
    .await;
    let ops = made["key"].as_str().unwrap().to_owned();
    let ops_id = made["id"].as_str().unwrap().to_owned();

    let brought = "whsec_QXVkaXRlZCBzZWNyZXQgdGhhdCBtdXN0IG5vdCBsZWFr";
    let webhook = call(
        &app,
        Method::POST,
        "/api/webhooks",
        &ops,
        json!({"url": receiver.url, "events": ["lead.created"], "secret": brought,
               "headers": {"Authorization": "Bearer header-credential"}}),
    )
    .await;
    let id = webhook["id"].as_str().unwrap().to_owned();
    let path = format!("/api/webhooks/{id}");
    call(
        &app,
        Method::PATCH,
        &path,
        &ops,
        json!({"description": "billing"}),
    )
    .await;
    let rotated = call(
        &app,
        Method::POST,
        &format!("{path}/rotate-secret"),
        &ops,
        Value::Null,
    )
    .await;
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    let tested = call(
        &app,
        Method::POST,
        &format!("{path}/test"),
        &ops,
        Value::Null,
    )
    .await;
    let delivery = tested["deliveryId"].as_str().unwrap().to_owned();
    let resend = format!("/api/webhooks/deliveries/{delivery}/resend");
    call(&app, Method::POST, &resend, &ops, Value::Null).await;
    let range = json!({"since": "2026-01-01T00:00:00Z"});
    call(
        &app,
        Method::POST,
        &format!("{path}/recover"),
        &ops,
        range.clone(),
    )
    .await;
    call(&app, Method::POST, &format!("{path}/replay"), &ops, range).await;
    call(
        &app,
        Method::POST,
        "/api/webhooks/retry",
        &ops,
        json!({"webhookId": id}),
    )
    .await;
    let other = call(
        &app,
        Method::POST,
        "/api/keys",
        &ops,
        json!({"name": "ci", "role": "READ_ONLY"}),
    )
    .await;
    let other_key = other["key"].as_str().unwrap().to_owned();
    let other_id = other["id"].as_str().unwrap().to_owned();
    call(
        &app,
        Method::DELETE,
        &format!("/api/keys/{other_id}"),
        &ops,
        Value::Null,
    )
    .await;
    call(&app, Method::DELETE, &path, &ops, Value::Null).await;

    let entries = audit_log(&app, &ops, "").await;
    assert_eq!(
        actions(&entries),
        [
            "webhook.delete",
            "key.delete",
            "key.create",
            "deliveries.retry",
            "webhook.replay",
            "webhook.recover",
            "delivery.resend",
            "webhook.test",
            "webhook.rotate_secret",
            "webhook.update",
            "webhook.create",
            "key.create",
        ],
        "newest first, each once: {entries:#?}"
    );
    let by_ops = &entries[..entries.len() - 1];
    for entry in by_ops {
        assert_eq!(
            entry["actor"],
            json!({"keyId": ops_id, "keyName": "ops"}),
            "{entry}"
        );
    }
    assert_eq!(
        entries.last().unwrap()["actor"]["keyName"],
        "test",
        "root made ops"
    );
    assert_eq!(entries.last().unwrap()["targetId"], ops_id);

    let entry = |action: &str| entries.iter().find(|e| e["action"] == action).unwrap();
    let created = entry("webhook.create");
    assert_eq!(created["targetId"], id);
    assert_eq!(created["changes"]["url"], receiver.url);
    assert_eq!(created["changes"]["events"], json!(["lead.created"]));
    assert_eq!(
        created["changes"]["headers"],
        json!({"authorization": "********"}),
        "a header value may be a credential"
    );
    assert_eq!(
        entry("webhook.update")["changes"],
        json!({"description": "billing"}),
        "only what the change set"
    );
    assert_eq!(
        entry("webhook.rotate_secret")["changes"],
        json!({"secret": "********"})
    );
    assert_eq!(entry("webhook.test")["changes"]["deliveryId"], delivery);
    assert_eq!(entry("delivery.resend")["targetId"], delivery);
    assert_eq!(entry("key.create")["changes"]["name"], "ci");
    assert_eq!(entry("key.create")["changes"]["role"], "READ_ONLY");
    assert_eq!(entry("key.delete")["targetId"], other_id);
    assert_eq!(entry("webhook.delete")["targetId"], id);

    let text = Value::Array(entries.clone()).to_string();
    for secret in [
        brought,
        new_secret.as_str(),
        "header-credential",
        &other_key,
        &ops,
        &root,
    ] {
        assert!(
            !text.contains(secret),
            "the log holds no secret or key: {secret}"
        );
    }

    // GraphQL reads the same log.
    let query = "query($first: Int) { auditLog(first: $first) { edges { node { action \
                 actor { keyId keyName } targetId changes } } pageInfo { hasNextPage } } }";
    let found = data(&app, &ops, query, json!({"first": 100})).await;
    let nodes: Vec<Value> = found["auditLog"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"].clone())
        .collect();
    assert_eq!(actions(&nodes), actions(&entries));
    assert_eq!(nodes[0]["actor"]["keyName"], "ops");
    assert_eq!(nodes[0]["targetId"], id);
}

async fn the_log_is_for_admins_and_filters_by_time_and_action(backend: Backend) {
    let mut app = TestApp::new(backend).await;
    let clock = SteppedClock::new();
    app.deps.clock = clock.clone();
    let (tenant, admin) = app.tenant_with(Role::Admin).await;
    let manager = app.key_for(tenant, Role::Manager).await;
    let t0 = clock.now();
    let text = |seconds: i64| rfc3339(t0 + chrono::TimeDelta::seconds(seconds));
    let start = text(0);
    let mut ids = Vec::new();
    for n in 0..5 {
        let body = json!({"url": format!("https://example.com/{n}"), "events": ["*"]});
        let made = call(&app, Method::POST, "/api/webhooks", &admin, body).await;
        ids.push(made["id"].as_str().unwrap().to_owned());
        clock.advance(chrono::TimeDelta::seconds(10));
    }
    let later = text(50);
    call(
        &app,
        Method::DELETE,
        &format!("/api/webhooks/{}", ids[0]),
        &admin,
        Value::Null,
    )
    .await;

    let all = audit_log(&app, &admin, "").await;
    assert_eq!(all.len(), 6);
    let created = audit_log(&app, &admin, "action=webhook.create").await;
    let targets: Vec<&str> = created
        .iter()
        .map(|e| e["targetId"].as_str().unwrap())
        .collect();
    let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(targets, newest_first);
    let deleted = audit_log(&app, &admin, "action=webhook.delete").await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(
        audit_log(&app, &admin, &format!("since={later}"))
            .await
            .len(),
        1
    );
    // The second to the fourth creation: 10 s apart from `start`, `until` excluded.
    let (from, to) = (text(10), text(40));
    let window = audit_log(&app, &admin, &format!("since={from}&until={to}")).await;
    let targets: Vec<&str> = window
        .iter()
        .map(|e| e["targetId"].as_str().unwrap())
        .collect();
    assert_eq!(targets, [ids[3].as_str(), ids[2].as_str(), ids[1].as_str()]);

    let (status, refused) = app
        .call(Method::GET, "/api/audit", Some(&manager), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("AUDIT_READ"));
    let query = "{ auditLog { edges { node { action } } } }";
    let (_, refused) = crate::graphql::gql(&app, &manager, query, Value::Null).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{refused}"
    );
    let query = "{ auditLog(action: \"webhook.delete\") { edges { node { targetId } } } }";
    let found = data(&app, &admin, query, Value::Null).await;
    assert_eq!(
        found["auditLog"]["edges"],
        json!([{"node": {"targetId": ids[0]}}])
    );

    let bad = format!("/api/audit?action=webhook.explode&since=yesterday&until={start}");
    let (status, refused) = app.call(Method::GET, &bad, Some(&admin), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused["details"]["action"]
        .as_str()
        .unwrap()
        .contains("webhook.create"));
    assert!(refused["details"]["since"].is_string());
    let backwards = format!("/api/audit?since={later}&until={start}");
    let (status, refused) = app.call(Method::GET, &backwards, Some(&admin), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["details"]["since"], "must not be after until");
}

async fn a_refused_change_records_nothing(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (tenant, admin) = app.tenant_with(Role::Admin).await;
    let reader = app.key_for(tenant, Role::ReadOnly).await;
    let missing = "/api/webhooks/0190a4b6-0000-7000-8000-000000000000";
    let refusals = [
        (
            Method::POST,
            "/api/webhooks",
            admin.as_str(),
            json!({"url": "ftp://x", "events": []}),
        ),
        (
            Method::POST,
            "/api/webhooks",
            reader.as_str(),
            json!({"url": "https://example.com", "events": ["*"]}),
        ),
        (Method::DELETE, missing, admin.as_str(), Value::Null),
        (
            Method::PATCH,
            missing,
            admin.as_str(),
            json!({"description": "x"}),
        ),
        (
            Method::POST,
            "/api/keys",
            admin.as_str(),
            json!({"name": "", "role": "ADMIN"}),
        ),
        (
            Method::DELETE,
            "/api/keys/0190a4b6-0000-7000-8000-000000000000",
            admin.as_str(),
            Value::Null,
        ),
    ];
    for (method, path, key, body) in refusals {
        let body = (!body.is_null()).then(|| body.to_string());
        let (status, reply) = app.call(method, path, Some(key), body.as_deref()).await;
        assert!(status.is_client_error(), "{path}: {status} {reply}");
    }
    assert_eq!(audit_log(&app, &admin, "").await, Vec::<Value>::new());
}

/// A tenant made by `crm-admin` records its creation, by the tool, with no key.
async fn a_tenant_s_creation_is_recorded_by_the_tool_that_made_it(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (tenant, key) = create_tenant(app.deps.store.as_ref(), &SystemClock, "acme")
        .await
        .unwrap();
    let entries = audit_log(&app, &key, "").await;
    assert_eq!(actions(&entries), ["tenant.create"]);
    assert_eq!(entries[0]["targetId"], tenant.id.to_string());
    assert_eq!(
        entries[0]["actor"],
        json!({"keyId": null, "keyName": "crm-admin"})
    );
    assert_eq!(entries[0]["changes"]["name"], "acme");
    assert!(!entries[0].to_string().contains(&key));
}

on_both_stores!(
    each_management_action_appears_once_with_its_actor_and_no_secret,
    the_log_is_for_admins_and_filters_by_time_and_action,
    a_refused_change_records_nothing,
    a_tenant_s_creation_is_recorded_by_the_tool_that_made_it,
);
