//! `container_pids_current` and the task limit `container_spec_pids_limit`.

use super::{Collector, Read, TargetContext};
use crate::cgroup::{FileError, pids};
use crate::metrics::{Desc, TargetSamples, gauge};

pub static COLLECTOR: Collector = Collector {
    name: "pids",
    help: "Number of tasks and the task limit (pids)",
    enabled_by_default: true,
    families: &[&CURRENT, &LIMIT],
    read: Read::PerTarget(collect),
};

static CURRENT: Desc = gauge(
    "container_pids_current",
    "Number of tasks (processes and threads) in the cgroup.",
);
static LIMIT: Desc = gauge(
    "container_spec_pids_limit",
    "Maximum number of tasks (0: unlimited).",
);

fn collect(context: &TargetContext, out: &mut TargetSamples) -> Result<(), FileError> {
    let pids = pids::read(&context.cgroup)?;
    out.add_some(&CURRENT, pids.current);
    out.add_some(&LIMIT, pids.limit.map(|limit| limit.or_zero()));
    Ok(())
}
