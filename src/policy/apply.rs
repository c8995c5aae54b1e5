//! Changing a container's limits to what the policy wants: through the engine's update API
//! for everything it supports (so its own view stays true and survives restarts), and by
//! writing the cgroup files for device limits, which the engine accepts on update but
//! silently ignores. Either all of it takes effect or the container is left as it was.

use super::drift::Observed;
use super::model::{Resource, Value};
use crate::cgroup::io::{self, Throttle};
use crate::cgroup::{Cgroup, DeviceNumber, FileError, Limit};
use crate::docker::api::ContainerUpdate;
use crate::docker::container::EngineResources;
use crate::docker::{EngineClient, EngineError};

/// The CFS period the engine uses for `--cpus`.
const DEFAULT_CPU_PERIOD: i64 = 100_000;

/// What applying did.
#[derive(Debug)]
pub enum Outcome {
    /// Every wanted limit was already in place.
    Unchanged,
    Applied {
        changed: Vec<Observed>,
    },
    Failed {
        attempted: Vec<Observed>,
        error: ApplyError,
    },
}

/// Why limits were not applied (the container is left as it was).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("device {0} is not known on this host")]
    UnknownDevice(String),
    #[error("the kernel refused a device limit: {0}")]
    KernelRefused(FileError),
    #[error("the engine refused the update: {0}")]
    EngineRefused(String),
    /// The update may or may not have reached the engine; trying again is safe.
    #[error("the update did not reach the engine: {0}")]
    EngineUnreachable(EngineError),
}

/// The engine update for the limits that are not in place. Besides the drifted values it
/// carries what the engine's consistency rules need:
/// - with `memory`, always `memory-swap` (the engine refuses a memory limit above the
///   swap limit it has unless both change together): the declared one, or one that keeps
///   the container's swap allowance (unlimited stays unlimited);
/// - CPU bandwidth in the form the container already uses: the engine refuses to mix
///   `--cpus` with `--cpu-period`/`--cpu-quota`, so on a container with a quota `cpus`
///   becomes a quota, and on a container created with `--cpus` a quota becomes `cpus`.
pub fn engine_update(observed: &[Observed], engine: &EngineResources) -> Option<ContainerUpdate> {
    let mut update = ContainerUpdate::default();
    let mut any = false;
    let declared = |resource: &Resource| {
        observed
            .iter()
            .find(|item| item.wanted.resource == *resource)
            .map(|item| &item.wanted.value)
    };
    for item in observed.iter().filter(|item| item.needs_change()) {
        let value = &item.wanted.value;
        any |= !matches!(item.wanted.resource, Resource::Device(..));
        match (&item.wanted.resource, value) {
            (Resource::Memory, Value::Bytes(bytes)) => update.memory = Some(*bytes as i64),
            (Resource::MemoryReservation, Value::Bytes(bytes)) => {
                update.memory_reservation = Some(*bytes as i64);
            }
            (Resource::MemorySwap, _) => update.memory_swap = Some(swap_value(value)),
            (Resource::Cpus, Value::Cpus(cpus)) => {
                if engine.cpu_period != 0 || engine.cpu_quota != 0 {
                    let period = if engine.cpu_period > 0 {
                        engine.cpu_period
                    } else {
                        DEFAULT_CPU_PERIOD
                    };
                    update.cpu_period = Some(period);
                    update.cpu_quota = Some((cpus * period as f64).round() as i64);
                } else {
                    update.nano_cpus = Some((cpus * 1e9).round() as i64);
                }
            }
            (Resource::CpuPeriod, Value::Count(period)) => update.cpu_period = Some(*period as i64),
            (Resource::CpuQuota, Value::Count(quota)) => update.cpu_quota = Some(*quota as i64),
            (Resource::CpuQuota, Value::Unlimited) => update.cpu_quota = Some(-1),
            (Resource::CpuShares, Value::Count(shares)) => update.cpu_shares = Some(*shares as i64),
            (Resource::CpusetCpus, Value::List(list)) => update.cpuset_cpus = Some(list.clone()),
            (Resource::CpusetMems, Value::List(list)) => update.cpuset_mems = Some(list.clone()),
            (Resource::PidsLimit, Value::Count(limit)) => update.pids_limit = Some(*limit as i64),
            (Resource::PidsLimit, Value::Unlimited) => update.pids_limit = Some(-1),
            (Resource::BlkioWeight, Value::Count(weight)) => {
                update.blkio_weight = Some((*weight).min(u64::from(u16::MAX)) as u16);
            }
            _ => {}
        }
    }
    if engine.nano_cpus != 0
        && update.nano_cpus.is_none()
        && (update.cpu_quota.is_some() || update.cpu_period.is_some())
    {
        let current = |resource: Resource| match declared(&resource) {
            Some(Value::Count(value)) => Some(*value as i64),
            _ => None,
        };
        let quota = update.cpu_quota.or_else(|| current(Resource::CpuQuota));
        let period = update
            .cpu_period
            .or_else(|| current(Resource::CpuPeriod))
            .unwrap_or(DEFAULT_CPU_PERIOD);
        if let Some(quota) = quota.filter(|quota| *quota > 0 && period > 0) {
            update.nano_cpus = Some(quota * 1_000_000_000 / period);
            update.cpu_quota = None;
            update.cpu_period = None;
        }
    }
    if let Some(memory) = update.memory
        && update.memory_swap.is_none()
    {
        update.memory_swap = Some(match declared(&Resource::MemorySwap) {
            Some(swap) => swap_value(swap),
            None if engine.memory_swap <= 0 => -1,
            None => memory + (engine.memory_swap - engine.memory).max(0),
        });
    }
    any.then_some(update)
}

fn swap_value(value: &Value) -> i64 {
    match value {
        Value::Bytes(bytes) => *bytes as i64,
        _ => -1,
    }
}

/// A device limit to write, and the value to restore if something later fails.
struct DeviceWrite {
    device: DeviceNumber,
    throttle: Throttle,
    wanted: Limit,
    before: Limit,
}

fn device_writes(observed: &[Observed]) -> Result<Vec<DeviceWrite>, ApplyError> {
    let mut writes = Vec::new();
    for item in observed.iter().filter(|item| item.needs_change()) {
        let Resource::Device(throttle, path) = &item.wanted.resource else {
            continue;
        };
        let device = item
            .wanted
            .device
            .ok_or_else(|| ApplyError::UnknownDevice(path.clone()))?;
        let as_limit = |value: &Value| match value {
            Value::Rate(value) | Value::Count(value) => Limit::Value(*value),
            _ => Limit::Unlimited,
        };
        writes.push(DeviceWrite {
            device,
            throttle: *throttle,
            wanted: as_limit(&item.wanted.value),
            before: item.current.as_ref().map_or(Limit::Unlimited, as_limit),
        });
    }
    Ok(writes)
}

/// Applies the limits that are not in place. Device limits are written first, because
/// they can be undone exactly; then the engine update, whose refusal undoes them.
pub async fn apply(
    client: &EngineClient,
    container_id: &str,
    cgroup: &Cgroup<'_>,
    engine: &EngineResources,
    observed: Vec<Observed>,
) -> Outcome {
    let attempted: Vec<Observed> = observed
        .iter()
        .filter(|item| item.needs_change())
        .cloned()
        .collect();
    if attempted.is_empty() {
        return Outcome::Unchanged;
    }
    let failed = |error: ApplyError| Outcome::Failed {
        attempted: attempted.clone(),
        error,
    };
    let writes = match device_writes(&observed) {
        Ok(writes) => writes,
        Err(error) => return failed(error),
    };
    let mut written = Vec::new();
    for write in &writes {
        let result = tokio::task::block_in_place(|| {
            io::write_throttle(cgroup, write.device, write.throttle, write.wanted)
        });
        match result {
            Ok(()) => written.push(write),
            Err(error) => {
                tokio::task::block_in_place(|| undo(cgroup, &written));
                return failed(ApplyError::KernelRefused(error));
            }
        }
    }
    if let Some(update) = engine_update(&observed, engine)
        && let Err(error) = client
            .post(&format!("/containers/{container_id}/update"), &update)
            .await
    {
        tokio::task::block_in_place(|| undo(cgroup, &written));
        return failed(match error {
            EngineError::Refused { message, .. } => ApplyError::EngineRefused(message),
            other => ApplyError::EngineUnreachable(other),
        });
    }
    Outcome::Applied { changed: attempted }
}

fn undo(cgroup: &Cgroup, written: &[&DeviceWrite]) {
    for write in written.iter().rev() {
        if let Err(error) = io::write_throttle(cgroup, write.device, write.throttle, write.before) {
            tracing::error!(cgroup = cgroup.path, %error, "could not restore a device limit");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::model::Wanted;

    fn drifted(resource: Resource, value: Value) -> Observed {
        Observed {
            wanted: Wanted {
                resource,
                value,
                rule: 0,
                device: None,
                default: false,
            },
            current: Some(Value::Unlimited),
            in_place: false,
        }
    }

    fn in_place(resource: Resource, value: Value) -> Observed {
        Observed {
            in_place: true,
            ..drifted(resource, value)
        }
    }

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn memory_carries_a_swap_limit_the_engine_accepts() {
        let unset = EngineResources::default();
        let update = engine_update(
            &[drifted(Resource::Memory, Value::Bytes(512 * MIB))],
            &unset,
        )
        .unwrap();
        assert_eq!(update.memory, Some(512 * MIB as i64));
        assert_eq!(
            update.memory_swap,
            Some(-1),
            "unlimited swap stays unlimited"
        );

        let run_with_memory = EngineResources {
            memory: 64 * MIB as i64,
            memory_swap: 128 * MIB as i64,
            ..EngineResources::default()
        };
        let update = engine_update(
            &[drifted(Resource::Memory, Value::Bytes(512 * MIB))],
            &run_with_memory,
        )
        .unwrap();
        assert_eq!(
            update.memory_swap,
            Some(576 * MIB as i64),
            "keeps 64 MiB of swap"
        );

        let update = engine_update(
            &[
                drifted(Resource::Memory, Value::Bytes(512 * MIB)),
                in_place(Resource::MemorySwap, Value::Bytes(MIB * 1024)),
            ],
            &run_with_memory,
        )
        .unwrap();
        assert_eq!(
            update.memory_swap,
            Some(1024 * MIB as i64),
            "the declared swap"
        );
    }

    #[test]
    fn cpus_follow_the_form_the_container_uses() {
        let update = engine_update(
            &[drifted(Resource::Cpus, Value::Cpus(1.5))],
            &EngineResources::default(),
        )
        .unwrap();
        assert_eq!(update.nano_cpus, Some(1_500_000_000));
        assert_eq!(update.cpu_quota, None);

        let with_quota = EngineResources {
            cpu_period: 50_000,
            cpu_quota: 25_000,
            ..EngineResources::default()
        };
        let update =
            engine_update(&[drifted(Resource::Cpus, Value::Cpus(1.5))], &with_quota).unwrap();
        assert_eq!(update.nano_cpus, None);
        assert_eq!(
            (update.cpu_period, update.cpu_quota),
            (Some(50_000), Some(75_000))
        );
    }

    #[test]
    fn only_drifted_engine_limits_make_an_update() {
        let engine = EngineResources::default();
        assert!(
            engine_update(&[in_place(Resource::PidsLimit, Value::Count(50))], &engine).is_none()
        );
        let device = Resource::Device(Throttle::WriteBps, "/dev/sda".to_owned());
        assert!(engine_update(&[drifted(device, Value::Rate(MIB))], &engine).is_none());
        let update = engine_update(
            &[
                drifted(Resource::PidsLimit, Value::Unlimited),
                drifted(Resource::CpusetCpus, Value::List("0-1".to_owned())),
            ],
            &engine,
        )
        .unwrap();
        assert_eq!(update.pids_limit, Some(-1));
        assert_eq!(update.cpuset_cpus.as_deref(), Some("0-1"));
        assert_eq!(update.memory, None);
    }
}
