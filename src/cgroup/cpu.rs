//! CPU usage and CPU limits of a cgroup (v1 `cpu`, `cpuacct`, `cpuset`; v2 `cpu.*`,
//! `cpuset.*`). Times are converted to seconds here, once.

use super::parse::{self, FlatKeyed, Limit};
use super::{Cgroup, Controller, FileError};

use super::parse::{micros_to_seconds, nanos_to_seconds};
/// `cpuacct.stat` counts in USER_HZ, which is 100 on every Linux ABI.
const USER_HZ: f64 = 100.0;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct CpuUsage {
    pub total_seconds: Option<f64>,
    pub user_seconds: Option<f64>,
    pub system_seconds: Option<f64>,
    pub periods: Option<u64>,
    pub throttled_periods: Option<u64>,
    pub throttled_seconds: Option<f64>,
    /// Periods in which the cgroup ran beyond its quota on burst credit (Linux 5.14+).
    pub bursts: Option<u64>,
    pub burst_seconds: Option<f64>,
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
        total_seconds: cgroup
            .read(Controller::Cpuacct, "cpuacct.usage", parse::single_u64)?
            .map(nanos_to_seconds),
        ..CpuUsage::default()
    };
    let user_ns = cgroup.read(Controller::Cpuacct, "cpuacct.usage_user", parse::single_u64)?;
    let system_ns = cgroup.read(Controller::Cpuacct, "cpuacct.usage_sys", parse::single_u64)?;
    if let (Some(user), Some(system)) = (user_ns, system_ns) {
        usage.user_seconds = Some(nanos_to_seconds(user));
        usage.system_seconds = Some(nanos_to_seconds(system));
    } else if let Some((user, system)) =
        cgroup.read(Controller::Cpuacct, "cpuacct.stat", |text| {
            let stat = FlatKeyed::parse(text, &["user", "system"])?;
            Ok((stat.get("user"), stat.get("system")))
        })?
    {
        // Kernels before 4.7 have only the tick counts.
        usage.user_seconds = user.map(|ticks| ticks as f64 / USER_HZ);
        usage.system_seconds = system.map(|ticks| ticks as f64 / USER_HZ);
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
        usage.throttled_seconds = stat.get("throttled_time").map(nanos_to_seconds);
        usage.bursts = stat.get("nr_bursts");
        usage.burst_seconds = stat.get("burst_time").map(nanos_to_seconds);
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
    let seconds = |key| stat.get(key).map(micros_to_seconds);
    CpuUsage {
        total_seconds: seconds("usage_usec"),
        user_seconds: seconds("user_usec"),
        system_seconds: seconds("system_usec"),
        periods: stat.get("nr_periods"),
        throttled_periods: stat.get("nr_throttled"),
        throttled_seconds: seconds("throttled_usec"),
        bursts: stat.get("nr_bursts"),
        burst_seconds: seconds("burst_usec"),
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
        assert_eq!(usage.total_seconds, Some(2.5));
        assert_eq!(usage.user_seconds, Some(2.0));
        assert_eq!(usage.throttled_periods, Some(12));
        assert_eq!(usage.throttled_seconds, Some(1.5));
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
