//! `GET /api/webhooks/deliveries`: the first page of a tenant's delivery search among many
//! deliveries, with no filter and with each filter, on SQLite and on DynamoDB (moto).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::domain::delivery::{Delivery, DeliveryStatus};
use common::http::routes::routes_of;
use common::time::rfc3339;
use lambda_http::http::Method;
use uuid::Uuid;

use crate::counting::{figure, Metered};
use crate::harness::Service;
use crate::table::{ms, percentile};

/// The events the deliveries are of: the first 7 (`n % 7`), so that one is a seventh.
const EVENTS: [&str; 10] = [
    "lead.created",
    "lead.updated",
    "lead.converted",
    "opportunity.created",
    "opportunity.stage_changed",
    "account.updated",
    "contact.created",
    "contact.updated",
    "client.created",
    "sync.status.changed",
];
const WEBHOOKS: usize = 20;

/// Statuses as a tenant's history holds them: most delivered, a few failed or in flight.
fn status_of(n: usize) -> DeliveryStatus {
    match n % 100 {
        0..=89 => DeliveryStatus::Success,
        90..=93 => DeliveryStatus::Failed,
        94..=96 => DeliveryStatus::Retrying,
        97..=98 => DeliveryStatus::Pending,
        _ => DeliveryStatus::Cancelled,
    }
}

/// Deliveries of a store: `CRM_BENCH_SEARCH_<STORE>_DELIVERIES`, else the default.
fn size(store: &str, default: usize) -> usize {
    std::env::var(format!("CRM_BENCH_SEARCH_{store}_DELIVERIES"))
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

pub async fn run(quick: bool) -> anyhow::Result<()> {
    let sqlite_size = size("SQLITE", if quick { 10_000 } else { 100_000 });
    // moto reads its whole table for every Query (0.3 s at 10,000 items, ten times that at
    // 100,000) and a search without a status makes twenty: at 100,000 one call takes a minute.
    let moto_size = size("MOTO", if quick { 2_000 } else { 10_000 });
    let (sqlite_rounds, dynamodb_rounds) = if quick { (50, 3) } else { (300, 5) };
    println!("\n## Search: `GET /api/webhooks/deliveries`, first page of 100\n");
    println!(
        "One tenant with {sqlite_size} (SQLite) or {moto_size} (moto) deliveries (one every \
         10 ms, over {WEBHOOKS} webhooks and 7 events; 90% SUCCESS, 4% FAILED, 3% RETRYING, 2% \
         PENDING, 1% CANCELLED), written through the Store port's `create_deliveries`. Each \
         search: {sqlite_rounds} (SQLite) or {dynamodb_rounds} (DynamoDB) calls through \
         `common::http::handle` (the webhook-deliveries Lambda's path), interleaved across the \
         searches, after a warm-up call each. DynamoDB runs on moto, which serves one request \
         at a time and reads its whole table for every Query: its latency is moto's, and grows \
         with the table where DynamoDB's does not; the requests and read units per search are \
         what AWS would bill, whatever the table's size. \
         (`CRM_BENCH_SEARCH_SQLITE_DELIVERIES`, `CRM_BENCH_SEARCH_MOTO_DELIVERIES` change the \
         sizes.)\n"
    );
    println!(
        "| store | search | found (page) | p50 | p99 | DynamoDB requests/search | read units/search |"
    );
    println!("|---|---|---|---|---|---|---|");
    let service = Service::sqlite().await?;
    measure(&service, "SQLite", sqlite_size, sqlite_rounds).await?;
    let service = Service::dynamodb("search").await?;
    measure(&service, "DynamoDB (moto)", moto_size, dynamodb_rounds).await?;
    Ok(())
}

struct Search {
    what: &'static str,
    query: String,
    found: usize,
    times: Vec<Duration>,
    aws: Metered,
}

async fn measure(service: &Service, store: &str, size: usize, rounds: usize) -> anyhow::Result<()> {
    let tenant = service.tenant_id;
    let webhooks: Vec<Uuid> = (0..WEBHOOKS).map(|_| Uuid::now_v7()).collect();
    let start = Utc::now() - chrono::Duration::milliseconds(10 * size as i64 + 60_000);
    let at = |n: usize| start + chrono::Duration::milliseconds(10 * n as i64);
    let started = Instant::now();
    let deliveries: Vec<Delivery> = (0..size)
        .map(|n| {
            delivery_at(
                tenant,
                webhooks[n % WEBHOOKS],
                EVENTS[n % 7],
                status_of(n),
                at(n),
            )
        })
        .collect();
    for chunk in deliveries.chunks(2_000) {
        service.deps.store.create_deliveries(chunk).await?;
    }
    let seeding = started.elapsed();
    let middle = rfc3339(at(size / 2));
    let mut searches: Vec<Search> = [
        ("no filter", String::new()),
        ("status=FAILED (4%)", "status=FAILED".to_owned()),
        ("event (1 of 7)", format!("event={}", EVENTS[3])),
        ("webhookId (1 of 20)", format!("webhookId={}", webhooks[7])),
        ("since (the newer half)", format!("since={middle}")),
        ("until (the older half)", format!("until={middle}")),
        (
            "all four: status, event, webhookId, since",
            format!(
                "status=SUCCESS&event={}&webhookId={}&since={middle}",
                EVENTS[3], webhooks[3]
            ),
        ),
        (
            "event and webhookId, no status",
            format!("event={}&webhookId={}", EVENTS[3], webhooks[3]),
        ),
    ]
    .into_iter()
    .map(|(what, query)| Search {
        what,
        query,
        found: 0,
        times: Vec::with_capacity(rounds),
        aws: Metered::default(),
    })
    .collect();
    let routes = routes_of("webhook-deliveries");
    for search in &searches {
        let path = format!("/api/webhooks/deliveries?limit=100&{}", search.query);
        service.call(&routes, Method::GET, &path, None).await?;
    }
    service.reset_meters();
    for _ in 0..rounds {
        for search in &mut searches {
            let path = format!("/api/webhooks/deliveries?limit=100&{}", search.query);
            let began = Instant::now();
            let body = service.call(&routes, Method::GET, &path, None).await?;
            search.times.push(began.elapsed());
            search.found = body["items"].as_array().map_or(0, Vec::len);
            if let Some(aws) = &service.aws {
                search.aws.add(aws.meter.take());
            }
        }
    }
    for search in &mut searches {
        search.times.sort();
        let per = rounds as f64;
        let (requests, units) = match &service.aws {
            Some(_) => (
                format!(
                    "{} ({})",
                    figure(search.aws.requests("dynamodb") as f64 / per),
                    search.aws.breakdown("dynamodb", per)
                ),
                figure(search.aws.units.read / per),
            ),
            None => ("–".to_owned(), "–".to_owned()),
        };
        println!(
            "| {store} | {} | {} | {} | {} | {requests} | {units} |",
            search.what,
            search.found,
            ms(percentile(&search.times, 0.50)),
            ms(percentile(&search.times, 0.99)),
        );
    }
    println!(
        "\n{store}: writing the {size} deliveries took {:.1} s (not part of the figures).\n",
        seeding.as_secs_f64()
    );
    Ok(())
}

/// A delivery created at `at`, its id carrying that millisecond as its event's does, written in
/// its final status.
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
