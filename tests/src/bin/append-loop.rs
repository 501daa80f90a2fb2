//! The crash test's writer: appends to a few plans round-robin until killed, printing
//! `ack <command id>` after each acknowledged command. `tests/crash.rs` kills it with SIGKILL
//! and checks the log. `DATABASE_URL` names the database; `--plans N` how many plans.

use std::io::Write as _;
use std::sync::Arc;

use anyhow::Context as _;
use homeward_engine::{CommandHandler, CommandMeta, SystemClock};
use homeward_store_postgres::PgStore;
use homeward_workflows::plan::Plan;
use homeward_workflows::{PartyId, PlanId};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL").context("set DATABASE_URL")?;
    let mut args = std::env::args().skip(1);
    let mut plans = 8;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--plans" => {
                plans = args
                    .next()
                    .context("--plans needs a number")?
                    .parse()
                    .context("--plans needs a number")?
            }
            other => anyhow::bail!("unknown argument {other}; usage: append-loop [--plans N]"),
        }
    }
    if url.starts_with("sqlite:") {
        let store = Arc::new(homeward_store_sqlite::SqliteStore::connect(&url, 4).await?);
        homeward_store::Backend::migrate(store.as_ref()).await?;
        return append(store, plans).await;
    }
    let store = Arc::new(PgStore::connect(&url, 4).await?);
    store.migrate().await?;
    append(store, plans).await
}

/// Opens `plans` plans, then changes them round-robin until killed.
async fn append<S: homeward_store::Backend>(store: Arc<S>, plans: usize) -> anyhow::Result<()> {
    let master = homeward_engine::keys::MasterKey::from_base64(homeward_tests::TEST_MASTER_KEY)?;
    let vault = Arc::new(homeward_engine::vault::Vault::new(master, store.clone()));
    let handler = CommandHandler::new(store, Arc::new(SystemClock)).with_vault(vault);
    let worker = PartyId::new();
    let mut ids = Vec::new();
    for _ in 0..plans.max(1) {
        let id = PlanId::new();
        handler
            .handle::<Plan>(
                &id.stream_id(),
                &homeward_tests::open_standard_plan(id, worker),
                CommandMeta::new(worker),
            )
            .await?;
        ids.push(id);
    }
    let mut stdout = std::io::stdout().lock();
    for i in 0.. {
        let id = ids[i % ids.len()];
        let meta = CommandMeta::new(worker);
        handler
            .handle::<Plan>(
                &id.stream_id(),
                &homeward_tests::busy_command(i, worker),
                meta.clone(),
            )
            .await?;
        writeln!(stdout, "ack {}", meta.command_id)?;
        stdout.flush()?;
    }
    Ok(())
}
