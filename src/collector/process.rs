//! `container_processes`, `container_threads`, `container_threads_max`,
//! `container_file_descriptors`, `container_sockets`, `container_ulimits_soft`: what the
//! processes of each cgroup hold. Off by default, as in cAdvisor: it reads a directory per
//! process.

use super::{Collector, Read, TargetContext};
use crate::cgroup::members::{self, Members};
use crate::cgroup::{FileError, pids};
use crate::host::procs;
use crate::metrics::{Desc, TargetSamples, gauge};

pub static COLLECTOR: Collector = Collector {
    name: "process",
    help: "Processes, threads, open files, sockets and the open-file limit of each cgroup (one /proc/<pid>/fd walk per process)",
    enabled_by_default: false,
    families: &[
        &PROCESSES,
        &THREADS,
        &THREADS_MAX,
        &FILE_DESCRIPTORS,
        &SOCKETS,
        &ULIMITS_SOFT,
    ],
    read: Read::PerTarget(collect),
};

static PROCESSES: Desc = gauge("container_processes", "Number of processes in the cgroup.");
static THREADS: Desc = gauge("container_threads", "Number of threads in the cgroup.");
static THREADS_MAX: Desc = gauge(
    "container_threads_max",
    "Maximum number of threads (pids.max; 0: unlimited).",
);
static FILE_DESCRIPTORS: Desc = gauge(
    "container_file_descriptors",
    "Open file descriptors of the cgroup's processes.",
);
static SOCKETS: Desc = gauge(
    "container_sockets",
    "Open sockets of the cgroup's processes.",
);
static ULIMITS_SOFT: Desc = gauge(
    "container_ulimits_soft",
    "Soft resource limit of the container's main process (ulimit max_open_files).",
);

fn collect(context: &TargetContext, out: &mut TargetSamples) -> Result<(), FileError> {
    // The root holds every process on the host; cAdvisor does not count them there either.
    if context.target.is_root() {
        return Ok(());
    }
    let cgroup = &context.cgroup;
    let procfs = context.scrape.procfs;
    let processes = members::read(cgroup, Members::Processes)?;
    let threads = members::read(cgroup, Members::Threads)?;
    out.add_some(&PROCESSES, processes.as_ref().map(|ids| ids.len() as u64));
    out.add_some(&THREADS, threads.map(|ids| ids.len() as u64));
    out.add_some(
        &THREADS_MAX,
        pids::read(cgroup)?.limit.map(|limit| limit.or_zero()),
    );
    let Some(processes) = processes else {
        return Ok(());
    };
    let (mut descriptors, mut sockets) = (0u64, 0u64);
    for pid in &processes {
        // A process that exited since the list was read holds nothing.
        if let Some((open, open_sockets)) = procs::open_files(procfs, &pid.to_string(), true)? {
            descriptors += open;
            sockets += open_sockets;
        }
    }
    out.add(&FILE_DESCRIPTORS, descriptors);
    out.add(&SOCKETS, sockets);
    let main = context
        .target
        .container()
        .and_then(|container| container.pid)
        .or(processes.first().copied());
    if let Some(main) = main {
        out.add_labelled(
            &ULIMITS_SOFT,
            vec![("ulimit", "max_open_files".into())],
            procs::read_max_open_files(procfs, &main.to_string())?,
        );
    }
    Ok(())
}
