//! The host most users run, end to end: Debian 13 with systemd as init, the unified cgroup v2
//! hierarchy, Docker's systemd cgroup driver (`/system.slice/docker-<id>.scope`) and the
//! engine Debian ships (26.x), in a VM made only of Debian's packages and booted under qemu.
//! Inside, `tests/v2-engine/guest.sh` runs the real-engine workloads of this suite against
//! that engine with a statically linked stevedore and gathers the raw evidence (scrapes, the
//! engine's inspect, stats and events JSON, the cgroup files) on a share; this test checks
//! every value against the `docker run` flags, the kernel's files and the engine's own API.
//!
//! The image is built by `tests/v2-engine/build-image.sh` when its cache is missing (a minute
//! or two from Debian's mirror; no mirror, no image: the test fails saying so) and kept under
//! `/var/cache/stevedore-test/`. The VM boots it under `tests/v2-engine/run-vm.sh`. The static
//! binary is `STEVEDORE_STATIC_BINARY` (scripts/test builds it), as for the kernel test.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::Scrape;
use serde_json::Value;

const MIB: f64 = 1024.0 * 1024.0;

fn harness(script: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/v2-engine")
        .join(script)
}

/// The statically linked stevedore the guest runs (its root has a C library, but not
/// necessarily the one this host links against).
fn static_binary() -> PathBuf {
    let path = std::env::var_os("STEVEDORE_STATIC_BINARY")
        .map(PathBuf::from)
        .expect(
            "STEVEDORE_STATIC_BINARY names the statically linked stevedore the VM runs \
         (scripts/test builds it and sets it)",
        );
    assert!(
        path.is_file(),
        "STEVEDORE_STATIC_BINARY={path:?} is not a file"
    );
    path
}

/// The cached image, built first when missing.
fn image() -> PathBuf {
    let output = Command::new(harness("build-image.sh"))
        .output()
        .expect("run build-image.sh");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the engine VM's image could not be had ({}):\n{stderr}",
        output.status
    );
    eprint!("{stderr}");
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

/// The evidence the guest left in the share.
struct Evidence {
    dir: PathBuf,
}

impl Evidence {
    fn text(&self, name: &str) -> String {
        let path = self.dir.join(name);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("the guest left no {name}: {error}"))
    }

    fn number(&self, name: &str) -> f64 {
        let text = self.text(name);
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} is not a number: {text:?}"))
    }

    fn json(&self, name: &str) -> Value {
        serde_json::from_str(&self.text(name))
            .unwrap_or_else(|error| panic!("{name} is not JSON: {error}"))
    }

    fn scrape(&self, name: &str) -> Scrape {
        Scrape::parse(&self.text(&format!("{name}.prom")))
    }

    /// Two numbers on one line: the uptimes a step started and ended at.
    fn window(&self, name: &str) -> (f64, f64) {
        let text = self.text(&format!("{name}.window"));
        let numbers: Vec<f64> = text
            .split_whitespace()
            .map(|word| word.parse().expect("a number"))
            .collect();
        assert_eq!(numbers.len(), 2, "{name}.window: {text:?}");
        (numbers[0], numbers[1])
    }

    /// A dump of cgroup directories: path → contents.
    fn cgroup(&self, name: &str) -> CgroupFiles {
        let text = self.text(&format!("{name}.cgroup"));
        let mut files = HashMap::new();
        let mut current: Option<(String, String)> = None;
        for line in text.lines() {
            if let Some(path) = line
                .strip_prefix("=== FILE ")
                .and_then(|rest| rest.strip_suffix(" ==="))
            {
                current = Some((path.to_owned(), String::new()));
            } else if line == "=== END FILE ===" {
                if let Some((path, body)) = current.take() {
                    files.insert(path, body);
                }
            } else if let Some((_, body)) = current.as_mut() {
                body.push_str(line);
                body.push('\n');
            }
        }
        CgroupFiles {
            name: name.to_owned(),
            files,
        }
    }

    /// Engine events of one `/events` answer, by (type, action without its arguments), as
    /// tests/common tallies them on a host.
    fn event_tally(&self, name: &str) -> BTreeMap<(String, String), f64> {
        let mut tally = BTreeMap::new();
        for event in self.events(name) {
            let action = event["Action"].as_str().unwrap_or_default();
            let action = action.split(':').next().unwrap_or_default().trim();
            let kind = event["Type"].as_str().unwrap_or_default();
            *tally
                .entry((kind.to_owned(), action.to_owned()))
                .or_insert(0.0) += 1.0;
        }
        tally
    }

    fn events(&self, name: &str) -> Vec<Value> {
        self.text(name)
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| serde_json::from_str(line).expect("an event is JSON"))
            .collect()
    }
}

struct CgroupFiles {
    name: String,
    files: HashMap<String, String>,
}

impl CgroupFiles {
    /// The file of that name in the dumped directory `dir` (below /sys/fs/cgroup).
    fn file(&self, dir: &str, file: &str) -> &str {
        let path = format!("/sys/fs/cgroup{dir}/{file}");
        let path = path.replace("//", "/");
        self.files
            .get(&path)
            .unwrap_or_else(|| panic!("{path} is not in the dump {}", self.name))
            .trim_end()
    }

    /// A key's value in a flat-keyed file (`cpu.stat`, `memory.events`).
    fn key(&self, dir: &str, file: &str, key: &str) -> f64 {
        let text = self.file(dir, file);
        text.lines()
            .find_map(|line| {
                let mut words = line.split_whitespace();
                (words.next() == Some(key)).then(|| words.next().unwrap_or_default())
            })
            .unwrap_or_else(|| panic!("no {key} in {dir}/{file}: {text}"))
            .parse()
            .unwrap_or_else(|_| panic!("{key} in {dir}/{file} is not a number"))
    }

    /// A key of one device's line in a nested-keyed file (`io.stat`).
    fn device_key(&self, dir: &str, file: &str, device: &str, key: &str) -> f64 {
        let text = self.file(dir, file);
        text.lines()
            .filter(|line| line.split_whitespace().next() == Some(device))
            .flat_map(str::split_whitespace)
            .find_map(|word| word.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key} for {device} in {dir}/{file}: {text}"))
            .parse()
            .unwrap_or_else(|_| panic!("{key} in {dir}/{file} is not a number"))
    }
}

/// The whole run: boot, gather, then every check in turn.
#[test]
fn docker_26_with_the_systemd_driver_on_cgroup_v2_end_to_end() {
    // mmdebstrap is build-image.sh's to ask for: a cached image does not need it.
    common::require_program("qemu-system-x86_64", "qemu-system-x86");
    let binary = static_binary();
    let image = image();
    // Kept after the run (and replaced by the next), so a failure can be read at leisure.
    let share = Path::new(env!("CARGO_TARGET_TMPDIR")).join("v2-engine-share");
    let _ = std::fs::remove_dir_all(&share);
    std::fs::create_dir_all(&share).unwrap();
    std::fs::copy(&binary, share.join("stevedore")).unwrap();
    std::fs::copy(harness("guest.sh"), share.join("guest.sh")).unwrap();
    let serial = share.join("serial.log");
    let output = Command::new(harness("run-vm.sh"))
        .arg("--image")
        .arg(&image)
        .arg("--share")
        .arg(&share)
        .arg("--out")
        .arg(&serial)
        .output()
        .expect("run run-vm.sh");
    let log = std::fs::read_to_string(&serial).unwrap_or_default();
    let harness_log = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = log.lines().rev().take(60).collect::<Vec<_>>();
    let tail = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
    assert!(
        output.status.success(),
        "the VM did not power off by itself ({}):\n{harness_log}\nserial log (end):\n{tail}",
        output.status
    );
    eprintln!("{}", harness_log.trim());
    let evidence = Evidence {
        dir: share.join("out"),
    };
    eprintln!("the evidence is in {}", evidence.dir.display());
    assert!(
        evidence.dir.join("done").exists(),
        "the guest script did not finish:\n{tail}"
    );
    let errors = std::fs::read_to_string(evidence.dir.join("errors")).unwrap_or_default();
    assert!(
        errors.is_empty(),
        "steps in the VM did not complete:\n{errors}\nsteps:\n{}",
        evidence.text("steps")
    );
    eprintln!("steps (uptime in the VM):\n{}", evidence.text("steps"));

    the_host_is_what_most_users_run(&evidence);
    exact_limits_from_docker_run_flags(&evidence);
    a_throttled_burner_holding_tmpfs_agrees_with_the_engine_stats(&evidence);
    direct_writes_under_a_device_limit_on_vda(&evidence);
    an_oom_kill_counted_once_by_the_kernel_and_by_the_engine(&evidence);
    exit_codes_and_restarts(&evidence);
    every_engine_event_counted_exactly_once(&evidence);
    a_failing_health_check_followed_over_time(&evidence);
    a_policy_enforced_through_the_engine_and_io_max(&evidence);
    the_root_and_the_machine(&evidence);
}

fn the_host_is_what_most_users_run(evidence: &Evidence) {
    let info = evidence.json("info.json");
    assert_eq!(
        info["CgroupDriver"], "systemd",
        "the engine's cgroup driver"
    );
    assert_eq!(info["CgroupVersion"], "2", "the engine's cgroup version");
    let version = evidence.json("version.json");
    let engine = version["Version"].as_str().expect("the engine's version");
    let major: u32 = engine
        .split('.')
        .next()
        .and_then(|major| major.parse().ok())
        .expect("a version number");
    assert!(major >= 25, "a current engine, not {engine}");
    assert_eq!(evidence.text("init").trim(), "systemd", "PID 1");
    assert_eq!(evidence.text("cgroupfs-type").trim(), "cgroup2fs");
    let unit = evidence.text("docker-unit");
    assert!(
        unit.contains("ActiveState=active")
            && unit.contains("ControlGroup=/system.slice/docker.service"),
        "the engine is started by systemd: {unit}"
    );
    let exporter_log = evidence.text("exporter.log");
    let errors: Vec<&str> = exporter_log
        .lines()
        .filter(|line| line.contains("level=error"))
        .collect();
    assert!(errors.is_empty(), "the exporter logged errors: {errors:#?}");
    eprintln!(
        "engine {engine} (API {}), {} {}",
        version["ApiVersion"].as_str().unwrap_or_default(),
        version["KernelVersion"].as_str().unwrap_or_default(),
        version["Os"].as_str().unwrap_or_default()
    );
}

/// The container's cgroup as the kernel placed it, checked to be the systemd driver's scope.
fn scope(evidence: &Evidence, name: &str) -> (String, String) {
    let id = evidence.text(&format!("{name}.id")).trim().to_owned();
    let path = evidence.text(&format!("{name}.path")).trim().to_owned();
    assert_eq!(
        path,
        format!("/system.slice/docker-{id}.scope"),
        "{name}: the systemd driver's scope"
    );
    (id, path)
}

fn exact_limits_from_docker_run_flags(evidence: &Evidence) {
    let (_, path) = scope(evidence, "burner");
    let scrape = evidence.scrape("burner.first");
    let series = [("id", path.as_str())];
    let spec = |name: &str| scrape.expect(name, &series);
    assert_eq!(spec("container_spec_memory_limit_bytes"), 128.0 * MIB);
    assert_eq!(spec("container_spec_memory_swap_limit_bytes"), 256.0 * MIB);
    assert_eq!(
        spec("container_spec_memory_reservation_limit_bytes"),
        32.0 * MIB
    );
    assert_eq!(spec("container_spec_cpu_quota"), 20_000.0);
    assert_eq!(spec("container_spec_cpu_period"), 100_000.0);
    // The engine writes --cpu-shares 512 as cpu.weight 20; cAdvisor's inverse reads 500.
    assert_eq!(spec("container_spec_cpu_shares"), 500.0);
    assert_eq!(spec("container_spec_cpuset_cpus"), 1.0);
    assert_eq!(spec("container_spec_pids_limit"), 50.0);

    // The same limits in the kernel's files, as systemd and runc wrote them for the engine
    // (v2 keeps swap apart from memory: 256m of memory plus swap is 128m of swap).
    let files = evidence.cgroup("burner.before");
    assert_eq!(files.file(&path, "memory.max"), "134217728");
    assert_eq!(files.file(&path, "memory.swap.max"), "134217728");
    assert_eq!(files.file(&path, "memory.low"), "33554432");
    assert_eq!(files.file(&path, "cpu.max"), "20000 100000");
    assert_eq!(files.file(&path, "cpu.weight"), "20");
    assert_eq!(files.file(&path, "cpuset.cpus"), "0");
    assert_eq!(files.file(&path, "pids.max"), "50");

    // The labels a dashboard groups by.
    let sample = &scrape.find("container_spec_memory_limit_bytes", &series)[0];
    assert_eq!(sample.labels["name"], "stevedore-burner");
    assert_eq!(sample.labels["image"], "stevedore-test-busybox:latest");
    assert_eq!(
        sample.labels["container_label_com_docker_compose_project"],
        "shop"
    );
    assert_eq!(
        sample.labels["container_label_org_label_schema_group"],
        "monitoring"
    );
    assert_eq!(sample.labels["container_env_app_tier"], "web");
    assert!(!sample.labels.contains_key("container_env_app_secret"));
    assert_eq!(scrape.expect("docker_up", &[]), 1.0);
    common::assert_collectors_succeeded(&scrape);
}

fn a_throttled_burner_holding_tmpfs_agrees_with_the_engine_stats(evidence: &Evidence) {
    let (_, path) = scope(evidence, "burner");
    let series = [("id", path.as_str())];
    let usage = [("id", path.as_str()), ("cpu", "total")];
    let first = evidence.scrape("burner.first");
    let second = evidence.scrape("burner.second");
    let (start, end) = evidence.window("burner");

    // CPU: throttled under a 0.2 CPU quota.
    let used = second.expect("container_cpu_usage_seconds_total", &usage)
        - first.expect("container_cpu_usage_seconds_total", &usage);
    let elapsed = end - start;
    assert!(used > 0.05, "the burner used only {used} s");
    // At most 0.2 s per second, plus one 100 ms period of slack (the window is measured
    // outside both scrapes, so it is the longer one).
    assert!(
        used <= 0.2 * elapsed + 0.1,
        "usage rose by {used} s in {elapsed:.2} s under a 0.2 CPU quota"
    );
    let throttled = second.expect("container_cpu_cfs_throttled_periods_total", &series);
    assert!(throttled > first.expect("container_cpu_cfs_throttled_periods_total", &series));
    assert!(second.expect("container_cpu_cfs_periods_total", &series) >= throttled);
    assert!(second.expect("container_cpu_cfs_throttled_seconds_total", &series) > 0.0);
    assert_eq!(second.expect("container_spec_cpu_quota", &series), 20_000.0);

    // Memory: 32 MiB held in tmpfs is charged to the container, as page cache.
    let memory = second.expect("container_memory_usage_bytes", &series);
    let working_set = second.expect("container_memory_working_set_bytes", &series);
    assert!(memory >= 32.0 * MIB, "usage {} MiB", memory / MIB);
    assert!(
        working_set >= 32.0 * MIB,
        "working set {} MiB",
        working_set / MIB
    );
    assert!(working_set <= memory);
    assert!(second.expect("container_memory_cache", &series) >= 32.0 * MIB);
    assert_eq!(
        second.expect("container_spec_memory_limit_bytes", &series),
        128.0 * MIB
    );

    // The engine's stats API, read between two of our scrapes, which lie between two reads
    // of the file.
    let (before, after) = (
        evidence.scrape("burner.before-stats"),
        evidence.scrape("burner.after-stats"),
    );
    let (file_before, file_after) = (
        evidence.cgroup("burner.before"),
        evidence.cgroup("burner.after"),
    );
    let ours_before = before.expect("container_cpu_usage_seconds_total", &usage);
    let ours_after = after.expect("container_cpu_usage_seconds_total", &usage);
    assert!(file_before.key(&path, "cpu.stat", "usage_usec") / 1e6 <= ours_before);
    assert!(ours_after <= file_after.key(&path, "cpu.stat", "usage_usec") / 1e6);
    let stats = evidence.json("burner.stats.json");
    let engine_cpu = stats["cpu_stats"]["cpu_usage"]["total_usage"]
        .as_f64()
        .expect("the engine's CPU usage")
        / 1e9;
    assert!(
        ours_before <= engine_cpu && engine_cpu <= ours_after,
        "the engine's CPU {engine_cpu} s is not between our readings {ours_before} and {ours_after}"
    );
    let engine_throttled = stats["cpu_stats"]["throttling_data"]["throttled_periods"]
        .as_f64()
        .expect("the engine's throttled periods");
    assert!(
        before.expect("container_cpu_cfs_throttled_periods_total", &series) <= engine_throttled
            && engine_throttled
                <= after.expect("container_cpu_cfs_throttled_periods_total", &series),
        "the engine's throttled periods {engine_throttled}"
    );
    let engine_memory = &stats["memory_stats"];
    let engine_working_set = engine_memory["usage"].as_f64().expect("the engine's usage")
        - engine_memory["stats"]["inactive_file"]
            .as_f64()
            .expect("inactive_file in the engine's v2 stats");
    let ours = after.expect("container_memory_working_set_bytes", &series);
    assert!(
        (ours - engine_working_set).abs() <= MIB,
        "working set {ours} vs the engine's {engine_working_set}"
    );
    assert_eq!(
        engine_memory["limit"].as_f64(),
        Some(128.0 * MIB),
        "the engine's memory limit"
    );
    eprintln!(
        "burner: {used:.3} s of CPU in {elapsed:.2} s, {throttled} throttled periods; \
         working set {:.1} MiB (engine {:.1} MiB); engine CPU {engine_cpu:.3} s in [{ours_before:.3}, {ours_after:.3}]",
        ours / MIB,
        engine_working_set / MIB
    );
}

fn direct_writes_under_a_device_limit_on_vda(evidence: &Evidence) {
    let (_, path) = scope(evidence, "writer");
    let vda = evidence.text("vda-dev").trim().to_owned();
    let (start, end) = evidence.window("disk");
    // 8 MiB at 4 MiB/s is 2 s; blk-throttle may grant up to one slice up front.
    assert!(
        end - start >= 1.5,
        "8 MiB under a 4 MiB/s limit took only {:.2} s",
        end - start
    );
    let scrape = evidence.scrape("disk");
    let on_vda = [("id", path.as_str()), ("device", "/dev/vda")];
    let written = scrape.expect("container_fs_writes_bytes_total", &on_vda);
    assert!(written >= 8.0 * MIB, "{} MiB written", written / MIB);
    let (low, high) = (
        evidence
            .cgroup("disk.before")
            .device_key(&path, "io.stat", &vda, "wbytes"),
        evidence
            .cgroup("disk.after")
            .device_key(&path, "io.stat", &vda, "wbytes"),
    );
    assert!(
        low <= written && written <= high,
        "{written} bytes written, io.stat read {low} and {high}"
    );
    assert!(scrape.expect("container_fs_writes_total", &on_vda) >= 8.0);
    assert_eq!(
        scrape.expect(
            "container_blkio_device_usage_total",
            &[
                ("id", path.as_str()),
                ("device", "/dev/vda"),
                ("operation", "Write")
            ]
        ),
        written
    );
    assert_eq!(
        scrape.expect("container_spec_blkio_device_write_bytes_limit", &on_vda),
        4.0 * MIB
    );
    assert_eq!(
        scrape.expect("container_spec_blkio_device_read_iops_limit", &on_vda),
        300.0
    );
    assert_eq!(
        scrape.expect("container_spec_blkio_device_read_bytes_limit", &on_vda),
        0.0
    );
    // As the engine holds them, and as systemd and runc wrote them for it.
    let host_config = &evidence.json("writer.inspect.json")["HostConfig"];
    assert_eq!(
        host_config["BlkioDeviceWriteBps"],
        serde_json::json!([{"Path": "/dev/vda", "Rate": 4194304}])
    );
    assert_eq!(
        evidence.cgroup("disk.after").file(&path, "io.max"),
        format!("{vda} rbps=max wbps=4194304 riops=300 wiops=max")
    );
    // What Debian's docker CLI sent for the same flags, reported: the reason the writer is
    // made through the API.
    let cli = &evidence.json("cli-device.inspect.json")["HostConfig"];
    eprintln!(
        "disk: docker create --device-write-bps /dev/vda:4mb --device-read-iops /dev/vda:300 \
         gave the engine BlkioDeviceWriteBps {} and BlkioDeviceReadIOps {}",
        cli["BlkioDeviceWriteBps"], cli["BlkioDeviceReadIOps"]
    );
    eprintln!(
        "disk: 8 MiB under 4 MiB/s in {:.2} s, {} bytes counted on /dev/vda ({vda})",
        end - start,
        written
    );
}

fn an_oom_kill_counted_once_by_the_kernel_and_by_the_engine(evidence: &Evidence) {
    let (id, path) = scope(evidence, "writer");
    let kernel = evidence
        .cgroup("oom")
        .key(&path, "memory.events", "oom_kill");
    assert_eq!(kernel, 1.0, "the kernel's oom_kill count");
    let running = evidence.scrape("oom.running");
    assert_eq!(
        running.expect("container_oom_events_total", &[("id", &path)]),
        1.0
    );
    assert_eq!(
        running.expect("container_spec_memory_limit_bytes", &[("id", &path)]),
        16.0 * MIB
    );
    let oom_events = |scrape: &Scrape| {
        scrape
            .value(
                "docker_events_total",
                &[("type", "container"), ("action", "oom")],
            )
            .unwrap_or(0.0)
    };
    let counted = oom_events(&running) - oom_events(&evidence.scrape("oom.before"));
    let engine: Vec<Value> = evidence
        .events("oom.events.json")
        .into_iter()
        .filter(|event| event["Type"] == "container" && event["Action"] == "oom")
        .collect();
    assert_eq!(engine.len(), 1, "the engine's oom events: {engine:#?}");
    assert_eq!(engine[0]["Actor"]["ID"], id.as_str());
    assert_eq!(counted, 1.0, "oom events counted by the exporter");

    let exited = evidence.scrape("oom.exited");
    let inspect = evidence.json("oom.inspect.json");
    let engine_says = inspect["State"]["OOMKilled"].as_bool().expect("OOMKilled");
    assert_eq!(
        exited.expect(
            "docker_container_oom_killed",
            &[("name", "stevedore-writer")]
        ),
        if engine_says { 1.0 } else { 0.0 },
        "as the engine's State.OOMKilled ({engine_says})"
    );
    eprintln!(
        "oom: kernel oom_kill 1, engine oom events 1, counted 1; State.OOMKilled {engine_says}"
    );
}

fn exit_codes_and_restarts(evidence: &Evidence) {
    let scrape = evidence.scrape("restarts");
    let name = [("name", "stevedore-restarts")];
    let inspect = evidence.json("restarts.inspect.json");
    assert_eq!(inspect["RestartCount"], 1);
    assert_eq!(inspect["State"]["ExitCode"], 3);
    assert_eq!(inspect["State"]["Status"], "exited");
    assert_eq!(scrape.expect("docker_container_restart_count", &name), 1.0);
    assert_eq!(scrape.expect("docker_container_exit_code", &name), 3.0);
    assert_eq!(scrape.expect("docker_container_oom_killed", &name), 0.0);
    let finished = chrono::DateTime::parse_from_rfc3339(
        inspect["State"]["FinishedAt"].as_str().expect("FinishedAt"),
    )
    .expect("an RFC 3339 time");
    let finished = finished.timestamp() as f64 + f64::from(finished.timestamp_subsec_nanos()) / 1e9;
    let ours = scrape.expect("docker_container_finished_at_seconds", &name);
    assert!(
        (ours - finished).abs() < 1.0,
        "finished at {ours}, the engine says {finished}"
    );
}

fn every_engine_event_counted_exactly_once(evidence: &Evidence) {
    let before = common::exported_event_counts(&evidence.scrape("events.before"));
    let caught_up = common::exported_event_counts(&evidence.scrape("events.caught-up"));
    let settled = common::exported_event_counts(&evidence.scrape("events.settled"));
    let window = evidence.event_tally("events.window.json");
    assert!(!window.is_empty(), "the window holds no engine events");
    assert_eq!(
        common::event_count_increase(&before, &caught_up),
        window,
        "counted for the window, against the engine's events API"
    );
    assert_eq!(
        common::event_count_increase(&before, &settled),
        evidence.event_tally("events.marker.json"),
        "after a marker: anything counted again later?"
    );
    // Each container's own events: the lifecycle's steps, and the restart policy's runs.
    let of = |container: &str, action: &str| {
        let id = evidence.text(container).trim().to_owned();
        evidence
            .events("events.window.json")
            .iter()
            .filter(|event| event["Type"] == "container" && event["Actor"]["ID"] == id.as_str())
            .filter(|event| event["Action"] == action)
            .count()
    };
    let life = "events.id";
    assert_eq!(of(life, "create"), 1);
    assert_eq!(of(life, "start"), 2, "docker start, then docker restart");
    assert_eq!(of(life, "pause"), 1);
    assert_eq!(of(life, "unpause"), 1);
    assert_eq!(of(life, "restart"), 1);
    assert_eq!(of(life, "rename"), 1);
    assert_eq!(of(life, "destroy"), 1);
    assert!(of(life, "kill") >= 1);
    assert!(of(life, "die") >= 2);
    let restarts = "restarts.id";
    assert_eq!(of(restarts, "create"), 1);
    assert_eq!(of(restarts, "start"), 2, "a run and a restart");
    assert_eq!(of(restarts, "die"), 2);

    // The states along the way, each from the scrape that first showed it.
    let id = evidence.text("events.id").trim().to_owned();
    let cgroup = format!("/system.slice/docker-{id}.scope");
    let steps = evidence.text("events.steps");
    assert_eq!(steps.lines().count(), 7, "every step seen: {steps}");
    let running = evidence.scrape("events.2-start");
    assert!(
        running
            .value("container_memory_usage_bytes", &[("id", &cgroup)])
            .is_some(),
        "a running container has cgroup metrics at its systemd scope"
    );
    let stopped = evidence.scrape("events.5-kill");
    assert_eq!(
        stopped.value("container_memory_usage_bytes", &[("id", &cgroup)]),
        None,
        "a stopped container has no cgroup"
    );
    assert_eq!(
        stopped.expect(
            "docker_container_exit_code",
            &[("name", "stevedore-life-a")]
        ),
        137.0
    );
    let renamed = evidence.scrape("events.7-rename");
    assert!(
        renamed
            .find("docker_container_info", &[("name", "stevedore-life-a")])
            .is_empty()
    );
    assert!(
        renamed
            .value(
                "container_memory_usage_bytes",
                &[("name", "stevedore-life-b")]
            )
            .is_some()
    );
    assert!(
        !evidence.text("events.8-rm.prom").contains(&id),
        "the removed container's series are gone"
    );
    eprintln!(
        "events: {} in the window, {} with the marker, counted exactly",
        window.values().sum::<f64>(),
        evidence
            .event_tally("events.marker.json")
            .values()
            .sum::<f64>()
    );
}

fn a_failing_health_check_followed_over_time(evidence: &Evidence) {
    let name = [("name", "stevedore-health")];
    let status = |scrape: &Scrape| -> Vec<(String, f64)> {
        scrape
            .find("docker_container_health_status", &name)
            .iter()
            .map(|sample| (sample.labels["status"].clone(), sample.value))
            .collect()
    };
    // One series per container, for the status it has now.
    let first = evidence.scrape("health.first");
    assert_eq!(status(&first), vec![("healthy".to_owned(), 1.0)]);
    assert_eq!(
        first.expect("docker_container_health_failing_streak", &name),
        0.0
    );
    let failing = evidence.scrape("health.unhealthy");
    assert_eq!(status(&failing), vec![("unhealthy".to_owned(), 1.0)]);
    assert!(failing.expect("docker_container_health_failing_streak", &name) >= 1.0);

    // "engine ours" pairs: ours caught up with each engine reading, and never ran ahead of
    // the engine's next one (it can only have come from the engine).
    let text = evidence.text("health.streak");
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let number = |word: &str| -> f64 { word.parse().expect("a streak") };
    let (start, pairs, end) = match lines.as_slice() {
        [start, pairs @ .., end]
            if start.get(1) == Some(&"start") && end.get(1) == Some(&"end") =>
        {
            (number(start[0]), pairs, number(end[0]))
        }
        _ => panic!("health.streak is not start, pairs, end: {text}"),
    };
    let mut engine_readings: Vec<f64> = pairs.iter().map(|pair| number(pair[0])).collect();
    engine_readings.push(end);
    for (index, pair) in pairs.iter().enumerate() {
        let (engine, ours) = (number(pair[0]), number(pair[1]));
        assert!(ours >= engine, "ours {ours} behind the engine's {engine}");
        assert!(
            ours <= engine_readings[index + 1],
            "ours {ours} ahead of the engine's next reading {}",
            engine_readings[index + 1]
        );
    }
    let last = pairs.last().map(|pair| number(pair[1])).unwrap_or(0.0);
    assert!(
        last >= start + 3.0,
        "the streak went from {start} to only {last}"
    );
    let inspect = evidence.json("health.inspect.json");
    assert_eq!(inspect["State"]["Health"]["Status"], "unhealthy");
    assert!(inspect["State"]["Health"]["FailingStreak"].as_f64() >= Some(last));
    eprintln!(
        "health: healthy, then a failing streak followed from {start} to {last} over {} readings",
        pairs.len()
    );
}

fn a_policy_enforced_through_the_engine_and_io_max(evidence: &Evidence) {
    let (_, path) = scope(evidence, "pol");
    let vda = evidence.text("vda-dev").trim().to_owned();
    let io_max = format!("{vda} rbps=max wbps=10485760 riops=500 wiops=max");
    let (ran, applied) = evidence.window("pol");
    let check_engine = |name: &str| {
        let host_config = &evidence.json(name)["HostConfig"];
        for (key, want) in [
            ("Memory", Value::from(96 * 1024 * 1024)),
            ("MemorySwap", Value::from(128 * 1024 * 1024)),
            ("MemoryReservation", Value::from(48 * 1024 * 1024)),
            ("NanoCpus", Value::from(500_000_000)),
            ("CpuShares", Value::from(256)),
            ("CpusetCpus", Value::from("0")),
            ("PidsLimit", Value::from(60)),
        ] {
            assert_eq!(host_config[key], want, "{name}: HostConfig.{key}");
        }
    };
    let check_files = |dump: &str, path: &str| {
        let files = evidence.cgroup(dump);
        assert_eq!(files.file(path, "memory.max"), "100663296", "{dump}");
        assert_eq!(files.file(path, "memory.swap.max"), "33554432", "{dump}");
        assert_eq!(files.file(path, "memory.low"), "50331648", "{dump}");
        assert_eq!(files.file(path, "cpu.max"), "50000 100000", "{dump}");
        assert_eq!(files.file(path, "cpu.weight"), "10", "{dump}");
        assert_eq!(files.file(path, "cpuset.cpus"), "0", "{dump}");
        assert_eq!(files.file(path, "pids.max"), "60", "{dump}");
        assert_eq!(files.file(path, "io.max"), io_max, "{dump}");
    };
    let check_drift = |name: &str| {
        let scrape = evidence.scrape(name);
        let drift = scrape.find("stevedore_policy_drift", &[("name", "stevedore-pol-1")]);
        assert_eq!(
            drift.len(),
            9,
            "{name}: one drift series per declared limit"
        );
        assert!(
            drift.iter().all(|sample| sample.value == 0.0),
            "{name}: drift {drift:#?}"
        );
        assert_eq!(
            scrape.value(
                "stevedore_policy_applied_total",
                &[("rule", "v2-engine"), ("result", "failed")]
            ),
            None
        );
        scrape
    };

    check_engine("pol.inspect.json");
    check_files("pol.applied", &path);
    let scrape = check_drift("pol.applied");
    assert!(
        scrape.expect(
            "stevedore_policy_applied_total",
            &[("rule", "v2-engine"), ("result", "applied")]
        ) >= 1.0
    );
    assert_eq!(scrape.expect("stevedore_policy_rules", &[]), 1.0);

    // The device limit holds: 20 MiB at 10 MiB/s takes 2 s (less the first slice), before
    // and after a restart, which starts the container in a new scope without it.
    let restarted = evidence.text("pol.restarted.path").trim().to_owned();
    assert_eq!(restarted, path, "the same scope name after a restart");
    for write in ["first", "again"] {
        let (start, end) = evidence.window(&format!("pol.{write}"));
        assert!(
            end - start >= 1.6,
            "20 MiB under the policy's 10 MiB/s took only {:.2} s ({write})",
            end - start
        );
    }
    check_engine("pol.after.inspect.json");
    check_files("pol.after", &path);
    check_drift("pol.after");
    let (first, again) = (evidence.window("pol.first"), evidence.window("pol.again"));
    eprintln!(
        "policy: limits in the engine and the cgroup {:.2} s after docker run returned; \
         20 MiB writes took {:.2} s and, after a restart, {:.2} s",
        applied - ran,
        first.1 - first.0,
        again.1 - again.0
    );
}

fn the_root_and_the_machine(evidence: &Evidence) {
    let scrape = evidence.scrape("final");
    common::assert_collectors_succeeded(&scrape);
    let root_cpu = scrape.expect(
        "container_cpu_usage_seconds_total",
        &[("id", "/"), ("cpu", "total")],
    );
    let (before, after) = (
        evidence.cgroup("root.before"),
        evidence.cgroup("root.after"),
    );
    assert!(
        before.key("/", "cpu.stat", "usage_usec") / 1e6 <= root_cpu
            && root_cpu <= after.key("/", "cpu.stat", "usage_usec") / 1e6,
        "the root's CPU {root_cpu} s is its cpu.stat"
    );
    let policed = format!(
        "/system.slice/docker-{}.scope",
        evidence.text("pol.id").trim()
    );
    assert!(
        scrape.expect("container_memory_usage_bytes", &[("id", "/")])
            > scrape.expect("container_memory_usage_bytes", &[("id", &policed)]),
        "the root's memory holds a container's"
    );
    assert!(
        scrape.expect(
            "container_fs_writes_bytes_total",
            &[("id", "/"), ("device", "/dev/vda")]
        ) >= 8.0 * MIB
    );
    assert_eq!(
        scrape.expect("machine_cpu_cores", &[]),
        evidence.number("nproc")
    );
    let total_kib: f64 = evidence
        .text("meminfo")
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("MemTotal");
    assert_eq!(
        scrape.expect("machine_memory_bytes", &[]),
        total_kib * 1024.0
    );
}
