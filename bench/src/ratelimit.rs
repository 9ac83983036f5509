//! A webhook's `rateLimitPerSecond` as its receiver sees it, through crm-local (SQLite): for
//! each limit, a backlog of the limit's deliveries for some seconds, notified at once; then the
//! rate they arrived at, the most that arrived in any sliding second, and the accuracy (the
//! rate over the limit; domain::pacing keeps it under N / 1.1 by design).

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;

use crate::e2e::padding;
use crate::local::{CrmLocal, KEY};
use crate::receiver::Receiver;

const LIMITS: [u64; 3] = [5, 50, 500];

/// The most of `times` in any window [t, t + 1 s).
fn most_in_any_second(times: &mut [Instant]) -> usize {
    times.sort_unstable();
    let mut start = 0;
    let mut most = 0;
    for end in 0..times.len() {
        while times[end].duration_since(times[start]) >= Duration::from_secs(1) {
            start += 1;
        }
        most = most.max(end + 1 - start);
    }
    most
}

struct Measured {
    deliveries: u64,
    rate: f64,
    most: usize,
    took: Duration,
}

async fn measure(limit: u64, seconds: u64) -> anyhow::Result<Measured> {
    let receiver = Receiver::start().await?;
    let dir = tempfile::tempdir()?;
    let local = CrmLocal::start(dir.path())?;
    let http = common::adapters::tls::client_builder().build()?;
    let created: serde_json::Value = http
        .post(format!("{}/api/webhooks", local.base))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(
            json!({"url": receiver.url, "events": ["lead.created"], "rateLimitPerSecond": limit})
                .to_string(),
        )
        .send()
        .await?
        .json()
        .await?;
    let secret = created["secret"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no secret in {created}"))?;
    receiver.set_secret(secret);

    let deliveries = limit * seconds;
    let padding = padding();
    let started = Instant::now();
    let calls = (0..deliveries).map(|seq| {
        let body = json!({"event": "lead.created", "data": {"seq": seq, "padding": padding}});
        let request = http
            .post(format!("{}/api/webhooks/notify", local.base))
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .body(body.to_string());
        async move {
            let response = request.send().await?;
            anyhow::ensure!(
                response.status().is_success(),
                "notify answered {}",
                response.status()
            );
            Ok(())
        }
    });
    let answers: Vec<anyhow::Result<()>> = futures_util::stream::iter(calls)
        .buffer_unordered(16)
        .collect()
        .await;
    answers.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    // The backlog drains at about the limit: allow twice its time.
    let deadline = started + Duration::from_secs(2 * seconds + 10);
    loop {
        let arrived = receiver.tally.lock().expect("lock").arrivals.len() as u64;
        if arrived >= deliveries || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    let tally = receiver.tally.lock().expect("lock");
    anyhow::ensure!(tally.bad_signatures == 0, "bad signatures");
    let mut times: Vec<Instant> = tally.arrivals.values().copied().collect();
    anyhow::ensure!(times.len() > 1, "{} deliveries arrived", times.len());
    let most = most_in_any_second(&mut times);
    let (first, last) = (times[0], times[times.len() - 1]);
    let rate = (times.len() - 1) as f64 / (last - first).as_secs_f64();
    drop(local);
    Ok(Measured {
        deliveries: times.len() as u64,
        rate,
        most,
        took,
    })
}

pub async fn run(quick: bool) -> anyhow::Result<()> {
    let seconds = if quick { 4 } else { 10 };
    println!("\n## Per-endpoint rate limit at the receiver, through crm-local (SQLite)\n");
    println!(
        "For each limit, {seconds} seconds' worth of deliveries notified at once (16 calls at a \
         time) to one webhook with that `rateLimitPerSecond`; the receiver on 127.0.0.1 times \
         each arrival. Rate: arrivals after the first over the time from first to last."
    );
    println!("\n| limit | deliveries | arrived in | achieved rate | most in any sliding 1 s | accuracy |");
    println!("|---|---|---|---|---|---|");
    for limit in LIMITS {
        let m = measure(limit, seconds).await?;
        println!(
            "| {limit}/s | {} of {} | {:.1} s | {:.1}/s | {} | {:.1} % |",
            m.deliveries,
            limit * seconds,
            m.took.as_secs_f64(),
            m.rate,
            m.most,
            100.0 * m.rate / limit as f64
        );
    }
    Ok(())
}
