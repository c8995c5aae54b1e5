//! The recommendation as a policy file (YAML, in `policy::document`'s format, with the
//! evidence for each rule in comments), and the words and numbers the other formats share.

use std::fmt::Write;

use super::Report;
use super::arithmetic::CentiCpus;
use super::grouping::{Group, GroupKey};
use super::history::Current;
use super::sizing::{
    CPUS_FLOOR, MEMORY_FLOOR, OOM_BUMP_RATIO, OOM_MIN_BUMP, Outcome, PIDS_FLOOR, Recommended,
    Sizing, Why,
};
use crate::duration;
use crate::policy::model::COMPOSE_PROJECT_LABEL;
use crate::policy::units::{format_bytes_approximately, format_docker_size};

/// What a limit measures, for writing its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bytes,
    Cpus,
    Tasks,
}

/// A limit's value as a policy file writes it.
pub fn value_text(kind: Kind, value: f64) -> String {
    match kind {
        Kind::Bytes => {
            let exact = format_docker_size(value.max(0.0) as u64);
            // A size that is no round number of m or g (`97656.25k`) reads better
            // approximately.
            if exact.ends_with(['m', 'g']) || (value < 1048576.0 && exact.ends_with('k')) {
                exact
            } else {
                format_bytes_approximately(value)
            }
        }
        Kind::Cpus => {
            let hundredths = (value * 100.0).round() as u64;
            if (value * 100.0 - hundredths as f64).abs() < 1e-6 {
                CentiCpus(hundredths).to_string()
            } else {
                format!("{value:.3}")
            }
        }
        Kind::Tasks => format!("{}", value.round() as u64),
    }
}

/// The limits a group's containers have now: one value when they agree, else each.
pub fn current_text(kind: Kind, current: &[Current]) -> String {
    let mut texts: Vec<String> = Vec::new();
    for limit in current {
        let text = match limit {
            Current::Unknown => "unknown".to_owned(),
            Current::Unlimited => "none".to_owned(),
            Current::Set(value) => value_text(kind, *value),
        };
        if !texts.contains(&text) {
            texts.push(text);
        }
    }
    texts.join(", ")
}

/// The highest limit set now, when every container has one.
pub fn highest_current(current: &[Current]) -> Option<f64> {
    current
        .iter()
        .try_fold(None, |highest: Option<f64>, limit| match limit {
            Current::Set(value) => Some(Some(highest.map_or(*value, |h| h.max(*value)))),
            _ => None,
        })?
}

/// The change from now, for people: `-81%`, `+400%`, `same`, or `new` (no limit now).
pub fn change_text(kind: Kind, current: &[Current], recommended: f64) -> String {
    if current.contains(&Current::Unlimited) {
        return "new".to_owned();
    }
    let Some(highest) = highest_current(current) else {
        return "?".to_owned();
    };
    if value_text(kind, highest) == value_text(kind, recommended) {
        return "same".to_owned();
    }
    let percent = (recommended - highest) / highest * 100.0;
    format!("{percent:+.0}%")
}

/// Why a value is what it is, when it is not plainly usage with headroom.
pub fn why_text(why: &Why, kind: Kind) -> Option<String> {
    match why {
        Why::Usage => None,
        Why::Floor => Some("the floor".to_owned()),
        Why::RaisedAfterOomKills { kills, limit } => Some(format!(
            "raised: {kills} OOM kill{} under {}",
            if *kills == 1 { "" } else { "s" },
            value_text(kind, *limit)
        )),
        Why::RaisedWhenThrottled { share, limit } => Some(format!(
            "raised: throttled in {:.0}% of CFS periods under {}",
            share * 100.0,
            value_text(kind, *limit)
        )),
        Why::CappedAtHost { cpus } => Some(format!("capped at the host's {cpus} CPUs")),
    }
}

/// How a group is described: `compose service shop/web`, `image nginx:1.27`, `container web`.
pub fn group_text(group: &Group) -> String {
    let what = match &group.key {
        GroupKey::Compose(service) => {
            format!("compose service {}/{}", service.project, service.service)
        }
        GroupKey::Image(image) => format!("image {image}"),
        GroupKey::Container(name) => format!("container {name}"),
    };
    let names = group.container_names();
    let count = names.len();
    format!(
        "{what}: {count} container{} ({})",
        if count == 1 { "" } else { "s" },
        names.join(", ")
    )
}

/// A YAML double-quoted scalar holding `text` exactly.
pub fn yaml_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04x}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// One recommended limit of a rule, ready to write.
pub struct LimitLine<'a> {
    /// The policy key: `memory`, `cpus`, ...
    pub key: &'static str,
    pub kind: Kind,
    /// As the policy file writes it (`48m`, `0.25`).
    pub text: String,
    pub value: f64,
    pub current: &'a [Current],
    pub why: &'a Why,
}

/// The limits of a sizing, in the order a policy lists them.
pub fn limits(sizing: &Sizing) -> Vec<LimitLine<'_>> {
    fn line<'a, T>(
        key: &'static str,
        kind: Kind,
        text: String,
        value: f64,
        recommended: &'a Recommended<T>,
    ) -> LimitLine<'a> {
        LimitLine {
            key,
            kind,
            text,
            value,
            current: &recommended.current,
            why: &recommended.why,
        }
    }
    let mut limits = vec![
        line(
            "memory",
            Kind::Bytes,
            format_docker_size(sizing.memory.value),
            sizing.memory.value as f64,
            &sizing.memory,
        ),
        line(
            "memory-reservation",
            Kind::Bytes,
            format_docker_size(sizing.memory_reservation.value),
            sizing.memory_reservation.value as f64,
            &sizing.memory_reservation,
        ),
    ];
    if let Some(cpus) = &sizing.cpus {
        limits.push(line(
            "cpus",
            Kind::Cpus,
            cpus.value.to_string(),
            cpus.value.cpus(),
            cpus,
        ));
    }
    if let Some(pids) = &sizing.pids {
        limits.push(line(
            "pids-limit",
            Kind::Tasks,
            pids.value.to_string(),
            pids.value as f64,
            pids,
        ));
    }
    limits
}

fn percent(fraction: f64) -> String {
    format!("{}%", (fraction * 100.0 * 100.0).round() / 100.0)
}

fn ordinal(quantile: f64) -> String {
    let number = (quantile * 100.0 * 100.0).round() / 100.0;
    let suffix = match number as u64 % 100 {
        11..=13 => "th",
        n => match n % 10 {
            1 => "st",
            2 => "nd",
            3 => "rd",
            _ => "th",
        },
    };
    if number.fract() == 0.0 {
        format!("{number}{suffix}")
    } else {
        format!("{number}th")
    }
}

/// The end of the window, for people (RFC 3339, UTC).
pub fn end_text(end: f64) -> String {
    chrono::DateTime::from_timestamp(end as i64, 0)
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| format!("{end}"))
}

/// The policy file.
pub fn yaml(report: &Report) -> String {
    let mut out = String::new();
    header(report, &mut out);
    let rules = report
        .entries
        .iter()
        .filter(|entry| matches!(entry.outcome, Outcome::Rule(_)))
        .count();
    out.push_str(if rules == 0 {
        "rules: []\n"
    } else {
        "rules:\n"
    });
    for entry in &report.entries {
        let group = &entry.group;
        match &entry.outcome {
            Outcome::TooLittleHistory { history, samples } => {
                let _ = writeln!(
                    out,
                    "  # {}:\n  #   no rule: {} of history ({samples} samples), less than --min-history={}",
                    group_text(group),
                    duration::format(*history),
                    duration::format(report.settings.min_history)
                );
            }
            Outcome::Rule(sizing) => rule(group, sizing, report, &mut out),
        }
    }
    out
}

fn header(report: &Report, out: &mut String) {
    let settings = &report.settings;
    let window = &report.window;
    let _ = writeln!(
        out,
        "# Limits recommended by `stevedore recommend` from the history in Prometheus at\n\
         # {}: {} up to {}, a point every {}{}.",
        report.prometheus,
        duration::format(window.length),
        end_text(window.end),
        duration::format(window.step),
        if report.matchers.is_empty() {
            String::new()
        } else {
            format!(", containers matching {}", report.matchers.describe())
        }
    );
    let _ = writeln!(
        out,
        "#   memory:             the peak working set + {}; after OOM kills under a limit, at least\n\
         #                       {OOM_BUMP_RATIO} times that limit and {} more (never lower)\n\
         #   memory-reservation: the median working set\n\
         #   cpus:               the {} percentile of the CPU rate over each {} + {}; throttled in\n\
         #                       most CFS periods: at least the limit + {} (never lower)\n\
         #   pids-limit:         the peak task count + {}",
        percent(settings.memory_headroom),
        format_docker_size(OOM_MIN_BUMP),
        ordinal(settings.cpu_percentile),
        duration::format(window.step),
        percent(settings.cpu_headroom),
        percent(settings.cpu_headroom),
        percent(settings.pids_headroom),
    );
    let _ = writeln!(
        out,
        "# Rounded up to values people write: sizes and task counts to 1, 1.25, 1.5 or 1.75 times\n\
         # a power of two (less than 25% more), cpus to 0.05 below 1 CPU, 0.25 below 4, 0.5 beyond.\n\
         # Floors: memory {}, cpus {CPUS_FLOOR}, pids-limit {PIDS_FLOOR}. Containers with less than {} of\n\
         # history get no rule.\n\
         #\n\
         # Check:   stevedore policy check FILE\n\
         # Preview: stevedore policy plan FILE\n\
         # Apply:   stevedore --policy.file=FILE --policy.mode=enforce",
        format_docker_size(MEMORY_FLOOR),
        duration::format(settings.min_history),
    );
}

fn rule(group: &Group, sizing: &Sizing, report: &Report, out: &mut String) {
    let evidence = &sizing.evidence;
    let _ = writeln!(out, "  # {}", group_text(group));
    let _ = writeln!(
        out,
        "  #   history: {} samples over {}",
        evidence.samples,
        duration::format(evidence.history)
    );
    let memory = &evidence.memory;
    let _ = writeln!(
        out,
        "  #   memory: peak {}, median {}; limit now {}; {}",
        format_bytes_approximately(memory.peak),
        format_bytes_approximately(memory.median),
        current_text(Kind::Bytes, &sizing.memory.current),
        match memory.oom_kills {
            0 => "no OOM kills".to_owned(),
            1 => "1 OOM kill".to_owned(),
            kills => format!("{kills} OOM kills"),
        }
    );
    match (&evidence.cpu, &sizing.cpus) {
        (Some(cpu), Some(cpus)) => {
            let _ = writeln!(
                out,
                "  #   cpu: {} percentile {:.3}, peak {:.3}; limit now {}; {}",
                ordinal(report.settings.cpu_percentile),
                cpu.at_percentile,
                cpu.peak,
                current_text(Kind::Cpus, &cpus.current),
                match cpu.throttled_share {
                    Some(share) => format!("throttled in {} of CFS periods", percent(share)),
                    None => "no CFS periods (no CPU limit)".to_owned(),
                }
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "  #   cpu: no CPU rate over {} steps (a step must hold two scrapes: see --step); \
                 cpus left out",
                duration::format(report.window.step)
            );
        }
    }
    match (evidence.peak_tasks, &sizing.pids) {
        (Some(peak), Some(pids)) => {
            let _ = writeln!(
                out,
                "  #   tasks: peak {}; limit now {}",
                value_text(Kind::Tasks, peak),
                current_text(Kind::Tasks, &pids.current)
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "  #   tasks: no count in the window; pids-limit left out"
            );
        }
    }
    let _ = writeln!(out, "  - name: {}", yaml_string(&group.name));
    let _ = writeln!(out, "    match:");
    match &group.key {
        GroupKey::Compose(service) => {
            let _ = writeln!(
                out,
                "      compose-project: {}",
                yaml_string(&service.project)
            );
            let _ = writeln!(
                out,
                "      compose-service: {}",
                yaml_string(&service.service)
            );
        }
        GroupKey::Image(image) => {
            let _ = writeln!(
                out,
                "      image: {}",
                yaml_string(&glob::Pattern::escape(image))
            );
        }
        GroupKey::Container(name) => {
            let _ = writeln!(
                out,
                "      name: {}",
                yaml_string(&glob::Pattern::escape(name))
            );
        }
    }
    if group.exclude_compose {
        let _ = writeln!(
            out,
            "    exclude: {{labels: [{}]}}   # compose services have rules of their own",
            yaml_string(COMPOSE_PROJECT_LABEL)
        );
    }
    let _ = writeln!(out, "    limits:");
    for limit in limits(sizing) {
        let mut notes = vec![format!("now {}", current_text(limit.kind, limit.current))];
        notes.extend(why_text(limit.why, limit.kind));
        let line = format!("      {}: {}", limit.key, limit.text);
        let _ = writeln!(out, "{line:<34}# {}", notes.join("; "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::check::{Host, check};
    use crate::policy::document;
    use crate::recommend::api::Point;
    use crate::recommend::grouping::{GroupBy, group};
    use crate::recommend::history::{ComposeService, ContainerHistory, CurrentLimits, Window};
    use crate::recommend::selector::Matchers;
    use crate::recommend::sizing::{Settings, size};
    use crate::recommend::{Entry, Format};
    use std::time::Duration;

    fn history(name: &str, image: &str, service: Option<&str>, points: usize) -> ContainerHistory {
        let series = |value: f64| -> Vec<Point> {
            (0..points)
                .map(|index| Point {
                    time: 1000.0 - index as f64 * 60.0,
                    value,
                })
                .rev()
                .collect()
        };
        ContainerHistory {
            compose: service.map(|service| ComposeService {
                project: "shop".to_owned(),
                service: service.to_owned(),
            }),
            working_set: series(300.0 * 1048576.0),
            cpu_rate: series(0.7),
            tasks: series(12.0),
            oom_kills: series(0.0),
            samples: points as u64 * 4,
            limits: CurrentLimits {
                memory: Current::Set(1024.0 * 1048576.0),
                ..CurrentLimits::default()
            },
            host_cpus: Some(2.0),
            ..ContainerHistory::without_history(name, image)
        }
    }

    fn report(histories: Vec<ContainerHistory>, by: GroupBy) -> Report {
        let window = Window::ending_at(1000.0, Duration::from_secs(3600), Duration::from_secs(60));
        let settings = Settings {
            memory_headroom: 0.15,
            cpu_headroom: 0.15,
            cpu_percentile: 0.95,
            pids_headroom: 1.0,
            min_history: Duration::from_secs(1800),
        };
        Report {
            prometheus: "http://prometheus:9090".to_owned(),
            window,
            settings,
            matchers: Matchers::default(),
            entries: group(histories, by)
                .into_iter()
                .map(|group| Entry {
                    outcome: size(&group, &window, &settings),
                    group,
                })
                .collect(),
        }
    }

    fn host() -> Host {
        Host {
            cpus: 2,
            devices: crate::devices::DeviceNames::from_partitions("major minor  #blocks  name\n")
                .unwrap(),
        }
    }

    #[test]
    fn the_policy_file_reads_back_and_passes_its_checks() {
        let report = report(
            vec![
                history("shop-web-1", "nginx:1.27", Some("web"), 60),
                history("shop-web-2", "nginx:1.27", Some("web"), 60),
                history("proxy", "nginx:1.27", None, 60),
                history("[odd]", "weird/image:*", None, 60),
                history("young", "app:2", None, 10),
            ],
            GroupBy::Service,
        );
        assert_eq!(report.rules(), 3);
        let text = report.render(Format::Yaml);
        let policy =
            document::parse(&text).unwrap_or_else(|problems| panic!("{problems:#?}\n{text}"));
        assert_eq!(check(&policy, &host()), [], "{text}");
        let names: Vec<&str> = policy.rules.iter().map(|rule| rule.name.as_str()).collect();
        assert_eq!(names, ["nginx:1.27", "weird/image:*", "shop/web"]);
        // Image rules leave compose containers to their service's rule.
        let labels = std::collections::BTreeMap::from([
            ("com.docker.compose.project".to_owned(), "shop".to_owned()),
            ("com.docker.compose.service".to_owned(), "web".to_owned()),
        ]);
        let web = crate::policy::model::ContainerFacts {
            name: "shop-web-1",
            image: "nginx:1.27",
            labels: &labels,
        };
        assert!(!policy.rules[0].selects(&web));
        assert!(policy.rules[2].selects(&web));
        let none = std::collections::BTreeMap::new();
        let odd = crate::policy::model::ContainerFacts {
            name: "[odd]",
            image: "weird/image:*",
            labels: &none,
        };
        assert!(
            policy.rules[1].selects(&odd),
            "a glob character in an image is escaped"
        );
        let other = crate::policy::model::ContainerFacts {
            image: "weird/image:x",
            ..odd
        };
        assert!(!policy.rules[1].selects(&other));
        // 300 MiB + 15 %: 345 MiB, up to 384m; 0.7 CPUs + 15 %: 0.805, up to 0.85.
        assert!(
            text.contains("      memory: 384m                # now 1g\n"),
            "{text}"
        );
        assert!(
            text.contains("      cpus: 0.85                  # now unknown\n"),
            "{text}"
        );
        assert!(
            text.contains("  # image app:2: 1 container (young):\n  #   no rule: 10m of history"),
            "{text}"
        );

        let by_name = report_yaml_names(GroupBy::Container);
        assert_eq!(by_name, ["[odd]", "proxy", "shop-web-1", "shop-web-2"]);
    }

    fn report_yaml_names(by: GroupBy) -> Vec<String> {
        let report = report(
            vec![
                history("shop-web-1", "nginx:1.27", Some("web"), 60),
                history("shop-web-2", "nginx:1.27", Some("web"), 60),
                history("proxy", "nginx:1.27", None, 60),
                history("[odd]", "weird/image:*", None, 60),
            ],
            by,
        );
        let text = report.render(Format::Yaml);
        let policy = document::parse(&text).unwrap();
        assert_eq!(check(&policy, &host()), []);
        policy.rules.into_iter().map(|rule| rule.name).collect()
    }

    #[test]
    fn without_history_enough_the_file_has_no_rules() {
        let report = report(vec![history("young", "app:2", None, 10)], GroupBy::Service);
        assert_eq!(report.rules(), 0);
        let text = report.render(Format::Yaml);
        assert!(text.contains("rules: []\n"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&report.render(Format::Json)).unwrap();
        assert_eq!(json["rules"], serde_json::json!([]));
        assert_eq!(json["skipped"][0]["history_seconds"], 600.0);
        assert!(
            report
                .render(Format::Table)
                .contains("(no rules)\nno rule for image app:2")
        );
    }

    #[test]
    fn values_as_a_policy_writes_them() {
        assert_eq!(value_text(Kind::Bytes, 268_435_456.0), "256m");
        assert_eq!(value_text(Kind::Bytes, 100_000_000.0), "95.4MiB");
        assert_eq!(value_text(Kind::Cpus, 0.5), "0.5");
        assert_eq!(value_text(Kind::Cpus, 1.0 / 3.0), "0.333");
        assert_eq!(value_text(Kind::Tasks, 64.0), "64");
    }

    #[test]
    fn current_limits_and_changes() {
        let mib = |n: f64| Current::Set(n * 1024.0 * 1024.0);
        assert_eq!(current_text(Kind::Bytes, &[mib(256.0), mib(256.0)]), "256m");
        assert_eq!(
            current_text(
                Kind::Bytes,
                &[mib(256.0), Current::Unlimited, Current::Unknown]
            ),
            "256m, none, unknown"
        );
        assert_eq!(
            change_text(Kind::Bytes, &[mib(256.0)], 48.0 * 1048576.0),
            "-81%"
        );
        assert_eq!(
            change_text(Kind::Bytes, &[mib(32.0)], 160.0 * 1048576.0),
            "+400%"
        );
        assert_eq!(change_text(Kind::Cpus, &[Current::Set(0.5)], 0.5), "same");
        assert_eq!(change_text(Kind::Cpus, &[Current::Unlimited], 0.5), "new");
        assert_eq!(change_text(Kind::Cpus, &[Current::Unknown], 0.5), "?");
        assert_eq!(
            highest_current(&[mib(1.0), mib(2.0)]),
            Some(2.0 * 1048576.0)
        );
        assert_eq!(highest_current(&[mib(1.0), Current::Unlimited]), None);
    }

    #[test]
    fn words_for_people() {
        assert_eq!(ordinal(0.95), "95th");
        assert_eq!(ordinal(0.9), "90th");
        assert_eq!(ordinal(0.99), "99th");
        assert_eq!(ordinal(0.51), "51st");
        assert_eq!(ordinal(0.995), "99.5th");
        assert_eq!(percent(0.15), "15%");
        assert_eq!(percent(0.0234), "2.34%");
        assert_eq!(
            yaml_string("nginx:1.27 \"x\" \\"),
            "\"nginx:1.27 \\\"x\\\" \\\\\""
        );
        assert_eq!(end_text(0.0), "1970-01-01T00:00:00Z");
    }
}
