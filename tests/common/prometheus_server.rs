//! A real Prometheus server (Debian's package) scraping one exporter every second, and its
//! HTTP API, for the tests that evaluate queries against what stevedore exported.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{require_program, wait_for};

/// How a server is set up: which target it scrapes under which job name, the rule files
/// it evaluates, and how long it keeps samples.
pub struct Setup<'a> {
    pub job: &'a str,
    /// `host:port` of the exporter.
    pub target: &'a str,
    pub rule_files: Vec<PathBuf>,
    /// `--storage.tsdb.retention.time`, e.g. `1h` (Prometheus' default, 15d, otherwise).
    pub retention: Option<&'a str>,
}

impl<'a> Setup<'a> {
    pub fn new(job: &'a str, target: &'a str) -> Setup<'a> {
        Setup {
            job,
            target,
            rule_files: Vec::new(),
            retention: None,
        }
    }
}

pub struct Prometheus {
    child: Child,
    pub url: String,
    _data: tempfile::TempDir,
}

impl Prometheus {
    /// Starts the server (scraping and evaluating every second) and waits until it is ready.
    pub fn start(setup: Setup) -> Prometheus {
        let rule_files: Vec<String> = setup
            .rule_files
            .iter()
            .map(|path| path.display().to_string())
            .collect();
        let configuration = format!(
            "rule_files: [{}]\n\
             scrape_configs:\n  - job_name: {}\n    static_configs: [{{targets: [\"{}\"]}}]\n",
            rule_files.join(", "),
            setup.job,
            setup.target
        );
        Prometheus::launch(&configuration, setup.retention)
    }

    /// Starts a server with a configuration of the caller's (everything but `global`, which
    /// scrapes and evaluates every second), e.g. a federation job.
    pub fn start_configured(configuration: &str) -> Prometheus {
        Prometheus::launch(configuration, None)
    }

    fn launch(configuration: &str, retention: Option<&str>) -> Prometheus {
        require_program("prometheus", "prometheus");
        let data = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = data.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!("global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n{configuration}\n"),
        )
        .unwrap();
        let mut command = Command::new("prometheus");
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                data.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        if let Some(retention) = retention {
            command.arg(format!("--storage.tsdb.retention.time={retention}"));
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run prometheus");
        let prometheus = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _data: data,
        };
        wait_for("prometheus to be ready", Duration::from_secs(30), || {
            ureq::get(&format!("{}/-/ready", prometheus.url))
                .call()
                .ok()
        });
        prometheus
    }

    /// The `data` of an API call, or why Prometheus refused it (a query it cannot run is
    /// the caller's to report).
    pub fn try_api(&self, path: &str, query: Option<&str>) -> Result<Value, String> {
        let mut request = ureq::get(&format!("{}{path}", self.url))
            .config()
            .http_status_as_error(false)
            .build();
        if let Some(query) = query {
            request = request.query("query", query);
        }
        let mut response = request.call().map_err(|error| format!("{path}: {error}"))?;
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|error| format!("{path}: {error}"))?;
        let body: Value =
            serde_json::from_str(&text).map_err(|error| format!("{path}: {error}: {text}"))?;
        if body["status"] == "success" {
            Ok(body["data"].clone())
        } else {
            Err(format!("{}: {}", body["errorType"], body["error"]))
        }
    }

    pub fn api(&self, path: &str, query: Option<&str>) -> Value {
        self.try_api(path, query)
            .unwrap_or_else(|error| panic!("{path} {query:?}: {error}"))
    }

    /// The number of series an instant query returns.
    pub fn series(&self, query: &str) -> usize {
        self.api("/api/v1/query", Some(query))["result"]
            .as_array()
            .map_or(0, Vec::len)
    }

    /// The value of an instant query that returns one series; `None` when it returns none.
    pub fn value(&self, query: &str) -> Option<f64> {
        let result = self.api("/api/v1/query", Some(query))["result"].clone();
        let series = result.as_array()?;
        assert!(series.len() <= 1, "{query} returns {} series", series.len());
        series.first()?["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
