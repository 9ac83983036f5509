//! Endpoint health, automatic disabling and the operational events, with real receivers on both
//! stores: a webhook whose every attempt fails past `WEBHOOK_DISABLE_AFTER_SECONDS` (2 s here) is
//! disabled with a reason, another webhook of the tenant is told (`webhook.disabled`), and
//! re-enabling it says so too (`webhook.enabled`).

use std::time::Duration;

use common::domain::auth::Role;
use common::service::deps::DeliverySettings;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::delivery::Setup;
use crate::receiver::{Receiver, Reply};
use crate::support::{eventually, test_settings, Backend, TestApp};

crate::on_both_stores!(
    a_webhook_failing_past_the_limit_is_disabled_and_another_is_told,
    gone_disables_with_its_own_reason,
    re_enabling_restarts_the_count_and_is_announced,
    a_healthy_endpoint_shows_its_last_success,
);

const WAIT: Duration = Duration::from_secs(30);

async fn setup(backend: Backend) -> Setup {
    let settings = DeliverySettings {
        disable_after: Some(chrono::Duration::seconds(2)),
        ..test_settings()
    };
    let app = TestApp::with_settings(backend, settings).await;
    let (tenant, key) = app.tenant_with(Role::Admin).await;
    Setup { app, key, tenant }
}

async fn notify(s: &Setup, event: &str) -> Vec<String> {
    let body = json!({"event": event, "data": {"n": 1}});
    let (_, answer) = s.app.post("/api/webhooks/notify", &s.key, &body).await;
    answer["deliveryIds"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect()
}

async fn webhook(s: &Setup, id: Uuid) -> Value {
    s.app.get(&format!("/api/webhooks/{id}"), &s.key).await.1
}

/// The payloads of the operational events `receiver` got, in order.
fn operational(receiver: &Receiver) -> Vec<Value> {
    receiver
        .seen()
        .iter()
        .map(|seen| serde_json::from_slice::<Value>(&seen.body).unwrap())
        .filter(|payload| {
            payload["event"]
                .as_str()
                .is_some_and(|e| e.starts_with("webhook."))
        })
        .collect()
}

/// Waits until `receiver` got `count` operational events; returns them.
async fn operational_events(receiver: &Receiver, count: usize) -> Vec<Value> {
    eventually(WAIT, &format!("{count} operational events"), || async {
        let events = operational(receiver);
        (events.len() >= count).then_some(events)
    })
    .await
}

async fn a_webhook_failing_past_the_limit_is_disabled_and_another_is_told(backend: Backend) {
    let s = setup(backend).await;
    let failing = Receiver::start(Reply::Status(500)).await;
    let watcher = Receiver::start(Reply::Status(200)).await;
    let (failing_id, _) = s
        .webhook(&failing, json!({"maxRetries": 10, "events": ["lead.*"]}))
        .await;
    s.webhook(&watcher, json!({"events": ["webhook.*"]})).await;
    let worker = s.app.start_worker();
    let ids = notify(&s, "lead.created").await;
    assert_eq!(ids.len(), 1, "the watcher does not listen to leads");

    let events = operational_events(&watcher, 1).await;
    let disabled = webhook(&s, failing_id).await;
    worker.stop().await;
    let payload = &events[0];
    assert_eq!(payload["event"], "webhook.disabled");
    assert_eq!(payload["data"]["webhookId"], failing_id.to_string());
    assert_eq!(payload["data"]["url"], failing.url);
    assert_eq!(payload["data"]["reason"], "ENDPOINT_FAILING");
    assert_eq!(disabled["active"], false);
    assert_eq!(disabled["disabledReason"], "ENDPOINT_FAILING");
    assert!(disabled["disabledAt"].is_string(), "{disabled}");
    let health = &disabled["health"];
    assert_eq!(
        health["failingSince"], payload["data"]["failingSince"],
        "{disabled}"
    );
    assert!(health["lastFailureAt"].is_string());
    assert_eq!(health["lastSuccessAt"], Value::Null);
    // Disabled at the first failure 2 s or more after the first one, and attempted no more.
    let seen = failing.seen();
    let after_first: Vec<f64> = seen
        .iter()
        .map(|attempt| attempt.at.duration_since(seen[0].at).as_secs_f64())
        .collect();
    let last = after_first[after_first.len() - 1];
    assert!(
        last >= 1.95,
        "the last attempt came {last:.2} s after the first: {after_first:?}"
    );
    if after_first.len() >= 2 {
        let before_last = after_first[after_first.len() - 2];
        assert!(
            before_last < 2.05,
            "not disabled at the first failure past 2 s: {after_first:?}"
        );
    }
    let delivery = s
        .app
        .get(&format!("/api/webhooks/deliveries/{}", ids[0]), &s.key)
        .await
        .1;
    assert_ne!(delivery["status"], "SUCCESS");
    assert_eq!(operational(&watcher).len(), 1, "told once");
}

async fn gone_disables_with_its_own_reason(backend: Backend) {
    let s = setup(backend).await;
    let gone = Receiver::start(Reply::Status(410)).await;
    let watcher = Receiver::start(Reply::Status(200)).await;
    let (gone_id, _) = s.webhook(&gone, json!({"events": ["lead.*"]})).await;
    s.webhook(&watcher, json!({"events": ["webhook.disabled"]}))
        .await;
    let worker = s.app.start_worker();
    notify(&s, "lead.created").await;
    let events = operational_events(&watcher, 1).await;
    worker.stop().await;
    assert_eq!(events[0]["event"], "webhook.disabled");
    assert_eq!(events[0]["data"]["reason"], "ENDPOINT_GONE");
    assert_eq!(events[0]["data"]["webhookId"], gone_id.to_string());
    let disabled = webhook(&s, gone_id).await;
    assert_eq!(disabled["disabledReason"], "ENDPOINT_GONE");
    assert_eq!(disabled["health"]["consecutiveFailures"], 1);
    assert_eq!(gone.seen().len(), 1);
}

async fn re_enabling_restarts_the_count_and_is_announced(backend: Backend) {
    let s = setup(backend).await;
    let gone = Receiver::start(Reply::Status(410)).await;
    let watcher = Receiver::start(Reply::Status(200)).await;
    let (gone_id, _) = s.webhook(&gone, json!({"events": ["lead.*"]})).await;
    s.webhook(&watcher, json!({"events": ["webhook.*"]})).await;
    let worker = s.app.start_worker();
    notify(&s, "lead.created").await;
    operational_events(&watcher, 1).await;

    let path = format!("/api/webhooks/{gone_id}");
    let (_, enabled) = s.app.patch(&path, &s.key, &json!({"active": true})).await;
    assert_eq!(enabled["active"], true, "{enabled}");
    assert_eq!(enabled["disabledReason"], Value::Null);
    assert_eq!(enabled["disabledAt"], Value::Null);
    let events = operational_events(&watcher, 2).await;
    worker.stop().await;
    assert_eq!(events[1]["event"], "webhook.enabled");
    assert_eq!(
        events[1]["data"],
        json!({"webhookId": gone_id, "url": gone.url})
    );
    let read = webhook(&s, gone_id).await;
    assert_eq!(read["health"]["failingSince"], Value::Null, "{read}");
    assert!(read["health"]["lastFailureAt"].is_string(), "history stays");
}

async fn a_healthy_endpoint_shows_its_last_success(backend: Backend) {
    let s = setup(backend).await;
    let ok = Receiver::start(Reply::Status(200)).await;
    let (id, _) = s.webhook(&ok, json!({})).await;
    let fresh = webhook(&s, id).await;
    assert_eq!(
        fresh["health"],
        json!({"lastSuccessAt": null, "lastFailureAt": null, "consecutiveFailures": 0, "failingSince": null})
    );
    let worker = s.app.start_worker();
    let ids = notify(&s, "lead.created").await;
    s.delivery_in(ids[0].parse().unwrap(), "SUCCESS").await;
    worker.stop().await;
    let read = webhook(&s, id).await;
    assert!(read["health"]["lastSuccessAt"].is_string(), "{read}");
    assert_eq!(read["health"]["failingSince"], Value::Null);
    // GraphQL's stats of one webhook carry its health too.
    let query = "query($id: ID!) { webhookStats(webhookId: $id) { success health { lastSuccessAt failingSince consecutiveFailures } } }";
    let body = json!({"query": query, "variables": {"id": id}}).to_string();
    let (_, answer) = s
        .app
        .call(
            lambda_http::http::Method::POST,
            "/graphql",
            Some(&s.key),
            Some(&body),
        )
        .await;
    let stats = &answer["data"]["webhookStats"];
    assert_eq!(stats["success"], 1, "{answer}");
    assert_eq!(
        stats["health"]["lastSuccessAt"],
        read["health"]["lastSuccessAt"]
    );
    assert_eq!(stats["health"]["consecutiveFailures"], 0);
}
