//! One scrape: every target (Docker containers, raw cgroups, the root) through every
//! enabled per-target collector, then every per-scrape collector. Files are read at scrape
//! time, off the async runtime, and concurrent scrapes share the collection in flight.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use crate::cgroup::{Cgroup, FileError, Hierarchy};
use crate::collector::exporter::{COLLECTOR_DURATION, COLLECTOR_SUCCESS, TARGETS};
use crate::collector::{Collector, Read, ScrapeContext, TargetContext};
use crate::devices::DeviceNames;
use crate::disk::DiskUsage;
use crate::docker::Inventory;
use crate::host::cpuinfo::{self, CpuTopology};
use crate::host::meminfo;
use crate::metrics::{Exposition, TargetSamples};
use crate::policy::PolicyState;
use crate::target::{self, Resolver};

#[derive(Clone)]
pub struct ScrapeConfig {
    pub hierarchy: Arc<Hierarchy>,
    pub procfs: PathBuf,
    pub collectors: Vec<&'static Collector>,
    /// The limit policy, when one is loaded.
    pub policy: Option<Arc<PolicyState>>,
    /// The background walker of writable layers, when the disk collector is on.
    pub disk: Option<Arc<DiskUsage>>,
    /// Threads reading targets at once (`--scrape.parallelism`).
    pub parallelism: usize,
}

/// Fewer targets than this per thread are read on the scrape's own thread alone: starting
/// threads would cost more than it saves.
const TARGETS_PER_THREAD: usize = 16;

/// Targets a reading thread takes at a time: few, so that the threads finish together
/// (16 at a time split 51 targets 32 and 19 between two threads).
const TARGETS_PER_TAKE: usize = 4;

/// Room for every collector's time in a reading, without allocating per target.
const MAX_COLLECTORS: usize = 32;

/// Samples a target usually gives (a container on cgroup v2 gives about 45): its list is
/// made this long at once rather than grown step by step.
const SAMPLES_PER_TARGET: usize = 64;

/// What reading one target gave.
struct TargetReading {
    index: usize,
    samples: TargetSamples,
    errors: Vec<(usize, FileError)>,
}

/// What one reading thread gave: its targets' readings and its time per collector.
struct Readings {
    targets: Vec<TargetReading>,
    /// Seconds per collector, in `collectors` order.
    durations: [f64; MAX_COLLECTORS],
}

impl Readings {
    fn new() -> Readings {
        Readings {
            targets: Vec::new(),
            durations: [0.0; MAX_COLLECTORS],
        }
    }
}

/// What a collection gives: the metrics, or why there are none (a bug: a panic).
pub type Collection = Result<Arc<Exposition>, String>;

type InFlight = Shared<BoxFuture<'static, Collection>>;

pub struct Scraper {
    config: ScrapeConfig,
    /// `/proc/cpuinfo` as read at the first scrape that could.
    cpus: OnceLock<CpuTopology>,
    inventory: Arc<Inventory>,
    targets: Arc<Resolver>,
    /// The collection under way, which concurrent scrapes wait for instead of starting
    /// their own. A std mutex: it is held only to clone or replace the future.
    in_flight: Mutex<Option<InFlight>>,
}

/// Frees the scraper's slot for the collection in flight when the collection ends, a
/// panic included.
struct FreeSlot<'a>(&'a Scraper);

impl Drop for FreeSlot<'_> {
    fn drop(&mut self) {
        // Not `expect`: this may run while a panic unwinds.
        let slot = &self.0.in_flight;
        *slot.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

impl Scraper {
    pub fn new(config: ScrapeConfig, inventory: Arc<Inventory>, targets: Arc<Resolver>) -> Scraper {
        Scraper {
            config,
            cpus: OnceLock::new(),
            inventory,
            targets,
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
                    // A blocking task of its own, not a future the scrapers poll: it
                    // finishes and frees the slot even when every scraper has gone (timed
                    // out), so a later scrape never receives an old collection.
                    let this = Arc::clone(self);
                    let task = tokio::task::spawn_blocking(move || {
                        let _free_slot = FreeSlot(&this);
                        let started = Instant::now();
                        let exposition = this.collect();
                        tracing::debug!(elapsed = ?started.elapsed(), "collection finished");
                        exposition
                    });
                    let collection = async move {
                        task.await.map(Arc::new).map_err(|error| {
                            tracing::error!(%error, "collection failed");
                            format!("collection failed: {error}")
                        })
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
        let targets = self.targets.targets(&snapshot);
        let procfs = self.config.procfs.as_path();
        let devices = DeviceNames::read(procfs);
        let meminfo = meminfo::read(procfs).unwrap_or_else(|error| {
            tracing::error!(%error, "cannot read the host's memory");
            None
        });
        let now_seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs_f64())
            .unwrap_or(0.0);
        let context = ScrapeContext {
            hierarchy: &self.config.hierarchy,
            procfs,
            snapshot: &snapshot,
            targets: &targets,
            devices: &devices,
            meminfo: meminfo.as_ref(),
            cpus: self.cpus(),
            policy: self.config.policy.as_deref(),
            disk: self.config.disk.as_deref(),
            now_seconds,
        };

        self.config
            .hierarchy
            .missing
            .forget_if_stale(snapshot.generation, Instant::now());

        let mut exposition = Exposition::default();
        // Sample target `i` is `targets[i]`: per-scrape collectors refer to targets so.
        for target in &targets {
            exposition.add_target(Arc::clone(&target.labels));
        }
        let collectors = &self.config.collectors;
        let readings = self.read_targets(&context);
        // Seconds per collector: the reading threads' sums, then the per-scrape collectors'.
        let mut durations = readings.durations[..collectors.len()].to_vec();
        let mut failed = vec![false; collectors.len()];
        let mut sources: BTreeMap<&str, u64> = BTreeMap::new();
        for reading in readings.targets {
            let target = &targets[reading.index];
            for (position, error) in reading.errors {
                failed[position] = true;
                let collector = collectors[position].name;
                let cgroup = target.cgroup.as_deref().unwrap_or_default();
                tracing::error!(collector, cgroup, %error, "collector failed");
            }
            reading.samples.commit(&mut exposition, reading.index);
            *sources.entry(target.source()).or_default() += 1;
        }
        for (position, collector) in collectors.iter().enumerate() {
            let Read::PerScrape(read) = collector.read else {
                continue;
            };
            let started = Instant::now();
            if let Err(error) = read(&context, &mut exposition) {
                failed[position] = true;
                tracing::error!(collector = collector.name, %error, "collector failed");
            }
            durations[position] += started.elapsed().as_secs_f64();
        }
        for (position, collector) in collectors.iter().enumerate() {
            let label = || vec![("collector", collector.name.into())];
            exposition.push(&COLLECTOR_DURATION, None, label(), durations[position]);
            exposition.push(&COLLECTOR_SUCCESS, None, label(), !failed[position]);
        }
        for source in target::SOURCES {
            let count = sources.get(source).copied().unwrap_or(0);
            exposition.push(&TARGETS, None, vec![("source", source.into())], count);
        }
        exposition
    }

    fn cpus(&self) -> Option<CpuTopology> {
        if let Some(cpus) = self.cpus.get() {
            return Some(*cpus);
        }
        match cpuinfo::read(&self.config.procfs) {
            Ok(Some(cpus)) => Some(*self.cpus.get_or_init(|| cpus)),
            Ok(None) => None,
            Err(error) => {
                tracing::error!(%error, "cannot read the host's CPUs");
                None
            }
        }
    }

    /// Every target with a cgroup through the per-target collectors, on up to
    /// `parallelism` threads; the readings of targets whose cgroup went away are left out.
    fn read_targets(&self, context: &ScrapeContext) -> Readings {
        let readable: Vec<usize> = (0..context.targets.len())
            .filter(|&index| context.targets[index].cgroup.is_some())
            .collect();
        let threads = self
            .config
            .parallelism
            .min(readable.len().div_ceil(TARGETS_PER_THREAD))
            .max(1);
        let read_some = |next: &AtomicUsize| {
            let mut readings = Readings::new();
            // Each target's samples are gathered here, then copied out at their exact size:
            // 10,000 targets' samples are held until encoding, and room to spare in each
            // would be a third of the scrape's memory.
            let mut scratch = TargetSamples::with_capacity(SAMPLES_PER_TARGET);
            loop {
                let start = next.fetch_add(TARGETS_PER_TAKE, Ordering::Relaxed);
                let Some(take) = readable.get(start..) else {
                    break;
                };
                for &index in take.iter().take(TARGETS_PER_TAKE) {
                    let reading =
                        self.read_target(context, index, &mut scratch, &mut readings.durations);
                    readings.targets.extend(reading);
                }
            }
            readings
        };
        let next = AtomicUsize::new(0);
        // The scrape's own thread reads too, beside `threads - 1` others.
        let mut readings = std::thread::scope(|scope| {
            let workers: Vec<_> = (1..threads)
                .map(|_| scope.spawn(|| read_some(&next)))
                .collect();
            let mut all = read_some(&next);
            for worker in workers {
                let some = worker.join().expect("a target reader panicked");
                all.targets.extend(some.targets);
                for (sum, seconds) in all.durations.iter_mut().zip(some.durations) {
                    *sum += seconds;
                }
            }
            all
        });
        readings
            .targets
            .sort_unstable_by_key(|reading| reading.index);
        readings
    }

    /// One target through every per-target collector, its samples gathered in `scratch`
    /// and its time added to `durations`; `None` when its cgroup went away while it was
    /// read (a container removed mid-scrape leaves partial data, and maybe errors from
    /// files that went: it is dropped whole).
    fn read_target(
        &self,
        context: &ScrapeContext,
        index: usize,
        scratch: &mut TargetSamples,
        durations: &mut [f64; MAX_COLLECTORS],
    ) -> Option<TargetReading> {
        let target = &context.targets[index];
        let path = target.cgroup.as_deref()?;
        let target_context = TargetContext {
            target,
            cgroup: Cgroup::new(&self.config.hierarchy, path),
            scrape: context,
        };
        let mut errors = Vec::new();
        for (position, collector) in self.config.collectors.iter().enumerate() {
            let Read::PerTarget(read) = collector.read else {
                continue;
            };
            let started = Instant::now();
            if let Err(error) = read(&target_context, scratch) {
                errors.push((position, error));
            }
            durations[position] += started.elapsed().as_secs_f64();
        }
        let vanished = (target_context.cgroup.maybe_gone() || !errors.is_empty())
            && !target_context.cgroup.exists();
        let samples = scratch.take_exact();
        if vanished {
            tracing::debug!(cgroup = %path, "cgroup vanished during the scrape; skipped");
            return None;
        }
        Some(TargetReading {
            index,
            samples,
            errors,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Desc, gauge};
    use std::fs;

    /// A scraper over the raw cgroups `/docker/*` of a test tree.
    fn raw_scraper(root: &std::path::Path, collectors: Vec<&'static Collector>) -> Scraper {
        let hierarchy = Arc::new(Hierarchy::discover(root, None));
        Scraper::new(
            ScrapeConfig {
                hierarchy: Arc::clone(&hierarchy),
                procfs: root.join("proc"),
                collectors,
                policy: None,
                disk: None,
                parallelism: 2,
            },
            Arc::new(Inventory::default()),
            Arc::new(Resolver::new(target::TargetConfig {
                hierarchy,
                procfs: root.join("proc"),
                label_allowlist: Vec::new(),
                raw_globs: vec!["/docker/*".to_owned()],
                root: false,
            })),
        )
    }

    /// A tree with one raw cgroup, `/docker/a`, whose memory usage file holds `usage`, and a
    /// scraper over it with every collector and `extra`. The tree lives as long as the
    /// `TempDir`; the file's path is there to change it.
    fn one_cgroup(
        usage: &str,
        extra: Option<&'static Collector>,
    ) -> (tempfile::TempDir, PathBuf, Arc<Scraper>) {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("memory/docker/a/memory.usage_in_bytes");
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(&file, usage).unwrap();
        let mut collectors = crate::collector::ALL.to_vec();
        collectors.extend(extra);
        let scraper = Arc::new(raw_scraper(root.path(), collectors));
        (root, file, scraper)
    }

    /// Stands in for a container removed while the scrape reads it: its cgroup directory
    /// goes away between the collector's reads.
    fn vanish_during_collection(
        context: &TargetContext,
        out: &mut TargetSamples,
    ) -> Result<(), crate::cgroup::FileError> {
        let cgroup = &context.cgroup;
        out.add(&TEST_USAGE, 1u64);
        if cgroup.path.ends_with("/vanishing") {
            for tree in cgroup.hierarchy.trees() {
                let _ = fs::remove_dir_all(tree.dir_of(cgroup.path).unwrap());
            }
        }
        // The next file read finds the cgroup gone.
        cgroup.read(
            crate::cgroup::Controller::Memory,
            "memory.usage_in_bytes",
            crate::cgroup::parse::single_u64,
        )?;
        Ok(())
    }

    static TEST_USAGE: Desc = gauge(
        "test_usage_bytes",
        "A reading taken before the cgroup went.",
    );

    static VANISHING: Collector = Collector {
        name: "vanishing",
        help: "removes one cgroup while reading it",
        enabled_by_default: true,
        families: &[&TEST_USAGE],
        read: Read::PerTarget(vanish_during_collection),
    };

    #[test]
    fn a_cgroup_that_vanishes_mid_scrape_is_skipped_whole() {
        let root = tempfile::tempdir().unwrap();
        for dir in ["memory/docker/staying", "memory/docker/vanishing"] {
            fs::create_dir_all(root.path().join(dir)).unwrap();
            fs::write(
                root.path().join(dir).join("memory.usage_in_bytes"),
                "4096\n",
            )
            .unwrap();
        }
        let scraper = raw_scraper(root.path(), vec![&VANISHING]);
        let exposition = scraper.collect();
        let usage = exposition.family("test_usage_bytes");
        assert_eq!(usage.len(), 1, "only the staying cgroup is reported");
        let target = usage[0].0.unwrap();
        assert_eq!(exposition.targets[target as usize][0].1, "/docker/staying");
        let success = exposition.family("stevedore_scrape_collector_success");
        assert_eq!(
            success[0].1.value.as_f64(),
            1.0,
            "a vanished cgroup is no error"
        );
    }

    /// Holds every collection at its first target until the test lets them go, so that a
    /// scrape abandoned meanwhile is abandoned before its collection finishes, however fast
    /// the machine. Only `an_abandoned_scrape_does_not_serve_old_data_later` uses it.
    static HELD: (std::sync::Mutex<bool>, std::sync::Condvar) =
        (std::sync::Mutex::new(true), std::sync::Condvar::new());

    fn wait_until_let_go(
        _: &TargetContext,
        _: &mut TargetSamples,
    ) -> Result<(), crate::cgroup::FileError> {
        let (held, let_go) = &HELD;
        let mut held = held.lock().unwrap();
        while *held {
            held = let_go.wait(held).unwrap();
        }
        Ok(())
    }

    static GATE: Collector = Collector {
        name: "gate",
        help: "holds the collection until the test lets it go",
        enabled_by_default: true,
        families: &[],
        read: Read::PerTarget(wait_until_let_go),
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_abandoned_scrape_does_not_serve_old_data_later() {
        let (_root, file, scraper) = one_cgroup("1\n", Some(&GATE));
        // The scraper starts a collection and gives up before it finishes (a timeout).
        let mut abandoned = Box::pin(scraper.scrape());
        assert!(futures::poll!(&mut abandoned).is_pending());
        drop(abandoned);
        fs::write(&file, "2\n").unwrap();
        // The abandoned collection (which read 1) finishes on its own and frees its slot.
        *HELD.0.lock().unwrap() = false;
        HELD.1.notify_all();
        let deadline = Instant::now() + std::time::Duration::from_secs(30);
        while scraper.in_flight.lock().unwrap().is_some() {
            assert!(
                Instant::now() < deadline,
                "the abandoned collection never finished"
            );
            tokio::task::yield_now().await;
        }
        let fresh = scraper.scrape().await.unwrap();
        let usage = fresh.family("container_memory_usage_bytes");
        assert_eq!(usage[0].1.value.as_f64(), 2.0);
    }

    static PANICKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    fn panic_the_first_time(
        _: &TargetContext,
        _: &mut TargetSamples,
    ) -> Result<(), crate::cgroup::FileError> {
        assert!(PANICKED.swap(true, Ordering::SeqCst), "a collector's bug");
        Ok(())
    }

    static PANICS_ONCE: Collector = Collector {
        name: "panics_once",
        help: "panics in the first collection",
        enabled_by_default: true,
        families: &[],
        read: Read::PerTarget(panic_the_first_time),
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_collection_that_panics_fails_its_scrape_and_frees_its_slot() {
        let (_root, _, scraper) = one_cgroup("4096\n", Some(&PANICS_ONCE));
        let failed = scraper.scrape().await;
        assert!(
            failed
                .as_ref()
                .is_err_and(|error| error.starts_with("collection failed")),
            "{:?}",
            failed.map(|_| ())
        );
        assert!(scraper.in_flight.lock().unwrap().is_none());
        let next = scraper.scrape().await.unwrap();
        let usage = next.family("container_memory_usage_bytes");
        assert_eq!(usage[0].1.value.as_f64(), 4096.0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_scrapes_share_one_collection() {
        let (_root, _, scraper) = one_cgroup("4096\n", None);
        let scrapes: Vec<_> = (0..8).map(|_| scraper.scrape()).collect();
        let expositions: Vec<Arc<Exposition>> = futures::future::join_all(scrapes)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        for exposition in &expositions[1..] {
            assert!(Arc::ptr_eq(&expositions[0], exposition));
        }
        let usage = expositions[0].family("container_memory_usage_bytes");
        assert_eq!(usage[0].1.value.as_f64(), 4096.0);
        // Once finished, the next scrape collects afresh.
        let later = scraper.scrape().await.unwrap();
        assert!(!Arc::ptr_eq(&expositions[0], &later));
    }
}
