//! `container_cpu_*` and the CPU limits `container_spec_cpu_*`.

use super::{Collector, Context};
use crate::cgroup::{Cgroup, CgroupError, cpu};
use crate::metrics::{Desc, TargetSamples, counter, gauge};

pub static COLLECTOR: Collector = Collector {
    name: "cpu",
    help: "CPU time, CFS throttling and CPU limits (cpu, cpuacct, cpuset)",
    enabled_by_default: true,
    collect,
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
static QUOTA: Desc = gauge(
    "container_spec_cpu_quota",
    "CFS quota per period in microseconds (0: unlimited).",
);
static PERIOD: Desc = gauge("container_spec_cpu_period", "CFS period in microseconds.");
static SHARES: Desc = gauge(
    "container_spec_cpu_shares",
    "CPU shares (on cgroup v2 converted from cpu.weight as cAdvisor does).",
);
static CPUSET_CPUS: Desc = gauge(
    "container_spec_cpuset_cpus",
    "Number of CPUs the cgroup's cpuset allows.",
);

fn collect(cgroup: &Cgroup, _: &Context, out: &mut TargetSamples) -> Result<(), CgroupError> {
    let usage = cpu::read_usage(cgroup)?;
    if let Some(total) = usage.total_seconds {
        out.add_labelled(&USAGE, vec![("cpu", "total".to_owned())], Some(total));
    }
    out.add_some(&USER, usage.user_seconds);
    out.add_some(&SYSTEM, usage.system_seconds);
    out.add_some(&PERIODS, usage.periods);
    out.add_some(&THROTTLED_PERIODS, usage.throttled_periods);
    out.add_some(&THROTTLED_SECONDS, usage.throttled_seconds);

    let limits = cpu::read_limits(cgroup)?;
    out.add_some(&QUOTA, limits.quota_us.map(|quota| quota.or_zero()));
    out.add_some(&PERIOD, limits.period_us);
    out.add_some(&SHARES, limits.shares);
    out.add_some(&CPUSET_CPUS, limits.cpuset_cpus);
    Ok(())
}
