//! The families cAdvisor users expect beyond cgroup files, against a real engine: network
//! traffic per namespace, the root cgroup, the machine, disk use of writable layers, health,
//! load and the process families.

mod common;

use std::time::Duration;

use common::{Containers, Exporter, Scrape, docker, wait_for};

const MIB: f64 = 1024.0 * 1024.0;

fn ip_of(container: &str, network: &str) -> String {
    let template = format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}");
    docker(&["inspect", "-f", &template, container])
}

/// The sum over interfaces of one network counter of one cgroup.
fn traffic(scrape: &Scrape, name: &str, cgroup: &str) -> f64 {
    scrape
        .find(name, &[("id", cgroup)])
        .iter()
        .map(|sample| sample.value)
        .sum()
}

#[test]
fn traffic_between_two_containers_shows_on_both_sides_and_shared_namespaces_have_none() {
    let containers = Containers::new("network");
    // Removed with the containers, after them.
    let network = format!("stevedore-test-net-{}", std::process::id());
    containers.network(&network);
    let server = containers.run(&[
        "--network",
        &network,
        common::IMAGE,
        "sh",
        "-c",
        "mkdir /www && dd if=/dev/zero of=/www/blob bs=1024 count=4096 2>/dev/null && httpd -f -p 8080 -h /www",
    ]);
    let client = containers.run(&["--network", &network, common::IMAGE, "sleep", "600"]);
    let sidecar = containers.run(&[
        "--network",
        &format!("container:{server}"),
        common::IMAGE,
        "sleep",
        "600",
    ]);
    let host_network = containers.run(&["--network", "host", common::IMAGE, "sleep", "600"]);
    common::wait_for_file_in(&server, "/www/blob");
    let exporter = Exporter::start(&[]);
    let (server_id, client_id) = (common::cgroup_id(&server), common::cgroup_id(&client));
    let before = wait_for("both containers' traffic", Duration::from_secs(10), || {
        let scrape = exporter.scrape();
        (scrape
            .value(
                "container_network_transmit_bytes_total",
                &[("id", &server_id), ("interface", "eth0")],
            )
            .is_some()
            && scrape
                .value(
                    "container_network_receive_bytes_total",
                    &[("id", &client_id), ("interface", "eth0")],
                )
                .is_some())
        .then_some(scrape)
    });

    let url = format!("http://{}:8080/blob", ip_of(&server, &network));
    docker(&["exec", &client, "wget", "-q", "-O", "/dev/null", &url]);
    let after = exporter.scrape();
    let sent = 4.0 * MIB;
    let delta =
        |name: &str, cgroup: &str| traffic(&after, name, cgroup) - traffic(&before, name, cgroup);
    for (side, name, cgroup) in [
        (
            "server",
            "container_network_transmit_bytes_total",
            &server_id,
        ),
        (
            "client",
            "container_network_receive_bytes_total",
            &client_id,
        ),
    ] {
        let bytes = delta(name, cgroup);
        // The payload, plus TCP/IP headers and the HTTP exchange: a few percent.
        assert!(
            bytes >= sent && bytes <= sent * 1.1,
            "{side}: {name} grew by {bytes} for {sent} bytes sent"
        );
    }
    let packets = delta("container_network_receive_packets_total", &client_id);
    assert!(packets > 0.0, "packets counted too");

    // Loopback is not reported; nor are namespaces that are not the container's own.
    assert!(
        after
            .find(
                "container_network_receive_bytes_total",
                &[("interface", "lo")]
            )
            .is_empty()
    );
    for (what, id) in [
        ("--network container:x", &sidecar),
        ("--network host", &host_network),
    ] {
        let cgroup = common::cgroup_id(id);
        assert!(
            after
                .value("container_memory_usage_bytes", &[("id", &cgroup)])
                .is_some(),
            "{what}: the container itself is reported"
        );
        assert!(
            after
                .find("container_network_receive_bytes_total", &[("id", &cgroup)])
                .is_empty(),
            "{what}: no network series of its own, so sums count each byte once"
        );
    }
    // The host's namespace is the root's.
    assert!(
        !after
            .find("container_network_receive_bytes_total", &[("id", "/")])
            .is_empty()
    );
    common::assert_collectors_succeeded(&after);
}

fn meminfo_total_bytes() -> f64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    let line = text
        .lines()
        .find(|line| line.starts_with("MemTotal:"))
        .unwrap();
    let kilobytes: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kilobytes * 1024.0
}

fn cpus_online() -> f64 {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    text.trim()
        .split(',')
        .map(|range| match range.split_once('-') {
            Some((first, last)) => {
                last.parse::<f64>().unwrap() - first.parse::<f64>().unwrap() + 1.0
            }
            None => 1.0,
        })
        .sum()
}

#[test]
fn the_root_cgroup_has_the_host_totals_and_the_machine_its_size() {
    let containers = Containers::new("root");
    let burner = containers.run(&[common::IMAGE, "sh", "-c", "while :; do :; done"]);
    let sleeper = containers.run(&[common::IMAGE, "sleep", "600"]);
    let exporter = Exporter::start(&[]);
    let burner_id = common::cgroup_id(&burner);
    let cpu = |scrape: &Scrape, id: &str| {
        scrape.value(
            "container_cpu_usage_seconds_total",
            &[("id", id), ("cpu", "total")],
        )
    };
    let first = wait_for("the burner's CPU", Duration::from_secs(10), || {
        let scrape = exporter.scrape();
        cpu(&scrape, &burner_id).map(|_| scrape)
    });
    let root_before = cpu(&first, "/").expect("the root's CPU usage");
    let burner_before = cpu(&first, &burner_id).unwrap();
    let later = wait_for(
        "a second of the burner's CPU",
        Duration::from_secs(20),
        || {
            let scrape = exporter.scrape();
            (cpu(&scrape, &burner_id)? - burner_before >= 1.0).then_some(scrape)
        },
    );
    let burned = cpu(&later, &burner_id).unwrap() - burner_before;
    let root_rise = cpu(&later, "/").unwrap() - root_before;
    assert!(
        root_rise >= burned * 0.95,
        "the root counts every container: it rose {root_rise} s while the burner used {burned} s"
    );
    // The root's memory is the host's: at least every container's.
    let root_memory = later.expect("container_memory_usage_bytes", &[("id", "/")]);
    let burner_memory = later.expect("container_memory_usage_bytes", &[("id", &burner_id)]);
    assert!(root_memory > burner_memory);
    assert!(
        later
            .value("container_memory_working_set_bytes", &[("id", "/")])
            .is_some()
    );
    assert_eq!(
        later.expect("stevedore_scrape_targets", &[("source", "root")]),
        1.0
    );
    let root_labels = &later.find("container_memory_usage_bytes", &[("id", "/")])[0].labels;
    assert!(
        !root_labels.contains_key("name"),
        "the root carries id only, as in cAdvisor"
    );

    assert_eq!(
        later.expect("machine_memory_bytes", &[]),
        meminfo_total_bytes()
    );
    assert_eq!(later.expect("machine_cpu_cores", &[]), cpus_online());
    assert!(later.expect("machine_cpu_physical_cores", &[]) >= 1.0);
    assert!(later.expect("machine_cpu_sockets", &[]) >= 1.0);
    assert!(later.value("machine_swap_bytes", &[]).is_some());

    // A single-threaded burner has one running thread; a sleeper none.
    assert_eq!(
        later.expect("container_cpu_load_average_10s", &[("id", &burner_id)]),
        1000.0
    );
    let sleeper_id = common::cgroup_id(&sleeper);
    assert_eq!(
        later.expect("container_cpu_load_average_10s", &[("id", &sleeper_id)]),
        0.0
    );

    let without_root = Exporter::start(&["--cgroup.root=false"]);
    let scrape = wait_for("a scrape with the burner", Duration::from_secs(10), || {
        let scrape = without_root.scrape();
        cpu(&scrape, &burner_id).map(|_| scrape)
    });
    assert!(
        scrape
            .find("container_cpu_usage_seconds_total", &[("id", "/")])
            .is_empty()
    );
    common::assert_collectors_succeeded(&later);
}

#[test]
fn a_container_writing_its_own_filesystem_shows_in_fs_usage_after_one_refresh() {
    let containers = Containers::new("disk");
    let writer = containers.run(&[
        common::IMAGE,
        "sh",
        "-c",
        "dd if=/dev/zero of=/blob bs=1048576 count=20 2>/dev/null && touch /written && sleep 600",
    ]);
    let idle = containers.run(&[common::IMAGE, "sleep", "600"]);
    common::wait_for_file_in(&writer, "/written");
    let exporter = Exporter::start(&[]);
    let writer_id = common::cgroup_id(&writer);
    // The first scrape asks for the walk; a later one serves its result.
    let scrape = wait_for("the writer's walked layer", Duration::from_secs(30), || {
        let scrape = exporter.scrape();
        scrape
            .find("container_fs_usage_bytes", &[("id", &writer_id)])
            .first()
            .map(|_| scrape.clone())
    });
    let usage = &scrape.find("container_fs_usage_bytes", &[("id", &writer_id)])[0];
    assert!(
        usage.value >= 20.0 * MIB,
        "20 MiB written, {} counted",
        usage.value
    );
    assert!(
        usage.value < 21.0 * MIB,
        "only the layer is counted: {}",
        usage.value
    );
    let device = usage.labels["device"].clone();
    assert!(!device.is_empty());
    let on_device = [("id", writer_id.as_str()), ("device", device.as_str())];
    let limit = scrape.expect("container_fs_limit_bytes", &on_device);
    assert!(limit > usage.value, "the filesystem's capacity: {limit}");
    let inodes = scrape.expect("container_fs_inodes_total", &on_device);
    let free = scrape.expect("container_fs_inodes_free", &on_device);
    assert!(inodes > 0.0 && free > 0.0 && free <= inodes);
    let idle_usage = wait_for(
        "the idle container's walked layer",
        Duration::from_secs(30),
        || {
            exporter.scrape().value(
                "container_fs_usage_bytes",
                &[("id", &common::cgroup_id(&idle))],
            )
        },
    );
    assert!(
        idle_usage < MIB,
        "an idle container wrote next to nothing: {idle_usage}"
    );
    assert!(scrape.expect("stevedore_disk_refreshes_total", &[]) >= 1.0);
    common::assert_collectors_succeeded(&scrape);
}

#[test]
fn health_creation_time_and_the_process_families() {
    let containers = Containers::new("health-and-processes");
    let healthy = containers.run(&[
        "--health-cmd",
        "true",
        "--health-interval",
        "1s",
        common::IMAGE,
        "sleep",
        "600",
    ]);
    let unchecked = containers.run(&[common::IMAGE, "sh", "-c", "sleep 600 & sleep 600"]);
    let exporter = Exporter::start(&["--collector.process"]);
    let (healthy_id, unchecked_id) = (common::cgroup_id(&healthy), common::cgroup_id(&unchecked));
    let scrape = wait_for("the health check to pass", Duration::from_secs(20), || {
        let scrape = exporter.scrape();
        (scrape.value("container_health_state", &[("id", &healthy_id)]) == Some(1.0))
            .then_some(scrape)
    });
    assert_eq!(
        scrape.expect("container_health_state", &[("id", &unchecked_id)]),
        -1.0
    );
    let created = docker(&["inspect", "-f", "{{.Created}}", &healthy]);
    let created = chrono::DateTime::parse_from_rfc3339(&created)
        .unwrap()
        .timestamp() as f64;
    let exported = scrape.expect("container_creation_time_seconds", &[("id", &healthy_id)]);
    assert!((exported - created).abs() < 1.0, "{exported} vs {created}");

    let unchecked_series = [("id", unchecked_id.as_str())];
    // sh and its background sleep, and the foreground sleep unless sh ran it in its place.
    assert!(scrape.expect("container_processes", &unchecked_series) >= 2.0);
    assert!(scrape.expect("container_threads", &unchecked_series) >= 2.0);
    assert!(scrape.expect("container_file_descriptors", &unchecked_series) >= 3.0);
    assert_eq!(scrape.expect("container_sockets", &unchecked_series), 0.0);
    assert!(
        scrape.expect(
            "container_ulimits_soft",
            &[("id", &unchecked_id), ("ulimit", "max_open_files")]
        ) > 0.0
    );
    common::assert_collectors_succeeded(&scrape);
}
