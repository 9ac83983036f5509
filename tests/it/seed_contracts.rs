//! Seed 000's contracts with existing clients and receivers, on both stores: the notify body's
//! `timestamp`, `X-Webhook-Signature` across a secret rotation, and the retry endpoint at any
//! number of FAILED deliveries.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::domain::delivery::{payload, Delivery, DeliveryStatus};
use common::ports::QueueMessage;
use common::service::worker::{process_message, MessageOutcome};
use lambda_http::http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::delivery::{setup, Setup};
use crate::receiver::{Receiver, Reply};
use crate::support::{assert_error, eventually, Backend};

crate::on_both_stores!(
    a_seed_notify_is_delivered_with_its_timestamp,
    a_malformed_notify_timestamp_is_refused_by_name,
    a_seed_receiver_verifies_every_delivery_across_a_rotation,
    the_rotation_overlap_is_chosen_within_seven_days,
    a_webhook_retry_finds_its_failed_deliveries_behind_a_thousand_others,
    a_retry_of_all_requeues_five_thousand_failed_deliveries,
    a_manual_retry_is_one_attempt_even_after_max_retries_grew,
);

const WAIT: Duration = Duration::from_secs(20);

/// What these tests add to the delivery tests' setup.
impl Setup {
    /// Seed 000's notify with the whole body given.
    async fn notify_body(&self, body: Value) -> Vec<Uuid> {
        let (status, answer) = self
            .app
            .post("/api/webhooks/notify", &self.key, &body)
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer["deliveryIds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_str().unwrap().parse().unwrap())
            .collect()
    }

    async fn rotate(&self, webhook_id: Uuid, body: Value) -> (StatusCode, Value) {
        self.app
            .post(
                &format!("/api/webhooks/{webhook_id}/rotate-secret"),
                &self.key,
                &body,
            )
            .await
    }

    /// `count` deliveries of `webhook_id` written straight to the store as FAILED after one
    /// attempt, as if their receiver had been down: the state a retry starts from.
    async fn failed_deliveries(&self, webhook_id: Uuid, count: usize) -> Vec<Uuid> {
        let now = self.app.deps.clock.now();
        let deliveries: Vec<Delivery> = (0..count)
            .map(|_| {
                let event_id = Uuid::now_v7();
                let body = payload(event_id, "lead.created", &json!({}), now).unwrap();
                let mut delivery =
                    Delivery::new(self.tenant, webhook_id, event_id, "lead.created", body, now);
                delivery.status = DeliveryStatus::Failed;
                delivery.attempt_count = 1;
                delivery.last_status_code = Some(503);
                delivery.next_attempt_at = None;
                delivery
            })
            .collect();
        let writes = deliveries.chunks(250).map(|chunk| {
            let store = std::sync::Arc::clone(&self.app.deps.store);
            let chunk = chunk.to_vec();
            tokio::spawn(async move {
                for delivery in &chunk {
                    store.put_payload(&delivery.event_payload()).await?;
                }
                store.create_deliveries(&chunk).await
            })
        });
        for write in futures::future::join_all(writes).await {
            write.unwrap().unwrap();
        }
        deliveries.iter().map(|d| d.id).collect()
    }

    async fn retry(&self, body: Value) -> Value {
        let (status, answer) = self.app.post("/api/webhooks/retry", &self.key, &body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer
    }
}

fn delivered_payload(receiver: &Receiver, index: usize) -> Value {
    serde_json::from_slice(&receiver.seen()[index].body).unwrap()
}

async fn a_seed_notify_is_delivered_with_its_timestamp(backend: Backend) {
    let s = setup(backend).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    s.webhook(&receiver, json!({})).await;
    let worker = s.app.start_worker();

    // Seed 000's `WebhookPayload {event, timestamp, data}`, as a seed-era client sends it.
    let ids = s
        .notify_body(json!({
            "event": "lead.created",
            "timestamp": "2026-11-24T12:00:00.123Z",
            "data": {"leadId": "L-1"},
        }))
        .await;
    s.delivery_in(ids[0], "SUCCESS").await;
    let delivered = delivered_payload(&receiver, 0);
    assert_eq!(delivered["timestamp"], "2026-11-24T12:00:00.123Z");
    assert_eq!(delivered["data"], json!({"leadId": "L-1"}));

    // Another offset is the same instant, said in UTC.
    let ids = s
        .notify_body(
            json!({"event": "lead.updated", "timestamp": "2026-11-24T14:00:00+02:00", "data": {}}),
        )
        .await;
    s.delivery_in(ids[0], "SUCCESS").await;
    assert_eq!(
        delivered_payload(&receiver, 1)["timestamp"],
        "2026-11-24T12:00:00.000Z"
    );

    // Absent (or null): the time of the call.
    let before = Utc::now() - chrono::Duration::seconds(1);
    let ids = s
        .notify_body(json!({"event": "lead.deleted", "timestamp": null, "data": {}}))
        .await;
    s.delivery_in(ids[0], "SUCCESS").await;
    worker.stop().await;
    let stamped: DateTime<Utc> = delivered_payload(&receiver, 2)["timestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(stamped >= before && stamped <= Utc::now(), "{stamped}");
}

async fn a_malformed_notify_timestamp_is_refused_by_name(backend: Backend) {
    let s = setup(backend).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    s.webhook(&receiver, json!({})).await;
    for timestamp in [
        json!("yesterday"),
        json!("2026-11-24"),
        json!("2026-11-24T12:00:00"),
        json!("2026-13-01T00:00:00Z"),
        json!(1_764_000_000),
    ] {
        let body = json!({"event": "lead.created", "timestamp": timestamp, "data": {}});
        let (status, answer) = s.app.post("/api/webhooks/notify", &s.key, &body).await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST);
        assert!(
            answer["details"]["timestamp"].is_string(),
            "{timestamp}: {answer}"
        );
    }
    // A field the seed never had is still refused, so that typos do not pass silently.
    let body = json!({"event": "lead.created", "timestmp": "2026-11-24T12:00:00Z", "data": {}});
    let (status, answer) = s.app.post("/api/webhooks/notify", &s.key, &body).await;
    assert_error(status, &answer, StatusCode::BAD_REQUEST);
    assert!(answer["details"]["timestmp"].is_string(), "{answer}");
    let (_, stats) = s.app.get("/api/webhooks/stats", &s.key).await;
    assert_eq!(stats["total"], 0, "nothing was sent: {stats}");
}

async fn a_seed_receiver_verifies_every_delivery_across_a_rotation(backend: Backend) {
    let s = setup(backend).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (webhook_id, old) = s.webhook(&receiver, json!({})).await;
    let worker = s.app.start_worker();
    let send = |n: u32| {
        let s = &s;
        async move {
            let ids = s
                .notify_body(json!({"event": "lead.created", "data": {"n": n}}))
                .await;
            s.delivery_in(ids[0], "SUCCESS").await;
        }
    };

    // Before: the receiver holds the old secret only.
    send(0).await;
    // Long enough for two deliveries on a loaded machine.
    let overlap = 8;
    let (status, rotated) = s
        .rotate(webhook_id, json!({"overlapSeconds": overlap}))
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_owned();
    let expires: DateTime<Utc> = rotated["previousSecretExpiresAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let from_now = (expires - Utc::now()).num_milliseconds();
    assert!(
        (overlap - 2) * 1_000 <= from_now && from_now <= overlap * 1_000,
        "the old secret expires in about {overlap} s: {from_now} ms"
    );

    // During the overlap: a receiver not yet redeployed (old secret) and one redeployed to
    // accept either secret both verify.
    send(1).await;
    send(2).await;
    assert!(
        Utc::now() < expires,
        "the overlap ended before the deliveries meant for it were sent"
    );
    // After it: a receiver that has dropped the old secret verifies.
    tokio::time::sleep_until(
        tokio::time::Instant::now()
            + (expires - Utc::now()).to_std().unwrap_or_default()
            + Duration::from_millis(200),
    )
    .await;
    send(3).await;
    worker.stop().await;

    let seen = receiver.seen();
    assert_eq!(seen.len(), 4);
    for (index, request) in seen.iter().enumerate() {
        let verifies = (
            request.seed_signature_verifies_with(&old),
            request.seed_signature_verifies_with(&new),
        );
        let expected = if index < 3 {
            (true, false)
        } else {
            (false, true)
        };
        assert_eq!(verifies, expected, "delivery {index}: (old, new)");
        let during = index == 1 || index == 2;
        let standard = request.header("webhook-signature").unwrap();
        assert_eq!(
            standard.split(' ').count(),
            if during { 2 } else { 1 },
            "delivery {index}: the Standard Webhooks header lists both secrets during the overlap"
        );
    }
}

async fn the_rotation_overlap_is_chosen_within_seven_days(backend: Backend) {
    let s = setup(backend).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (webhook_id, _) = s.webhook(&receiver, json!({})).await;
    let expires_in = |answer: &Value| {
        let at: DateTime<Utc> = answer["previousSecretExpiresAt"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        (at - Utc::now()).num_seconds()
    };

    // No body, an empty one, or null: 24 hours.
    let (status, default) = s
        .app
        .call(
            lambda_http::http::Method::POST,
            &format!("/api/webhooks/{webhook_id}/rotate-secret"),
            Some(&s.key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{default}");
    assert!((86_395..=86_400).contains(&expires_in(&default)));
    let (_, null) = s.rotate(webhook_id, json!({"overlapSeconds": null})).await;
    assert!((86_395..=86_400).contains(&expires_in(&null)));
    let (_, week) = s
        .rotate(webhook_id, json!({"overlapSeconds": 604_800}))
        .await;
    assert!((604_795..=604_800).contains(&expires_in(&week)));
    let (_, none) = s.rotate(webhook_id, json!({"overlapSeconds": 0})).await;
    assert!(expires_in(&none) <= 0);

    for bad in [json!(-1), json!(604_801), json!("60"), json!(1.5)] {
        let (status, answer) = s.rotate(webhook_id, json!({"overlapSeconds": bad})).await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST);
        assert!(
            answer["details"]["overlapSeconds"].is_string(),
            "{bad}: {answer}"
        );
    }
    let (status, answer) = s.rotate(webhook_id, json!({"overlap": 60})).await;
    assert_error(status, &answer, StatusCode::BAD_REQUEST);
}

async fn a_webhook_retry_finds_its_failed_deliveries_behind_a_thousand_others(backend: Backend) {
    let s = setup(backend).await;
    let busy = Receiver::start(Reply::Status(200)).await;
    let quiet = Receiver::start(Reply::Status(200)).await;
    let (busy_id, _) = s.webhook(&busy, json!({})).await;
    let (quiet_id, _) = s.webhook(&quiet, json!({})).await;
    // The quiet webhook's FAILED deliveries are newer than the busy one's 1,001.
    s.failed_deliveries(busy_id, 1_001).await;
    let quiet_failed = s.failed_deliveries(quiet_id, 2).await;

    let answer = s.retry(json!({"webhookId": quiet_id})).await;
    assert_eq!(answer, json!({"success": true, "retriedCount": 2}));
    let worker = s.app.start_worker();
    for id in &quiet_failed {
        let done = s.delivery_in(*id, "SUCCESS").await;
        // One more attempt: the second, sent as retry 1.
        assert_eq!(done["attemptCount"], 2, "{done}");
    }
    worker.stop().await;
    let seen = quiet.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen
        .iter()
        .all(|r| r.header("x-webhook-retry") == Some("1")));
    assert!(
        busy.seen().is_empty(),
        "only the named webhook's were retried"
    );

    // A retry that names deliveries takes only the FAILED ones among them.
    let answer = s
        .retry(json!({"deliveryIds": [quiet_failed[0], Uuid::now_v7()]}))
        .await;
    assert_eq!(answer["retriedCount"], 0, "{answer}");
}

/// A retry of all answers at once with the count, and the worker queues every FAILED delivery
/// for one more attempt, a page at a time, handing the rest on when its time is short. The
/// queue is drained here with the worker's own code for those hand-overs; the retries it
/// queued are collected, not sent (the other tests send them).
async fn a_retry_of_all_requeues_five_thousand_failed_deliveries(backend: Backend) {
    let s = setup(backend).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (webhook_id, _) = s.webhook(&receiver, json!({})).await;
    let count = 5_000;
    let mut failed = s.failed_deliveries(webhook_id, count).await;

    let started = Instant::now();
    let answer = s.retry(json!({})).await;
    let answered = started.elapsed();
    assert_eq!(answer, json!({"success": true, "retriedCount": count}));

    let queue = &s.app.deps.queue;
    let mut retried = Vec::new();
    let mut jobs = 0;
    let mut in_jobs = Duration::ZERO;
    let drained = Instant::now() + Duration::from_secs(240);
    while retried.len() < count {
        assert!(
            Instant::now() < drained,
            "{} of {count} retries queued",
            retried.len()
        );
        for message in queue.receive(10, Duration::from_secs(1)).await.unwrap() {
            match serde_json::from_str(&message.body).unwrap() {
                QueueMessage::Delivery(delivery) => {
                    assert!(delivery.retry, "{delivery:?}");
                    retried.push(delivery.delivery_id);
                }
                QueueMessage::RetryFailed(_) => {
                    // The first hand-over runs as if its invocation ended 5 s from now, its
                    // margin: it queues one page, then hands the rest on.
                    jobs += 1;
                    let deadline = (jobs == 1).then(|| Instant::now() + Duration::from_secs(5));
                    let job_started = Instant::now();
                    let outcome = process_message(&s.app.deps, &message.body, deadline).await;
                    in_jobs += job_started.elapsed();
                    assert_eq!(outcome, MessageOutcome::Done);
                }
                QueueMessage::Replay(job) => panic!("a retry queued a replay: {job:?}"),
                QueueMessage::Recover(job) => panic!("a retry queued a recovery: {job:?}"),
            }
            queue.delete(&message.receipt).await.unwrap();
        }
    }
    let took = started.elapsed();
    println!(
        "retry of all on {backend:?}: answered in {} ms; {count} retries queued by {jobs} worker \
         messages in {} ms of their work ({:.0}/s); drained from the queue after {} ms",
        answered.as_millis(),
        in_jobs.as_millis(),
        count as f64 / in_jobs.as_secs_f64(),
        took.as_millis(),
    );
    assert!(jobs >= 2, "the job handed its rest on: {jobs}");
    retried.sort();
    failed.sort();
    assert_eq!(retried, failed, "every FAILED delivery once, nothing else");
    assert!(queue
        .receive(10, Duration::from_secs(1))
        .await
        .unwrap()
        .is_empty());
}

/// A manual retry sends once more and, if that fails too, leaves the delivery FAILED: raising
/// the webhook's `maxRetries` in between does not start a new schedule.
async fn a_manual_retry_is_one_attempt_even_after_max_retries_grew(backend: Backend) {
    let s = setup(backend).await;
    let receiver = Receiver::start(Reply::Status(500)).await;
    let (webhook_id, _) = s.webhook(&receiver, json!({"maxRetries": 0})).await;
    let worker = s.app.start_worker();
    let ids = s
        .notify_body(json!({"event": "lead.created", "data": {}}))
        .await;
    s.delivery_in(ids[0], "FAILED").await;
    let (status, patched) = s
        .app
        .patch(
            &format!("/api/webhooks/{webhook_id}"),
            &s.key,
            &json!({"maxRetries": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");

    let answer = s.retry(json!({"deliveryIds": [ids[0]]})).await;
    assert_eq!(answer["retriedCount"], 1, "{answer}");
    eventually(WAIT, "the retry's attempt", || async {
        (receiver.seen().len() == 2).then_some(())
    })
    .await;
    let failed = s.delivery_in(ids[0], "FAILED").await;
    worker.stop().await;
    assert_eq!(failed["attemptCount"], 2, "{failed}");
    assert_eq!(failed["nextAttemptAt"], Value::Null, "{failed}");
    assert_eq!(receiver.seen().len(), 2);
}
