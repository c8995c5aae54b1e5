//! What one scrape costs against the floor: reading the very files it reads, and nothing
//! else, in the same run.
//!
//! Creates N real cgroups (N = 100, 1,000, 10,000; `STEVEDORE_BENCH_SIZES=100,1000` to
//! choose) under a parent of its own in every mounted controller tree, puts a sleeping
//! process in one of every hundred, records with `strace` the files one scrape of an
//! exporter opens, then measures another exporter, never traced, and prints per N:
//! - the floor: those files opened, read and closed by one thread of this process, and
//!   the share of its CPU in user mode; and the parallel floor, the same files read by one
//!   thread per CPU (as the exporter reads them by default), whose CPU shows what reading
//!   in parallel costs the kernel and whose wall is the best a parallel scrape can do;
//!   floors and scrapes take turns, round by round;
//! - the exporter's CPU per scrape (its `utime + stime` over many scrapes) and the share in
//!   user mode, its wall per scrape (median, as Prometheus sees it, HTTP and encoding
//!   included), and the ratios;
//! - series, bytes, the exporter's peak RSS, and the files it tried that were not there.
//!
//! With `STEVEDORE_BENCH_CONTAINERS=50`, a last row (`50c`) measures the same for 50
//! running Docker containers (the exporter on the engine's socket, no raw cgroups);
//! `STEVEDORE_BENCH_SIZES=` (empty) leaves the raw cgroups out.
//!
//! Needs root (it writes cgroupfs). Run with `cargo bench --bench scrape`; extra exporter
//! flags in `STEVEDORE_BENCH_ARGS` (space-separated), another exporter binary in
//! `STEVEDORE_BINARY`. Without `strace` (the cgroup v2 VM: `tests/v2-kernel/bench.sh`) the
//! files are taken from the first exporter's trace log, which names the files it reads,
//! and system calls are not counted.

use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use stevedore::host::procs;

const CGROUPFS: &str = "/sys/fs/cgroup";

/// The controller trees to create cgroups in: every mounted tree but the named-only ones.
fn trees() -> Vec<PathBuf> {
    let mut trees = Vec::new();
    let mut seen = Vec::new();
    for entry in fs::read_dir(CGROUPFS).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "systemd" || name == "cpuset" {
            continue; // systemd's own tree; cpuset needs cpus and mems set before use
        }
        // `cpu` and `cpuacct` are often links to one `cpu,cpuacct` tree.
        let real = fs::canonicalize(&path).unwrap();
        if real.is_dir() && !seen.contains(&real) {
            seen.push(real);
            trees.push(path);
        }
    }
    if trees.is_empty() || !Path::new(CGROUPFS).join("cgroup.controllers").exists() {
        return trees;
    }
    // A pure v2 host: the one tree.
    vec![PathBuf::from(CGROUPFS)]
}

/// N cgroups under `/<parent>` in every tree, some with a process in them.
struct Cgroups {
    parent: String,
    trees: Vec<PathBuf>,
    count: usize,
    sleepers: Vec<Child>,
}

impl Cgroups {
    fn create(count: usize) -> Cgroups {
        let parent = format!("stevedore-bench-{}", std::process::id());
        let trees = trees();
        for tree in &trees {
            fs::create_dir_all(tree.join(&parent)).unwrap();
        }
        // On cgroup v2 a child has the controllers its parent enables.
        let controllers = Path::new(CGROUPFS).join("cgroup.subtree_control");
        if controllers.exists() {
            let enabled = fs::read_to_string(&controllers).unwrap();
            let wanted: String = enabled
                .split_whitespace()
                .map(|controller| format!("+{controller} "))
                .collect();
            let own = Path::new(CGROUPFS)
                .join(&parent)
                .join("cgroup.subtree_control");
            fs::write(own, wanted.trim()).unwrap();
        }
        for tree in &trees {
            for n in 0..count {
                fs::create_dir(tree.join(&parent).join(format!("c{n:05}"))).unwrap();
            }
        }
        let mut sleepers = Vec::new();
        for n in (0..count).step_by(100) {
            let sleeper = Command::new("sleep").arg("600").spawn().unwrap();
            for tree in &trees {
                let procs = tree
                    .join(&parent)
                    .join(format!("c{n:05}"))
                    .join("cgroup.procs");
                fs::write(procs, sleeper.id().to_string()).unwrap();
            }
            sleepers.push(sleeper);
        }
        Cgroups {
            parent,
            trees,
            count,
            sleepers,
        }
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        for sleeper in &mut self.sleepers {
            let _ = sleeper.kill();
            let _ = sleeper.wait();
        }
        for tree in &self.trees {
            for n in 0..self.count {
                let _ = fs::remove_dir(tree.join(&self.parent).join(format!("c{n:05}")));
            }
            let _ = fs::remove_dir(tree.join(&self.parent));
        }
    }
}

/// N running Docker containers of a busybox image built here (there is no registry), all
/// labelled `stevedore.test=bench-scrape`, removed with the image when dropped.
struct Containers {
    ids: Vec<String>,
}

const CONTAINER_IMAGE: &str = "stevedore-bench-busybox:latest";
const CONTAINER_LABEL: &str = "stevedore.test=bench-scrape";

fn docker(args: &[&str]) -> String {
    let output = Command::new("docker").args(args).output().unwrap();
    assert!(
        output.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

impl Containers {
    fn start(count: usize) -> Containers {
        let context = tempfile::tempdir().unwrap();
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|path| Path::new(path).exists())
            .expect("busybox (Debian's busybox-static) is installed");
        fs::copy(busybox, context.path().join("busybox")).unwrap();
        fs::write(
            context.path().join("Dockerfile"),
            "FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\"]\n",
        )
        .unwrap();
        let context = context.path().to_str().unwrap();
        docker(&[
            "build",
            "-q",
            "--label",
            CONTAINER_LABEL,
            "-t",
            CONTAINER_IMAGE,
            context,
        ]);
        let mut containers = Containers { ids: Vec::new() };
        for _ in 0..count {
            let id = docker(&[
                "run",
                "-d",
                "--label",
                CONTAINER_LABEL,
                CONTAINER_IMAGE,
                "sleep",
                "3600",
            ]);
            containers.ids.push(id);
        }
        containers
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = Command::new("docker").args(["rm", "-f", id]).output();
        }
        let _ = Command::new("docker")
            .args(["rmi", CONTAINER_IMAGE])
            .output();
    }
}

/// What a row of the table measures: raw cgroups, or containers the engine runs.
enum Workload {
    Cgroups(Cgroups),
    Containers(Containers),
}

impl Workload {
    /// The exporter's flags for this workload.
    fn exporter_args(&self) -> Vec<String> {
        match self {
            Workload::Cgroups(cgroups) => vec![
                format!("--cgroup.raw=/{}/*", cgroups.parent),
                "--docker.host=unix:///nonexistent/docker.sock".to_owned(),
            ],
            Workload::Containers(_) => Vec::new(),
        }
    }

    /// Whether a scrape shows the whole workload (the engine's containers are listed
    /// shortly after the exporter starts).
    fn is_seen_in(&self, body: &str) -> bool {
        match self {
            Workload::Cgroups(_) => true,
            Workload::Containers(containers) => body.contains(&format!(
                "stevedore_scrape_targets{{source=\"docker\"}} {}\n",
                containers.ids.len()
            )),
        }
    }

    fn row_name(&self) -> String {
        match self {
            Workload::Cgroups(cgroups) => cgroups.count.to_string(),
            Workload::Containers(containers) => format!("{}c", containers.ids.len()),
        }
    }
}

struct Exporter {
    child: Child,
    url: String,
}

impl Exporter {
    fn start(workload: &Workload, extra: &[&str], stderr: Stdio) -> Exporter {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let args = std::env::var("STEVEDORE_BENCH_ARGS").unwrap_or_default();
        let binary = std::env::var("STEVEDORE_BINARY")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_stevedore").to_owned());
        let child = Command::new(binary)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(workload.exporter_args())
            .arg("--log.level=error")
            // A scrape of 10,000 cgroups under strace takes longer than the default 10 s.
            .arg("--web.request-timeout=10m")
            .args(args.split_whitespace())
            .args(extra)
            .stderr(stderr)
            .spawn()
            .unwrap();
        let exporter = Exporter {
            child,
            url: format!("http://127.0.0.1:{port}/metrics"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !exporter
            .try_scrape()
            .is_some_and(|body| workload.is_seen_in(&body))
        {
            assert!(
                Instant::now() < deadline,
                "the exporter did not start or see the workload"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        exporter
    }

    fn scrape(&self) -> String {
        self.try_scrape().expect("a scrape")
    }

    /// The metrics, or `None` when the exporter does not answer (yet).
    fn try_scrape(&self) -> Option<String> {
        ureq::get(&self.url)
            .call()
            .ok()?
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_string()
            .ok()
    }

    /// User and system CPU of the whole process, dead threads included, in seconds.
    fn cpu_seconds(&self) -> CpuTime {
        let stat = procs::read_stat(Path::new("/proc"), &self.child.id().to_string())
            .unwrap()
            .expect("the exporter is running");
        CpuTime {
            user: stat.utime_ticks as f64 / procs::ticks_per_second(),
            system: stat.stime_ticks as f64 / procs::ticks_per_second(),
        }
    }

    fn peak_rss_mb(&self) -> f64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status
            .lines()
            .find(|line| line.starts_with("VmHWM:"))
            .unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<f64>()
            .unwrap()
            / 1024.0
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one scrape opened: the files read, the opens that failed, and the system calls
/// (`None`: not counted).
struct Trace {
    files: Vec<PathBuf>,
    failed_opens: usize,
    syscalls: Option<usize>,
}

fn strace_works() -> bool {
    std::env::var_os("STEVEDORE_BENCH_NO_STRACE").is_none()
        && Command::new("strace")
            .arg("-V")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
}

/// The files of one scrape, from the trace log of an exporter of their own.
fn files_from_trace_log(workload: &Workload) -> Trace {
    let log = tempfile::NamedTempFile::new().unwrap();
    let exporter = Exporter::start(
        workload,
        &["--log.level=trace", "--log.format=logfmt"],
        Stdio::from(log.reopen().unwrap()),
    );
    // The first scrape learns what is missing; the second reads what every later one does.
    exporter.scrape();
    let before = fs::read_to_string(log.path()).unwrap().len();
    exporter.scrape();
    let text = fs::read_to_string(log.path()).unwrap();
    let mut trace = Trace {
        files: Vec::new(),
        failed_opens: 0,
        syscalls: None,
    };
    for line in text[before..]
        .lines()
        .filter(|line| line.contains("file read"))
    {
        let file = line
            .split_whitespace()
            .find_map(|field| field.strip_prefix("file="))
            .map(|file| file.trim_matches('"'));
        match (file, line.contains("found=true")) {
            (Some(file), true) => trace.files.push(PathBuf::from(file)),
            (Some(_), false) => trace.failed_opens += 1,
            (None, _) => {}
        }
    }
    trace
}

fn trace_one_scrape(exporter: &Exporter) -> Trace {
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut strace = Command::new("strace")
        .args(["-f", "-qq", "-y", "-o"])
        .arg(log.path())
        .args(["-p", &exporter.child.id().to_string()])
        .stderr(Stdio::null())
        .spawn()
        .expect("strace must be installed");
    // strace prints nothing when attached; a scrape that lands in the log says it is.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        exporter.scrape();
        let text = fs::read_to_string(log.path()).unwrap_or_default();
        if text.contains("openat(") {
            break;
        }
        assert!(Instant::now() < deadline, "strace did not attach");
    }
    let attached = fs::read_to_string(log.path()).unwrap().len();
    exporter.scrape();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(strace.id() as i32, libc::SIGINT) };
    strace.wait().unwrap();
    let text = fs::read_to_string(log.path()).unwrap();
    let one = &text[attached..];
    let mut trace = Trace {
        files: Vec::new(),
        failed_opens: 0,
        syscalls: Some(0),
    };
    // A call another thread interrupts is split: `<tid> openat(... <unfinished ...>`, then
    // `<tid> <... openat resumed>) = result`. Opens are judged by their result.
    let mut unfinished: std::collections::HashMap<&str, String> = Default::default();
    for line in one.lines() {
        if line.contains("+++") || line.contains("---") {
            continue;
        }
        let tid = line.split_whitespace().next().unwrap_or_default();
        let (path, result) = if line.contains(" resumed>") {
            match unfinished.remove(tid) {
                Some(path) => (path, line),
                None => continue,
            }
        } else {
            *trace.syscalls.as_mut().expect("counted") += 1;
            let Some(path) = opened_path(line) else {
                continue;
            };
            if line.contains("O_PATH") {
                continue; // a directory opened to open files in it, not a file read
            }
            if line.ends_with("<unfinished ...>") {
                unfinished.insert(tid, path);
                continue;
            }
            (path, line)
        };
        if !(path.starts_with(CGROUPFS) || path.starts_with("/proc")) {
            continue;
        }
        if result.contains("= -1 ") {
            trace.failed_opens += 1;
        } else {
            trace.files.push(PathBuf::from(path));
        }
    }
    trace
}

/// The file an `openat` line opens: `openat(AT_FDCWD, "/path", ...)`, or, for a name
/// relative to a directory descriptor (`-y` shows its path), `openat(5</dir>, "name", ...)`.
fn opened_path(line: &str) -> Option<String> {
    let (_, call) = line.split_once("openat(")?;
    let (dir, rest) = call.split_once(", \"")?;
    let name = rest.split('"').next()?;
    if dir == "AT_FDCWD" || name.starts_with('/') {
        return Some(name.to_owned());
    }
    let dir = dir.split_once('<')?.1.strip_suffix('>')?;
    Some(format!("{}/{name}", dir.trim_end_matches('/')))
}

/// CPU time in user and in system (kernel) mode, in seconds.
#[derive(Debug, Clone, Copy)]
struct CpuTime {
    user: f64,
    system: f64,
}

impl CpuTime {
    const ZERO: CpuTime = CpuTime {
        user: 0.0,
        system: 0.0,
    };

    fn plus(self, other: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user + other.user,
            system: self.system + other.system,
        }
    }

    fn total(self) -> f64 {
        self.user + self.system
    }

    /// The time from `before` to this.
    fn since(self, before: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user - before.user,
            system: self.system - before.system,
        }
    }

    /// The time of one of `rounds`.
    fn per_round(self, rounds: usize) -> CpuTime {
        CpuTime {
            user: self.user / rounds as f64,
            system: self.system / rounds as f64,
        }
    }

    /// The share in user mode, in percent.
    fn user_percent(self) -> f64 {
        100.0 * self.user / self.total()
    }
}

/// Opens, reads and closes each file into a buffer.
fn read_files(files: &[PathBuf], buffer: &mut [u8]) {
    for path in files {
        // A file that went away since the trace (a process exited) is skipped.
        if let Ok(mut file) = fs::File::open(path) {
            while let Ok(n) = file.read(buffer) {
                if n == 0 || n < buffer.len() {
                    break;
                }
            }
        }
    }
}

/// One round of the floor: the files read on `threads` threads that each take an equal run
/// of them. Its CPU is each thread's own, summed, and its wall the round's.
fn floor_round(files: &[PathBuf], threads: usize) -> (CpuTime, f64) {
    let run = files.len().div_ceil(threads).max(1);
    let started = Instant::now();
    let spent: Vec<CpuTime> = std::thread::scope(|scope| {
        let readers: Vec<_> = files
            .chunks(run)
            .map(|part| {
                scope.spawn(move || {
                    let mut buffer = vec![0u8; 1 << 16];
                    let before = thread_cpu_time();
                    read_files(part, &mut buffer);
                    thread_cpu_time().since(before)
                })
            })
            .collect();
        readers
            .into_iter()
            .map(|reader| reader.join().unwrap())
            .collect()
    });
    let wall = started.elapsed().as_secs_f64();
    let cpu = spent.into_iter().fold(CpuTime::ZERO, CpuTime::plus);
    (cpu, wall)
}

/// This thread's CPU time so far.
fn thread_cpu_time() -> CpuTime {
    // SAFETY: getrusage fills the struct it is given; zeroes are a valid rusage.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut usage);
        usage
    };
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 * 1e-6;
    CpuTime {
        user: seconds(usage.ru_utime),
        system: seconds(usage.ru_stime),
    }
}

/// The CPUs this process may run on: the exporter's reading threads by default, and the
/// parallel floor's.
fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn measure(workload: Workload) {
    // The files are recorded from an exporter of their own, so that the one measured has
    // never been slowed by tracing (its peak memory included).
    let trace = if strace_works() {
        let traced = Exporter::start(&workload, &[], Stdio::null());
        traced.scrape();
        trace_one_scrape(&traced)
    } else {
        files_from_trace_log(&workload)
    };
    let exporter = Exporter::start(&workload, &[], Stdio::null());
    for _ in 0..3 {
        exporter.scrape();
    }
    read_files(&trace.files, &mut vec![0u8; 1 << 16]);

    // Enough scrapes for about two seconds of CPU: the process' CPU time is counted in
    // clock ticks. The floors and the scrapes take turns, round by round, so that a
    // machine that slows down or speeds up during the run (a VM under emulation does)
    // weighs on both alike.
    let started = Instant::now();
    let body = exporter.scrape();
    let rounds = ((2.0 / started.elapsed().as_secs_f64()) as usize).clamp(7, 400);
    let (mut floor_cpu, mut parallel_floor_cpu) = (CpuTime::ZERO, CpuTime::ZERO);
    let (mut floor_walls, mut parallel_floor_walls, mut walls) =
        (Vec::new(), Vec::new(), Vec::new());
    // The exporter's CPU over the whole loop: it is idle while the floors run but for
    // what a scrape leaves after its answer (freeing the samples), which is the scrape's.
    let exporter_before = exporter.cpu_seconds();
    for _ in 0..rounds {
        let (round_cpu, round_wall) = floor_round(&trace.files, 1);
        floor_cpu = floor_cpu.plus(round_cpu);
        floor_walls.push(round_wall);
        let (round_cpu, round_wall) = floor_round(&trace.files, cpus());
        parallel_floor_cpu = parallel_floor_cpu.plus(round_cpu);
        parallel_floor_walls.push(round_wall);
        let started = Instant::now();
        exporter.scrape();
        walls.push(started.elapsed().as_secs_f64());
    }
    let (floor_cpu, parallel_floor_cpu, cpu) = (
        floor_cpu.per_round(rounds),
        parallel_floor_cpu.per_round(rounds),
        exporter
            .cpu_seconds()
            .since(exporter_before)
            .per_round(rounds),
    );
    let (floor_wall, parallel_floor_wall, wall) = (
        median(floor_walls),
        median(parallel_floor_walls),
        median(walls),
    );
    let series = body
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .count();
    println!(
        "{:>6} {:>6} {:>5} {:>6} {:>9.2} {:>6.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>6.0} {:>9.2} {:>6.2} {:>6.2} {:>6.2} {:>8} {:>7.1} {:>6.1} {:>5}",
        workload.row_name(),
        trace.files.len(),
        trace.failed_opens,
        trace.syscalls.map_or("-".to_owned(), |calls| format!(
            "{:.1}",
            calls as f64 / trace.files.len().max(1) as f64
        )),
        floor_cpu.total() * 1e3,
        floor_cpu.user_percent(),
        floor_wall * 1e3,
        parallel_floor_cpu.total() * 1e3,
        parallel_floor_wall * 1e3,
        cpu.total() * 1e3,
        cpu.user_percent(),
        wall * 1e3,
        cpu.total() / floor_cpu.total(),
        cpu.total() / parallel_floor_cpu.total(),
        wall / floor_wall,
        series,
        body.len() as f64 / 1e6,
        exporter.peak_rss_mb(),
        rounds,
    );
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("the scrape benchmark creates cgroups: run it as root");
        std::process::exit(1);
    }
    let sizes: Vec<usize> = std::env::var("STEVEDORE_BENCH_SIZES")
        .unwrap_or_else(|_| "100,1000,10000".to_owned())
        .split(',')
        .filter(|size| !size.trim().is_empty())
        .map(|size| size.trim().parse().expect("STEVEDORE_BENCH_SIZES: numbers"))
        .collect();
    println!(
        "cgroup trees: {}; CPUs: {}",
        trees()
            .iter()
            .map(|tree| tree.display().to_string())
            .collect::<Vec<_>>()
            .join(" "),
        cpus()
    );
    println!(
        "{:>6} {:>6} {:>5} {:>6} {:>9} {:>6} {:>9} {:>9} {:>9} {:>9} {:>6} {:>9} {:>6} {:>6} {:>6} {:>8} {:>7} {:>6} {:>5}",
        "N",
        "files",
        "miss",
        "calls",
        "floor.cpu",
        "user",
        "floor.wall",
        "pfloor.cpu",
        "pf.wall",
        "cpu(ms)",
        "user",
        "wall(ms)",
        "cpu/f",
        "cpu/pf",
        "wall/f",
        "series",
        "MB",
        "RSS",
        "runs"
    );
    println!(
        "{:>6} {:>6} {:>5} {:>6} {:>9} {:>6} {:>9} {:>9} {:>9} {:>9} {:>6} {:>9} {:>6} {:>6} {:>6} {:>8} {:>7} {:>6} {:>5}",
        "",
        "opened",
        "",
        "/file",
        "(ms)",
        "%",
        "(ms)",
        "(ms)",
        "(ms)",
        "/scrape",
        "%",
        "median",
        "",
        "",
        "",
        "",
        "body",
        "MB",
        ""
    );
    for count in sizes {
        measure(Workload::Cgroups(Cgroups::create(count)));
    }
    if let Ok(count) = std::env::var("STEVEDORE_BENCH_CONTAINERS") {
        let count = count.parse().expect("STEVEDORE_BENCH_CONTAINERS: a number");
        measure(Workload::Containers(Containers::start(count)));
    }
}
