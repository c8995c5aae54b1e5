//! Shared test harness: the real `stevedore` binary, a real Docker Engine, and a test image
//! built without a registry (`FROM scratch` + Debian's static busybox).

#![allow(dead_code)]

pub mod bench;
pub mod images;
pub mod prom;
pub mod prometheus_server;
pub mod proxy;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use prom::Scrape;

pub const IMAGE: &str = "stevedore-test-busybox:latest";
/// Every container, image and network a test creates carries this label key.
pub const TEST_LABEL: &str = "stevedore.test";

pub fn stevedore_binary() -> &'static str {
    env!("CARGO_BIN_EXE_stevedore")
}

/// The repository's file at `path` (relative to its root).
pub fn repository(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

pub fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target tmp dir is inside the target dir")
        .to_owned()
}

/// A statically linked stevedore, for places without a C library (the v2 VM's initramfs, a
/// `FROM scratch` image): `STEVEDORE_STATIC_BINARY` when set (`scripts/test` builds it),
/// otherwise built here.
pub fn static_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("STEVEDORE_STATIC_BINARY") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "STEVEDORE_STATIC_BINARY={path:?} is not a file"
        );
        return path;
    }
    let target = target_dir().join("static");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .args([
            "build",
            "--release",
            "--bin",
            "stevedore",
            "--target",
            "x86_64-unknown-linux-gnu",
            "--target-dir",
        ])
        .arg(&target)
        .status()
        .expect("run cargo");
    assert!(status.success(), "building the static binary failed");
    target.join("x86_64-unknown-linux-gnu/release/stevedore")
}

/// Stops a test that needs a program from outside the repository, with one line saying
/// what is missing and where it comes from.
pub fn require_program(program: &str, debian_package: &str) {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()));
    assert!(
        on_path,
        "`{program}` is not installed: it is in Debian's `{debian_package}` package \
         (`scripts/test` installs everything the tests need)"
    );
}

/// Stops a test that needs a Docker Engine when none answers, saying so in one line.
pub fn require_engine() {
    require_program("docker", "docker.io");
    if let Err(error) = docker_result(&["version", "--format", "{{.Server.Version}}"]) {
        let first_line = error.lines().next().unwrap_or_default().to_owned();
        panic!(
            "no Docker Engine answers ({first_line}): start one (`dockerd`), or run \
             `scripts/test`, which starts one"
        );
    }
}

/// A client of the engine the docker CLI talks to (`DOCKER_HOST`, else the default socket).
pub fn engine_client() -> stevedore::docker::EngineClient {
    let host = std::env::var("DOCKER_HOST").unwrap_or_default();
    let endpoint = stevedore::docker::Endpoint::parse(&host).expect("DOCKER_HOST");
    stevedore::docker::EngineClient::new(endpoint)
}

/// Runs the docker CLI; panics with its stderr when it fails.
pub fn docker(args: &[&str]) -> String {
    docker_result(args).unwrap_or_else(|error| panic!("docker {args:?}: {error}"))
}

pub fn docker_result(args: &[&str]) -> Result<String, String> {
    let output = Command::new("docker")
        .args(args)
        .output()
        .map_err(|error| format!("cannot run docker: {error}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}

/// Builds the test image once (the engine's cache makes rebuilds instant).
pub fn ensure_image() {
    require_engine();
    if docker_result(&["image", "inspect", IMAGE]).is_ok() {
        return;
    }
    require_program("busybox", "busybox-static");
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|path| Path::new(path).exists())
        .expect("busybox is on the PATH");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(busybox, dir.path().join("busybox")).unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nCMD [\"sh\"]\n",
    )
    .unwrap();
    let label = format!("{TEST_LABEL}=image");
    docker(&[
        "build",
        "-q",
        "--label",
        &label,
        "-t",
        IMAGE,
        dir.path().to_str().unwrap(),
    ]);
}

/// Keeps tests that count every engine event apart from tests that cause events: each
/// engine test holds the lock shared; a counting test holds it alone. (A file lock, since
/// nextest runs each test in its own process.)
pub struct EngineLock(std::fs::File);

impl EngineLock {
    fn take(operation: libc::c_int) -> EngineLock {
        use std::os::fd::AsRawFd;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(std::env::temp_dir().join("stevedore-test-engine.lock"))
            .unwrap();
        // SAFETY: flock on a file descriptor we own; it blocks until granted.
        let result = unsafe { libc::flock(file.as_raw_fd(), operation) };
        assert_eq!(result, 0, "flock: {}", std::io::Error::last_os_error());
        EngineLock(file)
    }

    pub fn shared() -> EngineLock {
        EngineLock::take(libc::LOCK_SH)
    }

    pub fn exclusive() -> EngineLock {
        EngineLock::take(libc::LOCK_EX)
    }
}

/// The containers (and networks and images) of one test: created with its label, all removed
/// when dropped (and any left over from an earlier, interrupted run removed at the start).
pub struct Containers {
    pub label: String,
    // Dropped after the containers are removed (fields drop after `Drop::drop`).
    _lock: EngineLock,
}

impl Containers {
    /// For a test that may run beside other engine tests.
    pub fn new(test: &str) -> Containers {
        Containers::with_lock(test, EngineLock::shared())
    }

    /// For a test that must be the only one causing engine events while it runs.
    pub fn alone(test: &str) -> Containers {
        Containers::with_lock(test, EngineLock::exclusive())
    }

    fn with_lock(test: &str, lock: EngineLock) -> Containers {
        ensure_image();
        let containers = Containers {
            label: format!("{TEST_LABEL}={test}"),
            _lock: lock,
        };
        containers.remove_all();
        containers
    }

    /// `docker run -d` with this test's label; returns the full container id.
    pub fn run(&self, args: &[&str]) -> String {
        let mut full = vec!["run", "-d", "--label", &self.label];
        full.extend_from_slice(args);
        docker(&full)
    }

    /// `docker create` with this test's label.
    pub fn create(&self, args: &[&str]) -> String {
        let mut full = vec!["create", "--label", &self.label];
        full.extend_from_slice(args);
        docker(&full)
    }

    /// `docker network create` with this test's label; the network is removed with the
    /// containers.
    pub fn network(&self, name: &str) -> String {
        docker(&["network", "create", "--label", &self.label, name])
    }

    /// `docker build` of `context` tagged `tag`, with this test's label; the image is removed
    /// with the containers. Built under the test's engine lock, since a build and a removal
    /// are engine events too.
    pub fn build_image(&self, tag: &str, context: &Path) {
        let context = context.to_str().expect("a UTF-8 path");
        docker(&["build", "-q", "--label", &self.label, "-t", tag, context]);
    }

    pub fn remove_all(&self) {
        let filter = format!("label={}", self.label);
        let ids = docker(&["ps", "-aq", "--filter", &filter]);
        for id in ids.split_whitespace() {
            let _ = docker_result(&["rm", "-f", "-v", id]);
        }
        // After the containers: the engine refuses to remove a network still in use.
        let networks = docker(&["network", "ls", "-q", "--filter", &filter]);
        for id in networks.split_whitespace() {
            let _ = docker_result(&["network", "rm", id]);
        }
        // Last, for the same reason: an image a container still uses stays.
        let mut images: Vec<String> = docker(&["images", "-q", "--filter", &filter])
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        images.dedup();
        for id in images {
            let _ = docker_result(&["rmi", "-f", &id]);
        }
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        self.remove_all();
    }
}

/// A running `stevedore` process, listening on a free loopback port.
pub struct Exporter {
    child: Child,
    pub address: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Exporter {
    /// Starts the exporter with `args` (plus a loopback port 0 listen address) and waits
    /// for it to say where it listens.
    pub fn start(args: &[&str]) -> Exporter {
        Exporter::start_wrapped(&[], args)
    }

    /// Starts the exporter as the last arguments of `wrapper` (a command that ends by running
    /// its arguments, e.g. `unshare … sh -c '…; exec "$@"' sh`); as `start` when empty.
    pub fn start_wrapped(wrapper: &[&str], args: &[&str]) -> Exporter {
        Exporter::start_program(Path::new(stevedore_binary()), wrapper, args)
    }

    /// As `start_wrapped`, with another stevedore binary (an installed one).
    pub fn start_program(binary: &Path, wrapper: &[&str], args: &[&str]) -> Exporter {
        let mut command = match wrapper.split_first() {
            Some((program, wrapper_args)) => {
                let mut command = Command::new(program);
                command.args(wrapper_args).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        let mut child = command
            .arg("--web.listen-address=127.0.0.1:0")
            .arg("--log.level=debug")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start stevedore");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        let thread_log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("message=listening")
                    && let Some(address) = logfmt_value(&line, "address")
                {
                    let _ = address_tx.send(address);
                }
                thread_log.lock().unwrap().push(line);
            }
        });
        let Ok(address) = address_rx.recv_timeout(Duration::from_secs(20)) else {
            // Not left running behind a failed test.
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "stevedore did not start listening; log: {:#?}",
                log.lock().unwrap()
            );
        };
        Exporter {
            child,
            address,
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    pub fn scrape(&self) -> Scrape {
        Scrape::parse(&self.get_text("/metrics"))
    }

    pub fn get_text(&self, path: &str) -> String {
        let mut response = ureq::get(&self.url(path))
            .call()
            .unwrap_or_else(|error| panic!("GET {path}: {error}"));
        response.body_mut().read_to_string().unwrap()
    }

    /// The exporter's log lines so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits (up to 10 s) for a log line holding every one of `words`.
    pub fn wait_for_log(&self, what: &str, words: &[&str]) {
        wait_for(what, Duration::from_secs(10), || {
            self.log()
                .iter()
                .any(|line| words.iter().all(|word| line.contains(word)))
                .then_some(())
        });
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn port(&self) -> u16 {
        let port = self.address.rsplit(':').next().expect("host:port");
        port.parse().expect("a port number")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the exporter to exit; fails the test if it has not within `timeout`.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        wait_for("the exporter to exit", timeout, || {
            self.child.try_wait().unwrap()
        })
    }

    /// Sends a signal to the exporter process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn logfmt_value(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!(" {key}="))? + key.len() + 2;
    let rest = &line[start..];
    let value = rest.split(' ').next()?;
    Some(value.trim_matches('"').to_owned())
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The whole-disk block device holding `path`: (`/dev/<name>`, `major:minor`). Throttle
/// rules apply to whole disks, not partitions.
pub fn disk_of(path: &Path) -> (String, String) {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(path).unwrap().dev();
    let (major, minor) = (libc_major(dev), libc_minor(dev));
    let mut sys =
        std::fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")).unwrap_or_else(|error| {
            panic!("{path:?} is on {major}:{minor}, not a block device: {error}")
        });
    if sys.join("partition").exists() {
        sys = sys.parent().unwrap().to_owned();
    }
    let name = sys.file_name().unwrap().to_string_lossy().into_owned();
    let number = std::fs::read_to_string(sys.join("dev"))
        .unwrap()
        .trim()
        .to_owned();
    (format!("/dev/{name}"), number)
}

fn libc_major(dev: u64) -> u64 {
    ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff)
}

fn libc_minor(dev: u64) -> u64 {
    ((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff)
}

/// A scratch directory on the project's disk (not tmpfs), for bind mounts that must
/// reach a real block device.
pub fn disk_scratch_dir() -> tempfile::TempDir {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tempfile::tempdir_in(base).unwrap()
}

/// The engine's cgroup driver (`cgroupfs` or `systemd`), asked once.
fn cgroup_driver() -> &'static str {
    static DRIVER: OnceLock<String> = OnceLock::new();
    DRIVER.get_or_init(|| docker(&["info", "--format", "{{.CgroupDriver}}"]))
}

/// The cgroup path the engine gives a container on this host (no `--cgroup-parent`):
/// `/docker/<id>` with the cgroupfs driver, `/system.slice/docker-<id>.scope` with systemd.
/// Known for a stopped container too, as the exporter names it.
pub fn cgroup_id(container_id: &str) -> String {
    match cgroup_driver() {
        "systemd" => format!("/system.slice/docker-{container_id}.scope"),
        _ => format!("/docker/{container_id}"),
    }
}

/// Whether this host runs cgroup v2 alone (no v1 controllers).
pub fn is_cgroup_v2_host() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// A container's directory in `controller`'s hierarchy on this host (v1), or in the one
/// hierarchy (v2).
pub fn container_cgroup_dir(controller: &str, container_id: &str) -> PathBuf {
    let relative = cgroup_id(container_id);
    let relative = relative.trim_start_matches('/');
    if is_cgroup_v2_host() {
        Path::new("/sys/fs/cgroup").join(relative)
    } else {
        Path::new("/sys/fs/cgroup").join(controller).join(relative)
    }
}

/// For a test that reads cgroup v1 files: false, with the reason printed, on a cgroup v2
/// host (where the v2 kernel test covers the same ground).
pub fn has_cgroup_v1_files(test: &str) -> bool {
    if is_cgroup_v2_host() {
        eprintln!("{test}: skipped: it reads cgroup v1 limit files, and this host runs cgroup v2");
        return false;
    }
    true
}

/// Nanoseconds since the epoch, on the clock the engine stamps events with.
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// Engine events between two instants, by (type, action without arguments), as the
/// engine itself reports them.
pub fn engine_event_tally(
    since_nanos: i64,
    until_nanos: i64,
) -> std::collections::BTreeMap<(String, String), f64> {
    let stamp = |nanos: i64| {
        format!(
            "{}.{:09}",
            nanos.div_euclid(1_000_000_000),
            nanos.rem_euclid(1_000_000_000)
        )
    };
    let lines = docker(&[
        "events",
        "--since",
        &stamp(since_nanos),
        "--until",
        &stamp(until_nanos),
        "--format",
        "{{.Type}}\t{{.Action}}",
    ]);
    let mut tally = std::collections::BTreeMap::new();
    for line in lines.lines().filter(|line| !line.is_empty()) {
        let (kind, action) = line.split_once('\t').unwrap();
        let action = action.split(':').next().unwrap().trim();
        *tally
            .entry((kind.to_owned(), action.to_owned()))
            .or_insert(0.0) += 1.0;
    }
    tally
}

/// `docker_events_total` of a scrape, by (type, action).
pub fn exported_event_counts(scrape: &Scrape) -> std::collections::BTreeMap<(String, String), f64> {
    scrape
        .find("docker_events_total", &[])
        .into_iter()
        .map(|sample| {
            (
                (
                    sample.labels["type"].clone(),
                    sample.labels["action"].clone(),
                ),
                sample.value,
            )
        })
        .collect()
}

/// What `after` counted beyond `before`, leaving out what did not move.
pub fn event_count_increase(
    before: &std::collections::BTreeMap<(String, String), f64>,
    after: &std::collections::BTreeMap<(String, String), f64>,
) -> std::collections::BTreeMap<(String, String), f64> {
    after
        .iter()
        .map(|(key, value)| (key.clone(), value - before.get(key).copied().unwrap_or(0.0)))
        .filter(|(_, increase)| *increase != 0.0)
        .collect()
}

/// Lints a text exposition with `promtool check metrics`.
pub fn promtool_check_metrics(text: &str) {
    use std::io::Write;
    require_program("promtool", "prometheus");
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every per-cgroup collector read every target without error.
pub fn assert_collectors_succeeded(scrape: &Scrape) {
    for collector in ["cpu", "memory", "blkio", "pids", "pressure"] {
        assert_eq!(
            scrape.expect(
                "stevedore_scrape_collector_success",
                &[("collector", collector)]
            ),
            1.0,
            "collector {collector}"
        );
    }
}

/// Waits until `path` exists inside the container (a workload's "done" marker).
pub fn wait_for_file_in(container: &str, path: &str) {
    wait_for(
        &format!("{path} in the container"),
        Duration::from_secs(20),
        || docker_result(&["exec", container, "test", "-e", path]).ok(),
    );
}

/// A process's peak resident memory (`VmHWM`), in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

/// How many files a process has open.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// The repository's v2 fixture tree (`cgroup/` and `proc/`).
pub fn v2_fixture_tree() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v2-cgroupfs")
}

/// An exporter over a fixture tree (`cgroup/` and `proc/`), without an engine, exporting
/// the tree's containers as raw cgroups.
pub fn fixture_exporter(tree: &Path, extra: &[&str]) -> Exporter {
    let mut args = vec![
        format!("--path.cgroupfs={}", tree.join("cgroup").display()),
        format!("--path.procfs={}", tree.join("proc").display()),
        "--docker.host=unix:///nonexistent/docker.sock".to_owned(),
        "--cgroup.raw=/docker/*".to_owned(),
    ];
    args.extend(extra.iter().map(|arg| arg.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Exporter::start(&args)
}
