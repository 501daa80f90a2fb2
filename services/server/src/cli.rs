//! Command-line interface.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use homeward_engine::{CommandHandler, CommandMeta, SystemClock};
use homeward_store::PgStore;
use homeward_workflows::plan::{Plan, PlanCommand};
use homeward_workflows::PlanId;

use crate::bench;

#[derive(Debug, Parser)]
#[command(
    name = "homeward",
    version,
    about = "Event-sourced return and reintegration plans"
)]
pub struct Cli {
    /// PostgreSQL connection URL, e.g. postgres://user@localhost/homeward
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Log as JSON lines instead of text.
    #[arg(long, env = "HOMEWARD_LOG_JSON", global = true)]
    pub log_json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply the database migrations (also done on start by the commands that need them).
    Migrate,
    /// Manage the read models.
    Projections {
        #[command(subcommand)]
        action: ProjectionsAction,
    },
    /// Measure throughput; see BENCHMARKS.md.
    Bench(bench::BenchArgs),
    /// For crash tests: append plan commands forever, printing each acknowledged command.
    #[command(hide = true)]
    AppendLoop {
        #[arg(long, default_value_t = 8)]
        plans: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsAction {
    /// Recompute every read model from the event log.
    Rebuild,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let url = cli
        .database_url
        .context("set DATABASE_URL (or --database-url) to a PostgreSQL connection URL")?;
    match cli.command {
        Command::Migrate => {
            let store = connect(&url, 2).await?;
            store.migrate().await.context("applying migrations")?;
            println!("migrations applied");
        }
        Command::Projections {
            action: ProjectionsAction::Rebuild,
        } => {
            let store = connect(&url, 2).await?;
            store.migrate().await.context("applying migrations")?;
            let report = homeward_store::rebuild(store.pool())
                .await
                .context("rebuilding projections")?;
            println!(
                "rebuilt projections from {} events in {} streams: {} rows in {:.2?}",
                report.events, report.streams, report.rows, report.elapsed
            );
        }
        Command::Bench(args) => bench::run(&url, args).await?,
        Command::AppendLoop { plans } => append_loop(&url, plans).await?,
    }
    Ok(())
}

async fn connect(url: &str, max_connections: u32) -> anyhow::Result<PgStore> {
    PgStore::connect(url, max_connections)
        .await
        .context("connecting to PostgreSQL (check DATABASE_URL)")
}

/// Appends to a few plans round-robin until killed, printing `ack <command id>` after each
/// acknowledged command. The crash test kills it with SIGKILL and checks the log.
async fn append_loop(url: &str, plans: usize) -> anyhow::Result<()> {
    let store = Arc::new(connect(url, 4).await?);
    store.migrate().await?;
    let handler = CommandHandler::new(store, Arc::new(SystemClock));
    let worker = homeward_workflows::PartyId::new();
    let mut ids = Vec::new();
    for _ in 0..plans.max(1) {
        let id = PlanId::new();
        handler
            .handle::<Plan>(
                &id.stream_id(),
                &bench::open_plan_command(id, worker),
                CommandMeta::new(worker),
            )
            .await?;
        ids.push(id);
    }
    let mut stdout = std::io::stdout().lock();
    for i in 0.. {
        let id = ids[i % ids.len()];
        let meta = CommandMeta::new(worker);
        let command: PlanCommand = bench::busy_command(i, worker);
        handler
            .handle::<Plan>(&id.stream_id(), &command, meta)
            .await?;
        writeln!(stdout, "ack {}", meta.command_id)?;
        stdout.flush()?;
    }
    Ok(())
}
