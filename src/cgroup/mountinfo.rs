//! Parser for `/proc/<pid>/mountinfo`, to find where the cgroup hierarchies are mounted.
//!
//! Format (kernel `Documentation/filesystems/proc.rst`, "3.5 /proc/<pid>/mountinfo"):
//! `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
//! — mount id, parent id, major:minor, root of the mount within its filesystem, mount point,
//! mount options, optional fields ended by `-`, filesystem type, source, super options.

use super::parse::ParseError;

/// One cgroup-related line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The directory inside the filesystem that is mounted (`/` for a whole hierarchy,
    /// `/docker/<id>` when a container sees only its own cgroup).
    pub root: String,
    pub mount_point: String,
    pub fs_type: String,
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
    fn a_short_line_is_an_error() {
        assert!(parse("31 23 0:28 / /sys/fs/cgroup\n").is_err());
    }

    fn word() -> impl Strategy<Value = String> {
        "[a-z0-9/:,\\\\-]{0,8}"
    }

    proptest! {
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
