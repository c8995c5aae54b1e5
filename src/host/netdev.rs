//! `/proc/<pid>/net/dev`: the interface counters of the network namespace a process is in.

use std::path::Path;

use crate::file::{self, FileError, ParseError};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InterfaceCounters {
    pub name: String,
    pub receive_bytes: u64,
    pub receive_packets: u64,
    pub receive_errors: u64,
    pub receive_dropped: u64,
    pub transmit_bytes: u64,
    pub transmit_packets: u64,
    pub transmit_errors: u64,
    pub transmit_dropped: u64,
}

/// Interfaces cAdvisor leaves out: loopback, the host ends of container links, and the
/// engines' bridges (their traffic is the containers', counted where it starts).
fn is_counted(interface: &str) -> bool {
    !["lo", "veth", "docker", "nerdctl"]
        .iter()
        .any(|prefix| interface.starts_with(prefix))
}

/// Two header lines, then `name: rx bytes packets errs drop fifo frame compressed
/// multicast tx bytes packets errs drop fifo colls carrier compressed`. Only the interfaces
/// counted (`is_counted`) are read: the host's namespace has one `veth` per container.
pub fn parse(text: &str) -> Result<Vec<InterfaceCounters>, ParseError> {
    let mut interfaces = Vec::new();
    for line in text.lines().skip(2).filter(|line| !line.trim().is_empty()) {
        let (name, counters) = line
            .split_once(':')
            .ok_or_else(|| ParseError(format!("net/dev line {line:?} has no ':'")))?;
        let name = name.trim();
        if !is_counted(name) {
            continue;
        }
        let mut fields = [0u64; 16];
        let mut count = 0;
        for field in counters.split_ascii_whitespace() {
            let value = field.parse::<u64>().map_err(|_| {
                ParseError(format!("net/dev line {line:?}: a counter is not a number"))
            })?;
            if let Some(slot) = fields.get_mut(count) {
                *slot = value;
            }
            count += 1;
        }
        if count < fields.len() {
            return Err(ParseError(format!(
                "net/dev line {line:?} has {count} counters, not 16"
            )));
        }
        interfaces.push(InterfaceCounters {
            name: name.to_owned(),
            receive_bytes: fields[0],
            receive_packets: fields[1],
            receive_errors: fields[2],
            receive_dropped: fields[3],
            transmit_bytes: fields[8],
            transmit_packets: fields[9],
            transmit_errors: fields[10],
            transmit_dropped: fields[11],
        });
    }
    Ok(interfaces)
}

/// The counters of process `pid`'s namespace; `Ok(None)` when the process is gone.
pub fn read(procfs: &Path, pid: u32) -> Result<Option<Vec<InterfaceCounters>>, FileError> {
    file::read_parsed(&procfs.join(pid.to_string()).join("net/dev"), parse)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NET_DEV: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     640       8    0    0    0     0          0         0      640       8    0    0    0     0       0          0
  eth0: 1234567    890    1    2    0     0          0         0   765432     321    3    4    0     0       0          0
";

    #[test]
    fn counters_per_interface() {
        let interfaces = parse(NET_DEV).unwrap();
        assert_eq!(interfaces.len(), 1, "lo is not counted");
        assert_eq!(
            interfaces[0],
            InterfaceCounters {
                name: "eth0".to_owned(),
                receive_bytes: 1234567,
                receive_packets: 890,
                receive_errors: 1,
                receive_dropped: 2,
                transmit_bytes: 765432,
                transmit_packets: 321,
                transmit_errors: 3,
                transmit_dropped: 4,
            }
        );
        assert!(parse("h\nh\neth0: 1 2 3\n").is_err());
        // An interface not counted is not read.
        assert_eq!(parse("h\nh\nveth1: 1 2 3\n"), Ok(Vec::new()));
    }

    #[test]
    fn loopback_links_and_bridges_are_not_counted() {
        for skipped in ["lo", "veth1a2b3c", "docker0", "nerdctl0"] {
            assert!(!is_counted(skipped), "{skipped}");
        }
        for counted in ["eth0", "ens3", "br-4f1e", "wlan0"] {
            assert!(is_counted(counted), "{counted}");
        }
    }

    proptest! {
        #[test]
        fn any_text_parses_or_fails_without_panicking(text in "\\PC*") {
            if let Ok(interfaces) = parse(&text) {
                // One interface per line after the two header lines, each named by its line.
                prop_assert!(interfaces.len() <= text.lines().count().saturating_sub(2));
                for interface in &interfaces {
                    let named = format!("{}:", interface.name);
                    prop_assert!(text.contains(&named));
                }
            }
        }

        #[test]
        fn counters_round_trip(values in proptest::collection::vec(any::<u64>(), 16)) {
            let line: Vec<String> = values.iter().map(u64::to_string).collect();
            let text = format!("h\nh\neth0: {}\n", line.join(" "));
            let parsed = parse(&text).unwrap();
            prop_assert_eq!(parsed[0].receive_bytes, values[0]);
            prop_assert_eq!(parsed[0].transmit_dropped, values[11]);
        }
    }
}
