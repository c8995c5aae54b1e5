//! The recommendation as a table for people: each limit now and recommended, and the
//! change; the evidence stays in the YAML.

use std::fmt::Write;

use super::Report;
use super::render::{change_text, current_text, group_text, limits, why_text};
use super::sizing::Outcome;
use crate::duration;

pub fn table(report: &Report) -> String {
    let header = ["RULE", "LIMIT", "NOW -> RECOMMENDED", "CHANGE", "WHY"];
    let mut rows: Vec<[String; 5]> = Vec::new();
    let mut skipped = Vec::new();
    for entry in &report.entries {
        let Outcome::Rule(sizing) = &entry.outcome else {
            if let Outcome::TooLittleHistory { history, .. } = &entry.outcome {
                skipped.push(format!(
                    "{}: {} of history, less than --min-history={}",
                    group_text(&entry.group),
                    duration::format(*history),
                    duration::format(report.settings.min_history)
                ));
            }
            continue;
        };
        for (index, limit) in limits(sizing).into_iter().enumerate() {
            rows.push([
                if index == 0 {
                    entry.group.name.clone()
                } else {
                    String::new()
                },
                limit.key.to_owned(),
                format!(
                    "{} -> {}",
                    current_text(limit.kind, limit.current),
                    limit.text
                ),
                change_text(limit.kind, limit.current, limit.value),
                why_text(limit.why, limit.kind).unwrap_or_default(),
            ]);
        }
    }
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut text = String::new();
        for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if index + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<width$}  ");
            }
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    line(&header);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    if rows.is_empty() {
        let _ = writeln!(out, "(no rules)");
    }
    for note in skipped {
        let _ = writeln!(out, "no rule for {note}");
    }
    out
}
