//! Recovery (`POST /api/webhooks/{id}/recover`, GraphQL `recoverWebhookDeliveries`, and
//! `{"active": true, "recover": true}` on re-enabling): a webhook's FAILED and CANCELLED
//! deliveries of a range sent again, exactly those, on both stores with real receivers.

use std::collections::BTreeSet;
use std::time::Duration;

use common::domain::auth::Role;
use common::service::deps::DeliverySettings;
use lambda_http::http::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::delivery::{setup, Setup};
use crate::receiver::{Receiver, Reply};
use crate::support::{assert_error, eventually, test_settings, Backend, TestApp};

crate::on_both_stores!(
    recover_sends_exactly_the_failed_and_cancelled_deliveries_of_the_range,
    a_recovery_longer_than_a_page_reaches_every_delivery,
    re_enabling_with_recover_sends_what_was_pending_when_it_was_disabled,
    a_recovery_is_refused_for_bad_ranges_and_inactive_webhooks,
    graphql_recovers_deliveries,
);

const WAIT: Duration = Duration::from_secs(30);

/// Notifies `lead.created`; the deliveries it made.
async fn notify(s: &Setup) -> Vec<Uuid> {
    let body = json!({"event": "lead.created", "data": {"n": 1}});
    let (status, answer) = s.app.post("/api/webhooks/notify", &s.key, &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["deliveryIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().parse().unwrap())
        .collect()
}

async fn delivery(s: &Setup, id: Uuid) -> Value {
    s.app
        .get(&format!("/api/webhooks/deliveries/{id}"), &s.key)
        .await
        .1
}

/// Of `ids`, the deliveries to `webhook`.
async fn of_webhook(s: &Setup, ids: &[Uuid], webhook: Uuid) -> Vec<Uuid> {
    let mut mine = Vec::new();
    for id in ids {
        if delivery(s, *id).await["webhookId"] == webhook.to_string() {
            mine.push(*id);
        }
    }
    mine
}

/// Waits until every one of `ids` is `status`.
async fn all_in(s: &Setup, ids: &[Uuid], status: &str) {
    for id in ids {
        s.delivery_in(*id, status).await;
    }
}

async fn recover(s: &Setup, webhook: Uuid, body: Value) -> (StatusCode, Value) {
    s.app
        .post(&format!("/api/webhooks/{webhook}/recover"), &s.key, &body)
        .await
}

async fn patch(s: &Setup, webhook: Uuid, body: Value) -> (StatusCode, Value) {
    s.app
        .patch(&format!("/api/webhooks/{webhook}"), &s.key, &body)
        .await
}

/// The `webhook-id` (the event id) of each request `receiver` answered 200 to, once it got
/// `count` of them.
async fn answered(receiver: &Receiver, count: usize) -> BTreeSet<String> {
    eventually(WAIT, &format!("{count} deliveries answered"), || async {
        let ids: BTreeSet<String> = receiver
            .seen()
            .iter()
            .filter(|seen| matches!(seen.answered, Reply::Status(200)))
            .map(|seen| seen.header("webhook-id").unwrap().to_owned())
            .collect();
        (ids.len() >= count).then_some(ids)
    })
    .await
}

fn now_text() -> String {
    common::time::rfc3339(chrono::Utc::now())
}

async fn pause() {
    tokio::time::sleep(Duration::from_millis(5)).await;
}

/// The event ids of the deliveries `ids`: what their requests carry as `webhook-id`.
async fn event_ids(s: &Setup, ids: &[Uuid]) -> BTreeSet<String> {
    let mut events = BTreeSet::new();
    for id in ids {
        events.insert(
            delivery(s, *id).await["eventId"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    events
}

async fn recover_sends_exactly_the_failed_and_cancelled_deliveries_of_the_range(backend: Backend) {
    let s = setup(backend).await;
    let receiver = Receiver::start(Reply::Status(500)).await;
    let other = Receiver::start(Reply::Status(500)).await;
    let (webhook, _) = s.webhook(&receiver, json!({"maxRetries": 0})).await;
    s.webhook(&other, json!({"maxRetries": 0})).await;

    // Failed before the range, failed in it, cancelled in it (queued while the webhook was
    // deactivated), failed after it.
    let worker = s.app.start_worker();
    let before = of_webhook(&s, &notify(&s).await, webhook).await;
    pause().await;
    let since = now_text();
    let mut failed = Vec::new();
    let mut all = Vec::new();
    for _ in 0..3 {
        let ids = notify(&s).await;
        failed.extend(of_webhook(&s, &ids, webhook).await);
        all.extend(ids);
    }
    all_in(&s, &all, "FAILED").await;
    worker.stop().await;
    let mut cancelled = Vec::new();
    for _ in 0..2 {
        cancelled.extend(of_webhook(&s, &notify(&s).await, webhook).await);
    }
    assert_eq!(
        patch(&s, webhook, json!({"active": false})).await.0,
        StatusCode::OK
    );
    let worker = s.app.start_worker();
    all_in(&s, &cancelled, "CANCELLED").await;
    pause().await;
    let until = now_text();
    pause().await;
    assert_eq!(
        patch(&s, webhook, json!({"active": true})).await.0,
        StatusCode::OK
    );
    let after = of_webhook(&s, &notify(&s).await, webhook).await;
    all_in(&s, &after, "FAILED").await;

    receiver.answer_from_now(Reply::Status(200));
    let attempts_before = receiver.seen().len();
    let others_before = other.seen().len();
    let (status, answer) = recover(&s, webhook, json!({"since": since, "until": until})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer,
        json!({"success": true, "queued": 5, "complete": true})
    );
    let expected: Vec<Uuid> = failed.iter().chain(&cancelled).copied().collect();
    let got = answered(&receiver, expected.len()).await;
    all_in(&s, &expected, "SUCCESS").await;
    worker.stop().await;
    assert_eq!(
        got,
        event_ids(&s, &expected).await,
        "exactly the range's FAILED and CANCELLED"
    );
    assert_eq!(
        receiver.seen().len(),
        attempts_before + expected.len(),
        "each once"
    );
    for id in &failed {
        let sent_again = delivery(&s, *id).await;
        assert_eq!(
            sent_again["attemptCount"], 2,
            "an attempt of the same delivery"
        );
    }
    for id in before.iter().chain(&after) {
        assert_eq!(
            delivery(&s, *id).await["status"],
            "FAILED",
            "outside the range"
        );
    }
    assert_eq!(
        other.seen().len(),
        others_before,
        "another webhook's deliveries stay as they were"
    );
    // Again: nothing is FAILED or CANCELLED in the range any more.
    let (_, again) = recover(&s, webhook, json!({"since": since, "until": until})).await;
    assert_eq!(again["queued"], 0, "{again}");
}

async fn a_recovery_longer_than_a_page_reaches_every_delivery(backend: Backend) {
    let s = setup(backend).await;
    let receiver = Receiver::start(Reply::Status(500)).await;
    let (webhook, _) = s.webhook(&receiver, json!({"maxRetries": 0})).await;
    let since = now_text();
    let worker = s.app.start_worker();
    let mut failed = Vec::new();
    for _ in 0..130 {
        failed.extend(notify(&s).await);
    }
    all_in(&s, &failed, "FAILED").await;
    receiver.answer_from_now(Reply::Status(200));
    let (status, answer) = recover(&s, webhook, json!({"since": since})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // A request that runs out of its time hands the rest to the worker, and says so.
    let queued = answer["queued"].as_u64().unwrap();
    match answer["complete"].as_bool() {
        Some(true) => assert_eq!(queued, 130, "{answer}"),
        // Handed on after a page, or after the FAILED ones with the CANCELLED still to read.
        _ => assert!((100..=130).contains(&queued), "at least one page: {answer}"),
    }
    let got = answered(&receiver, 130).await;
    worker.stop().await;
    assert_eq!(got, event_ids(&s, &failed).await);
}

async fn re_enabling_with_recover_sends_what_was_pending_when_it_was_disabled(backend: Backend) {
    let settings = DeliverySettings {
        disable_after: Some(chrono::Duration::seconds(2)),
        ..test_settings()
    };
    let app = TestApp::with_settings(backend, settings).await;
    let (tenant, key) = app.tenant_with(Role::Admin).await;
    let s = Setup { app, key, tenant };
    let receiver = Receiver::start(Reply::Status(500)).await;
    let (webhook, _) = s
        .webhook(&receiver, json!({"maxRetries": 10, "events": ["lead.*"]}))
        .await;
    let worker = s.app.start_worker();
    let mut pending = Vec::new();
    for _ in 0..3 {
        pending.extend(notify(&s).await);
    }
    // Disabled after 2 s of failures; every delivery ends FAILED or CANCELLED, none is lost.
    eventually(WAIT, "the webhook disabled", || async {
        let read = s
            .app
            .get(&format!("/api/webhooks/{webhook}"), &s.key)
            .await
            .1;
        (read["active"] == false).then_some(())
    })
    .await;
    let finished = eventually(WAIT, "every delivery finished", || async {
        let mut statuses = Vec::new();
        for id in &pending {
            statuses.push(
                delivery(&s, *id).await["status"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        statuses
            .iter()
            .all(|status| status == "FAILED" || status == "CANCELLED")
            .then_some(statuses)
    })
    .await;
    assert!(
        finished.iter().any(|status| status == "CANCELLED"),
        "{finished:?}"
    );

    receiver.answer_from_now(Reply::Status(200));
    for (body, field) in [
        (json!({"recover": true}), "recover"),
        (json!({"active": false, "recover": true}), "recover"),
        (json!({"active": true, "recover": 1}), "recover"),
    ] {
        let (status, answer) = patch(&s, webhook, body.clone()).await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST);
        assert!(answer["details"][field].is_string(), "{body} → {answer}");
    }
    let (status, enabled) = patch(&s, webhook, json!({"active": true, "recover": true})).await;
    assert_eq!(status, StatusCode::OK, "{enabled}");
    assert_eq!(enabled["active"], true);
    let got = answered(&receiver, pending.len()).await;
    all_in(&s, &pending, "SUCCESS").await;
    worker.stop().await;
    assert_eq!(
        got,
        event_ids(&s, &pending).await,
        "every delivery pending when it was disabled"
    );
}

async fn a_recovery_is_refused_for_bad_ranges_and_inactive_webhooks(backend: Backend) {
    let s = setup(backend).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (webhook, _) = s.webhook(&receiver, json!({})).await;
    for (body, field) in [
        (json!({}), "since"),
        (json!({"since": null}), "since"),
        (json!({"since": "yesterday"}), "since"),
        (
            json!({"since": "2020-01-01T00:00:00Z", "until": 5}),
            "until",
        ),
        (
            json!({"since": "2020-01-01T00:00:00Z", "events": ["lead.*"]}),
            "events",
        ),
    ] {
        let (status, answer) = recover(&s, webhook, body.clone()).await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST);
        assert!(answer["details"][field].is_string(), "{body} → {answer}");
    }
    // A range that ends before it starts holds nothing: answered, not refused.
    let backwards = json!({"since": now_text(), "until": "2020-01-01T00:00:00Z"});
    let (status, answer) = recover(&s, webhook, backwards).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["queued"], 0, "{answer}");
    let (status, answer) = recover(&s, Uuid::now_v7(), json!({"since": now_text()})).await;
    assert_error(status, &answer, StatusCode::NOT_FOUND);
    patch(&s, webhook, json!({"active": false})).await;
    let since = json!({"since": "2020-01-01T00:00:00Z"});
    let (status, answer) = recover(&s, webhook, since).await;
    assert_error(status, &answer, StatusCode::CONFLICT);
    // Another tenant's webhook is not found.
    let (_, stranger) = s.app.tenant_with(Role::Admin).await;
    let path = format!("/api/webhooks/{webhook}/recover");
    let body = json!({"since": "2020-01-01T00:00:00Z"});
    let (status, answer) = s.app.post(&path, &stranger, &body).await;
    assert_error(status, &answer, StatusCode::NOT_FOUND);
}

async fn graphql_recovers_deliveries(backend: Backend) {
    let s = setup(backend).await;
    let receiver = Receiver::start(Reply::Status(500)).await;
    let (webhook, _) = s.webhook(&receiver, json!({"maxRetries": 0})).await;
    let since = now_text();
    let worker = s.app.start_worker();
    let ids = notify(&s).await;
    all_in(&s, &ids, "FAILED").await;
    receiver.answer_from_now(Reply::Status(200));
    let query = "mutation($id: ID!, $since: DateTime!) { recoverWebhookDeliveries(id: $id, since: $since) { success queued complete } }";
    let body = json!({"query": query, "variables": {"id": webhook, "since": since}}).to_string();
    let (status, answer) = s
        .app
        .call(Method::POST, "/graphql", Some(&s.key), Some(&body))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer["data"]["recoverWebhookDeliveries"],
        json!({"success": true, "queued": 1, "complete": true}),
        "{answer}"
    );
    all_in(&s, &ids, "SUCCESS").await;
    worker.stop().await;
    assert_eq!(answered(&receiver, 1).await, event_ids(&s, &ids).await);

    // `recover` on a change needs `active: true`, as on REST.
    let update = "mutation($id: ID!, $input: UpdateWebhookInput!) { updateWebhook(id: $id, input: $input) { webhook { active } } }";
    let refused =
        json!({"query": update, "variables": {"id": webhook, "input": {"recover": true}}});
    let (_, answer) = s
        .app
        .call(
            Method::POST,
            "/graphql",
            Some(&s.key),
            Some(&refused.to_string()),
        )
        .await;
    let error = &answer["errors"][0];
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{answer}");
    assert_eq!(error["extensions"]["field"], "recover", "{answer}");
    let both = json!({"query": update, "variables": {"id": webhook, "input": {"active": true, "recover": true}}});
    let (_, answer) = s
        .app
        .call(
            Method::POST,
            "/graphql",
            Some(&s.key),
            Some(&both.to_string()),
        )
        .await;
    assert_eq!(
        answer["data"]["updateWebhook"]["webhook"]["active"], true,
        "{answer}"
    );
}
