//! Reading the kernel's files (cgroupfs, procfs, sysfs): a missing file is "no data"
//! (`Ok(None)`), every other failure is an error that names the file.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Why a file's text could not be understood. The caller adds the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

/// A kernel file that exists but could not be read, understood or written.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("parsing {path}: {source}")]
    Parse { path: PathBuf, source: ParseError },
    #[error("writing {line:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        line: String,
        source: io::Error,
    },
    #[error("{what}: the cgroup has no {controller} controller here")]
    NoController {
        what: String,
        controller: &'static str,
    },
}

/// Writes one line to a kernel file (the kernel takes each write as one command).
pub fn write_line(path: &Path, line: &str) -> Result<(), FileError> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut file| file.write_all(line.as_bytes()))
        .map_err(|source| FileError::Write {
            path: path.to_owned(),
            line: line.to_owned(),
            source,
        })
}

/// The text of a kernel file, or `None` when the file is not there: this kernel does not
/// have it, the controller is not enabled, or the cgroup was removed while we read it
/// (the kernel answers ENODEV for files of a cgroup that is being destroyed).
pub fn read_text(path: &Path) -> Result<Option<String>, FileError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if is_gone(&error) => Ok(None),
        Err(source) => Err(FileError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Reads `path` and parses it with `parse`; `Ok(None)` when the file is missing.
pub fn read_parsed<T>(
    path: &Path,
    parse: impl FnOnce(&str) -> Result<T, ParseError>,
) -> Result<Option<T>, FileError> {
    let Some(text) = read_text(path)? else {
        return Ok(None);
    };
    parse(&text).map(Some).map_err(|source| FileError::Parse {
        path: path.to_owned(),
        source,
    })
}

fn is_gone(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::NotFound || error.raw_os_error() == Some(libc::ENODEV)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::parse;

    #[test]
    fn missing_file_is_no_data_and_bad_text_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("memory.peak");
        assert!(read_parsed(&missing, parse::single_u64).unwrap().is_none());

        let good = dir.path().join("memory.current");
        std::fs::write(&good, "4096\n").unwrap();
        assert_eq!(read_parsed(&good, parse::single_u64).unwrap(), Some(4096));

        let garbled = dir.path().join("pids.current");
        std::fs::write(&garbled, "lots\n").unwrap();
        let error = read_parsed(&garbled, parse::single_u64).unwrap_err();
        assert!(error.to_string().contains("pids.current"), "{error}");
    }

    #[test]
    fn a_directory_is_a_read_error_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let error = read_text(dir.path()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains(&dir.path().display().to_string()),
            "{error}"
        );
    }
}
