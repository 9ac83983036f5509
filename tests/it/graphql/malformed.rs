//! Requests that are not one GraphQL request, documents that do not validate, and requests
//! without a valid key: each refused as REST refuses it, or as a GraphQL validation error.

use common::domain::auth::Role;
use lambda_http::http::{Method, StatusCode};
use serde_json::json;

use super::{error_codes, gql};
use crate::support::{assert_error, Backend, TestApp};

crate::on_both_stores!(
    batches_and_bodies_that_are_not_one_request_are_400,
    documents_that_do_not_parse_or_validate_fail_validation,
    one_of_several_operations_is_chosen_by_name,
    no_key_or_a_bad_key_is_the_rest_401,
);

async fn batches_and_bodies_that_are_not_one_request_are_400(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;

    // Batches and bodies that are not one request.
    for body in [
        r#"[{"query": "{ syncStatus { totalClients } }"}]"#,
        "[]",
        "",
        "{",
        "\"{ syncStatus { totalClients } }\"",
        r#"{"variables": {}}"#,
        r#"{"query": 42}"#,
        r#"{"query": "{ webhooks { edges { node { id } } } }", "variables": [1]}"#,
    ] {
        let (status, reply) = app
            .call(Method::POST, "/graphql", Some(&key), Some(body))
            .await;
        assert_error(status, &reply, StatusCode::BAD_REQUEST);
    }
}

async fn documents_that_do_not_parse_or_validate_fail_validation(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;

    // Documents that do not parse or do not validate.
    for query in [
        "{",
        "{ nope }",
        "mutation { deleteWebhook { success } }",
        "{ webhooks(first: 99999999999) { edges { cursor } } }",
        "query A { syncStatus { totalClients } } query B { webhookEvents { name } }",
    ] {
        let (status, reply) = gql(&app, &key, query, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{query}: {reply}");
        assert!(
            error_codes(&reply)
                .iter()
                .all(|(code, _)| code == "GRAPHQL_VALIDATION_FAILED"),
            "{query}: {reply}"
        );
        assert!(!error_codes(&reply).is_empty(), "{query}: {reply}");
    }
}

async fn one_of_several_operations_is_chosen_by_name(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;

    // Several operations in one document: one is chosen by name.
    let (_, reply) = app
        .call(
            Method::POST,
            "/graphql",
            Some(&key),
            Some(
                &json!({
                    "query": "query A { syncStatus { totalClients } } query B { webhookEvents { name } }",
                    "operationName": "B"
                })
                .to_string(),
            ),
        )
        .await;
    assert!(reply["data"]["webhookEvents"].is_array(), "{reply}");
}

async fn no_key_or_a_bad_key_is_the_rest_401(backend: Backend) {
    let app = TestApp::new(backend).await;

    // No key, or a bad one: REST's 401 envelope.
    for key in [None, Some("crm_not-a-key")] {
        let (status, reply) = app
            .call(
                Method::POST,
                "/graphql",
                key,
                Some(r#"{"query": "{ webhookEvents { name } }"}"#),
            )
            .await;
        assert_error(status, &reply, StatusCode::UNAUTHORIZED);
    }
}
