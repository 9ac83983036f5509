//! Invalid webhooks and unsafe targets are refused, naming the field.

use common::domain::auth::Role;
use common::domain::webhook::TargetPolicy;
use lambda_http::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::{assert_field_error, create, id_of, items, webhook};
use crate::support::{assert_error, test_settings, Backend, TestApp};

crate::on_both_stores!(
    invalid_webhooks_name_the_bad_field,
    the_limits_themselves_are_accepted,
    bodies_that_are_not_a_json_object_are_400,
    private_and_plain_http_targets_are_refused_at_creation,
);

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
    let (_, listed) = app.get("/api/webhooks", &key).await;
    assert_eq!(items(&listed).len(), 0, "refused webhooks are not stored");
}

async fn the_limits_themselves_are_accepted(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let url = "https://example.com/hook";

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
    let (_, listed) = app.get("/api/webhooks", &key).await;
    assert_eq!(items(&listed).len(), 2, "only the valid ones were stored");
}

async fn bodies_that_are_not_a_json_object_are_400(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;

    for malformed in ["", "{", "{\"url\": }", "[1]", "\"text\"", "null"] {
        let (status, reply) = app
            .call(Method::POST, "/api/webhooks", Some(&key), Some(malformed))
            .await;
        assert_error(status, &reply, StatusCode::BAD_REQUEST);
    }
    let (_, listed) = app.get("/api/webhooks", &key).await;
    assert_eq!(items(&listed).len(), 0, "refused webhooks are not stored");
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
