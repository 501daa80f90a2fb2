//! The event log against a real PostgreSQL: appends, versions, idempotency, reads, time travel,
//! upcasting on read, and read models that equal a rebuild.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::sync::Arc;

use chrono::Duration;
use homeward_engine::{CommandError, CommandHandler, CommandMeta, FixedClock};
use homeward_store::projection::{PartyRow, StepRow};
use homeward_store::{
    Append, Cursor, EventStore, ExpectedVersion, Metadata, NewEvent, ProjectionChange, ReadUntil,
    StoreError,
};
use homeward_store_postgres::{rebuild, PgStore};
use homeward_tests::{key, open_standard_plan, register_party, start_time, TestDb};
use homeward_workflows::party::{Party, PartyCommand, PartyRole, ReminderSettingsInput};
use homeward_workflows::plan::{ConsentPurpose, DocumentStatus, Plan, PlanCommand, PlanEvent};
use homeward_workflows::{PartyId, PlanId};
use serde_json::json;
use uuid::Uuid;

/// Opens a plan from the standard template with `worker` as its case worker; its stream id.
async fn open_plan(handler: &CommandHandler<PgStore>, worker: PartyId) -> String {
    let plan_id = PlanId::new();
    let stream = plan_id.stream_id();
    handler
        .handle::<Plan>(
            &stream,
            &open_standard_plan(plan_id, worker),
            CommandMeta::new(worker),
        )
        .await
        .unwrap();
    stream
}

fn raw_append(stream: &str, expected: ExpectedVersion, n: usize) -> Append {
    Append {
        stream_id: stream.to_owned(),
        stream_type: "test",
        expected_version: expected,
        command_id: Uuid::new_v4(),
        metadata: Metadata {
            actor: PartyId::new(),
            correlation_id: Uuid::new_v4(),
            partner_link: None,
        },
        occurred_at: start_time(),
        events: (0..n)
            .map(|i| NewEvent {
                event_type: "something_happened".into(),
                schema_version: 1,
                payload: json!({ "n": i }),
            })
            .collect(),
        projection: ProjectionChange::default(),
        idempotency_key: None,
        new_person_key: None,
        search_terms: None,
    }
}

#[tokio::test]
async fn appends_check_the_expected_version_and_report_conflicts() {
    let db = TestDb::new().await;
    let store = &db.store;
    let first = store
        .append(raw_append("test-1", ExpectedVersion::NoStream, 3))
        .await
        .unwrap();
    assert_eq!((first.first_version, first.last_version), (1, 3));

    // A second "new stream" append and a stale exact version are both conflicts.
    let again = store
        .append(raw_append("test-1", ExpectedVersion::NoStream, 1))
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict { actual: 3, .. })),
        "{again:?}"
    );
    let stale = store
        .append(raw_append("test-1", ExpectedVersion::Exact(2), 1))
        .await;
    assert!(matches!(
        stale,
        Err(StoreError::Conflict {
            expected: 2,
            actual: 3,
            ..
        })
    ));

    let next = store
        .append(raw_append("test-1", ExpectedVersion::Exact(3), 2))
        .await
        .unwrap();
    assert_eq!((next.first_version, next.last_version), (4, 5));
    let events = store.read_stream("test-1", ReadUntil::End).await.unwrap();
    let versions: Vec<u64> = events.iter().map(|e| e.stream_version).collect();
    assert_eq!(versions, vec![1, 2, 3, 4, 5]);
    assert_eq!(
        db.count("SELECT count(*) FROM streams WHERE stream_id = 'test-1'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_retried_command_appends_nothing_and_returns_the_first_result() {
    let db = TestDb::new().await;
    let append = raw_append("test-2", ExpectedVersion::NoStream, 2);
    let first = db.store.append(append.clone()).await.unwrap();
    assert!(!first.duplicate);
    // Same command id again, even with a different expectation: the first result, nothing new.
    let mut retry = append.clone();
    retry.expected_version = ExpectedVersion::Any;
    let second = db.store.append(retry).await.unwrap();
    assert!(second.duplicate);
    assert_eq!((second.first_version, second.last_version), (1, 2));
    assert_eq!(db.count("SELECT count(*) FROM events").await, 2);
    let ids: Vec<Uuid> = db
        .store
        .read_stream("test-2", ReadUntil::End)
        .await
        .unwrap()
        .iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(
        ids,
        vec![
            Append::event_id(append.command_id, 0),
            Append::event_id(append.command_id, 1)
        ]
    );
}

#[tokio::test]
async fn a_stream_can_be_read_as_it_stood_at_a_version_or_a_time() {
    let db = TestDb::new().await;
    db.store
        .append(raw_append("test-3", ExpectedVersion::NoStream, 2))
        .await
        .unwrap();
    // Two more events a day later (the time their command was decided).
    let mut later = raw_append("test-3", ExpectedVersion::Exact(2), 2);
    later.occurred_at = start_time() + chrono::Duration::days(1);
    db.store.append(later).await.unwrap();
    let upto = db
        .store
        .read_stream("test-3", ReadUntil::Version(3))
        .await
        .unwrap();
    assert_eq!(upto.len(), 3);
    let between = start_time() + chrono::Duration::hours(12);
    let then = db
        .store
        .read_stream("test-3", ReadUntil::Time(between))
        .await
        .unwrap();
    assert_eq!(then.len(), 2);
    assert!(then.iter().all(|e| e.occurred_at <= between));
    // Before the first event: nothing; after the last: everything.
    let before = db
        .store
        .read_stream(
            "test-3",
            ReadUntil::Time(start_time() - chrono::Duration::seconds(1)),
        )
        .await
        .unwrap();
    assert!(before.is_empty());
    let all = db
        .store
        .read_stream(
            "test-3",
            ReadUntil::Time(start_time() + chrono::Duration::days(2)),
        )
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
}

#[tokio::test]
async fn the_global_stream_is_read_in_commit_order_from_a_checkpoint() {
    let db = TestDb::new().await;
    for i in 0..5 {
        db.store
            .append(raw_append(
                &format!("test-g{i}"),
                ExpectedVersion::NoStream,
                2,
            ))
            .await
            .unwrap();
    }
    // The horizon is cluster-wide: other tests' transactions in flight can hold it back for a
    // moment, never past what has committed. Wait until it has passed our ten events.
    let mut all = Vec::new();
    for _ in 0..200 {
        all = db.store.read_all(Cursor::START, 100).await.unwrap();
        if all.len() == 10 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(all.len(), 10);
    let first_page = db.store.read_all(Cursor::START, 4).await.unwrap();
    let rest = db
        .store
        .read_all(first_page[3].cursor(), 100)
        .await
        .unwrap();
    let joined: Vec<i64> = first_page
        .iter()
        .chain(rest.iter())
        .map(|e| e.global_position)
        .collect();
    let expected: Vec<i64> = all.iter().map(|e| e.global_position).collect();
    assert_eq!(joined, expected);
    assert!(all.windows(2).all(|w| w[0].cursor() < w[1].cursor()));
}

#[tokio::test]
async fn an_old_payload_version_is_upcast_when_the_plan_is_loaded() {
    let db = TestDb::new().await;
    let plan_id = PlanId::new();
    let stream = plan_id.stream_id();
    // A plan_opened event stored at schema version 1 (`country`, no `organisation`).
    let v1 = json!({
        "plan_id": plan_id, "person": Uuid::new_v4(),
        "template": {"name": "standard-avr", "version": 1},
        "case_worker": Uuid::new_v4(), "country": "SN",
        "opened_at": "2025-01-01T10:00:00Z"
    });
    let mut append = raw_append(&stream, ExpectedVersion::NoStream, 0);
    append.events = vec![NewEvent {
        event_type: "plan_opened".into(),
        schema_version: 1,
        payload: v1,
    }];
    db.store.append(append).await.unwrap();
    let handler = db.handler(Arc::new(FixedClock::new(start_time())));
    let loaded = handler.load::<Plan>(&stream, ReadUntil::End).await.unwrap();
    let plan = loaded.state.expect("the plan folds");
    assert_eq!(plan.origin_country.as_str(), "SN");
    assert_eq!(
        plan.organisation,
        homeward_workflows::upcast::legacy_organisation("unknown")
    );
    // The stored row was not rewritten.
    assert_eq!(
        db.count("SELECT schema_version::bigint FROM events").await,
        1
    );
}

#[tokio::test]
async fn commands_update_the_read_models_in_the_same_transaction_and_a_rebuild_reproduces_them() {
    let db = TestDb::new().await;
    let clock = Arc::new(FixedClock::new(start_time()));
    let handler = db.handler(clock.clone());
    let worker = register_party(&handler, PartyRole::SocialWorker, "worker@example.org").await;
    let liaison = register_party(
        &handler,
        PartyRole::GovernmentLiaison,
        "liaison@example.org",
    )
    .await;
    let plan_id = PlanId::new();
    let stream = plan_id.stream_id();
    let meta = || CommandMeta::new(worker);
    handler
        .handle::<Plan>(&stream, &open_standard_plan(plan_id, worker), meta())
        .await
        .unwrap();
    for command in [
        PlanCommand::RecordConsent {
            purpose: ConsentPurpose::Return,
        },
        PlanCommand::AssignStep {
            step: key("passport"),
            assignee: Some(liaison),
            candidate_group: None,
        },
        PlanCommand::StartStep {
            step: key("passport"),
            override_reason: None,
        },
        PlanCommand::UpdateDocumentStatus {
            step: key("passport"),
            status: DocumentStatus::SubmittedToAuthority,
        },
    ] {
        clock.advance(Duration::hours(3));
        handler
            .handle::<Plan>(&stream, &command, meta())
            .await
            .unwrap();
    }

    let status: String = sqlx::query_scalar("SELECT status FROM plan_view WHERE plan_id = $1")
        .bind(plan_id.0)
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(status, "active");
    let (step_status, assignee, doc): (String, Option<Uuid>, Option<String>) = sqlx::query_as(
        "SELECT status, assignee, document_status FROM step_view \
         WHERE plan_id = $1 AND step_key = 'passport'",
    )
    .bind(plan_id.0)
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(step_status, "in_progress");
    assert_eq!(assignee, Some(liaison.0));
    assert_eq!(doc.as_deref(), Some("submitted_to_authority"));
    // The assigned passport step has its reminders armed: before due, on due, overdue, escalation.
    assert_eq!(
        db.count("SELECT count(*) FROM timers WHERE step_key = 'passport'")
            .await,
        4
    );
    assert_eq!(db.count("SELECT count(*) FROM party_view").await, 2);
    // A digest schedule puts the liaison's next digest in the digest table.
    handler
        .handle::<Party>(
            &liaison.stream_id(),
            &PartyCommand::SetReminderSettings(ReminderSettingsInput {
                language: "fr".to_owned(),
                time_zone: "Europe/Paris".to_owned(),
                digest_cron: Some("0 8 * * Mon".to_owned()),
                quiet_hours: None,
            }),
            meta(),
        )
        .await
        .unwrap();
    let due: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT due_at FROM digests WHERE party_id = $1")
            .bind(liaison.0)
            .fetch_one(db.pool())
            .await
            .unwrap();
    // The clock is Sunday 1 March 2026, 21:00 UTC: Monday 08:00 in Paris is 07:00 UTC.
    assert_eq!(due.to_rfc3339(), "2026-03-02T07:00:00+00:00");

    let before = db.projection_snapshot().await;
    let report = rebuild(db.pool()).await.unwrap();
    assert_eq!(report.streams, 3);
    assert_eq!(db.projection_snapshot().await, before);

    // Completing the step cancels its timers in the same transaction.
    handler
        .handle::<Plan>(
            &stream,
            &PlanCommand::CompleteStep {
                step: key("passport"),
            },
            meta(),
        )
        .await
        .unwrap();
    assert_eq!(
        db.count("SELECT count(*) FROM timers WHERE step_key = 'passport'")
            .await,
        0
    );
}

#[tokio::test]
async fn a_stale_expected_version_is_a_conflict_and_writes_nothing() {
    let db = TestDb::new().await;
    let handler = db.handler(Arc::new(FixedClock::new(start_time())));
    let worker = PartyId::new();
    let plan_id = PlanId::new();
    let stream = plan_id.stream_id();
    let opened = handler
        .handle::<Plan>(
            &stream,
            &open_standard_plan(plan_id, worker),
            CommandMeta::new(worker),
        )
        .await
        .unwrap();
    let consent = PlanCommand::RecordConsent {
        purpose: ConsentPurpose::Return,
    };
    handler
        .handle::<Plan>(
            &stream,
            &consent,
            CommandMeta::new(worker).expecting(opened.version),
        )
        .await
        .unwrap();
    let events_before = db.count("SELECT count(*) FROM events").await;
    let stale = handler
        .handle::<Plan>(
            &stream,
            &PlanCommand::SetGoals { goals: vec![] },
            CommandMeta::new(worker).expecting(opened.version),
        )
        .await;
    assert!(
        matches!(stale, Err(CommandError::Conflict { .. })),
        "{stale:?}"
    );
    assert_eq!(db.count("SELECT count(*) FROM events").await, events_before);
}

#[tokio::test]
async fn the_same_command_id_sent_twice_is_handled_once() {
    let db = TestDb::new().await;
    let handler = db.handler(Arc::new(FixedClock::new(start_time())));
    let worker = PartyId::new();
    let stream = open_plan(&handler, worker).await;
    let meta = CommandMeta::new(worker);
    let consent = PlanCommand::RecordConsent {
        purpose: ConsentPurpose::Return,
    };
    let first = handler
        .handle::<Plan>(&stream, &consent, meta.clone())
        .await
        .unwrap();
    // Deciding again would now be refused (consent already given): the retry must instead
    // return the first result.
    let retry = handler
        .handle::<Plan>(&stream, &consent, meta)
        .await
        .unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.version, first.version);
    assert_eq!(retry.state, first.state);
    let consents = db
        .count("SELECT count(*) FROM events WHERE event_type = 'consent_recorded'")
        .await;
    assert_eq!(consents, 1);
    let history = db.store.read_stream(&stream, ReadUntil::End).await.unwrap();
    let last: PlanEvent = history.last().unwrap().decode().unwrap();
    assert_eq!(last, PlanEvent::PlanActivated);
}

#[tokio::test]
async fn a_replica_with_an_older_cached_state_decides_on_the_current_one() {
    let db = TestDb::new().await;
    let clock = Arc::new(FixedClock::new(start_time()));
    // Two handlers with their own caches: two replicas of the API.
    let replica_a = db.handler(clock.clone());
    let replica_b = db.handler(clock.clone());
    let worker = PartyId::new();
    let stream = open_plan(&replica_a, worker).await;
    // Replica B records consent; replica A still caches the draft plan.
    replica_b
        .handle::<Plan>(
            &stream,
            &PlanCommand::RecordConsent {
                purpose: ConsentPurpose::Return,
            },
            CommandMeta::new(worker),
        )
        .await
        .unwrap();
    // On the cached draft, starting a step would be refused (consent required); on the current
    // plan it is accepted.
    let started = replica_a
        .handle::<Plan>(
            &stream,
            &PlanCommand::StartStep {
                step: key("passport"),
                override_reason: None,
            },
            CommandMeta::new(worker),
        )
        .await
        .unwrap();
    assert_eq!(started.version, 15);
    // And an edit decided on the stale cache is re-decided, not lost or written twice.
    replica_b
        .handle::<Plan>(
            &stream,
            &PlanCommand::SetGoals { goals: vec![] },
            CommandMeta::new(worker),
        )
        .await
        .unwrap();
    let edited = replica_a
        .handle::<Plan>(
            &stream,
            &PlanCommand::SetGoals { goals: vec![] },
            CommandMeta::new(worker),
        )
        .await
        .unwrap();
    assert_eq!(edited.version, 17);
    let versions: Vec<u64> = db
        .store
        .read_stream(&stream, ReadUntil::End)
        .await
        .unwrap()
        .iter()
        .map(|e| e.stream_version)
        .collect();
    assert_eq!(versions, (1..=17).collect::<Vec<u64>>());
    // With an expected version the caller saw (15) but the stream at 17: a conflict.
    let stale = replica_a
        .handle::<Plan>(
            &stream,
            &PlanCommand::SetGoals { goals: vec![] },
            CommandMeta::new(worker).expecting(15),
        )
        .await;
    assert!(
        matches!(
            stale,
            Err(CommandError::Conflict {
                expected: 15,
                actual: 17
            })
        ),
        "{stale:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_sent_together_succeed_or_fail_each_on_their_own() {
    let db = TestDb::new().await;
    let store = db.store.clone();
    let existing = raw_append("test-b0", ExpectedVersion::NoStream, 2);
    store.append(existing.clone()).await.unwrap();

    // Sent at once, these share transactions (group commit): fresh streams, a conflict, a
    // repeated command and one more event for the existing stream.
    let mut burst = Vec::new();
    for i in 0..12 {
        burst.push(raw_append(
            &format!("test-b{}", i + 1),
            ExpectedVersion::NoStream,
            2,
        ));
    }
    let conflicting = raw_append("test-b0", ExpectedVersion::Exact(1), 1);
    let mut repeated = existing.clone();
    repeated.expected_version = ExpectedVersion::Any;
    let follow_on = raw_append("test-b0", ExpectedVersion::Any, 1);
    let results = futures::future::join_all(
        burst
            .iter()
            .cloned()
            .chain([conflicting, repeated, follow_on])
            .map(|a| {
                let store = store.clone();
                async move { store.append(a).await }
            }),
    )
    .await;

    for r in &results[..12] {
        let done = r.as_ref().unwrap();
        assert_eq!(
            (done.first_version, done.last_version, done.duplicate),
            (1, 2, false)
        );
    }
    // At 2, or 3 if the follow-on went first: either way not the expected 1.
    assert!(
        matches!(
            results[12],
            Err(StoreError::Conflict {
                expected: 1,
                actual: 2 | 3,
                ..
            })
        ),
        "{:?}",
        results[12]
    );
    let again = results[13].as_ref().unwrap();
    assert!(again.duplicate);
    assert_eq!((again.first_version, again.last_version), (1, 2));
    let follow = results[14].as_ref().unwrap();
    assert!(!follow.duplicate);
    assert_eq!((follow.first_version, follow.last_version), (3, 3));
    let b0: Vec<u64> = store
        .read_stream("test-b0", ReadUntil::End)
        .await
        .unwrap()
        .iter()
        .map(|e| e.stream_version)
        .collect();
    assert_eq!(b0, vec![1, 2, 3]);
    // 2 + 12 × 2 + 1 events, nothing from the conflict or the repeat.
    assert_eq!(db.count("SELECT count(*) FROM events").await, 27);
    assert_eq!(db.count("SELECT count(*) FROM streams").await, 13);
    // They were in fact written together: streams share a transaction.
    let streams_per_tx = db
        .count("SELECT max(n) FROM (SELECT count(DISTINCT stream_id) AS n FROM events GROUP BY tx_id) t")
        .await;
    assert!(streams_per_tx > 1, "no two appends shared a transaction");
}

#[tokio::test]
async fn a_rebuild_reproduces_text_with_tabs_newlines_and_backslashes() {
    use homeward_workflows::plan::{NewStep, Priority, StepKind};
    let db = TestDb::new().await;
    let handler = db.handler(Arc::new(FixedClock::new(start_time())));
    let worker = PartyId::new();
    let stream = open_plan(&handler, worker).await;
    // A title is one line; a reason may hold several, with tabs.
    let title = "Certificat de naissance \\ acte n° 12 à demander";
    let reason = "Attente\tdu tribunal \\ greffe\nn° 12\r\nà relancer";
    handler
        .handle::<Plan>(
            &stream,
            &PlanCommand::AddStep(Box::new(NewStep {
                key: key("birth_certificate"),
                kind: StepKind::Custom,
                title: title.to_owned(),
                assignee: Some(worker),
                candidate_group: Some("liaison\\desk".to_owned()),
                priority: Priority::High,
                due: None,
                follow_up_on: None,
                depends_on: vec![],
                reminder_policy: None,
            })),
            CommandMeta::new(worker),
        )
        .await
        .unwrap();
    handler
        .handle::<Plan>(
            &stream,
            &PlanCommand::BlockStep {
                step: key("birth_certificate"),
                reason: reason.to_owned(),
            },
            CommandMeta::new(worker),
        )
        .await
        .unwrap();
    let before = db.projection_snapshot().await;
    rebuild(db.pool()).await.unwrap();
    assert_eq!(db.projection_snapshot().await, before);
    let (title_stored, reason_stored): (String, String) = sqlx::query_as(
        "SELECT title, status_reason FROM step_view WHERE step_key = 'birth_certificate'",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(
        (
            db.opened(&title_stored, &stream, "step.title").await,
            db.opened(&reason_stored, &stream, "reason").await
        ),
        (title.to_owned(), reason.replace("\r\n", "\n"))
    );
}

#[tokio::test]
async fn a_rebuild_reproduces_times_that_fall_between_microseconds() {
    // PostgreSQL keeps microseconds. A command's rows and a rebuild's must agree on the
    // nanoseconds below them (the binary format truncates, a text format would round): at 999 ns
    // past a microsecond the two would differ unless the rows carry whole microseconds.
    let db = TestDb::new().await;
    let now = start_time() + Duration::nanoseconds(999_999);
    let handler = db.handler(Arc::new(FixedClock::new(now)));
    let worker = PartyId::new();
    let stream = open_plan(&handler, worker).await;
    // Assigned, the passport step arms its reminders (timers at times after `now`).
    handler
        .handle::<Plan>(
            &stream,
            &PlanCommand::AssignStep {
                step: key("passport"),
                assignee: Some(worker),
                candidate_group: None,
            },
            CommandMeta::new(worker),
        )
        .await
        .unwrap();
    assert!(db.count("SELECT count(*) FROM timers").await > 0);
    let opened: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT opened_at FROM plan_view")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(opened, start_time() + Duration::microseconds(999));

    let before = db.projection_snapshot().await;
    rebuild(db.pool()).await.unwrap();
    assert_eq!(db.projection_snapshot().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_in_a_batch_leaves_the_others_and_their_read_models_written() {
    let db = TestDb::new().await;
    let store = db.store.clone();
    // Distinct streams, each with a read-model row; the third expects a version its (new)
    // stream does not have. Sent at once, so group commit batches them.
    let appends: Vec<Append> = (0..6)
        .map(|i| {
            let expected = if i == 2 {
                ExpectedVersion::Exact(5)
            } else {
                ExpectedVersion::NoStream
            };
            with_party_row(
                raw_append(&format!("test-c{i}"), expected, 1),
                &format!("Party {i}"),
            )
        })
        .collect();
    let results = futures::future::join_all(appends.into_iter().map(|a| {
        let store = store.clone();
        async move { store.append(a).await }
    }))
    .await;
    for (i, r) in results.iter().enumerate() {
        if i == 2 {
            assert!(
                matches!(
                    r,
                    Err(StoreError::Conflict {
                        expected: 5,
                        actual: 0,
                        ..
                    })
                ),
                "{r:?}"
            );
        } else {
            assert_eq!(r.as_ref().unwrap().last_version, 1);
        }
    }
    assert_eq!(db.count("SELECT count(*) FROM events").await, 5);
    assert_eq!(
        party_names(&db).await,
        ["Party 0", "Party 1", "Party 3", "Party 4", "Party 5"]
    );
}

/// Creates a stream of `events` events.
async fn new_stream(store: &homeward_store_postgres::PgStore, stream: &str, events: usize) {
    store
        .append(raw_append(stream, ExpectedVersion::NoStream, events))
        .await
        .unwrap();
}

/// A party read-model row (any read model will do: these tests look at which rows a batch
/// writes).
fn with_party_row(mut append: Append, name: &str) -> Append {
    append.projection = ProjectionChange {
        parties: vec![PartyRow {
            party_id: Uuid::new_v4(),
            version: 1,
            display_name: name.to_owned(),
            email: "party@example.org".into(),
            role: "social_worker".into(),
            organisation: homeward_tests::SAFE_PASSAGE.0,
            country: "FR".into(),
            language: "fr".into(),
            time_zone: "Europe/Paris".into(),
            supervisor: None,
            active: true,
        }],
        ..ProjectionChange::default()
    };
    append
}

async fn party_names(db: &TestDb) -> Vec<String> {
    sqlx::query_scalar("SELECT display_name FROM party_view ORDER BY display_name")
        .fetch_all(db.pool())
        .await
        .unwrap()
}

/// (first, last) version of each result, or the error's text.
fn versions(results: &[Result<homeward_store::Appended, StoreError>]) -> Vec<String> {
    results
        .iter()
        .map(|r| match r {
            Ok(a) if a.duplicate => format!("{}..{} again", a.first_version, a.last_version),
            Ok(a) => format!("{}..{}", a.first_version, a.last_version),
            Err(StoreError::Conflict {
                expected, actual, ..
            }) => format!("conflict: expected {expected}, at {actual}"),
            Err(e) => format!("error: {e}"),
        })
        .collect()
}

#[tokio::test]
async fn a_batch_at_exact_versions_is_written_whole_in_order_with_its_read_models() {
    let db = TestDb::new().await;
    let store = &db.store;
    new_stream(store, "test-a", 2).await;
    new_stream(store, "test-b", 1).await;

    let batch = [
        with_party_row(raw_append("test-a", ExpectedVersion::Exact(2), 1), "A"),
        with_party_row(raw_append("test-b", ExpectedVersion::Exact(1), 2), "B"),
        with_party_row(raw_append("test-c", ExpectedVersion::NoStream, 1), "C"),
        with_party_row(raw_append("test-d", ExpectedVersion::NoStream, 3), "D"),
    ];
    let results = store.append_together(&batch).await;
    assert_eq!(versions(&results), ["3..3", "2..3", "1..1", "1..3"]);

    for (stream, last) in [("test-a", 3), ("test-b", 3), ("test-c", 1), ("test-d", 3)] {
        let events = store.read_stream(stream, ReadUntil::End).await.unwrap();
        let found: Vec<u64> = events.iter().map(|e| e.stream_version).collect();
        assert_eq!(found, (1..=last).collect::<Vec<u64>>(), "{stream}");
        // Each stream's events in version order in the log, too.
        assert!(events
            .windows(2)
            .all(|w| w[0].global_position < w[1].global_position));
    }
    let d = store.read_stream("test-d", ReadUntil::End).await.unwrap();
    let payloads: Vec<&str> = d.iter().map(|e| e.payload.as_str()).collect();
    assert_eq!(payloads, [r#"{"n": 0}"#, r#"{"n": 1}"#, r#"{"n": 2}"#]);
    assert_eq!(party_names(&db).await, ["A", "B", "C", "D"]);
    // One transaction: the batch was not split into single appends.
    assert_eq!(
        db.count(
            "SELECT count(DISTINCT tx_id::text) FROM events \
             WHERE (stream_id, stream_version) IN (('test-a', 3), ('test-b', 2), ('test-b', 3), \
               ('test-c', 1), ('test-d', 1), ('test-d', 2), ('test-d', 3))"
        )
        .await,
        1
    );
    assert_eq!(
        db.count("SELECT count(*) FROM streams WHERE stream_id IN ('test-c', 'test-d')")
            .await,
        2
    );
}

#[tokio::test]
async fn a_batch_with_a_conflict_a_retry_and_a_taken_stream_decides_each_append_alone() {
    let db = TestDb::new().await;
    let store = &db.store;
    let first = raw_append("test-r", ExpectedVersion::NoStream, 1);
    store.append(first.clone()).await.unwrap();
    new_stream(store, "test-taken", 1).await;
    new_stream(store, "test-s", 2).await;

    let batch = [
        with_party_row(raw_append("test-n1", ExpectedVersion::NoStream, 1), "N1"),
        // A new stream whose id is taken.
        with_party_row(raw_append("test-taken", ExpectedVersion::NoStream, 1), "T"),
        // Decided on version 1; the stream is at 2.
        with_party_row(raw_append("test-s", ExpectedVersion::Exact(1), 1), "S"),
        // The first command again, as a client that never heard the answer sends it.
        with_party_row(first, "R"),
        with_party_row(raw_append("test-n2", ExpectedVersion::NoStream, 2), "N2"),
    ];
    let results = store.append_together(&batch).await;
    assert_eq!(
        versions(&results),
        [
            "1..1",
            "conflict: expected 0, at 1",
            "conflict: expected 1, at 2",
            "1..1 again",
            "1..2",
        ]
    );
    assert_eq!(db.count("SELECT count(*) FROM events").await, 4 + 3);
    assert_eq!(party_names(&db).await, ["N1", "N2"]);
}

#[tokio::test]
async fn a_batch_without_versions_or_with_one_stream_twice_applies_in_order() {
    let db = TestDb::new().await;
    let store = &db.store;
    new_stream(store, "test-o", 1).await;
    let batch = [
        with_party_row(raw_append("test-o", ExpectedVersion::Exact(1), 1), "O2"),
        with_party_row(raw_append("test-o", ExpectedVersion::Exact(2), 1), "O3"),
        with_party_row(raw_append("test-any", ExpectedVersion::Any, 2), "Any"),
    ];
    let results = store.append_together(&batch).await;
    assert_eq!(versions(&results), ["2..2", "3..3", "1..2"]);
    assert_eq!(party_names(&db).await, ["Any", "O2", "O3"]);
}

#[tokio::test]
async fn the_append_function_refuses_a_batch_as_a_whole_says_why_and_writes_nothing() {
    let db = TestDb::new().await;
    let refusals = |expected: i64, ids: [Uuid; 2]| {
        let db = &db;
        async move {
            let rows = sql_append(expected, ids, &json!({}))
                .fetch_all(db.pool())
                .await
                .unwrap();
            rows.into_iter()
                .map(|(i, refusal, head)| format!("{i}: {} at {head}", refusal.unwrap_or_default()))
                .collect::<Vec<_>>()
        }
    };

    // Neither stream exists, so neither is at version 3: nothing is written.
    let ids = [Uuid::new_v4(), Uuid::new_v4()];
    assert_eq!(
        refusals(3, ids).await,
        ["1: conflict at 0", "2: conflict at 0"]
    );
    assert_eq!(db.count("SELECT count(*) FROM events").await, 0);
    assert_eq!(db.count("SELECT count(*) FROM streams").await, 0);

    // Both new: written, each after its head.
    assert_eq!(refusals(0, ids).await, ["1:  at 0", "2:  at 0"]);
    // The first command again (its event id exists) beside a new one, both at their stream's
    // version: the call fails on the unique event id, and nothing more is written.
    let repeated = sql_append(1, [ids[0], Uuid::new_v4()], &json!({}))
        .fetch_all(db.pool())
        .await
        .unwrap_err();
    assert_eq!(violated(&repeated).as_deref(), Some("events_event_id_key"));
    assert_eq!(db.count("SELECT count(*) FROM events").await, 2);
}

#[tokio::test]
async fn the_edits_function_refuses_a_batch_as_a_whole_says_why_and_writes_nothing() {
    let db = TestDb::new().await;
    sql_append_new(0, &json!({}))
        .fetch_all(db.pool())
        .await
        .unwrap();
    let plan = Uuid::new_v4();
    let step = json!({"steps_upsert": [{
        "plan_id": plan, "step_key": "passport", "position": 1, "kind": "passport",
        "title": "Passport", "status": "ready", "priority": 1
    }]});
    let edits = |version: i64, ids: [Uuid; 2]| {
        let (db, step) = (&db, &step);
        async move {
            sql_edits(version, ids, step)
                .fetch_one(db.pool())
                .await
                .unwrap()
        }
    };

    // Both streams are at 1, not 2: nothing is written, the step row neither.
    let ids = [Uuid::new_v4(), Uuid::new_v4()];
    assert_eq!(edits(2, ids).await, Some(vec![1, 1]));
    assert_eq!(db.count("SELECT count(*) FROM events").await, 2);
    assert_eq!(db.count("SELECT count(*) FROM step_view").await, 0);

    // At their versions: written after each head, with the row.
    assert_eq!(edits(1, ids).await, None);
    assert_eq!(
        db.count("SELECT count(*) FROM events WHERE stream_version = 2")
            .await,
        2
    );
    assert_eq!(
        db.count("SELECT count(*) FROM step_view WHERE status = 'ready'")
            .await,
        1
    );
    // A command again at the version its stream now holds, beside a new one: the call fails
    // on the unique event id, and nothing more is written.
    let repeated = sql_edits(2, [ids[0], Uuid::new_v4()], &json!({}))
        .fetch_one(db.pool())
        .await
        .unwrap_err();
    assert_eq!(violated(&repeated).as_deref(), Some("events_event_id_key"));
    assert_eq!(db.count("SELECT count(*) FROM events").await, 4);
}

/// The constraint a statement's error says it violated, if any.
fn violated(e: &sqlx::Error) -> Option<String> {
    e.as_database_error()
        .and_then(|e| e.constraint().map(str::to_owned))
}

/// A step read-model row of a plan of its own: the everyday edit's kind of row. A batch of
/// appends at exact versions with no rows but plans', steps' and timers' goes to
/// `homeward_append_edits`.
fn with_step_row(mut append: Append, title: &str) -> Append {
    append.projection = ProjectionChange {
        steps_upsert: vec![StepRow {
            plan_id: Uuid::new_v4(),
            step_key: "passport".into(),
            position: 1,
            kind: "passport".into(),
            title: title.to_owned(),
            status: "ready".into(),
            assignee: None,
            candidate_group: None,
            priority: 1,
            due_at: None,
            follow_up_on: None,
            document_status: None,
            status_reason: None,
        }],
        ..ProjectionChange::default()
    };
    append
}

#[tokio::test]
async fn a_batch_of_edits_with_a_conflict_and_a_retry_decides_each_append_alone() {
    let db = TestDb::new().await;
    let store = &db.store;
    for stream in ["test-e1", "test-e2", "test-e3", "test-e4"] {
        new_stream(store, stream, 2).await;
    }
    let sent = raw_append("test-e4", ExpectedVersion::Exact(2), 1);
    store.append(sent.clone()).await.unwrap();

    let batch = [
        with_step_row(raw_append("test-e1", ExpectedVersion::Exact(2), 1), "E1"),
        // Decided on version 1; the stream is at 2.
        with_step_row(raw_append("test-e2", ExpectedVersion::Exact(1), 1), "E2"),
        with_step_row(raw_append("test-e3", ExpectedVersion::Exact(2), 2), "E3"),
        // An edit written before, sent again by a client that never heard the answer.
        with_step_row(sent, "E4"),
    ];
    let results = store.append_together(&batch).await;
    assert_eq!(
        versions(&results),
        ["3..3", "conflict: expected 1, at 2", "3..4", "3..3 again"]
    );
    assert_eq!(db.count("SELECT count(*) FROM events").await, 8 + 1 + 3);
    let titles: Vec<String> = sqlx::query_scalar("SELECT title FROM step_view ORDER BY title")
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert_eq!(titles, ["E1", "E3"]);
    // The two written together, in one transaction, at the versions after their heads.
    assert_eq!(
        db.count(
            "SELECT count(DISTINCT tx_id::text) FROM events \
             WHERE (stream_id, stream_version) IN (('test-e1', 3), ('test-e3', 3), \
               ('test-e3', 4))"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn group_commit_counts_its_transactions_and_shares_them_under_load() {
    let db = TestDb::new().await;
    // One flush in flight: while it runs, the other appends queue and go together.
    let store = homeward_store_postgres::PgStore::connect_with_flushes(&db.url, 8, 1)
        .await
        .unwrap();
    assert_eq!(store.group_commit_stats(), Default::default());

    let appends = (0..32).map(|i| {
        let store = store.clone();
        async move {
            store
                .append(raw_append(
                    &format!("test-load-{i}"),
                    ExpectedVersion::NoStream,
                    1,
                ))
                .await
        }
    });
    let results = futures::future::join_all(appends).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    let stats = store.group_commit_stats();
    assert_eq!(stats.appends, 32, "every append counted once: {stats:?}");
    assert!(
        (1..32).contains(&stats.flushes),
        "32 appends at once share transactions: {stats:?}"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM events WHERE stream_id LIKE 'test-load-%'")
            .await,
        32
    );
}

#[tokio::test]
async fn an_append_whose_flush_connection_was_dropped_goes_through_on_a_new_one() {
    let db = TestDb::new().await;
    let store = homeward_store_postgres::PgStore::connect_with_flushes(&db.url, 4, 1)
        .await
        .unwrap();
    store
        .append(raw_append("test-dropped", ExpectedVersion::NoStream, 1))
        .await
        .unwrap();
    // The server ends every other session of this database, the flush's connection among
    // them, as a restart or a network failure would.
    let others = "FROM pg_stat_activity \
                  WHERE datname = current_database() AND pid <> pg_backend_pid()";
    let ended = db
        .count(&format!(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) {others}) AS t"
        ))
        .await;
    assert!(ended >= 1, "the flush's connection was ended");
    for _ in 0..100 {
        if db.count(&format!("SELECT count(*) {others}")).await == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let appended = store
        .append(raw_append("test-dropped", ExpectedVersion::Exact(1), 1))
        .await
        .unwrap();
    assert_eq!((appended.first_version, appended.duplicate), (2, false));
    assert_eq!(
        db.count("SELECT count(*) FROM events WHERE stream_id = 'test-dropped'")
            .await,
        2
    );
}

#[tokio::test]
async fn a_pooled_connection_the_server_ended_while_idle_is_not_handed_out() {
    let db = TestDb::new().await;
    let store = PgStore::connect_with_flushes(&db.url, 2, 1).await.unwrap();
    new_stream(&store, "test-idle", 1).await;
    // Reads go through the pool: both its connections in use at once.
    let (a, b) = tokio::join!(
        store.read_stream("test-idle", ReadUntil::End),
        store.read_stream("test-idle", ReadUntil::End)
    );
    assert_eq!((a.unwrap().len(), b.unwrap().len()), (1, 1));
    let others = "FROM pg_stat_activity \
                  WHERE datname = current_database() AND pid <> pg_backend_pid()";
    db.count(&format!(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) {others}) AS t"
    ))
    .await;
    // Idle longer than a pooled connection goes unchecked: each is checked, found ended, and
    // replaced before a statement is sent on it.
    tokio::time::sleep(
        homeward_store_postgres::CHECK_POOLED_AFTER_IDLE
            + Duration::milliseconds(300).to_std().unwrap(),
    )
    .await;
    for _ in 0..3 {
        let (a, b) = tokio::join!(
            store.read_stream("test-idle", ReadUntil::End),
            store.read_stream("test-idle", ReadUntil::End)
        );
        assert_eq!((a.unwrap().len(), b.unwrap().len()), (1, 1));
    }
}

/// Moments after the server ended them, pooled connections are still handed out unchecked:
/// the read sent on one runs again on a connection checked first, and is answered.
#[tokio::test]
async fn a_read_on_a_pooled_connection_the_server_ended_moments_ago_is_answered() {
    let db = TestDb::new().await;
    let store = PgStore::connect_with_flushes(&db.url, 2, 1).await.unwrap();
    new_stream(&store, "test-ended", 1).await;
    let (a, b) = tokio::join!(
        store.read_stream("test-ended", ReadUntil::End),
        store.read_stream("test-ended", ReadUntil::End)
    );
    assert_eq!((a.unwrap().len(), b.unwrap().len()), (1, 1));
    let ended = db.end_connections_that_ran("%").await;
    assert!(ended >= 2, "the pool's connections were ended: {ended}");
    for _ in 0..3 {
        let (a, b) = tokio::join!(
            store.read_stream("test-ended", ReadUntil::End),
            store.read_stream("test-ended", ReadUntil::End)
        );
        assert_eq!((a.unwrap().len(), b.unwrap().len()), (1, 1));
    }
}

/// `homeward_append_commands` called directly: one event each on `test-x` and `test-y`, both
/// at `version`, with these first event ids, a fresh idempotency key each, and the read-model
/// rows given in the JSON form of a projection change. Its answer as a row per append.
fn sql_append(version: i64, ids: [Uuid; 2], projection: &serde_json::Value) -> SqlAppend<'_> {
    sqlx::query_as(
        "SELECT x.o::integer, x.refusal, x.head \
         FROM (SELECT homeward_append_commands(\
         ARRAY['test-x', 'test-y'], ARRAY['test', 'test'], ARRAY[$1, $1], \
         ARRAY[1, 2], ARRAY[1, 1], ARRAY['test-x', 'test-y'], $2, \
         ARRAY[gen_random_uuid(), gen_random_uuid()], ARRAY['e', 'e'], ARRAY[1, 1]::smallint[], \
         ARRAY['{}', '{}']::jsonb[], ARRAY['{}', '{}']::jsonb[], ARRAY[now(), now()], \
         ARRAY[gen_random_uuid(), gen_random_uuid()], ARRAY['\\x01', '\\x02']::bytea[], \
         ARRAY['op', 'op'], ARRAY[NULL, NULL]::text[], ARRAY['\\x00', '\\x00']::bytea[], \
         ARRAY[gen_random_uuid(), gen_random_uuid()], ARRAY[now(), now()], \
         ARRAY[now() - interval '1 day', now() - interval '1 day'], \
         ARRAY(SELECT r FROM jsonb_populate_recordset(NULL::homeward_plan_row, $3->'plans') r), \
         ARRAY(SELECT r FROM jsonb_populate_recordset(NULL::homeward_step_ref, $3->'steps_delete') r), \
         ARRAY(SELECT r FROM jsonb_populate_recordset(NULL::homeward_step_row, $3->'steps_upsert') r), \
         ARRAY(SELECT t::uuid FROM jsonb_array_elements_text($3->'timers_cancel') t), \
         ARRAY(SELECT r FROM jsonb_populate_recordset(NULL::homeward_timer_row, $3->'timers_arm') r), \
         ARRAY(SELECT r FROM jsonb_populate_recordset(NULL::homeward_party_row, $3->'parties') r), \
         ARRAY(SELECT t::uuid FROM jsonb_array_elements_text($3->'digests_delete') t), \
         ARRAY(SELECT r FROM jsonb_populate_recordset(NULL::homeward_digest_row, $3->'digests_upsert') r), \
         ARRAY(SELECT r FROM jsonb_populate_recordset(NULL::homeward_organisation_row, $3->'organisations') r), \
         NULL, NULL, NULL, NULL, NULL, \
         ARRAY(SELECT r FROM jsonb_populate_recordset(NULL::homeward_person_row, $3->'persons') r), \
         NULL, NULL, NULL) \
               AS answer OFFSET 0) AS called, \
              unnest((called.answer).refusals, (called.answer).heads) \
                WITH ORDINALITY AS x(refusal, head, o)",
    )
    .bind(version)
    .bind(ids.to_vec())
    .bind(projection)
}

/// A direct call of the append function: a row per append (its index, refusal and head).
type SqlAppend<'q> = sqlx::query::QueryAs<
    'q,
    sqlx::Postgres,
    (i32, Option<String>, i64),
    sqlx::postgres::PgArguments,
>;

/// [`sql_append`] with fresh event ids.
fn sql_append_new(version: i64, projection: &serde_json::Value) -> SqlAppend<'_> {
    sql_append(version, [Uuid::new_v4(), Uuid::new_v4()], projection)
}

/// `homeward_append_edits`, the everyday edit's entry point, called directly: one event each on
/// `test-x` and `test-y`, both at `version` (the events at `version + 1`), with these first event
/// ids and the plans', steps' and timers' rows of `projection`. Its answer: NULL when written,
/// else each stream's head.
fn sql_edits(version: i64, ids: [Uuid; 2], projection: &serde_json::Value) -> SqlEdits<'_> {
    sqlx::query_scalar(
        "SELECT homeward_append_edits(\
         ARRAY['test-x', 'test-y'], ARRAY[$1, $1], ARRAY['test-x', 'test-y'], \
         ARRAY[$1 + 1, $1 + 1], $2, \
         ARRAY[gen_random_uuid(), gen_random_uuid()], ARRAY['e', 'e'], ARRAY[1, 1]::smallint[], \
         ARRAY['{}', '{}']::jsonb[], ARRAY['{}', '{}']::jsonb[], ARRAY[now(), now()], \
         ARRAY(SELECT r FROM jsonb_populate_recordset(NULL::homeward_plan_row, $3->'plans') r), \
         ARRAY(SELECT r FROM jsonb_populate_recordset(NULL::homeward_step_ref, $3->'steps_delete') r), \
         ARRAY(SELECT r FROM jsonb_populate_recordset(NULL::homeward_step_row, $3->'steps_upsert') r), \
         ARRAY(SELECT t::uuid FROM jsonb_array_elements_text($3->'timers_cancel') t), \
         ARRAY(SELECT r FROM jsonb_populate_recordset(NULL::homeward_timer_row, $3->'timers_arm') r))",
    )
    .bind(version)
    .bind(ids.to_vec())
    .bind(projection)
}

/// A direct call of the edits function: NULL, or each stream's head.
type SqlEdits<'q> =
    sqlx::query::QueryScalar<'q, sqlx::Postgres, Option<Vec<i64>>, sqlx::postgres::PgArguments>;

/// [`sql_edits`] with fresh event ids.
fn sql_edits_new(version: i64, projection: &serde_json::Value) -> SqlEdits<'_> {
    sql_edits(version, [Uuid::new_v4(), Uuid::new_v4()], projection)
}

#[tokio::test]
async fn appends_probe_indexes_even_when_their_plans_were_made_on_nearly_empty_tables() {
    // A connection's PL/pgSQL plans are made on first use and kept. Made on nearly empty tables
    // (a new deployment), a plan that scans the table is the cheapest, and it would go on
    // scanning as the log grows to millions of events. Every lookup the append functions make
    // must be an index probe from the start.
    let db = TestDb::new().await;
    let mut tx = db.pool().begin().await.unwrap();
    let plan = Uuid::new_v4();
    for version in 0..8i64 {
        let timer = Uuid::new_v5(&plan, &version.to_be_bytes());
        let earlier = Uuid::new_v5(&plan, &(version - 1).to_be_bytes());
        let projection = json!({
            "steps_delete": [{"plan_id": plan, "step_key": "passport"}],
            "timers_cancel": [earlier],
            "timers_arm": [{
                "timer_id": timer, "plan_id": plan, "step_key": "passport", "kind": "on_due",
                "fire_at": "2026-03-01T08:00:00Z", "recipient_party": plan,
                "recipient_role": "assignee"
            }],
            "digests_delete": [plan],
        });
        // A batch at its versions: the heads of both streams, the first event ids, the
        // read-model rows; through each entry point in turn.
        sql_append_new(2 * version, &projection)
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        let written = sql_edits_new(2 * version + 1, &projection)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(written, None);
        // The same versions again: refused, after the same probes.
        let refused = sql_append_new(2 * version, &projection)
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        assert!(refused.iter().all(|r| r.1.as_deref() == Some("conflict")));
        let heads = sql_edits_new(2 * version + 1, &projection)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(heads, Some(vec![2 * version + 2; 2]));
    }
    let scanned: Vec<(String, i64)> = sqlx::query_as(
        "SELECT relname::text, seq_scan FROM pg_stat_xact_user_tables \
         WHERE seq_scan > 0 ORDER BY relname",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    assert!(scanned.is_empty(), "whole tables scanned: {scanned:?}");
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(written, 32);
}

#[tokio::test]
async fn projection_deletes_read_only_their_own_rows_whatever_the_tables_held_when_planned() {
    // The deletes of read-model rows (a removed step, a cancelled timer, a party without a
    // digest) and the lookups of idempotency keys are planned once per connection, possibly
    // while the tables are nearly empty.
    // Later, with thousands of rows, each must still read only the rows it deletes, not walk
    // a whole index as a join planned on an empty table would.
    let db = TestDb::new().await;
    let mut tx = db.pool().begin().await.unwrap();
    let plan = Uuid::new_v4();
    let deletes = json!({
        "steps_delete": [{"plan_id": plan, "step_key": "passport"}],
        "timers_cancel": [Uuid::new_v5(&plan, b"timer")],
        "digests_delete": [plan],
    });
    // Planned on empty tables, known to be empty (analysed, as autovacuum does on a new
    // deployment), and used enough times for PL/pgSQL to settle on a plan.
    sqlx::query("ANALYZE").execute(&mut *tx).await.unwrap();
    for version in 0..8i64 {
        sql_append_new(version, &deletes)
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    }
    sqlx::query(
        "INSERT INTO step_view (plan_id, step_key, position, kind, title, status, priority) \
         SELECT gen_random_uuid(), 'passport', 0, 'passport', 'Passport', 'ready', 1 \
         FROM generate_series(1, 3000)",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO timers (timer_id, plan_id, step_key, kind, fire_at, recipient_party, \
                             recipient_role) \
         SELECT gen_random_uuid(), gen_random_uuid(), 'passport', 'on_due', now(), \
                gen_random_uuid(), 'assignee' \
         FROM generate_series(1, 3000)",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO digests (party_id, due_at) \
         SELECT gen_random_uuid(), now() FROM generate_series(1, 3000)",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO events (stream_id, stream_version, event_id, command_id, event_type, \
                             schema_version, payload, metadata, occurred_at) \
         SELECT 'test-many-' || n, 1, gen_random_uuid(), gen_random_uuid(), 'e', 1, '{}', '{}', \
                now() \
         FROM generate_series(1, 3000) AS n",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO idempotency_keys (party_id, key_hash, operation, fingerprint, command_id, \
                                       created_at) \
         SELECT gen_random_uuid(), '\\x01', 'op', '\\x00', gen_random_uuid(), now() \
         FROM generate_series(1, 3000)",
    )
    .execute(&mut *tx)
    .await
    .unwrap();

    let rows_read = "SELECT relname::text, coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0) \
                     FROM pg_stat_xact_user_tables \
                     WHERE relname IN ('step_view', 'timers', 'digests', 'idempotency_keys', \
                                       'events') \
                     ORDER BY relname";
    let before: Vec<(String, i64)> = sqlx::query_as(rows_read).fetch_all(&mut *tx).await.unwrap();
    sql_append_new(8, &deletes)
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    let after: Vec<(String, i64)> = sqlx::query_as(rows_read).fetch_all(&mut *tx).await.unwrap();
    let read: Vec<(String, i64)> = before
        .iter()
        .zip(&after)
        .map(|((table, b), (_, a))| (table.clone(), a - b))
        .collect();
    assert_eq!(read.len(), 5, "{read:?}");
    assert!(
        read.iter().all(|(_, n)| *n <= 10),
        "rows read by an append of two events (its checks, its keys, its deletes of missing \
         read-model rows): {read:?}"
    );
}

/// The SQL functions have one body, in `migrations/functions/postgres.sql`, applied at every
/// start: a body changed in the database is put back by the next start, and replicas starting
/// together apply the schema one after another without failing.
#[tokio::test]
async fn every_start_applies_the_current_function_bodies() {
    let db = TestDb::new().await;
    sqlx::query(
        "CREATE OR REPLACE FUNCTION homeward_project_rows(\
             p_plans homeward_plan_row[], p_steps_delete homeward_step_ref[], \
             p_steps_upsert homeward_step_row[], p_timers_cancel uuid[], \
             p_timers_arm homeward_timer_row[], p_parties homeward_party_row[], \
             p_digests_delete uuid[], p_digests_upsert homeward_digest_row[], \
             p_organisations homeward_organisation_row[], p_persons homeward_person_row[]) \
         RETURNS void LANGUAGE plpgsql AS $$ BEGIN END $$",
    )
    .execute(db.pool())
    .await
    .unwrap();
    let starts = futures::future::join_all((0..4).map(|_| db.store.migrate())).await;
    for start in starts {
        start.unwrap();
    }
    let body: String =
        sqlx::query_scalar("SELECT prosrc FROM pg_proc WHERE proname = 'homeward_project_rows'")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert!(body.contains("INSERT INTO plan_view"), "{body}");
    // Every function of the file is there, and no other.
    let functions: Vec<String> = sqlx::query_scalar(
        "SELECT proname::text FROM pg_proc WHERE proname LIKE 'homeward\\_%' ORDER BY 1",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    let in_file: std::collections::BTreeSet<String> = homeward_store_postgres::FUNCTIONS
        .lines()
        .filter_map(|l| l.strip_prefix("CREATE OR REPLACE FUNCTION "))
        .map(|l| l.split('(').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        functions
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>(),
        in_file
    );
}

/// The reads of several streams at once (a plan with her person's stream and key, the tails of
/// the plans a page shows) are planned once per connection, not at every call: sent as they
/// were, their arrays' lengths were unknown to a generic plan, so PostgreSQL planned them afresh
/// each time, at several times the cost of running them.
#[tokio::test]
async fn reads_of_several_streams_are_planned_once_per_connection() {
    use homeward_store::person_keys::PersonKeys;
    let db = TestDb::new().await;
    // One connection: the prepared statements looked at below are the reads'.
    let store = PgStore::connect_with_flushes(&db.url, 1, 1).await.unwrap();
    new_stream(&store, "test-plan", 2).await;
    new_stream(&store, "test-her", 1).await;
    let person = Uuid::new_v4();
    store
        .store_person_key(person, &[1; 60], &[2; 32])
        .await
        .unwrap();
    // On a nearly empty log, a plan for any number of streams looks as cheap as one for two.
    log_of_some_size(&store).await;
    let streams = [("test-plan".to_owned(), 1), ("test-her".to_owned(), 0)];
    for _ in 0..12 {
        let read = store.read_streams_after(&streams).await.unwrap();
        assert_eq!(read.len(), 2, "the plan's second event and her first");
        let read = store
            .read_streams_after_with_keys(&streams, &[person])
            .await
            .unwrap();
        assert_eq!((read.events.len(), read.keys.len()), (2, 1));
    }
    reads_planned_once(&store, 2).await;
}

/// The reads of several streams, planned while the log was empty, still probe each stream's
/// range once it has grown: a connection keeps the plan it first made until the log's
/// statistics change, and a join planned on a table thought empty could read the whole log at
/// every call (as a read of one stream once did, in a benchmark's first round).
#[tokio::test]
async fn reads_of_several_streams_planned_on_an_empty_log_still_probe_once_it_grew() {
    use homeward_store::person_keys::PersonKeys;
    let db = TestDb::new().await;
    // One connection: the plans cached below are the ones read with.
    let store = PgStore::connect_with_flushes(&db.url, 1, 1).await.unwrap();
    // Planned now, on a log that holds nothing and was never analysed.
    let nothing = [("test-nothing".to_owned(), 0)];
    assert!(store.read_streams_after(&nothing).await.unwrap().is_empty());
    let read = store
        .read_streams_after_with_keys(&nothing, &[Uuid::new_v4()])
        .await
        .unwrap();
    assert!(read.events.is_empty() && read.keys.is_empty());
    // The log grows; its statistics are not gathered again yet.
    new_stream(&store, "test-plan", 2).await;
    let person = Uuid::new_v4();
    store
        .store_person_key(person, &[1; 60], &[2; 32])
        .await
        .unwrap();
    bulk_events(&store).await;
    let streams = [("test-plan".to_owned(), 1), ("test-bulk-7".to_owned(), 18)];
    let (events, entries) = index_entries_read(&store, store.read_streams_after(&streams)).await;
    assert_eq!(
        events.len(),
        3,
        "the plan's second event, the bulk stream's last two"
    );
    assert!(
        entries < 100,
        "the read of two streams' tails read {entries} entries of the log's indexes"
    );
    let (read, entries) = index_entries_read(
        &store,
        store.read_streams_after_with_keys(&streams, &[person]),
    )
    .await;
    assert_eq!((read.events.len(), read.keys.len()), (3, 1));
    assert!(
        entries < 100,
        "the read of two streams' tails with a key read {entries} entries of the log's indexes"
    );
}

/// What `read` returned, and how many entries of the log's indexes it read (the statistics of
/// the store's one connection, flushed after it).
async fn index_entries_read<T>(
    store: &PgStore,
    read: impl std::future::Future<Output = Result<T, StoreError>>,
) -> (T, i64) {
    let entries_read = || async {
        // Flushes this connection's statistics once it is idle, before the next statement.
        sqlx::query("SELECT pg_stat_force_next_flush()")
            .execute(store.pool())
            .await
            .unwrap();
        sqlx::query_scalar::<_, i64>(
            "SELECT coalesce(sum(idx_tup_read), 0)::bigint FROM pg_stat_user_indexes \
             WHERE relname = 'events'",
        )
        .fetch_one(store.pool())
        .await
        .unwrap()
    };
    let before = entries_read().await;
    let returned = read.await.unwrap();
    let after = entries_read().await;
    (returned, after - before)
}

/// A log of some size, as PostgreSQL's statistics see it: 2,000 streams `test-bulk-<n>` of 20
/// events each.
async fn log_of_some_size(store: &PgStore) {
    bulk_events(store).await;
    sqlx::query("ANALYZE events")
        .execute(store.pool())
        .await
        .unwrap();
}

/// 2,000 streams `test-bulk-<n>` of 20 events each, written straight to the log.
async fn bulk_events(store: &PgStore) {
    sqlx::query(
        "INSERT INTO events (stream_id, stream_version, event_id, command_id, event_type, \
           schema_version, payload, metadata, occurred_at) \
         SELECT 'test-bulk-' || (i % 2000), i / 2000 + 1, gen_random_uuid(), gen_random_uuid(), \
           'e', 1, '{}', jsonb_build_object('actor', gen_random_uuid(), \
           'correlation_id', gen_random_uuid()), now() FROM generate_series(0, 39999) AS i",
    )
    .execute(store.pool())
    .await
    .unwrap();
}

/// The reads of one stream, a command's catch-up of a state it keeps and a state as it was at
/// a version, are planned once per connection. Sent as statements, a generic plan for "after
/// this version" could not know how few events follow, looked dearer than one made for the
/// values, and the read was planned afresh at every call.
#[tokio::test]
async fn reads_of_one_stream_are_planned_once_per_connection() {
    let db = TestDb::new().await;
    // One connection: the prepared statements looked at below are the reads'.
    let store = PgStore::connect_with_flushes(&db.url, 1, 1).await.unwrap();
    log_of_some_size(&store).await;
    for _ in 0..12 {
        let tail = store.read_stream_after("test-bulk-7", 18).await.unwrap();
        let versions: Vec<u64> = tail.iter().map(|e| e.stream_version).collect();
        assert_eq!(versions, [19, 20], "the two events after the 18th");
        let early = store
            .read_stream("test-bulk-7", ReadUntil::Version(3))
            .await
            .unwrap();
        assert_eq!(early.len(), 3, "the stream up to its third event");
    }
    // Both through one statement.
    reads_planned_once(&store, 1).await;
}

/// The inbox and the plan list, the reads a worker makes most, are planned once per
/// connection. With the page's size and offset as parameters, PostgreSQL took the inbox's
/// generic plan to fetch a far larger page, found it dearer than one made for the values, and
/// planned it afresh at every call (at more than the cost of running it).
#[tokio::test]
async fn the_inbox_and_the_plan_list_are_planned_once_per_connection() {
    use homeward_store::reads::{Page, PlanFilter, PlanScope, ReadModels, TaskFilter, TaskScope};
    let db = TestDb::new().await;
    // One connection: the prepared statements looked at below are the reads'.
    let store = PgStore::connect_with_flushes(&db.url, 1, 1).await.unwrap();
    // Read models of some size, as PostgreSQL's statistics see them: 2,000 plans of 20
    // organisations, 20 steps each, assigned among 200 parties.
    sqlx::query(
        "INSERT INTO plan_view (plan_id, version, person_id, template_name, template_version, \
           case_worker, organisation, origin_country, status, suspended, opened_at, \
           steps_total, steps_open, steps_done, steps_blocked) \
         SELECT uuid_in(md5('plan' || i)::cstring), 1, gen_random_uuid(), 'standard-avr', 1, \
           gen_random_uuid(), uuid_in(md5('org' || (i % 20))::cstring), 'NG', 'active', false, \
           now() - i * interval '1 minute', 20, 20, 0, 0 \
         FROM generate_series(0, 1999) AS i",
    )
    .execute(store.pool())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO step_view (plan_id, step_key, position, kind, title, status, assignee, \
           priority, due_at) \
         SELECT uuid_in(md5('plan' || (i / 20))::cstring), 'step-' || (i % 20), i % 20, \
           'legal', 'a title', 'pending', uuid_in(md5('party' || (i % 200))::cstring), 2, \
           now() + i * interval '1 minute' \
         FROM generate_series(0, 39999) AS i",
    )
    .execute(store.pool())
    .await
    .unwrap();
    sqlx::query("ANALYZE plan_view, step_view")
        .execute(store.pool())
        .await
        .unwrap();
    let party: Uuid = sqlx::query_scalar("SELECT uuid_in(md5('party7')::cstring)")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let organisation: Uuid = sqlx::query_scalar("SELECT uuid_in(md5('org3')::cstring)")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let inbox = TaskScope {
        assignee: PartyId(party),
        organisation: None,
        kinds: None,
    };
    let page = Page {
        offset: 0,
        limit: 21,
    };
    for _ in 0..12 {
        let tasks = store
            .tasks(&inbox, &TaskFilter::default(), chrono::Utc::now(), page)
            .await
            .unwrap();
        assert_eq!(tasks.len(), 21, "a full page of her 200 tasks");
        let plans = store
            .plans(
                &PlanScope::Organisation(organisation),
                &PlanFilter::default(),
                chrono::Utc::now(),
                page,
            )
            .await
            .unwrap();
        assert_eq!(plans.len(), 21, "a full page of its 100 plans");
    }
    reads_planned_once(&store, 2).await;
}

/// Checks, on the one connection of `store`, that `reads` statements ran twelve times or more
/// each and that PostgreSQL kept a generic plan for each (planned afresh at most five times:
/// the custom plans it makes before it compares).
async fn reads_planned_once(store: &PgStore, reads: usize) {
    let statements: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements \
         WHERE statement NOT LIKE '%pg_prepared_statements%'",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let ran: Vec<_> = statements
        .iter()
        .filter(|(_, generic, custom)| generic + custom >= 12)
        .collect();
    assert_eq!(
        ran.len(),
        reads,
        "the reads, twelve times each: {statements:?}"
    );
    for (statement, generic, custom) in ran {
        assert!(
            *custom <= 5 && *generic >= 7,
            "planned afresh {custom} times of {}: {statement}",
            generic + custom
        );
    }
}

/// A person's key stored while the master key is rotated waits for the rotation, and is then
/// refused: it was wrapped under the key rotated away, which no replica will hold again, so
/// storing it would make her data unreadable for good.
#[tokio::test]
async fn a_key_stored_during_a_rotation_is_refused_once_the_rotation_committed() {
    use homeward_store::person_keys::PersonKeys;
    use homeward_store::Backend;
    let db = TestDb::new().await;
    let store = Arc::new(PgStore::connect(&db.url, 4).await.unwrap());
    // The first key stored fixes the database's master key.
    let (old_check, new_check) = ([7_u8; 32], [8_u8; 32]);
    store
        .store_person_key(Uuid::new_v4(), &[1; 60], &old_check)
        .await
        .unwrap();

    // A rotation, as `homeward keys rotate` runs it, not yet committed: it holds the keys'
    // table and has changed the check value.
    let mut rotation = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    for statement in [
        "BEGIN",
        "LOCK TABLE person_keys IN EXCLUSIVE MODE",
        "UPDATE server_secrets SET secret = decode(repeat('08', 32), 'hex') \
         WHERE name = 'master_key_check'",
    ] {
        sqlx::query(statement).execute(&mut rotation).await.unwrap();
    }
    // Meanwhile a replica still holding the old master key registers a person.
    let ada = Uuid::new_v4();
    let mut opening = raw_append(&format!("person-{ada}"), ExpectedVersion::NoStream, 1);
    opening.new_person_key = Some(homeward_store::NewPersonKey {
        person: ada,
        wrapped: vec![2; 60],
        master_check: old_check.to_vec(),
    });
    let registering = tokio::spawn({
        let store = store.clone();
        async move { store.append(opening).await }
    });
    // It waits for the rotation's lock.
    let mut waited = false;
    for _ in 0..200 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'person_keys'::regclass",
        )
        .fetch_one(db.pool())
        .await
        .unwrap();
        if waiting > 0 {
            waited = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(waited, "the registration waits for the rotation");
    sqlx::query("COMMIT").execute(&mut rotation).await.unwrap();

    let registered = registering.await.unwrap();
    assert!(
        matches!(registered, Err(StoreError::MasterKeyChanged)),
        "a key under the master key rotated away is refused: {registered:?}"
    );
    assert_eq!(store.person_key(ada).await.unwrap(), None, "no key stored");
    assert!(
        store
            .read_stream(&format!("person-{ada}"), ReadUntil::End)
            .await
            .unwrap()
            .is_empty(),
        "nor her events"
    );
    assert_eq!(
        store.master_key_check(&new_check).await.unwrap(),
        new_check.to_vec(),
        "the rotation's check value stands"
    );
}
