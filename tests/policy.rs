//! Limit policies against a real Docker Engine and real cgroups: enforcement at start,
//! device limits written to the cgroup and re-applied after a restart, report mode,
//! reloads (good, bad, SIGHUP), refusals, untouched containers, `policy check` and
//! `policy plan`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Containers, Exporter, disk_of, disk_scratch_dir, docker, wait_for};

const MIB: u64 = 1024 * 1024;

/// A cgroup v1 file of a container (tests that read them return early on a v2 host).
fn cgroup_file(controller: &str, id: &str, file: &str) -> String {
    let path = common::container_cgroup_dir(controller, id).join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .trim()
        .to_owned()
}

fn inspect(id: &str, template: &str) -> String {
    docker(&["inspect", "-f", template, id])
}

fn write_policy(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("policy.yaml");
    // Write then rename, as editors do, so the exporter never reads half a file.
    let partial = dir.join("policy.yaml.partial");
    std::fs::write(&partial, text).unwrap();
    std::fs::rename(&partial, &path).unwrap();
    path
}

fn enforcing(policy: &Path) -> Exporter {
    let exporter = Exporter::start(&[
        &format!("--policy.file={}", policy.display()),
        "--policy.mode=enforce",
    ]);
    wait_for("the engine", Duration::from_secs(10), || {
        (exporter.scrape().value("docker_up", &[]) == Some(1.0)).then_some(())
    });
    exporter
}

#[test]
fn a_container_started_later_gets_its_limits_within_a_second() {
    if !common::has_cgroup_v1_files("a_container_started_later_gets_its_limits_within_a_second") {
        return;
    }
    let containers = Containers::new("policy-start");
    let dir = disk_scratch_dir();
    let (disk, device) = disk_of(dir.path());
    let policy = write_policy(
        dir.path(),
        &format!(
            "rules:
  - name: started-later
    match: {{name: \"stevedore-pol-start-*\"}}
    limits:
      memory: 96m
      memory-swap: 128m
      memory-reservation: 48m
      cpus: 0.5
      cpu-shares: 256
      cpuset-cpus: \"0\"
      pids-limit: 60
      device-write-bps: [\"{disk}:10mb\"]
      device-read-iops: [\"{disk}:500\"]
"
        ),
    );
    let exporter = enforcing(&policy);
    let id = containers.run(&[
        "--name",
        "stevedore-pol-start-1",
        common::IMAGE,
        "sleep",
        "600",
    ]);
    let started = Instant::now();
    let expected_inspect = format!("{} {} {} 500000000 256 0 60", 96 * MIB, 128 * MIB, 48 * MIB);
    wait_for(
        "the limits in the engine and the cgroup",
        Duration::from_secs(1),
        || {
            let engine = inspect(
                &id,
                "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.MemoryReservation}} {{.HostConfig.NanoCpus}} {{.HostConfig.CpuShares}} {{.HostConfig.CpusetCpus}} {{.HostConfig.PidsLimit}}",
            );
            let in_cgroup = cgroup_file("memory", &id, "memory.limit_in_bytes")
                == (96 * MIB).to_string()
                && cgroup_file("memory", &id, "memory.memsw.limit_in_bytes")
                    == (128 * MIB).to_string()
                && cgroup_file("memory", &id, "memory.soft_limit_in_bytes")
                    == (48 * MIB).to_string()
                && cgroup_file("cpu", &id, "cpu.cfs_quota_us") == "50000"
                && cgroup_file("cpu", &id, "cpu.shares") == "256"
                && cgroup_file("cpuset", &id, "cpuset.cpus") == "0"
                && cgroup_file("pids", &id, "pids.max") == "60"
                && cgroup_file("blkio", &id, "blkio.throttle.write_bps_device")
                    == format!("{device} {}", 10 * MIB)
                && cgroup_file("blkio", &id, "blkio.throttle.read_iops_device")
                    == format!("{device} 500");
            (engine == expected_inspect && in_cgroup).then_some(())
        },
    );
    eprintln!(
        "limits in place {:?} after docker run returned",
        started.elapsed()
    );
    let scrape = wait_for("the application counted", Duration::from_secs(5), || {
        let scrape = exporter.scrape();
        scrape
            .value(
                "stevedore_policy_applied_total",
                &[("rule", "started-later"), ("result", "applied")],
            )
            .map(|_| scrape)
    });
    assert_eq!(scrape.expect("stevedore_policy_rules", &[]), 1.0);
    let drift = scrape.find(
        "stevedore_policy_drift",
        &[("name", "stevedore-pol-start-1")],
    );
    assert_eq!(
        drift.len(),
        9,
        "one drift series per declared limit: {drift:?}"
    );
    assert!(drift.iter().all(|sample| sample.value == 0.0), "{drift:?}");
}

#[test]
fn a_device_write_limit_is_enforced_and_reapplied_after_a_restart() {
    if !common::has_cgroup_v1_files(
        "a_device_write_limit_is_enforced_and_reapplied_after_a_restart",
    ) {
        return;
    }
    let containers = Containers::new("policy-device");
    let dir = disk_scratch_dir();
    let (disk, device) = disk_of(dir.path());
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let policy = write_policy(
        dir.path(),
        &format!(
            "rules:
  - name: slow-disk
    match: {{name: stevedore-pol-disk}}
    limits:
      device-write-bps: [\"{disk}:10mb\"]
"
        ),
    );
    let _exporter = enforcing(&policy);
    let id = containers.run(&[
        "--name",
        "stevedore-pol-disk",
        "-v",
        &format!("{}:/data", data.display()),
        common::IMAGE,
        "sleep",
        "600",
    ]);
    let limit_line = format!("{device} {}", 10 * MIB);
    let write_20_mib = || {
        wait_for("the device limit", Duration::from_secs(2), || {
            (cgroup_file("blkio", &id, "blkio.throttle.write_bps_device") == limit_line)
                .then_some(())
        });
        let started = Instant::now();
        docker(&[
            "exec",
            &id,
            "dd",
            "if=/dev/zero",
            "of=/data/out",
            "bs=1M",
            "count=20",
            "oflag=direct",
        ]);
        started.elapsed()
    };
    let first = write_20_mib();
    eprintln!("20 MiB under a 10 MiB/s limit took {first:?}");
    assert!(
        first >= Duration::from_millis(1600),
        "20 MiB at 10 MiB/s took only {first:?}"
    );
    assert!(first < Duration::from_secs(6), "took {first:?}");

    docker(&["restart", "-t", "0", &id]);
    let again = write_20_mib();
    eprintln!("after docker restart: {again:?}");
    assert!(
        again >= Duration::from_millis(1600),
        "after a restart, 20 MiB took only {again:?}: the limit was not re-applied"
    );
}

#[test]
fn report_mode_changes_nothing_and_shows_drift() {
    if !common::has_cgroup_v1_files("report_mode_changes_nothing_and_shows_drift") {
        return;
    }
    let containers = Containers::new("policy-report");
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(
        dir.path(),
        "rules:
  - name: wants-more
    match: {name: stevedore-pol-report}
    limits:
      memory: 128m
      pids-limit: 40
",
    );
    let id = containers.run(&[
        "--name",
        "stevedore-pol-report",
        "--memory",
        "64m",
        "--pids-limit",
        "40",
        common::IMAGE,
        "sleep",
        "600",
    ]);
    let exporter = Exporter::start(&[&format!("--policy.file={}", policy.display())]);
    let name = [("name", "stevedore-pol-report")];
    let scrape = wait_for("the drift", Duration::from_secs(10), || {
        let scrape = exporter.scrape();
        scrape
            .value("stevedore_policy_drift", &[name[0], ("resource", "memory")])
            .map(|_| scrape)
    });
    assert_eq!(
        scrape.expect("stevedore_policy_drift", &[name[0], ("resource", "memory")]),
        1.0
    );
    assert_eq!(
        scrape.expect(
            "stevedore_policy_drift",
            &[name[0], ("resource", "pids-limit")]
        ),
        0.0
    );
    // Once the policy task has gone through the running containers and declined, nothing
    // is left to change them.
    exporter.wait_for_log(
        "the policy task's pass",
        &["report mode: drift reported, nothing applied"],
    );
    assert_eq!(
        inspect(&id, "{{.HostConfig.Memory}}"),
        (64 * MIB).to_string()
    );
    assert_eq!(
        cgroup_file("memory", &id, "memory.limit_in_bytes"),
        (64 * MIB).to_string()
    );
    assert!(
        exporter
            .scrape()
            .find("stevedore_policy_applied_total", &[])
            .is_empty(),
        "report mode applies nothing"
    );
}

#[test]
fn edits_are_picked_up_an_invalid_edit_is_refused_and_sighup_reloads() {
    if !common::has_cgroup_v1_files(
        "edits_are_picked_up_an_invalid_edit_is_refused_and_sighup_reloads",
    ) {
        return;
    }
    let containers = Containers::new("policy-reload");
    let dir = tempfile::tempdir().unwrap();
    let policy_with = |pids: u32| {
        format!(
            "rules:
  - name: reloadable
    match: {{name: \"stevedore-pol-reload-*\"}}
    limits:
      pids-limit: {pids}
"
        )
    };
    let policy = write_policy(dir.path(), &policy_with(60));
    let exporter = enforcing(&policy);
    let first = containers.run(&[
        "--name",
        "stevedore-pol-reload-1",
        common::IMAGE,
        "sleep",
        "600",
    ]);
    let pids_of = |id: &str, pids: &str| {
        wait_for(&format!("pids.max {pids}"), Duration::from_secs(5), || {
            (cgroup_file("pids", id, "pids.max") == pids).then_some(())
        })
    };
    pids_of(&first, "60");
    let loaded_at = exporter
        .scrape()
        .expect("stevedore_policy_last_reload_timestamp_seconds", &[]);

    // An edit is picked up and applied to running containers.
    write_policy(dir.path(), &policy_with(70));
    pids_of(&first, "70");
    let scrape = exporter.scrape();
    assert_eq!(scrape.expect("stevedore_policy_reload_success", &[]), 1.0);
    assert!(scrape.expect("stevedore_policy_last_reload_timestamp_seconds", &[]) > loaded_at);

    // An invalid edit is refused; the last good policy stays in force.
    write_policy(
        dir.path(),
        "rules:\n  - name: reloadable\n    limits:\n      pids-limit: many\n",
    );
    wait_for("the refused reload", Duration::from_secs(5), || {
        (exporter
            .scrape()
            .value("stevedore_policy_reload_success", &[])
            == Some(0.0))
        .then_some(())
    });
    assert!(
        exporter
            .log()
            .iter()
            .any(|line| line.contains("policy.yaml:4:19") && line.contains("pids-limit")),
        "the log names the problem and its place: {:#?}",
        exporter.log()
    );
    let second = containers.run(&[
        "--name",
        "stevedore-pol-reload-2",
        common::IMAGE,
        "sleep",
        "600",
    ]);
    pids_of(&second, "70");
    assert_eq!(exporter.scrape().expect("stevedore_policy_rules", &[]), 1.0);

    // A valid edit brings the reloads back to success.
    write_policy(dir.path(), &policy_with(80));
    pids_of(&first, "80");
    pids_of(&second, "80");
    assert_eq!(
        exporter
            .scrape()
            .expect("stevedore_policy_reload_success", &[]),
        1.0
    );

    // SIGHUP reloads and re-applies even when the file is unchanged: a limit changed by
    // hand stays changed until then.
    let updates = |scrape: &common::Scrape| {
        scrape
            .value(
                "docker_events_total",
                &[("type", "container"), ("action", "update")],
            )
            .unwrap_or(0.0)
    };
    let updates_before = updates(&exporter.scrape());
    docker(&["update", "--pids-limit", "55", &first]);
    // The update's event has been handled, and nothing put the limit back.
    wait_for("the update event", Duration::from_secs(10), || {
        (updates(&exporter.scrape()) > updates_before).then_some(())
    });
    assert_eq!(cgroup_file("pids", &first, "pids.max"), "55");
    exporter.signal("HUP");
    pids_of(&first, "80");
}

#[test]
fn containers_no_rule_selects_are_untouched() {
    if !common::has_cgroup_v1_files("containers_no_rule_selects_are_untouched") {
        return;
    }
    let containers = Containers::new("policy-untouched");
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(
        dir.path(),
        "rules:
  - name: selected-only
    match: {name: \"stevedore-pol-selected-*\"}
    exclude: {labels: [\"stevedore.keep=1\"]}
    limits:
      memory: 100m
",
    );
    let exporter = enforcing(&policy);
    let other = containers.run(&[
        "--name",
        "stevedore-pol-other",
        "--memory",
        "64m",
        common::IMAGE,
        "sleep",
        "600",
    ]);
    let excluded = containers.run(&[
        "--name",
        "stevedore-pol-selected-kept",
        "--label",
        "stevedore.keep=1",
        "--memory",
        "64m",
        common::IMAGE,
        "sleep",
        "600",
    ]);
    let selected = containers.run(&[
        "--name",
        "stevedore-pol-selected-1",
        "--memory",
        "64m",
        common::IMAGE,
        "sleep",
        "600",
    ]);
    wait_for(
        "the selected container's limit",
        Duration::from_secs(5),
        || {
            (cgroup_file("memory", &selected, "memory.limit_in_bytes") == (100 * MIB).to_string())
                .then_some(())
        },
    );
    for name in ["stevedore-pol-other", "stevedore-pol-selected-kept"] {
        exporter.wait_for_log(
            &format!("{name} to be left alone"),
            &["no rule selects the container", name],
        );
    }
    for id in [&other, &excluded] {
        assert_eq!(
            inspect(id, "{{.HostConfig.Memory}}"),
            (64 * MIB).to_string()
        );
        assert_eq!(
            cgroup_file("memory", id, "memory.limit_in_bytes"),
            (64 * MIB).to_string()
        );
    }
    let scrape = exporter.scrape();
    for name in ["stevedore-pol-other", "stevedore-pol-selected-kept"] {
        assert!(
            scrape
                .find("stevedore_policy_drift", &[("name", name)])
                .is_empty(),
            "{name} is not the policy's business"
        );
    }
}

#[test]
fn a_refused_limit_leaves_the_container_as_it_was_and_is_counted() {
    if !common::has_cgroup_v1_files("a_refused_limit_leaves_the_container_as_it_was_and_is_counted")
    {
        return;
    }
    let containers = Containers::new("policy-refused");
    let dir = disk_scratch_dir();
    let (disk, _) = disk_of(dir.path());
    let policy = write_policy(
        dir.path(),
        &format!(
            "rules:
  - name: too-small
    match: {{name: stevedore-pol-refused}}
    limits:
      memory: 16m
      memory-swap: 16m
      pids-limit: 33
      device-write-bps: [\"{disk}:1mb\"]
"
        ),
    );
    let id = containers.run(&[
        "--name",
        "stevedore-pol-refused",
        "--memory",
        "128m",
        "--memory-swap",
        "128m",
        "--tmpfs",
        "/hold",
        common::IMAGE,
        "sh",
        "-c",
        "dd if=/dev/zero of=/hold/fill bs=1M count=48 && touch /hold/done && sleep 600",
    ]);
    common::wait_for_file_in(&id, "/hold/done");
    let before = (
        cgroup_file("memory", &id, "memory.limit_in_bytes"),
        cgroup_file("pids", &id, "pids.max"),
        cgroup_file("blkio", &id, "blkio.throttle.write_bps_device"),
        inspect(&id, "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}"),
    );
    let exporter = enforcing(&policy);
    wait_for("the failure counted", Duration::from_secs(10), || {
        exporter
            .scrape()
            .value(
                "stevedore_policy_applied_total",
                &[("rule", "too-small"), ("result", "failed")],
            )
            .filter(|count| *count >= 1.0)
    });
    let after = (
        cgroup_file("memory", &id, "memory.limit_in_bytes"),
        cgroup_file("pids", &id, "pids.max"),
        cgroup_file("blkio", &id, "blkio.throttle.write_bps_device"),
        inspect(&id, "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}"),
    );
    assert_eq!(
        after, before,
        "the container must be left exactly as it was"
    );
    assert_eq!(inspect(&id, "{{.State.Status}}"), "running");
    let log = exporter.log();
    let refusal = log
        .iter()
        .find(|line| line.contains("policy not applied"))
        .unwrap_or_else(|| panic!("no refusal logged: {log:#?}"));
    assert!(
        refusal.contains("container=stevedore-pol-refused"),
        "{refusal}"
    );
    assert!(refusal.contains("rules=too-small"), "{refusal}");
    assert!(refusal.contains("memory"), "{refusal}");
    assert!(refusal.contains("usage"), "the engine's reason: {refusal}");
}

fn stevedore(args: &[&str]) -> (bool, String) {
    let output = Command::new(common::stevedore_binary())
        .args(args)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

/// `policy check` printed a problem at FILE:LINE:COLUMN that says `words`.
fn assert_problem_at(output: &str, file: &Path, line: usize, column: usize, words: &str) {
    let place = format!("{}:{line}:{column}: ", file.display());
    assert!(
        output
            .lines()
            .any(|text| text.starts_with(&place) && text.contains(words)),
        "expected {place}…{words}… in:\n{output}"
    );
}

#[test]
fn policy_check_places_each_mistake_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mistakes.yaml");
    std::fs::write(
        &file,
        "rules:
  - name: typo
    limits:
      memroy: 512m
  - name: sizes
    limits:
      memory: 12q
  - name: too-small
    limits:
      memory: 4m
  - name: swap
    limits:
      memory: 512m
      memory-swap: 256m
  - name: cpus
    limits:
      cpus: 4096
  - name: device
    limits:
      device-write-bps: [\"/dev/no-such-disk:10mb\"]
  - name: never
    match:
      labels: [\"env=prod\", \"env!=prod\"]
    limits:
      memory: 64m
",
    )
    .unwrap();
    let (ok, output) = stevedore(&["policy", "check", file.to_str().unwrap()]);
    assert!(!ok, "a policy with mistakes must fail: {output}");
    let at = |line, column, words| assert_problem_at(&output, &file, line, column, words);
    at(4, 7, "unknown key `memroy`");
    at(7, 15, "not a size");
    // A file with syntax problems is reported before the host checks run; check the rest
    // with the typo fixed.
    let fixed = std::fs::read_to_string(&file)
        .unwrap()
        .replace("memroy", "memory")
        .replace("12q", "12m");
    std::fs::write(&file, fixed).unwrap();
    let (ok, output) = stevedore(&["policy", "check", file.to_str().unwrap()]);
    assert!(!ok);
    let at = |line, column, words| assert_problem_at(&output, &file, line, column, words);
    at(10, 15, "below the engine's minimum");
    at(14, 20, "below `memory`");
    at(17, 13, "more than this host's");
    at(20, 26, "/dev/no-such-disk does not exist");
    at(23, 28, "can never select");

    let (ok, output) = stevedore(&["policy", "check", "examples/policy.yaml"]);
    assert!(ok, "the shipped example must be valid: {output}");
    assert!(output.contains("valid, 3 rules"), "{output}");

    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "rules:\n  - name: [unclosed\n").unwrap();
    let (ok, output) = stevedore(&["policy", "check", broken.to_str().unwrap()]);
    assert!(!ok);
    assert!(output.contains("not valid YAML"), "{output}");

    let (ok, output) = stevedore(&["policy", "check", "/nonexistent/policy.yaml"]);
    assert!(!ok);
    assert!(output.contains("cannot read the policy"), "{output}");

    // A file past the size limit is refused unread, however valid.
    let huge = dir.path().join("huge.yaml");
    let mut text = String::from("rules:\n");
    while text.len() <= 5 * MIB as usize {
        let index = text.len();
        text.push_str(&format!(
            "  - name: rule-{index}\n    match: {{name: \"app-{index}\"}}\n    limits: {{memory: 64m}}\n"
        ));
    }
    std::fs::write(&huge, text).unwrap();
    let (ok, output) = stevedore(&["policy", "check", huge.to_str().unwrap()]);
    assert!(!ok, "{output}");
    assert!(
        output.contains("more than the 4MiB a policy file may be"),
        "{output}"
    );
}

#[test]
fn policy_plan_prints_current_and_wanted_limits_and_applies_nothing() {
    let containers = Containers::new("policy-plan");
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(
        dir.path(),
        "rules:
  - name: floor
    match: {name: \"stevedore-pol-plan-*\"}
    defaults:
      memory: 1g
      pids-limit: 500
  - name: base
    match: {name: stevedore-pol-plan-a}
    limits:
      memory: 128m
      pids-limit: 90
  - name: exact
    match: {name: stevedore-pol-plan-a}
    limits:
      cpus: 0.5
",
    );
    let run = |name: &str, limits: &[&str]| {
        let mut args = vec!["--name", name];
        args.extend_from_slice(limits);
        args.extend_from_slice(&[common::IMAGE, "sleep", "600"]);
        containers.run(&args)
    };
    let a = run(
        "stevedore-pol-plan-a",
        &["--memory", "64m", "--pids-limit", "90"],
    );
    let tight = run(
        "stevedore-pol-plan-tight",
        &["--memory", "50m", "--pids-limit", "20"],
    );
    let open = run("stevedore-pol-plan-open", &[]);
    run("stevedore-pol-unplanned", &[]);
    let (ok, output) = stevedore(&["policy", "plan", policy.to_str().unwrap()]);
    assert!(ok, "{output}");
    let lines: Vec<String> = output
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let has = |wanted: &str| {
        assert!(
            lines.iter().any(|line| line == wanted),
            "no line `{wanted}` in:\n{output}"
        );
    };
    has(&format!(
        "stevedore-pol-plan-a ({}), rules: base, exact",
        &a[..12]
    ));
    has("memory 64MiB -> 128MiB (LOOSENS) [base]");
    has("pids-limit 90 (in place) [base]");
    has("cpus unlimited -> 0.5 [exact]");
    // Defaults fill only what a container lacks: the tight one keeps its own limits.
    has("memory 50MiB (kept; the default 1GiB is for containers without one) [floor]");
    has("pids-limit 20 (kept; the default 500 is for containers without one) [floor]");
    has("memory unlimited -> 1GiB [floor]");
    has("pids-limit unlimited -> 500 [floor]");
    assert!(
        output.contains("1 limit(s) marked LOOSENS"),
        "the summary does not count the loosened limit:\n{output}"
    );
    assert!(!output.contains("stevedore-pol-unplanned"), "{output}");
    assert!(output.contains("Nothing was applied"), "{output}");
    assert_eq!(
        inspect(&a, "{{.HostConfig.Memory}}"),
        (64 * MIB).to_string()
    );

    // Enforced, the defaults reach the open container and leave the tight one as it was.
    let exporter = enforcing(&policy);
    wait_for(
        "the open container's defaults",
        Duration::from_secs(10),
        || {
            (inspect(&open, "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}")
                == format!("{} 500", 1024 * MIB))
            .then_some(())
        },
    );
    exporter.wait_for_log(
        "the tight container to be found in place",
        &[
            "limits already as the policy wants",
            "stevedore-pol-plan-tight",
        ],
    );
    assert_eq!(
        inspect(&tight, "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}"),
        format!("{} 20", 50 * MIB)
    );
}
