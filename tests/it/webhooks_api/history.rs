//! Delivery history and stats as real attempts succeed and fail.

use std::collections::{BTreeMap, BTreeSet};

use common::domain::auth::Role;
use lambda_http::http::StatusCode;
use serde_json::{json, Value};

use super::{create, id_of, ids, keys_of, walk_deliveries, webhook, WAIT};
use crate::receiver::{Receiver, Reply};
use crate::support::{assert_error, eventually, Backend, TestApp};

crate::on_both_stores!(
    stats_count_every_attempt_tenant_wide_and_per_webhook,
    history_lists_each_delivery_once_newest_first_two_at_a_time,
    the_status_filter_skips_the_other_status_across_pages,
    bad_history_queries_are_400,
    a_failed_attempt_is_recorded_in_full,
);

/// Deliveries that really ran, one event at a time: a healthy webhook (`good`, five successes), a
/// flaky one without retries (`shaky`, one success between two failures) and one subscribed to
/// nothing sent (`idle`).
struct Attempted {
    app: TestApp,
    key: String,
    good: String,
    shaky: String,
    idle: String,
    /// Every delivery id `notify` answered, in the order sent.
    notified: Vec<Value>,
}

async fn attempted(backend: Backend) -> Attempted {
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
    assert_eq!(healthy.seen().len(), 5);
    assert_eq!(flaky.seen().len(), 3, "maxRetries 0: one attempt each");

    Attempted {
        app,
        key,
        good,
        shaky,
        idle,
        notified,
    }
}

async fn stats_count_every_attempt_tenant_wide_and_per_webhook(backend: Backend) {
    let Attempted {
        app,
        key,
        good,
        shaky,
        idle,
        ..
    } = attempted(backend).await;

    let (status, stats) = app.get("/api/webhooks/stats", &key).await;
    assert_eq!(status, StatusCode::OK, "{stats}");
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
}

async fn history_lists_each_delivery_once_newest_first_two_at_a_time(backend: Backend) {
    let Attempted {
        app,
        key,
        good,
        notified,
        ..
    } = attempted(backend).await;

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
}

async fn the_status_filter_skips_the_other_status_across_pages(backend: Backend) {
    let Attempted {
        app,
        key,
        good,
        shaky,
        idle,
        ..
    } = attempted(backend).await;

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
}

/// A status or a page size or a cursor that does not parse.
async fn bad_history_queries_are_400(backend: Backend) {
    let Attempted { app, key, good, .. } = attempted(backend).await;

    for bad_query in ["status=DONE", "status=success", "limit=0", "cursor=%%%"] {
        let (status, body) = app
            .get(
                &format!("/api/webhooks/{good}/deliveries?{bad_query}"),
                &key,
            )
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
    }
}

async fn a_failed_attempt_is_recorded_in_full(backend: Backend) {
    let Attempted {
        app, key, shaky, ..
    } = attempted(backend).await;

    let failed = walk_deliveries(&app, &key, &shaky, "status=FAILED&limit=1").await;
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
