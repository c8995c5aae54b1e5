//! The filesystem that holds a directory: which mount it is (for the `device` label) and its
//! size and inode counts (`statvfs`).

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::cgroup::mountinfo::Mount;

/// Size and inode counts of one filesystem, from `statvfs(3)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsStats {
    /// `f_blocks * f_frsize`: the size of the filesystem, free or not.
    pub capacity_bytes: u64,
    pub inodes_total: u64,
    pub inodes_free: u64,
}

/// The mount that holds `dir`: the one whose mount point is the longest prefix of `dir`
/// (whole path components, so `/var/lib` does not hold `/var/library`). `dir` must be
/// absolute and free of symlinks, as mount points are. Of several mounts on the same point
/// the last wins: a later mount hides the earlier ones.
pub fn mount_for<'a>(mounts: &'a [Mount], dir: &Path) -> Option<&'a Mount> {
    let mut best: Option<(&Mount, usize)> = None;
    for mount in mounts {
        let mount_point = Path::new(&mount.mount_point);
        if !dir.starts_with(mount_point) {
            continue;
        }
        let depth = mount_point.components().count();
        // `>=` so that a later mount on the same point replaces an earlier one.
        if best.is_none_or(|(_, best_depth)| depth >= best_depth) {
            best = Some((mount, depth));
        }
    }
    best.map(|(mount, _)| mount)
}

/// The `device` label cAdvisor gives a filesystem: the mount's source when it names a device
/// (a path, e.g. `/dev/vda1`); otherwise the mount point, since sources such as `tmpfs`,
/// `overlay` or `none` are shared by unrelated filesystems and would merge their series.
pub fn device_label(mount: &Mount) -> String {
    if mount.fs_type == "tmpfs" || !mount.source.starts_with('/') {
        mount.mount_point.clone()
    } else {
        mount.source.clone()
    }
}

/// `statvfs(3)` of the filesystem holding `path`.
pub fn stats(path: &Path) -> io::Result<FsStats> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    // SAFETY: `statvfs` is plain old data, for which all-zero bytes are a valid value.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is a NUL-terminated string and `stat` a valid, writable `statvfs`
    // that outlives the call.
    let result = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    // The field types differ between targets (32 or 64 bits), hence the widening casts.
    let stats = FsStats {
        capacity_bytes: (stat.f_blocks as u64).saturating_mul(stat.f_frsize as u64),
        inodes_total: stat.f_files as u64,
        inodes_free: stat.f_ffree as u64,
    };
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::mountinfo;
    use proptest::prelude::*;

    fn mount(mount_point: &str, fs_type: &str, source: &str) -> Mount {
        Mount {
            root: "/".to_owned(),
            mount_point: mount_point.to_owned(),
            fs_type: fs_type.to_owned(),
            source: source.to_owned(),
            super_options: vec!["rw".to_owned()],
        }
    }

    const HOST: &str = "\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24683568k
45 27 254:1 / /var/lib rw,relatime shared:1 - xfs /dev/vdb1 rw
46 45 254:2 / /var/lib/docker rw,relatime shared:2 - ext4 /dev/vdc rw
47 46 0:60 / /var/lib/docker/overlay2/abc/merged rw - overlay overlay rw,lowerdir=/x
48 46 254:3 / /var/lib/docker rw,relatime shared:3 - btrfs /dev/vdd rw
";

    fn point_of(mounts: &[Mount], dir: &str) -> Option<(String, String)> {
        mount_for(mounts, Path::new(dir))
            .map(|mount| (mount.mount_point.clone(), mount.source.clone()))
    }

    #[test]
    fn the_longest_mount_point_prefix_holds_a_directory() {
        let mounts = mountinfo::parse(HOST).unwrap();
        assert_eq!(
            point_of(&mounts, "/var/lib/docker/overlay2/abc/diff"),
            Some(("/var/lib/docker".to_owned(), "/dev/vdd".to_owned()))
        );
        assert_eq!(
            point_of(&mounts, "/var/lib/docker/overlay2/abc/merged/etc"),
            Some((
                "/var/lib/docker/overlay2/abc/merged".to_owned(),
                "overlay".to_owned()
            ))
        );
        assert_eq!(
            point_of(&mounts, "/var/lib/containers"),
            Some(("/var/lib".to_owned(), "/dev/vdb1".to_owned()))
        );
        assert_eq!(
            point_of(&mounts, "/home/user"),
            Some(("/".to_owned(), "/dev/vda".to_owned()))
        );
        assert_eq!(
            point_of(&mounts, "/var/lib"),
            Some(("/var/lib".to_owned(), "/dev/vdb1".to_owned()))
        );
    }

    #[test]
    fn a_mount_point_is_matched_by_whole_components() {
        let mounts = vec![
            mount("/", "ext4", "/dev/vda"),
            mount("/var/lib", "xfs", "/dev/vdb"),
        ];
        assert_eq!(
            point_of(&mounts, "/var/library/x"),
            Some(("/".to_owned(), "/dev/vda".to_owned()))
        );
    }

    #[test]
    fn the_last_of_mounts_on_one_point_wins() {
        let mounts = vec![
            mount("/", "ext4", "/dev/vda"),
            mount("/data", "ext4", "/dev/vdb"),
            mount("/data", "ext4", "/dev/vdc"),
        ];
        assert_eq!(
            point_of(&mounts, "/data/x"),
            Some(("/data".to_owned(), "/dev/vdc".to_owned()))
        );
    }

    #[test]
    fn no_mount_holds_a_directory_outside_every_mount_point() {
        let mounts = vec![mount("/data", "ext4", "/dev/vdb")];
        assert_eq!(point_of(&mounts, "/srv"), None);
        assert_eq!(point_of(&[], "/srv"), None);
    }

    #[test]
    fn a_device_source_is_the_label_and_other_sources_give_the_mount_point() {
        assert_eq!(
            device_label(&mount("/var/lib/docker", "ext4", "/dev/vda1")),
            "/dev/vda1"
        );
        assert_eq!(
            device_label(&mount("/dev/shm", "tmpfs", "tmpfs")),
            "/dev/shm"
        );
        assert_eq!(
            device_label(&mount("/scratch", "tmpfs", "/not/a/device")),
            "/scratch"
        );
        assert_eq!(
            device_label(&mount("/merged", "overlay", "overlay")),
            "/merged"
        );
        assert_eq!(device_label(&mount("/srv", "zfs", "tank/srv")), "/srv");
    }

    #[test]
    fn statvfs_of_a_real_directory_has_a_size() {
        let dir = tempfile::tempdir().unwrap();
        let stats = stats(dir.path()).unwrap();
        assert!(stats.capacity_bytes > 0, "{stats:?}");
        assert!(stats.inodes_free <= stats.inodes_total, "{stats:?}");
    }

    #[test]
    fn statvfs_of_a_missing_directory_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let error = stats(&dir.path().join("gone")).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }

    fn mount_point() -> impl Strategy<Value = String> {
        proptest::collection::vec("[ab]{1,2}", 0..4)
            .prop_map(|components| format!("/{}", components.join("/")))
    }

    proptest! {
        /// The chosen mount holds the directory, and no mount later in the list or deeper
        /// in the tree holds it too.
        #[test]
        fn the_chosen_mount_is_the_deepest_and_latest_holder(
            points in proptest::collection::vec(mount_point(), 0..8),
            dir in mount_point(),
        ) {
            let mounts: Vec<Mount> = points
                .iter()
                .enumerate()
                .map(|(index, point)| mount(point, "ext4", &format!("/dev/vd{index}")))
                .collect();
            let dir = Path::new(&dir);
            let holders: Vec<(usize, usize)> = mounts
                .iter()
                .enumerate()
                .filter(|(_, mount)| dir.starts_with(&mount.mount_point))
                .map(|(index, mount)| (Path::new(&mount.mount_point).components().count(), index))
                .collect();
            // Deepest first, then latest.
            let expected = holders.iter().max().map(|(_, index)| &mounts[*index]);
            prop_assert_eq!(mount_for(&mounts, dir), expected);
        }
    }
}
