//! The per-tenant limits of a deployment (docs/architecture.md §Limits), on both stores: the
//! webhooks a tenant may have (403 past it), and the notify calls it may make in one second
//! (429 with `Retry-After`, nothing stored). Small limits through the settings, as an operator
//! sets them with `CRM_MAX_WEBHOOKS_PER_TENANT` and `CRM_MAX_EVENTS_PER_SECOND`.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};
use common::adapters::dynamodb::DynamoStore;
use common::domain::auth::Role;
use common::error::Error;
use common::ports::{Clock, SystemClock, WebhookStore};
use common::service::deps::{DeliverySettings, TenantLimits};
use lambda_http::http::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{assert_error, fresh_store, stored_webhook, test_settings, Backend, TestApp};

crate::on_both_stores!(
    the_store_refuses_a_webhook_past_the_limit_and_a_deletion_makes_room,
    concurrent_creations_at_the_limit_leave_exactly_the_limit,
    the_store_counts_events_per_tenant_and_second,
    a_webhook_past_the_limit_is_403_naming_the_limit,
    graphql_create_webhook_past_the_limit_is_limit_reached,
    a_notify_past_the_events_per_second_is_429_and_stores_nothing,
    graphql_notify_past_the_events_per_second_is_too_many_requests,
    client_writes_are_not_counted_as_events,
);

fn settings(limits: TenantLimits) -> DeliverySettings {
    DeliverySettings {
        limits,
        ..test_settings()
    }
}

fn webhooks_at_most(webhooks: usize) -> DeliverySettings {
    settings(TenantLimits {
        webhooks,
        ..TenantLimits::default()
    })
}

fn events_per_second_at_most(events_per_second: usize) -> DeliverySettings {
    settings(TenantLimits {
        events_per_second,
        ..TenantLimits::default()
    })
}

async fn webhook_count(app: &TestApp, key: &str) -> usize {
    let (status, page) = app.get("/api/webhooks?limit=100", key).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().unwrap().len()
}

async fn the_store_refuses_a_webhook_past_the_limit_and_a_deletion_makes_room(backend: Backend) {
    let fixture = fresh_store(backend).await;
    let store = Arc::clone(&fixture.store);
    let (tenant, other) = (Uuid::now_v7(), Uuid::now_v7());
    let mut hooks = Vec::new();
    for _ in 0..3 {
        let hook = stored_webhook(tenant);
        store.create_webhook(&hook, 3, None).await.unwrap();
        hooks.push(hook);
    }

    let refused = stored_webhook(tenant);
    let error = store.create_webhook(&refused, 3, None).await.unwrap_err();
    assert!(
        matches!(error, Error::WebhookLimitReached { limit: 3 }),
        "{error:?}"
    );
    assert_eq!(store.get_webhook(tenant, refused.id).await.unwrap(), None);
    // An id that exists is a conflict, at the limit too: nothing to count.
    let error = store.create_webhook(&hooks[0], 3, None).await.unwrap_err();
    assert!(matches!(error, Error::Conflict(_)), "{error:?}");
    // Another tenant has its own count.
    store
        .create_webhook(&stored_webhook(other), 3, None)
        .await
        .unwrap();

    assert!(store
        .delete_webhook(tenant, hooks[0].id, None)
        .await
        .unwrap());
    // A deletion of nothing frees nothing.
    assert!(!store
        .delete_webhook(tenant, hooks[0].id, None)
        .await
        .unwrap());
    store.create_webhook(&refused, 3, None).await.unwrap();
    let error = store
        .create_webhook(&stored_webhook(tenant), 3, None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::WebhookLimitReached { limit: 3 }),
        "{error:?}"
    );
}

/// 32 creations at once, one place left: one is made, 31 are refused for the limit (none for
/// anything else), and the tenant has exactly the limit.
async fn concurrent_creations_at_the_limit_leave_exactly_the_limit(backend: Backend) {
    const LIMIT: usize = 8;
    let app = TestApp::with_settings(backend, webhooks_at_most(LIMIT)).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    for n in 0..LIMIT - 1 {
        let body = json!({"url": format!("https://example.com/{n}"), "events": ["*"]});
        let (status, created) = app.post("/api/webhooks", &key, &body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
    }

    let bodies: Vec<Value> = (0..32)
        .map(|n| json!({"url": format!("https://example.com/at-once/{n}"), "events": ["*"]}))
        .collect();
    let creations = bodies
        .iter()
        .map(|body| app.post("/api/webhooks", &key, body));
    let answers = futures::future::join_all(creations).await;
    let created = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_error(*status, body, StatusCode::FORBIDDEN);
    }
    assert_eq!(webhook_count(&app, &key).await, LIMIT);
}

async fn the_store_counts_events_per_tenant_and_second(backend: Backend) {
    let fixture = fresh_store(backend).await;
    let store = Arc::clone(&fixture.store);
    let (tenant, other) = (Uuid::now_v7(), Uuid::now_v7());
    let second = SystemClock.now().timestamp();
    for n in 0..3 {
        assert!(
            store.take_event_quota(tenant, second, 3).await.unwrap(),
            "event {n}"
        );
    }
    assert!(!store.take_event_quota(tenant, second, 3).await.unwrap());
    assert!(
        !store.take_event_quota(tenant, second, 3).await.unwrap(),
        "a refusal counts nothing, and refuses again"
    );
    assert!(store.take_event_quota(other, second, 3).await.unwrap());
    assert!(store.take_event_quota(tenant, second + 1, 3).await.unwrap());
    // A request that read the clock just before the second ended counts in its own second.
    assert!(!store.take_event_quota(tenant, second, 3).await.unwrap());
    // A higher limit (the operator raised it) finds the count where it was.
    assert!(store.take_event_quota(tenant, second, 4).await.unwrap());
    assert!(!store.take_event_quota(tenant, second, 4).await.unwrap());
}

async fn a_webhook_past_the_limit_is_403_naming_the_limit(backend: Backend) {
    let app = TestApp::with_settings(backend, webhooks_at_most(2)).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let (_, other) = app.tenant_with(Role::Admin).await;
    let create = |n: usize| json!({"url": format!("https://example.com/{n}"), "events": ["*"]});
    let mut ids = Vec::new();
    for n in 0..2 {
        let (status, created) = app.post("/api/webhooks", &key, &create(n)).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        ids.push(created["id"].as_str().unwrap().to_owned());
    }

    let (status, body) = app.post("/api/webhooks", &key, &create(2)).await;
    assert_error(status, &body, StatusCode::FORBIDDEN);
    assert_eq!(
        body["error"],
        "This tenant has reached its limit of 2 webhooks (CRM_MAX_WEBHOOKS_PER_TENANT)."
    );
    assert_eq!(webhook_count(&app, &key).await, 2);
    let (status, created) = app.post("/api/webhooks", &other, &create(0)).await;
    assert_eq!(status, StatusCode::CREATED, "another tenant: {created}");

    let (status, _) = app.delete(&format!("/api/webhooks/{}", ids[0]), &key).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, created) = app.post("/api/webhooks", &key, &create(2)).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "a deletion makes room: {created}"
    );
}

async fn graphql(app: &TestApp, key: &str, query: &str, variables: Value) -> Value {
    let body = json!({"query": query, "variables": variables}).to_string();
    let (status, answer) = app
        .call(Method::POST, "/graphql", Some(key), Some(&body))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

async fn graphql_create_webhook_past_the_limit_is_limit_reached(backend: Backend) {
    let app = TestApp::with_settings(backend, webhooks_at_most(1)).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let create =
        "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { webhook { id } } }";
    let input = json!({"input": {"url": "https://example.com/hook", "events": ["*"]}});
    let first = graphql(&app, &key, create, input.clone()).await;
    assert!(first.get("errors").is_none(), "{first}");

    let second = graphql(&app, &key, create, input).await;
    let error = &second["errors"][0];
    assert_eq!(error["extensions"]["code"], "LIMIT_REACHED", "{second}");
    assert_eq!(error["extensions"]["limit"], 1, "{second}");
    assert_eq!(
        error["message"],
        "This tenant has reached its limit of 1 webhooks (CRM_MAX_WEBHOOKS_PER_TENANT)."
    );
    assert_eq!(webhook_count(&app, &key).await, 1);
}

/// A clock that stays where a test puts it, so that calls fall in one second, or the next.
pub(crate) struct SteppedClock(Mutex<DateTime<Utc>>);

impl SteppedClock {
    /// At the start of the current second; it moves only when told.
    pub(crate) fn new() -> Arc<SteppedClock> {
        let second = SystemClock.now().timestamp();
        let start = DateTime::from_timestamp(second, 0).unwrap();
        Arc::new(SteppedClock(Mutex::new(start)))
    }

    pub(crate) fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for SteppedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

async fn outbox_len(app: &TestApp, tenant: Uuid) -> usize {
    let events = app.deps.store.list_outbox_events(tenant, 100);
    events.await.unwrap().len()
}

async fn a_notify_past_the_events_per_second_is_429_and_stores_nothing(backend: Backend) {
    let mut app = TestApp::with_settings(backend, events_per_second_at_most(2)).await;
    let clock = SteppedClock::new();
    app.deps.clock = Arc::<SteppedClock>::clone(&clock);
    let (tenant, key) = app.tenant_with(Role::Admin).await;
    let (_, other) = app.tenant_with(Role::Admin).await;
    let hook = json!({"url": "https://example.com/hook", "events": ["lead.created"]});
    let (status, created) = app.post("/api/webhooks", &key, &hook).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let deliveries = format!(
        "/api/webhooks/{}/deliveries",
        created["id"].as_str().unwrap()
    );
    let event = json!({"event": "lead.created", "data": {"id": "L-1"}}).to_string();
    let notify = || {
        app.respond(
            Method::POST,
            "/api/webhooks/notify",
            Some(&key),
            Some("application/json"),
            Some(&event),
        )
    };
    for _ in 0..2 {
        assert_eq!(notify().await.status(), StatusCode::OK);
    }

    let refused = notify().await;
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = serde_json::from_slice(refused.body()).unwrap();
    assert_error(refused.status(), &body, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        body["error"],
        "This tenant has reached its limit of 2 events per second \
         (CRM_MAX_EVENTS_PER_SECOND); retry in 1 s."
    );
    assert_eq!(outbox_len(&app, tenant).await, 2, "no event stored");
    let (_, page) = app.get(&deliveries, &key).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "{page}");
    let (status, body) = app
        .post(
            "/api/webhooks/notify",
            &other,
            &json!({"event": "lead.created", "data": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "another tenant: {body}");

    clock.advance(Duration::seconds(1));
    assert_eq!(notify().await.status(), StatusCode::OK, "the next second");
    assert_eq!(outbox_len(&app, tenant).await, 3);
}

async fn graphql_notify_past_the_events_per_second_is_too_many_requests(backend: Backend) {
    let mut app = TestApp::with_settings(backend, events_per_second_at_most(1)).await;
    app.deps.clock = SteppedClock::new();
    let (tenant, key) = app.tenant_with(Role::Admin).await;
    let notify =
        r#"mutation { notifyWebhooks(event: "lead.created", data: {id: "L-1"}) { success } }"#;
    let first = graphql(&app, &key, notify, json!({})).await;
    assert!(first.get("errors").is_none(), "{first}");

    let second = graphql(&app, &key, notify, json!({})).await;
    let error = &second["errors"][0];
    assert_eq!(error["extensions"]["code"], "TOO_MANY_REQUESTS", "{second}");
    assert_eq!(error["extensions"]["retryAfter"], 1, "{second}");
    assert_eq!(outbox_len(&app, tenant).await, 1);
}

/// Client writes carry events too, but a sync job's batch of them must not be refused: only
/// notify is counted.
async fn client_writes_are_not_counted_as_events(backend: Backend) {
    let mut app = TestApp::with_settings(backend, events_per_second_at_most(1)).await;
    app.deps.clock = SteppedClock::new();
    let (tenant, key) = app.tenant_with(Role::Admin).await;
    for n in 0..3 {
        let client = app.create_client(&key, &format!("Client {n}")).await;
        let (status, body) = app
            .post(
                "/api/crm/update-sync-status",
                &key,
                &json!({"clientId": client, "status": "SYNCED"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(outbox_len(&app, tenant).await, 6);
    let (status, body) = app
        .post(
            "/api/webhooks/notify",
            &key,
            &json!({"event": "lead.created", "data": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the second's one notify: {body}");
}

/// A stack deployed before the webhook count has webhooks and no count: the count starts from
/// none at the next creation, and `crm-admin recount-webhooks` sets it to what the tenant has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_a_recount_takes_in_webhooks_created_before_the_count() {
    let fixture = fresh_store(Backend::DynamoDb).await;
    let (client, table) = fixture.dynamodb.clone().unwrap();
    let store = DynamoStore::new(client.clone(), table.clone());
    let tenant = Uuid::now_v7();
    for _ in 0..3 {
        store
            .create_webhook(&stored_webhook(tenant), 10, None)
            .await
            .unwrap();
    }
    client
        .delete_item()
        .table_name(&table)
        .key("pk", AttributeValue::S(format!("TENANT#{tenant}")))
        .key("sk", AttributeValue::S("WEBHOOK_COUNT".to_owned()))
        .send()
        .await
        .unwrap();
    store
        .create_webhook(&stored_webhook(tenant), 3, None)
        .await
        .unwrap();

    assert_eq!(store.recount_webhooks(tenant).await.unwrap(), 4);
    let error = store
        .create_webhook(&stored_webhook(tenant), 4, None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::WebhookLimitReached { limit: 4 }),
        "{error:?}"
    );
    assert_eq!(store.recount_webhooks(tenant).await.unwrap(), 4, "again");
    store
        .create_webhook(&stored_webhook(tenant), 5, None)
        .await
        .unwrap();
    assert_eq!(store.recount_webhooks(Uuid::now_v7()).await.unwrap(), 0);
}
