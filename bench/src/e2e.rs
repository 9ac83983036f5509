//! End to end through crm-local and its durable embedded queue: notify → receiver.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::local::{CrmLocal, KEY};
use crate::receiver::Receiver;
use crate::table::{ms, percentile, row};

pub struct Outcome {
    pub accepted: usize,
    pub delivered: usize,
    pub lost: usize,
    pub duplicates: usize,
    pub bad_signatures: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub per_second: f64,
    pub recovery: Option<Duration>,
}

/// Calls in flight and when each began.
#[derive(Default)]
struct Calls {
    started: Mutex<HashMap<u64, Instant>>,
    accepted: Mutex<Vec<u64>>,
}

/// A fresh client (its own connections) for each phase, built the one way the process allows.
fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(common::adapters::tls::client_builder().build()?)
}

async fn notify(http: &reqwest::Client, base: &str, seq: u64, padding: &str) -> bool {
    let body = json!({"event": "lead.created", "data": {"seq": seq, "padding": padding}});
    http.post(format!("{base}/api/webhooks/notify"))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// Registers the receiver as a webhook of the dev tenant.
pub async fn register(
    http: &reqwest::Client,
    base: &str,
    receiver: &Receiver,
) -> anyhow::Result<()> {
    let created: serde_json::Value = http
        .post(format!("{base}/api/webhooks"))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(json!({"url": receiver.url, "events": ["lead.created"]}).to_string())
        .send()
        .await?
        .json()
        .await?;
    let secret = created["secret"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no secret in {created}"))?;
    receiver.set_secret(secret);
    Ok(())
}

/// A ~1 KB payload, as in the Svix measurement.
pub fn padding() -> String {
    "x".repeat(900)
}

async fn settle(calls: &Calls, receiver: &Receiver, within: Duration) -> Outcome {
    let accepted: Vec<u64> = calls.accepted.lock().expect("lock").clone();
    let deadline = Instant::now() + within;
    loop {
        let arrived = {
            let tally = receiver.tally.lock().expect("lock");
            accepted
                .iter()
                .filter(|seq| tally.arrivals.contains_key(seq))
                .count()
        };
        if arrived == accepted.len() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let tally = receiver.tally.lock().expect("lock");
    let started = calls.started.lock().expect("lock");
    let mut latencies = Vec::new();
    let mut first = None::<Instant>;
    let mut last = None::<Instant>;
    for seq in &accepted {
        if let (Some(start), Some(arrival)) = (started.get(seq), tally.arrivals.get(seq)) {
            latencies.push(arrival.saturating_duration_since(*start));
            first = Some(first.map_or(*start, |f| f.min(*start)));
            last = Some(last.map_or(*arrival, |l| l.max(*arrival)));
        }
    }
    latencies.sort();
    let delivered = latencies.len();
    let span = match (first, last) {
        (Some(first), Some(last)) => last.duration_since(first).as_secs_f64(),
        _ => 0.0,
    };
    Outcome {
        accepted: accepted.len(),
        delivered,
        lost: accepted.len() - delivered,
        duplicates: tally.duplicates,
        bad_signatures: tally.bad_signatures,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        per_second: if span > 0.0 {
            delivered as f64 / span
        } else {
            0.0
        },
        recovery: None,
    }
}

/// (a) `notify` at a constant rate.
pub async fn constant_rate(
    base: &str,
    receiver: &Receiver,
    per_second: u32,
    seconds: u64,
) -> anyhow::Result<Outcome> {
    receiver.reset();
    let http = http_client()?;
    let calls = Arc::new(Calls::default());
    let padding = Arc::new(padding());
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / per_second);
    let total = u64::from(per_second) * seconds;
    let mut tasks = tokio::task::JoinSet::new();
    for seq in 0..total {
        ticker.tick().await;
        let (http, calls, base, padding) = (
            http.clone(),
            Arc::clone(&calls),
            base.to_owned(),
            Arc::clone(&padding),
        );
        tasks.spawn(async move {
            calls
                .started
                .lock()
                .expect("lock")
                .insert(seq, Instant::now());
            if notify(&http, &base, seq, &padding).await {
                calls.accepted.lock().expect("lock").push(seq);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(settle(&calls, receiver, Duration::from_secs(30)).await)
}

/// (b) `count` notify calls from `callers` concurrent callers, as fast as they go. With
/// `crash_after`, crm-local is killed with SIGKILL once that many calls were accepted and
/// restarted over the same data: every accepted event must still arrive.
pub async fn burst(
    local: &mut Option<CrmLocal>,
    data_dir: &std::path::Path,
    receiver: &Receiver,
    count: u64,
    callers: usize,
    crash_after: Option<usize>,
) -> anyhow::Result<Outcome> {
    receiver.reset();
    let http = http_client()?;
    let calls = Arc::new(Calls::default());
    let base = Arc::new(RwLock::new(
        local.as_ref().map(|l| l.base.clone()).unwrap_or_default(),
    ));
    let next = Arc::new(AtomicU64::new(0));
    let accepted_count = Arc::new(AtomicUsize::new(0));
    let padding = Arc::new(padding());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..callers {
        let (http, calls, base, next, accepted_count, padding) = (
            http.clone(),
            Arc::clone(&calls),
            Arc::clone(&base),
            Arc::clone(&next),
            Arc::clone(&accepted_count),
            Arc::clone(&padding),
        );
        tasks.spawn(async move {
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= count {
                    return;
                }
                let url = base.read().expect("lock").clone();
                calls
                    .started
                    .lock()
                    .expect("lock")
                    .insert(seq, Instant::now());
                if notify(&http, &url, seq, &padding).await {
                    calls.accepted.lock().expect("lock").push(seq);
                    accepted_count.fetch_add(1, Ordering::Relaxed);
                } else {
                    // Down: a caller would back off and retry; a new sequence number keeps
                    // "accepted" exact.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        });
    }
    let mut recovery = None;
    if let Some(threshold) = crash_after {
        while accepted_count.load(Ordering::Relaxed) < threshold {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if let Some(running) = local.take() {
            running.kill_9();
        }
        let restart = Instant::now();
        let restarted = CrmLocal::start(data_dir)?;
        *base.write().expect("lock") = restarted.base.clone();
        *local = Some(restarted);
        recovery = Some(restart.elapsed());
    }
    while tasks.join_next().await.is_some() {}
    let mut outcome = settle(&calls, receiver, Duration::from_secs(120)).await;
    outcome.recovery = recovery;
    Ok(outcome)
}

/// A section's heading and the head of its table: ours beside Svix's.
fn header(title: &str) {
    println!("\n### {title}\n");
    println!("| figure | crm-local (SQLite, durable queue) | Svix 1.100 (Postgres, in-memory queue) | goal |");
    println!("|---|---|---|---|");
}

fn print_rate(o: &Outcome, rate: u32, seconds: u64) {
    header(&format!(
        "(a) notify at a constant {rate}/s for {seconds} s, 1 KB payloads"
    ));
    row("p50 call → receiver", ms(o.p50), "1.9 ms", "≤ 2 ms");
    row("p99 call → receiver", ms(o.p99), "3.0 ms", "≤ 5 ms");
    row(
        "accepted / delivered",
        format!("{} / {}", o.accepted, o.delivered),
        "-",
        "all",
    );
    row("lost", o.lost.to_string(), "0", "0");
    row("duplicates", o.duplicates.to_string(), "-", "0");
    row("bad signatures", o.bad_signatures.to_string(), "-", "0");
}

fn print_burst(title: &str, o: &Outcome) {
    header(title);
    row(
        "deliveries/s",
        format!("{:.0}", o.per_second),
        "≈ 1,000",
        "≥ 1,500",
    );
    row("p50 call → receiver", ms(o.p50), "19 ms", "-");
    row("p99 call → receiver", ms(o.p99), "37 ms", "-");
    row(
        "accepted / delivered",
        format!("{} / {}", o.accepted, o.delivered),
        "-",
        "all",
    );
    row("lost", o.lost.to_string(), "0 (lost on a crash)", "0");
    row(
        "duplicates",
        o.duplicates.to_string(),
        "-",
        "0 (counted on a crash)",
    );
    row("bad signatures", o.bad_signatures.to_string(), "-", "0");
    if let Some(recovery) = o.recovery {
        row("restart after kill -9", ms(recovery), "queue lost", "-");
    }
}

/// Section 4: (a), (b) and (c) through the release crm-local binary.
pub async fn run(quick: bool) -> anyhow::Result<()> {
    let (seconds, count) = if quick { (5, 1_000) } else { (30, 5_000) };
    println!("\n## End to end: notify → crm-local → receiver\n");
    println!("Svix figures: svix-server 1.100, Postgres 15 (fsync on), in-memory queue, 2 cores.");

    let receiver = Receiver::start().await?;
    let dir = tempfile::tempdir()?;
    let mut local = Some(CrmLocal::start(dir.path())?);
    let http = http_client()?;
    let base = local.as_ref().map(|l| l.base.clone()).unwrap_or_default();
    register(&http, &base, &receiver).await?;

    let rate = constant_rate(&base, &receiver, 200, seconds).await?;
    print_rate(&rate, 200, seconds);

    let steady = burst(&mut local, dir.path(), &receiver, count, 16, None).await?;
    print_burst(
        &format!("(b) {count} notify calls from 16 concurrent callers"),
        &steady,
    );

    let crash = burst(
        &mut local,
        dir.path(),
        &receiver,
        count,
        16,
        Some(count as usize / 2),
    )
    .await?;
    print_burst(
        &format!(
            "(c) as (b), crm-local killed with SIGKILL after {} accepted calls and restarted",
            count / 2
        ),
        &crash,
    );
    if let Some(running) = local.take() {
        println!("\n(crm-local pid {} stopped)", running.pid());
    }
    Ok(())
}
