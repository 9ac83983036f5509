//! Cursor pagination and filters of the webhook list.

use common::domain::auth::Role;
use serde_json::{json, Value};

use super::{create, data, walk, PAGE};
use crate::support::{Backend, TestApp};

crate::on_both_stores!(
    pagination_walks_25_webhooks_ten_at_a_time_once_each,
    the_same_cursor_gives_the_same_page_and_any_edge_cursor_resumes_after_it,
    first_is_capped_at_100_and_defaults_to_a_page_that_holds_all_25,
    filters_narrow_the_webhook_list,
);

/// Creates 25 webhooks; returns their ids in creation order.
async fn twenty_five_webhooks(app: &TestApp, key: &str) -> Vec<String> {
    let mut created = Vec::new();
    for n in 0..25 {
        let (id, _) = create(
            app,
            key,
            &format!("https://example.com/hooks/{n}"),
            &["client.*"],
        )
        .await;
        created.push(id);
    }
    created
}

async fn pagination_walks_25_webhooks_ten_at_a_time_once_each(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let created = twenty_five_webhooks(&app, &key).await;

    let (ids, sizes) = walk(&app, &key, 10, Value::Null).await;
    assert_eq!(sizes, [10, 10, 5]);
    assert_eq!(ids, created, "each once, in creation order");
}

async fn the_same_cursor_gives_the_same_page_and_any_edge_cursor_resumes_after_it(
    backend: Backend,
) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    let created = twenty_five_webhooks(&app, &key).await;

    // Cursors are stable: the same `after` gives the same page, and any edge's cursor resumes
    // right after it.
    let first_page = data(&app, &key, PAGE, json!({"first": 10})).await["webhooks"].clone();
    let cursor = first_page["pageInfo"]["endCursor"].clone();
    let again = data(&app, &key, PAGE, json!({"first": 10, "after": cursor})).await;
    let once_more = data(&app, &key, PAGE, json!({"first": 10, "after": cursor})).await;
    assert_eq!(again, once_more);
    assert_eq!(
        again["webhooks"]["edges"][0]["node"]["id"],
        created[10].as_str()
    );
    let third_cursor = first_page["edges"][2]["cursor"].clone();
    let resumed = data(&app, &key, PAGE, json!({"first": 1, "after": third_cursor})).await;
    assert_eq!(
        resumed["webhooks"]["edges"][0]["node"]["id"],
        created[3].as_str()
    );
}

async fn first_is_capped_at_100_and_defaults_to_a_page_that_holds_all_25(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    twenty_five_webhooks(&app, &key).await;

    // `first` is capped at 100, and defaults to a page that holds all 25.
    let capped = data(&app, &key, PAGE, json!({"first": 1000})).await;
    assert_eq!(capped["webhooks"]["edges"].as_array().unwrap().len(), 25);
    let default = data(&app, &key, PAGE, json!({})).await;
    assert_eq!(default["webhooks"]["edges"].as_array().unwrap().len(), 25);
}

async fn filters_narrow_the_webhook_list(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, key) = app.tenant_with(Role::Admin).await;
    // n % 3: 0 → `lead.*`, 1 → `lead.created` and `client.deleted`, 2 → `sync.status.changed`;
    // n % 4 == 0 → deactivated. So 0, 4 and 8 are inactive.
    let mut ids = Vec::new();
    for n in 0..12 {
        let events: &[&str] = match n % 3 {
            0 => &["lead.*"],
            1 => &["lead.created", "client.deleted"],
            _ => &["sync.status.changed"],
        };
        let (id, _) = create(&app, &key, &format!("https://example.com/{n}"), events).await;
        if n % 4 == 0 {
            data(
                &app,
                &key,
                "mutation U($id: ID!) { updateWebhook(id: $id, input: {active: false}) { webhook { id } } }",
                json!({"id": id}),
            )
            .await;
        }
        ids.push(id);
    }
    let pick = |ns: &[usize]| -> Vec<String> { ns.iter().map(|&n| ids[n].clone()).collect() };
    for (first, filter, expected) in [
        (
            3,
            json!({"event": "lead.created"}),
            pick(&[0, 1, 3, 4, 6, 7, 9, 10]),
        ),
        (2, json!({"active": false}), pick(&[0, 4, 8])),
        (
            5,
            json!({"active": true, "event": "lead.converted"}),
            pick(&[3, 6, 9]),
        ),
        (
            4,
            json!({"event": "lead.*"}),
            pick(&[0, 1, 3, 4, 6, 7, 9, 10]),
        ),
        (10, json!({"event": "sync.*"}), pick(&[2, 5, 8, 11])),
        (10, json!({"event": "*"}), ids.clone()),
        (
            10,
            json!({"event": "client.deleted", "active": true}),
            pick(&[1, 7, 10]),
        ),
        (10, json!({"event": "account.deleted"}), Vec::new()),
    ] {
        let (found, _) = walk(&app, &key, first, filter.clone()).await;
        assert_eq!(found, expected, "{filter}");
    }
}
