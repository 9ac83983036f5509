//! Another tenant's webhooks and deliveries are not found.

use common::domain::auth::Role;
use lambda_http::http::StatusCode;
use serde_json::json;

use super::{create, id_of, items, webhook};
use crate::receiver::{Receiver, Reply};
use crate::support::{assert_error, Backend, TestApp};

crate::on_both_stores!(another_tenants_webhooks_and_deliveries_are_not_found);

async fn another_tenants_webhooks_and_deliveries_are_not_found(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, owner) = app.tenant_with(Role::Admin).await;
    let (_, stranger) = app.tenant_with(Role::Admin).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let created = create(&app, &owner, &webhook(&receiver.url, &["*"])).await;
    let id = id_of(&created);
    let (_, notified) = app
        .post(
            "/api/webhooks/notify",
            &owner,
            &json!({"event": "client.created", "data": {}}),
        )
        .await;
    let delivery_id = notified["deliveryIds"][0].as_str().unwrap().to_owned();

    let path = format!("/api/webhooks/{id}");
    let attempts = [
        app.get(&path, &stranger).await,
        app.patch(&path, &stranger, &json!({"active": false})).await,
        app.delete(&path, &stranger).await,
        app.post(&format!("{path}/test"), &stranger, &json!({}))
            .await,
        app.post(&format!("{path}/rotate-secret"), &stranger, &json!({}))
            .await,
        app.get(&format!("{path}/deliveries"), &stranger).await,
        app.get(
            &format!("/api/webhooks/deliveries/{delivery_id}"),
            &stranger,
        )
        .await,
        app.post("/api/webhooks/retry", &stranger, &json!({"webhookId": id}))
            .await,
    ];
    for (status, body) in &attempts {
        assert_error(*status, body, StatusCode::NOT_FOUND);
    }
    assert!(
        receiver.seen().is_empty(),
        "the stranger's test sent nothing"
    );

    let (_, listed) = app.get("/api/webhooks", &stranger).await;
    assert_eq!(listed, json!({"items": [], "nextCursor": null}));
    let (_, stats) = app.get("/api/webhooks/stats", &stranger).await;
    assert_eq!(stats["total"], 0, "{stats}");
    assert_eq!(stats["webhooks"], json!([]), "{stats}");
    let (status, result) = app
        .post(
            "/api/webhooks/notify",
            &stranger,
            &json!({"event": "client.created", "data": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["deliveryIds"], json!([]));

    // The owner's webhook is untouched: same fields, same secret, one delivery.
    let (status, mine) = app.get(&path, &owner).await;
    assert_eq!(status, StatusCode::OK);
    let mut expected = created.clone();
    expected.as_object_mut().unwrap().remove("secret");
    assert_eq!(mine, expected);
    let (_, history) = app.get(&format!("{path}/deliveries"), &owner).await;
    assert_eq!(items(&history).len(), 1, "{history}");
    let (_, stats) = app.get("/api/webhooks/stats", &owner).await;
    assert_eq!(stats["total"], 1, "{stats}");
    receiver.expect_secrets(&[created["secret"].as_str().unwrap()]);
    let (_, result) = app.post(&format!("{path}/test"), &owner, &json!({})).await;
    assert_eq!(result["success"], true, "{result}");
    assert!(
        receiver.seen()[0].standard_signature_ok,
        "not rotated by the stranger"
    );
}
