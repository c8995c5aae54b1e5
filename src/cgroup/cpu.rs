//! CPU usage and CPU limits of a cgroup (v1 `cpu`, `cpuacct`, `cpuset`; v2 `cpu.*`,
//! `cpuset.*`). Times are kept as the kernel counts them, exactly: whole µs or ns.

use std::time::Duration;

use super::parse::{self, FlatKeyed, Limit};
use super::{Cgroup, Controller, FileError};

/// `cpuacct.stat` counts in USER_HZ, which is 100 on every Linux ABI: 10 ms a tick.
const MILLISECONDS_PER_TICK: u64 = 10;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct CpuUsage {
    pub total: Option<Duration>,
    pub user: Option<Duration>,
    pub system: Option<Duration>,
    pub periods: Option<u64>,
    pub throttled_periods: Option<u64>,
    pub throttled: Option<Duration>,
    /// Periods in which the cgroup ran beyond its quota on burst credit (Linux 5.14+).
    pub bursts: Option<u64>,
    pub burst: Option<Duration>,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct CpuLimits {
    /// CFS quota per period, in µs.
    pub quota_us: Option<Limit>,
    pub period_us: Option<u64>,
    /// v1 `cpu.shares`; on v2 converted back from `cpu.weight`, as cAdvisor does.
    pub shares: Option<u64>,
    /// How many CPUs the cpuset allows.
    pub cpuset_cpus: Option<u64>,
}

pub fn read_usage(cgroup: &Cgroup) -> Result<CpuUsage, FileError> {
    if cgroup.is_unified() {
        let usage = cgroup.read(Controller::Cpu, "cpu.stat", |text| {
            Ok(usage_from_v2_stat(&FlatKeyed::parse(text, V2_STAT_KEYS)?))
        })?;
        return Ok(usage.unwrap_or_default());
    }
    let mut usage = CpuUsage {
        total: cgroup
            .read(Controller::Cpuacct, "cpuacct.usage", parse::single_u64)?
            .map(Duration::from_nanos),
        ..CpuUsage::default()
    };
    let user_ns = cgroup.read(Controller::Cpuacct, "cpuacct.usage_user", parse::single_u64)?;
    let system_ns = cgroup.read(Controller::Cpuacct, "cpuacct.usage_sys", parse::single_u64)?;
    if let (Some(user), Some(system)) = (user_ns, system_ns) {
        usage.user = Some(Duration::from_nanos(user));
        usage.system = Some(Duration::from_nanos(system));
    } else if let Some((user, system)) =
        cgroup.read(Controller::Cpuacct, "cpuacct.stat", |text| {
            let stat = FlatKeyed::parse(text, &["user", "system"])?;
            Ok((stat.get("user"), stat.get("system")))
        })?
    {
        // Kernels before 4.7 have only the tick counts.
        let time = |ticks: u64| Duration::from_millis(ticks.saturating_mul(MILLISECONDS_PER_TICK));
        usage.user = user.map(time);
        usage.system = system.map(time);
    }
    cgroup.read(Controller::Cpu, "cpu.stat", |text| {
        let stat = FlatKeyed::parse(
            text,
            &[
                "nr_periods",
                "nr_throttled",
                "throttled_time",
                "nr_bursts",
                "burst_time",
            ],
        )?;
        usage.periods = stat.get("nr_periods");
        usage.throttled_periods = stat.get("nr_throttled");
        usage.throttled = stat.get("throttled_time").map(Duration::from_nanos);
        usage.bursts = stat.get("nr_bursts");
        usage.burst = stat.get("burst_time").map(Duration::from_nanos);
        Ok(())
    })?;
    Ok(usage)
}

/// The v2 `cpu.stat` keys `usage_from_v2_stat` reads.
const V2_STAT_KEYS: &[&str] = &[
    "usage_usec",
    "user_usec",
    "system_usec",
    "nr_periods",
    "nr_throttled",
    "throttled_usec",
    "nr_bursts",
    "burst_usec",
];

/// v2 `cpu.stat`; the throttling keys appear only when the cpu controller is enabled.
fn usage_from_v2_stat(stat: &FlatKeyed) -> CpuUsage {
    let time = |key| stat.get(key).map(Duration::from_micros);
    CpuUsage {
        total: time("usage_usec"),
        user: time("user_usec"),
        system: time("system_usec"),
        periods: stat.get("nr_periods"),
        throttled_periods: stat.get("nr_throttled"),
        throttled: time("throttled_usec"),
        bursts: stat.get("nr_bursts"),
        burst: time("burst_usec"),
    }
}

pub fn read_limits(cgroup: &Cgroup) -> Result<CpuLimits, FileError> {
    if cgroup.is_unified() {
        let max = cgroup.read(Controller::Cpu, "cpu.max", parse::cpu_max)?;
        return Ok(CpuLimits {
            quota_us: max.map(|(quota, _)| quota),
            period_us: max.map(|(_, period)| period),
            shares: cgroup
                .read(Controller::Cpu, "cpu.weight", parse::single_u64)?
                .map(shares_from_weight),
            cpuset_cpus: cgroup.read_first(
                Controller::Cpuset,
                &["cpuset.cpus.effective", "cpuset.cpus"],
                parse::cpu_list_len,
            )?,
        });
    }
    Ok(CpuLimits {
        quota_us: cgroup.read(Controller::Cpu, "cpu.cfs_quota_us", parse::limit)?,
        period_us: cgroup.read(Controller::Cpu, "cpu.cfs_period_us", parse::single_u64)?,
        shares: cgroup.read(Controller::Cpu, "cpu.shares", parse::single_u64)?,
        cpuset_cpus: cgroup.read_first(
            Controller::Cpuset,
            &["cpuset.effective_cpus", "cpuset.cpus"],
            parse::cpu_list_len,
        )?,
    })
}

/// The inverse of runc's shares → weight conversion
/// (`weight = 1 + (shares - 2) * 9999 / 262142`), as cAdvisor reports v2 shares.
pub fn shares_from_weight(weight: u64) -> u64 {
    2 + (weight.clamp(1, 10_000) - 1) * 262_142 / 9_999
}

/// runc's conversion of `--cpu-shares` to v2 `cpu.weight`.
pub fn weight_from_shares(shares: u64) -> u64 {
    1 + (shares.clamp(2, 262_144) - 2) * 9_999 / 262_142
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_stat_converts_microseconds() {
        let stat = FlatKeyed::parse(
            "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n\
             nr_periods 40\nnr_throttled 12\nthrottled_usec 1500000\n",
            V2_STAT_KEYS,
        )
        .unwrap();
        let usage = usage_from_v2_stat(&stat);
        assert_eq!(usage.total, Some(Duration::from_millis(2500)));
        assert_eq!(usage.user, Some(Duration::from_secs(2)));
        assert_eq!(usage.throttled_periods, Some(12));
        assert_eq!(usage.throttled, Some(Duration::from_millis(1500)));
        // Hybrid's unified cpu.stat has no throttling keys: no data, not zero.
        let hybrid = usage_from_v2_stat(&FlatKeyed::parse("usage_usec 1\n", V2_STAT_KEYS).unwrap());
        assert_eq!(hybrid.periods, None);
    }

    #[test]
    fn weight_and_shares_conversions_match_runc_and_cadvisor() {
        assert_eq!(weight_from_shares(1024), 39);
        assert_eq!(weight_from_shares(512), 20);
        assert_eq!(weight_from_shares(2), 1);
        assert_eq!(weight_from_shares(262_144), 10_000);
        assert_eq!(shares_from_weight(1), 2);
        assert_eq!(shares_from_weight(10_000), 262_144);
        assert_eq!(shares_from_weight(100), 2597);
    }
}
