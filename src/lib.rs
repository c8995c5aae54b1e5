//! stevedore: a Prometheus exporter and limit enforcer for Docker containers.
//!
//! Map of the crate, following the data from the kernel and the engine to `/metrics`:
//! - `cgroup`: the kernel's cgroup files — hierarchy layout, container cgroup paths,
//!   readers that return typed usage and limits, and the pure parsers under them;
//! - `devices`: block device names for per-device metrics;
//! - `docker`: the engine — container model, event stream, live inventory and its sync;
//! - `collector`: per-cgroup collectors that turn readings into metric families;
//! - `engine_metrics`: the engine-sourced `docker_*` families;
//! - `process`: the exporter's own `process_*` metrics;
//! - `metrics`: the families of one scrape and their encoding;
//! - `policy`: limit policies — the file, checks, drift, applying, reloads;
//! - `scrape`: one collection over all targets, shared by concurrent scrapes;
//! - `server`: the HTTP endpoints;
//! - `cli`, `logging`, `app`: flags, logs, and wiring.

pub mod app;
pub mod cgroup;
pub mod cli;
pub mod collector;
pub mod devices;
pub mod docker;
pub mod engine_metrics;
pub mod logging;
pub mod metrics;
pub mod policy;
pub mod process;
pub mod scrape;
pub mod server;
