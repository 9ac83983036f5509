//! The webhook registry and its monitoring API over real `lambda_http` requests, on both stores:
//! CRUD, validation, the catalogue, rotation and test deliveries, notify, delivery history,
//! stats, tenant isolation and outbound safety at creation. The helpers below are shared by the
//! topic modules.

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine as _;
use lambda_http::http::StatusCode;
use serde_json::{json, Value};

use crate::support::{assert_error, TestApp};

mod crud;
mod headers;
mod history;
mod isolation;
mod notify;
mod retry_schedule;
mod test_deliveries;
mod validation;

/// Generous: the worker long-polls SQS on moto, and both backends share two cores.
const WAIT: Duration = Duration::from_secs(30);

fn webhook(url: &str, events: &[&str]) -> Value {
    json!({"url": url, "events": events})
}

/// `POST /api/webhooks`, asserted 201; returns the created webhook (with its secret).
async fn create(app: &TestApp, key: &str, body: &Value) -> Value {
    let (status, created) = app.post("/api/webhooks", key, body).await;
    assert_eq!(status, StatusCode::CREATED, "{body} → {created}");
    created
}

fn id_of(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

/// A valid `whsec_` secret a user could bring along.
fn own_secret() -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([42u8; 32])
    )
}

/// Asserts a 400 with the envelope whose `details` names `field`.
fn assert_field_error(status: StatusCode, body: &Value, field: &str, case: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{case}: {body}");
    assert_error(status, body, StatusCode::BAD_REQUEST);
    assert!(
        body["details"][field]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{case}: details.{field} missing in {body}"
    );
}

fn keys_of(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

fn items(page: &Value) -> &Vec<Value> {
    page["items"].as_array().expect("a page of items")
}

/// Walks `GET /api/webhooks/{id}/deliveries` page by page from `query`; returns every item.
async fn walk_deliveries(app: &TestApp, key: &str, webhook_id: &str, query: &str) -> Vec<Value> {
    let mut seen: Vec<Value> = Vec::new();
    let mut path = format!("/api/webhooks/{webhook_id}/deliveries?{query}");
    loop {
        let (status, page) = app.get(&path, key).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(items(&page).iter().cloned());
        match page["nextCursor"].as_str() {
            Some(cursor) => {
                path = format!("/api/webhooks/{webhook_id}/deliveries?{query}&cursor={cursor}")
            }
            None => return seen,
        }
    }
}

fn ids(deliveries: &[Value]) -> BTreeSet<String> {
    deliveries.iter().map(id_of).collect()
}
