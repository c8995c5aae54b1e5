//! The kernel's cgroup files: where they are, how to read them, and what they say about
//! one cgroup's usage and limits.

pub mod cpu;
pub mod hierarchy;
pub mod io;
pub mod members;
pub mod memory;
pub mod missing;
pub mod mountinfo;
pub mod parse;
pub mod path;
pub mod pids;
pub mod pressure;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::file::Absent;

pub use crate::file::FileError;
pub use hierarchy::{Controller, Hierarchy, Mode, MountedTree};
pub use parse::{DeviceNumber, Limit, ParseError};

/// One cgroup (a container's, or any other) in a hierarchy. Readers take this and answer
/// with typed values; each value is `None` when this kernel or layout has no file for it.
#[derive(Debug)]
pub struct Cgroup<'a> {
    pub hierarchy: &'a Hierarchy,
    /// The cgroup path, e.g. `/docker/<id>` or `/system.slice/docker-<id>.scope`.
    pub path: &'a str,
    /// Set when a read found the cgroup's directory gone or the cgroup being removed.
    gone: AtomicBool,
    /// The cgroup's directory in each tree (by index), opened at its first file.
    dirs: [OnceLock<Option<OwnedFd>>; KEPT_DIRECTORIES],
    /// The files known to be missing for cgroups under this one's parent, taken at its
    /// first file.
    missing: OnceLock<missing::KnownMissing>,
}

/// Trees whose directory a cgroup keeps open while it is read (a v1 host mounts about a
/// dozen).
const KEPT_DIRECTORIES: usize = 16;

impl<'a> Cgroup<'a> {
    pub fn new(hierarchy: &'a Hierarchy, path: &'a str) -> Self {
        Cgroup {
            hierarchy,
            path,
            gone: AtomicBool::new(false),
            dirs: std::array::from_fn(|_| OnceLock::new()),
            missing: OnceLock::new(),
        }
    }

    pub fn is_unified(&self) -> bool {
        self.hierarchy.mode == Mode::Unified
    }

    /// The path of `controller`'s file `name` for this cgroup, if that controller is here.
    pub fn file(&self, controller: Controller, name: &str) -> Option<PathBuf> {
        Some(self.hierarchy.dir(controller, self.path)?.join(name))
    }

    /// Reads and parses one controller file; `Ok(None)` when there is no such file.
    pub fn read<T>(
        &self,
        controller: Controller,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<Option<T>, FileError> {
        match self.hierarchy.tree(controller) {
            Some((index, tree)) => self.read_in(index, tree, name, parse),
            None => Ok(None),
        }
    }

    /// Reads a file of the cgroup2 tree (v2, or hybrid's `unified` mount).
    pub fn read_unified<T>(
        &self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<Option<T>, FileError> {
        match self.hierarchy.unified_tree() {
            Some((index, tree)) => self.read_in(index, tree, name, parse),
            None => Ok(None),
        }
    }

    /// Reads the first of `names` that exists (newer kernels renamed or added files).
    pub fn read_first<T>(
        &self,
        controller: Controller,
        names: &[&'static str],
        parse: impl Fn(&str) -> Result<T, ParseError>,
    ) -> Result<Option<T>, FileError> {
        for name in names {
            if let Some(value) = self.read(controller, name, &parse)? {
                return Ok(Some(value));
            }
        }
        Ok(None)
    }

    /// A file this layout lacks is tried once: its absence is learnt when the cgroup's
    /// directory is there, and the cgroup is marked gone when it is not. Files are opened
    /// in the cgroup's directory, opened once per tree, so the kernel walks each path once
    /// per target rather than once per file.
    fn read_in<T>(
        &self,
        tree_index: usize,
        tree: &MountedTree,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<Option<T>, FileError> {
        let known_missing = self
            .missing
            .get_or_init(|| self.hierarchy.missing.under(missing::parent_of(self.path)));
        if known_missing.covers(tree_index, name) {
            return Ok(None);
        }
        let file_path = || {
            let mut path = PathBuf::new();
            tree.file_path_into(self.path, name, &mut path);
            path
        };
        let Some(dir) = self.dirs.get(tree_index) else {
            // More trees than directories kept: open by the whole path.
            return self.found(tree_index, name, &file_path, || {
                crate::file::read_with(&file_path(), parse)
            });
        };
        let dir = dir.get_or_init(|| {
            let mut path = PathBuf::new();
            if !tree.file_path_into(self.path, "", &mut path) {
                return None;
            }
            crate::file::open_dir(&path).ok()
        });
        match dir {
            Some(dir) => self.found(tree_index, name, &file_path, || {
                crate::file::read_in_dir(dir, name, &file_path, parse)
            }),
            // The cgroup has no directory in this tree: as a file that is not there.
            None => self.found(tree_index, name, &file_path, || Ok(Err(Absent::NotFound))),
        }
    }

    /// The value read, or what its absence says: a file this layout lacks, a parent not
    /// in this tree, or a cgroup going away.
    fn found<T>(
        &self,
        tree_index: usize,
        name: &'static str,
        path: &dyn Fn() -> PathBuf,
        read: impl FnOnce() -> Result<Result<T, Absent>, FileError>,
    ) -> Result<Option<T>, FileError> {
        match read()? {
            Ok(value) => Ok(Some(value)),
            Err(Absent::Removed) => {
                self.gone.store(true, Ordering::Relaxed);
                Ok(None)
            }
            Err(Absent::NotFound) => {
                let parent = missing::parent_of(self.path);
                let path = path();
                let dir = path.parent();
                if dir.is_some_and(Path::is_dir) {
                    self.hierarchy.missing.learn(tree_index, parent, name);
                } else if self.path != "/" && !dir.and_then(Path::parent).is_some_and(Path::is_dir)
                {
                    // Not even the parent is in this tree: neither is any sibling.
                    self.hierarchy
                        .missing
                        .learn(tree_index, parent, missing::WHOLE_PARENT);
                } else {
                    self.gone.store(true, Ordering::Relaxed);
                }
                Ok(None)
            }
        }
    }

    /// Whether a read found the cgroup going away (then `exists` says whether it went).
    pub fn maybe_gone(&self) -> bool {
        self.gone.load(Ordering::Relaxed)
    }

    /// Whether the cgroup still exists (it disappears when its container is removed).
    pub fn exists(&self) -> bool {
        self.hierarchy.exists(self.path)
    }
}
