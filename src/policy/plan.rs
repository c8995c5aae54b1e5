//! `stevedore policy plan`: for each container the policy selects, its current limits and
//! the wanted ones, without changing anything.

use std::fmt::Write;

use super::drift;
use super::model::{ContainerFacts, Policy};
use crate::cgroup::{Cgroup, Hierarchy};
use crate::target::Target;

/// `containers`: the inventory's containers as targets (`Resolver::containers`).
pub fn render(policy: &Policy, containers: &[Target], hierarchy: &Hierarchy) -> String {
    let mut out = String::new();
    let mut containers: Vec<(&Target, &crate::docker::container::Container)> = containers
        .iter()
        .filter_map(|target| Some((target, target.container()?)))
        .collect();
    containers.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    let (mut changes, mut in_place, mut stopped, mut unselected) = (0, 0, 0, 0);
    let mut loosened = 0;
    for (target, container) in containers {
        let Some(wanted) = policy.wanted_for(&ContainerFacts::from(container)) else {
            unselected += 1;
            continue;
        };
        let short_id: String = container.id.chars().take(12).collect();
        let _ = writeln!(
            out,
            "{} ({short_id}), rules: {}",
            container.name,
            policy.rule_names(&wanted).join(", ")
        );
        // Only a running container has a cgroup.
        let Some(path) = target.cgroup.as_deref() else {
            stopped += 1;
            let _ = writeln!(out, "  not running; these limits apply when it starts:");
            for item in &wanted {
                let _ = writeln!(
                    out,
                    "  {:<30} {}  [{}]",
                    item.resource.to_string(),
                    item.value,
                    policy.rule_name(item.rule)
                );
            }
            continue;
        };
        match drift::observe(&Cgroup::new(hierarchy, path), &wanted) {
            Ok(observed) => {
                if !observed.iter().any(|item| item.needs_change()) {
                    in_place += 1;
                } else {
                    changes += 1;
                }
                for item in observed {
                    let rule = policy.rule_name(item.wanted.rule);
                    let resource = item.wanted.resource.to_string();
                    let line = match (&item.current, item.in_place) {
                        (Some(current), true) if item.wanted.default => {
                            format!(
                                "{current} (kept; the default {} is for containers without one)",
                                item.wanted.value
                            )
                        }
                        (_, true) => format!("{} (in place)", item.wanted.value),
                        (Some(current), false) if item.loosens() => {
                            loosened += 1;
                            format!("{current} -> {} (LOOSENS)", item.wanted.value)
                        }
                        (Some(current), false) => format!("{current} -> {}", item.wanted.value),
                        (None, false) => {
                            format!("{} (this kernel has no file for it)", item.wanted.value)
                        }
                    };
                    let _ = writeln!(out, "  {resource:<30} {line}  [{rule}]");
                }
            }
            Err(error) => {
                let _ = writeln!(out, "  cannot read its current limits: {error}");
            }
        }
    }
    let _ = writeln!(
        out,
        "\n{} selected: {changes} to change, {in_place} already in place, {stopped} not running; \
         {unselected} not selected by any rule (left alone). Nothing was applied.",
        changes + in_place + stopped
    );
    if loosened > 0 {
        let _ = writeln!(
            out,
            "{loosened} limit(s) marked LOOSENS would grant a container more than it has now \
             (a higher limit, or none); a limit meant only for containers without one belongs \
             under `defaults:`."
        );
    }
    out
}
