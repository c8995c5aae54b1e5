//! Pressure stall information of a cgroup (`cpu.pressure`, `memory.pressure`,
//! `io.pressure`): cgroup2 files, present on v2 and in hybrid's `unified` tree.

use std::time::Duration;

use super::parse;
use super::{Cgroup, FileError};

/// Total stall time of one resource, as the kernel counts it (µs).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Stall {
    /// Some tasks waited (`some`).
    pub waiting: Option<Duration>,
    /// All non-idle tasks were stalled at once (`full`).
    pub stalled: Option<Duration>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Pressure {
    pub cpu: Option<Stall>,
    pub memory: Option<Stall>,
    pub io: Option<Stall>,
}

pub fn read(cgroup: &Cgroup) -> Result<Pressure, FileError> {
    let stall = |name: &'static str| {
        cgroup.read_unified(name, |text| {
            let (some, full) = parse::pressure_totals(text)?;
            Ok(Stall {
                waiting: some.map(Duration::from_micros),
                stalled: full.map(Duration::from_micros),
            })
        })
    };
    Ok(Pressure {
        cpu: stall("cpu.pressure")?,
        memory: stall("memory.pressure")?,
        io: stall("io.pressure")?,
    })
}
