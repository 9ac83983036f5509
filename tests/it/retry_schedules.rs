//! Retries on a webhook's own schedule, and jitter, with real receivers on both stores.

use common::domain::auth::Role;
use common::domain::delivery::Jitter;
use common::service::deps::DeliverySettings;
use lambda_http::http::StatusCode;
use serde_json::json;

use crate::delivery::Setup;
use crate::receiver::{Receiver, Reply};
use crate::support::{test_settings, Backend, TestApp};

crate::on_both_stores!(
    retries_follow_the_webhooks_own_schedule,
    jitter_spreads_retries_around_the_schedule,
);

/// moto's SQS wakes a long poll once a second for a message whose delay ran out (see
/// `delivery::retries_follow_the_schedule_then_fail_for_good`).
fn slack(backend: Backend) -> f64 {
    match backend {
        Backend::Sqlite => 1.0,
        Backend::DynamoDb => 2.0,
    }
}

async fn setup_with(backend: Backend, settings: DeliverySettings) -> Setup {
    let app = TestApp::with_settings(backend, settings).await;
    let (tenant, key) = app.tenant_with(Role::Admin).await;
    Setup { app, key, tenant }
}

/// Seconds between the attempts a receiver saw.
fn gaps(receiver: &Receiver) -> Vec<f64> {
    let seen = receiver.seen();
    seen.windows(2)
        .map(|pair| pair[1].at.duration_since(pair[0].at).as_secs_f64())
        .collect()
}

async fn notify(s: &Setup) -> Vec<String> {
    let body = json!({"event": "lead.created", "data": {"leadId": 1}});
    let (status, answer) = s.app.post("/api/webhooks/notify", &s.key, &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["deliveryIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect()
}

async fn retries_follow_the_webhooks_own_schedule(backend: Backend) {
    // The deployment's schedule (1, 2, 2 s in tests) is not this webhook's.
    let s = setup_with(backend, test_settings()).await;
    let receiver = Receiver::start(Reply::Status(500)).await;
    s.webhook(&receiver, json!({"maxRetries": 3, "retrySchedule": [3, 1]}))
        .await;
    let worker = s.app.start_worker();
    let ids = notify(&s).await;
    let failed = s.delivery_in(ids[0].parse().unwrap(), "FAILED").await;
    worker.stop().await;
    assert_eq!(failed["attemptCount"], 4);
    let gaps = gaps(&receiver);
    assert_eq!(gaps.len(), 3);
    for (gap, expected) in gaps.iter().zip([3.0, 1.0, 1.0]) {
        assert!(
            *gap >= expected - 0.05 && *gap <= expected + slack(backend),
            "gaps {gaps:?}, expected 3, 1, 1 (the last delay repeats)"
        );
    }
}

async fn jitter_spreads_retries_around_the_schedule(backend: Backend) {
    let settings = DeliverySettings {
        retry_jitter: Jitter::percent(50).unwrap(),
        ..test_settings()
    };
    let s = setup_with(backend, settings).await;
    let receivers = [
        Receiver::start(Reply::Status(500)).await,
        Receiver::start(Reply::Status(500)).await,
        Receiver::start(Reply::Status(500)).await,
        Receiver::start(Reply::Status(500)).await,
        Receiver::start(Reply::Status(500)).await,
        Receiver::start(Reply::Status(500)).await,
    ];
    for receiver in &receivers {
        s.webhook(receiver, json!({"maxRetries": 1, "retrySchedule": [4]}))
            .await;
    }
    let worker = s.app.start_worker();
    for id in notify(&s).await {
        s.delivery_in(id.parse().unwrap(), "FAILED").await;
    }
    worker.stop().await;
    // Each retry 4 s ± 50%: within 2 to 6 s (plus the queue's slack), and not all alike.
    let retries: Vec<f64> = receivers.iter().map(|r| gaps(r)[0]).collect();
    for gap in &retries {
        assert!(
            *gap >= 2.0 - 0.05 && *gap <= 6.0 + slack(backend),
            "{retries:?}"
        );
    }
    let spread = retries.iter().cloned().fold(f64::MIN, f64::max)
        - retries.iter().cloned().fold(f64::MAX, f64::min);
    assert!(spread > 0.5, "jittered retries spread out: {retries:?}");
}
