//! `/api/v1/containers`: every container of one collection as JSON, each resource's use
//! beside its limit, read from the same samples `/metrics` encodes (so the two never
//! disagree). A pure function of an exposition.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::metrics::{Exposition, Sample};

/// The document the page polls.
#[derive(Debug, Serialize, PartialEq)]
pub struct ContainersDocument {
    /// When the collection was made, in seconds since the epoch.
    pub timestamp: f64,
    pub docker_up: bool,
    pub containers: Vec<ContainerView>,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct ContainerView {
    /// The cgroup path (`id` on `/metrics`).
    pub id: String,
    pub name: String,
    pub image: String,
    pub state: Option<String>,
    /// `healthy`, `unhealthy` or `starting`; absent without a health check.
    pub health: Option<String>,
    pub exit_code: Option<i64>,
    pub restarts: Option<u64>,
    pub oom_killed: Option<bool>,
    pub started_at: Option<f64>,
    pub finished_at: Option<f64>,
    pub cpu: CpuView,
    pub memory: MemoryView,
    pub pids: PidsView,
    pub blkio: BlkioView,
    /// Resources where the container differs from the policy.
    pub drift: Vec<String>,
}

/// Limits are `None` where the container has none.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct CpuView {
    /// Cumulative; the page turns two readings into cores.
    pub usage_seconds: Option<f64>,
    pub limit_cores: Option<f64>,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct MemoryView {
    pub working_set_bytes: Option<f64>,
    pub limit_bytes: Option<f64>,
    pub reservation_bytes: Option<f64>,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct PidsView {
    pub current: Option<f64>,
    pub limit: Option<f64>,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct BlkioView {
    /// Cumulative, over every device.
    pub read_bytes: Option<f64>,
    pub write_bytes: Option<f64>,
    pub limits: Vec<DeviceLimit>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct DeviceLimit {
    pub device: String,
    /// `read_bytes`, `write_bytes`, `read_iops` or `write_iops`, per second.
    pub kind: &'static str,
    pub value: f64,
}

/// The device limit families, and what each limits.
const DEVICE_LIMITS: [(&str, &str); 4] = [
    ("container_spec_blkio_device_read_bytes_limit", "read_bytes"),
    (
        "container_spec_blkio_device_write_bytes_limit",
        "write_bytes",
    ),
    ("container_spec_blkio_device_read_iops_limit", "read_iops"),
    ("container_spec_blkio_device_write_iops_limit", "write_iops"),
];

fn label<'a>(sample: &'a Sample, key: &str) -> Option<&'a str> {
    sample
        .labels()
        .iter()
        .find(|(name, _)| *name == key)
        .map(|(_, value)| value.as_ref())
}

/// A limit of 0 is how the families say "none" (as cAdvisor's do).
fn limit(value: Option<f64>) -> Option<f64> {
    value.filter(|value| *value > 0.0)
}

/// Every container target of the exposition (raw cgroups and the root are left out).
pub fn containers(exposition: &Exposition, timestamp: f64) -> ContainersDocument {
    let mut views: BTreeMap<u32, ContainerView> = BTreeMap::new();
    for (index, labels) in exposition.targets.iter().enumerate() {
        let get = |key: &str| {
            labels
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.clone())
        };
        let Some(name) = get("name") else {
            continue;
        };
        views.insert(
            u32::try_from(index).expect("fewer than 2^32 targets"),
            ContainerView {
                id: get("id").unwrap_or_default(),
                name,
                image: get("image").unwrap_or_default(),
                ..ContainerView::default()
            },
        );
    }
    let mut docker_up = false;
    let mut cpu_quota: BTreeMap<u32, (f64, f64)> = BTreeMap::new();
    for (target, sample) in exposition.samples() {
        let value = sample.value.as_f64();
        let name = sample.desc.name;
        if name == "docker_up" {
            docker_up = value == 1.0;
            continue;
        }
        let Some(view) = target.and_then(|target| views.get_mut(&target)) else {
            continue;
        };
        let add = |total: &mut Option<f64>| *total = Some(total.unwrap_or(0.0) + value);
        match name {
            "docker_container_state" => view.state = label(sample, "state").map(str::to_owned),
            "docker_container_health_status" => {
                view.health = label(sample, "status").map(str::to_owned);
            }
            "docker_container_exit_code" => view.exit_code = Some(value as i64),
            "docker_container_restart_count" => view.restarts = Some(value as u64),
            "docker_container_oom_killed" => view.oom_killed = Some(value == 1.0),
            "docker_container_started_at_seconds" => view.started_at = Some(value),
            "docker_container_finished_at_seconds" => view.finished_at = Some(value),
            "container_cpu_usage_seconds_total" if label(sample, "cpu") == Some("total") => {
                view.cpu.usage_seconds = Some(value);
            }
            "container_spec_cpu_quota" => {
                cpu_quota.entry(target.unwrap_or_default()).or_default().0 = value;
            }
            "container_spec_cpu_period" => {
                cpu_quota.entry(target.unwrap_or_default()).or_default().1 = value;
            }
            "container_memory_working_set_bytes" => view.memory.working_set_bytes = Some(value),
            "container_spec_memory_limit_bytes" => view.memory.limit_bytes = limit(Some(value)),
            "container_spec_memory_reservation_limit_bytes" => {
                view.memory.reservation_bytes = limit(Some(value));
            }
            "container_pids_current" => view.pids.current = Some(value),
            "container_spec_pids_limit" => view.pids.limit = limit(Some(value)),
            "container_fs_reads_bytes_total" => add(&mut view.blkio.read_bytes),
            "container_fs_writes_bytes_total" => add(&mut view.blkio.write_bytes),
            "stevedore_policy_drift" if value == 1.0 => {
                if let Some(resource) = label(sample, "resource") {
                    view.drift.push(resource.to_owned());
                }
            }
            device_family => {
                if let Some((_, kind)) = DEVICE_LIMITS
                    .iter()
                    .find(|(family, _)| *family == device_family)
                    && value > 0.0
                {
                    view.blkio.limits.push(DeviceLimit {
                        device: label(sample, "device").unwrap_or_default().to_owned(),
                        kind,
                        value,
                    });
                }
            }
        }
    }
    for (target, (quota, period)) in cpu_quota {
        if let Some(view) = views.get_mut(&target)
            && quota > 0.0
            && period > 0.0
        {
            view.cpu.limit_cores = Some(quota / period);
        }
    }
    ContainersDocument {
        timestamp,
        docker_up,
        containers: views.into_values().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Desc, LabelSet, counter, gauge};

    static UP: Desc = gauge("docker_up", "");
    static STATE: Desc = gauge("docker_container_state", "");
    static CPU: Desc = counter("container_cpu_usage_seconds_total", "");
    static QUOTA: Desc = gauge("container_spec_cpu_quota", "");
    static PERIOD: Desc = gauge("container_spec_cpu_period", "");
    static WORKING_SET: Desc = gauge("container_memory_working_set_bytes", "");
    static MEMORY_LIMIT: Desc = gauge("container_spec_memory_limit_bytes", "");
    static PIDS_LIMIT: Desc = gauge("container_spec_pids_limit", "");
    static READS: Desc = counter("container_fs_reads_bytes_total", "");
    static WRITE_LIMIT: Desc = gauge("container_spec_blkio_device_write_bytes_limit", "");
    static DRIFT: Desc = gauge("stevedore_policy_drift", "");

    fn target(pairs: &[(&str, &str)]) -> crate::metrics::TargetLabels {
        LabelSet::new(
            pairs
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
        )
    }

    #[test]
    fn each_container_gets_its_use_beside_its_limits_and_raw_cgroups_are_left_out() {
        let mut exposition = Exposition::default();
        exposition.push(&UP, None, Vec::new(), 1u64);
        let web = exposition.add_target(target(&[
            ("id", "/docker/abc"),
            ("name", "web"),
            ("image", "nginx"),
        ]));
        let raw = exposition.add_target(target(&[("id", "/system.slice/cron.service")]));
        exposition.push(&STATE, Some(web), vec![("state", "running".into())], 1u64);
        exposition.push(&CPU, Some(web), vec![("cpu", "total".into())], 12.5);
        exposition.push(&QUOTA, Some(web), Vec::new(), 50_000u64);
        exposition.push(&PERIOD, Some(web), Vec::new(), 100_000u64);
        exposition.push(&WORKING_SET, Some(web), Vec::new(), 1024u64);
        exposition.push(&MEMORY_LIMIT, Some(web), Vec::new(), 4096u64);
        // No pids limit: 0.
        exposition.push(&PIDS_LIMIT, Some(web), Vec::new(), 0u64);
        for device in ["sda", "sdb"] {
            exposition.push(&READS, Some(web), vec![("device", device.into())], 100u64);
        }
        exposition.push(
            &WRITE_LIMIT,
            Some(web),
            vec![("device", "sda".into())],
            1_048_576u64,
        );
        exposition.push(&DRIFT, Some(web), vec![("resource", "memory".into())], 1u64);
        exposition.push(&DRIFT, Some(web), vec![("resource", "cpus".into())], 0u64);
        exposition.push(&WORKING_SET, Some(raw), Vec::new(), 7u64);

        let document = containers(&exposition, 1000.0);
        assert!(document.docker_up);
        assert_eq!(document.containers.len(), 1, "{document:#?}");
        let web = &document.containers[0];
        assert_eq!(web.name, "web");
        assert_eq!(web.state.as_deref(), Some("running"));
        assert_eq!(web.cpu.usage_seconds, Some(12.5));
        assert_eq!(web.cpu.limit_cores, Some(0.5));
        assert_eq!(web.memory.working_set_bytes, Some(1024.0));
        assert_eq!(web.memory.limit_bytes, Some(4096.0));
        assert_eq!(web.pids.limit, None);
        assert_eq!(web.blkio.read_bytes, Some(200.0));
        assert_eq!(
            web.blkio.limits,
            vec![DeviceLimit {
                device: "sda".to_owned(),
                kind: "write_bytes",
                value: 1_048_576.0
            }]
        );
        assert_eq!(web.drift, vec!["memory".to_owned()]);
    }
}
