//! How soon a container's series appear in /metrics after `docker start` returns, and
//! disappear after `docker rm` returns: p50 and p99 over 50 containers, against the time
//! of one scrape (the resolution of the measurement), measured in the same run.
//!
//! Needs a Docker Engine and Debian's busybox-static. Run with
//! `cargo bench --bench engine_latency`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::bench::{ApiContainers, report};

const CONTAINERS: usize = 50;

fn main() {
    let containers = common::Containers::new("bench-engine-latency");
    let api = ApiContainers::new("bench-engine-latency");
    let exporter = common::Exporter::start(&["--log.level=info"]);
    let metrics_url = exporter.url("/metrics");
    let scrape = || {
        ureq::get(&metrics_url)
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
    };

    let mut scrape_times = Vec::new();
    let mut appear = Vec::new();
    let mut vanish = Vec::new();
    for n in 0..CONTAINERS {
        let name = format!("stevedore-bench-latency-{n}");
        let id = api.create(&name);
        let series = format!("id=\"/docker/{id}\"");

        api.start(&id);
        let started = Instant::now();
        loop {
            let before = Instant::now();
            let text = scrape();
            scrape_times.push(before.elapsed());
            if text.contains(&series) && text.contains("container_memory_usage_bytes{") {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{name} never appeared"
            );
        }
        appear.push(started.elapsed());

        api.remove(&id);
        let removed = Instant::now();
        while scrape().contains(&series) {
            assert!(
                removed.elapsed() < Duration::from_secs(10),
                "{name} never vanished"
            );
        }
        vanish.push(removed.elapsed());
    }
    drop(containers);

    println!("{CONTAINERS} containers, one at a time, /metrics polled back to back:");
    report("one scrape (measurement resolution)", scrape_times);
    report("docker start -> series present", appear);
    report("docker rm -> series gone", vanish);
}
