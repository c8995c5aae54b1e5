//! `container_memory_*`, `container_oom_events_total` and the memory limits
//! `container_spec_memory_*`.

use super::{Collector, Read, TargetContext};
use crate::cgroup::memory::Faults;
use crate::cgroup::{FileError, memory};
use crate::metrics::{Desc, TargetSamples, counter, gauge};

pub static COLLECTOR: Collector = Collector {
    name: "memory",
    help: "Memory usage, page faults, OOM kills and memory limits (memory)",
    enabled_by_default: true,
    families: &[
        &USAGE,
        &WORKING_SET,
        &RSS,
        &CACHE,
        &SWAP,
        &MAPPED_FILE,
        &MAX_USAGE,
        &FAILCNT,
        &KERNEL,
        &ACTIVE_FILE,
        &INACTIVE_FILE,
        &FAILURES,
        &EVENTS_HIGH,
        &EVENTS_MAX,
        &FILE_DIRTY,
        &FILE_WRITEBACK,
        &PGSCAN,
        &PGSTEAL,
        &REFAULT_ANON,
        &REFAULT_FILE,
        &OOM_EVENTS,
        &LIMIT,
        &SWAP_LIMIT,
        &RESERVATION,
    ],
    read: Read::PerTarget(collect),
};

static USAGE: Desc = gauge(
    "container_memory_usage_bytes",
    "Current memory usage in bytes, including all memory regardless of when it was accessed.",
);
static WORKING_SET: Desc = gauge(
    "container_memory_working_set_bytes",
    "Current working set in bytes: usage minus inactive file pages.",
);
static RSS: Desc = gauge(
    "container_memory_rss",
    "Size of anonymous memory (RSS) in bytes.",
);
static CACHE: Desc = gauge("container_memory_cache", "Size of the page cache in bytes.");
static SWAP: Desc = gauge("container_memory_swap", "Swap usage in bytes.");
static MAPPED_FILE: Desc = gauge(
    "container_memory_mapped_file",
    "Size of memory-mapped files in bytes.",
);
static MAX_USAGE: Desc = gauge(
    "container_memory_max_usage_bytes",
    "Maximum memory usage recorded in bytes.",
);
// A gauge by name: cAdvisor exposes this without the `_total` suffix counters carry.
static FAILCNT: Desc = gauge(
    "container_memory_failcnt",
    "Number of times memory usage hit the limit.",
);
static KERNEL: Desc = gauge(
    "container_memory_kernel_usage",
    "Kernel memory used by the cgroup, in bytes.",
);
static ACTIVE_FILE: Desc = gauge(
    "container_memory_total_active_file_bytes",
    "Page cache on the active list, in bytes.",
);
static INACTIVE_FILE: Desc = gauge(
    "container_memory_total_inactive_file_bytes",
    "Page cache on the inactive list (reclaimable first), in bytes.",
);
static FAILURES: Desc = counter(
    "container_memory_failures_total",
    "Page faults (failure_type pgfault: all, pgmajfault: major), of the cgroup's own tasks \
     (scope container) or its subtree (scope hierarchy).",
);
static EVENTS_HIGH: Desc = counter(
    "container_memory_events_high_total",
    "Times usage went over memory.high and the cgroup was throttled (cgroup v2).",
);
static EVENTS_MAX: Desc = counter(
    "container_memory_events_max_total",
    "Times usage was about to go over memory.max (cgroup v2).",
);
static FILE_DIRTY: Desc = gauge(
    "container_memory_file_dirty_bytes",
    "Page cache modified but not yet written back, in bytes (cgroup v2).",
);
static FILE_WRITEBACK: Desc = gauge(
    "container_memory_file_writeback_bytes",
    "Page cache being written back, in bytes (cgroup v2).",
);
static PGSCAN: Desc = counter(
    "container_memory_pgscan_total",
    "Pages scanned by reclaim (cgroup v2).",
);
static PGSTEAL: Desc = counter(
    "container_memory_pgsteal_total",
    "Pages reclaimed (cgroup v2).",
);
static REFAULT_ANON: Desc = counter(
    "container_memory_workingset_refault_anon_total",
    "Anonymous pages faulted back in after being reclaimed (cgroup v2).",
);
static REFAULT_FILE: Desc = counter(
    "container_memory_workingset_refault_file_total",
    "File pages faulted back in after being reclaimed (cgroup v2).",
);
static OOM_EVENTS: Desc = counter(
    "container_oom_events_total",
    "Processes killed by the kernel's OOM killer in the container, across its restarts.",
);
static LIMIT: Desc = gauge(
    "container_spec_memory_limit_bytes",
    "Memory limit in bytes (0: unlimited).",
);
static SWAP_LIMIT: Desc = gauge(
    "container_spec_memory_swap_limit_bytes",
    "Memory plus swap limit in bytes, as docker's --memory-swap (0: unlimited).",
);
static RESERVATION: Desc = gauge(
    "container_spec_memory_reservation_limit_bytes",
    "Memory reservation (v1 soft limit, v2 memory.low) in bytes (0: none).",
);

fn collect(context: &TargetContext, out: &mut TargetSamples) -> Result<(), FileError> {
    let cgroup = &context.cgroup;
    let usage = memory::read_usage(cgroup)?;
    out.add_some(&USAGE, usage.usage_bytes);
    out.add_some(&WORKING_SET, usage.working_set_bytes);
    out.add_some(&RSS, usage.rss_bytes);
    out.add_some(&CACHE, usage.cache_bytes);
    // The v2 root has no swap file: the host's swap in use is what its subtree swapped.
    let host_swap = (context.target.is_root() && cgroup.is_unified())
        .then(|| {
            context
                .scrape
                .meminfo
                .and_then(|meminfo| meminfo.swap_used_bytes())
        })
        .flatten();
    out.add_some(&SWAP, usage.swap_bytes.or(host_swap));
    out.add_some(&MAPPED_FILE, usage.mapped_file_bytes);
    out.add_some(&MAX_USAGE, usage.max_usage_bytes);
    out.add_some(&FAILCNT, usage.failcnt);
    out.add_some(&KERNEL, usage.kernel_bytes);
    out.add_some(&ACTIVE_FILE, usage.active_file_bytes);
    out.add_some(&INACTIVE_FILE, usage.inactive_file_bytes);
    for (scope, faults) in [
        ("container", usage.faults),
        ("hierarchy", usage.hierarchy_faults),
    ] {
        let Faults {
            minor_and_major,
            major,
        } = faults;
        for (failure_type, count) in [("pgfault", minor_and_major), ("pgmajfault", major)] {
            let labels = vec![
                ("failure_type", failure_type.into()),
                ("scope", scope.into()),
            ];
            out.add_labelled(&FAILURES, labels, count);
        }
    }
    out.add_some(&EVENTS_HIGH, usage.events_high);
    out.add_some(&EVENTS_MAX, usage.events_max);
    out.add_some(&FILE_DIRTY, usage.file_dirty_bytes);
    out.add_some(&FILE_WRITEBACK, usage.file_writeback_bytes);
    out.add_some(&PGSCAN, usage.pgscan);
    out.add_some(&PGSTEAL, usage.pgsteal);
    out.add_some(&REFAULT_ANON, usage.workingset_refault_anon);
    out.add_some(&REFAULT_FILE, usage.workingset_refault_file);
    out.add_some(
        &OOM_EVENTS,
        usage
            .oom_kills
            .map(|kills| kills + context.target.earlier_oom_kills),
    );

    let limits = memory::read_limits(cgroup)?;
    out.add_some(&LIMIT, limits.limit_bytes.map(|limit| limit.or_zero()));
    out.add_some(
        &SWAP_LIMIT,
        limits.swap_limit_bytes.map(|limit| limit.or_zero()),
    );
    out.add_some(
        &RESERVATION,
        limits.reservation_bytes.map(|limit| limit.or_zero()),
    );
    Ok(())
}
