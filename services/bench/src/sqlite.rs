//! The embedded SQLite backend against SQLite's own limit, in one run.
//!
//! Appends are compared with a plain `INSERT` of the same row into a table of the same shape and
//! keys, one per transaction, on one connection at the same durability (WAL, `synchronous=FULL`:
//! every commit waits for the disk). SQLite has one writer at a time, so that is the most a
//! file takes, whatever the number of writers; the store's group commit may go past it when
//! several write at once. Then the `homeward` binary's memory: idle on an empty database, and
//! after 10,000 plans are loaded and read through the API.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use homeward_engine::{CommandHandler, SystemClock};
use homeward_store::Backend as _;
use homeward_store_sqlite::SqliteStore;
use serde_json::json;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions as _, SqliteConnection};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use uuid::Uuid;

use crate::console::gql;
use crate::{
    bare_writer, bench_vault, command_writer, median_of_sorted, metadata, payload, prepare_plans,
    run_loops, BenchArgs, Writer, BENCH_MASTER_KEY, BENCH_SEARCH_KEY, COMMANDS_PER_PLAN,
};

pub async fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let folder = tempfile::tempdir()?;
    let file = folder.path().join("homeward.db");
    let store = Arc::new(SqliteStore::open(&file, 4).await?);
    store.migrate().await?;
    let raw = Arc::new(tokio::sync::Mutex::new(raw_connection(&file).await?));
    sqlx::query(
        "CREATE TABLE bench_raw (global_position INTEGER PRIMARY KEY, tx_number INTEGER NOT NULL, \
           stream_id TEXT NOT NULL, stream_version INTEGER NOT NULL, event_id BLOB NOT NULL UNIQUE, \
           command_id BLOB NOT NULL, event_type TEXT NOT NULL, schema_version INTEGER NOT NULL, \
           payload TEXT NOT NULL, metadata TEXT NOT NULL, occurred_at TEXT NOT NULL, \
           recorded_at TEXT NOT NULL, UNIQUE (stream_id, stream_version))",
    )
    .execute(&mut *raw.lock().await)
    .await?;
    sqlx::query("CREATE INDEX bench_raw_commit_order ON bench_raw (tx_number, global_position)")
        .execute(&mut *raw.lock().await)
        .await?;
    let handler = CommandHandler::new(store.clone(), Arc::new(SystemClock))
        .with_vault(bench_vault(store.clone()));
    let seconds = Duration::from_secs(args.seconds);

    println!(
        "## SQLite: appends, one event per command ({}s each, WAL, synchronous=FULL)\n",
        args.seconds
    );
    println!("| writers | raw INSERT/s | bare append/s | ratio | full command/s | ratio |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for &writers in &args.writers {
        let mut ratios: Vec<[f64; 2]> = Vec::new();
        for _ in 0..args.rounds.max(1) {
            checkpoint(&raw).await?;
            let loops = (0..writers).map(|w| raw_writer(raw.clone(), w)).collect();
            let (raw_rate, _) = run_loops(loops, seconds).await?;
            checkpoint(&raw).await?;
            let mut loops = Vec::new();
            for w in 0..writers {
                loops.push(bare_writer(store.clone(), w).await?);
            }
            let (bare_rate, _) = run_loops(loops, seconds).await?;
            checkpoint(&raw).await?;
            let full_rate = full_commands(&handler, writers, seconds).await?;
            println!(
                "| {writers} | {raw_rate:.0} | {bare_rate:.0} | {:.2} | {full_rate:.0} | {:.2} |",
                bare_rate / raw_rate,
                full_rate / raw_rate
            );
            ratios.push([bare_rate / raw_rate, full_rate / raw_rate]);
        }
        if args.rounds > 1 {
            let median = |i: usize| {
                let mut values: Vec<f64> = ratios.iter().map(|r| r[i]).collect();
                values.sort_by(f64::total_cmp);
                median_of_sorted(&values)
            };
            println!(
                "| {writers}, median of {} | | | **{:.2}** | | **{:.2}** |",
                args.rounds,
                median(0),
                median(1)
            );
        }
    }
    store.close().await;

    match &args.homeward_bin {
        Some(bin) => memory(bin, args.api_plans).await,
        None => {
            println!("\n(memory: pass --homeward-bin target/release/homeward to measure it)");
            Ok(())
        }
    }
}

/// A connection of its own to the file, with the store's durability.
async fn raw_connection(file: &Path) -> anyhow::Result<SqliteConnection> {
    Ok(SqliteConnectOptions::new()
        .filename(file)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10))
        .connect()
        .await?)
}

/// Moves the write-ahead log into the database, so each measurement starts alike.
async fn checkpoint(raw: &tokio::sync::Mutex<SqliteConnection>) -> anyhow::Result<()> {
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut *raw.lock().await)
        .await?;
    Ok(())
}

/// One plain `INSERT` per transaction of the row an append of one event writes.
fn raw_writer(connection: Arc<tokio::sync::Mutex<SqliteConnection>>, w: usize) -> Writer {
    let stream = format!("raw-{w}-{}", Uuid::new_v4());
    let meta = serde_json::to_string(&metadata()).unwrap_or_default();
    Writer {
        step: Box::new(move |n| {
            let connection = connection.clone();
            let (stream, meta) = (stream.clone(), meta.clone());
            Box::pin(async move {
                let mut connection = connection.lock().await;
                sqlx::query(
                    "INSERT INTO bench_raw (tx_number, stream_id, stream_version, event_id, \
                     command_id, event_type, schema_version, payload, metadata, occurred_at, \
                     recorded_at) VALUES (?, ?, ?, ?, ?, 'step_prioritised', 1, ?, ?, ?, ?)",
                )
                .bind(n as i64 + 1)
                .bind(stream)
                .bind(n as i64 + 1)
                .bind(Uuid::new_v4())
                .bind(Uuid::new_v4())
                .bind(payload().to_string())
                .bind(meta)
                .bind(Utc::now())
                .bind(Utc::now())
                .execute(&mut *connection)
                .await?;
                Ok(())
            })
        }),
    }
}

/// Commands per second on plans prepared for the measurement (each writer on plans of its own).
async fn full_commands(
    handler: &CommandHandler<SqliteStore>,
    writers: usize,
    duration: Duration,
) -> anyhow::Result<f64> {
    let warm = prepare_plans(handler, writers, 2, 12).await?;
    let mut ready = Vec::new();
    for plans in warm {
        ready.push(command_writer(handler.clone(), plans).await?);
    }
    let (estimate, _) = run_loops(ready, Duration::from_secs(1)).await?;
    let per_writer = ((estimate * duration.as_secs_f64() / writers as f64) / COMMANDS_PER_PLAN)
        .ceil()
        .max(2.0) as usize;
    let plans = prepare_plans(handler, writers, per_writer, 12).await?;
    let mut ready = Vec::new();
    for plans in plans {
        ready.push(command_writer(handler.clone(), plans).await?);
    }
    Ok(run_loops(ready, duration).await?.0)
}

/// The binary's resident memory, idle and after `plans` plans are loaded and read through the
/// API.
async fn memory(bin: &Path, plans: usize) -> anyhow::Result<()> {
    // It runs in a folder of its own.
    let bin = &std::path::absolute(bin)?;
    let folder = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut server = tokio::process::Command::new(bin)
        .current_dir(folder.path())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env_remove("DATABASE_URL")
        .env("HOMEWARD_MASTER_KEY", BENCH_MASTER_KEY)
        .env("HOMEWARD_SEARCH_KEY", BENCH_SEARCH_KEY)
        .env("HOMEWARD_RATE_LIMIT", "100000")
        .env("HOMEWARD_RATE_BURST", "100000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let pid = server.id().context("the server's pid")?;
    let mut lines = BufReader::new(server.stdout.take().context("its stdout")?).lines();
    let mut admin = None;
    while let Some(line) = lines.next_line().await? {
        if let Some(token) = line.strip_prefix("admin token:") {
            admin = Some(token.trim().to_owned());
            break;
        }
    }
    let admin = admin.context("the server printed no admin token")?;
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .send()
        .await
        .map_or(true, |r| !r.status().is_success())
    {
        anyhow::ensure!(Instant::now() < deadline, "the server did not get ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = resident_mib(pid)?;

    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let organisation = gql(
        &http,
        addr,
        &admin,
        "mutation { registerOrganisation(input: { name: \"Bench\", kind: PROGRAMME, country: \"FR\" }) { id } }",
        json!({}),
    )
    .await?["registerOrganisation"]["id"]
        .clone();
    let worker = gql(
        &http,
        addr,
        &admin,
        "mutation($input: PartyInput!) { registerParty(input: $input) { id } }",
        json!({ "input": {
            "displayName": "Bench Worker", "email": "worker@bench.example", "role": "SOCIAL_WORKER",
            "organisation": organisation, "country": "FR", "language": "fr", "timeZone": "Europe/Paris",
        }}),
    )
    .await?["registerParty"]["id"]
        .as_str()
        .context("a party id")?
        .to_owned();
    let created = tokio::process::Command::new(bin)
        .current_dir(folder.path())
        .args([
            "token",
            "create",
            "--party",
            &worker,
            "--role",
            "social_worker",
        ])
        .env_remove("DATABASE_URL")
        .output()
        .await?;
    anyhow::ensure!(created.status.success(), "token create failed");
    let token = String::from_utf8(created.stdout)?
        .lines()
        .find_map(|l| l.strip_prefix("token:").map(|t| t.trim().to_owned()))
        .context("a token")?;

    let started = Instant::now();
    let clients = 8;
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (token, http) = (token.clone(), http.clone());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in (c..plans).step_by(clients) {
                    let person = gql(
                        &http,
                        addr,
                        &token,
                        "mutation($name: String!) { registerPerson(input: { fullName: $name }) }",
                        json!({ "name": format!("Person {i}") }),
                    )
                    .await?["registerPerson"]
                        .clone();
                    let plan = gql(
                        &http,
                        addr,
                        &token,
                        "mutation($p: ID!) { openPlan(input: { personId: $p, originCountry: \"NG\" }) { plan { id } } }",
                        json!({ "p": person }),
                    )
                    .await?["openPlan"]["plan"]["id"]
                        .clone();
                    ids.push(plan);
                }
                anyhow::Ok(ids)
            })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await??);
    }
    let loaded_in = started.elapsed();
    // Read back: every plan's page of the list, and each plan with its steps.
    let mut after: Option<String> = None;
    let mut listed = 0;
    loop {
        let page = gql(
            &http,
            addr,
            &token,
            "query($after: String) { plans(first: 100, after: $after) { edges { node { id } } pageInfo { hasNextPage endCursor } } }",
            json!({ "after": after }),
        )
        .await?;
        listed += page["plans"]["edges"].as_array().map_or(0, Vec::len);
        if page["plans"]["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        after = page["plans"]["pageInfo"]["endCursor"]
            .as_str()
            .map(str::to_owned);
    }
    let reads: Vec<_> = ids
        .chunks(ids.len().div_ceil(clients).max(1))
        .map(|chunk| {
            let (token, http, chunk) = (token.clone(), http.clone(), chunk.to_vec());
            tokio::spawn(async move {
                for id in chunk {
                    gql(
                        &http,
                        addr,
                        &token,
                        "query($id: ID!) { plan(id: $id) { id status person { fullName } steps { key status dueAt } } }",
                        json!({ "id": id }),
                    )
                    .await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for r in reads {
        r.await??;
    }
    let loaded = resident_mib(pid)?;
    let _ = server.kill().await;
    println!("\n## SQLite: the server's resident memory (`homeward serve`, VmRSS)\n");
    println!("| state | resident | target |");
    println!("|---|---:|---:|");
    println!("| idle, empty database | {idle:.1} MiB | < 50 MB |");
    println!(
        "| after {plans} plans loaded ({:.0} s) and read through the API ({listed} listed, each read) | {loaded:.1} MiB | < 150 MB |",
        loaded_in.as_secs_f64()
    );
    Ok(())
}

/// The resident set of a process, in MiB, from `/proc/<pid>/status`.
fn resident_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS in /proc/<pid>/status")?;
    Ok(kib / 1024.0)
}
