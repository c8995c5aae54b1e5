//! The shipped Grafana dashboard and Prometheus alert rules, and the community cAdvisor
//! dashboards and alert rules stevedore stands in for: `promtool` checks and unit tests of
//! our rules, then every query of both evaluated by one real Prometheus server scraping a
//! real stevedore over a real Docker Engine, with one workload that gives each query
//! something to show.

mod common;
mod compat;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::prometheus_server::{Prometheus, Setup};
use common::{Containers, Exporter, wait_for};
use serde_json::Value;

fn repository(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn assert_promtool_passes(args: &[&str], dir: &Path) {
    common::require_program("promtool", "prometheus");
    let output = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool");
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

#[test]
fn every_community_query_exclusion_names_a_query_of_the_file() {
    let queries = compat::read();
    let mut keys = Vec::new();
    for exclusion in compat::EXCLUDED {
        assert!(
            queries
                .iter()
                .any(|query| query.source == exclusion.source && query.title == exclusion.title),
            "the exclusion of {} {:?} names no query of {}: remove it",
            exclusion.source,
            exclusion.title,
            compat::path().display()
        );
        assert!(!exclusion.reason.is_empty());
        keys.push((exclusion.source, exclusion.title));
    }
    let count = keys.len();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), count, "an exclusion is listed twice");
}

/// `Ok` when what `ask` asks for has data; otherwise what was missing.
fn answer(prometheus: &Prometheus, ask: &compat::Ask) -> Result<(), String> {
    let found = match ask {
        compat::Ask::Instant(expr) => has_data(&prometheus.try_api("/api/v1/query", Some(expr))?),
        compat::Ask::SeriesWithLabel { selector, label } => prometheus
            .try_api("/api/v1/query", Some(selector))?["result"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|series| {
                series["metric"][label]
                    .as_str()
                    .is_some_and(|v| !v.is_empty())
            }),
        compat::Ask::LabelValues(label) => prometheus
            .try_api(&format!("/api/v1/label/{label}/values"), None)?
            .as_array()
            .is_some_and(|values| !values.is_empty()),
    };
    if found {
        Ok(())
    } else {
        Err("no data".to_owned())
    }
}

/// Whether an instant query's `data` holds anything: series, or a scalar that is a number
/// (`scalar()` of no series, or of several, is NaN).
fn has_data(data: &Value) -> bool {
    let result = &data["result"];
    match data["resultType"].as_str() {
        Some("vector" | "matrix") => result.as_array().is_some_and(|r| !r.is_empty()),
        Some("scalar") => result[1].as_str().is_some_and(|value| value != "NaN"),
        Some("string") => true,
        _ => false,
    }
}

/// The network the two peers talk over; created (and removed) by the test.
const NETWORK: &str = "stevedore-dashboards";
/// Two community queries select these names (a dashboard's "jenkins" and "nginx"
/// containers), so they cannot be unique per run: a leftover container of ours with either
/// name is removed with the rest of the test's containers before the workload starts.
const PEER_MEM: &str = "peer-mem";
const PEER_WEB: &str = "peer-web";
/// Runs into its CPU quota, under a memory and a task limit.
const BURNER: &str = "stevedore-dash-burner";

/// Starts containers that give every query something to show; returns their names.
/// `disk_dir` is a directory on a real block device, for direct I/O.
fn start_workload(containers: &Containers, disk_dir: &Path) -> Vec<&'static str> {
    containers.network(NETWORK);
    let disk_mount = format!("{}:/data", disk_dir.display());
    let (disk, _) = common::disk_of(disk_dir);
    let (read_limit, write_limit) = (format!("{disk}:1gb"), format!("{disk}:1gb"));
    let workload: [(&str, &[&str], &[&str]); 7] = [
        (
            BURNER,
            &["--memory", "64m", "--cpus", "0.5", "--pids-limit", "50"],
            &["sh", "-c", "while :; do :; done"],
        ),
        // A web server and a client fetching from it ten times a second: network traffic
        // both ways, and CPU used by both. The labels are those of a Swarm service and of
        // a namespace, which community dashboards filter on.
        (
            PEER_WEB,
            &[
                "--network",
                NETWORK,
                "--label",
                "com.docker.swarm.service.name=peer-web",
                "--label",
                "namespace=peers",
            ],
            &[
                "sh",
                "-c",
                "mkdir /www && dd if=/dev/zero of=/www/blob bs=1k count=256 2>/dev/null \
                 && exec httpd -f -p 8080 -h /www",
            ],
        ),
        (
            PEER_MEM,
            &[
                "--network",
                NETWORK,
                "--label",
                "com.docker.swarm.service.name=peer-mem",
                "--label",
                "namespace=peers",
            ],
            &[
                "sh",
                "-c",
                "while :; do wget -q -O /dev/null http://peer-web:8080/blob; usleep 100000; done",
            ],
        ),
        // dockprom's monitoring stack is told apart by this label.
        (
            "stevedore-dash-monitoring",
            &["--label", "org.label-schema.group=monitoring"],
            &["sleep", "86400"],
        ),
        (
            "stevedore-dash-healthy",
            &["--health-cmd", "true", "--health-interval", "1s"],
            &["sleep", "86400"],
        ),
        // 20 MiB in its own writable layer.
        (
            "stevedore-dash-writer",
            &[],
            &[
                "sh",
                "-c",
                "dd if=/dev/zero of=/blob bs=1M count=20 2>/dev/null && exec sleep 86400",
            ],
        ),
        // Block I/O the container's cgroup is charged for: direct (unbuffered) writes and
        // reads of 256 KiB a second on a real disk. The kernel counts a cgroup's block I/O
        // (blkio.throttle.* under cgroup v1) only on a device it has a throttle rule for:
        // limits far above what it does.
        (
            "stevedore-dash-disk",
            &[
                "-v",
                &disk_mount,
                "--device-read-bps",
                &read_limit,
                "--device-write-bps",
                &write_limit,
            ],
            &[
                "sh",
                "-c",
                "while :; do dd if=/dev/zero of=/data/out bs=64k count=4 oflag=direct 2>/dev/null; \
                 dd if=/data/out of=/dev/null bs=64k iflag=direct 2>/dev/null; sleep 1; done",
            ],
        ),
    ];
    for (name, options, command) in &workload {
        let mut args = vec!["--name", name];
        args.extend_from_slice(options);
        args.push(common::IMAGE);
        args.extend_from_slice(command);
        containers.run(&args);
    }
    workload.iter().map(|(name, _, _)| *name).collect()
}

/// The longest look-back of the community queries is a one-minute rate one minute ago
/// (`[1m] offset 1m`), which needs two samples older than 60 s. At one scrape a second, 67
/// samples of a series span 66 s.
const HISTORY_SAMPLES: usize = 67;

/// A query with one series once Prometheus holds `samples` samples of each container named.
fn samples_of_each(names: &[&str], samples: usize) -> String {
    format!(
        "count(count_over_time(container_cpu_usage_seconds_total{{name=~\"{}\"}}[2m]) >= {samples}) == {}",
        names.join("|"),
        names.len()
    )
}

/// Our dashboard's queries and our alert rules; returns what is wrong.
fn our_dashboard_and_rules_problems(prometheus: &Prometheus, exporter: &Exporter) -> Vec<String> {
    let mut problems = Vec::new();
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
    eprintln!("our panels without data in this run: {empty:?}");
    // Panels about things this run does not cause (OOM kills, restarts, failures, a
    // policy, pressure where the kernel has none) may rightly be empty; every other panel
    // must show data.
    let may_be_empty = [
        "OOM kills",
        "Restarts",
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
    if !missing.is_empty() {
        problems.push(format!("our panels without data: {missing:?}"));
    }

    let instances = prometheus.api("/api/v1/label/instance/values", None);
    if !instances
        .as_array()
        .unwrap()
        .iter()
        .any(|value| value == &Value::from(exporter.address.clone()))
    {
        problems.push(format!(
            "the instance variable does not list the exporter: {instances}"
        ));
    }

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
    if rules.len() != 12 {
        problems.push(format!("{} alert rules loaded, not 12", rules.len()));
    }
    for rule in &rules {
        if rule["health"] != "ok" {
            problems.push(format!(
                "rule {} failed: {}",
                rule["name"], rule["lastError"]
            ));
        }
    }
    problems
}

/// Asks every community query that is not excluded; returns the failures, each with what
/// was asked.
fn community_query_failures(prometheus: &Prometheus) -> Vec<String> {
    let queries = compat::read();
    let mut asked = 0;
    let mut failures = Vec::new();
    for query in &queries {
        if compat::exclusion(query).is_some() {
            continue;
        }
        asked += 1;
        let answered = compat::ask(query).and_then(|ask| {
            answer(prometheus, &ask).map_err(|why| format!("{why}: {}", ask.describe()))
        });
        if let Err(why) = answered {
            failures.push(format!(
                "{:?} {} {:?}\n    {why}",
                query.kind, query.source, query.title
            ));
        }
    }
    eprintln!(
        "community cAdvisor queries: {} of {asked} answered ({} excluded of {} in {})",
        asked - failures.len(),
        queries.len() - asked,
        queries.len(),
        compat::path().display()
    );
    for failure in &failures {
        eprintln!("  no answer: {failure}");
    }
    failures
}

/// One workload, one exporter (with its default flags, as a drop-in replacement would run)
/// and one Prometheus for our dashboard and rules and for the community's: each shows data.
#[test]
fn every_dashboard_query_and_alert_rule_shows_data_on_a_real_prometheus() {
    // Declared first so that it is removed last, after the container using it.
    let disk_dir = common::disk_scratch_dir();
    let containers = Containers::new("dashboards");
    let exporter = Exporter::start(&[]);
    // The job is named as the community stacks name their cAdvisor job: some of their
    // queries select `job="cadvisor"`.
    let prometheus = Prometheus::start(Setup {
        rule_files: vec![repository("dashboards/alerts.yaml")],
        ..Setup::new("cadvisor", &exporter.address)
    });
    let names = start_workload(&containers, disk_dir.path());

    // Ours first, while the history the community queries need builds up.
    wait_for(
        "five scrapes of each workload container",
        Duration::from_secs(30),
        || (prometheus.series(&samples_of_each(&names, 5)) == 1).then_some(()),
    );
    let ours = our_dashboard_and_rules_problems(&prometheus, &exporter);

    wait_for(
        &format!("{HISTORY_SAMPLES} scrapes of each workload container"),
        Duration::from_secs(120),
        || (prometheus.series(&samples_of_each(&names, HISTORY_SAMPLES)) == 1).then_some(()),
    );
    let community = community_query_failures(&prometheus);

    assert!(
        ours.is_empty() && community.is_empty(),
        "our dashboard and rules: {ours:#?}\ncommunity cAdvisor queries without data ({}):\n{}",
        community.len(),
        community.join("\n")
    );
}
