//! `crm-local`: every route, the queue worker and the sweeper in one process over the embedded
//! store, for one laptop and no AWS.

use std::time::Duration;

use anyhow::Context as _;
use common::config::{Config, Mode};
use common::http::{local_server, routes::ROUTES};
use common::local::{dev_key_line, run_sweeper, run_worker, store_line};
use common::service::tenants::ensure_dev_tenant;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// glibc's arena locks showed in the fan-out bench's profile; this allocator was faster there
/// (README, bench notes).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::logging::init();
    let config = Config::from_env(Mode::Local)?;
    let deps = config.build_deps().await.context("opening the store")?;
    let dev_key = std::env::var("CRM_DEV_API_KEY")
        .ok()
        .filter(|key| !key.is_empty());
    let dev =
        ensure_dev_tenant(deps.store.as_ref(), deps.clock.as_ref(), dev_key.as_deref()).await?;
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port.parse().context("PORT must be a port number")?,
        Err(_) => 3000,
    };
    let sweep_every = match std::env::var("CRM_SWEEP_INTERVAL_SECONDS") {
        Ok(secs) => Duration::from_secs(secs.parse().context("CRM_SWEEP_INTERVAL_SECONDS")?),
        Err(_) => Duration::from_secs(60),
    };
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{port}"))?;
    let (stop, stopped) = watch::channel(false);
    let worker = tokio::spawn(run_worker(deps.clone(), stopped.clone()));
    let sweeper = tokio::spawn(run_sweeper(deps.clone(), sweep_every, stopped));
    let endpoint = std::env::var("AWS_ENDPOINT_URL").ok();
    println!("{}", store_line(&config.store, endpoint.as_deref()));
    println!("{}", dev_key_line(&dev, dev_key.is_some()));
    let address = listener.local_addr()?;
    println!("Dashboard: http://{address}/ (sign in with an API key)");
    // Last: scripts and tests wait for this line.
    println!("crm-local listening on http://{address}");
    local_server::serve(listener, deps, ROUTES.to_vec(), shutdown_signal()).await?;
    stop.send(true).ok();
    worker.await.ok();
    sweeper.await.ok();
    println!("crm-local stopped.");
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
