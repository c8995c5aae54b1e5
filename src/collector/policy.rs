//! `stevedore_policy_*`: the limit policy's state and each selected container's drift
//! (read in `policy::metrics`).

use super::{Collector, Read, ScrapeContext};
use crate::cgroup::FileError;
use crate::metrics::Exposition;
use crate::policy::metrics as policy_metrics;

pub static COLLECTOR: Collector = Collector {
    name: "policy",
    help: "The limit policy: rules, reloads, applications, and drift per container and limit (with --policy.file)",
    enabled_by_default: true,
    families: &policy_metrics::FAMILIES,
    read: Read::PerScrape(collect),
};

fn collect(context: &ScrapeContext, out: &mut Exposition) -> Result<(), FileError> {
    if let Some(policy) = context.policy {
        policy_metrics::collect(policy, context.targets, context.hierarchy, out);
    }
    Ok(())
}
