//! What the latency benchmarks share: containers driven through the engine API (less noise
//! than the CLI), and percentile reports.

use std::time::{Duration, Instant};

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, StartContainerOptions,
};

/// Creates, starts and removes `sleep` containers of the test image through the engine API.
pub struct ApiContainers {
    runtime: tokio::runtime::Runtime,
    docker: bollard::Docker,
    /// The value of the test label on every container made here.
    label: String,
}

impl ApiContainers {
    pub fn new(label: &str) -> ApiContainers {
        ApiContainers {
            runtime: tokio::runtime::Runtime::new().unwrap(),
            docker: bollard::Docker::connect_with_local_defaults().unwrap(),
            label: label.to_owned(),
        }
    }

    pub fn create(&self, name: &str) -> String {
        let body = ContainerCreateBody {
            image: Some(super::IMAGE.to_owned()),
            cmd: Some(vec!["sleep".to_owned(), "600".to_owned()]),
            labels: Some(
                [(super::TEST_LABEL.to_owned(), self.label.clone())]
                    .into_iter()
                    .collect(),
            ),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::new().name(name).build();
        self.runtime
            .block_on(self.docker.create_container(Some(options), body))
            .unwrap()
            .id
    }

    /// Starts the container; returns how long the start call took.
    pub fn start(&self, id: &str) -> Duration {
        let call = Instant::now();
        self.runtime
            .block_on(
                self.docker
                    .start_container(id, None::<StartContainerOptions>),
            )
            .unwrap();
        call.elapsed()
    }

    pub fn remove(&self, id: &str) {
        let options = RemoveContainerOptionsBuilder::new().force(true).build();
        self.runtime
            .block_on(self.docker.remove_container(id, Some(options)))
            .unwrap();
    }
}

/// One line: p50, p99 and max of the samples, in milliseconds.
pub fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let percentile = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "{what:<40} p50 {:>7.1} ms   p99 {:>7.1} ms   max {:>7.1} ms   (n={})",
        percentile(0.5).as_secs_f64() * 1e3,
        percentile(0.99).as_secs_f64() * 1e3,
        samples.last().unwrap().as_secs_f64() * 1e3,
        samples.len()
    );
}
