//! Webhook delivery end to end through the `crm-local` binary, on both stores: over SQLite, and
//! over DynamoDB and SQS on the emulator, as the README tells a developer to run it. The API is
//! called over HTTP, deliveries reach a real receiver on 127.0.0.1 that checks both signatures
//! with its own code, and the process is killed and restarted over the same store.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::crm_local::{CrmLocal, LocalStore};
use crate::receiver::{Receiver, Reply, Seen};
use crate::support::Backend;

crate::on_both_stores!(
    the_start_up_lines_say_where_the_data_and_the_key_are,
    a_notify_is_delivered_signed_to_the_receiver,
    notifies_after_a_long_idle_wait_are_delivered,
    a_failing_receiver_is_retried_on_schedule_until_the_delivery_fails,
    the_retry_endpoint_brings_a_failed_delivery_to_success,
    deliveries_accepted_before_a_kill_9_all_arrive_after_the_restart,
);

/// Bounds, not expectations (a delivery takes about a second): moto serves every test's
/// DynamoDB requests one at a time, and under the whole suite's load a first attempt has been
/// seen to start 8 s after its notify.
const WAIT: Duration = Duration::from_secs(30);
/// After a kill -9, an attempt the crash interrupted waits for its lease (the webhook's timeout
/// plus 15 s) before the sweeper takes it again.
const RECOVERY: Duration = Duration::from_secs(60);

/// How long the idle consumer waits before work comes.
const IDLE: Duration = Duration::from_secs(14);

/// Seconds before each retry (the last repeats), instead of minutes.
const RETRY_DELAYS: &str = "1";

/// A crm-local over a fresh store, with the dev tenant's key chosen by the test.
struct Local {
    store: LocalStore,
    key: String,
    env: Vec<(&'static str, String)>,
}

impl Local {
    fn new(backend: Backend, env: &[(&'static str, &str)]) -> Local {
        // Exact delays, so that a test can time them.
        let mut all = vec![
            ("WEBHOOK_RETRY_DELAYS", RETRY_DELAYS.to_owned()),
            ("WEBHOOK_RETRY_JITTER", "0".to_owned()),
        ];
        all.extend(env.iter().map(|(k, v)| (*k, (*v).to_owned())));
        Local {
            store: LocalStore::new(backend),
            key: format!("crm_e2e_{}", uuid::Uuid::new_v4().simple()),
            env: all,
        }
    }

    /// Starts (or starts again) crm-local over this store.
    async fn start(&self) -> CrmLocal {
        let mut env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.push(("CRM_DEV_API_KEY", &self.key));
        self.store.start(&env).await
    }
}

/// Registers a webhook for every event at `receiver`, and tells the receiver its secret.
async fn webhook(local: &CrmLocal, key: &str, receiver: &Receiver, extra: Value) -> String {
    let mut body = json!({"url": receiver.url, "events": ["*"], "timeoutMs": 2000});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (status, created) = local.post("/api/webhooks", key, &body).await;
    assert_eq!(status, 201, "{created}");
    receiver.expect_secrets(&[created["secret"].as_str().unwrap()]);
    created["id"].as_str().unwrap().to_owned()
}

/// Sends `event` with `data`; returns the ids of its deliveries.
async fn notify(local: &CrmLocal, key: &str, event: &str, data: Value) -> Vec<String> {
    let body = json!({"event": event, "data": data});
    let (status, reply) = local.post("/api/webhooks/notify", key, &body).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["success"], true, "{reply}");
    reply["deliveryIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect()
}

/// Polls the delivery until it is in `status`, for at most `within`; returns it.
async fn delivery_in(
    local: &CrmLocal,
    key: &str,
    id: &str,
    status: &str,
    within: Duration,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (code, delivery) = local
            .get(&format!("/api/webhooks/deliveries/{id}"), key)
            .await;
        assert_eq!(code, 200, "{delivery}");
        if delivery["status"] == status {
            return delivery;
        }
        assert!(
            Instant::now() < deadline,
            "delivery {id} was not {status} after {within:?}; it is: {delivery:#}\n\
             crm-local's last lines:\n{}",
            local.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn delivered(seen: &Seen, id: &str) -> bool {
    seen.header("x-webhook-delivery") == Some(id)
}

async fn the_start_up_lines_say_where_the_data_and_the_key_are(backend: Backend) {
    let local = Local::new(backend, &[]);
    let running = local.start().await;
    let banner = running.banner.join("\n");
    let wanted: Vec<String> = match backend {
        Backend::Sqlite => {
            let dir = local.store.data_dir().unwrap();
            vec![dir.join("crm.sqlite3").display().to_string()]
        }
        Backend::DynamoDb => ["CRM_TABLE", "CRM_QUEUE_URL"]
            .iter()
            .map(|name| local.store.setting(name).unwrap().to_owned())
            .chain(std::env::var("AWS_ENDPOINT_URL"))
            .collect(),
    };
    for text in wanted.iter().chain([&local.key, &running.base]) {
        assert!(
            banner.contains(text.as_str()),
            "{text} missing from:\n{banner}"
        );
    }
    assert!(
        !banner.contains("Sqlite {") && !banner.contains("Aws {"),
        "no Debug output:\n{banner}"
    );
}

async fn a_notify_is_delivered_signed_to_the_receiver(backend: Backend) {
    let local = Local::new(backend, &[]);
    let running = local.start().await;
    let key = &local.key;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let webhook_id = webhook(&running, key, &receiver, json!({})).await;

    let data = json!({"leadId": "L-1", "name": "Ada"});
    let ids = notify(&running, key, "lead.created", data.clone()).await;
    assert_eq!(ids.len(), 1, "one subscribed webhook, one delivery");
    let delivery = delivery_in(&running, key, &ids[0], "SUCCESS", WAIT).await;

    let seen = receiver.seen();
    assert_eq!(seen.len(), 1, "delivered once");
    let request = &seen[0];
    assert!(
        request.seed_signature_ok,
        "X-Webhook-Signature is the hex HMAC-SHA256 of the body keyed with the secret"
    );
    assert!(
        request.standard_signature_ok,
        "webhook-signature verifies as Standard Webhooks"
    );
    assert!(delivered(request, &ids[0]), "X-Webhook-Delivery names it");
    assert_eq!(request.header("x-webhook-event"), Some("lead.created"));
    let payload: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(payload["event"], "lead.created");
    assert_eq!(payload["data"], data);
    assert_eq!(payload["id"].as_str(), request.header("webhook-id"));

    assert_eq!(delivery["webhookId"], webhook_id.as_str());
    assert_eq!(delivery["attemptCount"], 1);
    assert_eq!(delivery["lastStatusCode"], 200);
}

/// The queue consumer waits for work in long polls of up to 20 s. An SQS long poll that the
/// AWS SDK takes for a stalled upload (its grace period is 5 s) is given up by the client while
/// the server still holds it, and a message that this abandoned poll takes is seen by no one:
/// notifies stayed PENDING. So the consumer first waits with nothing to do, longer than that
/// grace period twice over, then gets work.
async fn notifies_after_a_long_idle_wait_are_delivered(backend: Backend) {
    let local = Local::new(backend, &[]);
    let running = local.start().await;
    let key = &local.key;
    let receiver = Receiver::start(Reply::Status(200)).await;
    webhook(&running, key, &receiver, json!({})).await;
    tokio::time::sleep(IDLE).await;

    let mut ids = Vec::new();
    for n in 0..3 {
        ids.extend(notify(&running, key, "lead.created", json!({"n": n})).await);
    }
    for id in &ids {
        delivery_in(&running, key, id, "SUCCESS", WAIT).await;
    }
    for id in &ids {
        assert!(receiver.seen().iter().any(|r| delivered(r, id)));
    }
}

async fn a_failing_receiver_is_retried_on_schedule_until_the_delivery_fails(backend: Backend) {
    let local = Local::new(backend, &[]);
    let running = local.start().await;
    let key = &local.key;
    let receiver = Receiver::start(Reply::Status(500)).await;
    webhook(&running, key, &receiver, json!({"maxRetries": 2})).await;

    let ids = notify(&running, key, "account.updated", json!({"accountId": 7})).await;
    let failed = delivery_in(&running, key, &ids[0], "FAILED", WAIT).await;

    let seen = receiver.seen();
    assert_eq!(seen.len(), 3, "the first attempt and 2 retries");
    let retries: Vec<Option<&str>> = seen.iter().map(|r| r.header("x-webhook-retry")).collect();
    assert_eq!(retries, [None, Some("1"), Some("2")]);
    assert!(seen.iter().all(|r| delivered(r, &ids[0])));
    assert!(
        seen.iter()
            .all(|r| r.header("webhook-id") == seen[0].header("webhook-id")),
        "webhook-id is the same on every attempt"
    );
    assert!(seen
        .iter()
        .all(|r| r.seed_signature_ok && r.standard_signature_ok));
    for pair in seen.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(
            gap >= Duration::from_millis(950),
            "a retry came {gap:?} after the attempt before it; WEBHOOK_RETRY_DELAYS={RETRY_DELAYS}"
        );
    }
    assert_eq!(failed["attemptCount"], 3);
    assert_eq!(failed["lastStatusCode"], 500);
    assert_eq!(failed["nextAttemptAt"], Value::Null);
}

async fn the_retry_endpoint_brings_a_failed_delivery_to_success(backend: Backend) {
    let local = Local::new(backend, &[]);
    let running = local.start().await;
    let key = &local.key;
    let receiver = Receiver::start(Reply::Status(500)).await;
    let webhook_id = webhook(&running, key, &receiver, json!({"maxRetries": 0})).await;
    let ids = notify(&running, key, "contact.created", json!({"contactId": 1})).await;
    delivery_in(&running, key, &ids[0], "FAILED", WAIT).await;

    receiver.answer_from_now(Reply::Status(200));
    let (status, reply) = running
        .post(
            "/api/webhooks/retry",
            key,
            &json!({"webhookId": webhook_id}),
        )
        .await;
    assert!((200..300).contains(&status), "{status}: {reply}");
    let done = delivery_in(&running, key, &ids[0], "SUCCESS", WAIT).await;

    assert_eq!(done["attemptCount"], 2);
    let seen = receiver.seen();
    assert_eq!(seen.len(), 2);
    let retry = &seen[1];
    assert!(delivered(retry, &ids[0]));
    assert_eq!(retry.answered, Reply::Status(200));
    assert_eq!(retry.header("x-webhook-retry"), Some("1"));
    assert!(retry.seed_signature_ok && retry.standard_signature_ok);
}

async fn deliveries_accepted_before_a_kill_9_all_arrive_after_the_restart(backend: Backend) {
    // Retries far enough apart that no attempt is in flight at the kill, and a sweeper that
    // comes every second, as the one that recovers what a crash left behind.
    let local = Local::new(
        backend,
        &[
            ("WEBHOOK_RETRY_DELAYS", "3"),
            ("CRM_SWEEP_INTERVAL_SECONDS", "1"),
            ("WEBHOOK_SWEEP_GRACE_SECONDS", "1"),
        ],
    );
    let key = &local.key;
    let first = local.start().await;
    let receiver = Receiver::start(Reply::Status(500)).await;
    webhook(&first, key, &receiver, json!({"maxRetries": 10})).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.extend(notify(&first, key, "lead.created", json!({"n": n})).await);
    }
    // Each has been tried once, has failed, and waits for its retry.
    for id in &ids {
        delivery_in(&first, key, id, "RETRYING", WAIT).await;
    }
    first.kill_9();

    receiver.answer_from_now(Reply::Status(200));
    let restarted_at = Instant::now();
    let second = local.start().await;
    for id in &ids {
        delivery_in(&second, key, id, "SUCCESS", RECOVERY).await;
    }
    let seen = receiver.seen();
    for id in &ids {
        let arrived = seen
            .iter()
            .filter(|r| delivered(r, id) && r.answered == Reply::Status(200))
            .collect::<Vec<_>>();
        assert!(!arrived.is_empty(), "{id} never arrived");
        assert!(arrived.iter().all(|r| r.at >= restarted_at));
        assert!(arrived
            .iter()
            .all(|r| r.seed_signature_ok && r.standard_signature_ok));
    }
}
