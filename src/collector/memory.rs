//! `container_memory_*`, `container_oom_events_total` and the memory limits
//! `container_spec_memory_*`.

use super::{Collector, Context};
use crate::cgroup::{Cgroup, CgroupError, memory};
use crate::metrics::{Desc, TargetSamples, counter, gauge};

pub static COLLECTOR: Collector = Collector {
    name: "memory",
    help: "Memory usage, OOM kills and memory limits (memory)",
    enabled_by_default: true,
    collect,
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

fn collect(cgroup: &Cgroup, context: &Context, out: &mut TargetSamples) -> Result<(), CgroupError> {
    let usage = memory::read_usage(cgroup)?;
    out.add_some(&USAGE, usage.usage_bytes);
    out.add_some(&WORKING_SET, usage.working_set_bytes);
    out.add_some(&RSS, usage.rss_bytes);
    out.add_some(&CACHE, usage.cache_bytes);
    out.add_some(&SWAP, usage.swap_bytes);
    out.add_some(&MAPPED_FILE, usage.mapped_file_bytes);
    out.add_some(&MAX_USAGE, usage.max_usage_bytes);
    out.add_some(&FAILCNT, usage.failcnt);
    out.add_some(
        &OOM_EVENTS,
        usage
            .oom_kills
            .map(|kills| kills + context.earlier_oom_kills),
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
