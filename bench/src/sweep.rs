//! The sweeper's pace: one run, given a Lambda invocation's 60 s, over a backlog of deliveries
//! that were written and never enqueued (as after a queue outage). Deliveries recovered per
//! second, on SQLite and on DynamoDB and SQS (moto), and what the run asked of the store.

use std::time::{Duration, Instant};

use common::domain::delivery::{payload, Delivery};
use common::service::sweeper::sweep;
use serde_json::json;
use uuid::Uuid;

use crate::counting::figure;
use crate::harness::Service;

/// The sweeper function's timeout in the SAM template.
const LAMBDA_TIMEOUT: Duration = Duration::from_secs(60);
/// A payload this size makes a read of it show in the read units.
const PAYLOAD_PADDING: usize = 4_000;

pub async fn run(quick: bool) -> anyhow::Result<()> {
    let count = if quick { 2_000 } else { 5_000 };
    println!("\n## Sweep: one run over {count} stranded deliveries\n");
    println!(
        "{count} deliveries of 4 KB written through the Store port an hour before the run and \
         never enqueued. One `sweep` with a deadline 60 s away (the sweeper Lambda's timeout): \
         it stops 5 s before it, so a run that leaves work shows fewer recovered. DynamoDB runs \
         on moto, which serialises its requests: its pace is moto's; the requests and capacity \
         units are what AWS would bill. Before this change a run recovered at most 500.\n"
    );
    println!(
        "| store | recovered by one run | run | deliveries/s | store calls | DynamoDB requests \
         | read units/delivery | write units/delivery | SQS requests |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let service = Service::sqlite().await?;
    measure(&service, "SQLite", count).await?;
    let service = Service::dynamodb("sweep").await?;
    measure(&service, "DynamoDB (moto)", count).await?;
    Ok(())
}

async fn measure(service: &Service, store: &str, count: usize) -> anyhow::Result<()> {
    strand(service, count).await?;
    service.reset_meters();
    let started = Instant::now();
    let report = sweep(&service.deps, Some(started + LAMBDA_TIMEOUT)).await?;
    let took = started.elapsed();
    let port = service.port.take();
    let recovered = report.deliveries_requeued;
    let per = recovered.max(1) as f64;
    let calls = port
        .0
        .iter()
        .map(|(name, n)| format!("{name} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let (requests, reads, writes, sqs) = match &service.aws {
        Some(aws) => {
            let metered = aws.meter.take();
            (
                format!(
                    "{} ({})",
                    metered.requests("dynamodb"),
                    metered.breakdown("dynamodb", 1.0)
                ),
                figure(metered.units.read / per),
                figure(metered.units.write / per),
                format!(
                    "{} ({})",
                    metered.requests("sqs"),
                    metered.breakdown("sqs", 1.0)
                ),
            )
        }
        None => ("–".into(), "–".into(), "–".into(), "–".into()),
    };
    println!(
        "| {store} | {recovered} of {count}{} | {:.1} s | {:.0} | {calls} | {requests} | {reads} \
         | {writes} | {sqs} |",
        if report.unfinished {
            " (stopped at its deadline)"
        } else {
            ""
        },
        took.as_secs_f64(),
        recovered as f64 / took.as_secs_f64(),
    );
    Ok(())
}

/// `count` deliveries of one webhook, due an hour ago, never enqueued.
async fn strand(service: &Service, count: usize) -> anyhow::Result<()> {
    let then = service.deps.clock.now() - chrono::Duration::hours(1);
    let (tenant, webhook) = (Uuid::now_v7(), Uuid::now_v7());
    let data = json!({"padding": "x".repeat(PAYLOAD_PADDING)});
    let stranded = (0..count)
        .map(|_| {
            let event = Uuid::now_v7();
            let body = payload(event, "lead.created", &data, then)?;
            Ok(Delivery::new(
                tenant,
                webhook,
                event,
                "lead.created",
                body,
                then,
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    for chunk in stranded.chunks(1_000) {
        service.deps.store.create_deliveries(chunk).await?;
    }
    Ok(())
}
