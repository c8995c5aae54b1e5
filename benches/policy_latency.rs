//! How soon a policy's limits are in place after `docker start` returns: p50 and p99 over
//! 50 starts, beside the time the start call itself took (measured in the same run).
//! "In place" means the memory limit (through the engine) and a device write limit
//! (written to the cgroup) both read back from the container's cgroup files.
//!
//! Needs a Docker Engine on a cgroup v1 host and Debian's busybox-static. Run with
//! `cargo bench --bench policy_latency`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::bench::{ApiContainers, report};

const STARTS: usize = 50;

fn main() {
    let containers = common::Containers::new("bench-policy-latency");
    let api = ApiContainers::new("bench-policy-latency");
    let scratch = common::disk_scratch_dir();
    let (disk, device) = common::disk_of(scratch.path());
    let policy = scratch.path().join("policy.yaml");
    std::fs::write(
        &policy,
        format!(
            "rules:\n  - name: bench\n    match: {{name: \"stevedore-bench-policy-*\"}}\n    limits:\n      memory: 96m\n      device-write-bps: [\"{disk}:10mb\"]\n"
        ),
    )
    .unwrap();
    let _exporter = common::Exporter::start(&[
        "--log.level=info",
        &format!("--policy.file={}", policy.display()),
        "--policy.mode=enforce",
    ]);
    let wanted_memory = (96 * 1024 * 1024).to_string();
    let wanted_device = format!("{device} {}", 10 * 1024 * 1024);

    let mut start_calls = Vec::new();
    let mut in_place = Vec::new();
    for n in 0..STARTS {
        let name = format!("stevedore-bench-policy-{n}");
        let id = api.create(&name);
        start_calls.push(api.start(&id));
        let returned = Instant::now();
        let memory = format!("/sys/fs/cgroup/memory/docker/{id}/memory.limit_in_bytes");
        let device_limit =
            format!("/sys/fs/cgroup/blkio/docker/{id}/blkio.throttle.write_bps_device");
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        while read(&memory).trim() != wanted_memory || read(&device_limit).trim() != wanted_device {
            assert!(
                returned.elapsed() < Duration::from_secs(10),
                "{name}: limits never in place"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        in_place.push(returned.elapsed());
        api.remove(&id);
    }
    drop(containers);
    println!("{STARTS} starts, one at a time, cgroup files polled every 0.2 ms:");
    report("the start call itself (for scale)", start_calls);
    report("start returned -> policy limits in place", in_place);
}
