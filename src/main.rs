//! The `stevedore` binary: parse flags, set up logging, run the chosen mode.

use std::process::ExitCode;

use stevedore::cli::{self, Command, PolicyCommand};
use stevedore::{app, logging};

// One worker: the exporter's async work (HTTP, the engine's events, the enforcer) is light,
// and files are read on blocking threads. A second worker is woken to steal whatever the
// first is given, a hand-off between threads that costs more than the work handed off.
#[tokio::main(worker_threads = 1)]
async fn main() -> ExitCode {
    limit_malloc_arenas();
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
        Some(Command::Recommend(args)) => app::recommend(args).await,
    };
    let code = match result {
        Ok(()) => 0,
        // Once, as a plain line: a multi-line error (every problem of a policy) stays
        // readable, and a service manager keeps stderr whatever the log format.
        Err(error) => {
            eprintln!("stevedore: {error}");
            1
        }
    };
    // Now, rather than when the runtime is dropped: that waits for every blocking read
    // still under way (a walk of a large writable layer, a collection nobody awaits).
    std::process::exit(code)
}

/// glibc gives each thread that allocates its own arena; samples allocated by the threads
/// that read targets and freed by the one that encodes them would stay spread over those
/// arenas. Two keep a 10,000-cgroup scrape's peak memory a third lower (see the README's
/// performance section).
fn limit_malloc_arenas() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets an allocator parameter; arenas made later follow it.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
