//! The counters equal a full recount under any concurrency, and no transition is lost.

use std::collections::HashMap;
use std::sync::Arc;

use common::domain::auth::Role;
use common::domain::page::{decode_cursor, PageRequest};
use common::domain::sync_status::{SyncCounts, SyncStatus};
use common::ports::ClientQuery;
use lambda_http::http::StatusCode;
use rand::seq::IndexedRandom;
use serde_json::json;
use uuid::Uuid;

use crate::support::{Backend, TestApp};

crate::on_both_stores!(
    concurrent_transitions_keep_counters_equal_to_a_recount,
    concurrent_batches_keep_counters_equal_to_a_recount,
);

const CLIENTS: usize = 50;
const TRANSITIONS: usize = 1_000;

/// How many calls are in flight at once. SQLite takes all 1,000 together. moto serialises
/// requests (scripts/moto_server.py) behind a 128-connection backlog, so more than a few dozen
/// at once only turns into connect time-outs there; the read-modify-write cycles still interleave.
fn in_flight(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => TRANSITIONS,
        Backend::DynamoDb => 48,
    }
}

async fn concurrent_transitions_keep_counters_equal_to_a_recount(backend: Backend) {
    let app = Arc::new(TestApp::new(backend).await);
    let (tenant, key) = app.tenant_with(Role::Admin).await;
    let mut ids = Vec::new();
    for i in 0..CLIENTS {
        ids.push(app.create_client(&key, &format!("client {i}")).await);
    }
    let ids = Arc::new(ids);
    let gate = Arc::new(tokio::sync::Semaphore::new(in_flight(backend)));

    let tasks: Vec<_> = (0..TRANSITIONS)
        .map(|_| {
            let (app, key, ids) = (Arc::clone(&app), key.clone(), Arc::clone(&ids));
            let gate = Arc::clone(&gate);
            let (client, status) = {
                let mut rng = rand::rng();
                (
                    *ids.choose(&mut rng).unwrap(),
                    *SyncStatus::ALL.choose(&mut rng).unwrap(),
                )
            };
            tokio::spawn(async move {
                let _permit = gate.acquire().await.unwrap();
                let body = json!({"clientId": client, "status": status});
                app.post("/api/crm/update-sync-status", &key, &body).await.0
            })
        })
        .collect();
    let mut outcomes: HashMap<StatusCode, usize> = HashMap::new();
    for task in tasks {
        *outcomes.entry(task.await.unwrap()).or_default() += 1;
    }
    let ok = outcomes.get(&StatusCode::OK).copied().unwrap_or(0);
    let conflicts = outcomes.get(&StatusCode::CONFLICT).copied().unwrap_or(0);
    assert_eq!(ok + conflicts, TRANSITIONS, "only 200 or 409: {outcomes:?}");
    assert!(
        ok >= TRANSITIONS * 9 / 10,
        "most calls win their retries: {outcomes:?}"
    );

    assert_counters_and_event_chains(&app, tenant, &ids).await;
}

const BATCHES: usize = 24;
const BATCH_SIZE: usize = 50;

/// Batches at once: each applies 8 of its updates at a time, so moto sees 4 × 8 calls.
fn batches_in_flight(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => BATCHES,
        Backend::DynamoDb => 4,
    }
}

/// Batches of the same clients in random statuses (failures with reasons among them), sent
/// at once: every update is answered applied or, after its retries, 409, and the counters
/// still equal a recount.
async fn concurrent_batches_keep_counters_equal_to_a_recount(backend: Backend) {
    let app = Arc::new(TestApp::new(backend).await);
    let (tenant, key) = app.tenant_with(Role::Admin).await;
    let mut ids = Vec::new();
    for i in 0..CLIENTS {
        ids.push(app.create_client(&key, &format!("client {i}")).await);
    }
    let gate = Arc::new(tokio::sync::Semaphore::new(batches_in_flight(backend)));
    let tasks: Vec<_> = (0..BATCHES)
        .map(|_| {
            let updates: Vec<serde_json::Value> = {
                let mut rng = rand::rng();
                (0..BATCH_SIZE)
                    .map(|n| {
                        let client = *ids.choose(&mut rng).unwrap();
                        match *SyncStatus::ALL.choose(&mut rng).unwrap() {
                            SyncStatus::Failed => json!({"clientId": client, "status": "FAILED",
                                "error": format!("failure {n}"), "errorCode": "E"}),
                            status => json!({"clientId": client, "status": status}),
                        }
                    })
                    .collect()
            };
            let (app, key, gate) = (Arc::clone(&app), key.clone(), Arc::clone(&gate));
            tokio::spawn(async move {
                let _permit = gate.acquire().await.unwrap();
                let body = json!({"updates": updates});
                app.post("/api/crm/update-sync-status", &key, &body).await
            })
        })
        .collect();
    let (mut ok, mut conflicts) = (0, 0);
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        for result in body["results"].as_array().unwrap() {
            match (&result["ok"], &result["statusCode"]) {
                (serde_json::Value::Bool(true), _) => ok += 1,
                (_, code) if code == 409 => conflicts += 1,
                _ => panic!("only applied or 409: {result}"),
            }
        }
    }
    assert_eq!(ok + conflicts, BATCHES * BATCH_SIZE);
    assert!(
        ok >= BATCHES * BATCH_SIZE * 9 / 10,
        "most updates win their retries: {ok} applied, {conflicts} conflicts"
    );
    assert_counters_and_event_chains(&app, tenant, &ids).await;
}

/// The counters equal a full recount, and each client's `sync.status.changed` events form one
/// unbroken chain ending in its status: no update was lost or applied twice.
async fn assert_counters_and_event_chains(app: &TestApp, tenant: Uuid, ids: &[Uuid]) {
    // The full recount, by walking every client.
    let mut statuses = HashMap::new();
    let mut after = None;
    loop {
        let query = ClientQuery {
            status: None,
            synced_before: None,
            page: PageRequest { limit: 100, after },
        };
        let page = app.deps.store.list_clients(tenant, &query).await.unwrap();
        statuses.extend(page.items.iter().map(|c| (c.id, c.sync_status)));
        match page.next_cursor {
            Some(cursor) => after = Some(decode_cursor(&cursor).unwrap()),
            None => break,
        }
    }
    assert_eq!(statuses.len(), CLIENTS);
    let counts = app.deps.store.sync_counts(tenant).await.unwrap();
    assert_eq!(
        counts.counts_only(),
        SyncCounts::recount(statuses.values().copied())
    );

    let events = app
        .deps
        .store
        .list_outbox_events(tenant, 10_000)
        .await
        .unwrap();
    let mut current: HashMap<Uuid, String> = ids
        .iter()
        .map(|id| (*id, "NEEDS_UPDATE".to_owned()))
        .collect();
    for event in events.iter().filter(|e| e.event == "sync.status.changed") {
        let client: Uuid = event.data["clientId"].as_str().unwrap().parse().unwrap();
        let state = current.get_mut(&client).unwrap();
        assert_eq!(
            event.data["oldStatus"],
            state.as_str(),
            "chain broken for {client}"
        );
        assert_ne!(event.data["oldStatus"], event.data["newStatus"]);
        *state = event.data["newStatus"].as_str().unwrap().to_owned();
    }
    for (id, status) in &statuses {
        assert_eq!(
            current[id],
            status.as_str(),
            "events end in the stored status"
        );
    }
}
