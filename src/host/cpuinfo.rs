//! `/proc/cpuinfo`: how many logical CPUs, physical cores and sockets the host has, as
//! cAdvisor counts them.

use std::collections::BTreeSet;
use std::path::Path;

use crate::file::{self, FileError, ParseError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTopology {
    /// `processor` entries: the CPUs online.
    pub logical_cpus: u64,
    /// Distinct (`physical id`, `core id`) pairs.
    pub physical_cores: u64,
    /// Distinct `physical id`s.
    pub sockets: u64,
}

/// Architectures (and some hypervisors) list no `physical id` or `core id`: then every
/// logical CPU is taken as a core of one socket.
pub fn parse(text: &str) -> Result<CpuTopology, ParseError> {
    let mut logical_cpus = 0u64;
    let mut sockets = BTreeSet::new();
    let mut cores = BTreeSet::new();
    let mut socket: Option<String> = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "processor" => {
                logical_cpus += 1;
                socket = None;
            }
            "physical id" => {
                sockets.insert(value.to_owned());
                socket = Some(value.to_owned());
            }
            "core id" => {
                cores.insert((socket.clone().unwrap_or_default(), value.to_owned()));
            }
            _ => {}
        }
    }
    if logical_cpus == 0 {
        return Err(ParseError("cpuinfo lists no processor".to_owned()));
    }
    Ok(CpuTopology {
        logical_cpus,
        physical_cores: if cores.is_empty() {
            logical_cpus
        } else {
            cores.len() as u64
        },
        sockets: sockets.len().max(1) as u64,
    })
}

pub fn read(procfs: &Path) -> Result<Option<CpuTopology>, FileError> {
    file::read_parsed(&procfs.join("cpuinfo"), parse)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hyperthreads_share_a_core_and_sockets_are_counted_once() {
        let entry = |processor: u32, socket: u32, core: u32| {
            format!("processor\t: {processor}\nphysical id\t: {socket}\ncore id\t\t: {core}\n\n")
        };
        let text: String = [
            entry(0, 0, 0),
            entry(1, 0, 1),
            entry(2, 0, 0),
            entry(3, 0, 1),
            entry(4, 1, 0),
            entry(5, 1, 0),
        ]
        .concat();
        assert_eq!(
            parse(&text).unwrap(),
            CpuTopology {
                logical_cpus: 6,
                physical_cores: 3,
                sockets: 2
            }
        );
    }

    #[test]
    fn without_topology_every_cpu_is_a_core_of_one_socket() {
        let text = "processor : 0\nBogoMIPS : 50.00\n\nprocessor : 1\nBogoMIPS : 50.00\n";
        assert_eq!(
            parse(text).unwrap(),
            CpuTopology {
                logical_cpus: 2,
                physical_cores: 2,
                sockets: 1
            }
        );
        assert!(parse("").is_err());
    }

    proptest! {
        #[test]
        fn counts_are_consistent(text in "\\PC*") {
            if let Ok(topology) = parse(&text) {
                prop_assert!(topology.logical_cpus >= 1);
                prop_assert!(topology.sockets >= 1);
            }
        }
    }
}
