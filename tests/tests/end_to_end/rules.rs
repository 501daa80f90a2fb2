//! The domain rules through the real command handler on a real PostgreSQL: each refusal comes
//! back as its typed error, and a refused command leaves the log and the read models as they were.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::sync::Arc;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use homeward_engine::{Clock, CommandError, CommandHandler, CommandMeta, FixedClock};
use homeward_store_postgres::PgStore;
use homeward_tests::{key, open_standard_plan, party_details, register_party, start_time, TestDb};
use homeward_workflows::party::{Party, PartyCommand, PartyDetails, PartyError, PartyRole};
use homeward_workflows::plan::{
    CloseReason, ConsentPurpose, DocumentStatus, DueRule, NewStep, Plan, PlanCommand, PlanError,
    Priority, StepKind, Wellbeing,
};
use homeward_workflows::text::TextError;
use homeward_workflows::{PartyId, PlanId};

/// A plan opened from the standard template on its own database, driven one hour per command.
struct Case {
    db: TestDb,
    clock: Arc<FixedClock>,
    handler: CommandHandler<PgStore>,
    worker: PartyId,
    plan: PlanId,
}

impl Case {
    async fn opened() -> Self {
        let db = TestDb::new().await;
        let clock = Arc::new(FixedClock::new(start_time()));
        let handler = db.handler(clock.clone());
        let worker = register_party(&handler, PartyRole::SocialWorker, "worker@example.org").await;
        let plan = PlanId::new();
        handler
            .handle::<Plan>(
                &plan.stream_id(),
                &open_standard_plan(plan, worker),
                CommandMeta::new(worker),
            )
            .await
            .unwrap();
        Self {
            db,
            clock,
            handler,
            worker,
            plan,
        }
    }

    /// Opened, with the survivor's consent to return: the plan is active.
    async fn active() -> Self {
        let case = Self::opened().await;
        case.run(PlanCommand::RecordConsent {
            purpose: ConsentPurpose::Return,
        })
        .await;
        case
    }

    /// Runs a command an hour after the previous one; it must be accepted.
    async fn run(&self, command: PlanCommand) -> &Self {
        self.clock.advance(Duration::hours(1));
        if let Err(e) = self
            .handler
            .handle::<Plan>(
                &self.plan.stream_id(),
                &command,
                CommandMeta::new(self.worker),
            )
            .await
        {
            panic!("{command:?} was refused: {e}");
        }
        self
    }

    async fn start(&self, step: &str) -> &Self {
        self.run(PlanCommand::StartStep {
            step: key(step),
            override_reason: None,
        })
        .await
    }

    async fn complete(&self, step: &str) -> &Self {
        self.run(PlanCommand::CompleteStep { step: key(step) })
            .await
    }

    async fn document(&self, status: DocumentStatus) -> &Self {
        self.run(PlanCommand::UpdateDocumentStatus {
            step: key("passport"),
            status,
        })
        .await
    }

    async fn passport_issued(&self) -> &Self {
        self.document(DocumentStatus::SubmittedToAuthority)
            .await
            .document(DocumentStatus::Issued)
            .await
    }

    async fn origin_contact_designated(&self) -> &Self {
        self.start("origin_contact")
            .await
            .complete("origin_contact")
            .await
    }

    /// Travel is ready by its dependencies, but the origin contact was cancelled, not designated.
    async fn travel_ready_without_an_origin_contact() -> Self {
        let case = Self::active().await;
        case.run(PlanCommand::CancelStep {
            step: key("origin_contact"),
            reason: "The designated contact moved away".to_owned(),
        })
        .await
        .passport_issued()
        .await
        .complete("passport")
        .await
        .complete("medical_check")
        .await;
        case.assert_step_status("travel", "ready").await;
        case
    }

    /// Travel no longer waits for the passport, which is still with the authority.
    async fn travel_ready_without_a_travel_document() -> Self {
        let case = Self::active().await;
        case.origin_contact_designated()
            .await
            .complete("medical_check")
            .await
            .document(DocumentStatus::SubmittedToAuthority)
            .await
            .run(PlanCommand::ChangeDependencies {
                step: key("travel"),
                depends_on: vec![key("origin_contact"), key("medical_check")],
            })
            .await;
        case.assert_step_status("travel", "ready").await;
        case
    }

    async fn assert_step_status(&self, step: &str, expected: &str) {
        let status: String =
            sqlx::query_scalar("SELECT status FROM step_view WHERE plan_id = $1 AND step_key = $2")
                .bind(self.plan.0)
                .bind(step)
                .fetch_one(self.db.pool())
                .await
                .unwrap();
        assert_eq!(status, expected, "status of step {step}");
    }

    /// The command is refused with exactly `expected`, and nothing is appended or projected.
    #[track_caller]
    fn refuses(
        &self,
        command: PlanCommand,
        expected: PlanError,
    ) -> impl std::future::Future<Output = ()> + '_ {
        let caller = std::panic::Location::caller();
        async move {
            self.clock.advance(Duration::hours(1));
            let before = self.db.plan_footprint(self.plan).await;
            assert!(
                before.plan_version.is_some()
                    && before.steps.as_array().is_some_and(|rows| !rows.is_empty()),
                "the plan is projected before the command: {before:?}"
            );
            let outcome = self
                .handler
                .handle::<Plan>(
                    &self.plan.stream_id(),
                    &command,
                    CommandMeta::new(self.worker),
                )
                .await;
            match outcome {
                Err(CommandError::Rejected(actual)) => {
                    assert_eq!(actual, expected, "refusal of {command:?} ({caller})")
                }
                Err(other) => {
                    panic!("{command:?} failed with {other:?}, not {expected:?} ({caller})")
                }
                Ok(handled) => panic!(
                    "{command:?} was accepted (version {}), expected {expected:?} ({caller})",
                    handled.version
                ),
            }
            let after = self.db.plan_footprint(self.plan).await;
            assert_eq!(
                after, before,
                "a refused {command:?} changed something ({caller})"
            );
        }
    }

    /// The payload field `field` of the plan's last event of type `event_type`.
    async fn last_payload_field(&self, event_type: &str, field: &str) -> Option<String> {
        let stored: Option<String> = sqlx::query_scalar(
            "SELECT payload->>$3 FROM events WHERE stream_id = $1 AND event_type = $2 \
             ORDER BY stream_version DESC LIMIT 1",
        )
        .bind(self.plan.stream_id())
        .bind(event_type)
        .bind(field)
        .fetch_one(self.db.pool())
        .await
        .unwrap();
        match stored {
            // A personal field is stored sealed: this is what it says.
            Some(s) if s.starts_with(homeward_workflows::personal::SEALED_PREFIX) => {
                Some(self.db.opened(&s, &self.plan.stream_id(), field).await)
            }
            other => other,
        }
    }
}

fn start_travel(override_reason: Option<&str>) -> PlanCommand {
    PlanCommand::StartStep {
        step: key("travel"),
        override_reason: override_reason.map(str::to_owned),
    }
}

fn depart(case: &Case, override_reason: Option<&str>) -> PlanCommand {
    PlanCommand::ConfirmDeparture {
        // The command is decided an hour later (see `Case::refuses`): this is the past by then.
        departed_at: case.clock.now(),
        override_reason: override_reason.map(str::to_owned),
    }
}

const NO_ORIGIN_CONTACT: PlanError = PlanError::TravelNotReady {
    missing: "an origin-country contact is designated",
};
const NO_TRAVEL_DOCUMENT: PlanError = PlanError::TravelNotReady {
    missing: "the travel document is issued",
};

// ---------------------------------------------------------------------------------------------
// Travel readiness
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn travel_cannot_start_before_an_origin_contact_is_designated() {
    let case = Case::travel_ready_without_an_origin_contact().await;
    case.refuses(start_travel(None), NO_ORIGIN_CONTACT).await;
}

#[tokio::test]
async fn travel_cannot_start_before_the_travel_document_is_issued() {
    let case = Case::travel_ready_without_a_travel_document().await;
    case.refuses(start_travel(None), NO_TRAVEL_DOCUMENT).await;
}

#[tokio::test]
async fn departure_cannot_be_confirmed_before_an_origin_contact_is_designated() {
    let case = Case::active().await;
    case.passport_issued().await;
    case.refuses(depart(&case, None), NO_ORIGIN_CONTACT).await;
}

#[tokio::test]
async fn departure_cannot_be_confirmed_before_the_travel_document_is_issued() {
    let case = Case::active().await;
    case.origin_contact_designated()
        .await
        .document(DocumentStatus::SubmittedToAuthority)
        .await;
    case.refuses(depart(&case, None), NO_TRAVEL_DOCUMENT).await;
}

#[tokio::test]
async fn travel_starts_early_with_an_override_reason_which_is_stored_in_the_event() {
    let case = Case::travel_ready_without_an_origin_contact().await;
    let events_before = case.db.count("SELECT count(*) FROM events").await;
    case.run(start_travel(Some(
        "  Contact confirmed by phone by the partner NGO ",
    )))
    .await;
    assert_eq!(
        case.db.count("SELECT count(*) FROM events").await,
        events_before + 1
    );
    assert_eq!(
        case.last_payload_field("step_started", "step")
            .await
            .as_deref(),
        Some("travel")
    );
    assert_eq!(
        case.last_payload_field("step_started", "override_reason")
            .await
            .as_deref(),
        Some("Contact confirmed by phone by the partner NGO")
    );
    case.assert_step_status("travel", "in_progress").await;

    // Without the document too: departure with a reason is accepted and the reason stored.
    let case = Case::travel_ready_without_a_travel_document().await;
    case.run(depart(&case, Some("Laissez-passer issued at the border")))
        .await;
    assert_eq!(
        case.last_payload_field("departure_confirmed", "override_reason")
            .await
            .as_deref(),
        Some("Laissez-passer issued at the border")
    );
    let status: String = sqlx::query_scalar("SELECT status FROM plan_view WHERE plan_id = $1")
        .bind(case.plan.0)
        .fetch_one(case.db.pool())
        .await
        .unwrap();
    assert_eq!(status, "travelling");
}

// ---------------------------------------------------------------------------------------------
// Lifecycle
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn nothing_changes_on_a_closed_plan() {
    let case = Case::active().await;
    case.run(PlanCommand::AssignStep {
        step: key("passport"),
        assignee: Some(case.worker),
        candidate_group: None,
    })
    .await
    .run(PlanCommand::ClosePlan {
        reason: CloseReason::SupportEnded,
    })
    .await;
    assert_eq!(case.db.plan_timer_count(case.plan).await, 0);
    for command in [
        PlanCommand::StartStep {
            step: key("passport"),
            override_reason: None,
        },
        PlanCommand::SetGoals { goals: vec![] },
        PlanCommand::RecordConsent {
            purpose: ConsentPurpose::FamilyContact,
        },
        PlanCommand::ClosePlan {
            reason: CloseReason::Other,
        },
    ] {
        case.refuses(command, PlanError::Closed).await;
    }
}

#[tokio::test]
async fn a_follow_up_cannot_be_recorded_before_arrival() {
    let case = Case::active().await;
    let visited_on = start_time().date_naive();
    case.refuses(
        PlanCommand::RecordFollowUp {
            step: key("follow_up_1"),
            visited_on,
            wellbeing: Wellbeing::Good,
            concerns: vec![],
        },
        PlanError::FollowUpBeforeArrival,
    )
    .await;
}

#[tokio::test]
async fn a_suspended_plan_refuses_step_changes_and_has_no_timers_left() {
    let case = Case::active().await;
    let liaison = register_party(
        &case.handler,
        PartyRole::GovernmentLiaison,
        "liaison@example.org",
    )
    .await;
    case.run(PlanCommand::AssignStep {
        step: key("passport"),
        assignee: Some(liaison),
        candidate_group: None,
    })
    .await;
    assert!(
        case.db.plan_timer_count(case.plan).await > 0,
        "the assigned step has reminders armed"
    );
    case.run(PlanCommand::WithdrawConsent {
        purpose: ConsentPurpose::Return,
    })
    .await;
    assert_eq!(case.db.plan_timer_count(case.plan).await, 0);
    let suspended: bool = sqlx::query_scalar("SELECT suspended FROM plan_view WHERE plan_id = $1")
        .bind(case.plan.0)
        .fetch_one(case.db.pool())
        .await
        .unwrap();
    assert!(suspended);
    for command in [
        PlanCommand::StartStep {
            step: key("passport"),
            override_reason: None,
        },
        PlanCommand::AssignStep {
            step: key("medical_check"),
            assignee: Some(liaison),
            candidate_group: None,
        },
        PlanCommand::CompleteStep {
            step: key("medical_check"),
        },
        PlanCommand::PrioritiseStep {
            step: key("passport"),
            priority: Priority::Urgent,
        },
    ] {
        case.refuses(command, PlanError::Suspended).await;
    }
    assert_eq!(case.db.plan_timer_count(case.plan).await, 0);
}

// ---------------------------------------------------------------------------------------------
// Due dates, dependencies, text
// ---------------------------------------------------------------------------------------------

fn at_local(y: i32, m: u32, d: u32, h: u32, zone: &str) -> DueRule {
    DueRule::At {
        local: NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(h, 0, 0))
            .unwrap(),
        time_zone: zone.to_owned(),
    }
}

fn counselling(title: &str, due: Option<DueRule>) -> PlanCommand {
    PlanCommand::AddStep(Box::new(NewStep {
        key: key("counselling"),
        kind: StepKind::Medical,
        title: title.to_owned(),
        assignee: None,
        candidate_group: None,
        priority: Priority::Normal,
        due,
        follow_up_on: None,
        depends_on: vec![],
        reminder_policy: None,
    }))
}

#[tokio::test]
async fn a_due_date_cannot_lie_before_the_plan_was_opened() {
    let case = Case::opened().await;
    // Noon in Paris on 28 February 2026 is 11:00 UTC, the day before the plan was opened.
    let before_opening = at_local(2026, 2, 28, 12, "Europe/Paris");
    let expected = PlanError::DueBeforeOpened {
        due_at: Utc.with_ymd_and_hms(2026, 2, 28, 11, 0, 0).unwrap(),
        opened_at: start_time(),
    };
    case.refuses(
        PlanCommand::RescheduleStep {
            step: key("passport"),
            due: Some(before_opening.clone()),
            follow_up_on: None,
        },
        expected.clone(),
    )
    .await;
    case.refuses(counselling("Counselling", Some(before_opening)), expected)
        .await;
}

#[tokio::test]
async fn a_due_date_in_an_unknown_time_zone_is_refused() {
    let case = Case::opened().await;
    case.refuses(
        PlanCommand::RescheduleStep {
            step: key("passport"),
            due: Some(at_local(2026, 4, 1, 10, "Mars/Olympus")),
            follow_up_on: None,
        },
        PlanError::Text(TextError::InvalidTimeZone("Mars/Olympus".to_owned())),
    )
    .await;
}

#[tokio::test]
async fn a_dependency_change_that_would_close_a_cycle_is_refused() {
    let case = Case::opened().await;
    // Travel waits for the origin contact; the origin contact cannot wait for travel.
    case.refuses(
        PlanCommand::ChangeDependencies {
            step: key("origin_contact"),
            depends_on: vec![key("travel")],
        },
        PlanError::DependencyCycle(key("origin_contact")),
    )
    .await;
}

#[tokio::test]
async fn a_step_title_over_two_hundred_characters_is_refused() {
    let case = Case::opened().await;
    case.refuses(
        counselling(&"x".repeat(201), None),
        PlanError::Text(TextError::TooLong {
            field: "title",
            len: 201,
            max: 200,
        }),
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Parties
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_party_with_an_invalid_email_time_zone_or_language_is_not_registered() {
    let db = TestDb::new().await;
    let handler = db.handler(Arc::new(FixedClock::new(start_time())));
    let valid = party_details(PartyRole::PartnerContact, "partner@example.org");
    let cases = [
        (
            party_details(PartyRole::PartnerContact, "partner at example.org"),
            TextError::InvalidEmail("partner at example.org".to_owned()),
        ),
        (
            PartyDetails {
                time_zone: "Mars/Olympus".to_owned(),
                ..valid.clone()
            },
            TextError::InvalidTimeZone("Mars/Olympus".to_owned()),
        ),
        (
            PartyDetails {
                language: "french".to_owned(),
                ..valid.clone()
            },
            TextError::InvalidLanguage("french".to_owned()),
        ),
    ];
    for (details, expected) in cases {
        let party = PartyId::new();
        let outcome = handler
            .handle::<Party>(
                &party.stream_id(),
                &PartyCommand::Register {
                    party_id: party,
                    details: details.clone(),
                },
                CommandMeta::new(party),
            )
            .await;
        match outcome {
            Err(CommandError::Rejected(actual)) => {
                assert_eq!(actual, PartyError::Text(expected), "{details:?}")
            }
            other => panic!("{details:?}: expected a refusal, got {other:?}"),
        }
        assert_eq!(db.count("SELECT count(*) FROM events").await, 0);
        assert_eq!(db.count("SELECT count(*) FROM party_view").await, 0);
    }
    // The same details with the fields put right are registered.
    register_party(&handler, PartyRole::PartnerContact, "partner@example.org").await;
    assert_eq!(db.count("SELECT count(*) FROM party_view").await, 1);
}
