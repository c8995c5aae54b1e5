//! Checks of a parsed policy that go beyond its syntax: values the engine or the kernel
//! would refuse, values this host cannot honour, and rules that can never select anything.

use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use super::document::Problem;
use super::model::{LabelMatch, Policy, Position, Resource, Rule, Selector, Value};
use super::units::format_bytes;
use crate::cgroup::DeviceNumber;
use crate::cgroup::parse::cpu_list;
use crate::devices::DeviceNames;

/// The engine refuses memory limits and reservations below 6 MiB.
pub const ENGINE_MIN_MEMORY: u64 = 6 * 1024 * 1024;

/// What the checks need to know about the host.
pub struct Host {
    pub cpus: u64,
    /// Block devices by name, from `<procfs>/partitions`.
    pub devices: DeviceNames,
}

impl Host {
    /// This machine: its online CPUs, and its block devices as `procfs` lists them (the
    /// host's, when the exporter runs in a container with the host's procfs mounted).
    pub fn local(procfs: &Path) -> Host {
        // SAFETY: sysconf has no preconditions.
        let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
        Host {
            cpus: u64::try_from(online).unwrap_or(1).max(1),
            devices: DeviceNames::read(procfs),
        }
    }

    /// The device number of a device path: `/dev/<name>` as the partitions table lists it,
    /// or any other path to a block device (`/dev/disk/by-id/...`).
    pub fn device(&self, path: &str) -> Result<DeviceNumber, String> {
        match self.devices.number(path) {
            Some(number) => Ok(number),
            None => block_device_number(path),
        }
    }
}

/// The device number of a block device path (`/dev/sda`).
pub fn block_device_number(path: &str) -> Result<DeviceNumber, String> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path)
        .map_err(|error| format!("device {path} does not exist on this host ({error})"))?;
    if !metadata.file_type().is_block_device() {
        return Err(format!("{path} is not a block device"));
    }
    let rdev = metadata.rdev();
    Ok(DeviceNumber {
        major: libc::major(rdev),
        minor: libc::minor(rdev),
    })
}

pub fn check(policy: &Policy, host: &Host) -> Vec<Problem> {
    let mut problems = Vec::new();
    for rule in &policy.rules {
        check_limits(rule, host, &mut problems);
        check_selection(rule, &mut problems);
    }
    problems.sort();
    problems
}

fn check_limits(rule: &Rule, host: &Host, problems: &mut Vec<Problem>) {
    if rule.limits_written == 0 {
        problems.push(Problem::at(
            rule.limits_position,
            format!("rule `{}` declares no limits", rule.name),
        ));
    }
    let find = |resource: &Resource| {
        rule.limits
            .iter()
            .chain(&rule.defaults)
            .find(|setting| setting.value.resource == *resource)
    };
    for default in &rule.defaults {
        let resource = &default.value.resource;
        if !resource.can_be_unlimited() {
            problems.push(Problem::at(
                default.position,
                format!(
                    "`{resource}` cannot be a default: every container has a value for it, so a default would never apply; put it under `limits`"
                ),
            ));
        }
        if let Some(limit) = rule
            .limits
            .iter()
            .find(|limit| limit.value.resource == *resource)
        {
            problems.push(Problem::at(
                default.position,
                format!(
                    "`{resource}` is both a limit (line {}) and a default of this rule; keep one",
                    limit.position.line
                ),
            ));
        }
    }
    let bytes = |resource: &Resource| match find(resource).map(|s| &s.value.value) {
        Some(Value::Bytes(bytes)) => Some(*bytes),
        _ => None,
    };
    for setting in rule.limits.iter().chain(&rule.defaults) {
        let at = setting.position;
        let mut problem = |message: String| problems.push(Problem::at(at, message));
        match (&setting.value.resource, &setting.value.value) {
            (Resource::Memory | Resource::MemoryReservation, Value::Bytes(bytes))
                if *bytes < ENGINE_MIN_MEMORY =>
            {
                problem(format!(
                    "`{}` {} is below the engine's minimum of {}",
                    setting.value.resource,
                    format_bytes(*bytes),
                    format_bytes(ENGINE_MIN_MEMORY)
                ));
            }
            (Resource::MemorySwap, Value::Bytes(swap)) => {
                if let Some(memory) = bytes(&Resource::Memory).filter(|memory| swap < memory) {
                    problem(format!(
                        "`memory-swap` {} is below `memory` {}: it is memory plus swap, as docker run reads it, so it must be at least `memory` (or -1 for unlimited swap)",
                        format_bytes(*swap),
                        format_bytes(memory)
                    ));
                }
            }
            (Resource::Cpus, Value::Cpus(cpus)) => {
                if *cpus > host.cpus as f64 {
                    problem(format!(
                        "`cpus` {cpus} is more than this host's {} CPUs",
                        host.cpus
                    ));
                }
                if find(&Resource::CpuQuota).is_some() || find(&Resource::CpuPeriod).is_some() {
                    problem(
                        "`cpus` and `cpu-quota`/`cpu-period` say the same thing two ways; keep one"
                            .to_owned(),
                    );
                }
            }
            (Resource::CpuPeriod, Value::Count(period))
                if !(1_000..=1_000_000).contains(period) =>
            {
                problem(format!(
                    "`cpu-period` {period} is outside what the kernel accepts (1000 to 1000000 µs)"
                ));
            }
            (Resource::CpuQuota, Value::Count(quota)) if *quota < 1_000 => {
                problem(format!(
                    "`cpu-quota` {quota} is below the kernel's minimum of 1000 µs"
                ));
            }
            (Resource::CpuShares, Value::Count(shares)) if !(2..=262_144).contains(shares) => {
                problem(format!(
                    "`cpu-shares` {shares} is outside what the kernel accepts (2 to 262144)"
                ));
            }
            (Resource::BlkioWeight, Value::Count(weight)) if !(10..=1_000).contains(weight) => {
                problem(format!(
                    "`blkio-weight` {weight} is outside what the engine accepts (10 to 1000)"
                ));
            }
            (Resource::CpusetCpus, Value::List(list)) => {
                let highest = cpu_list(list)
                    .ok()
                    .and_then(|ranges| ranges.last().map(|(_, last)| *last));
                if let Some(highest) = highest.filter(|highest| *highest >= host.cpus) {
                    problem(format!(
                        "`cpuset-cpus` names CPU {highest}, but this host has CPUs 0-{}",
                        host.cpus - 1
                    ));
                }
            }
            (Resource::Device(_, path), _) => {
                if let Err(reason) = host.device(path) {
                    problem(format!("`{}`: {reason}", setting.value.resource.key()));
                }
            }
            _ => {}
        }
    }
    if let (Some(memory), Some(reservation)) =
        (bytes(&Resource::Memory), find(&Resource::MemoryReservation))
        && let Value::Bytes(reserved) = reservation.value.value
        && reserved > memory
    {
        problems.push(Problem::at(
            reservation.position,
            format!(
                "`memory-reservation` {} is above `memory` {}; the engine refuses a reservation above the limit",
                format_bytes(reserved),
                format_bytes(memory)
            ),
        ));
    }
}

/// Characters a container name can hold (the engine allows `[a-zA-Z0-9][a-zA-Z0-9_.-]*`),
/// plus glob syntax.
fn name_glob_can_match(pattern: &str) -> bool {
    pattern
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.-*?[]!^".contains(c))
}

fn check_selection(rule: &Rule, problems: &mut Vec<Problem>) {
    let never = |position: Position, why: String| {
        Problem::at(
            position,
            format!("rule `{}` can never select a container: {why}", rule.name),
        )
    };
    if let Some(name) = &rule.selector.name
        && !name_glob_can_match(name.value.as_str())
    {
        problems.push(never(
            name.position,
            format!(
                "container names hold only letters, digits, `_`, `.` and `-`, so `{}` matches none",
                name.value.as_str()
            ),
        ));
    }
    if let Some((position, why)) = contradiction(&rule.selector) {
        problems.push(never(position, why));
    }
    for exclude in &rule.excludes {
        if exclude.is_empty() {
            problems.push(never(
                exclude.position,
                "an empty `exclude` excludes every container".to_owned(),
            ));
        } else if covers(exclude, &rule.selector) {
            problems.push(never(
                exclude.position,
                "this `exclude` holds every container the `match` selects".to_owned(),
            ));
        }
    }
}

/// Label criteria that cannot all hold at once, counting the compose fields as the labels
/// they are.
fn contradiction(selector: &Selector) -> Option<(Position, String)> {
    let mut criteria: Vec<(Position, LabelMatch)> = selector
        .labels
        .iter()
        .map(|label| (label.position, label.value.clone()))
        .collect();
    for (field, label) in [
        (
            &selector.compose_project,
            super::model::COMPOSE_PROJECT_LABEL,
        ),
        (
            &selector.compose_service,
            super::model::COMPOSE_SERVICE_LABEL,
        ),
    ] {
        if let Some(value) = field {
            criteria.push((
                value.position,
                LabelMatch::Equals(label.to_owned(), value.value.clone()),
            ));
        }
    }
    for (i, (_, first)) in criteria.iter().enumerate() {
        for (position, second) in &criteria[i + 1..] {
            let clash = match (first, second) {
                (LabelMatch::Equals(k1, v1), LabelMatch::Equals(k2, v2)) => k1 == k2 && v1 != v2,
                (LabelMatch::Equals(k1, v1), LabelMatch::NotEquals(k2, v2))
                | (LabelMatch::NotEquals(k2, v2), LabelMatch::Equals(k1, v1)) => {
                    k1 == k2 && v1 == v2
                }
                _ => false,
            };
            if clash {
                return Some((
                    *position,
                    format!(
                        "label criteria {} and {} cannot both hold",
                        describe(first),
                        describe(second)
                    ),
                ));
            }
        }
    }
    None
}

fn describe(label: &LabelMatch) -> String {
    match label {
        LabelMatch::Present(key) => format!("`{key}`"),
        LabelMatch::Equals(key, value) => format!("`{key}={value}`"),
        LabelMatch::NotEquals(key, value) => format!("`{key}!={value}`"),
    }
}

/// Whether every criterion of `exclude` is also a criterion of `selector`, so that
/// everything the selector matches, the exclude matches too.
fn covers(exclude: &Selector, selector: &Selector) -> bool {
    let same_glob = |a: &Option<super::model::Spanned<glob::Pattern>>,
                     b: &Option<super::model::Spanned<glob::Pattern>>| {
        a.as_ref()
            .is_none_or(|a| b.as_ref().is_some_and(|b| a.value == b.value))
    };
    let same_text = |a: &Option<super::model::Spanned<String>>,
                     b: &Option<super::model::Spanned<String>>| {
        a.as_ref()
            .is_none_or(|a| b.as_ref().is_some_and(|b| a.value == b.value))
    };
    same_glob(&exclude.name, &selector.name)
        && same_glob(&exclude.image, &selector.image)
        && same_text(&exclude.compose_project, &selector.compose_project)
        && same_text(&exclude.compose_service, &selector.compose_service)
        && exclude
            .labels
            .iter()
            .all(|label| selector.labels.iter().any(|own| own.value == label.value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::document::parse;

    fn host() -> Host {
        Host {
            cpus: 2,
            devices: DeviceNames::from_partitions(
                "major minor  #blocks  name\n\n   8        0  1000 sda\n",
            )
            .unwrap(),
        }
    }

    fn problems(text: &str) -> Vec<Problem> {
        check(&parse(text).unwrap(), &host())
    }

    fn on_line(problems: &[Problem], line: usize) -> String {
        problems
            .iter()
            .filter(|problem| problem.position.line == line)
            .map(|problem| problem.message.clone())
            .collect::<Vec<_>>()
            .join(" | ")
    }

    #[test]
    fn values_the_engine_or_host_would_refuse() {
        let found = problems(
            "\
rules:
  - name: bad
    limits:
      memory: 4m
      memory-swap: 2m
      cpus: 3
      device-write-bps: [\"/dev/sdz:1mb\"]
      cpuset-cpus: 0-4
      cpu-period: 10
  - name: fine
    limits:
      memory: 64m
      memory-reservation: 128m
      device-read-bps: [\"/dev/sda:1mb\"]
",
        );
        assert!(on_line(&found, 4).contains("below the engine's minimum of 6MiB"));
        assert!(on_line(&found, 5).contains("below `memory`"));
        assert!(on_line(&found, 6).contains("more than this host's 2 CPUs"));
        assert!(on_line(&found, 7).contains("/dev/sdz does not exist"));
        assert!(on_line(&found, 8).contains("CPU 4"));
        assert!(on_line(&found, 9).contains("1000 to 1000000"));
        assert!(on_line(&found, 13).contains("above `memory`"));
        assert_eq!(on_line(&found, 14), "");
    }

    #[test]
    fn defaults_are_limits_a_container_can_lack_and_are_checked_like_limits() {
        let found = problems(
            "\
rules:
  - name: floor
    limits:
      memory: 64m
    defaults:
      memory: 1g
      cpu-shares: 512
      pids-limit: 500
      memory-reservation: 4m
",
        );
        assert!(on_line(&found, 6).contains("both a limit (line 4) and a default"));
        assert!(on_line(&found, 7).contains("`cpu-shares` cannot be a default"));
        assert_eq!(on_line(&found, 8), "");
        assert!(on_line(&found, 9).contains("below the engine's minimum"));
        assert_eq!(found.len(), 3, "{found:#?}");
    }

    #[test]
    fn rules_that_can_never_select() {
        let found = problems(
            "\
rules:
  - name: slash
    match: {name: \"web/1\"}
    limits: {memory: 64m}
  - name: clash
    match:
      labels: [\"tier=front\", \"tier!=front\"]
    limits: {memory: 64m}
  - name: compose
    match:
      compose-project: shop
      labels: [\"com.docker.compose.project=other\"]
    limits: {memory: 64m}
  - name: self-excluding
    match: {name: \"web-*\"}
    exclude: {name: \"web-*\"}
    limits: {memory: 64m}
  - name: fine
    match: {name: \"web-*\", labels: [tier]}
    exclude: {labels: [\"tier=debug\"]}
    limits: {memory: 64m}
",
        );
        assert!(on_line(&found, 3).contains("`slash` can never select"));
        assert!(on_line(&found, 7).contains("cannot both hold"));
        assert!(on_line(&found, 11).contains("cannot both hold"));
        assert!(on_line(&found, 16).contains("every container the `match` selects"));
        assert_eq!(found.len(), 4, "{found:#?}");
    }

    #[test]
    fn block_devices_are_looked_up() {
        assert!(
            block_device_number("/dev/null")
                .unwrap_err()
                .contains("not a block device")
        );
        assert!(
            block_device_number("/dev/nonexistent-disk")
                .unwrap_err()
                .contains("does not exist")
        );
    }
}
