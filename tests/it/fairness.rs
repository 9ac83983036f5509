//! One tenant's slow receivers do not hold back another tenant's deliveries: the consumer gives
//! each tenant and each endpoint a bounded share of its attempts and sets the rest aside
//! (service::fairness).

use std::time::{Duration, Instant};

use common::domain::auth::Role;
use common::service::fairness::FairShare;
use futures::StreamExt;
use lambda_http::http::StatusCode;
use serde_json::json;

use crate::receiver::{Receiver, Reply};
use crate::support::{eventually, Backend, TestApp};

crate::on_both_stores!(a_tenant_whose_receivers_hang_does_not_delay_another);

async fn webhook(app: &TestApp, key: &str, url: &str, timeout_ms: u32) {
    let body = json!({"url": url, "events": ["*"], "timeoutMs": timeout_ms});
    let (status, created) = app.post("/api/webhooks", key, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
}

async fn notify(app: &TestApp, key: &str) {
    let body = json!({"event": "lead.created", "data": {}});
    let (status, answer) = app.post("/api/webhooks/notify", key, &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

async fn a_tenant_whose_receivers_hang_does_not_delay_another(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, noisy) = app.tenant_with(Role::Admin).await;
    let (_, quiet) = app.tenant_with(Role::Admin).await;
    let hanging = Receiver::start(Reply::Hang).await;
    let answering = Receiver::start(Reply::Status(200)).await;
    for _ in 0..4 {
        webhook(&app, &noisy, &hanging.url, 10_000).await;
    }
    webhook(&app, &quiet, &answering.url, 5_000).await;

    let worker = app.start_worker();
    // 200 deliveries to receivers that never answer within their 10 s timeout.
    let notifies = (0..50).map(|_| notify(&app, &noisy));
    futures::stream::iter(notifies)
        .buffer_unordered(10)
        .collect::<Vec<()>>()
        .await;
    let share = FairShare::default().per_tenant;
    eventually(
        Duration::from_secs(20),
        "the noisy tenant's share in flight",
        || async { (hanging.seen().len() >= share).then_some(()) },
    )
    .await;
    let sent = Instant::now();
    // Attempts that began within their 10 s timeout are still in flight.
    let in_flight = |at: Instant| at.elapsed() < Duration::from_millis(9_500);
    let hung = hanging.seen().iter().filter(|s| in_flight(s.at)).count();
    notify(&app, &quiet).await;
    let accepted = Instant::now();
    eventually(
        Duration::from_secs(30),
        "the quiet tenant's delivery",
        || async { (answering.seen().len() == 1).then_some(()) },
    )
    .await;
    let notify_took = accepted - sent;
    let waited = answering.seen()[0].at.saturating_duration_since(accepted);
    worker.stop().await;
    println!(
        "{backend:?}: quiet tenant's delivery arrived {} ms after its notify answered (which \
         took {} ms), with {hung} attempts of another tenant hanging",
        waited.as_millis(),
        notify_took.as_millis()
    );
    assert!(waited < Duration::from_secs(1), "waited {waited:?}");
    assert!(hung <= share, "{hung} attempts in flight for one tenant");
}
