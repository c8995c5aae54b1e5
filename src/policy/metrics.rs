//! The `stevedore_policy_*` families: the active policy, its reloads, its applications,
//! and, per selected running container and declared limit, whether it is in place.

use crate::cgroup::{Cgroup, Hierarchy};
use crate::metrics::{Desc, Exposition, counter, gauge};
use crate::target::Target;

use super::drift;
use super::model::ContainerFacts;
use super::state::PolicyState;

static RULES: Desc = gauge("stevedore_policy_rules", "Rules in the active policy.");
static RELOAD_SUCCESS: Desc = gauge(
    "stevedore_policy_reload_success",
    "Whether the last (re)load of the policy file succeeded (1) or was refused (0).",
);
static LAST_RELOAD: Desc = gauge(
    "stevedore_policy_last_reload_timestamp_seconds",
    "When the active policy was loaded, in seconds since the epoch.",
);
static APPLIED: Desc = counter(
    "stevedore_policy_applied_total",
    "Applications of a rule's limits to a container, by result (applied or failed).",
);
static DRIFT: Desc = gauge(
    "stevedore_policy_drift",
    "1 where a running container's limit differs from what the policy wants, 0 where it matches.",
);

pub static FAMILIES: [&Desc; 5] = [&RULES, &RELOAD_SUCCESS, &LAST_RELOAD, &APPLIED, &DRIFT];

/// Reads the declared limits of every selected running container: a few small cgroup
/// files each, only for resources a rule declares.
pub fn collect(
    state: &PolicyState,
    targets: &[Target],
    hierarchy: &Hierarchy,
    exposition: &mut Exposition,
) {
    let policy = state.policy();
    let status = state.reload_status();
    exposition.push(&RULES, None, Vec::new(), policy.rules.len() as u64);
    exposition.push(&RELOAD_SUCCESS, None, Vec::new(), status.success);
    exposition.push(&LAST_RELOAD, None, Vec::new(), status.last_success_seconds);
    for ((rule, result), count) in state.applied() {
        let labels = vec![("rule", rule.into()), ("result", result.into())];
        exposition.push(&APPLIED, None, labels, count);
    }
    for target in targets {
        let (Some(container), Some(path)) = (target.container(), &target.cgroup) else {
            continue;
        };
        let Some(wanted) = policy.wanted_for(&ContainerFacts::from(container)) else {
            continue;
        };
        let cgroup = Cgroup::new(hierarchy, path);
        let observed = match drift::observe(&cgroup, &wanted) {
            Ok(observed) => observed,
            Err(error) => {
                tracing::error!(container = %container.name, %error, "cannot read limits for the policy drift");
                continue;
            }
        };
        for item in observed.iter().filter(|item| item.current.is_some()) {
            let labels = vec![
                ("id", path.clone().into()),
                ("name", container.name.clone().into()),
                ("resource", item.wanted.resource.to_string().into()),
            ];
            exposition.push(&DRIFT, None, labels, !item.in_place);
        }
    }
}
