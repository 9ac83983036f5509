//! The delivery engine end to end on both stores: real queue, real worker code, real receivers.

use std::time::{Duration, Instant};

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use common::domain::auth::Role;
use common::domain::delivery::Delivery;
use common::domain::event::OutboxEvent;
use common::lambda::{handle_scheduled_event, handle_sqs_event};
use common::ports::{DeliveryMessage, QueueMessage};
use common::service::sweeper::sweep;
use lambda_http::http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::receiver::{Receiver, Reply};
use crate::support::{eventually, Backend, TestApp};

crate::on_both_stores!(
    a_signed_delivery_reaches_a_verifying_receiver,
    client_events_fan_out_to_subscribed_webhooks,
    retries_follow_the_schedule_then_fail_for_good,
    the_retry_endpoint_requeues_failed_deliveries,
    a_redirect_is_not_followed,
    a_hanging_receiver_times_out,
    a_huge_response_is_read_only_up_to_the_cap,
    gone_deactivates_the_webhook,
    a_deleted_webhook_cancels_its_deliveries,
    a_duplicated_queue_message_is_delivered_once,
    the_sweeper_recovers_a_crash_between_write_and_enqueue,
    two_sweepers_at_once_enqueue_each_due_delivery_once,
    the_sweeper_lambda_sweeps_on_its_scheduled_event,
    the_worker_lambda_reports_exactly_the_failed_records,
);

const WAIT: Duration = Duration::from_secs(20);

/// A service over a fresh store and an ADMIN key of a new tenant.
pub(crate) struct Setup {
    pub(crate) app: TestApp,
    pub(crate) key: String,
    pub(crate) tenant: Uuid,
}

pub(crate) async fn setup(backend: Backend) -> Setup {
    let app = TestApp::new(backend).await;
    let (tenant, key) = app.tenant_with(Role::Admin).await;
    Setup { app, key, tenant }
}

impl Setup {
    /// `count` deliveries written to the store with no queue message: as if the process died
    /// between the write and the enqueue.
    async fn stranded_deliveries(&self, webhook_id: Uuid, count: usize) -> Vec<Delivery> {
        let now = self.app.deps.clock.now();
        let stranded: Vec<Delivery> = (0..count)
            .map(|_| {
                let event_id = Uuid::now_v7();
                let body =
                    common::domain::delivery::payload(event_id, "lead.created", &json!({}), now)
                        .unwrap();
                Delivery::new(self.tenant, webhook_id, event_id, "lead.created", body, now)
            })
            .collect();
        let store = &self.app.deps.store;
        for delivery in &stranded {
            store.put_payload(&delivery.event_payload()).await.unwrap();
        }
        store.create_deliveries(&stranded).await.unwrap();
        stranded
    }

    /// Registers a webhook for `receiver` and tells the receiver its secret.
    pub(crate) async fn webhook(&self, receiver: &Receiver, extra: Value) -> (Uuid, String) {
        let mut body = json!({"url": receiver.url, "events": ["*"]});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (status, created) = self.app.post("/api/webhooks", &self.key, &body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let secret = created["secret"].as_str().unwrap().to_owned();
        receiver.expect_secrets(&[&secret]);
        (created["id"].as_str().unwrap().parse().unwrap(), secret)
    }

    async fn notify(&self, event: &str, data: Value) -> Vec<Uuid> {
        let (status, body) = self
            .app
            .post(
                "/api/webhooks/notify",
                &self.key,
                &json!({"event": event, "data": data}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["success"], true);
        body["deliveryIds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_str().unwrap().parse().unwrap())
            .collect()
    }

    async fn delivery(&self, id: Uuid) -> Value {
        let (status, body) = self
            .app
            .get(&format!("/api/webhooks/deliveries/{id}"), &self.key)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Waits until the delivery is in `status`, and returns it.
    pub(crate) async fn delivery_in(&self, id: Uuid, status: &str) -> Value {
        eventually(WAIT, &format!("delivery {id} to be {status}"), || async {
            let body = self.delivery(id).await;
            (body["status"] == status).then_some(body)
        })
        .await
    }
}

async fn a_signed_delivery_reaches_a_verifying_receiver(backend: Backend) {
    let s = setup(backend).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (webhook_id, _) = s
        .webhook(&receiver, json!({"headers": {"X-Team": "crm"}}))
        .await;
    let worker = s.app.start_worker();
    let ids = s
        .notify("lead.created", json!({"leadId": "L-1", "name": "Ada"}))
        .await;
    assert_eq!(ids.len(), 1);
    let delivery = s.delivery_in(ids[0], "SUCCESS").await;
    worker.stop().await;

    let seen = receiver.seen();
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert!(request.seed_signature_ok, "X-Webhook-Signature verifies");
    assert!(request.standard_signature_ok, "webhook-signature verifies");
    assert_eq!(request.header("x-webhook-event"), Some("lead.created"));
    assert_eq!(
        request.header("x-webhook-delivery"),
        Some(ids[0].to_string().as_str())
    );
    assert_eq!(
        request.header("x-webhook-retry"),
        None,
        "absent on the first attempt"
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("x-team"), Some("crm"));
    let payload: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(payload["event"], "lead.created");
    assert_eq!(payload["data"], json!({"leadId": "L-1", "name": "Ada"}));
    assert_eq!(payload["id"].as_str(), request.header("webhook-id"));
    for field in ["timestamp", "apiVersion"] {
        assert!(payload[field].is_string(), "{field}");
    }

    assert_eq!(delivery["webhookId"], json!(webhook_id));
    assert_eq!(delivery["attemptCount"], 1);
    assert_eq!(delivery["lastStatusCode"], 200);
    let attempts = delivery["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["statusCode"], 200);
    assert_eq!(attempts[0]["responseBody"], "thanks");
}

async fn client_events_fan_out_to_subscribed_webhooks(backend: Backend) {
    let s = setup(backend).await;
    let clients = Receiver::start(Reply::Status(204)).await;
    let sync = Receiver::start(Reply::Status(200)).await;
    s.webhook(&clients, json!({"events": ["client.*"]})).await;
    s.webhook(&sync, json!({"events": ["sync.status.changed"]}))
        .await;
    let worker = s.app.start_worker();
    let id = s.app.create_client(&s.key, "Ada").await;
    s.app
        .post(
            "/api/crm/update-sync-status",
            &s.key,
            &json!({"clientId": id, "status": "SYNCED"}),
        )
        .await;
    let seen = eventually(WAIT, "both receivers", || async {
        (clients.seen().len() == 1 && sync.seen().len() == 1).then(|| (clients.seen(), sync.seen()))
    })
    .await;
    worker.stop().await;
    let created: Value = serde_json::from_slice(&seen.0[0].body).unwrap();
    assert_eq!(created["event"], "client.created");
    assert_eq!(created["data"]["id"], json!(id));
    assert_eq!(created["data"]["name"], "Ada");
    let changed: Value = serde_json::from_slice(&seen.1[0].body).unwrap();
    assert_eq!(changed["event"], "sync.status.changed");
    assert_eq!(changed["data"]["clientId"], json!(id));
    assert_eq!(changed["data"]["oldStatus"], "NEEDS_UPDATE");
    assert_eq!(changed["data"]["newStatus"], "SYNCED");
    assert!(seen.0[0].seed_signature_ok && seen.1[0].standard_signature_ok);
}

async fn retries_follow_the_schedule_then_fail_for_good(backend: Backend) {
    let s = setup(backend).await;
    let receiver = Receiver::start(Reply::Status(503)).await;
    s.webhook(&receiver, json!({"maxRetries": 3})).await;
    let worker = s.app.start_worker();
    let ids = s.notify("account.updated", json!({"accountId": 7})).await;
    let failed = s.delivery_in(ids[0], "FAILED").await;
    worker.stop().await;

    let seen = receiver.seen();
    assert_eq!(seen.len(), 4, "the first attempt and 3 retries");
    let retries: Vec<Option<&str>> = seen.iter().map(|r| r.header("x-webhook-retry")).collect();
    assert_eq!(retries, [None, Some("1"), Some("2"), Some("3")]);
    let ids: Vec<Option<&str>> = seen.iter().map(|r| r.header("webhook-id")).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "webhook-id is stable: {ids:?}"
    );
    assert!(seen
        .iter()
        .all(|r| r.seed_signature_ok && r.standard_signature_ok));
    // test_settings(): WEBHOOK_RETRY_DELAYS=1,2,2. Never early; late by at most 1 s. moto's SQS
    // wakes a long poll only once a second for a message whose delay ran out
    // (`wait_for_messages(1)` in moto/sqs/models.py), so the SQS run may be up to 1 s later
    // than that; real SQS and the embedded queue wake at once.
    let slack = match backend {
        Backend::Sqlite => 1.0,
        Backend::DynamoDb => 2.0,
    };
    for (i, expected) in [1.0, 2.0, 2.0].iter().enumerate() {
        let gap = seen[i + 1].at.duration_since(seen[i].at).as_secs_f64();
        eprintln!(
            "retry {} came {:+.0} ms off schedule",
            i + 1,
            (gap - expected) * 1000.0
        );
        assert!(
            gap >= expected - 0.05 && gap <= expected + slack,
            "retry {} after {gap:.2}s, expected {expected}s (+{slack}s)",
            i + 1
        );
    }
    assert_eq!(failed["attemptCount"], 4);
    assert_eq!(failed["nextAttemptAt"], Value::Null);
    let attempts = failed["attempts"].as_array().unwrap();
    let numbers: Vec<i64> = attempts
        .iter()
        .map(|a| a["number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2, 3, 4]);
    assert!(attempts.iter().all(|a| a["statusCode"] == 503));
    let (_, stats) = s.app.get("/api/webhooks/stats", &s.key).await;
    assert_eq!(stats["failed"], 1);
    assert_eq!(stats["retrying"], 0);
    assert_eq!(stats["successRate"], 0.0);
}

async fn the_retry_endpoint_requeues_failed_deliveries(backend: Backend) {
    let s = setup(backend).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    receiver.script([Reply::Status(500)]);
    let (webhook_id, _) = s.webhook(&receiver, json!({"maxRetries": 0})).await;
    let worker = s.app.start_worker();
    let ids = s.notify("contact.created", json!({"contactId": 1})).await;
    s.delivery_in(ids[0], "FAILED").await;

    let (status, body) = s
        .app
        .post(
            "/api/webhooks/retry",
            &s.key,
            &json!({"webhookId": webhook_id}),
        )
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"success": true, "retriedCount": 1}))
    );
    let done = s.delivery_in(ids[0], "SUCCESS").await;
    assert_eq!(done["attemptCount"], 2);
    assert_eq!(receiver.seen()[1].header("x-webhook-retry"), Some("1"));

    // Nothing FAILED is left: an empty body retries all of them, which is none.
    let (status, body) = s
        .app
        .call(
            lambda_http::http::Method::POST,
            "/api/webhooks/retry",
            Some(&s.key),
            None,
        )
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"success": true, "retriedCount": 0}))
    );
    worker.stop().await;
    assert_eq!(receiver.seen().len(), 2);
}

async fn a_redirect_is_not_followed(backend: Backend) {
    let s = setup(backend).await;
    let elsewhere = Receiver::start(Reply::Status(200)).await;
    let receiver = Receiver::start(Reply::Redirect(elsewhere.url.clone())).await;
    s.webhook(&receiver, json!({"maxRetries": 0})).await;
    let worker = s.app.start_worker();
    let ids = s.notify("lead.updated", json!({})).await;
    let failed = s.delivery_in(ids[0], "FAILED").await;
    worker.stop().await;
    assert_eq!(failed["lastStatusCode"], 308);
    assert_eq!(receiver.seen().len(), 1);
    assert!(
        elsewhere.seen().is_empty(),
        "the redirect target was never called"
    );
}

async fn a_hanging_receiver_times_out(backend: Backend) {
    let s = setup(backend).await;
    let receiver = Receiver::start(Reply::Hang).await;
    s.webhook(&receiver, json!({"maxRetries": 0, "timeoutMs": 500}))
        .await;
    let worker = s.app.start_worker();
    let started = Instant::now();
    let ids = s.notify("lead.updated", json!({})).await;
    let failed = s.delivery_in(ids[0], "FAILED").await;
    worker.stop().await;
    let attempt = &failed["attempts"][0];
    assert_eq!(attempt["statusCode"], Value::Null);
    assert!(
        attempt["error"].as_str().unwrap().contains("timed out"),
        "{attempt}"
    );
    let ms = attempt["durationMs"].as_u64().unwrap();
    assert!((450..3_000).contains(&ms), "gave up after {ms} ms");
    assert!(started.elapsed() < Duration::from_secs(10));
}

async fn a_huge_response_is_read_only_up_to_the_cap(backend: Backend) {
    let s = setup(backend).await;
    let receiver = Receiver::start(Reply::Huge).await;
    s.webhook(&receiver, json!({})).await;
    let worker = s.app.start_worker();
    let ids = s.notify("lead.updated", json!({})).await;
    let done = s.delivery_in(ids[0], "SUCCESS").await;
    worker.stop().await;
    let body = done["attempts"][0]["responseBody"].as_str().unwrap();
    assert!(
        !body.is_empty() && body.len() <= 4096,
        "{} bytes kept",
        body.len()
    );
}

async fn gone_deactivates_the_webhook(backend: Backend) {
    let s = setup(backend).await;
    let receiver = Receiver::start(Reply::Status(410)).await;
    let (webhook_id, _) = s.webhook(&receiver, json!({"maxRetries": 3})).await;
    let worker = s.app.start_worker();
    let ids = s.notify("lead.updated", json!({})).await;
    let failed = s.delivery_in(ids[0], "FAILED").await;
    assert_eq!(failed["attemptCount"], 1, "410 is not retried");
    // The worker records the failed attempt, then deactivates the webhook: two writes.
    eventually(WAIT, "the webhook to be deactivated", || async {
        let (_, webhook) = s
            .app
            .get(&format!("/api/webhooks/{webhook_id}"), &s.key)
            .await;
        (webhook["active"] == false).then_some(())
    })
    .await;
    assert!(
        s.notify("lead.updated", json!({})).await.is_empty(),
        "no more deliveries"
    );
    worker.stop().await;
    assert_eq!(receiver.seen().len(), 1);
}

async fn a_deleted_webhook_cancels_its_deliveries(backend: Backend) {
    let s = setup(backend).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (webhook_id, _) = s.webhook(&receiver, json!({})).await;
    let ids = s.notify("lead.updated", json!({})).await;
    let (status, _) = s
        .app
        .delete(&format!("/api/webhooks/{webhook_id}"), &s.key)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let worker = s.app.start_worker();
    let cancelled = s.delivery_in(ids[0], "CANCELLED").await;
    worker.stop().await;
    assert_eq!(cancelled["attemptCount"], 0);
    assert!(
        receiver.seen().is_empty(),
        "no request for a deleted webhook"
    );
}

async fn a_duplicated_queue_message_is_delivered_once(backend: Backend) {
    let s = setup(backend).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    s.webhook(&receiver, json!({})).await;
    let ids = s.notify("lead.updated", json!({})).await;
    let message = DeliveryMessage {
        tenant_id: s.tenant,
        delivery_id: ids[0],
        webhook_id: None,
        retry: false,
        resend_of: None,
        send_slot: None,
    };
    let copies = vec![(QueueMessage::from(message), Duration::ZERO); 3];
    s.app.deps.queue.send(&copies).await.unwrap();
    let worker = s.app.start_worker();
    let done = s.delivery_in(ids[0], "SUCCESS").await;
    // Give the duplicates time to be consumed too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    worker.stop().await;
    assert_eq!(receiver.seen().len(), 1, "one request for four messages");
    assert_eq!(done["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(s.delivery(ids[0]).await["status"], "SUCCESS");
}

async fn the_sweeper_recovers_a_crash_between_write_and_enqueue(backend: Backend) {
    let s = setup(backend).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (webhook_id, _) = s.webhook(&receiver, json!({})).await;
    let now = s.app.deps.clock.now();

    // A delivery written, its enqueue lost.
    let stranded = s.stranded_deliveries(webhook_id, 1).await.remove(0);
    // An event written with its change, its fan-out lost.
    let id = s.app.create_client(&s.key, "Ada").await;
    let client = s
        .app
        .deps
        .store
        .get_client(s.tenant, id)
        .await
        .unwrap()
        .unwrap();
    let lost = OutboxEvent::client("client.updated", &client, now);
    let change = common::ports::ClientChange {
        tenant_id: s.tenant,
        before: Some(client.clone()),
        after: Some(common::domain::client::Client {
            version: client.version + 1,
            ..client
        }),
        events: vec![lost.clone()],
        now,
    };
    s.app.deps.store.write_client(&change).await.unwrap();

    let worker = s.app.start_worker();
    // Within the grace period nothing is touched.
    let early = sweep(&s.app.deps, None).await.unwrap();
    assert_eq!((early.events_fanned_out, early.deliveries_requeued), (0, 0));
    tokio::time::sleep(s.app.deps.settings.sweep_grace + Duration::from_millis(500)).await;
    let report = sweep(&s.app.deps, None).await.unwrap();
    assert_eq!(report.events_fanned_out, 1);
    assert!(report.deliveries_requeued >= 1, "{report:?}");
    s.delivery_in(stranded.id, "SUCCESS").await;
    let events = eventually(WAIT, "the lost client.updated", || async {
        let events: Vec<String> = receiver
            .seen()
            .iter()
            .map(|r| r.header("x-webhook-event").unwrap_or("").to_owned())
            .collect();
        events
            .contains(&"client.updated".to_owned())
            .then_some(events)
    })
    .await;
    worker.stop().await;
    assert_eq!(events.iter().filter(|e| *e == "lead.created").count(), 1);
    assert_eq!(events.iter().filter(|e| *e == "client.updated").count(), 1);
    let again = sweep(&s.app.deps, None).await.unwrap();
    assert_eq!((again.events_fanned_out, again.deliveries_requeued), (0, 0));
}

/// The sweeper as EventBridge Scheduler invokes it: the default notification in
/// `infra/events/scheduled/sweeper.json`, deserialised as the runtime does.
async fn the_sweeper_lambda_sweeps_on_its_scheduled_event(backend: Backend) {
    let s = setup(backend).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (webhook_id, _) = s.webhook(&receiver, json!({})).await;
    let stranded = s.stranded_deliveries(webhook_id, 1).await.remove(0);
    tokio::time::sleep(s.app.deps.settings.sweep_grace + Duration::from_millis(500)).await;

    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../infra/events/scheduled/sweeper.json");
    let event: EventBridgeEvent<Value> =
        serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    assert_eq!(event.detail_type, "Scheduled Event");
    let report = handle_scheduled_event(&s.app.deps, event, None)
        .await
        .unwrap();
    assert_eq!(report.deliveries_requeued, 1, "{report:?}");

    let worker = s.app.start_worker();
    s.delivery_in(stranded.id, "SUCCESS").await;
    worker.stop().await;
    assert_eq!(receiver.seen().len(), 1);
}

async fn two_sweepers_at_once_enqueue_each_due_delivery_once(backend: Backend) {
    let s = setup(backend).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (webhook_id, _) = s.webhook(&receiver, json!({})).await;
    let stranded = s.stranded_deliveries(webhook_id, 5).await;
    tokio::time::sleep(s.app.deps.settings.sweep_grace + Duration::from_millis(500)).await;

    let (a, b) = tokio::join!(sweep(&s.app.deps, None), sweep(&s.app.deps, None));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        a.deliveries_requeued + b.deliveries_requeued,
        5,
        "{a:?} {b:?}"
    );
    let worker = s.app.start_worker();
    for delivery in &stranded {
        s.delivery_in(delivery.id, "SUCCESS").await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    worker.stop().await;
    assert_eq!(receiver.seen().len(), 5, "each stranded delivery sent once");
}

async fn the_worker_lambda_reports_exactly_the_failed_records(backend: Backend) {
    let s = setup(backend).await;
    let quick = Receiver::start(Reply::Status(200)).await;
    let slow = Receiver::start(Reply::Status(200)).await;
    let (quick_webhook, _) = s
        .webhook(
            &quick,
            json!({"timeoutMs": 1000, "events": ["lead.created"]}),
        )
        .await;
    s.webhook(
        &slow,
        json!({"timeoutMs": 30000, "events": ["lead.created"]}),
    )
    .await;
    let mut quick_body = None;
    let mut slow_body = None;
    for id in s.notify("lead.created", json!({})).await {
        let delivery = s
            .app
            .deps
            .store
            .get_delivery(s.tenant, id)
            .await
            .unwrap()
            .unwrap();
        let body = serde_json::to_string(&DeliveryMessage {
            tenant_id: s.tenant,
            delivery_id: id,
            webhook_id: None,
            retry: false,
            resend_of: None,
            send_slot: None,
        })
        .unwrap();
        if delivery.webhook_id == quick_webhook {
            quick_body = Some(body);
        } else {
            slow_body = Some(body);
        }
    }
    let record = crate::support::sqs_record;
    let mut event = SqsEvent::default();
    event.records = vec![
        record("m-quick", quick_body.unwrap()),
        record("m-poison", "{not json".to_owned()),
        record("m-slow", slow_body.unwrap()),
    ];
    // 5 s left in the invocation: the 1 s attempt fits, the 30 s one must not start.
    let deadline = Instant::now() + Duration::from_secs(5);
    let response = handle_sqs_event(&s.app.deps, event, Some(deadline)).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(
        failed,
        ["m-slow"],
        "poison is acknowledged, the quick one delivered"
    );
    assert_eq!(quick.seen().len(), 1);
    assert!(slow.seen().is_empty(), "the 30 s attempt was not started");
}
