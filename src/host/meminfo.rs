//! `/proc/meminfo`: the host's memory and swap, in bytes.

use std::path::Path;

use crate::file::{self, FileError, ParseError};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Meminfo {
    pub mem_total_bytes: Option<u64>,
    pub swap_total_bytes: Option<u64>,
    pub swap_free_bytes: Option<u64>,
}

impl Meminfo {
    /// Swap in use on the host.
    pub fn swap_used_bytes(&self) -> Option<u64> {
        Some(self.swap_total_bytes?.saturating_sub(self.swap_free_bytes?))
    }
}

/// `Key:   value kB` lines (proc(5)); values without a unit are counts, not used here.
pub fn parse(text: &str) -> Result<Meminfo, ParseError> {
    let mut meminfo = Meminfo::default();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let (key, rest) = line
            .split_once(':')
            .ok_or_else(|| ParseError(format!("meminfo line {line:?} has no ':'")))?;
        let field = match key {
            "MemTotal" => &mut meminfo.mem_total_bytes,
            "SwapTotal" => &mut meminfo.swap_total_bytes,
            "SwapFree" => &mut meminfo.swap_free_bytes,
            _ => continue,
        };
        let kilobytes = rest
            .trim()
            .strip_suffix("kB")
            .map(str::trim)
            .and_then(|number| number.parse::<u64>().ok())
            .ok_or_else(|| ParseError(format!("meminfo {key}: {rest:?} is not a number of kB")))?;
        *field = Some(kilobytes.saturating_mul(1024));
    }
    Ok(meminfo)
}

/// `<procfs>/meminfo`; `Ok(None)` when there is no such file.
pub fn read(procfs: &Path) -> Result<Option<Meminfo>, FileError> {
    file::read_parsed(&procfs.join("meminfo"), parse)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn memory_and_swap_in_bytes() {
        let meminfo = parse(
            "MemTotal:       24683568 kB\nMemFree:        20000000 kB\nSwapTotal:       2097148 kB\n\
             SwapFree:        2097000 kB\nHugePages_Total:       0\n",
        )
        .unwrap();
        assert_eq!(meminfo.mem_total_bytes, Some(24683568 * 1024));
        assert_eq!(meminfo.swap_used_bytes(), Some(148 * 1024));
        assert_eq!(parse("SwapTotal: 0 kB\n").unwrap().swap_used_bytes(), None);
        assert!(parse("MemTotal: lots kB\n").is_err());
    }

    proptest! {
        #[test]
        fn any_text_parses_or_fails_without_panicking(text in "\\PC*") {
            if let Ok(meminfo) = parse(&text) {
                // Only a line naming the key can give it a value, and values are in kB.
                prop_assert!(meminfo.mem_total_bytes.is_none() || text.contains("MemTotal"));
                prop_assert!(meminfo.swap_total_bytes.is_none() || text.contains("SwapTotal"));
                for bytes in [meminfo.mem_total_bytes, meminfo.swap_total_bytes, meminfo.swap_free_bytes].into_iter().flatten() {
                    prop_assert_eq!(bytes % 1024, 0);
                }
            }
        }

        #[test]
        fn mem_total_round_trips(kilobytes in 0u64..1 << 40) {
            let meminfo = parse(&format!("MemTotal: {kilobytes} kB\n")).unwrap();
            prop_assert_eq!(meminfo.mem_total_bytes, Some(kilobytes * 1024));
        }
    }
}
