//! `crm-bench`: measures the service and prints tables, each figure beside its reference.
//! Run it with `scripts/bench.sh` (release build). Reports; never asserts.

mod e2e;
mod local;
mod receiver;

use std::time::Duration;

use e2e::Outcome;
use local::CrmLocal;
use receiver::Receiver;

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    format!("{cores} cores, {cpu}")
}

fn row(figure: &str, ours: String, svix: &str, goal: &str) {
    println!("| {figure} | {ours} | {svix} | {goal} |");
}

fn print_rate(o: &Outcome, rate: u32, seconds: u64) {
    println!("\n### (a) notify at a constant {rate}/s for {seconds} s, 1 KB payloads\n");
    println!("| figure | crm-local (SQLite, durable queue) | Svix 1.100 (Postgres, in-memory queue) | goal |");
    println!("|---|---|---|---|");
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
    println!("\n### {title}\n");
    println!("| figure | crm-local (SQLite, durable queue) | Svix 1.100 (Postgres, in-memory queue) | goal |");
    println!("|---|---|---|---|");
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let (seconds, count) = if quick { (5, 1_000) } else { (30, 5_000) };
    println!("## crm-bench end to end ({})\n", machine());
    println!("Svix figures: svix-server 1.100, Postgres 15 (fsync on), in-memory queue, 2 cores.");

    let receiver = Receiver::start().await?;
    let dir = tempfile::tempdir()?;
    let mut local = Some(CrmLocal::start(dir.path())?);
    let http = reqwest::Client::new();
    let base = local.as_ref().map(|l| l.base.clone()).unwrap_or_default();
    e2e::register(&http, &base, &receiver).await?;

    let rate = e2e::constant_rate(&base, &receiver, 200, seconds).await;
    print_rate(&rate, 200, seconds);

    let burst = e2e::burst(&mut local, dir.path(), &receiver, count, 16, None).await?;
    print_burst(
        &format!("(b) {count} notify calls from 16 concurrent callers"),
        &burst,
    );

    let crash = e2e::burst(
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
