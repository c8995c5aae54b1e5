//! Memory usage, memory events and memory limits of a cgroup (v1 `memory.*`, v2
//! `memory.*`), in bytes.

use super::parse::{self, FlatKeyed, Limit};
use super::{Cgroup, Controller, FileError};

#[derive(Debug, Default, Clone, PartialEq)]
pub struct MemoryUsage {
    pub usage_bytes: Option<u64>,
    /// Usage minus inactive file pages, floored at 0: what `docker stats` shows, and the
    /// part of the usage the kernel cannot easily reclaim.
    pub working_set_bytes: Option<u64>,
    pub rss_bytes: Option<u64>,
    pub cache_bytes: Option<u64>,
    pub swap_bytes: Option<u64>,
    pub mapped_file_bytes: Option<u64>,
    /// v1 `memory.max_usage_in_bytes`, v2 `memory.peak` (Linux 5.19+).
    pub max_usage_bytes: Option<u64>,
    /// v1 `memory.failcnt`; v2 `memory.events` `max` (times usage hit the limit).
    pub failcnt: Option<u64>,
    /// Processes the kernel's OOM killer killed in this cgroup.
    pub oom_kills: Option<u64>,
    /// v1 `memory.kmem.usage_in_bytes`; v2 `memory.stat` `kernel` (Linux 5.18+).
    pub kernel_bytes: Option<u64>,
    pub active_file_bytes: Option<u64>,
    pub inactive_file_bytes: Option<u64>,
    /// Page faults of this cgroup's own tasks (v1 `pgfault`, `pgmajfault`), and of its
    /// whole subtree (v1 `total_*`); v2 counts the subtree in both.
    pub faults: Faults,
    pub hierarchy_faults: Faults,
    /// v2 only, as cAdvisor has them: `memory.events` `high` and `max`, and `memory.stat`
    /// keys.
    pub events_high: Option<u64>,
    pub events_max: Option<u64>,
    pub file_dirty_bytes: Option<u64>,
    pub file_writeback_bytes: Option<u64>,
    pub pgscan: Option<u64>,
    pub pgsteal: Option<u64>,
    pub workingset_refault_anon: Option<u64>,
    pub workingset_refault_file: Option<u64>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Faults {
    pub minor_and_major: Option<u64>,
    pub major: Option<u64>,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct MemoryLimits {
    pub limit_bytes: Option<Limit>,
    /// Memory plus swap, as Docker's `--memory-swap` means it: v1
    /// `memory.memsw.limit_in_bytes`; v2 `memory.max + memory.swap.max`.
    pub swap_limit_bytes: Option<Limit>,
    /// v1 `memory.soft_limit_in_bytes`; v2 `memory.low` (where Docker puts
    /// `--memory-reservation`).
    pub reservation_bytes: Option<Limit>,
}

/// The `memory.stat` fields the exporter reports.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct StatFields {
    rss: Option<u64>,
    cache: Option<u64>,
    swap: Option<u64>,
    mapped_file: Option<u64>,
    inactive_file: Option<u64>,
    active_file: Option<u64>,
    kernel: Option<u64>,
    faults: Faults,
    hierarchy_faults: Faults,
    file_dirty: Option<u64>,
    file_writeback: Option<u64>,
    pgscan: Option<u64>,
    pgsteal: Option<u64>,
    workingset_refault_anon: Option<u64>,
    workingset_refault_file: Option<u64>,
    /// The root cgroup of v2 has no `memory.current`: its usage is `anon + file`, as runc
    /// reports it.
    anon_and_file: Option<u64>,
}

/// The v1 `memory.stat` keys `v1_stat_fields` reads.
const V1_STAT_KEYS: &[&str] = &[
    "total_rss",
    "rss",
    "total_cache",
    "cache",
    "total_swap",
    "swap",
    "total_mapped_file",
    "mapped_file",
    "total_inactive_file",
    "inactive_file",
    "total_active_file",
    "active_file",
    "pgfault",
    "pgmajfault",
    "total_pgfault",
    "total_pgmajfault",
];

/// v1 `memory.stat`: the `total_*` keys include child cgroups; plain keys are the
/// fallback for kernels or cgroups without hierarchy accounting.
fn v1_stat_fields(stat: &FlatKeyed) -> StatFields {
    let hierarchical = |total: &str, own: &str| stat.get(total).or_else(|| stat.get(own));
    StatFields {
        rss: hierarchical("total_rss", "rss"),
        cache: hierarchical("total_cache", "cache"),
        swap: hierarchical("total_swap", "swap"),
        mapped_file: hierarchical("total_mapped_file", "mapped_file"),
        inactive_file: hierarchical("total_inactive_file", "inactive_file"),
        active_file: hierarchical("total_active_file", "active_file"),
        faults: Faults {
            minor_and_major: stat.get("pgfault"),
            major: stat.get("pgmajfault"),
        },
        hierarchy_faults: Faults {
            minor_and_major: hierarchical("total_pgfault", "pgfault"),
            major: hierarchical("total_pgmajfault", "pgmajfault"),
        },
        ..StatFields::default()
    }
}

/// The v2 `memory.stat` keys `v2_stat_fields` reads.
const V2_STAT_KEYS: &[&str] = &[
    "anon",
    "file",
    "file_mapped",
    "inactive_file",
    "active_file",
    "kernel",
    "pgfault",
    "pgmajfault",
    "file_dirty",
    "file_writeback",
    "pgscan",
    "pgsteal",
    "workingset_refault_anon",
    "workingset_refault_file",
];

/// v2 `memory.stat` (already hierarchical).
fn v2_stat_fields(stat: &FlatKeyed) -> StatFields {
    let faults = Faults {
        minor_and_major: stat.get("pgfault"),
        major: stat.get("pgmajfault"),
    };
    StatFields {
        rss: stat.get("anon"),
        cache: stat.get("file"),
        swap: None,
        mapped_file: stat.get("file_mapped"),
        inactive_file: stat.get("inactive_file"),
        active_file: stat.get("active_file"),
        kernel: stat.get("kernel"),
        faults,
        hierarchy_faults: faults,
        file_dirty: stat.get("file_dirty"),
        file_writeback: stat.get("file_writeback"),
        pgscan: stat.get("pgscan"),
        pgsteal: stat.get("pgsteal"),
        workingset_refault_anon: stat.get("workingset_refault_anon"),
        workingset_refault_file: stat.get("workingset_refault_file"),
        anon_and_file: stat
            .get("anon")
            .zip(stat.get("file"))
            .map(|(anon, file)| anon + file),
    }
}

pub fn working_set(usage: u64, inactive_file: u64) -> u64 {
    usage.saturating_sub(inactive_file)
}

pub fn read_usage(cgroup: &Cgroup) -> Result<MemoryUsage, FileError> {
    let unified = cgroup.is_unified();
    let m = Controller::Memory;
    let stat = cgroup.read(m, "memory.stat", |text| {
        Ok(if unified {
            v2_stat_fields(&FlatKeyed::parse(text, V2_STAT_KEYS)?)
        } else {
            v1_stat_fields(&FlatKeyed::parse(text, V1_STAT_KEYS)?)
        })
    })?;
    let stat = stat.unwrap_or_default();
    let mut usage = MemoryUsage {
        rss_bytes: stat.rss,
        cache_bytes: stat.cache,
        swap_bytes: stat.swap,
        mapped_file_bytes: stat.mapped_file,
        kernel_bytes: stat.kernel,
        active_file_bytes: stat.active_file,
        inactive_file_bytes: stat.inactive_file,
        faults: stat.faults,
        hierarchy_faults: stat.hierarchy_faults,
        file_dirty_bytes: stat.file_dirty,
        file_writeback_bytes: stat.file_writeback,
        pgscan: stat.pgscan,
        pgsteal: stat.pgsteal,
        workingset_refault_anon: stat.workingset_refault_anon,
        workingset_refault_file: stat.workingset_refault_file,
        ..MemoryUsage::default()
    };
    if unified {
        usage.usage_bytes =
            cgroup
                .read(m, "memory.current", parse::single_u64)?
                .or(if cgroup.path == "/" {
                    stat.anon_and_file
                } else {
                    None
                });
        usage.max_usage_bytes = cgroup.read(m, "memory.peak", parse::single_u64)?;
        usage.swap_bytes = cgroup.read(m, "memory.swap.current", parse::single_u64)?;
        if let Some((high, max, oom_kill)) = cgroup.read(m, "memory.events", |text| {
            let events = FlatKeyed::parse(text, &["high", "max", "oom_kill"])?;
            Ok((
                events.get("high"),
                events.get("max"),
                events.get("oom_kill"),
            ))
        })? {
            usage.failcnt = max;
            usage.events_high = high;
            usage.events_max = max;
            usage.oom_kills = oom_kill;
        }
    } else {
        usage.kernel_bytes = cgroup.read(m, "memory.kmem.usage_in_bytes", parse::single_u64)?;
        usage.usage_bytes = cgroup.read(m, "memory.usage_in_bytes", parse::single_u64)?;
        usage.max_usage_bytes = cgroup.read(m, "memory.max_usage_in_bytes", parse::single_u64)?;
        usage.failcnt = cgroup.read(m, "memory.failcnt", parse::single_u64)?;
        usage.oom_kills = cgroup
            .read(m, "memory.oom_control", |text| {
                Ok(FlatKeyed::parse(text, &["oom_kill"])?.get("oom_kill"))
            })?
            .flatten();
    }
    // Without inactive_file there is no working set to compute, only a guess.
    usage.working_set_bytes = usage
        .usage_bytes
        .zip(stat.inactive_file)
        .map(|(bytes, inactive)| working_set(bytes, inactive));
    Ok(usage)
}

pub fn read_limits(cgroup: &Cgroup) -> Result<MemoryLimits, FileError> {
    let m = Controller::Memory;
    if cgroup.is_unified() {
        let limit = cgroup.read(m, "memory.max", parse::limit)?;
        let swap = cgroup.read(m, "memory.swap.max", parse::limit)?;
        return Ok(MemoryLimits {
            limit_bytes: limit,
            swap_limit_bytes: match (limit, swap) {
                (Some(Limit::Value(memory)), Some(Limit::Value(swap))) => {
                    Some(Limit::Value(memory.saturating_add(swap)))
                }
                (Some(_), Some(_)) => Some(Limit::Unlimited),
                _ => None,
            },
            reservation_bytes: cgroup.read(m, "memory.low", parse::limit)?,
        });
    }
    Ok(MemoryLimits {
        limit_bytes: cgroup.read(m, "memory.limit_in_bytes", parse::v1_memory_limit)?,
        swap_limit_bytes: cgroup.read(m, "memory.memsw.limit_in_bytes", parse::v1_memory_limit)?,
        reservation_bytes: cgroup.read(m, "memory.soft_limit_in_bytes", parse::v1_memory_limit)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_set_is_usage_minus_inactive_file_floored_at_zero() {
        assert_eq!(working_set(100, 30), 70);
        assert_eq!(working_set(100, 300), 0);
    }

    #[test]
    fn v1_stat_prefers_hierarchical_totals() {
        let stat = FlatKeyed::parse(
            "cache 10\nrss 20\nmapped_file 5\ninactive_file 3\n\
             total_cache 110\ntotal_rss 120\ntotal_mapped_file 15\ntotal_inactive_file 13\n\
             total_swap 7\n",
            V1_STAT_KEYS,
        )
        .unwrap();
        let fields = v1_stat_fields(&stat);
        assert_eq!(fields.cache, Some(110));
        assert_eq!(fields.rss, Some(120));
        assert_eq!(fields.swap, Some(7));
        assert_eq!(fields.inactive_file, Some(13));
        let flat = v1_stat_fields(&FlatKeyed::parse("cache 10\nrss 20\n", V1_STAT_KEYS).unwrap());
        assert_eq!(
            (flat.cache, flat.rss, flat.swap),
            (Some(10), Some(20), None)
        );
    }

    #[test]
    fn v2_stat_maps_anon_and_file() {
        let stat = FlatKeyed::parse(
            "anon 4096\nfile 8192\nfile_mapped 1024\ninactive_file 512\n",
            V2_STAT_KEYS,
        )
        .unwrap();
        let fields = v2_stat_fields(&stat);
        assert_eq!(fields.rss, Some(4096));
        assert_eq!(fields.cache, Some(8192));
        assert_eq!(fields.mapped_file, Some(1024));
        assert_eq!(fields.inactive_file, Some(512));
    }
}
