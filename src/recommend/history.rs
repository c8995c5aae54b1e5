//! What Prometheus kept of stevedore's container series over the window: the queries, and
//! their answers joined into one history per container (a series `id` of one stevedore,
//! `job` and `instance`).

use std::collections::BTreeMap;
use std::time::Duration;

use super::api::{Point, Series};
use super::prometheus::{Prometheus, PrometheusError};
use super::selector::{self, Matchers};
use crate::docker::container::{COMPOSE_PROJECT_LABEL, COMPOSE_SERVICE_LABEL};
use crate::duration;
use crate::target::sanitize_label_name;

/// Prometheus answers a range query with at most 11,000 points per series.
pub const MAX_POINTS: u64 = 11_000;

/// The span of history asked for: points every `step`, the last at `end`, each standing
/// for the step that ends at it, so that together they cover `(end - length, end]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub length: Duration,
    pub step: Duration,
    /// Seconds since the epoch, on Prometheus' clock: its "now" when asked, not rounded to
    /// a step, so that the freshest samples count.
    pub end: f64,
}

impl Window {
    /// The window of `length` ending at Prometheus' `now`, with points every `step`, or
    /// fewer when that would be more than a range query returns (the step then grows to
    /// the next whole second that fits).
    pub fn ending_at(now: f64, length: Duration, step: Duration) -> Window {
        let mut step = step;
        let points = length.as_millis() / step.as_millis().max(1);
        if points > u128::from(MAX_POINTS) {
            step = Duration::from_secs(length.as_secs().div_ceil(MAX_POINTS));
        }
        Window {
            length,
            step,
            end: now,
        }
    }

    /// The first point's time.
    pub fn first_point(&self) -> f64 {
        self.end - self.length.as_secs_f64() + self.step.as_secs_f64()
    }
}

/// A limit as it was at the end of the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Current {
    /// No series says (the collector was off, or the container's cgroup has no such file).
    Unknown,
    Unlimited,
    Set(f64),
}

/// Limits a container had at the end of the window (its last scrape in it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurrentLimits {
    pub memory: Current,
    pub memory_reservation: Current,
    /// CPUs, from the CFS quota and period.
    pub cpus: Current,
    pub pids: Current,
}

impl Default for CurrentLimits {
    fn default() -> Self {
        CurrentLimits {
            memory: Current::Unknown,
            memory_reservation: Current::Unknown,
            cpus: Current::Unknown,
            pids: Current::Unknown,
        }
    }
}

/// Which stevedore, and which container of it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerKey {
    pub job: String,
    pub instance: String,
    /// The cgroup path, `/docker/<id>`: a container keeps it across restarts.
    pub id: String,
}

/// A compose service: `com.docker.compose.project` and `com.docker.compose.service`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ComposeService {
    pub project: String,
    pub service: String,
}

/// One container's history over the window.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerHistory {
    pub key: ContainerKey,
    pub name: String,
    pub image: String,
    pub compose: Option<ComposeService>,
    /// The peak working set of each step, in bytes.
    pub working_set: Vec<Point>,
    /// The CPU rate over each step, in CPUs.
    pub cpu_rate: Vec<Point>,
    /// The peak task count of each step.
    pub tasks: Vec<Point>,
    /// Counters at the end of each step: OOM kills, CFS periods and throttled ones.
    pub oom_kills: Vec<Point>,
    pub cfs_periods: Vec<Point>,
    pub cfs_throttled_periods: Vec<Point>,
    /// Working-set samples Prometheus scraped in the window.
    pub samples: u64,
    pub limits: CurrentLimits,
    /// The CPUs of the host it runs on (`machine_cpu_cores` of its stevedore).
    pub host_cpus: Option<f64>,
}

/// The container series a query reads: stevedore's (by job) that `--match` selects.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The jobs whose targets export `stevedore_build_info`.
    pub jobs: Vec<String>,
    pub matchers: Matchers,
}

impl Scope {
    /// `metric{name!="",job=~"...",<--match>,<extra>}`: containers only (raw cgroups and
    /// the root have no `name`).
    pub fn selector(&self, metric: &str, extra: &str) -> String {
        let mut matchers = vec![
            "name!=\"\"".to_owned(),
            format!("job=~{}", selector::string(&selector::any_of(&self.jobs))),
        ];
        if !self.matchers.is_empty() {
            matchers.push(self.matchers.inner());
        }
        if !extra.is_empty() {
            matchers.push(extra.to_owned());
        }
        format!("{metric}{{{}}}", matchers.join(","))
    }

    /// The same without `--match`, to tell "stevedore has no containers" from "`--match`
    /// selects none of them".
    pub fn without_matchers(&self) -> Scope {
        Scope {
            jobs: self.jobs.clone(),
            matchers: Matchers::default(),
        }
    }
}

/// The series the working set is read from; the one every history needs.
pub const WORKING_SET: &str = "container_memory_working_set_bytes";
/// What every stevedore exports once, with its version: how its jobs are found.
pub const BUILD_INFO: &str = "stevedore_build_info";

/// The jobs that hold a stevedore's series in the window.
pub async fn stevedore_jobs(
    prometheus: &Prometheus,
    window: &Window,
) -> Result<Vec<String>, PrometheusError> {
    let expr = format!(
        "count by (job) (last_over_time({BUILD_INFO}[{}]))",
        duration::promql(window.length)
    );
    let found = prometheus.query(&expr, Some(window.end)).await?;
    let mut jobs: Vec<String> = found
        .iter()
        .filter_map(|series| series.label("job").map(str::to_owned))
        .collect();
    jobs.sort();
    Ok(jobs)
}

/// How many containers a scope holds in the window.
pub async fn count_containers(
    prometheus: &Prometheus,
    scope: &Scope,
    window: &Window,
) -> Result<usize, PrometheusError> {
    let expr = format!(
        "count(last_over_time({}[{}]))",
        scope.selector(WORKING_SET, ""),
        duration::promql(window.length)
    );
    let found = prometheus.query(&expr, Some(window.end)).await?;
    Ok(found
        .first()
        .and_then(|series| series.points.first())
        .map_or(0, |point| point.value as usize))
}

/// Every container's history in the scope.
pub async fn fetch(
    prometheus: &Prometheus,
    scope: &Scope,
    window: &Window,
) -> Result<Vec<ContainerHistory>, PrometheusError> {
    let step = duration::promql(window.step);
    let length = duration::promql(window.length);
    let range = |function: &str, metric: &str, extra: &str| {
        format!("{function}({}[{step}])", scope.selector(metric, extra))
    };
    let last = |metric: &str| format!("last_over_time({}[{length}])", scope.selector(metric, ""));
    let over_window = |expr: String| async move {
        prometheus
            .query_range(&expr, window.first_point(), window.end, window.step)
            .await
    };
    let at_end = |expr: String| async move { prometheus.query(&expr, Some(window.end)).await };

    // A step's peak (a short spike between two points counts), its CPU rate, and the
    // counters as they stood at its end.
    let answers = RangeAnswers {
        working_set: over_window(range("max_over_time", WORKING_SET, "")).await?,
        cpu_rate: over_window(range(
            "rate",
            "container_cpu_usage_seconds_total",
            "cpu=\"total\"",
        ))
        .await?,
        tasks: over_window(range("max_over_time", "container_pids_current", "")).await?,
        oom_kills: over_window(range("last_over_time", "container_oom_events_total", "")).await?,
        cfs_periods: over_window(range(
            "last_over_time",
            "container_cpu_cfs_periods_total",
            "",
        ))
        .await?,
        cfs_throttled_periods: over_window(range(
            "last_over_time",
            "container_cpu_cfs_throttled_periods_total",
            "",
        ))
        .await?,
    };
    // Limits as last scraped in the window. (A CPU quota removed during the window still
    // reads as its last value: its series ends rather than reading 0.)
    let instants = InstantAnswers {
        samples: at_end(format!(
            "count_over_time({}[{length}])",
            scope.selector(WORKING_SET, "")
        ))
        .await?,
        memory: at_end(last("container_spec_memory_limit_bytes")).await?,
        memory_reservation: at_end(last("container_spec_memory_reservation_limit_bytes")).await?,
        cpu_quota: at_end(last("container_spec_cpu_quota")).await?,
        cpu_period: at_end(last("container_spec_cpu_period")).await?,
        pids: at_end(last("container_spec_pids_limit")).await?,
        host_cpus: at_end(format!(
            "last_over_time(machine_cpu_cores{{job=~{}}}[{length}])",
            selector::string(&selector::any_of(&scope.jobs))
        ))
        .await?,
    };
    Ok(join(answers, instants))
}

/// The range queries' answers.
#[derive(Debug, Default)]
pub struct RangeAnswers {
    pub working_set: Vec<Series>,
    pub cpu_rate: Vec<Series>,
    pub tasks: Vec<Series>,
    pub oom_kills: Vec<Series>,
    pub cfs_periods: Vec<Series>,
    pub cfs_throttled_periods: Vec<Series>,
}

/// The instant queries' answers, at the end of the window.
#[derive(Debug, Default)]
pub struct InstantAnswers {
    pub samples: Vec<Series>,
    pub memory: Vec<Series>,
    pub memory_reservation: Vec<Series>,
    pub cpu_quota: Vec<Series>,
    pub cpu_period: Vec<Series>,
    pub pids: Vec<Series>,
    /// `machine_cpu_cores` per stevedore (by job and instance).
    pub host_cpus: Vec<Series>,
}

fn key(series: &Series) -> Option<ContainerKey> {
    Some(ContainerKey {
        job: series.label("job")?.to_owned(),
        instance: series.label("instance").unwrap_or_default().to_owned(),
        id: series.label("id")?.to_owned(),
    })
}

fn by_key(answer: Vec<Series>) -> BTreeMap<ContainerKey, Series> {
    answer
        .into_iter()
        .filter_map(|series| Some((key(&series)?, series)))
        .collect()
}

fn last_value(series: Option<&Series>) -> Option<f64> {
    series?
        .points
        .last()
        .map(|point| point.value)
        .filter(|value| value.is_finite())
}

/// A limit series where 0 means unlimited (cAdvisor's convention, and ours).
fn zero_is_unlimited(series: Option<&Series>) -> Current {
    match last_value(series) {
        None => Current::Unknown,
        Some(value) if value <= 0.0 => Current::Unlimited,
        Some(value) => Current::Set(value),
    }
}

/// One history per container that has a working set in the window: the answers joined by
/// job, instance and id.
pub fn join(range: RangeAnswers, instant: InstantAnswers) -> Vec<ContainerHistory> {
    let mut cpu_rate = by_key(range.cpu_rate);
    let mut tasks = by_key(range.tasks);
    let mut oom_kills = by_key(range.oom_kills);
    let mut cfs_periods = by_key(range.cfs_periods);
    let mut cfs_throttled_periods = by_key(range.cfs_throttled_periods);
    let samples = by_key(instant.samples);
    let memory = by_key(instant.memory);
    let memory_reservation = by_key(instant.memory_reservation);
    let cpu_quota = by_key(instant.cpu_quota);
    let cpu_period = by_key(instant.cpu_period);
    let pids = by_key(instant.pids);
    let host_cpus: BTreeMap<(String, String), f64> = instant
        .host_cpus
        .iter()
        .filter_map(|series| {
            Some((
                (
                    series.label("job")?.to_owned(),
                    series.label("instance").unwrap_or_default().to_owned(),
                ),
                last_value(Some(series))?,
            ))
        })
        .collect();
    let points = |map: &mut BTreeMap<ContainerKey, Series>, key: &ContainerKey| {
        map.remove(key)
            .map(|series| series.points)
            .unwrap_or_default()
    };
    let project_label = format!(
        "container_label_{}",
        sanitize_label_name(COMPOSE_PROJECT_LABEL)
    );
    let service_label = format!(
        "container_label_{}",
        sanitize_label_name(COMPOSE_SERVICE_LABEL)
    );
    let mut histories = Vec::new();
    for series in range.working_set {
        let Some(key) = key(&series) else { continue };
        if series.points.is_empty() {
            continue;
        }
        let compose = match (series.label(&project_label), series.label(&service_label)) {
            (Some(project), Some(service)) if !project.is_empty() && !service.is_empty() => {
                Some(ComposeService {
                    project: project.to_owned(),
                    service: service.to_owned(),
                })
            }
            _ => None,
        };
        let cpus = match (
            last_value(cpu_quota.get(&key)),
            last_value(cpu_period.get(&key)),
        ) {
            (Some(quota), Some(period)) if quota > 0.0 && period > 0.0 => {
                Current::Set(quota / period)
            }
            // The quota's series exists only while there is one; the usage series says the
            // CPU collector read the container.
            _ if cpu_rate.contains_key(&key) => Current::Unlimited,
            _ => Current::Unknown,
        };
        let limits = CurrentLimits {
            memory: zero_is_unlimited(memory.get(&key)),
            memory_reservation: zero_is_unlimited(memory_reservation.get(&key)),
            cpus,
            pids: zero_is_unlimited(pids.get(&key)),
        };
        histories.push(ContainerHistory {
            name: series.label("name").unwrap_or_default().to_owned(),
            image: series.label("image").unwrap_or_default().to_owned(),
            compose,
            cpu_rate: points(&mut cpu_rate, &key),
            tasks: points(&mut tasks, &key),
            oom_kills: points(&mut oom_kills, &key),
            cfs_periods: points(&mut cfs_periods, &key),
            cfs_throttled_periods: points(&mut cfs_throttled_periods, &key),
            samples: last_value(samples.get(&key)).map_or(0, |count| count as u64),
            limits,
            host_cpus: host_cpus
                .get(&(key.job.clone(), key.instance.clone()))
                .copied(),
            working_set: series.points,
            key,
        });
    }
    histories.sort_by(|a, b| (&a.name, &a.key).cmp(&(&b.name, &b.key)));
    histories
}

/// A container with no history yet, for the tests of the modules that read histories:
/// each sets what its case needs.
#[cfg(test)]
impl ContainerHistory {
    pub fn without_history(name: &str, image: &str) -> ContainerHistory {
        ContainerHistory {
            key: ContainerKey {
                job: "stevedore".to_owned(),
                instance: "host:9417".to_owned(),
                id: format!("/docker/{name}"),
            },
            name: name.to_owned(),
            image: image.to_owned(),
            compose: None,
            working_set: Vec::new(),
            cpu_rate: Vec::new(),
            tasks: Vec::new(),
            oom_kills: Vec::new(),
            cfs_periods: Vec::new(),
            cfs_throttled_periods: Vec::new(),
            samples: 0,
            limits: CurrentLimits::default(),
            host_cpus: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(labels: &[(&str, &str)], points: &[(f64, f64)]) -> Series {
        Series {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            points: points
                .iter()
                .map(|&(time, value)| Point { time, value })
                .collect(),
        }
    }

    const WEB: [(&str, &str); 5] = [
        ("job", "stevedore"),
        ("instance", "host:9417"),
        ("id", "/docker/aaa"),
        ("name", "shop-web-1"),
        ("image", "nginx:1.27"),
    ];

    #[test]
    fn windows_end_now_and_stay_within_what_a_range_query_returns() {
        let window = Window::ending_at(1000.5, Duration::from_secs(40), Duration::from_secs(2));
        assert_eq!(window.end, 1000.5);
        assert_eq!(window.first_point(), 962.5);
        let week = Window::ending_at(0.0, Duration::from_secs(7 * 86400), Duration::from_secs(60));
        assert_eq!(week.step, Duration::from_secs(60), "10,080 points fit");
        let month = Window::ending_at(
            0.0,
            Duration::from_secs(30 * 86400),
            Duration::from_secs(60),
        );
        assert_eq!(month.step, Duration::from_secs(236));
        assert!(month.length.as_secs() / month.step.as_secs() <= MAX_POINTS);
    }

    #[test]
    fn selectors_hold_containers_of_stevedore_jobs_and_match() {
        let scope = Scope {
            jobs: vec!["stevedore".to_owned(), "edge.hosts".to_owned()],
            matchers: Matchers::parse(&["name=~\"shop-.*\"".to_owned()]).unwrap(),
        };
        assert_eq!(
            scope.selector("container_cpu_usage_seconds_total", "cpu=\"total\""),
            "container_cpu_usage_seconds_total{name!=\"\",job=~\"stevedore|edge\\\\.hosts\",name=~\"shop-.*\",cpu=\"total\"}"
        );
        assert_eq!(
            scope.without_matchers().selector(WORKING_SET, ""),
            "container_memory_working_set_bytes{name!=\"\",job=~\"stevedore|edge\\\\.hosts\"}"
        );
    }

    #[test]
    fn answers_join_by_container() {
        let mut compose = WEB.to_vec();
        compose.push(("container_label_com_docker_compose_project", "shop"));
        compose.push(("container_label_com_docker_compose_service", "web"));
        let mut other = WEB.to_vec();
        other[2] = ("id", "/docker/bbb");
        other[3] = ("name", "batch");
        let range = RangeAnswers {
            working_set: vec![
                series(&compose, &[(1.0, 100.0), (2.0, 120.0)]),
                series(&other, &[(2.0, 50.0)]),
            ],
            cpu_rate: vec![series(&WEB, &[(2.0, 0.25)])],
            ..RangeAnswers::default()
        };
        let instant = InstantAnswers {
            samples: vec![series(&WEB, &[(2.0, 30.0)])],
            memory: vec![
                series(&WEB, &[(2.0, 268_435_456.0)]),
                series(&other, &[(2.0, 0.0)]),
            ],
            cpu_quota: vec![series(&WEB, &[(2.0, 50_000.0)])],
            cpu_period: vec![series(&WEB, &[(2.0, 100_000.0)])],
            host_cpus: vec![series(
                &[("job", "stevedore"), ("instance", "host:9417")],
                &[(2.0, 2.0)],
            )],
            ..InstantAnswers::default()
        };
        let histories = join(range, instant);
        assert_eq!(histories.len(), 2);
        let batch = &histories[0];
        assert_eq!(batch.name, "batch");
        assert_eq!(batch.limits.memory, Current::Unlimited);
        assert_eq!(batch.limits.cpus, Current::Unknown, "no CPU series at all");
        assert_eq!(batch.compose, None);
        let web = &histories[1];
        assert_eq!(
            web.compose,
            Some(ComposeService {
                project: "shop".to_owned(),
                service: "web".to_owned()
            })
        );
        assert_eq!(web.samples, 30);
        assert_eq!(web.working_set.len(), 2);
        assert_eq!(web.cpu_rate[0].value, 0.25);
        assert_eq!(web.limits.memory, Current::Set(268_435_456.0));
        assert_eq!(web.limits.cpus, Current::Set(0.5));
        assert_eq!(web.limits.pids, Current::Unknown);
        assert_eq!(web.host_cpus, Some(2.0));
    }
}
