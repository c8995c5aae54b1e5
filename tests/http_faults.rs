//! The server under load and faults: a collection held on a named pipe (so a scrape is
//! under way for as long as the test wants), the request limit, timeouts, SIGTERM with a
//! scrape under way, 200 scrapes at once, and an engine that accepts connections and never
//! answers.

mod common;

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::proxy::EngineProxy;
use common::{Exporter, wait_for};

const CONTAINER: &str = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

/// The v2 fixture tree, copied, with one container's `memory.stat` a named pipe: a
/// collection waits on it until the test lets it go.
struct HeldCollection {
    dir: tempfile::TempDir,
    pipe: PathBuf,
    content: String,
}

impl HeldCollection {
    fn new() -> HeldCollection {
        let dir = tempfile::tempdir().unwrap();
        let copied = Command::new("cp")
            .arg("-a")
            .arg(common::v2_fixture_tree())
            .arg(dir.path().join("tree"))
            .status()
            .unwrap();
        assert!(copied.success());
        let pipe = dir
            .path()
            .join(format!("tree/cgroup/docker/{CONTAINER}/memory.stat"));
        let content = std::fs::read_to_string(&pipe).unwrap();
        std::fs::remove_file(&pipe).unwrap();
        let made = Command::new("mkfifo").arg(&pipe).status().unwrap();
        assert!(made.success());
        HeldCollection { dir, pipe, content }
    }

    /// An exporter over this tree, without an engine.
    fn exporter(&self, extra: &[&str]) -> Exporter {
        common::fixture_exporter(&self.dir.path().join("tree"), extra)
    }

    /// Waits until a collection has opened the pipe; the collection then waits for
    /// `release`.
    fn wait_for_collection(&self) -> File {
        let pipe = self.pipe.clone();
        let (opened, receiver) = std::sync::mpsc::channel();
        // Opening a pipe for writing returns once a reader has opened it.
        std::thread::spawn(move || {
            let _ = opened.send(std::fs::OpenOptions::new().write(true).open(pipe));
        });
        receiver
            .recv_timeout(Duration::from_secs(20))
            .expect("no collection opened the held file in 20 s")
            .unwrap()
    }

    /// Lets the held collection finish; later collections read a plain file.
    fn release(&self, writer: File) {
        let plain = self.dir.path().join("memory.stat");
        std::fs::write(&plain, &self.content).unwrap();
        std::fs::rename(&plain, &self.pipe).unwrap();
        let mut writer = writer;
        writer.write_all(self.content.as_bytes()).unwrap();
    }
}

/// A GET that returns the status and body whatever the status.
fn get(url: &str, headers: &[(&str, &str)]) -> Result<(u16, String), ureq::Error> {
    // An agent of its own: requests on threads of their own never wait for a pooled
    // connection.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = request.call()?;
    let status = response.status().as_u16();
    Ok((status, response.body_mut().read_to_string()?))
}

/// Starts a scrape on a thread of its own.
fn scrape_in_background(url: String) -> std::thread::JoinHandle<Result<(u16, String), String>> {
    std::thread::spawn(move || get(&url, &[]).map_err(|error| error.to_string()))
}

/// Connections the server has accepted on `port` (IPv4 loopback), from `/proc/net/tcp`.
fn established_connections_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let local = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address is field 1, the state field 3; 01 is ESTABLISHED.
            fields.len() > 3 && fields[1].ends_with(&local) && fields[3] == "01"
        })
        .count()
}

fn collections_finished(exporter: &Exporter) -> usize {
    exporter
        .log()
        .iter()
        .filter(|line| line.contains("collection finished"))
        .count()
}

fn is_full_scrape(body: &str) -> bool {
    common::Scrape::parse(body)
        .value(
            "container_memory_cache",
            &[("id", &format!("/docker/{CONTAINER}"))],
        )
        .is_some()
}

#[test]
fn past_the_request_limit_scrapes_are_refused_at_once_and_slow_ones_time_out() {
    let held = HeldCollection::new();
    let exporter = held.exporter(&["--web.max-requests=2", "--web.request-timeout=60s"]);
    let url = exporter.url("/metrics");
    let first = scrape_in_background(url.clone());
    let writer = held.wait_for_collection();

    // Prometheus' own timeout, when shorter, is the one kept.
    let started = Instant::now();
    let (status, body) = get(&url, &[("X-Prometheus-Scrape-Timeout-Seconds", "0.5")]).unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("not collected within 500ms"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(30));

    // With a second scrape waiting, the two allowed are taken: the next is refused at once.
    // A probe may take the second place first, refusing the second scrape: then it is sent
    // again.
    let mut second = scrape_in_background(url.clone());
    let port = exporter.port();
    let refusal = wait_for("the limit to be reached", Duration::from_secs(20), || {
        if second.is_finished() {
            let refused = std::mem::replace(&mut second, scrape_in_background(url.clone()));
            let (status, _) = refused.join().unwrap().unwrap();
            assert_eq!(
                status, 503,
                "the second scrape ended while the first was held"
            );
        }
        // Probing before the second scrape is in would only take its place.
        if established_connections_to(port) < 2 {
            return None;
        }
        let (status, body) = get(&url, &[("X-Prometheus-Scrape-Timeout-Seconds", "0.5")]).unwrap();
        (status == 503 && body.contains("--web.max-requests")).then_some(body)
    });
    assert!(refusal.starts_with("2 scrapes are under way"), "{refusal}");
    // Health does not wait for collections.
    assert_eq!(exporter.get_text("/healthz"), "ok\n");

    held.release(writer);
    for scrape in [first, second] {
        let (status, body) = scrape.join().unwrap().unwrap();
        assert_eq!(status, 200);
        assert!(is_full_scrape(&body), "{body}");
    }
    let (status, body) = get(&url, &[]).unwrap();
    assert_eq!(status, 200);
    assert!(is_full_scrape(&body));
}

#[test]
fn two_hundred_scrapes_at_once_share_one_collection() {
    let held = HeldCollection::new();
    let exporter = held.exporter(&["--web.max-requests=0"]);
    let url = exporter.url("/metrics");
    let before = collections_finished(&exporter);
    let scrapes: Vec<_> = (0..200)
        .map(|_| scrape_in_background(url.clone()))
        .collect();
    let writer = held.wait_for_collection();
    let port = exporter.port();
    wait_for("200 scrapes connected", Duration::from_secs(30), || {
        (established_connections_to(port) >= 200).then_some(())
    });
    let waiting_peak_kib = common::peak_rss_kib(exporter.pid());
    held.release(writer);
    let mut series = None;
    for scrape in scrapes {
        let (status, body) = scrape.join().unwrap().unwrap();
        assert_eq!(status, 200);
        assert!(is_full_scrape(&body));
        let count = body.lines().filter(|line| !line.starts_with('#')).count();
        assert_eq!(*series.get_or_insert(count), count, "scrapes differ");
    }
    wait_for(
        "the collection to be logged",
        Duration::from_secs(10),
        || (collections_finished(&exporter) > before).then_some(()),
    );
    assert_eq!(
        collections_finished(&exporter) - before,
        1,
        "200 scrapes at once made more than one collection"
    );
    let peak_kib = common::peak_rss_kib(exporter.pid());
    println!(
        "peak RSS: {waiting_peak_kib} KiB with 200 scrapes waiting, {peak_kib} KiB after answering them"
    );
    assert!(
        peak_kib < 64 * 1024,
        "peak RSS {peak_kib} KiB for 200 scrapes of a fixture tree"
    );
}

#[test]
fn sigterm_lets_the_scrape_under_way_finish_then_exits() {
    let held = HeldCollection::new();
    let mut exporter = held.exporter(&[]);
    let scrape = scrape_in_background(exporter.url("/metrics"));
    let writer = held.wait_for_collection();
    exporter.signal("TERM");
    held.release(writer);
    let (status, body) = scrape.join().unwrap().unwrap();
    assert_eq!(status, 200);
    assert!(
        is_full_scrape(&body),
        "the scrape under way was cut: {body}"
    );
    let status = exporter.wait_for_exit(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    assert!(
        !exporter
            .log()
            .iter()
            .any(|line| line.contains("grace period")),
        "{:#?}",
        exporter.log()
    );
}

#[test]
fn sigterm_does_not_wait_for_a_scrape_that_never_ends() {
    let held = HeldCollection::new();
    let mut exporter = held.exporter(&[]);
    let _scrape = scrape_in_background(exporter.url("/metrics"));
    let _writer = held.wait_for_collection();
    exporter.signal("TERM");
    // Never released: the exporter gives the scrape its grace period, then exits anyway.
    let status = exporter.wait_for_exit(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    assert!(
        exporter
            .log()
            .iter()
            .any(|line| line.contains("requests still under way at the end of the grace period")),
        "{:#?}",
        exporter.log()
    );
}

#[test]
fn a_hung_engine_leaves_scrapes_answered_and_is_recovered_from() {
    common::require_engine();
    let scratch = tempfile::tempdir().unwrap();
    let proxy = EngineProxy::start(scratch.path());
    let mut exporter = Exporter::start(&[
        &format!("--docker.host={}", proxy.host()),
        "--docker.timeout=1s",
        "--cgroup.raw=/",
    ]);
    wait_for("the engine", Duration::from_secs(20), || {
        (exporter.scrape().value("docker_up", &[]) == Some(1.0)).then_some(())
    });

    proxy.hang();
    wait_for("docker_up 0", Duration::from_secs(30), || {
        (exporter.scrape().value("docker_up", &[]) == Some(0.0)).then_some(())
    });
    let fds_at_first = common::open_fds(exporter.pid());
    // Each scrape is answered with the cgroups, while the engine task keeps retrying.
    let retries_before = exporter.log().len();
    for _ in 0..20 {
        let scrape = exporter.scrape();
        assert_eq!(scrape.expect("docker_up", &[]), 0.0);
        assert!(
            scrape
                .value("container_memory_usage_bytes", &[("id", "/")])
                .is_some()
        );
    }
    wait_for(
        "more attempts at the engine",
        Duration::from_secs(30),
        || {
            (exporter.log()[retries_before..]
                .iter()
                .filter(|line| line.contains("engine still unreachable"))
                .count()
                >= 3)
                .then_some(())
        },
    );
    let fds_later = common::open_fds(exporter.pid());
    assert!(
        fds_later <= fds_at_first + 4,
        "open files grew from {fds_at_first} to {fds_later} while the engine hung"
    );
    assert!(exporter.is_running());

    proxy.answer();
    wait_for("docker_up 1 again", Duration::from_secs(30), || {
        (exporter.scrape().value("docker_up", &[]) == Some(1.0)).then_some(())
    });
}
