//! Walking one directory tree to add up the disk space and inodes it uses, the way
//! `du -x` does: symlinks are not followed, other filesystems are not entered, and a file
//! with several hard links is counted once.

use std::collections::HashSet;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What one walk found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeUsage {
    /// Allocated space (`st_blocks * 512`), which is what the tree costs the filesystem:
    /// sparse files count less than their length, directories count too.
    pub bytes: u64,
    /// Distinct inodes: the root, directories, files, symlinks and special files.
    pub inodes: u64,
    /// False when the walk stopped at its time budget, so the counts are a lower bound.
    pub complete: bool,
}

/// Walks the tree under `root` for at most `budget`. `Ok(None)` when `root` is not there
/// (the container's layer is gone: no data). An error reading `root` itself is returned;
/// errors below it (a directory that vanished mid-walk, one we may not read) skip that
/// part of the tree, because one unreadable corner should not hide the rest.
pub fn walk(root: &Path, budget: Duration) -> io::Result<Option<TreeUsage>> {
    let started = Instant::now();
    // No deadline when the budget is too large to add to now.
    let deadline = started.checked_add(budget);
    let over_budget = || deadline.is_some_and(|deadline| Instant::now() >= deadline);

    let root_metadata = match std::fs::symlink_metadata(root) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let device = root_metadata.dev();
    let mut usage = TreeUsage {
        bytes: allocated_bytes(&root_metadata),
        inodes: 1,
        complete: true,
    };
    if !root_metadata.is_dir() {
        return Ok(Some(usage));
    }

    // Inodes with more than one link that were already counted, to count each file once
    // however many names it has. Only such files are remembered, which keeps the set small.
    let mut linked: HashSet<(u64, u64)> = HashSet::new();
    // Depth-first with an explicit stack: a deep tree cannot overflow the thread's stack.
    let mut pending: Vec<PathBuf> = vec![root.to_owned()];
    'walk: while let Some(dir) = pending.pop() {
        if over_budget() {
            usage.complete = false;
            break;
        }
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) => {
                tracing::debug!(dir = %dir.display(), %error, "skipping unreadable directory");
                continue;
            }
        };
        for entry in entries {
            if over_budget() {
                usage.complete = false;
                break 'walk;
            }
            let entry = match entry {
                Ok(entry) => entry,
                Err(error) => {
                    tracing::debug!(dir = %dir.display(), %error, "skipping rest of directory");
                    break;
                }
            };
            // `DirEntry::metadata` does not follow symlinks (fstatat with
            // AT_SYMLINK_NOFOLLOW): a symlink counts as itself, never as its target.
            let metadata = match entry.metadata() {
                Ok(metadata) => metadata,
                Err(error) => {
                    tracing::debug!(path = %entry.path().display(), %error, "skipping entry");
                    continue;
                }
            };
            if metadata.dev() != device {
                // A mount point inside the tree: its filesystem is not this layer's.
                continue;
            }
            if metadata.is_dir() {
                pending.push(entry.path());
            } else if metadata.nlink() > 1 && !linked.insert((metadata.dev(), metadata.ino())) {
                continue;
            }
            usage.bytes = usage.bytes.saturating_add(allocated_bytes(&metadata));
            usage.inodes += 1;
        }
    }
    Ok(Some(usage))
}

/// `st_blocks` is in 512-byte units whatever the filesystem's block size (stat(2)).
fn allocated_bytes(metadata: &std::fs::Metadata) -> u64 {
    metadata.blocks().saturating_mul(512)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::io::Write;

    const MIB: u64 = 1 << 20;

    /// A file of `len` bytes that are really allocated: random bytes, so a compressing
    /// filesystem cannot shrink them, and synced, so delayed allocation is done.
    pub(in crate::disk) fn write_file(path: &Path, len: u64) {
        let mut data = vec![0u8; len as usize];
        fastrand::fill(&mut data);
        let mut file = std::fs::File::create(path).unwrap();
        file.write_all(&data).unwrap();
        file.sync_all().unwrap();
    }

    fn no_budget() -> Duration {
        Duration::from_secs(3600)
    }

    #[test]
    fn counts_blocks_and_inodes_with_hard_links_once_and_symlinks_unfollowed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("nested")).unwrap();
        write_file(&root.join("a"), MIB);
        write_file(&root.join("b"), MIB);
        write_file(&root.join("nested/c"), MIB);
        std::fs::hard_link(root.join("a"), root.join("nested/a-again")).unwrap();
        // A symlink to something big outside the tree: following it would count it.
        let outside = tempfile::tempdir().unwrap();
        write_file(&outside.path().join("big"), 4 * MIB);
        std::os::unix::fs::symlink(outside.path(), root.join("link")).unwrap();

        let usage = walk(root, no_budget()).unwrap().unwrap();

        assert!(usage.complete);
        // root, nested, a (and its second name), b, c, link
        assert_eq!(usage.inodes, 6);
        assert!(usage.bytes >= 3 * MIB, "{usage:?}");
        // Slack for two directories' blocks, the symlink, and file system metadata blocks.
        assert!(usage.bytes < 3 * MIB + 256 * 1024, "{usage:?}");
    }

    #[test]
    fn a_missing_root_is_no_data() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(walk(&dir.path().join("gone"), no_budget()).unwrap(), None);
    }

    #[test]
    fn a_zero_budget_gives_an_incomplete_walk() {
        let dir = tempfile::tempdir().unwrap();
        write_file(&dir.path().join("a"), 4096);

        let usage = walk(dir.path(), Duration::ZERO).unwrap().unwrap();

        assert!(!usage.complete);
        assert_eq!(usage.inodes, 1, "only the root was counted: {usage:?}");
    }

    #[test]
    fn an_unreadable_directory_is_skipped() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let locked = dir.path().join("locked");
        std::fs::create_dir(&locked).unwrap();
        write_file(&locked.join("secret"), 4096);
        write_file(&dir.path().join("open"), 4096);
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
        // root may read anything: then the directory is read, and that is fine too.
        let readable = std::fs::read_dir(&locked).is_ok();

        let usage = walk(dir.path(), no_budget()).unwrap().unwrap();

        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(usage.complete);
        let expected = if readable { 4 } else { 3 };
        assert_eq!(usage.inodes, expected, "{usage:?}");
    }
}
