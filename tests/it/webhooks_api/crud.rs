//! Create, read, patch, delete and list webhooks; the event catalogue.

use std::collections::BTreeSet;

use base64::Engine as _;
use common::domain::auth::Role;
use lambda_http::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::{assert_field_error, create, id_of, items, keys_of, own_secret, webhook};
use crate::support::{assert_error, Backend, TestApp};

crate::on_both_stores!(
    creation_returns_every_field_with_defaults_and_a_secret,
    the_secret_is_in_neither_a_read_nor_a_list,
    a_secret_the_user_brings_is_kept_and_a_malformed_one_refused,
    patch_changes_only_what_it_names,
    a_patch_that_changes_nothing_is_not_an_update,
    invalid_patches_are_refused_by_field_and_change_nothing,
    a_deleted_webhook_is_not_found,
    listing_walks_every_webhook_once_in_creation_order,
    the_event_catalogue_lists_every_event_with_a_description,
);

/// `POST /api/webhooks` of a webhook with a description and a header, the rest left to defaults;
/// returns the answer (with its secret).
async fn create_crm_mirror(app: &TestApp, key: &str) -> Value {
    create(
        app,
        key,
        &json!({
            "url": "https://example.com/hooks/crm",
            "events": ["client.created", "sync.*"],
            "headers": {"X-Team": "crm"},
            "description": "CRM mirror",
        }),
    )
    .await
}

async fn creation_returns_every_field_with_defaults_and_a_secret(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let created = create_crm_mirror(&app, &key).await;
    assert_eq!(
        keys_of(&created),
        BTreeSet::from([
            "id",
            "url",
            "events",
            "headers",
            "active",
            "maxRetries",
            "retrySchedule",
            "timeoutMs",
            "rateLimitPerSecond",
            "description",
            "createdAt",
            "updatedAt",
            "secret",
            "health",
            "disabledReason",
            "disabledAt",
        ]),
        "{created}"
    );
    assert!(uuid::Uuid::parse_str(&id_of(&created)).is_ok());
    assert_eq!(created["url"], "https://example.com/hooks/crm");
    assert_eq!(created["events"], json!(["client.created", "sync.*"]));
    assert_eq!(created["headers"], json!({"x-team": "crm"}));
    assert_eq!(created["active"], true);
    assert_eq!(created["maxRetries"], 3);
    assert_eq!(created["timeoutMs"], 5000);
    assert_eq!(created["retrySchedule"], Value::Null, "the deployment's");
    assert_eq!(created["rateLimitPerSecond"], Value::Null);
    assert_eq!(created["description"], "CRM mirror");
    assert!(created["createdAt"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    assert_eq!(created["createdAt"], created["updatedAt"]);
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(
        secret.starts_with("whsec_") && secret.len() > 30,
        "{secret}"
    );
}

async fn the_secret_is_in_neither_a_read_nor_a_list(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let created = create_crm_mirror(&app, &key).await;
    let secret = created["secret"].as_str().unwrap().to_owned();

    // Shown once: neither a read nor a list ever carries it.
    let path = format!("/api/webhooks/{}", id_of(&created));
    let (status, fetched) = app.get(&path, &key).await;
    assert_eq!(status, StatusCode::OK, "{fetched}");
    let mut without_secret = created.clone();
    without_secret.as_object_mut().unwrap().remove("secret");
    assert_eq!(fetched, without_secret);
    let (status, listed) = app.get("/api/webhooks", &key).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(items(&listed), &vec![fetched.clone()]);
    for text in [fetched.to_string(), listed.to_string()] {
        assert!(!text.contains(&secret[6..]), "the secret leaked: {text}");
    }
}

async fn a_secret_the_user_brings_is_kept_and_a_malformed_one_refused(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;

    // A secret the user brings is kept as given; a malformed one is refused by name.
    let mut body = webhook("https://example.com/own", &["*"]);
    body["secret"] = json!(own_secret());
    let created = create(&app, &key, &body).await;
    assert_eq!(created["secret"], json!(own_secret()));
    let short = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([1u8; 8])
    );
    for bad in [
        "plain-text-secret",
        "whsec_",
        "whsec_!!not base64!!",
        &short,
    ] {
        let mut body = webhook("https://example.com/own", &["*"]);
        body["secret"] = json!(bad);
        let (status, reply) = app.post("/api/webhooks", &key, &body).await;
        assert_field_error(status, &reply, "secret", bad);
    }
    let (_, listed) = app.get("/api/webhooks", &key).await;
    assert_eq!(items(&listed).len(), 1, "refused webhooks are not stored");
}

/// A webhook with a header, a description and five retries, as a read shows it (no secret);
/// returns it and its path.
async fn webhook_a(app: &TestApp, key: &str) -> (Value, String) {
    let mut created = create(
        app,
        key,
        &json!({
            "url": "https://example.com/a",
            "events": ["client.*"],
            "headers": {"X-Team": "crm"},
            "description": "first",
            "maxRetries": 5,
        }),
    )
    .await;
    created.as_object_mut().unwrap().remove("secret");
    let path = format!("/api/webhooks/{}", id_of(&created));
    (created, path)
}

async fn patch_changes_only_what_it_names(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let (created, path) = webhook_a(&app, &key).await;

    let expect_after = |before: &Value, patch: &Value, after: &Value| {
        let mut expected = before.clone();
        for (field, value) in patch.as_object().unwrap() {
            expected[field] = value.clone();
        }
        expected["updatedAt"] = after["updatedAt"].clone();
        // A deactivation records when; an activation clears it.
        match patch["active"].as_bool() {
            Some(false) => {
                assert_eq!(after["disabledAt"], after["updatedAt"], "{after}");
                expected["disabledAt"] = after["disabledAt"].clone();
            }
            Some(true) => expected["disabledAt"] = Value::Null,
            None => {}
        }
        assert_eq!(after, &expected, "patch {patch}");
        assert!(
            after["updatedAt"].as_str() >= before["updatedAt"].as_str(),
            "{after}"
        );
    };
    let mut current = created.clone();
    for patch in [
        json!({"active": false}),
        json!({"description": null}),
        json!({"events": ["lead.created", "sync.*"], "timeoutMs": 10_000}),
        json!({"url": "https://example.com/b", "maxRetries": 0}),
        json!({"headers": {"x-other": "1"}, "description": "again", "active": true}),
    ] {
        let (status, patched) = app.patch(&path, &key, &patch).await;
        assert_eq!(status, StatusCode::OK, "{patch}: {patched}");
        assert!(patched.get("secret").is_none(), "{patched}");
        expect_after(&current, &patch, &patched);
        let (_, fetched) = app.get(&path, &key).await;
        assert_eq!(fetched, patched);
        current = patched;
    }
    assert_eq!(current["id"], created["id"]);
    assert_eq!(current["createdAt"], created["createdAt"]);
}

async fn a_patch_that_changes_nothing_is_not_an_update(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let (created, path) = webhook_a(&app, &key).await;

    // A patch that changes nothing is not an update.
    for patch in [json!({}), json!({"active": true, "description": "first"})] {
        let (status, patched) = app.patch(&path, &key, &patch).await;
        assert_eq!(status, StatusCode::OK, "{patched}");
        assert_eq!(patched, created, "{patch}");
    }
}

async fn invalid_patches_are_refused_by_field_and_change_nothing(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let (created, path) = webhook_a(&app, &key).await;

    // Invalid patches are refused by field and change nothing; the secret is not patchable.
    for (field, patch) in [
        ("maxRetries", json!({"maxRetries": 11})),
        ("timeoutMs", json!({"timeoutMs": 50})),
        ("url", json!({"url": "nope"})),
        ("url", json!({"url": null})),
        ("events", json!({"events": ["webhook.test"]})),
        ("headers", json!({"headers": {"X-Webhook-Event": "x"}})),
        ("secret", json!({"secret": own_secret()})),
        ("color", json!({"color": "blue"})),
    ] {
        let (status, reply) = app.patch(&path, &key, &patch).await;
        assert_field_error(status, &reply, field, &patch.to_string());
    }
    let (status, reply) = app
        .call(Method::PATCH, &path, Some(&key), Some("{\"active\": "))
        .await;
    assert_error(status, &reply, StatusCode::BAD_REQUEST);
    let (_, fetched) = app.get(&path, &key).await;
    assert_eq!(fetched, created);
}

/// A deleted webhook is gone: reads, patches and deletes of it are 404, and the list is empty.
async fn a_deleted_webhook_is_not_found(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let (_, path) = webhook_a(&app, &key).await;

    let (status, body) = app.delete(&path, &key).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (status, body) = app.get(&path, &key).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app.patch(&path, &key, &json!({"active": true})).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app.delete(&path, &key).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (_, listed) = app.get("/api/webhooks", &key).await;
    assert_eq!(listed, json!({"items": [], "nextCursor": null}));
}

async fn listing_walks_every_webhook_once_in_creation_order(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let mut created = Vec::new();
    for i in 0..25 {
        let body = webhook(&format!("https://example.com/hook/{i}"), &["*"]);
        created.push(id_of(&create(&app, &key, &body).await));
    }
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut path = "/api/webhooks?limit=10".to_owned();
    loop {
        let (status, page) = app.get(&path, &key).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        assert!(items(&page).len() <= 10, "{page}");
        for item in items(&page) {
            assert!(item.get("secret").is_none(), "{item}");
            seen.push(id_of(item));
        }
        match page["nextCursor"].as_str() {
            Some(cursor) => path = format!("/api/webhooks?limit=10&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created);

    for bad in ["limit=0", "limit=101", "limit=ten", "cursor=garbage!"] {
        let (status, body) = app.get(&format!("/api/webhooks?{bad}"), &key).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
    }
}

async fn the_event_catalogue_lists_every_event_with_a_description(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::ReadOnly).await;
    let (status, body) = app.get("/api/webhooks/events", &key).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let events = body["events"].as_array().expect("events");
    let mut expected: BTreeSet<String> = [
        "client.created",
        "client.updated",
        "client.deleted",
        "sync.status.changed",
        "lead.converted",
        "opportunity.stage_changed",
        "webhook.test",
        "webhook.disabled",
        "webhook.enabled",
    ]
    .map(str::to_owned)
    .into();
    for object in ["lead", "opportunity", "account", "contact", "activity"] {
        for action in ["created", "updated", "deleted"] {
            expected.insert(format!("{object}.{action}"));
        }
    }
    let names: Vec<String> = events
        .iter()
        .map(|e| e["name"].as_str().expect("a name").to_owned())
        .collect();
    assert_eq!(names.len(), expected.len(), "each event once: {names:?}");
    assert_eq!(names.into_iter().collect::<BTreeSet<_>>(), expected);
    for event in events {
        assert!(
            event["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{event}"
        );
    }
}
