//! What an `Idempotency-Key` costs a notify: the call's latency through crm-local (SQLite),
//! without a key, with a new key each call (a read, a claim and a record more), and a repeat of
//! a key already answered (a read, nothing created).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::e2e::{padding, register};
use crate::local::{CrmLocal, KEY};
use crate::receiver::Receiver;
use crate::table::{ms, percentile};

/// `calls` notify calls one after another, each with the key `key(n)` gives (none: `None`);
/// the call's own time, request sent to answer read.
async fn latencies(
    http: &reqwest::Client,
    base: &str,
    calls: u64,
    key: impl Fn(u64) -> Option<String>,
    same_body: bool,
) -> anyhow::Result<Vec<Duration>> {
    let padding = padding();
    let mut taken = Vec::new();
    for n in 0..calls {
        let seq = if same_body { 0 } else { n };
        let body = json!({"event": "lead.created", "data": {"seq": seq, "padding": padding}});
        let mut request = http
            .post(format!("{base}/api/webhooks/notify"))
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(key) = key(n) {
            request = request.header("idempotency-key", key);
        }
        let start = Instant::now();
        let response = request.send().await?;
        let status = response.status();
        response.bytes().await?;
        taken.push(start.elapsed());
        anyhow::ensure!(status.is_success(), "notify answered {status}");
    }
    taken.sort();
    Ok(taken)
}

pub async fn run(quick: bool) -> anyhow::Result<()> {
    let calls = if quick { 300 } else { 2_000 };
    println!("\n## Idempotent notify: the call's latency through crm-local (SQLite)\n");
    println!(
        "{calls} calls each, one after another on one connection, 1 KB payloads, one webhook \
         subscribed (its delivery is made and sent as usual)."
    );
    let receiver = Receiver::start().await?;
    let dir = tempfile::tempdir()?;
    let local = CrmLocal::start(dir.path())?;
    let http = common::adapters::tls::client_builder().build()?;
    register(&http, &local.base, &receiver).await?;
    // Warm the connection, the statements and the key cache.
    latencies(&http, &local.base, 50, |_| None, false).await?;

    let plain = latencies(&http, &local.base, calls, |_| None, false).await?;
    let run = uuid::Uuid::new_v4();
    let keyed = latencies(
        &http,
        &local.base,
        calls,
        |n| Some(format!("{run}-{n}")),
        false,
    )
    .await?;
    let repeat = latencies(
        &http,
        &local.base,
        calls,
        |_| Some(format!("{run}-repeat")),
        true,
    )
    .await?;

    println!("\n| notify | p50 | p99 |");
    println!("|---|---|---|");
    for (what, sorted) in [
        ("without a key", &plain),
        ("with a new key (read, claim, fan-out, record)", &keyed),
        ("a repeat of an answered key (read only)", &repeat),
    ] {
        println!(
            "| {what} | {} | {} |",
            ms(percentile(sorted, 0.50)),
            ms(percentile(sorted, 0.99))
        );
    }
    drop(local);
    Ok(())
}
