//! The `homeward` command. All the work is in the library; this only parses and reports.
#![forbid(unsafe_code)]

use clap::{CommandFactory as _, FromArgMatches as _};

/// mimalloc: the command path allocates many small, short-lived values (states, rows, JSON);
/// glibc's allocator spent a quarter of the client's CPU on them in the benchmarks (`services/bench`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let matches = homeward::cli::Cli::command().get_matches();
    let cli = match homeward::cli::Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    homeward::telemetry::init(cli.log_json);
    match homeward::cli::run(cli, &matches).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("homeward: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
