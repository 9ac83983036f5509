//! Writes refused because they collided with a concurrent transaction. Real DynamoDB refuses a
//! transaction that touches an item another transaction is writing (two deliveries to one
//! webhook share its counter item), and a single-item write to such an item; moto serialises
//! every request and never does. Here an HTTP client between the SDK and moto refuses every
//! distinct write once, before it reaches moto, with the error DynamoDB sends, and lets the
//! same write through when it comes again: every transaction the service runs meets a
//! conflict. Nothing may be lost for it: no delivery missing, no attempt unrecorded, no
//! receiver called twice for one attempt, no counter moved twice.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode as SdkStatus;
use aws_smithy_types::body::SdkBody;
use common::adapters::sdk_config::shared_config;
use common::adapters::sdk_http::SdkHttpClient;
use common::domain::auth::Role;
use common::domain::delivery::DeliveryStatus;
use common::service::deps::{DeliverySettings, TenantLimits};
use lambda_http::http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::delivery::Setup;
use crate::limits::SteppedClock;
use crate::receiver::{Receiver, Reply};
use crate::support::{eventually, fresh_dynamodb, test_settings, TestApp};

const WAIT: Duration = Duration::from_secs(60);

/// The writes refused so far, by operation and by the error sent.
#[derive(Debug, Default)]
struct Refusals {
    seen: Mutex<HashSet<u64>>,
    counts: Mutex<BTreeMap<String, usize>>,
    /// While set, every TransactWriteItems fails with a 500, as on an outage: a fan-out stops
    /// before its deliveries are written, as if its process died there.
    failing_transactions: std::sync::atomic::AtomicBool,
}

impl Refusals {
    fn count(&self, what: &str) -> usize {
        self.counts.lock().unwrap().get(what).copied().unwrap_or(0)
    }

    fn table(&self) -> String {
        self.counts
            .lock()
            .unwrap()
            .iter()
            .map(|(what, n)| format!("  {what:<58} {n:>5}\n"))
            .collect()
    }

    /// DynamoDB's refusal of this request if it is a write not refused before: a transaction
    /// is cancelled on a conflict or found still in progress (in turn), a single-item write
    /// meets a transaction on its item.
    fn refusal_for(&self, request: &HttpRequest) -> Option<HttpResponse> {
        let operation = request
            .headers()
            .get("x-amz-target")?
            .strip_prefix("DynamoDB_20120810.")?
            .to_owned();
        if operation == "TransactWriteItems"
            && self
                .failing_transactions
                .load(std::sync::atomic::Ordering::SeqCst)
        {
            let error = json!({
                "__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
                "message": "Internal server error",
            });
            return Some(error_response(500, &error));
        }
        if !matches!(
            operation.as_str(),
            "TransactWriteItems" | "UpdateItem" | "PutItem"
        ) {
            return None;
        }
        let mut body: Value = serde_json::from_slice(request.body().bytes()?).ok()?;
        // A resend after a refusal carries a new idempotency token: the same write all the same.
        body.as_object_mut()?.remove("ClientRequestToken");
        let mut hasher = DefaultHasher::new();
        body.to_string().hash(&mut hasher);
        if !self.seen.lock().unwrap().insert(hasher.finish()) {
            return None;
        }
        let (what, error) = if operation == "TransactWriteItems" {
            let actions = body["TransactItems"].as_array().map_or(1, Vec::len);
            let refused = self.count("TransactWriteItems: cancelled, TransactionConflict")
                + self.count("TransactWriteItems: TransactionInProgressException");
            if refused.is_multiple_of(2) {
                // The last action collides: a counter update when there is one.
                (
                    "TransactWriteItems: cancelled, TransactionConflict",
                    transaction_cancelled(actions, |index| index + 1 == actions),
                )
            } else {
                (
                    "TransactWriteItems: TransactionInProgressException",
                    json!({
                        "__type": "com.amazonaws.dynamodb.v20120810#TransactionInProgressException",
                        "Message": "The transaction with the given request token is already in progress.",
                    }),
                )
            }
        } else if operation == "UpdateItem" {
            (
                "UpdateItem: TransactionConflictException",
                conflict_exception(),
            )
        } else {
            (
                "PutItem: TransactionConflictException",
                conflict_exception(),
            )
        };
        *self
            .counts
            .lock()
            .unwrap()
            .entry(what.to_owned())
            .or_default() += 1;
        Some(error_response(400, &error))
    }
}

/// An answer of DynamoDB's: `error` as its JSON body (also `contention`'s refusals).
pub(crate) fn error_response(status: u16, error: &Value) -> HttpResponse {
    let mut response = HttpResponse::new(
        SdkStatus::try_from(status).unwrap(),
        SdkBody::from(error.to_string()),
    );
    response
        .headers_mut()
        .insert("content-type", "application/x-amz-json-1.0");
    response
}

/// DynamoDB's cancellation of a transaction of `actions` actions, the `collides` ones colliding
/// with another transaction on their items.
pub(crate) fn transaction_cancelled(actions: usize, collides: impl Fn(usize) -> bool) -> Value {
    let reasons: Vec<Value> = (0..actions)
        .map(|index| {
            if collides(index) {
                json!({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"})
            } else {
                json!({"Code": "None"})
            }
        })
        .collect();
    json!({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons",
        "CancellationReasons": reasons,
    })
}

/// DynamoDB's refusal of a single-item write to an item a transaction is writing.
pub(crate) fn conflict_exception() -> Value {
    json!({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionConflictException",
        "message": "Transaction is ongoing for the item",
    })
}

/// The service's own SDK HTTP client, with `Refusals` in front of it.
#[derive(Debug)]
struct Refusing {
    inner: SdkHttpClient,
    refusals: Arc<Refusals>,
}

impl HttpClient for Refusing {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(RefusingConnector {
            inner: self.inner.http_connector(settings, components),
            refusals: Arc::clone(&self.refusals),
        })
    }
}

#[derive(Debug)]
struct RefusingConnector {
    inner: SharedHttpConnector,
    refusals: Arc<Refusals>,
}

impl HttpConnector for RefusingConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        match self.refusals.refusal_for(&request) {
            Some(response) => HttpConnectorFuture::ready(Ok(response)),
            None => self.inner.call(request),
        }
    }
}

/// A service on moto whose every DynamoDB write is refused once.
async fn refused_once(refusals: &Arc<Refusals>) -> Setup {
    refused_once_with(refusals, test_settings()).await
}

async fn refused_once_with(refusals: &Arc<Refusals>, settings: DeliverySettings) -> Setup {
    let config = shared_config()
        .await
        .to_builder()
        .http_client(SharedHttpClient::new(Refusing {
            inner: SdkHttpClient::default(),
            refusals: Arc::clone(refusals),
        }))
        .build();
    let store = fresh_dynamodb(aws_sdk_dynamodb::Client::new(&config)).await;
    let app = TestApp::over(store, settings);
    let (tenant, key) = app.tenant_with(Role::Admin).await;
    Setup { app, key, tenant }
}

async fn delivery(s: &Setup, id: Uuid) -> Value {
    let (status, body) = s
        .app
        .get(&format!("/api/webhooks/deliveries/{id}"), &s.key)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Waits until every delivery is SUCCESS or FAILED; returns them by id.
async fn settled(s: &Setup, ids: &[Uuid]) -> HashMap<Uuid, Value> {
    eventually(WAIT, "every delivery to settle", || async {
        let mut all = HashMap::new();
        for id in ids {
            let body = delivery(s, *id).await;
            if body["status"] != "SUCCESS" && body["status"] != "FAILED" {
                return None;
            }
            all.insert(*id, body);
        }
        Some(all)
    })
    .await
}

/// How many requests each delivery id brought to the receivers.
fn sends(receivers: &[&Receiver]) -> HashMap<Uuid, usize> {
    let mut sends = HashMap::new();
    for receiver in receivers {
        for seen in receiver.seen() {
            let id = seen.header("x-webhook-delivery").unwrap().parse().unwrap();
            *sends.entry(id).or_default() += 1;
        }
    }
    sends
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_refused_once_by_a_conflict_loses_nothing() {
    let refusals = Arc::new(Refusals::default());
    let s = refused_once(&refusals).await;
    let second_key = s.app.key_for(s.tenant, Role::Manager).await;

    let ok = Receiver::start(Reply::Status(200)).await;
    let flaky = Receiver::start(Reply::Status(200)).await;
    let down = Receiver::start(Reply::Status(503)).await;
    let (ok_id, _) = s.webhook(&ok, json!({})).await;
    let (flaky_id, _) = s.webhook(&flaky, json!({})).await;
    flaky.script([Reply::Status(500)]);
    let (down_id, _) = s.webhook(&down, json!({"maxRetries": 0})).await;
    let (status, body) = s
        .app
        .patch(
            &format!("/api/webhooks/{flaky_id}"),
            &s.key,
            &json!({"description": "answers 500 once"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let worker = s.app.start_worker();
    // Client writes: their events fan out from the outbox.
    let client = s.app.create_client(&second_key, "Ada").await;
    let (status, body) = s
        .app
        .post(
            "/api/crm/update-sync-status",
            &s.key,
            &json!({"clientId": client, "status": "SYNCED"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Notifies at once, each to the three webhooks, so that their transactions overlap.
    let bodies: Vec<Value> = (0..12)
        .map(|n| json!({"event": "lead.created", "data": {"n": n}}))
        .collect();
    let notifies = bodies
        .iter()
        .map(|body| s.app.post("/api/webhooks/notify", &s.key, body));
    let mut ids = Vec::new();
    for (status, body) in futures::future::join_all(notifies).await {
        assert_eq!(status, StatusCode::OK, "{body}");
        ids.extend(
            body["deliveryIds"]
                .as_array()
                .unwrap()
                .iter()
                .map(|id| id.as_str().unwrap().parse::<Uuid>().unwrap()),
        );
    }
    assert_eq!(ids.len(), 36, "three deliveries per notify");
    // The client events' deliveries too (two events at least, to each webhook).
    let webhooks = [ok_id, flaky_id, down_id];
    let listed = eventually(WAIT, "the client events' deliveries", || async {
        let mut listed = Vec::new();
        for webhook in &webhooks {
            let (_, page) = s
                .app
                .get(
                    &format!("/api/webhooks/{webhook}/deliveries?limit=100"),
                    &s.key,
                )
                .await;
            listed.extend(
                page["items"]
                    .as_array()?
                    .iter()
                    .map(|d| d["id"].as_str().unwrap().parse::<Uuid>().unwrap()),
            );
        }
        (listed.len() >= 36 + 2 * 3).then_some(listed)
    })
    .await;
    for id in &ids {
        assert!(
            listed.contains(id),
            "delivery {id} that notify answered exists"
        );
    }

    // Every delivery settles, with its attempts recorded.
    let first = settled(&s, &listed).await;
    let mut failed = Vec::new();
    for (id, d) in &first {
        let attempts = d["attempts"].as_array().unwrap().len();
        assert_eq!(
            d["attemptCount"], attempts,
            "attempts of {id} recorded: {d}"
        );
        if d["webhookId"] == json!(down_id) {
            assert_eq!(d["status"], "FAILED", "{d}");
            failed.push(*id);
        } else {
            assert_eq!(d["status"], "SUCCESS", "{d}");
        }
    }
    // One send per recorded attempt: none went out twice because a write was refused.
    let sent = sends(&[&ok, &flaky, &down]);
    for (id, d) in &first {
        let attempts = d["attemptCount"].as_u64().unwrap() as usize;
        assert_eq!(sent.get(id), Some(&attempts), "{d}");
    }

    // A manual retry of the FAILED ones reopens each in a transaction, refused once too.
    down.answer_from_now(Reply::Status(200));
    let (status, body) = s
        .app
        .post(
            "/api/webhooks/retry",
            &s.key,
            &json!({"deliveryIds": failed}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["retriedCount"], failed.len());
    let retried = eventually(WAIT, "the retried deliveries to succeed", || async {
        let mut all = Vec::new();
        for id in &failed {
            let d = delivery(&s, *id).await;
            if d["status"] != "SUCCESS" {
                return None;
            }
            all.push(d);
        }
        Some(all)
    })
    .await;
    worker.stop().await;
    let sent = sends(&[&down]);
    for d in &retried {
        assert_eq!(d["attemptCount"], 2, "{d}");
        assert_eq!(d["attempts"].as_array().unwrap().len(), 2, "{d}");
        let id: Uuid = d["id"].as_str().unwrap().parse().unwrap();
        assert_eq!(sent.get(&id), Some(&2), "one send per attempt: {d}");
    }

    // The counters moved once per transition: they agree with the deliveries.
    let counts = s.app.deps.store.delivery_counts(s.tenant).await.unwrap();
    let total: i64 = counts.overall.0.values().sum();
    let succeeded = counts.overall.0.get(&DeliveryStatus::Success).copied();
    assert_eq!(total, listed.len() as i64, "{counts:?}");
    assert_eq!(succeeded, Some(total), "{counts:?}");

    // Keys: a transaction writes a key and its lookup, another deletes them.
    let (status, body) = s.app.get("/api/keys", &s.key).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let manager = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["role"] == "MANAGER")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = s.app.delete(&format!("/api/keys/{manager}"), &s.key).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = s.app.get("/api/clients", &second_key).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the deleted key is gone");

    println!(
        "writes refused once, as DynamoDB does on a conflict:\n{}",
        refusals.table()
    );
    for what in [
        "TransactWriteItems: cancelled, TransactionConflict",
        "TransactWriteItems: TransactionInProgressException",
        "UpdateItem: TransactionConflictException",
        "PutItem: TransactionConflictException",
    ] {
        assert!(refusals.count(what) > 0, "{what} was injected");
    }
}

/// Notify writes its event to the outbox first: a fan-out that stops part-way (here every
/// batch write fails) still answers the delivery ids, and the sweeper creates them later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notify_whose_fan_out_stops_part_way_is_finished_by_the_sweeper() {
    let refusals = Arc::new(Refusals::default());
    let s = refused_once(&refusals).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (first, _) = s.webhook(&receiver, json!({})).await;
    let (second, _) = s.webhook(&receiver, json!({})).await;

    refusals
        .failing_transactions
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let (status, body) = s
        .app
        .post(
            "/api/webhooks/notify",
            &s.key,
            &json!({"event": "lead.created", "data": {"n": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ids: Vec<Uuid> = body["deliveryIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    for id in &ids {
        let (status, _) = s
            .app
            .get(&format!("/api/webhooks/deliveries/{id}"), &s.key)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "not written yet");
    }

    // The outage ends; the sweeper, past its grace period, finishes the fan-out.
    refusals
        .failing_transactions
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let worker = s.app.start_worker();
    let report = eventually(WAIT, "a sweep to fan the event out", || async {
        let report = common::service::sweeper::sweep(&s.app.deps, None)
            .await
            .unwrap();
        (report.events_fanned_out == 1).then_some(report)
    })
    .await;
    assert_eq!(report.events_fanned_out, 1);
    let delivered = settled(&s, &ids).await;
    worker.stop().await;
    let mut webhooks: Vec<Value> = delivered
        .values()
        .map(|d| {
            assert_eq!(d["status"], "SUCCESS", "{d}");
            d["webhookId"].clone()
        })
        .collect();
    webhooks.sort_by_key(Value::to_string);
    let mut expected = vec![json!(first), json!(second)];
    expected.sort_by_key(Value::to_string);
    assert_eq!(webhooks, expected);
    let payload: Value = serde_json::from_slice(&receiver.seen()[0].body).unwrap();
    assert_eq!(payload["data"], json!({"n": 1}));
}

/// The tenant's webhook count moves in the transaction of each creation and deletion, and each
/// notify takes a place in its second's window with an UpdateItem: a conflict on any of them is
/// sent again, never answered as the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_counter_refused_by_a_conflict_is_sent_again_not_taken_for_the_limit() {
    let refusals = Arc::new(Refusals::default());
    let limits = TenantLimits {
        webhooks: 2,
        events_per_second: 2,
    };
    let settings = DeliverySettings {
        limits,
        ..test_settings()
    };
    let mut s = refused_once_with(&refusals, settings).await;
    s.app.deps.clock = SteppedClock::new();
    let create = |n: usize| json!({"url": format!("https://example.com/{n}"), "events": ["*"]});
    let mut ids = Vec::new();
    for n in 0..2 {
        let (status, created) = s.app.post("/api/webhooks", &s.key, &create(n)).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    let (status, body) = s.app.post("/api/webhooks", &s.key, &create(2)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = s
        .app
        .delete(&format!("/api/webhooks/{}", ids[0]), &s.key)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = s.app.post("/api/webhooks", &s.key, &create(2)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let event = json!({"event": "lead.created", "data": {}});
    for _ in 0..2 {
        let (status, body) = s.app.post("/api/webhooks/notify", &s.key, &event).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = s.app.post("/api/webhooks/notify", &s.key, &event).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");

    println!("writes refused once:\n{}", refusals.table());
    for what in [
        "TransactWriteItems: cancelled, TransactionConflict",
        "TransactWriteItems: TransactionInProgressException",
        "UpdateItem: TransactionConflictException",
    ] {
        assert!(refusals.count(what) > 0, "{what} was injected");
    }
}
