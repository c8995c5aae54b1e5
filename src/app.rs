//! Wiring: from parsed flags to a running exporter, one printed scrape, or a policy
//! command.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{Notify, mpsc};

use crate::cgroup::Hierarchy;
use crate::cli::{self, Cli};
use crate::collector;
use crate::disk::{self, DiskUsage};
use crate::docker::sync::{self, SyncConfig};
use crate::docker::{Endpoint, Inventory};
use crate::metrics::{self, Format};
use crate::policy::check::Host;
use crate::policy::enforcer::Enforcer;
use crate::policy::{PolicyState, plan, state};
use crate::recommend;
use crate::scrape::{ScrapeConfig, Scraper};
use crate::server::{self, ServerConfig};
use crate::target::{self, Resolver, TargetConfig};
use crate::web;

/// The parts every mode shares.
pub struct Parts {
    pub scraper: Arc<Scraper>,
    pub inventory: Arc<Inventory>,
    pub sync_config: SyncConfig,
    pub targets: Arc<Resolver>,
    pub policy: Option<Arc<PolicyState>>,
    pub disk: Option<Arc<DiskUsage>>,
}

pub fn build(cli: &Cli) -> Result<Parts, String> {
    cli.validate()?;
    for pattern in &cli.raw_cgroups {
        target::validate_raw_glob(pattern)?;
    }
    let endpoint = Endpoint::parse(&cli.docker_host)?;
    let policy = match &cli.policy_file {
        None => None,
        Some(file) => {
            let policy = load_policy(file, &cli.procfs)?;
            tracing::info!(file = %file.display(), rules = policy.rules.len(), mode = ?cli.policy_mode, "policy loaded");
            Some(Arc::new(PolicyState::new(
                file.clone(),
                cli.policy_mode,
                policy,
            )))
        }
    };
    let mountinfo_path = cli.procfs.join("self/mountinfo");
    let mountinfo = std::fs::read_to_string(&mountinfo_path)
        .map_err(|error| {
            tracing::debug!(path = %mountinfo_path.display(), %error, "no mountinfo; finding controllers by directory name");
        })
        .ok();
    let hierarchy = Arc::new(Hierarchy::discover(&cli.cgroupfs, mountinfo.as_deref()));
    if hierarchy.is_empty() {
        return Err(format!(
            "no cgroup filesystem at --path.cgroupfs={}: found neither cgroup v2 \
             (cgroup.controllers) nor v1 controller directories (cpu, memory, ...); it names \
             the cgroup root, usually /sys/fs/cgroup",
            cli.cgroupfs.display()
        ));
    }
    tracing::info!(cgroupfs = %cli.cgroupfs.display(), hierarchy = %hierarchy.describe(), "found cgroup hierarchy");
    let inventory = Arc::new(Inventory::default());
    let targets = Arc::new(Resolver::new(TargetConfig {
        hierarchy: Arc::clone(&hierarchy),
        procfs: cli.procfs.clone(),
        label_allowlist: cli::label_patterns("--docker.label-allowlist", &cli.label_allowlist)?,
        raw_globs: cli.raw_cgroups.clone(),
        root: cli.root_cgroup,
    }));
    let collectors = cli.collectors();
    let disk = collectors
        .iter()
        .any(|collector| collector.name == collector::disk::COLLECTOR.name)
        .then(|| {
            DiskUsage::new(
                cli.disk_refresh_interval,
                mountinfo_path.clone(),
                disk::DEFAULT_TIME_BUDGET,
            )
        });
    let scraper = Arc::new(Scraper::new(
        ScrapeConfig {
            hierarchy,
            procfs: cli.procfs.clone(),
            collectors,
            policy: policy.clone(),
            disk: disk.clone(),
            parallelism: cli.scrape_parallelism,
        },
        Arc::clone(&inventory),
        Arc::clone(&targets),
    ));
    Ok(Parts {
        scraper,
        inventory,
        sync_config: SyncConfig {
            endpoint,
            timeout: cli.docker_timeout,
            env_allowlist: cli::label_patterns("--docker.env-allowlist", &cli.env_allowlist)?,
        },
        targets,
        policy,
        disk,
    })
}

fn load_policy(file: &Path, procfs: &Path) -> Result<crate::policy::Policy, String> {
    state::load(file, &Host::local(procfs)).map_err(|error| {
        format!(
            "the policy cannot be used:\n{}",
            error.lines(file).join("\n")
        )
    })
}

/// Runs the exporter until SIGINT or SIGTERM.
pub async fn run_exporter(cli: Cli) -> Result<(), String> {
    let address = cli::listen_address(&cli.listen_address)?;
    let access = match &cli.web_config_file {
        Some(path) => web::load(path)?,
        None => web::Access::default(),
    };
    let tls = access.tls.is_some();
    let parts = build(&cli)?;
    let listener = TcpListener::bind(address)
        .await
        .map_err(|error| format!("cannot listen on {address}: {error}"))?;
    let bound = listener
        .local_addr()
        .map_err(|error| format!("listening socket: {error}"))?;
    // Taken before the exporter says it listens: from then on a SIGHUP never meets the
    // signal's default action, which ends the process.
    let hangups = signal(SignalKind::hangup())
        .map_err(|error| format!("cannot listen for SIGHUP: {error}"))?;
    let notices = match &parts.policy {
        Some(policy) => {
            let (notices, receiver) = mpsc::channel(1024);
            let enforcer = Enforcer {
                procfs: cli.procfs.clone(),
                state: Arc::clone(policy),
                inventory: Arc::clone(&parts.inventory),
                targets: Arc::clone(&parts.targets),
                engine: parts.sync_config.client(),
                hangups,
            };
            tokio::spawn(enforcer.run(receiver));
            Some(notices)
        }
        None => {
            tokio::spawn(ignore_hangups(hangups));
            None
        }
    };
    tracing::info!(address = %bound, tls, version = env!("CARGO_PKG_VERSION"), "listening");
    tokio::spawn(sync::run(
        parts.sync_config.clone(),
        Arc::clone(&parts.inventory),
        notices,
    ));
    let server_config = ServerConfig {
        telemetry_path: cli.telemetry_path.clone(),
        max_requests: cli.max_requests,
        request_timeout: cli.request_timeout,
    };
    let signalled = Arc::new(Notify::new());
    let shutdown = {
        let signalled = Arc::clone(&signalled);
        async move {
            shutdown_signal().await;
            signalled.notify_one();
        }
    };
    let serving = server::serve(listener, &server_config, access, parts.scraper, shutdown);
    tokio::select! {
        served = serving => served.map_err(|error| format!("serving: {error}")),
        () = async {
            signalled.notified().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "requests still under way at the end of the grace period; exiting");
            Ok(())
        }
    }
}

/// How long requests under way at SIGTERM may take to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Reads the engine's containers once, giving up after 15 s.
async fn read_inventory_once(parts: &Parts) -> Result<(), String> {
    let attempt = sync::resync_once(parts.sync_config.clone(), Arc::clone(&parts.inventory));
    match tokio::time::timeout(Duration::from_secs(15), attempt).await {
        Ok(result) => result.map_err(|error| error.to_string()),
        Err(_) => Err("the engine did not answer in 15 s".to_owned()),
    }
}

/// How long the one-shot `scrape` waits for the writable layers to be walked.
const DISK_WAIT: Duration = Duration::from_secs(30);

/// Collects once and returns the text exposition (the `scrape` command).
pub async fn scrape_once(cli: Cli) -> Result<String, String> {
    let parts = build(&cli)?;
    if let Err(error) = read_inventory_once(&parts).await {
        tracing::warn!(%error, "engine unreachable; reporting cgroups only");
    }
    let mut exposition = parts.scraper.scrape().await?;
    // One printed scrape shows disk usage too: wait for the walk the scrape asked for, and
    // read again.
    if let Some(disk) = &parts.disk {
        let disk = Arc::clone(disk);
        let walked = tokio::task::spawn_blocking(move || disk.wait_for_refresh(DISK_WAIT))
            .await
            .unwrap_or(false);
        if walked {
            exposition = parts.scraper.scrape().await?;
        } else {
            tracing::warn!(waited = ?DISK_WAIT, "writable layers not walked in time; container_fs_* left out");
        }
    }
    Ok(metrics::encode(&exposition, Format::Text))
}

/// `policy check FILE`: every problem, or that the file is fine.
pub fn policy_check(file: &Path, procfs: &Path) -> ExitCode {
    match state::load(file, &Host::local(procfs)) {
        Ok(policy) => {
            println!("{}: valid, {} rules", file.display(), policy.rules.len());
            ExitCode::SUCCESS
        }
        Err(error) => {
            for line in error.lines(file) {
                println!("{line}");
            }
            ExitCode::FAILURE
        }
    }
}

/// `policy plan FILE`: what enforcing the policy would change on the live engine.
pub async fn policy_plan(mut cli: Cli, file: &Path) -> Result<String, String> {
    cli.policy_file = Some(file.to_owned());
    let parts = build(&cli)?;
    read_inventory_once(&parts)
        .await
        .map_err(|error| format!("planning needs the engine: {error}"))?;
    let policy = parts
        .policy
        .as_ref()
        .expect("the policy was loaded by build")
        .policy();
    let containers = parts.targets.containers(&parts.inventory.snapshot());
    Ok(plan::render(
        &policy,
        &containers,
        &parts.targets.config().hierarchy,
    ))
}

/// `recommend`: prints the recommendation. A policy without rules (no container had history
/// enough) is printed for its comments, and is an error: there is nothing to apply.
pub async fn recommend(args: &cli::RecommendArgs) -> Result<(), String> {
    let request = args.request()?;
    let report = recommend::recommend(&request)
        .await
        .map_err(|error| error.to_string())?;
    print!("{}", report.render(args.format));
    if report.rules() == 0 {
        return Err(format!(
            "no container has --min-history={} of history in the window yet (the comments say how much each has): wait, or ask for less",
            crate::duration::format(request.settings.min_history)
        ));
    }
    Ok(())
}

/// Without a policy there is nothing to reload, but a SIGHUP (a habit of service managers
/// and of people) must not end the exporter, as the signal's default action would.
async fn ignore_hangups(mut hangups: Signal) {
    while hangups.recv().await.is_some() {
        tracing::info!("SIGHUP: no --policy.file to reload; ignored");
    }
}

async fn shutdown_signal() {
    let mut terminate = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down");
}
