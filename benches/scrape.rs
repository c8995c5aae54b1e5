//! Scrape cost per container, against the cost of merely reading the same files.
//!
//! Builds a cgroup tree of N containers from the fixture trees (v1 and v2), then prints:
//! the time to collect all of them, the time to read every one of their files without
//! parsing (the baseline, measured in the same run), the ratio of the two, and the time to
//! encode the result. Run with `cargo bench --bench scrape`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use stevedore::cgroup::Hierarchy;
use stevedore::docker::Inventory;
use stevedore::metrics::{self, Format};
use stevedore::scrape::{ScrapeConfig, Scraper};
use stevedore::target::{Resolver, TargetConfig};

const CONTAINERS: usize = 500;
const ROUNDS: usize = 20;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// A tree with `CONTAINERS` copies of one fixture container; returns every file path.
fn build_tree(fixture: &str, container: &str, controllers: &[&str], root: &Path) -> Vec<PathBuf> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(fixture)
        .join("cgroup");
    if source.join("cgroup.controllers").exists() {
        std::fs::copy(
            source.join("cgroup.controllers"),
            root.join("cgroup.controllers"),
        )
        .unwrap();
    }
    let mut files = Vec::new();
    for n in 0..CONTAINERS {
        let id = format!("{n:064x}");
        for controller in controllers {
            let from = source.join(controller).join("docker").join(container);
            let to = root.join(controller).join("docker").join(&id);
            copy_dir(&from, &to);
            for entry in std::fs::read_dir(&to).unwrap() {
                files.push(entry.unwrap().path());
            }
        }
    }
    files
}

fn measure(label: &str, fixture: &str, container: &str, controllers: &[&str]) {
    let root = tempfile::tempdir().unwrap();
    let files = build_tree(fixture, container, controllers, root.path());
    let hierarchy = Arc::new(Hierarchy::discover(root.path(), None));
    // The cgroup collectors: what the fixture files feed.
    let collectors = ["cpu", "memory", "blkio", "pids", "pressure"]
        .iter()
        .filter_map(|name| stevedore::collector::by_name(name))
        .collect();
    let scraper = Arc::new(Scraper::new(
        ScrapeConfig {
            hierarchy: Arc::clone(&hierarchy),
            procfs: root.path().join("proc"),
            collectors,
            policy: None,
            disk: None,
        },
        Arc::new(Inventory::default()),
        Arc::new(Resolver::new(TargetConfig {
            hierarchy,
            procfs: root.path().join("proc"),
            label_allowlist: Vec::new(),
            raw_globs: vec!["/docker/*".to_owned()],
            root: false,
        })),
    ));
    // Warm the page cache and the allocator.
    let exposition = scraper.collect();
    let series = exposition.sample_count();

    let started = Instant::now();
    for _ in 0..ROUNDS {
        for file in &files {
            std::hint::black_box(std::fs::read_to_string(file).unwrap());
        }
    }
    let read_only = started.elapsed().as_secs_f64() / ROUNDS as f64;

    let started = Instant::now();
    let mut exposition = None;
    for _ in 0..ROUNDS {
        exposition = Some(scraper.collect());
    }
    let collect = started.elapsed().as_secs_f64() / ROUNDS as f64;

    let exposition = Arc::new(exposition.unwrap());
    let started = Instant::now();
    let mut bytes = 0;
    for _ in 0..ROUNDS {
        bytes = metrics::encode(Arc::clone(&exposition), Format::Text).len();
    }
    let encode = started.elapsed().as_secs_f64() / ROUNDS as f64;

    let per_container = |seconds: f64| seconds / CONTAINERS as f64 * 1e6;
    println!(
        "{label}: {CONTAINERS} containers, {} files each, {series} series, {bytes} bytes",
        files.len() / CONTAINERS
    );
    println!(
        "  collect       {:8.2} ms  ({:6.1} µs per container)",
        collect * 1e3,
        per_container(collect)
    );
    println!(
        "  read files    {:8.2} ms  ({:6.1} µs per container)  baseline: every file read, nothing parsed",
        read_only * 1e3,
        per_container(read_only)
    );
    println!("  ratio collect / read-only: {:.2}", collect / read_only);
    println!(
        "  encode text   {:8.2} ms  ({:.2} µs per series)",
        encode * 1e3,
        encode / series as f64 * 1e6
    );
}

fn main() {
    measure(
        "cgroup v1",
        "v1-cgroupfs",
        "1111111111111111111111111111111111111111111111111111111111111111",
        &["cpu,cpuacct", "cpuset", "memory", "blkio", "pids"],
    );
    measure(
        "cgroup v2",
        "v2-cgroupfs",
        "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
        &[""],
    );
}
