//! Idempotent notify (docs/architecture.md §Idempotent notify), on both stores: a repeat with
//! the same key and notification answers the first call's deliveries and creates nothing;
//! the key with another notification is a 409; two at once make one set of deliveries; keys are
//! per tenant and kept 24 hours; a bad key is a 400 naming the header (GraphQL: the argument).

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use common::domain::auth::Role;
use common::domain::idempotency::{IdempotencyKey, IdempotencyRecord};
use common::http::{handle, routes::ROUTES};
use common::service::deps::{DeliverySettings, TenantLimits};
use lambda_http::http::{HeaderValue, Method, Request as HttpRequest, StatusCode};
use lambda_http::Body;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::delivery::{setup, Setup};
use crate::limits::SteppedClock;
use crate::receiver::{Receiver, Reply};
use crate::support::{assert_error, test_settings, Backend, TestApp};

crate::on_both_stores!(
    a_repeat_answers_the_first_deliveries_and_creates_nothing,
    the_key_with_another_notification_is_409_and_stores_nothing,
    two_identical_requests_at_once_make_one_set_of_deliveries,
    tenants_use_the_same_key_independently,
    a_bad_key_is_400_naming_the_header,
    a_repeat_takes_no_quota_and_a_key_may_be_used_again_after_24_hours,
    a_repeat_finishes_the_work_of_a_first_request_that_died,
    graphql_notify_with_an_idempotency_key_behaves_as_rest,
);

/// `POST /api/webhooks/notify` with `body` as it is (bytes, not re-serialised) and these
/// `Idempotency-Key` header values.
async fn notify_with(app: &TestApp, key: &str, keys: &[&[u8]], body: &str) -> (StatusCode, Value) {
    let mut request = HttpRequest::builder()
        .method(Method::POST)
        .uri("/api/webhooks/notify")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json");
    for value in keys {
        request = request.header("idempotency-key", HeaderValue::from_bytes(value).unwrap());
    }
    let request = request.body(Body::Text(body.to_owned())).unwrap();
    let response = handle(&app.deps, ROUTES, request).await;
    let status = response.status();
    (status, serde_json::from_slice(response.body()).unwrap())
}

async fn notify_keyed(
    app: &TestApp,
    key: &str,
    idempotency_key: &str,
    body: &str,
) -> (StatusCode, Value) {
    notify_with(app, key, &[idempotency_key.as_bytes()], body).await
}

fn ids_of(answer: &Value) -> Vec<Uuid> {
    answer["deliveryIds"]
        .as_array()
        .unwrap_or_else(|| panic!("deliveryIds: {answer}"))
        .iter()
        .map(|id| id.as_str().unwrap().parse().unwrap())
        .collect()
}

async fn outbox_len(app: &TestApp, tenant: Uuid) -> usize {
    app.deps
        .store
        .list_outbox_events(tenant, 100)
        .await
        .unwrap()
        .len()
}

async fn deliveries_of(s: &Setup, webhook: Uuid) -> usize {
    let path = format!("/api/webhooks/{webhook}/deliveries?limit=100");
    let (status, page) = s.app.get(&path, &s.key).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().unwrap().len()
}

/// Two receivers, one webhook each, and a worker: every delivery made reaches a receiver.
async fn two_receivers(s: &Setup) -> [(Receiver, Uuid); 2] {
    let first = Receiver::start(Reply::Status(200)).await;
    let second = Receiver::start(Reply::Status(200)).await;
    let (first_hook, _) = s.webhook(&first, json!({})).await;
    let (second_hook, _) = s.webhook(&second, json!({})).await;
    [(first, first_hook), (second, second_hook)]
}

/// Waits for each delivery to succeed, then a little longer, so that a second delivery (had
/// one been made) would have arrived too.
async fn all_delivered(s: &Setup, ids: &[Uuid]) {
    for id in ids {
        s.delivery_in(*id, "SUCCESS").await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
}

const BODY: &str =
    r#"{"event": "lead.created", "data": {"leadId": "L-1", "name": "Ada", "tags": [1, 2]}}"#;
/// `BODY` parsed alike: other key order, other spacing.
const SAME_BODY: &str =
    r#"{"data":{"tags":[1,2],"name":"Ada","leadId":"L-1"},"event":"lead.created"}"#;
const OTHER_BODY: &str = r#"{"event": "lead.created", "data": {"leadId": "L-2"}}"#;

async fn a_repeat_answers_the_first_deliveries_and_creates_nothing(backend: Backend) {
    let s = setup(backend).await;
    let receivers = two_receivers(&s).await;
    let _worker = s.app.start_worker();

    let (status, first) = notify_keyed(&s.app, &s.key, "order-42", BODY).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let ids = ids_of(&first);
    assert_eq!(ids.len(), 2);
    let (status, again) = notify_keyed(&s.app, &s.key, "order-42", SAME_BODY).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again, first, "the same answer");

    all_delivered(&s, &ids).await;
    for (receiver, webhook) in &receivers {
        assert_eq!(receiver.seen().len(), 1, "one delivery per webhook");
        assert_eq!(deliveries_of(&s, *webhook).await, 1);
    }
    assert_eq!(outbox_len(&s.app, s.tenant).await, 1, "one event");
}

async fn the_key_with_another_notification_is_409_and_stores_nothing(backend: Backend) {
    let s = setup(backend).await;
    let receivers = two_receivers(&s).await;
    let (status, first) = notify_keyed(&s.app, &s.key, "order-42", BODY).await;
    assert_eq!(status, StatusCode::OK, "{first}");

    let with_timestamp = r#"{"event": "lead.created", "timestamp": "2026-12-01T00:00:00Z",
        "data": {"leadId": "L-1", "name": "Ada", "tags": [1, 2]}}"#;
    for other in [OTHER_BODY, with_timestamp] {
        let (status, refused) = notify_keyed(&s.app, &s.key, "order-42", other).await;
        assert_error(status, &refused, StatusCode::CONFLICT);
        let sentence = refused["error"].as_str().unwrap();
        assert!(
            sentence == common::service::deliveries::KEY_REUSED,
            "{sentence}"
        );
    }
    assert_eq!(outbox_len(&s.app, s.tenant).await, 1);
    for (_, webhook) in &receivers {
        assert_eq!(deliveries_of(&s, *webhook).await, 1);
    }
    // The key still answers its own notification.
    let (status, again) = notify_keyed(&s.app, &s.key, "order-42", BODY).await;
    assert_eq!((status, again), (StatusCode::OK, first));
}

async fn two_identical_requests_at_once_make_one_set_of_deliveries(backend: Backend) {
    let s = setup(backend).await;
    let receivers = two_receivers(&s).await;
    let _worker = s.app.start_worker();

    let (one, two) = tokio::join!(
        notify_keyed(&s.app, &s.key, "at-once", BODY),
        notify_keyed(&s.app, &s.key, "at-once", BODY),
    );
    assert_eq!(one.0, StatusCode::OK, "{}", one.1);
    assert_eq!(two.0, StatusCode::OK, "{}", two.1);
    let ids = ids_of(&one.1);
    assert_eq!(ids.len(), 2);
    assert_eq!(ids_of(&two.1), ids, "the same deliveries");

    all_delivered(&s, &ids).await;
    for (receiver, webhook) in &receivers {
        assert_eq!(receiver.seen().len(), 1, "one delivery per webhook");
        assert_eq!(deliveries_of(&s, *webhook).await, 1);
    }
    assert_eq!(outbox_len(&s.app, s.tenant).await, 1);
}

async fn tenants_use_the_same_key_independently(backend: Backend) {
    let s = setup(backend).await;
    let (other_tenant, other_key) = s.app.tenant_with(Role::Admin).await;
    for key in [&s.key, &other_key] {
        let hook = json!({"url": "https://example.com/hook", "events": ["*"]});
        let (status, created) = s.app.post("/api/webhooks", key, &hook).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
    }
    let (status, mine) = notify_keyed(&s.app, &s.key, "shared", BODY).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    // Another tenant's key of the same name, with another notification: its own.
    let (status, theirs) = notify_keyed(&s.app, &other_key, "shared", OTHER_BODY).await;
    assert_eq!(status, StatusCode::OK, "{theirs}");
    assert_eq!(ids_of(&theirs).len(), 1);
    assert_ne!(ids_of(&theirs), ids_of(&mine));
    assert_eq!(outbox_len(&s.app, s.tenant).await, 1);
    assert_eq!(outbox_len(&s.app, other_tenant).await, 1);
}

async fn a_bad_key_is_400_naming_the_header(backend: Backend) {
    let s = setup(backend).await;
    let long = "k".repeat(256);
    let bad: [&[&[u8]]; 5] = [
        &[b""],
        &[long.as_bytes()],
        &[b"tab\there"],
        &["caf\u{e9}".as_bytes()],
        &[b"one", b"two"],
    ];
    for keys in bad {
        let (status, refused) = notify_with(&s.app, &s.key, keys, BODY).await;
        assert_error(status, &refused, StatusCode::BAD_REQUEST);
        assert!(
            refused["details"]["Idempotency-Key"].is_string(),
            "{keys:?}: {refused}"
        );
    }
    // 255 printable characters, space and symbols included, are a key.
    let longest = format!("{} ~!\"#", "k".repeat(250));
    let (status, answer) = notify_keyed(&s.app, &s.key, &longest, BODY).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        outbox_len(&s.app, s.tenant).await,
        1,
        "only the good key's event"
    );
}

async fn a_repeat_takes_no_quota_and_a_key_may_be_used_again_after_24_hours(backend: Backend) {
    let settings = DeliverySettings {
        limits: TenantLimits {
            events_per_second: 1,
            ..TenantLimits::default()
        },
        ..test_settings()
    };
    let mut app = TestApp::with_settings(backend, settings).await;
    let clock = SteppedClock::new();
    app.deps.clock = Arc::<SteppedClock>::clone(&clock) as _;
    let (tenant, key) = app.tenant_with(Role::Admin).await;
    let hook = json!({"url": "https://example.com/hook", "events": ["*"]});
    let (status, created) = app.post("/api/webhooks", &key, &hook).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");

    let (status, first) = notify_keyed(&app, &key, "daily", BODY).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    // The second's only place is taken: a repeat is answered all the same.
    for _ in 0..3 {
        let (status, again) = notify_keyed(&app, &key, "daily", BODY).await;
        assert_eq!((status, &again), (StatusCode::OK, &first));
    }
    let (status, refused) = notify_keyed(&app, &key, "new", BODY).await;
    assert_error(status, &refused, StatusCode::TOO_MANY_REQUESTS);

    clock.advance(TimeDelta::hours(24) - TimeDelta::seconds(1));
    let (status, refused) = notify_keyed(&app, &key, "daily", OTHER_BODY).await;
    assert_error(status, &refused, StatusCode::CONFLICT);
    clock.advance(TimeDelta::seconds(1));
    let (status, reused) = notify_keyed(&app, &key, "daily", OTHER_BODY).await;
    assert_eq!(status, StatusCode::OK, "{reused}");
    assert_ne!(ids_of(&reused), ids_of(&first));
    assert_eq!(outbox_len(&app, tenant).await, 2);
}

/// A request claimed the key and died before it wrote its event: a repeat waits for its answer,
/// then does its work, with its event id.
async fn a_repeat_finishes_the_work_of_a_first_request_that_died(backend: Backend) {
    let s = setup(backend).await;
    let receivers = two_receivers(&s).await;
    let _worker = s.app.start_worker();
    let now = s.app.deps.clock.now();
    // What the first request stored before it died: its claim, and nothing else.
    let (_, probe) = notify_keyed(&s.app, &s.key, "probe", BODY).await;
    let fingerprint = s
        .app
        .deps
        .store
        .find_idempotency_record(s.tenant, &IdempotencyKey::stored("probe".into()), now)
        .await
        .unwrap()
        .unwrap()
        .fingerprint;
    let dead_event = Uuid::now_v7();
    let claim = IdempotencyRecord::claim(
        s.tenant,
        IdempotencyKey::stored("died".into()),
        fingerprint,
        dead_event,
        now,
    );
    assert!(s
        .app
        .deps
        .store
        .claim_idempotency_key(&claim, now)
        .await
        .unwrap());

    let (status, answer) = notify_keyed(&s.app, &s.key, "died", SAME_BODY).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let ids = ids_of(&answer);
    let expected: Vec<Uuid> = receivers
        .iter()
        .map(|(_, webhook)| common::domain::delivery::delivery_id(dead_event, *webhook))
        .collect();
    assert_eq!(ids, expected, "the deliveries of the first request's event");
    let (status, again) = notify_keyed(&s.app, &s.key, "died", BODY).await;
    assert_eq!((status, again), (StatusCode::OK, answer));

    all_delivered(&s, &ids).await;
    all_delivered(&s, &ids_of(&probe)).await;
    for (receiver, _) in &receivers {
        assert_eq!(
            receiver.seen().len(),
            2,
            "the probe's delivery and the finished one"
        );
    }
    assert_eq!(outbox_len(&s.app, s.tenant).await, 2);
}

async fn graphql(app: &TestApp, key: &str, query: &str, variables: Value) -> Value {
    let body = json!({"query": query, "variables": variables}).to_string();
    let (status, answer) = app
        .call(Method::POST, "/graphql", Some(key), Some(&body))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

async fn graphql_notify_with_an_idempotency_key_behaves_as_rest(backend: Backend) {
    let s = setup(backend).await;
    let receivers = two_receivers(&s).await;
    let notify = "mutation($data: JSON!, $key: String) {
        notifyWebhooks(event: \"lead.created\", data: $data, idempotencyKey: $key) { deliveryIds } }";
    let data: Value = serde_json::from_str::<Value>(BODY).unwrap()["data"].clone();
    let first = graphql(&s.app, &s.key, notify, json!({"data": data, "key": "gql"})).await;
    assert!(first.get("errors").is_none(), "{first}");
    let ids = first["data"]["notifyWebhooks"]["deliveryIds"].clone();
    assert_eq!(ids.as_array().unwrap().len(), 2);

    let again = graphql(&s.app, &s.key, notify, json!({"data": data, "key": "gql"})).await;
    assert_eq!(
        again["data"]["notifyWebhooks"]["deliveryIds"], ids,
        "{again}"
    );
    // REST and GraphQL share the tenant's keys.
    let (status, rest) = notify_keyed(&s.app, &s.key, "gql", SAME_BODY).await;
    assert_eq!(status, StatusCode::OK, "{rest}");
    assert_eq!(rest["deliveryIds"], ids);

    let other = graphql(
        &s.app,
        &s.key,
        notify,
        json!({"data": {"x": 1}, "key": "gql"}),
    )
    .await;
    let error = &other["errors"][0];
    assert_eq!(error["extensions"]["code"], "CONFLICT", "{other}");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("already used with another"));

    for bad in [String::new(), "k".repeat(256), "new\nline".to_owned()] {
        let refused = graphql(&s.app, &s.key, notify, json!({"data": data, "key": bad})).await;
        let error = &refused["errors"][0];
        assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{refused}");
        assert_eq!(error["extensions"]["field"], "idempotencyKey", "{refused}");
    }
    assert_eq!(outbox_len(&s.app, s.tenant).await, 1);
    for (_, webhook) in &receivers {
        assert_eq!(deliveries_of(&s, *webhook).await, 1);
    }
}
