//! `container_fs_{reads,writes}*` per device and the block I/O limits
//! `container_spec_blkio_*`.

use super::{Collector, Read, TargetContext};
use crate::cgroup::{FileError, Limit, io};
use crate::metrics::{Desc, TargetSamples, counter, gauge};

pub static COLLECTOR: Collector = Collector {
    name: "blkio",
    help: "Block I/O per device and block I/O limits (blkio, io)",
    enabled_by_default: true,
    families: &[
        &READ_BYTES,
        &WRITE_BYTES,
        &READS,
        &WRITES,
        &DEVICE_USAGE,
        &WEIGHT,
        &READ_BPS,
        &WRITE_BPS,
        &READ_IOPS,
        &WRITE_IOPS,
    ],
    read: Read::PerTarget(collect),
};

static READ_BYTES: Desc = counter(
    "container_fs_reads_bytes_total",
    "Cumulative bytes read from the device.",
);
static WRITE_BYTES: Desc = counter(
    "container_fs_writes_bytes_total",
    "Cumulative bytes written to the device.",
);
static READS: Desc = counter(
    "container_fs_reads_total",
    "Cumulative read operations completed on the device.",
);
static WRITES: Desc = counter(
    "container_fs_writes_total",
    "Cumulative write operations completed on the device.",
);
static DEVICE_USAGE: Desc = counter(
    "container_blkio_device_usage_total",
    "Bytes transferred to and from the device, by operation as the kernel names it.",
);
static WEIGHT: Desc = gauge(
    "container_spec_blkio_weight",
    "Block I/O weight (v1 blkio.weight 10-1000, v2 io.weight 1-10000).",
);
static READ_BPS: Desc = gauge(
    "container_spec_blkio_device_read_bytes_limit",
    "Read limit on the device in bytes per second (0: unlimited).",
);
static WRITE_BPS: Desc = gauge(
    "container_spec_blkio_device_write_bytes_limit",
    "Write limit on the device in bytes per second (0: unlimited).",
);
static READ_IOPS: Desc = gauge(
    "container_spec_blkio_device_read_iops_limit",
    "Read limit on the device in operations per second (0: unlimited).",
);
static WRITE_IOPS: Desc = gauge(
    "container_spec_blkio_device_write_iops_limit",
    "Write limit on the device in operations per second (0: unlimited).",
);

fn collect(context: &TargetContext, out: &mut TargetSamples) -> Result<(), FileError> {
    let cgroup = &context.cgroup;
    let devices = context.scrape.devices;
    for (device, io) in io::read_usage(cgroup)? {
        let name = devices.name(device);
        let label = || vec![("device", name.clone().into())];
        out.add_labelled(&READ_BYTES, label(), io.read_bytes);
        out.add_labelled(&WRITE_BYTES, label(), io.write_bytes);
        out.add_labelled(&READS, label(), io.reads);
        out.add_labelled(&WRITES, label(), io.writes);
        for (operation, bytes) in io.bytes_by_operation {
            let labels = vec![
                ("device", name.clone().into()),
                ("major", device.major.to_string().into()),
                ("minor", device.minor.to_string().into()),
                ("operation", operation.into()),
            ];
            out.add_labelled(&DEVICE_USAGE, labels, Some(bytes));
        }
    }
    let limits = io::read_limits(cgroup)?;
    out.add_some(&WEIGHT, limits.weight);
    for (device, device_limits) in limits.devices {
        let name = devices.name(device);
        let label = || vec![("device", name.clone().into())];
        let value = |limit: Limit| Some(limit.or_zero());
        out.add_labelled(&READ_BPS, label(), value(device_limits.read_bps));
        out.add_labelled(&WRITE_BPS, label(), value(device_limits.write_bps));
        out.add_labelled(&READ_IOPS, label(), value(device_limits.read_iops));
        out.add_labelled(&WRITE_IOPS, label(), value(device_limits.write_iops));
    }
    Ok(())
}
