//! Pure parsers for the file formats the kernel uses in cgroupfs.
//!
//! The formats are defined in the kernel's `Documentation/admin-guide/cgroup-v2.rst`
//! ("Interface Files: Conventions") and the v1 controller documents. Every function here
//! takes the file's text and nothing else, so it can be tested on inline strings.

use std::fmt;

pub use crate::file::ParseError;

fn bad(what: impl Into<String>) -> ParseError {
    ParseError(what.into())
}

/// A block device number, as `major:minor` in cgroup files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceNumber {
    pub major: u32,
    pub minor: u32,
}

impl DeviceNumber {
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let (major, minor) = text
            .split_once(':')
            .ok_or_else(|| bad(format!("{text:?} is not a major:minor device number")))?;
        let number = |part: &str| {
            part.parse::<u32>()
                .map_err(|_| bad(format!("{text:?} is not a major:minor device number")))
        };
        Ok(DeviceNumber {
            major: number(major)?,
            minor: number(minor)?,
        })
    }
}

/// What the kernel prints in place of `major:minor` in the blkio and io files for a disk
/// whose backing device is not registered (`bdi_dev_name()`'s fallback), seen in the root
/// cgroup's `io.stat` on a systemd host running Docker. No container can be given such a
/// device, so the readers skip its lines rather than fail the whole file.
pub const UNKNOWN_DEVICE: &str = "(unknown)";

impl fmt::Display for DeviceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

fn parse_u64(text: &str) -> Result<u64, ParseError> {
    text.parse::<u64>()
        .map_err(|_| bad(format!("{text:?} is not an unsigned integer")))
}

/// The lines of a kernel file that hold something, trimmed.
///
/// Lines and words are found with `memchr`: on lines this short `str::lines` and
/// `str::split_once` cost twice as much, and a scrape splits some 80 lines per cgroup.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        while !rest.is_empty() {
            let end = memchr::memchr(b'\n', rest.as_bytes()).unwrap_or(rest.len());
            let line = rest[..end].trim_ascii();
            rest = rest.get(end + 1..).unwrap_or_default();
            if !line.is_empty() {
                return Some(line);
            }
        }
        None
    })
}

/// `line` split at its first space (the kernel separates words with spaces): the first
/// word, and the rest without its leading spaces (`""` for a word alone).
fn first_word(line: &str) -> (&str, &str) {
    match memchr::memchr(b' ', line.as_bytes()) {
        Some(space) => (&line[..space], line[space + 1..].trim_start_matches(' ')),
        None => (line, ""),
    }
}

/// The words of a trimmed line.
fn words(line: &str) -> impl Iterator<Item = &str> {
    let mut rest = line;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (word, after) = first_word(rest);
        rest = after;
        Some(word)
    })
}

/// A file holding one unsigned integer (`memory.current`, `pids.current`, ...).
pub fn single_u64(text: &str) -> Result<u64, ParseError> {
    parse_u64(text.trim())
}

/// A limit read from a cgroup file. (A file that is not there is `None` around this,
/// never `Unlimited`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Unlimited,
    Value(u64),
}

impl Limit {
    /// The number Prometheus sees: unlimited is 0, as cAdvisor reports it.
    pub fn or_zero(self) -> u64 {
        match self {
            Limit::Unlimited => 0,
            Limit::Value(value) => value,
        }
    }
}

/// A limit as the kernel writes it: a number, or `max` (v2) / `-1` (v1 quotas) for none.
pub fn limit(text: &str) -> Result<Limit, ParseError> {
    match text.trim() {
        "max" | "-1" => Ok(Limit::Unlimited),
        number => parse_u64(number).map(Limit::Value),
    }
}

/// v1 memory limits have no "max" word: an unset limit reads as the largest page-aligned
/// `i64` (`9223372036854771712` with 4 KiB pages). Anything that large is unlimited.
pub fn v1_memory_limit(text: &str) -> Result<Limit, ParseError> {
    const UNLIMITED_FROM: u64 = 1 << 62;
    let value = single_u64(text)?;
    Ok(if value < UNLIMITED_FROM {
        Limit::Value(value)
    } else {
        Limit::Unlimited
    })
}

/// A "flat keyed" file: one `key value` pair per line (`memory.stat`, `cpu.stat`,
/// `memory.events`, v1 `memory.oom_control`), with the values of the keys asked for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FlatKeyed<'a> {
    pairs: Vec<(&'a str, u64)>,
    wanted: &'a [&'a str],
}

impl<'a> FlatKeyed<'a> {
    /// Parses the values of the `wanted` keys only: v2 `memory.stat` has some 50 keys and
    /// v1's 70, of which a dozen are exported. Lines are read until every wanted key is
    /// found; each must be `key value`, with one space as the kernel writes it, and a
    /// wanted key's value a number. A key written twice has its first value.
    pub fn parse(text: &'a str, wanted: &'a [&'a str]) -> Result<Self, ParseError> {
        let mut pairs = Vec::with_capacity(wanted.len());
        for line in lines(text) {
            let (key, value) = first_word(line);
            if value.is_empty() {
                return Err(bad(format!("line {line:?} is not \"key value\"")));
            }
            if wanted.contains(&key) && !pairs.iter().any(|(seen, _)| *seen == key) {
                pairs.push((key, parse_u64(value)?));
                if pairs.len() == wanted.len() {
                    break;
                }
            }
        }
        Ok(FlatKeyed { pairs, wanted })
    }

    /// The value of `key`; `None` when this kernel does not write that key. `key` must be
    /// one of those asked for (checked in debug builds: any other would always be `None`).
    pub fn get(&self, key: &str) -> Option<u64> {
        debug_assert!(self.wanted.contains(&key), "{key:?} was not asked for");
        self.pairs
            .iter()
            .find_map(|(k, v)| (*k == key).then_some(*v))
    }
}

/// One line of a "nested keyed" file: a leading word (`8:0`, `some`, `default`) followed by
/// `key=value` pairs (`io.stat`, `io.max`, `*.pressure`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NestedLine<'a> {
    pub head: &'a str,
    /// The `key=value` words after the head, each checked to have its `=`.
    pairs: &'a str,
}

impl<'a> NestedLine<'a> {
    /// Every pair of the line (the readers ask for theirs by key with `get`).
    #[cfg(test)]
    fn pairs(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        words(self.pairs).filter_map(|word| word.split_once('='))
    }

    pub fn get(&self, key: &str) -> Option<&'a str> {
        words(self.pairs).find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
    }

    /// The limit under `key`; a key the kernel did not write is unlimited.
    pub fn get_limit(&self, key: &str) -> Result<Limit, ParseError> {
        self.get(key).map_or(Ok(Limit::Unlimited), limit)
    }

    pub fn get_u64(&self, key: &str) -> Result<Option<u64>, ParseError> {
        self.get(key).map(parse_u64).transpose()
    }
}

/// The lines of a nested keyed file, each read as it is asked for: nothing is allocated
/// (a scrape reads `io.stat` and `io.max` of every cgroup).
pub fn nested_keyed(text: &str) -> impl Iterator<Item = Result<NestedLine<'_>, ParseError>> {
    lines(text).map(|line| {
        let (head, pairs) = first_word(line);
        if let Some(word) =
            words(pairs).find(|word| memchr::memchr(b'=', word.as_bytes()).is_none())
        {
            return Err(bad(format!("{word:?} in line {line:?} is not key=value")));
        }
        Ok(NestedLine { head, pairs })
    })
}

/// v1 blkio statistics (`blkio.throttle.io_service_bytes_recursive` and friends):
/// `8:0 Read 4096` lines per device and operation, then a `Total N` line.
/// Returns `(device, operation, value)` for the per-device lines.
pub fn v1_blkio_stat(text: &str) -> Result<Vec<(DeviceNumber, &str, u64)>, ParseError> {
    let mut entries = Vec::new();
    for line in lines(text) {
        let mut words = words(line);
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some("Total"), Some(value), None, None) => {
                parse_u64(value)?;
            }
            (Some(UNKNOWN_DEVICE), Some(_), Some(_), None) => {}
            (Some(device), Some(operation), Some(value), None) => {
                entries.push((DeviceNumber::parse(device)?, operation, parse_u64(value)?));
            }
            _ => {
                return Err(bad(format!(
                    "line {line:?} is not \"major:minor Op value\""
                )));
            }
        }
    }
    Ok(entries)
}

/// v1 per-device settings (`blkio.throttle.write_bps_device`, `blkio.weight_device`):
/// `8:0 10485760` lines.
pub fn v1_device_values(text: &str) -> Result<Vec<(DeviceNumber, u64)>, ParseError> {
    let mut entries = Vec::new();
    for line in lines(text) {
        let (device, value) = first_word(line);
        if value.is_empty() || memchr::memchr(b' ', value.as_bytes()).is_some() {
            return Err(bad(format!("line {line:?} is not \"major:minor value\"")));
        }
        if device == UNKNOWN_DEVICE {
            continue;
        }
        entries.push((DeviceNumber::parse(device)?, parse_u64(value)?));
    }
    Ok(entries)
}

/// A CPU or memory-node list (`cpuset.cpus`, `cpuset.mems`): `0-3,8,10-11`, as sorted,
/// merged inclusive ranges. An empty list (a v2 cpuset that inherits its parent's) has none.
pub fn cpu_list(text: &str) -> Result<Vec<(u64, u64)>, ParseError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let mut ranges = Vec::new();
    for range in text.split(',') {
        let (first, last) = match range.split_once('-') {
            None => {
                let cpu = parse_u64(range)?;
                (cpu, cpu)
            }
            Some((first, last)) => (parse_u64(first)?, parse_u64(last)?),
        };
        if last < first {
            return Err(bad(format!("CPU range {range:?} runs backwards")));
        }
        ranges.push((first, last));
    }
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (first, last) in ranges {
        match merged.last_mut() {
            Some(previous) if first <= previous.1.saturating_add(1) => {
                previous.1 = previous.1.max(last);
            }
            _ => merged.push((first, last)),
        }
    }
    Ok(merged)
}

/// How many CPUs a CPU list names.
pub fn cpu_list_len(text: &str) -> Result<u64, ParseError> {
    Ok(cpu_list(text)?
        .iter()
        .map(|(first, last)| (last - first).saturating_add(1))
        .fold(0u64, u64::saturating_add))
}

/// v2 `cpu.max`: `$MAX $PERIOD`, where `$MAX` may be `max`. Returns (quota, period) in µs.
pub fn cpu_max(text: &str) -> Result<(Limit, u64), ParseError> {
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        [quota, period] => Ok((limit(quota)?, parse_u64(period)?)),
        _ => Err(bad(format!("{:?} is not \"$MAX $PERIOD\"", text.trim()))),
    }
}

/// v2 `io.weight` / `io.bfq.weight`: `default 100` then optional `8:0 200` lines.
/// Returns the default weight.
pub fn io_weight_default(text: &str) -> Result<Option<u64>, ParseError> {
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let ["default", value] = words.as_slice() {
            return parse_u64(value).map(Some);
        }
    }
    Ok(None)
}

/// Total stall time of a pressure file (`cpu.pressure`, ...), in microseconds:
/// (`some` total, `full` total). See the kernel's `Documentation/accounting/psi.rst`.
pub fn pressure_totals(text: &str) -> Result<(Option<u64>, Option<u64>), ParseError> {
    let mut some = None;
    let mut full = None;
    for line in lines(text) {
        let (head, pairs) = first_word(line);
        let slot = match head {
            "some" => &mut some,
            "full" => &mut full,
            _ => continue,
        };
        // Only the total is exported: the averages are not parsed.
        if let Some(total) = words(pairs).find_map(|pair| pair.strip_prefix("total=")) {
            *slot = Some(parse_u64(total)?);
        }
    }
    Ok((some, full))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn single_values_and_limits() {
        assert_eq!(single_u64("42\n"), Ok(42));
        assert!(single_u64("forty").is_err());
        assert_eq!(limit("max\n"), Ok(Limit::Unlimited));
        assert_eq!(limit("-1\n"), Ok(Limit::Unlimited));
        assert_eq!(limit("50000\n"), Ok(Limit::Value(50000)));
        assert_eq!(Limit::Unlimited.or_zero(), 0);
        assert_eq!(
            v1_memory_limit("9223372036854771712\n"),
            Ok(Limit::Unlimited)
        );
        assert_eq!(v1_memory_limit("67108864\n"), Ok(Limit::Value(67108864)));
    }

    #[test]
    fn flat_keyed_reads_the_keys_asked_for_and_ignores_others() {
        const WANTED: &[&str] = &["usage_usec", "user_usec", "throttled_usec"];
        let stat =
            FlatKeyed::parse("usage_usec 31604\nuser_usec 11856\nnew_key 7\n", WANTED).unwrap();
        assert_eq!(stat.get("usage_usec"), Some(31604));
        assert_eq!(stat.get("user_usec"), Some(11856));
        assert_eq!(stat.get("throttled_usec"), None);
        assert!(FlatKeyed::parse("usage_usec\n", WANTED).is_err());
        assert!(FlatKeyed::parse("usage_usec x\n", WANTED).is_err());
        assert!(FlatKeyed::parse("usage_usec 1 2\n", WANTED).is_err());
        // A key not asked for is not parsed: its value cannot fail the file.
        let stat = FlatKeyed::parse("new_key x\nusage_usec 5\n", WANTED).unwrap();
        assert_eq!(stat.get("usage_usec"), Some(5));
        // But every line must still be a key and a value, until all are found.
        assert!(FlatKeyed::parse("new_key\nusage_usec 5\n", WANTED).is_err());
        let all = FlatKeyed::parse(
            "usage_usec 1\nuser_usec 2\nthrottled_usec 3\nlate\n",
            WANTED,
        );
        assert_eq!(all.unwrap().get("throttled_usec"), Some(3));
        let twice = FlatKeyed::parse("user_usec 1\nuser_usec 2\nthrottled_usec 3\n", WANTED);
        assert_eq!(twice.unwrap().get("user_usec"), Some(1));
    }

    #[test]
    #[should_panic(expected = "was not asked for")]
    #[cfg(debug_assertions)]
    fn flat_keyed_refuses_a_key_not_asked_for() {
        let stat = FlatKeyed::parse("usage_usec 1\n", &["usage_usec"]).unwrap();
        stat.get("user_usec");
    }

    #[test]
    fn nested_keyed_reads_io_stat_and_io_max() {
        let lines: Vec<NestedLine> = nested_keyed(
            "8:0 rbytes=90112 wbytes=4096 rios=7 wios=1 dbytes=0 dios=0\n\
             254:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n",
        )
        .collect::<Result<_, _>>()
        .unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].head, "8:0");
        assert_eq!(lines[0].get_u64("rbytes"), Ok(Some(90112)));
        assert_eq!(lines[1].get_u64("wios"), Ok(Some(4)));
        assert_eq!(lines[1].pairs().count(), 6);
        let max = nested_keyed("8:0 rbps=max wbps=10485760 riops=max wiops=max\n")
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(max.get_limit("rbps"), Ok(Limit::Unlimited));
        assert_eq!(max.get_limit("wbps"), Ok(Limit::Value(10485760)));
        assert!(nested_keyed("8:0 rbytes\n").any(|line| line.is_err()));
        // A head alone is a line without pairs.
        assert_eq!(
            nested_keyed("8:0\n")
                .next()
                .unwrap()
                .unwrap()
                .pairs()
                .count(),
            0
        );
    }

    #[test]
    fn blkio_v1_stat_lines() {
        let entries = v1_blkio_stat(
            "8:0 Read 4096\n8:0 Write 20971520\n8:0 Sync 0\n8:0 Async 0\n8:0 Discard 0\n\
             8:0 Total 20975616\nTotal 20975616\n",
        )
        .unwrap();
        assert_eq!(entries.len(), 6);
        assert_eq!(
            entries[1],
            (DeviceNumber { major: 8, minor: 0 }, "Write", 20971520)
        );
        assert_eq!(v1_blkio_stat("Total 0\n"), Ok(vec![]));
        assert!(v1_blkio_stat("8:0 Read\n").is_err());
    }

    #[test]
    fn device_values_cpu_lists_and_cpu_max() {
        assert_eq!(
            v1_device_values("8:0 10485760\n254:0 100\n"),
            Ok(vec![
                (DeviceNumber { major: 8, minor: 0 }, 10485760),
                (
                    DeviceNumber {
                        major: 254,
                        minor: 0
                    },
                    100
                )
            ])
        );
        assert_eq!(cpu_list_len("0-3,8,10-11\n"), Ok(7));
        assert_eq!(cpu_list("3,0-1,2"), Ok(vec![(0, 3)]));
        assert_eq!(cpu_list("0,2"), Ok(vec![(0, 0), (2, 2)]));
        assert_eq!(cpu_list_len("0-3,2-5"), Ok(6));
        assert_eq!(cpu_list_len("0\n"), Ok(1));
        assert_eq!(cpu_list_len("\n"), Ok(0));
        assert!(cpu_list_len("3-1").is_err());
        assert_eq!(cpu_max("max 100000\n"), Ok((Limit::Unlimited, 100000)));
        assert_eq!(cpu_max("50000 100000\n"), Ok((Limit::Value(50000), 100000)));
        assert!(cpu_max("").is_err());
    }

    #[test]
    fn io_weight_and_pressure() {
        assert_eq!(io_weight_default("default 100\n8:0 200\n"), Ok(Some(100)));
        assert_eq!(io_weight_default(""), Ok(None));
        let (some, full) = pressure_totals(
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=3399\n\
             full avg10=0.00 avg60=0.00 avg300=0.00 total=2190\n",
        )
        .unwrap();
        assert_eq!((some, full), (Some(3399), Some(2190)));
        // cpu.pressure on kernels before 5.13 has no "full" line.
        assert_eq!(
            pressure_totals("some avg10=1.00 avg60=0.50 avg300=0.10 total=10\n"),
            Ok((Some(10), None))
        );
        assert!(pressure_totals("some avg10=1.00 total=ten\n").is_err());
        assert_eq!(pressure_totals("some avg10=1.00\n"), Ok((None, None)));
    }

    fn key() -> impl Strategy<Value = String> {
        "[a-z_]{1,12}"
    }

    fn file_like_text() -> impl Strategy<Value = String> {
        "([a-z_0-9:=.-]{0,12}( |\\n|=)){0,20}"
    }

    /// Runs every parser on `text` (none may panic) and names one that accepted what it
    /// cannot have read: a number from text without digits, entries from text without
    /// their separators.
    fn accepts_only_what_it_should(text: &str) -> Option<&'static str> {
        let digits = text.chars().any(|c| c.is_ascii_digit());
        let _ = (
            v1_memory_limit(text),
            cpu_max(text),
            io_weight_default(text),
        );
        let _ = pressure_totals(text);
        if FlatKeyed::parse(text, &["a"]).is_ok_and(|flat| flat.get("a").is_some()) && !digits {
            return Some("FlatKeyed::parse");
        }
        if single_u64(text).is_ok() && !digits {
            return Some("single_u64");
        }
        if matches!(limit(text), Ok(Limit::Value(_))) && !digits {
            return Some("limit");
        }
        if DeviceNumber::parse(text).is_ok() && !text.contains(':') {
            return Some("DeviceNumber::parse");
        }
        if nested_keyed(text).any(|line| line.is_ok_and(|line| line.pairs().next().is_some()))
            && !text.contains('=')
        {
            return Some("nested_keyed");
        }
        if v1_blkio_stat(text).is_ok_and(|entries| !entries.is_empty()) && !text.contains(':') {
            return Some("v1_blkio_stat");
        }
        if v1_device_values(text).is_ok_and(|entries| !entries.is_empty()) && !text.contains(':') {
            return Some("v1_device_values");
        }
        if cpu_list_len(text).is_ok_and(|count| count > 0) && !digits {
            return Some("cpu_list_len");
        }
        None
    }

    /// Lines of words, with tabs among the spaces.
    const LINES_OF_WORDS: &str = "[a-z0-9 =:\t\n]{0,80}";

    proptest! {
        #[test]
        fn parsers_never_panic(text in "\\PC*") {
            prop_assert!(accepts_only_what_it_should(&text).is_none());
        }

        #[test]
        fn parsers_never_panic_on_file_like_text(text in file_like_text()) {
            prop_assert!(accepts_only_what_it_should(&text).is_none());
        }

        #[test]
        fn lines_and_words_split_as_std_does(text in LINES_OF_WORDS) {
            let std_lines: Vec<&str> =
                text.lines().map(str::trim_ascii).filter(|line| !line.is_empty()).collect();
            prop_assert_eq!(lines(&text).collect::<Vec<_>>(), std_lines.clone());
            for line in std_lines {
                let std_words: Vec<&str> = line.split(' ').filter(|word| !word.is_empty()).collect();
                prop_assert_eq!(words(line).collect::<Vec<_>>(), std_words.clone());
                let (first, rest) = first_word(line);
                prop_assert_eq!(first, std_words[0]);
                prop_assert_eq!(words(rest).collect::<Vec<_>>(), &std_words[1..]);
            }
        }

        #[test]
        fn flat_keyed_round_trips(pairs in proptest::collection::vec((key(), any::<u64>()), 0..20)) {
            // Between them, lines of a key not asked for, whose value is not a number.
            let text: String = pairs.iter().map(|(k, v)| format!("{k} {v}\nother9 x\n")).collect();
            let keys: Vec<&str> = pairs.iter().map(|(key, _)| key.as_str()).collect();
            let parsed = FlatKeyed::parse(&text, &keys).unwrap();
            for (key, _) in &pairs {
                let first = pairs.iter().find(|(k, _)| k == key).unwrap().1;
                prop_assert_eq!(parsed.get(key), Some(first));
            }
        }

        #[test]
        fn cpu_list_counts_ranges(ranges in proptest::collection::vec((0u64..512, 0u64..64), 1..8)) {
            let text: Vec<String> = ranges.iter().map(|(start, len)| format!("{}-{}", start, start + len)).collect();
            let mut cpus = std::collections::BTreeSet::new();
            for (start, len) in &ranges {
                cpus.extend(*start..=start + len);
            }
            prop_assert_eq!(cpu_list_len(&text.join(",")), Ok(cpus.len() as u64));
        }
    }
}
