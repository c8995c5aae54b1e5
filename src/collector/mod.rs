//! Collectors: each owns a group of metric families and the one place they are read. The
//! list `ALL` below is the single registration of every family the exporter writes: it
//! creates the `--collector.<name>` / `--no-collector.<name>` flags, gives each collector
//! its `stevedore_scrape_collector_*` series, and answers "where does this metric come
//! from" (`owner_of`).
//!
//! A collector reads either once per target (a container, a raw cgroup, the root) or once
//! per scrape (facts about the host, the engine, the policy, the exporter itself).

pub mod blkio;
pub mod cpu;
pub mod disk;
pub mod engine;
pub mod exporter;
pub mod lifecycle;
pub mod load;
pub mod machine;
pub mod memory;
pub mod network;
pub mod pids;
pub mod policy;
pub mod pressure;
pub mod process;

use std::path::Path;

use crate::cgroup::{Cgroup, FileError, Hierarchy};
use crate::devices::DeviceNames;
use crate::disk::DiskUsage;
use crate::docker::Snapshot;
use crate::host::cpuinfo::CpuTopology;
use crate::host::meminfo::Meminfo;
use crate::metrics::{Desc, Exposition, TargetSamples};
use crate::policy::PolicyState;
use crate::target::Target;

/// What every collector may use in one scrape.
pub struct ScrapeContext<'a> {
    pub hierarchy: &'a Hierarchy,
    pub procfs: &'a Path,
    pub snapshot: &'a Snapshot,
    /// Every target of the scrape; sample target index `i` is `targets[i]`'s label set.
    pub targets: &'a [Target],
    pub devices: &'a DeviceNames,
    /// `/proc/meminfo`, read once per scrape (`None` when it could not be read).
    pub meminfo: Option<&'a Meminfo>,
    /// The host's CPUs, read from `/proc/cpuinfo` at the first scrape: the kernel makes
    /// that file slowly (it asks every CPU for its frequency), and the count of CPUs
    /// changes only with hotplug, which restarts no exporter but is rare enough to ignore.
    pub cpus: Option<CpuTopology>,
    pub policy: Option<&'a PolicyState>,
    pub disk: Option<&'a DiskUsage>,
    /// Seconds since the epoch at the start of the scrape.
    pub now_seconds: f64,
}

/// What a per-target collector reads: one target and its cgroup.
pub struct TargetContext<'a> {
    pub target: &'a Target,
    pub cgroup: Cgroup<'a>,
    pub scrape: &'a ScrapeContext<'a>,
}

pub type PerTargetFn = fn(&TargetContext, &mut TargetSamples) -> Result<(), FileError>;
pub type PerScrapeFn = fn(&ScrapeContext, &mut Exposition) -> Result<(), FileError>;

#[derive(Debug, Clone, Copy)]
pub enum Read {
    /// Called for each target that has a cgroup; its samples are dropped with the target
    /// when the cgroup goes away during the scrape.
    PerTarget(PerTargetFn),
    /// Called once per scrape; samples refer to targets by their index in `targets`.
    PerScrape(PerScrapeFn),
}

#[derive(Debug)]
pub struct Collector {
    pub name: &'static str,
    pub help: &'static str,
    pub enabled_by_default: bool,
    /// Every family the collector writes.
    pub families: &'static [&'static Desc],
    pub read: Read,
}

/// Every collector, in the order a scrape runs them.
pub static ALL: [&Collector; 14] = [
    &cpu::COLLECTOR,
    &memory::COLLECTOR,
    &blkio::COLLECTOR,
    &pids::COLLECTOR,
    &pressure::COLLECTOR,
    &network::COLLECTOR,
    &load::COLLECTOR,
    &process::COLLECTOR,
    &lifecycle::COLLECTOR,
    &disk::COLLECTOR,
    &machine::COLLECTOR,
    &engine::COLLECTOR,
    &policy::COLLECTOR,
    &exporter::COLLECTOR,
];

/// The collector that writes the family `name` (`None`: no such family).
pub fn owner_of(name: &str) -> Option<&'static Collector> {
    ALL.iter()
        .copied()
        .find(|collector| collector.families.iter().any(|desc| desc.name == name))
}

pub fn by_name(name: &str) -> Option<&'static Collector> {
    ALL.iter().copied().find(|collector| collector.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_family_has_one_owner_and_one_description() {
        assert!(
            ALL.len() <= 32,
            "scrape::MAX_COLLECTORS holds every collector"
        );
        let mut names = HashSet::new();
        let mut collectors = HashSet::new();
        for collector in ALL {
            assert!(
                collectors.insert(collector.name),
                "{} twice",
                collector.name
            );
            assert!(
                !collector.families.is_empty(),
                "{} writes nothing",
                collector.name
            );
            for desc in collector.families {
                assert!(names.insert(desc.name), "{} declared twice", desc.name);
                // cAdvisor's one gauge named like a counter keeps its name.
                let counter_named =
                    desc.name.ends_with("_total") && desc.name != "container_fs_inodes_total";
                assert_eq!(
                    desc.kind == crate::metrics::Kind::Counter,
                    counter_named,
                    "{}: counters and only counters end in _total",
                    desc.name
                );
            }
        }
        assert_eq!(
            owner_of("container_cpu_usage_seconds_total").unwrap().name,
            "cpu"
        );
        assert!(owner_of("container_nonesuch").is_none());
    }

    /// The README's metric table lists every family, with the collector that owns it.
    #[test]
    fn every_family_has_a_readme_row() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
            .expect("README.md");
        let mut missing = Vec::new();
        for collector in ALL {
            for desc in collector.families {
                let row = format!("| `{}` |", desc.name);
                match readme.lines().find(|line| line.starts_with(&row)) {
                    Some(line) if line.contains(&format!("| {} |", collector.name)) => {}
                    _ => missing.push(format!("{} ({})", desc.name, collector.name)),
                }
            }
        }
        assert!(
            missing.is_empty(),
            "README rows `| `family` | collector | ... |` missing for: {missing:?}"
        );
    }
}
