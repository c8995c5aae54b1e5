//! The kernel's files other than cgroups: procfs facts about the host (memory, CPUs), about
//! a network namespace (interface counters) and about processes (tasks, descriptors,
//! limits). Readers beside pure parsers, as in `cgroup/`.

pub mod cpuinfo;
pub mod meminfo;
pub mod netdev;
pub mod procs;
