//! Wiring: from parsed flags to a running exporter (or one printed scrape).

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::cgroup::Hierarchy;
use crate::cli::{self, Cli, ENGINE_COLLECTOR};
use crate::docker::Inventory;
use crate::docker::events::Endpoint;
use crate::docker::sync::{self, SyncConfig};
use crate::metrics::{self, Format};
use crate::scrape::{self, ScrapeConfig, Scraper};
use crate::server;

/// The parts every mode shares.
pub struct Parts {
    pub scraper: Arc<Scraper>,
    pub inventory: Arc<Inventory>,
    pub sync_config: SyncConfig,
}

pub fn build(cli: &Cli) -> Result<Parts, String> {
    for pattern in &cli.raw_cgroups {
        scrape::validate_raw_glob(pattern)?;
    }
    Endpoint::parse(&cli.docker_host)?;
    let mountinfo_path = cli.procfs.join("self/mountinfo");
    let mountinfo = std::fs::read_to_string(&mountinfo_path)
        .map_err(|error| {
            tracing::debug!(path = %mountinfo_path.display(), %error, "no mountinfo; finding controllers by directory name");
        })
        .ok();
    let hierarchy = Arc::new(Hierarchy::discover(&cli.cgroupfs, mountinfo.as_deref()));
    tracing::info!(cgroupfs = %cli.cgroupfs.display(), hierarchy = %hierarchy.describe(), "found cgroup hierarchy");
    let inventory = Arc::new(Inventory::default());
    let scraper = Arc::new(Scraper::new(
        ScrapeConfig {
            hierarchy: Arc::clone(&hierarchy),
            procfs: cli.procfs.clone(),
            collectors: cli.cgroup_collectors(),
            raw_globs: cli.raw_cgroups.clone(),
            engine_metrics: cli.collector_enabled(ENGINE_COLLECTOR),
        },
        Arc::clone(&inventory),
    ));
    Ok(Parts {
        scraper,
        inventory,
        sync_config: SyncConfig {
            host: cli.docker_host.clone(),
            hierarchy,
            procfs: cli.procfs.clone(),
            label_allowlist: cli.label_allowlist.clone(),
        },
    })
}

/// Runs the exporter until SIGINT or SIGTERM.
pub async fn run_exporter(cli: Cli) -> Result<(), String> {
    let address = cli::listen_address(&cli.listen_address)?;
    let parts = build(&cli)?;
    let listener = TcpListener::bind(address)
        .await
        .map_err(|error| format!("cannot listen on {address}: {error}"))?;
    let bound = listener
        .local_addr()
        .map_err(|error| format!("listening socket: {error}"))?;
    tracing::info!(address = %bound, version = env!("CARGO_PKG_VERSION"), "listening");
    tokio::spawn(sync::run(
        parts.sync_config.clone(),
        Arc::clone(&parts.inventory),
        None,
    ));
    server::serve(
        listener,
        &cli.telemetry_path,
        parts.scraper,
        shutdown_signal(),
    )
    .await
    .map_err(|error| format!("serving: {error}"))
}

/// Collects once and returns the text exposition (the `scrape` command).
pub async fn scrape_once(cli: Cli) -> Result<String, String> {
    let parts = build(&cli)?;
    let attempt = sync::resync_once(parts.sync_config.clone(), Arc::clone(&parts.inventory));
    match tokio::time::timeout(Duration::from_secs(15), attempt).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%error, "engine unreachable; reporting cgroups only"),
        Err(_) => tracing::warn!("engine did not answer in 15s; reporting cgroups only"),
    }
    let exposition = parts.scraper.scrape().await;
    Ok(metrics::encode(exposition, Format::Text))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down");
}
