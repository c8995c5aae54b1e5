//! What limits a container has now, read from its cgroup files (the truth, not the
//! engine's configuration), and whether each is what the policy wants.

use super::model::{Resource, Value, Wanted};
use crate::cgroup::io::IoLimits;
use crate::cgroup::memory::MemoryLimits;
use crate::cgroup::parse::{self, cpu_list};
use crate::cgroup::pids::Pids;
use crate::cgroup::{Cgroup, Controller, FileError, Limit, cpu, io, memory, pids};

/// One wanted limit beside the container's current one.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub wanted: Wanted,
    /// `None` when the kernel has no file for it (e.g. no swap accounting).
    pub current: Option<Value>,
    pub in_place: bool,
}

impl Observed {
    /// Whether applying should change it: it is known and not what is wanted. (A limit the
    /// kernel has no file for cannot be checked, so it is neither drift nor changed.)
    pub fn needs_change(&self) -> bool {
        self.current.is_some() && !self.in_place
    }

    /// Whether applying would grant the container more than it has now.
    pub fn loosens(&self) -> bool {
        self.needs_change()
            && self
                .current
                .as_ref()
                .is_some_and(|current| loosens(&self.wanted.resource, current, &self.wanted.value))
    }
}

/// Whether `wanted` grants more than `current` of a limit that caps a container: a higher
/// value, or none at all.
pub fn loosens(resource: &Resource, current: &Value, wanted: &Value) -> bool {
    if !resource.caps() {
        return false;
    }
    let amount = |value: &Value| match value {
        Value::Bytes(amount) | Value::Rate(amount) | Value::Count(amount) => Some(*amount as f64),
        Value::Cpus(cpus) => Some(*cpus),
        Value::List(_) | Value::Unlimited => None,
    };
    match (current, wanted) {
        (Value::Unlimited, _) => false,
        (_, Value::Unlimited) => true,
        (current, wanted) => match (amount(current), amount(wanted)) {
            (Some(current), Some(wanted)) => wanted > current,
            _ => false,
        },
    }
}

/// Reads the current value of every wanted limit and compares.
pub fn observe(cgroup: &Cgroup, wanted: &[Wanted]) -> Result<Vec<Observed>, FileError> {
    let mut reader = CurrentLimits {
        cgroup,
        memory: None,
        cpu: None,
        io: None,
        pids: None,
    };
    wanted
        .iter()
        .map(|wanted| {
            let current = reader.value(wanted)?;
            let in_place = current.as_ref().is_some_and(|current| {
                // A default leaves whatever limit the container has alone.
                (wanted.default && *current != Value::Unlimited)
                    || satisfied(
                        &wanted.resource,
                        &wanted.value,
                        current,
                        cgroup.is_unified(),
                    )
            });
            Ok(Observed {
                wanted: wanted.clone(),
                current,
                in_place,
            })
        })
        .collect()
}

/// Reads each controller's limits at most once.
struct CurrentLimits<'a> {
    cgroup: &'a Cgroup<'a>,
    memory: Option<MemoryLimits>,
    cpu: Option<cpu::CpuLimits>,
    io: Option<IoLimits>,
    pids: Option<Pids>,
}

fn limit_value(limit: Option<Limit>, to_value: fn(u64) -> Value) -> Option<Value> {
    limit.map(|limit| match limit {
        Limit::Unlimited => Value::Unlimited,
        Limit::Value(value) => to_value(value),
    })
}

/// `slot`'s reading, made by `read` the first time it is asked for.
fn read_once<'s, T>(
    slot: &'s mut Option<T>,
    cgroup: &Cgroup,
    read: fn(&Cgroup) -> Result<T, FileError>,
) -> Result<&'s T, FileError> {
    if slot.is_none() {
        *slot = Some(read(cgroup)?);
    }
    Ok(slot.as_ref().expect("just read"))
}

impl CurrentLimits<'_> {
    fn memory(&mut self) -> Result<&MemoryLimits, FileError> {
        read_once(&mut self.memory, self.cgroup, memory::read_limits)
    }

    fn cpu(&mut self) -> Result<&cpu::CpuLimits, FileError> {
        read_once(&mut self.cpu, self.cgroup, cpu::read_limits)
    }

    fn io(&mut self) -> Result<&IoLimits, FileError> {
        read_once(&mut self.io, self.cgroup, io::read_limits)
    }

    fn pids(&mut self) -> Result<&Pids, FileError> {
        read_once(&mut self.pids, self.cgroup, pids::read)
    }

    fn value(&mut self, wanted: &Wanted) -> Result<Option<Value>, FileError> {
        let unified = self.cgroup.is_unified();
        Ok(match &wanted.resource {
            Resource::Memory => limit_value(self.memory()?.limit_bytes, Value::Bytes),
            Resource::MemorySwap => limit_value(self.memory()?.swap_limit_bytes, Value::Bytes),
            // A v2 `memory.low` of 0 is no reservation, as v1's unlimited soft limit is.
            Resource::MemoryReservation => limit_value(self.memory()?.reservation_bytes, |bytes| {
                if bytes == 0 {
                    Value::Unlimited
                } else {
                    Value::Bytes(bytes)
                }
            }),
            Resource::Cpus => {
                let limits = self.cpu()?;
                match (limits.quota_us, limits.period_us) {
                    (Some(Limit::Unlimited), _) => Some(Value::Unlimited),
                    (Some(Limit::Value(quota)), Some(period)) if period > 0 => {
                        Some(Value::Cpus(quota as f64 / period as f64))
                    }
                    _ => None,
                }
            }
            Resource::CpuPeriod => self.cpu()?.period_us.map(Value::Count),
            Resource::CpuQuota => limit_value(self.cpu()?.quota_us, Value::Count),
            Resource::CpuShares => self.cpu()?.shares.map(Value::Count),
            Resource::CpusetCpus => {
                self.cgroup
                    .read(Controller::Cpuset, "cpuset.cpus", |text| {
                        Ok(Value::List(text.trim().to_owned()))
                    })?
            }
            Resource::CpusetMems => {
                self.cgroup
                    .read(Controller::Cpuset, "cpuset.mems", |text| {
                        Ok(Value::List(text.trim().to_owned()))
                    })?
            }
            Resource::PidsLimit => limit_value(self.pids()?.limit, Value::Count),
            // Only the weight file the engine writes: v1 `blkio.weight` (not BFQ's), v2
            // `io.weight`, on its own 1-10000 scale.
            Resource::BlkioWeight if unified => self.io()?.weight.map(Value::Count),
            Resource::BlkioWeight => self
                .cgroup
                .read(Controller::Blkio, "blkio.weight", parse::single_u64)?
                .map(Value::Count),
            Resource::Device(throttle, _) => {
                let Some(device) = wanted.device else {
                    return Ok(None);
                };
                let limits = self.io()?.devices.get(&device).copied().unwrap_or_default();
                let to_value = if throttle.is_bytes() {
                    Value::Rate
                } else {
                    Value::Count
                };
                limit_value(Some(limits.get(*throttle)), to_value)
            }
        })
    }
}

/// Whether the current value is the wanted one, allowing for what the kernel does to a
/// value on its way in: memory limits are rounded down to whole pages, CPU lists are
/// normalised, v2 stores shares and blkio weights converted to its own scales.
pub fn satisfied(resource: &Resource, wanted: &Value, current: &Value, unified: bool) -> bool {
    match (resource, wanted, current) {
        (
            Resource::Memory | Resource::MemorySwap | Resource::MemoryReservation,
            Value::Bytes(wanted),
            Value::Bytes(current),
        ) => {
            let page = crate::host::procs::page_size();
            wanted / page == current / page
        }
        (_, Value::Cpus(wanted), Value::Cpus(current)) => (wanted - current).abs() < 1e-4,
        (_, Value::List(wanted), Value::List(current)) => cpu_list(wanted) == cpu_list(current),
        (Resource::CpuShares, Value::Count(wanted), Value::Count(current)) if unified => {
            cpu::shares_from_weight(cpu::weight_from_shares(*wanted)) == *current
        }
        (Resource::BlkioWeight, Value::Count(wanted), Value::Count(current)) if unified => {
            io::io_weight_from_blkio(*wanted) == *current
        }
        (_, wanted, current) => wanted == current,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_rounding_and_scales_are_not_drift() {
        let mib = 1024 * 1024;
        assert!(satisfied(
            &Resource::Memory,
            &Value::Bytes(100_000_000),
            &Value::Bytes(99_999_744),
            false
        ));
        assert!(!satisfied(
            &Resource::Memory,
            &Value::Bytes(64 * mib),
            &Value::Bytes(32 * mib),
            false
        ));
        assert!(satisfied(
            &Resource::Cpus,
            &Value::Cpus(1.5),
            &Value::Cpus(150_000.0 / 100_000.0),
            false
        ));
        assert!(satisfied(
            &Resource::CpusetCpus,
            &Value::List("0,1".to_owned()),
            &Value::List("0-1".to_owned()),
            false
        ));
        assert!(satisfied(
            &Resource::CpuShares,
            &Value::Count(512),
            &Value::Count(500),
            true
        ));
        assert!(!satisfied(
            &Resource::CpuShares,
            &Value::Count(512),
            &Value::Count(500),
            false
        ));
        assert!(satisfied(
            &Resource::BlkioWeight,
            &Value::Count(500),
            &Value::Count(io::io_weight_from_blkio(500)),
            true
        ));
        assert!(satisfied(
            &Resource::PidsLimit,
            &Value::Unlimited,
            &Value::Unlimited,
            false
        ));
        assert!(!satisfied(
            &Resource::PidsLimit,
            &Value::Count(50),
            &Value::Unlimited,
            false
        ));
    }

    #[test]
    fn raising_or_removing_a_cap_loosens_and_lowering_it_does_not() {
        let mib = 1024 * 1024;
        assert!(loosens(
            &Resource::Memory,
            &Value::Bytes(50 * mib),
            &Value::Bytes(1024 * mib)
        ));
        assert!(!loosens(
            &Resource::Memory,
            &Value::Bytes(1024 * mib),
            &Value::Bytes(50 * mib)
        ));
        assert!(!loosens(
            &Resource::Memory,
            &Value::Unlimited,
            &Value::Bytes(50 * mib)
        ));
        assert!(loosens(
            &Resource::PidsLimit,
            &Value::Count(20),
            &Value::Unlimited
        ));
        assert!(loosens(
            &Resource::Cpus,
            &Value::Cpus(0.5),
            &Value::Cpus(1.5)
        ));
        // Shares are a weight among neighbours, not a cap.
        assert!(!loosens(
            &Resource::CpuShares,
            &Value::Count(256),
            &Value::Count(1024)
        ));
    }
}
