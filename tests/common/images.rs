//! Build contexts for the images tests build, there being no registry to pull from:
//! stevedore's own from the repository's `Dockerfile`, and a Prometheus `FROM scratch` with
//! Debian's `prometheus` binary. `Containers::build_image` builds them under a test's label.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{disk_scratch_dir, repository, require_program, static_binary};

/// Where the `Dockerfile` and `.dockerignore` expect the binary (the release build's path).
const BINARY_IN_CONTEXT: &str = "target/x86_64-unknown-linux-gnu/release/stevedore";

/// A build context laid out as the repository is when the `Dockerfile`'s comments are
/// followed: the `Dockerfile`, the `.dockerignore` and the static binary at the release
/// path, so the image is built from the shipped files as they are.
pub fn stevedore_context() -> tempfile::TempDir {
    let dir = disk_scratch_dir();
    for file in ["Dockerfile", ".dockerignore"] {
        std::fs::copy(repository(file), dir.path().join(file))
            .unwrap_or_else(|error| panic!("copy {file}: {error}"));
    }
    let binary = dir.path().join(BINARY_IN_CONTEXT);
    std::fs::create_dir_all(binary.parent().unwrap()).unwrap();
    link_or_copy(&static_binary(), &binary);
    dir
}

/// The README's `docker run` line for the image, as the words after `docker`.
pub fn documented_run_line() -> Vec<String> {
    let readme = std::fs::read_to_string(repository("README.md")).unwrap();
    let block = readme
        .split("```")
        .find(|block| block.starts_with("sh\n") && block.contains("docker run -d --name stevedore"))
        .expect("the README has a `docker run -d --name stevedore` block");
    let joined = block.replace("\\\n", " ");
    let line = joined
        .lines()
        .find(|line| line.trim_start().starts_with("docker run"))
        .unwrap();
    line.split_whitespace().skip(1).map(str::to_owned).collect()
}

/// A build context for a Prometheus image: Debian's `prometheus` binary and the shared
/// libraries `ldd` says it loads (none when it is static), an empty `/prometheus` for its
/// data, and `prometheus` as the entry point, as in the official image.
pub fn prometheus_context() -> tempfile::TempDir {
    require_program("prometheus", "prometheus");
    require_program("ldd", "libc-bin");
    let binary = program_path("prometheus");
    let dir = disk_scratch_dir();
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::create_dir_all(rootfs.join("prometheus")).unwrap();
    std::fs::create_dir_all(rootfs.join("etc/prometheus")).unwrap();
    std::fs::copy(&binary, rootfs.join("bin/prometheus")).unwrap();
    for library in shared_libraries(&binary) {
        let inside = rootfs.join(library.strip_prefix("/").unwrap());
        std::fs::create_dir_all(inside.parent().unwrap()).unwrap();
        // `copy` follows the symbolic links the library paths usually are.
        std::fs::copy(&library, &inside)
            .unwrap_or_else(|error| panic!("copy {library:?}: {error}"));
    }
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY rootfs/ /\nENTRYPOINT [\"/bin/prometheus\"]\n",
    )
    .unwrap();
    dir
}

/// The libraries `ldd` lists with a path (`libc.so.6 => /lib/…`, `/lib64/ld-linux…`); the
/// vDSO has none. A static binary has none at all.
fn shared_libraries(binary: &Path) -> Vec<PathBuf> {
    let output = Command::new("ldd").arg(binary).output().expect("run ldd");
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .filter_map(|line| {
            let path = match line.split_once("=>") {
                Some((_, target)) => target.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

fn program_path(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").expect("PATH is set");
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{program} is on the PATH"))
}

/// A hard link where the two paths share a filesystem (the binary is tens of megabytes in a
/// debug build), a copy otherwise.
fn link_or_copy(from: &Path, to: &Path) {
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to).unwrap_or_else(|error| panic!("copy {from:?}: {error}"));
    }
}
