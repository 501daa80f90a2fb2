//! `homeward-bench`: throughput measured against the raw limit of the same database, in one run.
//!
//! The machine is small and noisy, so every result is reported next to its baseline measured
//! moments before: appends against one plain `INSERT` per transaction into a table with the same
//! keys; a projection rebuild against reading the same events with a plain `SELECT`. It runs in
//! a scratch database created on the server in DATABASE_URL and dropped afterwards.
//!
//! It is a binary of its own, outside the production one, that runs the production library
//! (`homeward`, the engine, the store) in-process; `scripts/bench` builds and runs it.

mod api;
mod console;
mod mail;
mod personal;
mod sqlite;
mod timers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use homeward_engine::{CommandHandler, CommandMeta, SystemClock};
use homeward_store::{Append, EventStore, ExpectedVersion, Metadata, NewEvent};
use homeward_store_postgres::PgStore;
use homeward_workflows::plan::{Plan, PlanCommand};
use homeward_workflows::text::CountryCode;
use homeward_workflows::{template, Aggregate, Context, PartyId, PersonId, PlanId};
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

/// mimalloc, as in the `homeward` binary, so the server parts measured here allocate as they do
/// in production.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, clap::Parser)]
#[command(
    name = "homeward-bench",
    about = "Measures Homeward against its baselines; see BENCHMARKS.md."
)]
pub struct BenchArgs {
    /// The PostgreSQL server to measure on (a scratch database is created there and dropped).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Numbers of concurrent writers to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    pub writers: Vec<usize>,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Rounds of the append measurements per number of writers. Each round measures raw,
    /// bare and full one after the other, so the rounds' ratios show how much the machine's
    /// noise moves them; with more than one, a last row gives the median ratios. Also the
    /// rounds of each personal-phase measurement, at least three.
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
    /// Group-commit transactions in flight at once, each measured in every round against the
    /// same raw baseline (e.g. `--flushes 2,4` for an A/B in one run).
    #[arg(long, value_delimiter = ',', default_values_t = [homeward_store_postgres::DEFAULT_FLUSHES_IN_FLIGHT])]
    pub flushes: Vec<usize>,
    /// Numbers of concurrent clients of the personal phase's reads (the plan with her person,
    /// the access audit). With few, the audited reads leave the cores idle while each waits
    /// for its entries' flush, and the ratio measures that wait rather than throughput.
    #[arg(long, value_delimiter = ',', default_value = "16,32,64")]
    pub readers: Vec<usize>,
    /// Plans (of 30 events each) folded and projected in the rebuild measurement.
    #[arg(long, default_value_t = 2_000)]
    pub rebuild_plans: usize,
    /// Plans loaded for the API measurement.
    #[arg(long, default_value_t = 10_000)]
    pub api_plans: usize,
    /// Which measurements to run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "append,fold,rebuild,api,timers,mail,personal,console,sqlite"
    )]
    pub phases: Vec<Phase>,
    /// The `homeward` binary whose memory the SQLite phase measures (`scripts/bench` builds it).
    #[arg(long, env = "HOMEWARD_BIN")]
    pub homeward_bin: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    Append,
    Fold,
    Rebuild,
    /// The GraphQL API under 32 clients (see `api`).
    Api,
    /// What the access guards cost (the rate limiter, the token check before every socket
    /// operation): the API with and without them (see `api`).
    Guards,
    /// Claiming due timers among 1,000 and 1,000,000 future ones (see `timers`).
    Timers,
    /// Sending reminders: rate against a bare lettre loop, and latency under load (see
    /// `mail`).
    Mail,
    /// What sealing survivors' data costs, against the same work unsealed (see `personal`).
    Personal,
    /// The web console's pages against the API (see `console`).
    Console,
    /// The embedded SQLite backend against SQLite's own limit, and the server's memory on it
    /// (see `sqlite`).
    Sqlite,
}

/// The master key of every server the benchmarks start (32 zero bytes: nothing here is
/// personal).
pub const BENCH_MASTER_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
/// The search key of the benchmarks' servers (named: no key file is made).
pub const BENCH_SEARCH_KEY: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

/// A vault under [`BENCH_MASTER_KEY`] for the handlers the benchmarks drive directly.
pub fn bench_vault(
    keys: Arc<dyn homeward_store::person_keys::PersonKeys>,
) -> Arc<homeward_engine::vault::Vault> {
    let master = homeward_engine::keys::MasterKey::from_base64(BENCH_MASTER_KEY)
        .expect("the bench master key is valid");
    Arc::new(homeward_engine::vault::Vault::new(master, keys))
}

/// The organisation of every plan and party the benchmarks write.
pub const BENCH_ORGANISATION: homeward_workflows::OrganisationId =
    homeward_workflows::OrganisationId(uuid::Uuid::from_u128(0xbe9c4));

/// Opens a plan from the standard template (12 events).
pub fn open_plan_command(plan_id: PlanId, case_worker: PartyId) -> PlanCommand {
    PlanCommand::OpenPlan {
        plan_id,
        person: PersonId::new(),
        template: Box::new(template::find("standard-avr", 1).expect("the standard template")),
        case_worker,
        organisation: BENCH_ORGANISATION,
        origin_country: CountryCode::parse("NG").expect("a country code"),
        follow_up_offsets_days: None,
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = <BenchArgs as clap::Parser>::parse();
    homeward::telemetry::init(false);
    match run(&args.database_url.clone(), args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("homeward-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(server_url: &str, args: BenchArgs) -> anyhow::Result<()> {
    let scratch = Scratch::create(server_url).await?;
    let result = run_in(&scratch.url, &args).await;
    scratch.drop_database().await?;
    result?;
    let api = args.phases.contains(&Phase::Api);
    let guards = args.phases.contains(&Phase::Guards);
    if api || guards {
        // A database of its own: the other phases delete and rebuild what they wrote.
        let scratch = Scratch::create(server_url).await?;
        let result = crate::api::run(&scratch.url, args.api_plans, args.seconds, api, guards).await;
        scratch.drop_database().await?;
        result?;
    }
    if args.phases.contains(&Phase::Timers) {
        let scratch = Scratch::create(server_url).await?;
        let result = crate::timers::run(&scratch.url, args.seconds).await;
        scratch.drop_database().await?;
        result?;
    }
    if args.phases.contains(&Phase::Personal) {
        let scratch = Scratch::create(server_url).await?;
        let result = crate::personal::run(
            &scratch.url,
            args.seconds,
            args.rounds.max(3),
            &args.readers,
        )
        .await;
        scratch.drop_database().await?;
        result?;
    }
    if args.phases.contains(&Phase::Console) {
        let scratch = Scratch::create(server_url).await?;
        let result = crate::console::run(&scratch.url, args.seconds).await;
        scratch.drop_database().await?;
        result?;
    }
    if args.phases.contains(&Phase::Mail) {
        let scratch = Scratch::create(server_url).await?;
        let result = crate::mail::run(&scratch.url, args.seconds).await;
        scratch.drop_database().await?;
        result?;
    }
    if args.phases.contains(&Phase::Sqlite) {
        crate::sqlite::run(&args).await?;
    }
    Ok(())
}

async fn run_in(url: &str, args: &BenchArgs) -> anyhow::Result<()> {
    let max_writers = args.writers.iter().copied().max().unwrap_or(1);
    let store = Arc::new(PgStore::connect(url, max_writers as u32 + 4).await?);
    store.migrate().await?;
    store
        .pool()
        .execute(
            "CREATE TABLE bench_raw (LIKE events INCLUDING DEFAULTS INCLUDING IDENTITY); \
             ALTER TABLE bench_raw ADD PRIMARY KEY (global_position), \
               ADD UNIQUE (event_id), ADD UNIQUE (stream_id, stream_version); \
             CREATE INDEX ON bench_raw (tx_id, global_position);",
        )
        .await
        .context("creating the raw-insert table")?;
    let handler = CommandHandler::new(store.clone(), Arc::new(SystemClock))
        .with_vault(bench_vault(store.clone()));
    let seconds = Duration::from_secs(args.seconds);

    if args.phases.contains(&Phase::Append) {
        // One store per number of flushes in flight, side by side in every round.
        let mut variants = Vec::new();
        for &flushes in &args.flushes {
            let store = Arc::new(
                PgStore::connect_with_flushes(url, max_writers as u32 + 4, flushes).await?,
            );
            let handler = CommandHandler::new(store.clone(), Arc::new(SystemClock))
                .with_vault(bench_vault(store.clone()));
            // The same handler without its state cache: every command folds the whole plan.
            let cold = CommandHandler::new(store.clone(), Arc::new(SystemClock))
                .with_vault(bench_vault(store.clone()))
                .with_cached_events(0);
            variants.push((flushes, store, handler, cold));
        }
        println!(
            "## Appends, one event per command ({}s each)\n",
            args.seconds
        );
        println!(
            "| writers | flushes | raw INSERT/s | bare append/s | ratio | full command/s | ratio | \
             full command, cold load/s | ratio | mean plan size |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        let mut cpu_rows = Vec::new();
        for &writers in &args.writers {
            let mut ratios: Vec<(usize, [f64; 3])> = Vec::new();
            for _ in 0..args.rounds.max(1) {
                settle(&store).await?;
                let raw =
                    measure(&store, writers, seconds, |w| raw_writer(store.clone(), w)).await?;
                for (flushes, store, handler, cold) in &variants {
                    settle(store).await?;
                    let bare =
                        measure(store, writers, seconds, |w| bare_writer(store.clone(), w)).await?;
                    let full = full_commands(store, handler, writers, seconds).await?;
                    let cold_full = full_commands(store, cold, writers, seconds).await?;
                    let (raw_rate, bare_rate) = (raw.rate, bare.rate);
                    println!(
                        "| {writers} | {flushes} | {raw_rate:.0} | {bare_rate:.0} | {:.2} | {:.0} | {:.2} | {:.0} | {:.2} | {:.0} events |",
                        bare_rate / raw_rate,
                        full.measured.rate,
                        full.measured.rate / raw_rate,
                        cold_full.measured.rate,
                        cold_full.measured.rate / raw_rate,
                        cold_full.mean_plan_size,
                    );
                    ratios.push((
                        *flushes,
                        [
                            bare_rate / raw_rate,
                            full.measured.rate / raw_rate,
                            cold_full.measured.rate / raw_rate,
                        ],
                    ));
                    cpu_rows.push((writers, *flushes, [raw, bare, full.measured]));
                }
            }
            if args.rounds > 1 {
                for &flushes in &args.flushes {
                    let median = |i: usize| {
                        let mut values: Vec<f64> = ratios
                            .iter()
                            .filter(|(f, _)| *f == flushes)
                            .map(|(_, r)| r[i])
                            .collect();
                        values.sort_by(f64::total_cmp);
                        median_of_sorted(&values)
                    };
                    println!(
                        "| {writers}, median of {} | {flushes} | | | **{:.2}** | | **{:.2}** | | **{:.2}** | |",
                        args.rounds,
                        median(0),
                        median(1),
                        median(2),
                    );
                }
            }
        }
        print_cpu_table(&cpu_rows);
    }

    if args.phases.contains(&Phase::Fold) {
        println!("\n## Folding a plan in the domain\n");
        fold_bench();
    }
    if !args.phases.contains(&Phase::Rebuild) {
        return Ok(());
    }
    println!("\n## Projection rebuild against a plain SELECT of the same events\n");
    // Only plan streams remain, so every event read is decoded and projected.
    sqlx::query("DELETE FROM events")
        .execute(store.pool())
        .await?;
    let per_writer = args.rebuild_plans.div_ceil(max_writers);
    prepare_plans(&handler, max_writers, per_writer, 18).await?;
    rebuild_bench(&store).await?;
    Ok(())
}

/// The middle value, or the mean of the two middle values of an even count.
pub(crate) fn median_of_sorted(values: &[f64]) -> f64 {
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Commands each plan receives during a full-command measurement: plans start at 24 events and
/// end near 36, so a command loads a plan of about 30 events.
pub(crate) const COMMANDS_PER_PLAN: f64 = 12.0;

struct FullCommands {
    measured: Measured,
    mean_plan_size: f64,
}

/// CPU time per operation of each round: the steady measure to compare builds with (see
/// [`CpuPerOp`]).
fn print_cpu_table(rows: &[(usize, usize, [Measured; 3])]) {
    println!(
        "\nCPU time per operation, µs (machine = client + PostgreSQL; idle = share of the two \
         cores left idle):\n"
    );
    println!(
        "| writers | flushes | raw: machine | client | idle | bare: machine | client | idle | \
         batch | full command: machine | client | server | idle | batch |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (writers, flushes, [m_raw, m_bare, m_full]) in rows {
        let (raw, bare, full) = (m_raw.cpu, m_bare.cpu, m_full.cpu);
        println!(
            "| {writers} | {flushes} | {:.0} | {:.0} | {:.0}% | {:.0} | {:.0} | {:.0}% | {:.1} | {:.0} | {:.0} | {:.0} | {:.0}% | {:.1} |",
            raw.machine_us,
            raw.client_us,
            raw.idle * 100.0,
            bare.machine_us,
            bare.client_us,
            bare.idle * 100.0,
            m_bare.batch,
            full.machine_us,
            full.client_us,
            full.server_us(),
            full.idle * 100.0,
            m_full.batch,
        );
    }
}

/// Full commands (load, decide, append, project) on plans of about 30 events: a one-second
/// warm-up estimates the rate, so that enough plans are prepared for each to get about
/// [`COMMANDS_PER_PLAN`] commands.
async fn full_commands(
    store: &PgStore,
    handler: &CommandHandler<PgStore>,
    writers: usize,
    duration: Duration,
) -> anyhow::Result<FullCommands> {
    let warm = prepare_plans(handler, writers, 2, 12).await?;
    let estimate = measure(store, writers, Duration::from_secs(1), |w| {
        command_writer(handler.clone(), warm[w].clone())
    })
    .await?
    .rate;
    let per_writer = ((estimate * duration.as_secs_f64() / writers as f64) / COMMANDS_PER_PLAN)
        .ceil()
        .max(2.0) as usize;
    sqlx::query("DELETE FROM events WHERE stream_id LIKE 'plan-%'")
        .execute(store.pool())
        .await?;
    let plans = prepare_plans(handler, writers, per_writer, 12).await?;
    let before = count_plan_events(store).await?;
    settle(store).await?;
    let measured = measure(store, writers, duration, |w| {
        command_writer(handler.clone(), plans[w].clone())
    })
    .await?;
    let after = count_plan_events(store).await?;
    sqlx::query("DELETE FROM events WHERE stream_id LIKE 'plan-%'")
        .execute(store.pool())
        .await?;
    let plan_count = (writers * per_writer) as f64;
    Ok(FullCommands {
        measured,
        mean_plan_size: (before + after) as f64 / 2.0 / plan_count,
    })
}

/// A measured rate, the CPU it took, and how many appends group commit put in a transaction.
#[derive(Debug, Clone, Copy)]
struct Measured {
    rate: f64,
    cpu: CpuPerOp,
    /// Mean appends per group-commit transaction (0 when nothing went through the store).
    batch: f64,
}

/// CPU time per operation, in microseconds: this process (the client side: domain, handler,
/// store client) and the whole machine (which on a benchmark machine is the client plus
/// PostgreSQL). Unlike operations per second, these hardly move when the disk or the other
/// core is slow for a while, so they show changes of a few percent.
#[derive(Debug, Clone, Copy, Default)]
struct CpuPerOp {
    client_us: f64,
    machine_us: f64,
    /// Share of the machine's CPU time that was idle during the measurement.
    idle: f64,
}

impl CpuPerOp {
    fn server_us(&self) -> f64 {
        (self.machine_us - self.client_us).max(0.0)
    }
}

/// CPU counters in clock ticks (USER_HZ, 100 a second on Linux), read from `/proc`; zero where
/// `/proc` is missing, so the benchmark still runs elsewhere.
#[derive(Debug, Clone, Copy, Default)]
struct CpuTicks {
    machine_busy: u64,
    machine_idle: u64,
    process: u64,
}

const TICKS_PER_SECOND: f64 = 100.0;

impl CpuTicks {
    fn now() -> Self {
        let mut ticks = Self::default();
        if let Ok(stat) = std::fs::read_to_string("/proc/stat") {
            // cpu  user nice system idle iowait irq softirq steal ...
            let fields: Vec<u64> = stat
                .lines()
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .skip(1)
                .filter_map(|f| f.parse().ok())
                .collect();
            let at = |i: usize| fields.get(i).copied().unwrap_or(0);
            ticks.machine_busy = at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
            ticks.machine_idle = at(3) + at(4);
        }
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // The command name may hold spaces: fields are counted after its closing ')'.
            // utime and stime are fields 14 and 15, so the 12th and 13th after the name.
            if let Some((_, rest)) = stat.rsplit_once(')') {
                let fields: Vec<u64> = rest
                    .split_whitespace()
                    .skip(11)
                    .take(2)
                    .filter_map(|f| f.parse().ok())
                    .collect();
                ticks.process = fields.iter().sum();
            }
        }
        ticks
    }

    fn per_op_since(&self, before: &Self, ops: u64) -> CpuPerOp {
        let us = |ticks: u64| ticks as f64 / TICKS_PER_SECOND * 1e6 / ops.max(1) as f64;
        let busy = self.machine_busy.saturating_sub(before.machine_busy);
        let idle = self.machine_idle.saturating_sub(before.machine_idle);
        CpuPerOp {
            client_us: us(self.process.saturating_sub(before.process)),
            machine_us: us(busy),
            idle: idle as f64 / (busy + idle).max(1) as f64,
        }
    }
}

/// Leaves the database as the next measurement should find it, whichever ran before: the dead
/// rows of the last one vacuumed and the tables analysed (else autovacuum works during the next
/// measurement and is counted against it), and a checkpoint taken (else a checkpoint may fall
/// in one measurement and not another, and the first change of every page after a checkpoint
/// writes the whole page to the WAL). A checkpoint needs the right to take one; without it the
/// measurements go on as they are.
async fn settle(store: &PgStore) -> anyhow::Result<()> {
    store
        .pool()
        .execute("VACUUM (ANALYZE)")
        .await
        .context("vacuuming before a measurement")?;
    if let Err(e) = store.pool().execute("CHECKPOINT").await {
        tracing::warn!(error = %e, "no checkpoint before the measurement");
    }
    Ok(())
}

/// Runs `writers` copies of a loop for `duration`: operations per second, the CPU time they
/// took and the store's batch sizes.
async fn measure<F, Fut>(
    store: &PgStore,
    writers: usize,
    duration: Duration,
    make: F,
) -> anyhow::Result<Measured>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Writer>>,
{
    let mut loops = Vec::new();
    for w in 0..writers {
        loops.push(make(w).await?);
    }
    let (ticks, batches) = (CpuTicks::now(), store.group_commit_stats());
    let (rate, ops) = run_loops(loops, duration).await?;
    let cpu = CpuTicks::now().per_op_since(&ticks, ops);
    let after = store.group_commit_stats();
    let flushes = after.flushes - batches.flushes;
    Ok(Measured {
        rate,
        cpu,
        batch: (after.appends - batches.appends) as f64 / flushes.max(1) as f64,
    })
}

/// Runs the loops side by side until `duration` has passed: operations per second, and how many.
pub(crate) async fn run_loops(
    loops: Vec<Writer>,
    duration: Duration,
) -> anyhow::Result<(f64, u64)> {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = loops
        .into_iter()
        .map(|mut writer| tokio::spawn(async move { writer.run_until(deadline).await }))
        .collect();
    let mut ops = 0u64;
    for t in tasks {
        ops += t.await??;
    }
    Ok((ops as f64 / started.elapsed().as_secs_f64(), ops))
}

/// One benchmark loop: an operation repeated until the deadline.
pub(crate) struct Writer {
    pub(crate) step:
        Box<dyn FnMut(u64) -> futures::future::BoxFuture<'static, anyhow::Result<()>> + Send>,
}

impl Writer {
    async fn run_until(&mut self, deadline: Instant) -> anyhow::Result<u64> {
        let mut n = 0;
        while Instant::now() < deadline {
            (self.step)(n).await?;
            n += 1;
        }
        Ok(n)
    }
}

pub(crate) fn payload() -> serde_json::Value {
    serde_json::json!({"step": "passport", "priority": "high"})
}

pub(crate) fn metadata() -> Metadata {
    Metadata {
        actor: PartyId::new(),
        correlation_id: Uuid::new_v4(),
        partner_link: None,
    }
}

/// One plain `INSERT` per transaction, each writer on a connection of its own (as pgbench
/// does): the database's limit, without the two round trips sqlx's pool adds to every query
/// (a ping when a connection is acquired and another when it is released).
async fn raw_writer(store: Arc<PgStore>, w: usize) -> anyhow::Result<Writer> {
    let stream = format!("raw-{w}-{}", Uuid::new_v4());
    let meta = serde_json::to_value(metadata())?;
    let connection = PgConnection::connect_with(&store.pool().connect_options()).await?;
    let connection = Arc::new(tokio::sync::Mutex::new(connection));
    Ok(Writer {
        step: Box::new(move |n| {
            let connection = connection.clone();
            let (stream, meta) = (stream.clone(), meta.clone());
            Box::pin(async move {
                let mut connection = connection.lock().await;
                sqlx::query(
                    "INSERT INTO bench_raw (stream_id, stream_version, event_id, command_id, \
                     event_type, schema_version, payload, metadata, occurred_at) \
                     VALUES ($1, $2, $3, $4, 'step_prioritised', 1, $5, $6, $7)",
                )
                .bind(stream)
                .bind(n as i64 + 1)
                .bind(Uuid::new_v4())
                .bind(Uuid::new_v4())
                .bind(payload())
                .bind(meta)
                .bind(Utc::now())
                .execute(&mut *connection)
                .await?;
                Ok(())
            })
        }),
    })
}

pub(crate) async fn bare_writer<S: EventStore>(store: Arc<S>, w: usize) -> anyhow::Result<Writer> {
    let stream = format!("bench-{w}-{}", Uuid::new_v4());
    let meta = metadata();
    Ok(Writer {
        step: Box::new(move |n| {
            let store = store.clone();
            let append = Append {
                stream_id: stream.clone(),
                stream_type: "bench",
                expected_version: if n == 0 {
                    ExpectedVersion::NoStream
                } else {
                    ExpectedVersion::Exact(n)
                },
                command_id: Uuid::new_v4(),
                metadata: meta.clone(),
                occurred_at: Utc::now(),
                events: vec![NewEvent {
                    event_type: "step_prioritised".into(),
                    schema_version: 1,
                    payload: payload(),
                }],
                projection: Default::default(),
                idempotency_key: None,
                new_person_key: None,
                search_terms: None,
            };
            Box::pin(async move {
                store.append(append).await?;
                Ok(())
            })
        }),
    })
}

pub(crate) async fn command_writer<S: EventStore>(
    handler: CommandHandler<S>,
    plans: Vec<PlanId>,
) -> anyhow::Result<Writer> {
    let party = PartyId::new();
    Ok(Writer {
        step: Box::new(move |n| {
            let handler = handler.clone();
            let plan = plans[n as usize % plans.len()];
            Box::pin(async move {
                handler
                    .handle::<Plan>(
                        &plan.stream_id(),
                        &homeward_tests::busy_command(n as usize, party),
                        CommandMeta::new(party),
                    )
                    .await?;
                Ok(())
            })
        }),
    })
}

/// Creates `per_writer` plans for each writer, `writers` at a time: opened from the template
/// (12 events) and edited `edits` times.
pub(crate) async fn prepare_plans<S: EventStore>(
    handler: &CommandHandler<S>,
    writers: usize,
    per_writer: usize,
    edits: usize,
) -> anyhow::Result<Vec<Vec<PlanId>>> {
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let handler = handler.clone();
            tokio::spawn(async move {
                let party = PartyId::new();
                let mut ids = Vec::with_capacity(per_writer);
                for _ in 0..per_writer {
                    let id = PlanId::new();
                    let stream = id.stream_id();
                    handler
                        .handle::<Plan>(
                            &stream,
                            &open_plan_command(id, party),
                            CommandMeta::new(party),
                        )
                        .await?;
                    for i in 0..edits {
                        handler
                            .handle::<Plan>(
                                &stream,
                                &homeward_tests::busy_command(i, party),
                                CommandMeta::new(party),
                            )
                            .await?;
                    }
                    ids.push(id);
                }
                anyhow::Ok(ids)
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.push(t.await??);
    }
    Ok(all)
}

async fn count_plan_events(store: &PgStore) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM events WHERE stream_id LIKE 'plan-%'")
            .fetch_one(store.pool())
            .await?,
    )
}

/// Folds a long plan (10,000 events) and a typical one (30 events) many times.
fn fold_bench() {
    let party = PartyId::new();
    let ctx = Context {
        now: Utc::now(),
        actor: party,
    };
    let id = PlanId::new();
    let mut events = Plan::decide(None, &open_plan_command(id, party), &ctx).expect("opens");
    let mut state = Plan::fold(&events);
    let mut i = 0;
    while events.len() < 10_000 {
        let new = Plan::decide(
            state.as_ref(),
            &homeward_tests::busy_command(i, party),
            &ctx,
        )
        .expect("accepted");
        for e in &new {
            state = Plan::apply(state, e);
        }
        events.extend(new);
        i += 1;
    }
    println!("| plan size | events folded | elapsed | events/s |");
    println!("|---:|---:|---:|---:|");
    for (size, rounds) in [(30usize, 30_000usize), (10_000, 100)] {
        let slice = &events[..size];
        let started = Instant::now();
        let mut versions = 0u64;
        for _ in 0..rounds {
            versions += std::hint::black_box(Plan::fold(slice)).map_or(0, |p| p.version);
        }
        let elapsed = started.elapsed();
        assert_eq!(versions, (size * rounds) as u64, "every event was folded");
        println!(
            "| {size} | {} | {elapsed:.2?} | {:.0} |",
            size * rounds,
            (size * rounds) as f64 / elapsed.as_secs_f64()
        );
    }
}

/// Alternates a plain SELECT of every event and a rebuild, three times each; reports the best.
async fn rebuild_bench(store: &PgStore) -> anyhow::Result<()> {
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(store.pool())
        .await?;
    let mut best_select = Duration::MAX;
    let mut best_rebuild = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let read = plain_select(store).await?;
        best_select = best_select.min(started.elapsed());
        anyhow::ensure!(read == events as u64, "the plain SELECT read every event");
        let report = homeward_store_postgres::rebuild(store.pool()).await?;
        best_rebuild = best_rebuild.min(report.elapsed);
        anyhow::ensure!(
            report.events == events as u64,
            "the rebuild read every event"
        );
    }
    let rate = |d: Duration| events as f64 / d.as_secs_f64();
    println!("| events | plain SELECT | rebuild | SELECT events/s | rebuild events/s | ratio |");
    println!("|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {events} | {best_select:.2?} | {best_rebuild:.2?} | {:.0} | {:.0} | {:.2} |",
        rate(best_select),
        rate(best_rebuild),
        rate(best_rebuild) / rate(best_select)
    );
    Ok(())
}

/// Reads every event, page by page in the order a rebuild reads them, into typed rows.
async fn plain_select(store: &PgStore) -> anyhow::Result<u64> {
    type Row = (
        i64,
        String,
        String,
        i64,
        Uuid,
        Uuid,
        String,
        i16,
        String,
        serde_json::Value,
        chrono::DateTime<Utc>,
        chrono::DateTime<Utc>,
    );
    let mut after = (String::new(), 0i64);
    let mut n = 0u64;
    loop {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT global_position, tx_id::text, stream_id, stream_version, event_id, \
             command_id, event_type, schema_version, payload::text, metadata, occurred_at, \
             recorded_at FROM events WHERE (stream_id, stream_version) > ($1, $2) \
             ORDER BY stream_id, stream_version LIMIT 10000",
        )
        .bind(&after.0)
        .bind(after.1)
        .fetch_all(store.pool())
        .await?;
        let Some(last) = rows.last() else { break };
        after = (last.2.clone(), last.3);
        n += rows.len() as u64;
    }
    Ok(n)
}

/// A database of its own on the server, dropped at the end.
struct Scratch {
    server_url: String,
    name: String,
    url: String,
}

impl Scratch {
    async fn create(server_url: &str) -> anyhow::Result<Self> {
        let name = format!("homeward_bench_{}", Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(server_url)
            .await
            .context("connecting to DATABASE_URL")?;
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await?;
        let url = homeward_store_postgres::with_database(server_url, &name);
        Ok(Self {
            server_url: server_url.to_owned(),
            name,
            url,
        })
    }

    async fn drop_database(self) -> anyhow::Result<()> {
        let mut admin = PgConnection::connect(&self.server_url).await?;
        admin
            .execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::median_of_sorted;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median_of_sorted(&[0.4, 0.6]), 0.5);
        assert_eq!(median_of_sorted(&[0.1, 0.4, 0.6, 0.9]), 0.5);
        assert_eq!(median_of_sorted(&[0.1, 0.4, 0.9]), 0.4);
    }
}
