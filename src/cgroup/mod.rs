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

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

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
    /// Trees (by index) found without this cgroup's directory: not tried again. A raw
    /// cgroup often lives in some v1 controller trees only.
    absent_from: AtomicU64,
}

thread_local! {
    /// The path of the file being read, rebuilt in place for every file.
    static FILE_PATH: RefCell<PathBuf> = RefCell::new(PathBuf::with_capacity(256));
}

impl<'a> Cgroup<'a> {
    pub fn new(hierarchy: &'a Hierarchy, path: &'a str) -> Self {
        Cgroup {
            hierarchy,
            path,
            gone: AtomicBool::new(false),
            absent_from: AtomicU64::new(0),
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
    /// directory is there, and the cgroup is marked gone when it is not.
    fn read_in<T>(
        &self,
        tree_index: usize,
        tree: &MountedTree,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<Option<T>, FileError> {
        let tree_bit = 1u64 << (tree_index % 64);
        if self.absent_from.load(Ordering::Relaxed) & tree_bit != 0 {
            return Ok(None);
        }
        let parent = missing::parent_of(self.path);
        if self.hierarchy.missing.is_missing(tree_index, parent, name) {
            return Ok(None);
        }
        FILE_PATH.with_borrow_mut(|path| {
            if !tree.file_path_into(self.path, name, path) {
                return Ok(None);
            }
            match crate::file::read_with(path, parse)? {
                Ok(value) => Ok(Some(value)),
                Err(Absent::Removed) => {
                    self.gone.store(true, Ordering::Relaxed);
                    Ok(None)
                }
                Err(Absent::NotFound) => {
                    if path.parent().is_some_and(Path::is_dir) {
                        self.hierarchy.missing.learn(tree_index, parent, name);
                    } else {
                        self.gone.store(true, Ordering::Relaxed);
                        self.absent_from.fetch_or(tree_bit, Ordering::Relaxed);
                    }
                    Ok(None)
                }
            }
        })
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
