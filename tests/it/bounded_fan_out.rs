//! One notify of a 250 KB payload to every webhook a tenant may have, through the `crm-local`
//! binary on both stores: the process's memory does not grow with the number of webhooks, and
//! the payload is stored once, however many deliveries share it. A fan-out used to hold and write
//! a copy per webhook (1,000 webhooks: RSS from 20 MB to 535 MB, about 250 MB written).

use std::time::Duration;

use common::config::aws_clients;
use common::service::deps::TenantLimits;
use futures::StreamExt;
use serde_json::json;

use crate::crm_local::{CrmLocal, LocalStore};
use crate::receiver::{Receiver, Reply};
use crate::support::{eventually, Backend};

crate::on_both_stores!(a_large_notify_to_every_webhook_is_stored_once_in_bounded_memory);

/// The tenant's maximum number of webhooks (`CRM_MAX_WEBHOOKS_PER_TENANT`): the default on
/// SQLite; on the emulator, which takes minutes over a thousand 250 KB reads, a deployment's
/// lower one.
fn webhooks(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => TenantLimits::default().webhooks,
        Backend::DynamoDb => 100,
    }
}
/// The payload's `data`: with the envelope, just under the 256 KiB limit.
const DATA_BYTES: usize = 250_000;
/// How much crm-local's resident memory may grow over the notify and all its deliveries.
const GROWTH_LIMIT: u64 = 64 * 1024 * 1024;
/// Bounds, not expectations: on the emulator, a thousand deliveries take a while.
const WAIT: Duration = Duration::from_secs(240);

async fn a_large_notify_to_every_webhook_is_stored_once_in_bounded_memory(backend: Backend) {
    let store = LocalStore::new(backend);
    let key = format!("crm_fan_{}", uuid::Uuid::new_v4().simple());
    let webhooks = webhooks(backend);
    let limit = webhooks.to_string();
    let env = [
        ("CRM_DEV_API_KEY", key.as_str()),
        ("CRM_MAX_WEBHOOKS_PER_TENANT", limit.as_str()),
    ];
    let local = store.start(&env).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let body = json!({"url": receiver.url, "events": ["lead.*"], "timeoutMs": 5000});
    let creates = (0..webhooks).map(|_| async {
        let (status, created) = local.post("/api/webhooks", &key, &body).await;
        assert_eq!(status, 201, "{created}");
    });
    futures::stream::iter(creates)
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
    let (status, refused) = local.post("/api/webhooks", &key, &body).await;
    assert_eq!(status, 403, "the tenant is at its maximum: {refused}");

    let before = memory(&local, "VmRSS");
    reset_peak(&local);
    let data = json!({"padding": "x".repeat(DATA_BYTES)});
    let body = json!({"event": "lead.created", "data": data});
    let (status, reply) = local.post("/api/webhooks/notify", &key, &body).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["deliveryIds"].as_array().unwrap().len(), webhooks);
    eventually(WAIT, "every delivery to succeed", || async {
        let (status, stats) = local.get("/api/webhooks/stats", &key).await;
        assert_eq!(status, 200, "{stats}");
        (stats["success"] == json!(webhooks)).then_some(())
    })
    .await;
    let peak = memory(&local, "VmHWM");
    let growth = peak.saturating_sub(before);
    println!(
        "notify of {DATA_BYTES} B to {webhooks} webhooks ({backend:?}): RSS {} MB before, \
         peak {} MB, growth {} MB",
        before >> 20,
        peak >> 20,
        growth >> 20
    );
    assert!(
        growth < GROWTH_LIMIT,
        "crm-local grew by {} MB (limit {} MB)",
        growth >> 20,
        GROWTH_LIMIT >> 20
    );
    // The event as accepted (the outbox, which the sweeper fans out from) and its payload, which
    // all its deliveries share: no delivery holds a copy.
    let copies = stored_copies(&store, backend).await;
    assert_eq!(copies, ["EVENT", "PAYLOAD"], "where the 250 KB are stored");
}

/// One of `/proc/<pid>/status`'s sizes, in bytes.
fn memory(local: &CrmLocal, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", local.pid())).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {status}"));
    kib * 1024
}

/// Starts the peak resident size (`VmHWM`) over from the current one.
fn reset_peak(local: &CrmLocal) {
    std::fs::write(format!("/proc/{}/clear_refs", local.pid()), "5").unwrap();
}

/// What holds a text as long as the payload's data, one entry per copy, sorted: a SQLite table
/// (`outbox` as `EVENT`, `payloads` as `PAYLOAD`, any other by its name), or a DynamoDB item's
/// kind (its sort key up to the first `#`).
async fn stored_copies(store: &LocalStore, backend: Backend) -> Vec<String> {
    let mut copies = match backend {
        Backend::Sqlite => sqlite_copies(store),
        Backend::DynamoDb => dynamodb_copies(store.setting("CRM_TABLE").unwrap()).await,
    };
    copies.sort();
    copies
}

fn sqlite_copies(store: &LocalStore) -> Vec<String> {
    let path = store.data_dir().unwrap().join("crm.sqlite3");
    let db =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let names = |sql: &str| -> Vec<String> {
        db.prepare(sql)
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let mut copies = Vec::new();
    for table in names("SELECT name FROM sqlite_master WHERE type = 'table'") {
        let kind = match table.as_str() {
            "outbox" => "EVENT",
            "payloads" => "PAYLOAD",
            other => other,
        };
        for column in names(&format!("SELECT name FROM pragma_table_info('{table}')")) {
            let sql =
                format!("SELECT count(*) FROM {table} WHERE length({column}) >= {DATA_BYTES}");
            let long: usize = db.query_row(&sql, [], |row| row.get(0)).unwrap();
            copies.extend(std::iter::repeat_n(kind.to_owned(), long));
        }
    }
    copies
}

async fn dynamodb_copies(table: &str) -> Vec<String> {
    let client = aws_clients().await.0;
    let mut copies = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        for item in page.items() {
            let long = item
                .values()
                .any(|value| value.as_s().is_ok_and(|text| text.len() >= DATA_BYTES));
            if long {
                let sk = item["sk"].as_s().unwrap();
                copies.push(sk.split('#').next().unwrap().to_owned());
            }
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return copies;
        }
    }
}
