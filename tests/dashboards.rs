//! The shipped Grafana dashboard and Prometheus alert rules: `promtool` checks and unit
//! tests of the rules, and every dashboard query and rule evaluated by a real Prometheus
//! server scraping a real stevedore over a real Docker Engine.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Containers, Exporter, wait_for};
use serde_json::Value;

fn repository(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn assert_promtool_passes(args: &[&str], dir: &Path) {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool must be installed (Debian package prometheus)");
    assert!(
        output.status.success(),
        "promtool {args:?}:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_alert_rules_are_valid_and_pass_their_unit_tests() {
    assert_promtool_passes(
        &["check", "rules", "dashboards/alerts.yaml"],
        &repository(""),
    );
    assert_promtool_passes(
        &["test", "rules", "alerts_test.yaml"],
        &repository("tests/rules"),
    );
}

fn dashboard() -> Value {
    let text = std::fs::read_to_string(repository("dashboards/stevedore.json")).unwrap();
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// Every query of the dashboard: (panel title, expression).
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            queries.push((
                panel["title"].as_str().unwrap().to_owned(),
                target["expr"].as_str().unwrap().to_owned(),
            ));
        }
    }
    queries
}

#[test]
fn the_dashboard_is_well_formed() {
    let dashboard = dashboard();
    assert_eq!(dashboard["uid"], "stevedore-containers");
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|variable| variable["name"].as_str().unwrap())
        .collect();
    assert_eq!(variables, ["datasource", "instance", "name"]);
    let panels = dashboard["panels"].as_array().unwrap();
    let mut ids: Vec<u64> = panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");
    for panel in panels {
        let grid = &panel["gridPos"];
        let (x, w) = (grid["x"].as_u64().unwrap(), grid["w"].as_u64().unwrap());
        assert!(x + w <= 24, "{} overflows the grid", panel["title"]);
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{}",
            panel["title"]
        );
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{} has no query", panel["title"]);
    }
    assert!(dashboard_queries(&dashboard).len() >= 25);
}

/// A Prometheus server of Debian's package, scraping one exporter every second.
struct Prometheus {
    child: Child,
    url: String,
    _data: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Prometheus {
        let data = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = data.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
                 rule_files: [{}]\n\
                 scrape_configs:\n  - job_name: stevedore\n    static_configs: [{{targets: [\"{target}\"]}}]\n",
                repository("dashboards/alerts.yaml").display()
            ),
        )
        .unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                data.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus must be installed (Debian package prometheus)");
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

    fn api(&self, path: &str, query: Option<&str>) -> Value {
        let mut request = ureq::get(&format!("{}{path}", self.url));
        if let Some(query) = query {
            request = request.query("query", query);
        }
        let mut response = request
            .call()
            .unwrap_or_else(|error| panic!("{path} {query:?}: {error}"));
        let body: Value =
            serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
        assert_eq!(body["status"], "success", "{path} {query:?}: {body}");
        body["data"].clone()
    }

    /// The number of series an instant query returns.
    fn series(&self, query: &str) -> usize {
        self.api("/api/v1/query", Some(query))["result"]
            .as_array()
            .map_or(0, Vec::len)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn every_dashboard_query_and_alert_rule_runs_on_a_real_prometheus() {
    let containers = Containers::new("dashboards");
    let exporter = Exporter::start(&[]);
    containers.run(&[
        "--name",
        "stevedore-dash-burner",
        "--memory",
        "64m",
        "--cpus",
        "0.2",
        "--pids-limit",
        "50",
        common::IMAGE,
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    let prometheus = Prometheus::start(&exporter.address);
    wait_for(
        "five scrapes of the burner",
        Duration::from_secs(30),
        || {
            (prometheus.series(
            "count_over_time(container_cpu_usage_seconds_total{name=\"stevedore-dash-burner\"}[1m]) >= 5",
        ) == 1)
            .then_some(())
        },
    );

    let mut empty = Vec::new();
    for (title, expr) in dashboard_queries(&dashboard()) {
        let query = expr
            .replace("$instance", ".*")
            .replace("$name", ".*")
            .replace("$__rate_interval", "5s");
        if prometheus.series(&query) == 0 {
            empty.push(title);
        }
    }
    eprintln!("panels without data in this run: {empty:?}");
    // Panels about things this run does not cause (OOM kills, failures, health checks, a
    // policy, device limits) may rightly be empty; every other panel must show data.
    let may_be_empty = [
        "OOM kills",
        "Disk writes",
        "Disk reads",
        "Restarts",
        "Health",
        "Exited with an error",
        "Limits differing from the policy",
        "Policy applications",
        "Policy reload",
        "CPU pressure (waiting)",
        "Memory pressure (waiting)",
        "I/O pressure (waiting)",
    ];
    let missing: Vec<&String> = empty
        .iter()
        .filter(|title| !may_be_empty.contains(&title.as_str()))
        .collect();
    assert!(missing.is_empty(), "panels without data: {missing:?}");

    let instances = prometheus.api("/api/v1/label/instance/values", None);
    assert!(
        instances
            .as_array()
            .unwrap()
            .iter()
            .any(|value| value == &Value::from(exporter.address.clone())),
        "the instance variable lists the exporter: {instances}"
    );

    let rules = wait_for("every rule evaluated", Duration::from_secs(20), || {
        let groups = prometheus.api("/api/v1/rules", None)["groups"].clone();
        let rules: Vec<Value> = groups
            .as_array()?
            .iter()
            .flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        rules
            .iter()
            .all(|rule| rule["lastEvaluation"].as_str() != Some("0001-01-01T00:00:00Z"))
            .then_some(rules)
    });
    assert_eq!(rules.len(), 12);
    for rule in &rules {
        assert_eq!(
            rule["health"], "ok",
            "rule {} failed: {}",
            rule["name"], rule["lastError"]
        );
    }
}
