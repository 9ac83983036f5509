//! The webhook registry and its monitoring API over real `lambda_http` requests, on both stores:
//! CRUD, validation, the catalogue, rotation and test deliveries, notify, delivery history,
//! stats, tenant isolation and outbound safety at creation.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use base64::Engine as _;
use common::domain::auth::Role;
use common::domain::webhook::TargetPolicy;
use hmac::{Hmac, Mac};
use lambda_http::http::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::receiver::{Receiver, Reply};
use crate::support::{assert_error, eventually, test_settings, Backend, TestApp};

crate::on_both_stores!(
    creation_returns_the_secret_once_with_defaults,
    invalid_webhooks_name_the_bad_field,
    patch_changes_only_what_it_names_and_delete_removes,
    listing_walks_every_webhook_once_in_creation_order,
    the_event_catalogue_lists_every_event_with_a_description,
    a_rotated_secret_signs_the_test_delivery_beside_the_old_one,
    a_failing_test_delivery_is_failed_and_never_retried,
    notify_creates_one_delivery_per_active_subscribed_webhook,
    delivery_history_and_stats_follow_real_attempts,
    another_tenants_webhooks_and_deliveries_are_not_found,
    private_and_plain_http_targets_are_refused_at_creation,
    a_burst_of_notifications_is_listed_newest_first,
    header_values_are_write_only_for_roles_that_may_not_change_webhooks,
    a_patch_that_sends_masked_values_back_keeps_them,
);

/// Generous: the worker long-polls SQS on moto, and both backends share two cores.
const WAIT: Duration = Duration::from_secs(30);

fn webhook(url: &str, events: &[&str]) -> Value {
    json!({"url": url, "events": events})
}

/// `POST /api/webhooks`, asserted 201; returns the created webhook (with its secret).
async fn create(app: &TestApp, key: &str, body: &Value) -> Value {
    let (status, created) = app.post("/api/webhooks", key, body).await;
    assert_eq!(status, StatusCode::CREATED, "{body} → {created}");
    created
}

fn id_of(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

/// A valid `whsec_` secret a user could bring along.
fn own_secret() -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([42u8; 32])
    )
}

/// Asserts a 400 with the envelope whose `details` names `field`.
fn assert_field_error(status: StatusCode, body: &Value, field: &str, case: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{case}: {body}");
    assert_error(status, body, StatusCode::BAD_REQUEST);
    assert!(
        body["details"][field]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{case}: details.{field} missing in {body}"
    );
}

fn keys_of(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

fn items(page: &Value) -> &Vec<Value> {
    page["items"].as_array().expect("a page of items")
}

async fn creation_returns_the_secret_once_with_defaults(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let created = create(
        &app,
        &key,
        &json!({
            "url": "https://example.com/hooks/crm",
            "events": ["client.created", "sync.*"],
            "headers": {"X-Team": "crm"},
            "description": "CRM mirror",
        }),
    )
    .await;
    assert_eq!(
        keys_of(&created),
        BTreeSet::from([
            "id",
            "url",
            "events",
            "headers",
            "active",
            "maxRetries",
            "timeoutMs",
            "description",
            "createdAt",
            "updatedAt",
            "secret",
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
    assert_eq!(items(&listed).len(), 2, "refused webhooks are not stored");
}

async fn invalid_webhooks_name_the_bad_field(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let url = "https://example.com/hook";
    let with = |field: &str, value: Value| {
        let mut body = webhook(url, &["client.created"]);
        body[field] = value;
        body
    };
    let cases: Vec<(&str, Value)> = vec![
        ("url", json!({"events": ["*"]})),
        ("events", json!({"url": url})),
        ("events", with("events", json!([]))),
        ("events", with("events", json!(["client.exploded"]))),
        ("events", with("events", json!(["nope.*"]))),
        ("events", with("events", json!(["webhook.test"]))),
        ("url", with("url", json!("not a url"))),
        ("url", with("url", json!("/relative/path"))),
        ("url", with("url", json!("ftp://example.com/x"))),
        ("url", with("url", json!(""))),
        ("url", with("url", json!(42))),
        (
            "headers",
            with("headers", json!({"X-Webhook-Signature": "forged"})),
        ),
        ("headers", with("headers", json!({"webhook-id": "msg_1"}))),
        ("headers", with("headers", json!({"Host": "evil.example"}))),
        ("headers", with("headers", json!({"Content-Length": "1"}))),
        ("headers", with("headers", json!({"X-Team": 5}))),
        ("maxRetries", with("maxRetries", json!(11))),
        ("maxRetries", with("maxRetries", json!(-1))),
        ("timeoutMs", with("timeoutMs", json!(50))),
        ("timeoutMs", with("timeoutMs", json!(30_001))),
        ("active", with("active", json!("yes"))),
        ("description", with("description", json!("x".repeat(501)))),
        ("color", with("color", json!("blue"))),
    ];
    for (field, body) in &cases {
        let (status, reply) = app.post("/api/webhooks", &key, body).await;
        assert_field_error(status, &reply, field, &body.to_string());
    }
    // The limits themselves are accepted.
    let mut body = webhook(url, &["client.created"]);
    body["maxRetries"] = json!(10);
    body["timeoutMs"] = json!(30_000);
    let created = create(&app, &key, &body).await;
    assert_eq!(
        (created["maxRetries"].clone(), created["timeoutMs"].clone()),
        (json!(10), json!(30_000))
    );
    body["maxRetries"] = json!(0);
    body["timeoutMs"] = json!(100);
    create(&app, &key, &body).await;

    for malformed in ["", "{", "{\"url\": }", "[1]", "\"text\"", "null"] {
        let (status, reply) = app
            .call(Method::POST, "/api/webhooks", Some(&key), Some(malformed))
            .await;
        assert_error(status, &reply, StatusCode::BAD_REQUEST);
    }
    let (_, listed) = app.get("/api/webhooks", &key).await;
    assert_eq!(items(&listed).len(), 2, "only the valid ones were stored");
}

async fn patch_changes_only_what_it_names_and_delete_removes(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let mut created = create(
        &app,
        &key,
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

    let expect_after = |before: &Value, patch: &Value, after: &Value| {
        let mut expected = before.clone();
        for (field, value) in patch.as_object().unwrap() {
            expected[field] = value.clone();
        }
        expected["updatedAt"] = after["updatedAt"].clone();
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

    // A patch that changes nothing is not an update.
    for patch in [json!({}), json!({"active": true, "description": "again"})] {
        let (status, patched) = app.patch(&path, &key, &patch).await;
        assert_eq!(status, StatusCode::OK, "{patched}");
        assert_eq!(patched, current, "{patch}");
    }

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
    assert_eq!(fetched, current);

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

/// Header values often carry the receiver's credentials: READ_ONLY and SALES_REP keys read
/// the names, and `********` for every value; ADMIN and MANAGER (WEBHOOK_UPDATE) read them.
async fn header_values_are_write_only_for_roles_that_may_not_change_webhooks(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (tenant, admin) = app.tenant_with(Role::Admin).await;
    let headers = json!({"authorization": "Bearer receiver-token", "x-team": "crm"});
    let mut created = create(
        &app,
        &admin,
        &json!({"url": "https://example.com/h", "events": ["*"], "headers": headers}),
    )
    .await;
    assert_eq!(
        created["headers"], headers,
        "the creator reads what it sent"
    );
    created.as_object_mut().unwrap().remove("secret");
    let path = format!("/api/webhooks/{}", id_of(&created));
    let masked = json!({"authorization": "********", "x-team": "********"});
    for role in Role::ALL {
        let key = app.key_for(tenant, role).await;
        let may_update = role.can(common::domain::auth::Permission::WebhookUpdate);
        let mut expected = created.clone();
        if !may_update {
            expected["headers"] = masked.clone();
        }
        let (status, one) = app.get(&path, &key).await;
        assert_eq!((status, &one), (StatusCode::OK, &expected), "{role:?}");
        let (status, listed) = app.get("/api/webhooks", &key).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(listed["items"], json!([expected]), "{role:?}");
        assert_eq!(
            listed.to_string().contains("receiver-token"),
            may_update,
            "{role:?}"
        );
    }
}

/// A client that shows the masked headers and sends them back (a form saved as it was shown)
/// never overwrites a value with the mask; a masked value for a header the webhook does not
/// have is refused, since there is no value to keep.
async fn a_patch_that_sends_masked_values_back_keeps_them(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (tenant, admin) = app.tenant_with(Role::Admin).await;
    let created = create(
        &app,
        &admin,
        &json!({"url": "https://example.com/h", "events": ["*"],
            "headers": {"authorization": "Bearer receiver-token", "x-team": "crm"}}),
    )
    .await;
    let path = format!("/api/webhooks/{}", id_of(&created));
    let manager = app.key_for(tenant, Role::Manager).await;
    let (status, patched) = app
        .patch(
            &path,
            &manager,
            &json!({"headers": {"Authorization": "********", "x-team": "sales"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        patched["headers"],
        json!({"authorization": "Bearer receiver-token", "x-team": "sales"})
    );
    let (status, reply) = app
        .patch(&path, &manager, &json!({"headers": {"x-new": "********"}}))
        .await;
    assert_field_error(
        status,
        &reply,
        "headers",
        "a masked value with none to keep",
    );
    let (_, fetched) = app.get(&path, &admin).await;
    assert_eq!(fetched["headers"], patched["headers"]);
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

/// Hex HMAC-SHA256 of the body keyed with the secret string, as a seed-era receiver computes it.
fn seed_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

async fn a_rotated_secret_signs_the_test_delivery_beside_the_old_one(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let created = create(&app, &key, &webhook(&receiver.url, &["client.*"])).await;
    let id = id_of(&created);
    let old = created["secret"].as_str().unwrap().to_owned();

    let (status, rotated) = app
        .post(
            &format!("/api/webhooks/{id}/rotate-secret"),
            &key,
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = rotated["secret"].as_str().expect("a new secret").to_owned();
    assert!(new.starts_with("whsec_"));
    assert_ne!(new, old);
    assert_eq!(rotated["id"], created["id"]);
    let (_, fetched) = app.get(&format!("/api/webhooks/{id}"), &key).await;
    let text = fetched.to_string();
    assert!(
        !text.contains(&new[6..]) && !text.contains(&old[6..]),
        "{text}"
    );

    receiver.expect_secrets(&[&new, &old]);
    let (status, result) = app
        .post(&format!("/api/webhooks/{id}/test"), &key, &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(
        keys_of(&result),
        BTreeSet::from(["success", "statusCode", "durationMs", "error", "deliveryId"]),
        "{result}"
    );
    assert_eq!(result["success"], true, "{result}");
    assert_eq!(result["statusCode"], 200);
    assert_eq!(result["error"], Value::Null);
    assert!(result["durationMs"].is_u64(), "{result}");
    let delivery_id = result["deliveryId"].as_str().unwrap().to_owned();

    // The test is synchronous: the receiver has it by the time the answer comes back.
    let seen = receiver.seen();
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert!(request.seed_signature_ok, "seed signature");
    assert!(
        request.standard_signature_ok,
        "standard signature, both secrets"
    );
    assert_eq!(
        request.header("x-webhook-signature"),
        Some(seed_signature(&old, &request.body).as_str()),
        "the seed signature stays on the old secret during the overlap, for seed-era receivers"
    );
    assert_eq!(request.header("x-webhook-event"), Some("webhook.test"));
    assert_eq!(
        request.header("x-webhook-delivery"),
        Some(delivery_id.as_str())
    );
    assert_eq!(request.header("x-webhook-retry"), None);
    let payload: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(payload["event"], "webhook.test");
    assert_eq!(request.header("webhook-id"), payload["id"].as_str());

    let (status, delivery) = app
        .get(&format!("/api/webhooks/deliveries/{delivery_id}"), &key)
        .await;
    assert_eq!(status, StatusCode::OK, "{delivery}");
    assert_eq!(delivery["id"], json!(delivery_id));
    assert_eq!(delivery["webhookId"], json!(id));
    assert_eq!(delivery["status"], "SUCCESS");
    assert_eq!(delivery["event"], "webhook.test");
    assert_eq!(delivery["attemptCount"], 1);
    let attempts = delivery["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 1, "{delivery}");
    assert_eq!(attempts[0]["statusCode"], 200);
    assert_eq!(attempts[0]["number"], 1);
    assert_eq!(attempts[0]["error"], Value::Null);

    // A second rotation keeps only the secret it replaces: the first one no longer signs.
    let (status, again) = app
        .post(
            &format!("/api/webhooks/{id}/rotate-secret"),
            &key,
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    let newest = again["secret"].as_str().unwrap().to_owned();
    assert!(newest != new && newest != old);
    receiver.expect_secrets(&[&newest, &new]);
    let (_, result) = app
        .post(&format!("/api/webhooks/{id}/test"), &key, &json!({}))
        .await;
    assert_eq!(result["success"], true, "{result}");
    let request = receiver.seen().pop().unwrap();
    assert!(request.standard_signature_ok, "newest and previous secrets");
    assert_eq!(
        request.header("x-webhook-signature"),
        Some(seed_signature(&new, &request.body).as_str()),
        "the seed signature is on the secret the last rotation replaced"
    );
    let signatures = request.header("webhook-signature").unwrap().to_owned();
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    receiver.expect_secrets(&[&old]);
    app.post(&format!("/api/webhooks/{id}/test"), &key, &json!({}))
        .await;
    let request = receiver.seen().pop().unwrap();
    assert!(
        !request.standard_signature_ok && !request.seed_signature_ok,
        "the first secret was rotated out twice"
    );
}

async fn a_failing_test_delivery_is_failed_and_never_retried(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let receiver = Receiver::start(Reply::Status(500)).await;
    let created = create(&app, &key, &webhook(&receiver.url, &["*"])).await;
    let id = id_of(&created);
    assert_eq!(created["maxRetries"], 3, "the webhook itself would retry");

    let (status, result) = app
        .post(&format!("/api/webhooks/{id}/test"), &key, &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["success"], false, "{result}");
    assert_eq!(result["statusCode"], 500);
    let delivery_id = result["deliveryId"].as_str().unwrap().to_owned();
    assert_eq!(receiver.seen().len(), 1);

    let (status, delivery) = app
        .get(&format!("/api/webhooks/deliveries/{delivery_id}"), &key)
        .await;
    assert_eq!(status, StatusCode::OK, "{delivery}");
    assert_eq!(delivery["status"], "FAILED", "{delivery}");
    assert_eq!(delivery["nextAttemptAt"], Value::Null, "{delivery}");
    assert_eq!(delivery["lastStatusCode"], 500);
    let attempts = delivery["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 1, "{delivery}");
    assert_eq!(attempts[0]["statusCode"], 500);

    // A test to an unreachable endpoint answers too, with the transport error.
    let closed = create(&app, &key, &webhook("http://127.0.0.1:9/hook", &["*"])).await;
    let (status, result) = app
        .post(
            &format!("/api/webhooks/{}/test", id_of(&closed)),
            &key,
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["success"], false);
    assert_eq!(result["statusCode"], Value::Null);
    assert!(
        result["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{result}"
    );
}

async fn notify_creates_one_delivery_per_active_subscribed_webhook(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let url = "https://example.com/hook";
    let mut ids = BTreeMap::new();
    for (name, events, active) in [
        ("everything", vec!["*"], true),
        ("prefix", vec!["lead.*"], true),
        ("exact", vec!["client.created", "lead.created"], true),
        ("other-event", vec!["lead.updated"], true),
        ("other-object", vec!["account.*"], true),
        ("inactive", vec!["*"], false),
    ] {
        let mut body = webhook(url, &events);
        body["active"] = json!(active);
        ids.insert(id_of(&create(&app, &key, &body).await), name);
    }

    let (status, result) = app
        .post(
            "/api/webhooks/notify",
            &key,
            &json!({"event": "lead.created", "data": {"leadId": "L-1", "score": 7}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(keys_of(&result), BTreeSet::from(["success", "deliveryIds"]));
    assert_eq!(result["success"], true);
    let delivery_ids = result["deliveryIds"].as_array().expect("deliveryIds");
    let mut reached = BTreeSet::new();
    for delivery_id in delivery_ids {
        let (status, delivery) = app
            .get(
                &format!("/api/webhooks/deliveries/{}", delivery_id.as_str().unwrap()),
                &key,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{delivery}");
        assert_eq!(delivery["event"], "lead.created");
        assert_eq!(delivery["status"], "PENDING", "no worker runs here");
        let webhook_id = delivery["webhookId"].as_str().unwrap();
        assert!(reached.insert(ids[webhook_id]), "one delivery per webhook");
    }
    assert_eq!(reached, BTreeSet::from(["everything", "prefix", "exact"]));

    // An event nobody subscribes to is accepted and reaches nobody.
    let (status, result) = app
        .post(
            "/api/webhooks/notify",
            &key,
            &json!({"event": "contact.deleted", "data": null}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(
        result["deliveryIds"].as_array().unwrap().len(),
        1,
        "only `*`"
    );

    for (field, body) in [
        ("event", json!({"event": "lead.exploded", "data": {}})),
        ("event", json!({"event": "lead.*", "data": {}})),
        ("event", json!({"event": "webhook.test", "data": {}})),
        ("event", json!({"data": {}})),
        ("event", json!({"event": 5, "data": {}})),
        ("data", json!({"event": "lead.created"})),
        (
            "extra",
            json!({"event": "lead.created", "data": {}, "extra": 1}),
        ),
    ] {
        let (status, reply) = app.post("/api/webhooks/notify", &key, &body).await;
        assert_field_error(status, &reply, field, &body.to_string());
    }
    let (status, reply) = app
        .call(Method::POST, "/api/webhooks/notify", Some(&key), Some("{"))
        .await;
    assert_error(status, &reply, StatusCode::BAD_REQUEST);
}

/// Walks `GET /api/webhooks/{id}/deliveries` page by page from `query`; returns every item.
async fn walk_deliveries(app: &TestApp, key: &str, webhook_id: &str, query: &str) -> Vec<Value> {
    let mut seen: Vec<Value> = Vec::new();
    let mut path = format!("/api/webhooks/{webhook_id}/deliveries?{query}");
    loop {
        let (status, page) = app.get(&path, key).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(items(&page).iter().cloned());
        match page["nextCursor"].as_str() {
            Some(cursor) => {
                path = format!("/api/webhooks/{webhook_id}/deliveries?{query}&cursor={cursor}")
            }
            None => return seen,
        }
    }
}

fn ids(deliveries: &[Value]) -> BTreeSet<String> {
    deliveries.iter().map(id_of).collect()
}

async fn delivery_history_and_stats_follow_real_attempts(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let healthy = Receiver::start(Reply::Status(200)).await;
    // One success between two failures.
    let flaky = Receiver::start(Reply::Status(500)).await;
    flaky.script([Reply::Status(503), Reply::Status(200)]);
    let good = id_of(&create(&app, &key, &webhook(&healthy.url, &["lead.*"])).await);
    let mut body = webhook(&flaky.url, &["lead.created"]);
    body["maxRetries"] = json!(0);
    let shaky = id_of(&create(&app, &key, &body).await);
    let idle = id_of(&create(&app, &key, &webhook(&healthy.url, &["account.*"])).await);

    // One event at a time, each delivered before the next is sent, as events arrive in life.
    let worker = app.start_worker();
    let mut notified = Vec::new();
    for event in [
        "lead.created",
        "lead.updated",
        "lead.created",
        "lead.updated",
        "lead.created",
    ] {
        let (status, result) = app
            .post(
                "/api/webhooks/notify",
                &key,
                &json!({"event": event, "data": {"n": notified.len()}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{result}");
        notified.extend(result["deliveryIds"].as_array().unwrap().clone());
        let sent = notified.len();
        eventually(WAIT, &format!("{event} to be delivered"), || async {
            let (_, stats) = app.get("/api/webhooks/stats", &key).await;
            let finished = stats["success"].as_u64()? + stats["failed"].as_u64()?;
            (finished == sent as u64).then_some(())
        })
        .await;
    }
    worker.stop().await;
    assert_eq!(
        notified.len(),
        8,
        "5 to the healthy webhook, 3 to the flaky one"
    );
    let (status, stats) = app.get("/api/webhooks/stats", &key).await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(healthy.seen().len(), 5);
    assert_eq!(flaky.seen().len(), 3, "maxRetries 0: one attempt each");

    assert_eq!(
        keys_of(&stats),
        BTreeSet::from([
            "total",
            "pending",
            "success",
            "failed",
            "retrying",
            "cancelled",
            "successRate",
            "webhooks"
        ]),
        "{stats}"
    );
    assert_eq!(stats["total"], 8, "{stats}");
    assert_eq!(stats["pending"], 0);
    assert_eq!(stats["retrying"], 0);
    assert_eq!(stats["cancelled"], 0);
    assert_eq!(stats["successRate"], 0.75);
    let per_webhook: BTreeMap<String, Value> = stats["webhooks"]
        .as_array()
        .expect("per-webhook stats")
        .iter()
        .map(|w| (w["webhookId"].as_str().unwrap().to_owned(), w.clone()))
        .collect();
    let expected = |total: u64, success: u64, failed: u64, rate: f64| {
        json!({
            "total": total, "pending": 0, "success": success, "failed": failed,
            "retrying": 0, "cancelled": 0, "successRate": rate,
        })
    };
    let without_id = |id: &str| {
        let mut entry = per_webhook[id].clone();
        entry.as_object_mut().unwrap().remove("webhookId");
        entry
    };
    assert_eq!(without_id(&good), expected(5, 5, 0, 1.0), "{stats}");
    assert_eq!(without_id(&shaky), expected(3, 1, 2, 1.0 / 3.0), "{stats}");
    if let Some(idle_stats) = per_webhook.get(&idle) {
        assert_eq!(idle_stats["total"], 0, "{stats}");
    }

    // The healthy webhook's history, two at a time, newest first, each delivery once.
    let history = walk_deliveries(&app, &key, &good, "limit=2").await;
    assert_eq!(history.len(), 5);
    assert_eq!(ids(&history).len(), 5, "each delivery once");
    for delivery in &history {
        assert!(notified.contains(&delivery["id"]), "{delivery}");
        assert_eq!(delivery["webhookId"], json!(good));
        assert_eq!(delivery["status"], "SUCCESS");
        assert_eq!(delivery["attemptCount"], 1);
        assert_eq!(delivery["lastStatusCode"], 200);
    }
    let newest_first: Vec<&Value> = notified
        .iter()
        .rev()
        .filter(|id| history.iter().any(|d| d["id"] == **id))
        .collect();
    let listed: Vec<&Value> = history.iter().map(|d| &d["id"]).collect();
    assert_eq!(listed, newest_first, "newest first");
    let created: Vec<&str> = history
        .iter()
        .map(|d| d["createdAt"].as_str().unwrap())
        .collect();
    assert!(
        created.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {created:?}"
    );
    let events: Vec<&str> = history
        .iter()
        .map(|d| d["event"].as_str().unwrap())
        .collect();
    assert_eq!(events.iter().filter(|e| **e == "lead.updated").count(), 2);

    // The status filter, one per page so that it must skip the other status across pages.
    let all = walk_deliveries(&app, &key, &shaky, "limit=1").await;
    assert_eq!(all.len(), 3);
    let failed = walk_deliveries(&app, &key, &shaky, "status=FAILED&limit=1").await;
    let succeeded = walk_deliveries(&app, &key, &shaky, "status=SUCCESS&limit=1").await;
    assert_eq!(
        (failed.len(), succeeded.len()),
        (2, 1),
        "{failed:?} {succeeded:?}"
    );
    assert!(failed.iter().all(|d| d["status"] == "FAILED"), "{failed:?}");
    assert!(succeeded.iter().all(|d| d["status"] == "SUCCESS"));
    let mut both = ids(&failed);
    both.extend(ids(&succeeded));
    assert_eq!(both, ids(&all));
    let (_, none) = app
        .get(
            &format!("/api/webhooks/{good}/deliveries?status=FAILED"),
            &key,
        )
        .await;
    assert_eq!(none, json!({"items": [], "nextCursor": null}));
    let (_, idle_page) = app
        .get(&format!("/api/webhooks/{idle}/deliveries"), &key)
        .await;
    assert_eq!(idle_page, json!({"items": [], "nextCursor": null}));
    for bad_query in ["status=DONE", "status=success", "limit=0", "cursor=%%%"] {
        let (status, body) = app
            .get(
                &format!("/api/webhooks/{good}/deliveries?{bad_query}"),
                &key,
            )
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
    }

    // A failed attempt is recorded in full.
    let (_, detail) = app
        .get(
            &format!("/api/webhooks/deliveries/{}", id_of(&failed[0])),
            &key,
        )
        .await;
    assert_eq!(detail["status"], "FAILED");
    assert!(
        [500, 503].contains(&detail["lastStatusCode"].as_u64().unwrap()),
        "{detail}"
    );
    let attempts = detail["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 1, "{detail}");
    assert_eq!(attempts[0]["statusCode"], detail["lastStatusCode"]);
    assert!(attempts[0]["at"].as_str().is_some(), "{detail}");
    assert!(attempts[0]["durationMs"].is_u64(), "{detail}");
}

async fn another_tenants_webhooks_and_deliveries_are_not_found(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, owner) = app.tenant_with(Role::Admin).await;
    let (_, stranger) = app.tenant_with(Role::Admin).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let created = create(&app, &owner, &webhook(&receiver.url, &["*"])).await;
    let id = id_of(&created);
    let (_, notified) = app
        .post(
            "/api/webhooks/notify",
            &owner,
            &json!({"event": "client.created", "data": {}}),
        )
        .await;
    let delivery_id = notified["deliveryIds"][0].as_str().unwrap().to_owned();

    let path = format!("/api/webhooks/{id}");
    let attempts = [
        app.get(&path, &stranger).await,
        app.patch(&path, &stranger, &json!({"active": false})).await,
        app.delete(&path, &stranger).await,
        app.post(&format!("{path}/test"), &stranger, &json!({}))
            .await,
        app.post(&format!("{path}/rotate-secret"), &stranger, &json!({}))
            .await,
        app.get(&format!("{path}/deliveries"), &stranger).await,
        app.get(
            &format!("/api/webhooks/deliveries/{delivery_id}"),
            &stranger,
        )
        .await,
        app.post("/api/webhooks/retry", &stranger, &json!({"webhookId": id}))
            .await,
    ];
    for (status, body) in &attempts {
        assert_error(*status, body, StatusCode::NOT_FOUND);
    }
    assert!(
        receiver.seen().is_empty(),
        "the stranger's test sent nothing"
    );

    let (_, listed) = app.get("/api/webhooks", &stranger).await;
    assert_eq!(listed, json!({"items": [], "nextCursor": null}));
    let (_, stats) = app.get("/api/webhooks/stats", &stranger).await;
    assert_eq!(stats["total"], 0, "{stats}");
    assert_eq!(stats["webhooks"], json!([]), "{stats}");
    let (status, result) = app
        .post(
            "/api/webhooks/notify",
            &stranger,
            &json!({"event": "client.created", "data": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["deliveryIds"], json!([]));

    // The owner's webhook is untouched: same fields, same secret, one delivery.
    let (status, mine) = app.get(&path, &owner).await;
    assert_eq!(status, StatusCode::OK);
    let mut expected = created.clone();
    expected.as_object_mut().unwrap().remove("secret");
    assert_eq!(mine, expected);
    let (_, history) = app.get(&format!("{path}/deliveries"), &owner).await;
    assert_eq!(items(&history).len(), 1, "{history}");
    let (_, stats) = app.get("/api/webhooks/stats", &owner).await;
    assert_eq!(stats["total"], 1, "{stats}");
    receiver.expect_secrets(&[created["secret"].as_str().unwrap()]);
    let (_, result) = app.post(&format!("{path}/test"), &owner, &json!({})).await;
    assert_eq!(result["success"], true, "{result}");
    assert!(
        receiver.seen()[0].standard_signature_ok,
        "not rotated by the stranger"
    );
}

async fn private_and_plain_http_targets_are_refused_at_creation(backend: Backend) {
    let mut settings = test_settings();
    settings.targets = TargetPolicy {
        allow_http: false,
        allow_private: false,
    };
    let app = TestApp::with_settings(backend, settings).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    for url in [
        "http://example.com/x",
        "https://127.0.0.1/x",
        "https://[::ffff:127.0.0.1]/x",
        "https://169.254.169.254/latest",
        "https://0.0.0.0/",
        "https://[::]/",
        "https://localhost/x",
        "https://10.0.0.1/",
        "https://[fd00::1]/",
        "https://[::1]/x",
        "https://2130706433/x",
        "https://127.1/x",
        "https://100.64.0.1/",
        "https://192.168.1.1/",
        "https://[fe80::1]/",
        "https://[64:ff9b::a00:1]/",
        "https://api.localhost/x",
        "HTTPS://LOCALHOST./x",
        "ftp://example.com/x",
    ] {
        let (status, body) = app.post("/api/webhooks", &key, &webhook(url, &["*"])).await;
        assert_field_error(status, &body, "url", url);
    }
    let (_, listed) = app.get("/api/webhooks", &key).await;
    assert_eq!(items(&listed).len(), 0);

    let created = create(&app, &key, &webhook("https://example.com/hook", &["*"])).await;
    assert_eq!(created["url"], "https://example.com/hook");
    // The same rules hold when a webhook is moved.
    let path = format!("/api/webhooks/{}", id_of(&created));
    for url in ["https://127.0.0.1/x", "http://example.com/x"] {
        let (status, body) = app.patch(&path, &key, &json!({"url": url})).await;
        assert_field_error(status, &body, "url", url);
    }
    let (_, fetched) = app.get(&path, &key).await;
    assert_eq!(fetched["url"], "https://example.com/hook");
}

/// Notifications sent back to back, several in one millisecond, still list newest first.
async fn a_burst_of_notifications_is_listed_newest_first(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let id = id_of(&create(&app, &key, &webhook("https://example.com/hook", &["*"])).await);
    let mut sent = Vec::new();
    for n in 0..20 {
        let (status, result) = app
            .post(
                "/api/webhooks/notify",
                &key,
                &json!({"event": "lead.created", "data": {"n": n}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{result}");
        sent.push(result["deliveryIds"][0].clone());
    }
    let history = walk_deliveries(&app, &key, &id, "limit=100").await;
    let listed: Vec<&Value> = history.iter().map(|d| &d["id"]).collect();
    let newest_first: Vec<&Value> = sent.iter().rev().collect();
    assert_eq!(listed, newest_first);
}
