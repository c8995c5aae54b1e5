//! `stevedore recommend` against a real Prometheus scraping a real stevedore over a real
//! Docker Engine: containers of known use (a steady 40 MiB working set under 256 MiB, a CPU
//! burner of about 0.2 CPUs under 0.5, one OOM-killed under 32 MiB, one too young), one
//! short window; each recommendation brackets what its containers used as the README
//! documents, the OOM-killed one is raised, and `policy check` and `policy plan` take the
//! output. Then the errors a user can act on.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::prometheus_server::{Prometheus, Setup};
use common::{Containers, Exporter, wait_for};
use serde_json::Value;
use stevedore::policy::document;
use stevedore::policy::model::{Policy, Resource, Value as LimitValue};
use stevedore::policy::units::format_bytes;

const MIB: f64 = 1024.0 * 1024.0;
/// The compose project every workload container claims to be part of.
const PROJECT: &str = "stevedore-recommend";
/// The test label's value (unique in the suite), and as Prometheus sees it on series.
const LABEL: &str = "recommend";
const MATCH: &str = "container_label_stevedore_test=\"recommend\"";
/// Scrapes of each workload container Prometheus must hold before recommending: 30 s of
/// history at one scrape a second, above `--min-history`.
const HISTORY_SAMPLES: usize = 30;
const MIN_HISTORY: &str = "20s";
const WINDOW: &str = "1m";
/// Two scrapes a step: the CPU rate is taken over each.
const STEP: &str = "2s";

/// Runs the binary; (exit status success, stdout, stderr).
fn stevedore(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(common::stevedore_binary())
        .args(args)
        .output()
        .expect("run stevedore");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn recommend(prometheus: &Prometheus, format: &str) -> String {
    let (ok, stdout, stderr) = stevedore(&[
        "recommend",
        "--prometheus.url",
        &prometheus.url,
        "--window",
        WINDOW,
        "--min-history",
        MIN_HISTORY,
        "--step",
        STEP,
        "--match",
        MATCH,
        "--format",
        format,
    ]);
    assert!(ok, "recommend --format {format} failed: {stderr}\n{stdout}");
    stdout
}

/// `docker run` arguments that make a container one of `service`'s replicas.
fn service(service: &str) -> Vec<String> {
    vec![
        "--label".to_owned(),
        format!("com.docker.compose.project={PROJECT}"),
        "--label".to_owned(),
        format!("com.docker.compose.service={service}"),
    ]
}

fn run(containers: &Containers, name: &str, service_name: &str, options: &[&str], script: &str) {
    let labels = service(service_name);
    let mut args: Vec<&str> = vec!["--name", name];
    args.extend(labels.iter().map(String::as_str));
    args.extend_from_slice(options);
    args.extend_from_slice(&[common::IMAGE, "sh", "-c", script]);
    containers.run(&args);
}

/// A query with one series once Prometheus holds `samples` working-set samples of each
/// container named.
fn samples_of_each(names: &[&str], samples: usize) -> String {
    format!(
        "count(count_over_time(container_memory_working_set_bytes{{name=~\"{}\"}}[2m]) >= {samples}) == {}",
        names.join("|"),
        names.len()
    )
}

/// The limits a policy rule declares, by key.
fn rule_limit(policy: &Policy, rule: &str, resource: Resource) -> LimitValue {
    let rule = policy
        .rules
        .iter()
        .find(|candidate| candidate.name == rule)
        .unwrap_or_else(|| panic!("no rule {rule}"));
    rule.limits
        .iter()
        .find(|setting| setting.value.resource == resource)
        .unwrap_or_else(|| panic!("rule {} has no {resource}", rule.name))
        .value
        .value
        .clone()
}

fn bytes(value: LimitValue) -> f64 {
    match value {
        LimitValue::Bytes(bytes) => bytes as f64,
        other => panic!("not a size: {other:?}"),
    }
}

fn cpus(value: LimitValue) -> f64 {
    match value {
        LimitValue::Cpus(cpus) => cpus,
        other => panic!("not cpus: {other:?}"),
    }
}

fn json_rule<'a>(json: &'a Value, name: &str) -> &'a Value {
    json["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|rule| rule["name"] == name)
        .unwrap_or_else(|| panic!("no rule {name} in {json:#}"))
}

const STEADY: [&str; 2] = ["stevedore-rec-steady-1", "stevedore-rec-steady-2"];
const BURNER: &str = "stevedore-rec-burner";
const OOM: &str = "stevedore-rec-oom";
const LATE: &str = "stevedore-rec-late";

/// One workload, one exporter and one Prometheus; every recommendation checked against
/// what Prometheus itself says the containers used.
#[test]
fn recommendations_bracket_what_containers_used_and_the_policy_commands_take_them() {
    let started = Instant::now();
    let containers = Containers::new(LABEL);
    let exporter = Exporter::start(&["--no-collector.disk"]);
    let prometheus = Prometheus::start(Setup::new("stevedore", &exporter.address));

    // Two replicas holding 40 MiB in tmpfs (/dev/shm: shared memory, charged to the
    // container and never reclaimable as file cache is) under 256 MiB.
    for name in STEADY {
        run(
            &containers,
            name,
            "steady",
            &["--memory", "256m"],
            "dd if=/dev/zero of=/dev/shm/fill bs=1M count=40 2>/dev/null && exec sleep 86400",
        );
    }
    // A busy loop let run 20 ms in every 100 (stopped and continued by the shell): at most
    // about 0.2 CPUs, under a limit of 0.5 it never reaches within a 100 ms CFS period.
    run(
        &containers,
        BURNER,
        "burner",
        &["--cpus", "0.5"],
        "while :; do :; done & b=$!; \
         while :; do kill -CONT $b; usleep 20000; kill -STOP $b; usleep 80000; done",
    );
    // dd's 64 MiB buffer under a 32 MiB limit: the kernel OOM-kills dd every two seconds,
    // and the shell lives on.
    run(
        &containers,
        OOM,
        "oom",
        &["--memory", "32m", "--memory-swap", "32m"],
        "while :; do dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; sleep 2; done",
    );
    let mut workload: Vec<&str> = STEADY.to_vec();
    workload.extend([BURNER, OOM]);
    wait_for(
        &format!("{HISTORY_SAMPLES} scrapes of each workload container"),
        Duration::from_secs(120),
        || (prometheus.series(&samples_of_each(&workload, HISTORY_SAMPLES)) == 1).then_some(()),
    );
    wait_for("an OOM kill in Prometheus", Duration::from_secs(30), || {
        (prometheus.series(&format!("container_oom_events_total{{name=\"{OOM}\"}} > 0")) == 1)
            .then_some(())
    });
    // Too young for a rule: started now, seen for a few seconds.
    run(&containers, LATE, "late", &[], "exec sleep 86400");
    wait_for(
        "the late container in Prometheus",
        Duration::from_secs(30),
        || (prometheus.series(&samples_of_each(&[LATE], 4)) == 1).then_some(()),
    );
    let history_ready = started.elapsed();

    let asked = Instant::now();
    let yaml = recommend(&prometheus, "yaml");
    let recommend_took = asked.elapsed();
    let json: Value = serde_json::from_str(&recommend(&prometheus, "json")).unwrap();
    let table = recommend(&prometheus, "table");
    eprintln!("{yaml}\n{table}");

    // What Prometheus says each container used over the window.
    let peak_memory = |name: &str| {
        prometheus
            .value(&format!(
                "max_over_time(container_memory_working_set_bytes{{name=\"{name}\"}}[{WINDOW}])"
            ))
            .unwrap_or_else(|| panic!("no working set of {name}"))
    };
    let steady_peak = STEADY.map(peak_memory).into_iter().fold(0.0, f64::max);
    // Over the last 20 s, which the burner ran through: a rate over a range the series
    // began in is divided by the whole range.
    let burner_mean = prometheus
        .value(&format!(
            "rate(container_cpu_usage_seconds_total{{name=\"{BURNER}\",cpu=\"total\"}}[20s])"
        ))
        .expect("the burner's CPU rate");
    let oom_kills = prometheus
        .value(&format!("container_oom_events_total{{name=\"{OOM}\"}}"))
        .expect("the OOM kill count");
    eprintln!(
        "measured: steady peak working set {:.1} MiB, burner {burner_mean:.3} CPUs on average, \
         {oom_kills} OOM kills; history ready after {history_ready:?}, recommend took {recommend_took:?}",
        steady_peak / MIB
    );
    assert!(
        (40.0 * MIB..48.0 * MIB).contains(&steady_peak),
        "the steady workload holds 40 MiB and little else: {steady_peak}"
    );
    // About 0.2 CPUs on an idle machine; less on a loaded one, where it gets only a share of
    // a core in the fifth of the time it may run. Either way some, and well under 0.5.
    assert!(
        (0.02..0.35).contains(&burner_mean),
        "the burner uses some CPU, well under its limit: {burner_mean}"
    );

    let policy = document::parse(&yaml).unwrap_or_else(|problems| {
        panic!("the recommendation is not a policy: {problems:#?}\n{yaml}")
    });
    let names: Vec<&str> = policy.rules.iter().map(|rule| rule.name.as_str()).collect();
    let (steady, burner, oom) = (
        format!("{PROJECT}/steady"),
        format!("{PROJECT}/burner"),
        format!("{PROJECT}/oom"),
    );
    assert_eq!(names, [burner.as_str(), oom.as_str(), steady.as_str()]);

    // Steady: the peak plus 15 %, rounded up by less than 25 %; lowered from 256 MiB; the
    // reservation holds the typical 40 MiB; idle CPU and tasks get the floors.
    let memory = bytes(rule_limit(&policy, &steady, Resource::Memory));
    assert!(
        memory >= steady_peak * 1.15 && memory < steady_peak * 1.15 * 1.25,
        "steady memory {memory} for a peak of {steady_peak}"
    );
    let reservation = bytes(rule_limit(&policy, &steady, Resource::MemoryReservation));
    assert!(
        reservation >= 40.0 * MIB && reservation <= memory,
        "reservation {reservation}"
    );
    assert_eq!(cpus(rule_limit(&policy, &steady, Resource::Cpus)), 0.1);
    assert_eq!(
        rule_limit(&policy, &steady, Resource::PidsLimit),
        LimitValue::Count(64)
    );
    let steady_json = json_rule(&json, &steady);
    assert_eq!(steady_json["containers"], serde_json::json!(STEADY));
    assert!(steady_json["evidence"]["samples"].as_u64().unwrap() >= 2 * HISTORY_SAMPLES as u64);

    // Burner: a high percentile of its rate plus 15 %, so at least its mean plus 15 %;
    // lowered from the 0.5 it never needed; rarely throttled.
    let burner_cpus = cpus(rule_limit(&policy, &burner, Resource::Cpus));
    assert!(
        burner_cpus >= burner_mean * 1.15 && burner_cpus <= 0.45,
        "burner cpus {burner_cpus} for a mean of {burner_mean}"
    );
    let burner_evidence = &json_rule(&json, &burner)["evidence"]["cpu"];
    let throttled = burner_evidence["throttled_share"].as_f64().unwrap();
    assert!(
        throttled < 0.5,
        "burner throttled in {throttled} of periods"
    );
    let burner_p95 = burner_evidence["at_percentile_cpus"].as_f64().unwrap();
    assert!(
        burner_p95 >= burner_mean * 0.9
            && burner_p95 <= burner_evidence["peak_cpus"].as_f64().unwrap()
    );

    // OOM-killed: raised from 32 MiB by at least 100 MiB (the VPA's bump), rounded up by
    // less than 25 %; never lowered.
    let oom_memory = bytes(rule_limit(&policy, &oom, Resource::Memory));
    assert!(
        (132.0 * MIB..132.0 * MIB * 1.25).contains(&oom_memory),
        "OOM-killed memory {oom_memory}"
    );
    let oom_json = json_rule(&json, &oom);
    assert!(
        oom_json["evidence"]["memory"]["oom_kills"]
            .as_u64()
            .unwrap()
            >= 1
    );
    assert_eq!(
        oom_json["limits"]["memory"]["why"],
        "raised after OOM kills"
    );
    assert!(yaml.contains("# now 32m; raised: "), "{yaml}");

    // The late container: no rule, and a comment saying why.
    assert!(
        yaml.contains(&format!(
            "  # compose service {PROJECT}/late: 1 container ({LATE}):\n  #   no rule: "
        )) && yaml.contains(&format!("less than --min-history={MIN_HISTORY}")),
        "{yaml}"
    );
    assert_eq!(json["skipped"][0]["name"], format!("{PROJECT}/late"));

    // The same numbers in every format.
    assert_eq!(
        json_rule(&json, &oom)["limits"]["memory"]["recommended"].as_f64(),
        Some(oom_memory)
    );
    let oom_text = stevedore::policy::units::format_docker_size(oom_memory as u64);
    assert!(
        table.contains(&format!("32m -> {oom_text}")),
        "the table shows now -> recommended: {table}"
    );

    // `policy check` accepts the file, `policy plan` shows the changes.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("recommended.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let file = file.to_str().unwrap();
    let (ok, stdout, stderr) = stevedore(&["policy", "check", file]);
    assert!(
        ok,
        "policy check refused the recommendation: {stdout}{stderr}"
    );
    assert!(stdout.contains("valid, 3 rules"), "{stdout}");
    let (ok, plan, stderr) = stevedore(&["policy", "plan", file]);
    assert!(ok, "policy plan: {stderr}");
    eprintln!("{plan}");
    for name in STEADY {
        assert!(plan.contains(&format!("{name} (")), "{plan}");
    }
    let memory_change =
        |from: u64, to: f64| format!("{} -> {}", format_bytes(from), format_bytes(to as u64));
    assert!(plan.contains(&memory_change(256 << 20, memory)), "{plan}");
    // Raising a limit after OOM kills is loosening it, and the plan says so.
    assert!(
        plan.contains(&format!(
            "{} (LOOSENS)",
            memory_change(32 << 20, oom_memory)
        )),
        "{plan}"
    );
    assert!(plan.contains(&format!("-> {burner_cpus}")), "{plan}");
    assert!(
        plan.contains("4 selected: 4 to change") && !plan.contains(LATE),
        "{plan}"
    );
    eprintln!("whole test: {:?}", started.elapsed());
}

/// Unreachable, not Prometheus, a window beyond the retention, no stevedore in it, and a
/// `--match` that selects nothing: each said in one line that says what to fix.
#[test]
fn errors_say_what_to_fix() {
    let refused = |args: &[&str]| {
        let (ok, stdout, stderr) = stevedore(args);
        assert!(!ok, "{args:?} succeeded: {stdout}");
        stderr
    };
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nowhere = format!("http://127.0.0.1:{closed_port}");
    let error = refused(&["recommend", "--prometheus.url", &nowhere]);
    assert!(
        error.starts_with(&format!(
            "stevedore: cannot reach Prometheus at {nowhere}: "
        )),
        "{error}"
    );

    let error = refused(&["recommend", "--prometheus.url", &nowhere, "--window", "12h"]);
    assert!(
        error.contains("--min-history=1d is longer than --window=12h"),
        "{error}"
    );

    let containers = Containers::new("recommend-errors");
    containers.run(&[
        "--name",
        "stevedore-rec-errors",
        common::IMAGE,
        "sleep",
        "600",
    ]);
    let exporter = Exporter::start(&["--no-collector.disk"]);
    let error = refused(&["recommend", "--prometheus.url", &exporter.url("")]);
    assert!(
        error.contains("is not answering as Prometheus does"),
        "the exporter is not Prometheus: {error}"
    );

    let prometheus = Prometheus::start(Setup {
        retention: Some("1h"),
        ..Setup::new("stevedore", &exporter.address)
    });
    let error = refused(&[
        "recommend",
        "--prometheus.url",
        &prometheus.url,
        "--window",
        "2h",
        "--min-history",
        "1h",
    ]);
    assert!(
        error.contains(&format!(
            "--window=2h is longer than Prometheus at {} keeps samples (its retention is 1h)",
            prometheus.url
        )),
        "{error}"
    );

    wait_for(
        "the container in Prometheus",
        Duration::from_secs(30),
        || {
            (prometheus.series("container_memory_working_set_bytes{name=\"stevedore-rec-errors\"}")
                == 1)
                .then_some(())
        },
    );
    let error = refused(&[
        "recommend",
        "--prometheus.url",
        &prometheus.url,
        "--window",
        "5m",
        "--min-history",
        "1s",
        "--match",
        "job=\"cadvisor\"",
    ]);
    assert!(
        error.contains("--match {job=\"cadvisor\"} selects none of the")
            && error.contains("stevedore's series are in job \"stevedore\""),
        "wrong job: {error}"
    );

    // A Prometheus that scrapes something, but no stevedore.
    let elsewhere = Prometheus::start(Setup::new("node", &format!("127.0.0.1:{closed_port}")));
    wait_for(
        "a scrape of the dead target",
        Duration::from_secs(30),
        || (elsewhere.series("up{job=\"node\"}") == 1).then_some(()),
    );
    let error = refused(&[
        "recommend",
        "--prometheus.url",
        &elsewhere.url,
        "--window",
        "1h",
        "--min-history",
        "1s",
    ]);
    assert!(
        error.contains("holds no stevedore series in the last 1h")
            && error.contains("The jobs it scrapes: \"node\"."),
        "{error}"
    );
}
