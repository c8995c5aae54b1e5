//! Limit policies: a file of ordered rules that select containers and declare their limits;
//! checking it, planning it, and applying it (or reporting drift from it).
//!
//! - `document`: the YAML file into a `Policy`, with problems at line and column;
//! - `model`: rules, selectors, limits, and which limits a container gets;
//! - `check`: what the engine, the kernel or this host would refuse;
//! - `units`: Docker's size notation;
//! - `drift`: a container's current limits (from its cgroup) against the wanted ones;
//! - `apply`: changing them, through the engine and the cgroup files;
//! - `state`: the active policy, its reloads and its counters, shared with scrapes;
//! - `enforcer`: the task that reloads the file and applies the policy;
//! - `metrics`: the `stevedore_policy_*` families;
//! - `plan`: the `policy plan` report.

pub mod apply;
pub mod check;
pub mod document;
pub mod drift;
pub mod enforcer;
pub mod metrics;
pub mod model;
pub mod plan;
pub mod state;
pub mod units;

pub use model::Policy;
pub use state::{PolicyMode, PolicyState};
