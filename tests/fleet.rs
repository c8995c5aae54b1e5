//! From one host to a fleet: `examples/compose.yml` (stevedore, Prometheus and Grafana on one
//! host) and `examples/swarm-stack.yml` (stevedore on every node of a Swarm, found by
//! Prometheus's Swarm discovery), validated by their own tools, checked to be wired together,
//! and run for real with images built here (all but Grafana, which no registry here supplies).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::prometheus_server::Prometheus;
use common::{Containers, IMAGE, docker, docker_result, wait_for};
use saphyr::{LoadableYamlNode, Scalar, Yaml};
use serde_json::Value;

const MIB: f64 = 1024.0 * 1024.0;
const COMPOSE_FILE: &str = "examples/compose.yml";
const STACK_FILE: &str = "examples/swarm-stack.yml";
/// The variables the examples take their images and ports from, unset for the validation
/// so that the defaults are what is checked.
const EXAMPLE_VARIABLES: [&str; 5] = [
    "STEVEDORE_IMAGE",
    "PROMETHEUS_IMAGE",
    "GRAFANA_IMAGE",
    "PROMETHEUS_PORT",
    "GRAFANA_PORT",
];

fn output_text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// What `program args` prints when run in the repository with the examples' variables
/// unset (their defaults are what is checked), after checking that it succeeded.
fn rendered_config(program: &str, args: &[&str]) -> String {
    let mut command = Command::new(program);
    command.args(args);
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    for variable in EXAMPLE_VARIABLES {
        command.env_remove(variable);
    }
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("run {program}: {error}"));
    assert!(
        output.status.success(),
        "{program} {}: {}",
        args.join(" "),
        output_text(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn load_yaml(text: &str) -> Yaml<'_> {
    let mut documents = Yaml::load_from_str(text).expect("valid YAML");
    assert_eq!(documents.len(), 1, "one YAML document");
    documents.remove(0)
}

fn repository_text(path: &str) -> String {
    std::fs::read_to_string(common::repository(path))
        .unwrap_or_else(|error| panic!("{path}: {error}"))
}

fn get<'a, 'y>(node: &'a Yaml<'y>, key: &str) -> &'a Yaml<'y> {
    node.as_mapping_get(key)
        .unwrap_or_else(|| panic!("no `{key}` in {node:?}"))
}

fn text(node: &Yaml) -> String {
    match node {
        Yaml::Value(Scalar::String(text)) => text.to_string(),
        Yaml::Value(Scalar::Integer(number)) => number.to_string(),
        Yaml::Value(Scalar::Boolean(value)) => value.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn texts(node: &Yaml) -> Vec<String> {
    match node {
        Yaml::Sequence(items) => items.iter().map(text).collect(),
        other => panic!("not a list: {other:?}"),
    }
}

fn keys(node: &Yaml) -> Vec<String> {
    match node {
        Yaml::Mapping(entries) => entries.keys().map(text).collect(),
        other => panic!("not a mapping: {other:?}"),
    }
}

/// A bind mount of `docker-compose config`'s output (`source:target[:mode]`).
struct Mount {
    source: String,
    target: String,
}

fn mounts(service: &Yaml) -> Vec<Mount> {
    texts(get(service, "volumes"))
        .into_iter()
        .map(|volume| {
            let mut parts = volume.split(':');
            Mount {
                source: parts.next().unwrap().to_owned(),
                target: parts.next().expect("a mount target").to_owned(),
            }
        })
        .collect()
}

/// The service's mount of the repository file `path`, which must exist.
fn mount_of<'a>(mounts: &'a [Mount], path: &str) -> &'a Mount {
    let source = common::repository(path);
    assert!(source.is_file(), "{source:?} is not in the repository");
    mounts
        .iter()
        .find(|mount| Path::new(&mount.source) == source)
        .unwrap_or_else(|| panic!("{path} is not mounted"))
}

/// The README's flags, capabilities and mounts for the image, which a service must repeat.
struct Documented {
    flags: Vec<String>,
    cap_add: Vec<String>,
    cap_drop: Vec<String>,
    mounts: Vec<String>,
}

fn documented() -> Documented {
    let line = common::images::documented_run_line();
    let after = |option: &str| -> Vec<String> {
        line.iter()
            .zip(line.iter().skip(1))
            .filter(|(word, _)| *word == option)
            .map(|(_, value)| value.clone())
            .collect()
    };
    // The image's name, after the container's (`--name stevedore`).
    let image = line
        .iter()
        .rposition(|word| word == "stevedore")
        .expect("the documented line names the image");
    Documented {
        flags: line[image + 1..].to_vec(),
        cap_add: after("--cap-add"),
        cap_drop: after("--cap-drop"),
        mounts: after("-v"),
    }
}

#[test]
fn the_compose_example_is_valid_and_wired_together() {
    common::require_program("docker-compose", "docker-compose");
    let config_text = rendered_config("docker-compose", &["-f", COMPOSE_FILE, "config"]);
    let config = load_yaml(&config_text);
    let services = get(&config, "services");
    let mut names = keys(services);
    names.sort();
    assert_eq!(names, ["grafana", "prometheus", "stevedore"]);

    // stevedore runs as the README's `docker run` line says.
    let stevedore = get(services, "stevedore");
    let documented = documented();
    assert_eq!(texts(get(stevedore, "command")), documented.flags);
    assert_eq!(texts(get(stevedore, "cap_add")), documented.cap_add);
    assert_eq!(texts(get(stevedore, "cap_drop")), documented.cap_drop);
    assert_eq!(texts(get(stevedore, "volumes")), documented.mounts);
    assert_eq!(text(get(stevedore, "read_only")), "true");

    // Prometheus reads its configuration where it is mounted, and the alert rules where the
    // configuration names them.
    let prometheus = get(services, "prometheus");
    let prometheus_mounts = mounts(prometheus);
    let config_file = texts(get(prometheus, "command"))
        .iter()
        .find_map(|flag| flag.strip_prefix("--config.file=").map(str::to_owned))
        .expect("--config.file");
    assert_eq!(
        mount_of(&prometheus_mounts, "examples/prometheus.yml").target,
        config_file
    );
    let prometheus_config_text = repository_text("examples/prometheus.yml");
    let prometheus_config = load_yaml(&prometheus_config_text);
    assert_eq!(
        texts(get(&prometheus_config, "rule_files")),
        [mount_of(&prometheus_mounts, "dashboards/alerts.yaml")
            .target
            .clone()]
    );

    // Grafana finds the data source and the dashboard provider where it provisions from, the
    // dashboard in the provider's directory, and Prometheus at the data source's address.
    let grafana_mounts = mounts(get(services, "grafana"));
    let datasources = mount_of(&grafana_mounts, "examples/grafana/datasources.yml");
    assert!(
        datasources
            .target
            .starts_with("/etc/grafana/provisioning/datasources/"),
        "{}",
        datasources.target
    );
    let providers = mount_of(&grafana_mounts, "examples/grafana/dashboards.yml");
    assert!(
        providers
            .target
            .starts_with("/etc/grafana/provisioning/dashboards/"),
        "{}",
        providers.target
    );
    let providers_text = repository_text("examples/grafana/dashboards.yml");
    let providers = load_yaml(&providers_text);
    let Yaml::Sequence(providers) = get(&providers, "providers") else {
        panic!("providers is a list");
    };
    let provider_path = text(get(get(&providers[0], "options"), "path"));
    let dashboard = mount_of(&grafana_mounts, "dashboards/stevedore.json");
    assert_eq!(
        Path::new(&dashboard.target).parent(),
        Some(Path::new(&provider_path))
    );
    let datasources_text = repository_text("examples/grafana/datasources.yml");
    let datasources = load_yaml(&datasources_text);
    let Yaml::Sequence(datasources) = get(&datasources, "datasources") else {
        panic!("datasources is a list");
    };
    // The dashboard's data source variable lists data sources of this type.
    assert_eq!(text(get(&datasources[0], "type")), "prometheus");
    assert_eq!(text(get(&datasources[0], "isDefault")), "true");
    let url = text(get(&datasources[0], "url"));
    let ports = texts(get(prometheus, "ports"));
    assert!(
        ports.iter().any(|port| port.ends_with(":9090/tcp")),
        "{ports:?}"
    );
    assert_eq!(url, "http://prometheus:9090");
}

#[test]
fn the_swarm_stack_is_valid_for_docker_stack_deploy() {
    common::require_program("docker", "docker.io");
    let stack_text = rendered_config("docker", &["stack", "config", "-c", STACK_FILE]);
    let stack = load_yaml(&stack_text);
    let stevedore = get(get(&stack, "services"), "stevedore");
    assert_eq!(text(get(get(stevedore, "deploy"), "mode")), "global");
    // The flags and capabilities of the README's line (mounts are in the long syntax here).
    let documented = documented();
    assert_eq!(texts(get(stevedore, "command")), documented.flags);
    assert_eq!(texts(get(stevedore, "cap_add")), documented.cap_add);
    assert_eq!(texts(get(stevedore, "cap_drop")), documented.cap_drop);
}

/// A free port on loopback, for a service published there (the engine binds it just after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `data` of a Prometheus API answer, when it has one.
fn api_data(body: &str) -> Option<Value> {
    let body: Value = serde_json::from_str(body).ok()?;
    (body["status"] == "success").then(|| body["data"].clone())
}

/// The one active target of `job` once its last scrape succeeded.
fn healthy_target(targets: &Value, job: &str) -> Option<Value> {
    let active: Vec<&Value> = targets["activeTargets"]
        .as_array()?
        .iter()
        .filter(|target| target["labels"]["job"] == job)
        .collect();
    assert!(active.len() <= 1, "several {job} targets: {active:#?}");
    active
        .first()
        .filter(|target| target["health"] == "up")
        .map(|target| (*target).clone())
}

/// The value of an instant query that returns one series.
fn single_value(data: &Value) -> Option<f64> {
    let result = data["result"].as_array()?;
    if result.len() != 1 {
        return None;
    }
    result[0]["value"][1].as_str()?.parse().ok()
}

/// The repository's images for a test, built under its label: stevedore from the
/// `Dockerfile`, Prometheus from Debian's binary.
fn build_images(containers: &Containers, test: &str) -> (String, String) {
    let stevedore = format!("stevedore-test-{test}:latest");
    let prometheus = format!("stevedore-test-{test}-prometheus:latest");
    let context = common::images::stevedore_context();
    containers.build_image(&stevedore, context.path());
    let context = common::images::prometheus_context();
    containers.build_image(&prometheus, context.path());
    (stevedore, prometheus)
}

/// A compose project of the example; brought down (containers, network, volumes) when
/// dropped, and at the start in case an interrupted run left it up.
struct ComposeProject {
    project: String,
    override_file: PathBuf,
    env: Vec<(&'static str, String)>,
    _dir: tempfile::TempDir,
}

impl ComposeProject {
    /// The example plus an override that labels what it creates with the test's label.
    fn new(test: &str, env: Vec<(&'static str, String)>) -> ComposeProject {
        let dir = tempfile::tempdir().unwrap();
        let override_file = dir.path().join("labels.yml");
        let label = format!("{{{}: {test}}}", common::TEST_LABEL);
        std::fs::write(
            &override_file,
            format!(
                "services:\n  stevedore: {{labels: {label}}}\n  prometheus: {{labels: {label}}}\n\
                 networks:\n  default: {{labels: {label}}}\n\
                 volumes:\n  prometheus-data: {{labels: {label}}}\n  grafana-data: {{labels: {label}}}\n"
            ),
        )
        .unwrap();
        let project = ComposeProject {
            project: format!("stevedore-test-{test}"),
            override_file,
            env,
            _dir: dir,
        };
        let _ = project.run(&["down", "-v", "--remove-orphans"]);
        project
    }

    fn run(&self, args: &[&str]) -> Output {
        let repository = common::repository(COMPOSE_FILE);
        let mut command = Command::new("docker-compose");
        command
            .arg("-p")
            .arg(&self.project)
            .arg("-f")
            .arg(repository)
            .arg("-f")
            .arg(&self.override_file)
            .args(args);
        for variable in EXAMPLE_VARIABLES {
            command.env_remove(variable);
        }
        for (variable, value) in &self.env {
            command.env(variable, value);
        }
        command.output().expect("run docker-compose")
    }
}

impl Drop for ComposeProject {
    fn drop(&mut self) {
        let _ = self.run(&["down", "-v", "--remove-orphans"]);
    }
}

/// The stevedore and Prometheus services of `examples/compose.yml`, run as they are, with
/// images built here: Prometheus loads the alert rules and scrapes stevedore, which reports
/// the host's containers; a central Prometheus federating it as the README says gets them.
#[test]
fn the_compose_example_runs_prometheus_scrapes_stevedore_and_is_federated() {
    const TEST: &str = "compose-fleet";
    common::require_program("docker-compose", "docker-compose");
    let containers = Containers::new(TEST);
    let workload = format!("{TEST}-workload");
    containers.run(&[
        "--name", &workload, "--memory", "48m", IMAGE, "sleep", "100000",
    ]);
    let (stevedore_image, prometheus_image) = build_images(&containers, TEST);
    let port = free_port();
    let project = ComposeProject::new(
        TEST,
        vec![
            ("STEVEDORE_IMAGE", stevedore_image),
            ("PROMETHEUS_IMAGE", prometheus_image),
            ("PROMETHEUS_PORT", port.to_string()),
        ],
    );
    let up = project.run(&["up", "-d", "stevedore", "prometheus"]);
    assert!(
        up.status.success(),
        "docker-compose up: {}",
        output_text(&up)
    );

    let api = |path: &str, query: Option<&str>| -> Option<Value> {
        let mut request = ureq::get(&format!("http://127.0.0.1:{port}{path}"));
        if let Some(query) = query {
            request = request.query("query", query);
        }
        let mut response = request.call().ok()?;
        api_data(&response.body_mut().read_to_string().ok()?)
    };
    // The first scrape comes within the example's 15 s interval of Prometheus's start.
    let target = wait_for(
        "Prometheus to scrape stevedore",
        Duration::from_secs(90),
        || healthy_target(&api("/api/v1/targets", None)?, "stevedore"),
    );
    assert_eq!(target["labels"]["instance"], "stevedore:9417");
    let query = format!("container_spec_memory_limit_bytes{{name=\"{workload}\"}}");
    let limit = wait_for(
        "the workload's memory limit in Prometheus",
        Duration::from_secs(30),
        || single_value(&api("/api/v1/query", Some(&query))?),
    );
    assert_eq!(limit, 48.0 * MIB);

    // Every rule of dashboards/alerts.yaml is loaded.
    let rules = api("/api/v1/rules", None).expect("the rules API answers");
    let loaded: usize = rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|group| group["rules"].as_array().map_or(0, Vec::len))
        .sum();
    let alerts = std::fs::read_to_string(common::repository("dashboards/alerts.yaml")).unwrap();
    let shipped = alerts
        .lines()
        .filter(|line| line.trim_start().starts_with("- alert:"))
        .count();
    assert!(shipped > 0);
    assert_eq!(loaded, shipped);

    // A central Prometheus federating this one with the README's configuration gets the
    // host's series, with the site's external label.
    let central =
        Prometheus::start_configured(&documented_federation(&format!("127.0.0.1:{port}")));
    let query =
        format!("container_spec_memory_limit_bytes{{name=\"{workload}\",site=\"example\"}}");
    let limit = wait_for(
        "the workload's memory limit in the federating Prometheus",
        Duration::from_secs(30),
        || central.value(&query),
    );
    assert_eq!(limit, 48.0 * MIB);
}

/// The README's federation job (its YAML block under "Federation"), with the site's address
/// as its target.
fn documented_federation(site: &str) -> String {
    let readme = repository_text("README.md");
    let block = readme
        .split("```yaml\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap())
        .find(|block| block.contains("job_name: federate"))
        .expect("the README has a federation block");
    let indent = block.len() - block.trim_start().len();
    let targets = block
        .lines()
        .find_map(|line| line.trim_start().strip_prefix("- targets: "))
        .expect("the block has targets");
    block
        .lines()
        .map(|line| line.get(indent..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
        .replace(targets, &format!("[\"{site}\"]"))
}

/// A one-node swarm on loopback, left (with its stack, the helper attached to the stack's
/// network and the stack's volumes) when dropped, and the engine's `docker_gwbridge` removed
/// again when the swarm created it.
struct Swarm {
    stack: String,
    helper: String,
    gateway_bridge_existed: bool,
}

impl Swarm {
    fn init(stack: &str, helper: &str) -> Swarm {
        let state = docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
        assert_eq!(
            state, "inactive",
            "the engine is in a swarm already ({state}): this test makes a swarm of its own \
             and leaves it, so it does not run on an engine that is in one"
        );
        let gateway_bridge_existed =
            docker_result(&["network", "inspect", "docker_gwbridge"]).is_ok();
        let swarm = Swarm {
            stack: stack.to_owned(),
            helper: helper.to_owned(),
            gateway_bridge_existed,
        };
        // Loopback only, for advertising and for listening: nothing outside this machine
        // can join or reach it.
        let listen = format!("127.0.0.1:{}", free_port());
        docker(&[
            "swarm",
            "init",
            "--advertise-addr",
            "127.0.0.1",
            "--listen-addr",
            &listen,
        ]);
        swarm
    }

    fn stack_label(&self) -> String {
        format!("label=com.docker.stack.namespace={}", self.stack)
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        // The helper first: a network with a container attached is not removed.
        let _ = docker_result(&["rm", "-f", &self.helper]);
        let _ = docker_result(&["stack", "rm", &self.stack]);
        // The stack's containers go in the background; its volumes can go once they have.
        let filter = self.stack_label();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline
            && docker_result(&["ps", "-aq", "--filter", &filter]).is_ok_and(|ids| !ids.is_empty())
        {
            std::thread::sleep(Duration::from_millis(200));
        }
        if let Ok(volumes) = docker_result(&["volume", "ls", "-q", "--filter", &filter]) {
            for volume in volumes.split_whitespace() {
                let _ = docker_result(&["volume", "rm", volume]);
            }
        }
        let _ = docker_result(&["swarm", "leave", "--force"]);
        if !self.gateway_bridge_existed {
            let _ = docker_result(&["network", "rm", "docker_gwbridge"]);
        }
    }
}

/// Percent-encodes a query parameter's value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// `examples/swarm-stack.yml` deployed on a one-node swarm: stevedore runs as a global
/// service, and Prometheus discovers its task through the Swarm API and scrapes it.
#[test]
fn the_swarm_stack_runs_and_prometheus_discovers_and_scrapes_each_node() {
    const TEST: &str = "swarm-fleet";
    // Alone: a swarm changes the engine for every test (networks, a gateway bridge, events).
    let containers = Containers::alone(TEST);
    let workload = format!("{TEST}-workload");
    containers.run(&[
        "--name", &workload, "--memory", "40m", IMAGE, "sleep", "100000",
    ]);
    let (stevedore_image, prometheus_image) = build_images(&containers, TEST);
    let stack = format!("stevedore-test-{TEST}");
    let helper = format!("{TEST}-helper");
    let swarm = Swarm::init(&stack, &helper);

    let deploy = Command::new("docker")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "stack",
            "deploy",
            "--resolve-image",
            "never",
            "-c",
            STACK_FILE,
        ])
        .arg(&stack)
        .env("STEVEDORE_IMAGE", &stevedore_image)
        .env("PROMETHEUS_IMAGE", &prometheus_image)
        .output()
        .expect("run docker stack deploy");
    assert!(
        deploy.status.success(),
        "docker stack deploy: {}",
        output_text(&deploy)
    );

    // Prometheus's API is reached from a container on the stack's overlay network (which the
    // stack makes attachable), at the Prometheus task's address there.
    let network = format!("{stack}_monitoring");
    let service_filter = format!("label=com.docker.swarm.service.name={stack}_prometheus");
    let address_template =
        format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}");
    let prometheus_address = wait_for(
        "the Prometheus task to run",
        Duration::from_secs(60),
        || {
            let id = docker(&["ps", "-q", "--filter", &service_filter]);
            let id = id.lines().next()?;
            let address = docker_result(&["inspect", "--format", &address_template, id]).ok()?;
            (!address.is_empty()).then_some(address)
        },
    );
    containers.run(&[
        "--name",
        &helper,
        "--network",
        &network,
        IMAGE,
        "sleep",
        "100000",
    ]);
    let api = |path: &str| -> Option<Value> {
        let url = format!("http://{prometheus_address}:9090{path}");
        api_data(&docker_result(&["exec", &helper, "wget", "-qO-", &url]).ok()?)
    };

    // Discovery refreshes every 15 s and scrapes every 15 s in the example.
    let target = wait_for(
        "Prometheus to discover and scrape stevedore's task",
        Duration::from_secs(120),
        || healthy_target(&api("/api/v1/targets")?, "stevedore"),
    );
    let discovered = &target["discoveredLabels"];
    assert_eq!(discovered["__meta_dockerswarm_service_mode"], "global");
    let tasks = docker(&[
        "service",
        "ps",
        "--no-trunc",
        "--quiet",
        "--filter",
        "desired-state=running",
        &format!("{stack}_stevedore"),
    ]);
    let task = discovered["__meta_dockerswarm_task_id"]
        .as_str()
        .expect("a task id");
    assert_eq!(tasks.lines().collect::<Vec<_>>(), [task]);
    let node = docker(&[
        "node",
        "inspect",
        "self",
        "--format",
        "{{.Description.Hostname}}",
    ]);
    assert_eq!(target["labels"]["instance"], node.as_str());

    // The scrape carries the host's containers.
    let query = encode(&format!(
        "container_spec_memory_limit_bytes{{name=\"{workload}\"}}"
    ));
    let limit = wait_for(
        "the workload's memory limit in Prometheus",
        Duration::from_secs(30),
        || single_value(&api(&format!("/api/v1/query?query={query}"))?),
    );
    assert_eq!(limit, 40.0 * MIB);
    drop(swarm);
    assert_eq!(
        docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]),
        "inactive",
        "the test left its swarm"
    );
}
