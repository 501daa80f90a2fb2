//! `homeward-bench --phases personal`: what sealing survivors' data costs, each measurement
//! against the same work unsealed, three rounds (or `--rounds`) alternating in one run:
//! - `registerPerson` through the command handler (a new data key made, wrapped and stored,
//!   five fields sealed, her name and date of birth indexed) against the same with a vault that
//!   neither seals nor indexes; and again without the blind index, for what encryption alone
//!   adds;
//! - the full command mix of the append phase (everyday edits: nothing personal to seal) with
//!   the sealing vault against the baseline vault;
//! - `setGoals` (one aim sealed) against the same unsealed;
//! - a plan read over GraphQL with its person's name, phone and address opened, against the same
//!   read without the person;
//! - what the access audit costs: the plan read with her person over GraphQL, against the same
//!   from a server whose answers do not wait for their entries (dropped); and the same read of
//!   personal fields through the schema in-process, its entries committed before each answer as
//!   the server does, against the same with the entries dropped.
//!
//! The two reads are measured with each number of clients of `--readers`: with 16 the audited
//! side leaves the cores partly idle (each read waits for its flush), from 32 both sides keep
//! them busy. A last row for each compares throughputs: each side's most reads a second over
//! the numbers of clients. Each measurement also gives the CPU time per operation of both
//! sides, which the machine's noise moves far less than the rates, and each audited read the
//! audit's answers per batch and a commit's mean time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use homeward_engine::vault::Vault;
use homeward_engine::{tokens, CommandHandler, CommandMeta, SystemClock};
use homeward_store::reads::ReadModels;
use homeward_store_postgres::PgStore;
use homeward_workflows::person::{ContactDetails, Person, PersonCommand};
use homeward_workflows::plan::{ConcernArea, Goal, Plan, PlanCommand};
use homeward_workflows::{PartyId, PersonId, Personal, PlanId};
use serde_json::json;

use crate::{measure, prepare_plans, Measured, Writer};

const WRITERS: usize = 16;
/// Plans of each client of the read measurements.
const PLANS_PER_READER: usize = 20;

const WITHOUT_PERSON: &str = "query($id: ID!) { plan(id: $id) { id status
    steps { key status dueAt } } }";
const WITH_PERSON: &str = "query($id: ID!) { plan(id: $id) { id status
    steps { key status dueAt } person { fullName phone address } } }";

fn master() -> homeward_engine::keys::MasterKey {
    homeward_engine::keys::MasterKey::from_base64(crate::BENCH_MASTER_KEY)
        .expect("the bench master key is valid")
}

fn handler(store: &Arc<PgStore>, vault: Vault) -> CommandHandler<PgStore> {
    CommandHandler::new(store.clone(), Arc::new(SystemClock)).with_vault(Arc::new(vault))
}

fn register(n: u64) -> (PersonId, PersonCommand) {
    let person_id = PersonId::new();
    let command = PersonCommand::Register {
        person_id,
        organisation: crate::BENCH_ORGANISATION,
        full_name: format!("Person {n} Example"),
        date_of_birth: chrono::NaiveDate::from_ymd_opt(1998, 4, 2),
        preferred_language: Some("fr".into()),
        contact: ContactDetails {
            phone: Some(Personal::new("+234 800 000 0000".into())),
            email: None,
            address: Some(Personal::new("12 Example Street, Lagos".into())),
        },
    };
    (person_id, command)
}

async fn person_writer(handler: CommandHandler<PgStore>) -> anyhow::Result<Writer> {
    let party = PartyId::new();
    Ok(Writer {
        step: Box::new(move |n| {
            let handler = handler.clone();
            Box::pin(async move {
                let (id, command) = register(n);
                handler
                    .handle::<Person>(&id.stream_id(), &command, CommandMeta::new(party))
                    .await?;
                Ok(())
            })
        }),
    })
}

async fn goals_writer(
    handler: CommandHandler<PgStore>,
    plans: Vec<PlanId>,
) -> anyhow::Result<Writer> {
    let party = PartyId::new();
    Ok(Writer {
        step: Box::new(move |n| {
            let handler = handler.clone();
            let plan = plans[n as usize % plans.len()];
            Box::pin(async move {
                let command = PlanCommand::SetGoals {
                    goals: vec![Goal {
                        area: ConcernArea::Income,
                        aim: format!("Open a tailoring workshop ({n})").into(),
                    }],
                };
                handler
                    .handle::<Plan>(&plan.stream_id(), &command, CommandMeta::new(party))
                    .await?;
                Ok(())
            })
        }),
    })
}

/// Sealed and baseline measurements, `rounds_of` rounds alternating; `make(true, w)` makes writer
/// `w` of the sealed side.
async fn alternate<F, Fut>(
    store: &PgStore,
    duration: Duration,
    rounds_of: usize,
    make: F,
) -> anyhow::Result<Vec<(Measured, Measured)>>
where
    F: Fn(bool, usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Writer>>,
{
    let mut rounds = Vec::new();
    for _ in 0..rounds_of {
        crate::settle(store).await?;
        let with = measure(store, WRITERS, duration, |w| make(true, w)).await?;
        crate::settle(store).await?;
        let without = measure(store, WRITERS, duration, |w| make(false, w)).await?;
        rounds.push((with, without));
    }
    Ok(rounds)
}

/// Reads a second by `clients` loops for `duration`, each calling `one(client, n)` for its
/// `n`th read, one after another.
async fn reads_per_second<F, Fut>(
    clients: usize,
    duration: Duration,
    one: F,
) -> anyhow::Result<Measured>
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let ticks = crate::CpuTicks::now();
    let loops: Vec<_> = (0..clients)
        .map(|c| {
            let one = one.clone();
            tokio::spawn(async move {
                let mut n = 0usize;
                while Instant::now() < deadline {
                    one(c, n).await?;
                    n += 1;
                }
                anyhow::Ok(n)
            })
        })
        .collect();
    let mut reads = 0;
    for l in loops {
        reads += l.await??;
    }
    Ok(Measured {
        rate: reads as f64 / started.elapsed().as_secs_f64(),
        cpu: crate::CpuTicks::now().per_op_since(&ticks, reads as u64),
        batch: 0.0,
    })
}

/// `read(true)` against `read(false)`, both warmed first (the server's caches), then
/// alternating for `rounds_of` rounds.
async fn alternate_reads<F, Fut>(rounds_of: usize, read: F) -> anyhow::Result<ReadRounds>
where
    F: Fn(bool) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Measured>>,
{
    read(true).await?;
    read(false).await?;
    let (mut rounds, mut batches) = (Vec::new(), Vec::new());
    for _ in 0..rounds_of {
        let before = AuditBatches::now();
        let with = read(true).await?;
        batches.push(AuditBatches::now().since(&before));
        let without = read(false).await?;
        rounds.push((with, without));
    }
    Ok((rounds, batches))
}

/// Each round's two sides, and the access audit's batches during the first side's reads.
type ReadRounds = (Vec<(Measured, Measured)>, Vec<AuditBatches>);

/// The access audit's batches in this process, as its metrics count them: how many, the
/// answers in them, and the seconds spent committing them.
#[derive(Debug, Clone, Copy, Default)]
struct AuditBatches {
    batches: f64,
    answers: f64,
    committing: f64,
}

impl AuditBatches {
    /// So far (zeros before the first batch, or without the server's metrics recorder).
    fn now() -> Self {
        let Some(text) = homeward::metrics::handle().map(|h| h.render()) else {
            return Self::default();
        };
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
                .unwrap_or(0.0)
        };
        Self {
            batches: value("homeward_access_audit_batch_size_count"),
            answers: value("homeward_access_audit_batch_size_sum"),
            committing: value("homeward_access_audit_commit_seconds_sum"),
        }
    }

    fn since(&self, before: &Self) -> Self {
        Self {
            batches: self.batches - before.batches,
            answers: self.answers - before.answers,
            committing: self.committing - before.committing,
        }
    }
}

/// The audited side's batches, each round: answers per batch and a commit's mean time. How
/// long answers wait for their batches, which the CPU rows do not show.
fn audit_row(name: &str, batches: &[AuditBatches]) {
    let per_batch = |b: &AuditBatches| b.answers / b.batches.max(1.0);
    let cells: Vec<String> = batches
        .iter()
        .map(|b| {
            format!(
                "{:.1} a batch, {:.2} ms",
                per_batch(b),
                b.committing * 1000.0 / b.batches.max(1.0)
            )
        })
        .collect();
    let mut sizes: Vec<f64> = batches.iter().map(per_batch).collect();
    sizes.sort_by(f64::total_cmp);
    println!(
        "| {name}: the audit's answers per batch and mean commit, each round | {} | **{:.1}** |",
        cells.join(" · "),
        crate::median_of_sorted(&sizes)
    );
}

fn row(name: &str, rounds: &[(f64, f64)]) {
    let mut ratios: Vec<f64> = rounds.iter().map(|(w, wo)| w / wo).collect();
    let cells: Vec<String> = rounds
        .iter()
        .map(|(w, wo)| format!("{w:.0} / {wo:.0} = {:.2}", w / wo))
        .collect();
    ratios.sort_by(f64::total_cmp);
    println!(
        "| {name} | {} | **{:.2}** |",
        cells.join(" · "),
        crate::median_of_sorted(&ratios)
    );
}

/// Each side's throughput: in each round, its highest rate over the numbers of clients (the
/// rate where adding clients no longer adds reads), and the two compared.
fn peak_row(name: &str, by_clients: &[Vec<(f64, f64)>]) {
    let rounds_of = by_clients.iter().map(Vec::len).max().unwrap_or(0);
    let rounds: Vec<(f64, f64)> = (0..rounds_of)
        .map(|r| {
            let best = |side: fn(&(f64, f64)) -> f64| {
                by_clients
                    .iter()
                    .filter_map(|rounds| rounds.get(r).map(side))
                    .fold(0.0, f64::max)
            };
            (best(|(w, _)| *w), best(|(_, wo)| *wo))
        })
        .collect();
    row(
        &format!("{name}, throughput (the most of any number of clients)"),
        &rounds,
    );
}

/// The rates of each round's two sides.
fn rates(rounds: &[(Measured, Measured)]) -> Vec<(f64, f64)> {
    rounds.iter().map(|(w, wo)| (w.rate, wo.rate)).collect()
}

/// Both sides' CPU time per operation, each round: the machine's (this process and PostgreSQL),
/// this process's in brackets, and the share of the machine left idle. These move far less
/// with the machine's noise than the rates do.
fn cpu_row(name: &str, rounds: &[(Measured, Measured)]) {
    let side = |m: &Measured| {
        format!(
            "{:.0} ({:.0}, {:.0}% idle)",
            m.cpu.machine_us,
            m.cpu.client_us,
            m.cpu.idle * 100.0
        )
    };
    let cells: Vec<String> = rounds
        .iter()
        .map(|(w, wo)| {
            format!(
                "{} / {} = {:.2}",
                side(w),
                side(wo),
                w.cpu.machine_us / wo.cpu.machine_us
            )
        })
        .collect();
    let mut ratios: Vec<f64> = rounds
        .iter()
        .map(|(w, wo)| w.cpu.machine_us / wo.cpu.machine_us)
        .collect();
    ratios.sort_by(f64::total_cmp);
    println!(
        "| {name}: CPU µs per operation, machine (this process's, idle), each side | {} | **{:.2}** |",
        cells.join(" · "),
        crate::median_of_sorted(&ratios)
    );
}

pub async fn run(url: &str, seconds: u64, rounds: usize, readers: &[usize]) -> anyhow::Result<()> {
    let store = Arc::new(PgStore::connect(url, WRITERS as u32 + 8).await?);
    store.migrate().await?;
    // The sealed side indexes names as the server does.
    let search = homeward_engine::search::SearchKey::from_base64(crate::BENCH_SEARCH_KEY)?;
    let sealed = handler(
        &store,
        Vault::new(master(), store.clone())
            .with_search(homeward_engine::search::BlindIndex::new(search)),
    );
    // The same without the blind index: what encryption alone adds.
    let sealed_unindexed = handler(&store, Vault::new(master(), store.clone()));
    let baseline = handler(&store, Vault::unsealed_baseline(master(), store.clone()));
    let duration = Duration::from_secs(seconds);
    println!("## Sealing survivors' data ({WRITERS} writers, {seconds}s each, {rounds} rounds)\n");
    println!("| operation | sealed/s / unsealed/s, each round | median ratio |");
    println!("|---|---|---:|");

    let pick = |sealing: bool| {
        if sealing {
            sealed.clone()
        } else {
            baseline.clone()
        }
    };
    let people = alternate(&store, duration, rounds, |s, _| person_writer(pick(s))).await?;
    row("`registerPerson` (command handler)", &rates(&people));
    cpu_row("`registerPerson`", &people);
    let unindexed = alternate(&store, duration, rounds, |s, _| {
        person_writer(if s {
            sealed_unindexed.clone()
        } else {
            baseline.clone()
        })
    })
    .await?;
    row(
        "`registerPerson`, sealed without the blind index",
        &rates(&unindexed),
    );
    cpu_row("`registerPerson` without the blind index", &unindexed);

    // Each side on plans of its own: a handler's cache of plans the other wrote to would be
    // behind, and cost it a conflict and a reload each.
    let sealed_plans = prepare_plans(&sealed, WRITERS, 4, 12).await?;
    let plain_plans = prepare_plans(&baseline, WRITERS, 4, 12).await?;
    let plans = |s: bool, w: usize| {
        if s {
            sealed_plans[w].clone()
        } else {
            plain_plans[w].clone()
        }
    };
    let mix = alternate(&store, duration, rounds, |s, w| {
        crate::command_writer(pick(s), plans(s, w))
    })
    .await?;
    row("full command mix (nothing to seal)", &rates(&mix));
    let goals = alternate(&store, duration, rounds, |s, w| {
        goals_writer(pick(s), plans(s, w))
    })
    .await?;
    row("`setGoals` (one aim sealed)", &rates(&goals));

    reads(url, &store, &sealed, duration, rounds, readers).await?;
    Ok(())
}

/// A plan read over GraphQL with its person opened, against the same read without the person,
/// then the access audit's cost; each by every number of concurrent `readers`.
async fn reads(
    url: &str,
    store: &Arc<PgStore>,
    handler: &CommandHandler<PgStore>,
    duration: Duration,
    rounds: usize,
    readers: &[usize],
) -> anyhow::Result<()> {
    let most = readers.iter().copied().max().unwrap_or(0);
    let mut clients = Vec::new();
    for c in 0..most {
        let (party, token) =
            crate::api::social_worker(store, handler, &format!("Reader {c}")).await?;
        let mut plans = Vec::new();
        for n in 0..PLANS_PER_READER {
            let (person, command) = register(n as u64);
            handler
                .handle::<Person>(&person.stream_id(), &command, CommandMeta::new(party))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let plan = PlanId::new();
            let mut open = crate::open_plan_command(plan, party);
            if let PlanCommand::OpenPlan { person: p, .. } = &mut open {
                *p = person;
            }
            handler
                .handle::<Plan>(&plan.stream_id(), &open, CommandMeta::new(party))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            plans.push(plan.0.to_string());
        }
        clients.push((token, plans));
    }
    // Vacuumed and analysed before the servers start. In a run without it, their event feeds
    // were still reading the log in the first round of reads (seen with perf), which counted
    // against that round; in the runs since, the first round measured like the others.
    crate::settle(store).await?;
    let (addr, stop, server) = crate::api::start_server(crate::api::guarded(url)?).await?;
    // A second server, the same but that its answers do not wait for their audit entries
    // (dropped): the baseline of what the audit costs the API.
    let unaudited = homeward::settings::Settings {
        audit_each_answer: false,
        ..crate::api::guarded(url)?
    };
    let (unaudited_addr, stop_unaudited, unaudited_server) =
        crate::api::start_server(unaudited).await?;
    let api_url = format!("http://{addr}/graphql");
    let unaudited_url = format!("http://{unaudited_addr}/graphql");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(most)
        .build()?;
    let clients = Arc::new(clients);
    let http_reads = |count: usize, api_url: &str, query: &'static str| {
        let (http, api_url, clients) = (http.clone(), api_url.to_owned(), clients.clone());
        reads_per_second(count, duration, move |c, n| {
            let (http, api_url, clients) = (http.clone(), api_url.clone(), clients.clone());
            async move {
                let (token, plans) = &clients[c];
                let body: serde_json::Value = http
                    .post(&api_url)
                    .bearer_auth(token)
                    .json(&json!({ "query": query, "variables": { "id": plans[n % plans.len()] } }))
                    .send()
                    .await?
                    .json()
                    .await?;
                if body.get("errors").is_some() || body["data"]["plan"].is_null() {
                    anyhow::bail!("read failed: {body}");
                }
                Ok(())
            }
        })
    };
    let mut plan_reads = Vec::new();
    for &count in readers {
        let (rounds, _) = alternate_reads(rounds, |with_person: bool| {
            http_reads(
                count,
                &api_url,
                if with_person {
                    WITH_PERSON
                } else {
                    WITHOUT_PERSON
                },
            )
        })
        .await?;
        row(
            &format!("plan read over GraphQL, with the person opened / without the person, {count} clients"),
            &rates(&rounds),
        );
        cpu_row(&format!("plan read, {count} clients"), &rounds);
        plan_reads.push(rates(&rounds));
    }
    peak_row(
        "plan read over GraphQL, with the person / without",
        &plan_reads,
    );
    let mut http_audits = Vec::new();
    for &count in readers {
        let (rounds, batches) = alternate_reads(rounds, |audited: bool| {
            http_reads(
                count,
                if audited { &api_url } else { &unaudited_url },
                WITH_PERSON,
            )
        })
        .await?;
        row(
            &format!("the plan read with her person over GraphQL, with its audit / without, {count} clients"),
            &rates(&rounds),
        );
        cpu_row(
            &format!("audited read over GraphQL, {count} clients"),
            &rounds,
        );
        audit_row(
            &format!("audited read over GraphQL, {count} clients"),
            &batches,
        );
        http_audits.push(rates(&rounds));
    }
    let _ = stop.send(());
    let _ = stop_unaudited.send(());
    server.await??;
    unaudited_server.await??;
    peak_row(
        "the plan read with her person over GraphQL, with its audit / without",
        &http_audits,
    );

    let mut audits = Vec::new();
    for &count in readers {
        let (audited, batches) =
            audit_cost(store, handler, &clients[..count], duration, rounds).await?;
        row(
            &format!("a read of personal fields, with its audit / without, {count} clients"),
            &rates(&audited),
        );
        cpu_row(&format!("audited read, {count} clients"), &audited);
        audit_row(&format!("audited read, {count} clients"), &batches);
        audits.push(rates(&audited));
    }
    peak_row(
        "a read of personal fields, with its audit / without",
        &audits,
    );
    println!();
    Ok(())
}

/// The same read of personal fields through the schema in-process, each answer's audit entries
/// committed first (as the server does) against dropped, `rounds_of` rounds alternating.
async fn audit_cost(
    store: &Arc<PgStore>,
    handler: &CommandHandler<PgStore>,
    clients: &[(String, Vec<String>)],
    duration: Duration,
    rounds_of: usize,
) -> anyhow::Result<ReadRounds> {
    use homeward_engine::authz::Viewer;
    use homeward_engine::invitations::{InvitationSettings, Invitations};
    let outbox =
        std::env::temp_dir().join(format!("homeward-bench-outbox-{}", uuid::Uuid::new_v4()));
    let vault = handler
        .vault()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("the sealing handler has a vault"))?;
    let services = homeward_graphql::Services {
        handler: CommandHandler::new(
            store.clone() as Arc<dyn homeward_store::EventStore>,
            Arc::new(SystemClock),
        )
        .with_vault(vault.clone()),
        vault,
        audit: homeward_engine::audit::AuditWriter::spawn(
            store.clone(),
            homeward_engine::audit::DEFAULT_GATHER,
        ),
        access_log: store.clone(),
        reads: store.clone(),
        clock: Arc::new(SystemClock),
        events: homeward_graphql::EventHub::new(),
        idempotency: homeward_graphql::Idempotency {
            keys: store.clone(),
            secret: Arc::from(vec![7u8; 32]),
            retention: chrono::Duration::hours(24),
        },
        default_time_zone: "UTC".into(),
        token_max_days: 30,
        invitations: Invitations::new(InvitationSettings {
            mailer: Arc::new(homeward_engine::mail::FileOutbox::new(
                &outbox,
                "Homeward <bench@homeward.example>",
            )?),
            base_url: "http://localhost".into(),
            valid_for: chrono::Duration::days(7),
        }),
    };
    let schema = homeward_graphql::schema(services.clone());
    // The readers' parties, found back from their tokens.
    let mut viewers = Vec::new();
    for (token, plans) in clients {
        let opened = tokens::check(store.as_ref() as &dyn ReadModels, token, chrono::Utc::now())
            .await?
            .ok_or_else(|| anyhow::anyhow!("a reader's token stands"))?;
        viewers.push((opened.viewer.clone(), plans.clone()));
    }
    let viewers: Arc<Vec<(Viewer, Vec<String>)>> = Arc::new(viewers);
    let read = |audited: bool| {
        let (schema, services, viewers) = (schema.clone(), services.clone(), viewers.clone());
        reads_per_second(viewers.len(), duration, move |c, n| {
            let (schema, services, viewers) = (schema.clone(), services.clone(), viewers.clone());
            async move {
                let executing = services.audit.executing();
                let (viewer, plans) = &viewers[c];
                let (viewer, loaders) = homeward_graphql::request_data(&services, viewer.clone());
                let (reader, shown) = (viewer.party.0, loaders.access.clone());
                let request = async_graphql::Request::new(WITH_PERSON)
                    .variables(async_graphql::Variables::from_json(
                        json!({ "id": plans[n % plans.len()] }),
                    ))
                    .data(viewer)
                    .data(loaders);
                let response = schema.execute(request).await;
                if !response.errors.is_empty() {
                    anyhow::bail!("read failed: {:?}", response.errors);
                }
                let entries = shown.take(reader, chrono::Utc::now());
                if entries.is_empty() {
                    anyhow::bail!("a read of personal fields noted nobody");
                }
                if audited {
                    services.audit.record(entries, executing).await?;
                }
                Ok(())
            }
        })
    };
    let rounds = alternate_reads(rounds_of, read).await?;
    let _ = std::fs::remove_dir_all(&outbox);
    Ok(rounds)
}
