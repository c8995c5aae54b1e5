//! Keeps the inventory in step with the engine: a full list at connect (and after every
//! reconnect), then the event stream; on any failure, `docker_up` goes to 0, the known
//! containers stay, and the task reconnects with backoff and jitter, replaying the events
//! it missed with `since` and counting none twice.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;

use super::api;
use super::client::{EngineClient, EngineError};
use super::container::Container;
use super::endpoint::Endpoint;
use super::events::{self, Event, StreamItem};
use super::inventory::{Engine, Inventory, Tracked};
use super::replay::SeenEvents;

const FIRST_RETRY: Duration = Duration::from_millis(100);
/// How often a quiet event stream is checked by pinging the engine.
const LIVENESS_PING: Duration = Duration::from_secs(15);
const MAX_RETRY: Duration = Duration::from_secs(2);
/// A health probe is an exec: its `exec_die` is the only event of a probe that changes no
/// status, yet the failing streak moved. The engine records the probe's result just after
/// the exec ends, so the container is inspected this long after.
const HEALTH_SETTLE: Duration = Duration::from_millis(200);

#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// `--docker.host`.
    pub endpoint: Endpoint,
    /// `--docker.timeout`: for each request, and the most a quiet stream goes unchecked.
    pub timeout: Duration,
    /// `--docker.env-allowlist`: the environment variables kept from each inspect.
    pub env_allowlist: Vec<glob::Pattern>,
}

impl SyncConfig {
    /// A client of the configured engine, with the configured timeout.
    pub fn client(&self) -> EngineClient {
        EngineClient::with_timeout(self.endpoint.clone(), self.timeout)
    }
}

/// What the sync task tells whoever applies limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The engine reported this container started; the inventory already has it.
    Started(String),
    /// The inventory was rebuilt from a full list (at connect and every reconnect).
    Resynced,
}

/// Runs forever: connect, resync, follow events, and on failure start again.
pub async fn run(
    config: SyncConfig,
    inventory: Arc<Inventory>,
    notices: Option<mpsc::Sender<Notice>>,
) {
    let mut sync = Sync::new(config, inventory, notices);
    let mut retry = FIRST_RETRY;
    let mut failures = 0u32;
    loop {
        let result = sync.connect_and_follow(&mut retry, &mut failures).await;
        sync.inventory.set_up(false);
        let reason = match result {
            Ok(()) => "the event stream ended".to_owned(),
            Err(error) => error,
        };
        failures += 1;
        // The first failure is worth a warning; a long outage should not flood the log.
        if failures == 1 {
            tracing::warn!(engine = %sync.config.endpoint, reason = %reason, "engine unreachable; retrying");
        } else {
            tracing::debug!(engine = %sync.config.endpoint, reason = %reason, attempt = failures, "engine still unreachable");
        }
        tokio::time::sleep(jittered(retry)).await;
        retry = (retry * 2).min(MAX_RETRY);
    }
}

/// One attempt at an up-to-date inventory without following events: used by the one-shot
/// `scrape` command.
pub async fn resync_once(config: SyncConfig, inventory: Arc<Inventory>) -> Result<(), EngineError> {
    let mut sync = Sync::new(config, inventory, None);
    let client = sync.config.client();
    sync.read_engine(&client).await?;
    sync.resync(&client).await?;
    sync.inventory.set_up(true);
    Ok(())
}

fn jittered(delay: Duration) -> Duration {
    delay.mul_f64(0.8 + fastrand::f64() * 0.4)
}

struct Sync {
    config: SyncConfig,
    inventory: Arc<Inventory>,
    notices: Option<mpsc::Sender<Notice>>,
    /// Events already handled (a replay repeats some).
    seen: SeenEvents,
    /// Where the current (or last) subscription began, on the engine's clock: after a
    /// reconnect, events are replayed from here or from the newest event handled, whichever
    /// is later.
    resume_from: Option<i64>,
    /// Whether the engine has answered once: its version is logged at the first connect.
    connected_before: bool,
    /// Containers whose health probe ended, to inspect at `health_recheck_at`.
    health_rechecks: BTreeSet<String>,
    health_recheck_at: Option<tokio::time::Instant>,
}

async fn sleep_until_some(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

impl Sync {
    fn new(
        config: SyncConfig,
        inventory: Arc<Inventory>,
        notices: Option<mpsc::Sender<Notice>>,
    ) -> Sync {
        Sync {
            config,
            inventory,
            notices,
            seen: SeenEvents::default(),
            resume_from: None,
            connected_before: false,
            health_rechecks: BTreeSet::new(),
            health_recheck_at: None,
        }
    }

    async fn connect_and_follow(
        &mut self,
        retry: &mut Duration,
        failures: &mut u32,
    ) -> Result<(), String> {
        let client = self.config.client();
        let engine_now = self.read_engine(&client).await.map_err(|e| e.to_string())?;
        // Subscribe before listing, so nothing that happens during the list is missed. The
        // first subscription starts at the engine's present; later ones replay what was
        // missed while disconnected.
        let since = match self.resume_from {
            None => engine_now,
            Some(resume_from) => Some(
                self.seen
                    .since()
                    .map_or(resume_from, |newest| newest.max(resume_from)),
            ),
        };
        let mut stream = events::follow(&client, since)
            .await
            .map_err(|error| error.to_string())?;
        self.resume_from = since.or(self.resume_from);
        self.resync(&client).await.map_err(|e| e.to_string())?;
        self.inventory.set_up(true);
        self.notify(Notice::Resynced).await;
        if *failures > 0 {
            tracing::info!(engine = %self.config.endpoint, "engine reachable again");
        } else if !self.connected_before {
            let snapshot = self.inventory.snapshot();
            let engine = snapshot.engine.unwrap_or_default();
            tracing::info!(
                engine = %self.config.endpoint,
                version = %engine.version,
                api_version = %engine.api_version,
                containers = snapshot.containers.len(),
                "connected to the engine"
            );
        }
        self.connected_before = true;
        *retry = FIRST_RETRY;
        *failures = 0;
        // A quiet stream is normal; a connection that died without closing (a remote engine
        // that went away) looks the same. A ping now and then tells them apart.
        let mut liveness = tokio::time::interval(LIVENESS_PING.min(self.config.timeout));
        liveness.reset();
        loop {
            tokio::select! {
                item = stream.recv() => match item {
                    Some(StreamItem::Event(event)) => self.handle(&client, event).await,
                    Some(StreamItem::Undecodable { line, error }) => {
                        tracing::warn!(%line, %error, "skipping an engine event that is not JSON");
                    }
                    Some(StreamItem::Ended(reason)) => return Err(reason),
                    None => return Ok(()),
                },
                _ = sleep_until_some(self.health_recheck_at), if self.health_recheck_at.is_some() => {
                    self.recheck_health(&client).await;
                }
                _ = liveness.tick() => {
                    client
                        .ping()
                        .await
                        .map_err(|error| format!("the engine stopped answering pings: {error}"))?;
                }
            }
        }
    }

    async fn notify(&self, notice: Notice) {
        if let Some(notices) = &self.notices {
            // The receiver only goes away when the exporter stops.
            let _ = notices.send(notice).await;
        }
    }

    /// Reads `/info` and `/version` into the inventory; returns the engine's clock, in
    /// nanoseconds since the epoch.
    async fn read_engine(&mut self, client: &EngineClient) -> Result<Option<i64>, EngineError> {
        let info: api::Info = client.get("/info").await?;
        let version: api::Version = client.get("/version").await?;
        let engine_now = info
            .system_time
            .as_deref()
            .and_then(|time| chrono::DateTime::parse_from_rfc3339(time).ok())
            .and_then(|time| time.timestamp_nanos_opt());
        let engine = Engine {
            version: info.server_version.or(version.version).unwrap_or_default(),
            api_version: version.api_version.unwrap_or_default(),
            os: info.operating_system.unwrap_or_default(),
            kernel: info.kernel_version.unwrap_or_default(),
            cgroup_driver: info.cgroup_driver.unwrap_or_default(),
            cgroup_version: info.cgroup_version.unwrap_or_default(),
            storage_driver: info.driver.unwrap_or_default(),
        };
        self.inventory.set_engine(engine);
        Ok(engine_now)
    }

    /// Lists every container and rebuilds the inventory from the answers.
    async fn resync(&mut self, client: &EngineClient) -> Result<(), EngineError> {
        let summaries: Vec<api::ContainerSummary> = client.get("/containers/json?all=1").await?;
        let ids: Vec<String> = summaries
            .into_iter()
            .filter_map(|summary| summary.id)
            .collect();
        let this = &*self;
        let inspected: Vec<Option<Tracked>> = futures::stream::iter(ids)
            .map(|id| async move { this.inspect(client, &id).await })
            .buffer_unordered(8)
            .collect()
            .await;
        let tracked: Vec<Tracked> = inspected.into_iter().flatten().collect();
        tracing::debug!(containers = tracked.len(), "resynced the inventory");
        self.inventory.replace_all(tracked);
        Ok(())
    }

    /// The container as the engine describes it now; `None` when it no longer exists.
    async fn inspect(&self, client: &EngineClient, id: &str) -> Option<Tracked> {
        match client
            .get::<api::ContainerInspect>(&format!("/containers/{id}/json"))
            .await
        {
            Ok(inspect) => {
                let container = Container::from_inspect(inspect, &self.config.env_allowlist)?;
                Some(Tracked {
                    container: Arc::new(container),
                    earlier_oom_kills: 0,
                })
            }
            Err(error) if error.is_not_found() => None,
            Err(error) => {
                tracing::warn!(container = id, %error, "cannot inspect container");
                // Keep what we knew rather than dropping a container for a passing error.
                self.inventory.get(id)
            }
        }
    }

    /// Inspects the health-checked containers whose probes ended since the last recheck.
    async fn recheck_health(&mut self, client: &EngineClient) {
        self.health_recheck_at = None;
        for id in std::mem::take(&mut self.health_rechecks) {
            self.refresh(client, &id).await;
        }
    }

    /// Reads the container anew: updated in the inventory, or removed from it when the
    /// engine no longer has it.
    async fn refresh(&self, client: &EngineClient, id: &str) {
        match self.inspect(client, id).await {
            Some(tracked) => self.inventory.upsert(tracked),
            None => {
                self.inventory.remove(id);
            }
        }
    }

    async fn handle(&mut self, client: &EngineClient, event: Event) {
        if !self.seen.first_time(&event) {
            return;
        }
        self.inventory.count_event(&event.kind, event.base_action());
        if event.kind != "container" || event.actor.id.is_empty() {
            return;
        }
        let id = event.actor.id.as_str();
        if event.base_action() == "oom" {
            self.inventory.record_oom(id, event.nanos());
        }
        match event.base_action() {
            "destroy" => {
                self.inventory.remove(id);
            }
            "exec_die" => {
                let health_checked = self
                    .inventory
                    .get(id)
                    .is_some_and(|tracked| tracked.container.health.is_some());
                if health_checked {
                    self.health_rechecks.insert(id.to_owned());
                    self.health_recheck_at
                        .get_or_insert_with(|| tokio::time::Instant::now() + HEALTH_SETTLE);
                }
            }
            // Actions that change nothing the inventory holds.
            "exec_create" | "exec_start" | "exec_detach" | "attach" | "detach" | "top"
            | "resize" | "copy" | "archive-path" | "extract-to-dir" | "export" | "commit" => {}
            action => {
                self.refresh(client, id).await;
                if action == "start" {
                    self.notify(Notice::Started(id.to_owned())).await;
                }
            }
        }
    }
}
