//! Backends, tenants and an HTTP caller shared by the test modules.

use std::sync::Arc;

use common::adapters::dynamodb::tables::{create_table, main_table};
use common::adapters::dynamodb::DynamoStore;
use common::adapters::sqlite::SqliteStore;
use common::config::dynamodb_client;
use common::deps::Deps;
use common::domain::auth::{generate_key, ApiKey, Role};
use common::domain::tenant::Tenant;
use common::http::{handle, routes::ROUTES};
use common::ports::Store;
use lambda_http::http::{Method, Request as HttpRequest, StatusCode};
use lambda_http::Body;
use serde_json::Value;
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

/// A fresh, empty store: a new SQLite file, or a new DynamoDB table on the emulator.
pub struct TestStore {
    pub store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

pub async fn fresh_store(backend: Backend) -> TestStore {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = SqliteStore::open(dir.path()).expect("open SQLite store");
            TestStore {
                store: Arc::new(store),
                _dir: Some(dir),
            }
        }
        Backend::DynamoDb => {
            assert!(
                std::env::var("AWS_ENDPOINT_URL").is_ok(),
                "DynamoDB tests need a local emulator: run scripts/test.sh, which starts moto \
                 and sets AWS_ENDPOINT_URL"
            );
            let client = dynamodb_client().await;
            let table = format!("crm-test-{}", Uuid::new_v4());
            create_table(&client, &table, &main_table())
                .await
                .expect("create the test table");
            TestStore {
                store: Arc::new(DynamoStore::new(client, table)),
                _dir: None,
            }
        }
    }
}

/// A running service over a fresh store, with helpers to make tenants and call routes.
pub struct TestApp {
    pub deps: Deps,
    _store: TestStore,
}

impl TestApp {
    pub async fn new(backend: Backend) -> TestApp {
        let store = fresh_store(backend).await;
        TestApp {
            deps: Deps::new(Arc::clone(&store.store)),
            _store: store,
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
            .create_tenant(&tenant, &stored)
            .await
            .expect("create tenant");
        (tenant.id, key)
    }

    /// Another key of `role` for an existing tenant.
    pub async fn key_for(&self, tenant_id: Uuid, role: Role) -> String {
        let key = generate_key();
        let stored = ApiKey::new(tenant_id, "test".into(), role, &key, self.deps.clock.now());
        self.deps.store.put_api_key(&stored).await.expect("put key");
        key
    }

    /// Calls the route table the way API Gateway and crm-local do; returns status and JSON body
    /// (`Value::Null` for an empty body).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut builder = HttpRequest::builder().method(method).uri(path);
        if let Some(key) = key {
            builder = builder.header("authorization", format!("Bearer {key}"));
        }
        let body = body.map_or(Body::Empty, |text| Body::Text(text.to_owned()));
        let request = builder.body(body).expect("request");
        let response = handle(&self.deps, ROUTES, request).await;
        let status = response.status();
        let bytes = response.body().to_vec();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("every response body is JSON")
        };
        (status, json)
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

/// Asserts the error envelope: `{success:false, error:<sentence>}` and the status.
pub fn assert_error(status: StatusCode, body: &Value, expected: StatusCode) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["success"], Value::Bool(false), "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "error sentence missing: {body}"
    );
}
