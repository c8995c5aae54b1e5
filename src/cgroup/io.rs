//! Block I/O per device and block I/O limits of a cgroup (v1 `blkio.*`, v2 `io.*`).

use std::collections::BTreeMap;

use super::parse::{self, DeviceNumber, Limit, NestedLine, ParseError};
use super::{Cgroup, Controller, FileError};

/// Bytes and operations one cgroup did on one device.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeviceIo {
    pub read_bytes: Option<u64>,
    pub write_bytes: Option<u64>,
    pub reads: Option<u64>,
    pub writes: Option<u64>,
    /// Bytes by operation as the kernel names them: v1 `Read`, `Write`, `Sync`, `Async`,
    /// `Discard`, `Total`; v2 `Read` and `Write` (cAdvisor's `operation` label).
    pub bytes_by_operation: BTreeMap<String, u64>,
}

/// Throttling limits on one device; `Unlimited` where that direction is not limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceLimits {
    pub read_bps: Limit,
    pub write_bps: Limit,
    pub read_iops: Limit,
    pub write_iops: Limit,
}

impl DeviceLimits {
    pub fn get(&self, throttle: Throttle) -> Limit {
        match throttle {
            Throttle::ReadBps => self.read_bps,
            Throttle::WriteBps => self.write_bps,
            Throttle::ReadIops => self.read_iops,
            Throttle::WriteIops => self.write_iops,
        }
    }

    fn get_mut(&mut self, throttle: Throttle) -> &mut Limit {
        match throttle {
            Throttle::ReadBps => &mut self.read_bps,
            Throttle::WriteBps => &mut self.write_bps,
            Throttle::ReadIops => &mut self.read_iops,
            Throttle::WriteIops => &mut self.write_iops,
        }
    }
}

impl Default for DeviceLimits {
    fn default() -> Self {
        DeviceLimits {
            read_bps: Limit::Unlimited,
            write_bps: Limit::Unlimited,
            read_iops: Limit::Unlimited,
            write_iops: Limit::Unlimited,
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct IoLimits {
    /// Proportional weight: v1 `blkio.weight` (10–1000), v2 `io.weight` default (1–10000);
    /// the BFQ files where the plain ones are absent.
    pub weight: Option<u64>,
    /// Devices with at least one throttling limit.
    pub devices: BTreeMap<DeviceNumber, DeviceLimits>,
}

/// runc's conversion of a v1 blkio weight (10–1000) to v2 `io.weight` (1–10000); the
/// inverse of what the enforcer writes is never needed, as v2 reports its own scale.
pub fn io_weight_from_blkio(weight: u64) -> u64 {
    1 + (weight.clamp(10, 1_000) - 10) * 9_999 / 990
}

/// v1 statistics files. Each counts only some I/O: the throttle files count bios on
/// devices that have a throttle rule in this cgroup (on recent kernels), BFQ's count I/O on
/// devices using BFQ, CFQ's (kernels before 5.0) on devices using CFQ. Where several count
/// the same device they count the same I/O, so per device the largest reading is taken.
const V1_STAT_FILES: [(&str, &str); 3] = [
    (
        "blkio.throttle.io_service_bytes_recursive",
        "blkio.throttle.io_serviced_recursive",
    ),
    (
        "blkio.bfq.io_service_bytes_recursive",
        "blkio.bfq.io_serviced_recursive",
    ),
    (
        "blkio.io_service_bytes_recursive",
        "blkio.io_serviced_recursive",
    ),
];

pub fn read_usage(cgroup: &Cgroup) -> Result<BTreeMap<DeviceNumber, DeviceIo>, FileError> {
    if cgroup.is_unified() {
        return Ok(cgroup
            .read(Controller::Blkio, "io.stat", v2_io_stat)?
            .unwrap_or_default());
    }
    let mut devices: BTreeMap<DeviceNumber, DeviceIo> = BTreeMap::new();
    let mut merge = |text: &str,
                     read: fn(&mut DeviceIo) -> &mut Option<u64>,
                     write: fn(&mut DeviceIo) -> &mut Option<u64>,
                     by_operation: bool| {
        for (device, operation, value) in parse::v1_blkio_stat(text)? {
            let io = devices.entry(device).or_default();
            if by_operation {
                let bytes = io
                    .bytes_by_operation
                    .entry(operation.to_owned())
                    .or_default();
                *bytes = (*bytes).max(value);
            }
            let field = match operation {
                "Read" => read(io),
                "Write" => write(io),
                _ => continue,
            };
            *field = Some(field.map_or(value, |seen| seen.max(value)));
        }
        Ok(())
    };
    for (bytes_file, ops_file) in V1_STAT_FILES {
        cgroup.read(Controller::Blkio, bytes_file, |text| {
            merge(
                text,
                |io| &mut io.read_bytes,
                |io| &mut io.write_bytes,
                true,
            )
        })?;
        cgroup.read(Controller::Blkio, ops_file, |text| {
            merge(text, |io| &mut io.reads, |io| &mut io.writes, false)
        })?;
    }
    Ok(devices)
}

fn v2_io_stat(text: &str) -> Result<BTreeMap<DeviceNumber, DeviceIo>, ParseError> {
    let mut devices = BTreeMap::new();
    for line in parse::nested_keyed(text) {
        let line = line?;
        if line.head == parse::UNKNOWN_DEVICE {
            continue;
        }
        let read_bytes = line.get_u64("rbytes")?;
        let write_bytes = line.get_u64("wbytes")?;
        let bytes_by_operation = [("Read", read_bytes), ("Write", write_bytes)]
            .into_iter()
            .filter_map(|(operation, bytes)| Some((operation.to_owned(), bytes?)))
            .collect();
        devices.insert(
            DeviceNumber::parse(line.head)?,
            DeviceIo {
                read_bytes,
                write_bytes,
                reads: line.get_u64("rios")?,
                writes: line.get_u64("wios")?,
                bytes_by_operation,
            },
        );
    }
    Ok(devices)
}

fn v2_io_max(text: &str) -> Result<BTreeMap<DeviceNumber, DeviceLimits>, ParseError> {
    let mut devices = BTreeMap::new();
    for line in parse::nested_keyed(text) {
        let line = line?;
        if line.head == parse::UNKNOWN_DEVICE {
            continue;
        }
        devices.insert(DeviceNumber::parse(line.head)?, v2_device_limits(&line)?);
    }
    Ok(devices)
}

fn v2_device_limits(line: &NestedLine) -> Result<DeviceLimits, ParseError> {
    Ok(DeviceLimits {
        read_bps: line.get_limit("rbps")?,
        write_bps: line.get_limit("wbps")?,
        read_iops: line.get_limit("riops")?,
        write_iops: line.get_limit("wiops")?,
    })
}

pub fn read_limits(cgroup: &Cgroup) -> Result<IoLimits, FileError> {
    let b = Controller::Blkio;
    if cgroup.is_unified() {
        return Ok(IoLimits {
            weight: cgroup
                .read_first(b, &["io.weight", "io.bfq.weight"], parse::io_weight_default)?
                .flatten(),
            devices: cgroup.read(b, "io.max", v2_io_max)?.unwrap_or_default(),
        });
    }
    let mut devices: BTreeMap<DeviceNumber, DeviceLimits> = BTreeMap::new();
    for throttle in Throttle::ALL {
        for (device, value) in cgroup
            .read(b, throttle.v1_file(), parse::v1_device_values)?
            .unwrap_or_default()
        {
            *devices.entry(device).or_default().get_mut(throttle) = Limit::Value(value);
        }
    }
    Ok(IoLimits {
        weight: cgroup.read_first(b, &["blkio.weight", "blkio.bfq.weight"], parse::single_u64)?,
        devices,
    })
}

/// A direction and kind of device throttling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Throttle {
    ReadBps,
    WriteBps,
    ReadIops,
    WriteIops,
}

impl Throttle {
    pub const ALL: [Throttle; 4] = [
        Throttle::ReadBps,
        Throttle::WriteBps,
        Throttle::ReadIops,
        Throttle::WriteIops,
    ];

    /// The name `docker run` gives it (`--device-write-bps`), which policies use too.
    pub fn docker_name(self) -> &'static str {
        match self {
            Throttle::ReadBps => "device-read-bps",
            Throttle::WriteBps => "device-write-bps",
            Throttle::ReadIops => "device-read-iops",
            Throttle::WriteIops => "device-write-iops",
        }
    }

    /// Bytes per second, or operations per second.
    pub fn is_bytes(self) -> bool {
        matches!(self, Throttle::ReadBps | Throttle::WriteBps)
    }

    fn v1_file(self) -> &'static str {
        match self {
            Throttle::ReadBps => "blkio.throttle.read_bps_device",
            Throttle::WriteBps => "blkio.throttle.write_bps_device",
            Throttle::ReadIops => "blkio.throttle.read_iops_device",
            Throttle::WriteIops => "blkio.throttle.write_iops_device",
        }
    }

    fn v2_key(self) -> &'static str {
        match self {
            Throttle::ReadBps => "rbps",
            Throttle::WriteBps => "wbps",
            Throttle::ReadIops => "riops",
            Throttle::WriteIops => "wiops",
        }
    }
}

/// The line that sets one throttle on one device: v1 `8:0 10485760` (0 removes the
/// rule), v2 `8:0 wbps=10485760` (`max` removes it).
pub fn throttle_line(
    unified: bool,
    device: DeviceNumber,
    throttle: Throttle,
    limit: Limit,
) -> String {
    if unified {
        let value = match limit {
            Limit::Unlimited => "max".to_owned(),
            Limit::Value(value) => value.to_string(),
        };
        format!("{device} {}={value}", throttle.v2_key())
    } else {
        format!("{device} {}", limit.or_zero())
    }
}

/// Sets one throttle on one device of a cgroup, writing the cgroup file directly (the
/// engine's update API does not change device limits).
pub fn write_throttle(
    cgroup: &Cgroup,
    device: DeviceNumber,
    throttle: Throttle,
    limit: Limit,
) -> Result<(), FileError> {
    let file = if cgroup.is_unified() {
        "io.max"
    } else {
        throttle.v1_file()
    };
    let path = cgroup
        .file(Controller::Blkio, file)
        .ok_or_else(|| FileError::NoController {
            what: format!("setting {file} of {}", cgroup.path),
            controller: "blkio",
        })?;
    crate::file::write_line(
        &path,
        &throttle_line(cgroup.is_unified(), device, throttle, limit),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_statistics_merge_devices_across_files() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("blkio/docker/a");
        std::fs::create_dir_all(&dir).unwrap();
        let write = |file: &str, text: &str| std::fs::write(dir.join(file), text).unwrap();
        write(
            "blkio.throttle.io_service_bytes_recursive",
            "8:0 Read 100\n8:0 Write 200\n8:0 Total 300\nTotal 300\n",
        );
        write(
            "blkio.throttle.io_serviced_recursive",
            "8:0 Read 1\n8:0 Write 2\nTotal 3\n",
        );
        write(
            "blkio.bfq.io_service_bytes_recursive",
            "8:0 Read 100\n8:0 Write 150\n8:16 Read 0\n8:16 Write 4096\nTotal 4346\n",
        );
        write("blkio.bfq.io_serviced_recursive", "Total 0\n");
        let hierarchy = crate::cgroup::Hierarchy::discover(root.path(), None);
        let devices = read_usage(&Cgroup::new(&hierarchy, "/docker/a")).unwrap();
        let sda = &devices[&DeviceNumber { major: 8, minor: 0 }];
        assert_eq!((sda.read_bytes, sda.write_bytes), (Some(100), Some(200)));
        assert_eq!((sda.reads, sda.writes), (Some(1), Some(2)));
        let sdb = &devices[&DeviceNumber {
            major: 8,
            minor: 16,
        }];
        assert_eq!((sdb.write_bytes, sdb.writes), (Some(4096), None));
    }

    #[test]
    fn throttle_lines_for_both_versions() {
        let sda = DeviceNumber { major: 8, minor: 0 };
        assert_eq!(
            throttle_line(false, sda, Throttle::WriteBps, Limit::Value(10485760)),
            "8:0 10485760"
        );
        assert_eq!(
            throttle_line(false, sda, Throttle::ReadIops, Limit::Unlimited),
            "8:0 0"
        );
        assert_eq!(
            throttle_line(true, sda, Throttle::WriteBps, Limit::Value(10485760)),
            "8:0 wbps=10485760"
        );
        assert_eq!(
            throttle_line(true, sda, Throttle::ReadIops, Limit::Unlimited),
            "8:0 riops=max"
        );
    }

    #[test]
    fn writing_a_throttle_writes_the_right_file() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("blkio/docker/a");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("blkio.throttle.write_bps_device"), "").unwrap();
        let hierarchy = crate::cgroup::Hierarchy::discover(root.path(), None);
        let cgroup = Cgroup::new(&hierarchy, "/docker/a");
        let sda = DeviceNumber { major: 8, minor: 0 };
        write_throttle(&cgroup, sda, Throttle::WriteBps, Limit::Value(1024)).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("blkio.throttle.write_bps_device")).unwrap(),
            "8:0 1024"
        );
        let error = write_throttle(&cgroup, sda, Throttle::ReadBps, Limit::Value(1)).unwrap_err();
        assert!(
            error.to_string().contains("blkio.throttle.read_bps_device"),
            "{error}"
        );
    }

    #[test]
    fn v2_io_stat_per_device() {
        let devices =
            v2_io_stat("8:0 rbytes=1024 wbytes=2048 rios=1 wios=2 dbytes=0 dios=0\n").unwrap();
        let io = &devices[&DeviceNumber { major: 8, minor: 0 }];
        assert_eq!(io.read_bytes, Some(1024));
        assert_eq!(io.writes, Some(2));
        assert!(v2_io_stat("sda rbytes=1\n").is_err());
    }

    /// The root's io.stat in the engine VM (Debian 13, Linux 6.12) had eight lines for disks
    /// the kernel could not name, `(unknown) ` without a key; they made the whole blkio
    /// collector fail for the root.
    #[test]
    fn v2_io_files_skip_a_disk_the_kernel_cannot_name() {
        let devices = v2_io_stat(
            "(unknown) \n(unknown) \n\
             254:0 rbytes=1024 wbytes=2048 rios=1 wios=2 dbytes=0 dios=0\n\
             (unknown) rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
        )
        .unwrap();
        assert_eq!(devices.len(), 1);
        assert_eq!(
            devices[&DeviceNumber {
                major: 254,
                minor: 0
            }]
                .write_bytes,
            Some(2048)
        );
        let limits = v2_io_max("(unknown) rbps=max wbps=1 riops=max wiops=max\n").unwrap();
        assert!(limits.is_empty());
        let v1 = parse::v1_blkio_stat("(unknown) Read 4096\n8:0 Read 512\nTotal 4608\n").unwrap();
        assert_eq!(v1, vec![(DeviceNumber { major: 8, minor: 0 }, "Read", 512)]);
        assert!(
            parse::v1_device_values("(unknown) 1048576\n")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn v2_io_max_per_device() {
        let devices = v2_io_max("254:0 rbps=max wbps=10485760 riops=100 wiops=max\n").unwrap();
        let limits = devices[&DeviceNumber {
            major: 254,
            minor: 0,
        }];
        assert_eq!(limits.read_bps, Limit::Unlimited);
        assert_eq!(limits.write_bps, Limit::Value(10485760));
        assert_eq!(limits.read_iops, Limit::Value(100));
    }
}
