//! `container_cpu_*` and the CPU limits `container_spec_cpu_*`.

use super::{Collector, Read, TargetContext};
use crate::cgroup::{FileError, Limit, cpu};
use crate::metrics::{Desc, TargetSamples, counter, gauge};

pub static COLLECTOR: Collector = Collector {
    name: "cpu",
    help: "CPU time, CFS throttling and CPU limits (cpu, cpuacct, cpuset)",
    enabled_by_default: true,
    families: &[
        &USAGE,
        &USER,
        &SYSTEM,
        &PERIODS,
        &THROTTLED_PERIODS,
        &THROTTLED_SECONDS,
        &BURST_PERIODS,
        &BURST_SECONDS,
        &QUOTA,
        &PERIOD,
        &SHARES,
        &CPUSET_CPUS,
    ],
    read: Read::PerTarget(collect),
};

static USAGE: Desc = counter(
    "container_cpu_usage_seconds_total",
    "Cumulative CPU time consumed, in seconds.",
);
static USER: Desc = counter(
    "container_cpu_user_seconds_total",
    "Cumulative CPU time spent in user mode, in seconds.",
);
static SYSTEM: Desc = counter(
    "container_cpu_system_seconds_total",
    "Cumulative CPU time spent in kernel mode, in seconds.",
);
static PERIODS: Desc = counter(
    "container_cpu_cfs_periods_total",
    "Number of elapsed CFS enforcement periods.",
);
static THROTTLED_PERIODS: Desc = counter(
    "container_cpu_cfs_throttled_periods_total",
    "Number of CFS periods in which the cgroup was throttled.",
);
static THROTTLED_SECONDS: Desc = counter(
    "container_cpu_cfs_throttled_seconds_total",
    "Total time the cgroup was throttled, in seconds.",
);
static BURST_PERIODS: Desc = counter(
    "container_cpu_cfs_burst_periods_total",
    "Number of periods in which the cgroup used burst credit beyond its quota.",
);
static BURST_SECONDS: Desc = counter(
    "container_cpu_cfs_burst_seconds_total",
    "Total time the cgroup ran on burst credit beyond its quota, in seconds.",
);
static QUOTA: Desc = gauge(
    "container_spec_cpu_quota",
    "CFS quota per period in microseconds (absent when there is no quota).",
);
static PERIOD: Desc = gauge(
    "container_spec_cpu_period",
    "CFS period in microseconds (absent when there is no quota).",
);
static SHARES: Desc = gauge(
    "container_spec_cpu_shares",
    "CPU shares (on cgroup v2 converted from cpu.weight as cAdvisor does).",
);
static CPUSET_CPUS: Desc = gauge(
    "container_spec_cpuset_cpus",
    "Number of CPUs the cgroup's cpuset allows.",
);

fn collect(context: &TargetContext, out: &mut TargetSamples) -> Result<(), FileError> {
    let cgroup = &context.cgroup;
    let usage = cpu::read_usage(cgroup)?;
    let limits = cpu::read_limits(cgroup)?;
    if let Some(total) = usage.total {
        out.add_labelled(&USAGE, vec![("cpu", "total".into())], Some(total));
    }
    out.add_some(&USER, usage.user);
    out.add_some(&SYSTEM, usage.system);
    // As cAdvisor: the CFS series exist only where a quota is set, so that `usage / quota`
    // is no data rather than +Inf for a container without one.
    if let Some(Limit::Value(quota)) = limits.quota_us {
        out.add_some(&PERIODS, usage.periods);
        out.add_some(&THROTTLED_PERIODS, usage.throttled_periods);
        out.add_some(&THROTTLED_SECONDS, usage.throttled);
        out.add_some(&BURST_PERIODS, usage.bursts);
        out.add_some(&BURST_SECONDS, usage.burst);
        out.add(&QUOTA, quota);
        out.add_some(&PERIOD, limits.period_us);
    }
    out.add_some(&SHARES, limits.shares);
    out.add_some(&CPUSET_CPUS, limits.cpuset_cpus);
    Ok(())
}
