//! Pressure stall information of a cgroup (`cpu.pressure`, `memory.pressure`,
//! `io.pressure`): cgroup2 files, present on v2 and in hybrid's `unified` tree.

use super::parse::{self, micros_to_seconds};
use super::{Cgroup, FileError};

/// Total stall time of one resource, in seconds.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Stall {
    /// Some tasks waited (`some`).
    pub waiting_seconds: Option<f64>,
    /// All non-idle tasks were stalled at once (`full`).
    pub stalled_seconds: Option<f64>,
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
                waiting_seconds: some.map(micros_to_seconds),
                stalled_seconds: full.map(micros_to_seconds),
            })
        })
    };
    Ok(Pressure {
        cpu: stall("cpu.pressure")?,
        memory: stall("memory.pressure")?,
        io: stall("io.pressure")?,
    })
}
