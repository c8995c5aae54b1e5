//! How soon a container's series appear in /metrics after `docker start` returns, and
//! disappear after `docker rm` returns: p50 and p99 over 50 containers, against the time
//! of one scrape (the resolution of the measurement), measured in the same run.
//!
//! Needs a Docker Engine and Debian's busybox-static. Run with
//! `cargo bench --bench engine_latency`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, StartContainerOptions,
};

const CONTAINERS: usize = 50;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{what:<34} p50 {:>7.1} ms   p99 {:>7.1} ms   max {:>7.1} ms   (n={})",
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.last().unwrap().as_secs_f64() * 1e3,
        samples.len()
    );
}

fn main() {
    let containers = common::Containers::new("bench-engine-latency");
    let exporter = common::Exporter::start(&["--log.level=info"]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let docker = bollard::Docker::connect_with_local_defaults().unwrap();
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
        let id = runtime.block_on(async {
            let body = ContainerCreateBody {
                image: Some(common::IMAGE.to_owned()),
                cmd: Some(vec!["sleep".to_owned(), "600".to_owned()]),
                labels: Some(
                    [(
                        common::TEST_LABEL.to_owned(),
                        "bench-engine-latency".to_owned(),
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
        let series = format!("id=\"/docker/{id}\"");

        runtime
            .block_on(docker.start_container(&id, None::<StartContainerOptions>))
            .unwrap();
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

        let options = RemoveContainerOptionsBuilder::new().force(true).build();
        runtime
            .block_on(docker.remove_container(&id, Some(options)))
            .unwrap();
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
