//! The exporter's own families: `stevedore_build_info`, `stevedore_scrape_*` (how the scrape
//! went, per collector and per target source) and the standard `process_*` of its process.

use super::{Collector, Read, ScrapeContext};
use crate::cgroup::FileError;
use crate::host::procs;
use crate::metrics::{Desc, Exposition, counter, gauge};

pub static COLLECTOR: Collector = Collector {
    name: "exporter",
    help: "The exporter itself: build, scrape outcome per collector, targets, and its process (/proc/self)",
    enabled_by_default: true,
    families: &[
        &BUILD_INFO,
        &COLLECTOR_DURATION,
        &COLLECTOR_SUCCESS,
        &TARGETS,
        &CONTAINERS_WITHOUT_CGROUP,
        &CPU,
        &RESIDENT,
        &VIRTUAL,
        &OPEN_FDS,
        &MAX_FDS,
        &START_TIME,
    ],
    read: Read::PerScrape(collect),
};

static BUILD_INFO: Desc = gauge(
    "stevedore_build_info",
    "A metric with a constant '1' value labeled by version.",
);
/// Written by the scrape itself, for every collector that ran.
pub static COLLECTOR_DURATION: Desc = gauge(
    "stevedore_scrape_collector_duration_seconds",
    "Time a collector spent on this scrape, over all targets.",
);
pub static COLLECTOR_SUCCESS: Desc = gauge(
    "stevedore_scrape_collector_success",
    "Whether a collector read everything without error (1) or not (0).",
);
pub static TARGETS: Desc = gauge(
    "stevedore_scrape_targets",
    "Cgroups read on this scrape, by source (docker, raw or root).",
);
static CONTAINERS_WITHOUT_CGROUP: Desc = gauge(
    "stevedore_scrape_containers_without_cgroup",
    "Running containers whose cgroup was not found under --path.cgroupfs; their usage is missing.",
);
static CPU: Desc = counter(
    "process_cpu_seconds_total",
    "Total user and system CPU time spent in seconds.",
);
static RESIDENT: Desc = gauge(
    "process_resident_memory_bytes",
    "Resident memory size in bytes.",
);
static VIRTUAL: Desc = gauge(
    "process_virtual_memory_bytes",
    "Virtual memory size in bytes.",
);
static OPEN_FDS: Desc = gauge("process_open_fds", "Number of open file descriptors.");
static MAX_FDS: Desc = gauge(
    "process_max_fds",
    "Maximum number of open file descriptors.",
);
static START_TIME: Desc = gauge(
    "process_start_time_seconds",
    "Start time of the process since unix epoch in seconds.",
);

fn collect(scrape: &ScrapeContext, out: &mut Exposition) -> Result<(), FileError> {
    out.push(
        &BUILD_INFO,
        None,
        vec![("version", env!("CARGO_PKG_VERSION").into())],
        1u64,
    );
    let unlocated = scrape
        .targets
        .iter()
        .filter(|target| target.is_unlocated())
        .count();
    out.push(
        &CONTAINERS_WITHOUT_CGROUP,
        None,
        Vec::new(),
        unlocated as u64,
    );
    // The exporter's own process, wherever procfs is mounted for the containers'.
    let procfs = std::path::Path::new("/proc");
    let ticks_per_second = procs::ticks_per_second();
    if let Some(stat) = procs::read_stat(procfs, "self")? {
        let cpu = (stat.utime_ticks + stat.stime_ticks) as f64 / ticks_per_second;
        out.push(&CPU, None, Vec::new(), cpu);
        out.push(
            &RESIDENT,
            None,
            Vec::new(),
            stat.rss_pages * procs::page_size(),
        );
        out.push(&VIRTUAL, None, Vec::new(), stat.vsize_bytes);
        let boot_time = crate::file::read_text(&procfs.join("stat"))?
            .and_then(|text| procs::parse_boot_time(&text));
        if let Some(boot_time) = boot_time {
            let start = boot_time as f64 + stat.start_ticks as f64 / ticks_per_second;
            out.push(&START_TIME, None, Vec::new(), start);
        }
    }
    if let Some((descriptors, _)) = procs::open_files(procfs, "self", false)? {
        out.push(&OPEN_FDS, None, Vec::new(), descriptors);
    }
    if let Some(max) = procs::read_max_open_files(procfs, "self")? {
        out.push(&MAX_FDS, None, Vec::new(), max);
    }
    Ok(())
}
