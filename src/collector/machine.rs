//! `machine_*`: the host's CPUs and memory, which dashboards divide container usage by.

use super::{Collector, Read, ScrapeContext};
use crate::cgroup::FileError;
use crate::file;
use crate::metrics::{Desc, Exposition, Labels, gauge};

pub static COLLECTOR: Collector = Collector {
    name: "machine",
    help: "The host's CPUs and memory (/proc/cpuinfo, /proc/meminfo)",
    enabled_by_default: true,
    families: &[&CPU_CORES, &PHYSICAL_CORES, &SOCKETS, &MEMORY, &SWAP],
    read: Read::PerScrape(collect),
};

static CPU_CORES: Desc = gauge("machine_cpu_cores", "Number of logical CPU cores.");
static PHYSICAL_CORES: Desc = gauge(
    "machine_cpu_physical_cores",
    "Number of physical CPU cores.",
);
static SOCKETS: Desc = gauge("machine_cpu_sockets", "Number of CPU sockets.");
static MEMORY: Desc = gauge(
    "machine_memory_bytes",
    "Amount of memory installed, in bytes.",
);
static SWAP: Desc = gauge("machine_swap_bytes", "Amount of swap space, in bytes.");

fn collect(context: &ScrapeContext, out: &mut Exposition) -> Result<(), FileError> {
    // cAdvisor labels machine facts with the boot they belong to.
    let boot_id = file::read_text(&context.procfs.join("sys/kernel/random/boot_id"))?
        .map(|text| text.trim().to_owned())
        .unwrap_or_default();
    let labels = || -> Labels { vec![("boot_id", boot_id.clone().into())] };
    if let Some(topology) = context.cpus {
        out.push(&CPU_CORES, None, labels(), topology.logical_cpus);
        out.push(&PHYSICAL_CORES, None, labels(), topology.physical_cores);
        out.push(&SOCKETS, None, labels(), topology.sockets);
    }
    if let Some(meminfo) = context.meminfo {
        if let Some(total) = meminfo.mem_total_bytes {
            out.push(&MEMORY, None, labels(), total);
        }
        if let Some(swap) = meminfo.swap_total_bytes {
            out.push(&SWAP, None, labels(), swap);
        }
    }
    Ok(())
}
