//! Invalid input: BAD_USER_INPUT naming the field, as REST names it.

use common::domain::auth::Role;
use lambda_http::http::StatusCode;
use serde_json::{json, Value};

use super::{create, data, gql, CREATE, PAGE};
use crate::support::{assert_error, Backend, TestApp};

crate::on_both_stores!(
    invalid_create_input_names_the_fields_and_messages_rest_names,
    each_invalid_argument_is_bad_user_input_naming_it_and_changes_nothing,
);

/// The GraphQL errors of a request, as `field → message`, all BAD_USER_INPUT.
async fn field_errors(
    app: &TestApp,
    key: &str,
    query: &str,
    variables: Value,
) -> Vec<(String, String)> {
    let (status, body) = gql(app, key, query, variables).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let errors = body["errors"].as_array().expect("errors");
    errors
        .iter()
        .map(|error| {
            assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{body}");
            (
                error["extensions"]["field"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no field: {body}"))
                    .to_owned(),
                error["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn invalid_create_input_names_the_fields_and_messages_rest_names(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;

    // The same input over REST and GraphQL: the same fields, the same messages.
    let input = json!({
        "url": "ftp://example.com/hook",
        "events": ["client.exploded"],
        "headers": [{"name": "X-Webhook-Signature", "value": "forged"}],
        "maxRetries": 11,
        "timeoutMs": 50,
    });
    let errors = field_errors(&app, &key, CREATE, json!({"input": input})).await;
    let (status, rest) = app
        .post(
            "/api/webhooks",
            &key,
            &json!({
                "url": "ftp://example.com/hook",
                "events": ["client.exploded"],
                "headers": {"X-Webhook-Signature": "forged"},
                "maxRetries": 11,
                "timeoutMs": 50,
            }),
        )
        .await;
    assert_error(status, &rest, StatusCode::BAD_REQUEST);
    let details = rest["details"].as_object().unwrap();
    let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        details.keys().map(String::as_str).collect::<Vec<_>>()
    );
    for (field, message) in &errors {
        assert_eq!(
            *message,
            format!("{field}: {}", details[field].as_str().unwrap())
        );
    }
    // Nothing was created by the refused requests.
    let listed = data(&app, &key, PAGE, json!({})).await;
    assert_eq!(listed["webhooks"]["edges"], json!([]));
}

async fn each_invalid_argument_is_bad_user_input_naming_it_and_changes_nothing(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;

    let (id, _) = create(&app, &key, "https://example.com/h", &["*"]).await;
    let cases: Vec<(&str, Value, &[&str])> = vec![
        (
            "mutation U($id: ID!, $input: UpdateWebhookInput!) { updateWebhook(id: $id, input: $input) { webhook { id } } }",
            json!({"id": id, "input": {"url": null, "events": [], "timeoutMs": 40000}}),
            &["events", "timeoutMs", "url"],
        ),
        (
            "mutation U($id: ID!, $input: UpdateWebhookInput!) { updateWebhook(id: $id, input: $input) { webhook { id } } }",
            json!({"id": "not-a-uuid", "input": {}}),
            &["id"],
        ),
        (
            CREATE,
            json!({"input": {"url": "https://example.com/x", "events": ["*"],
                   "headers": [{"name": "X-A", "value": "1"}, {"name": "X-A", "value": "2"}]}}),
            &["headers"],
        ),
        (
            CREATE,
            json!({"input": {"url": "https://example.com/x", "events": ["*"], "secret": "plain"}}),
            &["secret"],
        ),
        ("query Q($id: ID!) { webhook(id: $id) { id } }", json!({"id": "42"}), &["id"]),
        (PAGE, json!({"first": 0}), &["first"]),
        (PAGE, json!({"after": "not a cursor"}), &["after"]),
        (PAGE, json!({"filter": {"event": "nope.*"}}), &["event"]),
        (
            "mutation { retryWebhookDeliveries(deliveryIds: [\"x\"]) { retriedCount } }",
            json!({}),
            &["deliveryIds"],
        ),
        (
            "mutation { retryWebhookDeliveries(webhookId: \"x\") { retriedCount } }",
            json!({}),
            &["webhookId"],
        ),
    ];
    for (query, variables, expected) in cases {
        let errors = field_errors(&app, &key, query, variables.clone()).await;
        let mut fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(fields, expected, "{variables}");
    }
    // Nothing was created or changed by the refused requests.
    let listed = data(&app, &key, PAGE, json!({})).await;
    assert_eq!(listed["webhooks"]["edges"].as_array().unwrap().len(), 1);
    assert_eq!(
        listed["webhooks"]["edges"][0]["node"]["events"],
        json!(["*"])
    );
}
