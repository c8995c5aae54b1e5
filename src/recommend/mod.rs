//! `stevedore recommend`: limits recommended from the history Prometheus kept of stevedore's
//! own series, written as a policy file that `policy check`, `policy plan` and the enforcer
//! read.
//!
//! - `prometheus`: the HTTP client; `api`: its answers read into series (pure);
//! - `selector`: `--match` and PromQL strings (pure);
//! - `history`: the queries, and one history per container;
//! - `grouping`: which containers share a rule, and its selector;
//! - `arithmetic`: percentiles, counters, rounding (pure);
//! - `sizing`: the limits of a rule and their evidence;
//! - `render` (the policy file, YAML), `table`, `json`: the outputs.

pub mod api;
pub mod arithmetic;
pub mod grouping;
pub mod history;
pub mod json;
pub mod prometheus;
pub mod render;
pub mod selector;
pub mod sizing;
pub mod table;

use std::time::Duration;

use self::grouping::{Group, GroupBy};
use self::history::{Scope, Window};
use self::prometheus::{Prometheus, PrometheusError, PrometheusUrl};
use self::selector::Matchers;
use self::sizing::{Outcome, Settings};
use crate::duration;

/// What to recommend from, and how.
#[derive(Debug, Clone)]
pub struct Request {
    pub url: PrometheusUrl,
    pub window: Duration,
    /// Time between points; the CPU rate is taken over each.
    pub step: Duration,
    pub matchers: Matchers,
    pub group_by: GroupBy,
    pub settings: Settings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A policy file, with the evidence for each rule in comments.
    Yaml,
    Json,
    /// For people: each limit now and recommended, and the change.
    Table,
}

#[derive(Debug, thiserror::Error)]
pub enum RecommendError {
    #[error(transparent)]
    Prometheus(#[from] PrometheusError),
    #[error("{0}")]
    Settings(String),
    #[error(
        "--window={window} is longer than Prometheus at {url} keeps samples (its retention is \
         {retention}): ask for --window={retention} or less"
    )]
    WindowBeyondRetention {
        url: String,
        window: String,
        retention: String,
    },
    #[error(
        "Prometheus at {url} holds no stevedore series in the last {window} (no \
         stevedore_build_info): it does not scrape stevedore, or has not for that long. {jobs} \
         Add stevedore (port 9417) to its scrape_configs, or point --prometheus.url at the \
         Prometheus that scrapes it"
    )]
    NoStevedore {
        url: String,
        window: String,
        /// A sentence naming the jobs it does scrape.
        jobs: String,
    },
    #[error(
        "--match {matchers} selects none of the {all} containers stevedore reported to \
         Prometheus at {url} in the last {window} (stevedore's series are in job {jobs}): is a \
         job or label in it wrong?"
    )]
    NothingMatches {
        url: String,
        window: String,
        matchers: String,
        all: usize,
        jobs: String,
    },
    #[error(
        "stevedore (job {jobs}) reported no container to Prometheus at {url} in the last \
         {window}: were containers running, and is its memory collector on?"
    )]
    NoContainers {
        url: String,
        window: String,
        jobs: String,
    },
}

/// One group and what became of it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub group: Group,
    pub outcome: Outcome,
}

/// Everything the outputs write.
#[derive(Debug, Clone)]
pub struct Report {
    pub prometheus: String,
    pub window: Window,
    pub settings: Settings,
    pub matchers: Matchers,
    pub entries: Vec<Entry>,
}

impl Report {
    /// How many rules the recommendation holds (groups with history enough).
    pub fn rules(&self) -> usize {
        self.entries
            .iter()
            .filter(|entry| matches!(entry.outcome, Outcome::Rule(_)))
            .count()
    }

    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Yaml => render::yaml(self),
            Format::Json => json::json(self),
            Format::Table => table::table(self),
        }
    }
}

fn quoted_list(values: &[String]) -> String {
    values
        .iter()
        .map(|value| format!("{value:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks what the flags' parsers cannot see alone.
pub fn check(request: &Request) -> Result<(), RecommendError> {
    let refuse = |message: String| Err(RecommendError::Settings(message));
    if request.step.is_zero() {
        return refuse("--step must be more than 0".to_owned());
    }
    if request.window < request.step * 2 {
        return refuse(format!(
            "--window={} holds fewer than two --step={} points",
            duration::format(request.window),
            duration::format(request.step)
        ));
    }
    if request.settings.min_history > request.window {
        return refuse(format!(
            "--min-history={} is longer than --window={}: no container could show that much \
             history in the window",
            duration::format(request.settings.min_history),
            duration::format(request.window)
        ));
    }
    Ok(())
}

/// Reads the history and sizes every group.
pub async fn recommend(request: &Request) -> Result<Report, RecommendError> {
    check(request)?;
    let prometheus = Prometheus::new(request.url.clone());
    let url = prometheus.url().to_owned();
    let window_text = duration::format(request.window);
    if let Some(retention) = prometheus.retention().await?
        && request.window > retention
    {
        return Err(RecommendError::WindowBeyondRetention {
            url,
            window: window_text,
            retention: duration::format(retention),
        });
    }
    // Prometheus' clock, not ours: the window ends at its "now".
    let now = prometheus
        .query("time()", None)
        .await?
        .first()
        .and_then(|series| series.points.first())
        .map(|point| point.value)
        .ok_or_else(|| PrometheusError::NotPrometheus {
            url: url.clone(),
            request: "the query time()".to_owned(),
            answer: "no value".to_owned(),
        })?;
    let window = Window::ending_at(now, request.window, request.step);

    let jobs = history::stevedore_jobs(&prometheus, &window).await?;
    if jobs.is_empty() {
        let scraped = prometheus.label_values("job").await?;
        return Err(RecommendError::NoStevedore {
            url,
            window: window_text,
            jobs: if scraped.is_empty() {
                "It holds no series at all.".to_owned()
            } else {
                format!("The jobs it scrapes: {}.", quoted_list(&scraped))
            },
        });
    }
    let scope = Scope {
        jobs,
        matchers: request.matchers.clone(),
    };
    let histories = history::fetch(&prometheus, &scope, &window).await?;
    if histories.is_empty() {
        let jobs = quoted_list(&scope.jobs);
        if !scope.matchers.is_empty() {
            let all =
                history::count_containers(&prometheus, &scope.without_matchers(), &window).await?;
            if all > 0 {
                return Err(RecommendError::NothingMatches {
                    url,
                    window: window_text,
                    matchers: scope.matchers.describe(),
                    all,
                    jobs,
                });
            }
        }
        return Err(RecommendError::NoContainers {
            url,
            window: window_text,
            jobs,
        });
    }
    let entries = grouping::group(histories, request.group_by)
        .into_iter()
        .map(|group| Entry {
            outcome: sizing::size(&group, &window, &request.settings),
            group,
        })
        .collect();
    Ok(Report {
        prometheus: url,
        window,
        settings: request.settings,
        matchers: request.matchers.clone(),
        entries,
    })
}
