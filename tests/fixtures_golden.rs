//! End to end against fixture trees (cgroup v1, v2 and hybrid; cgroupfs and systemd
//! drivers): the binary's one-shot scrape, diffed against a golden file, and every output
//! linted by `promtool check metrics`.
//!
//! Series that change from run to run (the exporter's own process, durations, the time a
//! container was seen, the build version) are filtered out of the diff; the golden file
//! holds everything else. To rewrite the golden files after a deliberate change:
//! `STEVEDORE_UPDATE_GOLDEN=1 cargo nextest run --test fixtures_golden`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

const NON_DETERMINISTIC: [&str; 5] = [
    "process_",
    "stevedore_scrape_collector_duration_seconds",
    "stevedore_disk_refresh_duration_seconds",
    "container_last_seen",
    "stevedore_build_info",
];

fn fixture(tree: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(tree)
}

fn scrape_fixture(tree: &str, raw: &[&str]) -> String {
    let root = fixture(tree);
    let mut command = Command::new(common::stevedore_binary());
    command
        .arg("scrape")
        .arg(format!("--path.cgroupfs={}", root.join("cgroup").display()))
        .arg(format!("--path.procfs={}", root.join("proc").display()))
        .arg("--docker.host=unix:///nonexistent/docker.sock")
        .arg("--log.level=error");
    for pattern in raw {
        command.arg(format!("--cgroup.raw={pattern}"));
    }
    let output = command.output().expect("run stevedore scrape");
    assert!(
        output.status.success(),
        "stevedore scrape failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn deterministic(text: &str) -> String {
    text.lines()
        .filter(|line| {
            !NON_DETERMINISTIC
                .iter()
                .any(|name| line.starts_with(name) || line.contains(&format!(" {name}")))
        })
        .map(|line| format!("{line}\n"))
        .collect()
}

fn assert_matches_golden(tree: &str, raw: &[&str]) {
    let output = scrape_fixture(tree, raw);
    common::promtool_check_metrics(&output);
    let filtered = deterministic(&output);
    let golden_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{tree}.prom"));
    if std::env::var_os("STEVEDORE_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden_path.parent().unwrap()).unwrap();
        std::fs::write(&golden_path, &filtered).unwrap();
    }
    let golden = std::fs::read_to_string(&golden_path)
        .unwrap_or_else(|error| panic!("{}: {error}", golden_path.display()));
    common::promtool_check_metrics(&golden);
    if filtered != golden {
        let diff: Vec<String> = diff_lines(&golden, &filtered);
        panic!(
            "{tree}: output differs from {}:\n{}",
            golden_path.display(),
            diff.join("\n")
        );
    }
}

fn diff_lines(expected: &str, actual: &str) -> Vec<String> {
    let expected: Vec<&str> = expected.lines().collect();
    let actual: Vec<&str> = actual.lines().collect();
    let mut diff = Vec::new();
    for line in &expected {
        if !actual.contains(line) {
            diff.push(format!("- {line}"));
        }
    }
    for line in &actual {
        if !expected.contains(line) {
            diff.push(format!("+ {line}"));
        }
    }
    if diff.is_empty() {
        diff.push("(same lines, different order)".to_owned());
    }
    diff
}

#[test]
fn v1_cgroupfs_driver() {
    assert_matches_golden("v1-cgroupfs", &["/docker/*", "/docker-noswap/*"]);
}

#[test]
fn v1_systemd_driver() {
    assert_matches_golden("v1-systemd", &["/system.slice/*"]);
}

#[test]
fn hybrid_cgroupfs_driver() {
    assert_matches_golden("hybrid-cgroupfs", &["/docker/*"]);
}

#[test]
fn v2_cgroupfs_driver() {
    assert_matches_golden("v2-cgroupfs", &["/docker/*", "/docker-older/*"]);
}

#[test]
fn v2_systemd_driver_with_a_custom_parent_slice() {
    assert_matches_golden("v2-systemd", &["/system.slice/*", "/my.slice/*/*"]);
}

/// The golden files were checked by hand against the fixtures' README; these spot checks
/// keep the most important readings visible in code.
#[test]
fn key_values_of_the_v2_fixture() {
    let scrape = common::Scrape::parse(&scrape_fixture(
        "v2-cgroupfs",
        &["/docker/*", "/docker-older/*"],
    ));
    let c = "/docker/cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
    let d = "/docker-older/dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";
    // 50331648 current − 8388608 inactive_file.
    assert_eq!(
        scrape.expect("container_memory_working_set_bytes", &[("id", c)]),
        41_943_040.0
    );
    // memory.max + memory.swap.max, as docker's --memory-swap.
    assert_eq!(
        scrape.expect("container_spec_memory_swap_limit_bytes", &[("id", c)]),
        134_217_728.0
    );
    assert_eq!(
        scrape.expect("container_oom_events_total", &[("id", c)]),
        1.0
    );
    assert_eq!(
        scrape.expect(
            "container_fs_writes_bytes_total",
            &[("id", c), ("device", "/dev/sda")]
        ),
        31_457_280.0
    );
    // Unlimited is 0; a file the kernel lacks (memory.peak on D) is no sample at all.
    assert_eq!(
        scrape.expect("container_spec_memory_limit_bytes", &[("id", d)]),
        0.0
    );
    assert_eq!(
        scrape.value("container_memory_max_usage_bytes", &[("id", d)]),
        None
    );
}
