//! The live page at `/` in a real browser (Debian's chromium, headless) against a real
//! stevedore and real containers: the rendered table holds each container with its limits
//! and live numbers, and a screenshot is kept as a test artifact.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Containers, Exporter, wait_for};

const MIB: u64 = 1024 * 1024;

/// Runs headless chromium on `url` with `action` (`--dump-dom`, `--screenshot=…`), giving the
/// page 10 s of virtual time: several polls of the JSON, so rates have two readings.
fn chromium(url: &str, action: &str) -> String {
    common::require_program("chromium", "chromium");
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new("chromium")
        .args([
            "--headless",
            // Tests run as root, where chromium's sandbox cannot start.
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1400,800",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(action)
        .arg(url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "chromium {action}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The opening tag of the table row of container `name`, and the row's text.
fn row<'a>(dom: &'a str, name: &str) -> (&'a str, &'a str) {
    let start = dom
        .find(&format!("<tr data-name=\"{name}\""))
        .unwrap_or_else(|| panic!("no row for {name} in the page:\n{dom}"));
    let row = &dom[start..];
    let end = row.find("</tr>").expect("a closed row");
    let tag_end = row.find('>').expect("a closed tag");
    (&row[..tag_end], &row[..end])
}

fn attribute<'a>(tag: &'a str, name: &str) -> &'a str {
    let key = format!(" {name}=\"");
    let start = tag
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {tag}"))
        + key.len();
    let rest = &tag[start..];
    &rest[..rest.find('"').expect("a closed attribute")]
}

fn artifact_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_page_shows_each_container_with_its_limits_and_live_numbers() {
    let containers = Containers::new("page");
    containers.run(&[
        "--name",
        "stevedore-page-limited",
        "--memory",
        "64m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "50",
        common::IMAGE,
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    containers.run(&[
        "--name",
        "stevedore-page-open",
        common::IMAGE,
        "sleep",
        "600",
    ]);
    let exited = containers.run(&[
        "--name",
        "stevedore-page-exited",
        common::IMAGE,
        "sh",
        "-c",
        "exit 3",
    ]);
    wait_for(
        "the exited container to stop",
        Duration::from_secs(20),
        || {
            (common::docker(&["inspect", "-f", "{{.State.Status}}", &exited]) == "exited")
                .then_some(())
        },
    );
    let exporter = Exporter::start(&[]);
    // The JSON the page polls has the three, as the engine and the kernel say.
    wait_for(
        "the containers in the JSON",
        Duration::from_secs(20),
        || {
            let document: serde_json::Value =
                serde_json::from_str(&exporter.get_text("/api/v1/containers")).unwrap();
            let find = |name: &str| {
                document["containers"]
                    .as_array()?
                    .iter()
                    .find(|container| container["name"] == name)
                    .cloned()
            };
            let (limited, open, exited) = (
                find("stevedore-page-limited")?,
                find("stevedore-page-open")?,
                find("stevedore-page-exited")?,
            );
            assert_eq!(limited["memory"]["limit_bytes"], (64 * MIB) as f64);
            assert_eq!(limited["cpu"]["limit_cores"], 0.5);
            assert_eq!(limited["pids"]["limit"], 50.0);
            assert!(open["memory"]["limit_bytes"].is_null());
            assert_eq!(exited["state"], "exited");
            assert_eq!(exited["exit_code"], 3);
            (document["docker_up"] == true).then_some(())
        },
    );

    let dom = chromium(&exporter.url("/"), "--dump-dom");
    let (tag, _) = row(&dom, "stevedore-page-limited");
    assert_eq!(attribute(tag, "data-memory-limit"), (64 * MIB).to_string());
    assert_eq!(attribute(tag, "data-cpu-limit"), "0.5");
    assert_eq!(attribute(tag, "data-pids-limit"), "50");
    let memory: f64 = attribute(tag, "data-memory-usage").parse().unwrap();
    assert!(memory > 0.0, "{tag}");
    // A rate from two readings. Under virtual time the polls come as fast as the exporter
    // answers, so over so short a window a quota'd busy loop reads anywhere from throttled
    // (0) to running (1 core): a number, and never more than its one thread can use.
    let cores: f64 = attribute(tag, "data-cpu-cores")
        .parse()
        .unwrap_or_else(|_| panic!("no CPU rate in {tag}"));
    assert!((0.0..=1.1).contains(&cores), "{cores} cores: {tag}");
    let (_, open_row) = row(&dom, "stevedore-page-open");
    assert!(open_row.contains("no limits"), "{open_row}");
    let (exited_tag, exited_row) = row(&dom, "stevedore-page-exited");
    assert_eq!(attribute(exited_tag, "data-state"), "exited");
    assert!(exited_row.contains("exited (3)"), "{exited_row}");
    assert!(
        dom.contains("engine: up"),
        "the engine's state is not shown"
    );
    // The container closest to a limit comes first.
    let limited_at = dom.find("data-name=\"stevedore-page-limited\"").unwrap();
    let open_at = dom.find("data-name=\"stevedore-page-open\"").unwrap();
    assert!(
        limited_at < open_at,
        "the busy, limited container is not first"
    );

    let screenshot = artifact_dir().join("page.png");
    let _ = std::fs::remove_file(&screenshot);
    chromium(
        &exporter.url("/"),
        &format!("--screenshot={}", screenshot.display()),
    );
    let png = std::fs::read(&screenshot).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    assert!(png.len() > 10_000, "a {} byte screenshot", png.len());
}
