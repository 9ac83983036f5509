//! Header values are write-only for roles that may not change webhooks.

use common::domain::auth::Role;
use lambda_http::http::StatusCode;
use serde_json::json;

use super::{assert_field_error, create, id_of};
use crate::support::{Backend, TestApp};

crate::on_both_stores!(
    header_values_are_write_only_for_roles_that_may_not_change_webhooks,
    a_patch_that_sends_masked_values_back_keeps_them,
);

/// Header values often carry the receiver's credentials: READ_ONLY and SALES_REP keys read
/// the names, and `********` for every value; ADMIN and MANAGER (WEBHOOK_UPDATE) read them.
async fn header_values_are_write_only_for_roles_that_may_not_change_webhooks(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (tenant, admin) = app.tenant_with(Role::Admin).await;
    let headers = json!({"authorization": "Bearer receiver-token", "x-team": "crm"});
    let mut created = create(
        &app,
        &admin,
        &json!({"url": "https://example.com/h", "events": ["*"], "headers": headers}),
    )
    .await;
    assert_eq!(
        created["headers"], headers,
        "the creator reads what it sent"
    );
    created.as_object_mut().unwrap().remove("secret");
    let path = format!("/api/webhooks/{}", id_of(&created));
    let masked = json!({"authorization": "********", "x-team": "********"});
    for role in Role::ALL {
        let key = app.key_for(tenant, role).await;
        let may_update = role.can(common::domain::auth::Permission::WebhookUpdate);
        let mut expected = created.clone();
        if !may_update {
            expected["headers"] = masked.clone();
        }
        let (status, one) = app.get(&path, &key).await;
        assert_eq!((status, &one), (StatusCode::OK, &expected), "{role:?}");
        let (status, listed) = app.get("/api/webhooks", &key).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(listed["items"], json!([expected]), "{role:?}");
        assert_eq!(
            listed.to_string().contains("receiver-token"),
            may_update,
            "{role:?}"
        );
    }
}

/// A client that shows the masked headers and sends them back (a form saved as it was shown)
/// never overwrites a value with the mask; a masked value for a header the webhook does not
/// have is refused, since there is no value to keep.
async fn a_patch_that_sends_masked_values_back_keeps_them(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (tenant, admin) = app.tenant_with(Role::Admin).await;
    let created = create(
        &app,
        &admin,
        &json!({"url": "https://example.com/h", "events": ["*"],
            "headers": {"authorization": "Bearer receiver-token", "x-team": "crm"}}),
    )
    .await;
    let path = format!("/api/webhooks/{}", id_of(&created));
    let manager = app.key_for(tenant, Role::Manager).await;
    let (status, patched) = app
        .patch(
            &path,
            &manager,
            &json!({"headers": {"Authorization": "********", "x-team": "sales"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        patched["headers"],
        json!({"authorization": "Bearer receiver-token", "x-team": "sales"})
    );
    let (status, reply) = app
        .patch(&path, &manager, &json!({"headers": {"x-new": "********"}}))
        .await;
    assert_field_error(
        status,
        &reply,
        "headers",
        "a masked value with none to keep",
    );
    let (_, fetched) = app.get(&path, &admin).await;
    assert_eq!(fetched["headers"], patched["headers"]);
}
