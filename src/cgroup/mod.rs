//! The kernel's cgroup files: where they are, how to read them, and what they say about
//! one cgroup's usage and limits.

pub mod cpu;
pub mod hierarchy;
pub mod io;
pub mod members;
pub mod memory;
pub mod mountinfo;
pub mod parse;
pub mod path;
pub mod pids;
pub mod pressure;

use std::path::PathBuf;

pub use crate::file::FileError;
pub use hierarchy::{Controller, Hierarchy, Mode};
pub use parse::{DeviceNumber, Limit, ParseError};

/// One cgroup (a container's, or any other) in a hierarchy. Readers take this and answer
/// with typed values; each value is `None` when this kernel or layout has no file for it.
#[derive(Debug, Clone, Copy)]
pub struct Cgroup<'a> {
    pub hierarchy: &'a Hierarchy,
    /// The cgroup path, e.g. `/docker/<id>` or `/system.slice/docker-<id>.scope`.
    pub path: &'a str,
}

impl<'a> Cgroup<'a> {
    pub fn new(hierarchy: &'a Hierarchy, path: &'a str) -> Self {
        Cgroup { hierarchy, path }
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
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<Option<T>, FileError> {
        match self.file(controller, name) {
            Some(path) => crate::file::read_parsed(&path, parse),
            None => Ok(None),
        }
    }

    /// Reads a file of the cgroup2 tree (v2, or hybrid's `unified` mount).
    pub fn read_unified<T>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<Option<T>, FileError> {
        match self.hierarchy.unified_dir(self.path) {
            Some(dir) => crate::file::read_parsed(&dir.join(name), parse),
            None => Ok(None),
        }
    }

    /// Reads the first of `names` that exists (newer kernels renamed or added files).
    pub fn read_first<T>(
        &self,
        controller: Controller,
        names: &[&str],
        parse: impl Fn(&str) -> Result<T, ParseError>,
    ) -> Result<Option<T>, FileError> {
        for name in names {
            if let Some(value) = self.read(controller, name, &parse)? {
                return Ok(Some(value));
            }
        }
        Ok(None)
    }

    /// Whether the cgroup still exists (it disappears when its container is removed).
    pub fn exists(&self) -> bool {
        self.hierarchy.exists(self.path)
    }
}
