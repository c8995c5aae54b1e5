//! `container_fs_{reads,writes}*` per device and the block I/O limits
//! `container_spec_blkio_*`.

use super::{Collector, Context};
use crate::cgroup::{Cgroup, CgroupError, Limit, io};
use crate::metrics::{Desc, TargetSamples, counter, gauge};

pub static COLLECTOR: Collector = Collector {
    name: "blkio",
    help: "Block I/O per device and block I/O limits (blkio, io)",
    enabled_by_default: true,
    collect,
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

fn collect(cgroup: &Cgroup, context: &Context, out: &mut TargetSamples) -> Result<(), CgroupError> {
    for (device, io) in io::read_usage(cgroup)? {
        let name = context.devices.name(device);
        let label = || vec![("device", name.clone())];
        out.add_labelled(&READ_BYTES, label(), io.read_bytes);
        out.add_labelled(&WRITE_BYTES, label(), io.write_bytes);
        out.add_labelled(&READS, label(), io.reads);
        out.add_labelled(&WRITES, label(), io.writes);
    }
    let limits = io::read_limits(cgroup)?;
    out.add_some(&WEIGHT, limits.weight);
    for (device, device_limits) in limits.devices {
        let name = context.devices.name(device);
        let label = || vec![("device", name.clone())];
        let value = |limit: Limit| Some(limit.or_zero());
        out.add_labelled(&READ_BPS, label(), value(device_limits.read_bps));
        out.add_labelled(&WRITE_BPS, label(), value(device_limits.write_bps));
        out.add_labelled(&READ_IOPS, label(), value(device_limits.read_iops));
        out.add_labelled(&WRITE_IOPS, label(), value(device_limits.write_iops));
    }
    Ok(())
}
