//! Each HTTP Lambda as API Gateway invokes it: a real HTTP API (payload v2) event from
//! `infra/events/`, turned into a request by lambda_http exactly as the runtime does, with a real
//! API key, served by that function's rows of the route table, on both stores.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::domain::auth::Role;
use common::http::routes::{routes_of, ROUTES};
use common::http::{handle, REQUEST_ID_HEADER};
use lambda_http::http::StatusCode;
use lambda_http::Request;
use serde_json::{json, Value};

use crate::support::{assert_error, Backend, TestApp};

/// The ids written in the event files; the tests put real ones in their place.
const EVENT_CLIENT_ID: &str = "0199d2a4-5b1c-7e3f-9a60-2f4b8c1d7e90";
const EVENT_KEY_ID: &str = "0199d2a4-6c2d-7f40-8b71-3a5c9d2e8fa1";
const EVENT_WEBHOOK_ID: &str = "0199d2a4-7d3e-7a51-9c82-4b6d0e3f9ab2";
const EVENT_DELIVERY_ID: &str = "0199d2a4-8e4f-7b62-8d93-5c7e1f4a0bc3";
const EVENT_WEBHOOK_URL: &str = "https://hooks.example.com/crm";

crate::on_both_stores!(
    sync_status_function_serves_its_event,
    update_sync_status_function_serves_its_event,
    clients_function_serves_its_events,
    client_function_serves_its_events,
    keys_function_serves_its_events,
    key_function_serves_its_event,
    webhook_functions_serve_their_events,
);

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("infra/events")
}

fn event_names() -> BTreeSet<String> {
    std::fs::read_dir(events_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| path.file_stem().unwrap().to_str().unwrap().to_owned())
        .collect()
}

fn read_event(name: &str) -> String {
    std::fs::read_to_string(events_dir().join(format!("{name}.json"))).unwrap()
}

/// The function that serves an event in production: the route table's row for its routeKey.
fn function_of(event: &Value) -> &'static str {
    let route_key = event["routeKey"].as_str().unwrap();
    ROUTES
        .iter()
        .find(|route| format!("{} {}", route.method, route.path) == route_key)
        .unwrap_or_else(|| panic!("routeKey {route_key} is not in the route table"))
        .function
}

/// Invokes the function that owns the event's route with the event, as its `main.rs` does.
/// `ids` replaces the event's placeholder ids with real ones; `key` goes in `authorization`.
async fn invoke(
    app: &TestApp,
    name: &str,
    key: &str,
    ids: &[(&str, String)],
) -> (StatusCode, Value) {
    let mut text = read_event(name);
    for (placeholder, id) in ids {
        text = text.replace(placeholder, id);
    }
    let mut event: Value = serde_json::from_str(&text).unwrap();
    event["headers"]["authorization"] = json!(format!("Bearer {key}"));
    let function = function_of(&event);
    call(app, function, &event).await
}

async fn call(app: &TestApp, function: &str, event: &Value) -> (StatusCode, Value) {
    let request: Request = lambda_http::request::from_str(&event.to_string())
        .expect("lambda_http reads an HTTP API payload v2 event");
    let response = handle(&app.deps, &routes_of(function), request).await;
    assert!(
        response.headers().contains_key(REQUEST_ID_HEADER),
        "every response carries a request id"
    );
    let status = response.status();
    let json = response
        .headers()
        .get("content-type")
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    let bytes = response.body().to_vec();
    let body = if bytes.is_empty() {
        Value::Null
    } else if json {
        serde_json::from_slice(&bytes).unwrap()
    } else {
        Value::String(String::from_utf8(bytes).unwrap())
    };
    (status, body)
}

#[test]
fn every_http_function_has_realistic_events_for_its_routes() {
    let names = event_names();
    let mut covered = BTreeSet::new();
    for name in &names {
        let event: Value = serde_json::from_str(&read_event(name)).unwrap();
        assert_eq!(event["version"], "2.0", "{name}");
        let route_key = event["routeKey"].as_str().unwrap();
        assert_eq!(event["requestContext"]["routeKey"], route_key, "{name}");
        assert_eq!(event["requestContext"]["stage"], "$default", "{name}");
        let (method, template) = route_key.split_once(' ').unwrap();
        assert_eq!(event["requestContext"]["http"]["method"], method, "{name}");
        // rawPath is the route's path with its parameters filled in.
        let mut path = template.to_owned();
        if let Some(parameters) = event["pathParameters"].as_object() {
            for (parameter, value) in parameters {
                path = path.replace(&format!("{{{parameter}}}"), value.as_str().unwrap());
            }
        }
        assert_eq!(event["rawPath"], path.as_str(), "{name}");
        assert_eq!(
            event["requestContext"]["http"]["path"],
            path.as_str(),
            "{name}"
        );
        assert!(event["rawQueryString"].is_string(), "{name}");
        assert!(event["isBase64Encoded"].is_boolean(), "{name}");
        covered.insert(function_of(&event));
    }
    let http_functions: BTreeSet<&str> = ROUTES.iter().map(|route| route.function).collect();
    let missing: Vec<_> = http_functions.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "HTTP functions without an event in infra/events: {missing:?}"
    );
}

/// Whether a route's path (`{name}` matches one non-empty segment) matches a request path.
fn path_matches(template: &str, path: &str) -> bool {
    let (template, path): (Vec<&str>, Vec<&str>) =
        (template.split('/').collect(), path.split('/').collect());
    template.len() == path.len()
        && template.iter().zip(&path).all(|(expected, actual)| {
            expected == actual || (expected.starts_with('{') && !actual.is_empty())
        })
}

#[tokio::test]
async fn a_function_answers_404_to_the_routes_of_the_others() {
    let app = TestApp::new(Backend::Sqlite).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let functions: BTreeSet<&str> = ROUTES.iter().map(|route| route.function).collect();
    for name in event_names() {
        let mut event: Value = serde_json::from_str(&read_event(&name)).unwrap();
        event["headers"]["authorization"] = json!(format!("Bearer {key}"));
        let owner = function_of(&event);
        let path = event["rawPath"].as_str().unwrap().to_owned();
        // API Gateway prefers a literal segment to a parameter (/api/webhooks/events never
        // reaches the /api/webhooks/{id} function): only paths no route of a function matches.
        let strangers = functions.iter().filter(|function| {
            **function != owner
                && !routes_of(function)
                    .iter()
                    .any(|route| path_matches(route.path, &path))
        });
        for function in strangers {
            let (status, body) = call(&app, function, &event).await;
            assert_error(status, &body, StatusCode::NOT_FOUND);
            assert!(
                !body.to_string().contains(&key),
                "{name} sent to {function}: {body}"
            );
        }
    }
}

async fn sync_status_function_serves_its_event(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::ReadOnly).await;
    let (_, other_tenant) = app.tenant_with(Role::Admin).await;
    app.create_client(&other_tenant, "Not theirs").await;
    let (status, body) = invoke(&app, "get-sync-status", &key, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({
            "totalClients": 0, "syncedClients": 0, "pendingClients": 0,
            "failedClients": 0, "needsUpdateClients": 0, "lastSyncTime": null
        })
    );
}

async fn update_sync_status_function_serves_its_event(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (tenant, key) = app.tenant_with(Role::SalesRep).await;
    let client = app.create_client(&key, "Ada").await;
    let ids = [(EVENT_CLIENT_ID, client.to_string())];
    let (status, body) = invoke(&app, "update-sync-status", &key, &ids).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    let (_, counts) = invoke(&app, "get-sync-status", &key, &[]).await;
    assert_eq!(counts["syncedClients"], 1, "{counts}");
    assert_eq!(counts["needsUpdateClients"], 0, "{counts}");

    let read_only = app.key_for(tenant, Role::ReadOnly).await;
    let (status, body) = invoke(&app, "update-sync-status", &read_only, &ids).await;
    assert_error(status, &body, StatusCode::FORBIDDEN);
}

async fn clients_function_serves_its_events(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Manager).await;
    // The body arrives base64-encoded, as API Gateway sends what `curl -d` posts; without
    // `-H 'Content-Type: application/json'` curl declares a form, which is refused.
    let (status, refused) = invoke(&app, "create-client", &key, &[]).await;
    assert_error(status, &refused, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let mut event: Value = serde_json::from_str(&read_event("create-client")).unwrap();
    event["headers"]["authorization"] = json!(format!("Bearer {key}"));
    event["headers"]["content-type"] = json!("application/json");
    let (status, created) = call(&app, "clients", &event).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["name"], "Ada Lovelace");
    assert_eq!(created["email"], "ada@example.com");
    assert_eq!(created["externalId"], "hs-123");
    assert_eq!(created["syncStatus"], "NEEDS_UPDATE");

    // The query string (limit, syncStatus filter) comes through rawQueryString.
    let (status, listed) = invoke(&app, "list-clients", &key, &[]).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["items"][0]["id"], created["id"]);
    assert_eq!(listed["nextCursor"], Value::Null);
}

async fn client_function_serves_its_events(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Manager).await;
    let client = app.create_client(&key, "Ada").await;
    let ids = [(EVENT_CLIENT_ID, client.to_string())];

    let (status, body) = invoke(&app, "get-client", &key, &ids).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], client.to_string());

    let (status, body) = invoke(&app, "update-client", &key, &ids).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["company"], "Analytical Engines");
    assert_eq!(body["phone"], Value::Null);

    // The PATCH moved the client to NEEDS_UPDATE (it was already): no change, no entry.
    let (status, body) = invoke(&app, "get-sync-history", &key, &ids).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"], json!([]), "{body}");

    let (status, body) = invoke(&app, "delete-client", &key, &ids).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (status, body) = invoke(&app, "get-client", &key, &ids).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
}

async fn keys_function_serves_its_events(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let (status, created) = invoke(&app, "create-key", &key, &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["role"], "READ_ONLY");
    let new_key = created["key"].as_str().unwrap();
    assert!(new_key.starts_with("crm_"), "{created}");

    let (status, listed) = invoke(&app, "list-keys", &key, &[]).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let names: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"reporting"), "{listed}");
    assert!(!listed.to_string().contains(new_key), "keys are shown once");

    // The new READ_ONLY key works and may not manage keys.
    let (status, _) = invoke(&app, "get-sync-status", new_key, &[]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = invoke(&app, "list-keys", new_key, &[]).await;
    assert_error(status, &body, StatusCode::FORBIDDEN);
    // Any key may ask who it is.
    let (status, me) = invoke(&app, "get-me", new_key, &[]).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(
        (me["keyName"].as_str(), me["role"].as_str()),
        (Some("reporting"), Some("READ_ONLY"))
    );
}

/// The dashboard's page, public: the event's key is not needed, and not read.
#[tokio::test]
async fn dashboard_function_serves_its_page() {
    let app = TestApp::new(Backend::Sqlite).await;
    let (status, page) = invoke(&app, "get-dashboard", "not-a-key", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.as_str()
            .is_some_and(|html| html.starts_with("<!doctype html>")),
        "{page}"
    );
}

async fn key_function_serves_its_event(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let (_, created) = invoke(&app, "create-key", &key, &[]).await;
    let revoked = created["key"].as_str().unwrap();
    let ids = [(EVENT_KEY_ID, created["id"].as_str().unwrap().to_owned())];

    let (status, body) = invoke(&app, "delete-key", &key, &ids).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (status, body) = invoke(&app, "get-sync-status", revoked, &[]).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED);
    let (status, body) = invoke(&app, "delete-key", &key, &ids).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
}

async fn webhook_functions_serve_their_events(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    // Tests allow plain HTTP to loopback; nothing listens on port 9, so attempts fail at once.
    let target = (EVENT_WEBHOOK_URL, "http://127.0.0.1:9/crm".to_owned());
    let (status, created) = invoke(&app, "create-webhook", &key, &[target]).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let webhook = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let ids = [(EVENT_WEBHOOK_ID, webhook.clone())];

    let (status, body) = invoke(&app, "get-webhook", &key, &ids).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], webhook.as_str());
    assert!(
        !body.to_string().contains(&secret),
        "the secret is shown once"
    );
    let (status, body) = invoke(&app, "list-webhooks", &key, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.to_string().contains(&webhook), "{body}");

    let (status, body) = invoke(&app, "rotate-webhook-secret", &key, &ids).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["secret"].as_str().is_some_and(|new| new != secret),
        "{body}"
    );

    let (status, tested) = invoke(&app, "test-webhook", &key, &ids).await;
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["success"], false, "nothing listens: {tested}");
    let delivery = tested["deliveryId"].as_str().unwrap().to_owned();
    let delivery_ids = [(EVENT_DELIVERY_ID, delivery.clone())];
    let (status, body) = invoke(&app, "get-delivery", &key, &delivery_ids).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], delivery.as_str(), "{body}");
    let (status, body) = invoke(&app, "list-webhook-deliveries", &key, &ids).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.to_string().contains(&delivery), "{body}");
    let (status, body) = invoke(&app, "webhook-stats", &key, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, body) = invoke(&app, "list-event-types", &key, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.to_string().contains("client.created"), "{body}");
    let (status, body) = invoke(&app, "notify", &key, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["success"], true, "{body}");
    assert_eq!(
        body["deliveryIds"].as_array().map(Vec::len),
        Some(1),
        "{body}"
    );
    let (status, body) = invoke(&app, "retry-deliveries", &key, &ids).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["success"], true, "{body}");

    let (status, body) = invoke(&app, "graphql", &key, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["data"]["webhookEvents"]
        .as_array()
        .is_some_and(|events| !events.is_empty()));
    let (status, page) = invoke(&app, "graphiql", &key, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.as_str().is_some_and(|html| html.contains("<html")),
        "{page}"
    );

    let (status, body) = invoke(&app, "update-webhook", &key, &ids).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["active"], false, "{body}");
    let (status, body) = invoke(&app, "delete-webhook", &key, &ids).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (status, body) = invoke(&app, "get-webhook", &key, &ids).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
}

/// A deployed function builds its SDK clients from the environment Lambda gives it, without the
/// default provider chain (common::adapters::sdk_config): here that environment points at moto,
/// and a table and a queue made through those clients must exist afterwards.
#[tokio::test]
async fn a_functions_sdk_clients_work_from_its_environment_alone() {
    use common::adapters::dynamodb::tables::{create_table, main_table};
    use common::adapters::sdk_config::from_lambda_environment;
    use common::adapters::sqs::create_queues;

    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "this test needs a local emulator: run scripts/test.sh, which starts moto and sets \
         AWS_ENDPOINT_URL"
    );
    let config = from_lambda_environment(|name| std::env::var(name).ok());
    assert_eq!(
        config.endpoint_url(),
        std::env::var("AWS_ENDPOINT_URL").ok().as_deref(),
        "scripts/test.sh points AWS_ENDPOINT_URL at moto"
    );
    let name = format!("crm-test-lean-{}", uuid::Uuid::new_v4());
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    create_table(&dynamodb, &name, &main_table()).await.unwrap();
    let table = dynamodb
        .describe_table()
        .table_name(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(
        table.table().and_then(|t| t.table_name()),
        Some(name.as_str())
    );

    let sqs = aws_sdk_sqs::Client::new(&config);
    let url = create_queues(&sqs, &name, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    let listed = sqs
        .list_queues()
        .queue_name_prefix(&name)
        .send()
        .await
        .unwrap();
    assert!(
        listed.queue_urls().contains(&url),
        "{url} not in {listed:?}"
    );
}
