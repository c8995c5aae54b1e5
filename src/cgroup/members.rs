//! The processes and threads in a cgroup (`cgroup.procs`, and v1 `tasks` / v2
//! `cgroup.threads`).

use super::parse::ParseError;
use super::{Cgroup, Controller, FileError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Members {
    Processes,
    Threads,
}

/// One id per line (cgroups(7)).
pub fn parse_ids(text: &str) -> Result<Vec<u32>, ParseError> {
    text.split_whitespace()
        .map(|id| {
            id.parse::<u32>()
                .map_err(|_| ParseError(format!("{id:?} is not a process id")))
        })
        .collect()
}

/// The ids in the cgroup itself (not its children), as this process's pid namespace numbers
/// them; `Ok(None)` when no tree has the file. On v1 every controller lists the same tasks:
/// the first controller mounted is read.
pub fn read(cgroup: &Cgroup, members: Members) -> Result<Option<Vec<u32>>, FileError> {
    if cgroup.is_unified() {
        let name = match members {
            Members::Processes => "cgroup.procs",
            Members::Threads => "cgroup.threads",
        };
        return cgroup.read_unified(name, parse_ids);
    }
    let name = match members {
        Members::Processes => "cgroup.procs",
        Members::Threads => "tasks",
    };
    for controller in [Controller::Pids, Controller::Cpu, Controller::Memory] {
        if let Some(ids) = cgroup.read(controller, name, parse_ids)? {
            return Ok(Some(ids));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn one_id_per_line() {
        assert_eq!(parse_ids("12\n345\n").unwrap(), [12, 345]);
        assert_eq!(parse_ids("").unwrap(), Vec::<u32>::new());
        assert!(parse_ids("12\nx\n").is_err());
    }

    proptest! {
        #[test]
        fn ids_round_trip(ids in proptest::collection::vec(any::<u32>(), 0..50)) {
            let text: String = ids.iter().map(|id| format!("{id}\n")).collect();
            prop_assert_eq!(parse_ids(&text).unwrap(), ids);
        }
    }
}
