//! Command-line flags, named as Prometheus exporters name them (`--web.listen-address`,
//! `--path.procfs`, `--collector.<name>`). The collector flags are generated from the
//! collector registry, so the two cannot disagree.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Arg, ArgAction, ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::collector::{self, Collector};
use crate::logging::{LogFormat, LogLevel};
use crate::policy::PolicyMode;
use crate::recommend::grouping::GroupBy;
use crate::recommend::prometheus::{PrometheusUrl, parse_url};
use crate::recommend::{self, Format};

#[derive(Debug, Parser)]
#[command(
    name = "stevedore",
    version,
    about = "Prometheus exporter and limit enforcer for Docker containers: cgroup usage and \
             limits, engine events, and declared resource limits."
)]
pub struct Cli {
    /// Address to listen on for the web interface and telemetry.
    #[arg(long = "web.listen-address", default_value = ":9417", global = true)]
    pub listen_address: String,

    /// Path under which to expose metrics.
    #[arg(long = "web.telemetry-path", default_value = "/metrics", global = true)]
    pub telemetry_path: String,

    /// TLS and basic authentication, in the Prometheus exporter-toolkit's web configuration
    /// format.
    #[arg(long = "web.config.file", value_name = "FILE", global = true)]
    pub web_config_file: Option<PathBuf>,

    /// Scrapes answered at once; past it, 503 at once. 0 for no limit.
    #[arg(long = "web.max-requests", default_value_t = 40, global = true)]
    pub max_requests: usize,

    /// How long a scrape may wait for its metrics before it is answered 503. Prometheus'
    /// own timeout (its X-Prometheus-Scrape-Timeout-Seconds header) applies when shorter.
    #[arg(
        long = "web.request-timeout",
        value_name = "DURATION",
        default_value = "10s",
        value_parser = parse_duration,
        global = true
    )]
    pub request_timeout: Duration,

    /// Docker Engine address, as DOCKER_HOST: unix:///path, /path, tcp://host:port,
    /// tcp://host (port 2375) or host:port.
    #[arg(
        long = "docker.host",
        env = "DOCKER_HOST",
        default_value = "unix:///var/run/docker.sock",
        global = true
    )]
    pub docker_host: String,

    /// How long a request to the engine may take before the engine counts as unreachable
    /// (docker_up 0). A quiet event stream is checked by a ping this often, at most every 15 s.
    #[arg(
        long = "docker.timeout",
        value_name = "DURATION",
        default_value = "10s",
        value_parser = parse_duration,
        global = true
    )]
    pub docker_timeout: Duration,

    /// Root of the cgroup filesystem.
    #[arg(
        long = "path.cgroupfs",
        default_value = "/sys/fs/cgroup",
        global = true
    )]
    pub cgroupfs: PathBuf,

    /// procfs mountpoint (for mountinfo, partitions and container processes).
    #[arg(long = "path.procfs", default_value = "/proc", global = true)]
    pub procfs: PathBuf,

    /// Docker labels to copy onto samples as container_label_<name>, by glob (comma-separated
    /// or repeated; an empty value copies none). All of them by default, as cAdvisor.
    #[arg(
        long = "docker.label-allowlist",
        value_name = "GLOB",
        value_delimiter = ',',
        default_values_t = ["*".to_owned()],
        global = true
    )]
    pub label_allowlist: Vec<String>,

    /// Environment variables to copy onto samples as container_env_<name>, by glob (like
    /// cAdvisor's --env_metadata_whitelist). None by default: environments hold secrets.
    #[arg(
        long = "docker.env-allowlist",
        value_name = "GLOB",
        value_delimiter = ',',
        global = true
    )]
    pub env_allowlist: Vec<String>,

    /// Report the root cgroup (id="/"): the host's CPU, memory, block I/O and network.
    #[arg(
        long = "cgroup.root",
        default_value_t = true,
        action = ArgAction::Set,
        value_name = "BOOL",
        global = true
    )]
    pub root_cgroup: bool,

    /// How often containers' writable layers are walked for container_fs_usage_bytes, in
    /// the background (e.g. 30s, 1m, 5m).
    #[arg(
        long = "disk.refresh-interval",
        value_name = "DURATION",
        default_value = "1m",
        value_parser = parse_duration,
        global = true
    )]
    pub disk_refresh_interval: Duration,

    /// Also export cgroups that are not Docker containers, by cgroup path pattern
    /// (e.g. '/system.slice/*.service'); labelled by id only. Repeatable.
    #[arg(long = "cgroup.raw", value_name = "GLOB", global = true)]
    pub raw_cgroups: Vec<String>,

    /// Threads reading targets at once during a scrape (default: the CPUs this process may
    /// use). A scrape of few targets reads them on one thread whatever this says.
    #[arg(
        long = "scrape.parallelism",
        value_name = "THREADS",
        default_value_t = available_cpus(),
        value_parser = parse_parallelism,
        global = true
    )]
    pub scrape_parallelism: usize,

    /// Only log messages at or above this level.
    #[arg(long = "log.level", value_enum, default_value = "info", global = true)]
    pub log_level: LogLevel,

    /// Log line format.
    #[arg(
        long = "log.format",
        value_enum,
        default_value = "logfmt",
        global = true
    )]
    pub log_format: LogFormat,

    /// Limit policy file (YAML) to report on or enforce; reloaded on SIGHUP and when it
    /// changes.
    #[arg(long = "policy.file", value_name = "FILE", global = true)]
    pub policy_file: Option<PathBuf>,

    /// What to do with the policy: report drift only, or apply its limits.
    #[arg(
        long = "policy.mode",
        value_enum,
        default_value = "report",
        global = true
    )]
    pub policy_mode: PolicyMode,

    #[command(subcommand)]
    pub command: Option<Command>,

    /// Filled from the generated `--[no-]collector.<name>` flags.
    #[arg(skip)]
    pub enabled_collectors: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Collect once and print the metrics to stdout (Prometheus text format), then exit.
    Scrape,
    /// Check a limit policy file, or show what it would change.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Recommend limits from the history Prometheus kept of stevedore's series, printed as
    /// a limit policy (with the evidence for each rule in comments).
    Recommend(RecommendArgs),
}

/// `stevedore recommend`. The defaults and why they are what they are: README, "Right-sizing".
#[derive(Debug, Clone, clap::Args)]
pub struct RecommendArgs {
    /// Prometheus' address, plain HTTP (with its --web.route-prefix, if any), e.g.
    /// http://localhost:9090.
    #[arg(long = "prometheus.url", value_name = "URL", value_parser = parse_url)]
    pub prometheus_url: PrometheusUrl,

    /// How much history to read, up to now (e.g. 7d, 36h).
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = parse_duration)]
    pub window: Duration,

    /// A container (or group of them) seen for less than this gets no rule.
    #[arg(long = "min-history", value_name = "DURATION", default_value = "1d", value_parser = parse_duration)]
    pub min_history: Duration,

    /// Time between the points read; the CPU rate is taken over each, so it must hold at
    /// least two scrapes. Grows when the window would need more than 11,000 points.
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = parse_duration)]
    pub step: Duration,

    /// Only containers whose series match these PromQL label matchers, e.g.
    /// 'name=~"shop-.*"' or '{instance="host:9417"}'. Repeatable; all must hold.
    #[arg(long = "match", value_name = "MATCHERS")]
    pub matchers: Vec<String>,

    /// service: a compose service's replicas share a rule, other containers one per image;
    /// container: one rule per container name.
    #[arg(long = "group-by", value_enum, default_value = "service")]
    pub group_by: GroupBy,

    /// yaml: a policy file; json: for programs; table: now -> recommended, for people.
    #[arg(long, value_enum, default_value = "yaml")]
    pub format: Format,

    /// Percent added to the peak working set for `memory`.
    #[arg(long = "memory-headroom", value_name = "PERCENT", default_value = "15", value_parser = parse_percent)]
    pub memory_headroom: f64,

    /// Percentile of the CPU rate `cpus` is taken from.
    #[arg(long = "cpu-percentile", value_name = "PERCENTILE", default_value = "95", value_parser = parse_percentile)]
    pub cpu_percentile: f64,

    /// Percent added to that percentile for `cpus`.
    #[arg(long = "cpu-headroom", value_name = "PERCENT", default_value = "15", value_parser = parse_percent)]
    pub cpu_headroom: f64,

    /// Percent added to the peak task count for `pids-limit`.
    #[arg(long = "pids-headroom", value_name = "PERCENT", default_value = "100", value_parser = parse_percent)]
    pub pids_headroom: f64,
}

impl RecommendArgs {
    pub fn request(&self) -> Result<recommend::Request, String> {
        Ok(recommend::Request {
            url: self.prometheus_url.clone(),
            window: self.window,
            step: self.step,
            matchers: recommend::selector::Matchers::parse(&self.matchers)?,
            group_by: self.group_by,
            settings: recommend::sizing::Settings {
                memory_headroom: self.memory_headroom,
                cpu_headroom: self.cpu_headroom,
                cpu_percentile: self.cpu_percentile,
                pids_headroom: self.pids_headroom,
                min_history: self.min_history,
            },
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Exit 0 when the file is valid; otherwise print each problem as FILE:LINE:COLUMN and
    /// exit 1.
    Check { file: PathBuf },
    /// For each container the policy selects: current -> wanted limits. Applies nothing.
    Plan { file: PathBuf },
}

pub fn command() -> clap::Command {
    // A flag given twice takes its last value, as with Prometheus exporters.
    let mut command = Cli::command().args_override_self(true);
    for &&Collector {
        name,
        help,
        enabled_by_default: enabled,
        ..
    } in &collector::ALL
    {
        let default = if enabled { "enabled" } else { "disabled" };
        command = command
            .arg(
                Arg::new(format!("collector.{name}"))
                    .long(format!("collector.{name}"))
                    .help(format!(
                        "Enable the {name} collector: {help} (default: {default})."
                    ))
                    .action(ArgAction::SetTrue)
                    .global(true)
                    .overrides_with(format!("no-collector.{name}")),
            )
            .arg(
                Arg::new(format!("no-collector.{name}"))
                    .long(format!("no-collector.{name}"))
                    .help(format!("Disable the {name} collector."))
                    .action(ArgAction::SetTrue)
                    .global(true)
                    .overrides_with(format!("collector.{name}")),
            );
    }
    command
}

pub fn parse() -> Cli {
    let matches = command().get_matches();
    from_matches(&matches).unwrap_or_else(|error| error.exit())
}

pub fn try_parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = command().try_get_matches_from(args)?;
    from_matches(&matches)
}

fn from_matches(matches: &ArgMatches) -> Result<Cli, clap::Error> {
    let mut cli = Cli::from_arg_matches(matches)?;
    cli.enabled_collectors = collector::ALL
        .iter()
        .filter(|switch| {
            if matches.get_flag(&format!("collector.{}", switch.name)) {
                true
            } else if matches.get_flag(&format!("no-collector.{}", switch.name)) {
                false
            } else {
                switch.enabled_by_default
            }
        })
        .map(|switch| switch.name.to_owned())
        .collect();
    cli.label_allowlist.retain(|label| !label.is_empty());
    cli.env_allowlist.retain(|name| !name.is_empty());
    Ok(cli)
}

impl Cli {
    /// Checks what clap cannot: values that would break the server or every scrape.
    pub fn validate(&self) -> Result<(), String> {
        let path = &self.telemetry_path;
        if !path.starts_with('/') || path == "/" || path == "/healthz" {
            return Err(format!(
                "--web.telemetry-path={path:?}: a path like /metrics, other than / and /healthz"
            ));
        }
        label_patterns("--docker.label-allowlist", &self.label_allowlist)?;
        label_patterns("--docker.env-allowlist", &self.env_allowlist)?;
        if self.disk_refresh_interval < Duration::from_secs(1) {
            return Err(
                "--disk.refresh-interval: at least 1s; a walk reads every file of every layer"
                    .to_owned(),
            );
        }
        Ok(())
    }

    pub fn collector_enabled(&self, name: &str) -> bool {
        self.enabled_collectors
            .iter()
            .any(|enabled| enabled == name)
    }

    /// The collectors to run, in registry order.
    pub fn collectors(&self) -> Vec<&'static Collector> {
        collector::ALL
            .iter()
            .copied()
            .filter(|collector| self.collector_enabled(collector.name))
            .collect()
    }
}

/// The CPUs this process may run on (its affinity and cgroup quota included).
pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |cpus| cpus.get())
}

fn parse_parallelism(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(threads @ 1..=1024) => Ok(threads),
        _ => Err(format!("{text:?}: a number of threads from 1 to 1024")),
    }
}

/// The glob patterns of an allowlist flag.
pub fn label_patterns(flag: &str, globs: &[String]) -> Result<Vec<glob::Pattern>, String> {
    globs
        .iter()
        .map(|glob| glob::Pattern::new(glob).map_err(|error| format!("{flag}={glob:?}: {error}")))
        .collect()
}

/// A duration as Prometheus writes them (`250ms`, `30s`, `1h30m`, `7d`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::duration::parse(text)
}

/// A percentage (`15` or `15%`) as a fraction (0.15), from 0 to 1000 %.
fn parse_percent(text: &str) -> Result<f64, String> {
    let number = text.trim().trim_end_matches('%');
    match number.parse::<f64>() {
        Ok(percent) if (0.0..=1000.0).contains(&percent) => Ok(percent / 100.0),
        _ => Err(format!("{text:?}: a percentage from 0 to 1000, e.g. 15")),
    }
}

/// A percentile (`95`, `99.9`) as a quantile (0.95), above 0 and at most 100.
fn parse_percentile(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(percentile) if percentile > 0.0 && percentile <= 100.0 => Ok(percentile / 100.0),
        _ => Err(format!(
            "{text:?}: a percentile above 0 and at most 100, e.g. 95"
        )),
    }
}

/// `:9417` listens on every address, as Go exporters read it; `host:port` as given.
/// `--web.listen-address`: `host:port`, `[v6]:port` or `:port` (every address). A host
/// name is resolved, and the first address it resolves to is the one listened on.
pub fn listen_address(text: &str) -> Result<SocketAddr, String> {
    let full = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_owned()
    };
    if let Ok(address) = full.parse() {
        return Ok(address);
    }
    let Some((host, port)) = full.rsplit_once(':') else {
        return Err(format!(
            "--web.listen-address={text:?} has no port (host:port or :port)"
        ));
    };
    if port.parse::<u16>().is_err() {
        return Err(format!(
            "--web.listen-address={text:?}: {port:?} is not a port number"
        ));
    }
    use std::net::ToSocketAddrs;
    let mut addresses = full.to_socket_addrs().map_err(|error| {
        format!("--web.listen-address={text:?}: cannot resolve {host:?}: {error}")
    })?;
    addresses
        .next()
        .ok_or_else(|| format!("--web.listen-address={text:?}: {host:?} resolves to no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_exporter_conventions() {
        let cli = try_parse_from(["stevedore"]).unwrap();
        assert_eq!(cli.listen_address, ":9417");
        assert_eq!(cli.telemetry_path, "/metrics");
        assert_eq!(cli.cgroupfs, PathBuf::from("/sys/fs/cgroup"));
        assert!(cli.collector_enabled("cpu"));
        assert!(!cli.collector_enabled("process"));
        assert!(cli.collector_enabled("engine"));
        assert!(cli.command.is_none());
        assert_eq!(cli.policy_mode, PolicyMode::Report);
        assert!(cli.policy_file.is_none());
    }

    #[test]
    fn policy_commands() {
        let cli = try_parse_from(["stevedore", "policy", "check", "limits.yaml"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Policy(PolicyCommand::Check { ref file })) if file == &PathBuf::from("limits.yaml")
        ));
        let cli = try_parse_from([
            "stevedore",
            "--policy.file=limits.yaml",
            "--policy.mode=enforce",
        ])
        .unwrap();
        assert_eq!(cli.policy_mode, PolicyMode::Enforce);
        assert!(try_parse_from(["stevedore", "--policy.mode=sometimes"]).is_err());
    }

    #[test]
    fn recommend_defaults_and_flags() {
        let cli = try_parse_from([
            "stevedore",
            "recommend",
            "--prometheus.url=http://prom:9090",
        ])
        .unwrap();
        let Some(Command::Recommend(args)) = cli.command else {
            panic!("not recommend: {:?}", cli.command);
        };
        assert_eq!(args.prometheus_url.host, "prom");
        assert_eq!(args.window, Duration::from_secs(7 * 86400));
        assert_eq!(args.min_history, Duration::from_secs(86400));
        assert_eq!(args.step, Duration::from_secs(60));
        assert_eq!(args.group_by, GroupBy::Service);
        assert_eq!(args.format, Format::Yaml);
        assert_eq!(args.memory_headroom, 0.15);
        assert_eq!(args.cpu_headroom, 0.15);
        assert_eq!(args.cpu_percentile, 0.95);
        assert_eq!(args.pids_headroom, 1.0);
        let request = args.request().unwrap();
        assert!(request.matchers.is_empty());

        let cli = try_parse_from([
            "stevedore",
            "recommend",
            "--prometheus.url=http://prom:9090",
            "--window=2d",
            "--memory-headroom=25%",
            "--cpu-percentile=99.5",
            "--match=job=\"x\"",
            "--format=table",
            "--group-by=container",
        ])
        .unwrap();
        let Some(Command::Recommend(args)) = cli.command else {
            panic!("not recommend");
        };
        assert_eq!(args.memory_headroom, 0.25);
        assert_eq!(args.cpu_percentile, 0.995);
        assert_eq!(args.request().unwrap().matchers.inner(), "job=\"x\"");
        for bad in [
            "--memory-headroom=-5",
            "--cpu-percentile=0",
            "--cpu-percentile=101",
            "--window=7days",
            "--prometheus.url=https://prom",
        ] {
            assert!(
                try_parse_from([
                    "stevedore",
                    "recommend",
                    "--prometheus.url=http://p:9090",
                    bad
                ])
                .is_err(),
                "{bad}"
            );
        }
        assert!(
            try_parse_from(["stevedore", "recommend"]).is_err(),
            "the URL is required"
        );
    }

    #[test]
    fn every_recommend_flag_has_a_readme_row() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
            .expect("README.md");
        let command = command();
        let recommend = command
            .find_subcommand("recommend")
            .expect("a recommend subcommand");
        let flags: Vec<&str> = recommend
            .get_arguments()
            .filter_map(|arg| arg.get_long())
            .collect();
        assert!(
            flags.contains(&"prometheus.url") && flags.len() >= 11,
            "{flags:?}"
        );
        let missing: Vec<&&str> = flags
            .iter()
            .filter(|long| !readme.contains(&format!("| `--{long}` |")))
            .collect();
        assert!(missing.is_empty(), "README rows missing for {missing:?}");
    }

    #[test]
    fn collector_flags_switch_collectors_and_the_last_one_wins() {
        let cli = try_parse_from([
            "stevedore",
            "--no-collector.pressure",
            "--no-collector.cpu",
            "--collector.cpu",
            "scrape",
            "--no-collector.engine",
        ])
        .unwrap();
        assert!(!cli.collector_enabled("pressure"));
        assert!(cli.collector_enabled("cpu"));
        assert!(!cli.collector_enabled("engine"));
        assert!(matches!(cli.command, Some(Command::Scrape)));
        let names: Vec<&str> = cli.collectors().iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "cpu",
                "memory",
                "blkio",
                "pids",
                "network",
                "load",
                "lifecycle",
                "disk",
                "machine",
                "policy",
                "exporter"
            ],
            "in registry order; process is off by default"
        );
        assert!(try_parse_from(["stevedore", "--collector.nonesuch"]).is_err());
    }

    #[test]
    fn label_allowlist_and_listen_address() {
        let cli = try_parse_from(["stevedore", "--docker.label-allowlist=a.b,c"]).unwrap();
        assert_eq!(cli.label_allowlist, vec!["a.b", "c"]);
        let none = try_parse_from(["stevedore", "--docker.label-allowlist="]).unwrap();
        assert!(none.label_allowlist.is_empty());
        let defaults = try_parse_from(["stevedore"]).unwrap();
        assert_eq!(defaults.label_allowlist, ["*"], "all labels, as cAdvisor");
        assert!(
            defaults.env_allowlist.is_empty(),
            "no environment by default"
        );
        assert!(defaults.root_cgroup);
        assert_eq!(defaults.disk_refresh_interval, Duration::from_secs(60));
        assert_eq!(defaults.scrape_parallelism, available_cpus());
        let one = try_parse_from(["stevedore", "--scrape.parallelism=1"]).unwrap();
        assert_eq!(one.scrape_parallelism, 1);
        assert!(try_parse_from(["stevedore", "--scrape.parallelism=0"]).is_err());
        let off = try_parse_from([
            "stevedore",
            "--cgroup.root=false",
            "--disk.refresh-interval=90s",
        ])
        .unwrap();
        assert!(!off.root_cgroup);
        assert_eq!(off.disk_refresh_interval, Duration::from_secs(90));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
        for bad in ["", "5", "m", "-1s", "1.5s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(
            listen_address(":9417").unwrap(),
            "0.0.0.0:9417".parse().unwrap()
        );
        assert_eq!(
            listen_address("127.0.0.1:0").unwrap(),
            "127.0.0.1:0".parse().unwrap()
        );
        assert_eq!(
            listen_address("localhost:9417").unwrap().port(),
            9417,
            "host names resolve"
        );
        assert!(listen_address("localhost:9417").unwrap().ip().is_loopback());
        assert!(
            listen_address("nowhere")
                .unwrap_err()
                .contains("has no port")
        );
        assert!(
            listen_address("localhost:http")
                .unwrap_err()
                .contains("not a port number")
        );
        assert!(
            listen_address("no-such-host.invalid:9417")
                .unwrap_err()
                .contains("cannot resolve \"no-such-host.invalid\"")
        );
    }

    #[test]
    fn values_that_would_break_serving_are_refused() {
        let valid = try_parse_from(["stevedore"]).unwrap();
        assert!(valid.validate().is_ok());
        for path in ["/", "/healthz", "metrics"] {
            let cli =
                try_parse_from(["stevedore", &format!("--web.telemetry-path={path}")]).unwrap();
            assert!(cli.validate().is_err(), "{path}");
        }
        let bad_glob = try_parse_from(["stevedore", "--docker.env-allowlist=APP_[x"]).unwrap();
        assert!(
            bad_glob
                .validate()
                .unwrap_err()
                .contains("--docker.env-allowlist")
        );
        let too_often = try_parse_from(["stevedore", "--disk.refresh-interval=10ms"]).unwrap();
        assert!(too_often.validate().is_err());
    }
}
