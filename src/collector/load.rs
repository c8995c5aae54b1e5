//! `container_cpu_load_average_10s`: how many of the cgroup's threads are running.

use super::{Collector, Read, TargetContext};
use crate::cgroup::FileError;
use crate::cgroup::members::{self, Members};
use crate::host::procs;
use crate::metrics::{Desc, TargetSamples, gauge};

pub static COLLECTOR: Collector = Collector {
    name: "load",
    help: "Threads running or runnable in each cgroup, sampled at the scrape (one /proc/<tid>/stat per thread)",
    enabled_by_default: true,
    families: &[&LOAD],
    read: Read::PerTarget(collect),
};

// cAdvisor's name and unit (thousandths of a task). cAdvisor averages samples taken every
// second over 10 s; the exporter keeps nothing between scrapes, so this is the sample at
// the scrape: `avg_over_time` gives the average.
static LOAD: Desc = gauge(
    "container_cpu_load_average_10s",
    "Threads in the cgroup running or waiting to run at the scrape, in thousandths.",
);

fn collect(context: &TargetContext, out: &mut TargetSamples) -> Result<(), FileError> {
    // The root's threads are every thread on the host: the host's own load average says it.
    if context.target.is_root() {
        return Ok(());
    }
    let Some(threads) = members::read(&context.cgroup, Members::Threads)? else {
        return Ok(());
    };
    let mut running = 0u64;
    for thread in threads {
        // A thread that exited since the list was read is not running.
        if procs::read_stat(context.scrape.procfs, &thread.to_string())?
            .is_some_and(|stat| stat.state == 'R')
        {
            running += 1;
        }
    }
    out.add(&LOAD, running * 1000);
    Ok(())
}
