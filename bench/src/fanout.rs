//! Fan-out: N signed 1 KB deliveries through the delivery engine (SQLite store, embedded queue,
//! the worker crm-local runs) to a receiver that verifies every signature, beside the raw ceiling
//! of the same machine: the same sender adapter posting the same bodies unsigned, with the same
//! client settings and as many requests in flight as the worker allows, to the same receiver.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::adapters::http_sender::HttpSender;
use common::adapters::main_key::{MainKey, MainKeyWrapper};
use common::adapters::sqlite::SqliteStore;
use common::domain::delivery::payload;
use common::domain::event::Notification;
use common::domain::webhook::NewWebhook;
use common::local::{run_worker, CONCURRENCY};
use common::ports::{OutboundRequest, Sender, Store};
use common::service::auth::authenticate;
use common::service::deliveries::notify;
use common::service::deps::Deps;
use common::service::secrets::SecretKeeper;
use common::service::tenants::create_tenant;
use common::service::webhooks::create_webhook;
use serde_json::json;
use tokio::sync::watch;
use uuid::Uuid;

use crate::e2e::padding;
use crate::harness::settings;
use crate::receiver::Receiver;
use crate::table::{ms, percentile, row};

const EVENT: &str = "lead.created";

/// One drain of `count` deliveries, timed from its start to each arrival.
struct Drain {
    delivered: usize,
    bad_signatures: usize,
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

pub async fn run(quick: bool) -> anyhow::Result<()> {
    let count: u64 = if quick { 2_000 } else { 10_000 };
    let receiver = Receiver::start().await?;
    let engine = engine(&receiver, count).await?;
    let raw = raw(&receiver, count).await?;

    println!("\n## Fan-out: {count} deliveries of 1 KB to one receiver on 127.0.0.1\n");
    println!(
        "Both drains start with all {count} deliveries waiting; latency is from the start to each \
         arrival. {CONCURRENCY} requests in flight at most in both.\n"
    );
    println!("| figure | delivery engine (signed, recorded, queued) | raw ceiling (same sender, unsigned) | goal |");
    println!("|---|---|---|---|");
    row(
        "deliveries/s",
        format!("{:.0}", engine.per_second),
        &format!("{:.0}", raw.per_second),
        "-",
    );
    row("p50", ms(engine.p50), &ms(raw.p50), "-");
    row("p99", ms(engine.p99), &ms(raw.p99), "-");
    row(
        "delivered",
        format!("{} of {count}", engine.delivered),
        &format!("{} of {count}", raw.delivered),
        "all",
    );
    row(
        "bad signatures",
        engine.bad_signatures.to_string(),
        "(unsigned)",
        "0",
    );
    let ratio = if raw.per_second > 0.0 {
        engine.per_second / raw.per_second * 100.0
    } else {
        0.0
    };
    row("engine / raw", format!("{ratio:.0}%"), "100%", "≥ 70%");
    Ok(())
}

fn body(seq: u64, padding: &str) -> anyhow::Result<String> {
    let data = json!({"seq": seq, "padding": padding});
    Ok(payload(Uuid::now_v7(), EVENT, &data, chrono::Utc::now())?)
}

/// The engine: events accepted by `notify` with the worker stopped, then the worker started.
async fn engine(receiver: &Receiver, count: u64) -> anyhow::Result<Drain> {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path())?;
    let queue = store.queue(Duration::from_secs(60));
    let store = Arc::new(store);
    let wrapper = MainKeyWrapper::new(&MainKey::random())?;
    let deps = Deps::new(
        Arc::clone(&store) as Arc<dyn Store>,
        Arc::new(queue),
        Arc::new(HttpSender::new(true, true)?),
        settings(),
    )
    .with_secrets(SecretKeeper::new(Arc::new(wrapper), store));
    let (_, key) = create_tenant(deps.store.as_ref(), deps.clock.as_ref(), "Fan-out").await?;
    let caller = authenticate(&deps, Some(&format!("Bearer {key}"))).await?;
    let webhook = NewWebhook {
        url: receiver.url.clone(),
        events: vec![EVENT.to_owned()],
        ..NewWebhook::default()
    };
    let created = create_webhook(&deps, &caller, webhook).await?;
    receiver.set_secret(&created.secret);
    receiver.reset();

    let padding = padding();
    for seq in 0..count {
        let event = Notification {
            event: EVENT.to_owned(),
            data: json!({"seq": seq, "padding": padding}),
            occurred_at: None,
        };
        notify(&deps, &caller, event).await?;
    }
    let (stop, stopped) = watch::channel(false);
    let started = Instant::now();
    let worker = tokio::spawn(run_worker(deps.clone(), stopped));
    let drain = settle(receiver, count, started).await;
    stop.send(true).ok();
    worker.await?;
    Ok(drain)
}

/// The ceiling: plain POSTs of the same bodies through the same sender, no store, no queue.
async fn raw(receiver: &Receiver, count: u64) -> anyhow::Result<Drain> {
    receiver.accept_unsigned();
    receiver.reset();
    let sender = Arc::new(HttpSender::new(true, true)?);
    let padding = padding();
    let bodies: Arc<Vec<String>> = Arc::new(
        (0..count)
            .map(|seq| body(seq, &padding))
            .collect::<anyhow::Result<_>>()?,
    );
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (sender, bodies, next, url) = (
            Arc::clone(&sender),
            Arc::clone(&bodies),
            Arc::clone(&next),
            receiver.url.clone(),
        );
        callers.spawn(async move {
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = usize::try_from(seq).ok().and_then(|i| bodies.get(i)) else {
                    return;
                };
                sender
                    .post(OutboundRequest {
                        url: url.clone(),
                        headers: vec![("content-type".into(), "application/json".into())],
                        body: body.as_str().into(),
                        timeout: Duration::from_secs(30),
                    })
                    .await;
            }
        });
    }
    while callers.join_next().await.is_some() {}
    Ok(settle(receiver, count, started).await)
}

/// Waits for `count` arrivals (at most a minute) and reads the receiver's tally.
async fn settle(receiver: &Receiver, count: u64, started: Instant) -> Drain {
    let expected = usize::try_from(count).unwrap_or(usize::MAX);
    let deadline = Instant::now() + Duration::from_secs(60);
    while receiver.tally.lock().expect("lock").arrivals.len() < expected
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let tally = receiver.tally.lock().expect("lock");
    let mut latencies: Vec<Duration> = tally
        .arrivals
        .values()
        .map(|at| at.saturating_duration_since(started))
        .collect();
    latencies.sort();
    let span = latencies.last().map_or(0.0, Duration::as_secs_f64);
    Drain {
        delivered: latencies.len(),
        bad_signatures: tally.bad_signatures,
        per_second: if span > 0.0 {
            latencies.len() as f64 / span
        } else {
            0.0
        },
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
    }
}
