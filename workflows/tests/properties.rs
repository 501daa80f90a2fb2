//! Property tests: random command sequences against a plan opened from the standard template
//! (and random person and party commands), with the invariants checked after every command.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, Duration, Utc};
use homeward_workflows::party::{
    Party, PartyCommand, PartyDetails, PartyError, PartyEvent, PartyRole, ReminderSettingsInput,
};
use homeward_workflows::person::{ContactDetails, Person, PersonCommand, PersonError, PersonEvent};
use homeward_workflows::plan::{
    CloseReason, ConcernArea, ConsentPurpose, DocumentStatus, DueRule, Goal, Milestone, NewStep,
    Plan, PlanCommand, PlanError, PlanEvent, PlanStatus, Priority, ReminderKind, ReminderPolicy,
    StepKind, StepStatus, Wellbeing,
};
use homeward_workflows::template::find_cycle;
use homeward_workflows::timers::{
    plan_timer_effects, planned_timers, timer_effects, Effect, TimerSpec,
};
use homeward_workflows::upcast::{current_schema_version, decode, decode_str, encode};
use homeward_workflows::{Aggregate, Context, DomainEvent, PartyId, PersonId, Personal};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use support::*;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Abstract plan commands, made concrete against the current plan and time
// ---------------------------------------------------------------------------------------------

/// Step keys the generator picks from: the template's, follow-ups, keys `AddStep` may create,
/// and one that never exists.
const KEYS: [&str; 15] = [
    "origin_contact",
    "passport",
    "legal_clearance",
    "medical_check",
    "family_mediation",
    "travel",
    "reintegration_plan",
    "follow_up_1",
    "follow_up_2",
    "follow_up_3",
    "follow_up_4",
    "extra_a",
    "extra_b",
    "extra_c",
    "ghost",
];

const PARTIES: [PartyId; 3] = [PARTNER, LIAISON, CASE_WORKER];

#[derive(Debug, Clone)]
enum Due {
    Clear,
    /// A local time in Paris this many hours from now (negative: possibly before opening).
    InHours(i64),
    After(Milestone, u32),
    DstGap,
    UnknownZone,
}

#[derive(Debug, Clone, Copy)]
enum Purpose {
    Return,
    Family,
    Sharing(usize),
}

#[derive(Debug, Clone)]
enum Act {
    Open,
    SetGoals(usize),
    Add {
        key: usize,
        kind: StepKind,
        deps: Vec<usize>,
        due: Due,
        assignee: Option<usize>,
        long_title: bool,
    },
    Remove(usize),
    Assign(usize, Option<usize>),
    Reschedule(usize, Due),
    ChangeDeps(usize, Vec<usize>),
    Prioritise(usize, Priority),
    Policy(usize, ReminderPolicy),
    Start(usize, bool),
    Block(usize),
    Unblock(usize),
    Complete(usize),
    Cancel(usize),
    Document(usize, DocumentStatus),
    Consent(Purpose),
    Withdraw(Purpose),
    Depart {
        minutes_ago: i64,
        overriding: bool,
    },
    Arrive {
        minutes_ago: i64,
    },
    FollowUp {
        step: usize,
        days_ago: i64,
        wellbeing: Wellbeing,
        concerns: Vec<ConcernArea>,
    },
    Close(CloseReason),
    /// Reports a planned timer as sent (`pick` indexes the planned timers), or an arbitrary one.
    ReminderSent {
        pick: Option<usize>,
        step: usize,
        kind: ReminderKind,
        hours: i64,
    },
}

fn k(i: usize) -> homeward_workflows::StepKey {
    key(KEYS[i % KEYS.len()])
}

fn due_rule(due: &Due, now: DateTime<Utc>) -> Option<DueRule> {
    match due {
        Due::Clear => None,
        Due::InHours(h) => Some(DueRule::At {
            local: (now + Duration::hours(*h)).naive_utc(),
            time_zone: "Europe/Paris".to_owned(),
        }),
        Due::After(milestone, days) => Some(DueRule::After {
            milestone: *milestone,
            days: *days,
        }),
        Due::DstGap => Some(DueRule::At {
            local: local(2026, 3, 29, 2, 30),
            time_zone: "Europe/Paris".to_owned(),
        }),
        Due::UnknownZone => Some(DueRule::At {
            local: local(2026, 6, 1, 9, 0),
            time_zone: "Mars/Olympus".to_owned(),
        }),
    }
}

fn purpose(p: Purpose) -> ConsentPurpose {
    match p {
        Purpose::Return => ConsentPurpose::Return,
        Purpose::Family => ConsentPurpose::FamilyContact,
        Purpose::Sharing(i) => ConsentPurpose::DataSharing {
            partner: PARTIES[i % PARTIES.len()],
        },
    }
}

fn concrete(act: &Act, plan: &Plan, now: DateTime<Utc>) -> PlanCommand {
    use PlanCommand as C;
    match act {
        Act::Open => open_command(),
        Act::SetGoals(n) => C::SetGoals {
            goals: (0..*n)
                .map(|i| Goal {
                    area: ConcernArea::Income,
                    aim: format!("Goal {i}").into(),
                })
                .collect(),
        },
        Act::Add {
            key,
            kind,
            deps,
            due,
            assignee,
            long_title,
        } => C::AddStep(Box::new(NewStep {
            key: k(*key),
            kind: *kind,
            title: if *long_title {
                "x".repeat(201)
            } else {
                "An added step".to_owned()
            },
            assignee: assignee.map(|i| PARTIES[i % PARTIES.len()]),
            candidate_group: None,
            priority: Priority::Normal,
            due: due_rule(due, now),
            follow_up_on: None,
            depends_on: deps.iter().map(|d| k(*d)).collect(),
            reminder_policy: None,
        })),
        Act::Remove(s) => C::RemoveStep {
            step: k(*s),
            reason: "Not needed".to_owned(),
        },
        Act::Assign(s, to) => C::AssignStep {
            step: k(*s),
            assignee: to.map(|i| PARTIES[i % PARTIES.len()]),
            candidate_group: None,
        },
        Act::Reschedule(s, due) => C::RescheduleStep {
            step: k(*s),
            due: due_rule(due, now),
            follow_up_on: None,
        },
        Act::ChangeDeps(s, deps) => C::ChangeDependencies {
            step: k(*s),
            depends_on: deps.iter().map(|d| k(*d)).collect(),
        },
        Act::Prioritise(s, p) => C::PrioritiseStep {
            step: k(*s),
            priority: *p,
        },
        Act::Policy(s, policy) => C::SetReminderPolicy {
            step: k(*s),
            policy: *policy,
        },
        Act::Start(s, overriding) => C::StartStep {
            step: k(*s),
            override_reason: overriding.then(|| "Coordinator decision".to_owned()),
        },
        Act::Block(s) => C::BlockStep {
            step: k(*s),
            reason: "Waiting".to_owned(),
        },
        Act::Unblock(s) => C::UnblockStep { step: k(*s) },
        Act::Complete(s) => C::CompleteStep { step: k(*s) },
        Act::Cancel(s) => C::CancelStep {
            step: k(*s),
            reason: "No longer needed".to_owned(),
        },
        Act::Document(s, status) => C::UpdateDocumentStatus {
            step: k(*s),
            status: *status,
        },
        Act::Consent(p) => C::RecordConsent {
            purpose: purpose(*p),
        },
        Act::Withdraw(p) => C::WithdrawConsent {
            purpose: purpose(*p),
        },
        Act::Depart {
            minutes_ago,
            overriding,
        } => C::ConfirmDeparture {
            departed_at: now - Duration::minutes(*minutes_ago),
            override_reason: overriding.then(|| "Emergency".to_owned()),
        },
        Act::Arrive { minutes_ago } => C::ConfirmArrival {
            arrived_at: now - Duration::minutes(*minutes_ago),
        },
        Act::FollowUp {
            step,
            days_ago,
            wellbeing,
            concerns,
        } => C::RecordFollowUp {
            step: k(*step),
            visited_on: (now - Duration::days(*days_ago)).date_naive(),
            wellbeing: *wellbeing,
            concerns: concerns.clone(),
        },
        Act::Close(reason) => C::ClosePlan { reason: *reason },
        Act::ReminderSent {
            pick,
            step,
            kind,
            hours,
        } => {
            let planned = planned_timers(plan);
            match pick {
                Some(i) if !planned.is_empty() => {
                    let t = &planned[i % planned.len()];
                    C::RecordReminderSent {
                        step: t.step.clone(),
                        kind: t.kind,
                        fire_at: t.fire_at,
                        recipient: t.recipient.party(),
                    }
                }
                _ => C::RecordReminderSent {
                    step: k(*step),
                    kind: *kind,
                    fire_at: now - Duration::hours(*hours),
                    recipient: PARTNER,
                },
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

fn step_index() -> impl Strategy<Value = usize> {
    0..KEYS.len()
}

fn kind() -> impl Strategy<Value = StepKind> {
    prop_oneof![
        Just(StepKind::TravelDocument),
        Just(StepKind::Travel),
        Just(StepKind::FamilyMediation),
        Just(StepKind::OriginContact),
        Just(StepKind::FollowUp),
        Just(StepKind::Medical),
        Just(StepKind::Legal),
        Just(StepKind::ReintegrationSupport),
        Just(StepKind::Custom),
    ]
}

fn due() -> impl Strategy<Value = Due> {
    prop_oneof![
        2 => Just(Due::Clear),
        4 => (-2000i64..2000).prop_map(Due::InHours),
        3 => (
            prop_oneof![
                Just(Milestone::PlanOpened),
                Just(Milestone::Departure),
                Just(Milestone::Arrival)
            ],
            0u32..100
        )
            .prop_map(|(m, d)| Due::After(m, d)),
        1 => Just(Due::DstGap),
        1 => Just(Due::UnknownZone),
    ]
}

fn purpose_strategy() -> impl Strategy<Value = Purpose> {
    prop_oneof![
        3 => Just(Purpose::Return),
        1 => Just(Purpose::Family),
        2 => (0..PARTIES.len()).prop_map(Purpose::Sharing),
    ]
}

fn policy() -> impl Strategy<Value = ReminderPolicy> {
    (
        proptest::option::of(0u32..10),
        any::<bool>(),
        proptest::option::of(0u32..10),
        proptest::option::of(0u32..20),
    )
        .prop_map(
            |(before_due_days, on_due, overdue_every_days, escalate_after_days)| ReminderPolicy {
                before_due_days,
                on_due,
                overdue_every_days,
                escalate_after_days,
            },
        )
}

fn reminder_kind() -> impl Strategy<Value = ReminderKind> {
    prop_oneof![
        Just(ReminderKind::BeforeDue),
        Just(ReminderKind::OnDue),
        Just(ReminderKind::Overdue),
        Just(ReminderKind::Escalation),
    ]
}

fn close_reason() -> impl Strategy<Value = CloseReason> {
    prop_oneof![
        Just(CloseReason::Reintegrated),
        Just(CloseReason::SupportEnded),
        Just(CloseReason::OptedOut),
        Just(CloseReason::MovedAway),
        Just(CloseReason::LostContact),
        Just(CloseReason::Deceased),
        Just(CloseReason::Other),
    ]
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        1 => Just(Act::Open),
        1 => (0usize..23).prop_map(Act::SetGoals),
        4 => (
            step_index(),
            kind(),
            proptest::collection::vec(step_index(), 0..3),
            due(),
            proptest::option::of(0..PARTIES.len()),
            proptest::bool::weighted(0.1),
        )
            .prop_map(|(key, kind, deps, due, assignee, long_title)| Act::Add {
                key,
                kind,
                deps,
                due,
                assignee,
                long_title
            }),
        2 => step_index().prop_map(Act::Remove),
        5 => (step_index(), proptest::option::of(0..PARTIES.len()))
            .prop_map(|(s, to)| Act::Assign(s, to)),
        3 => (step_index(), due()).prop_map(|(s, d)| Act::Reschedule(s, d)),
        3 => (step_index(), proptest::collection::vec(step_index(), 0..4))
            .prop_map(|(s, d)| Act::ChangeDeps(s, d)),
        1 => (
            step_index(),
            prop_oneof![
                Just(Priority::Low),
                Just(Priority::Normal),
                Just(Priority::High),
                Just(Priority::Urgent)
            ]
        )
            .prop_map(|(s, p)| Act::Prioritise(s, p)),
        2 => (step_index(), policy()).prop_map(|(s, p)| Act::Policy(s, p)),
        8 => (step_index(), proptest::bool::weighted(0.3)).prop_map(|(s, o)| Act::Start(s, o)),
        2 => step_index().prop_map(Act::Block),
        2 => step_index().prop_map(Act::Unblock),
        10 => step_index().prop_map(Act::Complete),
        2 => step_index().prop_map(Act::Cancel),
        3 => (
            step_index(),
            prop_oneof![
                Just(DocumentStatus::Requested),
                Just(DocumentStatus::SubmittedToAuthority),
                Just(DocumentStatus::Issued),
                Just(DocumentStatus::Delivered)
            ]
        )
            .prop_map(|(s, st)| Act::Document(s, st)),
        5 => purpose_strategy().prop_map(Act::Consent),
        2 => purpose_strategy().prop_map(Act::Withdraw),
        3 => (-120i64..600, proptest::bool::weighted(0.5)).prop_map(|(m, o)| Act::Depart {
            minutes_ago: m,
            overriding: o
        }),
        3 => (-120i64..6000).prop_map(|m| Act::Arrive { minutes_ago: m }),
        4 => (
            step_index(),
            -2i64..30,
            prop_oneof![
                Just(Wellbeing::Good),
                Just(Wellbeing::Fair),
                Just(Wellbeing::Poor),
                Just(Wellbeing::AtRisk)
            ],
            proptest::collection::vec(
                prop_oneof![
                    Just(ConcernArea::Safety),
                    Just(ConcernArea::Income),
                    Just(ConcernArea::Stigma)
                ],
                0..4
            ),
        )
            .prop_map(|(step, days_ago, wellbeing, concerns)| Act::FollowUp {
                step,
                days_ago,
                wellbeing,
                concerns
            }),
        1 => close_reason().prop_map(Act::Close),
        4 => (
            proptest::option::weighted(0.8, any::<usize>()),
            step_index(),
            reminder_kind(),
            0i64..2000
        )
            .prop_map(|(pick, step, kind, hours)| Act::ReminderSent {
                pick,
                step,
                kind,
                hours
            }),
    ]
}

/// Where a sequence starts: later stages make the later rules reachable.
fn stage() -> impl Strategy<Value = u8> {
    0u8..4
}

fn story_at(stage: u8) -> Story {
    match stage {
        0 => Story::opened(),
        1 => Story::opened()
            .consented()
            .assigned("origin_contact", PARTNER),
        2 => Story::opened()
            .assigned("passport", LIAISON)
            .consented_to(ConsentPurpose::DataSharing { partner: LIAISON })
            .ready_for_travel(),
        _ => Story::opened()
            .assigned("follow_up_1", PARTNER)
            .assigned("reintegration_plan", LIAISON)
            .returned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Invariants
// ---------------------------------------------------------------------------------------------

fn status_rank(s: PlanStatus) -> u8 {
    match s {
        PlanStatus::Draft => 0,
        PlanStatus::Active => 1,
        PlanStatus::Travelling => 2,
        PlanStatus::Returned => 3,
        PlanStatus::Monitoring => 4,
        PlanStatus::Closed => 5,
    }
}

fn is_done_or_cancelled(plan: &Plan, dep: &homeward_workflows::StepKey) -> bool {
    plan.step(dep)
        .is_some_and(|d| matches!(d.status, StepStatus::Done | StepStatus::Cancelled { .. }))
}

/// What a store does with timer effects: delete cancelled ids, then insert armed timers unless a
/// timer with that id is already there (`ON CONFLICT DO NOTHING`).
fn apply_to_table(table: &mut BTreeMap<Uuid, TimerSpec>, effects: Vec<Effect>) {
    let (cancels, arms): (Vec<_>, Vec<_>) = effects
        .into_iter()
        .partition(|e| matches!(e, Effect::CancelTimer(_)));
    for e in cancels {
        if let Effect::CancelTimer(id) = e {
            table.remove(&id);
        }
    }
    for e in arms {
        if let Effect::ArmTimer(t) = e {
            table.entry(t.id).or_insert(t);
        }
    }
}

/// Effects as sets (their order does not matter to the store): ids cancelled, timers armed.
fn effect_set(effects: Vec<Effect>) -> (BTreeSet<Uuid>, BTreeMap<Uuid, TimerSpec>) {
    let mut cancelled = BTreeSet::new();
    let mut armed = BTreeMap::new();
    for effect in effects {
        match effect {
            Effect::CancelTimer(id) => {
                cancelled.insert(id);
            }
            Effect::ArmTimer(t) => {
                armed.insert(t.id, t);
            }
        }
    }
    (cancelled, armed)
}

fn check_roundtrip(event: &PlanEvent) -> Result<(), TestCaseError> {
    let (event_type, version, payload) = encode(event);
    prop_assert_eq!(event_type, event.event_type());
    prop_assert_eq!(version, current_schema_version(event_type));
    let text = serde_json::to_string(&payload).expect("payload to text");
    let from_value: PlanEvent = decode(event_type, version, payload)
        .map_err(|e| TestCaseError::fail(format!("{event_type} does not decode: {e}")))?;
    let from_str: PlanEvent = decode_str(event_type, version, &text)
        .map_err(|e| TestCaseError::fail(format!("{event_type} does not decode_str: {e}")))?;
    prop_assert_eq!(&from_value, event);
    prop_assert_eq!(&from_str, event);
    Ok(())
}

/// Invariants of any plan state reached by accepted commands.
fn check_state(history: &[PlanEvent], plan: &Plan) -> Result<(), TestCaseError> {
    let from_scratch = Plan::fold(history);
    prop_assert_eq!(
        from_scratch.as_ref(),
        Some(plan),
        "fold from scratch differs"
    );
    prop_assert_eq!(plan.version, history.len() as u64);

    let keys: BTreeSet<_> = plan.steps.iter().map(|s| &s.key).collect();
    prop_assert_eq!(keys.len(), plan.steps.len(), "step keys are not unique");
    for s in &plan.steps {
        for dep in &s.depends_on {
            prop_assert!(keys.contains(dep), "{} depends on missing {}", s.key, dep);
            prop_assert!(dep != &s.key, "{} depends on itself", s.key);
        }
        let deps_done = s.depends_on.iter().all(|d| is_done_or_cancelled(plan, d));
        match s.status {
            StepStatus::Ready => prop_assert!(deps_done, "{} is ready too early", s.key),
            StepStatus::Pending => prop_assert!(!deps_done, "{} is pending for nothing", s.key),
            _ => {}
        }
        if s.kind == StepKind::Travel
            && s.status == StepStatus::InProgress
            && s.override_reason.is_none()
        {
            prop_assert!(
                plan.origin_contact_designated(),
                "travel started without a contact"
            );
            prop_assert!(
                plan.travel_document_issued(),
                "travel started without a document"
            );
        }
        if s.override_reason.is_some() {
            prop_assert_eq!(
                s.kind,
                StepKind::Travel,
                "only travel is started by override"
            );
        }
        prop_assert_eq!(
            s.due_at,
            s.due.as_ref().and_then(|r| plan.resolve_due(r)),
            "{}'s due instant is stale",
            s.key
        );
        prop_assert_eq!(
            s.document_status.is_some(),
            s.kind == StepKind::TravelDocument
        );
    }
    prop_assert_eq!(
        find_cycle(plan.steps.iter().map(|s| (&s.key, s.depends_on.as_slice()))),
        None,
        "the dependencies have a cycle"
    );

    prop_assert_eq!(
        plan.suspended,
        plan.consent(ConsentPurpose::Return)
            .is_some_and(|c| !c.given),
        "suspended exactly while consent to return is withdrawn"
    );
    if !matches!(plan.status, PlanStatus::Draft | PlanStatus::Closed) {
        prop_assert!(
            plan.consent(ConsentPurpose::Return).is_some(),
            "a plan left draft without consent to return"
        );
    }
    if let (Some(d), Some(a)) = (plan.departed_at, plan.arrived_at) {
        prop_assert!(d <= a, "arrived before departing");
    }
    if let Some(d) = plan.departed_at {
        prop_assert!(plan.opened_at <= d, "departed before opening");
    }
    if plan.status != PlanStatus::Closed {
        prop_assert_eq!(
            plan.arrived_at.is_some(),
            status_rank(plan.status) >= status_rank(PlanStatus::Returned),
            "arrival and status disagree"
        );
        prop_assert_eq!(
            plan.departed_at.is_some(),
            status_rank(plan.status) >= status_rank(PlanStatus::Travelling),
            "departure and status disagree"
        );
    }

    let timers = planned_timers(plan);
    if plan.suspended || plan.status == PlanStatus::Closed {
        prop_assert!(timers.is_empty(), "a suspended or closed plan has timers");
    }
    let ids: BTreeSet<_> = timers.iter().map(|t| t.id).collect();
    prop_assert_eq!(ids.len(), timers.len(), "timer ids are not unique");
    for t in &timers {
        let step = plan.step(&t.step);
        prop_assert!(
            step.is_some_and(|s| s.status.is_open()),
            "a timer for a finished step"
        );
        if let homeward_workflows::timers::Recipient::Assignee(p) = t.recipient {
            prop_assert_eq!(
                step.and_then(|s| s.assignee),
                Some(p),
                "a timer for a non-assignee"
            );
            prop_assert!(
                plan.consent(ConsentPurpose::DataSharing { partner: p })
                    .is_none_or(|c| c.given),
                "a reminder to a partner whose data-sharing consent was withdrawn"
            );
        }
    }
    Ok(())
}

/// Invariants of one accepted decision: `before` is the state it was made on.
fn check_decision(before: &Plan, new: &[PlanEvent]) -> Result<(), TestCaseError> {
    prop_assert!(!new.is_empty(), "an accepted command records nothing");
    prop_assert_ne!(before.status, PlanStatus::Closed, "a closed plan changed");
    for e in new {
        check_roundtrip(e)?;
        match e {
            PlanEvent::PlanOpened(_) => {
                return Err(TestCaseError::fail("a plan was opened twice"));
            }
            PlanEvent::DepartureConfirmed {
                override_reason: None,
                ..
            } => {
                prop_assert!(before.origin_contact_designated());
                prop_assert!(before.travel_document_issued());
            }
            PlanEvent::DepartureConfirmed {
                override_reason: Some(_),
                ..
            } => prop_assert!(
                !(before.origin_contact_designated() && before.travel_document_issued()),
                "an override recorded where none was needed"
            ),
            PlanEvent::StepStarted { step, .. } | PlanEvent::StepCompleted { step } => {
                if let Some(s) = before.step(step) {
                    if s.kind == StepKind::FamilyMediation && s.status == StepStatus::Ready {
                        prop_assert!(
                            before.has_consent(ConsentPurpose::FamilyContact),
                            "family mediation without consent to family contact"
                        );
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Runs the sequence and checks everything after each command. Returns how many were accepted.
fn run_plan_sequence(stage: u8, acts: &[(u32, Act)]) -> Result<usize, TestCaseError> {
    let story = story_at(stage);
    let mut history = story.events();
    let mut state = story.plan();
    let mut now = story.now() + Duration::hours(1);
    let mut table: BTreeMap<Uuid, TimerSpec> = planned_timers(&state)
        .into_iter()
        .map(|t| (t.id, t))
        .collect();
    let mut accepted = 0;
    check_state(&history, &state)?;

    for (advance_minutes, act) in acts {
        now += Duration::minutes(i64::from(*advance_minutes));
        let ctx = Context { now, actor: ACTOR };
        let command = concrete(act, &state, now);
        let outcome = Plan::decide(Some(&state), &command, &ctx);
        prop_assert_eq!(
            &outcome,
            &Plan::decide(Some(&state), &command, &ctx),
            "decide is not deterministic"
        );
        match outcome {
            Err(error) => {
                // Refused: nothing is recorded, and the refusal is the right one.
                if state.status == PlanStatus::Closed {
                    prop_assert!(
                        matches!(error, PlanError::Closed | PlanError::AlreadyOpened),
                        "a closed plan refused {:?} with {:?}",
                        command,
                        error
                    );
                } else if state.suspended
                    && !matches!(
                        command,
                        PlanCommand::OpenPlan { .. }
                            | PlanCommand::RecordConsent { .. }
                            | PlanCommand::WithdrawConsent { .. }
                            | PlanCommand::ClosePlan { .. }
                    )
                {
                    prop_assert_eq!(error, PlanError::Suspended);
                }
            }
            Ok(new) => {
                check_decision(&state, &new)?;
                let before = state.clone();
                let before_timers = planned_timers(&before);
                for e in &new {
                    state = Plan::apply(Some(state), e).expect("an accepted event folds");
                }
                history.extend(new.iter().cloned());
                prop_assert!(
                    status_rank(before.status) <= status_rank(state.status),
                    "the plan went back from {:?} to {:?}",
                    before.status,
                    state.status
                );
                check_state(&history, &state)?;
                // The store's timer table, kept only through effects, matches the plan.
                let after_timers = planned_timers(&state);
                let effects = timer_effects(&before_timers, &after_timers);
                // The shortcut the store takes (only the changed steps) finds the same effects.
                prop_assert_eq!(
                    effect_set(plan_timer_effects(Some(&before), &state)),
                    effect_set(effects.clone()),
                    "the changed-steps timer effects differ after {:?}",
                    command
                );
                apply_to_table(&mut table, effects);
                let table_now: HashSet<&TimerSpec> = table.values().collect();
                let planned_now: HashSet<&TimerSpec> = after_timers.iter().collect();
                prop_assert_eq!(
                    table_now,
                    planned_now,
                    "the timer table drifted from the plan after {:?}",
                    command
                );
                accepted += 1;
            }
        }
    }
    Ok(accepted)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn random_plan_commands_keep_every_invariant(
        stage in stage(),
        acts in proptest::collection::vec((0u32..4320, act()), 1..60),
    ) {
        run_plan_sequence(stage, &acts)?;
    }
}

/// Not a property: makes sure the generator does reach the later lifecycle, so the properties
/// above are not vacuously true.
#[test]
fn the_random_sequences_reach_every_lifecycle_stage() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = (
        stage(),
        proptest::collection::vec((0u32..4320, act()), 40..60),
    );
    let mut statuses = BTreeSet::new();
    let mut overrides = 0;
    let mut suspended = 0;
    let mut accepted = 0;
    for _ in 0..200 {
        let (stage, acts) = strategy
            .new_tree(&mut runner)
            .expect("a value tree")
            .current();
        accepted += run_plan_sequence(stage, &acts).expect("invariants hold");
        // Replay to observe the final state.
        let story = story_at(stage);
        let mut state = story.plan();
        let mut now = story.now() + Duration::hours(1);
        for (advance, act) in &acts {
            now += Duration::minutes(i64::from(*advance));
            let command = concrete(act, &state, now);
            if let Ok(events) = Plan::decide(Some(&state), &command, &Context { now, actor: ACTOR })
            {
                for e in &events {
                    if matches!(
                        e,
                        PlanEvent::StepStarted {
                            override_reason: Some(_),
                            ..
                        } | PlanEvent::DepartureConfirmed {
                            override_reason: Some(_),
                            ..
                        }
                    ) {
                        overrides += 1;
                    }
                    if matches!(e, PlanEvent::PlanSuspended) {
                        suspended += 1;
                    }
                    state = Plan::apply(Some(state), e).expect("folds");
                }
            }
            statuses.insert(status_rank(state.status));
        }
    }
    assert_eq!(statuses.len(), 6, "statuses reached: {statuses:?}");
    assert!(overrides > 0 && suspended > 0 && accepted > 1000);
}

// ---------------------------------------------------------------------------------------------
// Persons and parties
// ---------------------------------------------------------------------------------------------

fn text_strategy(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Za-z][A-Za-z '-]{0,30}",
        1 => Just(String::new()),
        1 => Just("   ".to_owned()),
        1 => Just("y".repeat(max + 1)),
        1 => Just(format!("  {}  ", "z".repeat(max))),
    ]
}

fn contact_strategy() -> impl Strategy<Value = ContactDetails> {
    (
        proptest::option::of("\\+?[0-9 ]{1,20}"),
        proptest::option::of(prop_oneof![
            Just("amina@example.org".to_owned()),
            Just("not-an-email".to_owned()),
            Just(" ada@example.org ".to_owned()),
        ]),
        proptest::option::of(text_strategy(500)),
    )
        .prop_map(|(phone, email, address)| ContactDetails {
            phone: phone.map(Personal::new),
            email: email.map(Personal::new),
            address: address.map(Personal::new),
        })
}

fn person_command() -> impl Strategy<Value = PersonCommand> {
    prop_oneof![
        (
            text_strategy(200),
            proptest::option::of((1950i32..2030, 1u32..13, 1u32..29)),
            proptest::option::of(prop_oneof![
                Just("en".to_owned()),
                Just("FR".to_owned()),
                Just("english".to_owned()),
            ]),
            contact_strategy(),
        )
            .prop_map(|(full_name, dob, preferred_language, contact)| {
                PersonCommand::Register {
                    organisation: ORGANISATION,
                    person_id: PERSON,
                    full_name,
                    date_of_birth: dob.map(|(y, m, d)| date(y, m, d)),
                    preferred_language,
                    contact,
                }
            }),
        contact_strategy().prop_map(|contact| PersonCommand::UpdateContact { contact }),
        text_strategy(4000).prop_map(|text| PersonCommand::AddNote { text }),
    ]
}

fn party_details() -> impl Strategy<Value = PartyDetails> {
    (
        text_strategy(200),
        prop_oneof![
            Just("claire@homeward.example.org".to_owned()),
            Just("claire at homeward".to_owned()),
        ],
        prop_oneof![
            Just(PartyRole::SocialWorker),
            Just(PartyRole::Supervisor),
            Just(PartyRole::GovernmentLiaison),
            Just(PartyRole::PartnerContact),
            Just(PartyRole::Admin),
        ],
        prop_oneof![
            Just("fr".to_owned()),
            Just("FRA".to_owned()),
            Just(" ng ".to_owned())
        ],
        prop_oneof![Just("fr".to_owned()), Just("french".to_owned())],
        prop_oneof![
            Just("Europe/Paris".to_owned()),
            Just(" Africa/Lagos ".to_owned()),
            Just("Mars/Olympus".to_owned()),
        ],
        prop_oneof![Just(None), Just(Some(CASE_WORKER)), Just(Some(ACTOR))],
    )
        .prop_map(
            |(display_name, email, role, country, language, time_zone, supervisor)| PartyDetails {
                display_name,
                email,
                role,
                organisation: ORGANISATION,
                country,
                language,
                time_zone,
                supervisor,
            },
        )
}

fn party_command() -> impl Strategy<Value = PartyCommand> {
    prop_oneof![
        party_details().prop_map(|details| PartyCommand::Register {
            party_id: ACTOR,
            details
        }),
        party_details().prop_map(|details| PartyCommand::Update { details }),
        (
            prop_oneof![Just("es".to_owned()), Just("xx".to_owned())],
            prop_oneof![
                Just(None),
                Just(Some("0 8 * * Mon".to_owned())),
                Just(Some("* * * * *".to_owned()))
            ],
            prop_oneof![
                Just(None),
                Just(Some(("21:00".to_owned(), "07:00".to_owned()))),
                Just(Some(("9pm".to_owned(), "07:00".to_owned())))
            ],
        )
            .prop_map(|(language, digest_cron, quiet_hours)| {
                PartyCommand::SetReminderSettings(ReminderSettingsInput {
                    language,
                    time_zone: "Africa/Lagos".to_owned(),
                    digest_cron,
                    quiet_hours,
                })
            }),
        (0i64..400).prop_map(|hours| PartyCommand::RecordDigestSent {
            covering: now() + Duration::hours(hours),
            open_tasks: 3,
            overdue_tasks: 1,
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn person_decide_and_apply_roundtrip(commands in proptest::collection::vec(person_command(), 1..12)) {
        let ctx = ctx_at(now());
        let mut history: Vec<PersonEvent> = Vec::new();
        let mut state: Option<Person> = None;
        for command in &commands {
            match Person::decide(state.as_ref(), command, &ctx) {
                Err(error) => match (&state, command, &error) {
                    (None, PersonCommand::Register { .. }, _) => prop_assert!(
                        matches!(error, PersonError::Text(_) | PersonError::BornInTheFuture(_)),
                        "{:?}", error
                    ),
                    (None, _, _) => prop_assert_eq!(&error, &PersonError::NotRegistered),
                    (Some(_), PersonCommand::Register { .. }, _) => {
                        prop_assert_eq!(&error, &PersonError::AlreadyRegistered)
                    }
                    (Some(_), _, _) => prop_assert!(matches!(error, PersonError::Text(_))),
                },
                Ok(events) => {
                    prop_assert_eq!(events.len(), 1);
                    for e in &events {
                        let (t, v, p) = encode(e);
                        let text = serde_json::to_string(&p).expect("payload to text");
                        prop_assert_eq!(&decode::<PersonEvent>(t, v, p).expect("decodes"), e);
                        prop_assert_eq!(&decode_str::<PersonEvent>(t, v, &text).expect("decodes"), e);
                        // Personal data never shows in debug output.
                        if let PersonEvent::NoteAdded { note } = e {
                            prop_assert_eq!(format!("{:?}", note.text), "[personal]");
                            prop_assert_eq!(note.author, ACTOR);
                            prop_assert_eq!(note.at, now());
                            prop_assert!(!note.text.stored().trim().is_empty());
                        }
                        state = Person::apply(state, e);
                    }
                    history.extend(events);
                    let person = state.as_ref().expect("registered");
                    prop_assert_eq!(person.version, history.len() as u64);
                    prop_assert_eq!(person.id, PERSON);
                    let folded = Person::fold(&history);
                    prop_assert_eq!(folded.as_ref(), Some(person));
                    let name = person.full_name.stored();
                    prop_assert!(!name.is_empty() && name.trim() == name && name.chars().count() <= 200);
                    if let Some(email) = &person.contact.email {
                        prop_assert!(email.stored().contains('@') && !email.stored().contains(' '));
                    }
                }
            }
        }
    }

    #[test]
    fn party_decide_and_apply_roundtrip(commands in proptest::collection::vec(party_command(), 1..8)) {
        let ctx = ctx_at(now());
        let mut history: Vec<PartyEvent> = Vec::new();
        let mut state: Option<Party> = None;
        for command in &commands {
            match Party::decide(state.as_ref(), command, &ctx) {
                Err(error) => match (&state, command) {
                    (None, PartyCommand::Update { .. } | PartyCommand::SetReminderSettings(_) | PartyCommand::RecordDigestSent { .. } | PartyCommand::RecordDigestFailed { .. }) => {
                        prop_assert_eq!(&error, &PartyError::NotRegistered)
                    }
                    (Some(party), PartyCommand::RecordDigestSent { covering, .. }) => {
                        match &party.reminders.digest {
                            None => prop_assert_eq!(&error, &PartyError::NoDigest),
                            Some(d) => {
                                prop_assert!(d.last_covered.is_some_and(|last| last >= *covering));
                                prop_assert_eq!(&error, &PartyError::DigestAlreadyRecorded(*covering));
                            }
                        }
                    }
                    (Some(_), PartyCommand::Register { .. }) => {
                        prop_assert_eq!(&error, &PartyError::AlreadyRegistered)
                    }
                    _ => prop_assert!(matches!(error, PartyError::Text(_) | PartyError::Schedule(_) | PartyError::OwnSupervisor)),
                },
                Ok(events) => {
                    prop_assert_eq!(events.len(), 1);
                    for e in &events {
                        let (t, v, p) = encode(e);
                        prop_assert_eq!(&decode::<PartyEvent>(t, v, p).expect("decodes"), e);
                        state = Party::apply(state, e);
                    }
                    history.extend(events);
                    let party = state.as_ref().expect("registered");
                    prop_assert_eq!(party.id, ACTOR);
                    prop_assert_eq!(party.version, history.len() as u64);
                    let folded = Party::fold(&history);
                    prop_assert_eq!(folded.as_ref(), Some(party));
                    prop_assert_ne!(party.profile.supervisor, Some(party.id));
                    prop_assert!(
                        ["Europe/Paris", "Africa/Lagos"].contains(&party.profile.time_zone.as_str()),
                        "time zone not normalised: {:?}", party.profile.time_zone
                    );
                    prop_assert_eq!(party.profile.country.as_str().len(), 2);
                }
            }
        }
    }
}

#[test]
fn a_registered_person_and_party_fold_back_from_their_events() {
    let ctx = ctx_at(now());
    let person_events = Person::decide(
        None,
        &PersonCommand::Register {
            organisation: ORGANISATION,
            person_id: PersonId(Uuid::from_u128(7)),
            full_name: "  Amina Example ".to_owned(),
            date_of_birth: Some(date(1998, 4, 12)),
            preferred_language: Some("EN".to_owned()),
            contact: ContactDetails::default(),
        },
        &ctx,
    )
    .expect("registers");
    let person = Person::fold(&person_events).expect("a person");
    assert_eq!(person.full_name.stored(), "Amina Example");
    assert_eq!(
        person
            .preferred_language
            .as_ref()
            .map(|l| l.plain().unwrap().as_str()),
        Some("en")
    );
    assert_eq!(person.version, 1);
    let future = Person::decide(
        None,
        &PersonCommand::Register {
            organisation: ORGANISATION,
            person_id: PersonId(Uuid::from_u128(8)),
            full_name: "Baby".to_owned(),
            date_of_birth: Some(now().date_naive() + Duration::days(1)),
            preferred_language: None,
            contact: ContactDetails::default(),
        },
        &ctx,
    );
    assert_eq!(
        future,
        Err(PersonError::BornInTheFuture(
            now().date_naive() + Duration::days(1)
        ))
    );

    let details = PartyDetails {
        display_name: "Claire Worker".to_owned(),
        email: "claire@homeward.example.org".to_owned(),
        role: PartyRole::SocialWorker,
        organisation: ORGANISATION,
        country: "fr".to_owned(),
        language: "fr".to_owned(),
        time_zone: " Europe/Paris ".to_owned(),
        supervisor: Some(CASE_WORKER),
    };
    let events = Party::decide(
        None,
        &PartyCommand::Register {
            party_id: ACTOR,
            details: details.clone(),
        },
        &ctx,
    )
    .expect("registers");
    let party = Party::fold(&events).expect("a party");
    assert_eq!(party.profile.time_zone, "Europe/Paris");
    assert_eq!(party.profile.country.as_str(), "FR");
    let own = Party::decide(
        Some(&party),
        &PartyCommand::Update {
            details: PartyDetails {
                supervisor: Some(ACTOR),
                ..details
            },
        },
        &ctx,
    );
    assert_eq!(own, Err(PartyError::OwnSupervisor));
}
