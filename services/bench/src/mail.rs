//! `homeward-bench --phases mail`: sending reminders, in one run against a local SMTP sink.
//!
//! 1. Send rate: Homeward's mailer (render a reminder, build the MIME message, send it through
//!    the pooled transport) against a bare lettre loop (one prebuilt message sent again and
//!    again through a transport with the same pool), same concurrency, alternated twice.
//! 2. The reminder worker's rate: a batch of reminders due at once, drained by one worker
//!    (claim, check against the plan, render, send in parallel over the pool, record
//!    `ReminderSent`), against the bare loop sending as many messages; three rounds, median.
//! 3. A slow mail server (each message answered after a second) and eight connections: the
//!    worker's rate against the eight a second such a server allows.
//! 4. Timer latency: the real server (`Application`, with its reminder worker) while the bare
//!    loop keeps the SMTP sink busy; plans whose reminders fall due during the measurement, and
//!    for each reminder the time from its due instant to its arrival at the sink.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use homeward_engine::mail::{Mailer, SmtpMailer};
use homeward_engine::reminders::{render, Recipient, Reminder};
use homeward_engine::scheduler::Worker;
use homeward_engine::{CommandHandler, CommandMeta, FixedClock, SystemClock};
use homeward_store::EventStore;
use homeward_store_postgres::PgStore;
use homeward_tests::smtp::SmtpCatcher;
use homeward_workflows::party::{
    Party, PartyCommand, PartyDetails, PartyRole, ReminderSettingsInput,
};
use homeward_workflows::plan::{DueRule, Plan, PlanCommand, ReminderKind, StepKind};
use homeward_workflows::{PartyId, PlanId, StepKey};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use uuid::Uuid;

/// Connections in both transports' pools, and tasks sending at once.
const POOL: u32 = 4;
const SENDERS: usize = 8;

/// The tests' SMTP catcher, counting only: it notes when each reminder (by Message-ID) arrived.
async fn sink() -> SmtpCatcher {
    let sink = SmtpCatcher::start().await;
    sink.set_count_only(true);
    sink
}

/// A sink that answers each message only after `delay` (a slow server).
async fn slow_sink(delay: Duration) -> SmtpCatcher {
    let sink = sink().await;
    sink.set_delay(delay);
    sink
}

fn bare_transport(port: u16) -> AsyncSmtpTransport<Tokio1Executor> {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port)
        .pool_config(PoolConfig::new().max_size(POOL))
        .build()
}

/// Sends `count` messages from `SENDERS` tasks; returns messages per second.
async fn bare_count(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    message: &Message,
    count: usize,
) -> anyhow::Result<f64> {
    let next = AtomicU64::new(0);
    let started = Instant::now();
    let tasks = (0..SENDERS).map(|_| async {
        while next.fetch_add(1, Ordering::Relaxed) < count as u64 {
            transport.send(message.clone()).await?;
        }
        anyhow::Ok(())
    });
    futures::future::try_join_all(tasks).await?;
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

fn bare_message() -> anyhow::Result<Message> {
    let from: Mailbox = "Homeward <reminders@homeward.example>".parse()?;
    let to: Mailbox = "Luc Martin <luc@prefecture.example>".parse()?;
    Ok(Message::builder()
        .from(from)
        .to(to)
        .subject("Rappel : Obtain a passport or laissez-passer, échéance le 2026-04-15 11:00 CEST")
        .message_id(Some("<bench-bare@homeward>".to_owned()))
        .multipart(MultiPart::alternative_plain_html(
            "Bonjour Luc Martin,\n\nL'étape « Obtain a passport » arrive à échéance.\n".to_owned(),
            "<p>Bonjour Luc Martin,</p><p>L'étape « Obtain a passport » arrive à échéance.</p>"
                .to_owned(),
        ))?)
}

/// Sends for `duration` from `SENDERS` tasks; returns messages per second.
async fn bare_loop(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    message: &Message,
    duration: Duration,
) -> anyhow::Result<f64> {
    let deadline = Instant::now() + duration;
    let tasks = (0..SENDERS).map(|_| async move {
        let mut sent = 0_u64;
        while Instant::now() < deadline {
            transport.send(message.clone()).await?;
            sent += 1;
        }
        anyhow::Ok(sent)
    });
    let counts = futures::future::try_join_all(tasks).await?;
    Ok(counts.iter().sum::<u64>() as f64 / duration.as_secs_f64())
}

/// Homeward's path: render a reminder for its recipient, build the message, send it.
async fn mailer_loop(mailer: &SmtpMailer, duration: Duration) -> anyhow::Result<f64> {
    let deadline = Instant::now() + duration;
    let to = Recipient {
        name: "Luc Martin".into(),
        address: "luc@prefecture.example".into(),
        language: "fr".into(),
        time_zone: "Europe/Paris".into(),
    };
    let tasks = (0..SENDERS).map(|task| {
        let to = to.clone();
        async move {
            let mut sent = 0_u64;
            while Instant::now() < deadline {
                let reminder = Reminder {
                    timer_id: Uuid::new_v4(),
                    kind: ReminderKind::BeforeDue,
                    plan_id: Uuid::new_v4(),
                    step_title: "Obtain a passport or laissez-passer".into(),
                    step_kind: StepKind::TravelDocument,
                    due_at: Utc::now() + chrono::Duration::days(3),
                    now: Utc::now(),
                    links: Vec::new(),
                };
                let mut mail = render(&reminder, &to);
                mail.message_id = format!("bench-{task}-{sent}@homeward");
                mailer.send(&mail).await?;
                sent += 1;
            }
            anyhow::Ok(sent)
        }
    });
    let counts = futures::future::try_join_all(tasks).await?;
    Ok(counts.iter().sum::<u64>() as f64 / duration.as_secs_f64())
}

/// A social worker and a liaison (French, no quiet hours) to own and receive the reminders.
async fn register_bench_parties(
    handler: &CommandHandler<dyn EventStore>,
) -> anyhow::Result<(PartyId, PartyId)> {
    let register = |role: PartyRole, email: &str| PartyDetails {
        display_name: "Bench".into(),
        email: email.into(),
        role,
        organisation: crate::BENCH_ORGANISATION,
        country: "FR".into(),
        language: "fr".into(),
        time_zone: "Europe/Paris".into(),
        supervisor: None,
    };
    let worker = PartyId::new();
    let liaison = PartyId::new();
    for (id, details) in [
        (
            worker,
            register(PartyRole::SocialWorker, "worker@bench.example"),
        ),
        (
            liaison,
            register(PartyRole::GovernmentLiaison, "liaison@bench.example"),
        ),
    ] {
        handler
            .handle::<Party>(
                &id.stream_id(),
                &PartyCommand::Register {
                    party_id: id,
                    details,
                },
                CommandMeta::new(id),
            )
            .await?;
    }
    // No quiet hours: the measurement may run at any hour.
    handler
        .handle::<Party>(
            &liaison.stream_id(),
            &PartyCommand::SetReminderSettings(ReminderSettingsInput {
                language: "fr".into(),
                time_zone: "Europe/Paris".into(),
                digest_cron: None,
                quiet_hours: Some(("00:00".into(), "00:00".into())),
            }),
            CommandMeta::new(liaison),
        )
        .await?;
    Ok((worker, liaison))
}

/// Opens `count` plans whose passport, assigned to `liaison`, is due 45 days after the
/// handler's clock: each has a reminder due 42 days after it.
async fn plans_with_passport_reminders(
    handler: &CommandHandler<dyn EventStore>,
    (worker, liaison): (PartyId, PartyId),
    count: usize,
) -> anyhow::Result<Vec<PlanId>> {
    let mut plans = Vec::with_capacity(count);
    for _ in 0..count {
        let id = PlanId::new();
        for command in [
            crate::open_plan_command(id, worker),
            PlanCommand::RecordConsent {
                purpose: homeward_workflows::plan::ConsentPurpose::Return,
            },
            PlanCommand::AssignStep {
                step: passport(),
                assignee: Some(liaison),
                candidate_group: None,
            },
        ] {
            handler
                .handle::<Plan>(&id.stream_id(), &command, CommandMeta::new(worker))
                .await?;
        }
        plans.push(id);
    }
    Ok(plans)
}

/// The reminder worker's rate on `count` reminders due at once: each round opens fresh plans,
/// then one worker with a delivery per pooled connection drains them; returns reminders per
/// second for each round, next to the bare loop's rate for as many messages.
struct WorkerRun {
    store: PgStore,
    handler: CommandHandler<dyn EventStore>,
    parties: (PartyId, PartyId),
    /// When the plans open; the worker's clock is 43 days later, when their reminders are due.
    opened: DateTime<Utc>,
}

impl WorkerRun {
    async fn new(url: &str) -> anyhow::Result<Self> {
        let store = PgStore::connect(url, 16).await?;
        store.migrate().await?;
        let opened = Utc::now() - chrono::Duration::days(60);
        let event_store: Arc<dyn EventStore> = Arc::new(store.clone());
        let handler = CommandHandler::new(event_store, Arc::new(FixedClock::new(opened)))
            .with_vault(crate::bench_vault(Arc::new(store.clone())));
        let parties = register_bench_parties(&handler).await?;
        Ok(Self {
            store,
            handler,
            parties,
            opened,
        })
    }

    /// Opens `count` plans, then drains their reminders with one worker over `mailer`; returns
    /// reminders per second.
    async fn drain(&self, mailer: SmtpMailer, count: usize) -> anyhow::Result<f64> {
        plans_with_passport_reminders(&self.handler, self.parties, count).await?;
        let connections = mailer.pool_size() as usize;
        let worker = Worker::new(
            Arc::new(self.store.clone()),
            self.handler.clone(),
            Arc::new(self.store.clone()),
            Arc::new(mailer),
            Arc::new(FixedClock::new(self.opened + chrono::Duration::days(43))),
        )
        .with_concurrency(connections);
        let started = Instant::now();
        let mut sent = 0;
        while sent < count {
            let pass = worker.drain().await?;
            if pass.claimed == 0 {
                anyhow::bail!("only {sent} of {count} reminders were sent");
            }
            sent += pass.sent;
        }
        Ok(count as f64 / started.elapsed().as_secs_f64())
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    crate::median_of_sorted(&values)
}

/// Sections 2 and 3: the worker against the bare loop, and against a slow server.
async fn worker_rate(url: &str, sink: &SmtpCatcher, count: usize) -> anyhow::Result<()> {
    let run = WorkerRun::new(url).await?;
    let transport = bare_transport(sink.addr.port());
    let message = bare_message()?;
    println!(
        "## The reminder worker ({count} reminders due at once, one worker sending {SENDERS} at \
         once; the bare loop sends {count} messages from {SENDERS} tasks)\n"
    );
    println!("| round | bare lettre loop | reminder worker (claim, check, render, send, record) | ratio |");
    println!("|---:|---:|---:|---:|");
    let mut ratios = Vec::new();
    for round in 1..=3 {
        let bare = bare_count(&transport, &message, count).await?;
        // As many sends at once as the bare loop's senders.
        let mailer = SmtpMailer::from_url(
            &sink.url(),
            "Homeward <reminders@homeward.example>",
            SENDERS as u32,
        )?;
        let ours = run.drain(mailer, count).await?;
        ratios.push(ours / bare);
        println!(
            "| {round} | {bare:.0}/s | {ours:.0}/s | {:.2} |",
            ours / bare
        );
    }
    println!(
        "\nReminder worker / bare lettre loop, median of three rounds: {:.2} (target ≥ 0.8)\n",
        median(ratios)
    );

    const SLOW_CONNECTIONS: u32 = 8;
    let slow = slow_sink(Duration::from_secs(1)).await;
    let per_round = 6 * SLOW_CONNECTIONS as usize;
    println!(
        "## A slow mail server (each message answered after 1 s; {SLOW_CONNECTIONS} connections, \
         {per_round} reminders due at once per round)\n"
    );
    println!("| round | reminders/s | of {SLOW_CONNECTIONS}/s |");
    println!("|---:|---:|---:|");
    let mut shares = Vec::new();
    for round in 1..=3 {
        let mailer = SmtpMailer::from_url(
            &slow.url(),
            "Homeward <reminders@homeward.example>",
            SLOW_CONNECTIONS,
        )?;
        let rate = run.drain(mailer, per_round).await?;
        let share = rate / f64::from(SLOW_CONNECTIONS);
        shares.push(share);
        println!("| {round} | {rate:.2} | {share:.2} |");
    }
    println!(
        "\nMedian of three rounds: {:.2} of the server's {SLOW_CONNECTIONS} messages/s (target ≥ 0.8)\n",
        median(shares)
    );
    Ok(())
}

pub async fn run(url: &str, seconds: u64) -> anyhow::Result<()> {
    let sink = sink().await;
    let duration = Duration::from_secs(seconds);
    let transport = bare_transport(sink.addr.port());
    let message = bare_message()?;
    let mailer = SmtpMailer::from_url(&sink.url(), "Homeward <reminders@homeward.example>", POOL)?;
    // Warm both pools.
    bare_loop(&transport, &message, Duration::from_secs(1)).await?;
    mailer_loop(&mailer, Duration::from_secs(1)).await?;
    println!(
        "## Sending reminders ({seconds}s per measurement, {SENDERS} senders, pools of {POOL})\n"
    );
    println!("| round | bare lettre loop | Homeward mailer (render + build + send) | ratio |");
    println!("|---:|---:|---:|---:|");
    let (mut bare_total, mut ours_total) = (0.0, 0.0);
    for round in 1..=2 {
        let bare = bare_loop(&transport, &message, duration).await?;
        let ours = mailer_loop(&mailer, duration).await?;
        bare_total += bare;
        ours_total += ours;
        println!(
            "| {round} | {bare:.0}/s | {ours:.0}/s | {:.2} |",
            ours / bare
        );
    }
    println!(
        "\nHomeward mailer / bare lettre loop, both rounds: {:.2} (target ≥ 0.8)\n",
        ours_total / bare_total
    );
    // Latency first: the worker-rate rounds leave old plans whose later reminders (on the due
    // day, overdue) are due in real time and would queue before the measured ones.
    latency(url, &sink, seconds.max(10)).await?;
    worker_rate(url, &sink, 400).await
}

/// Reminders due during the measurement, sent by the real server's worker while a bare loop
/// keeps the SMTP sink busy: how late each arrives.
async fn latency(url: &str, sink: &SmtpCatcher, seconds: u64) -> anyhow::Result<()> {
    let store = PgStore::connect(url, 8).await?;
    store.migrate().await?;
    let event_store: Arc<dyn EventStore> = Arc::new(store.clone());
    let handler = CommandHandler::new(event_store, Arc::new(SystemClock))
        .with_vault(crate::bench_vault(Arc::new(store.clone())));
    let parties = register_bench_parties(&handler).await?;
    let worker = parties.0;
    let per_second = 20_u64;
    let count = per_second * seconds;
    let plans = plans_with_passport_reminders(&handler, parties, count as usize).await?;
    let mut settings = homeward::app::Settings::new(url.to_owned(), "127.0.0.1:0".parse()?);
    settings.smtp_url = Some(sink.url().into());
    settings.master_key = Some(crate::BENCH_MASTER_KEY.into());
    settings.search_key = Some(crate::BENCH_SEARCH_KEY.into());
    let app = homeward::app::Application::build(settings).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    // Each passport's "three days before" reminder falls due during the measurement: 20 a
    // second, from five seconds from now (time to reschedule them all first).
    let start = Utc::now() + chrono::Duration::seconds(5);
    let mut due = HashMap::new();
    for (i, plan) in plans.iter().enumerate() {
        let fire_at = start + chrono::Duration::milliseconds((i as i64 * 1000) / per_second as i64);
        let fire_at = DateTime::from_timestamp(fire_at.timestamp(), 0).unwrap_or(fire_at);
        let handled = handler
            .handle::<Plan>(
                &plan.stream_id(),
                &PlanCommand::RescheduleStep {
                    step: passport(),
                    due: Some(DueRule::At {
                        local: (fire_at + chrono::Duration::days(3)).naive_utc(),
                        time_zone: "UTC".into(),
                    }),
                    follow_up_on: None,
                },
                CommandMeta::new(worker),
            )
            .await?;
        let timer = homeward_workflows::timers::planned_timers(&handled.state)
            .into_iter()
            .find(|t| t.kind == ReminderKind::BeforeDue)
            .ok_or_else(|| anyhow::anyhow!("no before-due timer"))?;
        due.insert(format!("{}@homeward", timer.id), timer.fire_at);
    }
    if Utc::now() > start {
        anyhow::bail!("rescheduling took longer than the lead time; use fewer plans");
    }
    // The load: the bare loop keeps the sink busy until every reminder should have arrived.
    let transport = bare_transport(sink.addr.port());
    let message = bare_message()?;
    let before = sink.received();
    let load_for = Duration::from_secs(seconds + 8);
    let load = bare_loop(&transport, &message, load_for).await?;
    let delivered = sink.received() - before;
    let _ = stop.send(());
    server.await??;
    let arrivals = sink.arrivals();
    let mut late: Vec<f64> = Vec::with_capacity(due.len());
    let mut missing = 0;
    for (id, fire_at) in &due {
        match arrivals.get(id) {
            Some(at) => {
                let at: DateTime<Utc> = (*at).into();
                late.push((at - *fire_at).num_milliseconds() as f64 / 1e3);
            }
            None => missing += 1,
        }
    }
    late.sort_by(f64::total_cmp);
    let pct = |p: f64| late[((late.len() - 1) as f64 * p).round() as usize];
    println!(
        "## Reminder latency under load ({count} reminders due over {seconds}s, 20/s, while a \
         bare lettre loop sends {load:.0}/s to the same SMTP server)\n"
    );
    println!("| reminders | arrived | p50 | p99 | max |");
    println!("|---:|---:|---:|---:|---:|");
    if late.is_empty() {
        println!("| {count} | 0 | - | - | - |");
        anyhow::bail!("no reminder arrived");
    }
    println!(
        "| {count} | {} | {:.2} s | {:.2} s | {:.2} s |",
        late.len(),
        pct(0.5),
        pct(0.99),
        late[late.len() - 1]
    );
    println!(
        "\nFrom due to arrival at the SMTP server; target p99 ≤ 2 s. {missing} did not arrive; \
         the sink took {delivered} messages in all during the load.\n"
    );
    Ok(())
}

fn passport() -> StepKey {
    StepKey::parse("passport").expect("a valid step key")
}
