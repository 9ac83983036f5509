//! The store conformance suite: the same tests on SQLite and on DynamoDB (moto).

use chrono::{DateTime, Utc};
use common::domain::auth::{generate_key, hash_key, ApiKey, Role};
use common::domain::client::{Client, ClientFields};
use common::domain::event::OutboxEvent;
use common::domain::page::PageRequest;
use common::domain::stale_clients::{StaleKey, StaleQuery};
use common::domain::sync_status::{SyncCounts, SyncStatus};
use common::domain::tenant::Tenant;
use common::error::Error;
use common::ports::{ClientChange, ClientQuery, Clock, SystemClock};
use serde_json::json;
use uuid::Uuid;

use crate::support::{fresh_store, Backend};

crate::on_both_stores!(
    tenant_and_first_key_are_written_together,
    api_keys_are_found_by_hash_and_scoped_to_their_tenant,
    a_duplicate_key_hash_is_a_conflict,
    clients_are_scoped_to_their_tenant,
    creating_an_existing_client_is_a_conflict_and_writes_nothing,
    a_stale_update_is_a_conflict_and_writes_nothing,
    a_stale_delete_is_a_conflict,
    counters_and_last_sync_time_follow_client_writes,
    events_are_written_with_their_change_in_order,
    clients_page_in_creation_order_and_filter_by_status,
    a_page_of_clients_larger_than_a_query_response_is_full,
    an_unknown_tenant_has_zero_counts,
    stale_clients_list_never_synced_first_then_the_oldest_sync,
);

/// Store precision: the service's clock (milliseconds).
fn now() -> DateTime<Utc> {
    SystemClock.now()
}

fn tenant_and_key(role: Role) -> (Tenant, ApiKey, String) {
    let now = now();
    let tenant = Tenant::new("acme".into(), now);
    let key = generate_key();
    let stored = ApiKey::new(tenant.id, "first".into(), role, &key, now);
    (tenant, stored, key)
}

fn new_client(tenant_id: Uuid, name: &str) -> Client {
    let fields = ClientFields {
        name: name.into(),
        ..ClientFields::default()
    };
    Client::new(tenant_id, fields, now())
}

fn creation(client: &Client) -> ClientChange {
    ClientChange {
        tenant_id: client.tenant_id,
        before: None,
        after: Some(client.clone()),
        events: vec![OutboxEvent::client("client.created", client, now())],
        now: now(),
    }
}

fn transition(before: &Client, status: SyncStatus) -> ClientChange {
    let now = now();
    let after = before.with_status(status, now).expect("a real change");
    ClientChange {
        tenant_id: before.tenant_id,
        before: Some(before.clone()),
        after: Some(after.clone()),
        events: vec![OutboxEvent::sync_status_changed(
            &after,
            before.sync_status,
            status,
            now,
        )],
        now,
    }
}

async fn tenant_and_first_key_are_written_together(backend: Backend) {
    let fixture = fresh_store(backend).await;
    let store = std::sync::Arc::clone(&fixture.store);
    let (tenant, stored, key) = tenant_and_key(Role::Admin);
    store.create_tenant(&tenant, &stored, None).await.unwrap();
    assert_eq!(
        store.get_tenant(tenant.id).await.unwrap(),
        Some(tenant.clone())
    );
    assert_eq!(
        store.find_api_key(&hash_key(&key)).await.unwrap(),
        Some(stored)
    );

    // The same tenant again, with another key: refused, and the other key is not written.
    let now = now();
    let other_key = generate_key();
    let other = ApiKey::new(tenant.id, "second".into(), Role::Admin, &other_key, now);
    let error = store
        .create_tenant(&tenant, &other, None)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Conflict(_)), "{error:?}");
    assert_eq!(
        store.find_api_key(&hash_key(&other_key)).await.unwrap(),
        None
    );
    assert_eq!(store.list_api_keys(tenant.id).await.unwrap().len(), 1);
}

async fn api_keys_are_found_by_hash_and_scoped_to_their_tenant(backend: Backend) {
    let fixture = fresh_store(backend).await;
    let store = std::sync::Arc::clone(&fixture.store);
    let (tenant, first, _) = tenant_and_key(Role::Admin);
    let (other_tenant, other_first, _) = tenant_and_key(Role::Admin);
    store.create_tenant(&tenant, &first, None).await.unwrap();
    store
        .create_tenant(&other_tenant, &other_first, None)
        .await
        .unwrap();

    let key = generate_key();
    let reader = ApiKey::new(tenant.id, "reader".into(), Role::ReadOnly, &key, now());
    store.put_api_key(&reader, None).await.unwrap();
    let found = store.find_api_key(&hash_key(&key)).await.unwrap().unwrap();
    assert_eq!(found, reader);
    assert_eq!(
        store.find_api_key(&hash_key("crm_unknown")).await.unwrap(),
        None
    );

    let listed: Vec<Uuid> = store
        .list_api_keys(tenant.id)
        .await
        .unwrap()
        .iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(listed, vec![first.id, reader.id]);

    // Another tenant cannot delete it; its owner can, and then it no longer authenticates.
    assert!(!store
        .delete_api_key(other_tenant.id, reader.id, None)
        .await
        .unwrap());
    assert!(store.find_api_key(&hash_key(&key)).await.unwrap().is_some());
    assert!(store
        .delete_api_key(tenant.id, reader.id, None)
        .await
        .unwrap());
    assert_eq!(store.find_api_key(&hash_key(&key)).await.unwrap(), None);
    assert!(!store
        .delete_api_key(tenant.id, reader.id, None)
        .await
        .unwrap());
    assert_eq!(store.list_api_keys(tenant.id).await.unwrap(), vec![first]);
}

async fn a_duplicate_key_hash_is_a_conflict(backend: Backend) {
    let fixture = fresh_store(backend).await;
    let store = std::sync::Arc::clone(&fixture.store);
    let (tenant, first, key) = tenant_and_key(Role::Admin);
    store.create_tenant(&tenant, &first, None).await.unwrap();
    let copy = ApiKey::new(tenant.id, "copy".into(), Role::ReadOnly, &key, now());
    let error = store.put_api_key(&copy, None).await.unwrap_err();
    assert!(matches!(error, Error::Conflict(_)), "{error:?}");
    let found = store.find_api_key(&hash_key(&key)).await.unwrap().unwrap();
    assert_eq!(found.role, Role::Admin, "the original key is untouched");
}

async fn clients_are_scoped_to_their_tenant(backend: Backend) {
    let fixture = fresh_store(backend).await;
    let store = std::sync::Arc::clone(&fixture.store);
    let tenant = Uuid::now_v7();
    let other = Uuid::now_v7();
    let mut client = new_client(tenant, "Ada");
    client.email = Some("ada@example.com".into());
    client.external_id = Some("crm-42".into());
    store.write_client(&creation(&client)).await.unwrap();

    assert_eq!(
        store.get_client(tenant, client.id).await.unwrap(),
        Some(client.clone())
    );
    assert_eq!(store.get_client(other, client.id).await.unwrap(), None);
    let query = ClientQuery {
        status: None,
        synced_before: None,
        page: PageRequest {
            limit: 10,
            after: None,
        },
    };
    assert!(store
        .list_clients(other, &query)
        .await
        .unwrap()
        .items
        .is_empty());
    assert_eq!(
        store.sync_counts(other).await.unwrap(),
        SyncCounts::default()
    );
    assert!(store
        .list_outbox_events(other, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn creating_an_existing_client_is_a_conflict_and_writes_nothing(backend: Backend) {
    let fixture = fresh_store(backend).await;
    let store = std::sync::Arc::clone(&fixture.store);
    let tenant = Uuid::now_v7();
    let client = new_client(tenant, "Ada");
    store.write_client(&creation(&client)).await.unwrap();
    let error = store.write_client(&creation(&client)).await.unwrap_err();
    assert!(matches!(error, Error::Conflict(_)), "{error:?}");
    assert_eq!(store.sync_counts(tenant).await.unwrap().total_clients, 1);
    assert_eq!(store.list_outbox_events(tenant, 10).await.unwrap().len(), 1);
}

async fn a_stale_update_is_a_conflict_and_writes_nothing(backend: Backend) {
    let fixture = fresh_store(backend).await;
    let store = std::sync::Arc::clone(&fixture.store);
    let tenant = Uuid::now_v7();
    let client = new_client(tenant, "Ada");
    store.write_client(&creation(&client)).await.unwrap();
    store
        .write_client(&transition(&client, SyncStatus::Pending))
        .await
        .unwrap();

    // A writer that read the first version loses, whatever it wanted to write.
    let error = store
        .write_client(&transition(&client, SyncStatus::Failed))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Conflict(_)), "{error:?}");
    let stored = store.get_client(tenant, client.id).await.unwrap().unwrap();
    assert_eq!(stored.sync_status, SyncStatus::Pending);
    assert_eq!(stored.version, client.version + 1);
    let counts = store.sync_counts(tenant).await.unwrap();
    assert_eq!(
        counts.counts_only(),
        SyncCounts::recount([SyncStatus::Pending])
    );
    assert_eq!(store.list_outbox_events(tenant, 10).await.unwrap().len(), 2);
}

async fn a_stale_delete_is_a_conflict(backend: Backend) {
    let fixture = fresh_store(backend).await;
    let store = std::sync::Arc::clone(&fixture.store);
    let tenant = Uuid::now_v7();
    let client = new_client(tenant, "Ada");
    store.write_client(&creation(&client)).await.unwrap();
    let moved = transition(&client, SyncStatus::Synced);
    store.write_client(&moved).await.unwrap();

    let stale_delete = ClientChange {
        tenant_id: tenant,
        before: Some(client.clone()),
        after: None,
        events: vec![],
        now: now(),
    };
    let error = store.write_client(&stale_delete).await.unwrap_err();
    assert!(matches!(error, Error::Conflict(_)), "{error:?}");
    assert!(store.get_client(tenant, client.id).await.unwrap().is_some());

    let current = moved.after.unwrap();
    let delete = ClientChange {
        before: Some(current.clone()),
        ..stale_delete
    };
    store.write_client(&delete).await.unwrap();
    assert_eq!(store.get_client(tenant, client.id).await.unwrap(), None);
    let counts = store.sync_counts(tenant).await.unwrap();
    assert_eq!(counts.counts_only(), SyncCounts::default());
}

async fn counters_and_last_sync_time_follow_client_writes(backend: Backend) {
    let fixture = fresh_store(backend).await;
    let store = std::sync::Arc::clone(&fixture.store);
    let tenant = Uuid::now_v7();
    let a = new_client(tenant, "A");
    let b = new_client(tenant, "B");
    store.write_client(&creation(&a)).await.unwrap();
    store.write_client(&creation(&b)).await.unwrap();
    assert_eq!(
        store.sync_counts(tenant).await.unwrap().last_sync_time,
        None
    );

    let synced = transition(&a, SyncStatus::Synced);
    store.write_client(&synced).await.unwrap();
    store
        .write_client(&transition(&b, SyncStatus::Failed))
        .await
        .unwrap();
    let counts = store.sync_counts(tenant).await.unwrap();
    assert_eq!(
        counts.counts_only(),
        SyncCounts::recount([SyncStatus::Synced, SyncStatus::Failed])
    );
    assert_eq!(counts.total_clients, 2);
    let synced_at = synced.now.timestamp_millis();
    assert_eq!(
        counts.last_sync_time.map(|t| t.timestamp_millis()),
        Some(synced_at)
    );

    // Leaving SYNCED keeps the last sync time.
    let a1 = synced.after.unwrap();
    store
        .write_client(&transition(&a1, SyncStatus::Pending))
        .await
        .unwrap();
    let counts = store.sync_counts(tenant).await.unwrap();
    assert_eq!(counts.synced_clients, 0);
    assert_eq!(counts.pending_clients, 1);
    assert_eq!(
        counts.last_sync_time.map(|t| t.timestamp_millis()),
        Some(synced_at)
    );
}

async fn events_are_written_with_their_change_in_order(backend: Backend) {
    let fixture = fresh_store(backend).await;
    let store = std::sync::Arc::clone(&fixture.store);
    let tenant = Uuid::now_v7();
    let client = new_client(tenant, "Ada");
    store.write_client(&creation(&client)).await.unwrap();
    let moved = transition(&client, SyncStatus::Synced);
    store.write_client(&moved).await.unwrap();

    let events = store.list_outbox_events(tenant, 10).await.unwrap();
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names, ["client.created", "sync.status.changed"]);
    assert_eq!(events[1], moved.events[0]);
    assert_eq!(events[1].data["oldStatus"], json!("NEEDS_UPDATE"));
    assert_eq!(events[1].data["newStatus"], json!("SYNCED"));
    assert_eq!(events[1].data["clientId"], json!(client.id));
    assert_eq!(store.list_outbox_events(tenant, 1).await.unwrap().len(), 1);
}

async fn clients_page_in_creation_order_and_filter_by_status(backend: Backend) {
    let fixture = fresh_store(backend).await;
    let store = std::sync::Arc::clone(&fixture.store);
    let tenant = Uuid::now_v7();
    let mut created = Vec::new();
    for i in 0..25 {
        let client = new_client(tenant, &format!("client {i}"));
        store.write_client(&creation(&client)).await.unwrap();
        if i % 3 == 0 {
            store
                .write_client(&transition(&client, SyncStatus::Synced))
                .await
                .unwrap();
        }
        created.push(client.id);
    }

    let walk = |status: Option<SyncStatus>| {
        let store = std::sync::Arc::clone(&store);
        async move {
            let mut seen = Vec::new();
            let mut after = None;
            let mut pages = 0;
            loop {
                let query = ClientQuery {
                    status,
                    synced_before: None,
                    page: PageRequest { limit: 10, after },
                };
                let page = store.list_clients(tenant, &query).await.unwrap();
                pages += 1;
                assert!(page.items.len() <= 10);
                seen.extend(page.items.iter().map(|c| c.id));
                if let Some(status) = status {
                    assert!(page.items.iter().all(|c| c.sync_status == status));
                }
                match page.next_cursor {
                    Some(cursor) => {
                        after = Some(common::domain::page::decode_cursor(&cursor).unwrap())
                    }
                    None => break,
                }
            }
            (seen, pages)
        }
    };

    let (all, pages) = walk(None).await;
    assert_eq!(all, created, "every client once, in creation order");
    assert_eq!(pages, 3);
    let (synced, _) = walk(Some(SyncStatus::Synced)).await;
    let expected: Vec<Uuid> = created.iter().copied().step_by(3).collect();
    assert_eq!(synced, expected);
    let (failed, pages) = walk(Some(SyncStatus::Failed)).await;
    assert!(failed.is_empty());
    assert_eq!(pages, 1);
}

/// Every page of a list, by the cursor each page gives, until one has none: each page's ids.
/// Checks that no page is longer than `limit`.
pub(crate) async fn pages_of<F, Fut>(limit: usize, mut page_of: F) -> Vec<Vec<Uuid>>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = (Vec<Uuid>, Option<String>)>,
{
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let (ids, next) = page_of(PageRequest { limit, after }).await;
        assert!(ids.len() <= limit, "a page of {} for {limit}", ids.len());
        pages.push(ids);
        match next {
            Some(cursor) => after = Some(common::domain::page::decode_cursor(&cursor).unwrap()),
            None => return pages,
        }
    }
}

/// The ids of every page of a list, in order.
pub(crate) async fn walk_pages<F, Fut>(limit: usize, page_of: F) -> Vec<Uuid>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = (Vec<Uuid>, Option<String>)>,
{
    pages_of(limit, page_of).await.concat()
}

/// DynamoDB ends a Query response after 1 MB read: a page of clients bigger than that is still
/// full, with or without a status filter, and paging returns every client once.
async fn a_page_of_clients_larger_than_a_query_response_is_full(backend: Backend) {
    let fixture = fresh_store(backend).await;
    let store = std::sync::Arc::clone(&fixture.store);
    let tenant = Uuid::now_v7();
    // 40 clients of 60 KB: 2.4 MB, and 1.2 MB for each status.
    let filler = "x".repeat(60_000);
    let mut created = Vec::new();
    for i in 0..40 {
        let mut client = new_client(tenant, &format!("client {i} {filler}"));
        client.sync_status = if i % 2 == 0 {
            SyncStatus::Synced
        } else {
            SyncStatus::Pending
        };
        store.write_client(&creation(&client)).await.unwrap();
        created.push(client.id);
    }
    let list = |status: Option<SyncStatus>, page: PageRequest| {
        let store = std::sync::Arc::clone(&store);
        async move {
            let page = store
                .list_clients(
                    tenant,
                    &ClientQuery {
                        status,
                        synced_before: None,
                        page,
                    },
                )
                .await
                .unwrap();
            (
                page.items.iter().map(|c| c.id).collect::<Vec<_>>(),
                page.next_cursor,
            )
        }
    };
    let (whole, next) = list(
        None,
        PageRequest {
            limit: 50,
            after: None,
        },
    )
    .await;
    assert_eq!((whole, next), (created.clone(), None), "one full page");
    let synced: Vec<Uuid> = created.iter().copied().step_by(2).collect();
    let (first, next) = list(
        Some(SyncStatus::Synced),
        PageRequest {
            limit: 15,
            after: None,
        },
    )
    .await;
    assert_eq!(first, synced[..15], "a full page of one status");
    assert!(next.is_some());
    for limit in [7, 100] {
        assert_eq!(walk_pages(limit, |page| list(None, page)).await, created);
        let walked = walk_pages(limit, |page| list(Some(SyncStatus::Synced), page)).await;
        assert_eq!(walked, synced, "pages of {limit}");
    }
}

async fn an_unknown_tenant_has_zero_counts(backend: Backend) {
    let fixture = fresh_store(backend).await;
    let store = std::sync::Arc::clone(&fixture.store);
    let counts = store.sync_counts(Uuid::now_v7()).await.unwrap();
    assert_eq!(counts, SyncCounts::default());
}

mod deliveries {
    //! The delivery half of the store conformance suite.

    use std::time::Duration;

    use common::domain::delivery::{
        payload, Delivery, DeliveryStatus, DueDelivery, EventPayload, RetrySchedule,
    };
    use common::domain::event::OutboxEvent;
    use common::domain::page::{PageRequest, FILTER_SCAN_LIMIT};
    use common::error::Error;
    use common::ports::{DeliveryChange, DeliveryRef, Requeue, SendOutcome, Store};
    use serde_json::json;
    use uuid::Uuid;

    use super::now;
    use crate::support::{fresh_store, stored_webhook, Backend};

    crate::on_both_stores!(
        webhooks_are_versioned_and_scoped,
        creating_a_delivery_twice_writes_it_once,
        an_event_payload_is_stored_once_for_all_its_deliveries,
        a_stale_delivery_write_is_a_conflict_and_writes_nothing,
        the_sweeper_indexes_find_due_failed_and_undispatched_work,
        every_read_returns_the_payload_after_every_transition,
        failed_deliveries_page_by_webhook_without_payloads,
        a_large_fan_out_is_written_whole_and_a_rerun_adds_only_what_is_missing,
        a_page_of_webhooks_larger_than_a_query_response_is_full,
        a_rare_status_pages_to_the_end_in_bounded_reads,
        due_deliveries_page_to_the_end_without_payloads,
        requeues_are_conditional_each_and_move_only_the_schedule,
    );

    /// Writes a new delivery of `webhook` and takes it through one failed attempt to FAILED.
    async fn failed_delivery(store: &dyn Store, tenant: Uuid, webhook: Uuid) -> DeliveryRef {
        let created = delivery(tenant, webhook);
        let delivery_id = created.id;
        store
            .create_deliveries(std::slice::from_ref(&created))
            .await
            .unwrap();
        let claimed = created.claimed(now(), Duration::from_secs(5)).unwrap();
        let (failed, attempt, _) =
            claimed.after_attempt(&failure(), 0, &RetrySchedule::default(), now());
        for (before, after, attempt) in [
            (created, claimed.clone(), None),
            (claimed, failed, Some(attempt)),
        ] {
            store
                .write_delivery(&DeliveryChange {
                    before,
                    after,
                    attempt,
                })
                .await
                .unwrap();
        }
        DeliveryRef {
            webhook_id: webhook,
            delivery_id,
        }
    }

    /// A retry pages through FAILED deliveries: all of a tenant's, or one webhook's, in
    /// (webhook, delivery) order, each exactly once, however the pages fall.
    async fn failed_deliveries_page_by_webhook_without_payloads(backend: Backend) {
        let fixture = fresh_store(backend).await;
        let store = std::sync::Arc::clone(&fixture.store);
        let tenant = Uuid::now_v7();
        let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
        let mut all = Vec::new();
        for webhook in [second, first, second, first, second, first, second] {
            all.push(failed_delivery(store.as_ref(), tenant, webhook).await);
        }
        // Neither another tenant's nor an open delivery is FAILED work of this tenant.
        failed_delivery(store.as_ref(), Uuid::now_v7(), first).await;
        store
            .create_deliveries(&[delivery(tenant, first)])
            .await
            .unwrap();
        all.sort();

        let read_all = |webhook: Option<Uuid>, limit: usize| {
            let store = std::sync::Arc::clone(&store);
            async move {
                let mut found = Vec::new();
                let mut after = None;
                loop {
                    let page = store
                        .failed_deliveries(tenant, webhook, after, limit)
                        .await
                        .unwrap();
                    assert!(page.len() <= limit);
                    found.extend(page.iter().copied());
                    if page.len() < limit {
                        return found;
                    }
                    after = page.last().copied();
                }
            }
        };
        for limit in [1, 3, 7, 100] {
            assert_eq!(read_all(None, limit).await, all, "pages of {limit}");
            let of_second: Vec<DeliveryRef> = all
                .iter()
                .copied()
                .filter(|r| r.webhook_id == second)
                .collect();
            assert_eq!(
                read_all(Some(second), limit).await,
                of_second,
                "pages of {limit}"
            );
        }
        assert!(read_all(Some(Uuid::now_v7()), 10).await.is_empty());
    }

    /// The default limit: these tests are not about it (`limits.rs` is).
    const WEBHOOKS: usize = 1_000;

    fn delivery(tenant: Uuid, webhook: Uuid) -> Delivery {
        let event = Uuid::now_v7();
        let body = payload(event, "lead.created", &json!({"n": 1}), now()).unwrap();
        Delivery::new(tenant, webhook, event, "lead.created", body, now())
    }

    /// Stores deliveries as a fan-out does: each one's event payload first, then the deliveries.
    async fn store_deliveries(store: &dyn Store, deliveries: &[Delivery]) {
        for delivery in deliveries {
            store.put_payload(&delivery.event_payload()).await.unwrap();
        }
        store.create_deliveries(deliveries).await.unwrap();
    }

    fn failure() -> SendOutcome {
        SendOutcome {
            status: Some(500),
            body: "no".into(),
            error: None,
            latency: Duration::from_millis(3),
        }
    }

    async fn webhooks_are_versioned_and_scoped(backend: Backend) {
        let fixture = fresh_store(backend).await;
        let store = std::sync::Arc::clone(&fixture.store);
        let tenant = Uuid::now_v7();
        let hook = stored_webhook(tenant);
        store.create_webhook(&hook, WEBHOOKS, None).await.unwrap();
        assert!(matches!(
            store.create_webhook(&hook, WEBHOOKS, None).await,
            Err(Error::Conflict(_))
        ));
        assert_eq!(
            store.get_webhook(tenant, hook.id).await.unwrap(),
            Some(hook.clone())
        );
        assert_eq!(
            store.get_webhook(Uuid::now_v7(), hook.id).await.unwrap(),
            None
        );

        let current = hook.secret.as_stored().to_owned();
        let rotated = hook.rotated(current, chrono::Duration::hours(24), now());
        store
            .update_webhook(hook.version, &rotated, None)
            .await
            .unwrap();
        let stale = hook.disabled(common::domain::health::DisabledReason::EndpointGone, now());
        let error = store
            .update_webhook(hook.version, &stale, None)
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Conflict(_)), "{error:?}");
        let stored = store.get_webhook(tenant, hook.id).await.unwrap().unwrap();
        assert_eq!(stored, rotated, "the secret and its predecessor round-trip");

        let page = store
            .list_webhooks(
                tenant,
                PageRequest {
                    limit: 10,
                    after: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(page.items, vec![rotated]);
        assert!(!store
            .delete_webhook(Uuid::now_v7(), hook.id, None)
            .await
            .unwrap());
        assert!(store.delete_webhook(tenant, hook.id, None).await.unwrap());
        assert!(!store.delete_webhook(tenant, hook.id, None).await.unwrap());
    }

    /// Webhooks with long headers and descriptions run to tens of KB: a page of them may be more
    /// than one DynamoDB response (1 MB), and is still full.
    async fn a_page_of_webhooks_larger_than_a_query_response_is_full(backend: Backend) {
        let fixture = fresh_store(backend).await;
        let store = std::sync::Arc::clone(&fixture.store);
        let tenant = Uuid::now_v7();
        let mut created = Vec::new();
        // 30 webhooks of 60 KB: 1.8 MB.
        for i in 0..30 {
            let mut hook = stored_webhook(tenant);
            hook.description = Some(format!("{i} {}", "d".repeat(60_000)));
            store.create_webhook(&hook, WEBHOOKS, None).await.unwrap();
            created.push(hook.id);
        }
        let list = |page: PageRequest| {
            let store = std::sync::Arc::clone(&store);
            async move {
                let page = store.list_webhooks(tenant, page).await.unwrap();
                (
                    page.items.iter().map(|w| w.id).collect::<Vec<_>>(),
                    page.next_cursor,
                )
            }
        };
        let limit = 50;
        assert_eq!(
            list(PageRequest { limit, after: None }).await,
            (created.clone(), None),
            "one full page"
        );
        let (first, next) = list(PageRequest {
            limit: 25,
            after: None,
        })
        .await;
        assert_eq!(first, created[..25]);
        assert!(next.is_some());
        for limit in [4, 100] {
            assert_eq!(
                super::walk_pages(limit, list).await,
                created,
                "pages of {limit}"
            );
        }
    }

    /// A status filter reads at most `FILTER_SCAN_LIMIT` deliveries per request: a rare status
    /// among many comes in short (even empty) pages with a cursor, and paging on reaches every
    /// one, newest first, once; a common status still comes in full pages.
    async fn a_rare_status_pages_to_the_end_in_bounded_reads(backend: Backend) {
        let fixture = fresh_store(backend).await;
        let store = std::sync::Arc::clone(&fixture.store);
        let tenant = Uuid::now_v7();
        let hook = Uuid::now_v7();
        let total = 2 * FILTER_SCAN_LIMIT + 500;
        let all: Vec<Delivery> = (0..total).map(|_| delivery(tenant, hook)).collect();
        store.create_deliveries(&all).await.unwrap();
        // Every 400th FAILED: 7 of 2,500, three of them in the first thousand read.
        let mut failed = Vec::new();
        for created in all.iter().step_by(400) {
            fail(store.as_ref(), created).await;
            failed.push(created.id);
        }
        let newest_first = |mut ids: Vec<Uuid>| {
            ids.sort_by(|a, b| b.cmp(a));
            ids
        };
        let failed = newest_first(failed);
        let pending = newest_first(
            all.iter()
                .map(|d| d.id)
                .filter(|id| !failed.contains(id))
                .collect(),
        );

        let list = |status: DeliveryStatus, page: PageRequest| {
            let store = std::sync::Arc::clone(&store);
            async move {
                let page = store
                    .list_deliveries(tenant, hook, Some(status), page)
                    .await
                    .unwrap();
                assert!(page.items.iter().all(|d| d.status == status));
                (
                    page.items.iter().map(|d| d.id).collect::<Vec<_>>(),
                    page.next_cursor,
                )
            }
        };
        let pages = super::pages_of(5, |page| list(DeliveryStatus::Failed, page)).await;
        assert_eq!(
            pages.concat(),
            failed,
            "every FAILED delivery once, newest first"
        );
        let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
        assert!(
            sizes.len() >= total / FILTER_SCAN_LIMIT,
            "no request read more than its budget: pages of {sizes:?}"
        );
        assert!(
            sizes[..sizes.len() - 1].iter().any(|n| *n < 5),
            "short pages before the end: {sizes:?}"
        );

        let pages = super::pages_of(100, |page| list(DeliveryStatus::Pending, page)).await;
        assert_eq!(pages.concat(), pending);
        assert!(
            pages[..pages.len() - 1].iter().all(|ids| ids.len() == 100),
            "a common status fills its pages"
        );
    }

    /// Every due delivery before `before`, a page of at most `limit` at a time.
    async fn all_due(
        store: &dyn Store,
        before: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Vec<DueDelivery> {
        let mut found = Vec::new();
        let mut cursor = None;
        loop {
            let page = store
                .due_deliveries(before, cursor.as_ref(), limit)
                .await
                .unwrap();
            assert!(page.deliveries.len() <= limit);
            found.extend(page.deliveries);
            match page.next {
                Some(next) => cursor = Some(next),
                None => return found,
            }
        }
    }

    /// The sweeper pages through due deliveries: however the pages fall, every one due before
    /// the time is read once, of every tenant, and nothing due later or finished. What it reads
    /// is a `DueDelivery`, which has no payload to read.
    async fn due_deliveries_page_to_the_end_without_payloads(backend: Backend) {
        let fixture = fresh_store(backend).await;
        let store = std::sync::Arc::clone(&fixture.store);
        let long_ago = now() - chrono::Duration::minutes(10);
        let due_at = |minutes| long_ago + chrono::Duration::minutes(minutes);
        let mut due = Vec::new();
        for n in 0..37 {
            let tenant = Uuid::now_v7();
            let body = payload(Uuid::now_v7(), "lead.created", &json!({}), now()).unwrap();
            // Some share a due time, so that a page may end between them.
            let created = Delivery::new(
                tenant,
                Uuid::now_v7(),
                Uuid::now_v7(),
                "lead.created",
                body,
                due_at(n % 5),
            );
            due.push(created);
        }
        let later = delivery(Uuid::now_v7(), Uuid::now_v7());
        store.create_deliveries(&due).await.unwrap();
        store
            .create_deliveries(std::slice::from_ref(&later))
            .await
            .unwrap();
        let mut expected: Vec<Uuid> = due.iter().map(|d| d.id).collect();
        expected.sort();
        for limit in [1, 4, 10, 1_000] {
            let mut read: Vec<Uuid> = all_due(store.as_ref(), due_at(5), limit)
                .await
                .iter()
                .map(|d| d.id)
                .collect();
            read.sort();
            assert_eq!(read, expected, "pages of {limit}");
        }
        let first = all_due(store.as_ref(), due_at(5), 1_000).await;
        let written: Vec<DueDelivery> = due.iter().map(DueDelivery::from).collect();
        assert!(first.iter().all(|d| written.contains(d)));
    }

    /// A requeue writes the new schedule on condition that the version is the one read: of a
    /// batch (more than one DynamoDB transaction holds), those another sweeper won first are
    /// refused and the others written. The payload, status and attempts are left as they were,
    /// and a requeued delivery leaves the due range it was read from.
    async fn requeues_are_conditional_each_and_move_only_the_schedule(backend: Backend) {
        let fixture = fresh_store(backend).await;
        let store = std::sync::Arc::clone(&fixture.store);
        let tenant = Uuid::now_v7();
        let long_ago = now() - chrono::Duration::minutes(10);
        let stuck: Vec<Delivery> = (0..150)
            .map(|_| {
                let body = payload(Uuid::now_v7(), "lead.created", &json!({}), long_ago).unwrap();
                let (webhook, event) = (Uuid::now_v7(), Uuid::now_v7());
                Delivery::new(tenant, webhook, event, "lead.created", body, long_ago)
            })
            .collect();
        store_deliveries(store.as_ref(), &stuck).await;
        let cutoff = now() - chrono::Duration::minutes(1);
        let mut read = all_due(store.as_ref(), cutoff, 1_000).await;
        read.sort_by_key(|d| d.id);
        let mut expected: Vec<DueDelivery> = stuck.iter().map(DueDelivery::from).collect();
        expected.sort_by_key(|d| d.id);
        assert_eq!(read, expected);

        let requeue = |d: &DueDelivery| Requeue {
            before_version: d.version,
            after: d.requeued(now()),
        };
        // A rival sweeper wins every seventh first.
        let rival: Vec<Requeue> = read.iter().step_by(7).map(requeue).collect();
        assert!(store
            .requeue_deliveries(&rival)
            .await
            .unwrap()
            .iter()
            .all(|won| *won));
        let mine: Vec<Requeue> = read.iter().map(requeue).collect();
        let won = store.requeue_deliveries(&mine).await.unwrap();
        let expected_wins: Vec<bool> = (0..read.len()).map(|n| n % 7 != 0).collect();
        assert_eq!(won, expected_wins);
        assert!(all_due(store.as_ref(), cutoff, 1_000).await.is_empty());

        let first = &stuck.iter().find(|d| d.id == read[1].id).unwrap();
        let stored = store.get_delivery(tenant, first.id).await.unwrap().unwrap();
        assert_eq!(DueDelivery::from(&stored), mine[1].after);
        assert_eq!(
            (
                stored.payload,
                stored.status,
                stored.attempt_count,
                stored.created_at
            ),
            (
                first.payload.clone(),
                first.status,
                first.attempt_count,
                first.created_at
            )
        );
        let later = now() + chrono::Duration::minutes(1);
        assert_eq!(all_due(store.as_ref(), later, 1_000).await.len(), 150);
        let counts = store.delivery_counts(tenant).await.unwrap().overall;
        assert_eq!(counts.get(DeliveryStatus::Pending), 150);
    }

    /// Takes a new delivery through one failed attempt to FAILED.
    async fn fail(store: &dyn Store, created: &Delivery) {
        let claimed = created.claimed(now(), Duration::from_secs(5)).unwrap();
        let (failed, attempt, _) =
            claimed.after_attempt(&failure(), 0, &RetrySchedule::default(), now());
        for (before, after, attempt) in [
            (created.clone(), claimed.clone(), None),
            (claimed, failed, Some(attempt)),
        ] {
            store
                .write_delivery(&DeliveryChange {
                    before,
                    after,
                    attempt,
                })
                .await
                .unwrap();
        }
    }

    /// The deliveries of one event share its payload, stored once: each reads it back whole, and
    /// a second write of the payload (a fan-out run again) keeps the bytes first stored.
    async fn an_event_payload_is_stored_once_for_all_its_deliveries(backend: Backend) {
        let fixture = fresh_store(backend).await;
        let store = std::sync::Arc::clone(&fixture.store);
        let tenant = Uuid::now_v7();
        let event = OutboxEvent::new(
            tenant,
            "lead.created",
            json!({"pad": "p".repeat(300_000 / 2)}),
            now(),
        );
        let payload = EventPayload::of(&event, now()).unwrap();
        store.put_payload(&payload).await.unwrap();
        let deliveries: Vec<Delivery> = (0..5)
            .map(|_| payload.delivery_to(Uuid::now_v7(), now()))
            .collect();
        store.create_deliveries(&deliveries).await.unwrap();
        let mut rewritten = payload.clone();
        rewritten.body = payload.body.replace("ppp", "qqq").into();
        store.put_payload(&rewritten).await.unwrap();
        for delivery in &deliveries {
            let read = store
                .get_delivery(tenant, delivery.id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(read, *delivery);
            assert_eq!(read.payload, payload.body);
        }
    }

    async fn creating_a_delivery_twice_writes_it_once(backend: Backend) {
        let fixture = fresh_store(backend).await;
        let store = std::sync::Arc::clone(&fixture.store);
        let tenant = Uuid::now_v7();
        let hook = Uuid::now_v7();
        let first = delivery(tenant, hook);
        store_deliveries(store.as_ref(), std::slice::from_ref(&first)).await;
        store_deliveries(store.as_ref(), std::slice::from_ref(&first)).await;
        assert_eq!(
            store.get_delivery(tenant, first.id).await.unwrap(),
            Some(first.clone())
        );
        let counts = store.delivery_counts(tenant).await.unwrap();
        assert_eq!(counts.overall.get(DeliveryStatus::Pending), 1);
        assert_eq!(counts.per_webhook.len(), 1);
        assert_eq!(counts.per_webhook[0].0, hook);
        assert_eq!(counts.per_webhook[0].1.get(DeliveryStatus::Pending), 1);
        assert_eq!(
            store.get_delivery(Uuid::now_v7(), first.id).await.unwrap(),
            None
        );
    }

    /// More deliveries than one write can hold, to many webhooks, some of them already there:
    /// every delivery exists once with its payload, and each webhook's counters count its own.
    async fn a_large_fan_out_is_written_whole_and_a_rerun_adds_only_what_is_missing(
        backend: Backend,
    ) {
        let fixture = fresh_store(backend).await;
        let store = std::sync::Arc::clone(&fixture.store);
        let tenant = Uuid::now_v7();
        let hooks: Vec<Uuid> = (0..7).map(|_| Uuid::now_v7()).collect();
        let all: Vec<Delivery> = (0..260)
            .map(|n| delivery(tenant, hooks[n % hooks.len()]))
            .collect();
        // A first run that stopped part way, then the whole fan-out again.
        let early: Vec<Delivery> = all.iter().step_by(3).cloned().collect();
        store_deliveries(store.as_ref(), &early).await;
        store_deliveries(store.as_ref(), &all).await;
        for created in [&all[0], &all[1], &all[129], &all[259]] {
            assert_eq!(
                store
                    .get_delivery(tenant, created.id)
                    .await
                    .unwrap()
                    .as_ref(),
                Some(created)
            );
        }
        let counts = store.delivery_counts(tenant).await.unwrap();
        assert_eq!(counts.overall.get(DeliveryStatus::Pending), 260);
        for hook in &hooks {
            let expected = all.iter().filter(|d| d.webhook_id == *hook).count() as i64;
            let (_, mine) = counts
                .per_webhook
                .iter()
                .find(|(id, _)| id == hook)
                .expect("counters for every webhook");
            assert_eq!(mine.get(DeliveryStatus::Pending), expected);
        }
    }

    async fn a_stale_delivery_write_is_a_conflict_and_writes_nothing(backend: Backend) {
        let fixture = fresh_store(backend).await;
        let store = std::sync::Arc::clone(&fixture.store);
        let tenant = Uuid::now_v7();
        let created = delivery(tenant, Uuid::now_v7());
        store_deliveries(store.as_ref(), std::slice::from_ref(&created)).await;
        let claimed = created.claimed(now(), Duration::from_secs(30)).unwrap();
        store
            .write_delivery(&DeliveryChange {
                before: created.clone(),
                after: claimed.clone(),
                attempt: None,
            })
            .await
            .unwrap();
        // A second worker that read the unclaimed delivery loses its claim.
        let rival = created.claimed(now(), Duration::from_secs(30)).unwrap();
        let error = store
            .write_delivery(&DeliveryChange {
                before: created.clone(),
                after: rival,
                attempt: None,
            })
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Conflict(_)), "{error:?}");

        let (after, attempt, _) =
            claimed.after_attempt(&failure(), 3, &RetrySchedule::default(), now());
        let stale_result = DeliveryChange {
            before: created.clone(),
            after: after.clone(),
            attempt: Some(attempt.clone()),
        };
        assert!(matches!(
            store.write_delivery(&stale_result).await,
            Err(Error::Conflict(_))
        ));
        assert!(store
            .list_attempts(tenant, created.id)
            .await
            .unwrap()
            .is_empty());
        let counts = store.delivery_counts(tenant).await.unwrap().overall;
        assert_eq!(counts.get(DeliveryStatus::Pending), 1);
        assert_eq!(counts.get(DeliveryStatus::Retrying), 0);

        store
            .write_delivery(&DeliveryChange {
                before: claimed,
                after: after.clone(),
                attempt: Some(attempt.clone()),
            })
            .await
            .unwrap();
        assert_eq!(
            store.list_attempts(tenant, created.id).await.unwrap(),
            vec![attempt]
        );
        assert_eq!(
            store.get_delivery(tenant, created.id).await.unwrap(),
            Some(after)
        );
        let counts = store.delivery_counts(tenant).await.unwrap().overall;
        assert_eq!(counts.get(DeliveryStatus::Pending), 0);
        assert_eq!(counts.get(DeliveryStatus::Retrying), 1);
    }

    async fn the_sweeper_indexes_find_due_failed_and_undispatched_work(backend: Backend) {
        let fixture = fresh_store(backend).await;
        let store = std::sync::Arc::clone(&fixture.store);
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let due_a = delivery(a, Uuid::now_v7());
        let due_b = delivery(b, Uuid::now_v7());
        let finished = delivery(a, Uuid::now_v7());
        store
            .create_deliveries(&[due_a.clone(), due_b.clone(), finished.clone()])
            .await
            .unwrap();
        let failed = finished.claimed(now(), Duration::from_secs(5)).unwrap();
        store
            .write_delivery(&DeliveryChange {
                before: finished.clone(),
                after: failed.clone(),
                attempt: None,
            })
            .await
            .unwrap();
        let (done, attempt, _) =
            failed.after_attempt(&failure(), 0, &RetrySchedule::default(), now());
        store
            .write_delivery(&DeliveryChange {
                before: failed,
                after: done.clone(),
                attempt: Some(attempt),
            })
            .await
            .unwrap();

        let later = now() + chrono::Duration::seconds(5);
        let mut due: Vec<Uuid> = all_due(store.as_ref(), later, 100)
            .await
            .iter()
            .map(|d| d.id)
            .collect();
        due.sort();
        let mut expected = vec![due_a.id, due_b.id];
        expected.sort();
        assert_eq!(
            due, expected,
            "open deliveries of every tenant, not finished ones"
        );
        let earlier = now() - chrono::Duration::seconds(5);
        assert!(all_due(store.as_ref(), earlier, 100).await.is_empty());
        let failed: Vec<Uuid> = store
            .failed_deliveries(a, None, None, 10)
            .await
            .unwrap()
            .iter()
            .map(|d| d.delivery_id)
            .collect();
        assert_eq!(failed, [done.id]);
        assert!(store
            .failed_deliveries(b, None, None, 10)
            .await
            .unwrap()
            .is_empty());

        let event = OutboxEvent::new(a, "lead.created", json!({}), now());
        let client = common::domain::client::Client::new(
            a,
            common::domain::client::ClientFields {
                name: "x".into(),
                ..Default::default()
            },
            now(),
        );
        store
            .write_client(&common::ports::ClientChange {
                tenant_id: a,
                before: None,
                after: Some(client),
                events: vec![event.clone()],
                now: now(),
            })
            .await
            .unwrap();
        let pending = store.undispatched_events(later, 10).await.unwrap();
        assert_eq!(pending, vec![event.clone()]);
        assert!(store
            .undispatched_events(earlier, 10)
            .await
            .unwrap()
            .is_empty());
        store.mark_event_dispatched(a, event.id).await.unwrap();
        store.mark_event_dispatched(a, event.id).await.unwrap();
        assert!(store
            .undispatched_events(later, 10)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(store.list_outbox_events(a, 10).await.unwrap(), vec![event]);
    }

    /// DynamoDB keeps the payload in an item of its own and writes only the state on a
    /// transition: a read with the payload must still return it exactly, the reads without it
    /// the same state, and the tenant's counts must still be the sum of its webhooks'.
    async fn every_read_returns_the_payload_after_every_transition(backend: Backend) {
        let fixture = fresh_store(backend).await;
        let store = std::sync::Arc::clone(&fixture.store);
        let tenant = Uuid::now_v7();
        let (hook, other_hook) = (Uuid::now_v7(), Uuid::now_v7());
        let created = delivery(tenant, hook);
        let other = delivery(tenant, other_hook);
        store_deliveries(store.as_ref(), &[created.clone(), other.clone()]).await;
        let claimed = created.claimed(now(), Duration::from_secs(30)).unwrap();
        let write = |before: &Delivery, after: &Delivery, attempt| DeliveryChange {
            before: before.clone(),
            after: after.clone(),
            attempt,
        };
        store
            .write_delivery(&write(&created, &claimed, None))
            .await
            .unwrap();
        assert_eq!(
            store.get_delivery(tenant, created.id).await.unwrap(),
            Some(claimed.clone())
        );
        let (failed, attempt, _) =
            claimed.after_attempt(&failure(), 0, &RetrySchedule::default(), now());
        assert_eq!(failed.status, DeliveryStatus::Failed);
        store
            .write_delivery(&write(&claimed, &failed, Some(attempt)))
            .await
            .unwrap();
        assert_eq!(
            store
                .failed_deliveries(tenant, None, None, 10)
                .await
                .unwrap(),
            vec![DeliveryRef {
                webhook_id: hook,
                delivery_id: failed.id
            }]
        );
        let page = PageRequest {
            limit: 10,
            after: None,
        };
        let listed = store
            .list_deliveries(tenant, hook, None, page)
            .await
            .unwrap();
        assert_eq!(listed.items, vec![failed.summary()]);
        assert_eq!(
            store.get_delivery_summary(tenant, failed.id).await.unwrap(),
            Some(failed.summary())
        );
        assert_eq!(
            store
                .get_delivery_summary(Uuid::now_v7(), failed.id)
                .await
                .unwrap(),
            None
        );

        let retried = failed.retried(now()).unwrap();
        store
            .write_delivery(&write(&failed, &retried, None))
            .await
            .unwrap();
        assert_eq!(
            store.get_delivery(tenant, created.id).await.unwrap(),
            Some(retried.clone())
        );
        let later = now() + chrono::Duration::minutes(1);
        let mut due = all_due(store.as_ref(), later, 10).await;
        due.sort_by_key(|d| d.id);
        let mut expected = vec![DueDelivery::from(&retried), DueDelivery::from(&other)];
        expected.sort_by_key(|d| d.id);
        assert_eq!(due, expected);

        let counts = store.delivery_counts(tenant).await.unwrap();
        assert_eq!(counts.overall.get(DeliveryStatus::Pending), 1);
        assert_eq!(counts.overall.get(DeliveryStatus::Retrying), 1);
        assert_eq!(counts.overall.get(DeliveryStatus::Failed), 0);
        assert_eq!(counts.per_webhook.len(), 2);
    }
}

/// `reserve_send_slot`: a rate-limited webhook's send slots (domain::pacing), by the same rule
/// on both stores.
mod send_slots {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use common::domain::pacing::Pacing;
    use uuid::Uuid;

    use crate::support::{fresh_store, Backend};

    crate::on_both_stores!(
        slots_follow_each_other_by_the_gap,
        concurrent_reservations_never_share_a_slot,
    );

    const NOW: i64 = 1_800_000_000_000_000;

    async fn slots_follow_each_other_by_the_gap(backend: Backend) {
        let fixture = fresh_store(backend).await;
        let store = &fixture.store;
        let (tenant, webhook, other) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let pacing = Pacing::per_second(20);
        let reserve = |webhook, now| store.reserve_send_slot(tenant, webhook, pacing, now);
        for i in 0..10 {
            assert_eq!(
                reserve(webhook, NOW).await.unwrap(),
                NOW + i * pacing.gap_us,
                "slot {i}"
            );
        }
        // Another webhook has slots of its own.
        assert_eq!(reserve(other, NOW).await.unwrap(), NOW);
        // Time passing does not free the slots taken: the next is after them.
        let later = NOW + pacing.gap_us;
        assert_eq!(
            reserve(webhook, later).await.unwrap(),
            NOW + 10 * pacing.gap_us
        );
        // An idle webhook sends at once: a free slot in the past is now.
        let idle = NOW + 60_000_000;
        assert_eq!(reserve(webhook, idle).await.unwrap(), idle);
        assert_eq!(reserve(webhook, idle).await.unwrap(), idle + pacing.gap_us);
        // A lower limit spaces the slots after the next free one further.
        let slower = Pacing::per_second(1);
        assert_eq!(
            store
                .reserve_send_slot(tenant, webhook, slower, idle)
                .await
                .unwrap(),
            idle + 2 * pacing.gap_us
        );
        assert_eq!(
            reserve(webhook, idle).await.unwrap(),
            idle + 2 * pacing.gap_us + slower.gap_us
        );
    }

    async fn concurrent_reservations_never_share_a_slot(backend: Backend) {
        let fixture = fresh_store(backend).await;
        let store = Arc::clone(&fixture.store);
        let (tenant, webhook) = (Uuid::now_v7(), Uuid::now_v7());
        let pacing = Pacing { gap_us: 1_000 };
        let reservations = (0..40).map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .reserve_send_slot(tenant, webhook, pacing, NOW)
                    .await
                    .unwrap()
            })
        });
        let slots: BTreeSet<i64> = futures::future::join_all(reservations)
            .await
            .into_iter()
            .map(|reserved| reserved.unwrap())
            .collect();
        let expected: BTreeSet<i64> = (0..40).map(|i| NOW + i * 1_000).collect();
        assert_eq!(slots, expected);
    }
}

/// A client synced (its `lastSyncedAt`) at `at`, through a real status change.
async fn synced_at(store: &dyn common::ports::Store, client: &Client, at: DateTime<Utc>) -> Client {
    let after = client
        .with_status(SyncStatus::Synced, at)
        .expect("a report changes the client");
    store
        .write_client(&ClientChange {
            tenant_id: client.tenant_id,
            before: Some(client.clone()),
            after: Some(after.clone()),
            events: Vec::new(),
            now: at,
        })
        .await
        .unwrap();
    after
}

async fn stale_walk(
    store: &dyn common::ports::Store,
    tenant: Uuid,
    before: DateTime<Utc>,
    limit: usize,
) -> Vec<Client> {
    let mut seen = Vec::new();
    let mut after = None;
    for _ in 0..50 {
        let query = ClientQuery {
            status: None,
            synced_before: Some(StaleQuery { before, after }),
            page: PageRequest { limit, after: None },
        };
        let page = store.list_clients(tenant, &query).await.unwrap();
        assert!(page.items.len() <= limit);
        seen.extend(page.items);
        match page.next_cursor {
            Some(cursor) => after = Some(StaleKey::decode(&cursor).expect("a stale cursor")),
            None => return seen,
        }
    }
    panic!("the stale list did not end in 50 pages");
}

async fn stale_clients_list_never_synced_first_then_the_oldest_sync(backend: Backend) {
    let fixture = fresh_store(backend).await;
    let store = fixture.store.as_ref();
    let (tenant, other) = (Uuid::now_v7(), Uuid::now_v7());
    let before: DateTime<Utc> = "2026-06-01T00:00:00Z".parse().unwrap();
    let hour = chrono::TimeDelta::hours(1);

    let mut never = Vec::new();
    for i in 0..5 {
        let client = new_client(tenant, &format!("never {i}"));
        store.write_client(&creation(&client)).await.unwrap();
        never.push(client.id);
    }
    // Synced at times out of creation order; three share one millisecond (ordered by id).
    let times = [5, 1, 3, 3, 3, 2, 4];
    let mut stale = Vec::new();
    for (i, hours_before) in times.iter().enumerate() {
        let client = new_client(tenant, &format!("synced {i}"));
        store.write_client(&creation(&client)).await.unwrap();
        let synced = synced_at(store, &client, before - hour * *hours_before).await;
        stale.push((synced.last_synced_at.unwrap(), synced.id));
    }
    // Synced at the bound itself or after it: not stale.
    for (i, at) in [before, before + hour].into_iter().enumerate() {
        let client = new_client(tenant, &format!("fresh {i}"));
        store.write_client(&creation(&client)).await.unwrap();
        synced_at(store, &client, at).await;
    }
    // Another tenant's never-synced client is not listed.
    let foreign = new_client(other, "foreign");
    store.write_client(&creation(&foreign)).await.unwrap();

    never.sort();
    stale.sort();
    let expected: Vec<Uuid> = never
        .iter()
        .copied()
        .chain(stale.iter().map(|(_, id)| *id))
        .collect();
    for limit in [1, 3, 5, 100] {
        let listed: Vec<Uuid> = stale_walk(store, tenant, before, limit)
            .await
            .iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(listed, expected, "pages of {limit}");
    }

    // A never-synced client that syncs now leaves the list; one synced long ago is listed
    // with its time.
    let first = store.get_client(tenant, never[0]).await.unwrap().unwrap();
    synced_at(store, &first, before + hour).await;
    let listed = stale_walk(store, tenant, before, 4).await;
    assert_eq!(listed.len(), expected.len() - 1);
    assert!(listed.iter().all(|c| c.id != never[0]));
    let oldest = &listed[never.len() - 1];
    assert_eq!(oldest.id, stale[0].1);
    assert_eq!(oldest.last_synced_at, Some(stale[0].0));

    // An earlier bound lists fewer: those synced 4 or 5 hours before, and the never-synced.
    let earlier = stale_walk(store, tenant, before - hour * 3, 2).await;
    assert_eq!(earlier.len(), never.len() - 1 + 2);
}
