//! Reminder timers as effects: which timers a plan needs (`planned_timers`) and how a change of
//! state arms or cancels them (`timer_effects`).

mod support;

use chrono::{DateTime, Utc};
use homeward_workflows::plan::{
    CloseReason, ConsentPurpose, DueRule, Plan, PlanCommand, ReminderKind, ReminderPolicy,
};
use homeward_workflows::timers::{
    planned_timers, timer_effects, timer_id, Effect, Recipient, TimerSpec,
};
use homeward_workflows::{PartyId, StepKey};
use support::*;

use PlanCommand as C;

fn timer(
    step: &str,
    kind: ReminderKind,
    fire_at: DateTime<Utc>,
    recipient: Recipient,
) -> TimerSpec {
    TimerSpec {
        id: timer_id(PLAN, &key(step), kind, fire_at, recipient),
        plan_id: PLAN,
        step: key(step),
        kind,
        fire_at,
        recipient,
    }
}

/// The four timers of the default policy for a step due at `due` and assigned to `assignee`.
fn default_timers(step: &str, due: DateTime<Utc>, assignee: PartyId) -> Vec<TimerSpec> {
    vec![
        timer(
            step,
            ReminderKind::BeforeDue,
            due - days(3),
            Recipient::Assignee(assignee),
        ),
        timer(
            step,
            ReminderKind::OnDue,
            due,
            Recipient::Assignee(assignee),
        ),
        timer(
            step,
            ReminderKind::Overdue,
            due + days(7),
            Recipient::Assignee(assignee),
        ),
        timer(
            step,
            ReminderKind::Escalation,
            due + days(14),
            Recipient::SupervisorOf(CASE_WORKER),
        ),
    ]
}

fn cancel_all(timers: &[TimerSpec]) -> Vec<Effect> {
    timers.iter().map(|t| Effect::CancelTimer(t.id)).collect()
}

fn arm_all(timers: &[TimerSpec]) -> Vec<Effect> {
    timers.iter().cloned().map(Effect::ArmTimer).collect()
}

/// Runs `command` on the story's plan: the effects on the timer table, and the plan after.
fn effects_of(story: &Story, command: PlanCommand) -> (Vec<Effect>, Plan) {
    let before = planned_timers(&story.plan());
    let (_, after_plan) = given(story.events()).when(command).then_accepted();
    let after = planned_timers(&after_plan);
    (timer_effects(&before, &after), after_plan)
}

fn origin_contact_due() -> DateTime<Utc> {
    opened_at() + days(21)
}

fn passport_due() -> DateTime<Utc> {
    opened_at() + days(45)
}

/// An active plan with the origin contact assigned to the partner and the passport to the liaison.
fn assigned_plan() -> Story {
    Story::opened()
        .consented()
        .assigned("origin_contact", PARTNER)
        .assigned("passport", LIAISON)
}

fn sent(step: &str, kind: ReminderKind, fire_at: DateTime<Utc>, recipient: PartyId) -> PlanCommand {
    C::RecordReminderSent {
        step: key(step),
        kind,
        fire_at,
        recipient,
    }
}

#[test]
fn an_assigned_step_with_a_due_date_gets_before_due_on_due_overdue_and_escalation_timers() {
    let story = Story::opened()
        .consented()
        .assigned("origin_contact", PARTNER);
    assert_eq!(
        planned_timers(&story.plan()),
        default_timers("origin_contact", origin_contact_due(), PARTNER)
    );
}

#[test]
fn timers_follow_the_steps_reminder_policy() {
    let story = Story::opened()
        .assigned("origin_contact", PARTNER)
        .run(C::SetReminderPolicy {
            step: key("origin_contact"),
            policy: ReminderPolicy {
                before_due_days: Some(10),
                on_due: false,
                overdue_every_days: None,
                escalate_after_days: Some(2),
            },
        });
    let due = origin_contact_due();
    assert_eq!(
        planned_timers(&story.plan()),
        vec![
            timer(
                "origin_contact",
                ReminderKind::BeforeDue,
                due - days(10),
                Recipient::Assignee(PARTNER)
            ),
            timer(
                "origin_contact",
                ReminderKind::Escalation,
                due + days(2),
                Recipient::SupervisorOf(CASE_WORKER)
            ),
        ]
    );
}

#[test]
fn a_step_without_an_assignee_or_a_due_date_has_no_timers() {
    assert_eq!(planned_timers(&Story::opened().plan()), vec![]);
    let undated = Story::opened()
        .assigned("origin_contact", PARTNER)
        .run(C::RescheduleStep {
            step: key("origin_contact"),
            due: None,
            follow_up_on: None,
        });
    assert_eq!(planned_timers(&undated.plan()), vec![]);
}

#[test]
fn timer_ids_are_derived_from_plan_step_kind_time_and_recipient() {
    let at = origin_contact_due();
    let to = Recipient::Assignee(LIAISON);
    let id = timer_id(PLAN, &key("passport"), ReminderKind::OnDue, at, to);
    assert_eq!(
        id,
        timer_id(PLAN, &key("passport"), ReminderKind::OnDue, at, to)
    );
    assert_ne!(
        id,
        timer_id(PLAN, &key("passport"), ReminderKind::Overdue, at, to)
    );
    assert_ne!(
        id,
        timer_id(PLAN, &key("medical_check"), ReminderKind::OnDue, at, to)
    );
    assert_ne!(
        id,
        timer_id(
            PLAN,
            &key("passport"),
            ReminderKind::OnDue,
            at + days(1),
            to
        )
    );
    let other_plan = homeward_workflows::PlanId::new();
    assert_ne!(
        id,
        timer_id(other_plan, &key("passport"), ReminderKind::OnDue, at, to)
    );
    let someone_else = Recipient::Assignee(PARTNER);
    assert_ne!(
        id,
        timer_id(
            PLAN,
            &key("passport"),
            ReminderKind::OnDue,
            at,
            someone_else
        )
    );
    let supervisor = Recipient::SupervisorOf(LIAISON);
    assert_ne!(
        id,
        timer_id(PLAN, &key("passport"), ReminderKind::OnDue, at, supervisor)
    );
}

#[test]
fn assigning_a_dated_step_arms_its_timers() {
    let (effects, _) = effects_of(
        &Story::opened().consented(),
        C::AssignStep {
            step: key("passport"),
            assignee: Some(LIAISON),
            candidate_group: None,
        },
    );
    assert_eq!(
        effects,
        arm_all(&default_timers("passport", passport_due(), LIAISON))
    );
}

#[test]
fn completing_a_step_cancels_all_of_its_timers() {
    let story = assigned_plan().started("origin_contact");
    let (effects, plan) = effects_of(
        &story,
        C::CompleteStep {
            step: key("origin_contact"),
        },
    );
    assert_eq!(
        effects,
        cancel_all(&default_timers(
            "origin_contact",
            origin_contact_due(),
            PARTNER
        ))
    );
    assert_eq!(
        planned_timers(&plan),
        default_timers("passport", passport_due(), LIAISON),
        "the other step's timers stay"
    );
}

#[test]
fn cancelling_a_step_cancels_all_of_its_timers() {
    let (effects, _) = effects_of(
        &assigned_plan(),
        C::CancelStep {
            step: key("passport"),
            reason: "The survivor already holds a valid passport".to_owned(),
        },
    );
    assert_eq!(
        effects,
        cancel_all(&default_timers("passport", passport_due(), LIAISON))
    );
}

#[test]
fn rescheduling_a_step_replaces_its_timers() {
    // 18:00 in Lagos (UTC+1).
    let new_due = utc(2026, 2, 27, 17, 0);
    let (effects, _) = effects_of(
        &assigned_plan(),
        C::RescheduleStep {
            step: key("passport"),
            due: Some(DueRule::At {
                local: local(2026, 2, 27, 18, 0),
                time_zone: "Africa/Lagos".to_owned(),
            }),
            follow_up_on: None,
        },
    );
    let mut expected = cancel_all(&default_timers("passport", passport_due(), LIAISON));
    expected.extend(arm_all(&default_timers("passport", new_due, LIAISON)));
    assert_eq!(effects, expected);
}

#[test]
fn reassigning_a_step_moves_its_reminders_to_the_new_assignee() {
    let (effects, plan) = effects_of(
        &assigned_plan(),
        C::AssignStep {
            step: key("origin_contact"),
            assignee: Some(LIAISON),
            candidate_group: None,
        },
    );
    // The store keeps armed timers as rows (recipient included) and only applies these effects:
    // the previous assignee's reminders must be cancelled and the new assignee's armed.
    let old = default_timers("origin_contact", origin_contact_due(), PARTNER);
    let new = default_timers("origin_contact", origin_contact_due(), LIAISON);
    let mut expected = cancel_all(&old[..3]);
    expected.extend(arm_all(&new[..3]));
    assert_eq!(effects, expected);
    let recipients: Vec<_> = planned_timers(&plan)
        .into_iter()
        .filter(|t| t.step.as_str() == "origin_contact")
        .map(|t| t.recipient)
        .collect();
    assert_eq!(
        recipients,
        vec![
            Recipient::Assignee(LIAISON),
            Recipient::Assignee(LIAISON),
            Recipient::Assignee(LIAISON),
            Recipient::SupervisorOf(CASE_WORKER)
        ]
    );
}

#[test]
fn unassigning_a_step_cancels_its_timers() {
    let (effects, _) = effects_of(
        &assigned_plan(),
        C::AssignStep {
            step: key("passport"),
            assignee: None,
            candidate_group: Some("liaison".to_owned()),
        },
    );
    assert_eq!(
        effects,
        cancel_all(&default_timers("passport", passport_due(), LIAISON))
    );
}

#[test]
fn withdrawing_consent_to_return_cancels_every_timer_of_the_plan() {
    let story = assigned_plan();
    let all = planned_timers(&story.plan());
    assert_eq!(all.len(), 8);
    let (effects, plan) = effects_of(
        &story,
        C::WithdrawConsent {
            purpose: ConsentPurpose::Return,
        },
    );
    assert_eq!(effects, cancel_all(&all));
    assert!(plan.suspended);
    assert_eq!(planned_timers(&plan), vec![]);
}

#[test]
fn recording_consent_to_return_again_rearms_the_same_timers() {
    let story = assigned_plan();
    let all = planned_timers(&story.plan());
    let suspended = story.withdrew(ConsentPurpose::Return);
    let (effects, _) = effects_of(
        &suspended,
        C::RecordConsent {
            purpose: ConsentPurpose::Return,
        },
    );
    assert_eq!(effects, arm_all(&all));
}

#[test]
fn withdrawing_data_sharing_consent_for_a_partner_cancels_the_reminders_to_that_partner() {
    let story = assigned_plan().consented_to(ConsentPurpose::DataSharing { partner: PARTNER });
    let partner_timers = default_timers("origin_contact", origin_contact_due(), PARTNER);
    let (effects, plan) = effects_of(
        &story,
        C::WithdrawConsent {
            purpose: ConsentPurpose::DataSharing { partner: PARTNER },
        },
    );
    // Before-due, on-due and overdue went to the partner; the escalation goes to the case
    // worker's supervisor and stays.
    assert_eq!(effects, cancel_all(&partner_timers[..3]));
    let after = planned_timers(&plan);
    assert!(
        after
            .iter()
            .all(|t| t.recipient != Recipient::Assignee(PARTNER)),
        "{after:#?}"
    );
    assert!(after.contains(&partner_timers[3]));
    let liaison = default_timers("passport", passport_due(), LIAISON);
    assert!(
        liaison.iter().all(|t| after.contains(t)),
        "the liaison's stay"
    );
}

#[test]
fn recording_data_sharing_consent_again_rearms_the_partners_reminders() {
    let story = assigned_plan()
        .consented_to(ConsentPurpose::DataSharing { partner: PARTNER })
        .withdrew(ConsentPurpose::DataSharing { partner: PARTNER });
    let (effects, _) = effects_of(
        &story,
        C::RecordConsent {
            purpose: ConsentPurpose::DataSharing { partner: PARTNER },
        },
    );
    let partner_timers = default_timers("origin_contact", origin_contact_due(), PARTNER);
    assert_eq!(effects, arm_all(&partner_timers[..3]));
}

#[test]
fn recording_a_sent_reminder_removes_its_timer() {
    let before_due = origin_contact_due() - days(3);
    let (effects, _) = effects_of(
        &assigned_plan(),
        sent(
            "origin_contact",
            ReminderKind::BeforeDue,
            before_due,
            PARTNER,
        ),
    );
    assert_eq!(
        effects,
        vec![Effect::CancelTimer(timer_id(
            PLAN,
            &key("origin_contact"),
            ReminderKind::BeforeDue,
            before_due,
            Recipient::Assignee(PARTNER)
        ))]
    );
}

#[test]
fn recording_a_sent_overdue_reminder_arms_the_next_one() {
    let due = origin_contact_due();
    let first = timer(
        "origin_contact",
        ReminderKind::Overdue,
        due + days(7),
        Recipient::Assignee(PARTNER),
    );
    let second = timer(
        "origin_contact",
        ReminderKind::Overdue,
        due + days(14),
        Recipient::Assignee(PARTNER),
    );
    let third = timer(
        "origin_contact",
        ReminderKind::Overdue,
        due + days(21),
        Recipient::Assignee(PARTNER),
    );
    let story = assigned_plan();
    let (effects, _) = effects_of(
        &story,
        sent(
            "origin_contact",
            ReminderKind::Overdue,
            first.fire_at,
            PARTNER,
        ),
    );
    assert_eq!(
        effects,
        vec![
            Effect::CancelTimer(first.id),
            Effect::ArmTimer(second.clone())
        ]
    );

    let story = story.run(sent(
        "origin_contact",
        ReminderKind::Overdue,
        first.fire_at,
        PARTNER,
    ));
    let (effects, _) = effects_of(
        &story,
        sent(
            "origin_contact",
            ReminderKind::Overdue,
            second.fire_at,
            PARTNER,
        ),
    );
    assert_eq!(
        effects,
        vec![Effect::CancelTimer(second.id), Effect::ArmTimer(third)]
    );
}

#[test]
fn recording_a_sent_escalation_removes_the_escalation_timer() {
    let escalation = origin_contact_due() + days(14);
    let supervisor = PartyId::new();
    let (effects, _) = effects_of(
        &assigned_plan(),
        sent(
            "origin_contact",
            ReminderKind::Escalation,
            escalation,
            supervisor,
        ),
    );
    assert_eq!(
        effects,
        vec![Effect::CancelTimer(timer_id(
            PLAN,
            &key("origin_contact"),
            ReminderKind::Escalation,
            escalation,
            Recipient::SupervisorOf(CASE_WORKER)
        ))]
    );
}

#[test]
fn closing_the_plan_cancels_every_timer() {
    let story = assigned_plan();
    let all = planned_timers(&story.plan());
    let (effects, _) = effects_of(
        &story,
        C::ClosePlan {
            reason: CloseReason::LostContact,
        },
    );
    assert_eq!(effects, cancel_all(&all));
}

#[test]
fn follow_up_timers_are_armed_when_arrival_resolves_their_due_dates() {
    let story = Story::opened()
        .ready_for_travel()
        .assigned("follow_up_1", PARTNER)
        .started("travel")
        .departed();
    assert_eq!(
        planned_timers(&story.plan()),
        vec![],
        "not due before arrival"
    );
    let arrived_at = story.now() + days(1);
    let (_, plan) = given(story.events())
        .when(C::ConfirmArrival { arrived_at })
        .then_accepted();
    let effects = timer_effects(&planned_timers(&story.plan()), &planned_timers(&plan));
    let mut expected = default_timers("follow_up_1", arrived_at + days(14), PARTNER);
    // And the case worker hears a month after arrival if no reintegration plan is done.
    expected.push(timer(
        "reintegration_plan",
        ReminderKind::ReintegrationPlanDue,
        arrived_at + days(30),
        Recipient::CaseWorker(CASE_WORKER),
    ));
    assert_eq!(effects, arm_all(&expected));
}

#[test]
fn the_reintegration_plan_reminder_goes_once_and_not_after_the_plan_is_done() {
    let story = Story::opened()
        .ready_for_travel()
        .started("travel")
        .departed();
    let arrived_at = story.now() + days(1);
    let story = story.run_at(arrived_at, C::ConfirmArrival { arrived_at });
    let reminder = timer(
        "reintegration_plan",
        ReminderKind::ReintegrationPlanDue,
        arrived_at + days(30),
        Recipient::CaseWorker(CASE_WORKER),
    );
    assert!(planned_timers(&story.plan()).contains(&reminder));
    // Sent: not armed again.
    let sent = story.clone().run_at(
        arrived_at + days(30),
        C::RecordReminderSent {
            step: key("reintegration_plan"),
            kind: ReminderKind::ReintegrationPlanDue,
            fire_at: arrived_at + days(30),
            recipient: CASE_WORKER,
        },
    );
    assert!(!planned_timers(&sent.plan()).contains(&reminder));
    // Done before the month is out: cancelled.
    let (effects, _) = effects_of(
        &story.started("reintegration_plan"),
        C::CompleteStep {
            step: key("reintegration_plan"),
        },
    );
    assert!(
        effects.contains(&Effect::CancelTimer(reminder.id)),
        "{effects:?}"
    );
    // Sent on one reintegration step, then that step cancelled: not sent again on another.
    let with_second = sent.run(C::AddStep(Box::new(homeward_workflows::plan::NewStep {
        key: key("housing_support"),
        kind: homeward_workflows::plan::StepKind::ReintegrationSupport,
        title: "Housing support".into(),
        assignee: None,
        candidate_group: None,
        priority: homeward_workflows::plan::Priority::Normal,
        due: None,
        follow_up_on: None,
        depends_on: vec![],
        reminder_policy: None,
    })));
    let cancelled = with_second.run(C::CancelStep {
        step: key("reintegration_plan"),
        reason: "Replaced".into(),
    });
    let left = planned_timers(&cancelled.plan());
    assert!(
        !left
            .iter()
            .any(|t| t.kind == ReminderKind::ReintegrationPlanDue),
        "{left:?}"
    );
}

#[test]
fn timer_effects_between_equal_tables_are_empty() {
    let timers = planned_timers(&assigned_plan().plan());
    assert!(!timers.is_empty());
    assert_eq!(timer_effects(&timers, &timers), vec![]);
}

#[test]
fn a_suspended_plan_plans_no_timers_even_for_newly_dated_steps() {
    let story = Story::opened()
        .consented()
        .assigned("origin_contact", PARTNER)
        .withdrew(ConsentPurpose::Return);
    assert_eq!(planned_timers(&story.plan()), vec![]);
    // Closing it is allowed and keeps the table empty.
    let (effects, _) = effects_of(
        &story,
        C::ClosePlan {
            reason: CloseReason::OptedOut,
        },
    );
    assert_eq!(effects, vec![]);
}

#[test]
fn a_step_key_appears_in_its_timers() {
    let timers = planned_timers(&assigned_plan().plan());
    let keys: std::collections::BTreeSet<&StepKey> = timers.iter().map(|t| &t.step).collect();
    assert_eq!(
        keys.into_iter().map(StepKey::as_str).collect::<Vec<_>>(),
        vec!["origin_contact", "passport"]
    );
    assert!(timers.iter().all(|t| t.plan_id == PLAN));
}
