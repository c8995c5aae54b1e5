//! The exporter against a real Docker Engine and real cgroups: limits read back as set,
//! usage that follows real workloads, and agreement with the engine's own stats API.

mod common;

use std::time::{Duration, Instant};

use common::{Containers, Exporter, cgroup_id, disk_of, disk_scratch_dir, wait_for};

const MIB: f64 = 1024.0 * 1024.0;

#[test]
fn every_spec_value_equals_what_was_set() {
    let containers = Containers::new("spec-values");
    let scratch = disk_scratch_dir();
    let (disk, _) = disk_of(scratch.path());
    let device_limit = format!("{disk}:10mb");
    let id = containers.run(&[
        "--name",
        "stevedore-test-spec",
        "--memory",
        "64m",
        "--memory-swap",
        "128m",
        "--memory-reservation",
        "32m",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "--cpuset-cpus",
        "0",
        "--pids-limit",
        "50",
        "--device-write-bps",
        &device_limit,
        "--device-read-iops",
        &format!("{disk}:300"),
        "--label",
        "com.docker.compose.project=shop",
        "--label",
        "org.label-schema.group=monitoring",
        "--env",
        "APP_TIER=web",
        "--env",
        "APP_SECRET=hunter2",
        common::IMAGE,
        "sleep",
        "600",
    ]);
    let exporter = Exporter::start(&["--docker.env-allowlist=APP_T*"]);
    let cgroup = cgroup_id(&id);
    let series = [("id", cgroup.as_str())];
    let scrape = wait_for("the container's series", Duration::from_secs(10), || {
        let scrape = exporter.scrape();
        scrape
            .value("container_spec_memory_limit_bytes", &series)
            .map(|_| scrape)
    });
    let spec = |name: &str| scrape.expect(name, &series);
    assert_eq!(spec("container_spec_memory_limit_bytes"), 64.0 * MIB);
    assert_eq!(spec("container_spec_memory_swap_limit_bytes"), 128.0 * MIB);
    assert_eq!(
        spec("container_spec_memory_reservation_limit_bytes"),
        32.0 * MIB
    );
    assert_eq!(spec("container_spec_cpu_quota"), 50_000.0);
    assert_eq!(spec("container_spec_cpu_period"), 100_000.0);
    assert_eq!(spec("container_spec_cpu_shares"), 512.0);
    assert_eq!(spec("container_spec_cpuset_cpus"), 1.0);
    assert_eq!(spec("container_spec_pids_limit"), 50.0);
    let on_disk = [("id", cgroup.as_str()), ("device", disk.as_str())];
    assert_eq!(
        scrape.expect("container_spec_blkio_device_write_bytes_limit", &on_disk),
        10.0 * MIB
    );
    assert_eq!(
        scrape.expect("container_spec_blkio_device_read_iops_limit", &on_disk),
        300.0
    );
    assert_eq!(
        scrape.expect("container_spec_blkio_device_read_bytes_limit", &on_disk),
        0.0
    );

    // The labels a dashboard groups by.
    let sample = &scrape.find("container_spec_memory_limit_bytes", &series)[0];
    assert_eq!(sample.labels["name"], "stevedore-test-spec");
    assert_eq!(sample.labels["image"], common::IMAGE);
    assert_eq!(
        sample.labels["container_label_com_docker_compose_project"],
        "shop"
    );
    assert_eq!(
        sample.labels["container_label_org_label_schema_group"], "monitoring",
        "every Docker label is copied by default, as cAdvisor does"
    );
    assert_eq!(sample.labels["container_env_app_tier"], "web");
    assert!(
        !sample.labels.contains_key("container_env_app_secret"),
        "variables outside the allowlist are never copied"
    );
    // An allowlist restricts the labels.
    let restricted = Exporter::start(&["--docker.label-allowlist=com.docker.compose.*"]);
    let restricted_scrape = wait_for("the container's series", Duration::from_secs(10), || {
        let scrape = restricted.scrape();
        scrape
            .value("container_spec_memory_limit_bytes", &series)
            .map(|_| scrape)
    });
    let labels = &restricted_scrape.find("container_spec_memory_limit_bytes", &series)[0].labels;
    assert_eq!(labels["container_label_com_docker_compose_project"], "shop");
    assert!(!labels.contains_key("container_label_org_label_schema_group"));
    assert!(!labels.contains_key("container_env_app_tier"));
    assert_eq!(scrape.expect("docker_up", &[]), 1.0);
    common::assert_collectors_succeeded(&scrape);
}

#[test]
fn cpu_burner_shows_rising_usage_and_throttled_periods() {
    let containers = Containers::new("cpu-burner");
    let id = containers.run(&[
        "--cpus",
        "0.2",
        common::IMAGE,
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    let exporter = Exporter::start(&[]);
    let cgroup = cgroup_id(&id);
    let series = [("id", cgroup.as_str())];
    let usage = [("id", cgroup.as_str()), ("cpu", "total")];
    let measuring = Instant::now();
    let first = wait_for("the burner's series", Duration::from_secs(10), || {
        exporter
            .scrape()
            .value("container_cpu_usage_seconds_total", &usage)
            .map(|_| exporter.scrape())
    });
    let first_usage = first.expect("container_cpu_usage_seconds_total", &usage);
    let first_throttled = first.expect("container_cpu_cfs_throttled_periods_total", &series);
    // On a loaded machine the burner may wait for a core: wait until it has both run and
    // been throttled rather than for a fixed time. The kernel counts a throttled period
    // when throttling starts and adds its time when it ends, so both are waited for.
    let second = wait_for(
        "usage, throttled periods and throttled time to rise",
        Duration::from_secs(30),
        || {
            let scrape = exporter.scrape();
            let used = scrape.value("container_cpu_usage_seconds_total", &usage)? - first_usage;
            let throttled = scrape.value("container_cpu_cfs_throttled_periods_total", &series)?;
            let throttled_time =
                scrape.value("container_cpu_cfs_throttled_seconds_total", &series)?;
            (used > 0.05 && throttled > first_throttled && throttled_time > 0.0).then_some(scrape)
        },
    );
    let elapsed = measuring.elapsed().as_secs_f64();
    let used = second.expect("container_cpu_usage_seconds_total", &usage) - first_usage;
    // A 0.2 CPU quota allows at most 0.2 s per second, plus one 100 ms period of slack.
    assert!(
        used <= 0.2 * elapsed + 0.1,
        "usage rose by {used} s in {elapsed:.2} s under a 0.2 CPU quota"
    );
    let throttled = second.expect("container_cpu_cfs_throttled_periods_total", &series);
    assert!(second.expect("container_cpu_cfs_periods_total", &series) >= throttled);
}

#[test]
fn tmpfs_holding_32_mib_shows_in_memory_usage() {
    let containers = Containers::new("tmpfs-memory");
    let id = containers.run(&[
        "--memory",
        "128m",
        "--tmpfs",
        "/hold",
        common::IMAGE,
        "sh",
        "-c",
        "dd if=/dev/zero of=/hold/fill bs=1M count=32 && touch /hold/done && sleep 600",
    ]);
    common::wait_for_file_in(&id, "/hold/done");
    let exporter = Exporter::start(&[]);
    let series = [("id", cgroup_id(&id))];
    let series = [("id", series[0].1.as_str())];
    let scrape = wait_for("the container's memory", Duration::from_secs(10), || {
        let scrape = exporter.scrape();
        scrape
            .value("container_memory_usage_bytes", &series)
            .map(|_| scrape)
    });
    let usage = scrape.expect("container_memory_usage_bytes", &series);
    let working_set = scrape.expect("container_memory_working_set_bytes", &series);
    assert!(usage >= 32.0 * MIB, "usage {} MiB", usage / MIB);
    assert!(
        working_set >= 32.0 * MIB,
        "working set {} MiB",
        working_set / MIB
    );
    assert!(working_set <= usage);
    assert!(scrape.expect("container_memory_cache", &series) >= 32.0 * MIB);
}

#[test]
fn direct_writes_under_a_device_limit_are_counted_on_that_device() {
    let containers = Containers::new("direct-writes");
    let scratch = disk_scratch_dir();
    let (disk, _) = disk_of(scratch.path());
    let mount = format!("{}:/data", scratch.path().display());
    let id = containers.run(&[
        "--device-write-bps",
        &format!("{disk}:50mb"),
        "-v",
        &mount,
        common::IMAGE,
        "sh",
        "-c",
        "dd if=/dev/zero of=/data/out bs=1M count=20 oflag=direct && touch /data/done && sleep 600",
    ]);
    wait_for("20 MiB written", Duration::from_secs(30), || {
        scratch.path().join("done").exists().then_some(())
    });
    let exporter = Exporter::start(&[]);
    let cgroup = cgroup_id(&id);
    let on_disk = [("id", cgroup.as_str()), ("device", disk.as_str())];
    let written = wait_for("the container's writes", Duration::from_secs(10), || {
        exporter
            .scrape()
            .value("container_fs_writes_bytes_total", &on_disk)
    });
    assert!(written >= 20.0 * MIB, "{} MiB written", written / MIB);
    let operations = exporter
        .scrape()
        .expect("container_fs_writes_total", &on_disk);
    assert!(operations >= 20.0, "{operations} write operations");
}

/// The engine's stats API is an independent reading of the same cgroup files: CPU time
/// must fall between two of our scrapes taken around it, and the working set must match
/// the engine's usage minus inactive file pages to within 1 MiB.
#[test]
fn usage_agrees_with_the_engine_stats_api() {
    let containers = Containers::new("engine-stats");
    let id = containers.run(&[
        "--cpus",
        "0.3",
        "--tmpfs",
        "/hold",
        common::IMAGE,
        "sh",
        "-c",
        "dd if=/dev/zero of=/hold/fill bs=1M count=16; while :; do :; done",
    ]);
    let exporter = Exporter::start(&[]);
    let cgroup = cgroup_id(&id);
    let usage = [("id", cgroup.as_str()), ("cpu", "total")];
    let series = [("id", cgroup.as_str())];
    wait_for("the container's series", Duration::from_secs(10), || {
        exporter
            .scrape()
            .value("container_cpu_usage_seconds_total", &usage)
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let engine = common::engine_client();
    let before = exporter.scrape();
    let stats: serde_json::Value = runtime
        .block_on(engine.get(&format!("/containers/{id}/stats?stream=0")))
        .expect("stats");
    let after = exporter.scrape();

    let engine_cpu = stats["cpu_stats"]["cpu_usage"]["total_usage"]
        .as_f64()
        .expect("engine CPU usage")
        / 1e9;
    let ours_before = before.expect("container_cpu_usage_seconds_total", &usage);
    let ours_after = after.expect("container_cpu_usage_seconds_total", &usage);
    assert!(
        ours_before <= engine_cpu && engine_cpu <= ours_after,
        "engine CPU {engine_cpu} s is not between our readings {ours_before} and {ours_after}"
    );

    let memory = &stats["memory_stats"];
    let engine_usage = memory["usage"].as_f64().expect("engine memory usage");
    let inactive = memory["stats"]["total_inactive_file"]
        .as_f64()
        .or_else(|| memory["stats"]["inactive_file"].as_f64())
        .unwrap_or(0.0);
    let engine_working_set = engine_usage - inactive;
    let ours = after.expect("container_memory_working_set_bytes", &series);
    assert!(
        (ours - engine_working_set).abs() <= MIB,
        "working set {ours} vs engine's {engine_working_set}"
    );
    assert!(ours >= 16.0 * MIB);
}

#[test]
fn containers_started_later_appear_and_removed_ones_vanish() {
    let containers = Containers::new("live-inventory");
    let exporter = Exporter::start(&[]);
    let id = containers.run(&[common::IMAGE, "sleep", "600"]);
    let cgroup = cgroup_id(&id);
    let series = [("id", cgroup.as_str())];
    let usage = wait_for("the new container's series", Duration::from_secs(5), || {
        exporter
            .scrape()
            .value("container_memory_usage_bytes", &series)
    });
    assert!(usage > 0.0, "a running container uses some memory");
    common::docker(&["rm", "-f", &id]);
    wait_for(
        "the removed container's series to go",
        Duration::from_secs(5),
        || {
            exporter
                .scrape()
                .value("container_memory_usage_bytes", &series)
                .is_none()
                .then_some(())
        },
    );
}

#[test]
fn without_an_engine_the_exporter_serves_and_keeps_trying() {
    let mut exporter = Exporter::start(&[
        "--docker.host=unix:///nonexistent/docker.sock",
        "--cgroup.raw=/",
    ]);
    let scrape = exporter.scrape();
    assert_eq!(scrape.expect("docker_up", &[]), 0.0);
    // The root cgroup is still exported by its raw pattern.
    assert!(
        scrape
            .value("container_memory_usage_bytes", &[("id", "/")])
            .is_some()
    );
    let retries = || {
        exporter
            .log()
            .iter()
            .filter(|line| {
                line.contains("engine unreachable") || line.contains("engine still unreachable")
            })
            .count()
    };
    wait_for(
        "a second attempt at the engine",
        Duration::from_secs(10),
        || (retries() >= 2).then_some(()),
    );
    assert!(
        exporter.is_running(),
        "the exporter exited without an engine"
    );
    assert_eq!(exporter.scrape().expect("docker_up", &[]), 0.0);
}

/// Runs the exporter in a mount namespace of its own, where the host's cgroupfs is bind
/// mounted read-only (every submount too) and given as `--path.cgroupfs`.
/// The view is made on a tmpfs of the namespace's own, so nothing is left on the host.
const READ_ONLY_CGROUPFS: &str = r#"set -e
mount --make-rprivate /
mount -t tmpfs stevedore-test /mnt
view=/mnt/cgroup
mkdir "$view"
mount --rbind /sys/fs/cgroup "$view"
findmnt -rno TARGET -R "$view" | while read -r target; do
  mount -o remount,bind,ro "$target"
done
exec "$@" --path.cgroupfs="$view""#;

#[test]
fn monitoring_works_from_a_read_only_cgroupfs() {
    common::require_program("unshare", "util-linux");
    common::require_program("findmnt", "util-linux");
    let containers = Containers::new("read-only-cgroupfs");
    let id = containers.run(&["--memory", "64m", common::IMAGE, "sleep", "600"]);
    let exporter = Exporter::start_wrapped(
        &["unshare", "--mount", "sh", "-c", READ_ONLY_CGROUPFS, "sh"],
        &[],
    );
    // The exporter's cgroupfs is read-only, every mount of it.
    let mountinfo = std::fs::read_to_string(format!("/proc/{}/mountinfo", exporter.pid())).unwrap();
    let view: Vec<&str> = mountinfo
        .lines()
        .filter(|line| {
            line.split(' ')
                .nth(4)
                .is_some_and(|at| at.starts_with("/mnt/cgroup"))
        })
        .collect();
    assert!(!view.is_empty(), "no cgroupfs view in:\n{mountinfo}");
    for mount in &view {
        let options = mount.split(' ').nth(5).unwrap();
        assert!(
            options.split(',').any(|option| option == "ro"),
            "writable: {mount}"
        );
    }
    let series = [("id", cgroup_id(&id))];
    let series = [("id", series[0].1.as_str())];
    let scrape = wait_for("the container's series", Duration::from_secs(10), || {
        let scrape = exporter.scrape();
        scrape
            .value("container_memory_usage_bytes", &series)
            .map(|_| scrape)
    });
    assert_eq!(
        scrape.expect("container_spec_memory_limit_bytes", &series),
        64.0 * MIB
    );
    assert!(scrape.expect("container_memory_usage_bytes", &series) > 0.0);
    assert!(
        scrape
            .value(
                "container_cpu_usage_seconds_total",
                &[("id", series[0].1), ("cpu", "total")]
            )
            .is_some()
    );
    common::assert_collectors_succeeded(&scrape);
}
