//! The live inventory and the lifecycle metrics, against a real Docker Engine: lifecycle
//! events, restart policies, OOM kills, health checks, an engine outage (a proxy that is
//! cut and restored), and events the client library does not know.

mod common;

use std::time::{Duration, Instant};

use common::proxy::EngineProxy;
use common::{
    Containers, Exporter, Scrape, cgroup_id, docker, engine_event_tally, event_count_increase,
    exported_event_counts, now_nanos, wait_for,
};

/// The state the exporter reports for the container with this name, if it has one.
fn state_of(scrape: &Scrape, name: &str) -> Option<String> {
    let states = scrape.find("docker_container_state", &[("name", name)]);
    assert!(
        states.len() <= 1,
        "one state series per container: {states:?}"
    );
    states.first().map(|sample| sample.labels["state"].clone())
}

fn wait_for_state(exporter: &Exporter, name: &str, state: &str) -> Scrape {
    wait_for(
        &format!("{name} to be {state}"),
        Duration::from_secs(10),
        || {
            let scrape = exporter.scrape();
            (state_of(&scrape, name).as_deref() == Some(state)).then_some(scrape)
        },
    )
}

fn wait_for_up(exporter: &Exporter, up: f64, within: Duration) -> Scrape {
    wait_for(&format!("docker_up {up}"), within, || {
        let scrape = exporter.scrape();
        (scrape.value("docker_up", &[]) == Some(up)).then_some(scrape)
    })
}

/// Waits until the exporter's event counters moved by exactly what the engine reports
/// for the window, then checks they stay there (nothing counted twice, later): a marker
/// made after the window is counted only after everything the engine sent before it.
fn assert_events_counted_exactly_once(
    exporter: &Exporter,
    before: &std::collections::BTreeMap<(String, String), f64>,
    since_nanos: i64,
) {
    let until_nanos = now_nanos();
    let expected = engine_event_tally(since_nanos, until_nanos);
    assert!(!expected.is_empty(), "the window holds no engine events");
    let mut last = Default::default();
    let caught_up = wait_for_result(Duration::from_secs(10), || {
        last = event_count_increase(before, &exported_event_counts(&exporter.scrape()));
        last == expected
    });
    assert!(
        caught_up,
        "counted {last:#?}\nbut the engine reports {expected:#?}"
    );
    let marker = format!("stevedore-events-marker-{}", std::process::id());
    docker(&[
        "network",
        "create",
        "--label",
        &format!("{}=events-marker", common::TEST_LABEL),
        &marker,
    ]);
    docker(&["network", "rm", &marker]);
    let with_marker = engine_event_tally(since_nanos, now_nanos());
    let settled = wait_for_result(Duration::from_secs(10), || {
        last = event_count_increase(before, &exported_event_counts(&exporter.scrape()));
        last == with_marker
    });
    assert!(
        settled,
        "after a marker, counted {last:#?}\nbut the engine reports {with_marker:#?}: events counted again later?"
    );
}

fn wait_for_result(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

#[test]
fn lifecycle_moves_counters_states_and_names() {
    let containers = Containers::alone("lifecycle");
    let exporter = Exporter::start(&[]);
    wait_for_up(&exporter, 1.0, Duration::from_secs(10));
    let since = now_nanos();
    let before = exported_event_counts(&exporter.scrape());

    let id = containers.create(&["--name", "stevedore-life-a", common::IMAGE, "sleep", "600"]);
    let created = wait_for_state(&exporter, "stevedore-life-a", "created");
    assert_eq!(
        created
            .value("docker_containers", &[("state", "created")])
            .map(|n| n >= 1.0),
        Some(true)
    );
    docker(&["start", &id]);
    let running = wait_for_state(&exporter, "stevedore-life-a", "running");
    assert!(
        running
            .value("container_memory_usage_bytes", &[("id", &cgroup_id(&id))])
            .is_some(),
        "a running container has cgroup metrics"
    );
    docker(&["stop", "-t", "0", &id]);
    let stopped = wait_for_state(&exporter, "stevedore-life-a", "exited");
    assert_eq!(
        stopped.value("container_memory_usage_bytes", &[("id", &cgroup_id(&id))]),
        None,
        "a stopped container has no cgroup"
    );
    assert_eq!(
        stopped.expect(
            "docker_container_exit_code",
            &[("name", "stevedore-life-a")]
        ),
        137.0
    );
    docker(&["start", &id]);
    wait_for_state(&exporter, "stevedore-life-a", "running");
    docker(&["pause", &id]);
    wait_for_state(&exporter, "stevedore-life-a", "paused");
    docker(&["unpause", &id]);
    wait_for_state(&exporter, "stevedore-life-a", "running");
    docker(&["kill", &id]);
    wait_for_state(&exporter, "stevedore-life-a", "exited");
    docker(&["restart", "-t", "0", &id]);
    wait_for_state(&exporter, "stevedore-life-a", "running");
    docker(&["rename", "stevedore-life-a", "stevedore-life-b"]);
    let renamed = wait_for_state(&exporter, "stevedore-life-b", "running");
    assert!(
        renamed
            .find("docker_container_info", &[("name", "stevedore-life-a")])
            .is_empty(),
        "the old name is gone"
    );
    assert!(
        renamed
            .value(
                "container_memory_usage_bytes",
                &[("name", "stevedore-life-b")]
            )
            .is_some(),
        "cgroup series carry the new name"
    );
    docker(&["rm", "-f", &id]);
    wait_for(
        "the destroyed container to go",
        Duration::from_secs(10),
        || {
            exporter
                .scrape()
                .find("docker_container_info", &[("id", &cgroup_id(&id))])
                .is_empty()
                .then_some(())
        },
    );

    assert_events_counted_exactly_once(&exporter, &before, since);
    let counted = event_count_increase(&before, &exported_event_counts(&exporter.scrape()));
    let of = |action: &str| {
        counted
            .get(&("container".to_owned(), action.to_owned()))
            .copied()
            .unwrap_or(0.0)
    };
    assert_eq!(of("create"), 1.0);
    assert_eq!(of("start"), 3.0);
    assert_eq!(of("rename"), 1.0);
    assert_eq!(of("destroy"), 1.0);
    assert_eq!(of("restart"), 1.0);
    assert_eq!(of("pause"), 1.0);
    assert_eq!(of("unpause"), 1.0);
    assert!(of("die") >= 3.0);
    assert!(of("kill") >= 1.0);
}

#[test]
fn a_restart_policy_shows_its_restarts_and_the_exit_code() {
    let containers = Containers::new("restart-policy");
    let exporter = Exporter::start(&[]);
    containers.run(&[
        "--name",
        "stevedore-restarts",
        "--restart",
        "on-failure:3",
        common::IMAGE,
        "sh",
        "-c",
        "exit 3",
    ]);
    let name = [("name", "stevedore-restarts")];
    let scrape = wait_for("three restarts", Duration::from_secs(30), || {
        let scrape = exporter.scrape();
        (scrape.value("docker_container_restart_count", &name) == Some(3.0)
            && state_of(&scrape, "stevedore-restarts").as_deref() == Some("exited"))
        .then_some(scrape)
    });
    assert_eq!(scrape.expect("docker_container_exit_code", &name), 3.0);
    assert_eq!(scrape.expect("docker_container_oom_killed", &name), 0.0);
    assert!(scrape.expect("docker_container_finished_at_seconds", &name) > 0.0);
}

#[test]
fn an_oom_kill_is_counted_by_the_kernel_and_by_the_engine() {
    let containers = Containers::new("oom-kill");
    let exporter = Exporter::start(&[]);
    wait_for_up(&exporter, 1.0, Duration::from_secs(10));
    let oom_events = || {
        exporter
            .scrape()
            .value(
                "docker_events_total",
                &[("type", "container"), ("action", "oom")],
            )
            .unwrap_or(0.0)
    };
    let oom_events_before = oom_events();
    // The allocation is a child, so the container lives on and its cgroup can be read.
    let id = containers.run(&[
        "--name",
        "stevedore-oom",
        "--memory",
        "16m",
        "--memory-swap",
        "16m",
        common::IMAGE,
        "sh",
        "-c",
        "tail /dev/zero; while [ ! -e /go ]; do sleep 0.1; done",
    ]);
    let cgroup = cgroup_id(&id);
    let scrape = wait_for(
        "the kernel's OOM kill count",
        Duration::from_secs(20),
        || {
            let scrape = exporter.scrape();
            (scrape.value("container_oom_events_total", &[("id", &cgroup)]) >= Some(1.0))
                .then_some(scrape)
        },
    );
    assert_eq!(
        scrape.expect("container_spec_memory_limit_bytes", &[("id", &cgroup)]),
        16.0 * 1024.0 * 1024.0
    );
    wait_for("the engine's oom event", Duration::from_secs(10), || {
        (oom_events() >= oom_events_before + 1.0).then_some(())
    });
    // The engine records the OOM in the container's state when it exits.
    docker(&["exec", &id, "touch", "/go"]);
    let exited = wait_for_state(&exporter, "stevedore-oom", "exited");
    assert_eq!(
        exited.expect("docker_container_oom_killed", &[("name", "stevedore-oom")]),
        1.0
    );
}

#[test]
fn an_oom_kill_of_the_main_process_still_counts_after_the_restart() {
    let containers = Containers::new("oom-restart");
    let exporter = Exporter::start(&[]);
    wait_for_up(&exporter, 1.0, Duration::from_secs(10));
    // The first run's main process is the one OOM-killed; the restart policy brings the
    // container back in a new cgroup whose kernel count starts at 0.
    let id = containers.run(&[
        "--name",
        "stevedore-oom-restart",
        "--restart",
        "on-failure:1",
        "--memory",
        "16m",
        "--memory-swap",
        "16m",
        common::IMAGE,
        "sh",
        "-c",
        "if [ ! -e /ran ]; then touch /ran; exec tail /dev/zero; fi; exec sleep 600",
    ]);
    let cgroup = cgroup_id(&id);
    let name = [("name", "stevedore-oom-restart")];
    let scrape = wait_for("the restarted container", Duration::from_secs(30), || {
        let scrape = exporter.scrape();
        (scrape.value("docker_container_restart_count", &name) == Some(1.0)
            && state_of(&scrape, "stevedore-oom-restart").as_deref() == Some("running")
            && scrape
                .value("container_memory_usage_bytes", &[("id", &cgroup)])
                .is_some())
        .then_some(scrape)
    });
    assert_eq!(
        common::docker(&["inspect", "-f", "{{.RestartCount}}", &id]),
        "1"
    );
    assert_eq!(
        scrape.expect("container_oom_events_total", &[("id", &cgroup)]),
        1.0,
        "the OOM kill of the first run must not read 0 after the restart"
    );
}

#[test]
fn health_checks_report_healthy_and_unhealthy() {
    let containers = Containers::new("health-states");
    let exporter = Exporter::start(&[]);
    for (name, command) in [
        ("stevedore-healthy", "true"),
        ("stevedore-unhealthy", "exit 1"),
    ] {
        containers.run(&[
            "--name",
            name,
            "--health-cmd",
            command,
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
            "--health-start-period",
            "0s",
            common::IMAGE,
            "sleep",
            "600",
        ]);
    }
    let scrape = wait_for("both health states", Duration::from_secs(20), || {
        let scrape = exporter.scrape();
        let healthy = scrape.value(
            "docker_container_health_status",
            &[("name", "stevedore-healthy"), ("status", "healthy")],
        );
        let unhealthy = scrape.value(
            "docker_container_health_status",
            &[("name", "stevedore-unhealthy"), ("status", "unhealthy")],
        );
        (healthy == Some(1.0) && unhealthy == Some(1.0)).then_some(scrape)
    });
    assert_eq!(
        scrape
            .find(
                "docker_container_health_status",
                &[("name", "stevedore-healthy")]
            )
            .len(),
        1,
        "one health series per container"
    );
    assert!(
        scrape.expect(
            "docker_container_health_failing_streak",
            &[("name", "stevedore-unhealthy")]
        ) >= 1.0
    );
    assert_eq!(
        scrape.expect(
            "docker_container_health_failing_streak",
            &[("name", "stevedore-healthy")]
        ),
        0.0
    );
    assert!(
        scrape.expect(
            "docker_events_total",
            &[("type", "container"), ("action", "health_status")]
        ) >= 2.0
    );

    // The failing streak grows with every probe while the status stays `unhealthy`, so no
    // status event says so: each engine reading is caught up with, until the streak has
    // grown by five probes.
    let unhealthy = [("name", "stevedore-unhealthy")];
    let engine_streak = || -> f64 {
        common::docker(&[
            "inspect",
            "--format",
            "{{.State.Health.FailingStreak}}",
            "stevedore-unhealthy",
        ])
        .parse()
        .expect("a failing streak")
    };
    let first = engine_streak();
    let watching = Instant::now();
    let mut ours = 0.0;
    while ours < first + 5.0 && watching.elapsed() < Duration::from_secs(60) {
        let engine = engine_streak();
        ours = wait_for(
            "our streak to reach the engine's",
            Duration::from_secs(5),
            || {
                let ours = exporter
                    .scrape()
                    .value("docker_container_health_failing_streak", &unhealthy)?;
                (ours >= engine).then_some(ours)
            },
        );
    }
    assert!(
        ours >= first + 5.0,
        "the streak went from {first} to only {ours} in a minute of 1 s probes"
    );
}

#[test]
fn an_engine_outage_keeps_metrics_served_and_every_missed_event_is_counted_once() {
    let containers = Containers::alone("outage");
    let scratch = tempfile::tempdir().unwrap();
    let mut proxy = EngineProxy::start(scratch.path());
    let known = containers.run(&[
        "--name",
        "stevedore-outage-known",
        common::IMAGE,
        "sleep",
        "600",
    ]);
    let exporter = Exporter::start(&[&format!("--docker.host={}", proxy.host())]);
    let known_series = [("id", cgroup_id(&known))];
    let known_series = [("id", known_series[0].1.as_str())];
    wait_for("the known container", Duration::from_secs(10), || {
        exporter
            .scrape()
            .value("container_memory_usage_bytes", &known_series)
    });
    let since = now_nanos();
    let before = exported_event_counts(&exporter.scrape());

    proxy.cut();
    let during = wait_for_up(&exporter, 0.0, Duration::from_secs(5));
    assert!(
        during
            .value("container_memory_usage_bytes", &known_series)
            .is_some(),
        "cgroup metrics of known containers are served during the outage"
    );
    let started = containers.run(&[
        "--name",
        "stevedore-outage-new",
        common::IMAGE,
        "sleep",
        "600",
    ]);
    let brief = containers.run(&[
        "--name",
        "stevedore-outage-brief",
        common::IMAGE,
        "sleep",
        "600",
    ]);
    docker(&["stop", "-t", "0", &brief]);
    let removed = containers.run(&[
        "--name",
        "stevedore-outage-removed",
        common::IMAGE,
        "sleep",
        "600",
    ]);
    docker(&["rm", "-f", &removed]);
    let still_down = exporter.scrape();
    assert_eq!(still_down.expect("docker_up", &[]), 0.0);
    assert!(
        still_down
            .value("container_memory_usage_bytes", &known_series)
            .is_some()
    );

    let restored_at = Instant::now();
    proxy.restore();
    let back = wait_for_up(&exporter, 1.0, Duration::from_secs(5));
    let reconnect = restored_at.elapsed();
    eprintln!("reconnected {reconnect:?} after the engine came back");
    assert!(
        reconnect < Duration::from_secs(5),
        "reconnected after {reconnect:?}"
    );

    // The inventory caught up with what happened during the cut.
    let back = wait_for("the resynced inventory", Duration::from_secs(5), || {
        let scrape = if state_of(&back, "stevedore-outage-new").is_some() {
            back.clone()
        } else {
            exporter.scrape()
        };
        (state_of(&scrape, "stevedore-outage-new").as_deref() == Some("running")
            && state_of(&scrape, "stevedore-outage-brief").as_deref() == Some("exited"))
        .then_some(scrape)
    });
    assert!(
        back.value(
            "container_memory_usage_bytes",
            &[("id", &cgroup_id(&started))]
        )
        .is_some()
    );
    assert!(
        back.find("docker_container_info", &[("id", &cgroup_id(&removed))])
            .is_empty()
    );

    assert_events_counted_exactly_once(&exporter, &before, since);
}

#[test]
fn an_unknown_event_type_does_not_stop_the_event_stream() {
    let containers = Containers::new("unknown-event");
    let scratch = tempfile::tempdir().unwrap();
    let proxy = EngineProxy::start(scratch.path());
    let exporter = Exporter::start(&[&format!("--docker.host={}", proxy.host())]);
    wait_for_up(&exporter, 1.0, Duration::from_secs(10));
    let nanos = now_nanos();
    proxy.inject_event_line(&format!(
        r#"{{"Type":"stevedore-test-kind","Action":"materialize: with arguments","Actor":{{"ID":"nothing","Attributes":{{}}}},"scope":"local","time":{},"timeNano":{nanos}}}"#,
        nanos / 1_000_000_000
    ));
    proxy.inject_event_line("this line is not JSON");
    wait_for("the injection", Duration::from_secs(5), || {
        (proxy.pending_injections() == 0).then_some(())
    });
    let id = containers.run(&[
        "--name",
        "stevedore-after-unknown",
        common::IMAGE,
        "sleep",
        "600",
    ]);
    let scrape = wait_for_state(&exporter, "stevedore-after-unknown", "running");
    assert_eq!(
        scrape.expect(
            "docker_events_total",
            &[("type", "stevedore-test-kind"), ("action", "materialize")]
        ),
        1.0
    );
    assert!(
        scrape
            .value("container_memory_usage_bytes", &[("id", &cgroup_id(&id))])
            .is_some()
    );
    assert!(
        !exporter
            .log()
            .iter()
            .any(|line| line.contains("engine unreachable")),
        "the stream must not have been reconnected: {:#?}",
        exporter.log()
    );
    assert!(
        exporter.log().iter().any(|line| line.contains("not JSON")),
        "the undecodable line is reported"
    );
}
