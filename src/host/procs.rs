//! Processes in procfs: `/proc/<pid>/stat`, `limits` and `fd`, `/proc/stat`'s boot time,
//! and the system constants (page size, clock ticks) their numbers are counted in.

use std::path::Path;

use crate::file::{self, FileError, ParseError};

/// The fields of `/proc/<pid>/stat` the metrics need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// `R` running, `S` sleeping, `D` waiting on I/O, ... (proc(5) field 3).
    pub state: char,
    pub utime_ticks: u64,
    pub stime_ticks: u64,
    pub start_ticks: u64,
    pub vsize_bytes: u64,
    pub rss_pages: u64,
}

/// `/proc/<pid>/stat` (proc(5)): the command name is in parentheses and may contain
/// spaces and parentheses, so fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Result<ProcStat, ParseError> {
    let after_name = text
        .rfind(')')
        .map(|end| &text[end + 1..])
        .ok_or_else(|| ParseError("stat has no command name".to_owned()))?;
    // fields[0] is field 3 (state) of proc(5); those after field 24 are not read (the
    // load collector reads this file for every thread of every container).
    let fields: Vec<&str> = after_name.split_ascii_whitespace().take(22).collect();
    let field = |number: usize| -> Result<u64, ParseError> {
        let text = fields
            .get(number - 3)
            .ok_or_else(|| ParseError(format!("stat has no field {number}")))?;
        text.parse()
            .map_err(|_| ParseError(format!("stat field {number} is {text:?}")))
    };
    let state = fields
        .first()
        .and_then(|state| state.chars().next())
        .ok_or_else(|| ParseError("stat has no state".to_owned()))?;
    Ok(ProcStat {
        state,
        utime_ticks: field(14)?,
        stime_ticks: field(15)?,
        start_ticks: field(22)?,
        vsize_bytes: field(23)?,
        rss_pages: field(24)?,
    })
}

/// `btime` from `/proc/stat`: boot time in seconds since the epoch.
pub fn parse_boot_time(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|value| value.trim().parse().ok())
}

/// The soft limit of "Max open files" from `/proc/self/limits`.
pub fn parse_max_open_files(text: &str) -> Option<u64> {
    let line = text
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn sysconf(name: libc::c_int) -> Option<u64> {
    // SAFETY: sysconf has no preconditions; it returns -1 for unknown names.
    let value = unsafe { libc::sysconf(name) };
    u64::try_from(value).ok().filter(|value| *value > 0)
}

/// Bytes per memory page: what `stat`'s resident pages and the kernel's page counters
/// are counted in.
pub fn page_size() -> u64 {
    sysconf(libc::_SC_PAGESIZE).unwrap_or(4096)
}

/// Clock ticks per second (USER_HZ): what `stat`'s CPU times are counted in.
pub fn ticks_per_second() -> f64 {
    sysconf(libc::_SC_CLK_TCK).unwrap_or(100) as f64
}

/// `<procfs>/<pid>/stat`; `Ok(None)` when the process is gone.
pub fn read_stat(procfs: &Path, pid: &str) -> Result<Option<ProcStat>, FileError> {
    file::read_parsed(&procfs.join(pid).join("stat"), parse_stat)
}

/// The soft "Max open files" of `<procfs>/<pid>/limits`; `Ok(None)` when the process is gone.
pub fn read_max_open_files(procfs: &Path, pid: &str) -> Result<Option<u64>, FileError> {
    Ok(file::read_text(&procfs.join(pid).join("limits"))?
        .and_then(|text| parse_max_open_files(&text)))
}

/// Open descriptors of a process, and how many of them are sockets (when `sockets`: one
/// `readlink` per descriptor); `None` when the process is gone. A descriptor closed while
/// we look is not counted.
pub fn open_files(
    procfs: &Path,
    pid: &str,
    sockets: bool,
) -> Result<Option<(u64, u64)>, FileError> {
    let dir = procfs.join(pid).join("fd");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(FileError::Read { path: dir, source }),
    };
    let (mut descriptors, mut socket_count) = (0, 0);
    for entry in entries.flatten() {
        descriptors += 1;
        if sockets
            && std::fs::read_link(entry.path()).is_ok_and(|target| {
                target
                    .as_os_str()
                    .as_encoded_bytes()
                    .starts_with(b"socket:")
            })
        {
            socket_count += 1;
        }
    }
    Ok(Some((descriptors, socket_count)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stat_fields_after_a_tricky_command_name() {
        let text = "1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194560 2000 0 0 0 150 25 0 0 20 0 4 0 98765 123456789 2500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        let stat = parse_stat(text).unwrap();
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.utime_ticks, 150);
        assert_eq!(stat.stime_ticks, 25);
        assert_eq!(stat.start_ticks, 98765);
        assert_eq!(stat.vsize_bytes, 123456789);
        assert_eq!(stat.rss_pages, 2500);
        assert!(parse_stat("1234 (x) S 1").is_err());
    }

    #[test]
    fn boot_time_and_fd_limit() {
        assert_eq!(
            parse_boot_time("cpu 1 2 3\nbtime 1700000000\n"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_boot_time("cpu 1\n"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1048576              1048576              files\n";
        assert_eq!(parse_max_open_files(limits), Some(1_048_576));
    }

    #[test]
    fn own_process_is_read_through_procfs() {
        let procfs = Path::new("/proc");
        let stat = read_stat(procfs, "thread-self").unwrap().unwrap();
        assert_eq!(stat.state, 'R', "a thread reading its own stat is running");
        let (descriptors, sockets) = open_files(procfs, "self", true).unwrap().unwrap();
        assert!(sockets <= descriptors);
        assert!(descriptors >= 3);
        assert!(read_max_open_files(procfs, "self").unwrap().unwrap() > 0);
        assert!(
            read_stat(procfs, "0").unwrap().is_none(),
            "no process 0 in procfs"
        );
        assert!(page_size() >= 4096);
    }

    proptest! {
        #[test]
        fn never_panics_and_needs_the_command_name(text in "\\PC*") {
            if parse_stat(&text).is_ok() {
                prop_assert!(text.contains(')'));
            }
            if parse_boot_time(&text).is_some() {
                prop_assert!(text.contains("btime "));
            }
            if parse_max_open_files(&text).is_some() {
                prop_assert!(text.contains("Max open files"));
            }
        }
    }
}
