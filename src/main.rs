//! The `stevedore` binary: parse flags, set up logging, run the chosen mode.

use std::process::ExitCode;

use stevedore::cli::{self, Command, PolicyCommand};
use stevedore::{app, logging};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::parse();
    logging::init(cli.log_level, cli.log_format);
    let result = match &cli.command {
        None => app::run_exporter(cli).await,
        Some(Command::Scrape) => app::scrape_once(cli).await.map(|text| print!("{text}")),
        Some(Command::Policy(PolicyCommand::Check { file })) => {
            return app::policy_check(file, &cli.procfs);
        }
        Some(Command::Policy(PolicyCommand::Plan { file })) => {
            let file = file.clone();
            app::policy_plan(cli, &file)
                .await
                .map(|text| print!("{text}"))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "stevedore stopped");
            eprintln!("stevedore: {error}");
            ExitCode::FAILURE
        }
    }
}
