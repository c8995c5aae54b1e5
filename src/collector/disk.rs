//! `container_fs_{usage,limit}_bytes` and `container_fs_inodes_{total,free}`: each
//! container's writable layer and the filesystem under it, from the background walker in
//! `disk/` (never walked on the scrape path: the scrape serves the last walk).

use super::{Collector, Read, ScrapeContext};
use crate::cgroup::FileError;
use crate::disk::Layer;
use crate::metrics::{Desc, Exposition, counter, gauge};

pub static COLLECTOR: Collector = Collector {
    name: "disk",
    help: "Disk use of each container's writable layer and its filesystem (walked in the background, see --disk.refresh-interval)",
    enabled_by_default: true,
    families: &[
        &USAGE,
        &LIMIT,
        &INODES_TOTAL,
        &INODES_FREE,
        &REFRESHES,
        &REFRESH_DURATION,
    ],
    read: Read::PerScrape(collect),
};

static USAGE: Desc = gauge(
    "container_fs_usage_bytes",
    "Bytes used by the container's writable layer (as of the last walk).",
);
static LIMIT: Desc = gauge(
    "container_fs_limit_bytes",
    "Capacity of the filesystem holding the writable layer, in bytes (Docker sets no limit).",
);
static INODES_TOTAL: Desc = gauge(
    "container_fs_inodes_total",
    "Inodes of the filesystem holding the writable layer.",
);
static INODES_FREE: Desc = gauge(
    "container_fs_inodes_free",
    "Free inodes of the filesystem holding the writable layer.",
);
static REFRESHES: Desc = counter(
    "stevedore_disk_refreshes_total",
    "Walks of all writable layers since the exporter started.",
);
static REFRESH_DURATION: Desc = gauge(
    "stevedore_disk_refresh_duration_seconds",
    "How long the last walk of all writable layers took.",
);

fn collect(context: &ScrapeContext, out: &mut Exposition) -> Result<(), FileError> {
    let Some(disk) = context.disk else {
        return Ok(());
    };
    let running = || {
        context
            .targets
            .iter()
            .enumerate()
            .filter_map(|(index, target)| {
                let container = target.container()?;
                target.cgroup.as_ref()?;
                Some((index, container, target.writable_layer.as_ref()?))
            })
    };
    // Cheap: records the layers and wakes the walker when its last walk is old.
    disk.request(
        running()
            .map(|(_, container, dir)| Layer {
                id: container.id.clone(),
                dir: dir.clone(),
            })
            .collect(),
    );
    for (index, container, _) in running() {
        let Some(usage) = disk.usage(&container.id) else {
            continue;
        };
        let device = || vec![("device", usage.device.clone().into())];
        out.push(&USAGE, Some(index), device(), usage.bytes);
        out.push(&LIMIT, Some(index), device(), usage.fs_capacity_bytes);
        out.push(&INODES_TOTAL, Some(index), device(), usage.fs_inodes_total);
        out.push(&INODES_FREE, Some(index), device(), usage.fs_inodes_free);
    }
    out.push(&REFRESHES, None, Vec::new(), disk.refreshes());
    if let Some(seconds) = disk.last_refresh_seconds() {
        out.push(&REFRESH_DURATION, None, Vec::new(), seconds);
    }
    Ok(())
}
