//! What the latency benchmarks share: containers driven through the engine API (less noise
//! than the CLI), and percentile reports.

use std::time::{Duration, Instant};

use stevedore::docker::EngineClient;

/// Creates, starts and removes `sleep` containers of the test image through the engine API.
pub struct ApiContainers {
    runtime: tokio::runtime::Runtime,
    engine: EngineClient,
    /// The value of the test label on every container made here.
    label: String,
}

impl ApiContainers {
    pub fn new(label: &str) -> ApiContainers {
        ApiContainers {
            runtime: tokio::runtime::Runtime::new().unwrap(),
            engine: super::engine_client(),
            label: label.to_owned(),
        }
    }

    pub fn create(&self, name: &str) -> String {
        #[derive(serde::Deserialize)]
        struct Created {
            #[serde(rename = "Id")]
            id: String,
        }
        let body = serde_json::json!({
            "Image": super::IMAGE,
            "Cmd": ["sleep", "600"],
            "Labels": { super::TEST_LABEL: self.label },
        });
        let answer = self
            .runtime
            .block_on(
                self.engine
                    .post(&format!("/containers/create?name={name}"), &body),
            )
            .unwrap();
        serde_json::from_slice::<Created>(&answer).unwrap().id
    }

    /// Starts the container; returns how long the start call took.
    pub fn start(&self, id: &str) -> Duration {
        let call = Instant::now();
        self.runtime
            .block_on(self.engine.post(&format!("/containers/{id}/start"), &()))
            .unwrap();
        call.elapsed()
    }

    pub fn remove(&self, id: &str) {
        self.runtime
            .block_on(self.engine.delete(&format!("/containers/{id}?force=1")))
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
