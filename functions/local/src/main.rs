//! `crm-local`: every route on one port over the embedded store, for one laptop and no AWS.

use anyhow::Context as _;
use common::config::Config;
use common::http::{local_server, routes::ROUTES};
use common::service::tenants::{ensure_dev_tenant, DevTenant};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let deps = config.build_deps().await.context("opening the store")?;
    let dev_key = std::env::var("CRM_DEV_API_KEY")
        .ok()
        .filter(|key| !key.is_empty());
    match ensure_dev_tenant(&deps, dev_key.as_deref()).await? {
        DevTenant::Created { key } => println!("Created the dev tenant. Its ADMIN API key: {key}"),
        DevTenant::Existing => println!(
            "Using the existing dev tenant (its key was printed at first start; \
             set CRM_DEV_API_KEY to choose one)."
        ),
    }
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port.parse().context("PORT must be a port number")?,
        Err(_) => 3000,
    };
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{port}"))?;
    let address = listener.local_addr()?;
    println!(
        "crm-local listening on http://{address} ({:?})",
        config.store
    );
    local_server::serve(listener, deps, ROUTES.to_vec(), shutdown_signal()).await?;
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
