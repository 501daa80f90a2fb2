//! The timer queue: due timers are claimed earliest first, each by one worker at a time, held for
//! a lease (renewed only by its holder) and claimable again when the lease runs out; a postponed
//! timer is nobody's until its new time; a plan command keeps a claim on a timer it re-arms and
//! deletes the timers it cancels.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use homeward_engine::{CommandMeta, FixedClock};
use homeward_store::timer_queue::{ClaimKind, TimerQueue};
use homeward_tests::{key, open_standard_plan, register_party, start_time, TestDb};
use homeward_workflows::party::PartyRole;
use homeward_workflows::plan::{Plan, PlanCommand, Priority};
use homeward_workflows::PlanId;
use uuid::Uuid;

/// `due` timers firing a minute apart from `from`, and `future` ones a year later.
async fn insert_timers(db: &TestDb, from: DateTime<Utc>, due: i64, future: i64) {
    sqlx::query(
        "INSERT INTO timers (timer_id, plan_id, step_key, kind, fire_at, recipient_party, recipient_role) \
         SELECT gen_random_uuid(), gen_random_uuid(), 'passport', 'on_due', \
                $1 + i * interval '1 minute' + CASE WHEN i >= $2 THEN interval '365 days' ELSE interval '0' END, \
                gen_random_uuid(), 'assignee' \
         FROM generate_series(0::bigint, $2 + $3 - 1) AS i",
    )
    .bind(from)
    .bind(due)
    .bind(future)
    .execute(db.pool())
    .await
    .unwrap();
}

#[tokio::test]
async fn due_timers_are_claimed_earliest_first_and_only_once() {
    let db = TestDb::new().await;
    let t0 = start_time();
    insert_timers(&db, t0, 5, 5).await;
    let now = t0 + Duration::seconds(4 * 60 + 30); // timers 0..=4 are due
    let lease = now + Duration::minutes(5);
    let (w1, w2) = (Uuid::new_v4(), Uuid::new_v4());

    let first = db.store.claim_due(w1, now, lease, 3).await.unwrap();
    let fire: Vec<_> = first.iter().map(|t| t.fire_at).collect();
    assert_eq!(
        fire,
        [t0, t0 + Duration::minutes(1), t0 + Duration::minutes(2)]
    );
    let second = db.store.claim_due(w2, now, lease, 10).await.unwrap();
    assert_eq!(second.len(), 2, "only the two due timers left");
    assert!(db
        .store
        .claim_due(w2, now, lease, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        db.count("SELECT count(*) FROM timers WHERE claimed_by IS NULL")
            .await,
        5
    );
    // The next one due is a future timer, a year on.
    let next = db.store.next_due().await.unwrap().unwrap();
    assert!(
        next >= lease,
        "claimed timers count from their lease: {next}"
    );
}

#[tokio::test]
async fn three_concurrent_workers_never_share_a_timer() {
    let db = TestDb::new().await;
    let t0 = start_time();
    insert_timers(&db, t0, 1_000, 100).await;
    let now = t0 + Duration::days(1);
    let store = db.store.clone();
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let me = Uuid::new_v4();
                let mut mine = Vec::new();
                loop {
                    let batch = store
                        .claim_due(me, now, now + Duration::minutes(5), 25)
                        .await
                        .unwrap();
                    if batch.is_empty() {
                        break;
                    }
                    mine.extend(batch.into_iter().map(|t| t.timer_id));
                }
                mine
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 1_000, "every due timer claimed");
    assert_eq!(distinct.len(), 1_000, "no timer claimed twice");
}

#[tokio::test]
async fn a_lease_holds_until_it_ends_and_release_frees_at_once() {
    let db = TestDb::new().await;
    let t0 = start_time();
    insert_timers(&db, t0, 2, 0).await;
    let now = t0 + Duration::hours(1);
    let (dead, other) = (Uuid::new_v4(), Uuid::new_v4());
    let held = db
        .store
        .claim_due(dead, now, now + Duration::minutes(1), 1)
        .await
        .unwrap();
    assert_eq!(held.len(), 1);
    let id = held[0].timer_id;
    // Before the lease ends, the other worker only gets the other timer.
    let got = db
        .store
        .claim_due(other, now, now + Duration::minutes(1), 10)
        .await
        .unwrap();
    assert!(got.iter().all(|t| t.timer_id != id));
    assert!(!db
        .store
        .postpone(other, ClaimKind::Timer, id, now + Duration::hours(1), false)
        .await
        .unwrap());
    // The holder died: after its lease, the timer is due again for someone else.
    let later = now + Duration::minutes(2);
    let again = db
        .store
        .claim_due(other, later, later + Duration::minutes(1), 10)
        .await
        .unwrap();
    assert!(
        again.iter().any(|t| t.timer_id == id),
        "an expired lease is claimed again"
    );
    // A worker stopping gives its claims back at once.
    assert_eq!(db.store.release_claims(other).await.unwrap(), 2);
    let free = db
        .store
        .claim_due(dead, later, later + Duration::minutes(1), 10)
        .await
        .unwrap();
    assert_eq!(free.len(), 2);
}

#[tokio::test]
async fn only_the_holder_renews_a_claim_and_a_postponed_timer_is_due_again_for_anyone() {
    let db = TestDb::new().await;
    let t0 = start_time();
    insert_timers(&db, t0, 2, 0).await;
    let now = t0 + Duration::hours(1);
    let (slow, other) = (Uuid::new_v4(), Uuid::new_v4());
    let held: Vec<Uuid> = db
        .store
        .claim_due(slow, now, now + Duration::seconds(30), 10)
        .await
        .unwrap()
        .iter()
        .map(|t| t.timer_id)
        .collect();
    assert_eq!(held.len(), 2);
    // Renewed by its holder, the lease outlives its first term: nobody else can claim.
    let renewed = db
        .store
        .renew_claims(slow, ClaimKind::Timer, &held, now + Duration::seconds(50))
        .await
        .unwrap();
    assert_eq!(renewed.len(), 2);
    let at_40 = now + Duration::seconds(40);
    assert!(db
        .store
        .claim_due(other, at_40, at_40 + Duration::seconds(30), 10)
        .await
        .unwrap()
        .is_empty());
    // Nobody renews for longer than the lease: another worker takes both over, and from then on
    // the first worker's renewals and postponements are refused (the fence before a send).
    let at_60 = now + Duration::seconds(60);
    assert_eq!(
        db.store
            .claim_due(other, at_60, at_60 + Duration::seconds(30), 10)
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(db
        .store
        .renew_claims(slow, ClaimKind::Timer, &held, at_60 + Duration::seconds(30))
        .await
        .unwrap()
        .is_empty());
    assert!(!db
        .store
        .postpone(
            slow,
            ClaimKind::Timer,
            held[0],
            at_60 + Duration::hours(1),
            true
        )
        .await
        .unwrap());
    // The holder postpones one: it is nobody's claim, due again at its new time for anyone.
    assert!(db
        .store
        .postpone(
            other,
            ClaimKind::Timer,
            held[0],
            at_60 + Duration::minutes(5),
            true
        )
        .await
        .unwrap());
    assert_eq!(
        db.count("SELECT count(*) FROM timers WHERE claimed_by IS NOT NULL")
            .await,
        1
    );
    assert_eq!(db.store.release_claims(other).await.unwrap(), 1);
    let at_2m = at_60 + Duration::minutes(2);
    let early: Vec<Uuid> = db
        .store
        .claim_due(slow, at_2m, at_2m + Duration::hours(1), 10)
        .await
        .unwrap()
        .iter()
        .map(|t| t.timer_id)
        .collect();
    assert_eq!(early, [held[1]], "the postponed one waits for its time");
    let at_6m = at_60 + Duration::minutes(6);
    let later = db
        .store
        .claim_due(slow, at_6m, at_6m + Duration::seconds(30), 10)
        .await
        .unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].timer_id, held[0]);
    assert_eq!(later[0].attempts, 1, "the failed attempt is counted");
}

#[tokio::test]
async fn plan_commands_keep_claims_on_timers_they_keep_and_delete_those_they_cancel() {
    let db = TestDb::new().await;
    let clock = Arc::new(FixedClock::new(start_time()));
    let handler = db.handler(clock);
    let worker = register_party(&handler, PartyRole::SocialWorker, "amina@example.org").await;
    let liaison = register_party(&handler, PartyRole::GovernmentLiaison, "luc@example.org").await;
    let plan = PlanId::new();
    let stream = plan.stream_id();
    let run = |command: PlanCommand| {
        let handler = handler.clone();
        let stream = stream.clone();
        async move {
            handler
                .handle::<Plan>(&stream, &command, CommandMeta::new(worker))
                .await
                .unwrap();
        }
    };
    run(open_standard_plan(plan, worker)).await;
    run(PlanCommand::RecordConsent {
        purpose: homeward_workflows::plan::ConsentPurpose::Return,
    })
    .await;
    run(PlanCommand::AssignStep {
        step: key("passport"),
        assignee: Some(liaison),
        candidate_group: None,
    })
    .await;
    let passport_timers = "SELECT count(*) FROM timers WHERE step_key = 'passport'";
    assert!(
        db.count(passport_timers).await > 0,
        "assigning arms the passport's reminders"
    );

    // A worker claims everything (a year on, all are due).
    let now = start_time() + Duration::days(365);
    let me = Uuid::new_v4();
    let claimed = db
        .store
        .claim_due(me, now, now + Duration::minutes(5), 100)
        .await
        .unwrap();
    assert!(!claimed.is_empty());
    // Another command on the plan re-derives the timers: the passport's stay claimed.
    run(PlanCommand::PrioritiseStep {
        step: key("medical_check"),
        priority: Priority::Urgent,
    })
    .await;
    assert_eq!(
        db.count("SELECT count(*) FROM timers WHERE step_key = 'passport' AND claimed_by IS NULL")
            .await,
        0
    );
    // Completing the passport cancels its timers: they are gone, claims and all.
    run(PlanCommand::CompleteStep {
        step: key("passport"),
    })
    .await;
    assert_eq!(db.count(passport_timers).await, 0);
}
