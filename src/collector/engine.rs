//! The engine-sourced families, `docker_*`: engine reachability and facts, container
//! counts per state, event counters, and each container's state, exit code, restarts,
//! OOM flag and health, from the live inventory.

use std::collections::BTreeMap;

use super::{Collector, Read, ScrapeContext};
use crate::cgroup::FileError;
use crate::metrics::{Desc, Exposition, counter, gauge};

pub static COLLECTOR: Collector = Collector {
    name: "engine",
    help: "Engine-sourced docker_* families: engine info, container states, exit codes, restarts, health, events",
    enabled_by_default: true,
    families: &[
        &UP,
        &ENGINE_INFO,
        &CONTAINERS,
        &EVENTS,
        &CONTAINER_INFO,
        &CONTAINER_STATE,
        &EXIT_CODE,
        &RESTART_COUNT,
        &OOM_KILLED,
        &HEALTH_STATUS,
        &HEALTH_FAILING_STREAK,
        &CREATED,
        &STARTED_AT,
        &FINISHED_AT,
    ],
    read: Read::PerScrape(collect),
};

static UP: Desc = gauge(
    "docker_up",
    "Whether the Docker Engine answered (1) or not (0).",
);
static ENGINE_INFO: Desc = gauge(
    "docker_engine_info",
    "Facts about the Docker Engine; the value is always 1.",
);
static CONTAINERS: Desc = gauge("docker_containers", "Number of containers in each state.");
static EVENTS: Desc = counter(
    "docker_events_total",
    "Engine events seen since the exporter started, by type and action.",
);
static CONTAINER_INFO: Desc = gauge(
    "docker_container_info",
    "Facts about a container; the value is always 1.",
);
static CONTAINER_STATE: Desc = gauge(
    "docker_container_state",
    "The container's current state (label state); the value is always 1.",
);
static EXIT_CODE: Desc = gauge(
    "docker_container_exit_code",
    "Exit code of the container's last run.",
);
static RESTART_COUNT: Desc = gauge(
    "docker_container_restart_count",
    "Times the engine restarted the container (its restart policy).",
);
static OOM_KILLED: Desc = gauge(
    "docker_container_oom_killed",
    "Whether the container's last run ended in an OOM kill (engine's state).",
);
static HEALTH_STATUS: Desc = gauge(
    "docker_container_health_status",
    "The container's health (label status); the value is always 1.",
);
static HEALTH_FAILING_STREAK: Desc = gauge(
    "docker_container_health_failing_streak",
    "Consecutive failed health checks.",
);
static CREATED: Desc = gauge(
    "docker_container_created_seconds",
    "When the container was created, in seconds since the epoch.",
);
static STARTED_AT: Desc = gauge(
    "docker_container_started_at_seconds",
    "When the container last started, in seconds since the epoch.",
);
static FINISHED_AT: Desc = gauge(
    "docker_container_finished_at_seconds",
    "When the container last stopped, in seconds since the epoch.",
);

/// The states the engine knows; each is reported, with 0 when no container is in it, so
/// that alert rules on a state find a series.
pub const STATES: [&str; 7] = [
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

fn collect(context: &ScrapeContext, exposition: &mut Exposition) -> Result<(), FileError> {
    let snapshot = context.snapshot;
    exposition.push(&UP, None, Vec::new(), snapshot.up);
    if let Some(engine) = &snapshot.engine {
        let labels = vec![
            ("version", engine.version.clone().into()),
            ("api_version", engine.api_version.clone().into()),
            ("os", engine.os.clone().into()),
            ("kernel", engine.kernel.clone().into()),
            ("cgroup_driver", engine.cgroup_driver.clone().into()),
            ("cgroup_version", engine.cgroup_version.clone().into()),
            ("storage_driver", engine.storage_driver.clone().into()),
        ];
        exposition.push(&ENGINE_INFO, None, labels, 1u64);
        let mut per_state: BTreeMap<&str, u64> = STATES.iter().map(|state| (*state, 0)).collect();
        for tracked in &snapshot.containers {
            *per_state
                .entry(tracked.container.state.as_str())
                .or_default() += 1;
        }
        for (state, count) in per_state {
            exposition.push(
                &CONTAINERS,
                None,
                vec![("state", state.to_owned().into())],
                count,
            );
        }
    }
    for ((kind, action), count) in &snapshot.events {
        let labels = vec![
            ("type", kind.clone().into()),
            ("action", action.clone().into()),
        ];
        exposition.push(&EVENTS, None, labels, *count);
    }
    for (index, target) in context.targets.iter().enumerate() {
        let Some(container) = target.container() else {
            continue;
        };
        let target = Some(index);
        let info_labels = vec![
            ("image_id", container.image_id.clone().into()),
            (
                "compose_project",
                container.compose_project().to_owned().into(),
            ),
            (
                "compose_service",
                container.compose_service().to_owned().into(),
            ),
        ];
        exposition.push(&CONTAINER_INFO, target, info_labels, 1u64);
        let state = vec![("state", container.state.clone().into())];
        exposition.push(&CONTAINER_STATE, target, state, 1u64);
        exposition.push(&EXIT_CODE, target, Vec::new(), container.exit_code);
        exposition.push(&RESTART_COUNT, target, Vec::new(), container.restart_count);
        exposition.push(&OOM_KILLED, target, Vec::new(), container.oom_killed);
        if let Some(health) = &container.health {
            let status = vec![("status", health.status.clone().into())];
            exposition.push(&HEALTH_STATUS, target, status, 1u64);
            exposition.push(
                &HEALTH_FAILING_STREAK,
                target,
                Vec::new(),
                health.failing_streak,
            );
        }
        for (desc, seconds) in [
            (&CREATED, container.created_seconds),
            (&STARTED_AT, container.started_at_seconds),
            (&FINISHED_AT, container.finished_at_seconds),
        ] {
            if let Some(seconds) = seconds {
                exposition.push(desc, target, Vec::new(), seconds);
            }
        }
    }
    Ok(())
}
