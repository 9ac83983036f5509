//! Issue 9, item 5: what a delivery costs on AWS, from a run of the real code on moto: notify
//! calls through the HTTP glue (the notify Lambda), the worker Lambda's batch handler fed the
//! way Lambda's SQS event source mapping feeds it, a signing receiver on 127.0.0.1.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use common::http::routes::routes_of;
use futures_util::StreamExt;
use lambda_http::http::Method;
use serde_json::json;

use crate::counting::{figure, Metered, PortCalls};
use crate::harness::{lambda_memory_gb, Service};
use crate::receiver::Receiver;

/// Lambda's SQS event source mapping: 5 pollers to start with, batches of up to 10
/// (the template's `BatchSize`), 20 s long polls, a DeleteMessageBatch for what succeeded.
const POLLERS: usize = 5;
const BATCH: i32 = 10;
/// Notify calls in flight at once (API Gateway invokes one notify Lambda per request).
const CLIENTS: usize = 8;

/// List prices (us-east-1, 2026-11), per unit.
const WRITE_UNIT: f64 = 0.625 / 1e6;
const READ_UNIT: f64 = 0.125 / 1e6;
const SQS_REQUEST: f64 = 0.40 / 1e6;
const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
const HTTP_API_REQUEST: f64 = 1.00 / 1e6;
const SVIX_PER_MILLION: f64 = 100.0;

/// Invocations of one function and their billed time (rounded up to the millisecond, as
/// Lambda bills).
#[derive(Default, Clone, Copy)]
struct Invocations {
    count: u64,
    billed_ms: u64,
}

impl Invocations {
    fn add(&mut self, took: Duration) {
        self.count += 1;
        self.billed_ms += u64::try_from(took.as_micros().div_ceil(1000)).unwrap_or(u64::MAX);
    }
}

pub async fn run(quick: bool) -> anyhow::Result<()> {
    let deliveries: u64 = if quick { 100 } else { 1_000 };
    println!("\n## Cost per delivery on AWS (DynamoDB, SQS, Lambda) beside Svix\n");
    let service = Arc::new(Service::dynamodb("cost").await?);
    let receiver = Receiver::start().await?;
    let created = service
        .call(
            &routes_of("webhooks"),
            Method::POST,
            "/api/webhooks",
            Some(json!({"url": receiver.url, "events": ["lead.created"]}).to_string()),
        )
        .await?;
    let secret = created["secret"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no secret in {created}"))?;
    receiver.set_secret(secret);
    service.reset_meters();

    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let worker = Arc::new(Mutex::new(Invocations::default()));
    let pollers: Vec<_> = (0..POLLERS)
        .map(|_| {
            tokio::spawn(poll(
                Arc::clone(&service),
                Arc::clone(&stop),
                Arc::clone(&worker),
            ))
        })
        .collect();
    let notify = send_events(&service, deliveries).await?;
    let arrived = wait_for(&receiver, deliveries, Duration::from_secs(180)).await;
    stop.store(true, Ordering::SeqCst);
    for poller in pollers {
        // A poller may sit in a 20 s long poll: its request is counted; stop waiting for it.
        poller.abort();
        poller.await.ok();
    }
    let took = started.elapsed();
    let aws = service.aws.as_ref().expect("DynamoDB service");
    let metered = aws.meter.take();
    let port = service.port.take();
    let worker = *worker.lock().expect("worker tally");
    let tally = receiver.tally.lock().expect("tally");
    anyhow::ensure!(
        arrived == deliveries,
        "only {arrived} of {deliveries} deliveries reached the receiver"
    );
    println!(
        "{deliveries} events `lead.created` (~1 KB payload), 1 event → 1 webhook (one \
         subscribed endpoint: every delivery is an event of its own, the plainest reading), all \
         answered 2xx on the first attempt; {arrived} arrived, {} duplicates, {} bad signatures, \
         in {:.1} s. Notify: {CLIENTS} requests in flight through `common::http::handle`; worker: \
         `common::lambda::handle_sqs_event` fed by {POLLERS} pollers doing what Lambda's event \
         source mapping does (ReceiveMessage of ≤ {BATCH}, 20 s long poll, DeleteMessageBatch; \
         AWS bills those requests to the queue's owner). Write and read units follow DynamoDB's \
         documented size rules (bench/src/counting/capacity.rs), GSI writes included. Lambda \
         GB-s: handler time measured here against moto, × {} MB from infra/template.yaml.\n",
        tally.duplicates,
        tally.bad_signatures,
        took.as_secs_f64(),
        lambda_memory_gb() * 1024.0,
    );
    drop(tally);
    print_table(deliveries, &metered, &port, notify, worker);
    Ok(())
}

/// Sends `count` notify requests, `CLIENTS` at a time; returns the notify Lambda's invocations.
async fn send_events(service: &Arc<Service>, count: u64) -> anyhow::Result<Invocations> {
    let routes = routes_of("notify");
    let padding = "x".repeat(900);
    let timings: Vec<anyhow::Result<Duration>> = futures_util::stream::iter(0..count)
        .map(|seq| {
            let body = json!({"event": "lead.created", "data": {"seq": seq, "padding": padding}});
            let routes = &routes;
            async move {
                let started = Instant::now();
                service
                    .call(
                        routes,
                        Method::POST,
                        "/api/webhooks/notify",
                        Some(body.to_string()),
                    )
                    .await?;
                Ok(started.elapsed())
            }
        })
        .buffer_unordered(CLIENTS)
        .collect()
        .await;
    let mut notify = Invocations::default();
    for took in timings {
        notify.add(took?);
    }
    Ok(notify)
}

/// One poller of the event source mapping, invoking the worker's handler per batch.
async fn poll(service: Arc<Service>, stop: Arc<AtomicBool>, worker: Arc<Mutex<Invocations>>) {
    let aws = service.aws.as_ref().expect("DynamoDB service");
    while !stop.load(Ordering::SeqCst) {
        let received = aws
            .sqs
            .receive_message()
            .queue_url(&aws.queue_url)
            .max_number_of_messages(BATCH)
            .wait_time_seconds(20)
            .send()
            .await;
        let messages = match received {
            Ok(output) => output.messages.unwrap_or_default(),
            Err(error) => {
                eprintln!("receive failed: {error}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let mut event = SqsEvent::default();
        event.records = messages
            .iter()
            .map(|m| {
                let mut record = SqsMessage::default();
                record.message_id = m.message_id.clone();
                record.receipt_handle = m.receipt_handle.clone();
                record.body = m.body.clone();
                record
            })
            .collect();
        let started = Instant::now();
        let deadline = Some(started + Duration::from_secs(60));
        let response = common::lambda::handle_sqs_event(&service.deps, event, deadline).await;
        worker.lock().expect("worker tally").add(started.elapsed());
        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        let entries: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .enumerate()
            .filter(|(_, m)| !failed.contains(&m.message_id().unwrap_or_default()))
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle()?)
                    .build()
                    .ok()
            })
            .collect();
        if !entries.is_empty() {
            if let Err(error) = aws
                .sqs
                .delete_message_batch()
                .queue_url(&aws.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                eprintln!("delete failed: {error}");
            }
        }
    }
}

async fn wait_for(receiver: &Receiver, count: u64, within: Duration) -> u64 {
    let deadline = Instant::now() + within;
    loop {
        let arrived = receiver.tally.lock().expect("tally").arrivals.len() as u64;
        if arrived >= count || Instant::now() > deadline {
            return arrived;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn print_table(
    deliveries: u64,
    metered: &Metered,
    port: &PortCalls,
    notify: Invocations,
    worker: Invocations,
) {
    let per = deliveries as f64;
    let million = 1e6;
    let wcu = metered.units.write / per;
    let rcu = metered.units.read / per;
    let sqs = metered.requests("sqs") as f64 / per;
    let invocations = (notify.count + worker.count) as f64 / per;
    let gb_seconds =
        (notify.billed_ms + worker.billed_ms) as f64 / 1000.0 * lambda_memory_gb() / per;
    let http_api = notify.count as f64 / per;
    let lines = [
        (
            "DynamoDB write units".to_owned(),
            figure(wcu),
            "≤ 7",
            "$0.625/M",
            wcu * WRITE_UNIT * million,
        ),
        (
            "DynamoDB read units".to_owned(),
            figure(rcu),
            "≤ 1.5",
            "$0.125/M",
            rcu * READ_UNIT * million,
        ),
        (
            format!("SQS requests ({})", metered.breakdown("sqs", per)),
            figure(sqs),
            "≤ 1.5",
            "$0.40/M",
            sqs * SQS_REQUEST * million,
        ),
        (
            format!(
                "Lambda invocations (notify {}, worker {})",
                figure(notify.count as f64 / per),
                figure(worker.count as f64 / per)
            ),
            figure(invocations),
            "–",
            "$0.20/M",
            invocations * LAMBDA_REQUEST * million,
        ),
        (
            format!(
                "Lambda GB-s (notify {:.1} ms, worker {:.1} ms per invocation)",
                notify.billed_ms as f64 / notify.count.max(1) as f64,
                worker.billed_ms as f64 / worker.count.max(1) as f64
            ),
            format!("{gb_seconds:.6}"),
            "–",
            "$0.0000133334/GB-s",
            gb_seconds * LAMBDA_GB_SECOND * million,
        ),
        (
            "API Gateway HTTP API requests (not in the issue's list)".to_owned(),
            figure(http_api),
            "–",
            "$1.00/M",
            http_api * HTTP_API_REQUEST * million,
        ),
    ];
    println!("| per delivery | ours | goal | list price | $ per million deliveries |");
    println!("|---|---|---|---|---|");
    let mut total = 0.0;
    for (what, ours, goal, price, dollars) in &lines {
        total += dollars;
        println!("| {what} | {ours} | {goal} | {price} | ${dollars:.2} |");
    }
    println!(
        "| **total** | | ≤ $8 | | **${total:.2}** (Svix list price: ${SVIX_PER_MILLION:.0} per million messages) |"
    );
    println!(
        "\nUnder the figures: DynamoDB requests per delivery {} ({}); Store port calls per \
         delivery: {} reads ({}), {} writes.",
        figure(metered.requests("dynamodb") as f64 / per),
        metered.breakdown("dynamodb", per),
        figure(port.reads() as f64 / per),
        port.read_breakdown(per),
        figure(port.writes() as f64 / per),
    );
    println!(
        "Lambda time here is mostly waiting on moto, which serialises DynamoDB requests and \
         shared 2 cores with the rest of the machine: it answered a DynamoDB request in {} and \
         an SQS send or delete in {} on average (in-region DynamoDB answers in single-digit \
         milliseconds), so the GB-s line is an upper bound.",
        crate::table::ms(metered.mean_wait("dynamodb", &[])),
        crate::table::ms(metered.mean_wait("sqs", &["ReceiveMessage"])),
    );
    println!(
        "Not per delivery: the sweeper's run every minute (43,200 invocations a month) and the \
         event source mapping's idle long polls (about 3 requests a minute per poller)."
    );
}
