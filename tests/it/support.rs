//! Backends, tenants and an HTTP caller shared by the test modules.

use std::collections::HashMap;
use std::sync::Arc;

use common::adapters::dynamodb::tables::{create_table, main_table};
use common::adapters::dynamodb::DynamoStore;
use common::adapters::http_sender::HttpSender;
use common::adapters::main_key::{MainKey, MainKeyWrapper};
use common::adapters::sqlite::SqliteStore;
use common::adapters::sqs::{create_queues, SqsQueue};
use common::config::aws_clients;
use common::domain::auth::{generate_key, ApiKey, Role};
use common::domain::delivery::{Jitter, RetrySchedule};
use common::domain::tenant::Tenant;
use common::domain::webhook::{NewWebhook, TargetPolicy, Webhook};
use common::http::{handle, routes::ROUTES};
use common::local::run_worker;
use common::ports::{Clock, Queue, Store, SystemClock};
use common::service::deps::{DeliverySettings, Deps};
use common::service::secrets::SecretKeeper;
use lambda_http::http::{Method, Request as HttpRequest, StatusCode};
use lambda_http::{Body, Response};
use serde_json::Value;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// The store under test. Every conformance-style test runs once per backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    DynamoDb,
}

/// Generates one `#[tokio::test]` per backend for each named `async fn(Backend)`.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Sqlite).await
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::DynamoDb).await
                }
            )*
        }
    };
}

/// A fresh, empty store and queue: a new SQLite file, or a new DynamoDB table and SQS queue on
/// the emulator.
pub struct TestStore {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn Queue>,
    /// On DynamoDB: the client and the table, for tests that look at the items themselves.
    pub dynamodb: Option<(aws_sdk_dynamodb::Client, String)>,
    /// The sealing of plain secrets (not part of `Store`: an operator's migration).
    pub migration: Arc<dyn common::ports::PlainSecretMigration>,
    _dir: Option<tempfile::TempDir>,
}

impl TestStore {
    /// The SQLite store's file, for tests that look at its rows themselves.
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        let dir = self._dir.as_ref()?;
        Some(dir.path().join(common::adapters::sqlite::DB_FILE))
    }
}

/// The main key of the tests' stores, as crm-local's `CRM_MASTER_KEY` would give it.
pub const TEST_MAIN_KEY: &str = "dGhlIHRlc3RzJyBtYWluIGtleTogMzIgYnl0ZXMhISE=";

pub fn test_main_key() -> MainKey {
    MainKey::parse(TEST_MAIN_KEY).unwrap()
}

/// Seals and opens webhook secrets in `store` under `key`, as crm-local does.
pub fn main_key_keeper(store: &Arc<dyn Store>, key: &MainKey) -> SecretKeeper {
    SecretKeeper::new(
        Arc::new(MainKeyWrapper::new(key).unwrap()),
        Arc::clone(store) as Arc<dyn common::ports::SecretStore>,
    )
}

/// The visibility timeout of test queues: a message not deleted shows again this soon.
pub const TEST_VISIBILITY: Duration = Duration::from_secs(5);

pub async fn fresh_store(backend: Backend) -> TestStore {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = Arc::new(SqliteStore::open(dir.path()).expect("open SQLite store"));
            let queue = store.queue(TEST_VISIBILITY);
            TestStore {
                migration: Arc::clone(&store) as _,
                store,
                queue: Arc::new(queue),
                dynamodb: None,
                _dir: Some(dir),
            }
        }
        Backend::DynamoDb => fresh_dynamodb(aws_clients().await.0).await,
    }
}

/// A new table and queue on the emulator, the store reaching DynamoDB through `client` (which
/// may stand between the SDK and the emulator, as `conflicts` does).
pub async fn fresh_dynamodb(client: aws_sdk_dynamodb::Client) -> TestStore {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "DynamoDB tests need a local emulator: run scripts/test.sh, which starts moto \
         and sets AWS_ENDPOINT_URL"
    );
    let (plain, sqs) = aws_clients().await;
    let name = format!("crm-test-{}", Uuid::new_v4());
    create_table(&plain, &name, &main_table())
        .await
        .expect("create the test table");
    let url = create_queues(&sqs, &name, TEST_VISIBILITY)
        .await
        .expect("create the test queue");
    let store = Arc::new(DynamoStore::new(client, name.clone()));
    TestStore {
        migration: Arc::clone(&store) as _,
        store,
        queue: Arc::new(SqsQueue::new(sqs, url)),
        dynamodb: Some((plain, name)),
        _dir: None,
    }
}

/// Delivery settings for tests: seconds, not minutes, and local targets allowed.
/// A webhook of `tenant` listening to every event, as the domain makes it, for tests that write
/// it to a store directly.
pub fn stored_webhook(tenant: Uuid) -> Webhook {
    let policy = TargetPolicy {
        allow_http: true,
        allow_private: true,
    };
    let new = NewWebhook {
        url: "https://example.com/hook".to_owned(),
        events: vec!["*".to_owned()],
        ..NewWebhook::default()
    };
    Webhook::create(tenant, new, policy, SystemClock.now()).unwrap()
}

pub fn test_settings() -> DeliverySettings {
    DeliverySettings {
        retry_schedule: RetrySchedule::parse("1,2,2").unwrap(),
        // Exact delays, for tests that time retries; `delivery::retry_schedules` tries jitter.
        retry_jitter: Jitter::NONE,
        targets: TargetPolicy {
            allow_http: true,
            allow_private: true,
        },
        sweep_grace: Duration::from_secs(2),
        ..DeliverySettings::default()
    }
}

/// A running service over a fresh store, with helpers to make tenants and call routes.
pub struct TestApp {
    pub deps: Deps,
    _store: TestStore,
}

impl TestApp {
    pub async fn new(backend: Backend) -> TestApp {
        TestApp::with_settings(backend, test_settings()).await
    }

    pub async fn with_settings(backend: Backend, settings: DeliverySettings) -> TestApp {
        TestApp::over(fresh_store(backend).await, settings)
    }

    /// A service over a store made by the caller.
    pub fn over(store: TestStore, settings: DeliverySettings) -> TestApp {
        let targets = settings.targets;
        let sender = HttpSender::new(targets.allow_http, targets.allow_private).unwrap();
        let secrets = main_key_keeper(&store.store, &test_main_key());
        TestApp {
            deps: Deps::new(
                Arc::clone(&store.store),
                Arc::clone(&store.queue),
                Arc::new(sender),
                settings,
            )
            .with_secrets(secrets),
            _store: store,
        }
    }

    /// The same service, sealing and opening webhook secrets with `secrets` instead.
    pub fn with_secrets(self, secrets: SecretKeeper) -> TestApp {
        TestApp {
            deps: self.deps.with_secrets(secrets),
            _store: self._store,
        }
    }

    /// Runs the queue consumer (crm-local's, the worker Lambda's logic) until the guard drops.
    pub fn start_worker(&self) -> Running {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run_worker(self.deps.clone(), stopped));
        Running {
            stop,
            task: Some(task),
        }
    }

    /// A new tenant with a key of the given role; returns (tenant id, key).
    pub async fn tenant_with(&self, role: Role) -> (Uuid, String) {
        let now = self.deps.clock.now();
        let tenant = Tenant::new(format!("tenant-{}", Uuid::new_v4()), now);
        let key = generate_key();
        let stored = ApiKey::new(tenant.id, "test".into(), role, &key, now);
        self.deps
            .store
            .create_tenant(&tenant, &stored, None)
            .await
            .expect("create tenant");
        (tenant.id, key)
    }

    /// Another key of `role` for an existing tenant.
    pub async fn key_for(&self, tenant_id: Uuid, role: Role) -> String {
        let key = generate_key();
        let stored = ApiKey::new(tenant_id, "test".into(), role, &key, self.deps.clock.now());
        self.deps
            .store
            .put_api_key(&stored, None)
            .await
            .expect("put key");
        key
    }

    /// Calls the route table the way API Gateway and crm-local do; returns status and JSON body
    /// (`Value::Null` for an empty body). A body goes as `application/json`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let content_type = body.map(|_| "application/json");
        self.call_as(method, path, key, content_type, body).await
    }

    /// `call` with the `Content-Type` given (`None`: no such header).
    pub async fn call_as(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        content_type: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let response = self.respond(method, path, key, content_type, body).await;
        let status = response.status();
        let bytes = response.body().to_vec();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("every response body is JSON")
        };
        (status, json)
    }

    /// The whole response, headers included, to a request built as `call_as` builds it.
    pub async fn respond(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        content_type: Option<&str>,
        body: Option<&str>,
    ) -> Response<Body> {
        let mut builder = HttpRequest::builder().method(method).uri(path);
        if let Some(key) = key {
            builder = builder.header("authorization", format!("Bearer {key}"));
        }
        if let Some(content_type) = content_type {
            builder = builder.header("content-type", content_type);
        }
        let body = body.map_or(Body::Empty, |text| Body::Text(text.to_owned()));
        let request = builder.body(body).expect("request");
        handle(&self.deps, ROUTES, request).await
    }

    pub async fn get(&self, path: &str, key: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(key), None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: &Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(key), Some(&body.to_string()))
            .await
    }

    pub async fn patch(&self, path: &str, key: &str, body: &Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(key), Some(&body.to_string()))
            .await
    }

    pub async fn delete(&self, path: &str, key: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, Some(key), None).await
    }

    /// Creates a client over the API and returns its id.
    pub async fn create_client(&self, key: &str, name: &str) -> Uuid {
        let (status, body) = self
            .post("/api/clients", key, &serde_json::json!({"name": name}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .expect("client id")
    }
}

/// A background task that stops when dropped.
pub struct Running {
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    pub async fn stop(mut self) {
        self.stop.send(true).ok();
        if let Some(task) = self.task.take() {
            task.await.ok();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.send(true).ok();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asserts the error envelope: `{success:false, error:<sentence>}` and the status.
pub fn assert_error(status: StatusCode, body: &Value, expected: StatusCode) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["success"], Value::Bool(false), "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "error sentence missing: {body}"
    );
}

/// One SQS record of a Lambda event, as the event source mapping hands a message to the worker.
pub fn sqs_record(message_id: &str, body: String) -> aws_lambda_events::event::sqs::SqsMessage {
    let mut record = aws_lambda_events::event::sqs::SqsMessage::default();
    record.message_id = Some(message_id.to_owned());
    record.body = Some(body);
    record
}

/// Reads each of `clients` and the tenant's sync status, and asserts that the counters equal a
/// recount of the clients' statuses (`clients` being all the tenant's): each client's status,
/// and the sync status read.
pub async fn assert_counters_recount(
    app: &TestApp,
    key: &str,
    clients: &[Uuid],
) -> (HashMap<Uuid, String>, Value) {
    let mut statuses = HashMap::new();
    let mut recount: HashMap<String, u64> = HashMap::new();
    for client in clients {
        let (code, body) = app.get(&format!("/api/clients/{client}"), key).await;
        assert_eq!(code, StatusCode::OK, "{body}");
        let status = body["syncStatus"].as_str().unwrap().to_owned();
        *recount.entry(status.clone()).or_default() += 1;
        statuses.insert(*client, status);
    }
    let (code, counts) = app.get("/api/crm/sync-status", key).await;
    assert_eq!(code, StatusCode::OK, "{counts}");
    let count = |status: &str| recount.get(status).copied().unwrap_or(0);
    assert_eq!(counts["totalClients"], clients.len() as u64, "{counts}");
    for (field, status) in [
        ("syncedClients", "SYNCED"),
        ("failedClients", "FAILED"),
        ("pendingClients", "PENDING"),
        ("needsUpdateClients", "NEEDS_UPDATE"),
    ] {
        assert_eq!(counts[field], count(status), "{field}: {counts}");
    }
    (statuses, counts)
}
