//! What a user meets when starting the exporter: paths that are not a cgroup filesystem,
//! containers whose cgroup cannot be found, signals, listen addresses given as host names,
//! and engines that are not where they were said to be.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{Containers, Exporter, wait_for};

fn fixture(tree: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(tree)
}

fn fixture_args() -> Vec<String> {
    let root = fixture("v2-cgroupfs");
    vec![
        format!("--path.cgroupfs={}", root.join("cgroup").display()),
        format!("--path.procfs={}", root.join("proc").display()),
        "--docker.host=unix:///nonexistent/docker.sock".to_owned(),
    ]
}

fn run(args: &[&str]) -> Output {
    Command::new(common::stevedore_binary())
        .args(args)
        .output()
        .expect("run stevedore")
}

#[test]
fn a_path_without_cgroups_stops_the_exporter_at_start_with_one_message() {
    let empty = tempfile::tempdir().unwrap();
    let flag = format!("--path.cgroupfs={}", empty.path().display());
    for command in [vec![flag.as_str()], vec!["scrape", flag.as_str()]] {
        let output = run(&command);
        assert_eq!(output.status.code(), Some(1), "{command:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let message = format!("no cgroup filesystem at {flag}");
        assert_eq!(stderr.matches(&message).count(), 1, "{command:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "printed once: {stderr}");
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn sighup_without_a_policy_is_harmless() {
    let args = fixture_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut exporter = Exporter::start(&args);
    exporter.signal("HUP");
    wait_for("the SIGHUP to be noticed", Duration::from_secs(10), || {
        exporter
            .log()
            .iter()
            .any(|line| line.contains("SIGHUP: no --policy.file to reload"))
            .then_some(())
    });
    assert!(exporter.is_running());
    assert_eq!(exporter.scrape().expect("stevedore_build_info", &[]), 1.0);
}

#[test]
fn a_listen_address_with_a_host_name_is_resolved() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut args = fixture_args();
    args.push(format!("--web.listen-address=localhost:{port}"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let exporter = Exporter::start(&args);
    assert!(
        exporter.address.ends_with(&format!(":{port}")),
        "{}",
        exporter.address
    );
    assert!(
        exporter
            .scrape()
            .value("stevedore_build_info", &[])
            .is_some()
    );
}

#[test]
fn engine_problems_say_what_was_tried_and_what_failed() {
    let root = fixture("v2-cgroupfs");
    let cgroupfs = format!("--path.cgroupfs={}", root.join("cgroup").display());
    let unreachable = [
        (
            "tcp://127.0.0.1:1",
            "connection refused at tcp://127.0.0.1:1",
        ),
        (
            "unix:///nonexistent/docker.sock",
            "no socket at /nonexistent/docker.sock",
        ),
    ];
    for (host, expected) in unreachable {
        let output = run(&["scrape", &cgroupfs, &format!("--docker.host={host}")]);
        assert!(output.status.success(), "cgroups are still scraped");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{host}: {stderr}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("\ndocker_up 0\n"), "{stdout}");
    }

    let refused = run(&["scrape", &cgroupfs, "--docker.host=http://127.0.0.1:2375"]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("http:// is not a Docker host scheme")
            && stderr.contains("tcp://host:port"),
        "{stderr}"
    );
}

#[test]
fn the_engine_is_named_once_when_it_connects() {
    common::require_engine();
    let args = fixture_args();
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.retain(|arg| !arg.starts_with("--docker.host"));
    let exporter = Exporter::start(&args);
    let version = common::docker(&["version", "--format", "{{.Server.Version}}"]);
    let line = wait_for("the connect log line", Duration::from_secs(10), || {
        exporter
            .log()
            .into_iter()
            .find(|line| line.contains("connected to the engine"))
    });
    assert!(line.contains(&format!("version={version}")), "{line}");
    assert!(line.contains("api_version="), "{line}");
}

#[test]
fn running_containers_whose_cgroup_is_not_found_are_counted_and_named_once() {
    let containers = Containers::new("no-cgroup");
    let id = containers.run(&[
        "--name",
        "stevedore-no-cgroup",
        common::IMAGE,
        "sleep",
        "600",
    ]);
    // A cgroup tree that is not the engine's: none of its containers is in it.
    let args = fixture_args();
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.retain(|arg| !arg.starts_with("--docker.host"));
    let exporter = Exporter::start(&args);
    let counted = wait_for("the unlocated container", Duration::from_secs(10), || {
        let scrape = exporter.scrape();
        let known = scrape
            .find("docker_container_info", &[("name", "stevedore-no-cgroup")])
            .is_empty();
        let known = !known;
        known.then(|| scrape.expect("stevedore_scrape_containers_without_cgroup", &[]))
    });
    assert!(counted >= 1.0, "{counted}");
    exporter.scrape();
    exporter.scrape();
    let warnings = exporter
        .log()
        .into_iter()
        .filter(|line| {
            line.contains("no cgroup found for a running container") && line.contains(&id)
        })
        .count();
    assert_eq!(warnings, 1, "one warning per container over three scrapes");
}
