//! The permission matrix over every route and every role, through the HTTP layer.

use common::domain::auth::Role;
use common::http::routes::{Operation, ROUTES};
use lambda_http::http::StatusCode;
use serde_json::json;

use crate::support::{Backend, TestApp};

/// Who may do what, written out as users read it; the domain table must agree.
fn allowed(role: Role, operation: Operation) -> bool {
    use Operation::*;
    match role {
        Role::Admin => true,
        Role::Manager => !matches!(operation, CreateKey | ListKeys | DeleteKey),
        Role::SalesRep => matches!(
            operation,
            GetSyncStatus
                | UpdateSyncStatus
                | CreateClient
                | ListClients
                | GetClient
                | UpdateClient
        ),
        Role::ReadOnly => matches!(operation, GetSyncStatus | ListClients | GetClient),
    }
}

#[tokio::test]
async fn every_route_for_every_role() {
    let app = TestApp::new(Backend::Sqlite).await;
    let (tenant, admin) = app.tenant_with(Role::Admin).await;
    for role in Role::ALL {
        let key = app.key_for(tenant, role).await;
        for route in ROUTES {
            // Fresh targets for each call, made by the admin, so every allowed call can succeed.
            let client = app.create_client(&admin, "target").await;
            let (_, spare_key) = app
                .post(
                    "/api/keys",
                    &admin,
                    &json!({"name": "spare", "role": "READ_ONLY"}),
                )
                .await;
            let id = match route.operation {
                Operation::DeleteKey => spare_key["id"].as_str().unwrap().to_owned(),
                _ => client.to_string(),
            };
            let body = match route.operation {
                Operation::UpdateSyncStatus => {
                    Some(json!({"clientId": client, "status": "SYNCED"}))
                }
                Operation::CreateClient => Some(json!({"name": "new"})),
                Operation::UpdateClient => Some(json!({"company": "changed"})),
                Operation::CreateKey => Some(json!({"name": "k", "role": "READ_ONLY"})),
                _ => None,
            };
            let path = route.path.replace("{id}", &id);
            let body = body.map(|b| b.to_string());
            let (status, reply) = app
                .call(route.method.clone(), &path, Some(&key), body.as_deref())
                .await;
            if allowed(role, route.operation) {
                assert!(
                    status.is_success(),
                    "{role:?} {} {}: {status} {reply}",
                    route.method,
                    route.path
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{role:?} {} {}: {reply}",
                    route.method,
                    route.path
                );
                assert_eq!(reply["success"], false);
                assert!(reply["error"].as_str().unwrap().contains("permission"));
            }
        }
    }
}
