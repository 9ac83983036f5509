//! Retention (`CRM_RETENTION_DAYS`): finished deliveries, their attempts and the accepted events
//! are kept that long. On SQLite the sweep removes them, in bounded batches; on DynamoDB each
//! item carries its expiry for the TTL (which moto does not run), so those tests read the items.

use common::domain::audit::{Actor, AuditAction, AuditEntry, AuditQuery};
use common::domain::page::PageRequest;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, TimeDelta, Utc};
use common::adapters::dynamodb::DynamoStore;
use common::domain::auth::Role;
use common::domain::delivery::{Delivery, DeliveryStatus, EventPayload};
use common::domain::event::OutboxEvent;
use common::domain::retention::Retention;
use common::ports::{
    AuditStore, Clock, DeliveryChange, OutboxStore, RetentionStore, SendOutcome, Store,
};
use common::service::sweeper::sweep;
use serde_json::json;
use uuid::Uuid;

use crate::limits::SteppedClock;
use crate::support::{fresh_store, stored_webhook, test_settings, Backend, TestApp};

/// An event of `tenant` accepted at `at`: its id (UUIDv7) says so too.
fn event_at(tenant: Uuid, name: &str, at: DateTime<Utc>) -> OutboxEvent {
    let millis = u64::try_from(at.timestamp_millis()).unwrap();
    OutboxEvent {
        id: uuid::Builder::from_unix_timestamp_millis(millis, &rand::random()).into_uuid(),
        ..OutboxEvent::new(tenant, name, json!({"n": 1}), at)
    }
}

/// An event of `tenant` accepted at `now`, dispatched, with a PENDING delivery to each of
/// `webhooks`.
async fn dispatched_event(
    store: &dyn Store,
    tenant: Uuid,
    webhooks: &[Uuid],
    now: DateTime<Utc>,
) -> Vec<Delivery> {
    let event = event_at(tenant, "client.created", now);
    store.append_event(&event).await.unwrap();
    let payload = EventPayload::of(&event, now).unwrap();
    let deliveries: Vec<Delivery> = webhooks
        .iter()
        .map(|webhook| payload.delivery_to(*webhook, now))
        .collect();
    store
        .create_deliveries_with_payload(&payload, &deliveries)
        .await
        .unwrap();
    store.mark_event_dispatched(tenant, event.id).await.unwrap();
    deliveries
}

/// Claims `delivery` and records one attempt answered `status` (a finished delivery for 2xx).
async fn attempted(store: &dyn Store, delivery: &Delivery, status: u16, now: DateTime<Utc>) {
    let claimed = delivery.claimed(now, Duration::from_secs(30)).unwrap();
    store
        .write_delivery(&DeliveryChange {
            before: delivery.clone(),
            after: claimed.clone(),
            attempt: None,
        })
        .await
        .unwrap();
    let outcome = SendOutcome {
        status: Some(status),
        body: "ok".into(),
        error: None,
        latency: Duration::from_millis(3),
    };
    let (after, attempt, _) = claimed.after_attempt(&outcome, 0, &Default::default(), now);
    store
        .write_delivery(&DeliveryChange {
            before: claimed,
            after,
            attempt: Some(attempt),
        })
        .await
        .unwrap();
}

/// Whether the SQLite file holds the payload of `event_id`.
fn has_payload(file: &std::path::Path, event_id: Uuid) -> bool {
    let conn =
        rusqlite::Connection::open_with_flags(file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let rows: i64 = conn
        .query_row(
            "SELECT count(*) FROM payloads WHERE event_id = ?1",
            [event_id.to_string()],
            |row| row.get(0),
        )
        .unwrap();
    rows == 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_the_sweep_removes_finished_work_once_past_its_retention() {
    let store = fresh_store(Backend::Sqlite).await;
    let file = store.sqlite_file().unwrap();
    let mut app = TestApp::over(store, test_settings());
    let clock = SteppedClock::new();
    app.deps.clock = Arc::<SteppedClock>::clone(&clock) as _;
    let store = Arc::clone(&app.deps.store);
    let (tenant, _) = app.tenant_with(Role::Admin).await;
    let (a, b) = (stored_webhook(tenant), stored_webhook(tenant));
    for webhook in [&a, &b] {
        store.create_webhook(webhook, 10, None).await.unwrap();
    }
    let start = clock.now();
    let deliveries = dispatched_event(&*store, tenant, &[a.id, b.id], start).await;
    let (done, open) = (&deliveries[0], &deliveries[1]);
    attempted(&*store, done, 200, start).await;

    clock.advance(TimeDelta::days(30) - TimeDelta::minutes(1));
    let report = sweep(&app.deps, None).await.unwrap();
    assert_eq!((report.deliveries_expired, report.events_expired), (0, 0));
    assert!(store.get_delivery(tenant, done.id).await.unwrap().is_some());

    clock.advance(TimeDelta::minutes(2));
    let report = sweep(&app.deps, None).await.unwrap();
    assert_eq!((report.deliveries_expired, report.events_expired), (1, 1));
    assert_eq!(store.get_delivery(tenant, done.id).await.unwrap(), None);
    assert!(store
        .list_attempts(tenant, done.id)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .list_outbox_events(tenant, 10)
        .await
        .unwrap()
        .is_empty());
    let kept = store.get_delivery(tenant, open.id).await.unwrap().unwrap();
    assert_eq!(
        kept.status,
        DeliveryStatus::Pending,
        "an open delivery stays"
    );
    assert_eq!(
        kept.payload, open.payload,
        "and so does the payload it needs"
    );
    assert!(has_payload(&file, open.event_id));
    // An event waiting for its fan-out stays, however old (the sweep fans it out first).
    let waiting = event_at(tenant, "client.updated", start);
    store.append_event(&waiting).await.unwrap();
    clock.advance(TimeDelta::days(31));
    store.remove_expired(clock.now(), 100).await.unwrap();
    let left = store.list_outbox_events(tenant, 10).await.unwrap();
    assert_eq!(left.iter().map(|e| e.id).collect::<Vec<_>>(), [waiting.id]);

    // Its last delivery finished and past its retention, the payload goes with it.
    let stored = store.get_delivery(tenant, open.id).await.unwrap().unwrap();
    attempted(&*store, &stored, 410, clock.now()).await;
    clock.advance(TimeDelta::days(31));
    let report = sweep(&app.deps, None).await.unwrap();
    assert_eq!(report.deliveries_expired, 1);
    assert_eq!(store.get_delivery(tenant, open.id).await.unwrap(), None);
    assert!(!has_payload(&file, open.event_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_audit_entries_go_once_past_the_retention() {
    let mut app = TestApp::new(Backend::Sqlite).await;
    let clock = SteppedClock::new();
    app.deps.clock = Arc::<SteppedClock>::clone(&clock) as _;
    let store = Arc::clone(&app.deps.store);
    let (tenant, _) = app.tenant_with(Role::Admin).await;
    let entry = |n: usize| {
        let changes = serde_json::Map::from_iter([("n".to_owned(), n.into())]);
        AuditEntry::new(
            tenant,
            Actor::tool("test"),
            AuditAction::WebhookTest,
            tenant,
            changes,
            clock.now(),
        )
    };
    let old = entry(1);
    store.append_audit(&old).await.unwrap();
    clock.advance(TimeDelta::days(2));
    let recent = entry(2);
    store.append_audit(&recent).await.unwrap();
    let everything = AuditQuery {
        since: None,
        until: None,
        action: None,
    };
    let page = PageRequest {
        limit: 10,
        after: None,
    };

    clock.advance(TimeDelta::days(29));
    let removed = store.remove_expired(clock.now(), 100).await.unwrap();
    assert_eq!(removed.audit_entries, 1);
    let left = store.list_audit(tenant, &everything, page).await.unwrap();
    assert_eq!(
        left.items.iter().map(|e| e.id).collect::<Vec<_>>(),
        [recent.id]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_the_sweep_removes_a_backlog_in_batches_and_keeps_what_is_recent() {
    let store = fresh_store(Backend::Sqlite).await;
    let mut app = TestApp::over(store, test_settings());
    let clock = SteppedClock::new();
    app.deps.clock = Arc::<SteppedClock>::clone(&clock) as _;
    let store = Arc::clone(&app.deps.store);
    let (tenant, _) = app.tenant_with(Role::Admin).await;
    let webhook = stored_webhook(tenant);
    store.create_webhook(&webhook, 10, None).await.unwrap();
    // More than two batches of old finished deliveries and their events, and a recent one.
    let old = clock.now() - TimeDelta::days(40);
    for _ in 0..1_203 {
        let delivery = &dispatched_event(&*store, tenant, &[webhook.id], old).await[0];
        attempted(&*store, delivery, 200, old).await;
    }
    let recent = &dispatched_event(&*store, tenant, &[webhook.id], clock.now()).await[0];
    attempted(&*store, recent, 200, clock.now()).await;

    let report = sweep(&app.deps, None).await.unwrap();
    assert_eq!(report.deliveries_expired, 1_203);
    assert_eq!(report.events_expired, 1_203);
    assert!(!report.unfinished);
    let left: Vec<Uuid> = store
        .list_outbox_events(tenant, 10)
        .await
        .unwrap()
        .iter()
        .map(|event| event.id)
        .collect();
    assert_eq!(left, [recent.event_id]);
    assert!(store
        .get_delivery(tenant, recent.id)
        .await
        .unwrap()
        .is_some());
}

fn expiry_of(item: &std::collections::HashMap<String, AttributeValue>) -> i64 {
    match item.get("expires_at") {
        Some(AttributeValue::N(n)) => n.parse().unwrap(),
        other => panic!("no expiry: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_items_expire_after_the_configured_retention() {
    let fixture = fresh_store(Backend::DynamoDb).await;
    let (client, table) = fixture.dynamodb.clone().unwrap();
    let week = Retention::days(7).unwrap();
    let store = DynamoStore::new(client.clone(), table.clone()).retaining(week);
    let tenant = Uuid::now_v7();
    let webhook = stored_webhook(tenant);
    let now = Utc::now();
    let delivery = &dispatched_event(&store, tenant, &[webhook.id], now).await[0];
    attempted(&store, delivery, 200, now).await;
    let waiting = event_at(tenant, "client.updated", now);
    store.append_event(&waiting).await.unwrap();
    let audited = AuditEntry::new(
        tenant,
        Actor::tool("test"),
        AuditAction::WebhookTest,
        webhook.id,
        Default::default(),
        now,
    );
    store.append_audit(&audited).await.unwrap();

    let items = client
        .query()
        .table_name(&table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("TENANT#{tenant}")))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .items
        .unwrap();
    let item = |prefix: &str| {
        items
            .iter()
            .find(|item| matches!(item.get("sk"), Some(AttributeValue::S(sk)) if sk.starts_with(prefix)))
            .unwrap_or_else(|| panic!("no {prefix} item in {items:?}"))
    };
    let day = 86_400;
    let at = now.timestamp();
    let close = |expiry: i64, expected: i64| (expiry - expected).abs() <= 2;
    let dispatched = item(&format!("EVENT#{}", delivery.event_id));
    assert!(
        close(expiry_of(dispatched), at + 7 * day),
        "dispatched event"
    );
    assert!(
        !dispatched.contains_key("gsi1pk"),
        "out of the sweeper's index"
    );
    let waiting = item(&format!("EVENT#{}", waiting.id));
    assert!(!waiting.contains_key("expires_at"), "kept until fanned out");
    assert!(close(expiry_of(item("PAYLOAD#")), at + 37 * day), "payload");
    let delivery_item = items
        .iter()
        .find(|item| matches!(item.get("sk"), Some(AttributeValue::S(sk)) if sk == &format!("DELIVERY#{}", delivery.id)))
        .unwrap();
    assert!(
        close(expiry_of(delivery_item), at + 7 * day),
        "finished delivery"
    );
    assert!(
        close(
            expiry_of(item(&format!("DELIVERY#{}#ATTEMPT#", delivery.id))),
            at + 7 * day
        ),
        "attempt"
    );
    assert!(
        close(
            expiry_of(item(&format!("AUDIT#{}", audited.id))),
            at + 7 * day
        ),
        "audit entry"
    );
    // The sweep has nothing to remove: the TTL does it.
    let removed = store.remove_expired(now + TimeDelta::days(90), 100).await;
    assert_eq!(removed.unwrap(), Default::default());
}
