//! Issue 22, item 1: a sync job's report of 500 clients, as 500 single update-sync-status
//! calls (8 in flight, as a job would send them) beside one batch (which applies 8 at once),
//! through the update-sync-status function's routes, on SQLite and on DynamoDB (moto): client
//! updates per second, and on DynamoDB the requests and capacity units per updated client.

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::http::routes::{routes_of, Route};
use futures_util::StreamExt;
use lambda_http::http::Method;
use serde_json::{json, Value};

use crate::counting::{figure, Metered, PortCalls};
use crate::harness::Service;

const UPDATE: &str = "/api/crm/update-sync-status";
/// Single calls in flight at once: as many as the batch applies at once.
const IN_FLIGHT: usize = 8;

/// What one way of reporting cost.
struct Run {
    took: Duration,
    port: PortCalls,
    aws: Option<Metered>,
}

pub async fn run(quick: bool) -> anyhow::Result<()> {
    let clients = if quick { 100 } else { 500 };
    println!("\n## Batch update-sync-status: {clients} clients, singles beside one batch\n");
    println!(
        "Each way moves every client to a new status (NEEDS_UPDATE → PENDING by single calls, \
         then PENDING → FAILED with a reason by one batch), so each update is a real change with \
         its counters and its `sync.status.changed` event (no webhook subscribed). Calls go \
         through `common::http::handle` with the update-sync-status function's routes. \
         Capacity units follow DynamoDB's size rules (bench/src/counting/capacity.rs).\n"
    );
    println!("| store | way | updates/s | store port calls / client | DynamoDB requests / client | write units / client | read units / client |");
    println!("|---|---|---|---|---|---|---|");
    let sqlite = Service::sqlite().await?;
    measure("SQLite", &sqlite, clients).await?;
    if std::env::var("AWS_ENDPOINT_URL").is_ok() {
        let dynamodb = Service::dynamodb("batch").await?;
        measure("DynamoDB (moto)", &dynamodb, clients).await?;
    } else {
        println!("| DynamoDB | skipped: AWS_ENDPOINT_URL is not set (run through scripts/bench.sh) | | | | | |");
    }
    Ok(())
}

async fn measure(store: &str, service: &Service, clients: usize) -> anyhow::Result<()> {
    let ids = create_clients(service, clients).await?;
    let routes = Arc::new(routes_of("update-sync-status"));

    service.reset_meters();
    let started = Instant::now();
    let singles = futures_util::stream::iter(ids.iter().map(|id| {
        let routes = Arc::clone(&routes);
        let body = json!({"clientId": id, "status": "PENDING"}).to_string();
        async move { call(service, &routes, body).await }
    }))
    .buffer_unordered(IN_FLIGHT)
    .collect::<Vec<_>>()
    .await;
    for answer in singles {
        answer?;
    }
    let singles = taken(service, started.elapsed());

    let updates: Vec<Value> = ids
        .iter()
        .map(|id| json!({"clientId": id, "status": "FAILED", "error": "CRM answered 503", "errorCode": "CRM_UNAVAILABLE"}))
        .collect();
    service.reset_meters();
    let started = Instant::now();
    let answer = call(service, &routes, json!({"updates": updates}).to_string()).await?;
    let batch = taken(service, started.elapsed());
    let applied = answer["results"].as_array().map_or(0, |results| {
        results.iter().filter(|r| r["ok"] == true).count()
    });
    anyhow::ensure!(
        applied == clients,
        "the batch applied {applied} of {clients}: {answer}"
    );

    row(
        store,
        &format!("{clients} single calls, {IN_FLIGHT} in flight"),
        &singles,
        clients,
    );
    row(store, &format!("one batch of {clients}"), &batch, clients);
    Ok(())
}

async fn create_clients(service: &Service, count: usize) -> anyhow::Result<Vec<String>> {
    let routes = routes_of("clients");
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        let body = json!({"name": format!("client {i}")}).to_string();
        let created = service
            .call(&routes, Method::POST, "/api/clients", Some(body))
            .await?;
        let id = created["id"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("no id in {created}"))?;
        ids.push(id.to_owned());
    }
    Ok(ids)
}

async fn call(service: &Service, routes: &[Route], body: String) -> anyhow::Result<Value> {
    service.call(routes, Method::POST, UPDATE, Some(body)).await
}

fn taken(service: &Service, took: Duration) -> Run {
    Run {
        took,
        port: service.port.take(),
        aws: service.aws.as_ref().map(|aws| aws.meter.take()),
    }
}

fn row(store: &str, way: &str, run: &Run, clients: usize) {
    let per = clients as f64;
    let rate = per / run.took.as_secs_f64();
    let port = figure((run.port.reads() + run.port.writes()) as f64 / per);
    let (requests, writes, reads) = match &run.aws {
        Some(aws) => (
            format!(
                "{} ({})",
                figure(aws.requests("dynamodb") as f64 / per),
                aws.breakdown("dynamodb", per)
            ),
            figure(aws.units.write / per),
            figure(aws.units.read / per),
        ),
        None => ("–".to_owned(), "–".to_owned(), "–".to_owned()),
    };
    println!("| {store} | {way} | {rate:.0} | {port} | {requests} | {writes} | {reads} |");
}
