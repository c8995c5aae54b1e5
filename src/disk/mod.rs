//! Disk usage of containers' writable layers (`container_fs_*`), measured by one background
//! walker thread on a slow interval of its own and served from its last result, so that a
//! scrape never walks a directory tree.
//!
//! Scrapes call [`DiskUsage::request`] with the current layers; that records them and, when
//! the last full refresh is older than the interval or a layer has not been walked yet,
//! wakes the walker. Nothing else polls: an exporter nobody scrapes does no walking. Each
//! layer's walk is bounded by a time budget, and the walker runs at idle I/O priority and the
//! lowest CPU priority.

pub mod filesystem;
mod priority;
pub mod tree;

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once};
use std::time::{Duration, Instant, SystemTime};

use crate::cgroup::ParseError;
use crate::cgroup::mountinfo::{self, Mount};

/// How often the layers are walked when scrapes keep asking, as cAdvisor's default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// How long the walk of one layer may take before it stops with a partial count.
pub const DEFAULT_TIME_BUDGET: Duration = Duration::from_secs(10);

/// A container's writable layer, as a scrape knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The container id; results are kept under it.
    pub id: String,
    /// The writable (upper) directory, e.g. `/var/lib/docker/overlay2/<layer>/diff`.
    pub dir: PathBuf,
}

/// What the last walk of one layer found, and the filesystem that holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerUsage {
    /// Allocated space of the tree (`st_blocks * 512`), hard links counted once, other
    /// filesystems mounted inside it left out.
    pub bytes: u64,
    /// Distinct inodes in the tree, its root included.
    pub inodes: u64,
    /// The filesystem, labelled as cAdvisor does: the mount source (`/dev/vda1`), or the
    /// mount point for tmpfs and for sources that are not paths.
    pub device: String,
    /// `statvfs`: `f_blocks * f_frsize`.
    pub fs_capacity_bytes: u64,
    /// `statvfs`: `f_files`.
    pub fs_inodes_total: u64,
    /// `statvfs`: `f_ffree`.
    pub fs_inodes_free: u64,
    /// When the walk finished.
    pub walked_at: SystemTime,
    pub walk_duration: Duration,
    /// False when the walk stopped at its time budget: `bytes` and `inodes` are then lower
    /// bounds.
    pub complete: bool,
}

/// Why one layer, or one whole refresh, has no result. Each names the path it failed on.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("reading {path}: {source}")]
    ReadMountinfo { path: PathBuf, source: io::Error },
    #[error("parsing {path}: {source}")]
    ParseMountinfo { path: PathBuf, source: ParseError },
    #[error("walking {path}: {source}")]
    Walk { path: PathBuf, source: io::Error },
    #[error("statvfs {path}: {source}")]
    Statvfs { path: PathBuf, source: io::Error },
    #[error("no mount in {mountinfo} holds {path}")]
    NoMount { path: PathBuf, mountinfo: PathBuf },
}

/// The disk usage of containers' layers, shared between the scrapes (which ask and read)
/// and the walker thread (which measures). Create it with [`DiskUsage::new`]; the walker
/// stops when the last `Arc` is dropped.
pub struct DiskUsage {
    shared: Arc<Shared>,
    /// Starts the walker on the first request: an exporter never scraped never walks.
    walker: Once,
}

/// What the walker thread holds; it outlives `DiskUsage` only until the walker notices.
struct Shared {
    interval: Duration,
    mountinfo_path: PathBuf,
    time_budget: Duration,
    state: Mutex<State>,
    /// Wakes the walker: a refresh was asked for, or `DiskUsage` was dropped.
    work: Condvar,
    /// Wakes `wait_for_refresh`: a refresh finished.
    finished: Condvar,
}

#[derive(Default)]
struct State {
    /// The layers of the latest request; a refresh measures these.
    layers: Vec<Layer>,
    /// Ids of the layers the latest refresh set out to cover; a requested id outside it is
    /// new and is walked without waiting for the interval.
    covered: HashSet<String>,
    results: HashMap<String, LayerUsage>,
    /// Containers whose partial walk was already logged, so the warning comes once.
    warned_partial: HashSet<String>,
    /// When the last refresh that walked every layer ended: the interval counts from there,
    /// so the disk rests at least that long between full walks, however long they take.
    last_full_refresh_end: Option<Instant>,
    refreshing: bool,
    /// Refreshes asked for, numbered: the walker takes the latest number when it starts
    /// one, and a refresh serves every ask up to the number it took.
    asked: u64,
    taken: u64,
    served: u64,
    refreshes: u64,
    last_refresh_duration: Option<Duration>,
    /// `DiskUsage` was dropped: the walker ends.
    stopped: bool,
}

impl DiskUsage {
    /// `mountinfo_path` is `<procfs>/self/mountinfo` of the process that sees the layers'
    /// paths, to find the filesystem holding each layer; `time_budget` bounds each layer's
    /// walk. Nothing is walked until the first [`request`](Self::request).
    pub fn new(interval: Duration, mountinfo_path: PathBuf, time_budget: Duration) -> Arc<Self> {
        Arc::new(DiskUsage {
            shared: Arc::new(Shared {
                interval,
                mountinfo_path,
                time_budget,
                state: Mutex::new(State::default()),
                work: Condvar::new(),
                finished: Condvar::new(),
            }),
            walker: Once::new(),
        })
    }

    /// Records the layers of the current containers, and wakes the walker when the last
    /// full refresh is older than the interval or a layer is new. Cheap and without I/O,
    /// for the scrape path. Results of containers no longer listed are dropped at the next
    /// refresh.
    pub fn request(&self, layers: Vec<Layer>) {
        self.walker.call_once(|| start_walker(&self.shared));
        let mut state = self.shared.lock();
        let new_layer = layers
            .iter()
            .any(|layer| !state.covered.contains(&layer.id));
        let due = !state.refreshing
            && state
                .last_full_refresh_end
                .is_none_or(|end| end.elapsed() >= self.shared.interval);
        state.layers = layers;
        // An ask not yet taken will read these layers when it is.
        if (due || new_layer) && state.asked == state.taken {
            state.asked += 1;
            self.shared.work.notify_one();
        }
    }

    /// The last result for a container, if a walk of its layer has finished.
    pub fn usage(&self, id: &str) -> Option<LayerUsage> {
        self.shared.lock().results.get(id).cloned()
    }

    /// Blocks until every refresh asked for by a `request` before this call has finished,
    /// or until `timeout`; true when they have (at once when none was pending). After
    /// `request(layers)`, this waits for results that cover `layers`.
    pub fn wait_for_refresh(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.shared.lock();
        let target = state.asked;
        while state.served < target {
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            if left.is_zero() {
                return false;
            }
            state = self
                .shared
                .finished
                .wait_timeout(state, left)
                .expect("disk usage lock")
                .0;
        }
        true
    }

    /// Refreshes finished since start-up: full ones, and those that walked only new layers.
    pub fn refreshes(&self) -> u64 {
        self.shared.lock().refreshes
    }

    /// How long the last refresh took, all its layers together; `None` before the first.
    pub fn last_refresh_seconds(&self) -> Option<f64> {
        self.shared
            .lock()
            .last_refresh_duration
            .map(|duration| duration.as_secs_f64())
    }
}

impl Drop for DiskUsage {
    fn drop(&mut self) {
        // Set under the lock, so the walker cannot miss it between its check and its wait.
        self.shared.lock().stopped = true;
        self.shared.work.notify_all();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("disk usage lock")
    }

    /// Waits for an ask, then takes it: which layers to walk, and whether this is a full
    /// refresh. `None` when `DiskUsage` is gone.
    fn next_refresh(&self) -> Option<(Vec<Layer>, bool)> {
        let mut state = self.lock();
        while state.asked == state.taken && !state.stopped {
            state = self.work.wait(state).expect("disk usage lock");
        }
        if state.stopped {
            return None;
        }
        state.taken = state.asked;
        state.refreshing = true;
        let full = state
            .last_full_refresh_end
            .is_none_or(|end| end.elapsed() >= self.interval);
        let to_walk: Vec<Layer> = if full {
            state.layers.clone()
        } else {
            // Asked for because of new layers only: walk those, leave the others' results.
            state
                .layers
                .iter()
                .filter(|layer| !state.covered.contains(&layer.id))
                .cloned()
                .collect()
        };
        let covered: HashSet<String> = state.layers.iter().map(|layer| layer.id.clone()).collect();
        // Nothing per container outlives its container.
        state.results.retain(|id, _| covered.contains(id));
        state.warned_partial.retain(|id| covered.contains(id));
        state.covered = covered;
        Some((to_walk, full))
    }

    /// Measures `layers` one after another, publishing each result as it is ready.
    fn refresh(&self, layers: &[Layer]) {
        let mounts = match read_mounts(&self.mountinfo_path) {
            Ok(mounts) => mounts,
            Err(error) => {
                tracing::error!(%error, "cannot tell which filesystems hold container layers; no disk usage");
                let mut state = self.lock();
                for layer in layers {
                    state.results.remove(&layer.id);
                }
                return;
            }
        };
        for layer in layers {
            if self.lock().stopped {
                return;
            }
            let result = measure(layer, &mounts, &self.mountinfo_path, self.time_budget);
            let mut state = self.lock();
            match result {
                Ok(Some(usage)) => {
                    if !usage.complete && state.warned_partial.insert(layer.id.clone()) {
                        tracing::warn!(
                            container = %layer.id,
                            dir = %layer.dir.display(),
                            budget_seconds = self.time_budget.as_secs_f64(),
                            "walking the layer took longer than its budget; its disk usage is a lower bound"
                        );
                    }
                    state.results.insert(layer.id.clone(), usage);
                }
                Ok(None) => {
                    tracing::debug!(container = %layer.id, dir = %layer.dir.display(), "no layer directory; no disk usage");
                    state.results.remove(&layer.id);
                }
                Err(error) => {
                    tracing::error!(container = %layer.id, %error, "cannot measure the layer's disk usage");
                    state.results.remove(&layer.id);
                }
            }
        }
    }

    fn finish_refresh(&self, full: bool, duration: Duration) {
        let mut state = self.lock();
        if full {
            state.last_full_refresh_end = Some(Instant::now());
        }
        state.refreshing = false;
        state.served = state.taken;
        state.refreshes += 1;
        state.last_refresh_duration = Some(duration);
        self.finished.notify_all();
    }
}

fn start_walker(shared: &Arc<Shared>) {
    let shared = Arc::clone(shared);
    let spawned = std::thread::Builder::new()
        .name("disk-walker".to_owned())
        .spawn(move || run_walker(&shared));
    if let Err(error) = spawned {
        tracing::error!(%error, "cannot start the disk walker; no container_fs_usage_bytes");
    }
}

fn run_walker(shared: &Shared) {
    priority::lower_own_priority();
    while let Some((layers, full)) = shared.next_refresh() {
        let started = Instant::now();
        shared.refresh(&layers);
        shared.finish_refresh(full, started.elapsed());
    }
}

fn read_mounts(path: &Path) -> Result<Vec<Mount>, DiskError> {
    let text = std::fs::read_to_string(path).map_err(|source| DiskError::ReadMountinfo {
        path: path.to_owned(),
        source,
    })?;
    mountinfo::parse(&text).map_err(|source| DiskError::ParseMountinfo {
        path: path.to_owned(),
        source,
    })
}

/// Walks one layer and reads its filesystem. `Ok(None)` when the layer's directory is not
/// there (the container is being removed, or was never on this filesystem).
fn measure(
    layer: &Layer,
    mounts: &[Mount],
    mountinfo_path: &Path,
    budget: Duration,
) -> Result<Option<LayerUsage>, DiskError> {
    let started = Instant::now();
    // Mount points are real paths: resolve symlinks such as a relocated /var/lib/docker.
    let dir = match std::fs::canonicalize(&layer.dir) {
        Ok(dir) => dir,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(DiskError::Walk {
                path: layer.dir.clone(),
                source,
            });
        }
    };
    let walk_error = |source| DiskError::Walk {
        path: dir.clone(),
        source,
    };
    let Some(tree) = tree::walk(&dir, budget).map_err(walk_error)? else {
        return Ok(None);
    };
    let stats = match filesystem::stats(&dir) {
        Ok(stats) => stats,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(DiskError::Statvfs {
                path: dir.clone(),
                source,
            });
        }
    };
    let mount = filesystem::mount_for(mounts, &dir).ok_or_else(|| DiskError::NoMount {
        path: dir.clone(),
        mountinfo: mountinfo_path.to_owned(),
    })?;
    Ok(Some(LayerUsage {
        bytes: tree.bytes,
        inodes: tree.inodes,
        device: filesystem::device_label(mount),
        fs_capacity_bytes: stats.capacity_bytes,
        fs_inodes_total: stats.inodes_total,
        fs_inodes_free: stats.inodes_free,
        walked_at: SystemTime::now(),
        walk_duration: started.elapsed(),
        complete: tree.complete,
    }))
}

#[cfg(test)]
mod tests {
    use super::tree::tests::write_file;
    use super::*;

    const MIB: u64 = 1 << 20;
    const HOUR: Duration = Duration::from_secs(3600);
    const WAIT: Duration = Duration::from_secs(60);

    /// A scratch directory with a mountinfo that puts everything on `/dev/fixture`.
    struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(
                dir.path().join("mountinfo"),
                "27 1 254:0 / / rw,relatime - ext4 /dev/fixture rw\n",
            )
            .unwrap();
            Fixture { dir }
        }

        fn mountinfo(&self) -> PathBuf {
            self.dir.path().join("mountinfo")
        }

        /// A layer directory holding one synced file of `len` random bytes.
        fn layer(&self, id: &str, len: u64) -> Layer {
            let dir = self.dir.path().join(id);
            std::fs::create_dir(&dir).unwrap();
            write_file(&dir.join("data"), len);
            Layer {
                id: id.to_owned(),
                dir,
            }
        }

        fn disk_usage(&self, interval: Duration) -> Arc<DiskUsage> {
            DiskUsage::new(interval, self.mountinfo(), HOUR)
        }
    }

    #[test]
    fn a_walked_tree_is_served_with_its_filesystem() {
        let fixture = Fixture::new();
        let root = fixture.dir.path().join("upper");
        std::fs::create_dir_all(root.join("nested")).unwrap();
        write_file(&root.join("a"), MIB);
        write_file(&root.join("b"), MIB);
        write_file(&root.join("nested/c"), MIB);
        std::fs::hard_link(root.join("a"), root.join("nested/a-again")).unwrap();
        std::os::unix::fs::symlink("/usr", root.join("link")).unwrap();
        let disk = fixture.disk_usage(HOUR);
        let before = SystemTime::now();

        disk.request(vec![Layer {
            id: "c1".to_owned(),
            dir: root,
        }]);
        assert!(disk.wait_for_refresh(WAIT));

        let usage = disk.usage("c1").expect("a result for c1");
        assert!(usage.complete, "{usage:?}");
        // root, nested, a (two names), b, c, link
        assert_eq!(usage.inodes, 6, "{usage:?}");
        assert!(usage.bytes >= 3 * MIB, "{usage:?}");
        assert!(usage.bytes < 3 * MIB + 256 * 1024, "{usage:?}");
        assert_eq!(usage.device, "/dev/fixture");
        assert!(usage.fs_capacity_bytes > 0, "{usage:?}");
        assert!(usage.fs_inodes_total > 0, "{usage:?}");
        assert!(usage.fs_inodes_free <= usage.fs_inodes_total, "{usage:?}");
        assert!(usage.walked_at >= before, "{usage:?}");
        assert_eq!(disk.refreshes(), 1);
        assert!(
            disk.last_refresh_seconds()
                .is_some_and(|seconds| seconds >= 0.0)
        );
    }

    #[test]
    fn nothing_is_walked_before_the_first_request() {
        let fixture = Fixture::new();
        let disk = fixture.disk_usage(Duration::ZERO);

        assert!(disk.wait_for_refresh(WAIT));
        assert_eq!(disk.refreshes(), 0);
        assert_eq!(disk.last_refresh_seconds(), None);
        assert_eq!(disk.usage("c1"), None);
    }

    #[test]
    fn two_requests_within_the_interval_walk_once() {
        let fixture = Fixture::new();
        let layer = fixture.layer("c1", 4096);
        let disk = fixture.disk_usage(HOUR);

        disk.request(vec![layer.clone()]);
        assert!(disk.wait_for_refresh(WAIT));
        disk.request(vec![layer]);
        assert!(disk.wait_for_refresh(WAIT));

        assert_eq!(disk.refreshes(), 1);
        assert!(disk.usage("c1").is_some());
    }

    #[test]
    fn a_new_layer_is_walked_within_the_interval_and_alone() {
        let fixture = Fixture::new();
        let first = fixture.layer("c1", 4096);
        let second = fixture.layer("c2", 4096);
        let disk = fixture.disk_usage(HOUR);
        disk.request(vec![first.clone()]);
        assert!(disk.wait_for_refresh(WAIT));
        let first_usage = disk.usage("c1").expect("a result for c1");

        disk.request(vec![first, second]);
        assert!(disk.wait_for_refresh(WAIT));

        assert_eq!(disk.refreshes(), 2);
        assert!(disk.usage("c2").is_some());
        // Not due yet: c1 was not walked again.
        assert_eq!(disk.usage("c1"), Some(first_usage));
    }

    #[test]
    fn a_container_no_longer_requested_is_dropped_at_the_next_refresh() {
        let fixture = Fixture::new();
        let kept = fixture.layer("kept", 4096);
        let gone = fixture.layer("gone", 4096);
        // Every request is due, so the second one refreshes.
        let disk = fixture.disk_usage(Duration::ZERO);
        disk.request(vec![kept.clone(), gone]);
        assert!(disk.wait_for_refresh(WAIT));
        assert!(disk.usage("gone").is_some());

        disk.request(vec![kept]);
        assert!(disk.wait_for_refresh(WAIT));

        assert_eq!(disk.refreshes(), 2);
        assert_eq!(disk.usage("gone"), None);
        assert!(disk.usage("kept").is_some());
    }

    #[test]
    fn a_missing_layer_directory_is_no_data() {
        let fixture = Fixture::new();
        let disk = fixture.disk_usage(HOUR);

        disk.request(vec![Layer {
            id: "c1".to_owned(),
            dir: fixture.dir.path().join("no-such-layer"),
        }]);
        assert!(disk.wait_for_refresh(WAIT));

        assert_eq!(disk.refreshes(), 1);
        assert_eq!(disk.usage("c1"), None);
    }

    #[test]
    fn a_layer_that_disappears_loses_its_result() {
        let fixture = Fixture::new();
        let layer = fixture.layer("c1", 4096);
        let disk = fixture.disk_usage(Duration::ZERO);
        disk.request(vec![layer.clone()]);
        assert!(disk.wait_for_refresh(WAIT));
        assert!(disk.usage("c1").is_some());

        std::fs::remove_dir_all(&layer.dir).unwrap();
        disk.request(vec![layer]);
        assert!(disk.wait_for_refresh(WAIT));

        assert_eq!(disk.usage("c1"), None);
    }

    #[test]
    fn a_zero_time_budget_gives_a_partial_result() {
        let fixture = Fixture::new();
        let layer = fixture.layer("c1", 4096);
        let disk = DiskUsage::new(HOUR, fixture.mountinfo(), Duration::ZERO);

        disk.request(vec![layer]);
        assert!(disk.wait_for_refresh(WAIT));

        let usage = disk.usage("c1").expect("a partial result for c1");
        assert!(!usage.complete, "{usage:?}");
        assert_eq!(usage.device, "/dev/fixture");
    }

    #[test]
    fn without_mountinfo_there_is_no_data() {
        let fixture = Fixture::new();
        let layer = fixture.layer("c1", 4096);
        let disk = DiskUsage::new(HOUR, fixture.dir.path().join("no-mountinfo"), HOUR);

        disk.request(vec![layer]);
        assert!(disk.wait_for_refresh(WAIT));

        assert_eq!(disk.refreshes(), 1);
        assert_eq!(disk.usage("c1"), None);
    }

    #[test]
    fn the_walker_ends_when_disk_usage_is_dropped() {
        let fixture = Fixture::new();
        let layer = fixture.layer("c1", 4096);
        let disk = fixture.disk_usage(HOUR);
        disk.request(vec![layer]);
        assert!(disk.wait_for_refresh(WAIT));
        let shared = Arc::downgrade(&disk.shared);
        assert_eq!(
            shared.strong_count(),
            2,
            "the walker holds the shared state"
        );

        drop(disk);

        // The walker drops its handle on the shared state as it returns.
        let deadline = Instant::now() + WAIT;
        while shared.strong_count() > 0 && Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert_eq!(shared.strong_count(), 0);
    }
}
