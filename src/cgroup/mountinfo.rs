//! Parser for `/proc/<pid>/mountinfo`, to find where the cgroup hierarchies are mounted and
//! which filesystem holds a directory (`disk` labels usage with the mount's source).
//!
//! Format (kernel `Documentation/filesystems/proc.rst`, "3.5 /proc/<pid>/mountinfo"):
//! `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
//! — mount id, parent id, major:minor, root of the mount within its filesystem, mount point,
//! mount options, optional fields ended by `-`, filesystem type, source, super options.

use super::parse::ParseError;

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The directory inside the filesystem that is mounted (`/` for a whole hierarchy,
    /// `/docker/<id>` when a container sees only its own cgroup).
    pub root: String,
    pub mount_point: String,
    pub fs_type: String,
    /// What was mounted, as the filesystem names it: a device (`/dev/vda1`) for disk
    /// filesystems, a free-form word (`tmpfs`, `overlay`, `none`) for the others.
    pub source: String,
    pub super_options: Vec<String>,
}

/// All mounts in a mountinfo text.
pub fn parse(text: &str) -> Result<Vec<Mount>, ParseError> {
    let mut mounts = Vec::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let fields: Vec<&str> = line.split(' ').collect();
        let separator = fields
            .iter()
            .position(|field| *field == "-")
            .filter(|position| *position >= 6 && fields.len() >= position + 3)
            .ok_or_else(|| ParseError(format!("mountinfo line {line:?} has too few fields")))?;
        mounts.push(Mount {
            root: unescape(fields[3]),
            mount_point: unescape(fields[4]),
            fs_type: fields[separator + 1].to_owned(),
            source: unescape(fields[separator + 2]),
            super_options: fields
                .get(separator + 3)
                .map(|options| options.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
        });
    }
    Ok(mounts)
}

/// The kernel writes space, tab, newline and backslash in paths as 3-digit octal escapes.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = bytes.get(i + 1..i + 4).filter(|digits| {
            bytes[i] == b'\\' && digits.iter().all(|digit| (b'0'..=b'7').contains(digit))
        });
        match escape {
            Some(digits) => {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, digit| acc * 8 + u32::from(digit - b'0'));
                out.push(value as u8);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_cgroup_mounts_of_a_hybrid_host() {
        let text = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:12 master:3 - cgroup2 cgroup2 rw,nsdelegate
50 31 0:40 /docker/abc /host/sys\\040fs rw - cgroup cgroup rw,memory
";
        let mounts = parse(text).unwrap();
        assert_eq!(mounts.len(), 4);
        assert_eq!(mounts[1].mount_point, "/sys/fs/cgroup/cpu,cpuacct");
        assert_eq!(mounts[1].fs_type, "cgroup");
        assert_eq!(mounts[1].super_options, vec!["rw", "cpu", "cpuacct"]);
        assert_eq!(mounts[2].fs_type, "cgroup2");
        assert_eq!(mounts[3].root, "/docker/abc");
        assert_eq!(mounts[3].mount_point, "/host/sys fs");
    }

    #[test]
    fn reads_the_source_after_the_fs_type() {
        let text = "\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
45 27 254:0 /var/lib/docker /var/lib/docker rw shared:1 master:2 - ext4 /dev/vda1 rw
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24683568k
60 27 0:50 / /mnt/my\\040share rw - cifs //server/my\\040share rw
";
        let mounts = parse(text).unwrap();
        let sources: Vec<&str> = mounts.iter().map(|mount| mount.source.as_str()).collect();
        assert_eq!(
            sources,
            vec!["/dev/vda", "/dev/vda1", "tmpfs", "//server/my share"]
        );
        assert_eq!(mounts[1].fs_type, "ext4");
        assert_eq!(mounts[1].super_options, vec!["rw"]);
    }

    #[test]
    fn a_short_line_is_an_error() {
        assert!(parse("31 23 0:28 / /sys/fs/cgroup\n").is_err());
    }

    fn word() -> impl Strategy<Value = String> {
        "[a-z0-9/:,\\\\-]{0,8}"
    }

    /// A path as the kernel writes it in mountinfo: space, tab, newline and backslash as
    /// octal escapes.
    fn escape(path: &str) -> String {
        let mut out = String::new();
        for character in path.chars() {
            match character {
                ' ' | '\t' | '\n' | '\\' => out.push_str(&format!("\\{:03o}", character as u32)),
                other => out.push(other),
            }
        }
        out
    }

    fn path() -> impl Strategy<Value = String> {
        "/[a-z0-9 \t\n\\\\_.-]{0,12}"
    }

    /// A file system type, or a source that is not a path (`overlay`, `tmpfs`).
    fn name() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,8}"
    }

    /// An optional field (`shared:5`, `master:1`).
    fn optional_field() -> impl Strategy<Value = String> {
        "[a-z]{1,6}:[0-9]{1,3}"
    }

    /// A super option (`rw`, `size=64k`).
    fn super_option() -> impl Strategy<Value = String> {
        "[a-z0-9=]{1,6}"
    }

    proptest! {
        /// Every field written by the kernel's format comes back as it was, whatever the
        /// number of optional fields.
        #[test]
        fn a_written_line_reads_back(
            root in path(),
            mount_point in path(),
            fs_type in name(),
            source in prop_oneof![path(), name()],
            optional in proptest::collection::vec(optional_field(), 0..3),
            options in proptest::collection::vec(super_option(), 1..4),
        ) {
            let mut fields = vec![
                "36".to_owned(),
                "35".to_owned(),
                "98:0".to_owned(),
                escape(&root),
                escape(&mount_point),
                "rw,relatime".to_owned(),
            ];
            fields.extend(optional);
            fields.extend([
                "-".to_owned(),
                fs_type.clone(),
                escape(&source),
                options.join(","),
            ]);
            let mounts = parse(&fields.join(" ")).unwrap();
            assert_eq!(mounts.len(), 1, "one line, one mount");
            assert_eq!(
                mounts,
                vec![Mount { root, mount_point, fs_type, source, super_options: options }]
            );
        }

        #[test]
        fn never_panics_and_gives_a_mount_per_line(text in "\\PC*") {
            if let Ok(mounts) = parse(&text) {
                prop_assert!(mounts.len() <= text.lines().count());
            }
        }

        #[test]
        fn never_panics_on_mountinfo_like_lines(words in proptest::collection::vec(word(), 0..14)) {
            let line = words.join(" ");
            if let Ok(mounts) = parse(&line) {
                prop_assert!(mounts.len() <= 1);
                prop_assert!(mounts.is_empty() || line.contains(" - "));
            }
        }
    }
}
