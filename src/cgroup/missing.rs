//! The cgroup files this kernel and layout do not have, learnt from the first failed open
//! so that no scrape tries them again.
//!
//! Siblings have the same files: on v1 every cgroup of a controller tree has that
//! controller's files, and on v2 a cgroup's controllers are those its parent enables. So a
//! file is remembered as missing for one tree and one parent cgroup (the root apart). What
//! is learnt is forgotten when the inventory changes and every few minutes, so a file that
//! appears later (a controller enabled, swap accounting turned on) is found again.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

/// The name recorded when the parent cgroup itself is not in a tree (a raw cgroup's
/// parent that exists in some v1 controller trees only): no child is looked for there.
pub const WHOLE_PARENT: &str = "";

/// How long a learnt absence holds when nothing else says to look again.
pub const RELEARN_AFTER: Duration = Duration::from_secs(300);

#[derive(Debug)]
pub struct MissingFiles {
    /// Parent cgroup path → (tree index, file name) known to be missing under it.
    known: RwLock<HashMap<String, Vec<(usize, &'static str)>>>,
    /// The inventory generation and the time the knowledge was started from.
    since: Mutex<Option<(u64, Instant)>>,
}

impl Default for MissingFiles {
    fn default() -> Self {
        MissingFiles {
            known: RwLock::new(HashMap::new()),
            since: Mutex::new(None),
        }
    }
}

impl Clone for MissingFiles {
    /// A copy starts knowing nothing: what is learnt belongs to one hierarchy's readers.
    fn clone(&self) -> Self {
        MissingFiles::default()
    }
}

/// The key siblings share: the parent's path; the root has its own ("").
pub fn parent_of(path: &str) -> &str {
    if path == "/" || path.is_empty() {
        return "";
    }
    match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((parent, _)) => parent,
    }
}

/// What is known to be missing under one parent cgroup, as a target takes it before
/// reading its files: one lookup per target rather than one per file.
#[derive(Debug, Default, Clone)]
pub struct KnownMissing {
    files: Vec<(usize, &'static str)>,
}

impl KnownMissing {
    /// Whether `name` is known to be missing in `tree`, or the parent itself is known not
    /// to be in that tree.
    pub fn covers(&self, tree: usize, name: &str) -> bool {
        self.files
            .iter()
            .any(|&(t, n)| t == tree && (n == name || n == WHOLE_PARENT))
    }
}

impl MissingFiles {
    /// What is known to be missing under `parent`, in every tree.
    pub fn under(&self, parent: &str) -> KnownMissing {
        let known = self.known.read().expect("missing files lock");
        KnownMissing {
            files: known.get(parent).cloned().unwrap_or_default(),
        }
    }

    #[cfg(test)]
    fn is_missing(&self, tree: usize, parent: &str, name: &str) -> bool {
        self.under(parent).covers(tree, name)
    }

    pub fn learn(&self, tree: usize, parent: &str, name: &'static str) {
        let mut known = self.known.write().expect("missing files lock");
        let files = known.entry(parent.to_owned()).or_default();
        if !files.contains(&(tree, name)) {
            tracing::debug!(
                parent,
                file = name,
                "no such cgroup file here; not tried again"
            );
            files.push((tree, name));
        }
    }

    /// Forgets everything learnt when the inventory has changed since, or after
    /// `RELEARN_AFTER`. Called once per scrape.
    pub fn forget_if_stale(&self, generation: u64, now: Instant) {
        let mut since = self.since.lock().expect("missing files lock");
        let stale = match *since {
            Some((seen, started)) => {
                seen != generation || now.duration_since(started) >= RELEARN_AFTER
            }
            None => true,
        };
        if stale {
            self.known.write().expect("missing files lock").clear();
            *since = Some((generation, now));
        }
    }

    #[cfg(test)]
    fn known_count(&self) -> usize {
        self.known
            .read()
            .expect("missing files lock")
            .values()
            .map(Vec::len)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siblings_share_a_parent_and_the_root_is_apart() {
        assert_eq!(parent_of("/docker/abc"), "/docker");
        assert_eq!(parent_of("/system.slice/docker-1.scope"), "/system.slice");
        assert_eq!(parent_of("/docker"), "/");
        assert_eq!(parent_of("/"), "");
        assert_eq!(parent_of("/a/b/c/"), "/a/b");
    }

    #[test]
    fn learnt_until_the_inventory_changes_or_time_passes() {
        let missing = MissingFiles::default();
        let start = Instant::now();
        missing.forget_if_stale(1, start);
        missing.learn(0, "/docker", "memory.memsw.usage_in_bytes");
        missing.learn(0, "/docker", "memory.memsw.usage_in_bytes");
        assert_eq!(missing.known_count(), 1);
        assert!(missing.is_missing(0, "/docker", "memory.memsw.usage_in_bytes"));
        assert!(
            !missing.is_missing(1, "/docker", "memory.memsw.usage_in_bytes"),
            "another tree"
        );
        assert!(
            !missing.is_missing(0, "/", "memory.memsw.usage_in_bytes"),
            "another parent"
        );
        missing.forget_if_stale(1, start + Duration::from_secs(10));
        assert!(missing.is_missing(0, "/docker", "memory.memsw.usage_in_bytes"));
        missing.forget_if_stale(2, start + Duration::from_secs(20));
        assert!(!missing.is_missing(0, "/docker", "memory.memsw.usage_in_bytes"));
        missing.learn(3, "/system.slice", WHOLE_PARENT);
        assert!(missing.is_missing(3, "/system.slice", "cpuset.cpus"));
        assert!(!missing.is_missing(2, "/system.slice", "cpuset.cpus"));
        missing.learn(0, "/docker", "blkio.weight");
        missing.forget_if_stale(2, start + Duration::from_secs(20) + RELEARN_AFTER);
        assert_eq!(missing.known_count(), 0);
    }
}
