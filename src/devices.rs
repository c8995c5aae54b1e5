//! Block device names from `<procfs>/partitions`, so per-device metrics say `/dev/sda`
//! rather than `8:0`.

use std::collections::HashMap;
use std::path::Path;

use crate::cgroup::{DeviceNumber, ParseError};

#[derive(Debug, Default, Clone)]
pub struct DeviceNames {
    names: HashMap<DeviceNumber, String>,
}

impl DeviceNames {
    /// Reads `<procfs>/partitions`; without it every device is named by its number.
    pub fn read(procfs: &Path) -> DeviceNames {
        let path = procfs.join("partitions");
        match crate::file::read_parsed(&path, DeviceNames::from_partitions) {
            Ok(Some(names)) => names,
            Ok(None) => {
                tracing::debug!(path = %path.display(), "no partitions file; devices are named by number");
                DeviceNames::default()
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read partitions; devices are named by number");
                DeviceNames::default()
            }
        }
    }

    pub fn from_partitions(text: &str) -> Result<DeviceNames, ParseError> {
        Ok(DeviceNames {
            names: parse_partitions(text)?,
        })
    }

    /// `/dev/<name>`, or `major:minor` for a device the partitions table does not list.
    pub fn name(&self, device: DeviceNumber) -> String {
        match self.names.get(&device) {
            Some(name) => format!("/dev/{name}"),
            None => device.to_string(),
        }
    }

    /// The device number of `/dev/<name>`.
    pub fn number(&self, path: &str) -> Option<DeviceNumber> {
        let name = path.strip_prefix("/dev/")?;
        self.names
            .iter()
            .find_map(|(number, known)| (known == name).then_some(*number))
    }
}

/// `/proc/partitions`: a header line, a blank line, then `major minor #blocks name` rows.
pub fn parse_partitions(text: &str) -> Result<HashMap<DeviceNumber, String>, ParseError> {
    let mut names = HashMap::new();
    for line in text
        .lines()
        .skip_while(|line| line.trim_start().starts_with("major"))
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [] => continue,
            [major, minor, _blocks, name] => {
                let device = DeviceNumber::parse(&format!("{major}:{minor}"))?;
                names.insert(device, (*name).to_owned());
            }
            _ => {
                return Err(ParseError(format!(
                    "line {line:?} is not \"major minor #blocks name\""
                )));
            }
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PARTITIONS: &str = "major minor  #blocks  name\n\n 254        0  268435456 vda\n   8        0  1000 sda\n   8        1  500 sda1\n";

    #[test]
    fn names_devices_from_the_partitions_table() {
        let devices = DeviceNames::from_partitions(PARTITIONS).unwrap();
        assert_eq!(
            devices.name(DeviceNumber {
                major: 254,
                minor: 0
            }),
            "/dev/vda"
        );
        assert_eq!(
            devices.name(DeviceNumber { major: 8, minor: 1 }),
            "/dev/sda1"
        );
        assert_eq!(devices.name(DeviceNumber { major: 9, minor: 9 }), "9:9");
        assert_eq!(
            devices.number("/dev/sda"),
            Some(DeviceNumber { major: 8, minor: 0 })
        );
        assert!(parse_partitions("major minor\n\n1 2\n").is_err());
    }

    fn device_name() -> impl Strategy<Value = String> {
        "[a-z]{1,6}[0-9]{0,2}"
    }

    proptest! {
        #[test]
        fn never_panics_and_names_only_what_the_table_lists(text in "\\PC*") {
            if let Ok(names) = parse_partitions(&text) {
                for name in names.values() {
                    prop_assert!(text.contains(name.as_str()));
                }
            }
        }

        #[test]
        fn rows_are_read_back(rows in proptest::collection::vec((0u32..300, 0u32..64, device_name()), 0..10)) {
            let mut text = "major minor  #blocks  name\n\n".to_owned();
            for (major, minor, name) in &rows {
                text.push_str(&format!("{major:>4} {minor:>7} {:>10} {name}\n", 1000));
            }
            // A number listed twice keeps its last name.
            let expected: HashMap<DeviceNumber, String> = rows
                .iter()
                .map(|(major, minor, name)| (DeviceNumber { major: *major, minor: *minor }, name.clone()))
                .collect();
            prop_assert_eq!(parse_partitions(&text).unwrap(), expected);
        }
    }
}
