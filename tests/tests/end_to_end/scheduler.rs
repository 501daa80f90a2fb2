//! The reminder worker against a real SMTP server on a random port, with an injected clock: the
//! exact messages that arrive, quiet hours, a server that is down for a while, three workers
//! sharing a thousand due timers, a server slower than the lease, one that never greets, and a
//! graceful shutdown in the middle of a batch.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, TimeZone, Utc};
use homeward_engine::mail::SmtpMailer;
use homeward_engine::scheduler::Worker;
use homeward_engine::{CommandHandler, CommandMeta, FixedClock};
use homeward_store::EventStore;
use homeward_tests::smtp::SmtpCatcher;
use homeward_tests::{key, party_details, plan_with_passport, start_time, TestDb};
use homeward_workflows::party::{Party, PartyCommand, PartyRole, ReminderSettingsInput};
use homeward_workflows::plan::{ConsentPurpose, Plan, PlanCommand};
use homeward_workflows::{PartyId, PlanId};

struct World {
    db: TestDb,
    clock: Arc<FixedClock>,
    handler: CommandHandler<dyn EventStore>,
    smtp: SmtpCatcher,
    worker: PartyId,
    liaison: PartyId,
}

impl World {
    /// A case worker with a supervisor (English, UTC) and a liaison in `liaison_zone` (French).
    async fn new(liaison_zone: &str) -> Self {
        let db = TestDb::new().await;
        let clock = Arc::new(FixedClock::new(start_time()));
        let store: Arc<dyn EventStore> = db.store.clone();
        let handler = CommandHandler::new(store, clock.clone()).with_vault(db.vault());
        let register = |details: homeward_workflows::party::PartyDetails| {
            let handler = handler.clone();
            async move {
                let id = PartyId::new();
                handler
                    .handle::<Party>(
                        &id.stream_id(),
                        &PartyCommand::Register {
                            party_id: id,
                            details,
                        },
                        CommandMeta::new(id),
                    )
                    .await
                    .unwrap();
                id
            }
        };
        let mut sup = party_details(PartyRole::Supervisor, "sam@safe-passage.example");
        sup.display_name = "Sam".into();
        sup.language = "en".into();
        sup.time_zone = "UTC".into();
        let supervisor = register(sup).await;
        let mut cw = party_details(PartyRole::SocialWorker, "amina@safe-passage.example");
        cw.supervisor = Some(supervisor);
        let worker = register(cw).await;
        let mut li = party_details(PartyRole::GovernmentLiaison, "luc@prefecture.example");
        li.display_name = "Luc".into();
        li.time_zone = liaison_zone.into();
        let liaison = register(li).await;
        Self {
            db,
            clock,
            handler,
            smtp: SmtpCatcher::start().await,
            worker,
            liaison,
        }
    }

    fn scheduler(&self) -> Worker {
        self.scheduler_with(
            SmtpMailer::from_url(&self.smtp.url(), "Homeward <reminders@homeward.example>", 4)
                .unwrap(),
        )
    }

    fn scheduler_with(&self, mailer: SmtpMailer) -> Worker {
        let connections = mailer.pool_size() as usize;
        Worker::new(
            self.db.store.clone(),
            self.handler.clone(),
            self.db.store.clone(),
            Arc::new(mailer),
            self.clock.clone(),
        )
        .with_concurrency(connections)
    }

    /// Moves the clock on with real time from `from`, in the background, so that leases end as
    /// they would in production; stops when the returned handle is dropped.
    fn follow_real_time(&self, from: DateTime<Utc>) -> AbortOnDrop {
        let clock = self.clock.clone();
        let started = std::time::Instant::now();
        AbortOnDrop(tokio::spawn(async move {
            loop {
                let elapsed = Duration::from_std(started.elapsed()).unwrap();
                clock.set(from + elapsed);
                tokio::time::sleep(StdDuration::from_millis(10)).await;
            }
        }))
    }

    /// Reminders the SMTP server received, and how many distinct ones (by Message-ID).
    fn delivered(&self) -> (usize, usize) {
        let got = self.smtp.messages();
        let distinct: HashSet<_> = got
            .iter()
            .map(|m| m.header("Message-ID").unwrap())
            .collect();
        (got.len(), distinct.len())
    }

    /// An active plan whose passport (due 45 days after opening) is assigned to the liaison.
    async fn plan_with_passport(&self) -> PlanId {
        plan_with_passport(&self.handler, self.worker, self.liaison).await
    }

    async fn recorded(&self) -> i64 {
        self.db
            .count("SELECT count(*) FROM events WHERE event_type IN ('reminder_sent', 'step_escalated')")
            .await
    }

    fn at(&self, t: DateTime<Utc>) {
        self.clock.set(t);
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The passport is due on 15 April 2026 at 09:00 UTC (45 days after 1 March 09:00).
fn passport_due() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 4, 15, 9, 0, 0).unwrap()
}

#[tokio::test]
async fn reminders_arrive_in_the_recipients_language_and_time_and_are_recorded_once() {
    let w = World::new("Europe/Paris").await;
    let plan = w.plan_with_passport().await;
    let scheduler = w.scheduler();

    // Nothing is due yet.
    assert_eq!(scheduler.drain().await.unwrap().claimed, 0);

    // Three days before: the liaison, in French, with Paris time.
    w.at(passport_due() - Duration::days(3) + Duration::seconds(30));
    let pass = scheduler.drain().await.unwrap();
    assert_eq!(pass.sent, 1, "{pass:?}");
    let got = w.smtp.wait_for(1, StdDuration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    let first = &got[0];
    assert_eq!(first.to, ["<luc@prefecture.example>"]);
    assert_eq!(
        first.header("Subject").unwrap(),
        "Rappel : Obtenir un passeport ou un laissez-passer, échéance le 2026-04-15 11:00 CEST"
    );
    assert!(first.header("Message-ID").unwrap().ends_with("@homeward>"));
    assert!(
        !first.data.contains("text/calendar"),
        "only follow-up visits carry an invitation"
    );
    assert_eq!(w.recorded().await, 1);
    // Drained again: nothing more, nothing twice.
    assert_eq!(scheduler.drain().await.unwrap().claimed, 0);
    assert_eq!(w.smtp.messages().len(), 1);

    // On the day, then two weeks late: the overdue reminder, and the escalation to the case
    // worker's supervisor in English.
    w.at(passport_due() + Duration::seconds(30));
    assert_eq!(scheduler.drain().await.unwrap().sent, 1);
    w.at(passport_due() + Duration::days(14) + Duration::seconds(30));
    let late = scheduler.drain().await.unwrap();
    assert!(late.sent >= 2, "{late:?}");
    let all = w.smtp.wait_for(4, StdDuration::from_secs(5)).await;
    let escalation = all
        .iter()
        .find(|m| m.to == ["<sam@safe-passage.example>"])
        .expect("the supervisor is told");
    assert_eq!(
        escalation.header("Subject").unwrap(),
        "Escalation: Obtain a passport or laissez-passer is 14 days overdue"
    );
    assert!(all
        .iter()
        .any(|m| m.header("Subject").unwrap().starts_with("En retard : ")));
    // What the SMTP server received is exactly what the plan's history says was sent.
    assert_eq!(w.recorded().await, all.len() as i64);
    let ids: HashSet<_> = all
        .iter()
        .map(|m| m.header("Message-ID").unwrap())
        .collect();
    assert_eq!(ids.len(), all.len());

    // Completing the step ends its reminders.
    w.handler
        .handle::<Plan>(
            &plan.stream_id(),
            &PlanCommand::CompleteStep {
                step: key("passport"),
            },
            CommandMeta::new(w.worker),
        )
        .await
        .unwrap();
    w.at(passport_due() + Duration::days(60));
    assert_eq!(scheduler.drain().await.unwrap().sent, 0);
    assert_eq!(
        w.db.count("SELECT count(*) FROM timers WHERE step_key = 'passport'")
            .await,
        0
    );
}

#[tokio::test]
async fn quiet_hours_in_the_recipients_zone_defer_the_reminder() {
    // 09:00 UTC on 12 April is 21:00 in Auckland: quiet until 08:00 there (20:00 UTC).
    let w = World::new("Pacific/Auckland").await;
    w.plan_with_passport().await;
    let scheduler = w.scheduler();
    w.at(passport_due() - Duration::days(3) + Duration::seconds(30));
    let pass = scheduler.drain().await.unwrap();
    assert_eq!((pass.sent, pass.deferred), (0, 1), "{pass:?}");
    assert!(w.smtp.messages().is_empty());
    w.at(Utc.with_ymd_and_hms(2026, 4, 12, 19, 59, 0).unwrap());
    assert_eq!(scheduler.drain().await.unwrap().sent, 0, "still quiet");
    w.at(Utc.with_ymd_and_hms(2026, 4, 12, 20, 0, 30).unwrap());
    assert_eq!(scheduler.drain().await.unwrap().sent, 1);
    assert_eq!(w.smtp.wait_for(1, StdDuration::from_secs(5)).await.len(), 1);
}

#[tokio::test]
async fn a_server_down_for_a_while_gets_every_reminder_once_when_it_is_back() {
    let w = World::new("UTC").await;
    for _ in 0..3 {
        w.plan_with_passport().await;
    }
    let scheduler = w.scheduler();
    w.smtp.set_down(true);
    let start = passport_due() - Duration::days(3) + Duration::seconds(30);
    w.at(start);
    let pass = scheduler.drain().await.unwrap();
    assert_eq!((pass.sent, pass.failed), (0, 3), "{pass:?}");
    assert_eq!(w.recorded().await, 0);
    // Still down at the first retry (after a minute and some jitter).
    w.at(start + Duration::minutes(2));
    assert_eq!(scheduler.drain().await.unwrap().failed, 3);
    // Back up; the second retry waits two minutes more (and jitter).
    w.smtp.set_down(false);
    w.at(start + Duration::minutes(2) + Duration::seconds(30));
    assert_eq!(scheduler.drain().await.unwrap().claimed, 0, "backing off");
    w.at(start + Duration::minutes(6));
    assert_eq!(scheduler.drain().await.unwrap().sent, 3);
    assert_eq!(w.smtp.wait_for(3, StdDuration::from_secs(5)).await.len(), 3);
    assert_eq!(w.recorded().await, 3);
    assert_eq!(
        w.db.count("SELECT count(*) FROM timers WHERE kind = 'before_due'")
            .await,
        0
    );
}

#[tokio::test]
async fn three_workers_deliver_a_thousand_reminders_exactly_once() {
    let w = World::new("UTC").await;
    // 500 plans, two reminders each due on the day (three days before, and on the day).
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let handler = w.handler.clone();
            let (worker, liaison) = (w.worker, w.liaison);
            tokio::spawn(async move {
                for _ in 0..125 {
                    plan_with_passport(&handler, worker, liaison).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    w.at(passport_due() + Duration::seconds(30));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let s = w.scheduler();
            tokio::spawn(async move { s.drain().await.unwrap() })
        })
        .collect();
    let mut sent = 0;
    for t in workers {
        sent += t.await.unwrap().sent;
    }
    assert_eq!(sent, 1_000);
    let got = w.smtp.wait_for(1_000, StdDuration::from_secs(10)).await;
    assert_eq!(got.len(), 1_000);
    let ids: HashSet<_> = got
        .iter()
        .map(|m| m.header("Message-ID").unwrap())
        .collect();
    assert_eq!(ids.len(), 1_000, "no reminder delivered twice");
    assert_eq!(w.recorded().await, 1_000);
}

#[tokio::test]
async fn a_refused_reminder_is_recorded_as_failed_and_not_tried_again() {
    let w = World::new("UTC").await;
    let plan = w.plan_with_passport().await;
    w.smtp.refuse("luc@prefecture.example");
    let scheduler = w.scheduler();
    w.at(passport_due() - Duration::days(3) + Duration::seconds(30));
    let pass = scheduler.drain().await.unwrap();
    assert_eq!((pass.sent, pass.gave_up), (0, 1), "{pass:?}");
    assert!(w.smtp.messages().is_empty());
    assert_eq!(
        w.db.count("SELECT count(*) FROM events WHERE event_type = 'reminder_failed'")
            .await,
        1
    );
    let (stream, reason): (String, String) = sqlx::query_as(
        "SELECT stream_id, payload->>'reason' FROM events WHERE event_type = 'reminder_failed'",
    )
    .fetch_one(w.db.pool())
    .await
    .unwrap();
    let reason = w.db.opened(&reason, &stream, "reason").await;
    assert!(reason.contains("550"), "{reason}");
    // The timer is gone: later passes do not try it again.
    w.at(passport_due() - Duration::days(2));
    assert_eq!(scheduler.drain().await.unwrap().gave_up, 0);
    let loaded = w
        .handler
        .load::<Plan>(&plan.stream_id(), homeward_store::ReadUntil::End)
        .await
        .unwrap();
    let plan = loaded.state.unwrap();
    let passport = plan.step(&key("passport")).unwrap();
    assert_eq!(passport.reminders_sent.len(), 1);
    assert!(passport.reminders_sent[0].failed.is_some());
}

#[tokio::test]
async fn a_reminder_that_keeps_failing_is_given_up_after_the_last_attempt() {
    let w = World::new("UTC").await;
    w.plan_with_passport().await;
    w.smtp.set_down(true);
    // The liaison wants no quiet hours, so that every pass (seven hours apart) may send.
    w.handler
        .handle::<Party>(
            &w.liaison.stream_id(),
            &PartyCommand::SetReminderSettings(ReminderSettingsInput {
                language: "fr".into(),
                time_zone: "UTC".into(),
                digest_cron: None,
                quiet_hours: Some(("00:00".into(), "00:00".into())),
            }),
            CommandMeta::new(w.liaison),
        )
        .await
        .unwrap();
    let scheduler = w.scheduler();
    let mut now = passport_due() - Duration::days(3) + Duration::seconds(30);
    let mut failures = 0;
    for _ in 0..homeward_engine::scheduler::MAX_ATTEMPTS {
        w.at(now);
        let pass = scheduler.drain().await.unwrap();
        failures += pass.failed;
        if pass.gave_up == 1 {
            break;
        }
        now += Duration::hours(7); // past any backoff
    }
    assert_eq!(
        failures as i32,
        homeward_engine::scheduler::MAX_ATTEMPTS - 1
    );
    assert_eq!(
        w.db.count("SELECT count(*) FROM events WHERE event_type = 'reminder_failed'")
            .await,
        1
    );
    assert_eq!(
        w.db.count("SELECT count(*) FROM timers WHERE kind = 'before_due'")
            .await,
        0
    );
}

#[tokio::test]
async fn timers_held_by_a_worker_that_died_are_delivered_by_another_after_the_lease() {
    let w = World::new("UTC").await;
    for _ in 0..5 {
        w.plan_with_passport().await;
    }
    let now = passport_due() - Duration::days(3) + Duration::seconds(30);
    w.at(now);
    // A worker claims every due timer and dies before sending any.
    let dead = uuid::Uuid::new_v4();
    use homeward_store::timer_queue::TimerQueue;
    let held =
        w.db.store
            .claim_due(dead, now, now + Duration::minutes(5), 100)
            .await
            .unwrap();
    assert_eq!(held.len(), 5);
    // Another worker finds nothing while the lease holds ...
    let survivor = w.scheduler().with_lease(Duration::minutes(5));
    assert_eq!(survivor.drain().await.unwrap().claimed, 0);
    assert!(w.smtp.messages().is_empty());
    // ... and delivers them all, once, when it has ended.
    w.at(now + Duration::minutes(5) + Duration::seconds(1));
    assert_eq!(survivor.drain().await.unwrap().sent, 5);
    assert_eq!(w.smtp.wait_for(5, StdDuration::from_secs(5)).await.len(), 5);
    assert_eq!(w.recorded().await, 5);
    assert_eq!(survivor.drain().await.unwrap().claimed, 0);
}

#[tokio::test]
async fn a_partner_whose_data_sharing_consent_was_withdrawn_is_not_reminded() {
    let w = World::new("UTC").await;
    let partner = PartyId::new();
    let mut details = party_details(PartyRole::PartnerContact, "grace@hope-lagos.example");
    details.time_zone = "UTC".into();
    w.handler
        .handle::<Party>(
            &partner.stream_id(),
            &PartyCommand::Register {
                party_id: partner,
                details,
            },
            CommandMeta::new(partner),
        )
        .await
        .unwrap();
    let plan = w.plan_with_passport().await;
    let sharing = ConsentPurpose::DataSharing { partner };
    for command in [
        PlanCommand::RecordConsent { purpose: sharing },
        PlanCommand::AssignStep {
            step: key("origin_contact"),
            assignee: Some(partner),
            candidate_group: None,
        },
    ] {
        w.handler
            .handle::<Plan>(&plan.stream_id(), &command, CommandMeta::new(w.worker))
            .await
            .unwrap();
    }
    let partner_timers = || async {
        w.db.count(&format!(
            "SELECT count(*) FROM timers WHERE recipient_party = '{}'",
            partner.0
        ))
        .await
    };
    assert_eq!(partner_timers().await, 3, "before due, on due, overdue");
    // The partner's timers as a worker may hold them when consent is withdrawn.
    let due = start_time() + Duration::days(21) - Duration::days(3);
    let stale: Vec<(uuid::Uuid, String, DateTime<Utc>)> =
        sqlx::query_as("SELECT timer_id, kind, fire_at FROM timers WHERE recipient_party = $1")
            .bind(partner.0)
            .fetch_all(w.db.pool())
            .await
            .unwrap();
    w.handler
        .handle::<Plan>(
            &plan.stream_id(),
            &PlanCommand::WithdrawConsent { purpose: sharing },
            CommandMeta::new(w.worker),
        )
        .await
        .unwrap();
    // The withdrawal removed the partner's timers in its own transaction ...
    assert_eq!(partner_timers().await, 0);
    // ... and a timer row that outlived it (put back here, as a claim in flight would see it)
    // is checked against the plan at sending time and dropped.
    for (id, kind, fire_at) in &stale {
        sqlx::query(
            "INSERT INTO timers (timer_id, plan_id, step_key, kind, fire_at, recipient_party, recipient_role) \
             VALUES ($1, $2, 'origin_contact', $3, $4, $5, 'assignee')",
        )
        .bind(id)
        .bind(plan.0)
        .bind(kind)
        .bind(fire_at)
        .bind(partner.0)
        .execute(w.db.pool())
        .await
        .unwrap();
    }
    w.at(due + Duration::seconds(30));
    let pass = w.scheduler().drain().await.unwrap();
    assert_eq!((pass.sent, pass.dropped), (0, 1), "{pass:?}");
    assert!(w
        .smtp
        .messages()
        .iter()
        .all(|m| m.to != ["<grace@hope-lagos.example>"]));
    assert_eq!(w.recorded().await, 0);
}

#[tokio::test]
async fn an_escalation_without_a_supervisor_is_recorded_as_failed_with_why() {
    let w = World::new("UTC").await;
    // The case worker has no supervisor any more.
    w.handler
        .handle::<Party>(
            &w.worker.stream_id(),
            &PartyCommand::Update {
                details: party_details(PartyRole::SocialWorker, "amina@safe-passage.example"),
            },
            CommandMeta::new(w.worker),
        )
        .await
        .unwrap();
    let plan = w.plan_with_passport().await;
    let scheduler = w.scheduler();
    w.at(passport_due() + Duration::days(14) + Duration::seconds(30));
    let pass = scheduler.drain().await.unwrap();
    assert_eq!(pass.gave_up, 1, "{pass:?}");
    let reason: String = sqlx::query_scalar(
        "SELECT payload->>'reason' FROM events WHERE event_type = 'reminder_failed' AND stream_id = $1",
    )
    .bind(plan.stream_id())
    .fetch_one(w.db.pool())
    .await
    .unwrap();
    let reason = w.db.opened(&reason, &plan.stream_id(), "reason").await;
    assert!(
        reason.contains("the case worker has no supervisor"),
        "{reason}"
    );
    assert_eq!(
        w.db.count("SELECT count(*) FROM timers WHERE kind = 'escalation'")
            .await,
        0,
        "not tried again"
    );
}

#[tokio::test]
async fn a_mail_server_slower_than_the_lease_gets_each_reminder_once_from_three_workers() {
    let w = World::new("UTC").await;
    for _ in 0..60 {
        w.plan_with_passport().await;
    }
    // Each message is answered after a second: a batch of the old size (50) would take far
    // longer than the two-second lease, and a worker that did not renew it would see the rest
    // of its batch claimed and sent by another.
    w.smtp.set_delay(StdDuration::from_secs(1));
    let _time = w.follow_real_time(passport_due() - Duration::days(3) + Duration::seconds(1));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let worker = w
                .scheduler()
                .with_lease(Duration::seconds(2))
                .with_renewal(StdDuration::from_millis(300))
                .with_max_batch(50);
            let db = w.db.url.clone();
            tokio::spawn(async move {
                let mut total = homeward_engine::scheduler::Pass::default();
                let deadline = std::time::Instant::now() + StdDuration::from_secs(60);
                // Each worker keeps passing until every reminder is recorded.
                let pool = sqlx::PgPool::connect(&db).await.unwrap();
                loop {
                    let pass = worker.drain().await.unwrap();
                    total.sent += pass.sent;
                    total.lost += pass.lost;
                    let recorded: i64 = sqlx::query_scalar(
                        "SELECT count(*) FROM events WHERE event_type = 'reminder_sent'",
                    )
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                    if recorded >= 60 || std::time::Instant::now() > deadline {
                        return total;
                    }
                    tokio::time::sleep(StdDuration::from_millis(50)).await;
                }
            })
        })
        .collect();
    let mut sent = 0;
    let mut working = 0;
    for t in workers {
        let pass = t.await.unwrap();
        sent += pass.sent;
        working += usize::from(pass.sent > 0);
    }
    assert_eq!(sent, 60);
    assert_eq!(working, 3, "the three workers shared the reminders");
    assert_eq!(
        w.delivered(),
        (60, 60),
        "each reminder delivered exactly once"
    );
    assert_eq!(w.recorded().await, 60, "one ReminderSent per delivery");
}

#[tokio::test]
async fn a_mail_server_that_never_greets_holds_nothing_and_loses_nothing() {
    let w = World::new("UTC").await;
    for _ in 0..4 {
        w.plan_with_passport().await;
    }
    w.smtp.set_silent(true);
    let mailer = SmtpMailer::from_url(&w.smtp.url(), "Homeward <reminders@homeward.example>", 4)
        .unwrap()
        .with_timeout(StdDuration::from_millis(500));
    let scheduler = w.scheduler_with(mailer);
    let start = passport_due() - Duration::days(3) + Duration::seconds(30);
    w.at(start);
    let began = std::time::Instant::now();
    let pass = scheduler.drain().await.unwrap();
    assert_eq!((pass.sent, pass.failed), (0, 4), "{pass:?}");
    assert!(
        began.elapsed() < StdDuration::from_secs(5),
        "the timeout freed the worker: {:?}",
        began.elapsed()
    );
    assert_eq!(w.recorded().await, 0);
    assert_eq!(
        w.db.count("SELECT count(*) FROM timers WHERE claimed_by IS NOT NULL")
            .await,
        0,
        "the failed timers are not held by the worker while they wait for their retry"
    );
    // The server recovers; after the backoff every reminder goes out once.
    w.smtp.set_silent(false);
    w.at(start + Duration::minutes(2));
    let pass = scheduler.drain().await.unwrap();
    assert_eq!(pass.sent, 4, "{pass:?}");
    assert_eq!(w.delivered(), (4, 4));
    assert_eq!(w.recorded().await, 4);
}

#[tokio::test]
async fn a_graceful_shutdown_mid_batch_gives_back_unsent_claims_at_once_and_sends_nothing_twice() {
    use homeward::app::{Application, Settings};
    let w = World::new("UTC").await;
    for _ in 0..12 {
        w.plan_with_passport().await;
    }
    w.smtp.set_delay(StdDuration::from_millis(400));
    let settings = Settings {
        no_scheduler: false,
        smtp_url: Some(w.smtp.url().into()),
        smtp_connections: 2,
        // A long lease: claims that were not given back would wait for it.
        reminder_lease: StdDuration::from_secs(120).into(),
        reminder_renewal: StdDuration::from_secs(5).into(),
        scheduler_max_sleep: StdDuration::from_millis(100).into(),
        master_key: Some(homeward_tests::TEST_MASTER_KEY.into()),
        search_key: Some(homeward_tests::TEST_SEARCH_KEY.into()),
        ..Settings::new(w.db.url.clone(), "127.0.0.1:0".parse().unwrap())
    };
    let app = Application::build_with_clock(settings, w.clock.clone())
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    w.at(passport_due() - Duration::days(3) + Duration::seconds(30));
    // In the middle of the batch: some sent, the rest claimed.
    assert!(w.smtp.wait_for(2, StdDuration::from_secs(20)).await.len() >= 2);
    let claimed =
        w.db.count("SELECT count(*) FROM timers WHERE claimed_by IS NOT NULL")
            .await;
    assert!(claimed > 0, "the worker holds claims when it is stopped");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();

    assert_eq!(
        w.db.count("SELECT count(*) FROM timers WHERE claimed_by IS NOT NULL")
            .await,
        0,
        "every unsent claim is given back"
    );
    let (delivered, distinct) = w.delivered();
    assert_eq!(delivered, distinct);
    assert!(delivered < 12, "stopped before the end: {delivered}");
    assert_eq!(
        w.recorded().await,
        delivered as i64,
        "every delivery in flight at the stop was finished and recorded"
    );
    // Another worker takes the rest at once, with no lease to wait for.
    let pass = w.scheduler().drain().await.unwrap();
    assert_eq!(pass.sent, 12 - delivered, "{pass:?}");
    assert_eq!(w.delivered(), (12, 12));
    assert_eq!(w.recorded().await, 12);
}
