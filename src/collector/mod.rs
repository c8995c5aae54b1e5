//! Collectors: each reads one resource's cgroup files for one target and turns them into
//! samples. The list below is the single registration of every collector; it is also what
//! creates the `--collector.<name>` / `--no-collector.<name>` flags.

pub mod blkio;
pub mod cpu;
pub mod memory;
pub mod pids;
pub mod pressure;

use crate::cgroup::{Cgroup, CgroupError};
use crate::devices::DeviceNames;
use crate::metrics::TargetSamples;

/// What a collector may use besides the cgroup itself.
#[derive(Debug)]
pub struct Context<'a> {
    pub devices: &'a DeviceNames,
    /// OOM kills in this container's earlier runs: its cgroup, and the kernel's count with
    /// it, is new at every start.
    pub earlier_oom_kills: u64,
}

pub type CollectFn = fn(&Cgroup, &Context, &mut TargetSamples) -> Result<(), CgroupError>;

#[derive(Debug)]
pub struct Collector {
    pub name: &'static str,
    pub help: &'static str,
    pub enabled_by_default: bool,
    pub collect: CollectFn,
}

/// A collector that can be switched on and off: its flag name, help and default.
#[derive(Debug, Clone, Copy)]
pub struct Switch {
    pub name: &'static str,
    pub help: &'static str,
    pub enabled_by_default: bool,
}

/// The engine-sourced `docker_*` families: not per cgroup, but switched like collectors.
pub const ENGINE: Switch = Switch {
    name: "engine",
    help: "Engine-sourced docker_* families: engine info, container states, events",
    enabled_by_default: true,
};

/// Every switch: the per-cgroup collectors, then the engine's families. This list is what
/// creates the `--collector.<name>` / `--no-collector.<name>` flags.
pub fn switches() -> Vec<Switch> {
    ALL.iter()
        .map(|collector| Switch {
            name: collector.name,
            help: collector.help,
            enabled_by_default: collector.enabled_by_default,
        })
        .chain([ENGINE])
        .collect()
}

pub static ALL: [&Collector; 5] = [
    &cpu::COLLECTOR,
    &memory::COLLECTOR,
    &blkio::COLLECTOR,
    &pids::COLLECTOR,
    &pressure::COLLECTOR,
];
