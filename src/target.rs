//! Targets: the one place where what the engine says about a container meets the kernel's
//! files. A target is a cgroup to read (a running container's, a raw cgroup from
//! `--cgroup.raw`, or the root), the labels its samples carry, the network namespace to
//! read its traffic from, and its writable layer on disk.
//!
//! Containers are resolved when the inventory changes (a new `Arc<Container>`), not on every
//! scrape: a scrape reuses the cgroup path and the formatted label set of every container
//! the engine has said nothing new about.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::cgroup::path::{self, Driver};
use crate::cgroup::{Hierarchy, Mode, mountinfo};
use crate::docker::Snapshot;
use crate::docker::container::Container;
use crate::metrics::{LabelSet, TargetLabels};

/// The cgroup path of the root target, and its `id` label, as cAdvisor has it.
pub const ROOT: &str = "/";

#[derive(Debug, Clone)]
pub enum Kind {
    Container(Arc<Container>),
    /// A cgroup matched by `--cgroup.raw`.
    Raw,
    /// The root cgroup: the host's totals.
    Root,
}

/// Where a target's network traffic is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// A namespace of its own, read through this process (`/proc/<pid>/net/dev`).
    Own { pid: u32 },
    /// No series: the host's namespace (`--network host`, counted at the root), another
    /// container's (`--network container:x`, counted there), or none at all.
    NotItsOwn,
}

#[derive(Debug, Clone)]
pub struct Target {
    pub kind: Kind,
    /// The cgroup path; `None` for a container that is not running (or whose cgroup is not
    /// found): engine facts only.
    pub cgroup: Option<String>,
    /// The labels of its samples: `id`, and for containers `name`, `image`,
    /// `container_label_*`, `container_env_*`.
    pub labels: TargetLabels,
    pub network: Network,
    /// The container's writable layer, for disk usage.
    pub writable_layer: Option<PathBuf>,
    /// OOM kills in the container's earlier runs: its cgroup, and the kernel's count with
    /// it, is new at every start, while the engine's `oom` events carry on.
    pub earlier_oom_kills: u64,
}

impl Target {
    /// A running container whose cgroup was not found: its usage cannot be reported.
    pub fn is_unlocated(&self) -> bool {
        self.cgroup.is_none() && self.container().is_some_and(Container::is_running)
    }

    pub fn container(&self) -> Option<&Container> {
        match &self.kind {
            Kind::Container(container) => Some(container),
            Kind::Raw | Kind::Root => None,
        }
    }

    pub fn is_root(&self) -> bool {
        matches!(self.kind, Kind::Root)
    }

    /// `docker`, `raw` or `root`: the `source` label of `stevedore_scrape_targets`.
    pub fn source(&self) -> &'static str {
        match self.kind {
            Kind::Container(_) => "docker",
            Kind::Raw => "raw",
            Kind::Root => "root",
        }
    }
}

pub const SOURCES: [&str; 3] = ["docker", "raw", "root"];

#[derive(Debug, Clone)]
pub struct TargetConfig {
    pub hierarchy: Arc<Hierarchy>,
    pub procfs: PathBuf,
    /// `--docker.label-allowlist`: which Docker labels become `container_label_*`.
    pub label_allowlist: Vec<glob::Pattern>,
    /// `--cgroup.raw` patterns: cgroup paths such as `/system.slice/*.service`.
    pub raw_globs: Vec<String>,
    /// Whether the root cgroup is a target.
    pub root: bool,
}

/// Turns inventory snapshots into targets, remembering each container's resolution until
/// the engine describes the container anew.
#[derive(Debug)]
pub struct Resolver {
    config: TargetConfig,
    /// Container id → the description it was resolved from, and the result.
    resolved: Mutex<HashMap<String, (Arc<Container>, Target)>>,
    /// The raw cgroups of the last scrape and their label sets, sorted by path: a raw
    /// cgroup's labels are formatted when it first matches, not at every scrape.
    raw_labels: Mutex<Vec<(String, TargetLabels)>>,
}

impl Resolver {
    pub fn new(config: TargetConfig) -> Resolver {
        Resolver {
            config,
            resolved: Mutex::new(HashMap::new()),
            raw_labels: Mutex::new(Vec::new()),
        }
    }

    pub fn config(&self) -> &TargetConfig {
        &self.config
    }

    /// Every target of this snapshot: each container (running or not), the raw cgroups not
    /// already among them, and the root; in a stable order.
    pub fn targets(&self, snapshot: &Snapshot) -> Vec<Target> {
        let mut targets = self.containers(snapshot);
        let taken: std::collections::HashSet<String> = targets
            .iter()
            .filter_map(|target| target.cgroup.clone())
            .collect();
        let mut raw_labels = self.raw_labels.lock().expect("raw cgroups lock");
        let mut earlier = raw_labels.iter().peekable();
        let mut matched = Vec::new();
        // Both lists are sorted by path: one walk pairs each cgroup with its labels.
        for path in raw_cgroups(&self.config.hierarchy, &self.config.raw_globs) {
            let is_root = self.config.root && path == ROOT;
            if taken.contains(&path) || is_root {
                continue;
            }
            while earlier.next_if(|(seen, _)| *seen < path).is_some() {}
            let labels = match earlier.next_if(|(seen, _)| *seen == path) {
                Some((_, labels)) => Arc::clone(labels),
                None => LabelSet::new(vec![("id".to_owned(), path.clone())]),
            };
            targets.push(Target {
                kind: Kind::Raw,
                labels: Arc::clone(&labels),
                cgroup: Some(path.clone()),
                network: Network::NotItsOwn,
                writable_layer: None,
                earlier_oom_kills: 0,
            });
            matched.push((path, labels));
        }
        *raw_labels = matched;
        drop(raw_labels);
        if self.config.root {
            targets.push(Target {
                kind: Kind::Root,
                cgroup: Some(ROOT.to_owned()),
                labels: LabelSet::new(vec![("id".to_owned(), ROOT.to_owned())]),
                // The exporter's view of process 1 is the host's namespace when it runs on
                // the host or in a container with `--pid host`.
                network: Network::Own { pid: 1 },
                writable_layer: None,
                earlier_oom_kills: 0,
            });
        }
        targets
    }

    /// The snapshot's containers only, running or not, ordered by cgroup path.
    pub fn containers(&self, snapshot: &Snapshot) -> Vec<Target> {
        let driver = snapshot.engine.as_ref().map_or(Driver::Cgroupfs, |engine| {
            Driver::from_engine(&engine.cgroup_driver)
        });
        let mut targets = Vec::with_capacity(snapshot.containers.len() + 1);
        {
            let mut resolved = self.resolved.lock().expect("target cache lock");
            let mut still_here = HashMap::with_capacity(snapshot.containers.len());
            for tracked in &snapshot.containers {
                let id = &tracked.container.id;
                let previous = resolved.remove(id);
                let unlocated_before = previous
                    .as_ref()
                    .is_some_and(|(seen, target)| seen.is_running() && target.cgroup.is_none());
                let mut target = match previous {
                    Some((seen, target))
                        if Arc::ptr_eq(&seen, &tracked.container)
                            && (target.cgroup.is_some() || !tracked.container.is_running()) =>
                    {
                        target
                    }
                    _ => self.resolve(&tracked.container, driver),
                };
                if target.is_unlocated() && !unlocated_before {
                    tracing::warn!(
                        container = %tracked.container.name,
                        id = %id,
                        cgroupfs = %self.config.hierarchy.describe(),
                        "no cgroup found for a running container; its usage is not reported \
                         (counted in stevedore_scrape_containers_without_cgroup)"
                    );
                }
                target.earlier_oom_kills = tracked.earlier_oom_kills;
                still_here.insert(id.clone(), (Arc::clone(&tracked.container), target.clone()));
                targets.push(target);
            }
            // Containers that went are forgotten with the scrape that no longer sees them.
            *resolved = still_here;
        }
        targets.sort_by(|a, b| {
            a.cgroup
                .cmp(&b.cgroup)
                .then_with(|| a.labels.cmp(&b.labels))
        });
        targets
    }

    fn resolve(&self, container: &Arc<Container>, driver: Driver) -> Target {
        let cgroup = locate_cgroup(
            &self.config.hierarchy,
            &self.config.procfs,
            driver,
            container,
        );
        // A stopped container keeps the `id` it has while running: where its driver puts
        // its cgroup.
        let id = cgroup.clone().unwrap_or_else(|| {
            path::container_cgroup_path(driver, &container.cgroup_parent, &container.id)
        });
        let network = match (container.pid, network_of(&container.network_mode)) {
            (Some(pid), true) => Network::Own { pid },
            _ => Network::NotItsOwn,
        };
        let writable_layer = container.writable_layer.clone().or_else(|| {
            container
                .pid
                .and_then(|pid| upper_dir_of(&self.config.procfs, pid))
        });
        Target {
            labels: container_labels(container, &id, &self.config.label_allowlist),
            kind: Kind::Container(Arc::clone(container)),
            cgroup,
            network,
            writable_layer,
            earlier_oom_kills: 0,
        }
    }
}

/// Whether a container with this `NetworkMode` has a network namespace of its own.
fn network_of(network_mode: &str) -> bool {
    !(network_mode == "host" || network_mode == "none" || network_mode.starts_with("container:"))
}

/// The writable layer of a container whose storage driver did not name it: the `upperdir`
/// of the overlay mounted at its root (the containerd image store reports no
/// `GraphDriver`).
fn upper_dir_of(procfs: &Path, pid: u32) -> Option<PathBuf> {
    let text = std::fs::read_to_string(procfs.join(pid.to_string()).join("mountinfo")).ok()?;
    let mounts = mountinfo::parse(&text).ok()?;
    let root = mounts.iter().rev().find(|mount| mount.mount_point == "/")?;
    root.super_options
        .iter()
        .find_map(|option| option.strip_prefix("upperdir="))
        .map(PathBuf::from)
}

/// Prometheus label names allow `[a-zA-Z0-9_]`; Docker label keys allow dots and dashes.
pub fn sanitize_label_name(key: &str) -> String {
    key.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The labels of a container's samples, as cAdvisor names them: `id` (its cgroup path),
/// `name`, `image`, `container_label_<key>` for each allow-listed Docker label, and
/// `container_env_<key>` for each allow-listed environment variable (kept at inspect).
/// Two keys that sanitise to the same name keep the first in key order.
pub fn container_labels(
    container: &Container,
    cgroup_path: &str,
    label_allowlist: &[glob::Pattern],
) -> TargetLabels {
    let mut labels = vec![
        ("id".to_owned(), cgroup_path.to_owned()),
        ("name".to_owned(), container.name.clone()),
        ("image".to_owned(), container.image.clone()),
    ];
    let mut names = std::collections::HashSet::new();
    let docker_labels = container
        .labels
        .iter()
        .filter(|(key, _)| label_allowlist.iter().any(|pattern| pattern.matches(key)))
        .map(|(key, value)| {
            (
                format!("container_label_{}", sanitize_label_name(key)),
                value,
            )
        });
    let env = container.env.iter().map(|(key, value)| {
        (
            format!("container_env_{}", sanitize_label_name(&key.to_lowercase())),
            value,
        )
    });
    for (name, value) in docker_labels.chain(env) {
        if names.insert(name.clone()) {
            labels.push((name, value.clone()));
        }
    }
    LabelSet::new(labels)
}

/// The cgroup path of a running container: where its driver puts it, or, when that
/// directory is not there (an unusual runtime or parent), where its main process is.
pub fn locate_cgroup(
    hierarchy: &Hierarchy,
    procfs: &Path,
    driver: Driver,
    container: &Container,
) -> Option<String> {
    let pid = container.pid?;
    let expected = path::container_cgroup_path(driver, &container.cgroup_parent, &container.id);
    if hierarchy.exists(&expected) {
        return Some(expected);
    }
    let proc_cgroup = procfs.join(pid.to_string()).join("cgroup");
    let lines = std::fs::read_to_string(&proc_cgroup)
        .map_err(|error| error.to_string())
        .and_then(|text| path::parse_proc_cgroup(&text).map_err(|error| error.to_string()));
    let found = match lines {
        Ok(lines) => path::process_cgroup_path(&lines, hierarchy.mode == Mode::Unified)
            .filter(|found| hierarchy.exists(found)),
        Err(error) => {
            tracing::debug!(container = %container.id, path = %proc_cgroup.display(), %error, "cannot read the container's process cgroup");
            None
        }
    };
    if found.is_none() {
        tracing::debug!(container = %container.id, %expected, "no cgroup found for running container");
    }
    found
}

/// The cgroup paths matching `--cgroup.raw` patterns in any mounted tree, sorted and each
/// once.
///
/// Expanded one path component at a time with `read_dir`, whose entries carry their type:
/// a scrape of 10,000 raw cgroups lists their parent once per tree instead of asking the
/// kernel about each of them. Each match's cgroup path is built beside its directory:
/// working it out from the directory afterwards (`MountedTree::path_of`) made the listing
/// cost 5,400 instructions a cgroup rather than 2,800.
pub fn raw_cgroups(hierarchy: &Hierarchy, patterns: &[String]) -> Vec<String> {
    let mut paths = Vec::new();
    for pattern in patterns {
        let components: Vec<&str> = pattern.split('/').filter(|part| !part.is_empty()).collect();
        for tree in hierarchy.trees() {
            let Some(top) = tree.path_of(&tree.dir) else {
                continue;
            };
            paths.extend(
                expand(&tree.dir, &top, &components)
                    .into_iter()
                    .map(|(_, path)| path),
            );
        }
    }
    paths.sort_unstable();
    paths.dedup();
    paths
}

/// The directories under `base` (cgroup `base_path`) matching `components`, each a literal
/// name or a glob of one component, with their cgroup paths.
fn expand(base: &Path, base_path: &str, components: &[&str]) -> Vec<(PathBuf, String)> {
    let mut found = vec![(base.to_owned(), base_path.to_owned())];
    for (position, component) in components.iter().enumerate() {
        let is_glob = component.contains(['*', '?', '[']);
        let Ok(pattern) = glob::Pattern::new(component) else {
            return Vec::new();
        };
        let mut next = Vec::new();
        for (dir, path) in &found {
            if !is_glob {
                // A literal name is checked by listing its directory at the next step; a
                // last one, here.
                let child = dir.join(component);
                if position + 1 < components.len() || child.is_dir() {
                    next.push((child, child_cgroup(path, component)));
                }
                continue;
            }
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
                let name = entry.file_name();
                let Some(name) = name.to_str() else {
                    continue; // a cgroup path is text
                };
                if is_dir && pattern.matches(name) {
                    next.push((entry.path(), child_cgroup(path, name)));
                }
            }
        }
        found = next;
    }
    found
}

/// The path of cgroup `name` under cgroup `parent`.
fn child_cgroup(parent: &str, name: &str) -> String {
    let parent = parent.trim_end_matches('/');
    let mut path = String::with_capacity(parent.len() + 1 + name.len());
    path.push_str(parent);
    path.push('/');
    path.push_str(name);
    path
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
    use crate::docker::inventory::Tracked;
    use std::fs;

    fn container(id: &str) -> Container {
        Container {
            labels: [
                ("com.docker.compose.project".to_owned(), "shop".to_owned()),
                ("org.label-schema.group".to_owned(), "monitoring".to_owned()),
                ("org_label-schema.group".to_owned(), "clash".to_owned()),
            ]
            .into_iter()
            .collect(),
            env: [("APP_TIER".to_owned(), "web".to_owned())]
                .into_iter()
                .collect(),
            ..Container::running(id)
        }
    }

    fn patterns(globs: &[&str]) -> Vec<glob::Pattern> {
        globs
            .iter()
            .map(|glob| glob::Pattern::new(glob).unwrap())
            .collect()
    }

    #[test]
    fn labels_copy_allow_listed_docker_labels_and_kept_env_as_cadvisor_names_them() {
        let labels = container_labels(&container("abc"), "/docker/abc", &patterns(&["*"]));
        assert_eq!(
            &labels[..],
            &[
                ("id".to_owned(), "/docker/abc".to_owned()),
                ("name".to_owned(), "web".to_owned()),
                ("image".to_owned(), "busybox".to_owned()),
                (
                    "container_label_com_docker_compose_project".to_owned(),
                    "shop".to_owned()
                ),
                (
                    "container_label_org_label_schema_group".to_owned(),
                    "monitoring".to_owned()
                ),
                ("container_env_app_tier".to_owned(), "web".to_owned()),
            ],
            "the clashing key sorts after the first and is left out"
        );
        let only_compose = container_labels(
            &container("abc"),
            "/docker/abc",
            &patterns(&["com.docker.compose.*"]),
        );
        assert_eq!(only_compose.len(), 5);
        assert_eq!(
            only_compose[3].0,
            "container_label_com_docker_compose_project"
        );
    }

    #[test]
    fn network_modes_that_share_a_namespace_have_none_of_their_own() {
        assert!(network_of("bridge"));
        assert!(network_of("my-network"));
        assert!(network_of("default"));
        assert!(!network_of("host"));
        assert!(!network_of("none"));
        assert!(!network_of("container:4f1e"));
    }

    #[test]
    fn the_overlay_upper_dir_is_found_in_the_container_mountinfo() {
        let procfs = tempfile::tempdir().unwrap();
        fs::create_dir_all(procfs.path().join("42")).unwrap();
        fs::write(
            procfs.path().join("42/mountinfo"),
            "812 700 0:51 / / rw,relatime - overlay overlay rw,lowerdir=/l1:/l2,upperdir=/var/lib/docker/overlay2/f00/diff,workdir=/w\n\
             813 812 0:52 / /proc rw - proc proc rw\n",
        )
        .unwrap();
        assert_eq!(
            upper_dir_of(procfs.path(), 42),
            Some(PathBuf::from("/var/lib/docker/overlay2/f00/diff"))
        );
        assert_eq!(upper_dir_of(procfs.path(), 43), None);
    }

    #[test]
    fn containers_are_resolved_once_per_description_and_forgotten_when_gone() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("memory/docker/abc")).unwrap();
        let resolver = Resolver::new(TargetConfig {
            hierarchy: Arc::new(Hierarchy::discover(root.path(), None)),
            procfs: root.path().join("proc"),
            label_allowlist: patterns(&["*"]),
            raw_globs: vec!["/docker/*".to_owned()],
            root: true,
        });
        let mut running = container("abc");
        running.network_mode = "host".to_owned();
        let tracked = Tracked {
            container: Arc::new(running),
            earlier_oom_kills: 2,
        };
        let snapshot = Snapshot {
            containers: vec![tracked.clone()],
            ..Snapshot::default()
        };
        let targets = resolver.targets(&snapshot);
        assert_eq!(
            targets.len(),
            2,
            "the container (not again as raw) and the root"
        );
        assert_eq!(targets[0].cgroup.as_deref(), Some("/docker/abc"));
        assert_eq!(targets[0].source(), "docker");
        assert_eq!(targets[0].earlier_oom_kills, 2);
        assert_eq!(targets[0].network, Network::NotItsOwn);
        assert!(targets[1].is_root());
        assert_eq!(targets[1].network, Network::Own { pid: 1 });
        // The same description resolves to the very same label set.
        let again = resolver.targets(&snapshot);
        assert!(Arc::ptr_eq(&targets[0].labels, &again[0].labels));
        // Gone from the inventory: a raw cgroup again, and forgotten.
        let targets = resolver.targets(&Snapshot::default());
        assert_eq!(targets[0].source(), "raw");
        assert!(resolver.resolved.lock().unwrap().is_empty());
    }

    #[test]
    fn raw_cgroups_keep_their_label_sets_while_they_match() {
        let root = tempfile::tempdir().unwrap();
        for cgroup in ["b", "d"] {
            fs::create_dir_all(root.path().join("memory/docker").join(cgroup)).unwrap();
        }
        let resolver = Resolver::new(TargetConfig {
            hierarchy: Arc::new(Hierarchy::discover(root.path(), None)),
            procfs: root.path().join("proc"),
            label_allowlist: Vec::new(),
            raw_globs: vec!["/docker/*".to_owned()],
            root: false,
        });
        let first = resolver.targets(&Snapshot::default());
        // One before, one between and one after the others; one goes.
        for cgroup in ["a", "c", "e"] {
            fs::create_dir_all(root.path().join("memory/docker").join(cgroup)).unwrap();
        }
        fs::remove_dir(root.path().join("memory/docker/b")).unwrap();
        let second = resolver.targets(&Snapshot::default());
        let paths: Vec<_> = second.iter().filter_map(|t| t.cgroup.as_deref()).collect();
        assert_eq!(paths, ["/docker/a", "/docker/c", "/docker/d", "/docker/e"]);
        assert!(
            Arc::ptr_eq(&first[1].labels, &second[2].labels),
            "/docker/d kept"
        );
        for target in &second {
            assert_eq!(target.labels[0].1, target.cgroup.clone().unwrap());
        }
        let kept: Vec<_> = resolver
            .raw_labels
            .lock()
            .unwrap()
            .iter()
            .map(|(path, _)| path.clone())
            .collect();
        assert_eq!(kept, paths, "/docker/b forgotten");
    }

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
        assert_eq!(
            raw_cgroups(&hierarchy, &["/system.slice/cron.service".to_owned()]),
            ["/system.slice/cron.service"]
        );
        assert_eq!(
            raw_cgroups(&hierarchy, &["/*/c*".to_owned(), "/nonesuch/*".to_owned()]),
            ["/system.slice/cron.service"]
        );
        assert!(raw_cgroups(&hierarchy, &["/system.slice/nonesuch".to_owned()]).is_empty());
        assert!(validate_raw_glob("/docker/*").is_ok());
        assert!(validate_raw_glob("docker/*").is_err());
        assert!(validate_raw_glob("/[").is_err());
    }
}
