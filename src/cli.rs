//! Command-line flags, named as Prometheus exporters name them (`--web.listen-address`,
//! `--path.procfs`, `--collector.<name>`). The collector flags are generated from the
//! collector registry, so the two cannot disagree.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::collector::{self, Collector};
use crate::docker::container::{COMPOSE_PROJECT_LABEL, COMPOSE_SERVICE_LABEL};
use crate::docker::inventory::sanitize_label_name;
use crate::logging::{LogFormat, LogLevel};
use crate::policy::PolicyMode;

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

    /// Docker Engine address (unix:///path or tcp://host:port).
    #[arg(
        long = "docker.host",
        env = "DOCKER_HOST",
        default_value = "unix:///var/run/docker.sock",
        global = true
    )]
    pub docker_host: String,

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

    /// Docker labels to copy onto samples as container_label_<name> (comma-separated or
    /// repeated; an empty value copies none).
    #[arg(
        long = "docker.label-allowlist",
        value_delimiter = ',',
        default_values_t = [COMPOSE_PROJECT_LABEL.to_owned(), COMPOSE_SERVICE_LABEL.to_owned()],
        global = true
    )]
    pub label_allowlist: Vec<String>,

    /// Also export cgroups that are not Docker containers, by cgroup path pattern
    /// (e.g. '/system.slice/*.service'); labelled by id only. Repeatable.
    #[arg(long = "cgroup.raw", value_name = "GLOB", global = true)]
    pub raw_cgroups: Vec<String>,

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
    for collector::Switch {
        name,
        help,
        enabled_by_default: enabled,
    } in collector::switches()
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
    cli.enabled_collectors = collector::switches()
        .into_iter()
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
        let mut names: Vec<(String, &str)> = Vec::new();
        for label in &self.label_allowlist {
            let name = sanitize_label_name(label);
            if let Some((_, other)) = names.iter().find(|(seen, _)| *seen == name) {
                return Err(format!(
                    "--docker.label-allowlist: {other:?} and {label:?} both become container_label_{name}"
                ));
            }
            names.push((name, label));
        }
        Ok(())
    }

    pub fn collector_enabled(&self, name: &str) -> bool {
        self.enabled_collectors
            .iter()
            .any(|enabled| enabled == name)
    }

    /// The per-cgroup collectors to run, in registry order.
    pub fn cgroup_collectors(&self) -> Vec<&'static Collector> {
        collector::ALL
            .iter()
            .copied()
            .filter(|collector| self.collector_enabled(collector.name))
            .collect()
    }
}

/// `:9417` listens on every address, as Go exporters read it; `host:port` as given.
pub fn listen_address(text: &str) -> Result<SocketAddr, String> {
    let full = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_owned()
    };
    full.parse()
        .map_err(|_| format!("--web.listen-address={text:?} is not host:port or :port"))
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
        assert_eq!(
            cli.label_allowlist,
            vec!["com.docker.compose.project", "com.docker.compose.service"]
        );
        assert!(cli.collector_enabled("cpu"));
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
        let names: Vec<&str> = cli.cgroup_collectors().iter().map(|c| c.name).collect();
        assert_eq!(names, vec!["cpu", "memory", "blkio", "pids"]);
        assert!(try_parse_from(["stevedore", "--collector.nonesuch"]).is_err());
    }

    #[test]
    fn label_allowlist_and_listen_address() {
        let cli = try_parse_from(["stevedore", "--docker.label-allowlist=a.b,c"]).unwrap();
        assert_eq!(cli.label_allowlist, vec!["a.b", "c"]);
        let none = try_parse_from(["stevedore", "--docker.label-allowlist="]).unwrap();
        assert!(none.label_allowlist.is_empty());
        assert_eq!(
            listen_address(":9417").unwrap(),
            "0.0.0.0:9417".parse().unwrap()
        );
        assert_eq!(
            listen_address("127.0.0.1:0").unwrap(),
            "127.0.0.1:0".parse().unwrap()
        );
        assert!(listen_address("nowhere").is_err());
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
        let clash = try_parse_from(["stevedore", "--docker.label-allowlist=a.b,a-b"]).unwrap();
        assert!(
            clash
                .validate()
                .unwrap_err()
                .contains("container_label_a_b")
        );
    }
}
