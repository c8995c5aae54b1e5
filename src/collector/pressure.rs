//! `container_pressure_{cpu,memory,io}_{waiting,stalled}_seconds_total` (PSI).

use super::{Collector, Read, TargetContext};
use crate::cgroup::{FileError, pressure};
use crate::metrics::{Desc, TargetSamples, counter};

pub static COLLECTOR: Collector = Collector {
    name: "pressure",
    help: "Pressure stall time for CPU, memory and I/O (cgroup2 *.pressure files)",
    enabled_by_default: true,
    families: &[
        &CPU_WAITING,
        &CPU_STALLED,
        &MEMORY_WAITING,
        &MEMORY_STALLED,
        &IO_WAITING,
        &IO_STALLED,
    ],
    read: Read::PerTarget(collect),
};

static CPU_WAITING: Desc = counter(
    "container_pressure_cpu_waiting_seconds_total",
    "Total time some tasks waited for CPU, in seconds.",
);
static CPU_STALLED: Desc = counter(
    "container_pressure_cpu_stalled_seconds_total",
    "Total time all non-idle tasks were stalled on CPU, in seconds.",
);
static MEMORY_WAITING: Desc = counter(
    "container_pressure_memory_waiting_seconds_total",
    "Total time some tasks waited for memory, in seconds.",
);
static MEMORY_STALLED: Desc = counter(
    "container_pressure_memory_stalled_seconds_total",
    "Total time all non-idle tasks were stalled on memory, in seconds.",
);
static IO_WAITING: Desc = counter(
    "container_pressure_io_waiting_seconds_total",
    "Total time some tasks waited for I/O, in seconds.",
);
static IO_STALLED: Desc = counter(
    "container_pressure_io_stalled_seconds_total",
    "Total time all non-idle tasks were stalled on I/O, in seconds.",
);

fn collect(context: &TargetContext, out: &mut TargetSamples) -> Result<(), FileError> {
    let pressure = pressure::read(&context.cgroup)?;
    for (stall, waiting, stalled) in [
        (pressure.cpu, &CPU_WAITING, &CPU_STALLED),
        (pressure.memory, &MEMORY_WAITING, &MEMORY_STALLED),
        (pressure.io, &IO_WAITING, &IO_STALLED),
    ] {
        let stall = stall.unwrap_or_default();
        out.add_some(waiting, stall.waiting);
        out.add_some(stalled, stall.stalled);
    }
    Ok(())
}
