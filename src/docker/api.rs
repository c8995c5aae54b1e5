//! The engine's JSON, as much of it as stevedore reads or sends. Every field is optional and
//! unknown fields are ignored, so the answers of engines from 20.10 to 29 decode alike, and
//! a field an engine drops or renames costs that field only.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// `GET /info`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Info {
    pub server_version: Option<String>,
    pub operating_system: Option<String>,
    pub kernel_version: Option<String>,
    pub cgroup_driver: Option<String>,
    pub cgroup_version: Option<String>,
    /// The storage driver.
    pub driver: Option<String>,
    /// The engine's clock, RFC 3339.
    pub system_time: Option<String>,
}

/// `GET /version`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Version {
    pub version: Option<String>,
    pub api_version: Option<String>,
}

/// One entry of `GET /containers/json`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ContainerSummary {
    pub id: Option<String>,
}

/// `GET /containers/{id}/json`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ContainerInspect {
    pub id: Option<String>,
    pub name: Option<String>,
    /// The image ID.
    pub image: Option<String>,
    pub created: Option<String>,
    pub restart_count: Option<i64>,
    pub config: Option<ContainerConfig>,
    pub host_config: Option<HostConfig>,
    pub graph_driver: Option<GraphDriver>,
    pub state: Option<ContainerState>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ContainerConfig {
    /// The image as the container was created with it.
    pub image: Option<String>,
    pub labels: Option<HashMap<String, String>>,
    pub env: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct HostConfig {
    pub network_mode: Option<String>,
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_period: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cgroup_parent: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct GraphDriver {
    pub data: Option<HashMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ContainerState {
    pub status: Option<String>,
    pub running: Option<bool>,
    pub pid: Option<i64>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub exit_code: Option<i64>,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: Option<bool>,
    pub health: Option<HealthState>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct HealthState {
    pub status: Option<String>,
    pub failing_streak: Option<i64>,
}

/// `POST /containers/{id}/update`: only the limits set are sent.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nano_cpus: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_period: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_quota: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpuset_cpus: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpuset_mems: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blkio_weight: Option<u16>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_missing_fields_and_unknown_fields_all_decode() {
        let inspect: ContainerInspect = serde_json::from_str(
            r#"{"Id":"abc","Name":"/web","Config":{"Labels":null,"Env":null,"Future":{"x":1}},
                "State":{"Status":"running","Running":true,"Pid":42,"OOMKilled":false,
                         "Health":{"Status":"unhealthy","FailingStreak":32,"Log":[]}},
                "HostConfig":{"Memory":0,"NanoCpus":500000000},"GraphDriver":null,
                "SomethingNew":[1,2,3]}"#,
        )
        .unwrap();
        assert_eq!(inspect.id.as_deref(), Some("abc"));
        let config = inspect.config.unwrap();
        assert!(config.labels.is_none() && config.env.is_none() && config.image.is_none());
        let state = inspect.state.unwrap();
        assert_eq!((state.pid, state.oom_killed), (Some(42), Some(false)));
        assert_eq!(state.health.unwrap().failing_streak, Some(32));
        assert_eq!(inspect.host_config.unwrap().nano_cpus, Some(500_000_000));
        assert!(inspect.graph_driver.is_none());
    }

    #[test]
    fn an_update_sends_only_what_is_set() {
        let update = ContainerUpdate {
            memory: Some(1 << 20),
            pids_limit: Some(-1),
            ..ContainerUpdate::default()
        };
        assert_eq!(
            serde_json::to_string(&update).unwrap(),
            r#"{"Memory":1048576,"PidsLimit":-1}"#
        );
    }
}
