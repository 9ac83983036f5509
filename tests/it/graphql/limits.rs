//! What one request may cost: depth, complexity, root fields, outbound calls, size, the
//! tenant's share and the time budget.

use std::time::Duration;

use common::domain::auth::{Caller, Role};
use common::graphql::limits::TimeBudgets;
use lambda_http::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::{aliases, create, data, error_codes, named_aliases, only_error, walk, PAGE};
use crate::receiver::{Receiver, Reply};
use crate::support::{assert_error, Backend, TestApp};

crate::on_both_stores!(
    the_tools_introspection_query_passes_the_limits,
    a_too_deep_query_is_refused,
    a_too_costly_query_is_refused,
    six_test_deliveries_in_one_request_are_refused,
    a_body_over_256_kib_is_413_before_parsing,
    twenty_aliases_of_one_root_field_run_and_a_twenty_first_is_refused,
    documents_of_thousands_of_aliases_are_refused,
    fifty_root_fields_in_all_run_and_more_are_refused_even_through_fragments,
    a_filtered_list_looks_at_one_store_page_and_pays_for_it,
    a_tenant_over_its_share_waits_then_gets_429_while_others_are_served,
    a_request_past_its_time_budget_is_stopped_with_timeout,
);

/// graphql-js's introspection query (what GraphiQL and most tools send), as deep as it goes.
const INTROSPECTION: &str = r"
query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) {
    name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
}";

async fn the_tools_introspection_query_passes_the_limits(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;

    // The tools' introspection passes the limits.
    let schema = data(&app, &key, INTROSPECTION, json!({})).await;
    assert_eq!(schema["__schema"]["queryType"]["name"], "Query");
}

async fn a_too_deep_query_is_refused(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;

    // Too deep.
    let deep = format!(
        "{{ __schema {{ types {{ fields {{ type {} name {} }} }} }} }}",
        "{ ofType ".repeat(20),
        "}".repeat(20)
    );
    refused_as_too(&app, &key, &deep, "deep").await;
}

async fn a_too_costly_query_is_refused(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;

    // Too costly: many aliases of full pages.
    let huge: String = (0..20)
        .map(|n| format!("a{n}: webhooks(first: 100) {{ edges {{ node {{ id url events }} }} }} "))
        .collect();
    refused_as_too(&app, &key, &format!("{{ {huge} }}"), "complex").await;
}

async fn six_test_deliveries_in_one_request_are_refused(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;

    // One request cannot pack many writes or outbound calls: six test deliveries are too many.
    let unknown = uuid::Uuid::now_v7();
    let tests: String = (0..6)
        .map(|n| format!(r#"t{n}: testWebhook(id: "{unknown}") {{ success }} "#))
        .collect();
    refused_as_too(&app, &key, &format!("mutation {{ {tests} }}"), "complex").await;
}

async fn a_body_over_256_kib_is_413_before_parsing(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;

    // Over 256 KiB: the REST 413, before any parsing.
    let padding = " ".repeat(256 * 1024);
    let body =
        json!({"query": format!("{{ syncStatus {{ totalClients }} }}{padding}")}).to_string();
    let (status, reply) = app
        .call(Method::POST, "/graphql", Some(&key), Some(&body))
        .await;
    assert_error(status, &reply, StatusCode::PAYLOAD_TOO_LARGE);
}

async fn twenty_aliases_of_one_root_field_run_and_a_twenty_first_is_refused(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::ReadOnly).await;
    let sync = "syncStatus { totalClients }";

    let twenty = data(
        &app,
        &key,
        &format!("{{ {} }}", aliases(sync, 20)),
        json!({}),
    )
    .await;
    assert_eq!(twenty.as_object().unwrap().len(), 20);
    let error = only_error(
        &app,
        &key,
        &format!("{{ {} }}", aliases(sync, 21)),
        json!({}),
        "GRAPHQL_VALIDATION_FAILED",
    )
    .await;
    assert!(
        error["message"].as_str().unwrap().contains("`syncStatus`"),
        "{error}"
    );
}

async fn documents_of_thousands_of_aliases_are_refused(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::ReadOnly).await;
    let sync = "syncStatus { totalClients }";

    // The report's documents: 1,600 filtered lists, 2,400 `syncStatus`.
    let filtered = r#"webhooks(first: 1, filter: {event: "lead.created"}) { edges { cursor } }"#;
    for (field, n) in [(filtered, 1600), (sync, 2400)] {
        let document = format!("{{ {} }}", aliases(field, n));
        only_error(
            &app,
            &key,
            &document,
            json!({}),
            "GRAPHQL_VALIDATION_FAILED",
        )
        .await;
    }
}

async fn fifty_root_fields_in_all_run_and_more_are_refused_even_through_fragments(
    backend: Backend,
) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::ReadOnly).await;
    let sync = "syncStatus { totalClients }";

    // Fifty in all run; one more is refused, and so are repeats through fragments.
    let fifty = format!(
        "{} {} {}",
        aliases(sync, 20),
        named_aliases("e", "webhookEvents { name }", 20),
        named_aliases("t", "webhookStats { total }", 10),
    );
    data(&app, &key, &format!("{{ {fifty} }}"), json!({})).await;
    let error = only_error(
        &app,
        &key,
        &format!("{{ {fifty} __typename }}"),
        json!({}),
        "GRAPHQL_VALIDATION_FAILED",
    )
    .await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("50 root fields"),
        "{error}"
    );
    let spread = format!(
        "query {{ ...F ...F ...F }} fragment F on Query {{ {} }}",
        aliases(sync, 7)
    );
    only_error(&app, &key, &spread, json!({}), "GRAPHQL_VALIDATION_FAILED").await;
}

async fn a_filtered_list_looks_at_one_store_page_and_pays_for_it(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    // 120 webhooks; only the last receives `lead.created`.
    let mut last = String::new();
    for n in 0..120 {
        let events = if n == 119 {
            "lead.created"
        } else {
            "client.created"
        };
        let (status, created) = app
            .post(
                "/api/webhooks",
                &key,
                &json!({"url": format!("https://example.com/{n}"), "events": [events]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        last = created["id"].as_str().unwrap().to_owned();
    }
    // The first page looks at 100, finds none, and says where the next look starts.
    let first = data(
        &app,
        &key,
        PAGE,
        json!({"first": 10, "filter": {"event": "lead.created"}}),
    )
    .await["webhooks"]
        .clone();
    assert_eq!(first["edges"], json!([]), "{first}");
    assert_eq!(first["pageInfo"]["hasNextPage"], true, "{first}");
    assert!(first["pageInfo"]["endCursor"].is_string(), "{first}");
    let (ids, sizes) = walk(&app, &key, 10, json!({"event": "lead.created"})).await;
    assert_eq!((ids, sizes), (vec![last], vec![0, 1]));

    // Nine full pages are within the complexity limit; nine filtered ones are not: each also
    // pays for the 100 webhooks it may look at.
    let pages = |filter: &str| -> String {
        let page =
            format!("webhooks(first: 100{filter}) {{ edges {{ node {{ id url events }} }} }}");
        format!("{{ {} }}", aliases(&page, 9))
    };
    data(&app, &key, &pages(""), json!({})).await;
    refused_as_too(&app, &key, &pages(", filter: {active: true}"), "complex").await;
}

/// A GraphQL request as `handle` answers it, headers included.
async fn graphql_response(
    app: &TestApp,
    key: &str,
    query: &str,
) -> lambda_http::Response<lambda_http::Body> {
    let request = lambda_http::http::Request::builder()
        .method(Method::POST)
        .uri("/graphql")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(lambda_http::Body::Text(
            json!({ "query": query }).to_string(),
        ))
        .unwrap();
    common::http::handle(&app.deps, common::http::routes::ROUTES, request).await
}

async fn a_tenant_over_its_share_waits_then_gets_429_while_others_are_served(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (tenant, key) = app.tenant_with(Role::ReadOnly).await;
    let (_, other) = app.tenant_with(Role::ReadOnly).await;
    let query = "{ syncStatus { totalClients } }";
    let mut held = Vec::new();
    for _ in 0..common::admission::TENANT_LIMIT {
        held.push(app.deps.admission.admit(tenant).await.unwrap());
    }

    let response = graphql_response(&app, &key, query).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = serde_json::from_slice(response.body()).unwrap();
    assert_error(response.status(), &body, StatusCode::TOO_MANY_REQUESTS);

    data(&app, &other, query, json!({})).await;
    drop(held);
    data(&app, &key, query, json!({})).await;
}

async fn a_request_past_its_time_budget_is_stopped_with_timeout(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (tenant, key) = app.tenant_with(Role::Admin).await;
    let silent = Receiver::start(Reply::Hang).await;
    let (webhook, _) = create(&app, &key, &silent.url, &["client.created"]).await;
    let caller = Caller {
        tenant_id: tenant,
        key_id: uuid::Uuid::now_v7(),
        key_name: "admin".into(),
        role: Role::Admin,
        expires_at: None,
    };
    let budgets = TimeBudgets {
        query: Duration::from_secs(10),
        mutation: Duration::from_millis(300),
    };
    let body = json!({
        "query": "mutation T($id: ID!) { testWebhook(id: $id) { success } }",
        "variables": {"id": webhook},
    })
    .to_string();
    let started = std::time::Instant::now();
    let response = common::graphql::execute_within(&app.deps, &caller, body.as_bytes(), budgets)
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "stopped at its budget"
    );
    assert_eq!(response.status(), StatusCode::OK);
    let reply: Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(reply["data"], Value::Null, "{reply}");
    assert_eq!(
        error_codes(&reply),
        [("TIMEOUT".to_owned(), None)],
        "{reply}"
    );
}

/// Refused before anything runs (`GRAPHQL_VALIDATION_FAILED`), with a message that says why
/// (`deep`, `complex`).
async fn refused_as_too(app: &TestApp, key: &str, document: &str, why: &str) {
    let error = only_error(app, key, document, json!({}), "GRAPHQL_VALIDATION_FAILED").await;
    assert!(error["message"].as_str().unwrap().contains(why), "{error}");
}
