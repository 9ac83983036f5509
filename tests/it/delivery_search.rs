//! The tenant's delivery search (`GET /api/webhooks/deliveries`, GraphQL `deliveries`) on both
//! stores: the store's search for each filter alone and combined, with paging and order; ten
//! thousand deliveries searched through both faces; bad input; another tenant's webhook.

use chrono::{DateTime, Duration, Utc};
use common::domain::auth::{Caller, Role};
use common::domain::delivery::{Delivery, DeliveryStatus};
use common::domain::delivery_search::DeliveryFilter;
use common::domain::page::PageRequest;
use common::graphql::limits::TimeBudgets;
use common::ports::{DeliveryChange, Store};
use lambda_http::http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::conformance::pages_of;
use crate::support::{assert_error, fresh_store, Backend, TestApp};

crate::on_both_stores!(
    each_filter_alone_and_combined_finds_exactly_its_deliveries,
    search_pages_newest_first_whatever_the_page_size,
    a_status_change_moves_a_delivery_between_status_searches,
    ten_thousand_deliveries_are_found_by_each_filter_over_rest_and_graphql,
    bad_search_parameters_are_a_400_naming_each,
    bad_search_arguments_are_bad_user_input_naming_each,
    another_tenants_webhook_finds_nothing,
);

const EVENTS: [&str; 5] = [
    "lead.created",
    "opportunity.updated",
    "client.created",
    "account.deleted",
    "contact.updated",
];

/// A millisecond to start from, as a store keeps times.
fn base() -> DateTime<Utc> {
    let now = Utc::now() - Duration::hours(1);
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap()
}

/// A delivery created at `at` (its id carries that millisecond, as its event's id does), already
/// in `status`: the store writes it as it is, so a search sees it at once.
fn delivery_at(
    tenant: Uuid,
    webhook: Uuid,
    event: &str,
    status: DeliveryStatus,
    at: DateTime<Utc>,
) -> Delivery {
    let event_id = Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        at.timestamp() as u64,
        at.timestamp_subsec_nanos(),
    ));
    let mut delivery = Delivery::new(tenant, webhook, event_id, event, "{}", at);
    delivery.status = status;
    if !status.is_open() {
        delivery.next_attempt_at = None;
    }
    delivery
}

/// What a search must find among `all`, newest first: the rule written out again, plainly.
fn expected(all: &[Delivery], tenant: Uuid, filter: &DeliveryFilter) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = all
        .iter()
        .filter(|d| d.tenant_id == tenant)
        .filter(|d| filter.status.is_none_or(|s| d.status == s))
        .filter(|d| filter.event.as_ref().is_none_or(|e| d.event == *e))
        .filter(|d| filter.webhook_id.is_none_or(|w| d.webhook_id == w))
        .filter(|d| filter.since.is_none_or(|since| d.created_at >= since))
        .filter(|d| filter.until.is_none_or(|until| d.created_at < until))
        .map(|d| d.id)
        .collect();
    ids.sort_by(|a, b| b.cmp(a));
    ids
}

/// Every page of a search on the store, `limit` at a time.
async fn search_pages(
    store: &dyn Store,
    tenant: Uuid,
    filter: &DeliveryFilter,
    limit: usize,
) -> Vec<Vec<Uuid>> {
    pages_of(limit, |page: PageRequest| async move {
        let found = store.search_deliveries(tenant, filter, page).await.unwrap();
        (
            found.items.iter().map(|d| d.id).collect::<Vec<_>>(),
            found.next_cursor,
        )
    })
    .await
}

/// 60 deliveries of one tenant, 10 ms apart, over two webhooks, two events and the five
/// statuses, and as many of another tenant to the same webhook ids (which it cannot have, but a
/// store must not mix them up even so). Returns the tenant, its webhooks, the first
/// delivery's time and every delivery written.
async fn small_history(store: &dyn Store) -> (Uuid, [Uuid; 2], DateTime<Utc>, Vec<Delivery>) {
    let (tenant, other) = (Uuid::now_v7(), Uuid::now_v7());
    let webhooks = [Uuid::now_v7(), Uuid::now_v7()];
    let start = base();
    let mut all = Vec::new();
    for owner in [tenant, other] {
        for i in 0..60 {
            all.push(delivery_at(
                owner,
                webhooks[i % 2],
                EVENTS[(i / 2) % 2],
                DeliveryStatus::ALL[(i / 4) % 5],
                start + Duration::milliseconds(10 * i as i64),
            ));
        }
    }
    store.create_deliveries(&all).await.unwrap();
    (tenant, webhooks, start, all)
}

/// Every combination of the filters: no status or each of the five, with and without an event,
/// a webhook, and a time range (from, to, both, and bounds within a millisecond).
async fn each_filter_alone_and_combined_finds_exactly_its_deliveries(backend: Backend) {
    let fixture = fresh_store(backend).await;
    let store = fixture.store.as_ref();
    let (tenant, webhooks, start, all) = small_history(store).await;
    let ms = |n: f64| start + Duration::microseconds((n * 1000.0) as i64);
    let ranges = [
        (None, None),
        (Some(ms(100.0)), None),
        (None, Some(ms(400.0))),
        (Some(ms(145.5)), Some(ms(450.5))),
    ];
    let statuses = std::iter::once(None).chain(DeliveryStatus::ALL.map(Some));
    let mut searched = 0;
    for status in statuses {
        for event in [None, Some(EVENTS[0].to_owned())] {
            for webhook_id in [None, Some(webhooks[0])] {
                for (since, until) in ranges {
                    let filter = DeliveryFilter {
                        status,
                        event: event.clone(),
                        webhook_id,
                        since,
                        until,
                    };
                    let want = expected(&all, tenant, &filter);
                    let found = search_pages(store, tenant, &filter, 100).await;
                    searched += usize::from(!want.is_empty());
                    assert_eq!(found, [want], "{filter:?}");
                }
            }
        }
    }
    assert!(
        searched > 60,
        "most combinations find something: {searched}"
    );
    // The two bounds of a range: `since` inclusive, `until` exclusive.
    let edge = DeliveryFilter {
        since: Some(ms(100.0)),
        until: Some(ms(120.0)),
        ..DeliveryFilter::default()
    };
    let found = search_pages(store, tenant, &edge, 100).await.concat();
    let times: Vec<DateTime<Utc>> = found
        .iter()
        .map(|id| all.iter().find(|d| d.id == *id).unwrap().created_at)
        .collect();
    assert_eq!(times, [ms(110.0), ms(100.0)]);
}

/// Pages of any size join into the whole result, newest first, each delivery once; a page is
/// full unless it is the last.
async fn search_pages_newest_first_whatever_the_page_size(backend: Backend) {
    let fixture = fresh_store(backend).await;
    let store = fixture.store.as_ref();
    let (tenant, webhooks, start, all) = small_history(store).await;
    let filters = [
        DeliveryFilter::default(),
        DeliveryFilter {
            status: Some(DeliveryStatus::Failed),
            ..DeliveryFilter::default()
        },
        DeliveryFilter {
            event: Some(EVENTS[1].to_owned()),
            ..DeliveryFilter::default()
        },
        DeliveryFilter {
            webhook_id: Some(webhooks[1]),
            since: Some(start + Duration::milliseconds(50)),
            ..DeliveryFilter::default()
        },
    ];
    for filter in &filters {
        let want = expected(&all, tenant, filter);
        for limit in [1, 4, 7] {
            let pages = search_pages(store, tenant, filter, limit).await;
            assert_eq!(pages.concat(), want, "{filter:?}, pages of {limit}");
            let (last, full) = pages.split_last().unwrap();
            assert!(full.iter().all(|page| page.len() == limit), "{pages:?}");
            assert!(!last.is_empty() || want.is_empty(), "{pages:?}");
        }
    }
}

/// A transition that changes the status takes the delivery out of its old status's search and
/// into the new one's, for every index; one that keeps it (a claim) moves nothing.
async fn a_status_change_moves_a_delivery_between_status_searches(backend: Backend) {
    let fixture = fresh_store(backend).await;
    let store = fixture.store.as_ref();
    let (tenant, webhook) = (Uuid::now_v7(), Uuid::now_v7());
    let created = delivery_at(tenant, webhook, EVENTS[0], DeliveryStatus::Pending, base());
    store
        .create_deliveries(std::slice::from_ref(&created))
        .await
        .unwrap();
    let claimed = created
        .claimed(Utc::now(), std::time::Duration::from_secs(5))
        .unwrap();
    let mut done = claimed.clone();
    done.status = DeliveryStatus::Success;
    done.next_attempt_at = None;
    done.lease_until = None;
    done.version += 1;
    let search = |status: DeliveryStatus, event: Option<&str>, webhook_id: Option<Uuid>| {
        let filter = DeliveryFilter {
            status: Some(status),
            event: event.map(str::to_owned),
            webhook_id,
            ..DeliveryFilter::default()
        };
        async move { search_pages(store, tenant, &filter, 10).await.concat() }
    };
    let dimensions = [
        (None, None),
        (Some(EVENTS[0]), None),
        (None, Some(webhook)),
        (Some(EVENTS[0]), Some(webhook)),
    ];
    for (before, after, attempt) in [
        (created.clone(), claimed.clone(), None),
        (claimed, done, None),
    ] {
        store
            .write_delivery(&DeliveryChange {
                before,
                after: after.clone(),
                attempt,
            })
            .await
            .unwrap();
        for (event, webhook_id) in dimensions {
            for status in [DeliveryStatus::Pending, DeliveryStatus::Success] {
                let found = search(status, event, webhook_id).await;
                let want = if status == after.status {
                    vec![created.id]
                } else {
                    vec![]
                };
                assert_eq!(
                    found, want,
                    "{status:?} {event:?} {webhook_id:?} after {:?}",
                    after.status
                );
            }
        }
    }
}

/// The REST search's pages, `limit` at a time; checks the envelope of each.
async fn rest_pages(app: &TestApp, key: &str, query: &str) -> Vec<Uuid> {
    let mut found = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/webhooks/deliveries?limit=100&{query}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let (status, body) = app.get(&path, key).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let items = body["items"].as_array().unwrap();
        assert!(items.len() <= 100);
        found.extend(
            items
                .iter()
                .map(|d| d["id"].as_str().unwrap().parse::<Uuid>().unwrap()),
        );
        match body["nextCursor"].as_str() {
            Some(next) => {
                assert_eq!(items.len(), 100, "only the last page is short");
                cursor = Some(next.to_owned());
            }
            None => return found,
        }
    }
}

const SEARCH: &str = "query Search($filter: DeliveryFilter, $after: String) {
    deliveries(filter: $filter, first: 100, after: $after) {
        edges { cursor node { id status event webhookId createdAt } }
        pageInfo { hasNextPage endCursor }
    } }";

/// The GraphQL search's pages, 100 at a time, as a READ_ONLY key of `tenant` asks for them
/// (`POST /graphql`'s path after the key check). A query's budget is 10 s; on moto a search
/// without a status is 21 requests that each read the whole table (0.3 s apiece at 10,000
/// deliveries, more when other tests share moto), so the pages run with a minute's budget.
async fn graphql_pages(app: &TestApp, tenant: Uuid, filter: Value) -> Vec<Uuid> {
    let caller = Caller {
        tenant_id: tenant,
        key_id: Uuid::now_v7(),
        key_name: "reader".into(),
        role: Role::ReadOnly,
        expires_at: None,
    };
    let budgets = TimeBudgets {
        query: std::time::Duration::from_secs(60),
        ..TimeBudgets::DEFAULT
    };
    let mut found = Vec::new();
    let mut after = Value::Null;
    loop {
        let body = json!({"query": SEARCH, "variables": {"filter": filter, "after": after}});
        let response = common::graphql::execute_within(
            &app.deps,
            &caller,
            body.to_string().as_bytes(),
            budgets,
        )
        .await
        .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let reply: Value = serde_json::from_slice(response.body()).unwrap();
        assert!(reply.get("errors").is_none(), "{reply}");
        let connection = &reply["data"]["deliveries"];
        let edges = connection["edges"].as_array().unwrap();
        found.extend(edges.iter().map(|edge| {
            edge["node"]["id"]
                .as_str()
                .unwrap()
                .parse::<Uuid>()
                .unwrap()
        }));
        if connection["pageInfo"]["hasNextPage"] != true {
            return found;
        }
        assert_eq!(edges.len(), 100, "only the last page is short");
        after = connection["pageInfo"]["endCursor"].clone();
    }
}

/// 10,000 deliveries of one tenant, one a millisecond, over 40 webhooks: each filter alone finds
/// a few hundred of them (a webhook's, a rarer event's, the FAILED ones, the newest and the
/// oldest 250 ms), and all four at once a few, through REST and GraphQL: exactly the expected
/// deliveries, newest first, a hundred a page. (A few hundred, not thousands: moto reads its
/// whole table for every Query, 0.3 s at this size, and a search without a status reads twenty
/// ranges a page.)
async fn ten_thousand_deliveries_are_found_by_each_filter_over_rest_and_graphql(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (tenant, key) = app.tenant_with(Role::ReadOnly).await;
    let webhooks: Vec<Uuid> = (0..40).map(|_| Uuid::now_v7()).collect();
    let start = base() - Duration::seconds(20);
    let others = [
        DeliveryStatus::Success,
        DeliveryStatus::Pending,
        DeliveryStatus::Retrying,
        DeliveryStatus::Cancelled,
    ];
    let all: Vec<Delivery> = (0..10_000)
        .map(|i| {
            let event = if i % 50 == 7 {
                EVENTS[4]
            } else {
                EVENTS[i % 4]
            };
            let status = if i % 40 == 3 {
                DeliveryStatus::Failed
            } else {
                others[i % 4]
            };
            delivery_at(
                tenant,
                webhooks[i % 40],
                event,
                status,
                start + Duration::milliseconds(i as i64),
            )
        })
        .collect();
    for chunk in all.chunks(1_000) {
        app.deps.store.create_deliveries(chunk).await.unwrap();
    }
    let at = |ms: i64| start + Duration::milliseconds(ms);
    let text = |time: DateTime<Utc>| common::time::rfc3339(time);
    let sample = &all[7_777];
    let searches: Vec<(DeliveryFilter, String, Value, usize)> = vec![
        (
            DeliveryFilter {
                status: Some(DeliveryStatus::Failed),
                ..DeliveryFilter::default()
            },
            "status=FAILED".into(),
            json!({"status": "FAILED"}),
            250,
        ),
        (
            DeliveryFilter {
                event: Some(EVENTS[4].into()),
                ..DeliveryFilter::default()
            },
            format!("event={}", EVENTS[4]),
            json!({"event": EVENTS[4]}),
            200,
        ),
        (
            DeliveryFilter {
                webhook_id: Some(webhooks[11]),
                ..DeliveryFilter::default()
            },
            format!("webhookId={}", webhooks[11]),
            json!({"webhookId": webhooks[11]}),
            250,
        ),
        (
            DeliveryFilter {
                since: Some(at(9_750)),
                ..DeliveryFilter::default()
            },
            format!("since={}", text(at(9_750))),
            json!({"since": text(at(9_750))}),
            250,
        ),
        (
            DeliveryFilter {
                until: Some(at(250)),
                ..DeliveryFilter::default()
            },
            format!("until={}", text(at(250))),
            json!({"until": text(at(250))}),
            250,
        ),
        (
            DeliveryFilter {
                status: Some(sample.status),
                event: Some(sample.event.clone()),
                webhook_id: Some(sample.webhook_id),
                since: Some(at(5_000)),
                until: Some(at(9_000)),
            },
            format!(
                "status={}&event={}&webhookId={}&since={}&until={}",
                sample.status.as_str(),
                sample.event,
                sample.webhook_id,
                text(at(5_000)),
                text(at(9_000))
            ),
            json!({"status": sample.status.as_str(), "event": sample.event,
                   "webhookId": sample.webhook_id, "since": text(at(5_000)),
                   "until": text(at(9_000))}),
            // The sample's webhook has 100 of the 4,000 in the range, all of its status; 20 of
            // them are of the rarer event.
            80,
        ),
    ];
    for (filter, query, variables, count) in &searches {
        let want = expected(&all, tenant, filter);
        assert_eq!(want.len(), *count, "{query}");
        assert_eq!(rest_pages(&app, &key, query).await, want, "REST {query}");
        assert_eq!(
            graphql_pages(&app, tenant, variables.clone()).await,
            want,
            "GraphQL {variables}"
        );
    }
    // No filter: the first page is the newest fifty (the default), summaries.
    let (status, body) = app.get("/api/webhooks/deliveries", &key).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let newest = expected(&all, tenant, &DeliveryFilter::default());
    let first: Vec<Uuid> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(first, newest[..50], "50 by default, newest first");
    assert_eq!(body["items"][0]["status"], all[9_999].status.as_str());
    assert!(body["items"][0].get("payload").is_none(), "a summary");
}

/// Every bad parameter is a 400 with the envelope, naming it in `details`; all at once name all.
async fn bad_search_parameters_are_a_400_naming_each(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::ReadOnly).await;
    let cases = [
        ("status=DONE", "status"),
        ("status=failed", "status"),
        ("status=", "status"),
        ("event=lead.exploded", "event"),
        ("event=", "event"),
        ("webhookId=42", "webhookId"),
        ("since=yesterday", "since"),
        ("until=2026-12-01", "until"),
        ("since=2026-12-01T10:00:00", "since"),
        (
            "since=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00Z",
            "since",
        ),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("cursor=!!", "cursor"),
    ];
    for (query, field) in cases {
        let (status, body) = app
            .get(&format!("/api/webhooks/deliveries?{query}"), &key)
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
        let details = body["details"].as_object().unwrap();
        assert_eq!(
            details.keys().collect::<Vec<_>>(),
            [field],
            "{query}: {body}"
        );
    }
    let (status, body) = app
        .get(
            "/api/webhooks/deliveries?status=DONE&event=x&webhookId=y&since=z\
             &until=2026-12-01T00:00:00Z&limit=0&cursor=!!",
            &key,
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let details = body["details"].as_object().unwrap();
    assert_eq!(
        details.keys().map(String::as_str).collect::<Vec<_>>(),
        ["cursor", "event", "limit", "since", "status", "webhookId"]
    );
    // Equal bounds are an empty range, not an error; a long way apart is fine too.
    for query in [
        "since=2026-12-01T00:00:00Z&until=2026-12-01T00:00:00Z",
        "since=0001-01-01T00:00:00Z&until=9999-12-31T23:59:59Z",
    ] {
        let (status, body) = app
            .get(&format!("/api/webhooks/deliveries?{query}"), &key)
            .await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(body, json!({"items": [], "nextCursor": null}));
    }
}

/// GraphQL refuses the same values with BAD_USER_INPUT, one error per argument, REST's messages.
async fn bad_search_arguments_are_bad_user_input_naming_each(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::ReadOnly).await;
    let query = r#"{ deliveries(first: 0, after: "!!", filter: {event: "lead.exploded",
        webhookId: "42", since: "2026-12-02T00:00:00Z", until: "2026-12-01T00:00:00Z"})
        { edges { node { id } } } }"#;
    let (status, body) = crate::graphql::gql(&app, &key, query, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut fields: Vec<(String, String)> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| {
            assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{body}");
            (
                error["extensions"]["field"].as_str().unwrap().to_owned(),
                error["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    fields.sort();
    let names: Vec<&str> = fields.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        names,
        ["after", "event", "first", "since", "webhookId"],
        "{body}"
    );
    let (_, rest) = app
        .get(
            "/api/webhooks/deliveries?event=lead.exploded&since=2026-12-02T00:00:00Z\
             &until=2026-12-01T00:00:00Z&webhookId=42",
            &key,
        )
        .await;
    for (field, message) in &fields {
        if let Some(sentence) = rest["details"][field].as_str() {
            assert_eq!(*message, format!("{field}: {sentence}"));
        }
    }
    // A time that is none is refused by the DateTime scalar, before any resolver runs.
    let (status, body) = crate::graphql::gql(
        &app,
        &key,
        r#"{ deliveries(filter: {since: "yesterday"}) { edges { cursor } } }"#,
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("RFC 3339"),
        "{body}"
    );
}

/// A webhook of another tenant finds nothing, through either face, and neither does a search
/// without a filter: only the caller's tenant's deliveries are ever read.
async fn another_tenants_webhook_finds_nothing(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (owner_tenant, owner) = app.tenant_with(Role::Admin).await;
    let (stranger_tenant, stranger) = app.tenant_with(Role::Admin).await;
    let (status, created) = app
        .post(
            "/api/webhooks",
            &owner,
            &json!({"url": "https://example.com/hook", "events": ["lead.*"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let webhook = created["id"].as_str().unwrap().to_owned();
    let (status, notified) = app
        .post(
            "/api/webhooks/notify",
            &owner,
            &json!({"event": "lead.created", "data": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{notified}");
    let delivery = notified["deliveryIds"][0].as_str().unwrap().to_owned();

    let path = format!("/api/webhooks/deliveries?webhookId={webhook}");
    let (_, mine) = app.get(&path, &owner).await;
    assert_eq!(mine["items"][0]["id"], delivery.as_str(), "{mine}");
    for query in [
        path.as_str(),
        "/api/webhooks/deliveries",
        "/api/webhooks/deliveries?event=lead.created",
    ] {
        let (status, theirs) = app.get(query, &stranger).await;
        assert_eq!(status, StatusCode::OK, "{theirs}");
        assert_eq!(theirs, json!({"items": [], "nextCursor": null}), "{query}");
    }
    let found = graphql_pages(&app, stranger_tenant, json!({"webhookId": webhook})).await;
    assert!(found.is_empty());
    let found = graphql_pages(&app, owner_tenant, json!({"webhookId": webhook})).await;
    assert_eq!(found, [delivery.parse::<Uuid>().unwrap()]);
}
