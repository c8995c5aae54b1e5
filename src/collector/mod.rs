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

pub static ALL: [&Collector; 5] = [
    &cpu::COLLECTOR,
    &memory::COLLECTOR,
    &blkio::COLLECTOR,
    &pids::COLLECTOR,
    &pressure::COLLECTOR,
];
