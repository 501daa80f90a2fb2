//! Digests against a real SMTP server with an injected clock: a party's cron schedule fires in
//! the party's own time zone, lists their open and overdue tasks in their language, is recorded
//! on the party once, survives downtime (one digest for the missed occurrences) and an SMTP
//! outage (retried until it arrives).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, TimeZone, Utc};
use homeward_engine::mail::SmtpMailer;
use homeward_engine::scheduler::Worker;
use homeward_engine::{CommandHandler, CommandMeta, FixedClock};
use homeward_store::EventStore;
use homeward_tests::smtp::{Caught, SmtpCatcher};
use homeward_tests::{key, open_standard_plan, party_details, start_time, TestDb};
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

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

impl World {
    async fn new() -> Self {
        let db = TestDb::new().await;
        let clock = Arc::new(FixedClock::new(start_time()));
        let store: Arc<dyn EventStore> = db.store.clone();
        let handler = CommandHandler::new(store, clock.clone()).with_vault(db.vault());
        let mut ids = Vec::new();
        for (role, email, zone) in [
            (PartyRole::SocialWorker, "amina@safe-passage.example", "UTC"),
            (
                PartyRole::GovernmentLiaison,
                "luc@prefecture.example",
                "Europe/Paris",
            ),
        ] {
            let id = PartyId::new();
            let mut details = party_details(role, email);
            details.time_zone = zone.into();
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
            ids.push(id);
        }
        Self {
            db,
            clock,
            handler,
            smtp: SmtpCatcher::start().await,
            worker: ids[0],
            liaison: ids[1],
        }
    }

    fn scheduler(&self) -> Worker {
        let mailer =
            SmtpMailer::from_url(&self.smtp.url(), "Homeward <reminders@homeward.example>", 2)
                .unwrap();
        Worker::new(
            self.db.store.clone(),
            self.handler.clone(),
            self.db.store.clone(),
            Arc::new(mailer),
            self.clock.clone(),
        )
    }

    async fn settings(&self, digest: Option<&str>) {
        self.handler
            .handle::<Party>(
                &self.liaison.stream_id(),
                &PartyCommand::SetReminderSettings(ReminderSettingsInput {
                    language: "fr".into(),
                    time_zone: "Europe/Paris".into(),
                    digest_cron: digest.map(str::to_owned),
                    quiet_hours: None,
                }),
                CommandMeta::new(self.liaison),
            )
            .await
            .unwrap();
    }

    /// A plan opened now whose passport (due 45 days later) is the liaison's.
    async fn plan_with_passport(&self) -> PlanId {
        let id = PlanId::new();
        for command in [
            open_standard_plan(id, self.worker),
            PlanCommand::RecordConsent {
                purpose: ConsentPurpose::Return,
            },
            PlanCommand::AssignStep {
                step: key("passport"),
                assignee: Some(self.liaison),
                candidate_group: None,
            },
        ] {
            self.handler
                .handle::<Plan>(&id.stream_id(), &command, CommandMeta::new(self.worker))
                .await
                .unwrap();
        }
        id
    }

    fn digests(&self) -> Vec<Caught> {
        self.smtp
            .messages()
            .into_iter()
            .filter(|m| m.header("Message-ID").unwrap().starts_with("<digest-"))
            .collect()
    }

    async fn due_at(&self) -> Option<DateTime<Utc>> {
        sqlx::query_scalar("SELECT due_at FROM digests WHERE party_id = $1")
            .bind(self.liaison.0)
            .fetch_optional(self.db.pool())
            .await
            .unwrap()
    }

    async fn recorded(&self, event_type: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events WHERE stream_id = $1 AND event_type = $2")
            .bind(self.liaison.stream_id())
            .bind(event_type)
            .fetch_one(self.db.pool())
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_weekly_digest_lists_open_and_overdue_tasks_in_the_partys_language_and_zone() {
    let w = World::new().await;
    // Passports due 15 April (plan A) and 15 May (plan B), 09:00 UTC.
    let a = w.plan_with_passport().await;
    w.clock.set(start_time() + Duration::days(30));
    w.plan_with_passport().await;
    // Mondays at 08:00 in Paris, set on 31 March.
    w.settings(Some("0 8 * * Mon")).await;
    assert_eq!(w.due_at().await, Some(utc(2026, 4, 6, 6, 0)));

    // Monday 20 April, 08:00 in Paris (06:00 UTC, summer time): plan A's passport is overdue.
    // Before it, the digest of 6 and 13 April; skip them by starting late (one digest).
    w.clock.set(utc(2026, 4, 20, 6, 0) + Duration::seconds(20));
    let scheduler = w.scheduler();
    let pass = scheduler.drain().await.unwrap();
    assert_eq!(pass.digests, 1, "{pass:?}");
    w.smtp.wait_for(1, StdDuration::from_secs(5)).await;
    let digests = w.digests();
    assert_eq!(digests.len(), 1, "one digest for the missed occurrences");
    let digest = &digests[0];
    assert_eq!(digest.to, ["<luc@prefecture.example>"]);
    assert_eq!(
        digest.header("Subject").unwrap(),
        "Vos tâches Homeward : 2 ouvertes, 1 en retard"
    );
    let text = digest.part("text/plain").unwrap();
    let reference = |plan: PlanId| plan.0.simple().to_string()[..8].to_owned();
    assert!(
        text.contains(&format!(
            "- [EN RETARD] Obtenir un passeport ou un laissez-passer (plan {}), échéance 2026-04-15 11:00 CEST\n",
            reference(a)
        )),
        "{text}"
    );
    assert!(text.contains("échéance 2026-05-15 11:00 CEST\n"), "{text}");
    // Recorded once on the party; the next one is next Monday.
    assert_eq!(w.recorded("digest_sent").await, 1);
    assert_eq!(w.due_at().await, Some(utc(2026, 4, 27, 6, 0)));
    assert_eq!(scheduler.drain().await.unwrap().claimed, 0);

    // The SMTP server is down at the next occurrence: retried, and it arrives once it is back.
    w.smtp.set_down(true);
    w.clock.set(utc(2026, 4, 27, 6, 0) + Duration::seconds(20));
    let pass = scheduler.drain().await.unwrap();
    // (Plan A's overdue reminder fails alongside it.)
    assert!(pass.failed >= 1 && pass.digests == 0, "{pass:?}");
    assert_eq!(w.recorded("digest_sent").await, 1);
    w.smtp.set_down(false);
    w.clock.advance(Duration::minutes(2));
    assert_eq!(scheduler.drain().await.unwrap().digests, 1);
    w.smtp.wait_for(2, StdDuration::from_secs(5)).await;
    assert_eq!(w.digests().len(), 2);
    assert_eq!(w.recorded("digest_sent").await, 2);
    assert_eq!(w.due_at().await, Some(utc(2026, 5, 4, 6, 0)));

    // No schedule, no digest.
    w.settings(None).await;
    assert_eq!(w.due_at().await, None);
    w.clock.set(utc(2026, 5, 4, 6, 0) + Duration::seconds(20));
    assert_eq!(scheduler.drain().await.unwrap().digests, 0);
    assert_eq!(w.digests().len(), 2);
}

#[tokio::test]
async fn three_workers_send_each_digest_once() {
    let w = World::new().await;
    w.plan_with_passport().await;
    w.settings(Some("30 9 * * *")).await;
    // 09:30 in Paris on 2 March is 08:30 UTC.
    assert_eq!(w.due_at().await, Some(utc(2026, 3, 2, 8, 30)));
    w.clock.set(utc(2026, 3, 2, 8, 30));
    let workers = [w.scheduler(), w.scheduler(), w.scheduler()];
    let passes = futures::future::join_all(workers.iter().map(|worker| worker.drain())).await;
    let sent: usize = passes.into_iter().map(|p| p.unwrap().digests).sum();
    assert_eq!(sent, 1);
    w.smtp.wait_for(1, StdDuration::from_secs(5)).await;
    tokio::time::sleep(StdDuration::from_millis(200)).await;
    assert_eq!(w.digests().len(), 1);
    assert_eq!(w.recorded("digest_sent").await, 1);
    assert!(w.digests()[0]
        .header("Subject")
        .unwrap()
        .starts_with("Vos tâches Homeward : 1 ouvertes, 0 en retard"));
}

#[tokio::test]
async fn a_suspended_plan_is_left_out_of_the_digest() {
    let w = World::new().await;
    w.plan_with_passport().await;
    let suspended = w.plan_with_passport().await;
    w.handler
        .handle::<Plan>(
            &suspended.stream_id(),
            &PlanCommand::WithdrawConsent {
                purpose: ConsentPurpose::Return,
            },
            CommandMeta::new(w.worker),
        )
        .await
        .unwrap();
    w.settings(Some("0 9 * * *")).await;
    w.clock.set(utc(2026, 3, 2, 8, 0));
    assert_eq!(w.scheduler().drain().await.unwrap().digests, 1);
    w.smtp.wait_for(1, StdDuration::from_secs(5)).await;
    let digest = &w.digests()[0];
    assert!(digest
        .header("Subject")
        .unwrap()
        .starts_with("Vos tâches Homeward : 1 ouvertes"));
    let text = digest.part("text/plain").unwrap();
    assert!(
        !text.contains(&suspended.0.simple().to_string()[..8]),
        "{text}"
    );
}
