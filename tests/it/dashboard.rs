//! The dashboard's server side: its page and assets served without a key under a policy that
//! keeps the page to itself, and `GET /api/me`, from which it learns what the key may do. The
//! page itself is driven in Chromium by `scripts/browser_tests.sh`.

use common::domain::auth::Role;
use common::http::dashboard::CONTENT_SECURITY_POLICY;
use lambda_http::http::{Method, StatusCode};
use serde_json::json;

use crate::support::{assert_error, Backend, TestApp};

crate::on_both_stores!(
    me_names_the_key_its_role_and_its_permissions,
    the_page_and_its_assets_are_served_without_a_key_under_the_policy,
);

async fn me_names_the_key_its_role_and_its_permissions(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (tenant, admin) = app.tenant_with(Role::Admin).await;
    let viewer = app.key_for(tenant, Role::ReadOnly).await;
    let (status, me) = app.get("/api/me", &viewer).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["tenantId"], tenant.to_string());
    assert_eq!(me["keyName"], "test");
    assert_eq!(me["role"], "READ_ONLY");
    assert_eq!(
        me["permissions"],
        json!(["CLIENT_READ", "SYNC_READ", "WEBHOOK_READ"])
    );
    let (_, keys) = app.get("/api/keys", &admin).await;
    let viewer_id = keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["role"] == "READ_ONLY")
        .unwrap()["id"]
        .clone();
    assert_eq!(me["keyId"], viewer_id);
    let (_, me) = app.get("/api/me", &admin).await;
    assert_eq!(me["role"], "ADMIN");
    assert!(me["permissions"]
        .as_array()
        .unwrap()
        .contains(&json!("KEY_MANAGE")));
    let (status, answer) = app.get("/api/me", "not-a-key").await;
    assert_error(status, &answer, StatusCode::UNAUTHORIZED);
}

async fn the_page_and_its_assets_are_served_without_a_key_under_the_policy(backend: Backend) {
    let app = TestApp::new(backend).await;
    for (path, media_type) in [
        ("/", "text/html"),
        ("/dashboard/app.js", "text/javascript"),
        ("/dashboard/app.css", "text/css"),
    ] {
        let response = app.respond(Method::GET, path, None, None, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers();
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with(media_type),
            "{path}: {:?}",
            headers["content-type"]
        );
        assert_eq!(headers["content-security-policy"], CONTENT_SECURITY_POLICY);
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(!response.body().is_empty());
    }
    let policy = CONTENT_SECURITY_POLICY;
    for rule in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(rule), "{policy}");
    }
    assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"));
    let (status, answer) = app
        .call(Method::GET, "/dashboard/other.js", None, None)
        .await;
    assert_error(status, &answer, StatusCode::NOT_FOUND);
    let (status, _) = app.call(Method::POST, "/", None, Some("{}")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}
