//! The soak (issue 23) on both stores: clients, status changes and notifies from concurrent
//! callers while 10% of the calls through the store, queue and sender ports fail or wait, the
//! worker and sweeper crashed and restarted in the middle; then the faults stop and the sweeper
//! settles. Every accepted event arrives, every delivery ends SUCCESS, the counters equal a
//! recount (`common::faults::soak::check`). Its figures print with `--nocapture`; `crm-bench
//! soak` runs a longer, larger one.

use std::time::{Duration, Instant};

use common::faults::soak::{run, SoakPlan};

use crate::support::{fresh_store, Backend};

crate::on_both_stores!(accepted_events_all_arrive_through_injected_faults);

/// Seconds of load per store: both stores' soaks take about a minute together.
const LOAD_FOR: Duration = Duration::from_secs(15);

/// Callers at once. moto serialises its requests (scripts/moto_server.py): more callers there
/// only queue behind each other and the worker.
fn callers(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 8,
        Backend::DynamoDb => 4,
    }
}

/// Fewer than this many accepted events means the load hardly ran: moto takes about 50 store
/// calls a second, a call 5 to 20 of them.
fn enough_events(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 500,
        Backend::DynamoDb => 20,
    }
}

async fn accepted_events_all_arrive_through_injected_faults(backend: Backend) {
    let store = fresh_store(backend).await;
    let plan = SoakPlan::new(23, LOAD_FOR, callers(backend));
    let started = Instant::now();
    let report = run(
        &format!("{backend:?}"),
        store.store.clone(),
        store.queue.clone(),
        &plan,
    )
    .await
    .unwrap();
    println!(
        "\nSoak on {backend:?} ({:.1} s):\n{}",
        started.elapsed().as_secs_f64(),
        report.table()
    );
    assert!(
        report.accepted() >= enough_events(backend),
        "the load got through the faults: {}",
        report.table()
    );
    let store = report.faults.store;
    assert!(
        store.before > 0 && store.after > 0 && store.delayed > 0,
        "every kind of fault met the store: {store:?}"
    );
    assert!(report.problems.is_empty(), "{}", report.table());
}
