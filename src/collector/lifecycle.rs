//! `container_last_seen`, `container_start_time_seconds`, `container_creation_time_seconds`
//! and `container_health_state`: when a target was seen, started and created, and whether
//! its health check passes.

use super::{Collector, Read, TargetContext};
use crate::cgroup::FileError;
use crate::metrics::{Desc, TargetSamples, gauge};

pub static COLLECTOR: Collector = Collector {
    name: "lifecycle",
    help: "When each container was seen, started and created, and its health (engine facts)",
    enabled_by_default: true,
    families: &[&LAST_SEEN, &START_TIME, &CREATION_TIME, &HEALTH_STATE],
    read: Read::PerTarget(collect),
};

static LAST_SEEN: Desc = gauge(
    "container_last_seen",
    "Last time the container was seen by the exporter, in seconds since the epoch.",
);
static START_TIME: Desc = gauge(
    "container_start_time_seconds",
    "When the container's current run started, in seconds since the epoch.",
);
static CREATION_TIME: Desc = gauge(
    "container_creation_time_seconds",
    "When the container was created, in seconds since the epoch.",
);
static HEALTH_STATE: Desc = gauge(
    "container_health_state",
    "Health of the container: 1 healthy, 0 starting or unhealthy, -1 no health check.",
);

fn collect(context: &TargetContext, out: &mut TargetSamples) -> Result<(), FileError> {
    out.add(&LAST_SEEN, context.scrape.now_seconds);
    let Some(container) = context.target.container() else {
        return Ok(());
    };
    out.add_some(&START_TIME, container.started_at_seconds);
    out.add_some(&CREATION_TIME, container.created_seconds);
    let health: i64 = match container
        .health
        .as_ref()
        .map(|health| health.status.as_str())
    {
        Some("healthy") => 1,
        Some(_) => 0,
        None => -1,
    };
    out.add(&HEALTH_STATE, health);
    Ok(())
}
