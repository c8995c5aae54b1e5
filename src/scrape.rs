//! One scrape: every target (Docker containers from the inventory, plus raw cgroups
//! matching `--cgroup.raw`) through every enabled collector, plus the exporter's own
//! metrics. Files are read at scrape time, off the async runtime, and concurrent scrapes
//! share the collection in flight.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use crate::cgroup::{Cgroup, Hierarchy};
use crate::collector::{Collector, Context};
use crate::devices::DeviceNames;
use crate::docker::Inventory;
use crate::engine_metrics;
use crate::metrics::{Desc, Exposition, TargetLabels, TargetSamples, gauge};
use crate::policy::{self, PolicyState};
use crate::process;

static COLLECTOR_DURATION: Desc = gauge(
    "stevedore_scrape_collector_duration_seconds",
    "Time a collector spent on this scrape, over all targets.",
);
static COLLECTOR_SUCCESS: Desc = gauge(
    "stevedore_scrape_collector_success",
    "Whether a collector read every target without error (1) or not (0).",
);
static BUILD_INFO: Desc = gauge(
    "stevedore_build_info",
    "A metric with a constant '1' value labeled by version.",
);
static LAST_SEEN: Desc = gauge(
    "container_last_seen",
    "Last time the container was seen by the exporter, in seconds since the epoch.",
);
static START_TIME: Desc = gauge(
    "container_start_time_seconds",
    "Start time of the container, in seconds since the epoch.",
);
static TARGETS: Desc = gauge(
    "stevedore_scrape_targets",
    "Cgroups read on this scrape, by source (docker or raw).",
);

#[derive(Debug, Clone)]
pub struct ScrapeConfig {
    pub hierarchy: Arc<Hierarchy>,
    pub procfs: PathBuf,
    pub collectors: Vec<&'static Collector>,
    /// `--cgroup.raw` patterns: cgroup paths such as `/system.slice/*.service`.
    pub raw_globs: Vec<String>,
    /// Whether the engine-sourced `docker_*` families are collected.
    pub engine_metrics: bool,
    /// The limit policy, when one is loaded.
    pub policy: Option<Arc<PolicyState>>,
}

/// A cgroup to read, and the labels its samples carry.
#[derive(Debug, Clone)]
pub struct Target {
    pub cgroup_path: String,
    pub labels: TargetLabels,
    pub started_at: Option<f64>,
    pub source: &'static str,
    /// OOM kills of the container's earlier runs (engine `oom` events before this start).
    pub earlier_oom_kills: u64,
}

/// What a collection gives: the metrics, or why there are none (a bug: a panic).
pub type Collection = Result<Arc<Exposition>, String>;

type InFlight = Shared<BoxFuture<'static, Collection>>;

pub struct Scraper {
    config: ScrapeConfig,
    inventory: Arc<Inventory>,
    /// The collection under way, which concurrent scrapes wait for instead of starting
    /// their own. A std mutex: it is held only to clone or replace the future.
    in_flight: Mutex<Option<InFlight>>,
}

impl Scraper {
    pub fn new(config: ScrapeConfig, inventory: Arc<Inventory>) -> Scraper {
        Scraper {
            config,
            inventory,
            in_flight: Mutex::new(None),
        }
    }

    /// The metrics as of now: joins a collection in flight, or starts one.
    pub async fn scrape(self: &Arc<Self>) -> Collection {
        let shared = {
            let mut slot = self.in_flight.lock().expect("scrape slot lock");
            match slot.as_ref() {
                Some(in_flight) => in_flight.clone(),
                None => {
                    // A task of its own, not a future the scrapers poll: it finishes and
                    // frees the slot even when every scraper has gone (timed out), so a
                    // later scrape never receives an old collection.
                    let this = Arc::clone(self);
                    let task = tokio::spawn(async move {
                        let collector = Arc::clone(&this);
                        let result = tokio::task::spawn_blocking(move || collector.collect()).await;
                        *this.in_flight.lock().expect("scrape slot lock") = None;
                        result.map(Arc::new).map_err(|error| {
                            tracing::error!(%error, "collection failed");
                            format!("collection failed: {error}")
                        })
                    });
                    let collection = async move {
                        task.await
                            .unwrap_or_else(|error| Err(format!("collection failed: {error}")))
                    }
                    .boxed()
                    .shared();
                    *slot = Some(collection.clone());
                    collection
                }
            }
        };
        shared.await
    }

    /// Reads everything once. Blocking: call from a blocking thread.
    pub fn collect(&self) -> Exposition {
        let snapshot = self.inventory.snapshot();
        let targets = self.targets(&snapshot);
        let devices = DeviceNames::read(&self.config.procfs);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs_f64())
            .unwrap_or(0.0);

        let mut exposition = Exposition::default();
        let mut durations = vec![0.0f64; self.config.collectors.len()];
        let mut failed = vec![false; self.config.collectors.len()];
        let mut sources: BTreeMap<&str, u64> = BTreeMap::new();
        for target in &targets {
            let cgroup = Cgroup::new(&self.config.hierarchy, &target.cgroup_path);
            let context = Context {
                devices: &devices,
                earlier_oom_kills: target.earlier_oom_kills,
            };
            let mut samples = TargetSamples::default();
            let mut errors = Vec::new();
            for (index, collector) in self.config.collectors.iter().enumerate() {
                let started = Instant::now();
                if let Err(error) = (collector.collect)(&cgroup, &context, &mut samples) {
                    errors.push((index, error));
                }
                durations[index] += started.elapsed().as_secs_f64();
            }
            // A container removed while we read it leaves partial data, and maybe errors
            // from files that went away: drop it whole.
            if !cgroup.exists() {
                tracing::debug!(cgroup = %target.cgroup_path, "cgroup vanished during the scrape; skipped");
                continue;
            }
            for (index, error) in errors {
                failed[index] = true;
                let collector = self.config.collectors[index].name;
                tracing::error!(collector, cgroup = %target.cgroup_path, %error, "collector failed");
            }
            let index = exposition.add_target(Arc::clone(&target.labels));
            samples.commit(&mut exposition, index);
            exposition.push(&LAST_SEEN, Some(index), Vec::new(), now);
            if let Some(started_at) = target.started_at {
                exposition.push(&START_TIME, Some(index), Vec::new(), started_at);
            }
            *sources.entry(target.source).or_default() += 1;
        }
        for (index, collector) in self.config.collectors.iter().enumerate() {
            let label = || vec![("collector", collector.name.to_owned())];
            exposition.push(&COLLECTOR_DURATION, None, label(), durations[index]);
            exposition.push(&COLLECTOR_SUCCESS, None, label(), !failed[index]);
        }
        for source in ["docker", "raw"] {
            let count = sources.get(source).copied().unwrap_or(0);
            exposition.push(&TARGETS, None, vec![("source", source.to_owned())], count);
        }
        exposition.push(
            &BUILD_INFO,
            None,
            vec![("version", env!("CARGO_PKG_VERSION").to_owned())],
            1u64,
        );
        engine_metrics::collect_up(&snapshot, &mut exposition);
        if self.config.engine_metrics {
            engine_metrics::collect(&snapshot, &mut exposition);
        }
        if let Some(policy) = &self.config.policy {
            policy::metrics::collect(policy, &snapshot, &self.config.hierarchy, &mut exposition);
        }
        process::collect(&mut exposition);
        exposition
    }

    /// Running containers with a cgroup, then raw cgroups not already among them, in a
    /// stable order.
    fn targets(&self, snapshot: &crate::docker::Snapshot) -> Vec<Target> {
        let mut targets: BTreeMap<String, Target> = BTreeMap::new();
        for tracked in &snapshot.containers {
            if let Some(path) = &tracked.cgroup_path {
                targets.insert(
                    path.clone(),
                    Target {
                        cgroup_path: path.clone(),
                        labels: Arc::clone(&tracked.labels),
                        started_at: tracked.container.started_at_seconds,
                        source: "docker",
                        earlier_oom_kills: tracked.earlier_oom_kills,
                    },
                );
            }
        }
        for path in raw_cgroups(&self.config.hierarchy, &self.config.raw_globs) {
            targets.entry(path.clone()).or_insert_with(|| Target {
                labels: Arc::new(vec![("id".to_owned(), path.clone())]),
                cgroup_path: path,
                started_at: None,
                source: "raw",
                earlier_oom_kills: 0,
            });
        }
        targets.into_values().collect()
    }
}

/// The cgroup paths matching `--cgroup.raw` patterns in any mounted tree.
pub fn raw_cgroups(hierarchy: &Hierarchy, patterns: &[String]) -> Vec<String> {
    let mut paths = std::collections::BTreeSet::new();
    for pattern in patterns {
        let relative = pattern.trim_start_matches('/');
        for tree in hierarchy.trees() {
            let base = glob::Pattern::escape(&tree.dir.to_string_lossy());
            let full = if relative.is_empty() {
                base
            } else {
                format!("{}/{relative}", base.trim_end_matches('/'))
            };
            let Ok(matches) = glob::glob(&full) else {
                continue;
            };
            for dir in matches.filter_map(Result::ok).filter(|dir| dir.is_dir()) {
                if let Some(path) = tree.path_of(&dir) {
                    paths.insert(path);
                }
            }
        }
    }
    paths.into_iter().collect()
}

/// Checks a `--cgroup.raw` pattern before the exporter starts.
pub fn validate_raw_glob(pattern: &str) -> Result<(), String> {
    if !pattern.starts_with('/') {
        return Err(format!(
            "--cgroup.raw={pattern:?}: a cgroup path pattern starts with '/', e.g. /system.slice/*.service"
        ));
    }
    glob::Pattern::new(pattern)
        .map(|_| ())
        .map_err(|error| format!("--cgroup.raw={pattern:?}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn raw_globs_find_cgroups_in_every_tree() {
        let root = tempfile::tempdir().unwrap();
        for dir in [
            "memory/system.slice/cron.service",
            "memory/system.slice/ssh.service",
            "pids/system.slice/cron.service",
            "pids/system.slice/only-pids.service",
            "pids/system.slice/user.slice",
        ] {
            fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        let hierarchy = Hierarchy::discover(root.path(), None);
        let found = raw_cgroups(&hierarchy, &["/system.slice/*.service".to_owned()]);
        assert_eq!(
            found,
            vec![
                "/system.slice/cron.service",
                "/system.slice/only-pids.service",
                "/system.slice/ssh.service"
            ]
        );
        assert!(validate_raw_glob("/docker/*").is_ok());
        assert!(validate_raw_glob("docker/*").is_err());
        assert!(validate_raw_glob("/[").is_err());
    }

    /// A scraper over the raw cgroups `/docker/*` of a test tree.
    fn raw_scraper(root: &std::path::Path, collectors: Vec<&'static Collector>) -> Scraper {
        Scraper::new(
            ScrapeConfig {
                hierarchy: Arc::new(Hierarchy::discover(root, None)),
                procfs: root.join("proc"),
                collectors,
                raw_globs: vec!["/docker/*".to_owned()],
                engine_metrics: false,
                policy: None,
            },
            Arc::new(Inventory::default()),
        )
    }

    /// Stands in for a container removed while the scrape reads it: its cgroup directory
    /// goes away between the collector's reads.
    fn vanish_during_collection(
        cgroup: &Cgroup,
        _: &Context,
        out: &mut TargetSamples,
    ) -> Result<(), crate::cgroup::CgroupError> {
        static USAGE: Desc = gauge(
            "test_usage_bytes",
            "A reading taken before the cgroup went.",
        );
        out.add(&USAGE, 1u64);
        if cgroup.path.ends_with("/vanishing") {
            for tree in cgroup.hierarchy.trees() {
                let _ = fs::remove_dir_all(tree.dir_of(cgroup.path).unwrap());
            }
        }
        Ok(())
    }

    static VANISHING: Collector = Collector {
        name: "vanishing",
        help: "removes one cgroup while reading it",
        enabled_by_default: true,
        collect: vanish_during_collection,
    };

    #[test]
    fn a_cgroup_that_vanishes_mid_scrape_is_skipped_whole() {
        let root = tempfile::tempdir().unwrap();
        for dir in ["memory/docker/staying", "memory/docker/vanishing"] {
            fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        let scraper = raw_scraper(root.path(), vec![&VANISHING]);
        let exposition = scraper.collect();
        let usage = exposition.family("test_usage_bytes").unwrap();
        assert_eq!(
            usage.samples.len(),
            1,
            "only the staying cgroup is reported"
        );
        let target = usage.samples[0].target.unwrap();
        assert_eq!(exposition.targets[target][0].1, "/docker/staying");
        let success = exposition
            .family("stevedore_scrape_collector_success")
            .unwrap();
        assert_eq!(
            success.samples[0].value.as_f64(),
            1.0,
            "a vanished cgroup is no error"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_abandoned_scrape_does_not_serve_old_data_later() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("memory/docker/a/memory.usage_in_bytes");
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(&file, "1\n").unwrap();
        let scraper = Arc::new(raw_scraper(root.path(), crate::collector::ALL.to_vec()));
        // The scraper starts a collection and gives up before it finishes (a timeout).
        let mut abandoned = Box::pin(scraper.scrape());
        assert!(futures::poll!(&mut abandoned).is_pending());
        drop(abandoned);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        fs::write(&file, "2\n").unwrap();
        let fresh = scraper.scrape().await.unwrap();
        let usage = fresh.family("container_memory_usage_bytes").unwrap();
        assert_eq!(usage.samples[0].value.as_f64(), 2.0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_scrapes_share_one_collection() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("memory/docker/a")).unwrap();
        fs::write(
            root.path().join("memory/docker/a/memory.usage_in_bytes"),
            "4096\n",
        )
        .unwrap();
        let scraper = Arc::new(raw_scraper(root.path(), crate::collector::ALL.to_vec()));
        let scrapes: Vec<_> = (0..8).map(|_| scraper.scrape()).collect();
        let expositions: Vec<Arc<Exposition>> = futures::future::join_all(scrapes)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        for exposition in &expositions[1..] {
            assert!(Arc::ptr_eq(&expositions[0], exposition));
        }
        let usage = expositions[0]
            .family("container_memory_usage_bytes")
            .unwrap();
        assert_eq!(usage.samples[0].value.as_f64(), 4096.0);
        // Once finished, the next scrape collects afresh.
        let later = scraper.scrape().await.unwrap();
        assert!(!Arc::ptr_eq(&expositions[0], &later));
    }
}
