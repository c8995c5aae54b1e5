//! stevedore: a Prometheus exporter and limit enforcer for Docker containers.
//!
//! Map of the crate, following the data from the kernel and the engine to `/metrics`:
//! - `file`: reading the kernel's files — missing is "no data", every error names its file;
//! - `cgroup`: the kernel's cgroup files — hierarchy layout, container cgroup paths,
//!   readers that return typed usage and limits, and the pure parsers under them;
//! - `host`: the kernel's other files — memory, CPUs, network namespaces, processes;
//! - `devices`: block device names for per-device metrics;
//! - `disk`: containers' writable layers walked in the background for `container_fs_*`;
//! - `docker`: the engine — container model, event stream, live inventory and its sync;
//! - `target`: the one join of engine facts and kernel files — each container's (or raw
//!   cgroup's, or the root's) cgroup path, network namespace, writable layer and labels;
//! - `collector`: the registry of every metric family, one file per group of families;
//! - `metrics`: the families of one scrape and their encoding;
//! - `policy`: limit policies — the file, checks, drift, applying, reloads;
//! - `recommend`: limits recommended from the history Prometheus kept, as a policy;
//! - `duration`: durations as Prometheus writes them, for flags and queries;
//! - `scrape`: one collection over all targets, shared by concurrent scrapes;
//! - `server`: the HTTP endpoints;
//! - `cli`, `logging`, `app`: flags, logs, and wiring.

pub mod app;
pub mod cgroup;
pub mod cli;
pub mod collector;
pub mod devices;
pub mod disk;
pub mod docker;
pub mod duration;
pub mod file;
pub mod host;
pub mod logging;
pub mod metrics;
pub mod policy;
pub mod recommend;
pub mod scrape;
pub mod server;
pub mod target;
pub mod web;
