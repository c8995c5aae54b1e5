//! Which cgroup hierarchy this host has, and where each controller's files are.
//!
//! Three layouts exist:
//! - **legacy** (v1): one mount per controller, or per group of controllers
//!   (`/sys/fs/cgroup/memory`, `/sys/fs/cgroup/cpu,cpuacct`), each with its own tree;
//! - **hybrid**: legacy, plus a cgroup2 mount (usually `/sys/fs/cgroup/unified`) that holds
//!   no controllers but still has `cpu.stat` and the pressure files for every cgroup;
//! - **unified** (v2): one tree at the root, every controller's files in each cgroup's
//!   directory.
//!
//! Controllers are found from mountinfo (so that the exporter can run in a container with
//! the host's cgroupfs mounted anywhere), and, where mountinfo shows no cgroup mount under
//! the root (a fixture tree), from the directory names under the root.

use std::path::{Path, PathBuf};

use super::missing::MissingFiles;
use super::mountinfo;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Legacy,
    Hybrid,
    Unified,
}

/// The v1 controllers the exporter reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Controller {
    Cpu,
    Cpuacct,
    Cpuset,
    Memory,
    Blkio,
    Pids,
}

impl Controller {
    pub const ALL: [Controller; 6] = [
        Controller::Memory,
        Controller::Cpu,
        Controller::Cpuacct,
        Controller::Cpuset,
        Controller::Blkio,
        Controller::Pids,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Controller::Cpu => "cpu",
            Controller::Cpuacct => "cpuacct",
            Controller::Cpuset => "cpuset",
            Controller::Memory => "memory",
            Controller::Blkio => "blkio",
            Controller::Pids => "pids",
        }
    }

    fn from_name(name: &str) -> Option<Controller> {
        Controller::ALL
            .into_iter()
            .find(|controller| controller.name() == name)
    }
}

/// A mounted hierarchy: the directory it is mounted on and the cgroup path that directory
/// stands for (`/` unless only part of the hierarchy is visible here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountedTree {
    pub dir: PathBuf,
    pub root: String,
}

impl MountedTree {
    /// The directory of cgroup `path` (e.g. `/docker/<id>`), or `None` when that cgroup lies
    /// outside the part of the hierarchy mounted here.
    pub fn dir_of(&self, path: &str) -> Option<PathBuf> {
        let root = self.root.trim_end_matches('/');
        let relative = path.strip_prefix(root)?;
        if !(relative.is_empty() || relative.starts_with('/')) {
            return None;
        }
        let relative = relative.trim_start_matches('/');
        Some(if relative.is_empty() {
            self.dir.clone()
        } else {
            self.dir.join(relative)
        })
    }

    /// Writes the path of file `name` of cgroup `path` into `out`, reusing its allocation;
    /// `false` when that cgroup lies outside this tree.
    pub fn file_path_into(&self, path: &str, name: &str, out: &mut PathBuf) -> bool {
        let root = self.root.trim_end_matches('/');
        let Some(relative) = path.strip_prefix(root) else {
            return false;
        };
        if !(relative.is_empty() || relative.starts_with('/')) {
            return false;
        }
        out.as_mut_os_string().clear();
        out.push(&self.dir);
        let relative = relative.trim_start_matches('/');
        if !relative.is_empty() {
            out.push(relative);
        }
        out.push(name);
        true
    }

    /// The inverse of `dir_of`: the cgroup path of a directory inside this tree.
    pub fn path_of(&self, dir: &Path) -> Option<String> {
        let relative = dir.strip_prefix(&self.dir).ok()?;
        let root = self.root.trim_end_matches('/');
        let relative = relative.to_str()?;
        Some(if relative.is_empty() && root.is_empty() {
            "/".to_owned()
        } else if relative.is_empty() {
            root.to_owned()
        } else {
            format!("{root}/{relative}")
        })
    }
}

#[derive(Debug, Clone)]
pub struct Hierarchy {
    pub mode: Mode,
    /// Files learnt to be absent, so that scrapes do not try them again.
    pub missing: MissingFiles,
    /// v1 controllers and their trees (empty in unified mode).
    legacy: Vec<(Controller, MountedTree)>,
    /// The cgroup2 tree: the whole hierarchy in unified mode, the controller-less
    /// `unified` mount in hybrid mode.
    unified: Option<MountedTree>,
}

impl Hierarchy {
    /// Finds the layout under `root` (`--path.cgroupfs`). `mountinfo` is the text of
    /// `<procfs>/self/mountinfo`, if it could be read.
    pub fn discover(root: &Path, mountinfo: Option<&str>) -> Hierarchy {
        if root.join("cgroup.controllers").is_file() {
            let tree_root = mountinfo
                .and_then(|text| mount_root_of(text, root))
                .unwrap_or_else(|| "/".to_owned());
            return Hierarchy {
                mode: Mode::Unified,
                missing: MissingFiles::default(),
                legacy: Vec::new(),
                unified: Some(MountedTree {
                    dir: root.to_owned(),
                    root: tree_root,
                }),
            };
        }
        let from_mounts = mountinfo
            .map(|text| from_mountinfo(text, root))
            .filter(|(legacy, _)| !legacy.is_empty());
        let (legacy, unified) = from_mounts.unwrap_or_else(|| from_directories(root));
        Hierarchy {
            missing: MissingFiles::default(),
            mode: if unified.is_some() {
                Mode::Hybrid
            } else {
                Mode::Legacy
            },
            legacy,
            unified,
        }
    }

    /// Whether no cgroup tree at all was found (the root is not a cgroup filesystem).
    pub fn is_empty(&self) -> bool {
        self.legacy.is_empty() && self.unified.is_none()
    }

    /// The directory holding `controller`'s files for cgroup `path`.
    pub fn dir(&self, controller: Controller, path: &str) -> Option<PathBuf> {
        match self.mode {
            Mode::Unified => self.unified.as_ref()?.dir_of(path),
            Mode::Legacy | Mode::Hybrid => self
                .legacy
                .iter()
                .find(|(c, _)| *c == controller)
                .and_then(|(_, tree)| tree.dir_of(path)),
        }
    }

    /// The tree holding `controller`'s files, and its index (the key of learnt absences).
    pub fn tree(&self, controller: Controller) -> Option<(usize, &MountedTree)> {
        match self.mode {
            Mode::Unified => self.unified_tree(),
            Mode::Legacy | Mode::Hybrid => self
                .legacy
                .iter()
                .position(|(c, _)| *c == controller)
                .map(|index| (index, &self.legacy[index].1)),
        }
    }

    /// The cgroup2 tree (hybrid's `unified` mount, or the v2 tree), and its index.
    pub fn unified_tree(&self) -> Option<(usize, &MountedTree)> {
        self.unified.as_ref().map(|tree| (self.legacy.len(), tree))
    }

    /// Every tree to look in when asking "does this cgroup exist?" or expanding a glob.
    pub fn trees(&self) -> Vec<&MountedTree> {
        let mut trees: Vec<&MountedTree> = Vec::new();
        for (_, tree) in &self.legacy {
            if !trees.iter().any(|seen| seen.dir == tree.dir) {
                trees.push(tree);
            }
        }
        if self.mode == Mode::Unified {
            trees.extend(self.unified.as_ref());
        }
        trees
    }

    /// Whether cgroup `path` exists in any tree (it vanishes when its container is removed).
    pub fn exists(&self, path: &str) -> bool {
        self.trees()
            .iter()
            .filter_map(|tree| tree.dir_of(path))
            .any(|dir| dir.is_dir())
    }

    /// One line for the log: the mode and where each controller was found.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("mode={:?}", self.mode).to_lowercase()];
        for (controller, tree) in &self.legacy {
            parts.push(format!("{}={}", controller.name(), tree.dir.display()));
        }
        if let Some(tree) = &self.unified {
            parts.push(format!("unified={}", tree.dir.display()));
        }
        parts.join(" ")
    }
}

/// Compares paths as the kernel wrote them in mountinfo, so a relative `--path.cgroupfs`
/// or one through a symlink still matches.
fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

/// A mount's root as a cgroup path. Inside a private cgroup namespace (Docker's default on
/// v2), a bind mount of the host's hierarchy shows a root above the namespace's own, such
/// as `/../..`; that is the hierarchy's real root, so paths under it are used as they are.
fn namespace_root(root: &str) -> String {
    if root == "/.." || root.starts_with("/../") {
        "/".to_owned()
    } else {
        root.to_owned()
    }
}

fn mount_root_of(mountinfo_text: &str, dir: &Path) -> Option<String> {
    let dir = absolute(dir);
    mountinfo::parse(mountinfo_text)
        .ok()?
        .into_iter()
        .rev()
        .find(|mount| Path::new(&mount.mount_point) == dir)
        .map(|mount| namespace_root(&mount.root))
}

type Trees = (Vec<(Controller, MountedTree)>, Option<MountedTree>);

fn from_mountinfo(mountinfo_text: &str, root: &Path) -> Trees {
    let root = absolute(root);
    let mut legacy = Vec::new();
    let mut unified = None;
    let mounts = match mountinfo::parse(mountinfo_text) {
        Ok(mounts) => mounts,
        Err(error) => {
            tracing::warn!(%error, "cannot parse mountinfo; finding controllers by directory name");
            return (legacy, unified);
        }
    };
    // Later lines are mounted over earlier ones at the same point.
    for mount in mounts.into_iter().rev() {
        let mount_point = PathBuf::from(&mount.mount_point);
        let Ok(relative) = mount_point.strip_prefix(&root) else {
            continue;
        };
        let tree = MountedTree {
            dir: root.join(relative),
            root: namespace_root(&mount.root),
        };
        match mount.fs_type.as_str() {
            "cgroup" => {
                for controller in mount
                    .super_options
                    .iter()
                    .filter_map(|option| Controller::from_name(option))
                {
                    if !legacy.iter().any(|(c, _)| *c == controller) {
                        legacy.push((controller, tree.clone()));
                    }
                }
            }
            "cgroup2" if unified.is_none() => unified = Some(tree),
            _ => {}
        }
    }
    sort_controllers(&mut legacy);
    (legacy, unified)
}

fn from_directories(root: &Path) -> Trees {
    let mut legacy = Vec::new();
    let mut unified = None;
    let Ok(entries) = std::fs::read_dir(root) else {
        return (legacy, unified);
    };
    let mut dirs: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_dir())
        .filter_map(|entry| Some((entry.file_name().into_string().ok()?, entry.path())))
        .collect();
    // Prefer real directories named after several controllers (`cpu,cpuacct`) over the
    // symlinks that point at them, so both controllers share one tree.
    dirs.sort_by_key(|(name, path)| (path.is_symlink(), name.clone()));
    for (name, dir) in dirs {
        if dir.join("cgroup.controllers").is_file() {
            unified.get_or_insert(MountedTree {
                dir: dir.clone(),
                root: "/".to_owned(),
            });
            continue;
        }
        for controller in name.split(',').filter_map(Controller::from_name) {
            if !legacy.iter().any(|(c, _)| *c == controller) {
                legacy.push((
                    controller,
                    MountedTree {
                        dir: dir.clone(),
                        root: "/".to_owned(),
                    },
                ));
            }
        }
    }
    sort_controllers(&mut legacy);
    (legacy, unified)
}

fn sort_controllers(legacy: &mut [(Controller, MountedTree)]) {
    legacy.sort_by_key(|(controller, _)| {
        Controller::ALL
            .iter()
            .position(|c| c == controller)
            .unwrap_or(usize::MAX)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn mounted_tree_maps_paths_both_ways() {
        let whole = MountedTree {
            dir: PathBuf::from("/sys/fs/cgroup/memory"),
            root: "/".to_owned(),
        };
        assert_eq!(
            whole.dir_of("/docker/abc"),
            Some(PathBuf::from("/sys/fs/cgroup/memory/docker/abc"))
        );
        assert_eq!(
            whole.path_of(Path::new("/sys/fs/cgroup/memory/docker/abc")),
            Some("/docker/abc".to_owned())
        );
        let part = MountedTree {
            dir: PathBuf::from("/host/cgroup"),
            root: "/kubepods".to_owned(),
        };
        assert_eq!(
            part.dir_of("/kubepods/pod1"),
            Some(PathBuf::from("/host/cgroup/pod1"))
        );
        assert_eq!(part.dir_of("/kubepodsx/pod1"), None);
        assert_eq!(part.dir_of("/docker/abc"), None);
        assert_eq!(
            part.path_of(Path::new("/host/cgroup/pod1")),
            Some("/kubepods/pod1".to_owned())
        );
    }

    #[test]
    fn a_host_hierarchy_seen_from_a_cgroup_namespace_is_used_whole() {
        let root = tempfile::tempdir().unwrap();
        fs::write(
            root.path().join("cgroup.controllers"),
            "cpu memory io pids\n",
        )
        .unwrap();
        let base = absolute(root.path());
        let mountinfo = format!(
            "1300 1290 0:30 /../.. {} ro,nosuid - cgroup2 cgroup rw\n",
            base.display()
        );
        let hierarchy = Hierarchy::discover(root.path(), Some(&mountinfo));
        assert_eq!(
            hierarchy.dir(Controller::Memory, "/system.slice/docker-x.scope"),
            Some(root.path().join("system.slice/docker-x.scope"))
        );
        assert_eq!(namespace_root("/docker/abc"), "/docker/abc");
    }

    #[test]
    fn unified_root_is_detected_by_cgroup_controllers() {
        let root = tempfile::tempdir().unwrap();
        fs::write(
            root.path().join("cgroup.controllers"),
            "cpu memory io pids\n",
        )
        .unwrap();
        let hierarchy = Hierarchy::discover(root.path(), None);
        assert_eq!(hierarchy.mode, Mode::Unified);
        assert_eq!(
            hierarchy.dir(Controller::Memory, "/docker/x"),
            Some(root.path().join("docker/x"))
        );
    }

    #[test]
    fn legacy_and_hybrid_from_directory_names() {
        let root = tempfile::tempdir().unwrap();
        for dir in ["cpu,cpuacct", "memory", "blkio", "pids", "cpuset"] {
            fs::create_dir(root.path().join(dir)).unwrap();
        }
        std::os::unix::fs::symlink("cpu,cpuacct", root.path().join("cpu")).unwrap();
        let legacy = Hierarchy::discover(root.path(), None);
        assert_eq!(legacy.mode, Mode::Legacy);
        assert_eq!(
            legacy.dir(Controller::Cpuacct, "/docker/x"),
            Some(root.path().join("cpu,cpuacct/docker/x"))
        );
        assert_eq!(
            legacy.dir(Controller::Cpu, "/docker/x"),
            Some(root.path().join("cpu,cpuacct/docker/x"))
        );
        assert_eq!(legacy.trees().len(), 5);

        fs::create_dir(root.path().join("unified")).unwrap();
        fs::write(root.path().join("unified/cgroup.controllers"), "").unwrap();
        let hybrid = Hierarchy::discover(root.path(), None);
        assert_eq!(hybrid.mode, Mode::Hybrid);
        assert_eq!(
            hybrid
                .unified_tree()
                .and_then(|(_, tree)| tree.dir_of("/docker/x")),
            Some(root.path().join("unified/docker/x"))
        );
    }

    #[test]
    fn mountinfo_places_controllers_anywhere_under_the_root() {
        let root = tempfile::tempdir().unwrap();
        let base = absolute(root.path());
        let mountinfo = format!(
            "32 31 0:29 / {base}/cpu rw - cgroup cgroup rw,cpu\n\
             33 31 0:30 / {base}/acct rw - cgroup cgroup rw,cpuacct\n\
             35 31 0:32 / {base}/mem rw - cgroup cgroup rw,memory\n\
             41 31 0:38 / {base}/unified rw - cgroup2 cgroup2 rw\n\
             42 31 0:39 / /elsewhere/memory rw - cgroup cgroup rw,memory\n",
            base = base.display()
        );
        let hierarchy = Hierarchy::discover(root.path(), Some(&mountinfo));
        assert_eq!(hierarchy.mode, Mode::Hybrid);
        assert_eq!(
            hierarchy.dir(Controller::Cpuacct, "/docker/x"),
            Some(base.join("acct/docker/x"))
        );
        assert_eq!(
            hierarchy.dir(Controller::Memory, "/docker/x"),
            Some(base.join("mem/docker/x"))
        );
        assert_eq!(hierarchy.dir(Controller::Pids, "/docker/x"), None);
        assert!(hierarchy.describe().starts_with("mode=hybrid"));
    }
}
