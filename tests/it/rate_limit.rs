//! A webhook's `rateLimitPerSecond`: set, shown and cleared over REST and GraphQL, and kept by
//! the worker as the receiver measures it (domain::pacing).

use std::time::{Duration, Instant};

use common::domain::auth::Role;
use common::domain::delivery::{Delivery, DeliveryStatus};
use common::ports::{DeliveryMessage, QueueMessage};
use lambda_http::http::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::receiver::{Receiver, Reply};
use crate::support::{assert_error, Backend, TestApp};

crate::on_both_stores!(
    rest_sets_shows_and_clears_the_rate_limit,
    rest_refuses_a_rate_limit_out_of_range_or_of_the_wrong_type,
    graphql_sets_shows_and_clears_the_rate_limit,
    graphql_refuses_a_rate_limit_out_of_range,
    a_limited_webhook_never_sees_more_than_its_limit_in_any_second,
);

async fn create(app: &TestApp, key: &str, extra: Value) -> (StatusCode, Value) {
    let mut body = json!({"url": "https://example.com/hook", "events": ["*"]});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    app.post("/api/webhooks", key, &body).await
}

async fn rest_sets_shows_and_clears_the_rate_limit(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let (status, unlimited) = create(&app, &key, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{unlimited}");
    assert_eq!(unlimited["rateLimitPerSecond"], Value::Null);

    let (status, created) = create(&app, &key, json!({"rateLimitPerSecond": 20})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["rateLimitPerSecond"], 20);
    let path = format!("/api/webhooks/{}", created["id"].as_str().unwrap());
    let (status, read) = app.get(&path, &key).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["rateLimitPerSecond"], 20);

    let (status, patched) = app
        .patch(&path, &key, &json!({"rateLimitPerSecond": 10_000}))
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["rateLimitPerSecond"], 10_000);
    // A PATCH that does not name it leaves it alone; null clears it.
    let (_, kept) = app.patch(&path, &key, &json!({"maxRetries": 1})).await;
    assert_eq!(kept["rateLimitPerSecond"], 10_000);
    let (status, cleared) = app
        .patch(&path, &key, &json!({"rateLimitPerSecond": null}))
        .await;
    assert_eq!(status, StatusCode::OK, "{cleared}");
    assert_eq!(cleared["rateLimitPerSecond"], Value::Null);
    let (_, read) = app.get(&path, &key).await;
    assert_eq!(read["rateLimitPerSecond"], Value::Null);
}

async fn rest_refuses_a_rate_limit_out_of_range_or_of_the_wrong_type(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let range = "must be an integer from 1 to 10000";
    for (value, message) in [
        (json!(0), range),
        (json!(-1), range),
        (json!(10_001), range),
        (json!("20"), "must be an integer"),
        (json!(2.5), "must be an integer"),
        (json!(true), "must be an integer"),
    ] {
        let (status, body) = create(&app, &key, json!({"rateLimitPerSecond": value})).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
        assert_eq!(body["details"]["rateLimitPerSecond"], message, "{value}");
    }
    let (_, created) = create(&app, &key, json!({"rateLimitPerSecond": 5})).await;
    let path = format!("/api/webhooks/{}", created["id"].as_str().unwrap());
    for (value, message) in [(json!(0), range), (json!("5"), "must be an integer")] {
        let (status, body) = app
            .patch(&path, &key, &json!({"rateLimitPerSecond": value}))
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
        assert_eq!(body["details"]["rateLimitPerSecond"], message, "{value}");
    }
    let (_, read) = app.get(&path, &key).await;
    assert_eq!(read["rateLimitPerSecond"], 5);
}

async fn graphql(app: &TestApp, key: &str, query: &str, variables: Value) -> Value {
    let body = json!({"query": query, "variables": variables}).to_string();
    let (status, answer) = app
        .call(Method::POST, "/graphql", Some(key), Some(&body))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

const CREATE: &str = "mutation C($input: CreateWebhookInput!) {
    createWebhook(input: $input) { webhook { id rateLimitPerSecond } } }";
const UPDATE: &str = "mutation U($id: ID!, $input: UpdateWebhookInput!) {
    updateWebhook(id: $id, input: $input) { webhook { id rateLimitPerSecond } } }";
const READ: &str = "query R($id: ID!) { webhook(id: $id) { rateLimitPerSecond } }";

async fn graphql_sets_shows_and_clears_the_rate_limit(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let input = json!({"url": "https://example.com/h", "events": ["*"], "rateLimitPerSecond": 20});
    let created = graphql(&app, &key, CREATE, json!({"input": input})).await;
    let webhook = &created["data"]["createWebhook"]["webhook"];
    assert_eq!(webhook["rateLimitPerSecond"], 20, "{created}");
    let id = webhook["id"].as_str().unwrap().to_owned();
    let read = graphql(&app, &key, READ, json!({"id": id})).await;
    assert_eq!(read["data"]["webhook"]["rateLimitPerSecond"], 20, "{read}");

    let update = |input: Value| json!({"id": id, "input": input});
    let changed = graphql(&app, &key, UPDATE, update(json!({"rateLimitPerSecond": 7}))).await;
    assert_eq!(
        changed["data"]["updateWebhook"]["webhook"]["rateLimitPerSecond"], 7,
        "{changed}"
    );
    let kept = graphql(&app, &key, UPDATE, update(json!({"maxRetries": 1}))).await;
    assert_eq!(
        kept["data"]["updateWebhook"]["webhook"]["rateLimitPerSecond"],
        7
    );
    let cleared = graphql(
        &app,
        &key,
        UPDATE,
        update(json!({"rateLimitPerSecond": null})),
    )
    .await;
    assert_eq!(
        cleared["data"]["updateWebhook"]["webhook"]["rateLimitPerSecond"],
        Value::Null,
        "{cleared}"
    );
    let read = graphql(&app, &key, READ, json!({"id": id})).await;
    assert_eq!(read["data"]["webhook"]["rateLimitPerSecond"], Value::Null);
}

/// The error of a refused mutation: BAD_USER_INPUT naming the field, as REST names it.
fn field_error(answer: &Value) -> (String, String) {
    let error = &answer["errors"][0];
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{answer}");
    (
        error["extensions"]["field"].as_str().unwrap().to_owned(),
        error["message"].as_str().unwrap().to_owned(),
    )
}

async fn graphql_refuses_a_rate_limit_out_of_range(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let refused = (
        "rateLimitPerSecond".to_owned(),
        "rateLimitPerSecond: must be an integer from 1 to 10000".to_owned(),
    );
    for bad in [0, 10_001] {
        let input =
            json!({"url": "https://example.com/h", "events": ["*"], "rateLimitPerSecond": bad});
        let answer = graphql(&app, &key, CREATE, json!({"input": input})).await;
        assert_eq!(field_error(&answer), refused, "{bad}");
    }
    let input = json!({"url": "https://example.com/h", "events": ["*"], "rateLimitPerSecond": 3});
    let created = graphql(&app, &key, CREATE, json!({"input": input})).await;
    let id = created["data"]["createWebhook"]["webhook"]["id"].clone();
    let answer = graphql(
        &app,
        &key,
        UPDATE,
        json!({"id": id, "input": {"rateLimitPerSecond": -4}}),
    )
    .await;
    assert_eq!(field_error(&answer), refused);
    // A string is not an Int: GraphQL itself refuses the variable.
    let answer = graphql(
        &app,
        &key,
        UPDATE,
        json!({"id": id, "input": {"rateLimitPerSecond": "3"}}),
    )
    .await;
    assert!(
        answer["errors"].as_array().is_some_and(|e| !e.is_empty()),
        "{answer}"
    );
    let read = graphql(&app, &key, READ, json!({"id": id})).await;
    assert_eq!(read["data"]["webhook"]["rateLimitPerSecond"], 3);
}

const LIMIT: usize = 20;

/// The most of `times` in any one-second window [t, t + 1 s), whatever t.
pub fn most_in_any_second(times: &[Instant]) -> usize {
    let mut times = times.to_vec();
    times.sort_unstable();
    let mut start = 0;
    let mut most = 0;
    for (end, t) in times.iter().enumerate() {
        while t.duration_since(times[start]) >= Duration::from_secs(1) {
            start += 1;
        }
        most = most.max(end + 1 - start);
    }
    most
}

/// 500 deliveries queued at once to a webhook limited to 20 a second, drained by two
/// consumers: the receiver never counts more than 20 in any sliding second, and every delivery
/// succeeds at its first attempt (a held delivery is neither failed nor tried).
async fn a_limited_webhook_never_sees_more_than_its_limit_in_any_second(backend: Backend) {
    // moto runs one DynamoDB request at a time and reads a tenant's whole partition for each
    // delivery it reads: on two shared cores it drains a few deliveries a second, under the
    // limit, so fewer there; the bound itself is the store's (conformance::send_slots).
    let count = match backend {
        Backend::Sqlite => 500,
        Backend::DynamoDb => 100,
    };
    let app = TestApp::new(backend).await;
    let (tenant, key) = app.tenant_with(Role::Admin).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (status, created) = app
        .post(
            "/api/webhooks",
            &key,
            &json!({"url": receiver.url, "events": ["*"], "rateLimitPerSecond": LIMIT}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let webhook_id: Uuid = created["id"].as_str().unwrap().parse().unwrap();

    let store = &app.deps.store;
    let now = app.deps.clock.now();
    let deliveries: Vec<Delivery> = (0..count)
        .map(|_| {
            let event_id = Uuid::now_v7();
            let body = common::domain::delivery::payload(event_id, "lead.created", &json!({}), now)
                .unwrap();
            Delivery::new(tenant, webhook_id, event_id, "lead.created", body, now)
        })
        .collect();
    for delivery in &deliveries {
        store.put_payload(&delivery.event_payload()).await.unwrap();
    }
    store.create_deliveries(&deliveries).await.unwrap();
    let messages: Vec<(QueueMessage, Duration)> = deliveries
        .iter()
        .map(|d| {
            let message = DeliveryMessage {
                tenant_id: tenant,
                delivery_id: d.id,
                webhook_id: Some(webhook_id),
                retry: false,
                resend_of: None,
                send_slot: None,
            };
            (QueueMessage::Delivery(message), Duration::ZERO)
        })
        .collect();
    app.deps.queue.send(&messages).await.unwrap();

    let started = Instant::now();
    let workers = [app.start_worker(), app.start_worker()];
    let within = match backend {
        Backend::Sqlite => Duration::from_secs(40),
        Backend::DynamoDb => Duration::from_secs(90),
    };
    while receiver.seen().len() < count {
        assert!(
            started.elapsed() < within,
            "{backend:?}: {} of {count} deliveries at the receiver after {within:?}",
            receiver.seen().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for worker in workers {
        worker.stop().await;
    }
    let seen: Vec<Instant> = receiver.seen().iter().map(|s| s.at).collect();
    let first = *seen.iter().min().unwrap();
    let last = *seen.iter().max().unwrap();
    let most = most_in_any_second(&seen);
    let rate = (seen.len() - 1) as f64 / (last - first).as_secs_f64();
    println!(
        "{backend:?}: {} deliveries in {:.1} s after the first ({:.1} s in all), {rate:.2}/s \
         under a limit of {LIMIT}/s ({:.1} %), at most {most} in any second",
        seen.len(),
        (last - first).as_secs_f64(),
        started.elapsed().as_secs_f64(),
        100.0 * rate / LIMIT as f64,
    );
    assert_eq!(seen.len(), count, "each delivery sent once");
    assert!(most <= LIMIT, "{most} requests in one second");
    for delivery in &deliveries {
        let stored = store
            .get_delivery(tenant, delivery.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.status, DeliveryStatus::Success, "{}", delivery.id);
        assert_eq!(stored.attempt_count, 1, "{}", delivery.id);
    }
}
