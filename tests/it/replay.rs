//! Replay (`POST /api/webhooks/{id}/replay`, GraphQL `replayWebhookEvents`): the tenant's past
//! events sent to a webhook as new deliveries, exactly those of the range it subscribes to, on
//! both stores with real receivers.

use std::collections::BTreeSet;
use std::time::Duration;

use lambda_http::http::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::delivery::{setup, Setup};
use crate::receiver::{Receiver, Reply};
use crate::support::{assert_error, eventually, Backend};

crate::on_both_stores!(
    a_new_endpoint_catches_up_on_exactly_the_range_it_subscribes_to,
    events_no_webhook_listened_to_are_kept_and_replayed_past_a_page,
    a_replay_is_refused_for_bad_ranges_and_inactive_webhooks,
    graphql_replays_events,
);

const WAIT: Duration = Duration::from_secs(30);

/// Notifies `event`; its event id (the payload's `id`).
async fn notify(s: &Setup, event: &str) -> String {
    let body = json!({"event": event, "data": {"n": 1}});
    let (status, answer) = s.app.post("/api/webhooks/notify", &s.key, &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // No delivery may exist yet: the event id is read back from the outbox.
    let events = s
        .app
        .deps
        .store
        .list_outbox_events(s.tenant, 10_000)
        .await
        .unwrap();
    events.last().unwrap().id.to_string()
}

async fn replay(s: &Setup, webhook: Uuid, body: Value) -> (StatusCode, Value) {
    let path = format!("/api/webhooks/{webhook}/replay");
    s.app.post(&path, &s.key, &body).await
}

/// The event ids `receiver` got, once it got `count`.
async fn received(receiver: &Receiver, count: usize) -> BTreeSet<String> {
    eventually(WAIT, &format!("{count} deliveries"), || async {
        let ids: BTreeSet<String> = receiver
            .seen()
            .iter()
            .map(|seen| {
                serde_json::from_slice::<Value>(&seen.body).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        (ids.len() >= count).then_some(ids)
    })
    .await
}

fn now_text() -> String {
    common::time::rfc3339(chrono::Utc::now())
}

async fn a_new_endpoint_catches_up_on_exactly_the_range_it_subscribes_to(backend: Backend) {
    let s = setup(backend).await;
    let start = now_text();
    let mut leads = Vec::new();
    for event in ["lead.created", "account.created", "lead.updated"] {
        let id = notify(&s, event).await;
        if event.starts_with("lead.") {
            leads.push(id);
        }
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    let middle = now_text();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let later_lead = notify(&s, "lead.deleted").await;

    let receiver = Receiver::start(Reply::Status(200)).await;
    let (webhook, _) = s.webhook(&receiver, json!({"events": ["lead.*"]})).await;
    let worker = s.app.start_worker();
    let (status, answer) = replay(&s, webhook, json!({"since": start, "until": middle})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer,
        json!({"success": true, "queued": 2, "complete": true})
    );
    let got = received(&receiver, 2).await;
    assert_eq!(
        got,
        leads.iter().cloned().collect(),
        "the range's lead events, no account event"
    );

    // Again: nothing new. Then the rest of the range, narrowed to one event.
    let (_, again) = replay(&s, webhook, json!({"since": start, "until": middle})).await;
    assert_eq!(again["queued"], 0, "{again}");
    let (_, narrowed) = replay(
        &s,
        webhook,
        json!({"since": start, "events": ["lead.deleted"]}),
    )
    .await;
    assert_eq!(narrowed["queued"], 1, "{narrowed}");
    let got = received(&receiver, 3).await;
    worker.stop().await;
    assert!(got.contains(&later_lead));
    assert_eq!(receiver.seen().len(), 3, "each event once");
}

async fn events_no_webhook_listened_to_are_kept_and_replayed_past_a_page(backend: Backend) {
    let s = setup(backend).await;
    let start = now_text();
    let mut sent = BTreeSet::new();
    for _ in 0..130 {
        sent.insert(notify(&s, "contact.created").await);
    }
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (webhook, _) = s.webhook(&receiver, json!({"events": ["*"]})).await;
    let worker = s.app.start_worker();
    let (status, answer) = replay(&s, webhook, json!({"since": start})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // A request that runs out of its time hands the rest to the worker, and says so.
    let queued = answer["queued"].as_u64().unwrap();
    match answer["complete"].as_bool() {
        Some(true) => assert_eq!(queued, 130, "{answer}"),
        _ => assert!((100..130).contains(&queued), "at least one page: {answer}"),
    }
    let got = received(&receiver, 130).await;
    worker.stop().await;
    assert_eq!(got, sent);
}

async fn a_replay_is_refused_for_bad_ranges_and_inactive_webhooks(backend: Backend) {
    let s = setup(backend).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (webhook, _) = s.webhook(&receiver, json!({})).await;
    let now = now_text();
    for (body, field) in [
        (json!({}), "since"),
        (json!({"since": null}), "since"),
        (json!({"since": "yesterday"}), "since"),
        (
            json!({"since": "2020-01-01T00:00:00Z", "events": ["nope.*"]}),
            "events",
        ),
        (
            json!({"since": "2020-01-01T00:00:00Z", "extra": 1}),
            "extra",
        ),
    ] {
        let (status, answer) = replay(&s, webhook, body.clone()).await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST);
        assert!(answer["details"][field].is_string(), "{body} → {answer}");
    }
    // A range that ends before it starts holds nothing: answered, not refused.
    let backwards = json!({"since": now, "until": "2020-01-01T00:00:00Z"});
    let (status, answer) = replay(&s, webhook, backwards).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["queued"], 0, "{answer}");
    let (status, answer) = replay(&s, Uuid::now_v7(), json!({"since": now})).await;
    assert_error(status, &answer, StatusCode::NOT_FOUND);
    s.app
        .patch(
            &format!("/api/webhooks/{webhook}"),
            &s.key,
            &json!({"active": false}),
        )
        .await;
    let (status, answer) = replay(&s, webhook, json!({"since": "2020-01-01T00:00:00Z"})).await;
    assert_error(status, &answer, StatusCode::CONFLICT);
}

async fn graphql_replays_events(backend: Backend) {
    let s = setup(backend).await;
    let start = now_text();
    let event = notify(&s, "lead.converted").await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (webhook, _) = s.webhook(&receiver, json!({})).await;
    let worker = s.app.start_worker();
    let query = "mutation($id: ID!, $since: DateTime!) { replayWebhookEvents(id: $id, since: $since) { success queued complete } }";
    let body = json!({"query": query, "variables": {"id": webhook, "since": start}}).to_string();
    let (status, answer) = s
        .app
        .call(Method::POST, "/graphql", Some(&s.key), Some(&body))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer["data"]["replayWebhookEvents"],
        json!({"success": true, "queued": 1, "complete": true}),
        "{answer}"
    );
    let got = received(&receiver, 1).await;
    worker.stop().await;
    assert_eq!(got, BTreeSet::from([event]));
}
