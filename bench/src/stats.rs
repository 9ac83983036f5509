//! Issue 9, item 3: `GET /api/crm/sync-status` as a tenant's clients grow. The counters are a
//! per-tenant summary row/item, so latency and reads should not move with the client count.

use std::time::{Duration, Instant};

use common::domain::client::{Client, ClientFields};
use common::domain::sync_status::SyncStatus;
use common::http::routes::routes_of;
use common::ports::{ClientChange, SystemClock};
use common::service::tenants::create_tenant;
use futures_util::StreamExt;
use lambda_http::http::Method;
use uuid::Uuid;

use crate::counting::{figure, Metered, PortCalls};
use crate::harness::Service;
use crate::table::ms;
use crate::table::percentile;

const STATUSES: [SyncStatus; 4] = [
    SyncStatus::Synced,
    SyncStatus::Pending,
    SyncStatus::Failed,
    SyncStatus::NeedsUpdate,
];

pub async fn run(quick: bool) -> anyhow::Result<()> {
    // SQLite answers in microseconds, where one timer tick moves a 200-sample p50 by 7%: it
    // gets ten times the rounds (still under a second per size).
    let (sqlite_rounds, dynamodb_rounds) = if quick { (300, 30) } else { (2_000, 200) };
    let sqlite: &[usize] = if quick {
        &[100, 10_000]
    } else {
        &[100, 10_000, 100_000]
    };
    let dynamodb: &[usize] = if quick { &[100, 1_000] } else { &[100, 10_000] };
    println!("\n## Stats: `GET /api/crm/sync-status` as clients grow\n");
    println!(
        "One tenant per size in one store, clients seeded through the Store port's \
         `write_client` (the rows and counters a user's creations write). Then {sqlite_rounds} \
         (SQLite) or {dynamodb_rounds} (DynamoDB) rounds of one call per tenant, interleaved \
         so that load from elsewhere on the machine falls on every size alike, through `common::http::handle` (the sync-status Lambda's path: \
         API-key check, which a warm process answers from memory for 10 s after a store lookup, \
         then the counters), after 10 warm-up calls each. DynamoDB runs on moto: \
         its latency is moto's; the requests and read units are what AWS would bill.\n"
    );
    println!(
        "| store | clients | totalClients read | p50 | p99 | p50 ÷ 100-client p50 (goal ≤ 1.1×) \
         | store reads/call (goal: 1) | DynamoDB requests/call | read units/call |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let service = Service::sqlite().await?;
    measure_sizes(&service, "SQLite", sqlite, sqlite_rounds, 4).await?;
    let service = Service::dynamodb("stats").await?;
    measure_sizes(&service, "DynamoDB (moto)", dynamodb, dynamodb_rounds, 16).await?;
    Ok(())
}

/// A tenant of the measurement and what its calls saw.
struct Sized {
    clients: usize,
    key: String,
    times: Vec<Duration>,
    total: i64,
    port: PortCalls,
    aws: Metered,
}

async fn measure_sizes(
    service: &Service,
    store: &str,
    sizes: &[usize],
    rounds: usize,
    seeders: usize,
) -> anyhow::Result<()> {
    let routes = routes_of("sync-status");
    let path = "/api/crm/sync-status";
    let started = Instant::now();
    let mut tenants = Vec::new();
    for &clients in sizes {
        let (tenant, key) =
            create_tenant(service.deps.store.as_ref(), &SystemClock, "stats").await?;
        seed(service, tenant.id, clients, seeders).await?;
        tenants.push(Sized {
            clients,
            key,
            times: Vec::with_capacity(rounds),
            total: 0,
            port: PortCalls::default(),
            aws: Metered::default(),
        });
    }
    let seeding = started.elapsed();
    for tenant in &tenants {
        for _ in 0..10 {
            service
                .call_as(&tenant.key, &routes, Method::GET, path, None)
                .await?;
        }
    }
    service.reset_meters();
    for _ in 0..rounds {
        for tenant in &mut tenants {
            let started = Instant::now();
            let body = service
                .call_as(&tenant.key, &routes, Method::GET, path, None)
                .await?;
            tenant.times.push(started.elapsed());
            tenant.total = body["totalClients"].as_i64().unwrap_or(-1);
            tenant.port.add(service.port.take());
            if let Some(aws) = &service.aws {
                tenant.aws.add(aws.meter.take());
            }
        }
    }
    let mut base = None;
    for tenant in &mut tenants {
        tenant.times.sort();
        let p50 = percentile(&tenant.times, 0.50);
        let base = *base.get_or_insert(p50);
        let per = rounds as f64;
        let (requests, units) = match &service.aws {
            Some(_) => (
                format!(
                    "{} ({})",
                    figure(tenant.aws.requests("dynamodb") as f64 / per),
                    tenant.aws.breakdown("dynamodb", per)
                ),
                figure(tenant.aws.units.read / per),
            ),
            None => ("–".to_owned(), "–".to_owned()),
        };
        println!(
            "| {store} | {} | {} | {} | {} | {:.2}× | {} ({}) | {requests} | {units} |",
            tenant.clients,
            tenant.total,
            latency(p50),
            latency(percentile(&tenant.times, 0.99)),
            p50.as_secs_f64() / base.as_secs_f64(),
            figure(tenant.port.reads() as f64 / per),
            tenant.port.read_breakdown(per),
        );
    }
    println!(
        "\n{store}: seeding {} clients took {:.1} s (not part of the figures).\n",
        sizes.iter().sum::<usize>(),
        seeding.as_secs_f64()
    );
    Ok(())
}

/// Sub-millisecond figures (SQLite's) in microseconds, where two decimals of a millisecond
/// would round the ratio away.
fn latency(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{} µs", d.as_micros())
    } else {
        ms(d)
    }
}

/// Creates `count` clients of the tenant, in a rotation of the four statuses.
async fn seed(
    service: &Service,
    tenant_id: Uuid,
    count: usize,
    concurrent: usize,
) -> anyhow::Result<()> {
    let store = &service.deps.store;
    let now = service.deps.clock.now();
    let results: Vec<_> = futures_util::stream::iter(0..count)
        .map(|n| async move {
            let fields = ClientFields {
                name: format!("client {n}"),
                email: Some(format!("client{n}@example.com")),
                ..ClientFields::default()
            };
            let mut client = Client::new(tenant_id, fields, now);
            client.sync_status = STATUSES[n % STATUSES.len()];
            if client.sync_status == SyncStatus::Synced {
                client.last_synced_at = Some(now);
            }
            store
                .write_client(&ClientChange {
                    tenant_id,
                    before: None,
                    after: Some(client),
                    events: Vec::new(),
                    now,
                })
                .await
        })
        .buffer_unordered(concurrent)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<_>, _>>()?;
    service.reset_meters();
    Ok(())
}
