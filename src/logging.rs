//! Log set-up: `--log.level` and `--log.format` (logfmt or json), written to stderr so
//! that stdout stays free for the one-shot `scrape` output.

use clap::ValueEnum;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Logfmt,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Also every file each scrape reads (for benchmarks).
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl From<LogLevel> for LevelFilter {
    fn from(level: LogLevel) -> Self {
        match level {
            LogLevel::Trace => LevelFilter::TRACE,
            LogLevel::Debug => LevelFilter::DEBUG,
            LogLevel::Info => LevelFilter::INFO,
            LogLevel::Warn => LevelFilter::WARN,
            LogLevel::Error => LevelFilter::ERROR,
        }
    }
}

pub fn init(level: LogLevel, format: LogFormat) {
    // Only our own crate logs at the chosen level; libraries stay at warn.
    let filter = tracing_subscriber::filter::Targets::new()
        .with_default(LevelFilter::WARN)
        .with_target("stevedore", LevelFilter::from(level));
    // The formatter lets everything through; `filter` decides.
    let _ = match format {
        LogFormat::Logfmt => tracing::subscriber::set_global_default(
            tracing_logfmt::builder()
                .with_span_name(false)
                .with_span_path(false)
                .subscriber_builder()
                .with_writer(std::io::stderr)
                .with_max_level(LevelFilter::TRACE)
                .finish()
                .with(filter),
        ),
        LogFormat::Json => tracing::subscriber::set_global_default(
            tracing_subscriber::fmt()
                .json()
                .with_writer(std::io::stderr)
                .with_max_level(LevelFilter::TRACE)
                .finish()
                .with(filter),
        ),
    };
}
