//! The GraphiQL page and the SDL kept in `infra/schema.graphql`.

use lambda_http::http::{Method, StatusCode};

use crate::support::{Backend, TestApp};

/// GraphiQL needs no key: it is a page that asks for one.
#[tokio::test]
async fn graphiql_is_served_without_a_key() {
    let app = TestApp::new(Backend::Sqlite).await;
    let request = lambda_http::http::Request::builder()
        .method(Method::GET)
        .uri("/graphql")
        .body(lambda_http::Body::Empty)
        .unwrap();
    let response = common::http::handle(&app.deps, common::http::routes::ROUTES, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let page = String::from_utf8(response.body().to_vec()).unwrap();
    assert!(page.contains("GraphiQL.createFetcher"), "{page}");
    assert!(page.contains("Authorization"));
}

/// `infra/schema.graphql` is the schema the code serves. After changing the schema, regenerate
/// it with `UPDATE_SCHEMA=1 cargo test -p integration-tests schema_file`.
#[test]
fn schema_file_matches_the_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/schema.graphql");
    let sdl = common::graphql::sdl();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &sdl).unwrap();
    }
    let kept = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        kept == sdl,
        "infra/schema.graphql differs from the code's schema; regenerate it with \
         UPDATE_SCHEMA=1 cargo test -p integration-tests schema_file"
    );
    // Field names are a contract with seed 003's clients (an added optional argument keeps
    // every earlier query valid).
    for name in [
        "webhook(id: ID!): Webhook",
        "webhooks(first: Int, after: String, filter: WebhookFilter): WebhookConnection!",
        "webhookDeliveries(webhookId: ID!, first: Int, after: String, status: WebhookDeliveryStatus): WebhookDeliveryConnection!",
        "webhookDelivery(id: ID!): WebhookDelivery",
        "webhookEvents: [WebhookEventType!]!",
        "webhookStats(webhookId: ID): WebhookStats!",
        "syncStatus: SyncStatus!",
        "createWebhook(input: CreateWebhookInput!): CreateWebhookPayload!",
        "updateWebhook(id: ID!, input: UpdateWebhookInput!): UpdateWebhookPayload!",
        "deleteWebhook(id: ID!): DeleteWebhookPayload!",
        "testWebhook(id: ID!): TestWebhookPayload!",
        "rotateWebhookSecret(id: ID!, overlapSeconds: Int): RotateWebhookSecretPayload!",
        "retryWebhookDeliveries(webhookId: ID, deliveryIds: [ID!]): RetryWebhookDeliveriesPayload!",
    ] {
        assert!(sdl.contains(name), "missing from the schema: {name}");
    }
    let webhook_type = sdl
        .split("\ntype Webhook {")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .expect("type Webhook");
    assert!(
        !webhook_type.contains("secret"),
        "a Webhook never shows its secret"
    );
}
