//! Bad input of every kind gets the right 4xx and the seed's envelope, never a 500.

use common::domain::auth::Role;
use common::http::routes::{RequestBody, ROUTES};
use lambda_http::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{assert_error, Backend, TestApp};

async fn app_with_admin() -> (TestApp, String) {
    let app = TestApp::new(Backend::Sqlite).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    (app, key)
}

#[tokio::test]
async fn missing_or_bad_keys_are_401_on_every_route() {
    let (app, _) = app_with_admin().await;
    for route in ROUTES.iter().filter(|route| !route.public) {
        let path = route
            .path
            .replace("{id}", "01a20e5a-b0d3-7590-af84-920f2e4295fe");
        for key in [None, Some("crm_not-a-key"), Some("")] {
            let (status, body) = app.call(route.method.clone(), &path, key, None).await;
            assert_error(status, &body, StatusCode::UNAUTHORIZED);
        }
    }
    // The scheme must be Bearer.
    let request = lambda_http::http::Request::builder()
        .uri("/api/crm/sync-status")
        .header("authorization", "Basic YWRtaW46YWRtaW4=")
        .body(lambda_http::Body::Empty)
        .unwrap();
    let response = common::http::handle(&app.deps, ROUTES, request).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
}

#[tokio::test]
async fn malformed_json_is_400_on_every_body_route() {
    let (app, key) = app_with_admin().await;
    let id = app.create_client(&key, "A").await;
    let bodies = ["", "{", "nul", "[1,2]", "\"text\"", "{\"name\": }", "\u{0}"];
    for (method, path) in [
        (Method::POST, "/api/clients".to_owned()),
        (Method::PATCH, format!("/api/clients/{id}")),
        (Method::POST, "/api/crm/update-sync-status".to_owned()),
        (Method::POST, "/api/keys".to_owned()),
    ] {
        for body in bodies {
            let (status, reply) = app
                .call(method.clone(), &path, Some(&key), Some(body))
                .await;
            assert_error(status, &reply, StatusCode::BAD_REQUEST);
        }
    }
}

#[tokio::test]
async fn wrong_types_and_values_name_each_field() {
    let (app, key) = app_with_admin().await;
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        ("/api/clients", json!({}), vec!["name"]),
        (
            "/api/clients",
            json!({"name": 1, "email": false}),
            vec!["name", "email"],
        ),
        (
            "/api/clients",
            json!({"name": "x".repeat(201)}),
            vec!["name"],
        ),
        (
            "/api/clients",
            json!({"name": "A", "email": "a@b"}),
            vec!["email"],
        ),
        (
            "/api/clients",
            json!({"name": "A", "phone": "abc"}),
            vec!["phone"],
        ),
        (
            "/api/clients",
            json!({"name": "A", "syncStatus": "SYNCED"}),
            vec!["syncStatus"],
        ),
        (
            "/api/crm/update-sync-status",
            json!({}),
            vec!["clientId", "status"],
        ),
        (
            "/api/crm/update-sync-status",
            json!({"clientId": "123", "status": "synced"}),
            vec!["clientId", "status"],
        ),
        (
            "/api/crm/update-sync-status",
            json!({"clientId": 5, "status": ["SYNCED"]}),
            vec!["clientId", "status"],
        ),
        (
            "/api/keys",
            json!({"name": "k", "role": "ROOT"}),
            vec!["role"],
        ),
    ];
    for (path, body, mut fields) in cases {
        fields.sort_unstable();
        let (status, reply) = app.post(path, &key, &body).await;
        assert_error(status, &reply, StatusCode::BAD_REQUEST);
        let details = reply["details"].as_object().expect("details");
        let mut named: Vec<&str> = details.keys().map(String::as_str).collect();
        named.sort_unstable();
        assert_eq!(named, fields, "{path} {body}");
        assert!(details
            .values()
            .all(|m| m.as_str().is_some_and(|m| !m.is_empty())));
    }
}

#[tokio::test]
async fn unknown_client_is_404_and_bad_ids_are_400() {
    let (app, key) = app_with_admin().await;
    let unknown = uuid::Uuid::now_v7();
    let (status, body) = app
        .post(
            "/api/crm/update-sync-status",
            &key,
            &json!({"clientId": unknown, "status": "SYNCED"}),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "Client not found.");
    for path in [
        "/api/clients/not-a-uuid",
        "/api/clients/%00",
        "/api/keys/123",
    ] {
        let method = if path.starts_with("/api/keys") {
            Method::DELETE
        } else {
            Method::GET
        };
        let (status, body) = app.call(method, path, Some(&key), None).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
        assert_eq!(body["details"]["id"], "must be a UUID");
    }
}

#[tokio::test]
async fn bad_query_parameters_are_400() {
    let (app, key) = app_with_admin().await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=abc", "limit"),
        ("cursor=zzz", "cursor"),
        ("syncStatus=DONE", "syncStatus"),
    ] {
        let (status, body) = app.get(&format!("/api/clients?{query}"), &key).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
        assert!(body["details"].get(field).is_some(), "{query}: {body}");
    }
}

#[tokio::test]
async fn bodies_over_256_kib_are_413_and_nothing_is_written() {
    let (app, key) = app_with_admin().await;
    let huge = json!({"name": "x".repeat(256 * 1024)}).to_string();
    let (status, body) = app
        .call(Method::POST, "/api/clients", Some(&key), Some(&huge))
        .await;
    assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE);
    let (_, counts) = app.get("/api/crm/sync-status", &key).await;
    assert_eq!(counts["totalClients"], 0);
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let (app, key) = app_with_admin().await;
    for path in [
        "/dashboard",
        "/api",
        "/api/clientz",
        "/api/clients/1/2",
        "/api/crm/sync-status/",
    ] {
        let (status, body) = app.call(Method::GET, path, Some(&key), None).await;
        assert_error(status, &body, StatusCode::NOT_FOUND);
    }
    for (method, path) in [
        (Method::DELETE, "/api/crm/sync-status"),
        (Method::GET, "/api/crm/update-sync-status"),
        (Method::PUT, "/api/clients"),
    ] {
        let (status, body) = app.call(method, path, Some(&key), None).await;
        assert_error(status, &body, StatusCode::METHOD_NOT_ALLOWED);
    }
}

#[tokio::test]
async fn a_key_twice_in_one_object_is_400_naming_it_at_any_depth() {
    let (app, key) = app_with_admin().await;
    let cases = [
        ("/api/clients", r#"{"name":"A","name":"B"}"#, "name"),
        (
            "/api/webhooks",
            r#"{"url":"https://example.com/h","events":["*"],"headers":{"X-Team":"a","X-Team":"b"}}"#,
            "headers.X-Team",
        ),
        (
            "/api/webhooks/notify",
            r#"{"event":"lead.created","data":{"lead":{"id":1,"id":2}}}"#,
            "data.lead.id",
        ),
        (
            "/graphql",
            r#"{"query":"{ __typename }","variables":{"a":1,"a":2}}"#,
            "variables.a",
        ),
    ];
    for (path, body, named) in cases {
        let (status, reply) = app.call(Method::POST, path, Some(&key), Some(body)).await;
        assert_error(status, &reply, StatusCode::BAD_REQUEST);
        assert_eq!(reply["details"][named], "appears twice", "{path}: {reply}");
    }
    let (_, counts) = app.get("/api/crm/sync-status", &key).await;
    assert_eq!(counts["totalClients"], 0);
    let (_, webhooks) = app.get("/api/webhooks", &key).await;
    assert_eq!(webhooks["items"], json!([]));
}

/// Blank to the eye: white space, zero-width and joining characters, the byte-order mark,
/// accents with no letter, a Hangul filler, the blank Braille pattern.
const INVISIBLE_NAMES: [&str; 7] = [
    "\u{200b}",
    " \u{200b}\u{200c}\u{200d} ",
    "\u{feff}\u{2060}",
    "\u{301}\u{301}",
    "\u{3164}",
    "\u{2800}",
    "\u{202e}\u{2066}\u{fe0f}",
];

#[tokio::test]
async fn names_of_invisible_characters_only_are_400_on_every_text_field() {
    let (app, key) = app_with_admin().await;
    let id = app.create_client(&key, "A").await;
    for name in INVISIBLE_NAMES {
        for (method, path, body, field) in [
            (
                Method::POST,
                "/api/clients".to_owned(),
                json!({"name": name}),
                "name",
            ),
            (
                Method::PATCH,
                format!("/api/clients/{id}"),
                json!({"name": name}),
                "name",
            ),
            (
                Method::POST,
                "/api/clients".to_owned(),
                json!({"name": "A", "company": name}),
                "company",
            ),
            (
                Method::POST,
                "/api/keys".to_owned(),
                json!({"name": name, "role": "READ_ONLY"}),
                "name",
            ),
            (
                Method::POST,
                "/api/webhooks".to_owned(),
                json!({"url": "https://example.com/h", "events": ["*"], "description": name}),
                "description",
            ),
        ] {
            let body = body.to_string();
            let (status, reply) = app.call(method, &path, Some(&key), Some(&body)).await;
            assert_error(status, &reply, StatusCode::BAD_REQUEST);
            assert_eq!(
                reply["details"][field], "must have a visible character",
                "{path} {body}: {reply}"
            );
        }
    }
    // A visible character among invisible ones is a name.
    let (status, reply) = app
        .post("/api/clients", &key, &json!({"name": "\u{200b}e\u{301}"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
}

#[tokio::test]
async fn a_body_not_declared_as_json_is_415_on_every_route_that_reads_one() {
    let (app, key) = app_with_admin().await;
    let id = "01a20e5a-b0d3-7590-af84-920f2e4295fe";
    let body_routes = ROUTES
        .iter()
        .filter(|route| route.operation.request_body() != RequestBody::None);
    for route in body_routes {
        let path = route.path.replace("{id}", id);
        for content_type in [
            None,
            Some("application/x-www-form-urlencoded"),
            Some("text/plain;charset=UTF-8"),
            Some("text/json"),
            Some("application/json; charset=iso-8859-1"),
            Some("multipart/form-data; boundary=x"),
        ] {
            let (status, reply) = app
                .call_as(
                    route.method.clone(),
                    &path,
                    Some(&key),
                    content_type,
                    Some("{}"),
                )
                .await;
            assert_error(status, &reply, StatusCode::UNSUPPORTED_MEDIA_TYPE);
            assert_eq!(
                reply["error"],
                "Request body must be JSON, sent with Content-Type: application/json.",
                "{} {path} {content_type:?}",
                route.method
            );
        }
    }
}

#[tokio::test]
async fn json_types_with_parameters_are_accepted_and_bodiless_calls_need_none() {
    let (app, key) = app_with_admin().await;
    let id = app.create_client(&key, "A").await;
    for content_type in [
        "application/json; charset=utf-8",
        "Application/JSON;charset=\"UTF-8\"",
        "application/merge-patch+json",
    ] {
        let (status, reply) = app
            .call_as(
                Method::PATCH,
                &format!("/api/clients/{id}"),
                Some(&key),
                Some(content_type),
                Some(r#"{"company":"Engines"}"#),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{content_type}: {reply}");
    }
    // A route whose body may be left out needs no type without one; a route that reads no
    // body ignores the header.
    let (status, reply) = app
        .call_as(Method::POST, "/api/webhooks/retry", Some(&key), None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let (status, reply) = app
        .call_as(
            Method::GET,
            "/api/crm/sync-status",
            Some(&key),
            Some("text/plain"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
}
