//! A container as the engine describes it (from `GET /containers/{id}/json`), reduced to
//! what the exporter reports and needs to find its cgroup.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::api::ContainerInspect;

pub const COMPOSE_PROJECT_LABEL: &str = "com.docker.compose.project";
pub const COMPOSE_SERVICE_LABEL: &str = "com.docker.compose.service";

#[derive(Debug, Clone, PartialEq)]
pub struct Container {
    pub id: String,
    /// Without the leading `/` the engine puts on names.
    pub name: String,
    /// The image as the container was created with it (`Config.Image`).
    pub image: String,
    pub image_id: String,
    pub labels: BTreeMap<String, String>,
    /// Environment variables named by `--docker.env-allowlist`; no other variable is kept,
    /// so secrets in the environment never reach the exporter's memory past the inspect.
    pub env: BTreeMap<String, String>,
    /// `HostConfig.NetworkMode`: `bridge`, a network name, `host`, `none`, `container:<id>`.
    pub network_mode: String,
    /// The container's writable layer as the storage driver reports it (`GraphDriver.Data.UpperDir`
    /// of overlay2 and fuse-overlayfs); `None` for drivers without one.
    pub writable_layer: Option<PathBuf>,
    /// `created`, `running`, `paused`, `restarting`, `removing`, `exited`, `dead`.
    pub state: String,
    /// The main process, while running.
    pub pid: Option<u32>,
    pub cgroup_parent: String,
    pub created_seconds: Option<f64>,
    pub started_at_seconds: Option<f64>,
    pub finished_at_seconds: Option<f64>,
    pub exit_code: i64,
    pub restart_count: i64,
    pub oom_killed: bool,
    pub health: Option<Health>,
    /// The limits in the engine's configuration that constrain how others may be updated.
    pub resources: EngineResources,
}

/// Limits as the engine holds them (`HostConfig`): 0 means "not set".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineResources {
    pub memory: i64,
    /// Memory plus swap; -1 is unlimited swap.
    pub memory_swap: i64,
    pub nano_cpus: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// `starting`, `healthy`, `unhealthy`.
    pub status: String,
    pub failing_streak: i64,
}

impl Container {
    /// The engine's description, keeping of the environment only the variables whose name
    /// matches one of `env_allowlist`'s glob patterns.
    pub fn from_inspect(
        inspect: ContainerInspect,
        env_allowlist: &[glob::Pattern],
    ) -> Option<Container> {
        let id = inspect.id?;
        let state = inspect.state.unwrap_or_default();
        let config = inspect.config.unwrap_or_default();
        let host_config = inspect.host_config.unwrap_or_default();
        let status = state.status.unwrap_or_default();
        let running = state.running.unwrap_or(false);
        Some(Container {
            name: inspect
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_owned(),
            image: config.image.unwrap_or_default(),
            image_id: inspect.image.unwrap_or_default(),
            labels: config.labels.unwrap_or_default().into_iter().collect(),
            env: allowed_env(config.env.as_deref().unwrap_or_default(), env_allowlist),
            network_mode: host_config.network_mode.clone().unwrap_or_default(),
            writable_layer: inspect
                .graph_driver
                .as_ref()
                .and_then(|driver| driver.data.as_ref()?.get("UpperDir"))
                .filter(|dir| !dir.is_empty())
                .map(PathBuf::from),
            state: status,
            pid: state
                .pid
                .filter(|pid| running && *pid > 0)
                .and_then(|pid| u32::try_from(pid).ok()),
            resources: EngineResources {
                memory: host_config.memory.unwrap_or(0),
                memory_swap: host_config.memory_swap.unwrap_or(0),
                nano_cpus: host_config.nano_cpus.unwrap_or(0),
                cpu_period: host_config.cpu_period.unwrap_or(0),
                cpu_quota: host_config.cpu_quota.unwrap_or(0),
            },
            cgroup_parent: host_config.cgroup_parent.unwrap_or_default(),
            created_seconds: inspect.created.as_deref().and_then(timestamp_seconds),
            started_at_seconds: state.started_at.as_deref().and_then(timestamp_seconds),
            finished_at_seconds: state.finished_at.as_deref().and_then(timestamp_seconds),
            exit_code: state.exit_code.unwrap_or(0),
            restart_count: inspect.restart_count.unwrap_or(0),
            oom_killed: state.oom_killed.unwrap_or(false),
            health: state.health.and_then(|health| {
                let status = health.status?;
                (!status.is_empty() && status != "none").then(|| Health {
                    status,
                    failing_streak: health.failing_streak.unwrap_or(0),
                })
            }),
            id,
        })
    }

    pub fn is_running(&self) -> bool {
        self.pid.is_some()
    }

    pub fn compose_project(&self) -> &str {
        self.labels
            .get(COMPOSE_PROJECT_LABEL)
            .map_or("", String::as_str)
    }

    pub fn compose_service(&self) -> &str {
        self.labels
            .get(COMPOSE_SERVICE_LABEL)
            .map_or("", String::as_str)
    }
}

#[cfg(test)]
impl Container {
    /// A running container named `web`, of image `busybox`, with nothing else set: tests
    /// change what they look at.
    pub fn running(id: &str) -> Container {
        Container {
            id: id.to_owned(),
            name: "web".to_owned(),
            image: "busybox".to_owned(),
            image_id: String::new(),
            labels: BTreeMap::new(),
            env: BTreeMap::new(),
            network_mode: "bridge".to_owned(),
            writable_layer: None,
            state: "running".to_owned(),
            pid: Some(1),
            cgroup_parent: String::new(),
            created_seconds: None,
            started_at_seconds: None,
            finished_at_seconds: None,
            exit_code: 0,
            restart_count: 0,
            oom_killed: false,
            health: None,
            resources: EngineResources::default(),
        }
    }
}

/// `KEY=value` entries whose key matches a pattern; the rest are dropped unread.
fn allowed_env(env: &[String], allowlist: &[glob::Pattern]) -> BTreeMap<String, String> {
    if allowlist.is_empty() {
        return BTreeMap::new();
    }
    env.iter()
        .filter_map(|entry| entry.split_once('='))
        .filter(|(key, _)| allowlist.iter().any(|pattern| pattern.matches(key)))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

/// An engine timestamp (RFC 3339 with nanoseconds) in seconds since the epoch. The engine
/// writes `0001-01-01T00:00:00Z` for "never"; that is `None`.
pub fn timestamp_seconds(text: &str) -> Option<f64> {
    let time = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    let seconds = time.timestamp();
    (seconds > 0).then(|| seconds as f64 + f64::from(time.timestamp_subsec_nanos()) * 1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn timestamps_and_never() {
        assert_eq!(
            timestamp_seconds("2023-11-14T22:13:20.5Z"),
            Some(1_700_000_000.5)
        );
        assert_eq!(timestamp_seconds("0001-01-01T00:00:00Z"), None);
        assert_eq!(timestamp_seconds(""), None);
    }

    #[test]
    fn from_inspect_json() {
        let inspect: ContainerInspect = serde_json::from_str(
            r#"{"Id":"abc","Name":"/web","Image":"sha256:1234","Created":"2023-11-14T22:13:20Z",
                "RestartCount":2,
                "State":{"Status":"running","Running":true,"Pid":42,"ExitCode":0,"OOMKilled":false,
                         "StartedAt":"2023-11-14T22:13:21Z","FinishedAt":"0001-01-01T00:00:00Z",
                         "Health":{"Status":"unhealthy","FailingStreak":3}},
                "Config":{"Image":"busybox:latest","Labels":{"com.docker.compose.project":"shop"},
                          "Env":["PATH=/bin","APP_TIER=web","APP_SECRET_TOKEN=x","DB_PASSWORD=y"]},
                "GraphDriver":{"Name":"overlay2","Data":{"LowerDir":"/l","UpperDir":"/var/lib/docker/overlay2/f00/diff"}},
                "HostConfig":{"CgroupParent":"/batch","NetworkMode":"container:abc","Memory":67108864,"MemorySwap":134217728,"NanoCpus":500000000}}"#,
        )
        .unwrap();
        let allowlist = [glob::Pattern::new("APP_T*").unwrap()];
        let container = Container::from_inspect(inspect, &allowlist).unwrap();
        assert_eq!(
            container.env.clone().into_iter().collect::<Vec<_>>(),
            [("APP_TIER".to_owned(), "web".to_owned())],
            "only allow-listed variables are kept"
        );
        assert_eq!(container.network_mode, "container:abc");
        assert_eq!(
            container.writable_layer,
            Some(PathBuf::from("/var/lib/docker/overlay2/f00/diff"))
        );
        assert_eq!(container.name, "web");
        assert_eq!(container.image, "busybox:latest");
        assert_eq!(container.image_id, "sha256:1234");
        assert_eq!(container.state, "running");
        assert_eq!(container.pid, Some(42));
        assert_eq!(container.cgroup_parent, "/batch");
        assert_eq!(container.restart_count, 2);
        assert_eq!(
            container.resources,
            EngineResources {
                memory: 67108864,
                memory_swap: 134217728,
                nano_cpus: 500000000,
                cpu_period: 0,
                cpu_quota: 0
            }
        );
        assert_eq!(container.started_at_seconds, Some(1_700_000_001.0));
        assert_eq!(container.finished_at_seconds, None);
        assert_eq!(container.compose_project(), "shop");
        assert_eq!(container.compose_service(), "");
        let health = container.health.unwrap();
        assert_eq!(
            (health.status.as_str(), health.failing_streak),
            ("unhealthy", 3)
        );
    }

    proptest! {
        #[test]
        fn timestamps_never_panic_and_are_after_the_epoch(text in "\\PC*") {
            if let Some(seconds) = timestamp_seconds(&text) {
                prop_assert!(seconds > 0.0);
            }
        }
    }
}
