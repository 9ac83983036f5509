//! A webhook's own `retrySchedule`: set, read, changed and cleared on REST and GraphQL, and
//! refused with a field error when out of bounds.

use common::domain::auth::Role;
use lambda_http::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::{assert_field_error, create, id_of, webhook};
use crate::support::{Backend, TestApp};

crate::on_both_stores!(
    a_schedule_is_kept_changed_and_cleared,
    a_schedule_out_of_bounds_is_refused_and_changes_nothing,
    graphql_sets_and_clears_a_schedule,
);

async fn a_schedule_is_kept_changed_and_cleared(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let mut body = webhook("https://example.com/hook", &["*"]);
    body["retrySchedule"] = json!([5, 60, 3600, 86400]);
    let created = create(&app, &key, &body).await;
    assert_eq!(created["retrySchedule"], json!([5, 60, 3600, 86400]));
    let path = format!("/api/webhooks/{}", id_of(&created));
    let (_, read) = app.get(&path, &key).await;
    assert_eq!(read["retrySchedule"], json!([5, 60, 3600, 86400]));

    let (status, patched) = app
        .patch(&path, &key, &json!({"retrySchedule": [30]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["retrySchedule"], json!([30]));
    let (_, untouched) = app.patch(&path, &key, &json!({"maxRetries": 5})).await;
    assert_eq!(
        untouched["retrySchedule"],
        json!([30]),
        "left alone when absent"
    );
    let (_, cleared) = app
        .patch(&path, &key, &json!({"retrySchedule": null}))
        .await;
    assert_eq!(
        cleared["retrySchedule"],
        Value::Null,
        "back to the deployment's"
    );
    let (_, read) = app.get(&path, &key).await;
    assert_eq!(read["retrySchedule"], Value::Null);

    let plain = create(&app, &key, &webhook("https://example.com/other", &["*"])).await;
    assert_eq!(plain["retrySchedule"], Value::Null, "none unless given");
}

async fn a_schedule_out_of_bounds_is_refused_and_changes_nothing(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let created = create(&app, &key, &webhook("https://example.com/hook", &["*"])).await;
    let path = format!("/api/webhooks/{}", id_of(&created));
    let bad = [
        json!([]),
        json!([0]),
        json!([-5]),
        json!([86_401]),
        json!(vec![1; 11]),
        json!([1.5]),
        json!(["60"]),
        json!(60),
        json!({"delay": 60}),
    ];
    for schedule in bad {
        let mut body = webhook("https://example.com/new", &["*"]);
        body["retrySchedule"] = schedule.clone();
        let (status, answer) = app.post("/api/webhooks", &key, &body).await;
        assert_field_error(
            status,
            &answer,
            "retrySchedule",
            &format!("create {schedule}"),
        );
        let (status, answer) = app
            .patch(&path, &key, &json!({"retrySchedule": schedule}))
            .await;
        assert_field_error(
            status,
            &answer,
            "retrySchedule",
            &format!("patch {schedule}"),
        );
    }
    let (_, read) = app.get(&path, &key).await;
    assert_eq!(read["retrySchedule"], Value::Null);
    assert_eq!(read["updatedAt"], created["updatedAt"]);
    let (_, list) = app.get("/api/webhooks", &key).await;
    assert_eq!(
        list["items"].as_array().map(Vec::len),
        Some(1),
        "nothing created"
    );
}

async fn graphql_sets_and_clears_a_schedule(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let gql = |query: &'static str, variables: Value| {
        let body = json!({"query": query, "variables": variables}).to_string();
        let app = &app;
        let key = key.clone();
        async move {
            app.call(Method::POST, "/graphql", Some(&key), Some(&body))
                .await
        }
    };
    let (status, body) = gql(
        "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { webhook { id retrySchedule } } }",
        json!({"input": {"url": "https://example.com/hook", "events": ["*"], "retrySchedule": [10, 20]}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let created = &body["data"]["createWebhook"]["webhook"];
    assert_eq!(created["retrySchedule"], json!([10, 20]), "{body}");
    let id = created["id"].clone();

    let (_, body) = gql(
        "mutation($id: ID!, $input: UpdateWebhookInput!) { updateWebhook(id: $id, input: $input) { webhook { retrySchedule } } }",
        json!({"id": id, "input": {"retrySchedule": null}}),
    )
    .await;
    assert_eq!(
        body["data"]["updateWebhook"]["webhook"]["retrySchedule"],
        Value::Null,
        "{body}"
    );

    let (_, body) = gql(
        "mutation($id: ID!, $input: UpdateWebhookInput!) { updateWebhook(id: $id, input: $input) { webhook { retrySchedule } } }",
        json!({"id": id, "input": {"retrySchedule": [0]}}),
    )
    .await;
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{body}");
    assert_eq!(error["extensions"]["field"], "retrySchedule", "{body}");
}
