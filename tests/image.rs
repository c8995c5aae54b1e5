//! stevedore as an image: the repository's `Dockerfile` built around the static binary and
//! run with the README's own `docker run` line reports the host's containers with the values
//! the host binary reports.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Containers, Exporter, IMAGE, Scrape, docker, wait_for};

const TEST: &str = "image-run";
const MIB: f64 = 1024.0 * 1024.0;

/// The documented line changed only where a test must: its own container name and label,
/// the image it built, and the port published on loopback alone, at a port the engine picks.
/// An option the test does not know stops it, so the line and the test cannot drift apart.
fn test_run_args(documented: &[String], name: &str, label: &str, image: &str) -> Vec<String> {
    const WITH_VALUE: [&str; 8] = [
        "--name",
        "--restart",
        "-p",
        "--cgroupns",
        "--security-opt",
        "--cap-drop",
        "--cap-add",
        "-v",
    ];
    const ALONE: [&str; 2] = ["-d", "--read-only"];
    let mut words = documented.iter();
    assert_eq!(words.next().map(String::as_str), Some("run"));
    let mut args = vec!["run".to_owned(), "--label".to_owned(), label.to_owned()];
    loop {
        let word = words.next().expect("the documented line names the image");
        if ALONE.contains(&word.as_str()) {
            args.push(word.clone());
            continue;
        }
        if WITH_VALUE.contains(&word.as_str()) {
            let value = words.next().expect("an option's value");
            let value = match word.as_str() {
                "--name" => name.to_owned(),
                "-p" => {
                    assert_eq!(value, "9417:9417", "the documented port");
                    "127.0.0.1::9417".to_owned()
                }
                _ => value.clone(),
            };
            args.push(word.clone());
            args.push(value);
            continue;
        }
        assert!(
            !word.starts_with('-'),
            "the documented line has option {word}, which this test does not know: add it \
             to WITH_VALUE or ALONE"
        );
        assert_eq!(word, "stevedore", "the documented image name");
        args.push(image.to_owned());
        args.extend(words.cloned());
        return args;
    }
}

/// The documented line's bind mounts are all read-only: monitoring writes nothing.
#[test]
fn the_documented_run_line_mounts_everything_read_only() {
    let line = common::images::documented_run_line();
    let mounts: Vec<&String> = line
        .iter()
        .zip(line.iter().skip(1))
        .filter(|(option, _)| *option == "-v")
        .map(|(_, mount)| mount)
        .collect();
    assert_eq!(
        mounts.len(),
        4,
        "cgroupfs, procfs, the socket, the data root: {mounts:?}"
    );
    for mount in mounts {
        assert!(mount.ends_with(":ro"), "{mount} is not read-only");
    }
    for flag in [
        "--path.cgroupfs=/host/sys/fs/cgroup",
        "--path.procfs=/host/proc",
    ] {
        assert!(
            line.iter().any(|word| word == flag),
            "no {flag} in {line:?}"
        );
    }
}

/// A scrape of `url`, or `None` while nothing answers there yet.
fn scrape_url(url: &str) -> Option<Scrape> {
    let mut response = ureq::get(url).call().ok()?;
    Some(Scrape::parse(&response.body_mut().read_to_string().ok()?))
}

/// The series of one container, by their text without the value.
fn series_of(scrape: &Scrape, name: &str) -> BTreeMap<String, (String, f64)> {
    scrape
        .samples
        .iter()
        .filter(|sample| sample.labels.get("name").map(String::as_str) == Some(name))
        .map(|sample| {
            let labels: Vec<String> = sample
                .labels
                .iter()
                .map(|(key, value)| format!("{key}={value:?}"))
                .collect();
            (
                format!("{}{{{}}}", sample.name, labels.join(",")),
                (sample.name.clone(), sample.value),
            )
        })
        .collect()
}

/// Whether the host binary's reading of one series agrees with the image's readings just
/// before and just after it. Counters (and the time of the scrape) only grow, so the host's
/// must lie between the two; usage that moves on its own (memory, the filesystem's free
/// inodes) must be within 10 % or 1 MiB; everything else (limits, states, times, pids, the
/// layer's bytes) must be equal.
fn agrees(family: &str, before: f64, host: f64, after: f64) -> bool {
    let grows = family.ends_with("_total")
        || family == "container_last_seen"
        || family == "container_memory_max_usage_bytes";
    let moves = family.starts_with("container_memory_") || family == "container_fs_inodes_free";
    if grows {
        before <= host && host <= after
    } else if moves {
        let tolerance = (host.abs() * 0.1).max(MIB);
        (host - before).abs() <= tolerance && (host - after).abs() <= tolerance
    } else {
        before == host && host == after
    }
}

#[test]
fn the_image_run_as_documented_reports_what_the_host_binary_reports() {
    let containers = Containers::new(TEST);
    // Limits of every kind the exporter reads, and 4 MiB in the writable layer; the workload
    // then sleeps, so that nothing but memory moves between scrapes.
    let limited = format!("{TEST}-limited");
    containers.run(&[
        "--name",
        &limited,
        "--memory",
        "64m",
        "--memory-reservation",
        "32m",
        "--memory-swap",
        "128m",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "--pids-limit",
        "50",
        IMAGE,
        "sh",
        "-c",
        "dd if=/dev/zero of=/fill bs=1M count=4 && touch /done && exec sleep 100000",
    ]);
    let unlimited = format!("{TEST}-unlimited");
    containers.run(&["--name", &unlimited, IMAGE, "sleep", "100000"]);
    common::wait_for_file_in(&limited, "/done");

    let tag = format!("stevedore-test-{TEST}:latest");
    let context = common::images::stevedore_context();
    containers.build_image(&tag, context.path());
    let exporter_name = format!("{TEST}-exporter");
    let run = test_run_args(
        &common::images::documented_run_line(),
        &exporter_name,
        &containers.label,
        &tag,
    );
    let run: Vec<&str> = run.iter().map(String::as_str).collect();
    docker(&run);
    let published = docker(&["port", &exporter_name, "9417"]);
    let address = published.lines().next().expect("a published port");
    assert!(address.starts_with("127.0.0.1:"), "published on {address}");
    let image_url = format!("http://{address}/metrics");

    let host = Exporter::start(&[]);
    // Both have walked the new layers (the first scrape asks for it, in the background).
    let layer_walked = |scrape: &Scrape| {
        scrape
            .value("container_fs_usage_bytes", &[("name", &limited)])
            .is_some()
    };
    wait_for(
        "both exporters to report the containers' writable layers",
        Duration::from_secs(60),
        || {
            let in_image = scrape_url(&image_url)?;
            (layer_walked(&in_image) && layer_walked(&host.scrape())).then_some(())
        },
    );

    let before = scrape_url(&image_url).expect("the image's exporter answers");
    let on_host = host.scrape();
    let after = scrape_url(&image_url).expect("the image's exporter answers");

    // The workload is there as started, so that the comparison below compares something.
    let expect = |name: &str, family: &str| on_host.expect(family, &[("name", name)]);
    assert_eq!(
        expect(&limited, "container_spec_memory_limit_bytes"),
        64.0 * MIB
    );
    assert_eq!(expect(&limited, "container_spec_cpu_quota"), 50_000.0);
    assert_eq!(expect(&limited, "container_spec_pids_limit"), 50.0);
    assert!(expect(&limited, "container_fs_usage_bytes") >= 4.0 * MIB);
    assert_eq!(expect(&unlimited, "container_spec_memory_limit_bytes"), 0.0);
    assert!(
        !on_host
            .find(
                "container_network_receive_bytes_total",
                &[("name", &limited)]
            )
            .is_empty()
    );

    let mut problems = Vec::new();
    for name in [&limited, &unlimited] {
        let (before, host, after) = (
            series_of(&before, name),
            series_of(&on_host, name),
            series_of(&after, name),
        );
        for (series, (family, value)) in &host {
            match (before.get(series), after.get(series)) {
                (Some((_, first)), Some((_, last))) => {
                    if !agrees(family, *first, *value, *last) {
                        problems.push(format!("{series}: image {first} then {last}, host {value}"));
                    }
                }
                _ => problems.push(format!("{series}: only the host binary reports it")),
            }
        }
        for series in before.keys().chain(after.keys()) {
            if !host.contains_key(series) {
                problems.push(format!("{series}: only the image reports it"));
            }
        }
    }
    problems.dedup();
    assert!(problems.is_empty(), "{problems:#?}");

    // The image found every running container's cgroup. The count is the whole host's, and
    // other tests' containers exit at any time: one that has exited but whose `die` the
    // exporter has not yet heard of is counted until it does, so a count that comes back
    // to 0 is a passing moment, and one that stays is a cgroup the image cannot find.
    wait_for(
        "the image to find every running container's cgroup",
        Duration::from_secs(30),
        || {
            let scrape = scrape_url(&image_url)?;
            (scrape.expect("stevedore_scrape_containers_without_cgroup", &[]) == 0.0).then_some(())
        },
    );
    // And read everything it tried.
    for scrape in [&before, &after] {
        for sample in scrape.find("stevedore_scrape_collector_success", &[]) {
            assert_eq!(sample.value, 1.0, "{sample:?}");
        }
        for family in ["machine_memory_bytes", "machine_cpu_cores"] {
            assert_eq!(
                scrape.find(family, &[])[0].value,
                on_host.find(family, &[])[0].value,
                "{family}"
            );
        }
    }
}
