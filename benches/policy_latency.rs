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

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, StartContainerOptions,
};

const STARTS: usize = 50;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{what:<40} p50 {:>7.1} ms   p99 {:>7.1} ms   max {:>7.1} ms   (n={})",
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.last().unwrap().as_secs_f64() * 1e3,
        samples.len()
    );
}

fn main() {
    let containers = common::Containers::new("bench-policy-latency");
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
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let docker = bollard::Docker::connect_with_local_defaults().unwrap();
    let wanted_memory = (96 * 1024 * 1024).to_string();
    let wanted_device = format!("{device} {}", 10 * 1024 * 1024);

    let mut start_calls = Vec::new();
    let mut in_place = Vec::new();
    for n in 0..STARTS {
        let name = format!("stevedore-bench-policy-{n}");
        let id = runtime.block_on(async {
            let body = ContainerCreateBody {
                image: Some(common::IMAGE.to_owned()),
                cmd: Some(vec!["sleep".to_owned(), "600".to_owned()]),
                labels: Some(
                    [(
                        common::TEST_LABEL.to_owned(),
                        "bench-policy-latency".to_owned(),
                    )]
                    .into_iter()
                    .collect(),
                ),
                ..Default::default()
            };
            let options = CreateContainerOptionsBuilder::new().name(&name).build();
            docker
                .create_container(Some(options), body)
                .await
                .unwrap()
                .id
        });
        let call = Instant::now();
        runtime
            .block_on(docker.start_container(&id, None::<StartContainerOptions>))
            .unwrap();
        start_calls.push(call.elapsed());
        let returned = Instant::now();
        let memory = format!("/sys/fs/cgroup/memory/docker/{id}/memory.limit_in_bytes");
        let device_limit =
            format!("/sys/fs/cgroup/blkio/docker/{id}/blkio.throttle.write_bps_device");
        loop {
            let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
            if read(&memory).trim() == wanted_memory && read(&device_limit).trim() == wanted_device
            {
                break;
            }
            assert!(
                returned.elapsed() < Duration::from_secs(10),
                "{name}: limits never in place"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        in_place.push(returned.elapsed());
        let options = RemoveContainerOptionsBuilder::new().force(true).build();
        runtime
            .block_on(docker.remove_container(&id, Some(options)))
            .unwrap();
    }
    drop(containers);
    println!("{STARTS} starts, one at a time, cgroup files polled every 0.2 ms:");
    report("the start call itself (for scale)", start_calls);
    report("start returned -> policy limits in place", in_place);
}
