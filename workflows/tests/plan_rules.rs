//! The rules of a return plan, as given/when/then scenarios: every command accepted at least
//! once, and every rule refused with its typed error (a refused command records nothing).

mod support;

use std::collections::BTreeSet;

use homeward_workflows::plan::{
    CloseReason, ConcernArea, ConsentPurpose, DocumentStatus, DueRule, FollowUpOutcome, Goal,
    Milestone, NewStep, PlanCommand, PlanError, PlanEvent, PlanOpened, PlanStatus, Priority,
    ReminderKind, ReminderPolicy, StepDefinition, StepKind, StepStatus, TemplateRef, Wellbeing,
};
use homeward_workflows::text::TextError;
use homeward_workflows::{OrganisationId, PartyId};
use support::*;

use PlanCommand as C;
use PlanEvent as E;

// ---------------------------------------------------------------------------------------------
// Small builders
// ---------------------------------------------------------------------------------------------

fn start(step: &str) -> PlanCommand {
    C::StartStep {
        step: key(step),
        override_reason: None,
    }
}

fn start_overriding(step: &str, reason: &str) -> PlanCommand {
    C::StartStep {
        step: key(step),
        override_reason: Some(reason.to_owned()),
    }
}

fn complete(step: &str) -> PlanCommand {
    C::CompleteStep { step: key(step) }
}

fn new_step(k: &str, kind: StepKind) -> NewStep {
    NewStep {
        key: key(k),
        kind,
        title: "Trauma counselling sessions".to_owned(),
        assignee: None,
        candidate_group: None,
        priority: Priority::Normal,
        due: None,
        follow_up_on: None,
        depends_on: Vec::new(),
        reminder_policy: None,
    }
}

fn add(step: NewStep) -> PlanCommand {
    C::AddStep(Box::new(step))
}

fn due_at_local(local_time: chrono::NaiveDateTime, zone: &str) -> DueRule {
    DueRule::At {
        local: local_time,
        time_zone: zone.to_owned(),
    }
}

fn open_with(organisation: OrganisationId, offsets: Option<Vec<u32>>) -> PlanCommand {
    C::OpenPlan {
        plan_id: PLAN,
        person: PERSON,
        template: Box::new(standard_template()),
        case_worker: CASE_WORKER,
        organisation,
        origin_country: country(ORIGIN),
        follow_up_offsets_days: offsets,
    }
}

fn status_of(plan: &homeward_workflows::plan::Plan, step: &str) -> StepStatus {
    plan.step(&key(step))
        .unwrap_or_else(|| panic!("no step {step}"))
        .status
        .clone()
}

fn after_opening(days: u32) -> Option<DueRule> {
    Some(DueRule::After {
        milestone: Milestone::PlanOpened,
        days,
    })
}

fn after_arrival(days: u32) -> Option<DueRule> {
    Some(DueRule::After {
        milestone: Milestone::Arrival,
        days,
    })
}

#[allow(clippy::too_many_arguments)]
fn definition(
    k: &str,
    kind: StepKind,
    title: &str,
    priority: Priority,
    due: Option<DueRule>,
    depends_on: &[&str],
    group: Option<&str>,
) -> StepDefinition {
    StepDefinition {
        key: key(k),
        kind,
        title: title.to_owned().into(),
        assignee: None,
        candidate_group: group.map(str::to_owned),
        priority,
        due,
        follow_up_on: None,
        depends_on: depends_on.iter().map(|d| key(d)).collect(),
        reminder_policy: ReminderPolicy::default(),
    }
}

/// The steps of `standard-avr` v1, written out: a published template version must never change.
fn standard_avr_v1_steps() -> Vec<StepDefinition> {
    use Priority::{High, Normal};
    use StepKind as K;
    let mut steps = vec![
        definition(
            "origin_contact",
            K::OriginContact,
            "Designate a contact person in the community of origin",
            High,
            after_opening(21),
            &[],
            Some("partner"),
        ),
        definition(
            "passport",
            K::TravelDocument,
            "Obtain a passport or laissez-passer",
            High,
            after_opening(45),
            &[],
            Some("liaison"),
        ),
        definition(
            "legal_clearance",
            K::Legal,
            "Clear pending legal matters (residence, testimony, compensation claims)",
            Normal,
            after_opening(45),
            &[],
            Some("liaison"),
        ),
        definition(
            "medical_check",
            K::Medical,
            "Medical check and fitness to travel",
            Normal,
            after_opening(40),
            &[],
            None,
        ),
        definition(
            "family_mediation",
            K::FamilyMediation,
            "Family mediation (only with the survivor's consent to family contact)",
            Normal,
            after_opening(50),
            &["origin_contact"],
            Some("partner"),
        ),
        definition(
            "travel",
            K::Travel,
            "Travel to the country of origin",
            High,
            after_opening(60),
            &["origin_contact", "passport", "medical_check"],
            None,
        ),
        definition(
            "reintegration_plan",
            K::ReintegrationSupport,
            "Agree the reintegration plan (training, business, housing, schooling)",
            Normal,
            after_arrival(30),
            &["travel"],
            Some("partner"),
        ),
    ];
    for (n, d) in [(1, 14), (2, 90), (3, 180), (4, 365)] {
        steps.push(definition(
            &format!("follow_up_{n}"),
            K::FollowUp,
            &format!("Follow-up visit {n} ({d} days after return)"),
            Normal,
            after_arrival(d),
            &["travel"],
            Some("partner"),
        ));
    }
    steps
}

// ---------------------------------------------------------------------------------------------
// Opening a plan
// ---------------------------------------------------------------------------------------------

#[test]
fn opening_a_plan_copies_the_template_steps_and_its_follow_ups_into_the_plan() {
    let mut expected = vec![E::PlanOpened(PlanOpened {
        plan_id: PLAN,
        person: PERSON,
        template: TemplateRef {
            name: "standard-avr".to_owned(),
            version: 1,
        },
        case_worker: CASE_WORKER,
        organisation: ORGANISATION,
        origin_country: country("NG"),
        opened_at: opened_at(),
    })];
    expected.extend(
        standard_avr_v1_steps()
            .into_iter()
            .map(|step| E::StepAdded { step }),
    );

    let plan = no_plan()
        .at(opened_at())
        .when(open_command())
        .then(expected);

    assert_eq!(plan.status, PlanStatus::Draft);
    assert_eq!(plan.version, 12);
    assert!(!plan.suspended);
    for ready in [
        "origin_contact",
        "passport",
        "legal_clearance",
        "medical_check",
    ] {
        assert_eq!(status_of(&plan, ready), StepStatus::Ready, "{ready}");
    }
    for pending in [
        "family_mediation",
        "travel",
        "reintegration_plan",
        "follow_up_1",
    ] {
        assert_eq!(status_of(&plan, pending), StepStatus::Pending, "{pending}");
    }
    let origin_contact = plan.step(&key("origin_contact")).expect("origin_contact");
    assert_eq!(origin_contact.due_at, Some(opened_at() + days(21)));
    let follow_up = plan.step(&key("follow_up_1")).expect("follow_up_1");
    assert_eq!(
        follow_up.due_at, None,
        "relative to an arrival that has not happened"
    );
    let passport = plan.step(&key("passport")).expect("passport");
    assert_eq!(passport.document_status, Some(DocumentStatus::Requested));
}

#[test]
fn a_plan_opened_with_the_programmes_own_offsets_gets_those_follow_ups_instead() {
    let (events, plan) = no_plan()
        .when(open_with(ORGANISATION, Some(vec![7, 30])))
        .then_accepted();

    assert_eq!(events.len(), 1 + 7 + 2);
    let follow_ups: Vec<(String, Option<DueRule>, String)> = plan
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::FollowUp)
        .map(|s| {
            (
                s.key.to_string(),
                s.due.clone(),
                s.title.stored().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        follow_ups,
        vec![
            (
                "follow_up_1".to_owned(),
                after_arrival(7),
                "Follow-up visit 1 (7 days after return)".to_owned()
            ),
            (
                "follow_up_2".to_owned(),
                after_arrival(30),
                "Follow-up visit 2 (30 days after return)".to_owned()
            ),
        ]
    );
}

#[test]
fn a_plan_cannot_be_opened_twice() {
    given(Story::opened().events())
        .when(open_command())
        .then_error(PlanError::AlreadyOpened);
}

#[test]
fn a_follow_up_zero_days_after_return_is_refused() {
    no_plan()
        .when(open_with(ORGANISATION, Some(vec![14, 0])))
        .then_error(PlanError::OutOfRange {
            field: "follow-up offset (days)",
            value: 0,
            min: 1,
            max: 3650,
        });
}

#[test]
fn more_than_twenty_four_follow_ups_are_refused() {
    no_plan()
        .when(open_with(ORGANISATION, Some((1..=25).collect())))
        .then_error(PlanError::TooMany {
            field: "follow-up offsets",
            len: 25,
            max: 24,
        });
}

#[test]
fn commands_on_a_plan_that_was_never_opened_are_refused() {
    no_plan()
        .when(C::RecordConsent {
            purpose: ConsentPurpose::Return,
        })
        .then_error(PlanError::NotOpened);
}

#[test]
fn commands_naming_a_step_that_is_not_in_the_plan_are_refused() {
    let story = Story::opened().consented();
    for command in [
        start("ghost"),
        complete("ghost"),
        C::AssignStep {
            step: key("ghost"),
            assignee: Some(PARTNER),
            candidate_group: None,
        },
        C::RecordReminderSent {
            step: key("ghost"),
            kind: ReminderKind::OnDue,
            fire_at: opened_at(),
            recipient: PARTNER,
        },
    ] {
        given(story.events())
            .when(command)
            .then_error(PlanError::UnknownStep(key("ghost")));
    }
}

// ---------------------------------------------------------------------------------------------
// Goals and personalisation
// ---------------------------------------------------------------------------------------------

#[test]
fn goals_are_set_with_their_aims_trimmed() {
    let plan = given(Story::opened().events())
        .when(C::SetGoals {
            goals: vec![
                Goal {
                    area: ConcernArea::Income,
                    aim: "  Open a tailoring workshop  ".to_owned().into(),
                },
                Goal {
                    area: ConcernArea::Housing,
                    aim: "Rent a room near her sister".to_owned().into(),
                },
            ],
        })
        .then([E::GoalsSet {
            goals: vec![
                Goal {
                    area: ConcernArea::Income,
                    aim: "Open a tailoring workshop".to_owned().into(),
                },
                Goal {
                    area: ConcernArea::Housing,
                    aim: "Rent a room near her sister".to_owned().into(),
                },
            ],
        }]);
    assert_eq!(plan.goals.len(), 2);
    assert_eq!(plan.goals[0].aim.stored(), "Open a tailoring workshop");
}

#[test]
fn more_than_twenty_goals_are_refused() {
    let goal = Goal {
        area: ConcernArea::Education,
        aim: "Finish school".to_owned().into(),
    };
    given(Story::opened().events())
        .when(C::SetGoals {
            goals: vec![goal; 21],
        })
        .then_error(PlanError::TooMany {
            field: "goals",
            len: 21,
            max: 20,
        });
}

#[test]
fn a_goal_without_an_aim_is_refused() {
    given(Story::opened().events())
        .when(C::SetGoals {
            goals: vec![Goal {
                area: ConcernArea::Health,
                aim: "   ".to_owned().into(),
            }],
        })
        .then_error(PlanError::Text(TextError::Empty { field: "goal aim" }));
}

#[test]
fn a_step_can_be_added_to_a_running_plan_with_the_default_reminder_policy() {
    let mut step = new_step("counselling", StepKind::Medical);
    step.title = "  Trauma counselling sessions ".to_owned();
    step.assignee = Some(PARTNER);
    step.candidate_group = Some("partner".to_owned());
    step.priority = Priority::High;
    // 10:00 in Paris in February is 09:00 UTC.
    step.due = Some(due_at_local(local(2026, 2, 16, 10, 0), "Europe/Paris"));
    step.depends_on = vec![key("medical_check"), key("medical_check")];

    let plan = given(Story::opened().consented().events())
        .when(add(step))
        .then([E::StepAdded {
            step: StepDefinition {
                key: key("counselling"),
                kind: StepKind::Medical,
                title: "Trauma counselling sessions".to_owned().into(),
                assignee: Some(PARTNER),
                candidate_group: Some("partner".to_owned()),
                priority: Priority::High,
                due: Some(due_at_local(local(2026, 2, 16, 10, 0), "Europe/Paris")),
                follow_up_on: None,
                depends_on: vec![key("medical_check")],
                reminder_policy: ReminderPolicy::default(),
            },
        }]);

    let added = plan.step(&key("counselling")).expect("the new step");
    assert_eq!(
        added.status,
        StepStatus::Pending,
        "waits for the medical check"
    );
    assert_eq!(added.due_at, Some(utc(2026, 2, 16, 9, 0)));
    assert_eq!(
        plan.steps.last().map(|s| s.key.as_str()),
        Some("counselling")
    );
}

#[test]
fn a_step_title_over_two_hundred_characters_is_refused() {
    let mut step = new_step("counselling", StepKind::Medical);
    step.title = "t".repeat(201);
    given(Story::opened().events())
        .when(add(step))
        .then_error(PlanError::Text(TextError::TooLong {
            field: "title",
            len: 201,
            max: 200,
        }));
}

#[test]
fn a_step_title_of_exactly_two_hundred_characters_is_accepted() {
    let mut step = new_step("counselling", StepKind::Medical);
    step.title = "t".repeat(200);
    let plan = given(Story::opened().events())
        .when(add(step))
        .then_accepted()
        .1;
    assert_eq!(
        plan.step(&key("counselling"))
            .map(|s| s.title.stored().chars().count()),
        Some(200)
    );
}

#[test]
fn a_step_key_already_in_the_plan_is_refused() {
    given(Story::opened().events())
        .when(add(new_step("passport", StepKind::TravelDocument)))
        .then_error(PlanError::DuplicateStep(key("passport")));
}

#[test]
fn a_new_step_cannot_depend_on_a_step_that_is_not_in_the_plan() {
    let mut step = new_step("counselling", StepKind::Medical);
    step.depends_on = vec![key("medical_check"), key("visa")];
    given(Story::opened().events())
        .when(add(step))
        .then_error(PlanError::UnknownDependency {
            step: key("counselling"),
            missing: key("visa"),
        });
}

#[test]
fn a_new_step_cannot_depend_on_itself() {
    let mut step = new_step("counselling", StepKind::Medical);
    step.depends_on = vec![key("counselling")];
    given(Story::opened().events())
        .when(add(step))
        .then_error(PlanError::DependencyCycle(key("counselling")));
}

#[test]
fn a_due_date_before_the_plan_was_opened_is_refused() {
    let mut step = new_step("counselling", StepKind::Medical);
    // Noon in Paris on 1 January is 11:00 UTC, four days before the plan was opened.
    step.due = Some(due_at_local(local(2026, 1, 1, 12, 0), "Europe/Paris"));
    given(Story::opened().events())
        .when(add(step))
        .then_error(PlanError::DueBeforeOpened {
            due_at: utc(2026, 1, 1, 11, 0),
            opened_at: opened_at(),
        });
}

#[test]
fn a_due_time_that_does_not_exist_in_a_daylight_saving_gap_is_refused() {
    // Clocks in Paris jump from 02:00 to 03:00 on 29 March 2026.
    let mut step = new_step("counselling", StepKind::Medical);
    step.due = Some(due_at_local(local(2026, 3, 29, 2, 30), "Europe/Paris"));
    given(Story::opened().events())
        .when(add(step))
        .then_error(PlanError::NonexistentLocalTime {
            local: "2026-03-29 02:30:00".to_owned(),
            time_zone: "Europe/Paris".to_owned(),
        });
}

#[test]
fn a_due_time_in_an_unknown_time_zone_is_refused() {
    let mut step = new_step("counselling", StepKind::Medical);
    step.due = Some(due_at_local(local(2026, 2, 16, 10, 0), "Mars/Olympus"));
    given(Story::opened().events())
        .when(add(step))
        .then_error(PlanError::Text(TextError::InvalidTimeZone(
            "Mars/Olympus".to_owned(),
        )));
}

#[test]
fn an_ambiguous_local_time_in_a_daylight_saving_fold_resolves_to_the_earlier_instant() {
    // 02:30 happens twice in Paris on 25 October 2026: first at UTC+2 (00:30 UTC).
    let mut step = new_step("counselling", StepKind::Medical);
    step.due = Some(due_at_local(local(2026, 10, 25, 2, 30), "Europe/Paris"));
    let plan = given(Story::opened().events())
        .when(add(step))
        .then_accepted()
        .1;
    assert_eq!(
        plan.step(&key("counselling")).and_then(|s| s.due_at),
        Some(utc(2026, 10, 25, 0, 30))
    );
}

#[test]
fn a_due_time_zone_with_surrounding_whitespace_is_recorded_in_its_canonical_spelling() {
    let mut step = new_step("counselling", StepKind::Medical);
    step.due = Some(due_at_local(local(2026, 2, 16, 10, 0), "  Europe/Paris\n"));
    let (events, plan) = given(Story::opened().events())
        .when(add(step))
        .then_accepted();
    let [E::StepAdded { step: added }] = events.as_slice() else {
        panic!("one StepAdded, got {events:?}");
    };
    assert_eq!(
        added.due,
        Some(due_at_local(local(2026, 2, 16, 10, 0), "Europe/Paris"))
    );
    // 10:00 in Paris in February is 09:00 UTC: the rule resolves when the event is folded.
    assert_eq!(
        plan.step(&key("counselling")).and_then(|s| s.due_at),
        Some(utc(2026, 2, 16, 9, 0))
    );
}

#[test]
fn a_rescheduled_due_time_zone_spelt_in_another_case_is_recorded_in_its_canonical_spelling() {
    let plan = given(Story::opened().events())
        .when(C::RescheduleStep {
            step: key("passport"),
            due: Some(due_at_local(local(2026, 2, 16, 10, 0), " africa/LAGOS ")),
            follow_up_on: None,
        })
        .then([E::StepRescheduled {
            step: key("passport"),
            due: Some(due_at_local(local(2026, 2, 16, 10, 0), "Africa/Lagos")),
            follow_up_on: None,
        }]);
    assert_eq!(
        plan.step(&key("passport")).and_then(|s| s.due_at),
        Some(utc(2026, 2, 16, 9, 0))
    );
}

#[test]
fn a_due_date_too_many_days_after_a_milestone_is_refused() {
    let mut step = new_step("counselling", StepKind::Medical);
    step.due = after_arrival(3651);
    given(Story::opened().events())
        .when(add(step))
        .then_error(PlanError::OutOfRange {
            field: "days after milestone",
            value: 3651,
            min: 0,
            max: 3650,
        });
}

#[test]
fn a_ready_step_nothing_depends_on_can_be_removed() {
    let plan = given(Story::opened().events())
        .when(C::RemoveStep {
            step: key("legal_clearance"),
            reason: " No legal matters pending ".to_owned(),
        })
        .then([E::StepRemoved {
            step: key("legal_clearance"),
            reason: "No legal matters pending".to_owned().into(),
        }]);
    assert!(plan.step(&key("legal_clearance")).is_none());
    assert_eq!(plan.steps.len(), 10);
}

#[test]
fn a_step_others_depend_on_cannot_be_removed() {
    given(Story::opened().events())
        .when(C::RemoveStep {
            step: key("passport"),
            reason: "Has a passport already".to_owned(),
        })
        .then_error(PlanError::HasDependents {
            step: key("passport"),
            dependent: key("travel"),
        });
}

#[test]
fn a_step_in_progress_cannot_be_removed() {
    given(
        Story::opened()
            .consented()
            .started("legal_clearance")
            .events(),
    )
    .when(C::RemoveStep {
        step: key("legal_clearance"),
        reason: "Not needed".to_owned(),
    })
    .then_error(PlanError::CannotRemove {
        step: key("legal_clearance"),
        status: "IN_PROGRESS",
    });
}

#[test]
fn a_step_can_be_assigned_to_a_party_and_a_candidate_group() {
    let plan = given(Story::opened().events())
        .when(C::AssignStep {
            step: key("passport"),
            assignee: Some(LIAISON),
            candidate_group: Some(" liaison ".to_owned()),
        })
        .then([E::StepAssigned {
            step: key("passport"),
            assignee: Some(LIAISON),
            candidate_group: Some("liaison".to_owned()),
        }]);
    let passport = plan.step(&key("passport")).expect("passport");
    assert_eq!(passport.assignee, Some(LIAISON));
    assert_eq!(passport.candidate_group.as_deref(), Some("liaison"));
}

#[test]
fn a_finished_step_cannot_be_reassigned() {
    given(
        Story::opened()
            .consented()
            .origin_contact_designated()
            .events(),
    )
    .when(C::AssignStep {
        step: key("origin_contact"),
        assignee: Some(PARTNER),
        candidate_group: None,
    })
    .then_error(PlanError::InvalidStepTransition {
        step: key("origin_contact"),
        status: "DONE",
        action: "change",
    });
}

#[test]
fn rescheduling_a_step_gives_it_a_new_due_instant() {
    let plan = given(Story::opened().events())
        .when(C::RescheduleStep {
            step: key("passport"),
            due: Some(due_at_local(local(2026, 2, 20, 17, 0), "Africa/Lagos")),
            follow_up_on: Some(date(2026, 2, 13)),
        })
        .then([E::StepRescheduled {
            step: key("passport"),
            due: Some(due_at_local(local(2026, 2, 20, 17, 0), "Africa/Lagos")),
            follow_up_on: Some(date(2026, 2, 13)),
        }]);
    let passport = plan.step(&key("passport")).expect("passport");
    assert_eq!(
        passport.due_at,
        Some(utc(2026, 2, 20, 16, 0)),
        "Lagos is UTC+1"
    );
    assert_eq!(passport.follow_up_on, Some(date(2026, 2, 13)));
}

#[test]
fn rescheduling_without_a_due_rule_clears_the_due_date() {
    let plan = given(Story::opened().events())
        .when(C::RescheduleStep {
            step: key("passport"),
            due: None,
            follow_up_on: None,
        })
        .then([E::StepRescheduled {
            step: key("passport"),
            due: None,
            follow_up_on: None,
        }]);
    assert_eq!(plan.step(&key("passport")).and_then(|s| s.due_at), None);
}

#[test]
fn rescheduling_to_before_the_plan_was_opened_is_refused() {
    given(Story::opened().events())
        .when(C::RescheduleStep {
            step: key("passport"),
            due: Some(due_at_local(local(2025, 12, 31, 9, 0), "UTC")),
            follow_up_on: None,
        })
        .then_error(PlanError::DueBeforeOpened {
            due_at: utc(2025, 12, 31, 9, 0),
            opened_at: opened_at(),
        });
}

#[test]
fn rescheduling_into_a_daylight_saving_gap_is_refused() {
    // New York skips 02:00-03:00 on 8 March 2026.
    given(Story::opened().events())
        .when(C::RescheduleStep {
            step: key("passport"),
            due: Some(due_at_local(local(2026, 3, 8, 2, 15), "America/New_York")),
            follow_up_on: None,
        })
        .then_error(PlanError::NonexistentLocalTime {
            local: "2026-03-08 02:15:00".to_owned(),
            time_zone: "America/New_York".to_owned(),
        });
}

// ---------------------------------------------------------------------------------------------
// Dependencies
// ---------------------------------------------------------------------------------------------

#[test]
fn dependencies_can_be_replaced_and_a_ready_step_waits_again() {
    let plan = given(Story::opened().events())
        .when(C::ChangeDependencies {
            step: key("legal_clearance"),
            depends_on: vec![key("medical_check"), key("medical_check")],
        })
        .then([E::StepDependenciesChanged {
            step: key("legal_clearance"),
            depends_on: vec![key("medical_check")],
        }]);
    assert_eq!(status_of(&plan, "legal_clearance"), StepStatus::Pending);
}

#[test]
fn dropping_a_steps_dependencies_makes_it_ready() {
    let plan = given(Story::opened().events())
        .when(C::ChangeDependencies {
            step: key("travel"),
            depends_on: vec![],
        })
        .then([E::StepDependenciesChanged {
            step: key("travel"),
            depends_on: vec![],
        }]);
    assert_eq!(status_of(&plan, "travel"), StepStatus::Ready);
}

#[test]
fn a_dependency_change_that_would_close_a_cycle_is_refused() {
    // travel already waits for origin_contact.
    given(Story::opened().events())
        .when(C::ChangeDependencies {
            step: key("origin_contact"),
            depends_on: vec![key("travel")],
        })
        .then_error(PlanError::DependencyCycle(key("origin_contact")));
}

#[test]
fn a_long_dependency_cycle_is_refused() {
    // passport -> reintegration_plan -> travel -> passport
    let story = Story::opened();
    let command = C::ChangeDependencies {
        step: key("passport"),
        depends_on: vec![key("reintegration_plan")],
    };
    let outcome =
        homeward_workflows::Aggregate::decide(Some(&story.plan()), &command, &ctx_at(now()));
    match outcome {
        Err(PlanError::DependencyCycle(k)) => assert!(
            ["passport", "reintegration_plan", "travel"].contains(&k.as_str()),
            "{k} is not on the cycle"
        ),
        other => panic!("expected a dependency cycle, got {other:?}"),
    }
}

#[test]
fn a_step_cannot_be_made_to_wait_for_itself() {
    given(Story::opened().events())
        .when(C::ChangeDependencies {
            step: key("passport"),
            depends_on: vec![key("passport")],
        })
        .then_error(PlanError::DependencyCycle(key("passport")));
}

#[test]
fn a_step_cannot_be_made_to_wait_for_a_step_that_is_not_in_the_plan() {
    given(Story::opened().events())
        .when(C::ChangeDependencies {
            step: key("travel"),
            depends_on: vec![key("origin_contact"), key("visa")],
        })
        .then_error(PlanError::UnknownDependency {
            step: key("travel"),
            missing: key("visa"),
        });
}

#[test]
fn more_than_twenty_dependencies_are_refused() {
    given(Story::opened().events())
        .when(C::ChangeDependencies {
            step: key("travel"),
            depends_on: vec![key("passport"); 21],
        })
        .then_error(PlanError::TooMany {
            field: "dependencies",
            len: 21,
            max: 20,
        });
}

#[test]
fn the_dependencies_of_a_started_step_cannot_be_changed() {
    given(
        Story::opened()
            .consented()
            .started("legal_clearance")
            .events(),
    )
    .when(C::ChangeDependencies {
        step: key("legal_clearance"),
        depends_on: vec![key("passport")],
    })
    .then_error(PlanError::InvalidStepTransition {
        step: key("legal_clearance"),
        status: "IN_PROGRESS",
        action: "change the dependencies of",
    });
}

#[test]
fn dependents_become_ready_when_their_last_dependency_is_done() {
    let story = Story::opened()
        .consented()
        .origin_contact_designated()
        .passport_issued()
        .completed("passport");
    assert_eq!(status_of(&story.plan(), "travel"), StepStatus::Pending);

    let plan = given(story.events())
        .when(complete("medical_check"))
        .then([E::StepCompleted {
            step: key("medical_check"),
        }]);
    assert_eq!(status_of(&plan, "medical_check"), StepStatus::Done);
    assert_eq!(status_of(&plan, "travel"), StepStatus::Ready);
    assert_eq!(
        status_of(&plan, "follow_up_1"),
        StepStatus::Pending,
        "follow-ups wait for travel"
    );
}

#[test]
fn completing_the_origin_contact_makes_family_mediation_ready() {
    let plan = given(Story::opened().consented().events())
        .when(complete("origin_contact"))
        .then([E::StepCompleted {
            step: key("origin_contact"),
        }]);
    assert_eq!(status_of(&plan, "family_mediation"), StepStatus::Ready);
    assert_eq!(status_of(&plan, "travel"), StepStatus::Pending);
    assert!(plan.origin_contact_designated());
}

#[test]
fn a_cancelled_dependency_counts_as_done_for_its_dependents() {
    let plan = given(Story::opened().consented().events())
        .when(C::CancelStep {
            step: key("origin_contact"),
            reason: "  The designated contact moved away  ".to_owned(),
        })
        .then([E::StepCancelled {
            step: key("origin_contact"),
            reason: "The designated contact moved away".to_owned().into(),
        }]);
    assert_eq!(
        status_of(&plan, "origin_contact"),
        StepStatus::Cancelled {
            reason: "The designated contact moved away".to_owned().into()
        }
    );
    assert_eq!(status_of(&plan, "family_mediation"), StepStatus::Ready);
    assert!(
        !plan.origin_contact_designated(),
        "a cancelled contact step designates nobody"
    );
}

// ---------------------------------------------------------------------------------------------
// Priorities and reminder policies
// ---------------------------------------------------------------------------------------------

#[test]
fn a_step_can_be_made_urgent() {
    let plan = given(Story::opened().events())
        .when(C::PrioritiseStep {
            step: key("medical_check"),
            priority: Priority::Urgent,
        })
        .then([E::StepPrioritised {
            step: key("medical_check"),
            priority: Priority::Urgent,
        }]);
    assert_eq!(
        plan.step(&key("medical_check")).map(|s| s.priority),
        Some(Priority::Urgent)
    );
}

#[test]
fn a_steps_reminder_policy_can_be_changed() {
    let policy = ReminderPolicy {
        before_due_days: Some(7),
        on_due: false,
        overdue_every_days: Some(2),
        escalate_after_days: None,
    };
    let plan = given(Story::opened().events())
        .when(C::SetReminderPolicy {
            step: key("passport"),
            policy,
        })
        .then([E::ReminderPolicySet {
            step: key("passport"),
            policy,
        }]);
    assert_eq!(
        plan.step(&key("passport")).map(|s| s.reminder_policy),
        Some(policy)
    );
}

#[test]
fn an_overdue_reminder_every_zero_days_is_refused() {
    given(Story::opened().events())
        .when(C::SetReminderPolicy {
            step: key("passport"),
            policy: ReminderPolicy {
                overdue_every_days: Some(0),
                ..ReminderPolicy::default()
            },
        })
        .then_error(PlanError::OutOfRange {
            field: "overdue reminder interval (days)",
            value: 0,
            min: 1,
            max: 365,
        });
}

#[test]
fn an_escalation_zero_days_after_the_due_date_is_refused() {
    given(Story::opened().events())
        .when(C::SetReminderPolicy {
            step: key("passport"),
            policy: ReminderPolicy {
                escalate_after_days: Some(0),
                ..ReminderPolicy::default()
            },
        })
        .then_error(PlanError::OutOfRange {
            field: "escalation delay (days)",
            value: 0,
            min: 1,
            max: 365,
        });
    let mut step = new_step("counselling", StepKind::Medical);
    step.reminder_policy = Some(ReminderPolicy {
        escalate_after_days: Some(0),
        ..ReminderPolicy::default()
    });
    given(Story::opened().events())
        .when(add(step))
        .then_error(PlanError::OutOfRange {
            field: "escalation delay (days)",
            value: 0,
            min: 1,
            max: 365,
        });
    // One day is the shortest escalation delay.
    given(Story::opened().events())
        .when(C::SetReminderPolicy {
            step: key("passport"),
            policy: ReminderPolicy {
                escalate_after_days: Some(1),
                ..ReminderPolicy::default()
            },
        })
        .then_accepted();
}

#[test]
fn a_new_step_with_a_reminder_more_than_a_year_before_due_is_refused() {
    let mut step = new_step("counselling", StepKind::Medical);
    step.reminder_policy = Some(ReminderPolicy {
        before_due_days: Some(366),
        ..ReminderPolicy::default()
    });
    given(Story::opened().events())
        .when(add(step))
        .then_error(PlanError::OutOfRange {
            field: "days before due",
            value: 366,
            min: 1,
            max: 365,
        });
}

// ---------------------------------------------------------------------------------------------
// Starting, blocking, completing
// ---------------------------------------------------------------------------------------------

#[test]
fn a_ready_step_can_be_started_once_consent_is_recorded() {
    let plan = given(Story::opened().consented().events())
        .when(start("passport"))
        .then([E::StepStarted {
            step: key("passport"),
            override_reason: None,
        }]);
    assert_eq!(status_of(&plan, "passport"), StepStatus::InProgress);
}

#[test]
fn steps_cannot_start_while_the_plan_is_a_draft() {
    given(Story::opened().events())
        .when(start("passport"))
        .then_error(PlanError::ConsentRequired);
}

#[test]
fn steps_cannot_be_completed_while_the_plan_is_a_draft() {
    given(Story::opened().events())
        .when(complete("medical_check"))
        .then_error(PlanError::ConsentRequired);
}

#[test]
fn a_step_waiting_for_its_dependencies_cannot_start() {
    given(Story::opened().consented().events())
        .when(start("travel"))
        .then_error(PlanError::DependenciesNotDone(key("travel")));
}

#[test]
fn a_step_waiting_for_its_dependencies_cannot_be_completed() {
    given(Story::opened().consented().events())
        .when(complete("family_mediation"))
        .then_error(PlanError::DependenciesNotDone(key("family_mediation")));
}

#[test]
fn a_started_step_cannot_be_started_again() {
    given(Story::opened().consented().started("passport").events())
        .when(start("passport"))
        .then_error(PlanError::InvalidStepTransition {
            step: key("passport"),
            status: "IN_PROGRESS",
            action: "start",
        });
}

/// Travel is ready by its dependencies, but the origin contact was cancelled, not designated.
fn travel_ready_without_an_origin_contact() -> Story {
    let story = Story::opened()
        .consented()
        .cancelled("origin_contact", "The designated contact moved away")
        .passport_issued()
        .completed("passport")
        .medical_cleared();
    assert_eq!(status_of(&story.plan(), "travel"), StepStatus::Ready);
    story
}

/// Travel no longer waits for the passport, which is still with the authority.
fn travel_ready_without_a_travel_document() -> Story {
    let story = Story::opened()
        .consented()
        .origin_contact_designated()
        .medical_cleared()
        .document("passport", DocumentStatus::SubmittedToAuthority)
        .run(C::ChangeDependencies {
            step: key("travel"),
            depends_on: vec![key("origin_contact"), key("medical_check")],
        });
    assert_eq!(status_of(&story.plan(), "travel"), StepStatus::Ready);
    story
}

#[test]
fn travel_cannot_start_before_an_origin_contact_is_designated() {
    given(travel_ready_without_an_origin_contact().events())
        .when(start("travel"))
        .then_error(PlanError::TravelNotReady {
            missing: "an origin-country contact is designated",
        });
}

#[test]
fn travel_cannot_start_before_the_travel_document_is_issued() {
    given(travel_ready_without_a_travel_document().events())
        .when(start("travel"))
        .then_error(PlanError::TravelNotReady {
            missing: "the travel document is issued",
        });
}

#[test]
fn travel_can_start_without_an_origin_contact_with_an_override_reason_which_is_recorded() {
    let plan = given(travel_ready_without_an_origin_contact().events())
        .when(start_overriding(
            "travel",
            "  Contact confirmed by phone by the partner NGO  ",
        ))
        .then([E::StepStarted {
            step: key("travel"),
            override_reason: Some(
                "Contact confirmed by phone by the partner NGO"
                    .to_owned()
                    .into(),
            ),
        }]);
    let travel = plan.step(&key("travel")).expect("travel");
    assert_eq!(travel.status, StepStatus::InProgress);
    assert_eq!(
        travel.override_reason.as_ref().map(|r| r.stored()),
        Some("Contact confirmed by phone by the partner NGO")
    );
}

#[test]
fn travel_can_start_without_a_travel_document_with_an_override_reason_which_is_recorded() {
    given(travel_ready_without_a_travel_document().events())
        .when(start_overriding(
            "travel",
            "Laissez-passer issued at the border",
        ))
        .then([E::StepStarted {
            step: key("travel"),
            override_reason: Some("Laissez-passer issued at the border".to_owned().into()),
        }]);
}

#[test]
fn an_override_reason_is_not_recorded_when_travel_is_ready_anyway() {
    let plan = given(Story::opened().ready_for_travel().events())
        .when(start_overriding("travel", "Just in case"))
        .then([E::StepStarted {
            step: key("travel"),
            override_reason: None,
        }]);
    assert_eq!(
        plan.step(&key("travel"))
            .and_then(|s| s.override_reason.clone()),
        None
    );
}

#[test]
fn an_empty_override_reason_does_not_override_anything() {
    given(travel_ready_without_an_origin_contact().events())
        .when(start_overriding("travel", "   "))
        .then_error(PlanError::Text(TextError::Empty {
            field: "override reason",
        }));
}

#[test]
fn family_mediation_needs_consent_to_family_contact() {
    given(
        Story::opened()
            .consented()
            .origin_contact_designated()
            .events(),
    )
    .when(start("family_mediation"))
    .then_error(PlanError::FamilyContactConsentRequired);
}

#[test]
fn family_mediation_starts_once_family_contact_is_consented_to() {
    let story = Story::opened()
        .consented()
        .origin_contact_designated()
        .consented_to(ConsentPurpose::FamilyContact);
    given(story.events())
        .when(start("family_mediation"))
        .then([E::StepStarted {
            step: key("family_mediation"),
            override_reason: None,
        }]);
}

#[test]
fn family_mediation_cannot_be_completed_without_ever_starting_it_without_consent() {
    given(
        Story::opened()
            .consented()
            .origin_contact_designated()
            .events(),
    )
    .when(complete("family_mediation"))
    .then_error(PlanError::FamilyContactConsentRequired);
}

#[test]
fn a_started_step_that_is_blocked_resumes_in_progress_when_unblocked() {
    let story = Story::opened().consented().started("passport");
    let blocked = given(story.events())
        .when(C::BlockStep {
            step: key("passport"),
            reason: "Embassy closed during elections".to_owned(),
        })
        .then([E::StepBlocked {
            step: key("passport"),
            reason: "Embassy closed during elections".to_owned().into(),
        }]);
    assert_eq!(
        status_of(&blocked, "passport"),
        StepStatus::Blocked {
            reason: "Embassy closed during elections".to_owned().into(),
            was_started: true
        }
    );

    let story = story.run(C::BlockStep {
        step: key("passport"),
        reason: "Embassy closed during elections".to_owned(),
    });
    let plan = given(story.events())
        .when(C::UnblockStep {
            step: key("passport"),
        })
        .then([E::StepUnblocked {
            step: key("passport"),
        }]);
    assert_eq!(status_of(&plan, "passport"), StepStatus::InProgress);
}

#[test]
fn a_step_blocked_before_it_started_is_ready_again_when_unblocked() {
    let story = Story::opened().run(C::BlockStep {
        step: key("medical_check"),
        reason: "Waiting for an interpreter".to_owned(),
    });
    assert_eq!(
        status_of(&story.plan(), "medical_check"),
        StepStatus::Blocked {
            reason: "Waiting for an interpreter".to_owned().into(),
            was_started: false
        }
    );
    let plan = given(story.events())
        .when(C::UnblockStep {
            step: key("medical_check"),
        })
        .then([E::StepUnblocked {
            step: key("medical_check"),
        }]);
    assert_eq!(status_of(&plan, "medical_check"), StepStatus::Ready);
}

#[test]
fn a_blocked_step_cannot_be_started_or_completed() {
    let story = Story::opened().consented().run(C::BlockStep {
        step: key("medical_check"),
        reason: "Waiting for an interpreter".to_owned(),
    });
    given(story.events())
        .when(start("medical_check"))
        .then_error(PlanError::InvalidStepTransition {
            step: key("medical_check"),
            status: "BLOCKED",
            action: "start",
        });
    given(story.events())
        .when(complete("medical_check"))
        .then_error(PlanError::InvalidStepTransition {
            step: key("medical_check"),
            status: "BLOCKED",
            action: "complete",
        });
}

#[test]
fn a_step_that_is_not_blocked_cannot_be_unblocked() {
    given(Story::opened().events())
        .when(C::UnblockStep {
            step: key("passport"),
        })
        .then_error(PlanError::InvalidStepTransition {
            step: key("passport"),
            status: "READY",
            action: "unblock",
        });
}

#[test]
fn a_done_step_cannot_be_blocked() {
    given(Story::opened().consented().medical_cleared().events())
        .when(C::BlockStep {
            step: key("medical_check"),
            reason: "Too late".to_owned(),
        })
        .then_error(PlanError::InvalidStepTransition {
            step: key("medical_check"),
            status: "DONE",
            action: "block",
        });
}

#[test]
fn a_started_step_can_be_completed() {
    let plan = given(
        Story::opened()
            .consented()
            .started("legal_clearance")
            .events(),
    )
    .when(complete("legal_clearance"))
    .then([E::StepCompleted {
        step: key("legal_clearance"),
    }]);
    assert_eq!(status_of(&plan, "legal_clearance"), StepStatus::Done);
}

#[test]
fn a_follow_up_step_cannot_be_completed_without_its_outcome() {
    given(Story::opened().returned().events())
        .when(complete("follow_up_1"))
        .then_error(PlanError::OutcomeRequired(key("follow_up_1")));
}

#[test]
fn travel_cannot_be_completed_before_arrival() {
    given(
        Story::opened()
            .ready_for_travel()
            .started("travel")
            .departed()
            .events(),
    )
    .when(complete("travel"))
    .then_error(PlanError::WrongPlanStatus {
        actual: PlanStatus::Travelling,
        expected: "RETURNED: confirm the arrival to complete travel",
    });
}

#[test]
fn a_done_step_cannot_be_cancelled() {
    given(Story::opened().consented().medical_cleared().events())
        .when(C::CancelStep {
            step: key("medical_check"),
            reason: "Changed our mind".to_owned(),
        })
        .then_error(PlanError::InvalidStepTransition {
            step: key("medical_check"),
            status: "DONE",
            action: "change",
        });
}

#[test]
fn a_step_cannot_be_cancelled_without_a_reason() {
    given(Story::opened().events())
        .when(C::CancelStep {
            step: key("medical_check"),
            reason: String::new(),
        })
        .then_error(PlanError::Text(TextError::Empty { field: "reason" }));
}

// ---------------------------------------------------------------------------------------------
// Travel documents
// ---------------------------------------------------------------------------------------------

#[test]
fn the_travel_document_status_moves_forward() {
    let plan = given(Story::opened().events())
        .when(C::UpdateDocumentStatus {
            step: key("passport"),
            status: DocumentStatus::SubmittedToAuthority,
        })
        .then([E::DocumentStatusUpdated {
            step: key("passport"),
            status: DocumentStatus::SubmittedToAuthority,
        }]);
    assert_eq!(
        plan.step(&key("passport")).and_then(|s| s.document_status),
        Some(DocumentStatus::SubmittedToAuthority)
    );
    assert!(!plan.travel_document_issued());
}

#[test]
fn an_issued_document_counts_as_issued_before_its_step_is_done() {
    let plan = given(Story::opened().events())
        .when(C::UpdateDocumentStatus {
            step: key("passport"),
            status: DocumentStatus::Issued,
        })
        .then([E::DocumentStatusUpdated {
            step: key("passport"),
            status: DocumentStatus::Issued,
        }]);
    assert!(plan.travel_document_issued());
    assert_eq!(status_of(&plan, "passport"), StepStatus::Ready);
}

#[test]
fn the_travel_document_status_cannot_move_backwards() {
    let story = Story::opened().passport_issued();
    given(story.events())
        .when(C::UpdateDocumentStatus {
            step: key("passport"),
            status: DocumentStatus::SubmittedToAuthority,
        })
        .then_error(PlanError::DocumentStatusBackwards {
            current: DocumentStatus::Issued,
            requested: DocumentStatus::SubmittedToAuthority,
        });
    // The status it already has: said as such.
    given(story.events())
        .when(C::UpdateDocumentStatus {
            step: key("passport"),
            status: DocumentStatus::Issued,
        })
        .then_error(PlanError::DocumentStatusUnchanged {
            current: DocumentStatus::Issued,
        });
}

#[test]
fn a_new_passport_step_is_requested_already_and_the_refusal_says_what_comes_next() {
    let story = Story::opened();
    assert_eq!(
        story
            .plan()
            .step(&key("passport"))
            .expect("a passport step")
            .document_status,
        Some(DocumentStatus::Requested)
    );
    given(story.events())
        .when(C::UpdateDocumentStatus {
            step: key("passport"),
            status: DocumentStatus::Requested,
        })
        .then_error(PlanError::DocumentStatusUnchanged {
            current: DocumentStatus::Requested,
        });
    assert_eq!(
        PlanError::DocumentStatusUnchanged {
            current: DocumentStatus::Requested
        }
        .to_string(),
        "the document is already REQUESTED; set SUBMITTED_TO_AUTHORITY once it is submitted"
    );
}

#[test]
fn refusals_name_statuses_as_the_api_spells_them() {
    let messages = [
        PlanError::WrongPlanStatus {
            actual: PlanStatus::Active,
            expected: "TRAVELLING",
        }
        .to_string(),
        PlanError::DocumentStatusBackwards {
            current: DocumentStatus::Issued,
            requested: DocumentStatus::SubmittedToAuthority,
        }
        .to_string(),
        PlanError::NotADocumentStep {
            step: key("medical_check"),
            kind: homeward_workflows::plan::StepKind::Medical,
        }
        .to_string(),
    ];
    assert_eq!(
        messages[0],
        "the plan is ACTIVE; this needs it to be TRAVELLING"
    );
    assert!(
        messages[1].starts_with("the document is ISSUED already"),
        "{}",
        messages[1]
    );
    assert!(messages[1].ends_with("cannot go back to SUBMITTED_TO_AUTHORITY"));
    assert!(messages[2].contains("is a MEDICAL step"), "{}", messages[2]);
    for m in &messages {
        // No Rust spelling of an enum value (`Active`, `TravelDocument`).
        assert!(
            !m.contains("Active") && !m.contains("Issued") && !m.contains("Medical"),
            "{m}"
        );
    }
}

#[test]
fn document_status_applies_to_travel_document_steps_only() {
    given(Story::opened().events())
        .when(C::UpdateDocumentStatus {
            step: key("medical_check"),
            status: DocumentStatus::Issued,
        })
        .then_error(PlanError::NotADocumentStep {
            step: key("medical_check"),
            kind: StepKind::Medical,
        });
}

// ---------------------------------------------------------------------------------------------
// Consent
// ---------------------------------------------------------------------------------------------

#[test]
fn recording_consent_to_return_activates_a_draft_plan() {
    let plan = given(Story::opened().events())
        .by(CASE_WORKER)
        .when(C::RecordConsent {
            purpose: ConsentPurpose::Return,
        })
        .then([
            E::ConsentRecorded {
                purpose: ConsentPurpose::Return,
                at: now(),
                recorded_by: CASE_WORKER,
            },
            E::PlanActivated,
        ]);
    assert_eq!(plan.status, PlanStatus::Active);
    assert!(plan.has_consent(ConsentPurpose::Return));
    assert_eq!(
        plan.consent(ConsentPurpose::Return).map(|c| c.recorded_by),
        Some(CASE_WORKER)
    );
}

#[test]
fn other_consents_do_not_activate_a_draft_plan() {
    let plan = given(Story::opened().events())
        .when(C::RecordConsent {
            purpose: ConsentPurpose::FamilyContact,
        })
        .then([E::ConsentRecorded {
            purpose: ConsentPurpose::FamilyContact,
            at: now(),
            recorded_by: ACTOR,
        }]);
    assert_eq!(plan.status, PlanStatus::Draft);
}

#[test]
fn withdrawing_consent_to_return_suspends_the_plan() {
    let plan = given(Story::opened().consented().events())
        .when(C::WithdrawConsent {
            purpose: ConsentPurpose::Return,
        })
        .then([
            E::ConsentWithdrawn {
                purpose: ConsentPurpose::Return,
                at: now(),
                recorded_by: ACTOR,
            },
            E::PlanSuspended,
        ]);
    assert!(plan.suspended);
    assert_eq!(plan.status, PlanStatus::Active, "the stage is kept");
    assert!(!plan.has_consent(ConsentPurpose::Return));
}

#[test]
fn a_suspended_plan_refuses_work_until_consent_is_recorded_again() {
    let story = Story::opened()
        .consented()
        .started("passport")
        .withdrew(ConsentPurpose::Return);
    let refused = [
        start("medical_check"),
        complete("passport"),
        C::BlockStep {
            step: key("passport"),
            reason: "x".to_owned(),
        },
        C::AssignStep {
            step: key("passport"),
            assignee: Some(LIAISON),
            candidate_group: None,
        },
        C::UpdateDocumentStatus {
            step: key("passport"),
            status: DocumentStatus::Issued,
        },
        add(new_step("counselling", StepKind::Medical)),
        C::SetGoals { goals: vec![] },
        C::ConfirmDeparture {
            departed_at: now(),
            override_reason: Some("Emergency".to_owned()),
        },
        C::RecordReminderSent {
            step: key("passport"),
            kind: ReminderKind::OnDue,
            fire_at: opened_at() + days(45),
            recipient: LIAISON,
        },
    ];
    for command in refused {
        given(story.events())
            .when(command)
            .then_error(PlanError::Suspended);
    }
}

#[test]
fn recording_consent_to_return_again_resumes_a_suspended_plan() {
    let story = Story::opened().consented().withdrew(ConsentPurpose::Return);
    let plan = given(story.events())
        .when(C::RecordConsent {
            purpose: ConsentPurpose::Return,
        })
        .then([
            E::ConsentRecorded {
                purpose: ConsentPurpose::Return,
                at: now(),
                recorded_by: ACTOR,
            },
            E::PlanResumed,
        ]);
    assert!(!plan.suspended);
    assert_eq!(plan.status, PlanStatus::Active);

    let story = story.consented();
    given(story.events())
        .when(start("passport"))
        .then([E::StepStarted {
            step: key("passport"),
            override_reason: None,
        }]);
}

#[test]
fn a_returned_plan_resumes_where_it_was_suspended() {
    let story = Story::opened().returned().withdrew(ConsentPurpose::Return);
    let plan = given(story.events())
        .when(C::RecordConsent {
            purpose: ConsentPurpose::Return,
        })
        .then([
            E::ConsentRecorded {
                purpose: ConsentPurpose::Return,
                at: now(),
                recorded_by: ACTOR,
            },
            E::PlanResumed,
        ]);
    assert_eq!(plan.status, PlanStatus::Returned);
}

#[test]
fn other_consents_can_be_recorded_on_a_suspended_plan_without_resuming_it() {
    let story = Story::opened().consented().withdrew(ConsentPurpose::Return);
    let plan = given(story.events())
        .when(C::RecordConsent {
            purpose: ConsentPurpose::FamilyContact,
        })
        .then([E::ConsentRecorded {
            purpose: ConsentPurpose::FamilyContact,
            at: now(),
            recorded_by: ACTOR,
        }]);
    assert!(plan.suspended);
}

#[test]
fn a_suspended_plan_can_still_be_closed() {
    let story = Story::opened().consented().withdrew(ConsentPurpose::Return);
    let plan = given(story.events())
        .when(C::ClosePlan {
            reason: CloseReason::OptedOut,
        })
        .then([E::PlanClosed {
            reason: CloseReason::OptedOut,
            closed_at: now(),
        }]);
    assert_eq!(plan.status, PlanStatus::Closed);
}

#[test]
fn consent_already_given_cannot_be_recorded_again() {
    given(Story::opened().consented().events())
        .when(C::RecordConsent {
            purpose: ConsentPurpose::Return,
        })
        .then_error(PlanError::ConsentAlreadyGiven("RETURN"));
}

#[test]
fn consent_that_was_never_given_cannot_be_withdrawn() {
    given(Story::opened().consented().events())
        .when(C::WithdrawConsent {
            purpose: ConsentPurpose::FamilyContact,
        })
        .then_error(PlanError::ConsentNotGiven("FAMILY_CONTACT"));
}

#[test]
fn data_sharing_consent_is_recorded_for_each_partner_separately() {
    let story = Story::opened().consented_to(ConsentPurpose::DataSharing { partner: PARTNER });
    let plan = given(story.events())
        .when(C::RecordConsent {
            purpose: ConsentPurpose::DataSharing { partner: LIAISON },
        })
        .then([E::ConsentRecorded {
            purpose: ConsentPurpose::DataSharing { partner: LIAISON },
            at: now(),
            recorded_by: ACTOR,
        }]);
    assert!(plan.has_consent(ConsentPurpose::DataSharing { partner: PARTNER }));
    assert!(plan.has_consent(ConsentPurpose::DataSharing { partner: LIAISON }));
    given(story.events())
        .when(C::RecordConsent {
            purpose: ConsentPurpose::DataSharing { partner: PARTNER },
        })
        .then_error(PlanError::ConsentAlreadyGiven(
            "DATA_SHARING with this partner",
        ));
}

#[test]
fn withdrawing_data_sharing_consent_does_not_suspend_the_plan() {
    let story = Story::opened()
        .consented()
        .consented_to(ConsentPurpose::DataSharing { partner: PARTNER });
    let plan = given(story.events())
        .when(C::WithdrawConsent {
            purpose: ConsentPurpose::DataSharing { partner: PARTNER },
        })
        .then([E::ConsentWithdrawn {
            purpose: ConsentPurpose::DataSharing { partner: PARTNER },
            at: now(),
            recorded_by: ACTOR,
        }]);
    assert!(!plan.suspended);
    assert_eq!(
        plan.consent(ConsentPurpose::DataSharing { partner: PARTNER })
            .map(|c| c.given),
        Some(false)
    );
}

// ---------------------------------------------------------------------------------------------
// Departure and arrival
// ---------------------------------------------------------------------------------------------

#[test]
fn departure_is_confirmed_once_the_origin_contact_is_designated_and_the_document_issued() {
    // The passport step itself is still open: an issued document is enough.
    let story = Story::opened()
        .consented()
        .origin_contact_designated()
        .passport_issued();
    let departed_at = story.now() + days(2);
    let plan = given(story.events())
        .at(departed_at + chrono::Duration::hours(3))
        .when(C::ConfirmDeparture {
            departed_at,
            override_reason: None,
        })
        .then([E::DepartureConfirmed {
            departed_at,
            override_reason: None,
        }]);
    assert_eq!(plan.status, PlanStatus::Travelling);
    assert_eq!(plan.departed_at, Some(departed_at));
}

#[test]
fn departure_cannot_be_confirmed_before_an_origin_contact_is_designated() {
    given(Story::opened().consented().passport_issued().events())
        .when(C::ConfirmDeparture {
            departed_at: now(),
            override_reason: None,
        })
        .then_error(PlanError::TravelNotReady {
            missing: "an origin-country contact is designated",
        });
}

#[test]
fn departure_cannot_be_confirmed_before_the_travel_document_is_issued() {
    let story = Story::opened()
        .consented()
        .origin_contact_designated()
        .document("passport", DocumentStatus::SubmittedToAuthority);
    given(story.events())
        .when(C::ConfirmDeparture {
            departed_at: now(),
            override_reason: None,
        })
        .then_error(PlanError::TravelNotReady {
            missing: "the travel document is issued",
        });
}

#[test]
fn departure_can_be_confirmed_early_with_an_override_reason_which_is_recorded() {
    let plan = given(Story::opened().consented().events())
        .when(C::ConfirmDeparture {
            departed_at: now(),
            override_reason: Some("Emergency evacuation: the survivor is at risk".to_owned()),
        })
        .then([E::DepartureConfirmed {
            departed_at: now(),
            override_reason: Some(
                "Emergency evacuation: the survivor is at risk"
                    .to_owned()
                    .into(),
            ),
        }]);
    assert_eq!(plan.status, PlanStatus::Travelling);
}

#[test]
fn departure_needs_consent_to_return() {
    given(Story::opened().events())
        .when(C::ConfirmDeparture {
            departed_at: now(),
            override_reason: Some("Emergency".to_owned()),
        })
        .then_error(PlanError::ConsentRequired);
}

#[test]
fn departure_cannot_be_confirmed_in_the_future() {
    let story = Story::opened().ready_for_travel();
    given(story.events())
        .when(C::ConfirmDeparture {
            departed_at: now() + chrono::Duration::hours(1),
            override_reason: None,
        })
        .then_error(PlanError::InTheFuture("the departure time"));
    // A few minutes of clock skew are tolerated.
    given(story.events())
        .when(C::ConfirmDeparture {
            departed_at: now() + chrono::Duration::minutes(4),
            override_reason: None,
        })
        .then([E::DepartureConfirmed {
            departed_at: now() + chrono::Duration::minutes(4),
            override_reason: None,
        }]);
}

#[test]
fn departure_before_the_plan_was_opened_is_refused() {
    given(Story::opened().ready_for_travel().events())
        .when(C::ConfirmDeparture {
            departed_at: opened_at() - days(1),
            override_reason: None,
        })
        .then_error(PlanError::DepartureBeforeOpened {
            departed_at: opened_at() - days(1),
            opened_at: opened_at(),
        });
}

#[test]
fn a_departure_before_the_plan_was_opened_is_explained_as_a_departure_not_a_due_date() {
    let error = PlanError::DepartureBeforeOpened {
        departed_at: opened_at() - days(1),
        opened_at: opened_at(),
    };
    let message = error.to_string();
    assert!(message.starts_with("the departure time "), "{message}");
    assert!(!message.contains("due"), "{message}");
}

#[test]
fn departure_cannot_be_confirmed_twice() {
    given(Story::opened().ready_for_travel().departed().events())
        .when(C::ConfirmDeparture {
            departed_at: now(),
            override_reason: None,
        })
        .then_error(PlanError::WrongPlanStatus {
            actual: PlanStatus::Travelling,
            expected: "ACTIVE",
        });
}

#[test]
fn confirming_arrival_completes_travel_and_makes_the_follow_ups_ready() {
    let story = Story::opened()
        .ready_for_travel()
        .started("travel")
        .departed();
    let arrived_at = story.now() + chrono::Duration::hours(9);
    let plan = given(story.events())
        .when(C::ConfirmArrival { arrived_at })
        .then([
            E::ArrivalConfirmed { arrived_at },
            E::StepCompleted {
                step: key("travel"),
            },
        ]);
    assert_eq!(plan.status, PlanStatus::Returned);
    assert_eq!(plan.arrived_at, Some(arrived_at));
    for ready in [
        "reintegration_plan",
        "follow_up_1",
        "follow_up_2",
        "follow_up_3",
        "follow_up_4",
    ] {
        assert_eq!(status_of(&plan, ready), StepStatus::Ready, "{ready}");
    }
}

#[test]
fn relative_due_dates_resolve_when_arrival_is_confirmed() {
    let story = Story::opened()
        .ready_for_travel()
        .started("travel")
        .departed();
    let before = story.plan();
    for waiting in ["reintegration_plan", "follow_up_1", "follow_up_4"] {
        assert_eq!(before.step(&key(waiting)).and_then(|s| s.due_at), None);
    }
    let arrived_at = story.now() + chrono::Duration::hours(9);
    let plan = given(story.events())
        .when(C::ConfirmArrival { arrived_at })
        .then_accepted()
        .1;
    let due = |k: &str| plan.step(&key(k)).and_then(|s| s.due_at);
    assert_eq!(due("follow_up_1"), Some(arrived_at + days(14)));
    assert_eq!(due("follow_up_2"), Some(arrived_at + days(90)));
    assert_eq!(due("follow_up_4"), Some(arrived_at + days(365)));
    assert_eq!(due("reintegration_plan"), Some(arrived_at + days(30)));
    assert_eq!(
        due("passport"),
        Some(opened_at() + days(45)),
        "unchanged: relative to the opening"
    );
    assert_eq!(plan.next_due_at(), Some(arrived_at + days(14)));
}

#[test]
fn a_step_due_after_arrival_added_after_the_return_is_resolved_at_once() {
    let story = Story::opened().returned();
    let arrived_at = story.plan().arrived_at.expect("arrived");
    let mut step = new_step("counselling", StepKind::Medical);
    step.due = after_arrival(10);
    let plan = given(story.events()).when(add(step)).then_accepted().1;
    assert_eq!(
        plan.step(&key("counselling")).and_then(|s| s.due_at),
        Some(arrived_at + days(10))
    );
}

#[test]
fn arrival_cannot_be_before_departure() {
    let story = Story::opened().ready_for_travel().departed();
    let departed_at = story.plan().departed_at.expect("departed");
    given(story.events())
        .when(C::ConfirmArrival {
            arrived_at: departed_at - chrono::Duration::hours(1),
        })
        .then_error(PlanError::ArrivalBeforeDeparture {
            arrived_at: departed_at - chrono::Duration::hours(1),
            departed_at,
        });
}

#[test]
fn arrival_needs_a_confirmed_departure() {
    given(Story::opened().ready_for_travel().events())
        .when(C::ConfirmArrival { arrived_at: now() })
        .then_error(PlanError::WrongPlanStatus {
            actual: PlanStatus::Active,
            expected: "TRAVELLING",
        });
}

#[test]
fn arrival_cannot_be_confirmed_in_the_future() {
    given(Story::opened().ready_for_travel().departed().events())
        .when(C::ConfirmArrival {
            arrived_at: now() + days(1),
        })
        .then_error(PlanError::InTheFuture("the arrival time"));
}

// ---------------------------------------------------------------------------------------------
// Follow-up
// ---------------------------------------------------------------------------------------------

fn follow_up(step: &str, visited_on: chrono::NaiveDate, concerns: Vec<ConcernArea>) -> PlanCommand {
    C::RecordFollowUp {
        step: key(step),
        visited_on,
        wellbeing: Wellbeing::Fair,
        concerns,
    }
}

#[test]
fn recording_the_first_follow_up_completes_it_and_starts_monitoring() {
    let story = Story::opened().returned();
    let visited_on = story.plan().arrived_at.expect("arrived").date_naive() + days(14);
    let plan = given(story.events())
        .when(follow_up(
            "follow_up_1",
            visited_on,
            vec![
                ConcernArea::Stigma,
                ConcernArea::Income,
                ConcernArea::Stigma,
            ],
        ))
        .then([
            E::FollowUpRecorded {
                step: key("follow_up_1"),
                outcome: FollowUpOutcome {
                    visited_on,
                    wellbeing: Wellbeing::Fair.into(),
                    concerns: vec![ConcernArea::Income, ConcernArea::Stigma].into(),
                },
            },
            E::StepCompleted {
                step: key("follow_up_1"),
            },
            E::MonitoringStarted,
        ]);
    assert_eq!(plan.status, PlanStatus::Monitoring);
    let step = plan.step(&key("follow_up_1")).expect("follow_up_1");
    assert_eq!(step.status, StepStatus::Done);
    assert_eq!(
        step.outcome.as_ref().map(|o| o.wellbeing.clone()),
        Some(Wellbeing::Fair.into())
    );
}

#[test]
fn later_follow_ups_do_not_start_monitoring_again() {
    let story = Story::opened().returned();
    let arrived_on = story.plan().arrived_at.expect("arrived").date_naive();
    let first_visit = arrived_on + days(14);
    let story = story.run_at(
        utc(2026, 1, 29, 18, 0),
        follow_up("follow_up_1", first_visit, vec![]),
    );
    assert_eq!(story.plan().status, PlanStatus::Monitoring);
    let visited_on = arrived_on + days(30);
    given(story.events())
        .when(follow_up("follow_up_2", visited_on, vec![]))
        .then([
            E::FollowUpRecorded {
                step: key("follow_up_2"),
                outcome: FollowUpOutcome {
                    visited_on,
                    wellbeing: Wellbeing::Fair.into(),
                    concerns: vec![].into(),
                },
            },
            E::StepCompleted {
                step: key("follow_up_2"),
            },
        ]);
}

#[test]
fn a_follow_up_cannot_be_recorded_before_arrival() {
    given(Story::opened().ready_for_travel().events())
        .when(follow_up("follow_up_1", date(2026, 2, 1), vec![]))
        .then_error(PlanError::FollowUpBeforeArrival);
}

#[test]
fn a_ready_follow_up_step_still_waits_for_arrival() {
    // A follow-up added without dependencies is ready, but there is nothing to follow up yet.
    let story = Story::opened()
        .consented()
        .run(add(new_step("check_in", StepKind::FollowUp)));
    assert_eq!(status_of(&story.plan(), "check_in"), StepStatus::Ready);
    given(story.events())
        .when(follow_up("check_in", date(2026, 2, 1), vec![]))
        .then_error(PlanError::FollowUpBeforeArrival);
}

#[test]
fn a_follow_up_visit_dated_before_arrival_is_refused() {
    let story = Story::opened().returned();
    let arrived_on = story.plan().arrived_at.expect("arrived").date_naive();
    given(story.events())
        .when(follow_up("follow_up_1", arrived_on - days(1), vec![]))
        .then_error(PlanError::FollowUpBeforeArrivalDate {
            visited_on: arrived_on - days(1),
            arrived_on,
        });
}

#[test]
fn a_follow_up_visit_dated_in_the_future_is_refused() {
    let story = Story::opened().returned();
    // Two days ahead is the future everywhere on Earth.
    let later = now().date_naive() + days(2);
    given(story.events())
        .when(follow_up("follow_up_1", later, vec![]))
        .then_error(PlanError::FollowUpInTheFuture {
            visited_on: later,
            today: date(2026, 3, 2),
        });
}

#[test]
fn a_follow_up_visit_dated_today_where_the_day_has_already_begun_is_accepted() {
    let story = Story::opened().returned();
    // 20:00 UTC on 2 March is already 3 March in Kiribati (UTC+14), but not 4 March anywhere.
    let evening = utc(2026, 3, 2, 20, 0);
    let today_in_kiribati = date(2026, 3, 3);
    given(story.events())
        .at(evening)
        .when(follow_up("follow_up_1", today_in_kiribati, vec![]))
        .then_accepted();
    given(story.events())
        .at(evening)
        .when(follow_up("follow_up_1", date(2026, 3, 4), vec![]))
        .then_error(PlanError::FollowUpInTheFuture {
            visited_on: date(2026, 3, 4),
            today: today_in_kiribati,
        });
    // Just before 10:00 UTC it is not yet 3 March in UTC+14.
    given(story.events())
        .at(utc(2026, 3, 2, 9, 59))
        .when(follow_up("follow_up_1", today_in_kiribati, vec![]))
        .then_error(PlanError::FollowUpInTheFuture {
            visited_on: today_in_kiribati,
            today: date(2026, 3, 2),
        });
}

#[test]
fn a_follow_up_can_only_be_recorded_on_a_follow_up_step() {
    given(Story::opened().returned().events())
        .when(follow_up("reintegration_plan", now().date_naive(), vec![]))
        .then_error(PlanError::NotAFollowUp(key("reintegration_plan")));
}

// ---------------------------------------------------------------------------------------------
// Closing
// ---------------------------------------------------------------------------------------------

#[test]
fn a_returned_plan_can_be_closed_as_reintegrated() {
    let plan = given(Story::opened().returned().events())
        .when(C::ClosePlan {
            reason: CloseReason::Reintegrated,
        })
        .then([E::PlanClosed {
            reason: CloseReason::Reintegrated,
            closed_at: now(),
        }]);
    assert_eq!(plan.status, PlanStatus::Closed);
    assert_eq!(plan.close_reason, Some(CloseReason::Reintegrated));
    assert_eq!(plan.closed_at, Some(now()));
}

#[test]
fn a_plan_cannot_be_closed_as_reintegrated_before_the_return() {
    for story in [
        Story::opened(),
        Story::opened().ready_for_travel(),
        Story::opened().ready_for_travel().departed(),
    ] {
        given(story.events())
            .when(C::ClosePlan {
                reason: CloseReason::Reintegrated,
            })
            .then_error(PlanError::NotYetReturned);
    }
}

#[test]
fn a_draft_plan_can_be_closed_when_the_survivor_opts_out() {
    given(Story::opened().events())
        .when(C::ClosePlan {
            reason: CloseReason::OptedOut,
        })
        .then([E::PlanClosed {
            reason: CloseReason::OptedOut,
            closed_at: now(),
        }]);
}

#[test]
fn nothing_changes_on_a_closed_plan() {
    let story = Story::opened().returned().run(C::ClosePlan {
        reason: CloseReason::Reintegrated,
    });
    let arrived_on = story.plan().arrived_at.expect("arrived").date_naive();
    let commands = [
        C::SetGoals { goals: vec![] },
        add(new_step("counselling", StepKind::Medical)),
        C::AssignStep {
            step: key("follow_up_2"),
            assignee: Some(PARTNER),
            candidate_group: None,
        },
        C::CancelStep {
            step: key("follow_up_2"),
            reason: "Closed".to_owned(),
        },
        follow_up("follow_up_1", arrived_on + days(14), vec![]),
        C::RecordConsent {
            purpose: ConsentPurpose::FamilyContact,
        },
        C::WithdrawConsent {
            purpose: ConsentPurpose::Return,
        },
        C::ClosePlan {
            reason: CloseReason::Other,
        },
        C::RecordReminderSent {
            step: key("follow_up_2"),
            kind: ReminderKind::OnDue,
            fire_at: now(),
            recipient: PARTNER,
        },
    ];
    for command in commands {
        given(story.events())
            .when(command)
            .then_error(PlanError::Closed);
    }
    given(story.events())
        .when(open_command())
        .then_error(PlanError::AlreadyOpened);
}

// ---------------------------------------------------------------------------------------------
// Reminders reported by the scheduler
// ---------------------------------------------------------------------------------------------

#[test]
fn a_delivered_reminder_is_recorded_on_its_step() {
    let story = Story::opened().assigned("origin_contact", PARTNER);
    let fire_at = opened_at() + days(18);
    let plan = given(story.events())
        .when(C::RecordReminderSent {
            step: key("origin_contact"),
            kind: ReminderKind::BeforeDue,
            fire_at,
            recipient: PARTNER,
        })
        .then([E::ReminderSent {
            step: key("origin_contact"),
            kind: ReminderKind::BeforeDue,
            fire_at,
            recipient: PARTNER,
        }]);
    let sent = &plan
        .step(&key("origin_contact"))
        .expect("step")
        .reminders_sent;
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].kind, sent[0].fire_at),
        (ReminderKind::BeforeDue, fire_at)
    );
}

#[test]
fn a_delivered_escalation_is_recorded_as_an_escalation() {
    let supervisor = PartyId::new();
    let fire_at = opened_at() + days(35);
    given(Story::opened().assigned("origin_contact", PARTNER).events())
        .when(C::RecordReminderSent {
            step: key("origin_contact"),
            kind: ReminderKind::Escalation,
            fire_at,
            recipient: supervisor,
        })
        .then([E::StepEscalated {
            step: key("origin_contact"),
            kind: ReminderKind::Escalation,
            fire_at,
            recipient: supervisor,
        }]);
}

#[test]
fn a_failed_reminder_is_recorded_once_and_never_armed_again() {
    let fire_at = opened_at() + days(21);
    let failed = C::RecordReminderFailed {
        step: key("origin_contact"),
        kind: ReminderKind::OnDue,
        fire_at,
        recipient: PARTNER,
        reason: "550 mailbox unavailable".to_owned(),
    };
    let story = Story::opened().assigned("origin_contact", PARTNER);
    given(story.events())
        .when(failed.clone())
        .then([E::ReminderFailed {
            step: key("origin_contact"),
            kind: ReminderKind::OnDue,
            fire_at,
            recipient: PARTNER,
            reason: "550 mailbox unavailable".to_owned().into(),
        }]);
    let after = story.run(failed.clone());
    given(after.events())
        .when(failed)
        .then_error(PlanError::ReminderAlreadyRecorded);
    // Nor is it sent later: it is no longer a planned timer.
    let timers = homeward_workflows::timers::planned_timers(&after.plan());
    assert!(!timers
        .iter()
        .any(|t| t.step == key("origin_contact") && t.kind == ReminderKind::OnDue));
}

#[test]
fn the_same_reminder_cannot_be_recorded_twice() {
    let fire_at = opened_at() + days(21);
    let sent = C::RecordReminderSent {
        step: key("origin_contact"),
        kind: ReminderKind::OnDue,
        fire_at,
        recipient: PARTNER,
    };
    let story = Story::opened()
        .assigned("origin_contact", PARTNER)
        .run(sent.clone());
    given(story.events())
        .when(sent)
        .then_error(PlanError::ReminderAlreadyRecorded);
    // Another kind at the same instant is another reminder.
    given(story.events())
        .when(C::RecordReminderSent {
            step: key("origin_contact"),
            kind: ReminderKind::BeforeDue,
            fire_at,
            recipient: PARTNER,
        })
        .then_accepted();
}

// ---------------------------------------------------------------------------------------------
// Coverage guard
// ---------------------------------------------------------------------------------------------

/// Exhaustive on purpose: a new command does not compile here until it has a success case below.
fn command_name(command: &PlanCommand) -> &'static str {
    match command {
        C::OpenPlan { .. } => "OpenPlan",
        C::SetGoals { .. } => "SetGoals",
        C::AddStep(_) => "AddStep",
        C::RemoveStep { .. } => "RemoveStep",
        C::AssignStep { .. } => "AssignStep",
        C::RescheduleStep { .. } => "RescheduleStep",
        C::ChangeDependencies { .. } => "ChangeDependencies",
        C::PrioritiseStep { .. } => "PrioritiseStep",
        C::SetReminderPolicy { .. } => "SetReminderPolicy",
        C::StartStep { .. } => "StartStep",
        C::BlockStep { .. } => "BlockStep",
        C::UnblockStep { .. } => "UnblockStep",
        C::CompleteStep { .. } => "CompleteStep",
        C::AcknowledgeStep { .. } => "AcknowledgeStep",
        C::CancelStep { .. } => "CancelStep",
        C::UpdateDocumentStatus { .. } => "UpdateDocumentStatus",
        C::RecordConsent { .. } => "RecordConsent",
        C::WithdrawConsent { .. } => "WithdrawConsent",
        C::ConfirmDeparture { .. } => "ConfirmDeparture",
        C::ConfirmArrival { .. } => "ConfirmArrival",
        C::RecordFollowUp { .. } => "RecordFollowUp",
        C::ClosePlan { .. } => "ClosePlan",
        C::RecordReminderSent { .. } => "RecordReminderSent",
        C::RecordReminderFailed { .. } => "RecordReminderFailed",
        C::ReassignCaseWorker { .. } => "ReassignCaseWorker",
    }
}

const COMMAND_COUNT: usize = 25;

#[test]
fn every_plan_command_is_accepted_in_some_situation() {
    let opened = Story::opened();
    let active = Story::opened().consented();
    let blocked = active.clone().run(C::BlockStep {
        step: key("medical_check"),
        reason: "Waiting for an interpreter".to_owned(),
    });
    let returned = Story::opened().returned();
    let arrived_on = returned.plan().arrived_at.expect("arrived").date_naive();
    let travelling = Story::opened().ready_for_travel().departed();
    let cases: Vec<(Option<&Story>, PlanCommand)> = vec![
        (None, open_command()),
        (Some(&opened), C::SetGoals { goals: vec![] }),
        (
            Some(&opened),
            add(new_step("counselling", StepKind::Medical)),
        ),
        (
            Some(&opened),
            C::RemoveStep {
                step: key("legal_clearance"),
                reason: "None pending".to_owned(),
            },
        ),
        (
            Some(&opened),
            C::AssignStep {
                step: key("passport"),
                assignee: None,
                candidate_group: Some("liaison".to_owned()),
            },
        ),
        (
            Some(&opened),
            C::RescheduleStep {
                step: key("passport"),
                due: after_opening(50),
                follow_up_on: None,
            },
        ),
        (
            Some(&opened),
            C::ChangeDependencies {
                step: key("legal_clearance"),
                depends_on: vec![key("passport")],
            },
        ),
        (
            Some(&opened),
            C::PrioritiseStep {
                step: key("passport"),
                priority: Priority::Low,
            },
        ),
        (
            Some(&opened),
            C::SetReminderPolicy {
                step: key("passport"),
                policy: ReminderPolicy::default(),
            },
        ),
        (Some(&active), start("passport")),
        (
            Some(&active),
            C::BlockStep {
                step: key("passport"),
                reason: "Strike".to_owned(),
            },
        ),
        (
            Some(&blocked),
            C::UnblockStep {
                step: key("medical_check"),
            },
        ),
        (Some(&active), complete("passport")),
        (
            Some(&active),
            C::CancelStep {
                step: key("legal_clearance"),
                reason: "Settled".to_owned(),
            },
        ),
        (
            Some(&opened),
            C::AcknowledgeStep {
                step: key("passport"),
            },
        ),
        (
            Some(&opened),
            C::UpdateDocumentStatus {
                step: key("passport"),
                status: DocumentStatus::Delivered,
            },
        ),
        (
            Some(&opened),
            C::RecordConsent {
                purpose: ConsentPurpose::Return,
            },
        ),
        (
            Some(&active),
            C::WithdrawConsent {
                purpose: ConsentPurpose::Return,
            },
        ),
        (
            Some(&active),
            C::ConfirmDeparture {
                departed_at: now(),
                override_reason: Some("Emergency".to_owned()),
            },
        ),
        (Some(&travelling), C::ConfirmArrival { arrived_at: now() }),
        (
            Some(&returned),
            follow_up("follow_up_1", arrived_on + days(1), vec![]),
        ),
        (
            Some(&opened),
            C::ClosePlan {
                reason: CloseReason::SupportEnded,
            },
        ),
        (
            Some(&opened),
            C::RecordReminderSent {
                step: key("passport"),
                kind: ReminderKind::Overdue,
                fire_at: opened_at() + days(52),
                recipient: LIAISON,
            },
        ),
        (
            Some(&active),
            C::RecordReminderFailed {
                step: key("passport"),
                kind: ReminderKind::OnDue,
                fire_at: opened_at() + days(45),
                recipient: LIAISON,
                reason: "550 mailbox unavailable".to_owned(),
            },
        ),
        (
            Some(&active),
            C::ReassignCaseWorker {
                case_worker: LIAISON,
            },
        ),
    ];
    let mut accepted = BTreeSet::new();
    for (story, command) in cases {
        let name = command_name(&command);
        let history = story.map(Story::events).unwrap_or_default();
        given(history).when(command).then_accepted();
        accepted.insert(name);
    }
    assert_eq!(accepted.len(), COMMAND_COUNT, "accepted: {accepted:?}");
}

// ---------------------------------------------------------------------------------------------
// Storage form
// ---------------------------------------------------------------------------------------------

/// An event type whose serde names disagree with its `event_type()`: a defect `encode` must
/// refuse loudly instead of storing a null payload.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
enum MisnamedEvent {
    #[serde(rename = "thing_happened")]
    Thing { n: u32 },
    #[serde(rename = "nothing_happened")]
    Nothing,
}

impl homeward_workflows::DomainEvent for MisnamedEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Thing { .. } => "thing_occurred",
            Self::Nothing => "nothing_occurred",
        }
    }
}

#[test]
fn events_encode_their_payload_under_their_event_type_and_unit_variants_without_one() {
    use homeward_workflows::upcast::encode;
    let (event_type, version, payload) = encode(&E::StepCompleted {
        step: key("passport"),
    });
    assert_eq!((event_type, version), ("step_completed", 1));
    assert_eq!(payload, serde_json::json!({ "step": "passport" }));
    let (event_type, version, payload) = encode(&E::PlanActivated);
    assert_eq!((event_type, version), ("plan_activated", 1));
    assert_eq!(payload, serde_json::Value::Null);
}

#[test]
#[should_panic(expected = "thing_occurred")]
fn encoding_an_event_whose_serde_name_differs_from_its_event_type_panics() {
    homeward_workflows::upcast::encode(&MisnamedEvent::Thing { n: 1 });
}

#[test]
#[should_panic(expected = "differs from the serde name of the unit variant")]
fn encoding_a_unit_event_whose_serde_name_differs_from_its_event_type_panics() {
    homeward_workflows::upcast::encode(&MisnamedEvent::Nothing);
}

#[test]
fn an_acknowledged_task_cannot_be_acknowledged_twice_and_a_new_assignee_starts_unacknowledged() {
    let story = Story::opened().assigned("origin_contact", PARTNER);
    let ack = C::AcknowledgeStep {
        step: key("origin_contact"),
    };
    let acknowledged = story.clone().run(ack.clone());
    assert!(
        acknowledged
            .plan()
            .step(&key("origin_contact"))
            .unwrap()
            .acknowledged
    );
    given(acknowledged.events())
        .when(ack.clone())
        .then_error(PlanError::AlreadyAcknowledged(key("origin_contact")));
    // Reassigned: the new assignee has not seen it.
    let reassigned = acknowledged.assigned("origin_contact", LIAISON);
    assert!(
        !reassigned
            .plan()
            .step(&key("origin_contact"))
            .unwrap()
            .acknowledged
    );
    given(reassigned.events()).when(ack).then_accepted();
    // A finished task is not acknowledged any more.
    let done = story.consented().run(complete("origin_contact"));
    given(done.events())
        .when(C::AcknowledgeStep {
            step: key("origin_contact"),
        })
        .then_error(PlanError::InvalidStepTransition {
            step: key("origin_contact"),
            status: "DONE",
            action: "acknowledge",
        });
}

#[test]
fn a_plan_is_handed_over_to_another_case_worker_even_while_suspended() {
    const NEXT: PartyId = PartyId(uuid::Uuid::from_u128(
        0x44444444_4444_4444_8444_444444444444,
    ));
    let plan = given(Story::opened().consented().events())
        .when(C::ReassignCaseWorker { case_worker: NEXT })
        .then([E::CaseWorkerReassigned {
            from: CASE_WORKER,
            to: NEXT,
        }]);
    assert_eq!(plan.case_worker, NEXT);
    // Handed over to whom it already is: refused, nothing recorded.
    given(Story::opened().events())
        .when(C::ReassignCaseWorker {
            case_worker: CASE_WORKER,
        })
        .then_error(PlanError::AlreadyCaseWorker);
    // A suspended plan still has someone to answer for it.
    let suspended = Story::opened().consented().withdrew(ConsentPurpose::Return);
    given(suspended.events())
        .when(C::ReassignCaseWorker { case_worker: NEXT })
        .then([E::CaseWorkerReassigned {
            from: CASE_WORKER,
            to: NEXT,
        }]);
}
