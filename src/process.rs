//! The standard `process_*` metrics of the exporter's own process, from `/proc/self`.

use crate::cgroup::ParseError;
use crate::metrics::{Desc, Exposition, counter, gauge};

static CPU: Desc = counter(
    "process_cpu_seconds_total",
    "Total user and system CPU time spent in seconds.",
);
static RESIDENT: Desc = gauge(
    "process_resident_memory_bytes",
    "Resident memory size in bytes.",
);
static VIRTUAL: Desc = gauge(
    "process_virtual_memory_bytes",
    "Virtual memory size in bytes.",
);
static OPEN_FDS: Desc = gauge("process_open_fds", "Number of open file descriptors.");
static MAX_FDS: Desc = gauge(
    "process_max_fds",
    "Maximum number of open file descriptors.",
);
static START_TIME: Desc = gauge(
    "process_start_time_seconds",
    "Start time of the process since unix epoch in seconds.",
);

/// The fields of `/proc/self/stat` the metrics need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
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
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // fields[0] is field 3 (state) of proc(5).
    let field = |number: usize| -> Result<u64, ParseError> {
        let text = fields
            .get(number - 3)
            .ok_or_else(|| ParseError(format!("stat has no field {number}")))?;
        text.parse()
            .map_err(|_| ParseError(format!("stat field {number} is {text:?}")))
    };
    Ok(ProcStat {
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

/// Adds the `process_*` families. A value that cannot be read is left out and logged.
pub fn collect(exposition: &mut Exposition) {
    let ticks_per_second = sysconf(libc::_SC_CLK_TCK).unwrap_or(100) as f64;
    let page_size = sysconf(libc::_SC_PAGESIZE).unwrap_or(4096);
    match std::fs::read_to_string("/proc/self/stat")
        .map_err(|error| ParseError(error.to_string()))
        .and_then(|text| parse_stat(&text))
    {
        Ok(stat) => {
            let cpu = (stat.utime_ticks + stat.stime_ticks) as f64 / ticks_per_second;
            exposition.push(&CPU, None, Vec::new(), cpu);
            exposition.push(&RESIDENT, None, Vec::new(), stat.rss_pages * page_size);
            exposition.push(&VIRTUAL, None, Vec::new(), stat.vsize_bytes);
            let boot_time = std::fs::read_to_string("/proc/stat")
                .ok()
                .and_then(|text| parse_boot_time(&text));
            if let Some(boot_time) = boot_time {
                let start = boot_time as f64 + stat.start_ticks as f64 / ticks_per_second;
                exposition.push(&START_TIME, None, Vec::new(), start);
            }
        }
        Err(error) => {
            tracing::warn!(path = "/proc/self/stat", %error, "cannot read own process stats")
        }
    }
    if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
        exposition.push(&OPEN_FDS, None, Vec::new(), entries.count() as u64);
    }
    if let Some(max) = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| parse_max_open_files(&text))
    {
        exposition.push(&MAX_FDS, None, Vec::new(), max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stat_fields_after_a_tricky_command_name() {
        let text = "1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194560 2000 0 0 0 150 25 0 0 20 0 4 0 98765 123456789 2500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        let stat = parse_stat(text).unwrap();
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
    fn own_process_metrics_are_read() {
        let mut exposition = Exposition::default();
        collect(&mut exposition);
        let resident = exposition.family("process_resident_memory_bytes").unwrap();
        assert!(resident.samples[0].value.as_f64() > 0.0);
        let fds = exposition.family("process_open_fds").unwrap();
        assert!(fds.samples[0].value.as_f64() >= 3.0);
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
