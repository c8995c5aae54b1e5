//! Reading a policy file (YAML) into a `Policy`, with every problem placed at its line and
//! column. A pure function of the file's text.
//!
//! ```yaml
//! rules:
//!   - name: web                       # optional; default rule-<n>
//!     match:                          # optional; every criterion must hold
//!       name: "shop-web-*"            # container name glob
//!       image: "nginx:*"              # image glob
//!       labels: ["tier=front", "monitored", "env!=dev"]
//!       compose-project: shop
//!       compose-service: web
//!     exclude:                        # a selector, or a list of them
//!       name: "*-debug"
//!     limits:                         # docker run's names and notation
//!       memory: 512m
//!       cpus: 1.5
//!       device-write-bps: ["/dev/sda:10mb"]
//!     defaults:                       # only where the container has no such limit
//!       pids-limit: 500
//! ```

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

use super::model::{
    LabelMatch, Policy, Position, Resource, Rule, Selector, Setting, Spanned, Throttle, Value,
};
use super::units::parse_size;

/// Something wrong with the file, where it is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    pub position: Position,
    pub message: String,
}

impl Problem {
    pub fn at(position: Position, message: impl Into<String>) -> Problem {
        Problem {
            position,
            message: message.into(),
        }
    }
}

const TOP_KEYS: [&str; 1] = ["rules"];
const RULE_KEYS: [&str; 5] = ["name", "match", "exclude", "limits", "defaults"];
const SELECTOR_KEYS: [&str; 5] = [
    "name",
    "image",
    "labels",
    "compose-project",
    "compose-service",
];

fn position(node: &MarkedYaml) -> Position {
    Position {
        line: node.span.start.line(),
        column: node.span.start.col() + 1,
    }
}

/// Parses the text of a policy file. Every problem found is returned, not just the first.
pub fn parse(text: &str) -> Result<Policy, Vec<Problem>> {
    let (policy, problems) = parse_partial(text);
    if problems.is_empty() {
        Ok(policy)
    } else {
        Err(problems)
    }
}

/// The policy as far as it could be read, and the problems found on the way: what is
/// wrong is left out, so the rest can still be checked.
pub fn parse_partial(text: &str) -> (Policy, Vec<Problem>) {
    let documents = match MarkedYaml::load_from_str(text) {
        Ok(documents) => documents,
        Err(error) => {
            let marker = error.marker();
            let problem = Problem::at(
                Position {
                    line: marker.line(),
                    column: marker.col() + 1,
                },
                format!("this is not valid YAML: {}", error.info()),
            );
            return (Policy::default(), vec![problem]);
        }
    };
    let mut reader = Reader::default();
    let policy = match documents.as_slice() {
        [] => {
            reader.problem(
                Position { line: 1, column: 1 },
                "the file is empty; a policy starts with `rules:`",
            );
            Policy::default()
        }
        [document] => reader.policy(document),
        [_, second, ..] => {
            reader.problem(
                position(second),
                "a policy file holds one YAML document; remove the `---` and what follows",
            );
            Policy::default()
        }
    };
    reader.problems.sort();
    (policy, reader.problems)
}

#[derive(Default)]
struct Reader {
    problems: Vec<Problem>,
}

type Entries<'a, 'input> = Vec<(String, &'a MarkedYaml<'input>, &'a MarkedYaml<'input>)>;

impl Reader {
    fn problem(&mut self, position: Position, message: impl Into<String>) {
        self.problems.push(Problem::at(position, message));
    }

    /// The entries of a mapping with string keys; problems for anything else.
    fn mapping<'a, 'input>(
        &mut self,
        node: &'a MarkedYaml<'input>,
        what: &str,
        allowed: &[&str],
    ) -> Entries<'a, 'input> {
        let YamlData::Mapping(mapping) = &node.data else {
            self.problem(
                position(node),
                format!(
                    "{what} must be a mapping with the keys {}",
                    allowed.join(", ")
                ),
            );
            return Vec::new();
        };
        let mut entries = Vec::new();
        for (key, value) in mapping {
            let Some(name) = scalar_text(key) else {
                self.problem(position(key), format!("keys of {what} are words"));
                continue;
            };
            if !allowed.contains(&name.as_str()) {
                let hint = closest(&name, allowed)
                    .map(|close| format!("; did you mean `{close}`?"))
                    .unwrap_or_else(|| format!("; {what} takes {}", allowed.join(", ")));
                self.problem(
                    position(key),
                    format!("unknown key `{name}` in {what}{hint}"),
                );
                continue;
            }
            entries.push((name, key, value));
        }
        entries
    }

    fn policy(&mut self, document: &MarkedYaml) -> Policy {
        let mut policy = Policy::default();
        for (key, _, value) in self.mapping(document, "the policy", &TOP_KEYS) {
            if key == "rules" {
                let YamlData::Sequence(rules) = &value.data else {
                    self.problem(position(value), "`rules` must be a list of rules");
                    continue;
                };
                for (index, rule) in rules.iter().enumerate() {
                    if let Some(rule) = self.rule(rule, index) {
                        policy.rules.push(rule);
                    }
                }
            }
        }
        if policy.rules.is_empty() && self.problems.is_empty() {
            self.problem(position(document), "the policy has no rules");
        }
        let mut first_use: HashMap<&str, Position> = HashMap::with_capacity(policy.rules.len());
        let mut duplicates = Vec::new();
        for rule in &policy.rules {
            match first_use.entry(&rule.name) {
                Entry::Occupied(first) => duplicates.push(Problem::at(
                    rule.position,
                    format!(
                        "rule name `{}` is already used at line {}; metrics tell rules apart by name",
                        rule.name,
                        first.get().line
                    ),
                )),
                Entry::Vacant(vacant) => {
                    vacant.insert(rule.position);
                }
            }
        }
        self.problems.extend(duplicates);
        policy
    }

    fn rule(&mut self, node: &MarkedYaml, index: usize) -> Option<Rule> {
        let mut rule = Rule {
            name: format!("rule-{}", index + 1),
            position: position(node),
            selector: Selector {
                position: position(node),
                ..Selector::default()
            },
            excludes: Vec::new(),
            limits_position: position(node),
            limits_written: 0,
            limits: Vec::new(),
            defaults: Vec::new(),
        };
        let mut has_limits = false;
        for (key, key_node, value) in self.mapping(node, "a rule", &RULE_KEYS) {
            match key.as_str() {
                "name" => match scalar_text(value).filter(|name| !name.is_empty()) {
                    Some(name) => rule.name = name,
                    None => self.problem(position(value), "a rule's `name` is a word"),
                },
                "match" => rule.selector = self.selector(value, "`match`"),
                "exclude" => match &value.data {
                    YamlData::Sequence(items) => {
                        for item in items {
                            rule.excludes.push(self.selector(item, "`exclude`"));
                        }
                    }
                    _ => rule.excludes.push(self.selector(value, "`exclude`")),
                },
                "limits" | "defaults" => {
                    if !has_limits {
                        rule.limits_position = position(key_node);
                    }
                    has_limits = true;
                    if let YamlData::Mapping(entries) = &value.data {
                        rule.limits_written += entries.len();
                    }
                    let settings = self.limits(value, &key);
                    if key == "limits" {
                        rule.limits = settings;
                    } else {
                        rule.defaults = settings;
                    }
                }
                _ => unreachable!("keys are checked against RULE_KEYS"),
            }
        }
        if !has_limits {
            self.problem(
                rule.position,
                format!(
                    "rule `{}` has no `limits` or `defaults`; a rule declares the limits of the containers it selects",
                    rule.name
                ),
            );
        }
        Some(rule)
    }

    fn selector(&mut self, node: &MarkedYaml, what: &str) -> Selector {
        let mut selector = Selector {
            position: position(node),
            ..Selector::default()
        };
        if matches!(node.data, YamlData::Value(Scalar::Null)) {
            return selector;
        }
        for (key, _, value) in self.mapping(node, what, &SELECTOR_KEYS) {
            match key.as_str() {
                "name" | "image" => {
                    let Some(text) = self.text(value, &format!("`{key}` in {what}")) else {
                        continue;
                    };
                    match glob::Pattern::new(&text.value) {
                        Ok(pattern) => {
                            let pattern = Some(Spanned {
                                value: pattern,
                                position: text.position,
                            });
                            if key == "name" {
                                selector.name = pattern;
                            } else {
                                selector.image = pattern;
                            }
                        }
                        Err(error) => self.problem(
                            text.position,
                            format!("`{}` is not a glob pattern: {error}", text.value),
                        ),
                    }
                }
                "compose-project" | "compose-service" => {
                    let text = self.text(value, &format!("`{key}` in {what}"));
                    if key == "compose-project" {
                        selector.compose_project = text;
                    } else {
                        selector.compose_service = text;
                    }
                }
                "labels" => {
                    let items: Vec<&MarkedYaml> = match &value.data {
                        YamlData::Sequence(items) => items.iter().collect(),
                        _ => vec![value],
                    };
                    for item in items {
                        let Some(text) = self.text(item, "a label selector") else {
                            continue;
                        };
                        match label_match(&text.value) {
                            Ok(matcher) => selector.labels.push(Spanned {
                                value: matcher,
                                position: text.position,
                            }),
                            Err(message) => self.problem(text.position, message),
                        }
                    }
                }
                _ => unreachable!("keys are checked against SELECTOR_KEYS"),
            }
        }
        selector
    }

    fn text(&mut self, node: &MarkedYaml, what: &str) -> Option<Spanned<String>> {
        match scalar_text(node) {
            Some(value) => Some(Spanned {
                value,
                position: position(node),
            }),
            None => {
                self.problem(position(node), format!("{what} must be a single value"));
                None
            }
        }
    }

    /// The entries of `limits:` or `defaults:` (`section`).
    fn limits(&mut self, node: &MarkedYaml, section: &str) -> Vec<Spanned<Setting>> {
        let mut limits = Vec::new();
        for (key, _, value) in self.mapping(node, &format!("`{section}`"), &Resource::keys()) {
            let at = position(value);
            let throttle = Throttle::ALL
                .into_iter()
                .find(|throttle| throttle.docker_name() == key);
            if let Some(throttle) = throttle {
                let items: Vec<&MarkedYaml> = match &value.data {
                    YamlData::Sequence(items) => items.iter().collect(),
                    _ => vec![value],
                };
                for item in items {
                    match scalar_text(item)
                        .ok_or_else(|| {
                            format!("`{key}` entries are `/dev/path:rate`, e.g. /dev/sda:10mb")
                        })
                        .and_then(|text| device_limit(throttle, &text))
                    {
                        Ok(setting) => limits.push(Spanned {
                            value: setting,
                            position: position(item),
                        }),
                        Err(message) => self.problem(position(item), message),
                    }
                }
                continue;
            }
            match setting(&key, value) {
                Ok(setting) => limits.push(Spanned {
                    value: setting,
                    position: at,
                }),
                Err(message) => self.problem(at, message),
            }
        }
        limits
    }
}

/// A scalar's text as written (numbers and words alike); `None` for lists and maps.
fn scalar_text(node: &MarkedYaml) -> Option<String> {
    match &node.data {
        YamlData::Value(Scalar::String(text)) => Some(text.to_string()),
        YamlData::Value(Scalar::Integer(number)) => Some(number.to_string()),
        YamlData::Value(Scalar::FloatingPoint(number)) => Some(number.to_string()),
        YamlData::Value(Scalar::Boolean(value)) => Some(value.to_string()),
        _ => None,
    }
}

fn label_match(text: &str) -> Result<LabelMatch, String> {
    let invalid = || format!("label selector `{text}` is not `key`, `key=value` or `key!=value`");
    let (matcher, key) = if let Some((key, value)) = text.split_once("!=") {
        (
            LabelMatch::NotEquals(key.trim().to_owned(), value.trim().to_owned()),
            key,
        )
    } else if let Some((key, value)) = text.split_once('=') {
        (
            LabelMatch::Equals(key.trim().to_owned(), value.trim().to_owned()),
            key,
        )
    } else {
        (LabelMatch::Present(text.trim().to_owned()), text)
    };
    if key.trim().is_empty() {
        return Err(invalid());
    }
    Ok(matcher)
}

fn setting(key: &str, node: &MarkedYaml) -> Result<Setting, String> {
    let resource = Resource::from_key(key)
        .unwrap_or_else(|| unreachable!("{key} is checked against Resource::keys()"));
    let text = scalar_text(node).ok_or_else(|| format!("`{key}` takes a single value"))?;
    let value = match resource {
        Resource::Memory | Resource::MemoryReservation => {
            Value::Bytes(parse_size(&text).map_err(|error| format!("`{key}`: {error}"))?)
        }
        Resource::MemorySwap if text.trim() == "-1" => Value::Unlimited,
        Resource::MemorySwap => Value::Bytes(
            parse_size(&text)
                .map_err(|error| format!("`{key}`: {error} (or -1 for unlimited swap)"))?,
        ),
        Resource::Cpus => {
            let cpus: f64 = text
                .trim()
                .parse()
                .map_err(|_| format!("`cpus` is a number of CPUs, e.g. 1.5; not `{text}`"))?;
            if !(cpus > 0.0 && cpus.is_finite()) {
                return Err(format!("`cpus` must be more than 0; not `{text}`"));
            }
            Value::Cpus(cpus)
        }
        Resource::PidsLimit => match text.trim().parse::<i64>() {
            Ok(-1) | Ok(0) => Value::Unlimited,
            Ok(limit) if limit > 0 => Value::Count(limit as u64),
            _ => {
                return Err(format!(
                    "`pids-limit` is a whole number of tasks (or -1 for unlimited); not `{text}`"
                ));
            }
        },
        Resource::CpuQuota if text.trim() == "-1" => Value::Unlimited,
        Resource::CpuShares | Resource::CpuPeriod | Resource::CpuQuota | Resource::BlkioWeight => {
            Value::Count(
                text.trim()
                    .parse::<u64>()
                    .map_err(|_| format!("`{key}` is a whole number; not `{text}`"))?,
            )
        }
        Resource::CpusetCpus | Resource::CpusetMems => {
            let list = text.trim().to_owned();
            crate::cgroup::parse::cpu_list_len(&list)
                .map_err(|_| format!("`{key}` is a list like 0-3,6; not `{text}`"))?;
            Value::List(list)
        }
        Resource::Device(..) => unreachable!("device limits are read apart"),
    };
    Ok(Setting { resource, value })
}

fn device_limit(throttle: Throttle, text: &str) -> Result<Setting, String> {
    let key = throttle.docker_name();
    let example = if throttle.is_bytes() { "10mb" } else { "100" };
    let (path, rate) = text.rsplit_once(':').ok_or_else(|| {
        format!("`{key}` entries are `/dev/path:rate`, e.g. /dev/sda:{example}; not `{text}`")
    })?;
    if !path.starts_with('/') {
        return Err(format!(
            "`{key}`: `{path}` is not a device path like /dev/sda"
        ));
    }
    let value = if throttle.is_bytes() {
        Value::Rate(parse_size(rate).map_err(|error| format!("`{key}`: {error}"))?)
    } else {
        Value::Count(rate.trim().parse().map_err(|_| {
            format!("`{key}`: the rate is whole operations per second; not `{rate}`")
        })?)
    };
    Ok(Setting {
        resource: Resource::Device(throttle, path.to_owned()),
        value,
    })
}

/// The allowed word closest to a misspelt one, if it is close.
fn closest<'a>(word: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|candidate| (edit_distance(word, candidate), *candidate))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GOOD: &str = "\
rules:
  - name: default
    limits:
      memory: 256m
      pids-limit: 200
  - name: web
    match:
      name: \"shop-web-*\"
      labels: [\"tier=front\", monitored, \"env!=dev\"]
      compose-project: shop
    exclude:
      - name: \"*-debug\"
    limits:
      memory: 1.5g
      memory-swap: -1
      cpus: 1.5
      cpuset-cpus: 0-1
      device-write-bps: [\"/dev/sda:10mb\"]
      device-read-iops:
        - /dev/sdb:300
";

    #[test]
    fn a_good_policy_reads_into_rules() {
        let policy = parse(GOOD).unwrap();
        assert_eq!(policy.rules.len(), 2);
        let web = &policy.rules[1];
        assert_eq!(web.name, "web");
        assert_eq!(web.position, Position { line: 6, column: 5 });
        assert_eq!(web.selector.labels.len(), 3);
        assert_eq!(web.excludes.len(), 1);
        let settings: Vec<&Setting> = web.limits.iter().map(|s| &s.value).collect();
        assert!(settings.contains(&&Setting {
            resource: Resource::Memory,
            value: Value::Bytes(1536 * 1024 * 1024)
        }));
        assert!(settings.contains(&&Setting {
            resource: Resource::MemorySwap,
            value: Value::Unlimited
        }));
        assert!(settings.contains(&&Setting {
            resource: Resource::Device(Throttle::WriteBps, "/dev/sda".to_owned()),
            value: Value::Rate(10 * 1024 * 1024)
        }));
        assert!(settings.contains(&&Setting {
            resource: Resource::Device(Throttle::ReadIops, "/dev/sdb".to_owned()),
            value: Value::Count(300)
        }));
        let cpus = web
            .limits
            .iter()
            .find(|s| s.value.resource == Resource::Cpus)
            .unwrap();
        assert_eq!(
            cpus.position,
            Position {
                line: 16,
                column: 13
            }
        );
    }

    #[test]
    fn problems_are_placed_at_their_line_and_column() {
        let text = "\
rules:
  - name: web
    match:
      nmae: web
    limits:
      memroy: 512m
      cpus: lots
      memory-swap: 12x
      device-write-bps: [sda:10mb]
";
        let problems = parse(text).unwrap_err();
        let at = |line: usize| {
            problems
                .iter()
                .find(|p| p.position.line == line)
                .unwrap_or_else(|| panic!("no problem on line {line}: {problems:#?}"))
        };
        assert!(
            at(4).message.contains("did you mean `name`"),
            "{}",
            at(4).message
        );
        assert_eq!(at(6).position.column, 7);
        assert!(at(6).message.contains("did you mean `memory`"));
        assert!(at(7).message.contains("number of CPUs"));
        assert!(at(8).message.contains("not a size"));
        assert!(at(9).message.contains("device path"));
    }

    #[test]
    fn structural_mistakes_are_reported() {
        assert!(parse("").unwrap_err()[0].message.contains("empty"));
        assert!(
            parse("rules: [\n").unwrap_err()[0]
                .message
                .contains("not valid YAML")
        );
        assert!(
            parse("rules: 5\n").unwrap_err()[0]
                .message
                .contains("list of rules")
        );
        let no_limits = parse("rules:\n  - name: a\n").unwrap_err();
        assert!(no_limits[0].message.contains("no `limits`"));
        let twice = parse(
            "rules:\n  - name: a\n    limits: {memory: 8m}\n  - name: a\n    limits: {memory: 8m}\n",
        )
        .unwrap_err();
        assert_eq!(twice[0].position.line, 4);
        assert!(twice[0].message.contains("already used at line 2"));
    }

    proptest! {
        #[test]
        fn never_panics_and_places_problems_in_the_file(text in "\\PC*") {
            let misplaced = misplaced_problem(&text);
            prop_assert!(misplaced.is_none(), "{:?}", misplaced);
        }

        #[test]
        fn never_panics_on_policy_like_text(lines in proptest::collection::vec(policy_like_line(), 0..12)) {
            let misplaced = misplaced_problem(&lines.join("\n"));
            prop_assert!(misplaced.is_none(), "{:?}", misplaced);
        }
    }

    fn policy_like_line() -> impl Strategy<Value = String> {
        "( {0,6})(rules|limits|match|exclude|memory|cpus|name|labels|-|device-write-bps)(:| )( ?)([a-z0-9/:.\\[\\]\"-]{0,10})"
    }

    /// Whatever the text, a problem points inside it, and a policy without problems has
    /// rules. Returns what breaks that, if anything.
    fn misplaced_problem(text: &str) -> Option<String> {
        let lines = text.lines().count().max(1) + 1;
        match parse(text) {
            Ok(policy) if policy.rules.is_empty() => Some("a policy without rules".to_owned()),
            Ok(_) => None,
            Err(problems) if problems.is_empty() => Some("an error without problems".to_owned()),
            Err(problems) => problems
                .into_iter()
                .find(|problem| {
                    !(1..=lines).contains(&problem.position.line) || problem.position.column < 1
                })
                .map(|problem| format!("{problem:?} outside {lines} lines")),
        }
    }
}
