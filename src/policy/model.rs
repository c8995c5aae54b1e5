//! What a policy says: ordered rules, each selecting containers and declaring limits in the
//! vocabulary of `docker run`; and which limits a given container gets from it.

use std::collections::BTreeMap;
use std::fmt;

use super::units::format_bytes;
use crate::cgroup::DeviceNumber;
pub use crate::cgroup::io::Throttle;
pub use crate::docker::container::{COMPOSE_PROJECT_LABEL, COMPOSE_SERVICE_LABEL};

/// A place in the policy file: 1-based line and column.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// A value and where the file declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub position: Position,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    pub rules: Vec<Rule>,
    /// The device number of every device path the rules name, found when the policy is
    /// loaded.
    pub devices: BTreeMap<String, DeviceNumber>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// `name:` in the file, or `rule-<n>` (1-based).
    pub name: String,
    pub position: Position,
    /// Which containers the rule is for; an empty selector selects every container.
    pub selector: Selector,
    /// Containers the rule leaves alone even when the selector picks them.
    pub excludes: Vec<Selector>,
    /// Where `limits:` is, for problems about the limits as a whole.
    pub limits_position: Position,
    /// How many entries the file writes under `limits:` and `defaults:`, understood or not.
    pub limits_written: usize,
    pub limits: Vec<Spanned<Setting>>,
    /// Limits given only to a container that has none of that kind: a floor for the
    /// unlimited that never loosens a tighter limit.
    pub defaults: Vec<Spanned<Setting>>,
}

/// Every criterion given must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selector {
    pub position: Position,
    pub name: Option<Spanned<glob::Pattern>>,
    pub image: Option<Spanned<glob::Pattern>>,
    pub labels: Vec<Spanned<LabelMatch>>,
    pub compose_project: Option<Spanned<String>>,
    pub compose_service: Option<Spanned<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelMatch {
    Present(String),
    Equals(String, String),
    NotEquals(String, String),
}

/// What a container is, as far as selection goes.
#[derive(Debug, Clone, Copy)]
pub struct ContainerFacts<'a> {
    pub name: &'a str,
    pub image: &'a str,
    pub labels: &'a BTreeMap<String, String>,
}

impl<'a> From<&'a crate::docker::Container> for ContainerFacts<'a> {
    fn from(container: &'a crate::docker::Container) -> Self {
        ContainerFacts {
            name: &container.name,
            image: &container.image,
            labels: &container.labels,
        }
    }
}

impl Selector {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.image.is_none()
            && self.labels.is_empty()
            && self.compose_project.is_none()
            && self.compose_service.is_none()
    }

    pub fn matches(&self, container: &ContainerFacts) -> bool {
        let glob = |pattern: &Option<Spanned<glob::Pattern>>, value: &str| {
            pattern
                .as_ref()
                .is_none_or(|pattern| pattern.value.matches(value))
        };
        let label = |key: &str| container.labels.get(key).map(String::as_str);
        let exact = |wanted: &Option<Spanned<String>>, key: &str| {
            wanted
                .as_ref()
                .is_none_or(|wanted| label(key) == Some(wanted.value.as_str()))
        };
        glob(&self.name, container.name)
            && glob(&self.image, container.image)
            && exact(&self.compose_project, COMPOSE_PROJECT_LABEL)
            && exact(&self.compose_service, COMPOSE_SERVICE_LABEL)
            && self.labels.iter().all(|matcher| match &matcher.value {
                LabelMatch::Present(key) => label(key).is_some(),
                LabelMatch::Equals(key, value) => label(key) == Some(value.as_str()),
                LabelMatch::NotEquals(key, value) => label(key) != Some(value.as_str()),
            })
    }
}

impl Rule {
    pub fn selects(&self, container: &ContainerFacts) -> bool {
        self.selector.matches(container)
            && !self
                .excludes
                .iter()
                .any(|exclude| exclude.matches(container))
    }
}

/// One limit a policy can declare. Each is a policy key (`memory`, `cpus`, ...); device
/// limits are keyed by device too.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    Memory,
    MemoryReservation,
    MemorySwap,
    Cpus,
    CpuShares,
    CpuPeriod,
    CpuQuota,
    CpusetCpus,
    CpusetMems,
    PidsLimit,
    BlkioWeight,
    Device(Throttle, String),
}

impl Resource {
    /// Each limit but device limits, with its policy key (Docker's flag name): the one
    /// table both directions read.
    const KEYED: [(Resource, &'static str); 11] = [
        (Resource::Memory, "memory"),
        (Resource::MemoryReservation, "memory-reservation"),
        (Resource::MemorySwap, "memory-swap"),
        (Resource::Cpus, "cpus"),
        (Resource::CpuShares, "cpu-shares"),
        (Resource::CpuPeriod, "cpu-period"),
        (Resource::CpuQuota, "cpu-quota"),
        (Resource::CpusetCpus, "cpuset-cpus"),
        (Resource::CpusetMems, "cpuset-mems"),
        (Resource::PidsLimit, "pids-limit"),
        (Resource::BlkioWeight, "blkio-weight"),
    ];

    /// The keys a rule's `limits:` may hold (device limits take a list of `path:rate`).
    pub fn keys() -> Vec<&'static str> {
        Resource::KEYED
            .iter()
            .map(|(_, key)| *key)
            .chain(Throttle::ALL.iter().map(|throttle| throttle.docker_name()))
            .collect()
    }

    /// The limit a key other than a device limit's names.
    pub fn from_key(key: &str) -> Option<Resource> {
        Resource::KEYED
            .iter()
            .find(|(_, known)| *known == key)
            .map(|(resource, _)| resource.clone())
    }

    pub fn key(&self) -> &'static str {
        match self {
            Resource::Device(throttle, _) => throttle.docker_name(),
            scalar => Resource::KEYED
                .iter()
                .find(|(resource, _)| resource == scalar)
                .map(|(_, key)| *key)
                .expect("every limit but device limits is in Resource::KEYED"),
        }
    }

    /// Whether a container can be without this limit (`unlimited`), so that a policy can
    /// give it as a default. CPU shares, weights, periods and CPU sets always have a value.
    pub fn can_be_unlimited(&self) -> bool {
        matches!(
            self,
            Resource::Memory
                | Resource::MemoryReservation
                | Resource::MemorySwap
                | Resource::Cpus
                | Resource::CpuQuota
                | Resource::PidsLimit
                | Resource::Device(..)
        )
    }

    /// Whether a higher value grants more: true of the limits that cap a container (memory,
    /// swap, CPU bandwidth, tasks, device rates), whose `unlimited` is the loosest of all.
    pub fn caps(&self) -> bool {
        matches!(
            self,
            Resource::Memory
                | Resource::MemorySwap
                | Resource::Cpus
                | Resource::CpuQuota
                | Resource::PidsLimit
                | Resource::Device(..)
        )
    }

    /// Whether the `cpus` limit and the `cpu-period`/`cpu-quota` pair are two ways of
    /// saying one thing: a later rule's either replaces an earlier rule's other.
    fn bandwidth(&self) -> bool {
        matches!(
            self,
            Resource::Cpus | Resource::CpuPeriod | Resource::CpuQuota
        )
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Device(throttle, path) => write!(f, "{}:{path}", throttle.docker_name()),
            other => f.write_str(other.key()),
        }
    }
}

/// A limit's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bytes(u64),
    /// Bytes per second (device bandwidth).
    Rate(u64),
    Count(u64),
    Cpus(f64),
    /// A CPU or memory-node list, e.g. `0-3,6`.
    List(String),
    Unlimited,
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bytes(bytes) => f.write_str(&format_bytes(*bytes)),
            Value::Rate(bytes) => write!(f, "{}/s", format_bytes(*bytes)),
            Value::Count(count) => write!(f, "{count}"),
            Value::Cpus(cpus) => write!(f, "{cpus}"),
            Value::List(list) if list.is_empty() => f.write_str("(all)"),
            Value::List(list) => f.write_str(list),
            Value::Unlimited => f.write_str("unlimited"),
        }
    }
}

/// One declared limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub resource: Resource,
    pub value: Value,
}

/// A limit a container should have, and the rule it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    pub resource: Resource,
    pub value: Value,
    /// Index into `Policy::rules`.
    pub rule: usize,
    /// For a device limit, the device's number.
    pub device: Option<DeviceNumber>,
    /// From a rule's `defaults:`: applied only when the container has no such limit.
    pub default: bool,
}

impl Policy {
    /// The limits `container` should have: each matching rule in order, later rules
    /// overriding earlier ones limit by limit. `None` when no rule selects it.
    pub fn wanted_for(&self, container: &ContainerFacts) -> Option<Vec<Wanted>> {
        let mut wanted: BTreeMap<Resource, Wanted> = BTreeMap::new();
        let mut selected = false;
        for (index, rule) in self.rules.iter().enumerate() {
            if !rule.selects(container) {
                continue;
            }
            selected = true;
            let settings = rule
                .limits
                .iter()
                .map(|setting| (setting, false))
                .chain(rule.defaults.iter().map(|setting| (setting, true)));
            if settings
                .clone()
                .any(|(setting, _)| setting.value.resource.bandwidth())
            {
                wanted.retain(|resource, _| !resource.bandwidth());
            }
            for (setting, default) in settings {
                wanted.insert(
                    setting.value.resource.clone(),
                    Wanted {
                        resource: setting.value.resource.clone(),
                        value: setting.value.value.clone(),
                        rule: index,
                        device: match &setting.value.resource {
                            Resource::Device(_, path) => self.devices.get(path).copied(),
                            _ => None,
                        },
                        default,
                    },
                );
            }
        }
        selected.then(|| wanted.into_values().collect())
    }

    pub fn rule_name(&self, index: usize) -> &str {
        self.rules.get(index).map_or("?", |rule| rule.name.as_str())
    }

    /// The names of the rules the given limits come from, in rule order, each once.
    pub fn rule_names<'a>(&self, wanted: impl IntoIterator<Item = &'a Wanted>) -> Vec<String> {
        let mut indexes: Vec<usize> = wanted.into_iter().map(|wanted| wanted.rule).collect();
        indexes.sort_unstable();
        indexes.dedup();
        indexes
            .into_iter()
            .map(|index| self.rule_name(index).to_owned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_key_names_one_limit_and_back() {
        let keys = Resource::keys();
        assert_eq!(keys.len(), 15);
        for key in keys {
            match Resource::from_key(key) {
                Some(resource) => assert_eq!(resource.key(), key),
                None => assert!(key.starts_with("device-"), "{key}"),
            }
        }
        assert_eq!(Resource::from_key("memory"), Some(Resource::Memory));
        assert_eq!(Resource::from_key("memroy"), None);
    }

    use super::*;

    fn spanned<T>(value: T) -> Spanned<T> {
        Spanned {
            value,
            position: Position::default(),
        }
    }

    fn rule(name: &str, selector: Selector, limits: Vec<(Resource, Value)>) -> Rule {
        Rule {
            name: name.to_owned(),
            position: Position::default(),
            selector,
            excludes: Vec::new(),
            limits_position: Position::default(),
            limits_written: limits.len(),
            limits: limits
                .into_iter()
                .map(|(resource, value)| spanned(Setting { resource, value }))
                .collect(),
            defaults: Vec::new(),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selectors_match_names_images_labels_and_compose() {
        let shop = labels(&[
            ("com.docker.compose.project", "shop"),
            ("com.docker.compose.service", "web"),
            ("tier", "front"),
        ]);
        let web = ContainerFacts {
            name: "shop-web-1",
            image: "registry.local/nginx:1.27",
            labels: &shop,
        };
        let mut selector = Selector {
            name: Some(spanned(glob::Pattern::new("shop-*").unwrap())),
            image: Some(spanned(glob::Pattern::new("*/nginx:*").unwrap())),
            compose_project: Some(spanned("shop".to_owned())),
            ..Selector::default()
        };
        assert!(selector.matches(&web));
        selector.labels = vec![
            spanned(LabelMatch::Present("tier".to_owned())),
            spanned(LabelMatch::Equals("tier".to_owned(), "front".to_owned())),
            spanned(LabelMatch::NotEquals("env".to_owned(), "dev".to_owned())),
        ];
        assert!(selector.matches(&web));
        selector.compose_service = Some(spanned("db".to_owned()));
        assert!(!selector.matches(&web));
        assert!(Selector::default().matches(&web));
    }

    #[test]
    fn later_rules_override_limit_by_limit_and_excludes_apply() {
        let none = BTreeMap::new();
        let web = ContainerFacts {
            name: "web",
            image: "nginx",
            labels: &none,
        };
        let debug = ContainerFacts {
            name: "web-debug",
            image: "nginx",
            labels: &none,
        };
        let mut second = rule(
            "web",
            Selector {
                name: Some(spanned(glob::Pattern::new("web*").unwrap())),
                ..Selector::default()
            },
            vec![
                (Resource::Memory, Value::Bytes(512)),
                (Resource::CpuQuota, Value::Count(50_000)),
            ],
        );
        second.excludes = vec![Selector {
            name: Some(spanned(glob::Pattern::new("*-debug").unwrap())),
            ..Selector::default()
        }];
        let policy = Policy {
            devices: BTreeMap::new(),
            rules: vec![
                rule(
                    "default",
                    Selector::default(),
                    vec![
                        (Resource::Memory, Value::Bytes(256)),
                        (Resource::PidsLimit, Value::Count(100)),
                        (Resource::Cpus, Value::Cpus(1.0)),
                    ],
                ),
                second,
            ],
        };
        let wanted = policy.wanted_for(&web).unwrap();
        let find = |resource: Resource| wanted.iter().find(|w| w.resource == resource).cloned();
        assert_eq!(find(Resource::Memory).unwrap().value, Value::Bytes(512));
        assert_eq!(find(Resource::Memory).unwrap().rule, 1);
        assert_eq!(find(Resource::PidsLimit).unwrap().rule, 0);
        // cpu-quota in a later rule replaces cpus from an earlier one.
        assert!(find(Resource::Cpus).is_none());
        assert_eq!(
            find(Resource::CpuQuota).unwrap().value,
            Value::Count(50_000)
        );

        let debug_wanted = policy.wanted_for(&debug).unwrap();
        assert!(debug_wanted.iter().all(|w| w.rule == 0), "{debug_wanted:?}");

        let only_web = Policy {
            rules: vec![policy.rules[1].clone()],
            devices: BTreeMap::new(),
        };
        assert!(only_web.wanted_for(&debug).is_none());
    }

    #[test]
    fn defaults_are_marked_and_a_later_limit_replaces_them() {
        let none = BTreeMap::new();
        let web = ContainerFacts {
            name: "web",
            image: "nginx",
            labels: &none,
        };
        let mut floor = rule("floor", Selector::default(), Vec::new());
        floor.defaults = vec![
            spanned(Setting {
                resource: Resource::Memory,
                value: Value::Bytes(1024),
            }),
            spanned(Setting {
                resource: Resource::PidsLimit,
                value: Value::Count(500),
            }),
        ];
        let web_rule = rule(
            "web",
            Selector::default(),
            vec![(Resource::Memory, Value::Bytes(512))],
        );
        let policy = Policy {
            devices: BTreeMap::new(),
            rules: vec![floor, web_rule],
        };
        let wanted = policy.wanted_for(&web).unwrap();
        let find = |resource: Resource| wanted.iter().find(|w| w.resource == resource).cloned();
        let memory = find(Resource::Memory).unwrap();
        assert_eq!((memory.value, memory.default), (Value::Bytes(512), false));
        let pids = find(Resource::PidsLimit).unwrap();
        assert_eq!((pids.value, pids.default), (Value::Count(500), true));
    }

    #[test]
    fn only_limits_a_container_can_lack_can_be_defaults() {
        assert!(Resource::Memory.can_be_unlimited());
        assert!(Resource::PidsLimit.can_be_unlimited());
        assert!(!Resource::CpuShares.can_be_unlimited());
        assert!(!Resource::CpusetCpus.can_be_unlimited());
        assert!(Resource::Cpus.caps());
        assert!(!Resource::MemoryReservation.caps());
        assert!(!Resource::BlkioWeight.caps());
    }
}
