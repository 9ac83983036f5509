//! `POST /graphql` over real `lambda_http` requests, on both stores: every query and mutation,
//! the role × operation matrix, tenant isolation, pagination, a signed test delivery to a real
//! receiver, validation errors, limits, and the SDL kept in `infra/schema.graphql`. The helpers
//! below are shared by the topic modules.

use lambda_http::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::TestApp;

mod access;
mod errors;
mod limits;
mod malformed;
mod mutations;
mod pagination;
mod queries;
mod schema;
mod test_deliveries;

/// Posts one GraphQL request; returns the HTTP status and the JSON body.
pub(crate) async fn gql(
    app: &TestApp,
    key: &str,
    query: &str,
    variables: Value,
) -> (StatusCode, Value) {
    let body = json!({"query": query, "variables": variables}).to_string();
    app.call(Method::POST, "/graphql", Some(key), Some(&body))
        .await
}

/// A request that must succeed: 200, no errors; returns `data`.
pub(crate) async fn data(app: &TestApp, key: &str, query: &str, variables: Value) -> Value {
    let (status, body) = gql(app, key, query, variables).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    assert!(body.get("errors").is_none(), "{query}: {body}");
    body["data"].clone()
}

/// The `(code, field)` of each error of a response.
fn error_codes(body: &Value) -> Vec<(String, Option<String>)> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|error| {
                    let extensions = &error["extensions"];
                    (
                        extensions["code"].as_str().unwrap_or("").to_owned(),
                        extensions["field"].as_str().map(str::to_owned),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A 200 whose only error has `code`; returns the error.
async fn only_error(app: &TestApp, key: &str, query: &str, variables: Value, code: &str) -> Value {
    let (status, body) = gql(app, key, query, variables).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{query}: {body}");
    assert_eq!(errors[0]["extensions"]["code"], code, "{query}: {body}");
    assert!(
        errors[0]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    errors[0].clone()
}

const CREATE: &str = "mutation Create($input: CreateWebhookInput!) {
    createWebhook(input: $input) { secret webhook { id url events active } } }";

/// Creates a webhook over GraphQL; returns (id, secret).
async fn create(app: &TestApp, key: &str, url: &str, events: &[&str]) -> (String, String) {
    let created = data(
        app,
        key,
        CREATE,
        json!({"input": {"url": url, "events": events}}),
    )
    .await;
    let payload = &created["createWebhook"];
    (
        payload["webhook"]["id"].as_str().expect("an id").to_owned(),
        payload["secret"].as_str().expect("a secret").to_owned(),
    )
}

async fn test_delivery(app: &TestApp, key: &str, webhook: &str) -> Value {
    data(
        app,
        key,
        "mutation T($id: ID!) { testWebhook(id: $id) { success statusCode durationMs error deliveryId } }",
        json!({"id": webhook}),
    )
    .await["testWebhook"]
        .clone()
}

const WEBHOOK_FIELDS: &str = "id url description events headers { name value } active maxRetries \
                              timeoutMs createdAt updatedAt";

/// Creates a webhook to `url` with every optional field set; returns the `createWebhook` payload
/// (the secret and the webhook with `WEBHOOK_FIELDS`).
async fn create_with_every_field(app: &TestApp, key: &str, url: &str) -> Value {
    data(
        app,
        key,
        &format!(
            "mutation C($input: CreateWebhookInput!) {{
                createWebhook(input: $input) {{ secret webhook {{ {WEBHOOK_FIELDS} }} }} }}"
        ),
        json!({"input": {
            "url": url,
            "events": ["client.created", "sync.*"],
            "description": "CRM mirror",
            "headers": [{"name": "X-Team", "value": "crm"}],
            "maxRetries": 5,
            "timeoutMs": 2000,
        }}),
    )
    .await["createWebhook"]
        .clone()
}

const PAGE: &str = "query P($first: Int, $after: String, $filter: WebhookFilter) {
    webhooks(first: $first, after: $after, filter: $filter) {
        edges { cursor node { id active events } }
        pageInfo { hasNextPage endCursor hasPreviousPage startCursor } } }";

/// Walks every page of `filter` with `first`; returns the ids in order and the page sizes.
async fn walk(app: &TestApp, key: &str, first: i32, filter: Value) -> (Vec<String>, Vec<usize>) {
    let mut ids = Vec::new();
    let mut sizes = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = data(
            app,
            key,
            PAGE,
            json!({"first": first, "after": after, "filter": filter}),
        )
        .await["webhooks"]
            .clone();
        let edges = page["edges"].as_array().unwrap();
        sizes.push(edges.len());
        for edge in edges {
            ids.push(edge["node"]["id"].as_str().unwrap().to_owned());
        }
        let info = &page["pageInfo"];
        assert_eq!(info["hasPreviousPage"], !after.is_null());
        if let Some(last) = edges.last() {
            assert_eq!(info["endCursor"], last["cursor"]);
            assert_eq!(info["startCursor"], edges[0]["cursor"]);
        }
        if info["hasNextPage"] == false {
            return (ids, sizes);
        }
        after = info["endCursor"].clone();
        assert!(sizes.len() < 100, "the walk does not end");
    }
}

/// `n` aliases `a0`, `a1`, … of `field`.
fn aliases(field: &str, n: usize) -> String {
    named_aliases("a", field, n)
}

/// `n` aliases `<prefix>0`, `<prefix>1`, … of `field`.
fn named_aliases(prefix: &str, field: &str, n: usize) -> String {
    (0..n).map(|i| format!("{prefix}{i}: {field} ")).collect()
}
