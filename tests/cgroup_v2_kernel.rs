//! cgroup v2 on a real kernel: a Debian kernel booted under qemu (these machines run v1
//! hybrid), with child cgroups shaped like Docker's (cgroupfs driver under /docker, systemd
//! driver under /system.slice), real workloads in them, and a statically linked stevedore
//! printing one scrape. The serial log carries the scrape and the raw cgroup files, dumped
//! before and after the scrape; every value is checked against the workload and the files.
//!
//! The VM harness is `tests/v2-kernel/run-vm.sh` (kernel cached under the target dir). The
//! static binary is taken from `STEVEDORE_STATIC_BINARY` when set (CI builds it first),
//! otherwise built here.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use common::Scrape;

const MIB: f64 = 1024.0 * 1024.0;

/// The text between two marker lines.
fn section<'a>(log: &'a str, begin: &str, end: &str) -> &'a str {
    let start = log
        .find(begin)
        .unwrap_or_else(|| panic!("no `{begin}` in the VM log"));
    let body = &log[start..];
    let body = &body[body.find('\n').map_or(body.len(), |n| n + 1)..];
    let stop = body
        .find(end)
        .unwrap_or_else(|| panic!("no `{end}` after `{begin}` in the VM log"));
    &body[..stop]
}

/// The files of one dump (`before` or `after`): path → contents.
fn dumped_files(log: &str, label: &str) -> HashMap<String, String> {
    let dump = section(
        log,
        &format!("=== DUMP BEGIN {label} "),
        &format!("=== DUMP END {label} "),
    );
    let mut files = HashMap::new();
    let mut current: Option<(String, String)> = None;
    for line in dump.lines() {
        if let Some(path) = line
            .strip_prefix("=== FILE ")
            .and_then(|rest| rest.strip_suffix(" ==="))
        {
            current = Some((path.to_owned(), String::new()));
        } else if line == "=== END FILE ===" {
            if let Some((path, text)) = current.take() {
                files.insert(path, text);
            }
        } else if let Some((_, text)) = current.as_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    files
}

/// A key's value in a flat-keyed or nested-keyed dumped file.
fn file_key(files: &HashMap<String, String>, path: &str, key: &str) -> f64 {
    let text = files
        .get(path)
        .unwrap_or_else(|| panic!("{path} was not dumped"));
    text.split_whitespace()
        .find_map(|word| word.strip_prefix(&format!("{key}=")).map(str::to_owned))
        .or_else(|| {
            text.lines().find_map(|line| {
                let mut words = line.split_whitespace();
                (words.next() == Some(key)).then(|| words.next().unwrap_or_default().to_owned())
            })
        })
        .unwrap_or_else(|| panic!("no {key} in {path}:\n{text}"))
        .parse()
        .unwrap_or_else(|_| panic!("{key} in {path} is not a number"))
}

#[test]
fn every_reading_on_a_real_cgroup_v2_kernel() {
    common::require_program("qemu-system-x86_64", "qemu-system-x86");
    common::require_program("xz", "xz-utils");
    let binary = common::static_binary();
    let serial = tempfile::NamedTempFile::new().unwrap();
    let harness = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/v2-kernel/run-vm.sh");
    let output = Command::new(&harness)
        .arg("--cache")
        .arg(common::target_dir().join("v2-kernel-cache"))
        .arg("--stevedore")
        .arg(&binary)
        .arg("--out")
        .arg(serial.path())
        .output()
        .expect("run the VM harness");
    let log = std::fs::read_to_string(serial.path()).unwrap_or_default();
    let harness_log = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the VM did not complete its scenario ({}):\n{harness_log}\n{log}",
        output.status
    );
    // Never pass on a silent boot: the scenario's own end marker must be there.
    assert!(
        log.contains("=== SCENARIO COMPLETE"),
        "no end marker:\n{log}"
    );
    let failed: Vec<&str> = log
        .lines()
        .filter(|line| line.starts_with("=== CHECK") && line.contains(" FAIL "))
        .collect();
    assert!(
        failed.is_empty(),
        "the kernel did not enforce the workload's limits: {failed:#?}"
    );
    assert!(
        log.contains("=== ERRORS 0 ==="),
        "the scenario reported errors:\n{log}"
    );
    assert!(
        log.contains("=== STEVEDORE EXIT 0 ==="),
        "stevedore failed:\n{log}"
    );
    eprintln!("{}", harness_log.trim());

    let text = section(&log, "=== STEVEDORE BEGIN ===", "=== STEVEDORE END ===");
    common::promtool_check_metrics(text);
    let scrape = Scrape::parse(text);
    let before = dumped_files(&log, "before");
    let after = dumped_files(&log, "after");
    let cgroup = |role: &str| -> String {
        let prefix = format!("=== CGROUP {role} ");
        log.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|rest| rest.strip_suffix(" ==="))
            .unwrap_or_else(|| panic!("no cgroup for {role}"))
            .to_owned()
    };
    let id = |dir: &str| dir.trim_start_matches("/sys/fs/cgroup").to_owned();
    let (a, b, c, d) = (
        cgroup("cpu-burner"),
        cgroup("memory-holder"),
        cgroup("disk-writer"),
        cgroup("oom-victim"),
    );
    let value = |dir: &str, name: &str| scrape.expect(name, &[("id", &id(dir))]);
    // A counter the exporter read lies between the two dumps of its file.
    let between = |dir: &str, name: &str, file: &str, key: &str, scale: f64| {
        let read = value(dir, name);
        let path = format!("{dir}/{file}");
        let (low, high) = (
            file_key(&before, &path, key) / scale,
            file_key(&after, &path, key) / scale,
        );
        assert!(
            low <= read && read <= high,
            "{name} of {dir} is {read}, not between the files' {low} and {high}"
        );
        read
    };

    assert_eq!(
        scrape.expect("stevedore_scrape_targets", &[("source", "raw")]),
        4.0
    );
    common::assert_collectors_succeeded(&scrape);

    // The CPU burner under a 20% quota: throttled.
    let throttled = between(
        &a,
        "container_cpu_cfs_throttled_periods_total",
        "cpu.stat",
        "nr_throttled",
        1.0,
    );
    assert!(throttled > 0.0);
    let used = between(
        &a,
        "container_cpu_usage_seconds_total",
        "cpu.stat",
        "usage_usec",
        1e6,
    );
    assert!(used > 0.1, "the burner used only {used} s");
    between(
        &a,
        "container_cpu_cfs_throttled_seconds_total",
        "cpu.stat",
        "throttled_usec",
        1e6,
    );
    assert_eq!(value(&a, "container_spec_cpu_quota"), 20_000.0);
    assert_eq!(value(&a, "container_spec_cpu_period"), 100_000.0);
    // cpu.weight 20 is what docker writes for --cpu-shares 512; cAdvisor's inverse gives 500.
    assert_eq!(value(&a, "container_spec_cpu_shares"), 500.0);
    if log.contains("=== INFO cpuset enabled: yes ===") {
        assert_eq!(value(&a, "container_spec_cpuset_cpus"), 1.0);
    }
    assert_eq!(value(&a, "container_spec_pids_limit"), 50.0);
    assert!(value(&a, "container_pressure_cpu_waiting_seconds_total") > 0.0);

    // The memory holder: 32 MiB in tmpfs, charged to it.
    assert!(value(&b, "container_memory_working_set_bytes") >= 32.0 * MIB);
    assert!(value(&b, "container_memory_usage_bytes") >= 32.0 * MIB);
    assert_eq!(value(&b, "container_spec_memory_limit_bytes"), 64.0 * MIB);
    assert_eq!(
        value(&b, "container_spec_memory_reservation_limit_bytes"),
        32.0 * MIB
    );
    // memory.max + memory.swap.max (0): memory plus swap, as docker's --memory-swap.
    assert_eq!(
        value(&b, "container_spec_memory_swap_limit_bytes"),
        64.0 * MIB
    );
    assert_eq!(value(&b, "container_spec_pids_limit"), 40.0);

    // The disk writer, in the systemd driver's layout: 8 MiB written directly to vda
    // under a 4 MiB/s io.max.
    assert!(id(&c).starts_with("/system.slice/docker-") && id(&c).ends_with(".scope"));
    let on_vda = [("id", id(&c)), ("device", "/dev/vda".to_owned())];
    let on_vda: Vec<(&str, &str)> = on_vda.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let written = scrape.expect("container_fs_writes_bytes_total", &on_vda);
    assert!(written >= 8.0 * MIB, "{written} bytes written");
    let vda = log
        .lines()
        .find_map(|line| line.strip_prefix("=== INFO vda dev "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the VM names vda's device number");
    assert_eq!(
        written,
        file_key(&after, &format!("{c}/io.stat"), "wbytes"),
        "io.stat of {vda}"
    );
    assert_eq!(
        scrape.expect("container_spec_blkio_device_write_bytes_limit", &on_vda),
        4.0 * MIB
    );
    assert_eq!(
        scrape.expect("container_spec_blkio_device_read_bytes_limit", &on_vda),
        0.0
    );
    assert!(value(&c, "container_pressure_io_waiting_seconds_total") > 0.0);
    assert_eq!(value(&c, "container_spec_pids_limit"), 30.0);

    // The OOM victim: killed by the kernel, counted from memory.events.
    let ooms = between(
        &d,
        "container_oom_events_total",
        "memory.events",
        "oom_kill",
        1.0,
    );
    assert!(ooms >= 1.0, "no OOM kill counted");
    assert_eq!(value(&d, "container_spec_memory_limit_bytes"), 16.0 * MIB);
    assert_eq!(
        value(&d, "container_spec_memory_swap_limit_bytes"),
        16.0 * MIB
    );
    assert_eq!(value(&d, "container_spec_pids_limit"), 20.0);
    assert!(value(&d, "container_memory_failcnt") >= 1.0);

    // The OOM victim's limit was hit: memory.events max, as cAdvisor's events_max.
    let hit = between(
        &d,
        "container_memory_events_max_total",
        "memory.events",
        "max",
        1.0,
    );
    assert!(hit >= 1.0);
    between(
        &d,
        "container_memory_events_high_total",
        "memory.events",
        "high",
        1.0,
    );

    // The v2 memory.stat families, where this kernel has the key.
    for (name, key) in [
        ("container_memory_pgscan_total", "pgscan"),
        ("container_memory_pgsteal_total", "pgsteal"),
        (
            "container_memory_workingset_refault_anon_total",
            "workingset_refault_anon",
        ),
        (
            "container_memory_workingset_refault_file_total",
            "workingset_refault_file",
        ),
    ] {
        between(&b, name, "memory.stat", key, 1.0);
    }
    let stat_has = |dir: &str, key: &str| {
        after[&format!("{dir}/memory.stat")]
            .lines()
            .any(|line| line.split_whitespace().next() == Some(key))
    };
    for (name, key) in [
        ("container_memory_total_active_file_bytes", "active_file"),
        (
            "container_memory_total_inactive_file_bytes",
            "inactive_file",
        ),
        ("container_memory_file_dirty_bytes", "file_dirty"),
        ("container_memory_file_writeback_bytes", "file_writeback"),
        ("container_memory_kernel_usage", "kernel"),
    ] {
        assert_eq!(
            scrape.value(name, &[("id", &id(&b))]).is_some(),
            stat_has(&b, key),
            "{name}: present exactly where memory.stat has {key}"
        );
    }
    for (failure_type, key) in [("pgfault", "pgfault"), ("pgmajfault", "pgmajfault")] {
        for scope in ["container", "hierarchy"] {
            let read = scrape.expect(
                "container_memory_failures_total",
                &[
                    ("id", &id(&b)),
                    ("failure_type", failure_type),
                    ("scope", scope),
                ],
            );
            let path = format!("{b}/memory.stat");
            let (low, high) = (file_key(&before, &path, key), file_key(&after, &path, key));
            assert!(
                low <= read && read <= high,
                "{failure_type} {scope}: {read}"
            );
        }
    }
    let written_op = scrape.expect(
        "container_blkio_device_usage_total",
        &[
            ("id", &id(&c)),
            ("device", "/dev/vda"),
            ("operation", "Write"),
        ],
    );
    assert_eq!(written_op, written);

    // The root: the host's totals, derived as runc and cAdvisor do where v2 has no file.
    let root_cpu = scrape.expect(
        "container_cpu_usage_seconds_total",
        &[("id", "/"), ("cpu", "total")],
    );
    let root_stat = "/sys/fs/cgroup/cpu.stat";
    assert!(
        file_key(&before, root_stat, "usage_usec") / 1e6 <= root_cpu
            && root_cpu <= file_key(&after, root_stat, "usage_usec") / 1e6,
        "the root's CPU {root_cpu} s is read from its cpu.stat"
    );
    assert!(root_cpu >= used, "the root counts the burner's {used} s");
    assert!(
        !before.contains_key("/sys/fs/cgroup/memory.current"),
        "this kernel's root has no memory.current"
    );
    let root_usage = scrape.expect("container_memory_usage_bytes", &[("id", "/")]);
    assert!(
        root_usage >= value(&b, "container_memory_usage_bytes"),
        "the root's memory ({root_usage}) holds the memory holder's"
    );
    assert!(
        scrape
            .value("container_memory_working_set_bytes", &[("id", "/")])
            .unwrap()
            <= root_usage
    );
    assert!(
        scrape.expect(
            "container_fs_writes_bytes_total",
            &[("id", "/"), ("device", "/dev/vda")]
        ) >= written
    );
    assert_eq!(
        scrape.expect("stevedore_scrape_targets", &[("source", "root")]),
        1.0
    );
    let vm = log
        .lines()
        .find_map(|line| line.strip_prefix("=== INFO cpus "))
        .expect("the VM reports its CPUs and memory");
    let words: Vec<&str> = vm.split_whitespace().collect();
    assert_eq!(
        scrape.expect("machine_cpu_cores", &[]),
        words[0].parse::<f64>().unwrap()
    );
    assert_eq!(
        scrape.expect("machine_memory_bytes", &[]),
        words[2].parse::<f64>().unwrap() * 1024.0,
        "MemTotal of {vm:?}"
    );

    for dir in [&a, &b, &c, &d] {
        assert!(value(dir, "container_pids_current") >= 1.0);
        for resource in ["cpu", "memory", "io"] {
            for kind in ["waiting", "stalled"] {
                let name = format!("container_pressure_{resource}_{kind}_seconds_total");
                assert!(
                    scrape.value(&name, &[("id", &id(dir))]).is_some(),
                    "{name} of {dir}"
                );
            }
        }
    }
}
