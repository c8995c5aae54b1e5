//! The recommendation as JSON, for programs: every number in its unit (bytes, CPUs,
//! tasks, seconds), limits now as numbers, `"unlimited"` or `null` (unknown).

use serde_json::{Value, json};

use super::Report;
use super::grouping::{Group, GroupKey};
use super::history::Current;
use super::render::{end_text, limits, why_text};
use super::sizing::{Outcome, Why};
use crate::policy::model::COMPOSE_PROJECT_LABEL;

fn current(limit: &Current) -> Value {
    match limit {
        Current::Unknown => Value::Null,
        Current::Unlimited => json!("unlimited"),
        Current::Set(value) => json!(value),
    }
}

fn why(why: &Why) -> &'static str {
    match why {
        Why::Usage => "usage",
        Why::Floor => "floor",
        Why::RaisedAfterOomKills { .. } => "raised after OOM kills",
        Why::RaisedWhenThrottled { .. } => "raised when throttled",
        Why::CappedAtHost { .. } => "capped at the host",
    }
}

/// The selector the rule writes, as `policy::document` reads it.
fn selection(group: &Group) -> (Value, Value) {
    let selector = match &group.key {
        GroupKey::Compose(service) => json!({
            "compose-project": service.project,
            "compose-service": service.service,
        }),
        GroupKey::Image(image) => json!({"image": glob::Pattern::escape(image)}),
        GroupKey::Container(name) => json!({"name": glob::Pattern::escape(name)}),
    };
    let exclude = if group.exclude_compose {
        json!({"labels": [COMPOSE_PROJECT_LABEL]})
    } else {
        Value::Null
    };
    (selector, exclude)
}

pub fn json(report: &Report) -> String {
    let mut rules = Vec::new();
    let mut skipped = Vec::new();
    for entry in &report.entries {
        let group = &entry.group;
        match &entry.outcome {
            Outcome::TooLittleHistory { history, samples } => skipped.push(json!({
                "name": group.name,
                "containers": group.container_names(),
                "history_seconds": history.as_secs_f64(),
                "samples": samples,
                "reason": "less history than --min-history",
            })),
            Outcome::Rule(sizing) => {
                let (selector, exclude) = selection(group);
                let mut limit_values = serde_json::Map::new();
                for limit in limits(sizing) {
                    limit_values.insert(
                        limit.key.to_owned(),
                        json!({
                            "recommended": limit.value,
                            "text": limit.text,
                            "current": limit.current.iter().map(current).collect::<Vec<_>>(),
                            "why": why(limit.why),
                            "note": why_text(limit.why, limit.kind),
                        }),
                    );
                }
                let evidence = &sizing.evidence;
                rules.push(json!({
                    "name": group.name,
                    "match": selector,
                    "exclude": exclude,
                    "containers": group.container_names(),
                    "limits": limit_values,
                    "evidence": {
                        "samples": evidence.samples,
                        "history_seconds": evidence.history.as_secs_f64(),
                        "memory": {
                            "peak_bytes": evidence.memory.peak,
                            "median_bytes": evidence.memory.median,
                            "oom_kills": evidence.memory.oom_kills,
                        },
                        "cpu": evidence.cpu.as_ref().map(|cpu| json!({
                            "at_percentile_cpus": cpu.at_percentile,
                            "peak_cpus": cpu.peak,
                            "throttled_share": cpu.throttled_share,
                        })),
                        "peak_tasks": evidence.peak_tasks,
                    },
                }));
            }
        }
    }
    let settings = &report.settings;
    let document = json!({
        "prometheus": report.prometheus,
        "end": end_text(report.window.end),
        "window_seconds": report.window.length.as_secs_f64(),
        "step_seconds": report.window.step.as_secs_f64(),
        "match": report.matchers.describe(),
        "settings": {
            "memory_headroom": settings.memory_headroom,
            "cpu_headroom": settings.cpu_headroom,
            "cpu_percentile": settings.cpu_percentile,
            "pids_headroom": settings.pids_headroom,
            "min_history_seconds": settings.min_history.as_secs_f64(),
        },
        "rules": rules,
        "skipped": skipped,
    });
    let mut text = serde_json::to_string_pretty(&document).expect("JSON values serialize");
    text.push('\n');
    text
}
