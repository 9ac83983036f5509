//! Resending one delivery (`POST /api/webhooks/deliveries/{id}/resend`, GraphQL
//! `resendWebhookDelivery`): one more attempt of a finished delivery, recorded on the same
//! delivery with the same `webhook-id`, on both stores with real receivers.

use common::domain::auth::Role;
use lambda_http::http::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::delivery::{setup, Setup};
use crate::receiver::{Receiver, Reply};
use crate::support::{assert_error, eventually, Backend};

crate::on_both_stores!(
    a_successful_delivery_is_sent_once_more_with_the_same_webhook_id,
    a_failed_delivery_gets_one_attempt_and_no_automatic_retries,
    only_a_finished_delivery_of_the_tenant_may_be_resent,
    graphql_resends_a_delivery,
);

const WAIT: std::time::Duration = std::time::Duration::from_secs(30);

async fn notify(s: &Setup) -> String {
    let body = json!({"event": "lead.created", "data": {"leadId": 9}});
    let (status, answer) = s.app.post("/api/webhooks/notify", &s.key, &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["deliveryIds"][0].as_str().unwrap().to_owned()
}

async fn resend(s: &Setup, id: &str) -> (StatusCode, Value) {
    let path = format!("/api/webhooks/deliveries/{id}/resend");
    s.app.call(Method::POST, &path, Some(&s.key), None).await
}

/// Waits until the delivery has `attempts` attempts and is not in flight; returns it.
async fn with_attempts(s: &Setup, id: &str, attempts: u64) -> Value {
    eventually(WAIT, &format!("{attempts} attempts of {id}"), || async {
        let (_, delivery) = s
            .app
            .get(&format!("/api/webhooks/deliveries/{id}"), &s.key)
            .await;
        let done = delivery["attemptCount"] == attempts
            && !["PENDING", "RETRYING"].contains(&delivery["status"].as_str().unwrap_or(""));
        done.then_some(delivery)
    })
    .await
}

/// A webhook answering 200 and one delivery to it, SUCCESS, with the worker still running.
async fn delivered(backend: Backend) -> (Setup, Receiver, crate::support::Running, String) {
    let s = setup(backend).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    s.webhook(&receiver, json!({})).await;
    let worker = s.app.start_worker();
    let id = notify(&s).await;
    s.delivery_in(id.parse().unwrap(), "SUCCESS").await;
    (s, receiver, worker, id)
}

async fn a_successful_delivery_is_sent_once_more_with_the_same_webhook_id(backend: Backend) {
    let (s, receiver, worker, id) = delivered(backend).await;

    let (status, answer) = resend(&s, &id).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({"success": true, "queued": 1}));
    let delivery = with_attempts(&s, &id, 2).await;
    worker.stop().await;
    assert_eq!(delivery["status"], "SUCCESS");
    assert_eq!(delivery["attempts"].as_array().unwrap().len(), 2);
    let seen = receiver.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].header("webhook-id"), seen[1].header("webhook-id"));
    assert_eq!(
        seen[0].body, seen[1].body,
        "the same payload, byte for byte"
    );
    assert_eq!(seen[1].header("x-webhook-retry"), Some("1"));
    assert!(seen[1].seed_signature_ok && seen[1].standard_signature_ok);
}

async fn a_failed_delivery_gets_one_attempt_and_no_automatic_retries(backend: Backend) {
    let s = setup(backend).await;
    let receiver = Receiver::start(Reply::Status(500)).await;
    s.webhook(&receiver, json!({"maxRetries": 0})).await;
    let worker = s.app.start_worker();
    let id = notify(&s).await;
    s.delivery_in(id.parse().unwrap(), "FAILED").await;
    // Raised since: a resend still makes one attempt.
    let webhook_id = s
        .app
        .get(&format!("/api/webhooks/deliveries/{id}"), &s.key)
        .await
        .1["webhookId"]
        .as_str()
        .unwrap()
        .to_owned();
    s.app
        .patch(
            &format!("/api/webhooks/{webhook_id}"),
            &s.key,
            &json!({"maxRetries": 3}),
        )
        .await;

    let (status, _) = resend(&s, &id).await;
    assert_eq!(status, StatusCode::OK);
    let delivery = with_attempts(&s, &id, 2).await;
    // Time for a retry, had one been scheduled (test schedule: 1 s).
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    worker.stop().await;
    assert_eq!(delivery["status"], "FAILED");
    assert_eq!(receiver.seen().len(), 2, "one attempt, no retries after it");
}

async fn only_a_finished_delivery_of_the_tenant_may_be_resent(backend: Backend) {
    let s = setup(backend).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    s.webhook(&receiver, json!({})).await;
    // No worker: the delivery stays PENDING.
    let id = notify(&s).await;
    let (status, body) = resend(&s, &id).await;
    assert_error(status, &body, StatusCode::CONFLICT);
    assert!(
        body["error"].as_str().unwrap().contains("PENDING"),
        "{body}"
    );

    let (status, body) = resend(&s, &Uuid::now_v7().to_string()).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = resend(&s, "not-a-uuid").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);

    let (_, other_key) = s.app.tenant_with(Role::Admin).await;
    let path = format!("/api/webhooks/deliveries/{id}/resend");
    let (status, body) = s
        .app
        .call(Method::POST, &path, Some(&other_key), None)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let reader = s.app.key_for(s.tenant, Role::ReadOnly).await;
    let (status, body) = s.app.call(Method::POST, &path, Some(&reader), None).await;
    assert_error(status, &body, StatusCode::FORBIDDEN);
}

async fn graphql_resends_a_delivery(backend: Backend) {
    let (s, receiver, worker, id) = delivered(backend).await;
    let query = "mutation($id: ID!) { resendWebhookDelivery(id: $id) { success queued } }";
    let body = json!({"query": query, "variables": {"id": id}}).to_string();
    let (status, answer) = s
        .app
        .call(Method::POST, "/graphql", Some(&s.key), Some(&body))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer["data"]["resendWebhookDelivery"],
        json!({"success": true, "queued": 1}),
        "{answer}"
    );
    with_attempts(&s, &id, 2).await;
    worker.stop().await;
    assert_eq!(receiver.seen().len(), 2);
}
