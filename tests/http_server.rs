//! The HTTP side of the exporter: content negotiation, gzip, the landing page, health,
//! and a custom telemetry path, served by the real binary over a fixture tree.

mod common;

use std::io::Read;

use common::Exporter;

fn exporter(extra: &[&str]) -> Exporter {
    common::fixture_exporter(&common::v2_fixture_tree(), extra)
}

#[test]
fn text_by_default_and_openmetrics_when_asked() {
    let exporter = exporter(&[]);
    let mut text = ureq::get(&exporter.url("/metrics")).call().unwrap();
    assert_eq!(
        text.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let body = text.body_mut().read_to_string().unwrap();
    assert!(body.contains("# TYPE container_cpu_usage_seconds_total counter"));
    assert!(!body.contains("# EOF"));

    let mut open = ureq::get(&exporter.url("/metrics"))
        .header(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .call()
        .unwrap();
    assert!(
        open.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let body = open.body_mut().read_to_string().unwrap();
    assert!(body.contains("# TYPE container_cpu_usage_seconds counter"));
    assert!(body.ends_with("# EOF\n"));
}

#[test]
fn gzip_when_accepted() {
    let exporter = exporter(&[]);
    let mut response = ureq::get(&exporter.url("/metrics"))
        .header("Accept-Encoding", "gzip")
        .call()
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let compressed = response.body_mut().read_to_vec().unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(compressed.as_slice())
        .read_to_string(&mut text)
        .unwrap();
    let scrape = common::Scrape::parse(&text);
    assert!(
        scrape.value(
            "container_pids_current",
            &[(
                "id",
                "/docker/cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
            )]
        ) == Some(9.0)
    );
    assert!(compressed.len() * 3 < text.len(), "gzip did not compress");
}

#[test]
fn landing_page_health_and_a_custom_telemetry_path() {
    let exporter = exporter(&["--web.telemetry-path=/custom"]);
    let landing = exporter.get_text("/");
    assert!(landing.contains("href=\"/custom\""), "{landing}");
    assert!(landing.contains(env!("CARGO_PKG_VERSION")));
    assert_eq!(exporter.get_text("/healthz"), "ok\n");
    let scrape = common::Scrape::parse(&exporter.get_text("/custom"));
    assert_eq!(scrape.expect("docker_up", &[]), 0.0);
    let missing = ureq::get(&exporter.url("/metrics")).call();
    assert!(matches!(missing, Err(ureq::Error::StatusCode(404))));
}

#[test]
fn version_flag_prints_the_version() {
    let output = std::process::Command::new(common::stevedore_binary())
        .arg("--version")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("stevedore {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_bad_flag_value_is_refused_with_a_clear_message() {
    let output = std::process::Command::new(common::stevedore_binary())
        .args(["scrape", "--cgroup.raw=docker/*"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("starts with '/'"), "{stderr}");
}
