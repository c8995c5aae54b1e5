//! Reading the kernel's files (cgroupfs, procfs, sysfs): a missing file is "no data"
//! (`Ok(None)`), every other failure is an error that names the file.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
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

/// Why a file gave no data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absent {
    /// ENOENT: there is no such file (this kernel or layout lacks it), or its directory is
    /// gone.
    NotFound,
    /// ENODEV: the file's cgroup is being removed.
    Removed,
}

/// Reads a kernel file into this thread's buffer and hands the text to `parse`.
///
/// One `open`, one `read`, one `close` for files that fit the buffer: procfs, sysfs and
/// cgroupfs produce a file's whole text on the first read when the buffer has room (their
/// `seq_file` reads stop short only at the end), and so does a regular file, so a short
/// read is the end. The buffer is kept by the thread and only grows, so reading allocates
/// nothing after the first files.
pub fn read_with<T>(
    path: &Path,
    parse: impl FnOnce(&str) -> Result<T, ParseError>,
) -> Result<Result<T, Absent>, FileError> {
    let result = match File::open(path) {
        Ok(file) => read_open(file, &|| path.to_owned(), parse),
        Err(error) => absent(path, error).map(Err),
    };
    trace_read(&|| path.to_owned(), &result);
    result
}

/// Like `read_with`, for file `name` of an open directory: the kernel then looks up one
/// name rather than walking the whole path again. `path` names the file in errors.
pub fn read_in_dir<T>(
    dir: &OwnedFd,
    name: &str,
    path: &dyn Fn() -> PathBuf,
    parse: impl FnOnce(&str) -> Result<T, ParseError>,
) -> Result<Result<T, Absent>, FileError> {
    let result = match open_in(dir, name) {
        Ok(file) => read_open(file, path, parse),
        Err(error) => absent(&path(), error).map(Err),
    };
    trace_read(path, &result);
    result
}

/// Every file a scrape tries, with whether it was there (`--log.level=trace`): the
/// benchmark's floor reads the same files where it cannot trace system calls.
fn trace_read<T>(path: &dyn Fn() -> PathBuf, result: &Result<Result<T, Absent>, FileError>) {
    if tracing::enabled!(tracing::Level::TRACE) {
        let found = matches!(result, Ok(Ok(_)));
        tracing::trace!(file = %path().display(), found, "file read");
    }
}

/// A directory opened only to open files in it (`O_PATH`: no read access is checked).
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(path)
        .map(OwnedFd::from)
}

/// `openat(2)` of `name` in `dir`, read-only.
fn open_in(dir: &OwnedFd, name: &str) -> io::Result<File> {
    // The name with its terminating NUL, on the stack: cgroup file names are short.
    let mut bytes = [0u8; 128];
    if name.len() >= bytes.len() || name.bytes().any(|byte| byte == 0 || byte == b'/') {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    bytes[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: `bytes` is NUL-terminated and outlives the call; `dir` is an open descriptor.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            bytes.as_ptr().cast(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Reads an open file into this thread's buffer and hands the text to `parse`.
fn read_open<T>(
    mut file: File,
    path: &dyn Fn() -> PathBuf,
    parse: impl FnOnce(&str) -> Result<T, ParseError>,
) -> Result<Result<T, Absent>, FileError> {
    use std::cell::RefCell;
    use std::io::Read;

    thread_local! {
        static BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; 16 * 1024]);
    }
    BUFFER.with_borrow_mut(|buffer| {
        let mut filled = 0;
        loop {
            if filled == buffer.len() {
                buffer.resize(buffer.len() * 2, 0);
            }
            let room = buffer.len() - filled;
            match file.read(&mut buffer[filled..]) {
                Ok(read) => {
                    filled += read;
                    if read < room {
                        break;
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return absent(&path(), error).map(Err),
            }
        }
        let text = std::str::from_utf8(&buffer[..filled]).map_err(|_| FileError::Parse {
            path: path(),
            source: ParseError("the file is not UTF-8 text".to_owned()),
        })?;
        parse(text).map(Ok).map_err(|source| FileError::Parse {
            path: path(),
            source,
        })
    })
}

/// A missing file is no data; any other failure is an error naming it.
fn absent(path: &Path, error: io::Error) -> Result<Absent, FileError> {
    if error.kind() == io::ErrorKind::NotFound {
        Ok(Absent::NotFound)
    } else if error.raw_os_error() == Some(libc::ENODEV) {
        Ok(Absent::Removed)
    } else {
        Err(FileError::Read {
            path: path.to_owned(),
            source: error,
        })
    }
}

/// The text of a kernel file, or `None` when the file is not there: this kernel does not
/// have it, the controller is not enabled, or the cgroup was removed while we read it
/// (the kernel answers ENODEV for files of a cgroup that is being destroyed).
pub fn read_text(path: &Path) -> Result<Option<String>, FileError> {
    read_parsed(path, |text| Ok(text.to_owned()))
}

/// Reads `path` and parses it with `parse`; `Ok(None)` when the file is missing.
pub fn read_parsed<T>(
    path: &Path,
    parse: impl FnOnce(&str) -> Result<T, ParseError>,
) -> Result<Option<T>, FileError> {
    Ok(read_with(path, parse)?.ok())
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
    fn files_larger_than_the_buffer_are_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("memory.numa_stat");
        let text: String = (0..20_000).map(|n| format!("key{n} {n}\n")).collect();
        std::fs::write(&big, &text).unwrap();
        assert_eq!(read_text(&big).unwrap().unwrap(), text);
        // And a small one after it, from the same (grown) buffer.
        let small = dir.path().join("pids.current");
        std::fs::write(&small, "7\n").unwrap();
        assert_eq!(read_text(&small).unwrap().as_deref(), Some("7\n"));
        assert_eq!(
            read_with(&dir.path().join("nonesuch"), |_| Ok(())).unwrap(),
            Err(Absent::NotFound)
        );
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
