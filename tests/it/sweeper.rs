//! The sweeper at volume, on both stores: a backlog of stranded deliveries recovered in one run,
//! each enqueued once however many sweepers run at once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::domain::delivery::{payload, Delivery, DueDelivery};
use common::ports::{DuePage, QueueMessage};
use common::service::deps::DeliverySettings;
use common::service::sweeper::sweep;
use futures::StreamExt;
use serde_json::json;
use uuid::Uuid;

use crate::support::{test_settings, Backend, TestApp};

crate::on_both_stores!(
    invocations_recover_five_thousand_stranded_deliveries,
    sweepers_at_once_enqueue_each_stranded_delivery_once,
);

/// The sweeper Lambda's timeout (`infra/template.yaml`): one invocation's time.
const LAMBDA_TIMEOUT: Duration = Duration::from_secs(60);

/// A service whose sweeper leaves a delivery it requeued alone for 10 minutes (the tests'
/// usual 2 s would have a later run take back what an earlier one requeued: no worker runs).
async fn app(backend: Backend) -> TestApp {
    let settings = DeliverySettings {
        sweep_grace: Duration::from_secs(600),
        ..test_settings()
    };
    TestApp::with_settings(backend, settings).await
}

/// `count` deliveries written an hour ago and never enqueued, as after a queue outage: created
/// through the store, due long before the grace period.
async fn strand(app: &TestApp, count: usize) -> Vec<Uuid> {
    let then = app.deps.clock.now() - chrono::Duration::hours(1);
    let (tenant, webhook) = (Uuid::now_v7(), Uuid::now_v7());
    let data = json!({"padding": "x".repeat(1_000)});
    let stranded: Vec<Delivery> = (0..count)
        .map(|_| {
            let event = Uuid::now_v7();
            let body = payload(event, "lead.created", &data, then).unwrap();
            Delivery::new(tenant, webhook, event, "lead.created", body, then)
        })
        .collect();
    for chunk in stranded.chunks(1_000) {
        app.deps.store.create_deliveries(chunk).await.unwrap();
    }
    stranded.iter().map(|d| d.id).collect()
}

/// Every message on the queue, each deleted once read: how many messages name each delivery.
/// A message received twice (its visibility timeout ran out on a busy emulator before its
/// delete) counts once: it was sent once.
async fn drain(app: &TestApp) -> BTreeMap<Uuid, usize> {
    let mut seen = BTreeSet::new();
    let mut sent = BTreeMap::new();
    loop {
        let received = app
            .deps
            .queue
            .receive(10, Duration::from_secs(1))
            .await
            .unwrap();
        if received.is_empty() {
            return sent;
        }
        let deletes = futures::stream::iter(&received)
            .map(|message| app.deps.queue.delete(&message.receipt))
            .buffer_unordered(10)
            .collect::<Vec<_>>()
            .await;
        assert!(deletes.iter().all(Result::is_ok));
        for message in received {
            if !seen.insert(message.message_id) {
                continue;
            }
            match serde_json::from_str(&message.body).unwrap() {
                QueueMessage::Delivery(message) => {
                    *sent.entry(message.delivery_id).or_default() += 1;
                }
                other => panic!("not a delivery message: {other:?}"),
            }
        }
    }
}

/// The figure: a backlog of 5,000 stranded deliveries and sweeper runs, each given a
/// Lambda invocation's 60 s. A run returns before its deadline, reads no payload (what it
/// reads has none), and each delivery is enqueued once. On SQLite the first run recovers all
/// 5,000; on moto a run recovers what the emulator's pace allows before the deadline (the
/// bench's `sweep` section measures it) and the next runs go on from there.
async fn invocations_recover_five_thousand_stranded_deliveries(backend: Backend) {
    let app = app(backend).await;
    let stranded = strand(&app, 5_000).await;

    let mut runs = Vec::new();
    loop {
        let started = Instant::now();
        let deadline = started + LAMBDA_TIMEOUT;
        let report = sweep(&app.deps, Some(deadline)).await.unwrap();
        assert!(
            Instant::now() < deadline,
            "{report:?} ran past its deadline"
        );
        runs.push((report.deliveries_requeued, started.elapsed()));
        if !report.unfinished {
            break;
        }
        assert!(
            report.deliveries_requeued > 0,
            "a run makes progress: {runs:?}"
        );
    }
    eprintln!("{backend:?}: 5,000 stranded deliveries recovered by runs of {runs:?}");
    let recovered: usize = runs.iter().map(|(n, _)| n).sum();
    assert_eq!(recovered, 5_000, "{runs:?}");
    if backend == Backend::Sqlite {
        assert_eq!(runs.len(), 1, "one invocation: {runs:?}");
    }

    // What the sweeper reads is a `DueDelivery`: there is no payload in it to read.
    let later = app.deps.clock.now() + chrono::Duration::minutes(1);
    let page: DuePage = app
        .deps
        .store
        .due_deliveries(later, None, 10_000)
        .await
        .unwrap();
    let read: &[DueDelivery] = &page.deliveries;
    assert_eq!(read.len(), 5_000);
    assert!(read.iter().all(|d| d.version == 2), "each requeued once");

    let sent = drain(&app).await;
    let mut expected = stranded.clone();
    expected.sort();
    assert_eq!(sent.keys().copied().collect::<Vec<_>>(), expected);
    assert!(sent.values().all(|n| *n == 1), "each enqueued once");
}

/// Sweepers that run at once share the backlog: each delivery is claimed by one of them and
/// enqueued once.
async fn sweepers_at_once_enqueue_each_stranded_delivery_once(backend: Backend) {
    let app = app(backend).await;
    let mut stranded = strand(&app, 1_500).await;
    let (a, b, c) = tokio::join!(
        sweep(&app.deps, None),
        sweep(&app.deps, None),
        sweep(&app.deps, None)
    );
    let reports = [a.unwrap(), b.unwrap(), c.unwrap()];
    let requeued: usize = reports.iter().map(|r| r.deliveries_requeued).sum();
    assert_eq!(requeued, 1_500, "{reports:?}");
    let sent = drain(&app).await;
    stranded.sort();
    assert_eq!(sent.keys().copied().collect::<Vec<_>>(), stranded);
    assert!(sent.values().all(|n| *n == 1), "each enqueued once");
}
