//! The `homeward` command. All the work is in the library; this only parses and reports.
#![forbid(unsafe_code)]

use clap::Parser;

/// mimalloc: the command path allocates many small, short-lived values (states, rows, JSON);
/// glibc's allocator spent a quarter of the client's CPU on them in the benchmarks (`services/bench`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = homeward::cli::Cli::parse();
    homeward::telemetry::init(cli.log_json);
    match homeward::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("homeward: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
