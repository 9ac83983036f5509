//! `POST /api/webhooks/notify`: one delivery per subscribed webhook, listed newest first.

use std::collections::{BTreeMap, BTreeSet};

use common::domain::auth::Role;
use lambda_http::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::{assert_field_error, create, id_of, keys_of, walk_deliveries, webhook};
use crate::support::{assert_error, Backend, TestApp};

crate::on_both_stores!(
    notify_creates_one_delivery_per_active_subscribed_webhook,
    an_event_nobody_subscribes_to_is_accepted_and_reaches_only_the_wildcard,
    invalid_notifications_are_refused_by_field,
    a_burst_of_notifications_is_listed_newest_first,
);

/// Six webhooks to the same URL: `everything` (`*`), `prefix` (`lead.*`), `exact`
/// (`client.created`, `lead.created`), `other-event` (`lead.updated`), `other-object`
/// (`account.*`) and `inactive` (`*`, deactivated); returns each id's name.
async fn six_webhooks(app: &TestApp, key: &str) -> BTreeMap<String, &'static str> {
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
        ids.insert(id_of(&create(app, key, &body).await), name);
    }
    ids
}

async fn notify_creates_one_delivery_per_active_subscribed_webhook(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let ids = six_webhooks(&app, &key).await;

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
}

async fn an_event_nobody_subscribes_to_is_accepted_and_reaches_only_the_wildcard(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    six_webhooks(&app, &key).await;

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
}

async fn invalid_notifications_are_refused_by_field(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;

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
