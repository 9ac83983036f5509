//! The OpenAPI document: one operation per REST route, served without a key, and the same text
//! as `infra/openapi.json` (regenerate with `UPDATE_OPENAPI=1 cargo test -p integration-tests openapi`).

use std::collections::BTreeSet;

use common::http::openapi::{document, is_documented, DOCUMENT};
use common::http::routes::ROUTES;
use lambda_http::http::{Method, StatusCode};
use serde_json::Value;

use crate::support::{Backend, TestApp};

const KEPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/openapi.json");

#[test]
fn infra_copy_is_the_generated_document() {
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(KEPT, DOCUMENT.as_str()).unwrap();
    }
    let kept = std::fs::read_to_string(KEPT).unwrap_or_default();
    assert!(
        kept == *DOCUMENT,
        "infra/openapi.json differs from the generated document: run \
         UPDATE_OPENAPI=1 cargo test -p integration-tests openapi"
    );
}

#[test]
fn every_route_has_one_operation_and_every_operation_a_route() {
    let routes: BTreeSet<(String, String)> = ROUTES
        .iter()
        .filter(|route| is_documented(route.operation))
        .map(|route| {
            (
                route.method.to_string().to_lowercase(),
                route.path.to_owned(),
            )
        })
        .collect();
    let doc = serde_json::to_value(document()).unwrap();
    let mut operations = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations.insert((method.clone(), path.clone()));
            let id = operation["operationId"].as_str().unwrap().to_owned();
            assert!(ids.insert(id.clone()), "operationId {id} twice");
        }
    }
    assert_eq!(operations, routes);
    // Only the GraphQL endpoint and its page are left out.
    let left_out: Vec<&str> = ROUTES
        .iter()
        .filter(|route| !is_documented(route.operation))
        .map(|route| route.path)
        .collect();
    assert_eq!(left_out, ["/graphql", "/graphql"]);
}

#[test]
fn every_operation_documents_its_errors_with_the_envelope() {
    let doc = serde_json::to_value(document()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            assert!(responses.contains_key("500"), "{method} {path}");
            let public = operation.get("security") == Some(&Value::Array(vec![]));
            assert_eq!(!public, responses.contains_key("401"), "{method} {path}");
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorEnvelope",
                        "{method} {path} {status}"
                    );
                }
            }
            if operation.get("requestBody").is_some() {
                assert!(responses.contains_key("413"), "{method} {path}");
                assert!(responses.contains_key("400"), "{method} {path}");
            }
        }
    }
}

#[tokio::test]
async fn served_without_a_key() {
    let app = TestApp::new(Backend::Sqlite).await;
    let (status, body) = app.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::from_str::<Value>(&DOCUMENT).unwrap());
}
