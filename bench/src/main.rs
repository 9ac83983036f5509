//! `crm-bench`: measures the service and prints tables, each figure beside its reference.
//! Run it with `scripts/bench.sh` (release build). Reports; never asserts.
//!
//! `crm-bench [--quick] [SECTION...]`: every section by default (but `soak`, which runs only
//! when named), in the order.

mod batch;
mod cost;
mod counting;
mod e2e;
mod fanout;
mod harness;
mod idempotency;
mod init;
mod local;
mod ratelimit;
mod receiver;
mod search;
mod soak;
mod stats;
mod sweep;
mod table;

/// crm-local's allocator, so that the in-process fan-out measures the engine crm-local runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Sections in the order they print.
const SECTIONS: &[&str] = &[
    "init",
    "fanout",
    "stats",
    "sweep",
    "e2e",
    "idempotency",
    "search",
    "ratelimit",
    "batch",
    "cost",
    "soak",
];

/// Sections that run only when named: the soak is a check at length (minutes), not a figure
/// the full run is about.
const NAMED_ONLY: &[&str] = &["soak"];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "crm-bench [--quick] [SECTION...]\nsections: {}\n(soak runs only when named)",
            SECTIONS.join(", ")
        );
        return Ok(());
    }
    if let Some(flag) = args.iter().find(|a| a.starts_with('-') && *a != "--quick") {
        anyhow::bail!("unknown option {flag}; options: --quick, --help");
    }
    let quick = args.iter().any(|a| a == "--quick");
    let chosen: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if let Some(unknown) = chosen.iter().find(|c| !SECTIONS.contains(c)) {
        anyhow::bail!(
            "unknown section {unknown}; sections: {}",
            SECTIONS.join(", ")
        );
    }
    println!("# crm-bench ({})", table::machine());
    for &section in SECTIONS {
        let named = chosen.contains(&section);
        if (!chosen.is_empty() || NAMED_ONLY.contains(&section)) && !named {
            continue;
        }
        match section {
            "init" => init::run(quick).await?,
            "fanout" => fanout::run(quick).await?,
            "stats" => stats::run(quick).await?,
            "sweep" => sweep::run(quick).await?,
            "e2e" => e2e::run(quick).await?,
            "idempotency" => idempotency::run(quick).await?,
            "search" => search::run(quick).await?,
            "ratelimit" => ratelimit::run(quick).await?,
            "batch" => batch::run(quick).await?,
            "cost" => cost::run(quick).await?,
            "soak" => soak::run(quick).await?,
            other => anyhow::bail!("section {other} has no runner"),
        }
    }
    Ok(())
}
