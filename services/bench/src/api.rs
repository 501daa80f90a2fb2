//! `homeward-bench --phases api`: the GraphQL API under load, against its baselines in one run.
//!
//! 10,000 active plans are loaded, their first steps assigned to 32 social workers (one per
//! client). Then, with 32 concurrent clients:
//! - `completeStep` through the store-level command handler (no HTTP), then the same mutation
//!   through the real server over HTTP, on disjoint halves of the plans: every ready step of
//!   each half is completed once, and the time that takes gives the rate;
//! - the `tasks` inbox through the server, then a bare axum handler that runs the same SQL (the
//!   token lookup and the inbox query) and returns the same JSON;
//! - `prioritiseStep` through the server without and with an `idempotencyKey` on every call,
//!   three rounds alternated;
//! - the hot-plan case: 16 clients sending `prioritiseStep` to 8 plans without
//!   `expectedVersion` (every call must succeed);
//! - with `--phases guards`, what the access guards cost: two servers started side by side, one
//!   with the rate limiter and the token check before every socket operation, one without;
//!   the inbox over HTTP, `completeStep` and the inbox over WebSockets on each, three rounds.
//!
//! Throughput and p50/p99 latency are printed as a Markdown table for BENCHMARKS.md.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use homeward_engine::{tokens, CommandHandler, CommandMeta, SystemClock};
use homeward_store::reads::{Page, ReadModels, TaskFilter, TaskScope};
use homeward_store_postgres::tasks_query;
use homeward_store_postgres::PgStore;
use homeward_workflows::party::{Party, PartyCommand, PartyDetails, PartyRole};
use homeward_workflows::plan::{ConsentPurpose, Plan, PlanCommand};
use homeward_workflows::{PartyId, PlanId, StepKey};
use serde_json::{json, Value};
use sqlx::Row;

use homeward::app::{Application, Settings};

/// Clients, as the issue asks.
const CLIENTS: usize = 32;
/// The steps each plan has ready to complete, assigned to the plan's client.
const READY_STEPS: [&str; 4] = [
    "origin_contact",
    "passport",
    "legal_clearance",
    "medical_check",
];

/// Rounds of the guard comparison, each with and without: two slices of plans a round.
const GUARD_ROUNDS: usize = 3;
const GUARD_SLICES: usize = 2 * GUARD_ROUNDS;

const INBOX_QUERY: &str =
    "{ tasks(first: 20) { edges { node { planId key title kind status dueAt priority } } } }";

struct Client {
    /// Its place among the clients.
    index: usize,
    party: PartyId,
    token: String,
    /// Plans for the store-level measurement, then for the API measurement.
    store_plans: Vec<PlanId>,
    api_plans: Vec<PlanId>,
    /// Plans for `completeStep` with and without the access guards, a slice a round.
    guard_plans: Vec<PlanId>,
}

struct Measured {
    rate: f64,
    p50: Duration,
    p99: Duration,
}

/// Loads the plans, then measures the API against its baselines (`api`) and what the access
/// guards cost (`guards`).
pub async fn run(
    url: &str,
    plans: usize,
    seconds: u64,
    api: bool,
    guards: bool,
) -> anyhow::Result<()> {
    let store = Arc::new(PgStore::connect(url, 40).await?);
    store.migrate().await?;
    let handler = CommandHandler::new(store.clone(), Arc::new(SystemClock))
        .with_vault(crate::bench_vault(store.clone()));
    println!("## GraphQL API ({CLIENTS} clients, {plans} plans, {seconds}s each)\n");
    let started = Instant::now();
    let clients = load(&store, &handler, plans).await?;
    // Statistics, as autovacuum would have gathered them on a database in use: without them
    // the planner takes the freshly loaded tables for nearly empty ones.
    sqlx::query("ANALYZE").execute(store.pool()).await?;
    eprintln!("loaded {plans} plans in {:.1?}", started.elapsed());

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()?;
    let duration = Duration::from_secs(seconds);
    if api {
        baselines(url, &store, &clients, &http, seconds).await?;
    }

    if guards {
        guard_costs(url, &clients, &http, duration).await?;
    }
    Ok(())
}

/// The API against its baselines: `completeStep` against the store-level handler, the inbox
/// against a bare axum handler, keyed against unkeyed mutations, and the hot-plan case.
async fn baselines(
    url: &str,
    store: &Arc<PgStore>,
    clients: &[Client],
    http: &reqwest::Client,
    seconds: u64,
) -> anyhow::Result<()> {
    let duration = Duration::from_secs(seconds);
    let (api_addr, stop, server) = start_server(guarded(url)?).await?;
    let bare_addr = bare_inbox_server(store.clone()).await?;
    let api_url = format!("http://{api_addr}/graphql");

    explain_inbox(store, &clients[0]).await?;
    // The inbox first, while every client has open tasks: through the API, then the bare
    // handler.
    let inbox = measure(clients, duration, u64::MAX, |c, _| {
        let request = http
            .post(&api_url)
            .bearer_auth(&c.token)
            .json(&json!({ "query": INBOX_QUERY }));
        async move { expect_data(request.send().await?.json().await?) }
    })
    .await?;
    let bare_url = format!("http://{bare_addr}/tasks");
    let bare = measure(clients, duration, u64::MAX, |c, _| {
        let request = http.post(&bare_url).bearer_auth(&c.token);
        async move { expect_data(request.send().await?.json().await?) }
    })
    .await?;

    // Commands: store level, then through the API, on disjoint plans: each client completes
    // every ready step of its plans once (a step cannot be completed twice).
    let completions = (clients[0].store_plans.len() * READY_STEPS.len()) as u64;
    let no_limit = Duration::from_secs(3600);
    // A handler with an empty state cache, as the server's is for these plans: both load each
    // plan once, then decide on the cached state.
    let handler = CommandHandler::new(store.clone(), Arc::new(SystemClock))
        .with_vault(crate::bench_vault(store.clone()));
    let store_level = measure(clients, no_limit, completions, |c, n| {
        let handler = handler.clone();
        let (plan, step) = nth_step(&c.store_plans, n);
        let party = c.party;
        async move {
            handler
                .handle::<Plan>(
                    &plan.stream_id(),
                    &PlanCommand::CompleteStep { step },
                    CommandMeta::new(party),
                )
                .await?;
            Ok(())
        }
    })
    .await?;
    let api_commands = measure(clients, no_limit, completions, |c, n| {
        let (plan, step) = nth_step(&c.api_plans, n);
        let request = http.post(&api_url).bearer_auth(&c.token).json(&json!({
            "query": "mutation($p: ID!, $s: String!) { completeStep(planId: $p, step: $s) { version } }",
            "variables": { "p": plan.to_string(), "s": step.as_str() },
        }));
        async move { expect_data(request.send().await?.json().await?) }
    })
    .await?;

    println!("| measurement | per second | p50 | p99 | ratio to its baseline | target |");
    println!("|---|---:|---:|---:|---:|---:|");
    let row = |name: &str, m: &Measured, baseline: Option<(&Measured, &str)>| {
        let (ratio, target) = match baseline {
            Some((b, target)) => (format!("{:.2}", m.rate / b.rate), target.to_owned()),
            None => ("(baseline)".to_owned(), String::new()),
        };
        println!(
            "| {name} | {:.0} | {:.1} ms | {:.1} ms | {ratio} | {target} |",
            m.rate,
            m.p50.as_secs_f64() * 1e3,
            m.p99.as_secs_f64() * 1e3
        );
    };
    row("completeStep, store-level handler", &store_level, None);
    row(
        "completeStep, GraphQL over HTTP",
        &api_commands,
        Some((&store_level, "≥ 0.5")),
    );
    row(
        "inbox, bare axum handler (same SQL, same JSON)",
        &bare,
        None,
    );
    row(
        "inbox, GraphQL `tasks(first: 20)`",
        &inbox,
        Some((&bare, "≥ 0.3")),
    );
    println!();

    // Idempotency keys: the same mutation without and with a fresh key on every call.
    let prioritise = |keyed: bool| {
        let http = &http;
        let api_url = &api_url;
        measure(clients, duration / 2, u64::MAX, move |c, n| {
            let plan = c.api_plans[n as usize % c.api_plans.len()];
            // A different priority on each pass over the client's plans.
            let pass = n as usize / c.api_plans.len();
            let priority = if pass.is_multiple_of(2) {
                "HIGH"
            } else {
                "LOW"
            };
            let key = keyed.then(|| uuid::Uuid::new_v4().to_string());
            let request = http.post(api_url).bearer_auth(&c.token).json(&json!({
                "query": "mutation($p: ID!, $pr: Priority!, $k: String) { prioritiseStep(planId: $p, step: \"travel\", priority: $pr, idempotencyKey: $k) { version } }",
                "variables": { "p": plan.to_string(), "pr": priority, "k": key },
            }));
            async move { expect_data(request.send().await?.json().await?) }
        })
    };
    println!("| round | prioritiseStep without keys/s | p99 | with a key on every call/s | p99 | ratio (≥ 0.9) |");
    println!("|---:|---:|---:|---:|---:|---:|");
    let mut ratios = Vec::new();
    for round in 1..=3 {
        let plain = prioritise(false).await?;
        let keyed = prioritise(true).await?;
        ratios.push(keyed.rate / plain.rate);
        println!(
            "| {round} | {:.0} | {:.1} ms | {:.0} | {:.1} ms | {:.2} |",
            plain.rate,
            plain.p99.as_secs_f64() * 1e3,
            keyed.rate,
            keyed.p99.as_secs_f64() * 1e3,
            keyed.rate / plain.rate
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "\nWith keys / without, median of three rounds: {:.2} (target ≥ 0.9)\n",
        crate::median_of_sorted(&ratios)
    );

    // The hot-plan case: 16 clients, 8 plans, no expectedVersion; every call must succeed.
    const HOT_CLIENTS: usize = 16;
    const HOT_PLANS: usize = 8;
    let hot: Vec<PlanId> = clients[0].api_plans[..HOT_PLANS].to_vec();
    let hot = &hot;
    let hot_run = measure(&clients[..HOT_CLIENTS], duration, u64::MAX, |c, n| {
        let plan = hot[(c.index + n as usize) % HOT_PLANS];
        let priority = if n.is_multiple_of(2) { "URGENT" } else { "NORMAL" };
        let request = http.post(&api_url).bearer_auth(&c.token).json(&json!({
            "query": "mutation($p: ID!, $pr: Priority!) { prioritiseStep(planId: $p, step: \"travel\", priority: $pr) { version } }",
            "variables": { "p": plan.to_string(), "pr": priority },
        }));
        async move { expect_data(request.send().await?.json().await?) }
    })
    .await?;
    println!(
        "Hot plans ({HOT_CLIENTS} clients, {HOT_PLANS} plans, no expectedVersion, {seconds}s): \
         {:.0} commands/s, p50 {:.1} ms, p99 {:.1} ms, no error\n",
        hot_run.rate,
        hot_run.p50.as_secs_f64() * 1e3,
        hot_run.p99.as_secs_f64() * 1e3
    );

    let _ = stop.send(());
    server.await??;
    Ok(())
}

/// The server as deployed, its rate limiter on at a rate these clients stay under: paid for,
/// never refusing.
pub(crate) fn guarded(url: &str) -> anyhow::Result<Settings> {
    Ok(Settings {
        max_connections: 40,
        rate_limit: 100_000,
        rate_burst: 100_000,
        master_key: Some(crate::BENCH_MASTER_KEY.into()),
        search_key: Some(crate::BENCH_SEARCH_KEY.into()),
        ..Settings::new(url, "127.0.0.1:0".parse()?)
    })
}

/// A server of its own in this process: its address, its stop signal and its task.
pub(crate) async fn start_server(
    settings: Settings,
) -> anyhow::Result<(
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
)> {
    let app = Application::build(settings).await?;
    let addr = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    Ok((addr, stop, server))
}

/// What the access guards cost: the inbox and `completeStep` over HTTP with the rate limiter
/// and without, and the inbox over WebSockets with the token checked before every operation
/// and without; rounds alternated, the median ratio of three.
async fn guard_costs(
    url: &str,
    clients: &[Client],
    http: &reqwest::Client,
    duration: Duration,
) -> anyhow::Result<()> {
    // Two servers started afresh side by side, the same but for the guards: neither carries
    // the caches of the measurements before.
    let (guarded, stop_guarded, guarded_server) = start_server(self::guarded(url)?).await?;
    let (unguarded, stop_unguarded, unguarded_server) = start_server(Settings {
        rate_limit: 0,
        ws_check_each_operation: false,
        ..self::guarded(url)?
    })
    .await?;
    let slice = clients[0].guard_plans.len() / GUARD_SLICES;
    let completions = (slice * READY_STEPS.len()) as u64;
    let inbox_http = |addr: SocketAddr| {
        let url = format!("http://{addr}/graphql");
        measure(clients, duration, u64::MAX, move |c, _| {
            let request = http
                .post(&url)
                .bearer_auth(&c.token)
                .json(&json!({ "query": INBOX_QUERY }));
            async move { expect_data(request.send().await?.json().await?) }
        })
    };
    let complete = |addr: SocketAddr, slice_index: usize| {
        let url = format!("http://{addr}/graphql");
        measure(
            clients,
            Duration::from_secs(3600),
            completions,
            move |c, n| {
                let plans = &c.guard_plans[slice_index * slice..(slice_index + 1) * slice];
                let (plan, step) = nth_step(plans, n);
                let request = http.post(&url).bearer_auth(&c.token).json(&json!({
                "query": "mutation($p: ID!, $s: String!) { completeStep(planId: $p, step: $s) { version } }",
                "variables": { "p": plan.to_string(), "s": step.as_str() },
            }));
                async move { expect_data(request.send().await?.json().await?) }
            },
        )
    };
    println!(
        "## The access guards: rate limiter and per-operation token check, with ÷ without
"
    );
    println!("| round | inbox HTTP with/s | without/s | ratio | completeStep with/s | without/s | ratio | inbox WebSocket with/s | without/s | ratio |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    // A warm-up on each server, measured for nothing: its pool's connections opened, its
    // statements prepared.
    for addr in [guarded, unguarded] {
        inbox_http(addr).await?;
        inbox_over_websockets(clients, addr, Duration::from_secs(2)).await?;
    }
    let mut ratios: [Vec<f64>; 3] = Default::default();
    for round in 0..GUARD_ROUNDS {
        // Alternate which goes first, so that neither always meets a warmer cache.
        let (inbox_with, inbox_without, complete_with, complete_without, ws_with, ws_without);
        if round % 2 == 0 {
            inbox_with = inbox_http(guarded).await?;
            inbox_without = inbox_http(unguarded).await?;
            complete_with = complete(guarded, 2 * round).await?;
            complete_without = complete(unguarded, 2 * round + 1).await?;
            ws_with = inbox_over_websockets(clients, guarded, duration).await?;
            ws_without = inbox_over_websockets(clients, unguarded, duration).await?;
        } else {
            inbox_without = inbox_http(unguarded).await?;
            inbox_with = inbox_http(guarded).await?;
            complete_without = complete(unguarded, 2 * round + 1).await?;
            complete_with = complete(guarded, 2 * round).await?;
            ws_without = inbox_over_websockets(clients, unguarded, duration).await?;
            ws_with = inbox_over_websockets(clients, guarded, duration).await?;
        }
        let pairs = [
            (&inbox_with, &inbox_without),
            (&complete_with, &complete_without),
            (&ws_with, &ws_without),
        ];
        let mut cells = Vec::new();
        for (i, (with, without)) in pairs.iter().enumerate() {
            let ratio = with.rate / without.rate;
            ratios[i].push(ratio);
            cells.push(format!(
                "{:.0} | {:.0} | {ratio:.2}",
                with.rate, without.rate
            ));
        }
        println!("| {} | {} |", round + 1, cells.join(" | "));
    }
    let medians: Vec<String> = ratios
        .iter_mut()
        .map(|r| {
            r.sort_by(f64::total_cmp);
            format!("{:.2}", crate::median_of_sorted(r))
        })
        .collect();
    println!(
        "\nWith the guards ÷ without, median of three rounds (target ≥ 0.95): inbox over HTTP \
         {}, completeStep {}, inbox over WebSockets {}\n",
        medians[0], medians[1], medians[2]
    );
    let _ = stop_guarded.send(());
    guarded_server.await??;
    let _ = stop_unguarded.send(());
    unguarded_server.await??;
    Ok(())
}

/// The inbox asked over one WebSocket per client, one operation after another (a query sent
/// as a `subscribe`, answered with `next` and `complete`).
async fn inbox_over_websockets(
    clients: &[Client],
    addr: SocketAddr,
    duration: Duration,
) -> anyhow::Result<Measured> {
    use futures::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    use tokio_tungstenite::tungstenite::Message;

    let mut sockets = Vec::with_capacity(clients.len());
    for client in clients {
        let mut request = format!("ws://{addr}/graphql").into_client_request()?;
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse()?);
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
        let init = json!({ "type": "connection_init",
                           "payload": { "Authorization": format!("Bearer {}", client.token) } });
        socket.send(Message::text(init.to_string())).await?;
        let ack = socket.next().await.context("the socket closed")??;
        anyhow::ensure!(ack.to_text()?.contains("connection_ack"), "no ack: {ack}");
        sockets.push(tokio::sync::Mutex::new(socket));
    }
    let sockets = Arc::new(sockets);
    measure(clients, duration, u64::MAX, move |c, n| {
        let sockets = sockets.clone();
        let index = c.index;
        async move {
            // One socket per client, used by one call at a time.
            let mut socket = sockets[index].lock().await;
            let subscribe = json!({ "id": n.to_string(), "type": "subscribe",
                                    "payload": { "query": INBOX_QUERY } });
            socket.send(Message::text(subscribe.to_string())).await?;
            loop {
                let message = socket.next().await.context("the socket closed")??;
                let Message::Text(text) = message else {
                    continue;
                };
                let message: Value = serde_json::from_str(&text)?;
                match message["type"].as_str() {
                    Some("next") => expect_data(message["payload"].clone())?,
                    Some("complete") => return anyhow::Ok(()),
                    _ => anyhow::bail!("unexpected message {message}"),
                }
            }
        }
    })
    .await
}

/// Prints the plan PostgreSQL runs the inbox query with (to stderr), for one client.
async fn explain_inbox(store: &PgStore, client: &Client) -> anyhow::Result<()> {
    let viewer = tokens::authenticate(store, &client.token, chrono::Utc::now())
        .await?
        .context("the client's token")?;
    let scope = TaskScope {
        assignee: viewer.party,
        organisation: Some(viewer.organisation.0),
        kinds: None,
    };
    let filter = TaskFilter::default();
    let page = Page {
        offset: 0,
        limit: 21,
    };
    let query = tasks_query(&scope, &filter, chrono::Utc::now(), page);
    let sql = format!("EXPLAIN (ANALYZE, BUFFERS) {}", query.sql());
    // The same binds, in order: assignee, organisation, limit, offset.
    let lines: Vec<String> = sqlx::query_scalar(&sql)
        .bind(scope.assignee.0)
        .bind(scope.organisation)
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(store.pool())
        .await?;
    eprintln!("inbox query plan:\n{}", lines.join("\n"));
    Ok(())
}

/// The `n`th step a client completes: plan by plan, each plan's ready steps in turn.
fn nth_step(plans: &[PlanId], n: u64) -> (PlanId, StepKey) {
    let n = n as usize;
    let plan = plans[(n / READY_STEPS.len()) % plans.len()];
    let step = StepKey::parse(READY_STEPS[n % READY_STEPS.len()]).expect("a valid step key");
    (plan, step)
}

fn expect_data(body: Value) -> anyhow::Result<()> {
    match body.get("errors") {
        None => Ok(()),
        Some(errors) => anyhow::bail!("request failed: {errors}"),
    }
}

/// Runs one loop per client for `duration` or `calls_per_client` calls, whichever ends first;
/// returns the rate and latency percentiles.
async fn measure<F, Fut>(
    clients: &[Client],
    duration: Duration,
    calls_per_client: u64,
    op: F,
) -> anyhow::Result<Measured>
where
    F: Fn(&Client, u64) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let started = Instant::now();
    let deadline = started + duration;
    let loops = clients.iter().map(|client| {
        let op = &op;
        async move {
            let mut latencies = Vec::new();
            let mut n = 0;
            while n < calls_per_client && Instant::now() < deadline {
                let call = op(client, n);
                n += 1;
                let began = Instant::now();
                // Spawned, so that the calls of different clients run on both cores.
                tokio::spawn(call).await??;
                latencies.push(began.elapsed());
            }
            anyhow::Ok(latencies)
        }
    });
    let mut latencies = Vec::new();
    for result in futures::future::join_all(loops).await {
        latencies.extend(result?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pick = |q: f64| {
        let i = ((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(i).copied().unwrap_or_default()
    };
    Ok(Measured {
        rate: latencies.len() as f64 / elapsed,
        p50: pick(0.50),
        p99: pick(0.99),
    })
}

/// A social worker of the bench organisation, registered through `handler`, and a token of
/// theirs.
pub(crate) async fn social_worker(
    store: &Arc<PgStore>,
    handler: &CommandHandler<PgStore>,
    name: &str,
) -> anyhow::Result<(PartyId, String)> {
    let party = PartyId::new();
    let details = PartyDetails {
        display_name: name.to_owned(),
        email: format!("{}@bench.example", name.to_lowercase().replace(' ', ".")),
        role: PartyRole::SocialWorker,
        organisation: crate::BENCH_ORGANISATION,
        country: "FR".into(),
        language: "fr".into(),
        time_zone: "Europe/Paris".into(),
        supervisor: None,
    };
    handler
        .handle::<Party>(
            &party.stream_id(),
            &PartyCommand::Register {
                party_id: party,
                details,
            },
            CommandMeta::new(party),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let request = tokens::TokenRequest {
        party,
        role: PartyRole::SocialWorker,
        days: 30,
        max_days: tokens::DEFAULT_MAX_TOKEN_DAYS,
        issued_by: None,
    };
    let token = tokens::issue(
        store.as_ref() as &dyn ReadModels,
        request,
        chrono::Utc::now(),
    )
    .await?;
    Ok((party, token.secret))
}

/// Registers the clients' social workers and loads active plans assigned to them.
async fn load(
    store: &Arc<PgStore>,
    handler: &CommandHandler<PgStore>,
    plans: usize,
) -> anyhow::Result<Vec<Client>> {
    let mut clients = Vec::with_capacity(CLIENTS);
    for c in 0..CLIENTS {
        let (party, token) = social_worker(store, handler, &format!("Worker {c}")).await?;
        clients.push(Client {
            index: c,
            party,
            token,
            store_plans: Vec::new(),
            api_plans: Vec::new(),
            guard_plans: Vec::new(),
        });
    }
    let per_client = plans.div_ceil(CLIENTS);
    let loaders: Vec<_> = clients
        .iter()
        .map(|c| {
            let handler = handler.clone();
            let party = c.party;
            tokio::spawn(async move {
                let mut ids = Vec::with_capacity(per_client);
                for _ in 0..per_client {
                    let id = PlanId::new();
                    let stream = id.stream_id();
                    let mut commands = vec![
                        crate::open_plan_command(id, party),
                        PlanCommand::RecordConsent {
                            purpose: ConsentPurpose::Return,
                        },
                    ];
                    for step in READY_STEPS {
                        commands.push(PlanCommand::AssignStep {
                            step: StepKey::parse(step)?,
                            assignee: Some(party),
                            candidate_group: None,
                        });
                    }
                    for command in &commands {
                        handler
                            .handle::<Plan>(&stream, command, CommandMeta::new(party))
                            .await?;
                    }
                    ids.push(id);
                }
                anyhow::Ok(ids)
            })
        })
        .collect();
    for (client, loaded) in clients.iter_mut().zip(loaders) {
        let ids = loaded.await??;
        // Thirds: store level and API the same size, so that both do the same work; the last
        // for the guards, in slices of equal size.
        let third = ids.len() / 3;
        client.store_plans = ids[..third].to_vec();
        client.api_plans = ids[third..2 * third].to_vec();
        let slice = third / GUARD_SLICES;
        client.guard_plans = ids[2 * third..2 * third + slice * GUARD_SLICES].to_vec();
    }
    Ok(clients)
}

/// The baseline: an axum handler that runs the API's SQL for the inbox (the token lookup and
/// the tasks query) and writes the same JSON, without GraphQL.
async fn bare_inbox_server(store: Arc<PgStore>) -> anyhow::Result<SocketAddr> {
    async fn inbox(State(store): State<Arc<PgStore>>, headers: HeaderMap) -> Response {
        match answer(&store, &headers).await {
            Ok(body) => axum::Json(body).into_response(),
            Err(e) => {
                axum::Json(json!({ "errors": [{ "message": e.to_string() }] })).into_response()
            }
        }
    }
    async fn answer(store: &PgStore, headers: &HeaderMap) -> anyhow::Result<Value> {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .context("no token")?;
        let viewer = tokens::authenticate(store, token, chrono::Utc::now())
            .await?
            .context("unknown token")?;
        let scope = TaskScope {
            assignee: viewer.party,
            organisation: Some(viewer.organisation.0),
            kinds: None,
        };
        let filter = TaskFilter::default();
        let rows = tasks_query(
            &scope,
            &filter,
            chrono::Utc::now(),
            Page {
                offset: 0,
                limit: 21,
            },
        )
        .build()
        .fetch_all(store.pool())
        .await?;
        let edges: Vec<Value> = rows
            .iter()
            .take(20)
            .map(|r| {
                let priority = match r.get::<i16, _>("priority") {
                    0 => "URGENT",
                    1 => "HIGH",
                    3 => "LOW",
                    _ => "NORMAL",
                };
                json!({ "node": {
                    "planId": r.get::<uuid::Uuid, _>("plan_id").to_string(),
                    "key": r.get::<String, _>("step_key"),
                    "title": r.get::<String, _>("title"),
                    "kind": r.get::<String, _>("kind").to_uppercase(),
                    "status": r.get::<String, _>("status").to_uppercase(),
                    "dueAt": r.get::<Option<chrono::DateTime<chrono::Utc>>, _>("due_at"),
                    "priority": priority,
                }})
            })
            .collect();
        Ok(json!({ "data": { "tasks": { "edges": edges } } }))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let router = Router::new().route("/tasks", post(inbox)).with_state(store);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(addr)
}
