//! The permission matrix over every route and every role, through the HTTP layer.

use common::domain::auth::Role;
use common::http::routes::{Operation, ROUTES};
use lambda_http::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::receiver::{Receiver, Reply};
use crate::support::{assert_error, Backend, TestApp};

/// Who may do what, written out as users read it; the domain table must agree.
/// ADMIN: everything. MANAGER: everything but key management. SALES_REP: clients (no delete),
/// sync status, and reading webhooks. READ_ONLY: reading clients, sync status and webhooks.
fn allowed(role: Role, operation: Operation) -> bool {
    use Operation::*;
    let reads_webhooks = matches!(
        operation,
        ListEventTypes
            | WebhookStats
            | GetDelivery
            | ListWebhooks
            | GetWebhook
            | ListWebhookDeliveries
            | SearchDeliveries
    );
    // The GraphQL endpoint is open to every key; its fields check permissions (graphql.rs).
    // Any key may ask who it is (`GET /api/me`).
    if matches!(operation, GraphQl | Me) {
        return true;
    }
    match role {
        Role::Admin => true,
        Role::Manager => !matches!(operation, CreateKey | ListKeys | DeleteKey | ListAudit),
        Role::SalesRep => {
            reads_webhooks
                || matches!(
                    operation,
                    GetSyncStatus
                        | UpdateSyncStatus
                        | CreateClient
                        | ListClients
                        | GetClient
                        | GetSyncHistory
                        | UpdateClient
                )
        }
        Role::ReadOnly => {
            reads_webhooks
                || matches!(
                    operation,
                    GetSyncStatus | ListClients | GetClient | GetSyncHistory
                )
        }
    }
}

fn id_of(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

/// A fresh target made by the admin for one call: the `{id}` of its path and a valid body, so
/// that an allowed call can succeed. An operation not named here gets neither, and the matrix
/// fails on its route until someone says what it needs.
async fn target(
    app: &TestApp,
    admin: &str,
    receiver: &Receiver,
    operation: Operation,
) -> (Option<String>, Option<Value>) {
    use Operation::*;
    // Subscribed to an event nothing else here emits, so notify stays cheap.
    let new_webhook = || async {
        let (status, created) = app
            .post(
                "/api/webhooks",
                admin,
                &json!({"url": receiver.url, "events": ["opportunity.stage_changed"]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        id_of(&created)
    };
    match operation {
        CreateClient => (None, Some(json!({"name": "new"}))),
        UpdateSyncStatus => {
            let client = app.create_client(admin, "target").await;
            (None, Some(json!({"clientId": client, "status": "SYNCED"})))
        }
        GetClient | GetSyncHistory | DeleteClient => (
            Some(app.create_client(admin, "target").await.to_string()),
            None,
        ),
        UpdateClient => (
            Some(app.create_client(admin, "target").await.to_string()),
            Some(json!({"company": "changed"})),
        ),
        CreateKey => (None, Some(json!({"name": "k", "role": "READ_ONLY"}))),
        DeleteKey => {
            let (status, spare) = app
                .post(
                    "/api/keys",
                    admin,
                    &json!({"name": "spare", "role": "READ_ONLY"}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{spare}");
            (Some(id_of(&spare)), None)
        }
        Notify => (
            None,
            Some(json!({"event": "lead.converted", "data": {"leadId": "L-1"}})),
        ),
        ReplayEvents | RecoverDeliveries => (
            Some(new_webhook().await),
            Some(json!({"since": "2026-01-01T00:00:00Z"})),
        ),
        // A finished delivery: the synchronous test delivery's.
        ResendDelivery => {
            let webhook = new_webhook().await;
            let path = format!("/api/webhooks/{webhook}/test");
            let (status, tested) = app.call(Method::POST, &path, Some(admin), None).await;
            assert_eq!(status, StatusCode::OK, "{tested}");
            let id = tested["deliveryId"].as_str().expect("a delivery id");
            (Some(id.to_owned()), None)
        }
        GetDelivery => {
            new_webhook().await;
            let (status, notified) = app
                .post(
                    "/api/webhooks/notify",
                    admin,
                    &json!({"event": "opportunity.stage_changed", "data": {}}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{notified}");
            let id = notified["deliveryIds"][0].as_str().expect("a delivery id");
            (Some(id.to_owned()), None)
        }
        CreateWebhook => (
            None,
            Some(json!({"url": receiver.url, "events": ["lead.*"]})),
        ),
        GetWebhook | DeleteWebhook | TestWebhook | RotateWebhookSecret | ListWebhookDeliveries => {
            (Some(new_webhook().await), None)
        }
        UpdateWebhook => (
            Some(new_webhook().await),
            Some(json!({"description": "changed", "active": false})),
        ),
        GraphQl => (None, Some(json!({"query": "{ webhookEvents { name } }"}))),
        // GetSyncStatus, ListClients, ListKeys, ListEventTypes, WebhookStats, ListWebhooks,
        // SearchDeliveries and RetryDeliveries (an empty body retries every FAILED delivery)
        // need nothing.
        _ => (None, None),
    }
}

#[tokio::test]
async fn every_route_for_every_role() {
    let app = TestApp::new(Backend::Sqlite).await;
    let (tenant, admin) = app.tenant_with(Role::Admin).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    for role in Role::ALL {
        let key = app.key_for(tenant, role).await;
        // Public routes (pages, no key) are not in the permission matrix.
        for route in ROUTES.iter().filter(|route| !route.public) {
            let (id, body) = target(&app, &admin, &receiver, route.operation).await;
            let path = match &id {
                Some(id) => route.path.replace("{id}", id),
                None => route.path.to_owned(),
            };
            assert!(!path.contains('{'), "no target for {}", route.path);
            let body = body.map(|b| b.to_string());
            let (status, reply) = app
                .call(route.method.clone(), &path, Some(&key), body.as_deref())
                .await;
            let call = format!("{role:?} {} {}", route.method, route.path);
            if allowed(role, route.operation) {
                assert!(status.is_success(), "{call}: {status} {reply}");
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{call}: {reply}");
                assert_error(status, &reply, StatusCode::FORBIDDEN);
                assert!(
                    reply["error"].as_str().unwrap().contains("permission"),
                    "{call}: {reply}"
                );
            }
        }
    }
}

/// A caller without the permission is refused before its body is read: 403, never a 400 that
/// would tell it what the body got wrong.
#[tokio::test]
async fn a_refused_caller_gets_403_whatever_the_body_holds() {
    let app = TestApp::new(Backend::Sqlite).await;
    let (tenant, _admin) = app.tenant_with(Role::Admin).await;
    let read_only = app.key_for(tenant, Role::ReadOnly).await;
    let id = "0193b2c4-5d6e-7f80-9a1b-2c3d4e5f6a7b";
    let webhook = format!("/api/webhooks/{id}");
    let rotate = format!("/api/webhooks/{id}/rotate-secret");
    let client = format!("/api/clients/{id}");
    for (method, path, body) in [
        ("POST", "/api/webhooks", r#"{"url": 5, "color": "blue"}"#),
        ("PATCH", webhook.as_str(), r#"{"timeoutMs": "soon"}"#),
        ("POST", rotate.as_str(), r#"{"overlapSeconds": -1}"#),
        (
            "POST",
            "/api/webhooks/notify",
            r#"{"event": "no.such.event"}"#,
        ),
        ("POST", "/api/webhooks/retry", r#"{"deliveryIds": ["x"]}"#),
        ("POST", "/api/clients", r#"{"name": ""}"#),
        ("PATCH", client.as_str(), r#"{"name": null}"#),
        ("POST", "/api/keys", r#"{"role": "OWNER"}"#),
        (
            "POST",
            "/api/crm/update-sync-status",
            r#"{"clientId": "x", "status": "DONE"}"#,
        ),
    ] {
        let method = method.parse().unwrap();
        let (status, reply) = app.call(method, path, Some(&read_only), Some(body)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path} {body}: {reply}");
        assert_error(status, &reply, StatusCode::FORBIDDEN);
    }
}
