//! The community cAdvisor dashboards and alert rules that stevedore stands in for: reading
//! their queries (`shared/compat/queries.tsv`, kept beside the repository, never copied into
//! it), the few no Docker exporter alone can answer, and what to ask Prometheus to know
//! whether a query shows data.

use std::path::PathBuf;

/// Where the queries are: `shared/compat/` beside the repository (CI lays a copy of `shared/`
/// there too). See `SOURCES.md` in the same folder for where each query comes from.
pub fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/compat/queries.tsv")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A dashboard panel's query: shows data when it returns any.
    Panel,
    /// An alert rule's expression: it returns nothing while it does not fire, so its
    /// comparisons are asked for 0 or 1 instead (`bool`).
    Alert,
    /// A Grafana template variable (`label_values(...)`): an empty one empties every panel
    /// that uses it.
    Variable,
}

/// One row of the file.
#[derive(Debug, Clone)]
pub struct Query {
    /// `owner/repo:path` of the dashboard or rule file.
    pub source: String,
    pub kind: Kind,
    /// Panel title, alert name or variable name.
    pub title: String,
    pub expr: String,
}

/// Reads the file; panics with what is missing when it is not there.
pub fn read() -> Vec<Query> {
    let path = path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read the community cAdvisor queries at {}: {error}. They are not part of \
             the repository: the project's shared/ folder (with compat/queries.tsv) must lie \
             beside it.",
            path.display()
        )
    });
    let queries = parse(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    assert!(!queries.is_empty(), "{} holds no query", path.display());
    queries
}

pub fn parse(text: &str) -> Result<Vec<Query>, String> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, "source\tkind\ttitle\texpr")) => {}
        other => return Err(format!("header is {other:?}, not source/kind/title/expr")),
    }
    let mut queries = Vec::new();
    for (index, line) in lines.filter(|(_, line)| !line.trim().is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [source, kind, title, expr] = fields[..] else {
            return Err(format!(
                "line {}: {} fields, not 4",
                index + 1,
                fields.len()
            ));
        };
        let kind = match kind {
            "panel" => Kind::Panel,
            "alert" => Kind::Alert,
            "variable" => Kind::Variable,
            other => return Err(format!("line {}: unknown kind {other:?}", index + 1)),
        };
        queries.push(Query {
            source: source.to_owned(),
            kind,
            title: title.to_owned(),
            expr: expr.to_owned(),
        });
    }
    Ok(queries)
}

/// A query left out, by where it is and what it is called (every query of that name in that
/// file), with why no cAdvisor-compatible Docker exporter could make it show data.
pub struct Exclusion {
    pub source: &'static str,
    pub title: &'static str,
    pub reason: &'static str,
}

const NODE_CPU: &str = "divides by a count of node_exporter's CPUs (node_cpu_seconds_total)";
const OLD_NODE_CPU: &str =
    "divides by a count of node_exporter's CPUs under its pre-0.16 name (node_cpu)";
const KUBERNETES: &str = "selects container!=\"\" and groups by pod: labels the kubelet's \
     cAdvisor adds for Kubernetes; a Docker host's cAdvisor has neither";
const RELABELLED: &str =
    "a label the dashboard's own site adds by relabelling in its scrape configuration";

pub const EXCLUDED: &[Exclusion] = &[
    Exclusion {
        source: "stefanprodan/dockprom:grafana/provisioning/dashboards/docker_containers.json",
        title: "CPU Load",
        reason: NODE_CPU,
    },
    Exclusion {
        source: "stefanprodan/dockprom:grafana/provisioning/dashboards/docker_containers.json",
        title: "Container CPU Usage",
        reason: NODE_CPU,
    },
    Exclusion {
        source: "stefanprodan/dockprom:grafana/provisioning/dashboards/monitor_services.json",
        title: "Container CPU Usage",
        reason: "divides by a count of node_exporter's CPUs (node_cpu, and \
                 node_cpu_seconds_total in the second query)",
    },
    Exclusion {
        source: "stefanprodan/dockprom:grafana/provisioning/dashboards/nginx_container.json",
        title: "CPU usage",
        reason: NODE_CPU,
    },
    Exclusion {
        source: "stefanprodan/dockprom:prometheus/alert.rules",
        title: "jenkins_high_cpu",
        reason: NODE_CPU,
    },
    Exclusion {
        source: "vegasbrianc/prometheus:dashboards/Grafana_Dashboard.json",
        title: "CPU usage",
        reason: OLD_NODE_CPU,
    },
    Exclusion {
        source: "vegasbrianc/prometheus:Grafana Dashboard With Service.json",
        title: "CPU usage",
        reason: OLD_NODE_CPU,
    },
    Exclusion {
        source: "ranas-mukminov/Grafana-Docker-dashboard:10619_rev2.json",
        title: "CPU Usage per Container (Stacked)",
        reason: NODE_CPU,
    },
    Exclusion {
        source: "rainchen/docker-monitoring-quickstart:config/grafana/provisioning/dashboards/179-docker-prometheus-monitoring_rev7.json",
        title: "CPU usage",
        reason: NODE_CPU,
    },
    Exclusion {
        source: "samber/awesome-prometheus-alerts:_data/rules.yml#google/cAdvisor",
        title: "Container High CPU utilization",
        reason: KUBERNETES,
    },
    Exclusion {
        source: "samber/awesome-prometheus-alerts:_data/rules.yml#google/cAdvisor",
        title: "Container high throttle rate",
        reason: KUBERNETES,
    },
    Exclusion {
        source: "samber/awesome-prometheus-alerts:_data/rules.yml#google/cAdvisor",
        title: "Container Low CPU utilization",
        reason: KUBERNETES,
    },
    Exclusion {
        source: "rainchen/docker-monitoring-quickstart:config/grafana/provisioning/dashboards/11277-docker_rev1.json",
        title: "$project",
        reason: RELABELLED,
    },
    Exclusion {
        source: "rainchen/docker-monitoring-quickstart:config/grafana/provisioning/dashboards/11277-docker_rev1.json",
        title: "$server",
        reason: RELABELLED,
    },
];

pub fn exclusion(query: &Query) -> Option<&'static Exclusion> {
    EXCLUDED
        .iter()
        .find(|exclusion| exclusion.source == query.source && exclusion.title == query.title)
}

/// What to ask Prometheus; the query shows data when the answer is not empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// An instant query (`/api/v1/query`) that must return data.
    Instant(String),
    /// An instant query of `selector` that must return a series with a non-empty `label`
    /// (`label_values(selector, label)`).
    SeriesWithLabel { selector: String, label: String },
    /// A label that must have a value (`label_values(label)`: `/api/v1/label/<label>/values`).
    LabelValues(String),
}

impl Ask {
    /// What was asked, for a failure message.
    pub fn describe(&self) -> String {
        match self {
            Ask::Instant(expr) => expr.clone(),
            Ask::SeriesWithLabel { selector, label } => {
                format!("a series of {selector} with a {label} label")
            }
            Ask::LabelValues(label) => format!("a value of the label {label}"),
        }
    }
}

/// How to tell whether `query` shows data.
pub fn ask(query: &Query) -> Result<Ask, String> {
    match query.kind {
        Kind::Panel => Ok(Ask::Instant(query.expr.clone())),
        Kind::Alert => Ok(Ask::Instant(with_bool_comparisons(without_absent(
            &query.expr,
        )))),
        Kind::Variable => match label_values(&query.expr) {
            Some((Some(selector), label)) => Ok(Ask::SeriesWithLabel {
                selector: selector.to_owned(),
                label: label.to_owned(),
            }),
            Some((None, label)) => Ok(Ask::LabelValues(label.to_owned())),
            None => Err(format!(
                "not a label_values() variable query: {}",
                query.expr
            )),
        },
    }
}

/// A PromQL token, as far as these rewrites need to tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    /// A string literal, quotes included (`"…"`, `'…'` or `` `…` ``).
    String(&'a str),
    /// `(`, `{` or `[`.
    Open(char),
    /// `)`, `}` or `]`.
    Close(char),
    /// `==`, `!=`, `>=`, `<=`, `>` or `<` (a label matcher's `!=` too: the depth tells).
    Comparison(&'a str),
    /// A name: metric, label, function or keyword (`bool`, `by`, `offset`, …).
    Name(&'a str),
    /// A comma.
    Comma,
    /// Anything else: numbers, durations, arithmetic, `=`, `=~`, `!~`.
    Other(&'a str),
}

/// The tokens of `expr` with their byte ranges; whitespace and `#` comments are skipped.
fn tokens(expr: &str) -> Vec<(std::ops::Range<usize>, Token<'_>)> {
    let bytes = expr.as_bytes();
    let mut found = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let start = at;
        let byte = bytes[at];
        let token = match byte {
            b' ' | b'\t' | b'\r' | b'\n' => {
                at += 1;
                continue;
            }
            b'#' => {
                while at < bytes.len() && bytes[at] != b'\n' {
                    at += 1;
                }
                continue;
            }
            b'"' | b'\'' | b'`' => {
                at += 1;
                while at < bytes.len() && bytes[at] != byte {
                    // Backslash escapes, except in raw (backquoted) strings.
                    at += if bytes[at] == b'\\' && byte != b'`' {
                        2
                    } else {
                        1
                    };
                }
                at = (at + 1).min(bytes.len());
                Token::String(&expr[start..at])
            }
            b'(' | b'{' | b'[' => {
                at += 1;
                Token::Open(byte as char)
            }
            b')' | b'}' | b']' => {
                at += 1;
                Token::Close(byte as char)
            }
            b',' => {
                at += 1;
                Token::Comma
            }
            b'=' | b'!' | b'>' | b'<' => {
                let next = bytes.get(at + 1).copied();
                let length = match (byte, next) {
                    (b'=' | b'!' | b'>' | b'<', Some(b'=')) | (b'=' | b'!', Some(b'~')) => 2,
                    _ => 1,
                };
                at += length;
                let text = &expr[start..at];
                match text {
                    "==" | "!=" | ">=" | "<=" | ">" | "<" => Token::Comparison(text),
                    _ => Token::Other(text),
                }
            }
            byte if byte.is_ascii_alphabetic() || byte == b'_' || byte == b':' => {
                while at < bytes.len()
                    && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'_' || bytes[at] == b':')
                {
                    at += 1;
                }
                Token::Name(&expr[start..at])
            }
            byte if byte.is_ascii_digit() || byte == b'.' => {
                while at < bytes.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'.') {
                    at += 1;
                }
                Token::Other(&expr[start..at])
            }
            _ => {
                // One character (UTF-8 safe: only ASCII starts the arms above).
                at += expr[at..].chars().next().map_or(1, char::len_utf8);
                Token::Other(&expr[start..at])
            }
        };
        found.push((start..at, token));
    }
    found
}

/// `expr` with `bool` after each comparison of the whole expression (outside every
/// bracket: a comparison inside a function's argument, like `sum(x > 0)`, selects what
/// the alert looks at and stays a filter), so an alert that does not fire still returns
/// its data, as 0 or 1.
pub fn with_bool_comparisons(expr: &str) -> String {
    let tokens = tokens(expr);
    let mut depth = 0usize;
    let mut inserts = Vec::new();
    for (index, (range, token)) in tokens.iter().enumerate() {
        match token {
            Token::Open(_) => depth += 1,
            Token::Close(_) => depth = depth.saturating_sub(1),
            Token::Comparison(_) if depth == 0 => {
                let already = matches!(
                    tokens.get(index + 1),
                    Some((_, Token::Name(name))) if name.eq_ignore_ascii_case("bool")
                );
                if !already {
                    inserts.push(range.end);
                }
            }
            _ => {}
        }
    }
    let mut rewritten = String::with_capacity(expr.len() + 5 * inserts.len());
    let mut copied = 0;
    for at in inserts {
        rewritten.push_str(&expr[copied..at]);
        rewritten.push_str(" bool");
        if !expr[at..].starts_with(char::is_whitespace) {
            rewritten.push(' ');
        }
        copied = at;
    }
    rewritten.push_str(&expr[copied..]);
    rewritten
}

/// For `name(…)` as the whole expression: the text between its parentheses.
fn call_argument<'a>(expr: &'a str, name: &str) -> Option<&'a str> {
    let tokens = tokens(expr);
    let [(_, Token::Name(function)), (open, Token::Open('(')), ..] = &tokens[..] else {
        return None;
    };
    if *function != name {
        return None;
    }
    let mut depth = 0usize;
    for (index, (range, token)) in tokens.iter().enumerate().skip(1) {
        match token {
            Token::Open(_) => depth += 1,
            Token::Close(_) => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    // The call must be the whole expression.
                    return (index == tokens.len() - 1).then(|| &expr[open.end..range.start]);
                }
            }
            _ => {}
        }
    }
    None
}

/// `absent(X)` fires when `X` has no data: the data it watches is `X`'s.
pub fn without_absent(expr: &str) -> &str {
    call_argument(expr.trim(), "absent").map_or(expr, str::trim)
}

/// `label_values(selector, label)` → `(Some(selector), label)`; `label_values(label)` →
/// `(None, label)`.
pub fn label_values(expr: &str) -> Option<(Option<&str>, &str)> {
    let argument = call_argument(expr.trim(), "label_values")?;
    let mut depth = 0usize;
    let mut last_comma = None;
    for (range, token) in tokens(argument) {
        match token {
            Token::Open(_) => depth += 1,
            Token::Close(_) => depth = depth.saturating_sub(1),
            Token::Comma if depth == 0 => last_comma = Some(range),
            _ => {}
        }
    }
    let (selector, label) = match last_comma {
        Some(comma) => (
            Some(argument[..comma.start].trim()),
            argument[comma.end..].trim(),
        ),
        None => (None, argument.trim()),
    };
    let is_name = matches!(tokens(label)[..], [(_, Token::Name(_))]);
    (is_name && selector != Some("")).then_some((selector, label))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bool_goes_after_each_comparison_of_the_whole_expression() {
        assert_eq!(with_bool_comparisons("a > 1"), "a > bool 1");
        assert_eq!(with_bool_comparisons("a>1"), "a> bool 1");
        assert_eq!(with_bool_comparisons("a == b"), "a == bool b");
        assert_eq!(
            with_bool_comparisons("(x - y) * 100 >= 80 and z != 0"),
            "(x - y) * 100 >= bool 80 and z != bool 0"
        );
        assert_eq!(
            with_bool_comparisons("a <= 2 or b < 3"),
            "a <= bool 2 or b < bool 3"
        );
        assert_eq!(
            with_bool_comparisons("a > on(i) group_left b"),
            "a > bool on(i) group_left b"
        );
    }

    #[test]
    fn comparisons_inside_brackets_strings_and_matchers_stay() {
        assert_eq!(
            with_bool_comparisons("sum(m > 0) by (i) / n < 5"),
            "sum(m > 0) by (i) / n < bool 5"
        );
        assert_eq!(
            with_bool_comparisons(r#"m{a!="",b=~"x>y"} != 3"#),
            r#"m{a!="",b=~"x>y"} != bool 3"#
        );
        assert_eq!(
            with_bool_comparisons(r#"label_replace(m, "d", "$1", "s", "(<=)\"") > 1"#),
            r#"label_replace(m, "d", "$1", "s", "(<=)\"") > bool 1"#
        );
        assert_eq!(
            with_bool_comparisons("rate(m[5m] offset 1m) > 0"),
            "rate(m[5m] offset 1m) > bool 0"
        );
        assert_eq!(with_bool_comparisons("m{a='>'} > 1"), "m{a='>'} > bool 1");
        assert_eq!(with_bool_comparisons("m # a > 1"), "m # a > 1");
        assert_eq!(with_bool_comparisons("sum(m)"), "sum(m)");
    }

    #[test]
    fn a_comparison_that_has_bool_already_keeps_it() {
        assert_eq!(with_bool_comparisons("a > bool 1"), "a > bool 1");
        assert_eq!(with_bool_comparisons("a > BOOL 1"), "a > BOOL 1");
        assert_eq!(
            with_bool_comparisons("a > bool 1 and b > 2"),
            "a > bool 1 and b > bool 2"
        );
    }

    #[test]
    fn absent_of_the_whole_expression_is_unwrapped() {
        assert_eq!(without_absent(r#"absent(m{a="b"})"#), r#"m{a="b"}"#);
        assert_eq!(without_absent(" absent( sum(m) ) "), "sum(m)");
        assert_eq!(without_absent("absent(m) or n"), "absent(m) or n");
        assert_eq!(
            without_absent("absent_over_time(m[1m])"),
            "absent_over_time(m[1m])"
        );
        assert_eq!(without_absent("m"), "m");
    }

    #[test]
    fn label_values_is_split_into_its_selector_and_label() {
        assert_eq!(label_values("label_values(l)"), Some((None, "l")));
        assert_eq!(
            label_values(r#"label_values(m{a=~".*", b="x,y"}, l)"#),
            Some((Some(r#"m{a=~".*", b="x,y"}"#), "l"))
        );
        assert_eq!(
            label_values(r#"label_values(label_replace(m, "h", "$1", "i", "^(.*):\\d+$"), h)"#),
            Some((
                Some(r#"label_replace(m, "h", "$1", "i", "^(.*):\\d+$")"#),
                "h"
            ))
        );
        assert_eq!(label_values("query_result(m)"), None);
        assert_eq!(label_values("label_values(m, \"l\")"), None);
        assert_eq!(label_values("label_values(, l)"), None);
    }

    #[test]
    fn each_kind_is_asked_its_own_way() {
        let query = |kind, expr: &str| Query {
            source: "s".to_owned(),
            kind,
            title: "t".to_owned(),
            expr: expr.to_owned(),
        };
        assert_eq!(
            ask(&query(Kind::Panel, "m > 1")),
            Ok(Ask::Instant("m > 1".to_owned()))
        );
        assert_eq!(
            ask(&query(Kind::Alert, "m > 1")),
            Ok(Ask::Instant("m > bool 1".to_owned()))
        );
        assert_eq!(
            ask(&query(Kind::Alert, "absent(m)")),
            Ok(Ask::Instant("m".to_owned()))
        );
        assert_eq!(
            ask(&query(Kind::Variable, "label_values(m, l)")),
            Ok(Ask::SeriesWithLabel {
                selector: "m".to_owned(),
                label: "l".to_owned()
            })
        );
        assert_eq!(
            ask(&query(Kind::Variable, "label_values(l)")),
            Ok(Ask::LabelValues("l".to_owned()))
        );
        assert!(ask(&query(Kind::Variable, "m")).is_err());
    }

    #[test]
    fn the_file_format_is_checked() {
        let header = "source\tkind\ttitle\texpr\n";
        let queries = parse(&format!("{header}s\talert\tt\tm > 1\n\n")).unwrap();
        assert_eq!(queries.len(), 1);
        assert_eq!(queries[0].kind, Kind::Alert);
        assert_eq!(queries[0].expr, "m > 1");
        assert!(parse("source\texpr\n").is_err());
        assert!(parse(&format!("{header}s\tpanel\tt\n")).is_err());
        assert!(parse(&format!("{header}s\trecording\tt\tm\n")).is_err());
    }
}
